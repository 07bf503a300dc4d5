//! The service example end to end: built, started on a free local port with its own SQLite
//! file, driven over HTTP (an order in, its document, journey, Mermaid diagram and HTML report out,
//! reprocess and cancel refused for what cannot take them, a bad document refused), stopped
//! with SIGTERM (it drains and exits cleanly), and started again on the same file.

#![cfg(all(feature = "sqlite", unix))]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Builds the example (quick when it is up to date) and returns its binary.
fn example() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--quiet",
            "--example",
            "service",
            "--features",
            "sqlite",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the service example builds");
    // This test runs from <target>/<profile>/deps; examples are in <target>/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join("service")
}

struct Service {
    child: Child,
    addr: String,
}

fn start(binary: &PathBuf, db: &PathBuf) -> Service {
    let mut child = Command::new(binary)
        .env("ORDERFLOW_ADDR", "127.0.0.1:0")
        .env("ORDERFLOW_DB", db)
        .env_remove("ORDERFLOW_PG_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the service starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    // Keep reading its output so it never blocks on a full pipe; hand it back at the end.
    child.stdout = None;
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        print!("{rest}");
    });
    Service { child, addr }
}

/// One HTTP/1.1 request; the status and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn stop(mut service: Service) {
    let status = Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = service.child.wait().unwrap();
    assert!(
        exit.success(),
        "the service exits cleanly on SIGTERM: {exit:?}"
    );
}

#[test]
fn the_service_takes_orders_over_http_and_stops_cleanly() {
    let binary = example();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("service.db");
    let service = start(&binary, &db);
    let addr = service.addr.clone();

    assert_eq!(http(&addr, "GET", "/health", "").0, 200);
    let order = r#"{
        "id": "new:SO-1", "kind": "New Order", "order": "SO-1",
        "document": {
            "id": "SO-1", "ship_to": {"country": "US"},
            "lines": [{"id": "1", "product": "Surface Pen", "quantity": "10"}]
        }
    }"#;
    let (status, body) = http(&addr, "POST", "/events", order);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\": false"), "{body}");
    let (status, body) = http(&addr, "POST", "/events", order);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"duplicate\": true"), "{body}");

    let (status, body) = http(&addr, "GET", "/orders/SO-1", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Sent To Fulfillment"), "{body}");
    let (status, body) = http(&addr, "GET", "/orders/SO-1/journey", "");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"steps\"") && body.contains("Reference lab"),
        "{body}"
    );
    let (status, body) = http(&addr, "GET", "/orders/SO-1/journey.mmd", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("flowchart"), "{body}");
    // The HTML report: one page, the path drawn on the flow, nothing to run.
    let (status, body) = http(&addr, "GET", "/orders/SO-1/journey.html", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    assert!(
        body.contains("<h1>Order SO-1</h1>")
            && body.contains("<svg ")
            && body.contains("class=\"edge taken\"")
            && body.contains("Validate order header")
            && body.contains("id=\"timeline\""),
        "{body}"
    );
    assert!(!body.contains("<script"), "{body}");
    let (status, body) = http(&addr, "GET", "/orders/SO-404/journey.html", "");
    assert_eq!(status, 404, "{body}");

    // What cannot be done is refused with the engine's reason.
    let (status, body) = http(&addr, "POST", "/orders/SO-1/executions/1/reprocess", "");
    assert_eq!(status, 409, "{body}");
    let (status, body) = http(&addr, "POST", "/orders/SO-1/executions/1/cancel", "");
    assert_eq!(status, 409, "{body}");
    let (status, _) = http(&addr, "GET", "/orders/SO-404", "");
    assert_eq!(status, 404);
    let (status, body) = http(&addr, "POST", "/events", r#"{"id": "x", "kind": 7}"#);
    assert_eq!(status, 422, "{body}");

    stop(service);

    // Started again on the same file: what it took is there.
    let service = start(&binary, &db);
    let (status, body) = http(&service.addr, "GET", "/orders/SO-1", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Sent To Fulfillment"), "{body}");
    stop(service);
}
