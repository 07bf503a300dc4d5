//! Routing: events onto the timeline (rule 1, starting flows; rule 2, unparking waits),
//! conditions (rule 5) and splitters (rule 6).

use crate::clock::Timestamp;
use crate::document::RecordId;
use crate::error::Result;
use crate::event::{EventId, EventKind};
use crate::execution::{
    BranchState, Execution, ExecutionId, Frame, JoinState, Outcome, Phase, Position, TimelineEntry,
    Token,
};
use crate::journey::{Detail, StepRef};

use super::state::{Env, Machine};

/// Puts an event on the timeline, unparks waiting paths and starts the flows it triggers
/// (rule 1: every matching flow with no live execution for the order, in creation order).
/// Returns the event's position on the timeline.
pub(crate) fn append_event(
    m: &mut Machine,
    env: &dyn Env,
    id: EventId,
    kind: EventKind,
    record: Option<RecordId>,
    raised_by: Option<String>,
    at: Timestamp,
) -> Result<u64> {
    // A flow the event starts but that cannot run refuses the event: it must not be taken
    // as if no flow wanted it.
    let routes = env.routes(&kind)?;
    let seq = m.state.timeline.last().map_or(1, |e| e.seq + 1);
    for (e, exec) in m.state.executions.iter_mut().enumerate() {
        for t in &mut exec.tokens {
            if t.phase == Phase::Parked {
                t.phase = Phase::Awaiting;
                m.changes.execution(e);
            }
        }
    }
    m.state.timeline.push(TimelineEntry {
        seq,
        id,
        kind,
        record,
        at,
        raised_by,
    });
    m.changes.any = true;
    for route in routes {
        if m.state
            .executions
            .iter()
            .any(|x| x.flow == route.flow && x.is_live())
        {
            continue;
        }
        let index = m.state.executions.len();
        // One more, not a doubling: executions are few and large.
        m.state.executions.reserve_exact(1);
        let id = ExecutionId {
            order: m.state.order.id.clone(),
            seq: index as u32 + 1,
        };
        m.state.executions.push(Execution::start(
            id.clone(),
            route.flow,
            route.version,
            route.plan.tag,
            route.plan.entry,
            seq,
            at,
        ));
        m.set_plan(index, route.plan);
        m.changes.execution(index);
        m.started.push(id);
    }
    Ok(seq)
}

/// Rule 5: a condition routes on the outcome of the previous action on the path; a
/// condition-merge also opens its merge with both branches, the one taken entered.
#[allow(clippy::too_many_arguments)]
pub(super) fn condition(
    m: &mut Machine,
    e: usize,
    t: usize,
    n: u32,
    yes: Position,
    no: Position,
    join: Option<u32>,
    now: Timestamp,
) {
    let exec = &mut m.state.executions[e];
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
        token.frames.push(Frame { join: j, branch });
        exec.joins.retain(|s| s.join != j);
        exec.joins.push(state);
    }
    let token = &mut exec.tokens[t];
    token.at = target;
    token.phase = Phase::Arrived;
    let records = token.records.clone();
    m.record(
        e,
        StepRef::Node(n),
        &records,
        Outcome::Succeeded,
        0,
        now,
        now,
        vec![Detail::Path { yes: taken }],
        Vec::new(),
    );
}

/// Rule 6: a splitter offers its token to every branch (each branch's filters decide); a
/// splitter-merge also opens its merge with every branch entered.
#[allow(clippy::too_many_arguments)]
pub(super) fn splitter(
    m: &mut Machine,
    e: usize,
    t: usize,
    n: u32,
    branches: &[(String, Position)],
    join: Option<u32>,
    now: Timestamp,
) {
    let exec = &mut m.state.executions[e];
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
    let records = token.records.clone();
    // Every branch but the last takes a copy of the token; the last takes the token.
    if let Some(((_, last), rest)) = branches.split_last() {
        for (b, (_, pos)) in rest.iter().enumerate() {
            enter_branch(exec, token.clone(), b, *pos, join);
        }
        enter_branch(exec, token, rest.len(), *last, join);
    }
    m.record(
        e,
        StepRef::Node(n),
        &records,
        Outcome::Succeeded,
        0,
        now,
        now,
        vec![Detail::Offered],
        Vec::new(),
    );
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
    child.phase = Phase::Arrived;
    if let Some(j) = join {
        child.frames.push(Frame {
            join: j,
            branch: b as u32,
        });
    }
    exec.tokens.push(child);
}
