//! The machine's one entry: [`Machine::advance`] feeds an input and moves every token that
//! can move until the shell must act, dispatching each step to its transition.

use crate::clock::Timestamp;
use crate::engine::plan::{NodeKind, Plan};
use crate::error::Result;
use crate::execution::{Phase, Position, Resume};

use super::state::{Command, Env, Input, Machine, Run};
use super::{merge, route, step};

impl Machine {
    /// Feeds one input; returns what the shell must do next.
    pub(crate) fn advance(
        &mut self,
        env: &dyn Env,
        input: Input,
        now: Timestamp,
    ) -> Result<Command> {
        match input {
            Input::Go => {}
            Input::Plan(e, plan) => self.set_plan(e, plan),
            Input::Done(done) => {
                let run = self.pending.take().expect("Done answers a Run");
                if let Some(wake) = step::settle(self, env, &run, done, now)? {
                    return Ok(Command::Commit { wake: Some(wake) });
                }
            }
        }
        if let Some(run) = &self.pending {
            if run.external && self.changes.any {
                return Ok(Command::Commit { wake: None });
            }
            return Ok(Command::Run(run.clone()));
        }
        while let Some((e, t)) = self.next_ready(env) {
            let Some(plan) = self.plans.get(e).and_then(Clone::clone) else {
                return Ok(Command::Load(e));
            };
            self.taken += 1;
            if self.taken > self.bounds.max_steps_per_turn {
                self.fail_runaway();
                break;
            }
            self.changes.execution(e);
            if let Some(run) = self.step(env, &plan, e, t, now)? {
                let external = run.external;
                self.pending = Some(run);
                return Ok(if external {
                    Command::Commit { wake: None }
                } else {
                    Command::Run(self.pending.clone().expect("just set"))
                });
            }
            self.end_if_done(e, now);
        }
        Ok(Command::Idle)
    }

    /// Moves token `t` of execution `e` one step; a `Run` when its action must run.
    pub(super) fn step(
        &mut self,
        env: &dyn Env,
        plan: &Plan,
        e: usize,
        t: usize,
        now: Timestamp,
    ) -> Result<Option<Run>> {
        match self.state.executions[e].tokens[t].at {
            Position::End => {
                self.state.executions[e].tokens.remove(t);
            }
            Position::Merged(_) => {
                // A merge that failed with nothing to route it: the path ends Failed (the
                // token already carries why).
                let token = &mut self.state.executions[e].tokens[t];
                if !token.is_failed() {
                    token.phase = Phase::Failed {
                        error: String::new(),
                        resume: Resume::Arrived,
                    };
                }
            }
            Position::Arrive { join, branch } => merge::arrive(self, plan, e, t, join, branch, now),
            Position::Node(n) => match &plan.node(n).kind {
                NodeKind::Condition { yes, no, join } => {
                    route::condition(self, e, t, n, *yes, *no, *join, now);
                }
                NodeKind::Splitter { branches, join } => {
                    route::splitter(self, e, t, n, branches, *join, now);
                }
                NodeKind::Action(_) => return step::action(self, env, plan, e, t, n, now),
            },
        }
        Ok(None)
    }
}
