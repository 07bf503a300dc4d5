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

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// An exact decimal number (`rust_decimal`'s): 96 bits of digits, up to 28 of them after
/// the point. Quantities, prices and document numbers are decimals, so fractional quantities
/// add up exactly and nothing non-finite can be stored. Re-exported so hosts need no
/// dependency of their own; build one from an integer (`Decimal::from(3)`), from digits and
/// a scale (`Decimal::new(3, 1)` is 0.3), or from text (`"0.3".parse()`).
pub use rust_decimal::Decimal;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// Identifies an order (the sales order header); unique within a store.
    OrderId
);
/// An order id as the engine's order calls take it ([`Engine::order`], [`Engine::journey`],
/// [`Engine::restore`], …): text (`"SO-1"`, a `&String`) or an [`OrderId`], by value or by
/// reference, so `engine.order("SO-1")` and `engine.order(&id)` both read.
///
/// An [`OrderId`] is lent as it is; text becomes an [`OrderId`] once per call (one small
/// allocation, on reads and administration only: [`Engine::submit`] takes the id inside its
/// [`Event`](crate::Event)). A host's own wrappers can take `impl AsOrderId` the same way.
///
/// `engine.order(&"SO-1".into())` names no type to convert to: write `engine.order("SO-1")`.
///
/// ```
/// use orderflow::document::{AsOrderId, OrderId};
///
/// fn show(order: impl AsOrderId) -> String {
///     order.as_order_id().to_string()
/// }
/// let id = OrderId::from("SO-1");
/// assert_eq!(show("SO-1"), "SO-1");
/// assert_eq!(show(&id), "SO-1");
/// assert_eq!(show(&String::from("SO-1")), "SO-1");
/// assert_eq!(show(id), "SO-1");
/// ```
///
/// [`Engine::order`]: crate::Engine::order
/// [`Engine::journey`]: crate::Engine::journey
/// [`Engine::restore`]: crate::Engine::restore
/// [`Engine::submit`]: crate::Engine::submit
pub trait AsOrderId {
    /// The id: borrowed when `self` is an [`OrderId`], built from the text otherwise.
    fn as_order_id(&self) -> Cow<'_, OrderId>;
}

impl AsOrderId for OrderId {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        Cow::Borrowed(self)
    }
}

impl AsOrderId for str {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        Cow::Owned(OrderId::from(self))
    }
}

impl AsOrderId for String {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        Cow::Owned(OrderId::from(self.as_str()))
    }
}

impl<T: AsOrderId + ?Sized> AsOrderId for &T {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        (**self).as_order_id()
    }
}

id_type!(
    /// Identifies a line within its order.
    LineId
);
id_type!(
    /// Identifies a fulfillment order within its order.
    FulfillmentOrderId
);

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

/// The value of a custom attribute (and of a rule's literal).
///
/// In JSON: `null`, `true`/`false`, a number, or a string. A number is an exact
/// [`Decimal`]; it is written as a JSON number when reading that number back gives the same
/// decimal (every decimal of at most 15 significant digits), otherwise as
/// `{"decimal": "<digits>"}`, so every value reads back equal and a number never reads back
/// as text. A JSON number is read as the decimal of its shortest text (`0.3` is exactly
/// 0.3); one that does not fit a decimal (28 digits, about 7.9e28) is refused.
///
/// ```
/// use orderflow::document::{Decimal, Value};
///
/// let v: Value = serde_json::from_str("0.3").unwrap();
/// assert_eq!(v, Value::Number(Decimal::new(3, 1)));
/// assert_eq!(serde_json::to_string(&v).unwrap(), "0.3");
/// let third = Value::from(Decimal::ONE / Decimal::from(3));
/// let json = serde_json::to_string(&third).unwrap();
/// assert_eq!(json, r#"{"decimal":"0.3333333333333333333333333333"}"#);
/// assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), third);
/// assert!(serde_json::from_str::<Value>("1e30").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// No value.
    Null,
    /// A flag.
    Bool(bool),
    /// A number.
    Number(Decimal),
    /// Text.
    Text(String),
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Null => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::Text(t) => s.serialize_str(t),
            Self::Number(n) => {
                if n.scale() == 0 {
                    if let Ok(i) = i64::try_from(*n) {
                        return s.serialize_i64(i);
                    }
                }
                if let Some(f) = crate::number::exact_f64(*n) {
                    return s.serialize_f64(f);
                }
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(crate::number::DECIMAL_KEY, &n.to_string())?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null, true/false, a number or text")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        serde::de::Visitor::visit_i64(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        serde::de::Visitor::visit_u64(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<Value, E> {
        serde::de::Visitor::visit_i128(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Value, E> {
        serde::de::Visitor::visit_u128(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde::de::Visitor::visit_f64(crate::number::DecimalVisitor, v).map(Value::Number)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(v))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde::de::Error;
        let key: Option<String> = map.next_key()?;
        if key.as_deref() != Some(crate::number::DECIMAL_KEY) {
            return Err(A::Error::custom(
                "a value is null, true/false, a number, text, or {\"decimal\": \"<digits>\"}",
            ));
        }
        let text: String = map.next_value()?;
        let n = crate::number::from_text(&text).ok_or_else(|| {
            A::Error::invalid_value(
                serde::de::Unexpected::Str(&text),
                &crate::number::DecimalVisitor,
            )
        })?;
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom(
                "a decimal value is {\"decimal\": \"<digits>\"} and nothing else",
            ));
        }
        Ok(Value::Number(n))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}
impl From<Decimal> for Value {
    fn from(n: Decimal) -> Self {
        Self::Number(n)
    }
}
impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Self::Number(n.into())
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Self::Number(n.into())
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Self::Number(n.into())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

/// Custom attributes of a document, in insertion order.
pub type Attributes = IndexMap<String, Value>;

/// A postal address.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Address {
    /// Recipient name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Street and number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    /// City.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// State or province.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Postal code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country or region code, such as `US`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// Whether an order is a one-off sale or a subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderType {
    /// A one-off sales order.
    #[default]
    SalesOrder,
    /// A recurring subscription order.
    Subscription,
}

/// A sales order header with its lines and the fulfillment orders created for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Order {
    /// The order's identifier.
    pub id: OrderId,
    /// The order number users see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_number: Option<String>,
    /// The id the intake system gave the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_order_id: Option<String>,
    /// The intake provider the order came from (a commerce site, EDI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_source: Option<String>,
    /// The customer account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// ISO currency code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Where the goods go.
    #[serde(default)]
    pub ship_to: Address,
    /// Where the invoice goes.
    #[serde(default)]
    pub bill_to: Address,
    /// Sales order or subscription.
    #[serde(default)]
    pub order_type: OrderType,
    /// The legal entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    /// How fulfillment should be determined (ship complete, nearest source, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_strategy: Option<String>,
    /// Live or closed.
    #[serde(default)]
    pub state: State,
    /// Why the order is where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    /// The order lines.
    #[serde(default)]
    pub lines: Vec<OrderLine>,
    /// Fulfillment orders created by fulfillment determination.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fulfillment_orders: Vec<FulfillmentOrder>,
    /// Custom attributes.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub custom: Attributes,
}

impl Order {
    /// An empty active order with the given id.
    pub fn new(id: impl Into<OrderId>) -> Self {
        Self {
            id: id.into(),
            order_number: None,
            external_order_id: None,
            order_source: None,
            customer: None,
            currency: None,
            ship_to: Address::default(),
            bill_to: Address::default(),
            order_type: OrderType::default(),
            company: None,
            fulfillment_strategy: None,
            state: State::Active,
            status_reason: None,
            lines: Vec::new(),
            fulfillment_orders: Vec::new(),
            custom: Attributes::new(),
        }
    }

    /// Sets the order source.
    pub fn with_order_source(mut self, source: impl Into<String>) -> Self {
        self.order_source = Some(source.into());
        self
    }

    /// Sets the ship-to country.
    pub fn with_ship_to_country(mut self, country: impl Into<String>) -> Self {
        self.ship_to.country = Some(country.into());
        self
    }

    /// Adds a line.
    pub fn with_line(mut self, line: OrderLine) -> Self {
        self.lines.push(line);
        self
    }

    /// Sets a custom attribute.
    pub fn with_custom(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.custom.insert(name.into(), value.into());
        self
    }

    /// The line with this id.
    pub fn line(&self, id: &str) -> Option<&OrderLine> {
        self.lines.iter().find(|l| l.id.as_str() == id)
    }

    /// The fulfillment order with this id.
    pub fn fulfillment_order(&self, id: &str) -> Option<&FulfillmentOrder> {
        self.fulfillment_orders.iter().find(|f| f.id.as_str() == id)
    }

    /// Checks that the document names each record once: line ids are unique within the
    /// order, fulfillment order ids too, and a fulfillment order has at most one line per
    /// order line (the order line is what identifies a fulfillment order line; a second
    /// one would be ambiguous). The engine refuses an event bringing a document that fails
    /// this: every step, filter, idempotency key and journey entry names records by these
    /// ids, so a duplicate would make two records one.
    ///
    /// ```
    /// use orderflow::document::{DuplicateId, Order, OrderLine};
    ///
    /// let order = Order::new("SO-1")
    ///     .with_line(OrderLine::new("1", "Pen", 1))
    ///     .with_line(OrderLine::new("1", "Ink", 2));
    /// let e = order.check_ids().unwrap_err();
    /// assert!(matches!(e, DuplicateId::Line { .. }));
    /// assert_eq!(e.to_string(), "order 'SO-1' has line id '1' more than once");
    /// ```
    pub fn check_ids(&self) -> Result<(), DuplicateId> {
        let mut seen = std::collections::HashSet::with_capacity(self.lines.len());
        if let Some(line) = self.lines.iter().find(|l| !seen.insert(l.id.as_str())) {
            return Err(DuplicateId::Line {
                order: self.id.clone(),
                line: line.id.clone(),
            });
        }
        seen.clear();
        if let Some(fo) = self
            .fulfillment_orders
            .iter()
            .find(|f| !seen.insert(f.id.as_str()))
        {
            return Err(DuplicateId::FulfillmentOrder {
                order: self.id.clone(),
                fulfillment_order: fo.id.clone(),
            });
        }
        for fo in &self.fulfillment_orders {
            seen.clear();
            if let Some(line) = fo
                .lines
                .iter()
                .find(|l| !seen.insert(l.order_line.as_str()))
            {
                return Err(DuplicateId::FulfillmentOrderLine {
                    order: self.id.clone(),
                    fulfillment_order: fo.id.clone(),
                    line: line.order_line.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A record id an order document uses twice; see [`Order::check_ids`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DuplicateId {
    /// Two lines of the order share an id.
    #[error("order '{order}' has line id '{line}' more than once")]
    Line {
        /// The order.
        order: OrderId,
        /// The line id used twice.
        line: LineId,
    },
    /// Two fulfillment orders of the order share an id.
    #[error("order '{order}' has fulfillment order id '{fulfillment_order}' more than once")]
    FulfillmentOrder {
        /// The order.
        order: OrderId,
        /// The fulfillment order id used twice.
        fulfillment_order: FulfillmentOrderId,
    },
    /// Two lines of one fulfillment order point at the same order line.
    #[error(
        "fulfillment order '{fulfillment_order}' of order '{order}' has more than one line \
         for order line '{line}'"
    )]
    FulfillmentOrderLine {
        /// The order.
        order: OrderId,
        /// The fulfillment order.
        fulfillment_order: FulfillmentOrderId,
        /// The order line it lists twice.
        line: LineId,
    },
}

/// An order line (order product).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OrderLine {
    /// The line's identifier within its order.
    pub id: LineId,
    /// The product.
    pub product: String,
    /// Unit of measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Ordered quantity.
    #[serde(with = "crate::number::decimal")]
    pub quantity: Decimal,
    /// Unit price.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::number::option"
    )]
    pub price: Option<Decimal>,
    /// The fulfillment source (store, warehouse, 3PL) chosen for the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_source: Option<String>,
    /// The shipping warehouse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_warehouse: Option<String>,
    /// Lines with the same split group ship together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_group: Option<String>,
    /// Requested delivery date, ISO 8601 (`2026-12-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_delivery_date: Option<String>,
    /// Live or closed.
    #[serde(default)]
    pub state: State,
    /// Why the line is where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    /// Custom attributes.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub custom: Attributes,
}

impl OrderLine {
    /// An active line for a quantity of a product (an integer or a [`Decimal`]).
    pub fn new(
        id: impl Into<LineId>,
        product: impl Into<String>,
        quantity: impl Into<Decimal>,
    ) -> Self {
        Self {
            id: id.into(),
            product: product.into(),
            unit: None,
            quantity: quantity.into(),
            price: None,
            fulfillment_source: None,
            shipping_warehouse: None,
            split_group: None,
            requested_delivery_date: None,
            state: State::Active,
            status_reason: None,
            custom: Attributes::new(),
        }
    }

    /// Sets the unit price.
    pub fn with_price(mut self, price: impl Into<Decimal>) -> Self {
        self.price = Some(price.into());
        self
    }

    /// Sets the fulfillment source.
    pub fn with_fulfillment_source(mut self, source: impl Into<String>) -> Self {
        self.fulfillment_source = Some(source.into());
        self
    }

    /// Sets a custom attribute.
    pub fn with_custom(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.custom.insert(name.into(), value.into());
        self
    }
}

/// A fulfillment order: the part of an order one fulfillment source ships.
///
/// Fulfillment determination creates one per fulfillment source per order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FulfillmentOrder {
    /// The fulfillment order's identifier within its order.
    pub id: FulfillmentOrderId,
    /// The fulfillment source that ships it.
    pub fulfillment_source: String,
    /// Live or closed.
    #[serde(default)]
    pub state: State,
    /// Why it is where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    /// Its lines.
    #[serde(default)]
    pub lines: Vec<FulfillmentOrderLine>,
    /// Custom attributes.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub custom: Attributes,
}

impl FulfillmentOrder {
    /// An active fulfillment order for a source, without lines.
    pub fn new(id: impl Into<FulfillmentOrderId>, fulfillment_source: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            fulfillment_source: fulfillment_source.into(),
            state: State::Active,
            status_reason: None,
            lines: Vec::new(),
            custom: Attributes::new(),
        }
    }
}

/// A fulfillment order line: a quantity of one order line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FulfillmentOrderLine {
    /// The order line this line fulfills.
    pub order_line: LineId,
    /// The product.
    pub product: String,
    /// The quantity this fulfillment order ships.
    #[serde(with = "crate::number::decimal")]
    pub quantity: Decimal,
    /// Live or closed.
    #[serde(default)]
    pub state: State,
    /// Why it is where it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<StatusReason>,
    /// Custom attributes.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub custom: Attributes,
}

impl FulfillmentOrderLine {
    /// A line shipping a quantity (an integer or a [`Decimal`]) of an order line.
    pub fn new(
        order_line: impl Into<LineId>,
        product: impl Into<String>,
        quantity: impl Into<Decimal>,
    ) -> Self {
        Self {
            order_line: order_line.into(),
            product: product.into(),
            quantity: quantity.into(),
            state: State::Active,
            status_reason: None,
            custom: Attributes::new(),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::{DuplicateId, FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine};

    fn fo(id: &str, lines: &[&str]) -> FulfillmentOrder {
        let mut fo = FulfillmentOrder::new(id, "East");
        for l in lines {
            fo.lines.push(FulfillmentOrderLine::new(*l, "Pen", 1));
        }
        fo
    }

    #[test]
    fn check_ids_names_the_first_record_used_twice() {
        let mut order = Order::new("SO-1")
            .with_line(OrderLine::new("1", "Pen", 1))
            .with_line(OrderLine::new("2", "Ink", 1));
        order.fulfillment_orders = vec![fo("A", &["1", "2"]), fo("B", &["1", "2"])];
        assert_eq!(order.check_ids(), Ok(()));

        order.fulfillment_orders.push(fo("A", &[]));
        let e = order.check_ids().unwrap_err();
        assert_eq!(
            e,
            DuplicateId::FulfillmentOrder {
                order: "SO-1".into(),
                fulfillment_order: "A".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "order 'SO-1' has fulfillment order id 'A' more than once"
        );

        order.fulfillment_orders = vec![fo("A", &["1"]), fo("B", &["2", "1", "2"])];
        let e = order.check_ids().unwrap_err();
        assert_eq!(
            e.to_string(),
            "fulfillment order 'B' of order 'SO-1' has more than one line for order line '2'"
        );

        order.lines.push(OrderLine::new("1", "Dock", 1));
        assert!(
            matches!(order.check_ids(), Err(DuplicateId::Line { line, .. }) if line.as_str() == "1"),
            "lines are checked first"
        );
    }
}
