//! The SVG and HTML renderings, read back as XML: well-formed, every step drawn once with its
//! shape, no two nodes overlapping and everything inside the `viewBox`, hostile names and
//! field values escaped (they come back as the same text), a journey's statuses and taken
//! edges as classes, and the HTML report's sections, with nothing it could fetch or run.
//!
//! Set `ORDERFLOW_RENDER_DUMP` to a directory to have each drawing written there.

use orderflow::document::{Order, OrderLine};
use orderflow::flow::{ActionStep, Flow, SequenceBuilder};
use orderflow::render::{self, Report};
use orderflow::rules::PolicyDocument;
use orderflow::{ActionKind, Engine, Event, EventKind, Journey, MemoryProvider, MemoryStore};
use roxmltree::{Document, Node};

const LAB_FLOW: &str = include_str!("../examples/reference-lab/flow.json");
const LAB_POLICIES: &str = include_str!("../examples/reference-lab/policies.json");

fn dump(name: &str, text: &str) {
    if let Some(dir) = std::env::var_os("ORDERFLOW_RENDER_DUMP") {
        std::fs::write(std::path::Path::new(&dir).join(name), text).unwrap();
    }
}

/// A bounding box: x, y, width, height.
type BBox = (f64, f64, f64, f64);

fn attr(node: Node<'_, '_>, name: &str) -> f64 {
    node.attribute(name)
        .unwrap_or_else(|| panic!("{name} missing on {node:?}"))
        .parse()
        .unwrap()
}

/// The box of a node's outline (its `rect` or `polygon`).
fn outline_box(g: Node<'_, '_>) -> BBox {
    let shape = g
        .children()
        .find(|c| c.has_tag_name("rect") || c.has_tag_name("polygon"))
        .unwrap_or_else(|| panic!("no outline in {:?}", g.attribute("id")));
    if shape.has_tag_name("rect") {
        return (
            attr(shape, "x"),
            attr(shape, "y"),
            attr(shape, "width"),
            attr(shape, "height"),
        );
    }
    let points: Vec<(f64, f64)> = shape
        .attribute("points")
        .unwrap()
        .split(' ')
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    let (x0, x1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (y0, y1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    (x0, y0, x1 - x0, y1 - y0)
}

/// What a drawing shows, read back from its XML.
#[derive(Debug)]
struct Drawing {
    /// Per node: id, classes, `data-step`, text.
    nodes: Vec<(String, Vec<String>, Option<String>, String)>,
    /// Per edge: from, to, classes.
    edges: Vec<(String, String, Vec<String>)>,
    /// Every text of the drawing, joined.
    text: String,
}

impl Drawing {
    fn node(&self, id: &str) -> &(String, Vec<String>, Option<String>, String) {
        self.nodes
            .iter()
            .find(|n| n.0 == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn with_class(&self, class: &str) -> Vec<&str> {
        let mut ids: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.1.iter().any(|c| c == class))
            .map(|n| n.0.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    fn taken(&self) -> Vec<String> {
        self.edges
            .iter()
            .filter(|e| e.2.iter().any(|c| c == "taken"))
            .map(|e| format!("{} {}", e.0, e.1))
            .collect()
    }
}

/// Parses an `<svg>` element and checks its geometry.
fn check_svg(svg: Node<'_, '_>) -> Drawing {
    assert!(svg.has_tag_name(("http://www.w3.org/2000/svg", "svg")));
    let view: Vec<f64> = svg
        .attribute("viewBox")
        .unwrap()
        .split(' ')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(view[..2], [0.0, 0.0]);
    assert_eq!(attr(svg, "width"), view[2]);
    assert_eq!(attr(svg, "height"), view[3]);
    let classes = |n: Node<'_, '_>| -> Vec<String> {
        n.attribute("class")
            .unwrap_or_default()
            .split(' ')
            .map(str::to_owned)
            .collect()
    };
    let text = |n: Node<'_, '_>| -> String {
        n.descendants()
            .filter(|d| d.is_text() && !d.ancestors().any(|a| a.has_tag_name("title")))
            .map(|d| d.text().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut nodes = Vec::new();
    let mut boxes: Vec<(String, BBox)> = Vec::new();
    let mut edges = Vec::new();
    for g in svg.descendants().filter(|n| n.has_tag_name("g")) {
        let class = classes(g);
        if class.first().is_some_and(|c| c == "node") {
            let id = g.attribute("id").unwrap().to_owned();
            let b = outline_box(g);
            assert!(
                b.0 >= 0.0 && b.1 >= 0.0 && b.0 + b.2 <= view[2] && b.1 + b.3 <= view[3],
                "node {id} {b:?} outside the view {view:?}"
            );
            boxes.push((id.clone(), b));
            nodes.push((
                id,
                class,
                g.attribute("data-step").map(str::to_owned),
                text(g),
            ));
        } else if class.first().is_some_and(|c| c == "edge") {
            let (from, to) = (
                g.attribute("data-from").unwrap(),
                g.attribute("data-to").unwrap(),
            );
            let line = g.children().find(|c| c.has_tag_name("polyline")).unwrap();
            let points: Vec<&str> = line.attribute("points").unwrap().split(' ').collect();
            assert!(points.len() >= 2, "edge {from} {to}");
            edges.push((from.to_owned(), to.to_owned(), class));
        }
    }
    for (i, (a, ab)) in boxes.iter().enumerate() {
        for (b, bb) in &boxes[..i] {
            let apart = ab.0 + ab.2 <= bb.0
                || bb.0 + bb.2 <= ab.0
                || ab.1 + ab.3 <= bb.1
                || bb.1 + bb.3 <= ab.1;
            assert!(apart, "nodes {a} {ab:?} and {b} {bb:?} overlap");
        }
    }
    let ids: Vec<&String> = nodes.iter().map(|n| &n.0).collect();
    for (from, to, _) in &edges {
        assert!(ids.contains(&from) && ids.contains(&to), "edge {from} {to}");
    }
    Drawing {
        nodes,
        edges,
        text: text(svg),
    }
}

fn parse_svg(name: &str, svg: &str) -> Drawing {
    dump(name, svg);
    let doc = Document::parse(svg).unwrap_or_else(|e| panic!("{name} is not XML: {e}\n{svg}"));
    check_svg(doc.root_element())
}

fn flow(f: impl FnOnce(SequenceBuilder) -> SequenceBuilder) -> Flow {
    Flow::builder("Test").steps(f).build().unwrap()
}

fn entry(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER)
}

fn act(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderLine)
}

#[test]
fn every_element_has_its_shape_and_nothing_overlaps() {
    let flow = flow(|s| {
        s.action(entry("Check"))
            .condition_merge(
                "Valid?",
                |yes| {
                    yes.action(act("Go on")).splitter_merge("Inner split", |b| {
                        b.branch("Left", |s| s.action(act("Left one").filter("Left")))
                            .branch("A rather long branch name on the right", |s| s)
                    })
                },
                |no| no,
            )
            .action(act("After the merge"))
            .splitter("By store", |b| {
                b.branch("Seattle", |s| s.action(act("To Seattle").filter("Seattle")))
                    .branch("Chicago", |s| {
                        s.action(act("To Chicago").filter("Chicago")).condition(
                            "Sent?",
                            |yes| yes.action(act("Notify")),
                            |no| no,
                        )
                    })
                    .branch("Empty", |s| s)
            })
    });
    let d = parse_svg("elements.svg", &render::svg(&flow));
    let shape = |id: &str| d.node(id).1[1].clone();
    assert_eq!(shape("start"), "start");
    assert_eq!(shape("s0"), "action");
    assert_eq!(shape("s1"), "condition");
    assert_eq!(shape("s1_b0_1"), "splitter");
    assert_eq!(shape("s1_b0_1_m"), "merge");
    assert_eq!(shape("s1_m"), "merge");
    assert_eq!(shape("s3"), "splitter");
    assert_eq!(shape("s3_b1_1"), "condition");
    assert_eq!(shape("s3_b0_stop"), "end");
    assert_eq!(shape("s3_b2_stop"), "end");
    // Every node and edge of the Mermaid chart, and nothing else.
    let chart = render::mermaid(&flow);
    let mermaid_nodes = chart.lines().skip(1).filter(|l| !l.contains("-->")).count();
    assert_eq!(d.nodes.len(), mermaid_nodes);
    let mermaid_edges = chart
        .lines()
        .filter(|l| l.contains(" --> ") || l.contains(" -->|"))
        .count();
    assert_eq!(d.edges.len(), mermaid_edges);
    for step in [
        "Check",
        "Valid?",
        "Go on",
        "Inner split",
        "Left one",
        "After the merge",
        "By store",
        "To Seattle",
        "To Chicago",
        "Sent?",
        "Notify",
    ] {
        assert!(
            d.nodes.iter().any(|n| n.2.as_deref() == Some(step)),
            "{step} drawn"
        );
    }
    for label in ["yes", "no", "Left", "Seattle", "Chicago", "Empty"] {
        assert!(d.text.contains(label), "edge label {label}");
    }
    // A plain diagram has no journey classes and no legend.
    assert!(d.taken().is_empty());
    assert!(d.with_class("succeeded").is_empty());
    assert!(!d.text.contains("Path taken"));
}

#[test]
fn hostile_names_come_back_as_the_same_text() {
    let hostile = [
        "</text></g><script>alert(1)</script>",
        "\"quoted\" & 'apostrophe' <b>bold</b> ]]> &amp;",
        "line one\nline two",
        "Ünïcødé ✓ 漢字 🚚 — a name long enough that it has to wrap over several lines",
    ];
    let json = serde_json::json!({
        "name": "Flow <svg onload=alert(1)> & \"co\"",
        "steps": [
            { "action": {
                "name": hostile[0], "kind": "validate_order_header",
                "input_events": [hostile[1]], "filter": hostile[2]
            } },
            { "splitter": {
                "name": hostile[1],
                "branches": {
                    (hostile[2]): [ { "action": { "name": hostile[3], "kind": "send_to_fulfillment" } } ],
                    (hostile[0]): [ { "action": {
                        "name": "control\u{1}char\u{7}s\ttab\r", "kind": "send_to_fulfillment"
                    } } ]
                }
            } }
        ]
    });
    let flow: Flow = serde_json::from_value(json).unwrap();
    let svg = render::svg(&flow);
    assert!(!svg.contains("<script") && !svg.contains("<b>") && !svg.contains("<svg onload"));
    let d = parse_svg("hostile.svg", &svg);
    for name in [hostile[0], hostile[1], hostile[3]] {
        assert!(
            d.nodes.iter().any(|n| n.2.as_deref() == Some(name)),
            "{name:?} kept in data-step"
        );
    }
    assert!(
        d.nodes
            .iter()
            .any(|n| n.2.as_deref() == Some("control char s tab "))
    );
    // The label text keeps every word (wrapped lines join with spaces).
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    for name in hostile {
        assert!(
            words(&d.text).contains(&words(name)),
            "{name:?} in the text"
        );
    }
    assert!(d.text.contains("Flow <svg onload=alert(1)> & \"co\""));
}

async fn lab_journey(id: &str, quantities: &[i64]) -> (Flow, Journey, Order, Order) {
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
    let mut order = Order::new(id)
        .with_ship_to_country("US")
        .with_order_source("<script>alert('source')</script> & co");
    for (n, q) in quantities.iter().enumerate() {
        order = order.with_line(OrderLine::new((n + 1).to_string(), "Surface Pen", *q));
    }
    engine
        .submit(Event::new_order(order.clone()))
        .await
        .unwrap();
    let journey = engine.journey(id).await.unwrap();
    let now = engine.order(id).await.unwrap().unwrap();
    (flow, journey, order, now)
}

#[tokio::test]
async fn a_journey_shows_taken_skipped_and_unreached_steps_with_timings() {
    let (flow, journey, _, _) = lab_journey("LAB-1", &[110]).await;
    let d = parse_svg("journey.svg", &render::journey_svg(&flow, &journey));
    assert_eq!(
        d.with_class("succeeded"),
        ["s0", "s1", "s2", "s3", "s3_b0_0", "s3_b0_stop", "start"]
    );
    assert_eq!(d.with_class("skipped"), ["s3_b1_0"]);
    assert_eq!(d.with_class("unreached"), ["s3_b1_stop"]);
    assert!(d.with_class("failed").is_empty() && d.with_class("waiting").is_empty());
    assert_eq!(
        d.taken(),
        [
            "start s0",
            "s0 s1",
            "s1 s2",
            "s2 s3",
            "s3 s3_b0_0",
            "s3_b0_0 s3_b0_stop",
            "s3 s3_b1_0"
        ]
    );
    for step in [
        "Validate order header",
        "Send to Seattle",
        "Send to Chicago",
    ] {
        let r = journey.step(step).last().unwrap();
        let timing = format!(
            "{} · {} ms",
            r.outcome,
            r.ended.as_millis() - r.started.as_millis()
        );
        let node = d
            .nodes
            .iter()
            .find(|n| n.2.as_deref() == Some(step))
            .unwrap();
        assert!(node.3.contains(&timing), "{timing} on {step}: {}", node.3);
    }
    for key in [
        "Succeeded",
        "Failed",
        "Skipped",
        "Waiting",
        "Cancelled",
        "Not reached",
        "Path taken",
    ] {
        assert!(d.text.contains(key), "legend shows {key}");
    }
    assert!(d.text.contains("order LAB-1"));
}

#[tokio::test]
async fn a_failed_step_is_red_and_what_follows_unreached() {
    let (flow, journey, _, _) = lab_journey("LAB-3", &[1]).await;
    let d = parse_svg("journey_failed.svg", &render::journey_svg(&flow, &journey));
    assert_eq!(d.with_class("failed"), ["s1"]);
    assert_eq!(d.with_class("succeeded"), ["s0", "start"]);
    assert_eq!(d.with_class("unreached").len(), 6);
    assert_eq!(d.taken(), ["start s0", "s0 s1"]);
    assert!(d.node("s1").3.contains("Failed · "));
}

#[tokio::test]
async fn a_step_waiting_for_its_event_is_where_the_path_stands() {
    let flow = flow(|s| {
        s.action(entry("Check"))
            .action(act("Lines").input_event(EventKind::from("Payment received")))
            .action(act("Afterwards"))
    });
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .build()
        .await
        .unwrap();
    engine.create_flow(flow.clone()).await.unwrap();
    engine.publish("Test").await.unwrap();
    let order = Order::new("W-1").with_line(OrderLine::new("1", "Pen", 3));
    engine.submit(Event::new_order(order)).await.unwrap();
    let journey = engine.journey("W-1").await.unwrap();
    let d = parse_svg("journey_waiting.svg", &render::journey_svg(&flow, &journey));
    assert_eq!(d.with_class("waiting"), ["s1"]);
    assert_eq!(d.with_class("unreached"), ["s2", "stop"]);
    assert_eq!(d.taken(), ["start s0", "s0 s1"]);
    assert!(d.node("s1").3.contains("Waiting"));
    let chart = render::journey_mermaid(&flow, &journey);
    assert!(chart.contains("    class s1 waiting\n"), "{chart}");
    assert!(chart.contains("    s0 ==> s1\n"), "{chart}");

    // Once the event comes, the step runs and nothing waits.
    engine
        .submit(Event::new(
            "pay:W-1",
            EventKind::from("Payment received"),
            "W-1",
        ))
        .await
        .unwrap();
    let journey = engine.journey("W-1").await.unwrap();
    let d = parse_svg("journey_resumed.svg", &render::journey_svg(&flow, &journey));
    assert!(d.with_class("waiting").is_empty());
    assert_eq!(
        d.with_class("succeeded"),
        ["s0", "s1", "s2", "start", "stop"]
    );
}

/// An HTML page read as XML (it is written to be both).
fn xhtml(html: &str) -> Document<'_> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    Document::parse_with_options(html, options).unwrap()
}

/// The text of the element with this id, its descendants' text joined.
fn text_of(doc: &Document<'_>, id: &str) -> String {
    doc.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no #{id}"))
        .descendants()
        .filter(Node::is_text)
        .map(|n| n.text().unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn the_html_report_is_one_self_contained_escaped_page() {
    let (flow, journey, before, after) = lab_journey("LAB-3", &[1]).await;
    let html = render::journey_html(&Report::new(&flow, &journey).before(&before).after(&after));
    dump("report.html", &html);
    assert!(html.starts_with("<!DOCTYPE html>\n"));
    // Nothing to run and nothing to fetch: no script, no link, no source, no URL but the
    // SVG namespace, and a policy that forbids loading anything.
    for banned in [
        "<script",
        "<link",
        "src=",
        "href=",
        "url(http",
        "@import",
        "@font-face",
    ] {
        assert!(!html.contains(banned), "{banned} in the page");
    }
    assert_eq!(
        html.matches("http://").count() + html.matches("https://").count(),
        html.matches("http://www.w3.org/2000/svg").count()
    );
    assert!(
        html.contains("content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"")
    );

    // The page is well-formed XML too, so it can be read back.
    let doc = xhtml(&html);
    let svg = doc
        .descendants()
        .find(|n| n.has_tag_name(("http://www.w3.org/2000/svg", "svg")))
        .unwrap();
    let d = check_svg(svg);
    assert_eq!(d.with_class("failed"), ["s1"]);

    let executions = text_of(&doc, "executions");
    assert!(
        executions.contains("LAB-3#1") && executions.contains("Failed"),
        "{executions}"
    );
    let timeline = text_of(&doc, "timeline");
    for e in &journey.timeline {
        assert!(
            timeline.contains(e.kind.as_str()),
            "{} in {timeline}",
            e.kind
        );
    }
    let steps = text_of(&doc, "steps");
    for s in &journey.steps {
        assert!(steps.contains(&s.step), "{}", s.step);
    }
    // Each step's details and findings, with the policy that failed.
    let failed = journey.step("Validate order lines").last().unwrap();
    assert!(!failed.findings.is_empty());
    for f in &failed.findings {
        assert!(
            steps.contains(&f.policy) && steps.contains(&f.reason),
            "{steps}"
        );
    }
    for d in journey.steps.iter().flat_map(|s| &s.details) {
        assert!(steps.contains(d.as_str()), "{d}");
    }
    // The fields before and after, the hostile source as its text.
    let fields = text_of(&doc, "order");
    assert!(
        fields.contains("<script>alert('source')</script> & co"),
        "{fields}"
    );
    assert!(
        fields.contains("ship_to.country") && fields.contains("Before") && fields.contains("After")
    );
    assert!(!html.contains("<script>alert('source')"));
}

#[tokio::test]
async fn the_report_marks_the_fields_the_journey_changed() {
    let (flow, journey, before, after) = lab_journey("LAB-1", &[110]).await;
    let html = render::journey_html(&Report::new(&flow, &journey).before(&before).after(&after));
    let doc = xhtml(&html);
    let changed: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("tr") && n.attribute("class") == Some("changed"))
        .map(|tr| {
            tr.first_element_child()
                .unwrap()
                .descendants()
                .filter(Node::is_text)
                .filter_map(|n| n.text())
                .collect()
        })
        .collect();
    assert!(
        changed.iter().any(|p| p == "lines[0].fulfillment_source"),
        "{changed:?}"
    );
    assert!(
        !changed.iter().any(|p| p == "id" || p == "ship_to.country"),
        "{changed:?}"
    );
    // Without documents, the section says so.
    let bare = render::journey_html(&Report::new(&flow, &journey));
    assert!(bare.contains("No order document was given to this report."));
    xhtml(&bare);
}

#[test]
fn the_shipped_flows_draw_cleanly() {
    for (name, json) in [
        (
            "quickstart.svg",
            include_str!("../examples/flows/test-order-flow-sample.json"),
        ),
        (
            "retry.svg",
            include_str!("../examples/flows/fulfillment-with-retry.json"),
        ),
        ("lab.svg", LAB_FLOW),
    ] {
        let flow = Flow::from_json(json).unwrap();
        let d = parse_svg(name, &render::svg(&flow));
        let chart = render::mermaid(&flow);
        assert_eq!(
            d.nodes.len(),
            chart.lines().skip(1).filter(|l| !l.contains("-->")).count(),
            "{name}"
        );
        assert!(d.text.contains(&flow.name), "{name}");
    }
}

/// The README's picture (`cargo run --example journey_picture` writes it) is a journey of
/// the lab flow that reads back like the ones drawn here. It lives outside the published
/// package, so a test run from the package has nothing to check.
#[test]
fn the_readme_picture_is_a_lab_journey() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/journey.svg");
    let Ok(svg) = std::fs::read_to_string(&path) else {
        assert!(
            !std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(".git")
                .exists(),
            "{} is missing: cargo run --example journey_picture",
            path.display()
        );
        return;
    };
    let d = parse_svg("readme.svg", &svg);
    let flow = Flow::from_json(LAB_FLOW).unwrap();
    assert_eq!(
        d.nodes.len(),
        render::mermaid(&flow)
            .lines()
            .skip(1)
            .filter(|l| !l.contains("-->"))
            .count()
    );
    assert_eq!(d.with_class("skipped"), ["s3_b1_0"]);
    assert!(d.taken().contains(&"s3 s3_b0_0".to_owned()));
}
