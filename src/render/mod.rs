//! Rendering flows as diagrams: standalone SVG and a self-contained HTML report, Mermaid for
//! Markdown, Graphviz DOT for everything else.
//!
//! [`svg`], [`mermaid`] and [`dot`] draw a [`Flow`] top to bottom: a start node (the trigger),
//! one box per action (its name, kind, input events, filter policy, execution policies,
//! provider and, when set, retry, timeout and failure event), a diamond per Condition with
//! `yes` and `no` edges, a hexagon per Splitter with one edge per branch, labelled with the
//! branch name, a merge node (an inverted trapezoid) where the paths of a Condition-Merge or
//! Splitter-Merge join again, followed by the rest of the sequence, and an end node wherever a
//! path ends.
//!
//! [`journey_svg`], [`journey_mermaid`] and [`journey_dot`] draw the same graph with an
//! order's [`Journey`] on it: steps that succeeded are green, skipped ones grey and dashed,
//! failed ones red, ones where a cancelled execution's path ended amber, the step where a live
//! execution's path stands now (waiting for its input event, or for a merge's other
//! branches) blue, steps the order never reached dim; each visited action (and merge) shows
//! its last outcome, how long it took and, when there were several, its provider call
//! attempts; the edges the order took are thick and green. Only the journey's steps of the
//! drawn flow count, and a step that ran several times (reprocess rounds) shows its last run.
//! The Mermaid charts style nodes with the classes `succeeded`, `failed`, `skipped`,
//! `waiting`, `cancelled` and `unreached`; the SVG gives every node the same class, beside
//! its shape's (`start`, `action`, `condition`, `splitter`, `merge`, `end`).
//!
//! [`journey_html`] writes one HTML file about an order, described by a [`Report`]: the
//! journey's SVG, the timeline of its events, each step's records, attempts, findings and
//! details, and the order's fields before and after. It has no script and loads nothing.
//!
//! Node ids come from positions, never from user text: `s2` is the third top-level step,
//! `s2_b1_0` the first step of its second branch (for conditions, branch 0 is `yes` and 1 is
//! `no`), `s2_m` its merge node, `stop` and `s2_b1_stop` path ends. Names are escaped, so any
//! text (quotes, brackets, `#`, `<`, `&`, newlines) stays inside its label.
//!
//! ```
//! use orderflow::flow::{ActionStep, Flow};
//! use orderflow::render;
//! use orderflow::{ActionKind, EventKind};
//!
//! let flow = Flow::builder("Validate")
//!     .steps(|s| {
//!         s.action(
//!             ActionStep::new("Validate header", ActionKind::ValidateOrderHeader)
//!                 .input_event(EventKind::NEW_ORDER),
//!         )
//!         .condition(
//!             "Valid?",
//!             |yes| yes.action(ActionStep::new("Send", ActionKind::SendToDom)),
//!             |no| no,
//!         )
//!     })
//!     .build()
//!     .unwrap();
//! let chart = render::mermaid(&flow);
//! assert!(chart.starts_with("flowchart TD\n"));
//! assert!(chart.contains(r#"s1 -->|"yes"| s1_b0_0"#));
//! assert!(render::dot(&flow).starts_with("digraph "));
//! assert!(render::svg(&flow).starts_with("<svg "));
//! ```
//!
//! To view the output, open the SVG or HTML in any browser. Put the Mermaid text in a
//! ```` ```mermaid ```` block of any Markdown file GitHub, GitLab or most editors show, or
//! paste it into <https://mermaid.live>. Turn the DOT text into an image with Graphviz:
//! `dot -Tsvg flow.dot -o flow.svg`.

mod graph;
mod html;
mod label;
mod svg;
mod text;

use graph::{Graph, Overlay};
pub use html::Report;

use crate::flow::Flow;
use crate::journey::Journey;

/// The flow as a Mermaid `flowchart TD`.
///
/// ```
/// # use orderflow::flow::{ActionStep, Flow};
/// # use orderflow::{ActionKind, EventKind};
/// let flow = Flow::builder("Check")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Header", ActionKind::ValidateOrderHeader)
///                 .input_event(EventKind::NEW_ORDER),
///         )
///     })
///     .build()
///     .unwrap();
/// let chart = orderflow::render::mermaid(&flow);
/// assert!(chart.contains("    start --> s0\n"));
/// ```
pub fn mermaid(flow: &Flow) -> String {
    Graph::of(flow).mermaid(None)
}

/// The flow as a Graphviz `digraph`.
///
/// ```
/// # use orderflow::flow::{ActionStep, Flow};
/// # use orderflow::{ActionKind, EventKind};
/// let flow = Flow::builder("Check")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Header", ActionKind::ValidateOrderHeader)
///                 .input_event(EventKind::NEW_ORDER),
///         )
///     })
///     .build()
///     .unwrap();
/// let graph = orderflow::render::dot(&flow);
/// assert!(graph.contains("    start -> s0;\n"));
/// ```
pub fn dot(flow: &Flow) -> String {
    Graph::of(flow).dot(flow, None)
}

/// The flow as one standalone SVG document, laid out top to bottom with no system package:
/// each path in a column of its own, so nodes never overlap and edges never cross. Its
/// `viewBox` (and `width` and `height`, in pixels) fit the drawing; nodes are `<g>` elements
/// with the node's id and the classes `node`, its shape and, for steps, `data-step` holding
/// the step's name.
///
/// ```
/// # use orderflow::flow::{ActionStep, Flow};
/// # use orderflow::{ActionKind, EventKind};
/// let flow = Flow::builder("Check <&>")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Header", ActionKind::ValidateOrderHeader)
///                 .input_event(EventKind::NEW_ORDER),
///         )
///     })
///     .build()
///     .unwrap();
/// let svg = orderflow::render::svg(&flow);
/// assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
/// assert!(svg.contains("<g id=\"s0\" class=\"node action\" data-step=\"Header\">"));
/// assert!(svg.contains("Check &lt;&amp;&gt;"));
/// std::fs::write(std::env::temp_dir().join("check.svg"), svg).unwrap();
/// ```
pub fn svg(flow: &Flow) -> String {
    svg::render(&Graph::of(flow), flow, None)
}

/// The flow as a Mermaid `flowchart TD` with the journey's steps of this flow drawn on it.
///
/// ```
/// # use orderflow::flow::{ActionStep, Flow};
/// # use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore};
/// # use orderflow::document::Order;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let flow = Flow::builder("Check")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Header", ActionKind::ValidateOrderHeader)
///                 .input_event(EventKind::NEW_ORDER),
///         )
///     })
///     .build()
///     .unwrap();
/// let engine = Engine::builder().store(MemoryStore::new()).build().await.unwrap();
/// engine.create_flow(flow.clone()).await.unwrap();
/// engine.publish("Check").await.unwrap();
/// engine.submit(Event::new_order(Order::new("SO-1"))).await.unwrap();
/// let journey = engine.journey("SO-1").await.unwrap();
/// let chart = orderflow::render::journey_mermaid(&flow, &journey);
/// assert!(chart.contains("    class start,s0,stop succeeded\n"));
/// assert!(chart.contains("    start ==> s0\n"));
/// # });
/// ```
pub fn journey_mermaid(flow: &Flow, journey: &Journey) -> String {
    let graph = Graph::of(flow);
    let overlay = Overlay::new(&graph, flow, journey);
    graph.mermaid(Some(&overlay))
}

/// The flow as a Graphviz `digraph` with the journey's steps of this flow drawn on it.
///
/// ```
/// # use orderflow::flow::{ActionStep, Flow};
/// # use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore};
/// # use orderflow::document::Order;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let flow = Flow::builder("Check")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Header", ActionKind::ValidateOrderHeader)
///                 .input_event(EventKind::NEW_ORDER),
///         )
///     })
///     .build()
///     .unwrap();
/// let engine = Engine::builder().store(MemoryStore::new()).build().await.unwrap();
/// engine.create_flow(flow.clone()).await.unwrap();
/// engine.publish("Check").await.unwrap();
/// engine.submit(Event::new_order(Order::new("SO-1"))).await.unwrap();
/// let journey = engine.journey("SO-1").await.unwrap();
/// let graph = orderflow::render::journey_dot(&flow, &journey);
/// assert!(graph.contains("    start -> s0 [color=\"#2b8a3e\", penwidth=3];\n"));
/// # });
/// ```
pub fn journey_dot(flow: &Flow, journey: &Journey) -> String {
    let graph = Graph::of(flow);
    let overlay = Overlay::new(&graph, flow, journey);
    graph.dot(flow, Some(&overlay))
}

/// The flow as one standalone SVG document (as [`svg`] draws it) with the journey's steps of
/// this flow on it and a legend: each node carries its status as a class (`succeeded`,
/// `failed`, `skipped`, `waiting`, `cancelled` or `unreached`), visited actions and merges
/// show their outcome and timing, and the edges the order took are drawn thick and green
/// with the class `taken`.
///
/// ```
/// # use orderflow::flow::{ActionStep, Flow};
/// # use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore};
/// # use orderflow::document::Order;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let flow = Flow::builder("Check")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Header", ActionKind::ValidateOrderHeader)
///                 .input_event(EventKind::NEW_ORDER),
///         )
///     })
///     .build()
///     .unwrap();
/// let engine = Engine::builder().store(MemoryStore::new()).build().await.unwrap();
/// engine.create_flow(flow.clone()).await.unwrap();
/// engine.publish("Check").await.unwrap();
/// engine.submit(Event::new_order(Order::new("SO-1"))).await.unwrap();
/// let journey = engine.journey("SO-1").await.unwrap();
/// let svg = orderflow::render::journey_svg(&flow, &journey);
/// assert!(svg.contains("<g id=\"s0\" class=\"node action succeeded\" data-step=\"Header\">"));
/// assert!(svg.contains("class=\"edge taken\""));
/// # });
/// ```
pub fn journey_svg(flow: &Flow, journey: &Journey) -> String {
    let graph = Graph::of(flow);
    let overlay = Overlay::new(&graph, flow, journey);
    svg::render(&graph, flow, Some((&overlay, journey)))
}

/// One self-contained HTML page about an order (see [`Report`]): its journey's SVG on the
/// flow, the timeline of its events, every step's records, attempts, findings and details,
/// and its fields before and after. CSS and SVG are inline; the page has no script, loads no
/// font, image or style from anywhere (its `Content-Security-Policy` forbids it), and every
/// text from the flow, the journey or the order is escaped.
///
/// ```
/// # use orderflow::flow::{ActionStep, Flow};
/// # use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore};
/// # use orderflow::document::Order;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use orderflow::render::{Report, journey_html};
///
/// let flow = Flow::builder("Check")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Header", ActionKind::ValidateOrderHeader)
///                 .input_event(EventKind::NEW_ORDER),
///         )
///     })
///     .build()
///     .unwrap();
/// let engine = Engine::builder().store(MemoryStore::new()).build().await.unwrap();
/// engine.create_flow(flow.clone()).await.unwrap();
/// engine.publish("Check").await.unwrap();
/// let submitted = Order::new("SO-1").with_ship_to_country("US");
/// engine.submit(Event::new_order(submitted.clone())).await.unwrap();
/// let journey = engine.journey("SO-1").await.unwrap();
/// let now = engine.order("SO-1").await.unwrap().unwrap();
/// let html = journey_html(&Report::new(&flow, &journey).before(&submitted).after(&now));
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// assert!(html.contains("<svg ") && !html.contains("<script"));
/// std::fs::write(std::env::temp_dir().join("SO-1.html"), html).unwrap();
/// # });
/// ```
pub fn journey_html(report: &Report<'_>) -> String {
    html::render(report)
}
