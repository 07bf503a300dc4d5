//! Transitions a host asks for: durable timers coming due, reprocess of a failed execution,
//! cancel.

use crate::clock::Timestamp;
use crate::execution::Outcome;
use crate::execution::{Execution, Phase, Position, Resume, Token};
use crate::journey::{CancelledWhile, Detail, StepRef};

use super::state::Machine;

/// Wakes the tokens whose durable timers are due at `now`, and a turn that never finished
/// (its `resume_at` passed): whether anything woke.
pub(crate) fn wake_due(m: &mut Machine, now: Timestamp) -> bool {
    let mut woke = false;
    if m.state.resume_at.is_some_and(|at| at <= now) {
        m.state.resume_at = None;
        m.changes.any = true;
        woke = true;
    }
    for (e, exec) in m.state.executions.iter_mut().enumerate() {
        let mut any = false;
        for token in &mut exec.tokens {
            if let Phase::Retrying { at } = token.phase {
                if at <= now {
                    token.phase = Phase::Admitted;
                    any = true;
                }
            }
        }
        if any {
            m.changes.execution(e);
            woke = true;
        }
    }
    woke
}

/// Puts execution `e`'s failed paths back to work (a new round: new idempotency keys);
/// whether it had one.
pub(crate) fn reprocess(m: &mut Machine, e: usize) -> bool {
    let exec = &mut m.state.executions[e];
    if !exec.tokens.iter().any(Token::is_failed) {
        return false;
    }
    exec.round += 1;
    exec.ended = None;
    let (failed, live): (Vec<Token>, Vec<Token>) = std::mem::take(&mut exec.tokens)
        .into_iter()
        .partition(Token::is_failed);
    exec.tokens = live;
    for token in failed {
        revive(exec, token);
    }
    m.changes.execution(e);
    true
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
        return;
    }
    token.phase = match token.phase {
        Phase::Failed { resume, .. } => match resume {
            Resume::Arrived => Phase::Arrived,
            Resume::Awaiting => Phase::Awaiting,
            Resume::Admitted => Phase::Admitted,
        },
        other => other,
    };
    token.attempt = 1;
    token.calls = 0;
    token.earlier = None;
    exec.tokens.push(token);
}

/// Ends execution `e`: every path it has left ends where it stands with a `Cancelled`
/// journey row saying what it was doing; its timers go with it.
pub(crate) fn cancel(m: &mut Machine, e: usize, now: Timestamp) {
    let exec = &mut m.state.executions[e];
    let tokens = std::mem::take(&mut exec.tokens);
    exec.accepted.clear();
    exec.cancelled = Some(now);
    exec.ended = Some(now);
    m.changes.execution(e);
    for token in tokens {
        let step = match token.at {
            Position::Node(n) => StepRef::Node(n),
            Position::Arrive { join, .. } | Position::Merged(join) => StepRef::Merge(join),
            Position::End => StepRef::End,
        };
        let detail = Detail::Cancelled(match &token.phase {
            Phase::Parked => CancelledWhile::Waiting,
            Phase::Arrived | Phase::Awaiting | Phase::Admitted => CancelledWhile::Ready,
            Phase::Calling => CancelledWhile::Calling,
            Phase::Retrying { at } => CancelledWhile::Retrying {
                attempt: token.attempt,
                at: *at,
            },
            Phase::Failed { error, .. } => CancelledWhile::Failed(error.clone()),
        });
        m.record(
            e,
            step,
            &token.records,
            Outcome::Cancelled,
            0,
            now,
            now,
            vec![detail],
            Vec::new(),
        );
    }
}
