//! The SVG and the HTML report of a reference-lab journey, opened in headless Chromium: each
//! is screenshotted and the picture must not be blank (many colours, the taken path's green
//! and the skipped step's grey among them), the page must log nothing to the console (no
//! script error, no blocked load), and the document Chromium parsed must have no XML error
//! and hold the steps. Negative controls show each check fails on a page that is broken that
//! way: a script error, a blank page, an SVG that is not XML.
//!
//! Chromium is found as `chromium` or `chromium-browser` (Debian's package `chromium`). Where
//! it is missing the test says so and passes, unless `ORDERFLOW_REQUIRE_CHROMIUM=1` (CI sets
//! it), which makes a missing browser a failure. Set `ORDERFLOW_RENDER_DUMP` to a directory
//! to keep the screenshots.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::render::{self, Report};
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Event, MemoryProvider, MemoryStore};

const LAB_FLOW: &str = include_str!("../examples/reference-lab/flow.json");
const LAB_POLICIES: &str = include_str!("../examples/reference-lab/policies.json");

/// The browser, or `None` (after saying why) when it is missing and not required.
fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        let found = Command::new("which")
            .arg(name)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
        if let Some(path) = found.filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
    }
    assert!(
        std::env::var("ORDERFLOW_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
        "ORDERFLOW_REQUIRE_CHROMIUM=1 but neither `chromium` nor `chromium-browser` is on PATH \
         (Debian: apt-get install chromium)"
    );
    eprintln!(
        "skipping: neither `chromium` nor `chromium-browser` is on PATH \
         (install Debian's `chromium`, or set ORDERFLOW_REQUIRE_CHROMIUM=1 to fail instead)"
    );
    None
}

/// Runs headless Chromium on a file with extra arguments; its stdout and stderr.
fn run(browser: &Path, profile: &Path, file: &Path, args: &[String]) -> (String, String) {
    let out_path = profile.join("stdout.txt");
    let err_path = profile.join("stderr.txt");
    let mut child = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .arg(format!("file://{}", file.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status:?}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 120 s on {}", file.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (
        std::fs::read_to_string(out_path).unwrap(),
        std::fs::read_to_string(err_path).unwrap(),
    )
}

/// What the page logged to its console: Chromium writes each console message (an uncaught
/// error, a `console.*` call, a load the content security policy blocked) as a `CONSOLE`
/// line of its log.
fn console_messages(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// A screenshot of `file` at `size`; the page's console messages.
fn screenshot(
    browser: &Path,
    dir: &Path,
    file: &Path,
    png: &Path,
    size: (u32, u32),
) -> Vec<String> {
    let (_, log) = run(
        browser,
        dir,
        file,
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={},{}", size.0, size.1),
        ],
    );
    assert!(png.exists(), "no screenshot of {}:\n{log}", file.display());
    console_messages(&log)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The document as Chromium parsed it.
fn dom(browser: &Path, dir: &Path, file: &Path) -> String {
    run(browser, dir, file, &["--dump-dom".to_owned()]).0
}

/// The pixels of a PNG as RGB.
fn pixels(png: &Path) -> Vec<[u8; 3]> {
    let mut decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| match channels {
            1 | 2 => [p[0], p[0], p[0]],
            _ => [p[0], p[1], p[2]],
        })
        .collect()
}

/// Why a screenshot looks blank, if it does: too few colours or almost all white.
fn blank(pixels: &[[u8; 3]]) -> Option<String> {
    let colours: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    let ink = pixels.iter().filter(|p| **p != [255, 255, 255]).count();
    let share = ink as f64 / pixels.len() as f64;
    if colours.len() < 16 {
        return Some(format!("{} colours", colours.len()));
    }
    if share < 0.01 {
        return Some(format!("{:.3}% of the pixels are not white", share * 100.0));
    }
    None
}

/// How many pixels are within a small distance of `hex` (`#rrggbb`).
fn count_near(pixels: &[[u8; 3]], hex: &str) -> usize {
    let c: Vec<u8> = (1..7)
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    pixels
        .iter()
        .filter(|p| (0..3).all(|i| p[i].abs_diff(c[i]) <= 12))
        .count()
}

fn keep(dir: &Path, name: &str) {
    if let Some(out) = std::env::var_os("ORDERFLOW_RENDER_DUMP") {
        std::fs::copy(dir.join(name), Path::new(&out).join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_journey_svg_and_report_render_in_chromium() {
    let Some(browser) = chromium() else { return };
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"))
        .build()
        .await
        .unwrap();
    for policy in PolicyDocument::list_from_json(LAB_POLICIES).unwrap() {
        let name = policy.name.clone();
        engine.create_policy(policy).await.unwrap();
        engine.publish_policy(&name).await.unwrap();
    }
    let flow = Flow::from_json(LAB_FLOW).unwrap();
    engine.create_flow(flow.clone()).await.unwrap();
    engine.publish(&flow.name).await.unwrap();
    let submitted = Order::new("LAB-1")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 110));
    engine
        .submit(Event::new_order(submitted.clone()))
        .await
        .unwrap();
    let journey = engine.journey("LAB-1").await.unwrap();
    let now = engine.order("LAB-1").await.unwrap().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("journey.svg");
    let html = dir.path().join("journey.html");
    std::fs::write(&svg, render::journey_svg(&flow, &journey)).unwrap();
    std::fs::write(
        &html,
        render::journey_html(&Report::new(&flow, &journey).before(&submitted).after(&now)),
    )
    .unwrap();

    for (file, png, size) in [
        (&svg, "journey-svg.png", (1000, 900)),
        (&html, "journey-html.png", (1280, 2400)),
    ] {
        let shot = dir.path().join(png);
        let console = screenshot(&browser, dir.path(), file, &shot, size);
        keep(dir.path(), png);
        assert!(console.is_empty(), "{png}: console messages {console:#?}");
        let px = pixels(&shot);
        assert_eq!(px.len(), (size.0 * size.1) as usize, "{png} size");
        assert_eq!(blank(&px), None, "{png} looks blank");
        // The taken path's green and the skipped step's grey fill are on the picture.
        assert!(count_near(&px, "#2b8a3e") > 500, "{png}: no green path");
        assert!(count_near(&px, "#e9ecef") > 500, "{png}: no skipped step");

        let dom = dom(&browser, dir.path(), file);
        assert!(
            !dom.contains("parsererror"),
            "{png}: Chromium could not parse it:\n{dom}"
        );
        for step in [
            "Validate order header",
            "Send to Seattle",
            "Send to Chicago",
        ] {
            assert!(dom.contains(step), "{png}: {step} missing from the page");
        }
    }
}

#[test]
fn the_checks_fail_on_a_broken_page() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();

    // A script error is a console message.
    let page = dir.path().join("error.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>Hello</p><script>notDefined();</script></body></html>",
    )
    .unwrap();
    let console = screenshot(
        &browser,
        dir.path(),
        &page,
        &dir.path().join("error.png"),
        (400, 300),
    );
    assert!(
        console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "{console:#?}"
    );

    // A blank page is blank.
    let page = dir.path().join("blank.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let png = dir.path().join("blank.png");
    let console = screenshot(&browser, dir.path(), &page, &png, (400, 300));
    assert!(console.is_empty(), "{console:#?}");
    assert!(blank(&pixels(&png)).is_some());

    // An SVG that is not XML shows Chromium's parser error.
    let page = dir.path().join("broken.svg");
    std::fs::write(
        &page,
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>a & b</text></svg>",
    )
    .unwrap();
    assert!(dom(&browser, dir.path(), &page).contains("parsererror"));
}
