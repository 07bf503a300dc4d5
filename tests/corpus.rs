//! A corpus of bad inputs: flow documents, policy documents and events, each with its exact
//! expected error.
//!
//! The inputs are the files under `tests/corpus/<kind>/`; each kind's `expected.txt` maps every
//! file to the stage that must reject it and the error it must give (see the header of those
//! files for the format). Inputs too large to commit (deep nesting, 10^6 branches, documents
//! past 1 MiB) are `*.recipe` files: a small JSON description expanded at test time (see
//! [`expand`]).
//!
//! Every case runs inside `catch_unwind` (a panic fails the test and names the file) and inside
//! `allocation_counter::measure`, which counts this thread's heap (the dev-dependency installs a
//! counting global allocator for the whole test binary). Per case the test prints the error,
//! the wall time and the peak heap, and asserts the peak heap is under [`PEAK_LIMIT`]. Wall time
//! is reported (the slowest case is named), never asserted. Nothing depends on the build
//! profile: `cargo test --test corpus` and `cargo test --release --test corpus` run the same
//! assertions.
//!
//! A case marked `ignore: why` in the index is a library bug found by the corpus: its expected
//! error is what the library should give; it still runs (panics caught) and its outcome is
//! printed as `IGNORED`, or `NOTE` once it passes, but it does not fail the test.
//!
//! Bytes to text: every input is read as bytes and turned into text with `std::str::from_utf8`
//! before the library sees it, because the public API takes `&str` (`Flow::from_json`,
//! `PolicyDocument::from_json`, and `serde_json::from_str` for an `Event`). Invalid UTF-8 is
//! therefore rejected at that boundary, by `from_utf8`, before any library code runs; the
//! expected error of those cases is `Utf8(..)` at stage `utf8`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orderflow::flow::{Flow, validate};
use orderflow::limits::Limits;
use orderflow::rules::PolicyDocument;
use orderflow::{ActionStep, Engine, Error, Event, EventKind, action_fn};

/// Peak heap allowed for one case, from its text to its error.
const PEAK_LIMIT: u64 = 64 << 20;

/// Fewest cases per kind.
const MIN_CASES: usize = 30;

// ---------------------------------------------------------------------------------------------
// The index
// ---------------------------------------------------------------------------------------------

/// One line of `expected.txt`.
#[derive(Debug)]
struct Case {
    file: String,
    stage: String,
    kind: String,
    variant: String,
    detail: String,
    limits: Limits,
    ignore: Option<String>,
}

/// Reads `tests/corpus/<kind>/expected.txt`:
/// `file | stage | ErrorKind | Variant(detail) [| option; option]`, options being
/// `limits: name=value, name=value` (parse with these limits instead of the defaults) and
/// `ignore: why`, last (a library bug: the case runs and is reported, but does not fail the
/// test).
fn index(kind: &str) -> Vec<Case> {
    let path = dir(kind).join("expected.txt");
    let text = std::fs::read_to_string(&path).expect("the index exists");
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split(" | ").map(str::trim).collect();
        assert!(
            (4..=5).contains(&cols.len()),
            "{}:{}: expected 4 or 5 columns: {line}",
            path.display(),
            n + 1
        );
        let (variant, detail) = split_error(cols[3]);
        let mut case = Case {
            file: cols[0].to_owned(),
            stage: cols[1].to_owned(),
            kind: cols[2].to_owned(),
            variant,
            detail,
            limits: Limits::default(),
            ignore: None,
        };
        if let Some(options) = cols.get(4) {
            // `ignore: why` comes last and takes the rest of the column.
            let (options, why) = match options.split_once("ignore: ") {
                Some((before, why)) => (before.trim_end_matches("; "), Some(why)),
                None => (*options, None),
            };
            case.ignore = why.map(str::to_owned);
            for option in options.split("; ").filter(|o| !o.is_empty()) {
                let list = option.strip_prefix("limits: ").unwrap_or_else(|| {
                    panic!("{}:{}: unknown option {option}", path.display(), n + 1)
                });
                case.limits = limits(list);
            }
        }
        cases.push(case);
    }
    cases
}

/// `Variant(detail)` into its parts.
fn split_error(s: &str) -> (String, String) {
    match s.split_once('(') {
        Some((variant, rest)) => {
            let detail = rest.strip_suffix(')').expect("the error ends with ')'");
            (variant.to_owned(), detail.to_owned())
        }
        None => (s.to_owned(), String::new()),
    }
}

/// `max_steps=10000, max_document_bytes=67108864` over the defaults.
fn limits(list: &str) -> Limits {
    let mut l = Limits::default();
    for item in list.split(", ") {
        let (name, value) = item.split_once('=').expect("name=value");
        let value: usize = value.parse().expect("a number");
        l = match name {
            "max_document_bytes" => l.with_max_document_bytes(value),
            "max_string_bytes" => l.with_max_string_bytes(value),
            "max_steps" => l.with_max_steps(value),
            "max_branches" => l.with_max_branches(value),
            "max_nesting" => l.with_max_nesting(value),
            "max_rules" => l.with_max_rules(value),
            "max_payload_bytes" => l.with_max_payload_bytes(value),
            "max_order_bytes" => l.with_max_order_bytes(value),
            other => panic!("unknown limit {other}"),
        };
    }
    l
}

fn dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind)
}

/// The input of a case as bytes: the file itself, or its recipe expanded.
fn input(kind: &str, file: &str) -> Vec<u8> {
    let bytes = std::fs::read(dir(kind).join(file)).expect("the case file exists");
    if file.ends_with(".recipe") {
        expand(std::str::from_utf8(&bytes).expect("a recipe is text")).into_bytes()
    } else {
        bytes
    }
}

/// Expands a recipe: `{"comment": "...", "parts": [...]}` where each part is a literal
/// string, `{"repeat": n, "text": "...{i}...", "sep": ","}` (the text `n` times, `{i}` the
/// index, separated by `sep`), or `{"pad_to": n, "fill": " "}` (the fill until the output
/// is `n` bytes long).
fn expand(recipe: &str) -> String {
    let recipe: serde_json::Value = serde_json::from_str(recipe).expect("a recipe is JSON");
    let mut out = String::new();
    for part in recipe["parts"].as_array().expect("recipe parts") {
        match part {
            serde_json::Value::String(s) => out.push_str(s),
            serde_json::Value::Object(o) if o.contains_key("repeat") => {
                let n = o["repeat"].as_u64().expect("repeat count");
                let text = o["text"].as_str().expect("repeat text");
                let sep = o.get("sep").and_then(|s| s.as_str()).unwrap_or("");
                let indexed = text.contains("{i}");
                for i in 0..n {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    if indexed {
                        out.push_str(&text.replace("{i}", &i.to_string()));
                    } else {
                        out.push_str(text);
                    }
                }
            }
            serde_json::Value::Object(o) if o.contains_key("pad_to") => {
                let n = o["pad_to"].as_u64().expect("pad_to") as usize;
                let fill = o["fill"].as_str().expect("fill");
                while out.len() < n {
                    out.push_str(fill);
                }
            }
            other => panic!("unknown recipe part {other}"),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

/// Why a case was rejected.
enum Failure {
    /// The bytes are not UTF-8 (`std::str::from_utf8`), before the library is reached.
    Utf8(std::str::Utf8Error),
    /// The library's error.
    Api(Error),
}

/// What a case did: the stage reached and its result.
struct Outcome {
    stage: &'static str,
    result: Result<(), Failure>,
}

impl Outcome {
    fn at(stage: &'static str, failure: Failure) -> Self {
        Self {
            stage,
            result: Err(failure),
        }
    }
}

/// `(ErrorKind, variant, detail)` of an outcome, the detail in a canonical form: problem
/// kinds by their `Debug`, limits by name, value, what was found and where, messages as they
/// are.
fn describe(outcome: &Outcome) -> (String, String, String) {
    let failure = match &outcome.result {
        Ok(()) => return ("-".into(), "Ok".into(), String::new()),
        Err(f) => f,
    };
    let (kind, variant, detail) = match failure {
        Failure::Utf8(e) => ("-".into(), "Utf8", e.to_string()),
        Failure::Api(e) => {
            let kind = format!("{:?}", e.kind());
            let (variant, detail) = match e {
                Error::Document {
                    what,
                    line: 0,
                    message,
                    ..
                } => ("Document", format!("{what}: {message}")),
                Error::Document {
                    what,
                    line,
                    column,
                    message,
                } => (
                    "Document",
                    format!("{what}: {message} (line {line}, column {column})"),
                ),
                Error::Validation(v) => (
                    "Validation",
                    v.problems
                        .iter()
                        .map(|p| format!("{:?} at {}", p.kind, p.path))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Error::Policy(p) => (
                    "Policy",
                    p.problems
                        .iter()
                        .map(|p| {
                            let mut s = format!("{:?}", p.kind);
                            if let Some(rule) = &p.rule {
                                let _ = write!(s, " rule={}", short(rule));
                            }
                            if let Some(field) = &p.field {
                                let _ = write!(s, " field={}", short(field));
                            }
                            s
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                Error::Limit(l) => (
                    "Limit",
                    format!(
                        "{}, what={}, max={}, found={}, at={}",
                        l.limit,
                        l.what,
                        l.max,
                        l.found,
                        short(&l.place)
                    ),
                ),
                Error::InvalidEvent(m) => ("InvalidEvent", m.clone()),
                Error::UnknownOrder(o) => ("UnknownOrder", o.to_string()),
                other => ("Other", format!("{other:?}")),
            };
            (kind, variant, detail)
        }
    };
    (kind, variant.to_owned(), detail)
}

/// Long names and places cut for the table.
fn short(s: &str) -> String {
    if s.chars().count() <= 60 {
        return s.to_owned();
    }
    let head: String = s.chars().take(40).collect();
    format!("{head}…({} bytes)", s.len())
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A flow: parse within the case's limits, `validate`, then `create_flow` and `publish` on a
/// fresh engine with the default limits (built inside the measured part: ~80 KiB). The first
/// stage to fail is the outcome.
fn run_flow(bytes: &[u8], limits: &Limits) -> Outcome {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Outcome::at("utf8", Failure::Utf8(e)),
    };
    let flow = match Flow::from_json_with(text, limits) {
        Ok(f) => f,
        Err(e) => return Outcome::at("parse", Failure::Api(e)),
    };
    if let Err(e) = validate(&flow) {
        return Outcome::at("validate", Failure::Api(Error::Validation(e)));
    }
    runtime().block_on(async {
        let engine = Engine::builder().build().await.expect("an engine");
        let name = flow.name.clone();
        if let Err(e) = engine.create_flow(flow).await {
            return Outcome::at("create_flow", Failure::Api(e));
        }
        match engine.publish(&name).await {
            Ok(_) => Outcome {
                stage: "publish",
                result: Ok(()),
            },
            Err(e) => Outcome::at("publish", Failure::Api(e)),
        }
    })
}

/// A policy: parse within the case's limits, `compile`, then `create_policy` and
/// `publish_policy` on a fresh engine with the default limits.
fn run_policy(bytes: &[u8], limits: &Limits) -> Outcome {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Outcome::at("utf8", Failure::Utf8(e)),
    };
    let doc = match PolicyDocument::from_json_with(text, limits) {
        Ok(d) => d,
        Err(e) => return Outcome::at("parse", Failure::Api(e)),
    };
    if let Err(e) = doc.compile() {
        return Outcome::at("compile", Failure::Api(Error::Policy(e)));
    }
    runtime().block_on(async {
        let engine = Engine::builder().build().await.expect("an engine");
        let name = doc.name.clone();
        if let Err(e) = engine.create_policy(doc).await {
            return Outcome::at("create_policy", Failure::Api(e));
        }
        match engine.publish_policy(&name).await {
            Ok(_) => Outcome {
                stage: "publish_policy",
                result: Ok(()),
            },
            Err(e) => Outcome::at("publish_policy", Failure::Api(e)),
        }
    })
}

/// An engine with the memory store and one published flow ("Trivial": a custom action
/// started by "New Order"), built before the measured part of an event case.
fn event_engine(rt: &tokio::runtime::Runtime, limits: Limits) -> Engine {
    rt.block_on(async {
        let engine = Engine::builder()
            .config(orderflow::Config::default().with_limits(limits))
            .action("ok", action_fn(|_| Box::pin(async { Ok(()) })))
            .build()
            .await
            .expect("an engine");
        let flow = Flow::builder("Trivial")
            .steps(|s| s.action(ActionStep::custom("Ok", "ok").input_event(EventKind::NEW_ORDER)))
            .build()
            .expect("a valid flow");
        engine.create_flow(flow).await.expect("created");
        engine.publish("Trivial").await.expect("published");
        engine
    })
}

/// An event: `Event::from_json` (bounded: size, strings, payload and document), then
/// `Engine::submit`.
fn run_event(bytes: &[u8], rt: &tokio::runtime::Runtime, engine: &Engine) -> Outcome {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => return Outcome::at("utf8", Failure::Utf8(e)),
    };
    let event = match Event::from_json(text) {
        Ok(e) => e,
        Err(e) => return Outcome::at("parse", Failure::Api(e)),
    };
    match rt.block_on(engine.submit(event)) {
        Ok(_) => Outcome {
            stage: "submit",
            result: Ok(()),
        },
        Err(e) => Outcome::at("submit", Failure::Api(e)),
    }
}

/// One row of the report.
struct Row {
    file: String,
    error: String,
    time: Duration,
    peak: u64,
    ignored: bool,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs every case of a kind, prints its table, and fails naming every case that panicked,
/// gave another error, or went over [`PEAK_LIMIT`] (cases marked `ignore` are only reported).
fn run_corpus(
    kind: &str,
    run: impl for<'a> Fn(&'a Case, &'a [u8]) -> Box<dyn FnOnce() -> Outcome + 'a>,
) {
    let cases = index(kind);
    check_index(kind, &cases);
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = input(kind, &case.file);
        let prepared = run(case, &bytes);
        let mut outcome = None;
        let started = Instant::now();
        let info = allocation_counter::measure(|| {
            outcome = Some(catch_unwind(AssertUnwindSafe(prepared)));
        });
        let time = started.elapsed();
        drop(bytes);
        let (ok, shown) = match outcome.expect("the case ran") {
            Err(payload) => (
                false,
                format!("PANIC at some stage: {}", panic_message(&*payload)),
            ),
            Ok(outcome) => {
                let (got_kind, got_variant, got_detail) = describe(&outcome);
                let ok = outcome.stage == case.stage
                    && got_kind == case.kind
                    && got_variant == case.variant
                    && got_detail.contains(&case.detail);
                (
                    ok,
                    format!(
                        "{} | {got_kind} | {got_variant}({got_detail})",
                        outcome.stage
                    ),
                )
            }
        };
        let peak = info.bytes_max;
        let mut problems = Vec::new();
        if !ok {
            problems.push(format!(
                "expected `{} | {} | {}({})`, got `{shown}`",
                case.stage, case.kind, case.variant, case.detail
            ));
        }
        if peak >= PEAK_LIMIT {
            problems.push(format!(
                "peak heap {} KiB is over {} KiB",
                peak >> 10,
                PEAK_LIMIT >> 10
            ));
        }
        match (&case.ignore, problems.is_empty()) {
            (Some(why), false) => {
                println!(
                    "IGNORED {kind}/{}: {} (known library bug: {why})",
                    case.file,
                    problems.join("; ")
                );
            }
            (Some(why), true) => {
                println!(
                    "NOTE {kind}/{}: marked ignore ({why}) but now passes",
                    case.file
                );
            }
            (None, false) => {
                failures.push(format!("{kind}/{}: {}", case.file, problems.join("; ")))
            }
            (None, true) => {}
        }
        rows.push(Row {
            file: case.file.clone(),
            error: shown,
            time,
            peak,
            ignored: case.ignore.is_some(),
        });
    }
    report(kind, &rows);
    assert!(
        failures.is_empty(),
        "{} of {} {kind} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every file of the kind's directory has one line in the index and every line a file.
fn check_index(kind: &str, cases: &[Case]) {
    let mut files: Vec<String> = std::fs::read_dir(dir(kind))
        .expect("the corpus directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|f| f != "expected.txt")
        .collect();
    files.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.file.clone()).collect();
    listed.sort();
    let before = listed.len();
    listed.dedup();
    assert_eq!(before, listed.len(), "{kind}: a file is listed twice");
    assert_eq!(files, listed, "{kind}: the index and the files differ");
    assert!(
        cases.len() >= MIN_CASES,
        "{kind}: {} cases, fewer than {MIN_CASES}",
        cases.len()
    );
}

fn report(kind: &str, rows: &[Row]) {
    let width = rows.iter().map(|r| r.file.len()).max().unwrap_or(4);
    println!("\n{kind} corpus: {} cases", rows.len());
    println!("{:width$}  {:>9}  {:>10}  error", "case", "ms", "peak KiB");
    for r in rows {
        let mut error: String = r.error.chars().take(150).collect();
        if r.ignored {
            error.insert_str(0, "[ignored] ");
        }
        println!(
            "{:width$}  {:>9.3}  {:>10}  {error}",
            r.file,
            r.time.as_secs_f64() * 1e3,
            r.peak >> 10,
        );
    }
    let slow = rows.iter().max_by_key(|r| r.time).expect("cases");
    // The largest peak among the cases whose peak is asserted (ignored cases may exceed it).
    let big = rows
        .iter()
        .filter(|r| !r.ignored)
        .max_by_key(|r| r.peak)
        .expect("cases");
    let ignored = rows.iter().filter(|r| r.ignored).count();
    let summary = format!(
        "{kind} corpus: {} cases ({ignored} ignored); slowest {} ({:.3} ms); largest asserted \
         peak heap {} ({} KiB)",
        rows.len(),
        slow.file,
        slow.time.as_secs_f64() * 1e3,
        big.file,
        big.peak >> 10
    );
    println!("{summary}");
    // Also straight to stderr, which the test harness does not capture, so the summary shows
    // without `--nocapture` (the table shows with it, or when the test fails).
    let _ = writeln!(std::io::stderr(), "{summary}");
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn the_counter_counts() {
    // Guards against a vacuous pass: the allocator must be the counting one.
    let info = allocation_counter::measure(|| drop(std::hint::black_box(vec![1u8; 4096])));
    assert!(info.bytes_max >= 4096);
}

#[test]
fn recipes_expand() {
    let out = expand(
        r#"{"parts": ["[", {"repeat": 3, "text": "{i}", "sep": ","}, "]", {"pad_to": 10, "fill": " "}]}"#,
    );
    assert_eq!(out, "[0,1,2]   ");
}

#[test]
fn bad_flows() {
    run_corpus("flow", |case, bytes| {
        let limits = case.limits;
        Box::new(move || run_flow(bytes, &limits))
    });
}

#[test]
fn bad_policies() {
    run_corpus("policy", |case, bytes| {
        let limits = case.limits;
        Box::new(move || run_policy(bytes, &limits))
    });
}

#[test]
fn bad_events() {
    run_corpus("event", |case, bytes| {
        // The engine is built before the measured part; its limits are the case's.
        let rt = runtime();
        let engine = event_engine(&rt, case.limits);
        Box::new(move || run_event(bytes, &rt, &engine))
    });
}
