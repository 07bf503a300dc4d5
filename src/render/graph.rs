//! The graph every rendering draws: nodes and edges built from a flow's structure, the
//! blocks a layout places them by, and a journey laid over it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::clock::whole_millis;
use crate::execution::ExecutionStatus;
use crate::flow::{ActionStep, ConditionStep, Flow, Sequence, SplitterStep, Step};
use crate::journey::{Journey, Outcome, StepRecord};
use crate::orchestration::ActionKind;

/// What a node is drawn as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    Start,
    End,
    Action,
    Condition,
    Splitter,
    Merge,
}

/// Which records of a step name a node shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Every record: actions, Conditions and Splitters.
    Whole,
    /// The opening of a merge element: the first record of each execution.
    Split,
    /// The join of a merge element: the later records of each execution.
    Join,
}

/// One node: a step, a merge, the start or an end.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) id: String,
    pub(super) shape: Shape,
    /// Label lines, unescaped.
    pub(super) lines: Vec<String>,
    /// The step name and role to look up in a journey.
    pub(super) step: Option<(String, Role)>,
}

/// One edge, by node index.
#[derive(Debug)]
pub(super) struct Edge {
    pub(super) from: usize,
    pub(super) to: usize,
    pub(super) label: Option<String>,
    /// The branch this edge opens: 0 for `yes`, 1 for `no`, or the splitter branch index.
    pub(super) branch: Option<usize>,
}

/// An edge whose target is still to come: the index of an edge drawn with [`OPEN`] as its
/// target. Drawing edges when their source is drawn lists each path's edges in path order.
#[derive(Debug)]
struct Open(usize);

/// The target of an edge whose target is still to come.
const OPEN: usize = usize::MAX;

/// How the nodes sit in the flow's structure, for a layout: a sequence is a list of blocks
/// drawn one under the other.
#[derive(Debug)]
pub(super) enum Block {
    /// One node.
    Node(usize),
    /// A Condition or Splitter node, its paths side by side under it and, for a merge
    /// element, the merge node under them.
    Fork {
        element: usize,
        branches: Vec<Branch>,
        merge: Option<usize>,
    },
}

/// One path of a [`Block::Fork`].
#[derive(Debug)]
pub(super) struct Branch {
    /// The edge from the element into the path.
    pub(super) entry: usize,
    /// The path's blocks (for a path that does not merge, ending in its end node).
    pub(super) blocks: Vec<Block>,
    /// The edges from the path's end into the merge; for an empty path, `entry` itself.
    pub(super) exits: Vec<usize>,
}

/// A flow as nodes and edges, with the blocks that say how they nest.
#[derive(Debug, Default)]
pub(super) struct Graph {
    pub(super) nodes: Vec<Node>,
    pub(super) edges: Vec<Edge>,
    /// The top-level sequence: the start node, the flow's steps, the end node if any.
    pub(super) blocks: Vec<Block>,
}

impl Graph {
    pub(super) fn of(flow: &Flow) -> Self {
        let mut g = Self::default();
        let start = g.node("start".into(), Shape::Start, vec!["Start".into()], None);
        let mut blocks = vec![Block::Node(start)];
        let open = vec![g.open(start, None, None)];
        let tails = g.sequence(&flow.steps, "s", open, &mut blocks);
        g.end("stop".into(), tails, &mut blocks);
        g.blocks = blocks;
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
    fn end(&mut self, id: String, open: Vec<Open>, blocks: &mut Vec<Block>) {
        if !open.is_empty() {
            let end = self.node(id, Shape::End, vec!["End".into()], None);
            blocks.push(Block::Node(end));
            self.connect(open, end);
        }
    }

    /// Draws a sequence whose steps get ids `{prefix}{index}`, entered by `open`; returns the
    /// edges left open at its end (none when it ends in a Condition or a Splitter).
    fn sequence(
        &mut self,
        steps: &Sequence,
        prefix: &str,
        mut open: Vec<Open>,
        blocks: &mut Vec<Block>,
    ) -> Vec<Open> {
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
                    blocks.push(Block::Node(n));
                    self.connect(open, n);
                    vec![self.open(n, None, None)]
                }
                Step::Condition(c) => self.condition(c, &id, open, false, blocks),
                Step::ConditionMerge(c) => self.condition(c, &id, open, true, blocks),
                Step::Splitter(s) => self.splitter(s, &id, open, false, blocks),
                Step::SplitterMerge(s) => self.splitter(s, &id, open, true, blocks),
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
        blocks: &mut Vec<Block>,
    ) -> Vec<Open> {
        let kinds = ("Condition", "Condition-Merge");
        let n = self.fork(&c.name, id, Shape::Condition, kinds, open, merge);
        let paths = [("yes", &c.yes), ("no", &c.no)];
        self.branches(&c.name, id, n, paths.into_iter(), merge, blocks)
    }

    fn splitter(
        &mut self,
        s: &SplitterStep,
        id: &str,
        open: Vec<Open>,
        merge: bool,
        blocks: &mut Vec<Block>,
    ) -> Vec<Open> {
        let kinds = ("Splitter", "Splitter-Merge");
        let n = self.fork(&s.name, id, Shape::Splitter, kinds, open, merge);
        let paths = s
            .branches
            .iter()
            .map(|(name, steps)| (name.as_str(), steps));
        self.branches(&s.name, id, n, paths, merge, blocks)
    }

    /// The node of a Condition or Splitter (`kinds`: its label alone and with a merge),
    /// connected from `open`.
    fn fork(
        &mut self,
        name: &str,
        id: &str,
        shape: Shape,
        kinds: (&str, &str),
        open: Vec<Open>,
        merge: bool,
    ) -> usize {
        let (kind, role) = if merge {
            (kinds.1, Role::Split)
        } else {
            (kinds.0, Role::Whole)
        };
        let n = self.node(
            id.to_owned(),
            shape,
            vec![name.to_owned(), kind.into()],
            Some((name.to_owned(), role)),
        );
        self.connect(open, n);
        n
    }

    /// Draws the paths of an element; joins them in a merge node when `merge`, else ends each.
    fn branches<'a>(
        &mut self,
        name: &str,
        id: &str,
        element: usize,
        paths: impl Iterator<Item = (&'a str, &'a Sequence)>,
        merge: bool,
        blocks: &mut Vec<Block>,
    ) -> Vec<Open> {
        let mut joined = Vec::new();
        let mut branches = Vec::new();
        for (b, (label, steps)) in paths.enumerate() {
            let entry = self.open(element, Some(label.to_owned()), Some(b));
            let entry_edge = entry.0;
            let prefix = format!("{id}_b{b}_");
            let mut inner = Vec::new();
            let tails = self.sequence(steps, &prefix, vec![entry], &mut inner);
            let mut exits = Vec::new();
            if merge {
                exits.extend(tails.iter().map(|Open(e)| *e));
                joined.extend(tails);
            } else {
                self.end(format!("{prefix}stop"), tails, &mut inner);
            }
            branches.push(Branch {
                entry: entry_edge,
                blocks: inner,
                exits,
            });
        }
        let merge_node = merge.then(|| {
            let m = self.node(
                format!("{id}_m"),
                Shape::Merge,
                vec![name.to_owned(), "Merge".into()],
                Some((name.to_owned(), Role::Join)),
            );
            self.connect(joined, m);
            m
        });
        blocks.push(Block::Fork {
            element,
            branches,
            merge: merge_node,
        });
        merge_node
            .map(|m| vec![self.open(m, None, None)])
            .unwrap_or_default()
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

/// How a node of a journey drawing looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Succeeded,
    Failed,
    Skipped,
    /// A live execution's path stands here: the step before it succeeded and it has not run
    /// (an action waiting for its input event, or about to run; a merge waiting for its
    /// other branches).
    Waiting,
    Cancelled,
    Unreached,
}

impl Status {
    pub(super) const ALL: [Self; 6] = [
        Self::Succeeded,
        Self::Failed,
        Self::Skipped,
        Self::Waiting,
        Self::Cancelled,
        Self::Unreached,
    ];

    pub(super) fn class(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Waiting => "waiting",
            Self::Cancelled => "cancelled",
            Self::Unreached => "unreached",
        }
    }

    /// How a legend names it.
    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
            Self::Waiting => "Waiting",
            Self::Cancelled => "Cancelled",
            Self::Unreached => "Not reached",
        }
    }

    /// Fill, stroke and text colours.
    pub(super) fn colors(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Succeeded => ("#d3f9d8", "#2b8a3e", "#1b4d26"),
            Self::Failed => ("#ffe3e3", "#c92a2a", "#7d1a1a"),
            Self::Skipped => ("#e9ecef", "#868e96", "#495057"),
            Self::Waiting => ("#d0ebff", "#1971c2", "#0b3d6b"),
            Self::Cancelled => ("#fff3bf", "#e67700", "#7a4100"),
            Self::Unreached => ("#ffffff", "#ced4da", "#adb5bd"),
        }
    }

    pub(super) fn css(self) -> String {
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
pub(super) struct Overlay {
    pub(super) status: Vec<Status>,
    pub(super) notes: Vec<Option<String>>,
    pub(super) taken: Vec<bool>,
}

impl Overlay {
    pub(super) fn new(graph: &Graph, flow: &Flow, journey: &Journey) -> Self {
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

        // Whether a path went on past a node to whatever follows it along this edge.
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

        let mut status: Vec<Status> = last
            .iter()
            .map(|r| r.map_or(Status::Unreached, |r| r.outcome.into()))
            .collect();
        // A step that has not run where a path arrived, while the flow's latest execution of
        // this order is live, is where that path stands now.
        let live = journey
            .executions
            .iter()
            .rfind(|e| e.flow == flow.name)
            .is_some_and(|e| {
                matches!(
                    e.status,
                    ExecutionStatus::Running | ExecutionStatus::Waiting | ExecutionStatus::Failed
                )
            });
        if live {
            for (i, node) in graph.nodes.iter().enumerate() {
                let arrived = || graph.edges.iter().any(|e| e.to == i && passed(e));
                if last[i].is_none() && node.shape != Shape::End && arrived() {
                    status[i] = Status::Waiting;
                    notes[i] = Some("Waiting".to_owned());
                }
            }
        }

        // Edges into merges and ends are taken when the path went on past their source; every
        // other node has one edge in, taken exactly when the node ran or its path stands there.
        let taken: Vec<bool> = graph
            .edges
            .iter()
            .map(|e| match graph.nodes[e.to].shape {
                Shape::Merge | Shape::End => passed(e),
                _ => last[e.to].is_some() || status[e.to] == Status::Waiting,
            })
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
