//! Actions: the work one step does for the records it is given.
//!
//! Every action kind is an [`Action`]; the built-in kinds implement it too, and a host adds
//! its own as [`ActionKind::Custom`](crate::ActionKind::Custom) steps, registered by name,
//! either as a type or as a closure with [`action_fn`].
//!
//! An action receives an [`ActionContext`]: the order (mutable), the records the step took
//! (after its filter), the step's execution policy report, and the step's provider through
//! [`ActionContext::call`], which applies the step's timeout and the idempotency key and
//! catches the provider's panics. Returning `Ok(())` makes the step **Succeeded**, an error
//! makes it **Failed**; the document changes are kept either way. An error of a retryable
//! kind ([`ActionError::is_retryable`], such as a provider outage returned with `?`) runs
//! the step again after its [`RetryPolicy`](crate::provider::RetryPolicy)'s backoff while
//! attempts are left, from the state committed before it (document changes undone). A custom action that sources an order creates its
//! fulfillment orders with [`Sourcing`], the allocation Send to DOM uses.
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

use crate::document::{
    Decimal, FulfillmentOrder, FulfillmentOrderId, FulfillmentOrderLine, LineId, Order, OrderLine,
    RecordId,
};
use crate::event::EventKind;
use crate::execution::{Accepted, Selection};
use crate::flow::ActionStep;
use crate::journey::Finding;
use crate::provider::call::StepCalls;
use crate::provider::{Provider, ProviderError, ProviderErrorKind, Reply, Request, Retryable};

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

/// The class of an action's failure: what decides whether the step runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ActionErrorKind {
    /// The action decided the step fails: bad data, a business rule, nothing to do. Not
    /// retryable unless made so ([`ActionError::with_retryable`]).
    Failed,
    /// A provider call failed, of this kind: a refusal, an outage, a reply that did not
    /// fit, and also an attempt that outlived its timeout
    /// ([`Timeout`](ProviderErrorKind::Timeout)) or a provider that panicked
    /// ([`Panicked`](ProviderErrorKind::Panicked)). Retryable as the provider's error was
    /// ([`ProviderError::is_retryable`]).
    Provider(ProviderErrorKind),
    /// The action itself panicked (the engine catches it and fails the step). Not
    /// retryable: running the same code on the same state panics again.
    Panicked,
}

/// Why an action failed: a message, a [kind](ActionErrorKind), whether another attempt may
/// succeed, and the underlying error.
///
/// Returning a [`ProviderError`] with `?` keeps its kind and retryability, so a step whose
/// provider is restarting runs again on its retry policy's timer; a business failure
/// ([`ActionError::new`]) is final.
///
/// ```
/// use orderflow::action::{ActionError, ActionErrorKind};
/// use orderflow::provider::{ProviderError, ProviderErrorKind};
///
/// let outage: ActionError = ProviderError::unavailable("connection refused").into();
/// assert_eq!(outage.kind(), ActionErrorKind::Provider(ProviderErrorKind::Unavailable));
/// assert!(outage.is_retryable());
///
/// let refused = ActionError::new("the order has no ship-to address");
/// assert_eq!(refused.kind(), ActionErrorKind::Failed);
/// assert!(!refused.is_retryable());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    message: Cow<'static, str>,
    kind: ActionErrorKind,
    retryable: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ActionError {
    /// A business failure with a reason ([`ActionErrorKind::Failed`], not retryable).
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            kind: ActionErrorKind::Failed,
            retryable: false,
            source: None,
        }
    }

    /// A failure of a kind with a reason; retryable as the kind is by default: a provider
    /// failure as [`ProviderError::new`] decides for its kind, the others not.
    pub fn of_kind(kind: ActionErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        let retryable = match kind {
            ActionErrorKind::Provider(k) => k.is_retryable(),
            ActionErrorKind::Failed | ActionErrorKind::Panicked => false,
        };
        Self {
            message: message.into(),
            kind,
            retryable,
            source: None,
        }
    }

    /// Overrides whether the error is worth another attempt of the step.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The class of failure.
    pub fn kind(&self) -> ActionErrorKind {
        self.kind
    }

    /// Whether another attempt of the step may succeed: the step runs again (after its
    /// retry policy's backoff, while attempts are left) only on such an error.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The provider failure class, when a provider call failed.
    pub fn provider_error(&self) -> Option<ProviderErrorKind> {
        match self.kind {
            ActionErrorKind::Provider(k) => Some(k),
            ActionErrorKind::Failed | ActionErrorKind::Panicked => None,
        }
    }

    /// The reason.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Retryable for ActionError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl From<ProviderError> for ActionError {
    fn from(e: ProviderError) -> Self {
        Self {
            message: Cow::Owned(format!("provider call failed: {e}")),
            kind: ActionErrorKind::Provider(e.kind()),
            retryable: e.is_retryable(),
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
    pub(crate) calls: StepCalls<'a>,
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
        self.calls.provider()
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
    /// [`Sourcing::finish`] does this for the fulfillment orders it created.
    pub fn take_fulfillment_order(&mut self, id: FulfillmentOrderId) {
        self.selection.add_fulfillment_order(id);
    }

    /// Calls the step's provider: one attempt, bounded by the step's timeout, with a panic
    /// of the provider caught as a failure of the attempt. `record` names what the call is
    /// for; it is part of the idempotency key, so one call per record is one effect.
    /// Returning the error (`?`) fails the step, and runs it again later if the error is
    /// retryable and the step's retry policy has attempts left.
    pub async fn call(
        &self,
        record: &RecordId,
        request: Request<'_>,
    ) -> Result<Reply, ProviderError> {
        self.calls.call(record, request).await
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

/// The fulfillment orders one run of a step creates, one per source: what Send to DOM and
/// Assign Fulfillment Source do with a plan, for a host's own sourcing step (a custom
/// action that asks its own service where each line ships from).
///
/// [`allocate`](Self::allocate) adds a quantity of an order line to this run's fulfillment
/// order for a source, creating it the first time a source is named (id
/// `<order>-FO<n>`, counting on past every id the order has). [`finish`](Self::finish)
/// raises one [`FULFILLMENT_ORDER_CREATED`](EventKind::FULFILLMENT_ORDER_CREATED) event per
/// fulfillment order created and carries them on the step's path, so a following Send to
/// Fulfillment sends them.
///
/// A run never changes a fulfillment order that was on the order before it (one an
/// earlier step made, or sent, or closed; one the order arrived with): re-sourcing makes
/// new fulfillment orders, so what a provider already received stays as it was. A step
/// that runs again after a durable retry starts from the document as it was before, so it
/// creates the same fulfillment orders under the same ids.
///
/// ```
/// use futures::FutureExt;
/// use orderflow::action::{Sourcing, action_fn};
/// use orderflow::document::{Decimal, LineId};
///
/// // Half of every line from Seattle, the rest from Redmond.
/// let split = action_fn(|cx| {
///     async move {
///         let lines: Vec<(LineId, Decimal)> =
///             cx.lines().map(|l| (l.id.clone(), l.quantity)).collect();
///         let mut sourcing = Sourcing::new();
///         for (line, quantity) in lines {
///             let half = quantity / Decimal::from(2);
///             sourcing.allocate(cx, "Seattle", &line, half)?;
///             sourcing.allocate(cx, "Redmond", &line, quantity - half)?;
///         }
///         sourcing.finish(cx);
///         Ok(())
///     }
///     .boxed()
/// });
/// # let _ = split;
/// ```
#[derive(Debug, Default)]
#[must_use = "finish() raises the creation events and carries the fulfillment orders on"]
pub struct Sourcing {
    created: Vec<FulfillmentOrderId>,
}

impl Sourcing {
    /// No fulfillment order created yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `quantity` of order line `line` to this run's fulfillment order for `source`,
    /// creating that fulfillment order if this run has none for the source yet; the
    /// fulfillment order line takes the order line's product. Allocating the same line
    /// from the same source again adds to its quantity. Returns the fulfillment order's id.
    ///
    /// # Errors
    ///
    /// Nothing is changed, and the error says why, when `source` is empty, `quantity` is
    /// negative, the order has no line `line`, or this run would allocate more of the line
    /// than it orders (fractional quantities add up exactly: 0.1 + 0.2 of a 0.3 line fits).
    pub fn allocate(
        &mut self,
        cx: &mut ActionContext<'_>,
        source: &str,
        line: &LineId,
        quantity: Decimal,
    ) -> Result<&FulfillmentOrderId, ActionError> {
        let order = cx.order_mut();
        if source.is_empty() {
            return Err(ActionError::new(format!(
                "cannot allocate line {line} from a source with no name"
            )));
        }
        if quantity < Decimal::ZERO {
            return Err(ActionError::new(format!(
                "cannot allocate {quantity} of line {line} from '{source}': the quantity is negative"
            )));
        }
        let Some(ordered) = order.line(line.as_str()) else {
            return Err(ActionError::new(format!(
                "cannot allocate line {line} from '{source}': the order has no such line"
            )));
        };
        let product = ordered.product.clone();
        let ordered = ordered.quantity;
        let mut allocated = Decimal::ZERO;
        let mut mine = None;
        for (i, fo) in order.fulfillment_orders.iter().enumerate() {
            let Some(k) = self.created.iter().position(|c| c == &fo.id) else {
                continue;
            };
            if fo.fulfillment_source == source {
                mine = Some((i, k));
            }
            for l in fo.lines.iter().filter(|l| &l.order_line == line) {
                allocated = allocated.checked_add(l.quantity).unwrap_or(Decimal::MAX);
            }
        }
        match allocated.checked_add(quantity) {
            Some(total) if total <= ordered => {}
            _ => {
                return Err(ActionError::new(format!(
                    "cannot allocate {quantity} more of line {line} from '{source}': \
                     {allocated} of {ordered} is allocated already"
                )));
            }
        }
        let (index, k) = match mine {
            Some(at) => at,
            None => {
                let id = fresh_id(order);
                order
                    .fulfillment_orders
                    .push(FulfillmentOrder::new(id.clone(), source));
                self.created.push(id);
                (order.fulfillment_orders.len() - 1, self.created.len() - 1)
            }
        };
        let fo = &mut order.fulfillment_orders[index];
        match fo.lines.iter_mut().find(|l| &l.order_line == line) {
            // Within the line's quantity, checked above.
            Some(l) => l.quantity += quantity,
            None => fo
                .lines
                .push(FulfillmentOrderLine::new(line.clone(), product, quantity)),
        }
        Ok(&self.created[k])
    }

    /// The fulfillment orders created so far, in the order of their creation.
    pub fn created(&self) -> &[FulfillmentOrderId] {
        &self.created
    }

    /// Raises "Creation of Fulfillment Order has Succeeded"
    /// ([`FULFILLMENT_ORDER_CREATED`](EventKind::FULFILLMENT_ORDER_CREATED)) per fulfillment
    /// order created, carries them on the step's path, and returns their ids.
    pub fn finish(self, cx: &mut ActionContext<'_>) -> Vec<FulfillmentOrderId> {
        for id in &self.created {
            cx.raise(
                EventKind::FULFILLMENT_ORDER_CREATED,
                Some(RecordId::FulfillmentOrder(id.clone())),
            );
            cx.take_fulfillment_order(id.clone());
        }
        self.created
    }
}

/// A fulfillment order id no fulfillment order of `order` has: `<order>-FO<n>`, counting on
/// from the number of fulfillment orders, past any id taken (the order may have arrived with
/// fulfillment orders named the same way).
fn fresh_id(order: &Order) -> FulfillmentOrderId {
    let mut n = order.fulfillment_orders.len() + 1;
    loop {
        let id = format!("{}-FO{n}", order.id);
        if order.fulfillment_order(&id).is_none() {
            return FulfillmentOrderId(id);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::{ActionError, ActionErrorKind, fresh_id};
    use crate::document::{FulfillmentOrder, Order};
    use crate::provider::{ProviderError, ProviderErrorKind};

    #[test]
    fn an_error_is_retryable_as_its_kind_says_unless_overridden() {
        let timeout = ActionError::of_kind(
            ActionErrorKind::Provider(ProviderErrorKind::Timeout),
            "no answer",
        );
        assert!(timeout.is_retryable());
        assert_eq!(timeout.provider_error(), Some(ProviderErrorKind::Timeout));
        let bad_reply = ActionError::of_kind(
            ActionErrorKind::Provider(ProviderErrorKind::InvalidReply),
            "no plan",
        );
        assert!(!bad_reply.is_retryable());
        let panicked = ActionError::of_kind(ActionErrorKind::Panicked, "boom");
        assert!(!panicked.is_retryable());
        assert_eq!(panicked.provider_error(), None);
        assert!(
            ActionError::new("later")
                .with_retryable(true)
                .is_retryable()
        );
        // A provider error keeps its own say, overridden or not.
        let final_outage: ActionError = ProviderError::unavailable("gone for good")
            .with_retryable(false)
            .into();
        assert_eq!(
            final_outage.kind(),
            ActionErrorKind::Provider(ProviderErrorKind::Unavailable)
        );
        assert!(!final_outage.is_retryable());
        assert_eq!(
            final_outage.message(),
            "provider call failed: unavailable: gone for good"
        );
    }

    #[test]
    fn fresh_ids_count_on_past_every_id_taken() {
        let mut order = Order::new("SO-1");
        assert_eq!(fresh_id(&order).as_str(), "SO-1-FO1");
        order.fulfillment_orders = vec![
            FulfillmentOrder::new("SO-1-FO3", "East"),
            FulfillmentOrder::new("SO-1-FO4", "West"),
        ];
        // Two fulfillment orders: the count says FO3, which is taken, and so is FO4.
        assert_eq!(fresh_id(&order).as_str(), "SO-1-FO5");
        order.fulfillment_orders = vec![FulfillmentOrder::new("X", "East")];
        assert_eq!(fresh_id(&order).as_str(), "SO-1-FO2");
    }
}
