//! Rendering flows and journeys as Mermaid and Graphviz DOT: every element, hostile names,
//! journeys of the reference lab, and the stable chart of the quickstart flow.
//!
//! Every chart rendered here also passes a structural check of its own, and goes through
//! `dot -Tsvg` when Graphviz is installed. Set `ORDERFLOW_RENDER_DUMP` to a directory to have
//! each chart written there (e.g. to check the Mermaid ones with mermaid-cli).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use orderflow::document::{Order, OrderLine};
use orderflow::flow::{ActionStep, Flow, RetryPolicy, SequenceBuilder};
use orderflow::render;
use orderflow::rules::PolicyDocument;
use orderflow::{
    ActionKind, Engine, Event, EventKind, Journey, MemoryProvider, MemoryStore, Outcome,
};

const QUICKSTART: &str = include_str!("../examples/flows/test-order-flow-sample.json");
const LAB_FLOW: &str = include_str!("../examples/reference-lab/flow.json");
const LAB_POLICIES: &str = include_str!("../examples/reference-lab/policies.json");

// ---------------------------------------------------------------------------------------------
// Checks every rendered chart goes through.

/// Whether a Mermaid node id is one the renderer makes: ASCII letters, digits, `_`.
fn is_id(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether escaped label text is safe: no quote, no raw newline, no markup but `<br>`.
fn is_label(s: &str) -> bool {
    let without_breaks = s.replace("<br>", "");
    !without_breaks.contains(['"', '<', '>', '\n', '\r', '`', '|'])
        && without_breaks.split('#').skip(1).all(|entity| {
            entity
                .split_once(';')
                .is_some_and(|(name, _)| is_entity(name))
        })
}

/// A Mermaid `#…;` entity name: a decimal code or a lower-case HTML name.
fn is_entity(name: &str) -> bool {
    !name.is_empty()
        && (name.chars().all(|c| c.is_ascii_digit())
            || name.chars().all(|c| c.is_ascii_lowercase()))
}

/// Strips a quoted label off the front of `s`: `"…"` then the rest.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let body = s.strip_prefix('"')?;
    let end = body.find('"')?;
    Some((&body[..end], &body[end + 1..]))
}

/// A node statement: `id` + shape opening + `"label"` + the matching closing.
fn node_statement(line: &str) -> Option<(&str, &str)> {
    const SHAPES: [(&str, &str); 5] = [
        ("([", "])"),
        ("{{", "}}"),
        ("[\\", "/]"),
        ("[", "]"),
        ("{", "}"),
    ];
    let split = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
    let (id, rest) = line.split_at(split);
    for (open, close) in SHAPES {
        if let Some(inner) = rest.strip_prefix(open) {
            let (label, tail) = quoted(inner)?;
            return (tail == close && is_id(id) && is_label(label)).then_some((id, label));
        }
    }
    None
}

/// An edge statement: `from --> to`, `from ==> to`, optionally with `|"label"|`.
fn edge_statement(line: &str) -> Option<(&str, &str, Option<&str>)> {
    let (from, rest) = line.split_once(' ')?;
    let rest = rest
        .strip_prefix("-->")
        .or_else(|| rest.strip_prefix("==>"))?;
    let (label, rest) = match rest.strip_prefix('|') {
        Some(labelled) => {
            let (label, tail) = quoted(labelled)?;
            (Some(label), tail.strip_prefix('|')?)
        }
        None => (None, rest),
    };
    let to = rest.strip_prefix(' ')?;
    (is_id(from) && is_id(to) && label.is_none_or(is_label)).then_some((from, to, label))
}

/// Checks a Mermaid chart line by line; returns its node ids and edges.
fn check_mermaid(chart: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut lines = chart.lines();
    assert_eq!(lines.next(), Some("flowchart TD"), "{chart}");
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for line in lines {
        let statement = line
            .strip_prefix("    ")
            .unwrap_or_else(|| panic!("unindented line {line:?} in\n{chart}"));
        if let Some((id, _)) = node_statement(statement) {
            assert!(edges.is_empty(), "node {id} after the edges in\n{chart}");
            nodes.push(id.to_owned());
        } else if let Some((from, to, _)) = edge_statement(statement) {
            edges.push((from.to_owned(), to.to_owned()));
        } else if let Some(def) = statement.strip_prefix("classDef ") {
            let (class, style) = def.split_once(' ').unwrap();
            assert!(is_id(class) && !style.contains(['"', ';']), "{line:?}");
        } else if let Some(class) = statement.strip_prefix("class ") {
            let (ids, class) = class.split_once(' ').unwrap();
            assert!(is_id(class), "{line:?}");
            for id in ids.split(',') {
                assert!(nodes.iter().any(|n| n == id), "class of unknown {id}");
            }
        } else if let Some(style) = statement.strip_prefix("linkStyle ") {
            let (indices, _) = style.split_once(' ').unwrap();
            for i in indices.split(',') {
                assert!(i.parse::<usize>().unwrap() < edges.len(), "{line:?}");
            }
        } else {
            panic!("line {line:?} is no statement, in\n{chart}");
        }
    }
    for (i, id) in nodes.iter().enumerate() {
        assert!(!nodes[..i].contains(id), "node {id} declared twice");
    }
    for (from, to) in &edges {
        assert!(nodes.contains(from) && nodes.contains(to), "{from} -> {to}");
    }
    (nodes, edges)
}

/// Checks every statement of a DOT graph ends outside a string, with a `;`.
fn check_dot(graph: &str) {
    let mut lines = graph.lines();
    assert!(lines.next().unwrap().starts_with("digraph \""), "{graph}");
    assert!(graph.ends_with("}\n"), "{graph}");
    for line in lines.filter(|l| *l != "}") {
        let mut in_string = false;
        let mut escaped = false;
        for c in line.chars() {
            match (in_string, escaped, c) {
                (true, true, _) => escaped = false,
                (true, false, '\\') => escaped = true,
                (_, false, '"') => in_string = !in_string,
                _ => {}
            }
        }
        assert!(!in_string && line.ends_with(';'), "bad DOT line {line:?}");
    }
}

fn graphviz() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let found = Command::new("which")
            .arg("dot")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            // CI sets this, so the parse check can never be skipped there.
            assert!(
                std::env::var_os("ORDERFLOW_REQUIRE_DOT").is_none(),
                "ORDERFLOW_REQUIRE_DOT is set but Graphviz `dot` is not installed"
            );
            eprintln!("notice: Graphviz `dot` not found; skipping the `dot -Tsvg` checks");
        }
        found
    })
}

/// Runs `dot -Tsvg` on a graph when Graphviz is installed.
fn check_with_graphviz(name: &str, graph: &str) {
    if !graphviz() {
        return;
    }
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(graph.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "dot rejected {name}: {stderr}\n{graph}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

fn dump(name: &str, ext: &str, text: &str) {
    if let Some(dir) = std::env::var_os("ORDERFLOW_RENDER_DUMP") {
        std::fs::write(
            std::path::Path::new(&dir).join(format!("{name}.{ext}")),
            text,
        )
        .unwrap();
    }
}

/// Both renderings of a flow, checked.
fn render(name: &str, flow: &Flow) -> (String, String) {
    let (chart, graph) = (render::mermaid(flow), render::dot(flow));
    check_mermaid(&chart);
    check_dot(&graph);
    check_with_graphviz(name, &graph);
    dump(name, "mmd", &chart);
    dump(name, "dot", &graph);
    (chart, graph)
}

/// Both renderings of a journey, checked.
fn render_journey(name: &str, flow: &Flow, journey: &Journey) -> (String, String) {
    let (chart, graph) = (
        render::journey_mermaid(flow, journey),
        render::journey_dot(flow, journey),
    );
    check_mermaid(&chart);
    check_dot(&graph);
    check_with_graphviz(name, &graph);
    dump(name, "mmd", &chart);
    dump(name, "dot", &graph);
    (chart, graph)
}

#[track_caller]
fn contains_all(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "missing {part:?} in\n{text}");
    }
}

#[track_caller]
fn contains_none(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(!text.contains(part), "unexpected {part:?} in\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Flows.

fn flow(f: impl FnOnce(SequenceBuilder) -> SequenceBuilder) -> Flow {
    Flow::builder("Test").steps(f).build().unwrap()
}

fn entry(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER)
}

fn act(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderLine)
}

fn filtered(name: &str, filter: &str) -> ActionStep {
    act(name).filter(filter)
}

#[test]
fn an_action_shows_every_field() {
    let step = ActionStep::new("Ship it", ActionKind::SendToFulfillment)
        .input_event(EventKind::NEW_ORDER)
        .input_event(EventKind::from("Order approved"))
        .filter("Big orders")
        .execution_policy("Ship-to US")
        .execution_policy("Quantity at least 5")
        .provider("Seattle 3PL")
        .retry(RetryPolicy::new(4, Duration::from_millis(250)))
        .timeout(Duration::from_millis(5_000))
        .on_failure(EventKind::from("Shipping failed"));
    let flow = flow(|s| s.action(step));
    let (chart, graph) = render("action", &flow);
    let lines = [
        "Ship it",
        "Send to Fulfillment",
        "Input events: New Order, Order approved",
        "Filter: Big orders",
        "Policies: Ship-to US, Quantity at least 5",
        "Provider: Seattle 3PL",
        "Retry: 4 attempts, 250 ms backoff",
        "Timeout: 5000 ms",
        "On failure: Shipping failed",
    ];
    contains_all(
        &chart,
        &[
            &format!("    s0[\"{}\"]\n", lines.join("<br>")),
            "    start([\"Start\"])\n",
            "    stop([\"End\"])\n",
            "    start --> s0\n",
            "    s0 --> stop\n",
        ],
    );
    contains_all(
        &graph,
        &[
            &format!(
                "    s0 [label=\"{}\", shape=box, style=\"rounded\"];\n",
                lines.join("\\n")
            ),
            "    start [label=\"Start\", shape=oval];\n",
            "    stop [label=\"End\", shape=oval];\n",
            "    start -> s0;\n",
            "    s0 -> stop;\n",
            "label=\"Test v1.0.0\";",
        ],
    );
}

#[test]
fn a_custom_action_names_its_registered_action() {
    let flow = flow(|s| {
        s.action(ActionStep::custom("Notify", "send-email").input_event(EventKind::NEW_ORDER))
    });
    let (chart, graph) = render("custom", &flow);
    contains_all(
        &chart,
        &["s0[\"Notify<br>Custom: send-email<br>Input events: New Order\"]"],
    );
    contains_all(
        &graph,
        &["label=\"Notify\\nCustom: send-email\\nInput events: New Order\""],
    );
}

#[test]
fn a_condition_is_a_decision_with_yes_and_no_paths_that_end_apart() {
    let flow = flow(|s| {
        s.action(entry("Check")).condition(
            "Valid?",
            |yes| yes.action(act("Go on")),
            |no| no.action(act("Report")),
        )
    });
    let (chart, graph) = render("condition", &flow);
    contains_all(
        &chart,
        &[
            "    s1{\"Valid?<br>Condition\"}\n",
            "    s0 --> s1\n",
            "    s1 -->|\"yes\"| s1_b0_0\n",
            "    s1 -->|\"no\"| s1_b1_0\n",
            "    s1_b0_0[\"Go on<br>",
            "    s1_b1_0[\"Report<br>",
            "    s1_b0_0 --> s1_b0_stop\n",
            "    s1_b1_0 --> s1_b1_stop\n",
            "    s1_b0_stop([\"End\"])\n",
            "    s1_b1_stop([\"End\"])\n",
        ],
    );
    contains_none(&chart, &["s1_m", "    stop", "--> stop"]);
    contains_all(
        &graph,
        &[
            "    s1 [label=\"Valid?\\nCondition\", shape=diamond];\n",
            "    s1 -> s1_b0_0 [label=\"yes\"];\n",
            "    s1 -> s1_b1_0 [label=\"no\"];\n",
            "    s1_b0_0 -> s1_b0_stop;\n",
            "    s1_b1_0 -> s1_b1_stop;\n",
        ],
    );
}

#[test]
fn a_condition_merge_joins_both_paths_and_goes_on() {
    let flow = flow(|s| {
        s.action(entry("Check"))
            .condition_merge(
                "Valid?",
                |yes| yes.action(act("Go on")).action(act("Go further")),
                |no| no.action(act("Report")),
            )
            .action(act("After"))
    });
    let (chart, graph) = render("condition_merge", &flow);
    contains_all(
        &chart,
        &[
            "    s1{\"Valid?<br>Condition-Merge\"}\n",
            "    s1_m[\\\"Valid?<br>Merge\"/]\n",
            "    s1 -->|\"yes\"| s1_b0_0\n",
            "    s1_b0_0 --> s1_b0_1\n",
            "    s1_b0_1 --> s1_m\n",
            "    s1 -->|\"no\"| s1_b1_0\n",
            "    s1_b1_0 --> s1_m\n",
            "    s1_m --> s2\n",
            "    s2 --> stop\n",
        ],
    );
    contains_none(&chart, &["_stop"]);
    contains_all(
        &graph,
        &[
            "    s1 [label=\"Valid?\\nCondition-Merge\", shape=diamond];\n",
            "    s1_m [label=\"Valid?\\nMerge\", shape=invtrapezium];\n",
            "    s1_b0_1 -> s1_m;\n",
            "    s1_b1_0 -> s1_m;\n",
            "    s1_m -> s2;\n",
            "    s2 -> stop;\n",
        ],
    );
}

#[test]
fn a_splitter_labels_each_branch_and_ends_each_apart() {
    let flow = flow(|s| {
        s.action(entry("Assign")).splitter("By store", |b| {
            b.branch("Seattle", |s| {
                s.action(filtered("To Seattle", "Seattle store"))
            })
            .branch("Chicago", |s| {
                s.action(filtered("To Chicago", "Chicago store"))
                    .action(act("Then"))
            })
        })
    });
    let (chart, graph) = render("splitter", &flow);
    contains_all(
        &chart,
        &[
            "    s1{{\"By store<br>Splitter\"}}\n",
            "    s0 --> s1\n",
            "    s1 -->|\"Seattle\"| s1_b0_0\n",
            "    s1 -->|\"Chicago\"| s1_b1_0\n",
            "    s1_b0_0 --> s1_b0_stop\n",
            "    s1_b1_0 --> s1_b1_1\n",
            "    s1_b1_1 --> s1_b1_stop\n",
            "Filter: Seattle store",
        ],
    );
    contains_none(&chart, &["s1_m", "--> stop"]);
    contains_all(
        &graph,
        &[
            "    s1 [label=\"By store\\nSplitter\", shape=hexagon];\n",
            "    s1 -> s1_b0_0 [label=\"Seattle\"];\n",
            "    s1 -> s1_b1_0 [label=\"Chicago\"];\n",
        ],
    );
}

#[test]
fn a_splitter_merge_joins_every_branch_including_an_empty_one() {
    let flow = flow(|s| {
        s.action(entry("Assign"))
            .splitter_merge("By store", |b| {
                b.branch("Seattle", |s| {
                    s.action(filtered("To Seattle", "Seattle store"))
                })
                .branch("Chicago", |s| {
                    s.action(filtered("To Chicago", "Chicago store"))
                })
                .branch("Others", |s| s)
            })
            .action(act("Invoice"))
    });
    let (chart, graph) = render("splitter_merge", &flow);
    let (_, edges) = check_mermaid(&chart);
    let into_merge: Vec<&str> = edges
        .iter()
        .filter(|(_, to)| to == "s1_m")
        .map(|(from, _)| from.as_str())
        .collect();
    assert_eq!(into_merge, ["s1_b0_0", "s1_b1_0", "s1"]);
    contains_all(
        &chart,
        &[
            "    s1{{\"By store<br>Splitter-Merge\"}}\n",
            "    s1_m[\\\"By store<br>Merge\"/]\n",
            "    s1 -->|\"Seattle\"| s1_b0_0\n",
            "    s1 -->|\"Chicago\"| s1_b1_0\n",
            "    s1 -->|\"Others\"| s1_m\n",
            "    s1_m --> s2\n",
            "    s2 --> stop\n",
        ],
    );
    contains_all(
        &graph,
        &[
            "    s1_m [label=\"By store\\nMerge\", shape=invtrapezium];\n",
            "    s1 -> s1_m [label=\"Others\"];\n",
            "    s1_b0_0 -> s1_m;\n",
            "    s1_b1_0 -> s1_m;\n",
            "    s1_m -> s2;\n",
        ],
    );
}

#[test]
fn an_empty_path_of_a_condition_ends_at_once() {
    let flow = flow(|s| {
        s.action(entry("Check"))
            .condition("Valid?", |yes| yes.action(act("Go on")), |no| no)
    });
    let (chart, graph) = render("empty_branch", &flow);
    contains_all(
        &chart,
        &[
            "    s1 -->|\"no\"| s1_b1_stop\n",
            "    s1_b0_0 --> s1_b0_stop\n",
        ],
    );
    contains_all(&graph, &["    s1 -> s1_b1_stop [label=\"no\"];\n"]);
}

#[test]
fn nested_elements_get_ids_from_their_positions() {
    let flow = flow(|s| {
        s.action(entry("Check")).condition_merge(
            "Valid?",
            |yes| {
                yes.action(act("Assign")).splitter_merge("By store", |b| {
                    b.branch("Seattle", |s| {
                        s.action(filtered("To Seattle", "Seattle store")).condition(
                            "Sent?",
                            |yes| yes.action(act("Done")),
                            |no| no.action(act("Alert")),
                        )
                    })
                    .branch("Chicago", |s| {
                        s.action(filtered("To Chicago", "Chicago store"))
                    })
                })
            },
            |no| no,
        )
    });
    let (chart, graph) = render("nested", &flow);
    contains_all(
        &chart,
        &[
            "    s1 -->|\"yes\"| s1_b0_0\n",
            "    s1_b0_0 --> s1_b0_1\n",
            "    s1_b0_1{{\"By store<br>Splitter-Merge\"}}\n",
            "    s1_b0_1 -->|\"Seattle\"| s1_b0_1_b0_0\n",
            "    s1_b0_1_b0_0 --> s1_b0_1_b0_1\n",
            "    s1_b0_1_b0_1{\"Sent?<br>Condition\"}\n",
            "    s1_b0_1_b0_1 -->|\"yes\"| s1_b0_1_b0_1_b0_0\n",
            "    s1_b0_1_b0_1 -->|\"no\"| s1_b0_1_b0_1_b1_0\n",
            "    s1_b0_1_b0_1_b0_0 --> s1_b0_1_b0_1_b0_stop\n",
            "    s1_b0_1_b0_1_b1_0 --> s1_b0_1_b0_1_b1_stop\n",
            "    s1_b0_1 -->|\"Chicago\"| s1_b0_1_b1_0\n",
            "    s1_b0_1_b1_0 --> s1_b0_1_m\n",
            "    s1_b0_1_m --> s1_m\n",
            "    s1 -->|\"no\"| s1_m\n",
            "    s1_m --> stop\n",
        ],
    );
    // The Seattle branch ends in a Condition, so it never reaches the inner merge.
    contains_none(
        &chart,
        &["s1_b0_1_b0_1 --> s1_b0_1_m", "s1_b0_1_b0_0 --> s1_b0_1_m"],
    );
    contains_all(
        &graph,
        &[
            "    s1_b0_1_b0_1 [label=\"Sent?\\nCondition\", shape=diamond];\n",
            "    s1_b0_1_m -> s1_m;\n",
            "    s1 -> s1_m [label=\"no\"];\n",
        ],
    );
}

#[test]
fn a_flow_without_steps_runs_from_start_to_end() {
    let flow = Flow::from_json(r#"{ "name": "Nothing", "steps": [] }"#).unwrap();
    let (chart, graph) = render("empty", &flow);
    assert_eq!(
        chart,
        "flowchart TD\n    start([\"Start\"])\n    stop([\"End\"])\n    start --> stop\n"
    );
    contains_all(&graph, &["    start -> stop;\n"]);
}

#[test]
fn hostile_names_stay_inside_their_labels() {
    let hostile = [
        "Say \"hi\"] --> x[\"pwned",
        "#quot; #35; & &amp; #",
        "<script>alert(1)</script>",
        "line one\nline two\r\nline three\rfour",
        "{curly} (round) [square] |pipe| `tick` ;semi",
        "Ünïcødé ✓ 漢字 🚚",
        "back\\slash \\n \\\" end",
        "tab\there\u{7}bell",
    ];
    let json = serde_json::json!({
        "name": "Flow \"quoted\" <b>#1</b>\n",
        "steps": [
            { "action": {
                "name": hostile[0], "kind": "validate_order_header",
                "input_events": [hostile[1]], "filter": hostile[2],
                "execution_policies": [hostile[3]], "provider": hostile[4],
                "on_failure": hostile[5]
            } },
            { "condition_merge": {
                "name": hostile[6],
                "yes": [ { "action": { "name": hostile[7], "kind": "validate_order_line" } } ],
                "no": []
            } },
            { "splitter": {
                "name": hostile[2],
                "branches": {
                    (hostile[0]): [ { "action": {
                        "name": hostile[3], "kind": "send_to_fulfillment", "filter": hostile[1]
                    } } ],
                    (hostile[3]): [],
                    (hostile[5]): [ { "action": {
                        "name": hostile[4], "kind": "send_to_fulfillment", "filter": hostile[6]
                    } } ]
                }
            } }
        ]
    });
    let flow: Flow = serde_json::from_value(json).unwrap();
    let (chart, graph) = render("hostile", &flow);
    let (nodes, edges) = check_mermaid(&chart);
    assert_eq!(
        nodes,
        [
            "start",
            "s0",
            "s1",
            "s1_b0_0",
            "s1_m",
            "s2",
            "s2_b0_0",
            "s2_b0_stop",
            "s2_b1_stop",
            "s2_b2_0",
            "s2_b2_stop",
        ]
    );
    assert_eq!(edges.len(), 11);
    contains_all(
        &chart,
        &[
            "Say #quot;hi#quot;] --#gt; x[#quot;pwned",
            "#35;quot; #35;35; #amp; #amp;amp; #35;",
            "#lt;script#gt;alert(1)#lt;/script#gt;",
            "line one<br>line two<br>line three<br>four",
            "{curly} (round) [square] #124;pipe#124; #96;tick#96; ;semi",
            "Ünïcødé ✓ 漢字 🚚",
            "tab here bell",
            "back#92;slash #92;n #92;#quot; end",
            "    s2 -->|\"line one<br>line two<br>line three<br>four\"| s2_b1_stop\n",
        ],
    );
    contains_none(&chart, &["<script", "\r", "\t"]);
    contains_all(
        &graph,
        &[
            "digraph \"Flow \\\"quoted\\\" <b>#1</b>\\n\" {",
            "Say \\\"hi\\\"] --> x[\\\"pwned",
            "line one\\nline two\\nline three\\nfour",
            "back\\\\slash \\\\n \\\\\\\" end",
            "tab here bell",
        ],
    );
}

#[test]
fn the_quickstart_flow_renders_as_in_the_readme() {
    let flow = Flow::from_json(QUICKSTART).unwrap();
    let (chart, _) = render("quickstart", &flow);
    assert_eq!(
        chart,
        r#"flowchart TD
    start(["Start"])
    s0{{"Validation split<br>Splitter-Merge"}}
    s0_b0_0["Test validation 1<br>Validate Order Header<br>Input events: New Order<br>Filter: Filter Policy – BigCommerce<br>Policies: Order header Validation Policy"]
    s0_b1_0["Test validation 2<br>Validate Order Header<br>Input events: New Order<br>Filter: Filter Policy – Orderful<br>Policies: Order header Validation Policy"]
    s0_m[\"Validation split<br>Merge"/]
    stop(["End"])
    start --> s0
    s0 -->|"Order Source 1"| s0_b0_0
    s0_b0_0 --> s0_m
    s0 -->|"Order Source 2"| s0_b1_0
    s0_b1_0 --> s0_m
    s0_m --> stop
"#
    );
    assert_eq!(render::mermaid(&flow), chart, "rendering is deterministic");
}

#[test]
fn the_reference_lab_renders_every_step() {
    let flow = Flow::from_json(LAB_FLOW).unwrap();
    let (chart, graph) = render("lab", &flow);
    assert_eq!(
        chart,
        r#"flowchart TD
    start(["Start"])
    s0["Validate order header<br>Validate Order Header<br>Input events: New Order<br>Policies: Ship-to US"]
    s1["Validate order lines<br>Validate Order Line<br>Policies: Quantity at least 5"]
    s2["Policy based fulfillment determination<br>Assign Fulfillment Source<br>Policies: Fulfillment source assignment"]
    s3{{"By store<br>Splitter"}}
    s3_b0_0["Send to Seattle<br>Send to Fulfillment<br>Filter: Seattle store<br>Provider: Seattle store 3PL"]
    s3_b0_stop(["End"])
    s3_b1_0["Send to Chicago<br>Send to Fulfillment<br>Filter: Chicago store<br>Provider: Chicago store 3PL"]
    s3_b1_stop(["End"])
    start --> s0
    s0 --> s1
    s1 --> s2
    s2 --> s3
    s3 -->|"Seattle"| s3_b0_0
    s3_b0_0 --> s3_b0_stop
    s3 -->|"Chicago"| s3_b1_0
    s3_b1_0 --> s3_b1_stop
"#
    );
    assert_eq!(render::dot(&flow), graph, "rendering is deterministic");
    contains_all(
        &graph,
        &[
            "digraph \"Reference lab\" {",
            "    s3 [label=\"By store\\nSplitter\", shape=hexagon];\n",
            "    s3 -> s3_b0_0 [label=\"Seattle\"];\n",
            "    s3 -> s3_b1_0 [label=\"Chicago\"];\n",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Journeys.

async fn lab_journey(id: &str, quantities: &[i64]) -> (Flow, Journey) {
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
    let mut order = Order::new(id).with_ship_to_country("US");
    for (n, q) in quantities.iter().enumerate() {
        order = order.with_line(OrderLine::new((n + 1).to_string(), "Surface Pen", *q));
    }
    engine.submit(Event::new_order(order)).await.unwrap();
    let journey = engine.journey(id).await.unwrap();
    (flow, journey)
}

/// The node ids a Mermaid `class` line gives a class, sorted.
fn class_members(chart: &str, class: &str) -> Vec<String> {
    let mut ids: Vec<String> = chart
        .lines()
        .filter_map(|l| l.strip_prefix("    class "))
        .filter_map(|l| l.strip_suffix(&format!(" {class}")))
        .flat_map(|ids| ids.split(',').map(str::to_owned))
        .collect();
    ids.sort();
    ids
}

/// The edges (`from to`) a Mermaid chart draws thick, checked against its `linkStyle`.
fn thick_edges(chart: &str) -> Vec<String> {
    let edges: Vec<(usize, &str)> = chart
        .lines()
        .filter_map(|l| edge_statement(l.trim_start()).map(|_| l.trim_start()))
        .enumerate()
        .collect();
    let thick: Vec<usize> = edges
        .iter()
        .filter(|(_, l)| l.contains("==>"))
        .map(|(i, _)| *i)
        .collect();
    let styled: Vec<usize> = chart
        .lines()
        .find_map(|l| l.strip_prefix("    linkStyle "))
        .map(|l| {
            l.split_once(' ')
                .unwrap()
                .0
                .split(',')
                .map(|i| i.parse().unwrap())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(thick, styled, "thick edges are the styled ones");
    thick
        .into_iter()
        .map(|i| {
            let (from, to, _) = edge_statement(edges[i].1).unwrap();
            format!("{from} {to}")
        })
        .collect()
}

/// `Outcome · N ms` of the last run of a step, as its label shows it.
fn timing(journey: &Journey, step: &str) -> String {
    let r = journey.step(step).last().unwrap();
    format!(
        "{} · {} ms",
        r.outcome,
        r.ended.as_millis() - r.started.as_millis()
    )
}

/// The DOT attributes of a node.
fn dot_node<'a>(graph: &'a str, id: &str) -> &'a str {
    graph
        .lines()
        .find_map(|l| l.strip_prefix(&format!("    {id} [")))
        .unwrap_or_else(|| panic!("no node {id} in\n{graph}"))
}

#[tokio::test]
async fn a_two_line_order_lights_up_both_branches() {
    let (flow, journey) = lab_journey("LAB-5", &[150, 10]).await;
    assert_eq!(journey.outcome("Send to Chicago"), Some(Outcome::Succeeded));
    let (chart, graph) = render_journey("journey_two_lines", &flow, &journey);
    assert_eq!(
        class_members(&chart, "succeeded"),
        [
            "s0",
            "s1",
            "s2",
            "s3",
            "s3_b0_0",
            "s3_b0_stop",
            "s3_b1_0",
            "s3_b1_stop",
            "start"
        ]
    );
    for class in ["failed", "skipped", "unreached"] {
        assert!(class_members(&chart, class).is_empty(), "{class}");
    }
    assert_eq!(
        thick_edges(&chart),
        [
            "start s0",
            "s0 s1",
            "s1 s2",
            "s2 s3",
            "s3 s3_b0_0",
            "s3_b0_0 s3_b0_stop",
            "s3 s3_b1_0",
            "s3_b1_0 s3_b1_stop"
        ]
    );
    for step in [
        "Validate order header",
        "Send to Seattle",
        "Send to Chicago",
    ] {
        contains_all(&chart, &[&format!("{step}<br>"), &timing(&journey, step)]);
        contains_all(&graph, &[&timing(&journey, step)]);
    }
    contains_all(
        &chart,
        &[
            "classDef succeeded fill:#d3f9d8,stroke:#2b8a3e",
            "    s3 ==>|\"Seattle\"| s3_b0_0\n",
        ],
    );
    assert!(dot_node(&graph, "s3_b1_0").contains("fillcolor=\"#d3f9d8\""));
    assert!(dot_node(&graph, "s3_b1_0").contains("style=\"rounded,filled\""));
    contains_all(
        &graph,
        &["    s3 -> s3_b1_0 [label=\"Chicago\", color=\"#2b8a3e\", penwidth=3];\n"],
    );
}

#[tokio::test]
async fn a_one_line_order_for_seattle_skips_chicago() {
    let (flow, journey) = lab_journey("LAB-1", &[110]).await;
    let (chart, graph) = render_journey("journey_skipped", &flow, &journey);
    assert_eq!(class_members(&chart, "skipped"), ["s3_b1_0"]);
    assert_eq!(class_members(&chart, "unreached"), ["s3_b1_stop"]);
    contains_all(&chart, &[&timing(&journey, "Send to Chicago")]);
    assert!(timing(&journey, "Send to Chicago").starts_with("Skipped · "));
    assert!(thick_edges(&chart).contains(&"s3 s3_b1_0".to_owned()));
    assert!(!thick_edges(&chart).contains(&"s3_b1_0 s3_b1_stop".to_owned()));
    let chicago = dot_node(&graph, "s3_b1_0");
    assert!(
        chicago.contains("style=\"rounded,filled,dashed\""),
        "{chicago}"
    );
    assert!(chicago.contains("fillcolor=\"#e9ecef\""), "{chicago}");
}

#[tokio::test]
async fn a_failed_line_validation_is_red_and_the_rest_unreached() {
    let (flow, journey) = lab_journey("LAB-3", &[1]).await;
    assert_eq!(
        journey.outcome("Validate order lines"),
        Some(Outcome::Failed)
    );
    let (chart, graph) = render_journey("journey_failed", &flow, &journey);
    assert_eq!(class_members(&chart, "succeeded"), ["s0", "start"]);
    assert_eq!(class_members(&chart, "failed"), ["s1"]);
    assert_eq!(
        class_members(&chart, "unreached"),
        ["s2", "s3", "s3_b0_0", "s3_b0_stop", "s3_b1_0", "s3_b1_stop"]
    );
    assert!(class_members(&chart, "skipped").is_empty());
    assert_eq!(thick_edges(&chart), ["start s0", "s0 s1"]);
    contains_all(
        &chart,
        &[
            &timing(&journey, "Validate order lines"),
            "classDef failed fill:#ffe3e3,stroke:#c92a2a",
            "    s1 --> s2\n",
        ],
    );
    assert!(timing(&journey, "Validate order lines").starts_with("Failed · "));
    let failed = dot_node(&graph, "s1");
    assert!(
        failed.contains("fillcolor=\"#ffe3e3\", color=\"#c92a2a\""),
        "{failed}"
    );
    let unreached = dot_node(&graph, "s2");
    assert!(
        !unreached.contains("filled") && unreached.contains("#ced4da"),
        "{unreached}"
    );
    contains_all(
        &graph,
        &[
            "    s0 -> s1 [color=\"#2b8a3e\", penwidth=3];\n",
            "    s1 -> s2 [color=\"#adb5bd\"];\n",
        ],
    );
}

/// A journey of flow `Test` from step records `(step, outcome, started, ended, attempts,
/// details)`, all of one execution.
fn journey(records: &[(&str, &str, u64, u64, u32, &str)]) -> Journey {
    let steps: Vec<serde_json::Value> = records
        .iter()
        .map(|(step, outcome, started, ended, attempts, detail)| {
            serde_json::json!({
                "execution": { "order": "SO-1", "seq": 1 },
                "flow": "Test", "version": "1.0.0", "step": step, "records": [],
                "outcome": outcome, "attempts": attempts, "round": 0,
                "started": started, "ended": ended, "details": [detail], "findings": []
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "order": "SO-1",
        "executions": [{ "id": { "order": "SO-1", "seq": 1 }, "flow": "Test",
                         "version": "1.0.0", "status": "completed" }],
        "steps": steps,
        "timeline": []
    }))
    .unwrap()
}

#[test]
fn a_reprocessed_step_shows_its_last_outcome_attempts_and_merges_their_own() {
    let flow = flow(|s| {
        s.action(entry("Check"))
            .condition_merge("Valid?", |yes| yes, |no| no.action(act("Report")))
            .splitter_merge("By store", |b| {
                b.branch("Seattle", |s| {
                    s.action(filtered("To Seattle", "Seattle store"))
                })
                .branch("Chicago", |s| {
                    s.action(filtered("To Chicago", "Chicago store"))
                })
            })
    });
    let mut journey = journey(&[
        ("Check", "succeeded", 1_000, 1_040, 1, ""),
        ("Valid?", "succeeded", 1_040, 1_040, 0, "took the yes path"),
        ("Valid?", "succeeded", 1_040, 1_040, 0, "arrived: yes"),
        (
            "By store",
            "succeeded",
            1_040,
            1_040,
            0,
            "offered to branches",
        ),
        ("To Seattle", "failed", 1_040, 1_300, 3, ""),
        ("To Chicago", "skipped", 1_040, 1_041, 0, ""),
        ("By store", "failed", 1_300, 1_300, 0, "failed: Seattle"),
        ("To Seattle", "succeeded", 2_000, 2_120, 2, ""),
        ("By store", "succeeded", 2_120, 2_121, 0, "arrived: Seattle"),
    ]);
    // Another flow's steps of the same name are not this flow's.
    let mut other = journey.steps[0].clone();
    other.flow = "Other".into();
    other.outcome = Outcome::Failed;
    journey.steps.push(other);

    let (chart, graph) = render_journey("journey_synthetic", &flow, &journey);
    contains_all(
        &chart,
        &[
            "    s0[\"Check<br>Validate Order Header<br>Input events: New Order<br>Succeeded · 40 ms\"]\n",
            "To Seattle<br>Validate Order Line<br>Filter: Seattle store<br>Succeeded · 120 ms · 2 attempts · run 2 times\"]",
            "To Chicago<br>Validate Order Line<br>Filter: Chicago store<br>Skipped · 1 ms\"]",
            "    s1_m[\\\"Valid?<br>Merge<br>Succeeded · 0 ms\"/]\n",
            "    s2_m[\\\"By store<br>Merge<br>Succeeded · 1 ms · run 2 times\"/]\n",
            "    s1 ==>|\"yes\"| s1_m\n",
            "    s1 -->|\"no\"| s1_b1_0\n",
        ],
    );
    assert_eq!(
        class_members(&chart, "succeeded"),
        ["s0", "s1", "s1_m", "s2", "s2_b0_0", "s2_m", "start", "stop"]
    );
    assert_eq!(class_members(&chart, "skipped"), ["s2_b1_0"]);
    assert_eq!(class_members(&chart, "unreached"), ["s1_b1_0"]);
    assert!(class_members(&chart, "failed").is_empty());
    assert_eq!(
        thick_edges(&chart),
        [
            "start s0",
            "s0 s1",
            "s1 s1_m",
            "s1_m s2",
            "s2 s2_b0_0",
            "s2_b0_0 s2_m",
            "s2 s2_b1_0",
            "s2_m stop"
        ]
    );
    contains_all(&graph, &["Succeeded · 120 ms · 2 attempts · run 2 times"]);

    // Before the reprocess: the failed branch and the failed merge are red, the end unreached.
    journey.steps.truncate(7);
    let (chart, _) = render_journey("journey_synthetic_failed", &flow, &journey);
    assert_eq!(class_members(&chart, "failed"), ["s2_b0_0", "s2_m"]);
    assert_eq!(class_members(&chart, "unreached"), ["s1_b1_0", "stop"]);
    contains_all(
        &chart,
        &[
            "Failed · 260 ms · 3 attempts",
            "By store<br>Merge<br>Failed · 0 ms",
        ],
    );

    // Before the merge fired: the merge is not reached yet.
    journey.steps.truncate(5);
    let (chart, _) = render_journey("journey_synthetic_waiting", &flow, &journey);
    assert_eq!(
        class_members(&chart, "unreached"),
        ["s1_b1_0", "s2_b1_0", "s2_m", "stop"]
    );
    assert_eq!(
        class_members(&chart, "succeeded"),
        ["s0", "s1", "s1_m", "s2", "start"]
    );
}

#[test]
fn a_journey_of_another_flow_leaves_everything_unreached() {
    let flow = Flow::from_json(LAB_FLOW).unwrap();
    let journey = journey(&[("Validate order header", "succeeded", 0, 5, 1, "")]);
    let (chart, graph) = render_journey("journey_other", &flow, &journey);
    assert!(class_members(&chart, "succeeded").is_empty());
    assert_eq!(class_members(&chart, "unreached").len(), 9);
    assert!(thick_edges(&chart).is_empty());
    contains_none(&chart, &["linkStyle", " ms"]);
    contains_none(&graph, &["penwidth"]);
}
