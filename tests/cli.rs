//! The `orderflow` command-line tool end to end on the example files: each subcommand, a
//! bad file and a missing file, with exit codes scripts can rely on; files read no further
//! than their size limit, and files that are not UTF-8.

#![cfg(feature = "cli")]

use std::time::Duration;

use assert_cmd::Command;
use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::limits::Limits;
use orderflow::rules::PolicyDocument;
use orderflow::store::SqliteStore;
use orderflow::{Engine, Event, ManualClock, MemoryProvider, Timestamp};

const LAB_FLOW: &str = "examples/reference-lab/flow.json";
const LAB_POLICIES: &str = "examples/reference-lab/policies.json";
const SAMPLE_FLOW: &str = "examples/flows/test-order-flow-sample.json";
const ORDER: &str = "examples/orders/two-lines.json";

fn orderflow() -> Command {
    Command::cargo_bin("orderflow").unwrap()
}

fn stdout(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn validate_accepts_the_reference_lab_and_prints_its_warnings() {
    let out = orderflow()
        .args(["validate", LAB_FLOW, LAB_POLICIES])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("ok (flow 'Reference lab' version 1.0.0)"),
        "{text}"
    );
    assert!(text.contains("ok (5 policies)"), "{text}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("warning[unrouted-records]: "),
        "the lab's unrouted sources are a warning, on stderr: {err}"
    );
    // Under --strict a warning fails the check.
    orderflow()
        .args(["validate", "--strict", LAB_FLOW, LAB_POLICIES])
        .assert()
        .code(1);
}

#[test]
fn validate_reports_a_flow_whose_policies_are_missing() {
    let out = orderflow()
        .args(["validate", LAB_FLOW])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("policy 'Ship-to US' is not defined"), "{err}");
    assert!(
        err.contains("--> examples/reference-lab/flow.json:"),
        "{err}"
    );
}

#[test]
fn validate_points_at_the_place_of_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("bad-flow.json");
    std::fs::write(
        &flow,
        "{\n  \"name\": \"Bad\",\n  \"steps\": [ { \"action\": { \"name\": 1 } } ]\n}\n",
    )
    .unwrap();
    let out = orderflow()
        .args(["validate"])
        .arg(&flow)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad-flow.json:3:36\n"),
        "file:line:column: {err}"
    );
    assert!(!err.contains("line"), "the place once: {err}");

    // Not JSON at all, and an order that is not JSON: the place once too.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\n  \"name\": \"Bad\",\n  \"steps\": [ }\n").unwrap();
    let order = dir.path().join("order.json");
    std::fs::write(&order, "{ \"id\": \"SO-1\",\n  \"lines\": [ , ] }").unwrap();
    for (args, place) in [
        (
            vec!["validate".into(), broken.clone().into_os_string()],
            format!("{}:3:", broken.display()),
        ),
        (
            vec![
                "simulate".into(),
                LAB_FLOW.into(),
                order.clone().into_os_string(),
            ],
            format!("{}:2:", order.display()),
        ),
    ] {
        let out = orderflow()
            .args(&args)
            .timeout(GUARD)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("--> {place}")),
            "{args:?}: file:line:column: {err}"
        );
        assert!(!err.contains(" line "), "{args:?}: the place once: {err}");
    }

    let policy = dir.path().join("bad-policy.json");
    std::fs::write(
        &policy,
        r#"{ "name": "P", "type": "execution", "entity": "order_line", "rules": [
            { "name": "R", "condition": { "field": "quantity", "operator": "equals", "value": "ten" } } ] }"#,
    )
    .unwrap();
    let out = orderflow()
        .args(["validate"])
        .arg(&policy)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("policy 'P'") && err.contains("rule 'R'") && err.contains("field 'quantity'"),
        "{err}"
    );

    let neither = dir.path().join("neither.json");
    std::fs::write(&neither, "{\"hello\": 1}").unwrap();
    orderflow()
        .args(["validate"])
        .arg(&neither)
        .assert()
        .code(1);
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let out = orderflow()
        .args(["validate", "no/such/flow.json"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err,
        "error: cannot read no/such/flow.json: No such file or directory (os error 2)\n\n"
    );
    // Under --format json too, the reason is on stderr: there is no document to print.
    let out = orderflow()
        .args(["validate", "--format", "json", "no/such/flow.json"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .starts_with("error: cannot read")
    );
    orderflow()
        .args(["render", "no/such/flow.json"])
        .assert()
        .code(2);
    orderflow().args(["frobnicate"]).assert().code(2);
}

#[test]
fn render_draws_mermaid_and_dot() {
    let mermaid = stdout(orderflow().args(["render", SAMPLE_FLOW]));
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    assert!(mermaid.contains("Test validation 1"), "{mermaid}");
    let dot = stdout(orderflow().args(["render", LAB_FLOW, "--format", "dot"]));
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("Send to Seattle"), "{dot}");
}

#[test]
fn render_draws_svg_a_browser_opens() {
    let svg = stdout(orderflow().args(["render", LAB_FLOW, "--format", "svg"]));
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: String = doc
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(texts.contains("Send to Seattle"), "{texts}");
}

#[test]
fn simulate_runs_the_lab_on_an_order_without_calling_anything() {
    let text = stdout(orderflow().args(["simulate", LAB_FLOW, ORDER, "--policies", LAB_POLICIES]));
    assert!(text.contains("Send to Seattle would succeed"), "{text}");
    assert!(text.contains("would call 'Seattle store 3PL'"), "{text}");
    assert!(text.contains("not called"), "{text}");
    let json = stdout(orderflow().args([
        "simulate",
        LAB_FLOW,
        ORDER,
        "--policies",
        LAB_POLICIES,
        "--format",
        "json",
    ]));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["calls"].as_array().unwrap().len(), 2, "{json}");
    // Without the policies the flow cannot run: a document problem, exit 1.
    orderflow()
        .args(["simulate", LAB_FLOW, ORDER])
        .assert()
        .code(1);
}

/// The members of `simulate --format json` the guide documents as stable.
#[test]
fn simulate_json_has_its_documented_shape() {
    let json = stdout(orderflow().args([
        "simulate",
        LAB_FLOW,
        ORDER,
        "--policies",
        LAB_POLICIES,
        "--format",
        "json",
    ]));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&value),
        ["calls", "changes", "filters", "journey", "order", "waits"]
    );
    for key in ["order", "executions", "steps", "timeline"] {
        assert!(value["journey"].get(key).is_some(), "journey.{key}");
    }
    assert_eq!(value["journey"]["executions"][0]["status"], "completed");
    assert_eq!(
        keys(&value["calls"][0]),
        ["provider", "record", "request", "step"]
    );
    assert_eq!(
        keys(&value["filters"][0]),
        ["admitted", "policy", "rejected", "step"]
    );
    assert_eq!(
        keys(&value["changes"][0]),
        ["after", "before", "field", "step"]
    );
    let step = &value["journey"]["steps"][0];
    for key in ["step", "outcome", "records", "details", "findings"] {
        assert!(step.get(key).is_some(), "journey.steps[].{key}");
    }
}

#[test]
fn simulate_asserts_how_the_order_path_ends_for_ci() {
    let run = |expect: &str| {
        orderflow()
            .args([
                "simulate",
                LAB_FLOW,
                ORDER,
                "--policies",
                LAB_POLICIES,
                "--expect",
                expect,
            ])
            .assert()
    };
    let met = run("completed").code(0);
    let report = String::from_utf8(met.get_output().stdout.clone()).unwrap();
    assert!(report.contains("Send to Seattle would succeed"), "{report}");
    for other in ["failed", "waiting"] {
        let missed = run(other).code(3);
        let out = missed.get_output();
        let stderr = String::from_utf8(out.stderr.clone()).unwrap();
        assert!(
            stderr.contains(&format!(
                "was expected to end {other}, its path ended Completed"
            )),
            "{stderr}"
        );
        // The report is printed either way.
        assert!(!out.stdout.is_empty());
    }
    // An unknown end is a usage error.
    run("shipped").code(2);
}

#[test]
fn journey_reads_an_order_from_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("orders.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let at = Timestamp::parse_rfc3339("2026-11-29T22:58:00.123Z").unwrap();
        let engine = Engine::builder()
            .store(SqliteStore::open(&db).unwrap())
            .clock(ManualClock::new(at))
            .provider(MemoryProvider::new("Seattle store 3PL"))
            .provider(MemoryProvider::new("Chicago store 3PL"))
            .build()
            .await
            .unwrap();
        let policies = std::fs::read_to_string(LAB_POLICIES).unwrap();
        for policy in PolicyDocument::list_from_json(&policies).unwrap() {
            let name = policy.name.clone();
            engine.create_policy(policy).await.unwrap();
            engine.publish_policy(&name).await.unwrap();
        }
        let flow = Flow::from_json(&std::fs::read_to_string(LAB_FLOW).unwrap()).unwrap();
        engine.create_flow(flow).await.unwrap();
        engine.publish("Reference lab").await.unwrap();
        let order = Order::new("J-1")
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", 1));
        engine.submit(Event::new_order(order)).await.unwrap();
    });

    let text = stdout(orderflow().arg("journey").arg(&db).arg("J-1"));
    assert!(text.contains("Validate order lines → Failed"), "{text}");
    // Times as RFC 3339 dates in UTC: when each step started and each event arrived.
    assert!(
        text.contains("  2026-11-29T22:58:00.123Z [Reference lab] Validate order lines → Failed"),
        "{text}"
    );
    assert!(
        text.contains("      1. 2026-11-29T22:58:00.123Z New Order\n"),
        "{text}"
    );
    let mermaid = stdout(
        orderflow()
            .arg("journey")
            .arg(&db)
            .arg("J-1")
            .args(["--format", "mermaid"]),
    );
    assert!(mermaid.starts_with("flowchart"), "{mermaid}");
    let json = stdout(
        orderflow()
            .arg("journey")
            .arg(&db)
            .arg("J-1")
            .args(["--format", "json"]),
    );
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok());
    let journey = |format: &str| {
        stdout(
            orderflow()
                .arg("journey")
                .arg(&db)
                .arg("J-1")
                .args(["--format", format]),
        )
    };
    // The journey on its flow as SVG, the failed step marked; and as one HTML page.
    let svg = journey("svg");
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(svg.contains("Validate order lines"), "{svg}");
    let html = journey("html");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    for part in ["<svg", "J-1", "Validate order lines", "Surface Pen"] {
        assert!(html.contains(part), "the report lacks {part}: {html}");
    }
    assert!(!html.contains("<script"), "one file, no script: {html}");
    // --flow names the flow to draw; one the order did not go through is an error.
    orderflow()
        .arg("journey")
        .arg(&db)
        .args(["J-1", "--format", "svg", "--flow", "Reference lab"])
        .assert()
        .success();
    let out = orderflow()
        .arg("journey")
        .arg(&db)
        .args(["J-1", "--format", "html", "--flow", "Other"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("order 'J-1' did not go through flow 'Other'; its flows: 'Reference lab'"),
        "{err}"
    );
    orderflow()
        .arg("journey")
        .arg(&db)
        .arg("NOPE")
        .assert()
        .code(2);
    orderflow()
        .arg("journey")
        .arg(dir.path().join("missing.db"))
        .arg("J-1")
        .assert()
        .code(2);
}

#[test]
fn the_guide_shows_the_diagram_the_tool_draws() {
    let mermaid = stdout(orderflow().args(["render", SAMPLE_FLOW]));
    let guide = std::fs::read_to_string("src/guide/diagrams.md").unwrap();
    assert!(
        guide.contains(&format!("```mermaid\n{mermaid}```")),
        "src/guide/diagrams.md's diagram is stale; regenerate it with \
         `cargo run --features cli -- render {SAMPLE_FLOW}`"
    );
}

/// How long a command may take before it is killed and its test fails: a wall-clock guard
/// against reading without end, far above what a bounded read takes.
const GUARD: Duration = Duration::from_secs(20);

/// The reference lab's flow, padded with trailing spaces to `len` bytes.
fn padded_flow(dir: &std::path::Path, len: usize) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(LAB_FLOW).unwrap();
    assert!(text.len() <= len);
    text.extend(std::iter::repeat_n(' ', len - text.len()));
    let path = dir.join(format!("flow-{len}.json"));
    std::fs::write(&path, text).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len as u64);
    path
}

#[test]
fn a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_refused() {
    let max = Limits::default().max_document_bytes;
    let dir = tempfile::tempdir().unwrap();
    let at_limit = padded_flow(dir.path(), max);
    let out = orderflow()
        .arg("validate")
        .arg(&at_limit)
        .arg(LAB_POLICIES)
        .timeout(GUARD)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ok (flow 'Reference lab' version"), "{text}");
    orderflow()
        .arg("render")
        .arg(&at_limit)
        .timeout(GUARD)
        .assert()
        .success();

    let over = padded_flow(dir.path(), max + 1);
    let out = orderflow()
        .arg("validate")
        .arg(&over)
        .arg(LAB_POLICIES)
        .timeout(GUARD)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("flow-{}.json: larger than {max} bytes", max + 1)),
        "{err}"
    );
    assert!(!String::from_utf8(out.stdout).unwrap().contains("ok (flow"));
}

#[cfg(unix)]
#[test]
fn an_endless_file_is_refused_at_the_limit() {
    let max = Limits::default().max_document_bytes;
    let runs: [&[&str]; 6] = [
        &["validate", "/dev/zero"],
        &["validate", LAB_FLOW, "/dev/zero"],
        &["render", "/dev/zero"],
        &["simulate", "/dev/zero", ORDER],
        &[
            "simulate",
            LAB_FLOW,
            "/dev/zero",
            "--policies",
            LAB_POLICIES,
        ],
        &["simulate", LAB_FLOW, ORDER, "--policies", "/dev/zero"],
    ];
    for args in runs {
        // Killed by the guard, the command has no exit code and the assertion fails.
        let out = orderflow()
            .args(args)
            .timeout(GUARD)
            .assert()
            .code(1)
            .get_output()
            .clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(
            err.contains(&format!("/dev/zero: larger than {max} bytes")),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_file_that_is_not_utf8_is_invalid_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let flow = dir.path().join("latin1.json");
    let mut bytes = b"{\n  \"name\": \"Caf".to_vec();
    bytes.extend_from_slice(b"\xe9\",\n  \"steps\": []\n}\n");
    std::fs::write(&flow, &bytes).unwrap();
    let out = orderflow()
        .arg("validate")
        .arg(&flow)
        .timeout(GUARD)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    // The place as line and column (characters) and as the byte offset.
    assert_eq!(
        err,
        format!(
            "error[not-utf8]: not UTF-8: invalid byte 0xe9 at byte offset 16
 --> {}:2:15
  |
2 |   \"name\": \"Caf\u{fffd}\",
  |               ^ shown as \u{fffd}
  |
  = help: save the file as UTF-8

",
            flow.display()
        ),
    );

    // An order file too, past valid multi-byte characters: the column counts characters.
    let order = dir.path().join("order.json");
    let before = "{ \"id\": \"SO-1\", \"note\": \"naïve ";
    let mut bytes = before.as_bytes().to_vec();
    bytes.extend_from_slice(b"\xff\xfe\" }");
    std::fs::write(&order, &bytes).unwrap();
    let out = orderflow()
        .args(["simulate", LAB_FLOW])
        .arg(&order)
        .args(["--policies", LAB_POLICIES])
        .timeout(GUARD)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    let column = before.chars().count() + 1;
    assert!(
        err.starts_with(&format!(
            "error[not-utf8]: not UTF-8: invalid byte 0xff at byte offset {}\n --> {}:1:{column}\n",
            before.len(),
            order.display(),
        )),
        "{err}"
    );
}
