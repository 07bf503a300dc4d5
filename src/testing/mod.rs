//! The testkit: what this crate's own tests use to reproduce every failure, public so host
//! applications can test their flows, custom actions and stores the same way.
//!
//! - [`provider`]: a provider scripted per call (ok, retryable or fatal error, delay, hang,
//!   panic, a success whose reply is lost) with a ledger of calls and effects per
//!   idempotency key.
//! - [`store`]: a store wrapper that fails or "crashes" at a chosen operation.
//! - [`conformance`]: the checks every [`Store`](crate::Store) implementation must pass.
//! - [`ManualClock`]: virtual time.

pub mod conformance;
pub mod provider;
pub mod store;

pub use crate::clock::ManualClock;
