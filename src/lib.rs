#![doc = include_str!("../README.md")]
//!
//! ## Cargo features in detail
//!
//! Rendered from the comments on `[features]` in `Cargo.toml`:
//!
#![doc = document_features::document_features!()]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The machine's model test shares its reference interpreter with the integration tests,
// which name the crate `orderflow`.
#[cfg(test)]
extern crate self as orderflow;

pub mod action;
pub mod clock;
pub mod document;
pub mod engine;
mod error;
pub mod event;
pub mod execution;
pub mod flow;
pub mod guide;
pub mod journey;
mod json;
pub mod limits;
mod measure;
pub mod metrics;
mod number;
pub mod orchestration;
pub mod policy;
pub mod prelude;
pub mod provider;
pub mod redact;
pub mod render;
pub mod rules;
pub mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod update;

pub use action::{Action, ActionContext, ActionError, action_fn};
pub use clock::{Clock, ManualClock, Timestamp};
pub use document::{Decimal, Order, OrderId, OrderLine, StatusReason};
pub use engine::{Config, Engine, EngineBuilder, Receipt};
pub use error::{Error, ErrorKind, Result};
pub use event::{Event, EventKind};
pub use flow::{ActionStep, Flow, FlowStatus};
pub use journey::{Journey, Outcome};
pub use orchestration::{ActionKind, OrchestrationType, OrderOrchestration};
pub use policy::{Check, Criticality, ExecutionPolicy, FilterPolicy, Policy, PolicyKind};
pub use provider::{MemoryProvider, Provider, ProviderError};
pub use rules::{PolicyDocument, RulePolicy};
pub use store::{MemoryStore, Store};
pub use update::{OrderPatch, OrderUpdate};

/// The attribute the crate's async traits ([`Provider`], [`Store`], [`Action`], …) are written
/// with, for a host's implementations: `#[orderflow::async_trait]`, no dependency on
/// `async-trait` of its own.
pub use async_trait::async_trait;
/// Flow versions are [`semver::Version`]s; re-exported so a host (or a [`Store`]
/// implementation) needs no dependency on `semver` of its own.
pub use semver;
