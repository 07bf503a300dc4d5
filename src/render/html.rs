//! An order's journey as one self-contained HTML page.

use std::fmt::Write as _;

use super::graph::{Graph, Overlay};
use super::label::xml;
use super::svg;
use crate::document::Order;
use crate::execution::{ExecutionStatus, OrderState};
use crate::flow::Flow;
use crate::journey::{Journey, Outcome, StepKind};

/// What [`journey_html`](super::journey_html) writes about an order: its journey drawn on a
/// flow, and, when given, its document before and after (say, as it was submitted and as
/// the store holds it now). Build it with [`Report::new`] and the setters.
///
/// The journey carries the order's timeline (its events in arrival order, as the store keeps
/// them) and every step's records; [`Engine::journey`](crate::Engine::journey) gives it, or
/// [`Journey::resolve`] from what a store returns for the order
/// ([`OrderState`] and its journey rows).
///
/// ```
/// use orderflow::document::Order;
/// use orderflow::flow::{ActionStep, Flow};
/// use orderflow::render::Report;
/// use orderflow::{ActionKind, EventKind, Journey};
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
/// let journey: Journey = serde_json::from_str(
///     r#"{"order": "SO-1", "executions": [], "steps": [], "timeline": []}"#,
/// )
/// .unwrap();
/// let submitted = Order::new("SO-1");
/// let report = Report::new(&flow, &journey).before(&submitted);
/// let html = orderflow::render::journey_html(&report);
/// assert!(html.contains("<h1>Order SO-1</h1>"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    flow: &'a Flow,
    journey: &'a Journey,
    before: Option<&'a Order>,
    after: Option<&'a Order>,
}

impl<'a> Report<'a> {
    /// A report of `journey` drawn on `flow` (only the journey's steps of this flow light
    /// up the diagram; the tables list every step and event of the order).
    ///
    /// ```
    /// # use orderflow::flow::{ActionStep, Flow};
    /// # use orderflow::{ActionKind, EventKind, Journey};
    /// # let flow = Flow::builder("Check").steps(|s| s.action(ActionStep::new("Header",
    /// #     ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER))).build().unwrap();
    /// # let journey: Journey = serde_json::from_str(
    /// #     r#"{"order": "SO-1", "executions": [], "steps": [], "timeline": []}"#).unwrap();
    /// let report = orderflow::render::Report::new(&flow, &journey);
    /// assert!(orderflow::render::journey_html(&report).contains("Check v1.0.0"));
    /// ```
    pub fn new(flow: &'a Flow, journey: &'a Journey) -> Self {
        Self {
            flow,
            journey,
            before: None,
            after: None,
        }
    }

    /// The order's document before its journey (for instance as it was submitted).
    ///
    /// ```
    /// # use orderflow::flow::{ActionStep, Flow};
    /// # use orderflow::{ActionKind, EventKind, Journey};
    /// # use orderflow::document::Order;
    /// # let flow = Flow::builder("Check").steps(|s| s.action(ActionStep::new("Header",
    /// #     ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER))).build().unwrap();
    /// # let journey: Journey = serde_json::from_str(
    /// #     r#"{"order": "SO-1", "executions": [], "steps": [], "timeline": []}"#).unwrap();
    /// let submitted = Order::new("SO-1").with_ship_to_country("US");
    /// let report = orderflow::render::Report::new(&flow, &journey).before(&submitted);
    /// assert!(orderflow::render::journey_html(&report).contains("<td>US</td>"));
    /// ```
    #[must_use]
    pub fn before(mut self, order: &'a Order) -> Self {
        self.before = Some(order);
        self
    }

    /// The order's document after its journey (for instance as the store holds it now).
    ///
    /// ```
    /// # use orderflow::flow::{ActionStep, Flow};
    /// # use orderflow::{ActionKind, EventKind, Journey};
    /// # use orderflow::document::Order;
    /// # let flow = Flow::builder("Check").steps(|s| s.action(ActionStep::new("Header",
    /// #     ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER))).build().unwrap();
    /// # let journey: Journey = serde_json::from_str(
    /// #     r#"{"order": "SO-1", "executions": [], "steps": [], "timeline": []}"#).unwrap();
    /// let (was, now) = (Order::new("SO-1"), Order::new("SO-1").with_ship_to_country("CA"));
    /// let report = orderflow::render::Report::new(&flow, &journey).before(&was).after(&now);
    /// assert!(orderflow::render::journey_html(&report).contains("<tr class=\"changed\">"));
    /// ```
    #[must_use]
    pub fn after(mut self, order: &'a Order) -> Self {
        self.after = Some(order);
        self
    }

    /// The order's document after its journey from the state a [`Store`](crate::Store)
    /// loads for it.
    ///
    /// ```
    /// # use orderflow::flow::{ActionStep, Flow};
    /// # use orderflow::{ActionKind, EventKind, Journey};
    /// use orderflow::document::Order;
    /// use orderflow::execution::OrderState;
    /// # let flow = Flow::builder("Check").steps(|s| s.action(ActionStep::new("Header",
    /// #     ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER))).build().unwrap();
    /// # let journey: Journey = serde_json::from_str(
    /// #     r#"{"order": "SO-1", "executions": [], "steps": [], "timeline": []}"#).unwrap();
    /// let state = OrderState::new(Order::new("SO-1").with_ship_to_country("US"));
    /// let report = orderflow::render::Report::new(&flow, &journey).state(&state);
    /// assert!(orderflow::render::journey_html(&report).contains("<td>US</td>"));
    /// ```
    #[must_use]
    pub fn state(self, state: &'a OrderState) -> Self {
        self.after(state.order())
    }
}

const STYLE: &str = "\
:root{color-scheme:light}\
body{margin:0;padding:24px 32px;font:14px/1.45 system-ui,-apple-system,'Segoe UI',\
'Liberation Sans',Arial,sans-serif;color:#212529;background:#f8f9fa}\
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}\
.sub{color:#495057;margin:0}\
section{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:4px 20px 16px;\
margin-top:20px}\
.diagram{overflow-x:auto}.diagram svg{display:block;max-width:none}\
table{border-collapse:collapse;width:100%;font-size:13px}\
th,td{text-align:left;vertical-align:top;padding:5px 8px;border-bottom:1px solid #e9ecef}\
th{background:#f1f3f5;font-weight:600}\
td.num{text-align:right;font-variant-numeric:tabular-nums}\
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;\
font-weight:600;border:1px solid}\
.succeeded,.completed{background:#d3f9d8;color:#1b4d26;border-color:#2b8a3e}\
.failed{background:#ffe3e3;color:#7d1a1a;border-color:#c92a2a}\
.skipped{background:#e9ecef;color:#495057;border-color:#868e96;border-style:dashed}\
.waiting,.running{background:#d0ebff;color:#0b3d6b;border-color:#1971c2}\
.cancelled{background:#fff3bf;color:#7a4100;border-color:#e67700}\
ul.details{margin:0;padding-left:18px}\
.finding{color:#7d1a1a}.finding.information{color:#7a4100}\
tr.changed td{background:#fff9db}tr.changed td.after{font-weight:600}\
.missing{color:#adb5bd}\
code,time{font-family:ui-monospace,'DejaVu Sans Mono','Liberation Mono',monospace;\
font-size:12px}time{white-space:nowrap}\
footer{color:#868e96;font-size:12px;margin-top:20px}";

fn outcome_class(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
        Outcome::Cancelled => "cancelled",
    }
}

fn status_class(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Running => "running",
        ExecutionStatus::Waiting => "waiting",
        ExecutionStatus::Failed => "failed",
        ExecutionStatus::Completed => "completed",
        ExecutionStatus::Cancelled => "cancelled",
    }
}

/// The page.
pub(super) fn render(report: &Report<'_>) -> String {
    let (flow, journey) = (report.flow, report.journey);
    let graph = Graph::of(flow);
    let overlay = Overlay::new(&graph, flow, journey);
    let diagram = svg::render(&graph, flow, Some((&overlay, journey)));
    let flow_title = format!("{} v{}", flow.name, flow.version);

    let mut out =
        String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    // Nothing may be fetched: the page is the file.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\"/>\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(
        out,
        "<title>Order {} · {}</title>",
        xml(journey.order.as_str()),
        xml(&flow_title)
    );
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    let _ = writeln!(
        out,
        "<header><h1>Order {}</h1><p class=\"sub\">Flow <b>{}</b>{}</p></header>",
        xml(journey.order.as_str()),
        xml(&flow_title),
        if flow.description.is_empty() {
            String::new()
        } else {
            format!(" — {}", xml(&flow.description))
        }
    );

    executions(&mut out, journey);
    let _ = writeln!(
        out,
        "<section id=\"diagram\"><h2>Path on the flow</h2><div class=\"diagram\">{diagram}</div></section>"
    );
    timeline(&mut out, journey);
    steps(&mut out, journey);
    fields(&mut out, report.before, report.after);
    let _ = writeln!(
        out,
        "<footer>Written by orderflow {}.</footer>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn executions(out: &mut String, journey: &Journey) {
    out.push_str("<section id=\"executions\"><h2>Executions</h2>");
    if journey.executions.is_empty() {
        out.push_str("<p>No flow has run for this order.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Execution</th><th>Flow</th><th>Version</th><th>Status</th>\
         <th>Why</th></tr></thead><tbody>",
    );
    for e in &journey.executions {
        let class = status_class(e.status);
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td>\
             <td><span class=\"badge {class}\">{:?}</span></td><td>{}</td></tr>",
            xml(&e.id.to_string()),
            xml(&e.flow),
            xml(&e.version.to_string()),
            e.status,
            xml(e.failure.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn timeline(out: &mut String, journey: &Journey) {
    out.push_str("<section id=\"timeline\"><h2>Timeline</h2>");
    if journey.timeline.is_empty() {
        out.push_str("<p>No event.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>#</th><th>Arrived</th><th>Event</th><th>Record</th>\
         <th>Raised by</th></tr></thead><tbody>",
    );
    for e in &journey.timeline {
        let _ = write!(
            out,
            "<tr><td class=\"num\">{}</td><td><time>{}</time></td><td><b>{}</b></td>\
             <td>{}</td><td>{}</td></tr>",
            e.seq,
            e.at,
            xml(e.kind.as_str()),
            xml(&e
                .record
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()),
            xml(e.raised_by.as_deref().unwrap_or("submitted"))
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn steps(out: &mut String, journey: &Journey) {
    out.push_str("<section id=\"steps\"><h2>Steps</h2>");
    if journey.steps.is_empty() {
        out.push_str("<p>No step has run.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Started</th><th>Flow</th><th>Step</th><th>Outcome</th>\
         <th>Took</th><th>Attempts</th><th>Round</th><th>Records</th>\
         <th>Details and findings</th></tr></thead><tbody>",
    );
    for s in &journey.steps {
        let kind = match s.kind {
            StepKind::Action => "",
            StepKind::Condition => " (condition)",
            StepKind::Splitter => " (splitter)",
            StepKind::Merge => " (merge)",
            StepKind::End => " (end of path)",
        };
        let ms = s.ended.as_millis().saturating_sub(s.started.as_millis());
        let records: Vec<String> = s.records.iter().map(ToString::to_string).collect();
        let _ = write!(
            out,
            "<tr class=\"step step-{class}\"><td><time>{}</time></td><td>{} v{}</td><td><b>{}</b>{kind}</td>\
             <td><span class=\"badge {class}\">{}</span></td><td class=\"num\">{ms} ms</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>",
            s.started,
            xml(&s.flow),
            xml(&s.version.to_string()),
            xml(&s.step),
            s.outcome,
            s.attempts,
            s.round,
            xml(&records.join(", ")),
            class = outcome_class(s.outcome),
        );
        if !s.details.is_empty() || !s.findings.is_empty() {
            out.push_str("<ul class=\"details\">");
            for d in &s.details {
                let _ = write!(out, "<li>{}</li>", xml(d));
            }
            for f in &s.findings {
                let level = format!("{:?}", f.criticality).to_lowercase();
                let _ = write!(
                    out,
                    "<li class=\"finding {level}\">{} ({level}) on {}: {}</li>",
                    xml(&f.policy),
                    xml(&f.record.to_string()),
                    xml(&f.reason)
                );
            }
            out.push_str("</ul>");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</tbody></table></section>\n");
}

/// A document's fields as `path = value` rows, in document order; empty values left out.
fn flatten(value: &serde_json::Value, path: &str, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match value {
        Value::Null => {}
        Value::Object(map) => {
            for (key, v) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten(v, &path, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, &format!("{path}[{i}]"), out);
            }
        }
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        other => out.push((path.to_owned(), other.to_string())),
    }
}

fn rows(order: Option<&Order>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(value) = order.and_then(|o| serde_json::to_value(o).ok()) {
        flatten(&value, "", &mut out);
    }
    out
}

fn fields(out: &mut String, before: Option<&Order>, after: Option<&Order>) {
    out.push_str("<section id=\"order\"><h2>Order fields</h2>");
    if before.is_none() && after.is_none() {
        out.push_str("<p>No order document was given to this report.</p></section>\n");
        return;
    }
    let (was, now) = (rows(before), rows(after));
    let mut paths: Vec<&str> = now.iter().map(|(p, _)| p.as_str()).collect();
    for (p, _) in &was {
        if !paths.contains(&p.as_str()) {
            paths.push(p);
        }
    }
    let find = |rows: &[(String, String)], p: &str| {
        rows.iter().find(|(q, _)| q == p).map(|(_, v)| v.clone())
    };
    let both = before.is_some() && after.is_some();
    out.push_str("<table><thead><tr><th>Field</th>");
    if before.is_some() {
        out.push_str("<th>Before</th>");
    }
    if after.is_some() {
        out.push_str("<th>After</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let cell = |v: Option<String>, after: bool| {
        let mut classes = Vec::new();
        if after {
            classes.push("after");
        }
        if v.is_none() {
            classes.push("missing");
        }
        let class = if classes.is_empty() {
            String::new()
        } else {
            format!(" class=\"{}\"", classes.join(" "))
        };
        format!(
            "<td{class}>{}</td>",
            v.map_or_else(|| "—".to_owned(), |v| xml(&v))
        )
    };
    for p in paths {
        let (b, a) = (find(&was, p), find(&now, p));
        let changed = both && a != b;
        out.push_str(if changed {
            "<tr class=\"changed\">"
        } else {
            "<tr>"
        });
        let _ = write!(out, "<td><code>{}</code></td>", xml(p));
        if before.is_some() {
            out.push_str(&cell(b, false));
        }
        if after.is_some() {
            out.push_str(&cell(a, both));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>\n");
}
