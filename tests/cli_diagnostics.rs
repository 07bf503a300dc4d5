//! The `orderflow` tool's diagnostics end to end: rustc's form on standard error (the exact
//! snippet for a syntax error and a reference error), colour and `NO_COLOR`, the JSON
//! document of `validate --format json`; policies and names declared to live in code,
//! `--allow-unknown`, several versions of one flow; completions and the man page.

#![cfg(feature = "cli")]

use std::path::Path;

use assert_cmd::Command;

const SAMPLE_FLOW: &str = "examples/flows/test-order-flow-sample.json";
const SAMPLE_DECLARATIONS: &str = "examples/flows/test-order-flow-sample.declarations.json";
const LAB_FLOW: &str = "examples/reference-lab/flow.json";
const LAB_POLICIES: &str = "examples/reference-lab/policies.json";

/// The tool, run in `dir` (so file names in its messages are short and stable), with no
/// colour asked for by the environment.
fn orderflow_in(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("orderflow").unwrap();
    cmd.current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("ORDERFLOW_PG_URL");
    cmd
}

fn orderflow() -> Command {
    orderflow_in(Path::new(env!("CARGO_MANIFEST_DIR")))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

const UNKNOWN_POLICY_FLOW: &str = r#"{
  "name": "Intake",
  "steps": [
    {
      "action": {
        "name": "Validate",
        "kind": "validate_order_header",
        "input_events": ["New Order"],
        "execution_policies": ["Ship-to US"]
      }
    }
  ]
}
"#;

#[test]
fn a_syntax_error_is_one_snippet_on_stderr_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        "{\n  \"name\": \"Bad\",\n  \"steps\": [ }\n",
    )
    .unwrap();
    let out = orderflow_in(dir.path())
        .args(["validate", "broken.json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty(), "diagnostics go to stderr");
    assert_eq!(
        text(&out.stderr),
        "error[syntax]: expected value
 --> broken.json:3:14
  |
3 |   \"steps\": [ }
  |              ^

"
    );
}

#[test]
fn a_reference_error_points_at_the_name_and_says_how_to_declare_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("intake.json"), UNKNOWN_POLICY_FLOW).unwrap();
    let out = orderflow_in(dir.path())
        .args(["validate", "intake.json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(out.stdout.is_empty());
    assert_eq!(
        text(&out.stderr),
        "error[unknown-policy]: policy 'Ship-to US' is not defined
 --> intake.json:9:32
  |
9 |         \"execution_policies\": [\"Ship-to US\"]
  |                                ^^^^^^^^^^^^ no policy file given defines it, and no --policy declares it
  |
  = note: flow 'Intake', step Validate
  = help: if it lives in code, declare it: --policy 'Ship-to US:execution:ENTITY' (ENTITY: order, order_line, fulfillment_order, fulfillment_order_line)

"
    );
    // Declared as the help says, the flow is valid.
    let out = orderflow_in(dir.path())
        .args([
            "validate",
            "intake.json",
            "--policy",
            "Ship-to US:execution:order",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(
        text(&out.stdout),
        "intake.json: ok (flow 'Intake' version 1.0.0)\n"
    );
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("intake.json"), UNKNOWN_POLICY_FLOW).unwrap();
    let stderr = |color: Option<&str>, no_color: bool| {
        let mut cmd = orderflow_in(dir.path());
        cmd.args(["validate", "intake.json"]);
        if let Some(c) = color {
            cmd.args(["--color", c]);
        }
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        text(&cmd.assert().code(1).get_output().stderr)
    };
    let escape = "\u{1b}[";
    // Into a pipe, auto means none.
    assert!(!stderr(None, false).contains(escape));
    assert!(!stderr(Some("never"), false).contains(escape));
    let coloured = stderr(Some("always"), false);
    assert!(coloured.contains(escape), "{coloured}");
    // The error's title in bold bright red, as rustc prints it.
    assert!(
        coloured.starts_with("\u{1b}[1m\u{1b}[91merror[unknown-policy]"),
        "{coloured:?}"
    );
    // NO_COLOR keeps auto plain; an explicit --color always still colours.
    assert!(!stderr(Some("auto"), true).contains(escape));
    assert!(stderr(Some("always"), true).contains(escape));
}

#[test]
fn validate_format_json_prints_every_diagnostic_in_one_document() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("intake.json"), UNKNOWN_POLICY_FLOW).unwrap();
    std::fs::write(dir.path().join("broken.json"), "{\n  \"steps\": [ }\n").unwrap();
    let out = orderflow_in(dir.path())
        .args(["validate", "--format", "json", "intake.json", "broken.json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(
        out.stderr.is_empty(),
        "JSON replaces the text: {}",
        text(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"], 2);
    assert_eq!(doc["warnings"], 0);
    let diagnostics = doc["diagnostics"].as_array().unwrap();
    assert_eq!(diagnostics.len(), 2);
    let syntax = &diagnostics[0];
    assert_eq!(
        syntax,
        &serde_json::json!({
            "severity": "error",
            "code": "syntax",
            "message": "expected value",
            "file": "broken.json",
            "line": 2,
            "column": 14,
            "span": { "start": 15, "end": 16 },
            "json_path": null,
            "label": null,
            "notes": [],
        })
    );
    let reference = &diagnostics[1];
    let start = UNKNOWN_POLICY_FLOW.find("\"Ship-to US\"").unwrap();
    assert_eq!(
        reference,
        &serde_json::json!({
            "severity": "error",
            "code": "unknown-policy",
            "message": "policy 'Ship-to US' is not defined",
            "file": "intake.json",
            "line": 9,
            "column": 32,
            "span": { "start": start, "end": start + "\"Ship-to US\"".len() },
            "json_path": "$['steps'][0]['action']['execution_policies'][0]",
            "label": "no policy file given defines it, and no --policy declares it",
            "notes": [
                "note: flow 'Intake', step Validate",
                "help: if it lives in code, declare it: --policy 'Ship-to US:execution:ENTITY' \
                 (ENTITY: order, order_line, fulfillment_order, fulfillment_order_line)",
            ],
        })
    );
    assert_eq!(
        doc["files"],
        serde_json::json!([
            { "file": "broken.json", "valid": false },
            { "file": "intake.json", "kind": "flow", "flow": "Intake", "version": "1.0.0", "valid": false },
        ])
    );
}

#[test]
fn the_readme_sample_flow_validates_with_its_declarations() {
    // Its policies live in code (examples/quickstart.rs): unknown to a bare check.
    let out = orderflow()
        .args(["validate", SAMPLE_FLOW])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(
        text(&out.stderr).matches("error[unknown-policy]").count(),
        4
    );
    let out = orderflow()
        .args([
            "validate",
            SAMPLE_FLOW,
            "--declarations",
            SAMPLE_DECLARATIONS,
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(text(&out.stdout).contains("ok (flow 'Test Order flow sample' version 1.0.0)"));
    // The same on the command line.
    orderflow()
        .args([
            "validate",
            SAMPLE_FLOW,
            "--policy",
            "Filter Policy – BigCommerce:filter:order",
            "--policy",
            "Filter Policy – Orderful:filter:order",
            "--policy",
            "Order header Validation Policy:execution:order",
        ])
        .assert()
        .success();
}

#[test]
fn allow_unknown_turns_each_unknown_name_into_one_warning() {
    let out = orderflow()
        .args(["validate", SAMPLE_FLOW, "--allow-unknown"])
        .assert()
        .success()
        .get_output()
        .clone();
    let err = text(&out.stderr);
    assert!(!err.contains("error"), "{err}");
    // Three names, one used twice: three warnings.
    assert_eq!(err.matches("warning[unknown-policy]").count(), 3, "{err}");
    assert!(
        err.contains("policy 'Order header Validation Policy' is not defined; assumed to exist"),
        "{err}"
    );
    assert!(err.contains("used 2 times in the files given"), "{err}");
    // Warnings fail under --strict.
    orderflow()
        .args(["validate", SAMPLE_FLOW, "--allow-unknown", "--strict"])
        .assert()
        .code(1);
}

#[test]
fn declared_providers_are_checked_and_unknown_ones_located() {
    let dir = tempfile::tempdir().unwrap();
    let flow = r#"{
  "name": "Ship",
  "steps": [
    { "action": { "name": "Validate", "kind": "validate_order_header", "input_events": ["New Order"] } },
    { "action": { "name": "Determine", "kind": "send_to_dom", "provider": "Contoso DOM" } }
  ]
}
"#;
    std::fs::write(dir.path().join("ship.json"), flow).unwrap();
    std::fs::write(
        dir.path().join("host.json"),
        r#"{ "providers": ["Fabrikam DOM"], "external_events": ["Shipped"] }"#,
    )
    .unwrap();
    let out = orderflow_in(dir.path())
        .args(["validate", "ship.json", "--declarations", "host.json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = text(&out.stderr);
    assert!(
        err.starts_with(
            "error[unknown-provider]: provider 'Contoso DOM' is not declared\n --> ship.json:5:75\n"
        ),
        "{err}"
    );
    // No provider declared: every one named is assumed.
    orderflow_in(dir.path())
        .args(["validate", "ship.json"])
        .assert()
        .success();
    orderflow_in(dir.path())
        .args(["validate", "ship.json", "--provider", "Contoso DOM"])
        .assert()
        .success();
    // A declarations file that is not one: at its place, with what it should hold.
    std::fs::write(dir.path().join("bad.json"), r#"{ "polices": [] }"#).unwrap();
    let out = orderflow_in(dir.path())
        .args(["validate", "ship.json", "--declarations", "bad.json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error[invalid-declarations]: unknown field `polices`"),
        "{err}"
    );
    assert!(err.contains("--> bad.json:1:"), "{err}");
    // A malformed --policy is a usage error, with the form it takes.
    let out = orderflow()
        .args([
            "validate",
            SAMPLE_FLOW,
            "--policy",
            "Ship-to US:check:order",
        ])
        .assert()
        .code(2)
        .get_output()
        .clone();
    assert!(
        text(&out.stderr).contains("'check' is not a policy type: use filter or execution"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_duplicate_step_name_points_at_the_second_step() {
    let dir = tempfile::tempdir().unwrap();
    let flow = r#"{
  "name": "Twice",
  "steps": [
    { "action": { "name": "Check", "kind": "validate_order_header", "input_events": ["New Order"] } },
    { "action": { "name": "Check", "kind": "validate_order_line" } }
  ]
}
"#;
    std::fs::write(dir.path().join("twice.json"), flow).unwrap();
    let out = orderflow_in(dir.path())
        .args(["validate", "--format", "json", "twice.json"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &doc["diagnostics"][0];
    assert_eq!(d["code"], "duplicate-step-name");
    assert_eq!(d["line"], 5);
    assert_eq!(d["json_path"], "$['steps'][1]['action']['name']");
}

#[test]
fn several_versions_of_one_flow_are_each_checked() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = std::fs::read_to_string(LAB_FLOW).unwrap();
    assert!(v1.contains("\"version\": \"1.0.0\""));
    let v2 = v1.replace("\"version\": \"1.0.0\"", "\"version\": \"1.1.0\"");
    // A third version refers to a policy nothing defines: it alone is invalid.
    let v3 = v2
        .replace("\"version\": \"1.1.0\"", "\"version\": \"2.0.0\"")
        .replacen("\"Ship-to US\"", "\"Ship-to EU\"", 1);
    for (name, text) in [("v1.json", &v1), ("v2.json", &v2), ("v3.json", &v3)] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join(LAB_POLICIES);
    let out = orderflow_in(dir.path())
        .args(["validate", "v1.json", "v2.json", "v3.json"])
        .arg(&policies)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("v1.json: ok (flow 'Reference lab' version 1.0.0)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("v2.json: ok (flow 'Reference lab' version 1.1.0)"),
        "{stdout}"
    );
    assert!(!stdout.contains("v3.json: ok"), "{stdout}");
    let err = text(&out.stderr);
    assert!(!err.contains("already exists"), "{err}");
    assert!(
        err.contains("policy 'Ship-to EU' is not defined\n  --> v3.json:12:32\n"),
        "{err}"
    );
}

#[test]
fn render_of_a_policy_file_says_it_is_not_a_flow() {
    let out = orderflow()
        .args(["render", LAB_POLICIES])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert_eq!(
        text(&out.stderr),
        format!(
            "error[not-a-flow]: {LAB_POLICIES}: this file holds policies, not a flow\n  |\n  \
             = help: give a flow file (one with \"steps\"); `orderflow validate` checks policy files\n\n"
        )
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_commands() {
    for (shell, marker) in [
        ("bash", "complete -F _orderflow"),
        ("zsh", "#compdef orderflow"),
        ("fish", "complete -c orderflow"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[orderflow]"),
    ] {
        let out = orderflow()
            .args(["completions", shell])
            .assert()
            .success()
            .get_output()
            .clone();
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["validate", "simulate", "journey", "allow-unknown"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    orderflow().args(["completions", "tcsh"]).assert().code(2);
    let out = orderflow()
        .arg("man")
        .assert()
        .success()
        .get_output()
        .clone();
    let page = text(&out.stdout);
    assert!(page.contains(".TH orderflow 1"), "{page}");
    assert!(page.contains(".SH NAME"), "{page}");
    assert!(
        page.contains("validate") && page.contains("journey"),
        "{page}"
    );
}

#[test]
fn a_policy_defined_twice_is_an_error_at_the_second_definition() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join(LAB_POLICIES), dir.path().join("copy.json")).unwrap();
    let out = orderflow_in(dir.path())
        .args(["validate", "--format", "json"])
        .arg(root.join(LAB_FLOW))
        .arg(root.join(LAB_POLICIES))
        .arg("copy.json")
        .args(["--policy", "Ship-to US:execution:order"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let duplicates: Vec<&serde_json::Value> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "duplicate-policy")
        .collect();
    // Five in the copy, and 'Ship-to US' in the first file too (declared before it).
    assert_eq!(duplicates.len(), 6, "{doc:#}");
    let first = duplicates[0];
    assert_eq!(first["message"], "policy 'Ship-to US' is defined twice");
    assert_eq!(
        first["notes"][0],
        "note: first declared with --policy or in a declarations file"
    );
    assert_eq!(first["json_path"], "$[0]['name']");
    let copied = duplicates[2];
    assert_eq!(copied["file"], "copy.json");
    assert_eq!(
        copied["notes"][0],
        format!(
            "note: first defined in {}",
            root.join(LAB_POLICIES).display()
        )
    );
}
