//! The token machine: one order's turn, from load to quiescence.

#[cfg(feature = "tracing")]
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use futures::FutureExt;
use semver::Version;

use super::plan::{ActionNode, NodeKind, Plan};
use super::{Caller, Inner, Receipt};
use crate::action::{ActionContext, Effects};
use crate::clock::Timestamp;
use crate::document::{Entity, Order, OrderId, RecordId, RecordMut, RecordRef};
use crate::error::{Error, Result};
use crate::event::{Event, EventId, EventKind};
use crate::execution::{
    BranchState, Execution, ExecutionId, ExecutionStatus, Frame, JoinState, OrderState, Position,
    Selection, Token, TokenStatus,
};
use crate::flow::FlowStatus;
use crate::journey::{Finding, Outcome, StepRecord, TimelineEntry};
use crate::policy::{Check, Criticality, Policy};
use crate::store::ChangeSet;
use crate::update::OrderUpdate;

/// One order's state in memory while the engine works on it (under the order's lock).
pub(super) struct Turn<'e> {
    inner: &'e Inner,
    state: OrderState,
    expected: Option<u64>,
    journey: Vec<StepRecord>,
    /// The document as last committed (or loaded), and how many timeline entries were:
    /// a commit sends the document only when it changed, and the entries past these.
    committed_document: Arc<Order>,
    committed_timeline: usize,
    dirty: bool,
    started: Vec<ExecutionId>,
    /// The compiled plan of each execution (by index) this turn has looked up.
    plans: Vec<Option<Arc<Plan>>>,
    /// An event this turn put on the timeline and has not yet committed, and whether it
    /// brought a new order: counted in the metrics once it is durable.
    accepting: Option<bool>,
    /// The span of each execution this turn moved.
    #[cfg(feature = "tracing")]
    spans: HashMap<usize, tracing::Span>,
}

impl<'e> Turn<'e> {
    /// Loads an order, or starts a new one from `document`.
    pub(super) async fn load(
        inner: &'e Inner,
        order: OrderId,
        document: Option<Box<Order>>,
    ) -> Result<Self> {
        inner.sync_catalog().await?;
        match inner.store.load(&order).await? {
            Some(state) => Ok(Self::new(inner, state)),
            None => match document {
                Some(doc) => Ok(Self {
                    expected: None,
                    ..Self::new(inner, OrderState::new(*doc))
                }),
                None => Err(Error::UnknownOrder(order)),
            },
        }
    }

    /// Loads an order that must exist.
    pub(super) async fn load_existing(inner: &'e Inner, order: OrderId) -> Result<Option<Self>> {
        inner.sync_catalog().await?;
        Ok(inner
            .store
            .load(&order)
            .await?
            .map(|state| Self::new(inner, state)))
    }

    fn new(inner: &'e Inner, state: OrderState) -> Self {
        Self {
            inner,
            expected: Some(state.revision),
            committed_document: state.order.clone(),
            committed_timeline: state.timeline.len(),
            state,
            journey: Vec::new(),
            dirty: false,
            started: Vec::new(),
            plans: Vec::new(),
            accepting: None,
            #[cfg(feature = "tracing")]
            spans: HashMap::new(),
        }
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The order as loaded (and as moved so far).
    pub(super) fn state(&self) -> &OrderState {
        &self.state
    }

    pub(super) async fn submit(mut self, event: Event) -> Result<Receipt> {
        self.catch_up().await?;
        let observed = self.inner.dry.is_none();
        if self.state.timeline.iter().any(|e| e.id == event.id) {
            if observed {
                crate::metrics::event_accepted(true);
            }
            return Ok(Receipt {
                duplicate: true,
                seq: 0,
                started: Vec::new(),
            });
        }
        self.check_timeline_room(&event.id)?;
        let new_order = self.expected.is_none();
        let seq = self.append_event(event.id, event.kind, event.record, None)?;
        self.accepting = observed.then_some(new_order);
        self.run().await?;
        let started = self.finish().await?;
        Ok(Receipt {
            duplicate: false,
            seq,
            started,
        })
    }

    /// Work an earlier engine left in flight (a crash between commits, a dropped future)
    /// runs first, so the order sees its events and updates in the order it would have
    /// without the crash, and a step committed as under way finishes with the document it
    /// started with.
    async fn catch_up(&mut self) -> Result<()> {
        if self.state.has_runnable() {
            self.run().await?;
            self.commit_if_dirty().await?;
        }
        Ok(())
    }

    /// Refuses an event past the order's timeline bound.
    fn check_timeline_room(&self, id: &EventId) -> Result<()> {
        let max = self.inner.config.limits.max_timeline_events;
        if self.state.timeline.len() >= max {
            return Err(crate::limits::LimitError {
                what: "order timeline",
                limit: "max_timeline_events",
                max,
                found: self.state.timeline.len() + 1,
                place: format!("order '{}', event '{id}'", self.state.order.id),
            }
            .into());
        }
        Ok(())
    }

    /// Applies an order update between steps (see [`crate::update`]): after what an
    /// earlier turn left in flight, as an "Order updated" event on the timeline that
    /// routes like any other; then runs the order to quiescence.
    pub(super) async fn update(mut self, id: EventId, update: OrderUpdate) -> Result<Receipt> {
        self.catch_up().await?;
        // Either way out, what catching up committed is finished properly (its turn is no
        // longer marked under way); nothing else changes.
        if self.state.timeline.iter().any(|e| e.id == id) {
            self.finish().await?;
            return Ok(Receipt {
                duplicate: true,
                seq: 0,
                started: Vec::new(),
            });
        }
        let checked = self
            .check_timeline_room(&id)
            .and_then(|()| self.updated(&id, update));
        let order = match checked {
            Ok(order) => order,
            Err(e) => {
                self.finish().await?;
                return Err(e);
            }
        };
        self.state.order = Arc::new(order);
        let seq = self.append_event(id, EventKind::ORDER_UPDATED, None, None)?;
        self.run().await?;
        let started = self.finish().await?;
        Ok(Receipt {
            duplicate: false,
            seq,
            started,
        })
    }

    /// The document after `update`, checked as intake checks a new order's.
    fn updated(&self, id: &EventId, update: OrderUpdate) -> Result<Order> {
        let current = &self.state.order;
        let invalid = |reason: String| Error::InvalidUpdate {
            order: current.id.clone(),
            reason,
        };
        let order = update.apply(current).map_err(invalid)?;
        order.check_ids().map_err(|e| invalid(e.to_string()))?;
        crate::limits::check_order("order update", &order, &self.inner.config.limits, || {
            format!("update '{id}' of order '{}'", current.id)
        })?;
        Ok(order)
    }

    /// Ends an execution: every path it has left — waiting, failed, retrying, ready, or
    /// committed as under way by a turn that never finished — ends where it stands with a
    /// `Cancelled` journey entry, its durable timers go with it, and it no longer counts
    /// as its flow's live execution. Then the order's other work runs as after any change.
    pub(super) async fn cancel(mut self, id: &ExecutionId) -> Result<()> {
        let Some(e) = self.state.executions.iter().position(|x| &x.id == id) else {
            return Err(Error::UnknownExecution(id.clone()));
        };
        let status = self.state.executions[e].status();
        if matches!(
            status,
            ExecutionStatus::Completed | ExecutionStatus::Cancelled
        ) {
            return Err(Error::NotCancellable {
                execution: id.clone(),
                status,
            });
        }
        // Step names for the journey; an execution whose flow cannot run here can still be
        // cancelled, its paths named by position.
        let plan = match self.take_plan(e).await {
            Ok(plan) => Some(plan),
            Err(err) if super::is_outage(&err) => return Err(err),
            Err(_) => None,
        };
        let now = self.now();
        let exec = &mut self.state.executions[e];
        let tokens = std::mem::take(&mut exec.tokens);
        exec.accepted.clear();
        exec.cancelled = Some(now);
        exec.ended = Some(now);
        for token in tokens {
            let step = plan
                .as_deref()
                .map_or_else(|| format!("{:?}", token.at), |p| position_name(p, token.at));
            let records = token.records.records(&self.state.order);
            let details = vec![cancelled_detail(&token)];
            self.record(
                e,
                &step,
                records,
                Outcome::Cancelled,
                0,
                now,
                details,
                Vec::new(),
            );
        }
        if let Some(plan) = plan {
            self.plans[e] = Some(plan);
        }
        self.dirty = true;
        self.run().await?;
        self.finish().await.map(drop)
    }

    pub(super) async fn run_pending(mut self) -> Result<bool> {
        if !self.state.has_runnable() {
            return Ok(false);
        }
        self.run().await?;
        self.finish().await?;
        Ok(true)
    }

    /// Runs the tokens whose durable timers are due at `now`; whether any was.
    pub(super) async fn run_due(mut self, now: Timestamp) -> Result<bool> {
        // A turn that never finished (its future dropped, its process gone): what it left
        // committed runs again, under the same idempotency keys.
        let mut woke = false;
        if self.state.resume_at.is_some_and(|at| at <= now) {
            self.state.resume_at = None;
            woke = true;
        }
        for exec in &mut self.state.executions {
            for token in &mut exec.tokens {
                if token.status == TokenStatus::Retrying && token.wake_at.is_none_or(|at| at <= now)
                {
                    token.status = TokenStatus::Ready;
                    token.wake_at = None;
                    woke = true;
                }
            }
        }
        if !woke {
            return Ok(false);
        }
        self.dirty = true;
        let observed = self.inner.dry.is_none();
        self.run().await?;
        self.finish().await?;
        if observed {
            crate::metrics::timer_due();
        }
        Ok(true)
    }

    pub(super) async fn reprocess(mut self, id: &ExecutionId) -> Result<()> {
        let Some(e) = self.state.executions.iter().position(|x| &x.id == id) else {
            return Err(Error::UnknownExecution(id.clone()));
        };
        let exec = &mut self.state.executions[e];
        if !exec.tokens.iter().any(|t| t.status == TokenStatus::Failed) {
            return Err(Error::NotReprocessable(id.clone()));
        }
        exec.round += 1;
        exec.ended = None;
        let (failed, live): (Vec<Token>, Vec<Token>) = std::mem::take(&mut exec.tokens)
            .into_iter()
            .partition(|t| t.status == TokenStatus::Failed);
        exec.tokens = live;
        for token in failed {
            revive(exec, token);
        }
        self.dirty = true;
        self.run().await?;
        self.finish().await.map(drop)
    }

    async fn commit_if_dirty(&mut self) -> Result<()> {
        if self.dirty {
            self.commit().await?;
        }
        Ok(())
    }

    /// Ends the turn: commits what is not yet committed, handing the state to the store
    /// instead of a copy of it. Returns the executions the turn started.
    ///
    /// Paths of a paused flow stay where they are; when the flow was resumed while this
    /// turn ran (after it last looked), the turn commits, looks at the catalog again and
    /// runs them, so a resume racing the turn never strands them: the resume either ran
    /// before that last look, or its recovery finds this commit.
    async fn finish(mut self) -> Result<Vec<ExecutionId>> {
        if self.state.resume_at.is_some() {
            self.state.resume_at = None;
            self.dirty = true;
        }
        // After `run`, a path still ready to move belongs to a paused flow.
        while self.state.has_runnable() {
            // Committed as under way: a resume whose recovery listed the live orders
            // before this commit counts on the look below, and if this turn is dropped
            // before it, the durable timer takes the order up instead.
            let committed = self.dirty;
            if committed {
                self.commit_as(true).await?;
            }
            self.inner.sync_catalog().await?;
            if self.next_ready().is_none() {
                if committed {
                    // Still paused: no timer, so the order does not wake only to wait.
                    self.commit_as(false).await?;
                }
                return Ok(self.started);
            }
            self.run().await?;
            self.state.resume_at = None;
        }
        if self.dirty {
            self.state.revision += 1;
            let change = self.change();
            self.inner.store.commit(change).await?;
            self.inner.commits.notify();
            accepted(self.accepting);
        }
        Ok(self.started)
    }

    /// Commits what the turn did so far, the turn still under way: the order carries
    /// [`resume_at`](OrderState::resume_at), so that if this turn never finishes, the
    /// timer worker (or a claim) takes its work up again.
    async fn commit(&mut self) -> Result<()> {
        self.commit_as(true).await
    }

    /// A commit; `under_way` says whether the turn goes on after it.
    async fn commit_as(&mut self, under_way: bool) -> Result<()> {
        let previous = self.state.resume_at;
        let grace = self.inner.config.timeout;
        self.state.resume_at = under_way.then(|| self.now().after(grace));
        self.state.revision += 1;
        let change = self.change();
        if let Err(e) = self.inner.store.commit(change).await {
            self.state.revision -= 1;
            self.state.resume_at = previous;
            return Err(e.into());
        }
        self.expected = Some(self.state.revision);
        self.committed_document = self.state.order.clone();
        self.committed_timeline = self.state.timeline.len();
        self.dirty = false;
        self.inner.commits.notify();
        accepted(self.accepting.take());
        Ok(())
    }

    /// What changed since the last commit (or the load), at the state's revision: the
    /// document if it differs from the committed one, every execution (the turn does not
    /// track which of them moved), the timeline entries and journey rows added since.
    fn change(&mut self) -> ChangeSet {
        let mut change = ChangeSet::indexes(self.expected, &self.state);
        let document = &self.state.order;
        if self.expected.is_none()
            || !(Arc::ptr_eq(&self.committed_document, document)
                || *self.committed_document == **document)
        {
            change.document = Some(document.clone());
        }
        change.executions = self.state.executions.clone();
        change.timeline = self.state.timeline[self.committed_timeline..].to_vec();
        change.journey = std::mem::take(&mut self.journey);
        change
    }

    /// Puts an event on the timeline, wakes waiting paths and starts the flows it triggers.
    fn append_event(
        &mut self,
        id: EventId,
        kind: EventKind,
        record: Option<RecordId>,
        raised_by: Option<String>,
    ) -> Result<u64> {
        let seq = self.state.timeline.last().map_or(1, |e| e.seq + 1);
        let at = self.now();
        for exec in &mut self.state.executions {
            for t in &mut exec.tokens {
                if t.status == TokenStatus::Waiting {
                    t.status = TokenStatus::Ready;
                }
            }
        }
        let routes: Vec<(String, Version, Arc<Plan>)> = {
            let catalog = self.inner.read_catalog();
            let mut routes = Vec::new();
            for (f, v) in catalog.routes.get(&kind).into_iter().flatten() {
                let key = (f.clone(), v.clone());
                match catalog.plans.get(&key) {
                    Some(p) => routes.push((f.clone(), v.clone(), p.clone())),
                    // A flow the event starts but that cannot run: the event must not be
                    // taken as if no flow wanted it.
                    None => {
                        return Err(Error::FlowBroken {
                            flow: f.clone(),
                            version: v.clone(),
                            reason: catalog
                                .broken
                                .get(&key)
                                .cloned()
                                .unwrap_or_else(|| "its plan is not compiled".to_owned()),
                        });
                    }
                }
            }
            routes
        };
        self.state.timeline.push(TimelineEntry {
            seq,
            id,
            kind,
            record,
            at,
            raised_by,
        });
        self.dirty = true;
        for (flow, version, plan) in routes {
            if self
                .state
                .executions
                .iter()
                .any(|x| x.flow == flow && x.is_live())
            {
                continue;
            }
            let id = ExecutionId {
                order: self.state.order.id.clone(),
                seq: self.state.executions.len() as u32 + 1,
            };
            let index = self.state.executions.len();
            if self.plans.len() <= index {
                self.plans.resize(index + 1, None);
            }
            self.plans[index] = Some(plan.clone());
            self.state.executions.push(Execution {
                id: id.clone(),
                flow,
                version,
                trigger: seq,
                round: 0,
                tokens: vec![Token {
                    id: 0,
                    at: plan.entry,
                    status: TokenStatus::Ready,
                    records: Selection::default(),
                    last: None,
                    trigger: Some(seq),
                    admitted: false,
                    waited: false,
                    frames: Vec::new(),
                    absorbed: Vec::new(),
                    error: None,
                    took: None,
                    attempt: 1,
                    calls: 0,
                    wake_at: None,
                }],
                joins: Vec::new(),
                consumed: Vec::new(),
                accepted: Vec::new(),
                next_token: 1,
                steps: 0,
                started: at,
                ended: None,
                cancelled: None,
            });
            self.started.push(id);
        }
        Ok(seq)
    }

    /// Takes execution `e`'s plan out of the turn's cache (loading it if needed); the
    /// caller puts it back.
    async fn take_plan(&mut self, e: usize) -> Result<Arc<Plan>> {
        if self.plans.len() <= e {
            self.plans.resize(e + 1, None);
        }
        if let Some(p) = self.plans[e].take() {
            return Ok(p);
        }
        let exec = &self.state.executions[e];
        self.inner.plan(&exec.flow, &exec.version).await
    }

    /// The first token that can move, in execution order, skipping executions of paused
    /// flows (looked up on each call: a flow may be paused while the turn runs).
    fn next_ready(&self) -> Option<(usize, usize)> {
        let catalog = self.inner.read_catalog();
        self.state.executions.iter().enumerate().find_map(|(e, x)| {
            let t = x
                .tokens
                .iter()
                .position(|t| matches!(t.status, TokenStatus::Ready | TokenStatus::Running))?;
            (catalog.status(&x.flow) != Some(FlowStatus::Paused)).then_some((e, t))
        })
    }

    async fn run(&mut self) -> Result<()> {
        // Flows can start each other through their output events; a turn past its step
        // budget is such a cycle. Fail what is still moving, visibly and reprocessably,
        // instead of running forever.
        let budget = self.inner.config.max_steps_per_turn;
        let mut taken = 0u64;
        while let Some((e, t)) = self.next_ready() {
            taken += 1;
            if taken > budget {
                self.fail_runaway(budget);
                break;
            }
            // Taken out of the cache for the step and put back: no reference counting per step.
            let plan = self.take_plan(e).await?;
            #[cfg(feature = "tracing")]
            let span = self.step_span(&plan, e, t);
            let step = self.step(&plan, e, t);
            #[cfg(feature = "tracing")]
            let step = tracing::Instrument::instrument(step, span);
            let stepped = step.await;
            self.plans[e] = Some(plan);
            stepped?;
            let exec = &mut self.state.executions[e];
            if exec.tokens.is_empty() && exec.ended.is_none() {
                exec.ended = Some(self.inner.clock.now());
            }
        }
        Ok(())
    }

    fn fail_runaway(&mut self, budget: u64) {
        for exec in &mut self.state.executions {
            for token in &mut exec.tokens {
                if matches!(token.status, TokenStatus::Ready | TokenStatus::Running) {
                    token.status = TokenStatus::Failed;
                    token.error = Some(format!(
                        "the order took more than {budget} steps in one turn: \
                         do flows start each other in a cycle?"
                    ));
                }
            }
        }
        self.dirty = true;
    }

    async fn step(&mut self, plan: &Plan, e: usize, t: usize) -> Result<()> {
        self.dirty = true;
        match self.state.executions[e].tokens[t].at {
            Position::End => {
                self.state.executions[e].tokens.remove(t);
            }
            Position::Merged(_) => {
                self.state.executions[e].tokens[t].status = TokenStatus::Failed;
            }
            Position::Arrive { join, branch } => self.arrive(plan, e, t, join, branch),
            Position::Node(n) => match &plan.node(n).kind {
                NodeKind::Condition { yes, no, join } => {
                    self.condition(plan, e, t, n, *yes, *no, *join);
                }
                NodeKind::Splitter { branches, join } => {
                    self.splitter(plan, e, t, n, branches, *join);
                }
                NodeKind::Action(a) => self.action(plan, e, t, a).await?,
            },
        }
        Ok(())
    }

    /// The span of one step: a child of its execution's span for this turn, carrying the
    /// order, flow, version, step and attempt; `record` adds the outcome.
    #[cfg(feature = "tracing")]
    fn step_span(&mut self, plan: &Plan, e: usize, t: usize) -> tracing::Span {
        let exec = &self.state.executions[e];
        let token = &exec.tokens[t];
        let step = match token.at {
            Position::Node(n) => plan.node(n).name.as_str(),
            Position::Arrive { join, .. } | Position::Merged(join) => plan.join(join).name.as_str(),
            Position::End => "end",
        };
        let parent = self.spans.entry(e).or_insert_with(|| {
            tracing::info_span!(
                "orderflow.execution",
                order = %exec.id.order,
                execution = %exec.id,
                flow = %exec.flow,
                version = %exec.version,
            )
        });
        tracing::info_span!(
            parent: &*parent,
            "orderflow.step",
            order = %exec.id.order,
            flow = %exec.flow,
            version = %exec.version,
            step = %step,
            attempt = token.attempt,
            outcome = tracing::field::Empty,
            attempts = tracing::field::Empty,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        e: usize,
        step: &str,
        records: Vec<RecordId>,
        outcome: Outcome,
        attempts: u32,
        started: Timestamp,
        details: Vec<String>,
        findings: Vec<Finding>,
    ) {
        let ended = self.now();
        #[cfg(feature = "tracing")]
        {
            let span = tracing::Span::current();
            span.record("outcome", tracing::field::display(outcome));
            span.record("attempts", attempts);
        }
        let exec = &mut self.state.executions[e];
        exec.steps += 1;
        if self.inner.dry.is_none() {
            crate::metrics::step(&exec.flow, step, outcome);
        }
        self.journey.push(StepRecord {
            execution: exec.id.clone(),
            flow: exec.flow.clone(),
            version: exec.version.clone(),
            step: step.to_owned(),
            records,
            outcome,
            attempts,
            round: exec.round,
            started,
            ended,
            details,
            findings,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn condition(
        &mut self,
        plan: &Plan,
        e: usize,
        t: usize,
        n: u32,
        yes: Position,
        no: Position,
        join: Option<u32>,
    ) {
        let now = self.now();
        let exec = &mut self.state.executions[e];
        let token = &mut exec.tokens[t];
        let taken = token.last == Some(Outcome::Succeeded);
        let (branch, target) = if taken { (0, yes) } else { (1, no) };
        if let Some(j) = join {
            let state = JoinState {
                join: j,
                branches: vec![
                    BranchState {
                        entered: branch == 0,
                        arrived: false,
                    },
                    BranchState {
                        entered: branch == 1,
                        arrived: false,
                    },
                ],
                input: token.records.clone(),
                records: None,
                frames: token.frames.clone(),
                fired: false,
            };
            exec.joins.retain(|s| s.join != j);
            exec.joins.push(state);
            token.frames.push(Frame { join: j, branch });
        }
        token.at = target;
        let records = token.records.records(&self.state.order);
        let path = if taken { "yes" } else { "no" };
        self.record(
            e,
            &plan.node(n).name,
            records,
            Outcome::Succeeded,
            0,
            now,
            vec![format!("took the {path} path")],
            Vec::new(),
        );
    }

    fn splitter(
        &mut self,
        plan: &Plan,
        e: usize,
        t: usize,
        n: u32,
        branches: &[(String, Position)],
        join: Option<u32>,
    ) {
        let now = self.now();
        let exec = &mut self.state.executions[e];
        let token = exec.tokens.remove(t);
        if let Some(j) = join {
            exec.joins.retain(|s| s.join != j);
            exec.joins.push(JoinState {
                join: j,
                branches: vec![
                    BranchState {
                        entered: true,
                        arrived: false,
                    };
                    branches.len()
                ],
                input: token.records.clone(),
                records: None,
                frames: token.frames.clone(),
                fired: false,
            });
        }
        let records = token.records.records(&self.state.order);
        // Every branch but the last takes a copy of the token; the last takes the token.
        if let Some(((_, last), rest)) = branches.split_last() {
            for (b, (_, pos)) in rest.iter().enumerate() {
                enter_branch(exec, token.clone(), b, *pos, join);
            }
            enter_branch(exec, token, rest.len(), *last, join);
        }
        let names: Vec<&str> = branches.iter().map(|(n, _)| n.as_str()).collect();
        self.record(
            e,
            &plan.node(n).name,
            records,
            Outcome::Succeeded,
            0,
            now,
            vec![format!("offered to branches {}", names.join(", "))],
            Vec::new(),
        );
    }

    fn arrive(&mut self, plan: &Plan, e: usize, t: usize, join: u32, branch: u32) {
        let exec = &mut self.state.executions[e];
        let token = exec.tokens.remove(t);
        if let Some(state) = exec.joins.iter_mut().find(|s| s.join == join) {
            if let Some(b) = state.branches.get_mut(branch as usize) {
                b.arrived = true;
            }
            match &mut state.records {
                None => state.records = Some(token.records),
                Some(r) => r.union(&token.records),
            }
        }
        self.check_join(plan, e, join);
    }

    /// Fires a merge if no entered branch is still live: the moment its last branch ends.
    fn check_join(&mut self, plan: &Plan, e: usize, join: u32) {
        let now = self.now();
        let exec = &mut self.state.executions[e];
        let Some(js) = exec.joins.iter().position(|s| s.join == join) else {
            return;
        };
        if exec.joins[js].fired {
            return;
        }
        let pending = exec
            .tokens
            .iter()
            .any(|t| t.is_live() && t.frames.iter().any(|f| f.join == join));
        if pending {
            return;
        }
        let (failed, rest): (Vec<Token>, Vec<Token>) = std::mem::take(&mut exec.tokens)
            .into_iter()
            .partition(|t| t.frames.iter().any(|f| f.join == join));
        exec.tokens = rest;
        let def = plan.join(join);
        let state = &mut exec.joins[js];
        state.fired = true;
        let arrived_any = state.branches.iter().any(|b| b.arrived);
        let tolerated = failed.is_empty() || (def.tolerate && arrived_any);
        let outcome = if !tolerated {
            Outcome::Failed
        } else if arrived_any {
            Outcome::Succeeded
        } else {
            Outcome::Skipped
        };
        let mut details = Vec::new();
        let describe = |pred: &dyn Fn(usize, &BranchState) -> bool| -> Vec<&str> {
            state
                .branches
                .iter()
                .enumerate()
                .filter(|(b, s)| pred(*b, s))
                .map(|(b, _)| def.branch_names.get(b).map_or("?", String::as_str))
                .collect()
        };
        let failed_branches: Vec<u32> = failed
            .iter()
            .filter_map(|t| t.frames.iter().find(|f| f.join == join).map(|f| f.branch))
            .collect();
        let arrived = describe(&|_, s| s.arrived);
        let failed_names = describe(&|b, _| failed_branches.contains(&(b as u32)));
        let dead =
            describe(&|b, s| s.entered && !s.arrived && !failed_branches.contains(&(b as u32)));
        let not_entered = describe(&|_, s| !s.entered);
        for (label, names) in [
            ("arrived", &arrived),
            ("failed", &failed_names),
            ("filtered out", &dead),
            ("not entered", &not_entered),
        ] {
            if !names.is_empty() {
                details.push(format!("{label}: {}", names.join(", ")));
            }
        }
        let records = state.records.clone().unwrap_or_else(|| state.input.clone());
        let frames = state.frames.clone();
        let id = exec.next_token;
        exec.next_token += 1;
        let failed_names = failed_names.join(", ");
        let record_ids = records.records(&self.state.order);
        self.record(
            e,
            &def.name,
            record_ids,
            outcome,
            0,
            now,
            details,
            Vec::new(),
        );
        let exec = &mut self.state.executions[e];
        match outcome {
            // A merge is Succeeded, Failed or Skipped; only a cancel ends paths Cancelled.
            Outcome::Skipped | Outcome::Cancelled => {
                if let Some(outer) = frames.last() {
                    self.check_join(plan, e, outer.join);
                }
            }
            Outcome::Succeeded | Outcome::Failed => {
                let mut token = Token {
                    id,
                    at: def.after,
                    status: TokenStatus::Ready,
                    records,
                    last: Some(outcome),
                    trigger: None,
                    admitted: false,
                    waited: false,
                    frames,
                    absorbed: Vec::new(),
                    error: None,
                    took: None,
                    attempt: 1,
                    calls: 0,
                    wake_at: None,
                };
                if outcome == Outcome::Failed && !plan.routes_failure(def.after) {
                    token.at = Position::Merged(join);
                    token.status = TokenStatus::Failed;
                    token.absorbed = failed;
                    token.error = Some(format!(
                        "merge '{}' failed: branch {failed_names} failed",
                        def.name
                    ));
                    let outer = token.frames.last().copied();
                    exec.tokens.push(token);
                    if let Some(outer) = outer {
                        self.check_join(plan, e, outer.join);
                    }
                } else {
                    exec.tokens.push(token);
                }
            }
        }
    }

    /// Ends a token's path Failed (or Skipped, `failed == None`) and fires its merge if due.
    fn end_path(&mut self, plan: &Plan, e: usize, t: usize, failed: Option<String>) {
        let exec = &mut self.state.executions[e];
        let frame = exec.tokens[t].frames.last().copied();
        match failed {
            Some(error) => {
                let token = &mut exec.tokens[t];
                token.status = TokenStatus::Failed;
                token.last = Some(Outcome::Failed);
                token.error = Some(error);
            }
            None => {
                exec.tokens.remove(t);
            }
        }
        if let Some(f) = frame {
            self.check_join(plan, e, f.join);
        }
    }

    async fn action(&mut self, plan: &Plan, e: usize, t: usize, a: &ActionNode) -> Result<()> {
        let started = self.now();
        let mut details = Vec::new();
        let step = &a.step;

        // Rule 3: the filter routes per record, once, when the path reaches the step;
        // none left means Skipped (a merge never waits for a branch filtered out).
        if !self.state.executions[e].tokens[t].admitted {
            if let Some(filter) = &a.filter {
                let OrderState {
                    order, executions, ..
                } = &mut self.state;
                let token = &mut executions[e].tokens[t];
                let offered = self
                    .inner
                    .dry
                    .is_some()
                    .then(|| token.records.records(order));
                let any = apply_filter(&**filter, order, &mut token.records);
                if let (Some(dry), Some(offered)) = (&self.inner.dry, offered) {
                    let admitted = token.records.records(order);
                    let rejected = offered
                        .into_iter()
                        .filter(|r| !admitted.contains(r))
                        .collect();
                    let admitted = if any { admitted } else { Vec::new() };
                    dry.filter(super::FilterDecision {
                        step: step.name.clone(),
                        policy: filter.name().to_owned(),
                        admitted,
                        rejected,
                    });
                }
                if !any {
                    let records = token.records.records(order);
                    details.push(format!("filter '{}' admitted no record", filter.name()));
                    self.record(
                        e,
                        &step.name,
                        records,
                        Outcome::Skipped,
                        0,
                        started,
                        details,
                        Vec::new(),
                    );
                    self.end_path(plan, e, t, None);
                    return Ok(());
                }
            }
            self.state.executions[e].tokens[t].admitted = true;
        }

        // Rule 2: a step with input events takes one: the path's trigger if it lists its
        // kind, else the earliest event on the order's timeline that no step of this flow
        // has taken (events that arrived before the step was reached count).
        if !self.state.executions[e].tokens[t].waited && !step.input_events.is_empty() {
            let OrderState {
                order,
                timeline,
                executions,
                ..
            } = &mut self.state;
            let flow = &executions[e].flow;
            let taken = |seq: u64| {
                executions
                    .iter()
                    .any(|x| &x.flow == flow && x.consumed.contains(&seq))
            };
            let token = &executions[e].tokens[t];
            let fits = |ev: &TimelineEntry| {
                step.input_events.contains(&ev.kind)
                    && ev
                        .record
                        .as_ref()
                        .is_none_or(|r| carries(order, &token.records, r))
            };
            let found = token
                .trigger
                .and_then(|seq| timeline.iter().find(|ev| ev.seq == seq))
                .filter(|ev| fits(ev))
                .or_else(|| timeline.iter().find(|ev| fits(ev) && !taken(ev.seq)));
            match found {
                Some(ev) => {
                    let seq = ev.seq;
                    let exec = &mut executions[e];
                    if !exec.consumed.contains(&seq) {
                        exec.consumed.push(seq);
                    }
                    exec.tokens[t].waited = true;
                    exec.tokens[t].took = Some(seq);
                }
                None => {
                    executions[e].tokens[t].status = TokenStatus::Waiting;
                    return Ok(());
                }
            }
        }

        // Named from committed state, so a step re-run after a crash says the same.
        if let Some(seq) = self.state.executions[e].tokens[t].took {
            if let Some(ev) = self.state.timeline.iter().find(|ev| ev.seq == seq) {
                details.push(format!("took event '{}' (#{})", ev.kind, ev.seq));
            }
        }

        if self.state.executions[e].steps >= self.inner.config.max_journey {
            let error = format!(
                "the execution reached its journey limit of {} steps",
                self.inner.config.max_journey
            );
            self.end_path(plan, e, t, Some(error));
            return Ok(());
        }

        let dry_before = self.inner.dry.is_some().then(|| self.state.order.clone());

        // Rule 8: execution policies, in order, per record of their entity.
        let (findings, critical) = {
            let OrderState {
                order, executions, ..
            } = &mut self.state;
            let token = &executions[e].tokens[t];
            if a.policies.is_empty() {
                (Vec::new(), None)
            } else {
                run_policies(&a.policies, Arc::make_mut(order), &token.records)
            }
        };

        let runs = critical.is_none() || a.action.handles_policy_failures();
        let external = runs && a.action.effects() == Effects::External;
        if external {
            // A provider call happens only from committed state.
            self.state.executions[e].tokens[t].status = TokenStatus::Running;
            self.commit().await?;
        }
        // A durable retry runs the step again from this committed state.
        let snapshot = external.then(|| {
            (
                self.state.order.clone(),
                self.state.executions[e].tokens[t].records.clone(),
            )
        });
        let token_attempt = self.state.executions[e].tokens[t].attempt.max(1);

        let mut attempts = 0;
        let mut retry_at = None;
        let mut accepted = Vec::new();
        let mut raised = Vec::new();
        let result: std::result::Result<(), String> = if runs {
            let OrderState {
                order, executions, ..
            } = &mut self.state;
            let exec = &mut executions[e];
            let token = &mut exec.tokens[t];
            let mut cx = ActionContext {
                order: Arc::make_mut(order),
                selection: &mut token.records,
                step,
                caller: Caller {
                    inner: self.inner,
                    step: &step.name,
                    provider: a.provider.as_ref(),
                    retry: a.retry,
                    timeout: a.timeout,
                    execution: &exec.id,
                    round: exec.round,
                    attempt: token_attempt,
                    attempts: Default::default(),
                    retry_at: Default::default(),
                    accepted: Default::default(),
                },
                accepted: &exec.accepted,
                findings: &findings,
                policy_failed: critical.is_some(),
                raised: Vec::new(),
                notes: Vec::new(),
            };
            let run = std::panic::AssertUnwindSafe(a.action.run(&mut cx))
                .catch_unwind()
                .await;
            attempts = cx.caller.attempts();
            retry_at = cx.caller.retry_at();
            accepted = cx.caller.take_accepted();
            raised = std::mem::take(&mut cx.raised);
            details.append(&mut cx.notes);
            match (run, &critical) {
                (Ok(Ok(())), None) => Ok(()),
                (Ok(Ok(())), Some(why)) => Err(why.clone()),
                (Ok(Err(err)), _) => Err(err.to_string()),
                (Err(panic), _) => Err(format!(
                    "action panicked: {}",
                    super::panic_message(&*panic)
                )),
            }
        } else {
            Err(critical.clone().unwrap_or_default())
        };

        if let (Err(why), Some(at), Some((order, records))) = (&result, retry_at, snapshot) {
            // A retryable failure with attempts left: undo what the run did, park the
            // token on a durable timer, and commit; `run_due` picks it up at `at`. What a
            // provider accepted cannot be undone: it is kept for the next attempt to see.
            self.state.order = order;
            self.state.executions[e].keep_accepted(&step.name, accepted);
            let token = &mut self.state.executions[e].tokens[t];
            token.records = records;
            token.status = TokenStatus::Retrying;
            token.wake_at = Some(at);
            token.attempt = token_attempt + 1;
            token.calls += attempts;
            let failure = format!("attempt {token_attempt} failed: {why}");
            token.error = Some(match token.error.take() {
                Some(earlier) => format!("{earlier}; {failure}"),
                None => failure,
            });
            self.commit().await?;
            self.inner.wake_timers(at);
            return Ok(());
        }
        attempts += self.state.executions[e].tokens[t].calls;
        // Earlier attempts' failures, kept on the token while it waited for its retries.
        if let Some(earlier) = self.state.executions[e].tokens[t].error.take() {
            details.insert(0, earlier);
        }
        if let (Some(dry), Some(before)) = (&self.inner.dry, &dry_before) {
            dry.changed(&step.name, before, &self.state.order);
        }
        let ok = result.is_ok();
        let outcome = if ok {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        if let Err(why) = &result {
            details.push(why.clone());
        }
        let records = self.state.executions[e].tokens[t]
            .records
            .records(&self.state.order);
        self.record(
            e, &step.name, records, outcome, attempts, started, details, findings,
        );

        // Rule 4: after a failure only a directly following Condition continues, on `no`.
        let exec = &mut self.state.executions[e];
        let token_id = exec.tokens[t].id;
        let mut event_prefix = String::with_capacity(64);
        let _ = write!(
            event_prefix,
            "{}/{}/{}/{}/",
            exec.id, token_id, step.name, exec.round
        );
        if ok || plan.routes_failure(a.next) {
            exec.forget_accepted(&step.name);
            let token = &mut exec.tokens[t];
            token.at = a.next;
            token.trigger = None;
            token.admitted = false;
            token.waited = false;
            token.took = None;
            token.attempt = 1;
            token.calls = 0;
            token.wake_at = None;
            token.error = None;
            token.last = Some(outcome);
            token.status = TokenStatus::Ready;
        } else {
            exec.keep_accepted(&step.name, accepted);
            self.end_path(plan, e, t, result.clone().err());
        }

        // Rule 9: output events go on the timeline and may start or resume flows.
        let outcome_event = if ok {
            step.kind.succeeded_event()
        } else {
            step.kind.failed_event()
        }
        .unwrap_or_else(|| {
            EventKind::new(format!(
                "{} has {}",
                step.name,
                if ok { "Succeeded" } else { "Failed" }
            ))
        });
        let extra = if ok { None } else { step.on_failure.clone() };
        let events = raised
            .into_iter()
            .map(|r| (r.kind, r.record))
            .chain(std::iter::once((outcome_event, None)))
            .chain(extra.map(|kind| (kind, None)));
        for (i, (kind, record)) in events.enumerate() {
            // Stored on the timeline: sized to fit.
            let mut id = String::with_capacity(event_prefix.len() + 4);
            id.push_str(&event_prefix);
            let _ = write!(id, "{i}");
            let id = EventId(id);
            self.append_event(id, kind, record, Some(step.name.clone()))?;
        }

        // The provider's result is committed before any later effect: with the next
        // step's commit before it calls out, or at the end of the turn, whichever comes
        // first. A crash before then repeats this call under its key.
        Ok(())
    }
}

/// The name of the step a token stands at, for the journey.
fn position_name(plan: &Plan, at: Position) -> String {
    match at {
        Position::Node(n) => plan.node(n).name.clone(),
        Position::Arrive { join, .. } | Position::Merged(join) => plan.join(join).name.clone(),
        Position::End => "end".to_owned(),
    }
}

/// What a path was doing when its execution was cancelled, for the journey.
fn cancelled_detail(token: &Token) -> String {
    match token.status {
        TokenStatus::Waiting => "cancelled while waiting for an input event".to_owned(),
        TokenStatus::Ready => "cancelled before the step ran".to_owned(),
        TokenStatus::Running => "cancelled with its provider call committed as under way by a \
             turn that did not finish: the provider may have taken the call"
            .to_owned(),
        TokenStatus::Retrying => match token.wake_at {
            Some(at) => format!(
                "cancelled while waiting to retry: attempt {} was due at {at}",
                token.attempt
            ),
            None => format!("cancelled while waiting to retry attempt {}", token.attempt),
        },
        TokenStatus::Failed => match &token.error {
            Some(error) => format!("cancelled after the path failed: {error}"),
            None => "cancelled after the path failed".to_owned(),
        },
    }
}

/// Counts an event (and the order it brought) accepted once its commit succeeded.
fn accepted(accepting: Option<bool>) {
    if let Some(new_order) = accepting {
        crate::metrics::event_accepted(false);
        if new_order {
            crate::metrics::order_accepted();
        }
    }
}

/// Starts a copy of a splitter's token on branch `b` at `pos`.
fn enter_branch(
    exec: &mut Execution,
    mut child: Token,
    b: usize,
    pos: Position,
    join: Option<u32>,
) {
    child.id = exec.next_token;
    exec.next_token += 1;
    child.at = pos;
    child.status = TokenStatus::Ready;
    if let Some(j) = join {
        child.frames.push(Frame {
            join: j,
            branch: b as u32,
        });
    }
    exec.tokens.push(child);
}

/// Puts a failed token (and, for a failed merge, the branches that failed it) back to work.
fn revive(exec: &mut Execution, mut token: Token) {
    if let Position::Merged(j) = token.at {
        if let Some(state) = exec.joins.iter_mut().find(|s| s.join == j) {
            state.fired = false;
        }
        for inner in std::mem::take(&mut token.absorbed) {
            revive(exec, inner);
        }
    } else {
        token.status = TokenStatus::Ready;
        token.error = None;
        token.attempt = 1;
        token.calls = 0;
        token.wake_at = None;
        exec.tokens.push(token);
    }
}

fn carries(order: &Order, selection: &Selection, record: &RecordId) -> bool {
    match record {
        RecordId::Order => true,
        RecordId::Line(id) => order.line(id.as_str()).is_some() && selection.has_line(id),
        RecordId::FulfillmentOrder(id) | RecordId::FulfillmentOrderLine(id, _) => {
            order.fulfillment_order(id.as_str()).is_some() && selection.has_fulfillment_order(id)
        }
    }
}

/// Narrows `selection` to the records `filter` admits; whether any is left.
fn apply_filter(filter: &dyn Policy, order: &Order, selection: &mut Selection) -> bool {
    match filter.entity() {
        Entity::Order => filter.admits(RecordRef::Order(order)),
        Entity::OrderLine => {
            let admitted: Vec<_> = order
                .lines
                .iter()
                .filter(|l| selection.has_line(&l.id) && filter.admits(RecordRef::Line(order, l)))
                .map(|l| l.id.clone())
                .collect();
            let any = !admitted.is_empty();
            selection.lines = Some(admitted);
            any
        }
        Entity::FulfillmentOrder | Entity::FulfillmentOrderLine => {
            let line_level = filter.entity() == Entity::FulfillmentOrderLine;
            let admitted: Vec<_> = order
                .fulfillment_orders
                .iter()
                .filter(|f| selection.has_fulfillment_order(&f.id))
                .filter(|f| {
                    if line_level {
                        f.lines
                            .iter()
                            .any(|l| filter.admits(RecordRef::FulfillmentOrderLine(order, f, l)))
                    } else {
                        filter.admits(RecordRef::FulfillmentOrder(order, f))
                    }
                })
                .map(|f| f.id.clone())
                .collect();
            let any = !admitted.is_empty();
            selection.fulfillment_orders = Some(admitted);
            any
        }
    }
}

/// Runs execution policies; returns the findings and, if a Critical one failed, why.
fn run_policies(
    policies: &[Arc<dyn Policy>],
    order: &mut Order,
    selection: &Selection,
) -> (Vec<Finding>, Option<String>) {
    let mut findings = Vec::new();
    let mut critical = None;
    for policy in policies {
        // The record's id is written only for a failed check.
        let mut note = |record: &dyn Fn() -> RecordId, check: Check| {
            if let Check::Failed(reason) = check {
                let record = record();
                if policy.criticality() == Criticality::Critical && critical.is_none() {
                    critical = Some(format!(
                        "policy '{}' failed on {record}: {reason}",
                        policy.name()
                    ));
                }
                findings.push(Finding {
                    policy: policy.name().to_owned(),
                    criticality: policy.criticality(),
                    record,
                    reason: reason.into_owned(),
                });
            }
        };
        match policy.entity() {
            Entity::Order => {
                let check = policy.execute(RecordMut::Order(order));
                note(&|| RecordId::Order, check);
            }
            Entity::OrderLine => {
                for line in order.lines.iter_mut().filter(|l| selection.has_line(&l.id)) {
                    let check = policy.execute(RecordMut::Line(line));
                    note(&|| RecordId::Line(line.id.clone()), check);
                }
            }
            Entity::FulfillmentOrder => {
                for fo in order
                    .fulfillment_orders
                    .iter_mut()
                    .filter(|f| selection.has_fulfillment_order(&f.id))
                {
                    let check = policy.execute(RecordMut::FulfillmentOrder(fo));
                    note(&|| RecordId::FulfillmentOrder(fo.id.clone()), check);
                }
            }
            Entity::FulfillmentOrderLine => {
                for fo in order
                    .fulfillment_orders
                    .iter_mut()
                    .filter(|f| selection.has_fulfillment_order(&f.id))
                {
                    for (i, line) in fo.lines.iter_mut().enumerate() {
                        let check = policy.execute(RecordMut::FulfillmentOrderLine(line));
                        note(&|| RecordId::FulfillmentOrderLine(fo.id.clone(), i), check);
                    }
                }
            }
        }
    }
    (findings, critical)
}
