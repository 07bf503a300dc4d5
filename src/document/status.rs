//! A record's state and the reason it is in it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a record is live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    /// The record is being processed.
    #[default]
    Active,
    /// The record is closed (fulfilled, cancelled or superseded).
    Inactive,
}

/// Why a record is in its state, as order-management users read it ("Sent To Fulfillment").
///
/// An open set: the constants name the reasons Intelligent Order Management shows; hosts may
/// use any other text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StatusReason(pub Cow<'static, str>);

impl StatusReason {
    /// The order passed header and line validation.
    pub const ORDER_VALIDATION_SUCCESS: Self = Self::from_static("Order Validation Success");
    /// The order failed header or line validation.
    pub const ORDER_VALIDATION_FAILED: Self = Self::from_static("Order Validation Failed");
    /// Every fulfillment order of the order was sent to its fulfillment provider.
    pub const SENT_TO_FULFILLMENT: Self = Self::from_static("Sent To Fulfillment");
    /// Picked in the warehouse.
    pub const PICKED: Self = Self::from_static("Picked");
    /// Packed in the warehouse.
    pub const PACKED: Self = Self::from_static("Packed");
    /// Shipped and fulfilled.
    pub const FULFILLED: Self = Self::from_static("Fulfilled");
    /// Sent to the billing provider.
    pub const INVOICED: Self = Self::from_static("Invoiced");
    /// Waiting for inventory.
    pub const BACKORDER_HOLD: Self = Self::from_static("Backorder Hold");
    /// Fulfillment determination found no source.
    pub const INVENTORY_NOT_FOUND: Self = Self::from_static("Inventory not found");
    /// A line failed line validation.
    pub const ORDER_LINE_VALIDATION_FAILED: Self =
        Self::from_static("Order Line Validation Failed");
    /// A line waits for a product release.
    pub const PREORDER_HOLD: Self = Self::from_static("Preorder Hold");

    /// A reason from static text, usable in `const` items.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Cow::Borrowed(s))
    }

    /// A reason from any text.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Cow::Owned(s.into()))
    }

    /// The reason as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StatusReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for StatusReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
