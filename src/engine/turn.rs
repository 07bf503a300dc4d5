//! The async shell around the token machine: one order's turn, from load to quiescence.
//!
//! A turn loads the order's state, feeds the [`Machine`](super::machine::Machine) the time
//! and what it asks for, and executes its commands: load a compiled plan, commit (before
//! every provider call, and at the end), run an action. Metrics, tracing and dry runs
//! observe what the machine recorded; they never branch inside it.

#[cfg(feature = "tracing")]
use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt;

use super::Receipt;
use super::inner::Inner;
use super::machine::{self, Bounds, Command, Done, Env, Input, Machine, Route, Run};
use super::plan::{NodeKind, Plan};
use crate::action::{ActionContext, ActionError, ActionErrorKind};
use crate::clock::Timestamp;
use crate::document::{Order, OrderId};
use crate::error::{Error, Result};
use crate::event::{Event, EventId, EventKind};
use crate::execution::{ExecutionId, ExecutionStatus, OrderState};
use crate::flow::FlowStatus;
use crate::journey::{StepRef, StepRow};
use crate::provider::call::StepCalls;
use crate::provider::catch_panic::panic_message;
use crate::provider::idempotency::IdempotencyKey;
use crate::provider::timeout::Timeout;
use crate::store::ChangeSet;
use crate::update::OrderUpdate;

/// The machine's view of the engine's catalog.
struct Catalog<'e>(&'e Inner);

impl Env for Catalog<'_> {
    fn routes(&self, kind: &EventKind) -> Result<Vec<Route>> {
        let catalog = self.0.read_catalog();
        let Some(entries) = catalog.routes.get(kind) else {
            return Ok(Vec::new());
        };
        let mut routes = Vec::with_capacity(entries.len());
        for (f, v, plan) in entries {
            match plan {
                Some(p) => routes.push(Route {
                    flow: f.clone(),
                    version: v.clone(),
                    plan: p.clone(),
                }),
                None => {
                    let key = (f.clone(), v.clone());
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
        Ok(routes)
    }

    fn paused(&self, flow: &str) -> bool {
        self.0.read_catalog().status(flow) == Some(FlowStatus::Paused)
    }
}

/// One order's state in memory while the engine works on it (under the order's lock).
pub(super) struct Turn<'e> {
    inner: &'e Inner,
    m: Machine,
    expected: Option<u64>,
    /// An event this turn put on the timeline and has not yet committed, and whether it
    /// brought a new order: counted in the metrics once it is durable.
    accepting: Option<bool>,
    /// The span of each execution this turn moved.
    #[cfg(feature = "tracing")]
    spans: HashMap<usize, tracing::Span>,
    /// The span of the action under way (execution, node), closed when its row is recorded.
    #[cfg(feature = "tracing")]
    running: Option<(usize, u32, tracing::Span)>,
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
        let bounds = Bounds {
            max_journey: inner.config.max_journey,
            max_steps_per_turn: inner.config.max_steps_per_turn,
        };
        let mut m = Machine::new(state, bounds);
        m.observe = inner.dry.is_some();
        Self {
            inner,
            expected: Some(m.state.revision),
            m,
            accepting: None,
            #[cfg(feature = "tracing")]
            spans: HashMap::new(),
            #[cfg(feature = "tracing")]
            running: None,
        }
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The order as loaded (and as moved so far).
    pub(super) fn state(&self) -> &OrderState {
        &self.m.state
    }

    pub(super) async fn submit(mut self, event: Event) -> Result<Receipt> {
        self.catch_up().await?;
        let observed = self.inner.dry.is_none();
        if self.m.state.timeline.iter().any(|e| e.id == event.id) {
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
        let seq = self.append(event.id, event.kind, event.record)?;
        if new_order {
            self.m.touch_document();
        }
        self.accepting = observed.then_some(new_order);
        self.drive().await?;
        let started = self.finish().await?;
        Ok(Receipt {
            duplicate: false,
            seq,
            started,
        })
    }

    /// Puts a submitted event on the timeline.
    fn append(
        &mut self,
        id: EventId,
        kind: EventKind,
        record: Option<crate::document::RecordId>,
    ) -> Result<u64> {
        let now = self.now();
        machine::append_event(
            &mut self.m,
            &Catalog(self.inner),
            id,
            kind,
            record,
            None,
            now,
        )
    }

    /// Work an earlier engine left in flight (a crash between commits, a dropped future)
    /// runs first, so the order sees its events and updates in the order it would have
    /// without the crash, and a step committed as under way finishes with the document it
    /// started with.
    async fn catch_up(&mut self) -> Result<()> {
        if self.m.state.has_runnable() {
            self.drive().await?;
            if self.m.changes.any {
                self.commit_as(true).await?;
            }
        }
        Ok(())
    }

    /// Refuses an event past the order's timeline bound.
    fn check_timeline_room(&self, id: &EventId) -> Result<()> {
        let max = self.inner.config.limits.max_timeline_events;
        let state = &self.m.state;
        if state.timeline.len() >= max {
            return Err(crate::limits::LimitError {
                what: "order timeline",
                limit: "max_timeline_events",
                max,
                found: state.timeline.len() + 1,
                place: format!("order '{}', event '{id}'", state.order.id),
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
        if self.m.state.timeline.iter().any(|e| e.id == id) {
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
        self.m.state.order = Arc::new(order);
        self.m.touch_document();
        let seq = self.append(id, EventKind::ORDER_UPDATED, None)?;
        self.drive().await?;
        let started = self.finish().await?;
        Ok(Receipt {
            duplicate: false,
            seq,
            started,
        })
    }

    /// The document after `update`, checked as intake checks a new order's.
    fn updated(&self, id: &EventId, update: OrderUpdate) -> Result<Order> {
        let current = &self.m.state.order;
        let invalid = |reason: String| Error::InvalidUpdate {
            order: current.id.clone(),
            reason,
        };
        let order = update.apply(current).map_err(invalid)?;
        order.check_ids().map_err(|e| invalid(e.to_string()))?;
        order.check_limits("order update", &self.inner.config.limits, || {
            format!("update '{id}' of order '{}'", current.id)
        })?;
        Ok(order)
    }

    /// Ends an execution (see [`machine::cancel`]); then the order's other work runs as
    /// after any change.
    pub(super) async fn cancel(mut self, id: &ExecutionId) -> Result<()> {
        let e = self.execution(id)?;
        let status = self.m.state.executions[e].status();
        if matches!(
            status,
            ExecutionStatus::Completed | ExecutionStatus::Cancelled
        ) {
            return Err(Error::NotCancellable {
                execution: id.clone(),
                status,
            });
        }
        let now = self.now();
        machine::cancel(&mut self.m, e, now);
        self.observe_rows(0);
        self.drive().await?;
        self.finish().await.map(drop)
    }

    fn execution(&self, id: &ExecutionId) -> Result<usize> {
        self.m
            .state
            .executions
            .iter()
            .position(|x| &x.id == id)
            .ok_or_else(|| Error::UnknownExecution(id.clone()))
    }

    pub(super) async fn run_pending(mut self) -> Result<bool> {
        if !self.m.state.has_runnable() {
            return Ok(false);
        }
        self.drive().await?;
        self.finish().await?;
        Ok(true)
    }

    /// Runs the tokens whose durable timers are due at `now`; whether any was.
    pub(super) async fn run_due(mut self, now: Timestamp) -> Result<bool> {
        // A turn that never finished (its future dropped, its process gone): what it left
        // committed runs again, under the same idempotency keys.
        if !machine::wake_due(&mut self.m, now) {
            return Ok(false);
        }
        let observed = self.inner.dry.is_none();
        self.drive().await?;
        self.finish().await?;
        if observed {
            crate::metrics::timer_due();
        }
        Ok(true)
    }

    pub(super) async fn reprocess(mut self, id: &ExecutionId) -> Result<()> {
        let e = self.execution(id)?;
        if !machine::reprocess(&mut self.m, e) {
            return Err(Error::NotReprocessable(id.clone()));
        }
        self.drive().await?;
        self.finish().await.map(drop)
    }

    /// Feeds the machine until nothing can move, executing its commands.
    async fn drive(&mut self) -> Result<()> {
        let mut input = Input::Go;
        loop {
            let rows = self.m.journey.len();
            let now = self.now();
            let command = self.m.advance(&Catalog(self.inner), input, now)?;
            self.observe_rows(rows);
            self.observe_filters();
            input = match command {
                Command::Idle => return Ok(()),
                Command::Load(e) => Input::Plan(e, self.plan(e).await?),
                Command::Commit { wake } => {
                    self.commit_as(true).await?;
                    if let Some(at) = wake {
                        self.inner.wake_timers(at);
                    }
                    Input::Go
                }
                Command::Run(run) => Input::Done(self.run(run).await),
            };
        }
    }

    /// Execution `e`'s compiled plan, refused when it is laid out otherwise than the plan
    /// the execution started on.
    async fn plan(&self, e: usize) -> Result<Arc<Plan>> {
        let exec = &self.m.state.executions[e];
        let plan = self.inner.plan(&exec.flow, &exec.version).await?;
        if exec.plan != plan.tag {
            return Err(Error::FlowBroken {
                flow: exec.flow.clone(),
                version: exec.version.clone(),
                reason: format!(
                    "execution {} was started on a plan laid out differently (fingerprint \
                     {:016x}, this engine compiles {:016x}): its paths cannot be placed",
                    exec.id, exec.plan, plan.tag
                ),
            });
        }
        Ok(plan)
    }

    /// Runs a step's action on the state: provider calls through the step's call layers
    /// (timeout, panic caught, idempotency key, dry run), a panic of the action caught, and
    /// the durable retry decided on the error it returned.
    async fn run(&mut self, run: Run) -> Done {
        let plan = self.m.plans[run.e].clone().expect("a run's plan is loaded");
        let NodeKind::Action(a) = &plan.node(run.node).kind else {
            unreachable!("a run is at an action");
        };
        let step = &a.step;
        if !run.runs {
            if let (Some(dry), Some(before)) = (&self.inner.dry, &run.before) {
                dry.changed(&step.name, before, &self.m.state.order);
            }
            return Done {
                result: Err(run.critical.clone().unwrap_or_default()),
                ..Done::default()
            };
        }
        #[cfg(feature = "tracing")]
        let span = {
            let span = self.step_span(run.e, &step.name, run.attempt);
            self.running = Some((run.e, run.node, span.clone()));
            span
        };
        let inner = self.inner;
        let state = &mut self.m.state;
        let exec = &mut state.executions[run.e];
        let token = &mut exec.tokens[run.t];
        let snapshot = run
            .external
            .then(|| (state.order.clone(), token.records.clone()));
        let calls = StepCalls::new(
            &step.name,
            a.provider.as_ref(),
            IdempotencyKey::new(&exec.id, &step.name, exec.round),
            Timeout::new(a.timeout, &*inner.clock),
            run.attempt,
        )
        .dry_run(inner.dry.as_ref().map(|d| &d.calls))
        .observed(crate::metrics::CALL_OBSERVER);
        let mut cx = ActionContext {
            order: Arc::make_mut(&mut state.order),
            selection: &mut token.records,
            step,
            calls,
            accepted: &exec.accepted,
            findings: &run.findings,
            policy_failed: run.critical.is_some(),
            raised: Vec::new(),
            notes: Vec::new(),
        };
        let action = std::panic::AssertUnwindSafe(a.action.run(&mut cx)).catch_unwind();
        #[cfg(feature = "tracing")]
        let action = tracing::Instrument::instrument(action, span);
        let ran = action.await;
        let error = match ran {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err),
            Err(panic) => Some(ActionError::of_kind(
                ActionErrorKind::Panicked,
                format!("action panicked: {}", panic_message(&*panic)),
            )),
        };
        // The step runs again only on a retryable error the action returned, from the
        // state committed before it.
        let retryable_calls = cx.calls.take_retryable_failures();
        let mut retry_at = None;
        if let (Some(err), Some(_)) = (&error, &snapshot) {
            if let Some(wait) = a.retry.next_attempt(err, run.attempt, || inner.random()) {
                retry_at = Some(inner.clock.now().after(wait));
                if let Some(provider) = &a.provider {
                    crate::metrics::provider_retries(provider.name(), &retryable_calls);
                }
            }
        }
        let result = match (error, &run.critical) {
            (None, None) => Ok(()),
            (None, Some(why)) => Err(why.clone()),
            (Some(err), _) => Err(err.to_string()),
        };
        let done = Done {
            result,
            retry_at,
            attempts: cx.calls.made(),
            accepted: cx.calls.take_accepted(),
            raised: std::mem::take(&mut cx.raised),
            notes: std::mem::take(&mut cx.notes),
            snapshot,
        };
        if let (Some(dry), Some(before)) = (&self.inner.dry, &run.before) {
            if done.retry_at.is_none() || done.result.is_ok() {
                dry.changed(&step.name, before, &self.m.state.order);
            }
        }
        done
    }

    /// Counts and traces the journey rows the machine recorded from index `from` on.
    fn observe_rows(&mut self, from: usize) {
        if self.m.journey.len() <= from {
            return;
        }
        let observed = self.inner.dry.is_none();
        for i in from..self.m.journey.len() {
            let row = &self.m.journey[i];
            let e = row.execution() as usize - 1;
            let Some(plan) = self.m.plans.get(e).and_then(Option::as_ref) else {
                continue;
            };
            let name = step_name(plan, row);
            if observed {
                crate::metrics::step(&self.m.state.executions[e].flow, name, row.outcome());
            }
            #[cfg(feature = "tracing")]
            {
                let (outcome, attempts, step) = (row.outcome(), row.attempts, row.step());
                let span = match self.running.take() {
                    Some((re, node, span)) if re == e && step == StepRef::Node(node) => span,
                    other => {
                        self.running = other;
                        let name = name.to_owned();
                        self.step_span(e, &name, 0)
                    }
                };
                span.record("outcome", tracing::field::display(outcome));
                span.record("attempts", attempts);
            }
        }
    }

    /// Hands the filter decisions the machine kept to a dry run.
    fn observe_filters(&mut self) {
        let Some(dry) = &self.inner.dry else { return };
        for f in self.m.filtered.drain(..) {
            let Some(plan) = self.m.plans.get(f.e).and_then(Option::as_ref) else {
                continue;
            };
            let NodeKind::Action(a) = &plan.node(f.node).kind else {
                continue;
            };
            let rejected = f
                .offered
                .into_iter()
                .filter(|r| !f.admitted.contains(r))
                .collect();
            dry.filter(super::FilterDecision {
                step: a.step.name.clone(),
                policy: a
                    .filter
                    .as_ref()
                    .map(|p| p.name().to_owned())
                    .unwrap_or_default(),
                admitted: f.admitted,
                rejected,
            });
        }
    }

    /// The span of one step: a child of its execution's span for this turn, carrying the
    /// order, flow, version, step and attempt; the outcome is recorded when the machine
    /// records the step.
    #[cfg(feature = "tracing")]
    fn step_span(&mut self, e: usize, step: &str, attempt: u32) -> tracing::Span {
        let exec = &self.m.state.executions[e];
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
            attempt = attempt,
            outcome = tracing::field::Empty,
            attempts = tracing::field::Empty,
        )
    }

    /// Ends the turn: commits what is not yet committed, handing the state to the store
    /// instead of a copy of it. Returns the executions the turn started.
    ///
    /// Paths of a paused flow stay where they are; when the flow was resumed while this
    /// turn ran (after it last looked), the turn commits, looks at the catalog again and
    /// runs them, so a resume racing the turn never strands them: the resume either ran
    /// before that last look, or its recovery finds this commit.
    async fn finish(mut self) -> Result<Vec<ExecutionId>> {
        if self.m.state.resume_at.is_some() {
            self.m.state.resume_at = None;
            self.m.touch();
        }
        // After `drive`, a path still ready to move belongs to a paused flow.
        while self.m.state.has_runnable() {
            // Committed as under way: a resume whose recovery listed the live orders
            // before this commit counts on the look below, and if this turn is dropped
            // before it, the durable timer takes the order up instead.
            let committed = self.m.changes.any;
            if committed {
                self.commit_as(true).await?;
            }
            self.inner.sync_catalog().await?;
            if self.m.next_ready(&Catalog(self.inner)).is_none() {
                if committed {
                    // Still paused: no timer, so the order does not wake only to wait.
                    self.commit_as(false).await?;
                }
                return Ok(std::mem::take(&mut self.m.started));
            }
            self.drive().await?;
            self.m.state.resume_at = None;
        }
        if self.m.changes.any {
            let Self {
                inner,
                m,
                expected,
                accepting,
                ..
            } = self;
            let mut m = m;
            m.state.revision += 1;
            // The last commit of the turn: what changed moves into the change set.
            let mut change = ChangeSet::indexes(expected, &m.state);
            let changes = std::mem::take(&mut m.changes);
            if changes.document || expected.is_none() {
                change.document = Some(m.state.order.clone());
            }
            change.timeline = m.state.timeline.split_off(changes.timeline_from);
            change.executions = std::mem::take(&mut m.state.executions)
                .into_iter()
                .enumerate()
                .filter(|(e, _)| changes.executions.get(*e).copied().unwrap_or(false))
                .map(|(_, x)| x)
                .collect();
            change.journey = m.journey;
            inner.store.commit(change).await?;
            inner.commits.notify();
            accepted(accepting);
            return Ok(m.started);
        }
        Ok(std::mem::take(&mut self.m.started))
    }

    /// A commit; `under_way` says whether the turn goes on after it: then the order
    /// carries [`resume_at`](OrderState::resume_at), so that if this turn never finishes,
    /// the timer worker (or a claim) takes its work up again.
    async fn commit_as(&mut self, under_way: bool) -> Result<()> {
        let state = &mut self.m.state;
        let previous = state.resume_at;
        let grace = self.inner.config.timeout;
        state.resume_at = under_way.then(|| self.inner.clock.now().after(grace));
        state.revision += 1;
        let change = self.change_set();
        if let Err(e) = self.inner.store.commit(change).await {
            let state = &mut self.m.state;
            state.revision -= 1;
            state.resume_at = previous;
            return Err(e.into());
        }
        self.expected = Some(self.m.state.revision);
        self.m.committed();
        self.inner.commits.notify();
        accepted(self.accepting.take());
        Ok(())
    }
}

impl Turn<'_> {
    /// What changed since the last commit, at the state's revision: the document when an
    /// action or a policy may have changed it (or the order is new), the executions the
    /// machine moved, the timeline entries and journey rows added since.
    fn change_set(&mut self) -> ChangeSet {
        let m = &mut self.m;
        let mut change = ChangeSet::indexes(self.expected, &m.state);
        if m.changes.document || self.expected.is_none() {
            change.document = Some(m.state.order.clone());
        }
        change.timeline = m.state.timeline[m.changes.timeline_from..].to_vec();
        let changed = |e: usize| m.changes.executions.get(e).copied().unwrap_or(false);
        let count = (0..m.state.executions.len())
            .filter(|e| changed(*e))
            .count();
        change.executions = Vec::with_capacity(count);
        change.executions.extend(
            m.state
                .executions
                .iter()
                .enumerate()
                .filter(|(e, _)| changed(*e))
                .map(|(_, x)| x.clone()),
        );
        change.journey = std::mem::take(&mut m.journey);
        change
    }
}

/// The name of the step a journey row is about.
fn step_name<'p>(plan: &'p Plan, row: &'p StepRow) -> &'p str {
    match row.step() {
        StepRef::Node(n) => plan.node(n).name.as_str(),
        StepRef::Merge(j) => plan.join(j).name.as_str(),
        StepRef::End => "end",
        StepRef::Named => row.name.as_deref().unwrap_or("?"),
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
