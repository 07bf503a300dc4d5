//! Execution state: what the store keeps about an order's runs through flows.
//!
//! An [`Execution`] is one order going through one published flow version. It holds tokens;
//! a token is a position in the flow plus the records it carries (the order and a
//! [`Selection`] of its lines and fulfillment orders). Merges keep their progress per
//! execution. All of it is serde data kept in the [`Store`](crate::store::Store) as part of
//! the order's [`OrderState`], so an engine can resume any execution from the store alone.
//!
//! The state is opaque: hosts read it through accessors ([`OrderState::order`],
//! [`Execution::status`], [`Execution::failure`], [`Execution::paths`]) and through
//! [`Engine::journey`](crate::Engine::journey); only the engine's token machine
//! (`engine::machine`) changes it. Positions are indexes into the compiled plan of the
//! execution's flow version, and every execution carries the fingerprint of that plan
//! ([`Execution::plan_tag`]): an engine whose plan compiler numbers a flow differently refuses
//! the execution instead of sending its tokens to the wrong step.

mod legacy;

use std::fmt;

use semver::Version;
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::document::{FulfillmentOrderId, LineId, Order, OrderId, RecordId};
use crate::event::{EventId, EventKind};

/// Identifies an execution: the order and a per-order sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ExecutionId {
    /// The order.
    pub order: OrderId,
    /// 1 for the order's first execution, 2 for the next, …
    pub seq: u32,
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.order, self.seq)
    }
}

impl AsRef<Self> for ExecutionId {
    fn as_ref(&self) -> &Self {
        self
    }
}

/// An execution that waits for reprocess, with why
/// ([`Engine::failed_executions`](crate::Engine::failed_executions)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedExecution {
    /// The execution.
    pub id: ExecutionId,
    /// Its flow.
    pub flow: String,
    /// The flow version it is pinned to.
    pub version: Version,
    /// Why its failed paths failed, joined with "; " when several did.
    pub reason: String,
}

impl AsRef<ExecutionId> for FailedExecution {
    fn as_ref(&self) -> &ExecutionId {
        &self.id
    }
}

impl PartialEq<ExecutionId> for FailedExecution {
    fn eq(&self, other: &ExecutionId) -> bool {
        &self.id == other
    }
}

/// Where an execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Some path can move now.
    Running,
    /// Every live path waits for an event.
    Waiting,
    /// A path ended Failed; the execution waits for reprocess (other paths may still wait).
    Failed,
    /// Every path ended.
    Completed,
    /// Ended by [`Engine::cancel`](crate::Engine::cancel): none of its paths runs again.
    Cancelled,
}

/// A selection of an order's records: `None` means all of them (including ones created later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Selected lines, or all.
    pub lines: Option<Vec<LineId>>,
    /// Selected fulfillment orders, or all.
    pub fulfillment_orders: Option<Vec<FulfillmentOrderId>>,
}

impl Selection {
    /// Whether the line is selected.
    pub fn has_line(&self, id: &LineId) -> bool {
        self.lines.as_ref().is_none_or(|v| v.contains(id))
    }

    /// Whether the fulfillment order is selected.
    pub fn has_fulfillment_order(&self, id: &FulfillmentOrderId) -> bool {
        self.fulfillment_orders
            .as_ref()
            .is_none_or(|v| v.contains(id))
    }

    /// Adds a fulfillment order to an explicit selection (all stays all).
    pub fn add_fulfillment_order(&mut self, id: FulfillmentOrderId) {
        if let Some(v) = &mut self.fulfillment_orders {
            if !v.contains(&id) {
                v.push(id);
            }
        }
    }

    /// The union of two selections.
    pub fn union(&mut self, other: &Self) {
        fn merge<T: Clone + PartialEq>(a: &mut Option<Vec<T>>, b: &Option<Vec<T>>) {
            match (a.as_mut(), b) {
                (None, _) => {}
                (Some(_), None) => *a = None,
                (Some(x), Some(y)) => {
                    for id in y {
                        if !x.contains(id) {
                            x.push(id.clone());
                        }
                    }
                }
            }
        }
        merge(&mut self.lines, &other.lines);
        merge(&mut self.fulfillment_orders, &other.fulfillment_orders);
    }

    /// The records this selection names in `order`: the order, then its selected lines and
    /// fulfillment orders.
    pub fn records(&self, order: &Order) -> Vec<RecordId> {
        let lines = order.lines.iter().filter(|l| self.has_line(&l.id)).count();
        let fos = order
            .fulfillment_orders
            .iter()
            .filter(|f| self.has_fulfillment_order(&f.id))
            .count();
        // Sized up front: journeys keep these lists, so no spare capacity.
        let mut v = Vec::with_capacity(1 + lines + fos);
        v.push(RecordId::Order);
        v.extend(
            order
                .lines
                .iter()
                .filter(|l| self.has_line(&l.id))
                .map(|l| RecordId::Line(l.id.clone())),
        );
        v.extend(
            order
                .fulfillment_orders
                .iter()
                .filter(|f| self.has_fulfillment_order(&f.id))
                .map(|f| RecordId::FulfillmentOrder(f.id.clone())),
        );
        v
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Did its work.
    Succeeded,
    /// Failed after its retries.
    Failed,
    /// Its filter left no records (or no branch of a merge was entered); not a failure.
    Skipped,
    /// Its execution was cancelled ([`Engine::cancel`](crate::Engine::cancel)) while a path
    /// stood at the step (waiting, failed, retrying or about to run): the path ended there.
    Cancelled,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
            Self::Cancelled => "Cancelled",
        })
    }
}

/// One event on an order's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineEntry {
    /// Position on the timeline, from 1.
    pub seq: u64,
    /// The event id.
    pub id: EventId,
    /// What happened.
    pub kind: EventKind,
    /// The record it concerns.
    pub record: Option<RecordId>,
    /// When it arrived.
    pub at: Timestamp,
    /// The step that raised it, or `None` for a submitted event.
    pub raised_by: Option<String>,
}

/// Where a token is: an index into the compiled plan of its execution's flow version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Position {
    /// At a step (a node of the plan).
    Node(u32),
    /// Arriving at a merge at the end of a branch.
    Arrive {
        /// The merge.
        join: u32,
        /// The branch.
        branch: u32,
    },
    /// Right after a merge that failed, with nothing to route its failure.
    Merged(u32),
    /// At the end of a path.
    End,
}

/// The merge a token's branch leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Frame {
    /// The merge.
    pub(crate) join: u32,
    /// The branch of it the token is on.
    pub(crate) branch: u32,
}

/// Where a token stands in the action pipeline at its position (DESIGN §3): filter, input
/// event, policies and action, a durable retry, or a failed end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Phase {
    /// Just reached its position: at an action, the filter is next.
    Arrived,
    /// Its records passed the filter; it looks for an input event next.
    Awaiting,
    /// Looked for an input event and found none: parked until an event arrives.
    Parked,
    /// Took its input event (or needs none): policies and the action are next.
    Admitted,
    /// Its action's provider call was committed as under way; after a crash the action
    /// runs again from its policies, under the same idempotency keys.
    Calling,
    /// A retryable failure: the action runs again at the durable timer.
    Retrying {
        /// When.
        at: Timestamp,
    },
    /// The path ended Failed and waits for reprocess, which puts it back in `resume`.
    Failed {
        /// Why.
        error: String,
        /// The phase a reprocess puts it back in.
        resume: Resume,
    },
}

/// The phase a reprocess puts a failed token back in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Resume {
    /// The step from its filter.
    Arrived,
    /// The step from its input event.
    Awaiting,
    /// The step from its policies and action.
    Admitted,
}

impl Phase {
    /// Whether the token can move now (or, `Calling`, must run again after a crash).
    pub(crate) fn is_runnable(&self) -> bool {
        matches!(
            self,
            Self::Arrived | Self::Awaiting | Self::Admitted | Self::Calling
        )
    }

    fn path_status(&self) -> PathStatus {
        match self {
            Self::Arrived | Self::Awaiting | Self::Admitted => PathStatus::Ready,
            Self::Parked => PathStatus::Waiting,
            Self::Calling => PathStatus::Running,
            Self::Retrying { at } => PathStatus::Retrying { at: *at },
            Self::Failed { .. } => PathStatus::Failed,
        }
    }
}

/// What one path of an execution is doing, for a reader ([`Execution::paths`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathStatus {
    /// Can move now.
    Ready,
    /// Waits at an action for one of its input events.
    Waiting,
    /// Its action's provider call is (or was, before a crash) under way.
    Running,
    /// Failed with a retryable error; runs again at `at` (a durable timer).
    Retrying {
        /// When it runs again.
        at: Timestamp,
    },
    /// Its path ended Failed; waits for reprocess.
    Failed,
}

/// A position in a flow plus the records it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Token {
    /// Unique within the execution.
    pub(crate) id: u32,
    /// Where it is.
    pub(crate) at: Position,
    /// Where it stands in the step's pipeline.
    pub(crate) phase: Phase,
    /// The records it carries.
    pub(crate) records: Selection,
    /// The outcome of the last action (or merge) on its path, for Conditions.
    pub(crate) last: Option<Outcome>,
    /// The event that started the execution, offered to the path's first action.
    pub(crate) trigger: Option<u64>,
    /// The timeline position of the event the action it is at took.
    pub(crate) took: Option<u64>,
    /// The attempt its action is on: 1 for the first, bumped by each durable retry.
    pub(crate) attempt: u32,
    /// Provider calls its action made in earlier attempts of the current step.
    pub(crate) calls: u32,
    /// Why the earlier attempts of the current step failed.
    pub(crate) earlier: Option<String>,
    /// The merges it is inside, innermost last.
    pub(crate) frames: Vec<Frame>,
    /// For a failed merge: the failed branch tokens, revived by reprocess.
    pub(crate) absorbed: Vec<Self>,
}

impl Token {
    /// A token at `at` carrying `records`, about to move.
    pub(crate) fn new(id: u32, at: Position, records: Selection, frames: Vec<Frame>) -> Self {
        Self {
            id,
            at,
            phase: Phase::Arrived,
            records,
            last: None,
            trigger: None,
            took: None,
            attempt: 1,
            calls: 0,
            earlier: None,
            frames,
            absorbed: Vec::new(),
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        !matches!(self.phase, Phase::Failed { .. })
    }

    pub(crate) fn is_failed(&self) -> bool {
        !self.is_live()
    }
}

/// What happened on one branch of a merge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BranchState {
    /// A token entered the branch.
    pub(crate) entered: bool,
    /// A token arrived at the merge from it.
    pub(crate) arrived: bool,
}

/// A merge's progress within an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JoinState {
    /// The merge.
    pub(crate) join: u32,
    /// Per branch.
    pub(crate) branches: Vec<BranchState>,
    /// The records the opening token carried.
    pub(crate) input: Selection,
    /// The union of the records that arrived.
    pub(crate) records: Option<Selection>,
    /// The opener token's frames, restored on the merged token.
    pub(crate) frames: Vec<Frame>,
    /// Whether the merge has fired.
    pub(crate) fired: bool,
}

/// One order going through one published flow version. Read it through its accessors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub(crate) id: ExecutionId,
    pub(crate) flow: String,
    pub(crate) version: Version,
    /// The fingerprint of the compiled plan its positions index.
    pub(crate) plan: u64,
    /// The timeline position of the event that started it.
    pub(crate) trigger: u64,
    /// Reprocess round (0 before any reprocess).
    pub(crate) round: u32,
    pub(crate) tokens: Vec<Token>,
    pub(crate) joins: Vec<JoinState>,
    /// Timeline positions of the events its steps took.
    pub(crate) consumed: Vec<u64>,
    /// Provider calls that succeeded in steps that may run again. See [`Accepted`].
    pub(crate) accepted: Vec<Accepted>,
    pub(crate) next_token: u32,
    /// Journey entries recorded so far (bounded by the engine's limit).
    pub(crate) steps: u32,
    pub(crate) started: Timestamp,
    pub(crate) ended: Option<Timestamp>,
    pub(crate) cancelled: Option<Timestamp>,
}

/// A provider call a step made that succeeded, kept while the step may run again.
///
/// The engine decides what a step already did by the step, its round and the record — the
/// parts of the call's idempotency key — never by a document's status reason, which other
/// steps (and other flows) set too. A step run again after a durable retry or a reprocess
/// sees its own accepted calls through
/// [`ActionContext::called_before`](crate::ActionContext::called_before), in every round, so
/// a reprocess (which calls under new keys) does not repeat what the provider already took.
/// A re-run after a crash starts from the last commit, where the call may not be recorded
/// yet: it calls again under the same key, which the provider de-duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Accepted {
    /// The step's name.
    pub(crate) step: String,
    /// The reprocess round of the call.
    pub(crate) round: u32,
    /// The record the call was for.
    pub(crate) record: RecordId,
}

impl Execution {
    /// A new execution of `flow` `version` whose plan has fingerprint `plan`, started by the
    /// event at `trigger` with one token at `entry`.
    pub(crate) fn start(
        id: ExecutionId,
        flow: String,
        version: Version,
        plan: u64,
        entry: Position,
        trigger: u64,
        at: Timestamp,
    ) -> Self {
        let mut token = Token::new(0, entry, Selection::default(), Vec::new());
        token.trigger = Some(trigger);
        Self {
            id,
            flow,
            version,
            plan,
            trigger,
            round: 0,
            tokens: vec![token],
            joins: Vec::new(),
            consumed: Vec::new(),
            accepted: Vec::new(),
            next_token: 1,
            steps: 0,
            started: at,
            ended: None,
            cancelled: None,
        }
    }

    /// Its id.
    pub fn id(&self) -> &ExecutionId {
        &self.id
    }

    /// The flow.
    pub fn flow(&self) -> &str {
        &self.flow
    }

    /// The flow version it is pinned to.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The fingerprint of the compiled plan its positions index.
    pub fn plan_tag(&self) -> u64 {
        self.plan
    }

    /// The timeline position of the event that started it.
    pub fn trigger(&self) -> u64 {
        self.trigger
    }

    /// Reprocess round: 0 before any reprocess.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// When it started.
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// When it completed (or was cancelled).
    pub fn ended(&self) -> Option<Timestamp> {
        self.ended
    }

    /// When [`Engine::cancel`](crate::Engine::cancel) ended it; `None` unless cancelled.
    pub fn cancelled(&self) -> Option<Timestamp> {
        self.cancelled
    }

    /// What each of its live or failed paths is doing, in token order.
    pub fn paths(&self) -> impl Iterator<Item = PathStatus> + '_ {
        self.tokens.iter().map(|t| t.phase.path_status())
    }

    /// Why its failed paths failed (empty unless [`status`](Self::status) is `Failed`, or
    /// why the last attempts of a retrying path failed).
    pub fn failure(&self) -> Option<String> {
        let reasons: Vec<&str> = self
            .tokens
            .iter()
            .filter_map(|t| match &t.phase {
                Phase::Failed { error, .. } => Some(error.as_str()),
                Phase::Retrying { .. } => t.earlier.as_deref(),
                _ => None,
            })
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// The provider calls that succeeded in steps that may run again (a step parked for a
    /// durable retry, or whose path failed and waits for reprocess): step, round, record.
    pub fn accepted_calls(&self) -> impl Iterator<Item = (&str, u32, &RecordId)> + '_ {
        self.accepted
            .iter()
            .map(|a| (a.step.as_str(), a.round, &a.record))
    }

    /// Keeps the calls a run of `step` had accepted, for the step's next run.
    pub(crate) fn keep_accepted(&mut self, step: &str, records: Vec<RecordId>) {
        let round = self.round;
        for record in records {
            if !self
                .accepted
                .iter()
                .any(|a| a.step == step && a.record == record)
            {
                self.accepted.push(Accepted {
                    step: step.to_owned(),
                    round,
                    record,
                });
            }
        }
    }

    /// Forgets a step's accepted calls once it has moved on: it will not run again.
    pub(crate) fn forget_accepted(&mut self, step: &str) {
        if !self.accepted.is_empty() {
            self.accepted.retain(|a| a.step != step);
        }
    }

    /// Where it stands, derived from its tokens (a cancelled execution has none).
    pub fn status(&self) -> ExecutionStatus {
        if self.cancelled.is_some() {
            return ExecutionStatus::Cancelled;
        }
        let mut waiting = false;
        let mut failed = false;
        for t in &self.tokens {
            match t.phase {
                Phase::Parked => waiting = true,
                Phase::Failed { .. } => failed = true,
                _ => return ExecutionStatus::Running,
            }
        }
        if failed {
            ExecutionStatus::Failed
        } else if waiting {
            ExecutionStatus::Waiting
        } else {
            ExecutionStatus::Completed
        }
    }

    /// Whether it still counts as the flow's live execution for the order: not completed
    /// and not cancelled. A flow starts a new execution for an order only when it has no
    /// live one.
    pub fn is_live(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// Whether a path of it ended Failed and waits for reprocess.
    pub fn is_failed(&self) -> bool {
        self.tokens.iter().any(Token::is_failed)
    }

    fn next_wake(&self) -> Option<Timestamp> {
        self.tokens
            .iter()
            .filter_map(|t| match t.phase {
                Phase::Retrying { at } => Some(at),
                _ => None,
            })
            .min()
    }
}

/// Everything the store keeps about one order, loaded and committed as a unit. Opaque:
/// read it through its accessors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderState {
    /// The order document, shared with the store that holds it (changed copy-on-write).
    pub(crate) order: Arc<Order>,
    /// Bumped by every commit; a commit names the revision it read.
    pub(crate) revision: u64,
    /// Every event, in arrival order.
    pub(crate) timeline: Vec<TimelineEntry>,
    /// Every execution, in start order.
    pub(crate) executions: Vec<Execution>,
    /// Set while a turn is under way past a commit (a provider call in flight, a retry
    /// scheduled, other paths still to move): when its work should be taken up again if
    /// the turn never finishes — its future dropped (a cancelled HTTP handler, a timeout),
    /// its process gone. Cleared when the turn ends. A durable timer like a retry's
    /// ([`next_wake`](Self::next_wake)), so the timer worker or a claim resumes the order
    /// without a restart or a new event.
    pub(crate) resume_at: Option<Timestamp>,
}

impl OrderState {
    /// A fresh state for a new order document.
    pub fn new(order: Order) -> Self {
        Self::from_parts(Arc::new(order), 0, Vec::new(), Vec::new(), None)
    }

    /// A state from what a store keeps in rows of its own: the document, the revision, the
    /// timeline in arrival order, the executions in start order and the resume timer.
    pub fn from_parts(
        order: Arc<Order>,
        revision: u64,
        timeline: Vec<TimelineEntry>,
        executions: Vec<Execution>,
        resume_at: Option<Timestamp>,
    ) -> Self {
        Self {
            order,
            revision,
            timeline,
            executions,
            resume_at,
        }
    }

    /// The order's id.
    pub fn id(&self) -> &OrderId {
        &self.order.id
    }

    /// The order document.
    pub fn order(&self) -> &Order {
        &self.order
    }

    /// The order document, shared.
    pub fn document(&self) -> &Arc<Order> {
        &self.order
    }

    /// The revision: bumped by every commit; a commit names the revision it read.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Sets the revision (for stores that keep it apart from the state).
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// Every event, in arrival order.
    pub fn timeline(&self) -> &[TimelineEntry] {
        &self.timeline
    }

    /// The timeline, to change: for tests of stores, which build the states they commit
    /// (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn timeline_mut(&mut self) -> &mut Vec<TimelineEntry> {
        &mut self.timeline
    }

    /// The order document, to change (copied first if shared): for tests of stores, which
    /// build the states they commit (feature `testing`).
    #[cfg(feature = "testing")]
    pub fn order_mut(&mut self) -> &mut Order {
        Arc::make_mut(&mut self.order)
    }

    /// Every execution, in start order.
    pub fn executions(&self) -> &[Execution] {
        &self.executions
    }

    /// When a turn that did not finish is taken up again, while one is under way.
    pub fn resume_at(&self) -> Option<Timestamp> {
        self.resume_at
    }

    /// Whether some execution has a token that can move now: ready, or running when the
    /// last engine stopped (a crash) and so to be run again. Retrying tokens wait for
    /// their timer.
    pub fn has_runnable(&self) -> bool {
        self.executions
            .iter()
            .any(|e| e.tokens.iter().any(|t| t.phase.is_runnable()))
    }

    /// Whether some execution is live (not completed).
    pub fn has_live(&self) -> bool {
        self.executions.iter().any(Execution::is_live)
    }

    /// Gives back the spare capacity of the engine's own lists (timeline, executions, their
    /// tokens, merges and consumed events), for a store that keeps the state in memory
    /// between turns. The order document is left as the host built it.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.timeline.shrink_to_fit();
        self.executions.shrink_to_fit();
        for e in &mut self.executions {
            e.tokens.shrink_to_fit();
            e.joins.shrink_to_fit();
            e.consumed.shrink_to_fit();
            e.accepted.shrink_to_fit();
        }
    }

    /// When the order completed, for retention ([`Store::purge`](crate::store::Store::purge)):
    /// `None` while it has a live execution (running, waiting for an event or a timer, or
    /// failed and waiting for reprocess); otherwise the latest moment the state records —
    /// the last event on its timeline, the last execution's end — or `Timestamp(0)` for an
    /// order nothing ever happened to.
    pub fn completed_at(&self) -> Option<Timestamp> {
        if self.has_live() || self.resume_at.is_some() {
            return None;
        }
        let events = self.timeline.iter().map(|entry| entry.at);
        let executions = self
            .executions
            .iter()
            .map(|e| e.ended.unwrap_or(e.started).max(e.started));
        Some(events.chain(executions).max().unwrap_or_default())
    }

    /// The earliest durable timer: when the first retrying token runs again, or when an
    /// unfinished turn's work is taken up ([`resume_at`](Self::resume_at)).
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.executions
            .iter()
            .filter_map(Execution::next_wake)
            .chain(self.resume_at)
            .min()
    }
}

#[cfg(test)]
mod tests;
