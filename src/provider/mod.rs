//! Providers: connections to the systems orders flow through (DOM engines, warehouses, 3PLs,
//! ERP, billing).
//!
//! A provider offers **provider actions**, one per [`RequestKind`], and answers a
//! [`Request`] with a [`Reply`]. A step binds a provider by name; the engine calls it with an
//! idempotency key derived from committed state, a timeout per attempt and retries for
//! retryable errors.
//!
//! # Contract
//!
//! - The engine calls [`Provider::call`] only with requests of kinds the provider
//!   [offers](Provider::offers) (publishing checks it).
//! - Calls are at-least-once: after a timeout, a retryable error or a crash the same call may
//!   come again with the same [`CallContext::idempotency_key`]. A provider should make a
//!   repeated key a no-op returning the first answer.
//! - An error says whether it is worth retrying ([`ProviderError::is_retryable`]). A call that
//!   outlives its timeout is abandoned (its future dropped) and counts as a retryable timeout;
//!   a panic counts as a retryable failure of that attempt.
//! - Whether a step runs again is decided on the error its action returns, by the step's
//!   [`RetryPolicy`] ([`RetryPolicy::next_attempt`]): an action that handles a failed call
//!   and returns `Ok` is not retried.
//!
//! Each concern of a call is a small layer of its own in this module, wrapped around the
//! call: the idempotency key (`<execution>/<step>/<round>/<record>`), the timeout of the
//! attempt on the engine's clock, panic catching, and in a dry run the substitution that
//! records the call and answers it instead; the [`retry`] decision comes after, on the
//! action's result.
//!
//! ```
//! use async_trait::async_trait;
//! use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
//!
//! /// A 3PL that accepts every fulfillment order.
//! #[derive(Debug)]
//! struct Warehouse;
//!
//! #[async_trait]
//! impl Provider for Warehouse {
//!     fn name(&self) -> &str { "Contoso 3PL" }
//!     fn offers(&self) -> &[RequestKind] { &[RequestKind::SendFulfillmentOrder] }
//!     async fn call(&self, request: Request<'_>, cx: &CallContext<'_>)
//!         -> Result<Reply, ProviderError>
//!     {
//!         match request {
//!             Request::SendFulfillmentOrder { fulfillment_order, .. } => {
//!                 // Send `fulfillment_order` with `cx.idempotency_key` as the request id.
//!                 let _ = (fulfillment_order, cx.idempotency_key);
//!                 Ok(Reply::Done)
//!             }
//!             other => Err(ProviderError::rejected(format!("unexpected {:?}", other.kind()))),
//!         }
//!     }
//! }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::document::{Decimal, FulfillmentOrder, LineId, Order, RecordId};

pub(crate) mod call;
pub(crate) mod catch_panic;
pub(crate) mod dry_run;
pub(crate) mod idempotency;
pub mod retry;
pub(crate) mod timeout;

pub use retry::{RetryPolicy, Retryable};

/// The kinds of provider actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestKind {
    /// Fulfillment determination: returns a [`FulfillmentPlan`].
    DetermineFulfillment,
    /// Send one fulfillment order to its fulfillment provider.
    SendFulfillmentOrder,
    /// Send the order to the ERP.
    SendToErp,
    /// Send the order to billing.
    SendInvoice,
    /// A host-defined request, sent by custom actions.
    Custom,
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DetermineFulfillment => "determine fulfillment",
            Self::SendFulfillmentOrder => "send fulfillment order",
            Self::SendToErp => "send to ERP",
            Self::SendInvoice => "send invoice",
            Self::Custom => "custom request",
        })
    }
}

/// A request to a provider.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Request<'a> {
    /// Decide where each line ships from.
    DetermineFulfillment {
        /// The order.
        order: &'a Order,
    },
    /// Ship one fulfillment order.
    SendFulfillmentOrder {
        /// The order.
        order: &'a Order,
        /// The fulfillment order to ship.
        fulfillment_order: &'a FulfillmentOrder,
    },
    /// Hand the order to the ERP.
    SendToErp {
        /// The order.
        order: &'a Order,
    },
    /// Bill the order.
    SendInvoice {
        /// The order.
        order: &'a Order,
    },
    /// A host-defined request.
    Custom {
        /// What the host calls the request.
        name: &'a str,
        /// The order.
        order: &'a Order,
        /// Request data.
        payload: &'a serde_json::Value,
    },
}

impl Request<'_> {
    /// The request's kind.
    pub fn kind(&self) -> RequestKind {
        match self {
            Self::DetermineFulfillment { .. } => RequestKind::DetermineFulfillment,
            Self::SendFulfillmentOrder { .. } => RequestKind::SendFulfillmentOrder,
            Self::SendToErp { .. } => RequestKind::SendToErp,
            Self::SendInvoice { .. } => RequestKind::SendInvoice,
            Self::Custom { .. } => RequestKind::Custom,
        }
    }

    /// The order the request is about.
    pub fn order(&self) -> &Order {
        match self {
            Self::DetermineFulfillment { order }
            | Self::SendFulfillmentOrder { order, .. }
            | Self::SendToErp { order }
            | Self::SendInvoice { order }
            | Self::Custom { order, .. } => order,
        }
    }
}

/// What the engine tells a provider about a call.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallContext<'a> {
    /// Stable across retries and restarts for the same call: execution, step, record and
    /// reprocess round.
    pub idempotency_key: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When the engine abandons this attempt.
    pub deadline: Timestamp,
}

/// A provider's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reply {
    /// Done, nothing to report.
    Done,
    /// Fulfillment determination's answer.
    FulfillmentPlan(FulfillmentPlan),
    /// A host-defined answer.
    Custom(serde_json::Value),
}

/// Where each line of an order ships from, as fulfillment determination decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FulfillmentPlan {
    /// One entry per line the plan covers; a line not listed is not sourced.
    pub lines: Vec<PlannedLine>,
}

/// The sources of one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedLine {
    /// The order line.
    pub line: LineId,
    /// Quantities per source; their sum may be less than the line's quantity (partially
    /// sourced) or zero (not sourced).
    pub allocations: Vec<Allocation>,
}

/// A quantity from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// The fulfillment source.
    pub source: String,
    /// The quantity it ships, exact: allocations of one line add up with no rounding.
    /// Written as a JSON string like document quantities, read from a string or a number.
    #[serde(with = "crate::number::decimal")]
    pub quantity: Decimal,
}

impl Allocation {
    /// `quantity` (an integer or a [`Decimal`]) from `source`.
    pub fn new(source: impl Into<String>, quantity: impl Into<Decimal>) -> Self {
        Self {
            source: source.into(),
            quantity: quantity.into(),
        }
    }
}

/// The class of a provider failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderErrorKind {
    /// The provider refused the request (bad data, business rule).
    Rejected,
    /// The provider could not be reached or is overloaded.
    Unavailable,
    /// The attempt outlived its timeout.
    Timeout,
    /// The provider panicked.
    Panicked,
    /// The reply did not fit the request.
    InvalidReply,
    /// Anything else.
    Other,
}

impl ProviderErrorKind {
    /// Whether an error of this kind is worth retrying unless it says otherwise
    /// ([`ProviderError::with_retryable`]): every kind but
    /// [`Rejected`](Self::Rejected) and [`InvalidReply`](Self::InvalidReply).
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Rejected | Self::InvalidReply)
    }
}

/// The kind in words, as [`ProviderError`]'s message starts: `rejected`, `unavailable`,
/// `timed out`, `panicked`, `invalid reply`, `failed`.
impl fmt::Display for ProviderErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timed out",
            Self::Panicked => "panicked",
            Self::InvalidReply => "invalid reply",
            Self::Other => "failed",
        })
    }
}

/// A failed provider call. Its message reads `<kind>: <what happened>`
/// (`unavailable: connection refused`), the kind in words.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ProviderError {
    kind: ProviderErrorKind,
    retryable: bool,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ProviderError {
    /// An error of a kind; retryable unless the kind is [`ProviderErrorKind::Rejected`] or
    /// [`ProviderErrorKind::InvalidReply`].
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            retryable: kind.is_retryable(),
            message: message.into(),
            source: None,
        }
    }

    /// A permanent refusal.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Rejected, message)
    }

    /// A transient outage, worth retrying.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ProviderErrorKind::Unavailable, message)
    }

    /// Overrides whether the error is worth retrying.
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
    pub fn kind(&self) -> ProviderErrorKind {
        self.kind
    }

    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Retryable for ProviderError {
    fn is_retryable(&self) -> bool {
        self.retryable
    }
}

/// A connection to an external system. See the [module docs](self) for the contract.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug + 'static {
    /// The name steps refer to.
    fn name(&self) -> &str;
    /// The provider actions it offers.
    fn offers(&self) -> &[RequestKind];
    /// Performs one attempt of a request.
    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError>;
}

#[async_trait]
impl<T: Provider + ?Sized> Provider for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn offers(&self) -> &[RequestKind] {
        (**self).offers()
    }
    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        (**self).call(request, cx).await
    }
}

#[async_trait]
impl<T: Provider + ?Sized> Provider for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn offers(&self) -> &[RequestKind] {
        (**self).offers()
    }
    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        (**self).call(request, cx).await
    }
}

const _: Option<&dyn Provider> = None;

/// One call a [`MemoryProvider`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedCall {
    /// The request kind.
    pub kind: RequestKind,
    /// The order.
    pub order: String,
    /// The record the request was for: the fulfillment order for
    /// [`RequestKind::SendFulfillmentOrder`], the order otherwise.
    pub record: RecordId,
    /// The idempotency key.
    pub idempotency_key: String,
    /// The attempt number.
    pub attempt: u32,
}

/// An in-memory provider offering every request kind: it records each call and answers
/// `Done`; fulfillment determination sources every line fully from one source.
///
/// Examples and tests use it in place of a real system. Clones share the record of calls.
#[derive(Debug, Clone)]
pub struct MemoryProvider {
    name: String,
    source: String,
    calls: Arc<Mutex<Vec<ReceivedCall>>>,
    /// Calls still to refuse as unavailable (a system restarting).
    unavailable: Arc<std::sync::atomic::AtomicU32>,
}

impl MemoryProvider {
    /// A provider named `name` whose fulfillment determination sources from `name` itself.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            source: name.clone(),
            name,
            calls: Arc::default(),
            unavailable: Arc::default(),
        }
    }

    /// Refuses its next `n` calls with a retryable
    /// [`Unavailable`](ProviderErrorKind::Unavailable) error, as a system that is
    /// restarting does; they are recorded as calls all the same. The engine retries them on
    /// its durable timers.
    pub fn unavailable_for(self, n: u32) -> Self {
        self.unavailable
            .store(n, std::sync::atomic::Ordering::SeqCst);
        self
    }

    /// Sets the source fulfillment determination answers with.
    pub fn sourcing_from(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// The calls received so far, in order.
    pub fn calls(&self) -> Vec<ReceivedCall> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Provider for MemoryProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn offers(&self) -> &[RequestKind] {
        &[
            RequestKind::DetermineFulfillment,
            RequestKind::SendFulfillmentOrder,
            RequestKind::SendToErp,
            RequestKind::SendInvoice,
            RequestKind::Custom,
        ]
    }

    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        let record = match request {
            Request::SendFulfillmentOrder {
                fulfillment_order, ..
            } => RecordId::FulfillmentOrder(fulfillment_order.id.clone()),
            _ => RecordId::Order,
        };
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(ReceivedCall {
                kind: request.kind(),
                order: request.order().id.to_string(),
                record,
                idempotency_key: cx.idempotency_key.to_owned(),
                attempt: cx.attempt,
            });
        let refused = self.unavailable.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        );
        if refused.is_ok() {
            return Err(ProviderError::unavailable(format!(
                "{} is restarting",
                self.name
            )));
        }
        Ok(match request {
            Request::DetermineFulfillment { order } => Reply::FulfillmentPlan(FulfillmentPlan {
                lines: order
                    .lines
                    .iter()
                    .map(|l| PlannedLine {
                        line: l.id.clone(),
                        allocations: vec![Allocation {
                            source: self.source.clone(),
                            quantity: l.quantity,
                        }],
                    })
                    .collect(),
            }),
            _ => Reply::Done,
        })
    }
}

/// A credential in provider configuration (an API key, a password, a token): kept for the
/// provider to use, never shown.
///
/// `Debug` and `Display` print `[redacted]`, and so does serializing it, so a provider
/// whose configuration holds its credentials as `Secret`s can derive `Debug` and be
/// logged, put in errors, journeys and spans without leaking them. Deserializing reads the
/// plain value, so configuration files load as usual. Only [`expose`](Self::expose) gives
/// the value, at the point of use. A URL or connection string to be shown with the
/// credentials in it hidden goes through
/// [`redact::connection_string`](crate::redact::connection_string).
///
/// ```
/// use orderflow::provider::Secret;
///
/// #[derive(Debug, serde::Deserialize)]
/// struct BillingConfig {
///     url: String,
///     api_key: Secret,
/// }
///
/// let config: BillingConfig =
///     serde_json::from_str(r#"{ "url": "https://billing.example", "api_key": "sk-live-123" }"#)?;
/// assert_eq!(config.api_key.expose(), "sk-live-123");
/// let shown = format!("{config:?} {}", config.api_key);
/// assert!(!shown.contains("sk-live-123"));
/// assert!(shown.contains("[redacted]"));
/// assert_eq!(serde_json::to_string(&config.api_key)?, "\"[redacted]\"");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret<T = String>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The value, for the provider's own use.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}
