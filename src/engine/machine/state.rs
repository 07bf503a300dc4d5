//! The machine's state for a turn and what goes in and out of it: the [`Env`] it reads,
//! the [`Input`]s it takes, the [`Command`]s it gives, and [`Machine`] itself with the
//! bookkeeping every transition shares (changes since the last commit, journey rows).

use std::sync::Arc;

use semver::Version;

use crate::action::RaisedEvent;
use crate::clock::Timestamp;
use crate::document::{Order, RecordId};
use crate::engine::plan::Plan;
use crate::error::Result;
use crate::event::EventKind;
use crate::execution::{ExecutionId, OrderState, Phase, Resume, Selection};
use crate::journey::{Detail, Finding, StepRef, StepRow};

/// What the machine needs from the engine's catalog, synchronously.
pub(crate) trait Env {
    /// The flows an event of `kind` starts, in creation order, with their compiled plans;
    /// an error if one of them cannot run.
    fn routes(&self, kind: &EventKind) -> Result<Vec<Route>>;
    /// Whether nothing of `flow` may move now.
    fn paused(&self, flow: &str) -> bool;
}

/// A flow an event starts.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The flow.
    pub(crate) flow: String,
    /// Its current published version.
    pub(crate) version: Version,
    /// Its compiled plan.
    pub(crate) plan: Arc<Plan>,
}

/// The engine's bounds the machine keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Journey rows per execution.
    pub(crate) max_journey: u32,
    /// Steps in one turn before what still moves fails (flows starting each other in a cycle).
    pub(crate) max_steps_per_turn: u64,
}

/// What the shell gives the machine.
#[derive(Debug)]
pub(crate) enum Input {
    /// Move what can move.
    Go,
    /// The compiled plan [`Command::Load`] asked for.
    Plan(usize, Arc<Plan>),
    /// The action [`Command::Run`] asked for has returned.
    Done(Done),
}

/// What the machine asks the shell to do.
#[derive(Debug, PartialEq)]
pub(crate) enum Command {
    /// Load the compiled plan of execution `e` and feed it back with [`Input::Plan`].
    Load(usize),
    /// Commit the state, the turn still under way; when `wake` is set, a durable timer was
    /// set for then. Then feed [`Input::Go`].
    Commit {
        /// A retry's durable timer.
        wake: Option<Timestamp>,
    },
    /// Run a step's action on the state and feed its result back with [`Input::Done`].
    Run(Run),
    /// Nothing can move now: every live path waits for an event, a timer or a paused flow.
    Idle,
}

/// A step's action to run: execution `e`, token `t`, at node `node` of the plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Run {
    /// The execution, by index.
    pub(crate) e: usize,
    /// The token, by index.
    pub(crate) t: usize,
    /// The action's node.
    pub(crate) node: u32,
    /// The attempt (1, then one more per durable retry).
    pub(crate) attempt: u32,
    /// When the step started.
    pub(crate) started: Timestamp,
    /// What its execution policies found.
    pub(crate) findings: Vec<Finding>,
    /// Why a Critical policy failed, if one did.
    pub(crate) critical: Option<String>,
    /// Whether the action runs (it does unless a Critical policy failed and the action
    /// does not handle policy failures).
    pub(crate) runs: bool,
    /// Whether the state was committed before the run: the action calls a provider.
    pub(crate) external: bool,
    /// The order before the step's policies ran, kept only for an observer (dry runs).
    pub(crate) before: Option<Arc<Order>>,
}

/// What an action's run came back with.
#[derive(Debug)]
pub(crate) struct Done {
    /// `Err(reason)` when the step failed (the action's error, a Critical policy, a panic).
    pub(crate) result: std::result::Result<(), String>,
    /// When the step should run again: the failure is retryable and attempts are left.
    pub(crate) retry_at: Option<Timestamp>,
    /// Provider calls made in this run.
    pub(crate) attempts: u32,
    /// Records whose provider calls succeeded in this run.
    pub(crate) accepted: Vec<RecordId>,
    /// Events the action raised.
    pub(crate) raised: Vec<RaisedEvent>,
    /// Notes the action left for the journey.
    pub(crate) notes: Vec<String>,
    /// The order and records before the run, put back for a durable retry.
    pub(crate) snapshot: Option<(Arc<Order>, Selection)>,
}

impl Default for Done {
    fn default() -> Self {
        Self {
            result: Ok(()),
            retry_at: None,
            attempts: 0,
            accepted: Vec::new(),
            raised: Vec::new(),
            notes: Vec::new(),
            snapshot: None,
        }
    }
}

/// What a filter decided, for an observer (dry runs).
#[derive(Debug, Clone)]
pub(crate) struct Filtered {
    /// The step's node.
    pub(crate) node: u32,
    /// The execution, by index.
    pub(crate) e: usize,
    /// The records offered.
    pub(crate) offered: Vec<RecordId>,
    /// The records admitted.
    pub(crate) admitted: Vec<RecordId>,
}

/// What a turn changed since its last commit.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Anything at all.
    pub(crate) any: bool,
    /// The order document.
    pub(crate) document: bool,
    /// The executions, by index.
    pub(crate) executions: Vec<bool>,
    /// Timeline entries from this index on are new.
    pub(crate) timeline_from: usize,
}

impl Changes {
    pub(crate) fn execution(&mut self, e: usize) {
        self.any = true;
        if self.executions.len() <= e {
            self.executions.resize(e + 1, false);
        }
        self.executions[e] = true;
    }
}

/// One order's token machine for a turn.
#[derive(Debug)]
pub(crate) struct Machine {
    /// The order's state as moved so far.
    pub(crate) state: OrderState,
    /// The compiled plan of each execution (by index) this turn has looked up.
    pub(crate) plans: Vec<Option<Arc<Plan>>>,
    /// Journey rows recorded since the last commit.
    pub(crate) journey: Vec<StepRow>,
    /// The executions this turn started.
    pub(crate) started: Vec<ExecutionId>,
    /// What changed since the last commit.
    pub(crate) changes: Changes,
    /// Filter decisions, kept only when `observe` is set.
    pub(crate) filtered: Vec<Filtered>,
    /// Whether filter decisions are kept for an observer.
    pub(crate) observe: bool,
    pub(crate) bounds: Bounds,
    /// Steps taken this turn.
    pub(crate) taken: u64,
    /// The run a [`Command::Commit`] came before.
    pub(crate) pending: Option<Run>,
}

impl Machine {
    /// A machine over `state`.
    pub(crate) fn new(mut state: OrderState, bounds: Bounds) -> Self {
        let timeline_from = state.timeline.len();
        // Room for a turn's events (the one submitted and the steps' outcome events) at
        // once, rather than growing by doubling from one.
        state.timeline.reserve(8);
        Self {
            state,
            plans: Vec::new(),
            journey: Vec::new(),
            started: Vec::new(),
            changes: Changes {
                timeline_from,
                ..Changes::default()
            },
            filtered: Vec::new(),
            observe: false,
            bounds,
            taken: 0,
            pending: None,
        }
    }

    /// Marks everything committed: what changes from here goes into the next commit.
    pub(crate) fn committed(&mut self) {
        self.changes = Changes {
            timeline_from: self.state.timeline.len(),
            ..Changes::default()
        };
    }

    /// Marks the state changed as a whole (a turn that changed it outside the machine).
    pub(crate) fn touch(&mut self) {
        self.changes.any = true;
    }

    /// Marks the order document changed.
    pub(crate) fn touch_document(&mut self) {
        self.changes.any = true;
        self.changes.document = true;
    }

    /// Gives execution `e` its compiled plan.
    pub(crate) fn set_plan(&mut self, e: usize, plan: Arc<Plan>) {
        if self.plans.len() <= e {
            self.plans.resize(e + 1, None);
        }
        self.plans[e] = Some(plan);
    }

    /// Records that an execution whose paths all ended has ended.
    pub(crate) fn end_if_done(&mut self, e: usize, now: Timestamp) {
        let exec = &mut self.state.executions[e];
        if exec.tokens.is_empty() && exec.ended.is_none() {
            exec.ended = Some(now);
        }
    }

    /// The first token that can move, in execution order, skipping executions of paused
    /// flows.
    pub(crate) fn next_ready(&self, env: &dyn Env) -> Option<(usize, usize)> {
        self.state.executions.iter().enumerate().find_map(|(e, x)| {
            let t = x.tokens.iter().position(|t| t.phase.is_runnable())?;
            (!env.paused(&x.flow)).then_some((e, t))
        })
    }

    /// Fails what still moves: the turn went past its step budget.
    pub(crate) fn fail_runaway(&mut self) {
        let budget = self.bounds.max_steps_per_turn;
        for (e, exec) in self.state.executions.iter_mut().enumerate() {
            for token in &mut exec.tokens {
                if token.phase.is_runnable() {
                    let resume = match token.phase {
                        Phase::Arrived => Resume::Arrived,
                        Phase::Awaiting => Resume::Awaiting,
                        _ => Resume::Admitted,
                    };
                    token.phase = Phase::Failed {
                        error: format!(
                            "the order took more than {budget} steps in one turn: \
                             do flows start each other in a cycle?"
                        ),
                        resume,
                    };
                    self.changes.execution(e);
                }
            }
        }
    }

    /// Appends a journey row for execution `e`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &mut self,
        e: usize,
        step: StepRef,
        records: &Selection,
        outcome: crate::execution::Outcome,
        attempts: u32,
        started: Timestamp,
        ended: Timestamp,
        details: Vec<Detail>,
        findings: Vec<Finding>,
    ) {
        let exec = &mut self.state.executions[e];
        exec.steps += 1;
        if self.journey.capacity() == 0 {
            // Room for a typical turn's rows at once (kept under 1 KiB), rather than
            // growing by doubling from one.
            self.journey.reserve(6);
        }
        self.journey.push(StepRow::new(
            exec.id.seq,
            exec.round,
            step,
            records,
            &self.state.order,
            outcome,
            attempts,
            started,
            ended,
            details,
            findings,
        ));
    }
}
