//! Rendering flows as diagrams: Mermaid for Markdown, Graphviz DOT for everything else.
//!
//! [`mermaid`] and [`dot`] draw a [`Flow`] top to bottom: a start node, one box per action
//! (its name, kind, input events, filter policy, execution policies, provider and, when set,
//! retry, timeout and failure event), a diamond per Condition with `yes` and `no` edges, a
//! hexagon per Splitter with one edge per branch, labelled with the branch name, a merge node
//! where the paths of a Condition-Merge or Splitter-Merge join again, followed by the rest of
//! the sequence, and an end node wherever a path ends.
//!
//! [`journey_mermaid`] and [`journey_dot`] draw the same graph with an order's [`Journey`] on
//! it: steps that succeeded are green, skipped ones grey and dashed, failed ones red, ones
//! where a cancelled execution's path ended amber, steps the order never reached dim; each
//! visited action (and merge) shows its last outcome, how long it took and, when there were
//! several, its provider call attempts; the edges the order took are thick and green. Only the journey's steps of the drawn flow count, and a step that ran
//! several times (reprocess rounds) shows its last run. The Mermaid charts style nodes with
//! the classes `succeeded`, `failed`, `skipped`, `cancelled` and `unreached`.
//!
//! Node ids come from positions, never from user text: `s2` is the third top-level step,
//! `s2_b1_0` the first step of its second branch (for conditions, branch 0 is `yes` and 1 is
//! `no`), `s2_m` its merge node, `stop` and `s2_b1_stop` path ends. Names are escaped, so any
//! text (quotes, brackets, `#`, `<`, newlines) stays inside its label.
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
//! ```
//!
//! To view the output, put the Mermaid text in a ```` ```mermaid ```` block of any Markdown
//! file GitHub, GitLab or most editors show, or paste it into <https://mermaid.live>. Turn the
//! DOT text into an image with Graphviz: `dot -Tsvg flow.dot -o flow.svg`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::clock::whole_millis;
use crate::flow::{ActionStep, ConditionStep, Flow, Sequence, SplitterStep, Step};
use crate::journey::{Journey, Outcome, StepRecord};
use crate::orchestration::ActionKind;

/// The flow as a Mermaid `flowchart TD`.
pub fn mermaid(flow: &Flow) -> String {
    Graph::of(flow).mermaid(None)
}

/// The flow as a Graphviz `digraph`.
pub fn dot(flow: &Flow) -> String {
    Graph::of(flow).dot(flow, None)
}

/// The flow as a Mermaid `flowchart TD` with the journey's steps of this flow drawn on it.
pub fn journey_mermaid(flow: &Flow, journey: &Journey) -> String {
    let graph = Graph::of(flow);
    let overlay = Overlay::new(&graph, flow, journey);
    graph.mermaid(Some(&overlay))
}

/// The flow as a Graphviz `digraph` with the journey's steps of this flow drawn on it.
pub fn journey_dot(flow: &Flow, journey: &Journey) -> String {
    let graph = Graph::of(flow);
    let overlay = Overlay::new(&graph, flow, journey);
    graph.dot(flow, Some(&overlay))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Start,
    End,
    Action,
    Condition,
    Splitter,
    Merge,
}

/// Which records of a step name a node shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Every record: actions, Conditions and Splitters.
    Whole,
    /// The opening of a merge element: the first record of each execution.
    Split,
    /// The join of a merge element: the later records of each execution.
    Join,
}

#[derive(Debug)]
struct Node {
    id: String,
    shape: Shape,
    /// Label lines, unescaped.
    lines: Vec<String>,
    /// The step name and role to look up in a journey.
    step: Option<(String, Role)>,
}

#[derive(Debug)]
struct Edge {
    from: usize,
    to: usize,
    label: Option<String>,
    /// The branch this edge opens: 0 for `yes`, 1 for `no`, or the splitter branch index.
    branch: Option<usize>,
}

/// An edge whose target is still to come: the index of an edge drawn with [`OPEN`] as its
/// target. Drawing edges when their source is drawn lists each path's edges in path order.
#[derive(Debug)]
struct Open(usize);

/// The target of an edge whose target is still to come.
const OPEN: usize = usize::MAX;

#[derive(Debug, Default)]
struct Graph {
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

impl Graph {
    fn of(flow: &Flow) -> Self {
        let mut g = Self::default();
        let start = g.node("start".into(), Shape::Start, vec!["Start".into()], None);
        let open = vec![g.open(start, None, None)];
        let tails = g.sequence(&flow.steps, "s", open);
        g.end("stop".into(), tails);
        g
    }

    fn node(
        &mut self,
        id: String,
        shape: Shape,
        lines: Vec<String>,
        step: Option<(String, Role)>,
    ) -> usize {
        self.nodes.push(Node {
            id,
            shape,
            lines,
            step,
        });
        self.nodes.len() - 1
    }

    fn open(&mut self, from: usize, label: Option<String>, branch: Option<usize>) -> Open {
        self.edges.push(Edge {
            from,
            to: OPEN,
            label,
            branch,
        });
        Open(self.edges.len() - 1)
    }

    fn connect(&mut self, open: Vec<Open>, to: usize) {
        for Open(edge) in open {
            self.edges[edge].to = to;
        }
    }

    /// Ends the paths still open with an end node.
    fn end(&mut self, id: String, open: Vec<Open>) {
        if !open.is_empty() {
            let end = self.node(id, Shape::End, vec!["End".into()], None);
            self.connect(open, end);
        }
    }

    /// Draws a sequence whose steps get ids `{prefix}{index}`, entered by `open`; returns the
    /// edges left open at its end (none when it ends in a Condition or a Splitter).
    fn sequence(&mut self, steps: &Sequence, prefix: &str, mut open: Vec<Open>) -> Vec<Open> {
        for (i, step) in steps.iter().enumerate() {
            let id = format!("{prefix}{i}");
            open = match step {
                Step::Action(a) => {
                    let n = self.node(
                        id,
                        Shape::Action,
                        action_lines(a),
                        Some((a.name.clone(), Role::Whole)),
                    );
                    self.connect(open, n);
                    vec![self.open(n, None, None)]
                }
                Step::Condition(c) => {
                    self.condition(c, &id, open, false);
                    Vec::new()
                }
                Step::ConditionMerge(c) => self.condition(c, &id, open, true),
                Step::Splitter(s) => {
                    self.splitter(s, &id, open, false);
                    Vec::new()
                }
                Step::SplitterMerge(s) => self.splitter(s, &id, open, true),
            };
        }
        open
    }

    fn condition(
        &mut self,
        c: &ConditionStep,
        id: &str,
        open: Vec<Open>,
        merge: bool,
    ) -> Vec<Open> {
        let (kind, role) = if merge {
            ("Condition-Merge", Role::Split)
        } else {
            ("Condition", Role::Whole)
        };
        let n = self.node(
            id.to_owned(),
            Shape::Condition,
            vec![c.name.clone(), kind.into()],
            Some((c.name.clone(), role)),
        );
        self.connect(open, n);
        let paths = [("yes", &c.yes), ("no", &c.no)];
        self.branches(&c.name, id, n, paths.into_iter(), merge)
    }

    fn splitter(&mut self, s: &SplitterStep, id: &str, open: Vec<Open>, merge: bool) -> Vec<Open> {
        let (kind, role) = if merge {
            ("Splitter-Merge", Role::Split)
        } else {
            ("Splitter", Role::Whole)
        };
        let n = self.node(
            id.to_owned(),
            Shape::Splitter,
            vec![s.name.clone(), kind.into()],
            Some((s.name.clone(), role)),
        );
        self.connect(open, n);
        let paths = s
            .branches
            .iter()
            .map(|(name, steps)| (name.as_str(), steps));
        self.branches(&s.name, id, n, paths, merge)
    }

    /// Draws the paths of an element; joins them in a merge node when `merge`, else ends each.
    fn branches<'a>(
        &mut self,
        name: &str,
        id: &str,
        element: usize,
        paths: impl Iterator<Item = (&'a str, &'a Sequence)>,
        merge: bool,
    ) -> Vec<Open> {
        let mut joined = Vec::new();
        for (b, (label, steps)) in paths.enumerate() {
            let open = vec![self.open(element, Some(label.to_owned()), Some(b))];
            let prefix = format!("{id}_b{b}_");
            let tails = self.sequence(steps, &prefix, open);
            if merge {
                joined.extend(tails);
            } else {
                self.end(format!("{prefix}stop"), tails);
            }
        }
        if !merge {
            return Vec::new();
        }
        let m = self.node(
            format!("{id}_m"),
            Shape::Merge,
            vec![name.to_owned(), "Merge".into()],
            Some((name.to_owned(), Role::Join)),
        );
        self.connect(joined, m);
        vec![self.open(m, None, None)]
    }

    fn mermaid(&self, overlay: Option<&Overlay>) -> String {
        let mut out = String::from("flowchart TD\n");
        for (i, node) in self.nodes.iter().enumerate() {
            let mut lines: Vec<String> = node.lines.iter().map(|l| mermaid_text(l)).collect();
            if let Some(note) = overlay.and_then(|o| o.notes[i].as_deref()) {
                lines.push(mermaid_text(note));
            }
            let label = lines.join("<br>");
            let (open, close) = match node.shape {
                Shape::Start | Shape::End => ("([\"", "\"])"),
                Shape::Action => ("[\"", "\"]"),
                Shape::Condition => ("{\"", "\"}"),
                Shape::Splitter => ("{{\"", "\"}}"),
                Shape::Merge => ("[\\\"", "\"/]"),
            };
            let _ = writeln!(out, "    {}{open}{label}{close}", node.id);
        }
        for (i, edge) in self.edges.iter().enumerate() {
            let arrow = if overlay.is_some_and(|o| o.taken[i]) {
                "==>"
            } else {
                "-->"
            };
            let label = edge
                .label
                .as_deref()
                .map(|l| format!("|\"{}\"|", mermaid_text(l)))
                .unwrap_or_default();
            let (from, to) = (&self.nodes[edge.from].id, &self.nodes[edge.to].id);
            let _ = writeln!(out, "    {from} {arrow}{label} {to}");
        }
        if let Some(o) = overlay {
            for status in Status::ALL {
                let _ = writeln!(out, "    classDef {} {}", status.class(), status.css());
            }
            for status in Status::ALL {
                let ids: Vec<&str> = self
                    .nodes
                    .iter()
                    .zip(&o.status)
                    .filter(|(_, s)| **s == status)
                    .map(|(n, _)| n.id.as_str())
                    .collect();
                if !ids.is_empty() {
                    let _ = writeln!(out, "    class {} {}", ids.join(","), status.class());
                }
            }
            let taken: Vec<String> = (0..self.edges.len())
                .filter(|i| o.taken[*i])
                .map(|i| i.to_string())
                .collect();
            if !taken.is_empty() {
                let _ = writeln!(
                    out,
                    "    linkStyle {} stroke:#2b8a3e,stroke-width:3px",
                    taken.join(",")
                );
            }
        }
        out
    }

    fn dot(&self, flow: &Flow, overlay: Option<&Overlay>) -> String {
        let title = format!("{} v{}", flow.name, flow.version);
        let mut out = format!("digraph \"{}\" {{\n", dot_text(&flow.name));
        out.push_str("    rankdir=TB;\n");
        let _ = writeln!(out, "    label=\"{}\";", dot_text(&title));
        out.push_str("    labelloc=t;\n");
        out.push_str("    fontname=\"Helvetica\";\n");
        out.push_str("    node [fontname=\"Helvetica\", fontsize=11];\n");
        out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
        for (i, node) in self.nodes.iter().enumerate() {
            let mut lines: Vec<String> = node.lines.iter().map(|l| dot_text(l)).collect();
            if let Some(note) = overlay.and_then(|o| o.notes[i].as_deref()) {
                lines.push(dot_text(note));
            }
            let (shape, mut style) = match node.shape {
                Shape::Start | Shape::End => ("oval", vec![]),
                Shape::Action => ("box", vec!["rounded"]),
                Shape::Condition => ("diamond", vec![]),
                Shape::Splitter => ("hexagon", vec![]),
                Shape::Merge => ("invtrapezium", vec![]),
            };
            let mut attrs = format!("label=\"{}\", shape={shape}", lines.join("\\n"));
            if let Some(status) = overlay.map(|o| o.status[i]) {
                let (fill, stroke, font) = status.colors();
                if status != Status::Unreached {
                    style.push("filled");
                }
                if status == Status::Skipped {
                    style.push("dashed");
                }
                let _ = write!(
                    attrs,
                    ", fillcolor=\"{fill}\", color=\"{stroke}\", fontcolor=\"{font}\""
                );
            }
            if !style.is_empty() {
                let _ = write!(attrs, ", style=\"{}\"", style.join(","));
            }
            let _ = writeln!(out, "    {} [{attrs}];", node.id);
        }
        for (i, edge) in self.edges.iter().enumerate() {
            let mut attrs = Vec::new();
            if let Some(label) = &edge.label {
                attrs.push(format!("label=\"{}\"", dot_text(label)));
            }
            match overlay.map(|o| o.taken[i]) {
                Some(true) => attrs.push("color=\"#2b8a3e\", penwidth=3".into()),
                Some(false) => attrs.push("color=\"#adb5bd\"".into()),
                None => {}
            }
            let (from, to) = (&self.nodes[edge.from].id, &self.nodes[edge.to].id);
            if attrs.is_empty() {
                let _ = writeln!(out, "    {from} -> {to};");
            } else {
                let _ = writeln!(out, "    {from} -> {to} [{}];", attrs.join(", "));
            }
        }
        out.push_str("}\n");
        out
    }
}

fn action_lines(a: &ActionStep) -> Vec<String> {
    let mut lines = vec![a.name.clone()];
    lines.push(match (&a.kind, &a.custom_action) {
        (ActionKind::Custom, Some(action)) => format!("Custom: {action}"),
        (kind, _) => kind.to_string(),
    });
    if !a.input_events.is_empty() {
        let events: Vec<String> = a.input_events.iter().map(ToString::to_string).collect();
        lines.push(format!("Input events: {}", events.join(", ")));
    }
    if let Some(filter) = &a.filter {
        lines.push(format!("Filter: {filter}"));
    }
    if !a.execution_policies.is_empty() {
        lines.push(format!("Policies: {}", a.execution_policies.join(", ")));
    }
    if let Some(provider) = &a.provider {
        lines.push(format!("Provider: {provider}"));
    }
    if let Some(retry) = &a.retry {
        lines.push(format!(
            "Retry: {} attempts, {} ms backoff",
            retry.attempts,
            whole_millis(retry.backoff)
        ));
    }
    if let Some(timeout) = a.timeout {
        lines.push(format!("Timeout: {} ms", whole_millis(timeout)));
    }
    if let Some(event) = &a.on_failure {
        lines.push(format!("On failure: {event}"));
    }
    lines
}

/// Text safe inside a Mermaid `"…"` label: everything that could end the string, open an
/// entity or markdown string, or become HTML is written as a `#…;` entity.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '\\' => out.push_str("#92;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("<br>");
                }
            }
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text safe inside a DOT `"…"` string, with newlines as `\n`.
fn dot_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// How a node of a journey drawing looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
    Unreached,
}

impl Status {
    const ALL: [Self; 5] = [
        Self::Succeeded,
        Self::Failed,
        Self::Skipped,
        Self::Cancelled,
        Self::Unreached,
    ];

    fn class(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
            Self::Unreached => "unreached",
        }
    }

    /// Fill, stroke and text colours.
    fn colors(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Succeeded => ("#d3f9d8", "#2b8a3e", "#1b4d26"),
            Self::Failed => ("#ffe3e3", "#c92a2a", "#7d1a1a"),
            Self::Skipped => ("#e9ecef", "#868e96", "#495057"),
            Self::Cancelled => ("#fff3bf", "#e67700", "#7a4100"),
            Self::Unreached => ("#ffffff", "#ced4da", "#adb5bd"),
        }
    }

    fn css(self) -> String {
        let (fill, stroke, font) = self.colors();
        let dash = if self == Self::Skipped {
            ",stroke-dasharray:5 3"
        } else {
            ""
        };
        format!("fill:{fill},stroke:{stroke},color:{font}{dash}")
    }
}

impl From<Outcome> for Status {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Succeeded => Self::Succeeded,
            Outcome::Failed => Self::Failed,
            Outcome::Skipped => Self::Skipped,
            Outcome::Cancelled => Self::Cancelled,
        }
    }
}

/// A journey laid over a graph: per node its status and note, per edge whether it was taken.
#[derive(Debug)]
struct Overlay {
    status: Vec<Status>,
    notes: Vec<Option<String>>,
    taken: Vec<bool>,
}

impl Overlay {
    fn new(graph: &Graph, flow: &Flow, journey: &Journey) -> Self {
        // Per step name, its records split into merge openings (the first record of a name in
        // each execution) and the rest; a name is unique within a flow.
        let mut first: HashMap<&str, Vec<&StepRecord>> = HashMap::new();
        let mut rest: HashMap<&str, Vec<&StepRecord>> = HashMap::new();
        let mut seen = HashSet::new();
        for r in journey.steps.iter().filter(|r| r.flow == flow.name) {
            if seen.insert((r.execution.clone(), r.step.as_str())) {
                first.entry(&r.step).or_default().push(r);
            } else {
                rest.entry(&r.step).or_default().push(r);
            }
        }
        let runs: Vec<Vec<&StepRecord>> = graph
            .nodes
            .iter()
            .map(|node| match &node.step {
                None => Vec::new(),
                Some((name, Role::Split)) => first.get(name.as_str()).cloned().unwrap_or_default(),
                Some((name, Role::Join)) => rest.get(name.as_str()).cloned().unwrap_or_default(),
                Some((name, Role::Whole)) => journey
                    .steps
                    .iter()
                    .filter(|r| r.flow == flow.name && r.step == *name)
                    .collect(),
            })
            .collect();
        let last: Vec<Option<&StepRecord>> = runs.iter().map(|r| r.last().copied()).collect();

        let mut notes = vec![None; graph.nodes.len()];
        for (i, node) in graph.nodes.iter().enumerate() {
            if let (Some(r), Shape::Action | Shape::Merge) = (last[i], node.shape) {
                let ms = r.ended.as_millis().saturating_sub(r.started.as_millis());
                let mut note = format!("{} · {ms} ms", r.outcome);
                if r.attempts > 1 {
                    let _ = write!(note, " · {} attempts", r.attempts);
                }
                if runs[i].len() > 1 {
                    let _ = write!(note, " · run {} times", runs[i].len());
                }
                notes[i] = Some(note);
            }
        }

        // Whether a path went on past a node to whatever follows it, for edges into merges and
        // ends (every other node has one edge in, taken exactly when the node ran).
        let passed = |edge: &Edge| -> bool {
            let from = &graph.nodes[edge.from];
            let Some(r) = last[edge.from] else {
                return false;
            };
            match (from.shape, edge.branch) {
                // An empty path leaves no step of its own: the Condition's record says which
                // path it took (in the engine's wording).
                (Shape::Condition, Some(b)) => {
                    let path = if b == 0 { "yes" } else { "no" };
                    let hint = format!("took the {path} path");
                    runs[edge.from]
                        .iter()
                        .any(|r| r.details.iter().any(|d| d.contains(&hint)))
                }
                (Shape::Splitter, _) => true,
                _ => r.outcome == Outcome::Succeeded,
            }
        };
        let taken: Vec<bool> = graph
            .edges
            .iter()
            .map(|e| match graph.nodes[e.to].shape {
                Shape::Merge | Shape::End => passed(e),
                _ => last[e.to].is_some(),
            })
            .collect();

        let mut status: Vec<Status> = last
            .iter()
            .map(|r| r.map_or(Status::Unreached, |r| r.outcome.into()))
            .collect();
        let any = last.iter().any(Option::is_some);
        for (i, node) in graph.nodes.iter().enumerate() {
            match node.shape {
                Shape::Start if any => status[i] = Status::Succeeded,
                Shape::End if graph.edges.iter().zip(&taken).any(|(e, t)| *t && e.to == i) => {
                    status[i] = Status::Succeeded;
                }
                _ => {}
            }
        }
        Self {
            status,
            notes,
            taken,
        }
    }
}
