//! A guide for host applications: testing your own flows, custom actions and stores with
//! [`orderflow::testing`](crate::testing).
//!
//! Flows are code paths of your service like any other, and they fail in the ways
//! distributed systems fail: a provider times out, answers twice, loses a reply, a process
//! dies between two commits. The testkit makes each of those a line in a test, in virtual
//! time, so the test is fast and the same on every run.
//!
//! # Virtual time and scripted providers
//!
//! Give the engine a [`ManualClock`](crate::ManualClock) and a
//! [`ScriptedProvider`](crate::testing::provider::ScriptedProvider) on the same clock.
//! Script what the provider does call by call; the engine's retries wait on durable timers,
//! which [`Engine::run_due`](crate::Engine::run_due) fires once you advance the clock.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use orderflow::clock::{Clock, Timestamp};
//! use orderflow::document::{Order, RecordId};
//! use orderflow::engine::Config;
//! use orderflow::flow::{ActionStep, Flow, RetryPolicy};
//! use orderflow::provider::RequestKind;
//! use orderflow::testing::ManualClock;
//! use orderflow::testing::provider::{Behavior, ScriptedProvider};
//! use orderflow::{ActionKind, Engine, Event, EventKind, Outcome};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = ManualClock::new(Timestamp::from_millis(0));
//! let billing = ScriptedProvider::new("Billing", clock.clone())
//!     .then(Behavior::Retryable("billing is restarting".into()))
//!     .then(Behavior::Ok);
//! let engine = Engine::builder()
//!     .clock(clock.clone())
//!     .provider(billing.clone())
//!     .config(Config::default().with_retry(RetryPolicy::new(3, Duration::from_millis(500)).with_jitter(0.0)))
//!     .build()
//!     .await?;
//! let flow = Flow::builder("Invoice")
//!     .steps(|s| s.action(
//!         ActionStep::new("Invoice", ActionKind::SendToInvoice)
//!             .input_event(EventKind::NEW_ORDER)
//!             .provider("Billing"),
//!     ))
//!     .build()?;
//! engine.create_flow(flow).await?;
//! engine.publish("Invoice").await?;
//!
//! engine.submit(Event::new_order(Order::new("SO-1"))).await?;
//! // The first attempt failed; the retry waits on its timer, 500 ms away.
//! assert_eq!(engine.next_due().await?, Some(Timestamp::from_millis(500)));
//! clock.advance(Duration::from_millis(500));
//! engine.run_due().await?;
//!
//! let journey = engine.journey("SO-1").await?;
//! assert_eq!(journey.outcome("Invoice"), Some(Outcome::Succeeded));
//! assert_eq!(billing.effects_for("SO-1", RequestKind::SendInvoice, &RecordId::Order), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Asserting a journey
//!
//! [`Journey`](crate::Journey) is the order's story: [`outcome`](crate::Journey::outcome) of
//! a step by name, every [`StepRecord`](crate::journey::StepRecord) with its records,
//! attempts, details and policy findings, and the timeline of events
//! ([`has_event`](crate::Journey::has_event)). Its `Display` is the readable form for a
//! failing assertion's message: `assert_eq!(…, "{journey}")`.
//!
//! # Custom actions
//!
//! Register a custom action with [`action_fn`](crate::action_fn) (or an
//! [`Action`](crate::Action) type) and test it through a flow like a built-in one: its
//! provider calls go through [`ActionContext::call`](crate::ActionContext::call), so the
//! scripted provider sees them with their idempotency keys, and a retryable error parks the
//! step just like above.
//!
//! # Dry runs
//!
//! [`Engine::simulate`](crate::Engine::simulate) runs a flow on an order without calling a
//! provider or touching the store, and reports the path, filter decisions, values set and
//! waits: a quick check that a new policy routes the orders you think it does.
//!
//! # Crashes
//!
//! Wrap the store in [`FaultyStore`](crate::testing::store::FaultyStore) and arm a fault
//! for operation `n`: an error, or a crash before or after the operation. After a crash,
//! build a new engine on [`inner()`](crate::testing::store::FaultyStore::inner), call
//! [`Engine::recover`](crate::Engine::recover), deliver again what was not acknowledged, and
//! compare with a run without faults. Counting the operations of a clean run and crashing
//! at each one in turn is what this crate's own `tests/crash.rs` does.
//!
//! # Your own store
//!
//! A [`Store`](crate::Store) implementation passes
//! [`check_store`](crate::testing::conformance::check_store), the same suite the memory and
//! SQLite stores pass:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use orderflow::MemoryStore;
//! use orderflow::testing::conformance::check_store;
//!
//! check_store(MemoryStore::new).await; // panics, naming the check, on a violation
//! # }
//! ```
