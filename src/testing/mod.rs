//! The testkit: what this crate's own tests use to reproduce every failure, public so host
//! applications can test their flows, custom actions and stores the same way.
//!
//! Behind the `testing` feature, as `tokio`'s `test-util`: a host turns it on in its
//! dev-dependencies (`orderflow = { version = "…", features = ["testing"] }`), so none of
//! it is built into the service itself. The [guide](crate::guide::testing) walks through it.
//!
//! - [`provider`]: a provider scripted per call (ok, retryable or fatal error, delay, hang,
//!   panic, a success whose reply is lost) with a ledger of calls and effects per
//!   idempotency key.
//! - [`store`]: a store wrapper that fails or "crashes" at a chosen operation.
//! - [`conformance`]: the checks every [`Store`](crate::Store) implementation must pass.
//! - [`ManualClock`]: virtual time, and [`settle`] and [`drive`] to move it whenever the
//!   engine waits on it (due timers, a provider's slow answer or timeout).

pub mod conformance;
pub mod provider;
pub mod store;
mod time;

pub use crate::clock::ManualClock;
pub use time::{IDLE_TURNS, MAX_ROUNDS, MAX_WAKES, drive, settle};
