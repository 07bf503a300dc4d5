//! The documents being orchestrated: orders, their lines, and the fulfillment orders that
//! fulfillment determination creates from them.
//!
//! Every document has typed well-known fields (the ones order-management systems such as
//! Dynamics 365 Intelligent Order Management show), a [`State`], an optional
//! [`StatusReason`], and custom attributes by name. Documents are plain serde data.
//!
//! Quantities, prices and other numbers are exact [`Decimal`]s: a 0.3 kg line split 0.1 +
//! 0.2 across two sources adds up to exactly 0.3, and no document can hold NaN or infinity.
//! Typed numbers are written to JSON as strings (`"quantity": "0.3"`), exact in any reader,
//! and read from strings or from JSON numbers as earlier versions wrote them (`0.3` reads as
//! exactly 0.3; a JSON number is read through a double, so one of more than 15 significant
//! digits belongs in a string). Numbers among custom attributes ([`Value::Number`]) stay
//! JSON numbers.
//!
//! ```
//! use orderflow::document::{Decimal, Order, OrderLine, StatusReason};
//!
//! let order = Order::new("SO-1001")
//!     .with_order_source("BigCommerce")
//!     .with_ship_to_country("US")
//!     .with_line(OrderLine::new("1", "Surface Pen", 3))
//!     .with_line(OrderLine::new("2", "Coffee beans", Decimal::new(3, 1)).with_price(Decimal::new(1999, 2)));
//! assert_eq!(order.lines[0].quantity, Decimal::from(3));
//! assert_eq!(order.lines[1].quantity.to_string(), "0.3");
//! assert!(order.status_reason.is_none());
//! let _ = StatusReason::ORDER_VALIDATION_SUCCESS;
//!
//! // Written as strings; read from numbers too, as earlier versions wrote them.
//! let json = serde_json::to_string(&order.lines[1]).unwrap();
//! assert!(json.contains(r#""quantity":"0.3""#) && json.contains(r#""price":"19.99""#));
//! let old: OrderLine =
//!     serde_json::from_str(r#"{"id": "2", "product": "Coffee beans", "quantity": 0.3, "price": 19.99}"#)
//!         .unwrap();
//! assert_eq!(old, order.lines[1]);
//! ```

mod ids;
mod limits;
mod records;
mod status;
mod value;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use ids::{AsOrderId, FulfillmentOrderId, LineId, OrderId};
pub use records::{
    Address, DuplicateId, FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine, OrderType,
};
pub use status::{State, StatusReason};
pub use value::{Attributes, Value};

/// An exact decimal number (`rust_decimal`'s): 96 bits of digits, up to 28 of them after
/// the point. Quantities, prices and document numbers are decimals, so fractional quantities
/// add up exactly and nothing non-finite can be stored. Re-exported so hosts need no
/// dependency of their own; build one from an integer (`Decimal::from(3)`), from digits and
/// a scale (`Decimal::new(3, 1)` is 0.3), or from text (`"0.3".parse()`).
pub use rust_decimal::Decimal;

/// The kind of record a policy or filter applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// The order header.
    Order,
    /// Each order line.
    OrderLine,
    /// Each fulfillment order.
    FulfillmentOrder,
    /// Each fulfillment order line.
    FulfillmentOrderLine,
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Order => "order",
            Self::OrderLine => "order line",
            Self::FulfillmentOrder => "fulfillment order",
            Self::FulfillmentOrderLine => "fulfillment order line",
        })
    }
}

/// Names one record of an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordId {
    /// The order header.
    Order,
    /// An order line.
    Line(LineId),
    /// A fulfillment order.
    FulfillmentOrder(FulfillmentOrderId),
    /// A line (by position) of a fulfillment order.
    FulfillmentOrderLine(FulfillmentOrderId, usize),
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Order => f.write_str("order"),
            Self::Line(id) => write!(f, "line {id}"),
            Self::FulfillmentOrder(id) => write!(f, "fulfillment order {id}"),
            Self::FulfillmentOrderLine(id, n) => write!(f, "fulfillment order {id} line {n}"),
        }
    }
}

/// A read-only view of one record, as filters and checks see it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RecordRef<'a> {
    /// The order header.
    Order(&'a Order),
    /// An order line of an order.
    Line(&'a Order, &'a OrderLine),
    /// A fulfillment order of an order.
    FulfillmentOrder(&'a Order, &'a FulfillmentOrder),
    /// A line of a fulfillment order.
    FulfillmentOrderLine(&'a Order, &'a FulfillmentOrder, &'a FulfillmentOrderLine),
}

impl RecordRef<'_> {
    /// The record's entity.
    pub fn entity(&self) -> Entity {
        match self {
            Self::Order(_) => Entity::Order,
            Self::Line(..) => Entity::OrderLine,
            Self::FulfillmentOrder(..) => Entity::FulfillmentOrder,
            Self::FulfillmentOrderLine(..) => Entity::FulfillmentOrderLine,
        }
    }
}

/// A mutable view of one record, as execution policies see it.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecordMut<'a> {
    /// The order header (its lines and fulfillment orders included).
    Order(&'a mut Order),
    /// An order line.
    Line(&'a mut OrderLine),
    /// A fulfillment order.
    FulfillmentOrder(&'a mut FulfillmentOrder),
    /// A fulfillment order line.
    FulfillmentOrderLine(&'a mut FulfillmentOrderLine),
}

impl RecordMut<'_> {
    /// The record's entity.
    pub fn entity(&self) -> Entity {
        match self {
            Self::Order(_) => Entity::Order,
            Self::Line(_) => Entity::OrderLine,
            Self::FulfillmentOrder(_) => Entity::FulfillmentOrder,
            Self::FulfillmentOrderLine(_) => Entity::FulfillmentOrderLine,
        }
    }
}
