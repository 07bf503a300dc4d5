//! Business events: what happened to an order ("New Order", "Shipped", …).
//!
//! An [`Event`] is about one order and optionally one record of it. Its id de-duplicates
//! delivery: an event whose id the order has seen before is accepted and ignored. Its kind is
//! an open set of names ([`EventKind`]) with constants for the events Intelligent Order
//! Management raises.
//!
//! ```
//! use orderflow::document::Order;
//! use orderflow::event::{Event, EventKind};
//!
//! let event = Event::new("evt-1", EventKind::NEW_ORDER, "SO-1").with_order(Order::new("SO-1"));
//! assert_eq!(event.kind, EventKind::NEW_ORDER);
//! ```

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::document::{Order, OrderId, RecordId};

mod limits;

/// The name of a kind of business event. An open set.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventKind(pub Cow<'static, str>);

impl EventKind {
    /// An order arrived from intake.
    pub const NEW_ORDER: Self = Self::from_static("New Order");
    /// Header validation passed.
    pub const ORDER_HEADER_VALIDATION_SUCCEEDED: Self =
        Self::from_static("Validation of Order Header has Succeeded");
    /// Header validation failed.
    pub const ORDER_HEADER_VALIDATION_FAILED: Self =
        Self::from_static("Validation of Order Header has Failed");
    /// Line validation passed.
    pub const ORDER_LINES_VALIDATION_SUCCEEDED: Self =
        Self::from_static("Validation of Order Lines has Succeeded");
    /// Line validation failed.
    pub const ORDER_LINES_VALIDATION_FAILED: Self =
        Self::from_static("Validation of Order Lines has Failed");
    /// The order went to the fulfillment determination (DOM) provider.
    pub const SENT_TO_FULFILLMENT_DETERMINATION: Self =
        Self::from_static("Send Order to Fulfillment Determination Provider has Succeeded");
    /// Sending to the fulfillment determination provider failed.
    pub const SEND_TO_FULFILLMENT_DETERMINATION_FAILED: Self =
        Self::from_static("Send Order to Fulfillment Determination Provider has Failed");
    /// A fulfillment order was created (one event per fulfillment order).
    pub const FULFILLMENT_ORDER_CREATED: Self =
        Self::from_static("Creation of Fulfillment Order has Succeeded");
    /// Creating a fulfillment order failed.
    pub const FULFILLMENT_ORDER_CREATION_FAILED: Self =
        Self::from_static("Creation of Fulfillment Order has Failed");
    /// The order header is ready to be fulfilled.
    pub const ORDER_READY_TO_BE_FULFILLED: Self =
        Self::from_static("Order Header Ready to be Fulfilled");
    /// The order went to its fulfillment provider(s).
    pub const SENT_TO_FULFILLMENT: Self =
        Self::from_static("Send Order to Fulfillment Provider has Succeeded");
    /// Sending to a fulfillment provider failed.
    pub const SEND_TO_FULFILLMENT_FAILED: Self =
        Self::from_static("Send Order to Fulfillment Provider has Failed");
    /// The order went to the ERP.
    pub const SENT_TO_ERP: Self = Self::from_static("Send Order to ERP has Succeeded");
    /// Sending to the ERP failed.
    pub const SEND_TO_ERP_FAILED: Self = Self::from_static("Send Order to ERP has Failed");
    /// The order went to the billing provider.
    pub const SENT_TO_INVOICE: Self =
        Self::from_static("Send Order to Billing Provider has Succeeded");
    /// Sending to the billing provider failed.
    pub const SEND_TO_INVOICE_FAILED: Self =
        Self::from_static("Send Order to Billing Provider has Failed");
    /// Fulfillment sources were assigned by policy.
    pub const FULFILLMENT_SOURCE_ASSIGNED: Self =
        Self::from_static("Assignment of Fulfillment Source has Succeeded");
    /// Assigning fulfillment sources failed.
    pub const FULFILLMENT_SOURCE_ASSIGNMENT_FAILED: Self =
        Self::from_static("Assignment of Fulfillment Source has Failed");
    /// A carrier shipped (part of) the order.
    pub const SHIPPED: Self = Self::from_static("Shipped");
    /// The order was invoiced.
    pub const INVOICED: Self = Self::from_static("Invoiced");
    /// The billing provider confirmed billing.
    pub const BILLING_CONFIRMED: Self =
        Self::from_static("Billing of order confirmed by billing provider");
    /// The host corrected the order's data ([`Engine::update_order`](crate::Engine::update_order)).
    pub const ORDER_UPDATED: Self = Self::from_static("Order updated");

    /// A kind from static text, usable in `const` items.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Cow::Borrowed(s))
    }

    /// A kind from any text.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Cow::Owned(s.into()))
    }

    /// The kind as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EventKind {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// Identifies an event for de-duplication; unique per order.
///
/// Shared text, like [`OrderId`]: a copy (onto the timeline, into a commit) is a reference
/// count. Build one with [`From`] (`EventId::from("e-1")`); read it with
/// [`as_str`](Self::as_str) or [`Display`](fmt::Display).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(std::sync::Arc<str>);

impl EventId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EventId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl From<String> for EventId {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

/// A business event about one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Event {
    /// De-duplication id: an event whose id the order has already seen is ignored.
    pub id: EventId,
    /// What happened.
    pub kind: EventKind,
    /// The order it happened to.
    pub order: OrderId,
    /// The record it happened to, when it concerns one record (a shipped fulfillment order).
    /// A waiting step accepts such an event only when it carries that record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordId>,
    /// Free-form data from the sender.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub payload: serde_json::Value,
    /// The order document, when the event brings it (intake's "New Order"). For an order
    /// the engine does not know, it is the order's first document, stored before the
    /// event is routed. For an order the engine knows, it is ignored: the stored order,
    /// with what flows set on it, stays the truth, and a redelivered intake event cannot
    /// overwrite it. A host corrects a known order with
    /// [`Engine::update_order`](crate::Engine::update_order), which says when running
    /// executions see the change and puts it on the timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Box<Order>>,
}

impl Event {
    /// An event of a kind about an order.
    pub fn new(id: impl Into<EventId>, kind: EventKind, order: impl Into<OrderId>) -> Self {
        Self {
            id: id.into(),
            kind,
            order: order.into(),
            record: None,
            payload: serde_json::Value::Null,
            document: None,
        }
    }

    /// A "New Order" event bringing the order document; the event id is `new:<order id>`.
    pub fn new_order(order: Order) -> Self {
        Self::new(
            format!("new:{}", order.id),
            EventKind::NEW_ORDER,
            order.id.clone(),
        )
        .with_order(order)
    }

    /// Attaches the order document (used only if the order is new: see
    /// [`document`](Self::document)). The order id is taken from the document.
    pub fn with_order(mut self, order: Order) -> Self {
        self.order = order.id.clone();
        self.document = Some(Box::new(order));
        self
    }

    /// Names the record the event concerns.
    pub fn with_record(mut self, record: RecordId) -> Self {
        self.record = Some(record);
        self
    }

    /// Attaches a payload.
    pub fn with_payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }
}
