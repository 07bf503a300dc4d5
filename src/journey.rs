//! The journey of an order: every step result and the timeline of its events.
//!
//! Each step an execution takes leaves a compact [`StepRow`] in the store: the execution's
//! sequence number, the step's index in the compiled plan ([`StepRef`]), the records as a
//! selection, the outcome, attempts, times, and structured details — no names and no
//! formatted text. [`Engine::journey`](crate::Engine::journey) (and [`Journey::resolve`] for
//! tools that read a store without an engine) resolves the rows into readable
//! [`StepRecord`]s with the flow's step names, beside the order's [`TimelineEntry`]s, as a
//! [`Journey`].

use std::fmt;
use std::sync::Arc;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::document::{Order, OrderId, RecordId};
use crate::event::EventKind;
use crate::execution::{ExecutionId, ExecutionStatus, OrderState, Selection};
pub use crate::execution::{Outcome, TimelineEntry};
use crate::policy::Criticality;

/// What kind of element a plan node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum NodeElement {
    Action,
    Condition,
    Splitter,
}

/// One plan node's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeNames {
    pub(crate) name: String,
    pub(crate) element: NodeElement,
    /// A splitter's branches.
    pub(crate) branches: Vec<String>,
    /// An action's filter policy.
    pub(crate) filter: Option<String>,
}

/// One merge's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MergeNames {
    pub(crate) name: String,
    pub(crate) branches: Vec<String>,
}

/// The names of a flow's steps and merges by plan index, built by
/// [`StepNames::of`](crate::flow::StepNames::of) from the flow's definition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepNames {
    pub(crate) nodes: Vec<NodeNames>,
    pub(crate) merges: Vec<MergeNames>,
}

impl StepNames {
    /// The name of plan node `n`.
    pub(crate) fn node(&self, n: u32) -> Option<&NodeNames> {
        self.nodes.get(n as usize)
    }

    /// The names of merge `j`.
    pub(crate) fn merge(&self, j: u32) -> Option<&MergeNames> {
        self.merges.get(j as usize)
    }
}

/// A failed check of an execution policy on one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// The policy.
    pub policy: String,
    /// Its criticality.
    pub criticality: Criticality,
    /// The record that failed the check.
    pub record: RecordId,
    /// Why.
    pub reason: String,
}

/// Which element of the compiled plan a journey row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StepRef {
    /// A step (action, condition or splitter), by plan index.
    Node(u32),
    /// A merge (of a condition-merge or splitter-merge), by plan index.
    Merge(u32),
    /// The end of a path.
    End,
    /// A step named in the row itself ([`StepRow::from_json`] on a row written by 0.1).
    Named,
}

/// What one branch of a merge did when the merge fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BranchMark {
    /// A token arrived from it.
    Arrived,
    /// Its path failed.
    Failed,
    /// It was entered and every record of it was filtered out.
    FilteredOut,
    /// No token entered it.
    NotEntered,
}

/// What a path was doing when its execution was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelledWhile {
    /// Waiting for an input event.
    Waiting,
    /// About to run its step.
    Ready,
    /// With its provider call committed as under way by a turn that did not finish.
    Calling,
    /// Waiting to retry `attempt` at `at`.
    Retrying {
        /// The attempt that was due.
        attempt: u32,
        /// When.
        at: Timestamp,
    },
    /// After its path failed, for this reason.
    Failed(String),
}

/// A structured detail of a journey row, rendered for readers by [`Journey::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Detail {
    /// The step took the event at this timeline position.
    TookEvent(u64),
    /// A condition took its yes (or no) path.
    Path {
        /// Whether the yes path.
        yes: bool,
    },
    /// A splitter offered its token to every branch.
    Offered,
    /// What each branch of a merge did, by branch.
    Merge(Vec<BranchMark>),
    /// The step's filter admitted no record.
    FilterAdmittedNone,
    /// A note the action left.
    Note(String),
    /// Why the step (or an earlier attempt of it) failed.
    Error(String),
    /// The execution was cancelled while the path stood here.
    Cancelled(CancelledWhile),
}

/// One step an execution took, as the store keeps it: compact, names resolved on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRow {
    /// The execution's sequence number within the order.
    pub(crate) execution: u32,
    /// Reprocess round.
    pub(crate) round: u32,
    /// The step.
    pub(crate) step: StepRef,
    /// The records the step took (after its filter).
    pub(crate) records: Selection,
    /// How many lines and fulfillment orders the order had then ("all" means these).
    pub(crate) sizes: (u32, u32),
    pub(crate) outcome: Outcome,
    pub(crate) attempts: u32,
    pub(crate) started: Timestamp,
    pub(crate) ended: Timestamp,
    pub(crate) details: Vec<Detail>,
    pub(crate) findings: Vec<Finding>,
    /// The step's name, for a row written by 0.1 ([`StepRef::Named`]).
    pub(crate) name: Option<String>,
}

/// A journey row as orderflow 0.1 wrote it: names and formatted text.
#[derive(Deserialize)]
struct StepRecord1 {
    execution: ExecutionId,
    step: String,
    records: Vec<RecordId>,
    outcome: Outcome,
    attempts: u32,
    round: u32,
    started: Timestamp,
    ended: Timestamp,
    details: Vec<String>,
    findings: Vec<Finding>,
}

impl StepRow {
    /// A row from its JSON form, as this version writes it or as orderflow 0.1 wrote it
    /// (with the step's name, its record ids and its details as text, all kept), for stores
    /// that kept JSON rows.
    ///
    /// # Errors
    ///
    /// The text is neither form; the message names what did not parse.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let current = match serde_json::from_str::<Self>(text) {
            Ok(row) => return Ok(row),
            Err(e) => e.to_string(),
        };
        let old: StepRecord1 = serde_json::from_str(text).map_err(|_| current)?;
        let mut records = Selection {
            lines: Some(Vec::new()),
            fulfillment_orders: Some(Vec::new()),
        };
        for r in old.records {
            match r {
                RecordId::Line(id) => records.lines.get_or_insert_with(Vec::new).push(id),
                RecordId::FulfillmentOrder(id) => records
                    .fulfillment_orders
                    .get_or_insert_with(Vec::new)
                    .push(id),
                RecordId::Order | RecordId::FulfillmentOrderLine(..) => {}
            }
        }
        Ok(Self {
            execution: old.execution.seq,
            round: old.round,
            step: StepRef::Named,
            records,
            sizes: (0, 0),
            outcome: old.outcome,
            attempts: old.attempts,
            started: old.started,
            ended: old.ended,
            details: old.details.into_iter().map(Detail::Note).collect(),
            findings: old.findings,
            name: Some(old.step),
        })
    }

    /// A row for execution `execution` (its sequence number).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        execution: u32,
        round: u32,
        step: StepRef,
        records: &Selection,
        order: &Order,
        outcome: Outcome,
        attempts: u32,
        started: Timestamp,
        ended: Timestamp,
        details: Vec<Detail>,
        findings: Vec<Finding>,
    ) -> Self {
        Self {
            execution,
            round,
            step,
            records: records.clone(),
            sizes: (
                order.lines.len() as u32,
                order.fulfillment_orders.len() as u32,
            ),
            outcome,
            attempts,
            started,
            ended,
            details,
            findings,
            name: None,
        }
    }

    /// The execution's sequence number within the order.
    pub fn execution(&self) -> u32 {
        self.execution
    }

    /// The step.
    pub fn step(&self) -> StepRef {
        self.step
    }

    /// How it ended.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// When it ended.
    pub fn ended(&self) -> Timestamp {
        self.ended
    }

    /// Its details.
    pub fn details(&self) -> &[Detail] {
        &self.details
    }

    /// The records it took, as ids in `order` (the lines and fulfillment orders the order
    /// had when the step ran, when it took all of them).
    pub(crate) fn record_ids(&self, order: &Order) -> Vec<RecordId> {
        let (lines, fos) = (self.sizes.0 as usize, self.sizes.1 as usize);
        let mut v = vec![RecordId::Order];
        let line_ids = order.lines.iter().map(|l| &l.id);
        match &self.records.lines {
            None => v.extend(line_ids.take(lines).cloned().map(RecordId::Line)),
            Some(ids) => v.extend(
                line_ids
                    .filter(|id| ids.contains(id))
                    .cloned()
                    .map(RecordId::Line),
            ),
        }
        let fo_ids = order.fulfillment_orders.iter().map(|f| &f.id);
        match &self.records.fulfillment_orders {
            None => v.extend(fo_ids.take(fos).cloned().map(RecordId::FulfillmentOrder)),
            Some(ids) => v.extend(
                fo_ids
                    .filter(|id| ids.contains(id))
                    .cloned()
                    .map(RecordId::FulfillmentOrder),
            ),
        }
        v
    }
}

/// What kind of element a journey row is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// An action (the kind a journey written without kinds reads as).
    #[default]
    Action,
    /// A condition (of a condition or condition-merge).
    Condition,
    /// A splitter (of a splitter or splitter-merge).
    Splitter,
    /// The merge of a condition-merge or splitter-merge: its row is the merge's, apart from
    /// the condition's or splitter's row of the same name.
    Merge,
    /// The end of a path (a cancelled path that had finished its steps).
    End,
}

/// One step an execution took, resolved for a reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// The execution.
    pub execution: ExecutionId,
    /// The flow.
    pub flow: String,
    /// The flow version the execution is pinned to.
    pub version: Version,
    /// The step's name.
    pub step: String,
    /// What kind of element the step is.
    #[serde(default)]
    pub kind: StepKind,
    /// The records the step took (after its filter).
    pub records: Vec<RecordId>,
    /// How it ended.
    pub outcome: Outcome,
    /// Provider call attempts made (0 when none).
    pub attempts: u32,
    /// Reprocess round: 0 for the first run, 1 after the first reprocess, …
    pub round: u32,
    /// When the step started.
    pub started: Timestamp,
    /// When it ended.
    pub ended: Timestamp,
    /// What happened, for a reader ("took the yes path", "took event 'Shipped' (#3)").
    pub details: Vec<String>,
    /// Failed policy checks.
    pub findings: Vec<Finding>,
}

/// A summary of one execution of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionSummary {
    /// The execution.
    pub id: ExecutionId,
    /// The flow.
    pub flow: String,
    /// The pinned version.
    pub version: Version,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// Why its failed paths failed (or, while a path retries, why its attempts failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Everything that happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Journey {
    /// The order.
    pub order: OrderId,
    /// Its executions, in start order.
    pub executions: Vec<ExecutionSummary>,
    /// Every step taken, in order.
    pub steps: Vec<StepRecord>,
    /// Every event, in arrival order.
    pub timeline: Vec<TimelineEntry>,
}

impl Journey {
    /// An order's journey from what a [`Store`](crate::Store) holds: its state and its
    /// journey rows, with step names from `names` (the [`StepNames`] of each execution's
    /// flow version, e.g. `StepNames::of(&store.flow_version(..))`; a step whose flow is
    /// unknown is named by its plan index).
    pub fn resolve(
        state: &OrderState,
        rows: &[StepRow],
        names: impl Fn(&str, &Version) -> Option<Arc<StepNames>>,
    ) -> Self {
        let tables: Vec<Option<Arc<StepNames>>> = state
            .executions
            .iter()
            .map(|e| names(&e.flow, &e.version))
            .collect();
        let steps = rows
            .iter()
            .filter_map(|row| {
                let i = (row.execution as usize).checked_sub(1)?;
                let exec = state.executions.get(i)?;
                Some(resolve_row(state, row, exec, tables[i].as_deref()))
            })
            .collect();
        Self {
            order: state.order.id.clone(),
            executions: state
                .executions
                .iter()
                .map(|e| ExecutionSummary {
                    id: e.id.clone(),
                    flow: e.flow.clone(),
                    version: e.version.clone(),
                    status: e.status(),
                    failure: e.failure(),
                })
                .collect(),
            steps,
            timeline: state.timeline.clone(),
        }
    }

    /// The records of a step by name, in order (a step runs more than once when reprocessed
    /// or taken by several paths).
    pub fn step<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a StepRecord> + 'a {
        self.steps.iter().filter(move |s| s.step == name)
    }

    /// The outcome of the last run of a step, if it ran (for a condition-merge or
    /// splitter-merge, the merge's when it fired: see [`merge_outcome`](Self::merge_outcome)
    /// and [`element_outcome`](Self::element_outcome)).
    pub fn outcome(&self, step: &str) -> Option<Outcome> {
        self.step(step).last().map(|s| s.outcome)
    }

    /// The outcome of the last firing of the merge named `step`.
    pub fn merge_outcome(&self, step: &str) -> Option<Outcome> {
        self.step(step)
            .filter(|s| s.kind == StepKind::Merge)
            .last()
            .map(|s| s.outcome)
    }

    /// The outcome of the last run of the condition or splitter named `step` (not its merge).
    pub fn element_outcome(&self, step: &str) -> Option<Outcome> {
        self.step(step)
            .filter(|s| s.kind != StepKind::Merge)
            .last()
            .map(|s| s.outcome)
    }

    /// Whether an event of this kind is on the timeline.
    pub fn has_event(&self, kind: &EventKind) -> bool {
        self.timeline.iter().any(|e| &e.kind == kind)
    }
}

fn resolve_row(
    state: &OrderState,
    row: &StepRow,
    exec: &crate::execution::Execution,
    names: Option<&StepNames>,
) -> StepRecord {
    let node = match row.step {
        StepRef::Node(n) => names.and_then(|t| t.node(n)),
        _ => None,
    };
    let merge = match row.step {
        StepRef::Merge(j) => names.and_then(|t| t.merge(j)),
        _ => None,
    };
    let (step, kind) = match row.step {
        StepRef::Node(n) => (
            node.map_or_else(|| format!("step #{n}"), |x| x.name.clone()),
            match node.map(|x| x.element) {
                Some(NodeElement::Condition) => StepKind::Condition,
                Some(NodeElement::Splitter) => StepKind::Splitter,
                _ => StepKind::Action,
            },
        ),
        StepRef::Merge(j) => (
            merge.map_or_else(|| format!("merge #{j}"), |x| x.name.clone()),
            StepKind::Merge,
        ),
        StepRef::End => ("end".to_owned(), StepKind::End),
        StepRef::Named => (row.name.clone().unwrap_or_default(), StepKind::Action),
    };
    let mut details = Vec::with_capacity(row.details.len());
    for d in &row.details {
        match d {
            Detail::TookEvent(seq) => {
                if let Some(ev) = state.timeline.iter().find(|ev| ev.seq == *seq) {
                    details.push(format!("took event '{}' (#{})", ev.kind, ev.seq));
                }
            }
            Detail::Path { yes } => {
                details.push(format!("took the {} path", if *yes { "yes" } else { "no" }))
            }
            Detail::Offered => details.push(format!(
                "offered to branches {}",
                node.map(|x| x.branches.join(", ")).unwrap_or_default()
            )),
            Detail::Merge(marks) => {
                let name = |b: usize| {
                    merge
                        .and_then(|x| x.branches.get(b))
                        .map_or("?", String::as_str)
                };
                for (label, mark) in [
                    ("arrived", BranchMark::Arrived),
                    ("failed", BranchMark::Failed),
                    ("filtered out", BranchMark::FilteredOut),
                    ("not entered", BranchMark::NotEntered),
                ] {
                    let names: Vec<&str> = marks
                        .iter()
                        .enumerate()
                        .filter(|(_, m)| **m == mark)
                        .map(|(b, _)| name(b))
                        .collect();
                    if !names.is_empty() {
                        details.push(format!("{label}: {}", names.join(", ")));
                    }
                }
            }
            Detail::FilterAdmittedNone => details.push(format!(
                "filter '{}' admitted no record",
                node.and_then(|x| x.filter.as_deref()).unwrap_or("?")
            )),
            Detail::Note(s) | Detail::Error(s) => details.push(s.clone()),
            Detail::Cancelled(c) => details.push(match c {
                CancelledWhile::Waiting => "cancelled while waiting for an input event".to_owned(),
                CancelledWhile::Ready => "cancelled before the step ran".to_owned(),
                CancelledWhile::Calling => "cancelled with its provider call committed as under \
                     way by a turn that did not finish: the provider may have taken the call"
                    .to_owned(),
                CancelledWhile::Retrying { attempt, at } => {
                    format!("cancelled while waiting to retry: attempt {attempt} was due at {at}")
                }
                CancelledWhile::Failed(error) if error.is_empty() => {
                    "cancelled after the path failed".to_owned()
                }
                CancelledWhile::Failed(error) => {
                    format!("cancelled after the path failed: {error}")
                }
            }),
        }
    }
    StepRecord {
        execution: exec.id.clone(),
        flow: exec.flow.clone(),
        version: exec.version.clone(),
        step,
        kind,
        records: row.record_ids(&state.order),
        outcome: row.outcome,
        attempts: row.attempts,
        round: row.round,
        started: row.started,
        ended: row.ended,
        details,
        findings: row.findings.clone(),
    }
}

/// A report for a reader: the executions; each step, led by the time it started (RFC 3339 in
/// UTC, as [`Timestamp`] displays), with its flow, outcome, records and details; then the
/// timeline, each event with the time it arrived:
///
/// ```text
/// order T-1
///   execution T-1#1 of 'Check' v1.0.0: Completed
///   2028-02-29T23:59:59.500Z [Check] Header → Succeeded (order, line 1); took event 'New Order' (#1)
///   timeline:
///       1. 2028-02-29T23:59:59.500Z New Order
///       2. 2028-02-29T23:59:59.500Z Validation of Order Header has Succeeded ← Header
/// ```
impl fmt::Display for Journey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "order {}", self.order)?;
        for e in &self.executions {
            write!(
                f,
                "  execution {} of '{}' v{}: {:?}",
                e.id, e.flow, e.version, e.status
            )?;
            if let Some(why) = &e.failure {
                write!(f, " ({why})")?;
            }
            writeln!(f)?;
        }
        for s in &self.steps {
            let merge = if s.kind == StepKind::Merge {
                " (merge)"
            } else {
                ""
            };
            write!(
                f,
                "  {} [{}] {}{merge} → {}",
                s.started, s.flow, s.step, s.outcome
            )?;
            if !s.records.is_empty() {
                let records: Vec<String> = s.records.iter().map(ToString::to_string).collect();
                write!(f, " ({})", records.join(", "))?;
            }
            for d in &s.details {
                write!(f, "; {d}")?;
            }
            for finding in &s.findings {
                write!(
                    f,
                    "; {} on {}: {}",
                    finding.policy, finding.record, finding.reason
                )?;
            }
            writeln!(f)?;
        }
        writeln!(f, "  timeline:")?;
        for e in &self.timeline {
            write!(f, "    {:>3}. {} {}", e.seq, e.at, e.kind)?;
            if let Some(r) = &e.record {
                write!(f, " ({r})")?;
            }
            if let Some(by) = &e.raised_by {
                write!(f, " ← {by}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
