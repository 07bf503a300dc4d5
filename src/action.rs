//! Actions: the work one step does for the records it is given.
//!
//! Every action kind is an [`Action`]; the built-in kinds implement it too, and a host adds
//! its own as [`ActionKind::Custom`](crate::ActionKind::Custom) steps, registered by name,
//! either as a type or as a closure with [`action_fn`].
//!
//! An action receives an [`ActionContext`]: the order (mutable), the records the step took
//! (after its filter), the step's execution policy report, and the step's provider through
//! [`ActionContext::call`], which applies the step's timeout and retries and the idempotency
//! key. Returning `Ok(())` makes the step **Succeeded**, an error makes it **Failed**; the
//! document changes are kept either way.
//!
//! # Contract
//!
//! - The engine runs an action with the order's lock held: no other step of the same order
//!   runs meanwhile.
//! - An action is at-least-once: after a crash it runs again from the last committed state,
//!   and its provider calls carry the same idempotency keys. Actions that only compute
//!   ([`Effects::Pure`]) must be deterministic; the engine does not commit before them.
//! - A step can also run again after a durable retry (document changes undone, same keys)
//!   or a reprocess (document changes kept, new keys). The engine remembers which records'
//!   calls succeeded in earlier runs of the same step, in any round:
//!   [`ActionContext::called_before`]. An action whose calls have effects skips those
//!   records, so a provider never gets one record twice from one step under two keys.
//! - Before the action runs, the engine evaluates the step's execution policies. If a
//!   Critical one failed, the step fails without running the action, unless the action
//!   [handles policy failures](Action::handles_policy_failures) (the validation built-ins do,
//!   to set their status reasons).
//!
//! ```
//! use async_trait::async_trait;
//! use orderflow::action::{Action, ActionContext, ActionError};
//!
//! /// Tags every order as a priority order.
//! #[derive(Debug)]
//! struct Prioritize;
//!
//! #[async_trait]
//! impl Action for Prioritize {
//!     async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
//!         cx.order_mut().custom.insert("priority".into(), true.into());
//!         Ok(())
//!     }
//! }
//! ```
//!
//! The same as a closure:
//!
//! ```
//! use futures::FutureExt;
//! use orderflow::action::action_fn;
//!
//! let prioritize = action_fn(|cx| async move {
//!     cx.order_mut().custom.insert("priority".into(), true.into());
//!     Ok(())
//! }.boxed());
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::document::{FulfillmentOrder, FulfillmentOrderId, Order, OrderLine, RecordId};
use crate::engine::Caller;
use crate::event::EventKind;
use crate::execution::{Accepted, Selection};
use crate::flow::ActionStep;
use crate::journey::Finding;
use crate::provider::{Provider, ProviderError, ProviderErrorKind, Reply, Request};

/// Whether an action talks to the outside world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effects {
    /// Computes on the order only; deterministic; needs no commit before it runs.
    Pure,
    /// Calls providers or other systems; the engine commits before it runs.
    External,
}

/// A step's work. See the [module docs](self) for the contract.
#[async_trait]
pub trait Action: Send + Sync + fmt::Debug + 'static {
    /// Does the work for the records in `cx`.
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError>;

    /// Whether the action calls out. [`Effects::External`] unless overridden.
    fn effects(&self) -> Effects {
        Effects::External
    }

    /// Whether the action runs when a Critical execution policy failed (the step fails
    /// either way). `false` unless overridden.
    fn handles_policy_failures(&self) -> bool {
        false
    }
}

#[async_trait]
impl<T: Action + ?Sized> Action for Arc<T> {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        (**self).run(cx).await
    }
    fn effects(&self) -> Effects {
        (**self).effects()
    }
    fn handles_policy_failures(&self) -> bool {
        (**self).handles_policy_failures()
    }
}

#[async_trait]
impl<T: Action + ?Sized> Action for Box<T> {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        (**self).run(cx).await
    }
    fn effects(&self) -> Effects {
        (**self).effects()
    }
    fn handles_policy_failures(&self) -> bool {
        (**self).handles_policy_failures()
    }
}

const _: Option<&dyn Action> = None;

/// An action from a closure returning a boxed future; see the [module docs](self).
pub fn action_fn<F>(f: F) -> ActionFn<F>
where
    F: for<'c, 'a> Fn(&'c mut ActionContext<'a>) -> BoxFuture<'c, Result<(), ActionError>>
        + Send
        + Sync
        + 'static,
{
    ActionFn { f }
}

/// An action made by [`action_fn`].
pub struct ActionFn<F> {
    f: F,
}

impl<F> fmt::Debug for ActionFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionFn").finish_non_exhaustive()
    }
}

#[async_trait]
impl<F> Action for ActionFn<F>
where
    F: for<'c, 'a> Fn(&'c mut ActionContext<'a>) -> BoxFuture<'c, Result<(), ActionError>>
        + Send
        + Sync
        + 'static,
{
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        (self.f)(cx).await
    }
}

/// Why an action failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    message: Cow<'static, str>,
    provider: Option<ProviderErrorKind>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ActionError {
    /// A business failure with a reason.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            provider: None,
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The provider failure class, when a provider call failed.
    pub fn provider_error(&self) -> Option<ProviderErrorKind> {
        self.provider
    }

    /// The reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<ProviderError> for ActionError {
    fn from(e: ProviderError) -> Self {
        Self {
            message: Cow::Owned(format!("provider call failed: {e}")),
            provider: Some(e.kind()),
            source: Some(Box::new(e)),
        }
    }
}

/// An event an action raises, put on the order's timeline when the step finishes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RaisedEvent {
    /// What happened.
    pub kind: EventKind,
    /// The record it concerns.
    pub record: Option<RecordId>,
}

/// What an action sees and changes. See the [module docs](self).
pub struct ActionContext<'a> {
    pub(crate) order: &'a mut Order,
    pub(crate) selection: &'a mut Selection,
    pub(crate) step: &'a ActionStep,
    pub(crate) caller: Caller<'a>,
    /// Calls earlier runs of steps of this execution had accepted.
    pub(crate) accepted: &'a [Accepted],
    pub(crate) findings: &'a [Finding],
    pub(crate) policy_failed: bool,
    pub(crate) raised: Vec<RaisedEvent>,
    pub(crate) notes: Vec<String>,
}

impl fmt::Debug for ActionContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActionContext")
            .field("order", &self.order.id)
            .field("step", &self.step.name)
            .field("selection", &self.selection)
            .finish_non_exhaustive()
    }
}

impl<'a> ActionContext<'a> {
    /// The order.
    pub fn order(&self) -> &Order {
        self.order
    }

    /// The order, to change. Changes are committed with the step's result.
    pub fn order_mut(&mut self) -> &mut Order {
        self.order
    }

    /// The step being run.
    pub fn step(&self) -> &ActionStep {
        self.step
    }

    /// The step's provider, if it names one.
    pub fn provider(&self) -> Option<&Arc<dyn Provider>> {
        self.caller.provider()
    }

    /// The findings of the step's execution policies (failed checks, Critical and
    /// Information).
    pub fn findings(&self) -> &[Finding] {
        self.findings
    }

    /// Whether a Critical execution policy failed.
    pub fn policy_failed(&self) -> bool {
        self.policy_failed
    }

    /// The lines this step took.
    pub fn lines(&self) -> impl Iterator<Item = &OrderLine> + '_ {
        let sel = &*self.selection;
        self.order.lines.iter().filter(move |l| sel.has_line(&l.id))
    }

    /// Whether the step took this line.
    pub fn has_line(&self, line: &crate::document::LineId) -> bool {
        self.selection.has_line(line)
    }

    /// The fulfillment orders this step took.
    pub fn fulfillment_orders(&self) -> impl Iterator<Item = &FulfillmentOrder> + '_ {
        let sel = &*self.selection;
        self.order
            .fulfillment_orders
            .iter()
            .filter(move |f| sel.has_fulfillment_order(&f.id))
    }

    /// Adds a fulfillment order (created by this step) to the records the path carries on.
    pub fn take_fulfillment_order(&mut self, id: FulfillmentOrderId) {
        self.selection.add_fulfillment_order(id);
    }

    /// Calls the step's provider with the step's timeout and retries. `record` names what the
    /// call is for; it is part of the idempotency key, so one call per record is one effect.
    pub async fn call(
        &self,
        record: &RecordId,
        request: Request<'_>,
    ) -> Result<Reply, ProviderError> {
        self.caller.call(record, request).await
    }

    /// Whether an earlier run of this step — an attempt before a durable retry, or a round
    /// before a reprocess — made a provider call for `record` that succeeded. Such a call is
    /// done: calling again in a new round would repeat it under a new idempotency key. (After
    /// a crash the engine may not have recorded the call yet; calling again then reuses the
    /// key, which the provider de-duplicates.) Only this step's own calls count: another
    /// step, or another flow, sending the same record does not.
    pub fn called_before(&self, record: &RecordId) -> bool {
        self.accepted
            .iter()
            .any(|a| a.step == self.step.name && &a.record == record)
    }

    /// Raises an event when the step finishes.
    pub fn raise(&mut self, kind: EventKind, record: Option<RecordId>) {
        self.raised.push(RaisedEvent { kind, record });
    }

    /// Adds a note to the step's journey entry.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}
