//! The action pipeline, as explicit transitions of a token's phase: the filter (rule 3),
//! the input event (rule 2), execution policies (rule 8), the action, and its outcome
//! (rule 4) with output events (rule 9).

use std::fmt::Write as _;
use std::sync::Arc;

use crate::action::Effects;
use crate::clock::Timestamp;
use crate::document::{Entity, Order, RecordId, RecordMut, RecordRef};
use crate::error::Result;
use crate::event::{EventId, EventKind};
use crate::execution::{Outcome, Phase, Resume, Selection, TimelineEntry};
use crate::journey::{Detail, Finding, StepRef};
use crate::policy::{Check, Criticality, ExecutionPolicy, FilterPolicy};

use super::merge::end_path;
use super::route::append_event;
use super::state::{Done, Env, Filtered, Machine, Run};
use crate::engine::plan::{ActionNode, NodeKind, Plan};

fn action_node(plan: &Plan, n: u32) -> &ActionNode {
    match &plan.node(n).kind {
        NodeKind::Action(a) => a,
        _ => unreachable!("node {n} is an action"),
    }
}

/// Moves a token at action node `n` through its pipeline as far as it goes without the
/// action: filtered out (Skipped), parked for an event, failed at the journey bound, or
/// ready to run (the returned [`Run`]).
pub(super) fn action(
    m: &mut Machine,
    env: &dyn Env,
    plan: &Plan,
    e: usize,
    t: usize,
    n: u32,
    now: Timestamp,
) -> Result<Option<Run>> {
    let _ = env;
    let a = action_node(plan, n);
    if m.state.executions[e].tokens[t].phase == Phase::Arrived && !admit(m, plan, e, t, n, a, now) {
        return Ok(None);
    }
    if m.state.executions[e].tokens[t].phase == Phase::Awaiting && !take_event(m, e, t, a) {
        return Ok(None);
    }
    if m.state.executions[e].steps >= m.bounds.max_journey {
        let error = format!(
            "the execution reached its journey limit of {} steps",
            m.bounds.max_journey
        );
        end_path(m, plan, e, t, Some((error, Resume::Admitted)), now);
        return Ok(None);
    }
    let before = m.observe.then(|| m.state.order.clone());
    // Rule 8: execution policies, in order, per record of their entity.
    let (findings, critical) = {
        let state = &mut m.state;
        let token = &state.executions[e].tokens[t];
        if a.policies.is_empty() {
            (Vec::new(), None)
        } else {
            m.changes.any = true;
            m.changes.document = true;
            run_policies(&a.policies, Arc::make_mut(&mut state.order), &token.records)
        }
    };
    let runs = critical.is_none() || a.action.handles_policy_failures();
    let external = runs && a.action.effects() == Effects::External;
    let token = &mut m.state.executions[e].tokens[t];
    if external {
        // A provider call happens only from committed state.
        token.phase = Phase::Calling;
    }
    Ok(Some(Run {
        e,
        t,
        node: n,
        attempt: token.attempt.max(1),
        started: now,
        findings,
        critical,
        runs,
        external,
        before,
    }))
}

/// Rule 3: the filter routes per record, once, when the path reaches the step; none left
/// means Skipped (a merge never waits for a branch filtered out). Whether the token goes on.
fn admit(
    m: &mut Machine,
    plan: &Plan,
    e: usize,
    t: usize,
    n: u32,
    a: &ActionNode,
    now: Timestamp,
) -> bool {
    let next = if a.step.input_events.is_empty() {
        Phase::Admitted
    } else {
        Phase::Awaiting
    };
    let Some(filter) = &a.filter else {
        m.state.executions[e].tokens[t].phase = next;
        return true;
    };
    let order = &m.state.order;
    let token = &mut m.state.executions[e].tokens[t];
    let offered = m.observe.then(|| token.records.records(order));
    let any = apply_filter(&**filter, order, &mut token.records);
    if let Some(offered) = offered {
        let admitted = if any {
            token.records.records(order)
        } else {
            Vec::new()
        };
        m.filtered.push(Filtered {
            node: n,
            e,
            offered,
            admitted,
        });
    }
    if any {
        token.phase = next;
        return true;
    }
    let records = token.records.clone();
    m.record(
        e,
        StepRef::Node(n),
        &records,
        Outcome::Skipped,
        0,
        now,
        now,
        vec![Detail::FilterAdmittedNone],
        Vec::new(),
    );
    end_path(m, plan, e, t, None, now);
    false
}

/// Rule 2: a step with input events takes one: the path's trigger if it lists its kind,
/// else the earliest event on the order's timeline that no step of this flow has taken
/// (events that arrived before the step was reached count). None: the token parks.
fn take_event(m: &mut Machine, e: usize, t: usize, a: &ActionNode) -> bool {
    let state = &mut m.state;
    let flow = &state.executions[e].flow;
    let taken = |seq: u64| {
        state
            .executions
            .iter()
            .any(|x| &x.flow == flow && x.consumed.contains(&seq))
    };
    let token = &state.executions[e].tokens[t];
    let order = &state.order;
    let fits = |ev: &TimelineEntry| {
        a.step.input_events.contains(&ev.kind)
            && ev
                .record
                .as_ref()
                .is_none_or(|r| carries(order, &token.records, r))
    };
    let found = token
        .trigger
        .and_then(|seq| state.timeline.iter().find(|ev| ev.seq == seq))
        .filter(|ev| fits(ev))
        .or_else(|| state.timeline.iter().find(|ev| fits(ev) && !taken(ev.seq)))
        .map(|ev| ev.seq);
    let exec = &mut state.executions[e];
    match found {
        Some(seq) => {
            if !exec.consumed.contains(&seq) {
                exec.consumed.push(seq);
            }
            exec.tokens[t].took = Some(seq);
            exec.tokens[t].phase = Phase::Admitted;
            true
        }
        None => {
            exec.tokens[t].phase = Phase::Parked;
            false
        }
    }
}

/// Settles a run: a retryable failure with attempts left parks the token on a durable
/// timer (returned: the shell commits and sets it); otherwise the step is recorded, the
/// path goes on (rule 4: after a failure only a directly following Condition continues,
/// on `no`) or ends Failed, and the output events go on the timeline (rule 9).
pub(super) fn settle(
    m: &mut Machine,
    env: &dyn Env,
    run: &Run,
    done: Done,
    now: Timestamp,
) -> Result<Option<Timestamp>> {
    let (e, t) = (run.e, run.t);
    let plan = m.plans[e].clone().expect("a run's plan is loaded");
    let a = action_node(&plan, run.node);
    let step = &a.step;
    m.changes.execution(e);
    let Done {
        result,
        retry_at,
        attempts,
        accepted,
        raised,
        notes,
        snapshot,
    } = done;
    if let (Err(why), Some(at), Some((order, records))) = (&result, retry_at, snapshot) {
        // Undo what the run did and park the token; what a provider accepted cannot be
        // undone: it is kept for the next attempt to see.
        m.state.order = order;
        m.changes.document = true;
        m.state.executions[e].keep_accepted(&step.name, accepted);
        let token = &mut m.state.executions[e].tokens[t];
        token.records = records;
        token.phase = Phase::Retrying { at };
        token.attempt = run.attempt + 1;
        token.calls += attempts;
        let failure = format!("attempt {} failed: {why}", run.attempt);
        token.earlier = Some(match token.earlier.take() {
            Some(earlier) => format!("{earlier}; {failure}"),
            None => failure,
        });
        return Ok(Some(at));
    }
    if run.runs {
        // The action may have changed the document.
        m.changes.document = true;
    }
    let token = &mut m.state.executions[e].tokens[t];
    let attempts = attempts + token.calls;
    // Sized exactly: the row is kept for the order's life.
    let count = usize::from(token.earlier.is_some())
        + usize::from(token.took.is_some())
        + notes.len()
        + usize::from(result.is_err());
    let mut details = Vec::with_capacity(count);
    // Earlier attempts' failures, kept on the token while it waited for its retries.
    if let Some(earlier) = token.earlier.take() {
        details.push(Detail::Error(earlier));
    }
    // Named from committed state, so a step re-run after a crash says the same.
    if let Some(seq) = token.took {
        details.push(Detail::TookEvent(seq));
    }
    details.extend(notes.into_iter().map(Detail::Note));
    let ok = result.is_ok();
    let outcome = if ok {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    };
    if let Err(why) = &result {
        details.push(Detail::Error(why.clone()));
    }
    let records = token.records.clone();
    m.record(
        e,
        StepRef::Node(run.node),
        &records,
        outcome,
        attempts,
        run.started,
        now,
        details,
        run.findings.clone(),
    );

    let exec = &mut m.state.executions[e];
    let (token_id, round) = (exec.tokens[t].id, exec.round);
    if ok || plan.routes_failure(a.next) {
        exec.forget_accepted(&step.name);
        let token = &mut exec.tokens[t];
        token.at = a.next;
        token.phase = Phase::Arrived;
        token.trigger = None;
        token.took = None;
        token.attempt = 1;
        token.calls = 0;
        token.last = Some(outcome);
    } else {
        exec.keep_accepted(&step.name, accepted);
        let why = result.clone().err().unwrap_or_default();
        end_path(m, &plan, e, t, Some((why, Resume::Admitted)), now);
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
        let id = outcome_event_id(&m.state.executions[e].id, token_id, &step.name, round, i);
        append_event(m, env, id, kind, record, Some(step.name.clone()), now)?;
    }
    Ok(None)
}

/// An outcome event's id, `execution/token/step/round/i`, formatted on the stack and
/// copied once into the shared text the timeline keeps.
fn outcome_event_id(
    exec: &crate::execution::ExecutionId,
    token: impl std::fmt::Display,
    step: &str,
    round: u32,
    i: usize,
) -> EventId {
    /// A fixed buffer that gives up (and the id is formatted on the heap) when full.
    struct Stack {
        buf: [u8; 128],
        len: usize,
    }
    impl std::fmt::Write for Stack {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let end = self.len + s.len();
            let room = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
            room.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
    let mut stack = Stack {
        buf: [0; 128],
        len: 0,
    };
    if write!(stack, "{exec}/{token}/{step}/{round}/{i}").is_ok() {
        // Whole `&str`s were copied in, so the bytes are UTF-8.
        if let Ok(id) = std::str::from_utf8(&stack.buf[..stack.len]) {
            return EventId::from(id);
        }
    }
    EventId::from(format!("{exec}/{token}/{step}/{round}/{i}"))
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
pub(super) fn apply_filter(
    filter: &dyn FilterPolicy,
    order: &Order,
    selection: &mut Selection,
) -> bool {
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
pub(crate) fn run_policies(
    policies: &[Arc<dyn ExecutionPolicy>],
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
