//! Merges (rule 7), dead-path aware: a merge waits for every entered branch that is still
//! live and never for one that was not entered or was filtered out; it fires the moment its
//! last live branch ends.

use crate::clock::Timestamp;
use crate::execution::{BranchState, Outcome, Phase, Position, Resume, Token};
use crate::journey::{BranchMark, Detail, StepRef};

use super::state::Machine;
use crate::engine::plan::Plan;

/// A merge's verdict from its branches: `Failed` if an entered branch failed (unless the
/// merge tolerates failed branches and one arrived), `Skipped` if none arrived, else
/// `Succeeded`.
pub(crate) fn verdict(branches: &[BranchState], any_failed: bool, tolerate: bool) -> Outcome {
    let arrived_any = branches.iter().any(|b| b.arrived);
    if any_failed && !(tolerate && arrived_any) {
        Outcome::Failed
    } else if arrived_any {
        Outcome::Succeeded
    } else {
        Outcome::Skipped
    }
}

/// What each branch did, for the journey.
pub(crate) fn marks(branches: &[BranchState], failed: &[u32]) -> Vec<BranchMark> {
    branches
        .iter()
        .enumerate()
        .map(|(b, s)| {
            if s.arrived {
                BranchMark::Arrived
            } else if failed.contains(&(b as u32)) {
                BranchMark::Failed
            } else if s.entered {
                BranchMark::FilteredOut
            } else {
                BranchMark::NotEntered
            }
        })
        .collect()
}

/// A token reaches merge `join` at the end of branch `branch`: its records join the
/// merge's, and the merge fires if no other branch is still live.
pub(super) fn arrive(
    m: &mut Machine,
    plan: &Plan,
    e: usize,
    t: usize,
    join: u32,
    branch: u32,
    now: Timestamp,
) {
    let exec = &mut m.state.executions[e];
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
    fire(m, plan, e, join, now);
}

/// Ends a token's path Failed (or Skipped, `failed == None`) and fires its merge if due.
pub(super) fn end_path(
    m: &mut Machine,
    plan: &Plan,
    e: usize,
    t: usize,
    failed: Option<(String, Resume)>,
    now: Timestamp,
) {
    let exec = &mut m.state.executions[e];
    let frame = exec.tokens[t].frames.last().copied();
    match failed {
        Some((error, resume)) => {
            let token = &mut exec.tokens[t];
            token.phase = Phase::Failed { error, resume };
            token.last = Some(Outcome::Failed);
        }
        None => {
            exec.tokens.remove(t);
        }
    }
    if let Some(f) = frame {
        fire(m, plan, e, f.join, now);
    }
}

/// Fires merge `join` if no entered branch is still live: the moment its last branch ends.
/// The merged token carries the union of what arrived and continues after the merge; a
/// failed merge with nothing to route its failure ends Failed, keeping the failed branches
/// for reprocess. An enclosing merge is then looked at in turn.
pub(super) fn fire(m: &mut Machine, plan: &Plan, e: usize, join: u32, now: Timestamp) {
    let exec = &mut m.state.executions[e];
    let Some(js) = exec.joins.iter().position(|s| s.join == join) else {
        return;
    };
    if exec.joins[js].fired {
        return;
    }
    let inside = |t: &Token| t.frames.iter().any(|f| f.join == join);
    if exec.tokens.iter().any(|t| t.is_live() && inside(t)) {
        return;
    }
    let (failed, rest): (Vec<Token>, Vec<Token>) = std::mem::take(&mut exec.tokens)
        .into_iter()
        .partition(inside);
    exec.tokens = rest;
    let def = plan.join(join);
    let state = &mut exec.joins[js];
    state.fired = true;
    let failed_branches: Vec<u32> = failed
        .iter()
        .filter_map(|t| t.frames.iter().find(|f| f.join == join).map(|f| f.branch))
        .collect();
    let outcome = verdict(&state.branches, !failed.is_empty(), def.tolerate);
    let marks = marks(&state.branches, &failed_branches);
    let records = state.records.clone().unwrap_or_else(|| state.input.clone());
    let frames = state.frames.clone();
    let id = exec.next_token;
    exec.next_token += 1;
    m.record(
        e,
        StepRef::Merge(join),
        &records,
        outcome,
        0,
        now,
        now,
        vec![Detail::Merge(marks)],
        Vec::new(),
    );
    let exec = &mut m.state.executions[e];
    let outer = frames.last().map(|f| f.join);
    match outcome {
        // A merge is Succeeded, Failed or Skipped; only a cancel ends paths Cancelled.
        Outcome::Skipped | Outcome::Cancelled => {}
        Outcome::Succeeded | Outcome::Failed => {
            let mut token = Token::new(id, def.after, records, frames);
            token.last = Some(outcome);
            if outcome == Outcome::Failed && !plan.routes_failure(def.after) {
                let names: Vec<&str> = (0..def.branch_names.len() as u32)
                    .filter(|b| failed_branches.contains(b))
                    .map(|b| def.branch_names[b as usize].as_str())
                    .collect();
                token.at = Position::Merged(join);
                token.phase = Phase::Failed {
                    error: format!(
                        "merge '{}' failed: branch {} failed",
                        def.name,
                        names.join(", ")
                    ),
                    resume: Resume::Arrived,
                };
                token.absorbed = failed;
                exec.tokens.push(token);
            } else {
                exec.tokens.push(token);
                return;
            }
        }
    }
    if let Some(outer) = outer {
        fire(m, plan, e, outer, now);
    }
}
