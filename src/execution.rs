//! Execution state: what the store keeps about an order's runs through flows.
//!
//! An [`Execution`] is one order going through one published flow version. It holds
//! [`Token`]s; a token is a position in the flow plus the records it carries (the order and a
//! [`Selection`] of its lines and fulfillment orders). Merges keep a [`JoinState`] per
//! execution. All of it is plain serde data kept in the [`Store`](crate::store::Store) as part
//! of the order's [`OrderState`], so an engine can resume any execution from the store alone.
//!
//! Hosts read this through [`Engine::journey`](crate::Engine::journey) and
//! [`Engine::order_state`](crate::Engine::order_state); only the engine changes it.

use std::fmt;
use std::sync::Arc;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::document::{FulfillmentOrderId, LineId, Order, OrderId, RecordId};
use crate::journey::{Outcome, TimelineEntry};

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
    #[serde(default)]
    pub lines: Option<Vec<LineId>>,
    /// Selected fulfillment orders, or all.
    #[serde(default)]
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

/// Where a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// At a step (an index into the compiled flow).
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

/// What a token is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Can move now.
    Ready,
    /// Waits at an action for one of its input events.
    Waiting,
    /// Its action's provider call is (or was, before a crash) under way.
    Running,
    /// Its path ended Failed; waits for reprocess.
    Failed,
    /// Its action failed with a retryable error and runs again at [`Token::wake_at`]
    /// (a durable timer).
    Retrying,
}

/// The merge a token's branch leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// The merge.
    pub join: u32,
    /// The branch of it the token is on.
    pub branch: u32,
}

/// A position in a flow plus the records it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Token {
    /// Unique within the execution.
    pub id: u32,
    /// Where it is.
    pub at: Position,
    /// What it is doing.
    pub status: TokenStatus,
    /// The records it carries.
    pub records: Selection,
    /// The outcome of the last action (or merge) on its path, for Conditions.
    pub last: Option<Outcome>,
    /// The event that started the execution, offered to the path's first action.
    #[serde(default)]
    pub trigger: Option<u64>,
    /// Whether the action it is at has admitted its records (its filter ran).
    pub admitted: bool,
    /// Whether the action it is at has already taken its input event.
    pub waited: bool,
    /// The timeline position of the event the action it is at took.
    #[serde(default)]
    pub took: Option<u64>,
    /// The merges it is inside, innermost last.
    pub frames: Vec<Frame>,
    /// For a failed merge: the failed branch tokens, revived by reprocess.
    #[serde(default)]
    pub absorbed: Vec<Self>,
    /// Why it failed (or, while retrying, why the last attempt failed).
    #[serde(default)]
    pub error: Option<String>,
    /// The attempt its action is on: 1 for the first, bumped by each durable retry.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// Provider calls its action made in earlier attempts of the current step.
    #[serde(default)]
    pub calls: u32,
    /// When a retrying token runs again.
    #[serde(default)]
    pub wake_at: Option<Timestamp>,
}

fn first_attempt() -> u32 {
    1
}

impl Token {
    pub(crate) fn is_live(&self) -> bool {
        !matches!(self.status, TokenStatus::Failed)
    }
}

/// What happened on one branch of a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchState {
    /// A token entered the branch.
    pub entered: bool,
    /// A token arrived at the merge from it.
    pub arrived: bool,
}

/// A merge's progress within an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JoinState {
    /// The merge.
    pub join: u32,
    /// Per branch.
    pub branches: Vec<BranchState>,
    /// The records the opening token carried.
    pub input: Selection,
    /// The union of the records that arrived.
    pub records: Option<Selection>,
    /// The opener token's frames, restored on the merged token.
    pub frames: Vec<Frame>,
    /// Whether the merge has fired.
    pub fired: bool,
}

/// One order going through one published flow version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Execution {
    /// Its id.
    pub id: ExecutionId,
    /// The flow.
    pub flow: String,
    /// The flow version it is pinned to.
    pub version: Version,
    /// The timeline position of the event that started it.
    pub trigger: u64,
    /// Reprocess round (0 before any reprocess).
    pub round: u32,
    /// Its tokens.
    pub tokens: Vec<Token>,
    /// Its merges.
    pub joins: Vec<JoinState>,
    /// Timeline positions of the events its steps took.
    #[serde(default)]
    pub consumed: Vec<u64>,
    /// Provider calls that succeeded in steps that may run again: a step parked for a
    /// durable retry, or whose path ended Failed and waits for reprocess. A step that moves
    /// on drops its entries. See [`Accepted`].
    #[serde(default)]
    pub accepted: Vec<Accepted>,
    /// Next token id.
    pub next_token: u32,
    /// Journey entries recorded so far (bounded by the engine's limit).
    pub steps: u32,
    /// When it started.
    pub started: Timestamp,
    /// When it completed (or was cancelled).
    pub ended: Option<Timestamp>,
    /// When [`Engine::cancel`](crate::Engine::cancel) ended it; `None` unless cancelled.
    #[serde(default)]
    pub cancelled: Option<Timestamp>,
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
#[non_exhaustive]
pub struct Accepted {
    /// The step's name.
    pub step: String,
    /// The reprocess round of the call.
    pub round: u32,
    /// The record the call was for.
    pub record: RecordId,
}

impl Execution {
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
            match t.status {
                TokenStatus::Ready | TokenStatus::Running | TokenStatus::Retrying => {
                    return ExecutionStatus::Running;
                }
                TokenStatus::Waiting => waiting = true,
                TokenStatus::Failed => failed = true,
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
}

/// Everything the store keeps about one order, loaded and committed as a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OrderState {
    /// The order document, shared with the store and with the commits that carry it: a
    /// turn changes it through [`Arc::make_mut`], which copies it only while another
    /// holder keeps the old one.
    pub order: Arc<Order>,
    /// Bumped by every commit; a commit names the revision it read.
    pub revision: u64,
    /// Every event, in arrival order.
    pub timeline: Vec<TimelineEntry>,
    /// Every execution, in start order.
    pub executions: Vec<Execution>,
    /// Set while a turn is under way past a commit (a provider call in flight, a retry
    /// scheduled, other paths still to move): when its work should be taken up again if
    /// the turn never finishes — its future dropped (a cancelled HTTP handler, a timeout),
    /// its process gone. Cleared when the turn ends. A durable timer like a retry's
    /// ([`next_wake`](Self::next_wake)), so the timer worker or a claim resumes the order
    /// without a restart or a new event.
    #[serde(default)]
    pub resume_at: Option<Timestamp>,
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

    /// Whether some execution has a token that can move now: ready, or running when the
    /// last engine stopped (a crash) and so to be run again. Retrying tokens wait for
    /// their timer.
    pub fn has_runnable(&self) -> bool {
        self.executions.iter().any(|e| {
            e.tokens
                .iter()
                .any(|t| matches!(t.status, TokenStatus::Ready | TokenStatus::Running))
        })
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
            .flat_map(|e| &e.tokens)
            .filter(|t| t.status == TokenStatus::Retrying)
            .filter_map(|t| t.wake_at)
            .chain(self.resume_at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::{Execution, ExecutionId, Selection};
    use crate::clock::Timestamp;
    use crate::document::{FulfillmentOrderId, RecordId};

    fn fo(id: &str) -> RecordId {
        RecordId::FulfillmentOrder(id.into())
    }

    #[test]
    fn accepted_calls_are_kept_per_step_across_rounds_until_the_step_moves_on() {
        let mut exec = Execution {
            id: ExecutionId {
                order: "SO-1".into(),
                seq: 1,
            },
            flow: "F".into(),
            version: semver::Version::new(1, 0, 0),
            trigger: 1,
            round: 0,
            tokens: Vec::new(),
            joins: Vec::new(),
            consumed: Vec::new(),
            accepted: Vec::new(),
            next_token: 1,
            steps: 0,
            started: Timestamp(0),
            ended: None,
            cancelled: None,
        };
        exec.keep_accepted("Send A", vec![fo("1")]);
        exec.keep_accepted("Send B", vec![fo("1")]);
        exec.round = 1;
        exec.keep_accepted("Send A", vec![fo("1"), fo("2")]);
        let kept: Vec<(&str, u32, &RecordId)> = exec
            .accepted
            .iter()
            .map(|a| (a.step.as_str(), a.round, &a.record))
            .collect();
        assert_eq!(
            kept,
            [
                ("Send A", 0, &fo("1")),
                ("Send B", 0, &fo("1")),
                ("Send A", 1, &fo("2"))
            ],
            "one entry per step and record, from the round that made it"
        );
        exec.forget_accepted("Send A");
        assert_eq!(exec.accepted.len(), 1);
        assert_eq!(exec.accepted[0].step, "Send B");
    }

    fn fos(ids: &[&str]) -> Selection {
        Selection {
            lines: None,
            fulfillment_orders: Some(ids.iter().map(|i| FulfillmentOrderId::from(*i)).collect()),
        }
    }

    #[test]
    fn union_keeps_order_and_all_absorbs() {
        let mut a = fos(&["1", "2"]);
        a.union(&fos(&["2", "3"]));
        assert_eq!(a, fos(&["1", "2", "3"]));
        a.union(&Selection::default());
        assert_eq!(a, Selection::default());
        let mut all = Selection::default();
        all.union(&fos(&["9"]));
        assert_eq!(all, Selection::default());
    }
}
