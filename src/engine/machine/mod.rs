//! The token machine: DESIGN §3 as a pure, synchronous state machine.
//!
//! One order's state goes in; inputs are fed; commands come out. The machine never awaits,
//! never reads a clock, never touches a store or a provider: the async shell
//! (`engine::turn`) loads the state, gives the machine the time and what it asks for,
//! executes its commands and commits. Tracing, metrics and dry runs observe the shell.
//!
//! ```text
//!            ┌──────────── Input::Go / Plan / Done ─────────────┐
//!   shell ───┤                                                  ├──► Machine::advance
//!            └── Command::Load / Commit / Run / Idle ◄──────────┘
//! ```
//!
//! - A **token** is a position in the compiled plan plus the records it carries. At an
//!   action its [`Phase`](crate::execution::Phase) walks the pipeline: `Arrived` (the filter
//!   is next, [`step::admit`]) → `Awaiting` (an input event, [`step::take_event`]) or
//!   `Parked` until one arrives → `Admitted` (execution policies, then the action:
//!   [`Command::Run`], preceded by [`Command::Commit`] when the action calls a provider) →
//!   [`Input::Done`] settles it ([`step::settle`]): on to the next position, `Retrying` on a
//!   durable timer, or `Failed` until reprocess.
//! - **Conditions** and **splitters** move tokens at once ([`route`]); a splitter copies
//!   its token onto every branch.
//! - **Merges** are functions ([`merge::arrive`], [`merge::fire`]): a merge fires the
//!   moment no entered branch is still live, so it never waits for a branch nobody entered
//!   or one filtered out.
//! - **Events** go on the order's timeline ([`route::append_event`]): they unpark waiting
//!   tokens and start the flows they trigger.
//! - Every step leaves a compact journey row ([`StepRow`]) naming the step by its index in
//!   the plan; readers get names resolved by [`Engine::journey`](crate::Engine::journey).

mod advance;
mod lifecycle;
mod merge;
#[cfg(test)]
mod model;
mod route;
mod state;
mod step;
#[cfg(test)]
mod tests;

pub(crate) use lifecycle::{cancel, reprocess, wake_due};
pub(crate) use route::append_event;
pub(crate) use state::{Bounds, Command, Done, Env, Input, Machine, Route, Run};
