//! Static analysis: what a flow may do that its author likely did not mean.
//!
//! [`validate`](super::validate) rejects flows that cannot run. [`analyze`] looks further and
//! reports [`Warning`]s about flows that run but may surprise: Splitter branches that can take
//! the same record, records that take no branch, a Send to Fulfillment with no fulfillment
//! determination before it, a Condition whose `no` path can never run, a step waiting for an
//! event nothing raises, and two flows starting on the same event for the same orders.
//!
//! Some questions depend on what filter policies admit. The analysis reads declarative rule
//! policies ([`PolicyDocument`](crate::rules::PolicyDocument)) where their rules allow: a
//! filter whose rules compare a field with `equals` or `in` against literal values (inside
//! `and` groups that only add more rows) admits only those values, so two such filters on the
//! same field overlap exactly when their values intersect. Anything else — a policy registered in code, an `or`, an ordering
//! operator, filters on different fields — leaves the question open, and the warning says so
//! ([`Verdict::CannotTell`]). A warning is reported when the answer is [`Verdict::Yes`] or
//! [`Verdict::CannotTell`], never when it is [`Verdict::No`].
//!
//! A few decisions, since the engine cannot see inside host code:
//!
//! - A Custom action may create fulfillment orders, so it counts as fulfillment determination,
//!   and it may raise "Creation of Fulfillment Order has Succeeded". Other events a custom
//!   action raises are invisible here: list them among the [`Context::external_events`].
//! - A step that waits for "Creation of Fulfillment Order has Succeeded" (or follows one that
//!   does) has a fulfillment order to send.
//! - Only Validate Order Header and Validate Order Line without execution policies count as
//!   never failing; every other action may fail.
//!
//! ```
//! use indexmap::IndexMap;
//! use orderflow::flow::analysis::{Context, WarningKind, analyze};
//! use orderflow::flow::{ActionStep, Flow};
//! use orderflow::{ActionKind, EventKind};
//!
//! let flow = Flow::builder("Ship")
//!     .steps(|s| {
//!         s.action(
//!             ActionStep::new("Validate", ActionKind::ValidateOrderHeader)
//!                 .input_event(EventKind::NEW_ORDER),
//!         )
//!         .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
//!     })
//!     .build()
//!     .unwrap();
//!
//! let policies = IndexMap::new();
//! let warnings = analyze(&flow, &Context::new(&policies, &[], &[]));
//! assert_eq!(warnings.len(), 1);
//! assert_eq!(warnings[0].kind, WarningKind::SendWithoutFulfillmentDetermination);
//! assert!(warnings[0].to_string().starts_with("Send: Send to Fulfillment can run"));
//! ```

mod context;
mod filters;
mod walk;
mod warning;

pub use context::Context;
pub use warning::{Verdict, Warning, WarningKind};

use super::Flow;

/// Analyzes a flow; see the [module docs](self). Returns the warnings in step order (the
/// flows-sharing-a-trigger warnings last); empty when there is nothing to report. Never
/// panics: elements and conditions nested deeper than the context's bound
/// ([`Context::max_nesting`]) are not looked into.
pub fn analyze(flow: &Flow, cx: &Context<'_>) -> Vec<Warning> {
    walk::warnings(flow, cx)
}
