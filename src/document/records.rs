//! The documents: orders, their lines, fulfillment orders and their lines.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{Attributes, Decimal, FulfillmentOrderId, LineId, OrderId, State, StatusReason, Value};

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
        if let Some(line) = first_repeat(&self.lines, |l| l.id.as_str()) {
            return Err(DuplicateId::Line {
                order: self.id.clone(),
                line: line.id.clone(),
            });
        }
        if let Some(fo) = first_repeat(&self.fulfillment_orders, |f| f.id.as_str()) {
            return Err(DuplicateId::FulfillmentOrder {
                order: self.id.clone(),
                fulfillment_order: fo.id.clone(),
            });
        }
        for fo in &self.fulfillment_orders {
            if let Some(line) = first_repeat(&fo.lines, |l| l.order_line.as_str()) {
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

/// The first item whose key an earlier item has: compared pairwise for the few records an
/// order usually has (no allocation), through a set past that (a hostile document's
/// thousands of lines stay linear).
fn first_repeat<'a, T>(items: &'a [T], key: impl Fn(&'a T) -> &'a str) -> Option<&'a T> {
    const PAIRWISE: usize = 16;
    if items.len() <= PAIRWISE {
        return items
            .iter()
            .enumerate()
            .find(|(i, item)| items[..*i].iter().any(|earlier| key(earlier) == key(item)))
            .map(|(_, item)| item);
    }
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.iter().find(|item| !seen.insert(key(item)))
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
    fn check_ids_finds_a_repeat_among_few_lines_and_among_many() {
        for n in [2, 16, 17, 5_000] {
            let mut order = Order::new("SO-1");
            for i in 0..n {
                order.lines.push(OrderLine::new(format!("L{i}"), "Pen", 1));
            }
            assert!(order.check_ids().is_ok(), "{n} distinct lines");
            // The last line repeats the one in the middle.
            order
                .lines
                .push(OrderLine::new(format!("L{}", n / 2), "Pen", 1));
            assert_eq!(
                order.check_ids(),
                Err(DuplicateId::Line {
                    order: "SO-1".into(),
                    line: format!("L{}", n / 2).into(),
                }),
                "{n} lines and a repeat"
            );
        }
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
