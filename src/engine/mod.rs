//! The engine: routes events to published flows, runs executions, records journeys.
//!
//! Build one with [`Engine::builder`], registering the store, clock, providers, policies and
//! custom actions; then create and publish flows and [`submit`](Engine::submit) events.
//! `Engine` is a cheap handle (`Clone`), safe to share across tasks.
//!
//! Work for one order is serialized; different orders run concurrently, as many as callers
//! submit at once. `submit` returns once the event is committed and the order has run to
//! quiescence: every path of every execution is waiting for an event, failed, or ended.
//!
//! All execution state lives in the [`Store`]: the engine keeps only caches (compiled flow
//! versions) and per-order locks, so an engine built on the same store resumes every
//! execution ([`Engine::recover`]).
//!
//! The engine's parts, each in a file of its own: [`Config`] and [`WorkConfig`] (`config`),
//! [`EngineBuilder`] (`builder`), what every handle shares (`inner`), the catalog of flows
//! and policies (`catalog`) and their lifecycle (`lifecycle`), back-pressure on submits
//! (`admission`), per-order locks (`locks`), what hosts do with orders (`orders`), recovery
//! (`recovery`), durable timers (`timers`), background work (`background`) and work shared
//! with other instances (`work`), dry runs (`simulate`, observed by `dry_run`); the compiled
//! plan of a flow (`plan`), the built-in actions (`builtin`) and one turn of an order
//! (`run`). Provider-call concerns (timeout, panics, idempotency keys, retries) live with
//! the providers ([`crate::provider`]).

mod admission;
mod background;
mod builder;
mod builtin;
mod catalog;
mod config;
mod dry_run;
mod inner;
mod lifecycle;
mod locks;
mod machine;
mod orders;
mod plan;
mod recovery;
mod signals;
mod simulate;
mod timers;
mod turn;
mod work;

use std::fmt;
use std::sync::Arc;

pub use crate::provider::dry_run::SimulatedCall;
#[cfg(feature = "tokio")]
pub use background::Background;
pub use background::{BackgroundWork, Shutdown};
pub use builder::EngineBuilder;
pub use catalog::CatalogProblem;
pub use config::{Config, WorkConfig};
pub use dry_run::{Change, FilterDecision};
pub use recovery::RecoveryReport;
pub use simulate::{Simulation, Wait};
pub use work::WorkReport;

use crate::clock::Clock;
use crate::execution::ExecutionId;
use crate::store::Store;
use inner::Inner;

/// The orchestration engine. See the [module docs](self).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// The clock the engine reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The store the engine writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store.0
    }
}

/// What [`Engine::submit`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The order had seen the event's id before; nothing was done.
    pub duplicate: bool,
    /// The event's position on the order's timeline (the first one's, for a duplicate: 0).
    pub seq: u64,
    /// Executions the event (or events raised while processing it) started.
    pub started: Vec<ExecutionId>,
}
