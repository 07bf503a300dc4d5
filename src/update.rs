//! Order corrections: what [`Engine::update_order`](crate::Engine::update_order) changes.
//!
//! A host corrects an order's data while it is being orchestrated — a ship-to country that
//! failed validation, a line quantity, a fulfillment source, a custom attribute a later step
//! reads — with an [`OrderUpdate`]: either a whole new document ([`OrderUpdate::Replace`]) or
//! an [`OrderPatch`] of well-known and custom fields. Then it
//! [`reprocess`](crate::Engine::reprocess)es the failed execution, whose failed step runs
//! again with the corrected data.
//!
//! What an update means, in one place:
//!
//! - **Between steps, under the order's lock.** An update waits for a turn in progress on the
//!   order (a provider call in flight) to end, and a step whose provider call a turn left
//!   committed as under way (a dropped future, a crash) is finished first, with the document
//!   it started with. No step ever sees the document change under it.
//! - **Every path sees it from its next step on**: waiting paths when their event comes, a
//!   failed path when it is reprocessed, a retrying path at its next attempt. Paths that
//!   carry a selection of lines or fulfillment orders keep carrying those ids: a record the
//!   update removes drops out of their selection, and one it adds is carried only by paths
//!   that carry all records (those no filter narrowed).
//! - **On the timeline** as an "Order updated" event ([`EventKind::ORDER_UPDATED`]) with the
//!   id the caller gives: an id the order has seen is accepted and ignored, like any event's,
//!   so a host may retry an update safely. Flows may list "Order updated" as an input event
//!   (a re-validation flow, a step that waits for a correction); the update starts and
//!   resumes them as any event does.
//! - **Checked as intake checks a new order**: the document keeps the order's id, names each
//!   record once ([`Order::check_ids`]) and fits the engine's
//!   [`Limits`](crate::limits::Limits); a patch names only lines the order has. A refused
//!   update changes nothing.
//! - A replacement is the whole truth: what flows set on the order (status reasons,
//!   fulfillment orders) is replaced too. Read the order ([`Engine::order`]), change it and
//!   send it back, or send a patch, which changes only the fields it names.
//!
//! An event that brings a document for an order the engine already knows is not an update:
//! its document is ignored (see [`Event::document`](crate::Event::document)).
//!
//! ```
//! use orderflow::document::{Address, Decimal};
//! use orderflow::{OrderPatch, StatusReason};
//!
//! let patch = OrderPatch::new()
//!     .ship_to(Address { country: Some("US".into()), ..Address::default() })
//!     .custom("gift_wrap", true)
//!     .line_quantity("1", Decimal::new(25, 1))
//!     .line_fulfillment_source("1", "Chicago store");
//! let json = serde_json::to_string(&patch).unwrap();
//! assert_eq!(
//!     json,
//!     r#"{"ship_to":{"country":"US"},"custom":{"gift_wrap":true},"lines":{"1":{"quantity":"2.5","fulfillment_source":"Chicago store"}}}"#
//! );
//! assert_eq!(serde_json::from_str::<OrderPatch>(&json).unwrap(), patch);
//! assert!(serde_json::from_str::<OrderPatch>(r#"{"id": "SO-2"}"#).is_err(), "the id cannot change");
//! ```
//!
//! [`EventKind::ORDER_UPDATED`]: crate::EventKind::ORDER_UPDATED
//! [`Order::check_ids`]: crate::Order::check_ids
//! [`Engine::order`]: crate::Engine::order

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::document::{Address, Attributes, Decimal, LineId, Order, StatusReason, Value};

/// A correction of an order: a whole new document, or a patch of some fields. See the
/// [module docs](self) for what an update means to running executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrderUpdate {
    /// Replaces the document (lines, fulfillment orders and status reasons included); its
    /// id must be the order's.
    Replace(Box<Order>),
    /// Changes the fields the patch names.
    Patch(Box<OrderPatch>),
}

impl From<Order> for OrderUpdate {
    fn from(order: Order) -> Self {
        Self::Replace(Box::new(order))
    }
}

impl From<OrderPatch> for OrderUpdate {
    fn from(patch: OrderPatch) -> Self {
        Self::Patch(Box::new(patch))
    }
}

impl OrderUpdate {
    /// The document after the update, or why the update does not apply to `current`.
    /// Checks only what the update itself names (the id of a replacement, the lines a
    /// patch names); the engine checks the result as it checks a new order.
    pub(crate) fn apply(self, current: &Order) -> Result<Order, String> {
        match self {
            Self::Replace(order) => {
                if order.id != current.id {
                    return Err(format!(
                        "the document is of order '{}': an order's id cannot change",
                        order.id
                    ));
                }
                Ok(*order)
            }
            Self::Patch(patch) => patch.apply(current.clone()),
        }
    }
}

/// Changes to some fields of an order: the ship-to and bill-to addresses, the status
/// reason, custom attributes, and per line (by id) its quantity, fulfillment source, status
/// reason and custom attributes. Fields it does not name stay as they are; the order's id
/// and its set of lines never change through a patch (replace the document for that).
///
/// In JSON, every field is optional: `{"ship_to": {…}, "bill_to": {…}, "status_reason":
/// "…", "custom": {"name": value}, "lines": {"<line id>": {"quantity": "2.5",
/// "fulfillment_source": "…", "status_reason": "…", "custom": {…}}}}`; unknown fields are
/// refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ship_to: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bill_to: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_reason: Option<StatusReason>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    custom: Attributes,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    lines: IndexMap<LineId, LinePatch>,
}

/// Changes to one order line, inside an [`OrderPatch`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinePatch {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::number::option"
    )]
    quantity: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fulfillment_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status_reason: Option<StatusReason>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    custom: Attributes,
}

impl OrderPatch {
    /// A patch that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Sets the ship-to address (the whole address).
    pub fn ship_to(mut self, address: Address) -> Self {
        self.ship_to = Some(address);
        self
    }

    /// Sets the bill-to address (the whole address).
    pub fn bill_to(mut self, address: Address) -> Self {
        self.bill_to = Some(address);
        self
    }

    /// Sets the order's status reason.
    pub fn status_reason(mut self, reason: StatusReason) -> Self {
        self.status_reason = Some(reason);
        self
    }

    /// Sets a custom attribute of the order (added if the order has none of that name).
    pub fn custom(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.custom.insert(name.into(), value.into());
        self
    }

    fn line(&mut self, line: impl Into<LineId>) -> &mut LinePatch {
        self.lines.entry(line.into()).or_default()
    }

    /// Sets the quantity of the line with this id.
    pub fn line_quantity(mut self, line: impl Into<LineId>, quantity: impl Into<Decimal>) -> Self {
        self.line(line).quantity = Some(quantity.into());
        self
    }

    /// Sets the fulfillment source of the line with this id.
    pub fn line_fulfillment_source(
        mut self,
        line: impl Into<LineId>,
        source: impl Into<String>,
    ) -> Self {
        self.line(line).fulfillment_source = Some(source.into());
        self
    }

    /// Sets the status reason of the line with this id.
    pub fn line_status_reason(mut self, line: impl Into<LineId>, reason: StatusReason) -> Self {
        self.line(line).status_reason = Some(reason);
        self
    }

    /// Sets a custom attribute of the line with this id.
    pub fn line_custom(
        mut self,
        line: impl Into<LineId>,
        name: impl Into<String>,
        value: impl Into<Value>,
    ) -> Self {
        self.line(line).custom.insert(name.into(), value.into());
        self
    }

    /// The order with the patch applied, or the first line it names that the order lacks.
    fn apply(self, mut order: Order) -> Result<Order, String> {
        if let Some(missing) = self
            .lines
            .keys()
            .find(|id| order.line(id.as_str()).is_none())
        {
            return Err(format!(
                "the patch names line '{missing}', which order '{}' does not have",
                order.id
            ));
        }
        if let Some(address) = self.ship_to {
            order.ship_to = address;
        }
        if let Some(address) = self.bill_to {
            order.bill_to = address;
        }
        if let Some(reason) = self.status_reason {
            order.status_reason = Some(reason);
        }
        order.custom.extend(self.custom);
        for (id, patch) in self.lines {
            // Checked above: every line named is there.
            let Some(line) = order.lines.iter_mut().find(|l| l.id == id) else {
                continue;
            };
            if let Some(quantity) = patch.quantity {
                line.quantity = quantity;
            }
            if let Some(source) = patch.fulfillment_source {
                line.fulfillment_source = Some(source);
            }
            if let Some(reason) = patch.status_reason {
                line.status_reason = Some(reason);
            }
            line.custom.extend(patch.custom);
        }
        Ok(order)
    }
}

#[cfg(test)]
mod tests {
    use super::{OrderPatch, OrderUpdate};
    use crate::document::{Decimal, Order, OrderLine, StatusReason, Value};

    fn order() -> Order {
        Order::new("SO-1")
            .with_ship_to_country("CA")
            .with_custom("keep", 1)
            .with_line(OrderLine::new("1", "Pen", 3))
            .with_line(OrderLine::new("2", "Ink", 1))
    }

    #[test]
    fn a_patch_changes_what_it_names_and_nothing_else() {
        let patch = OrderPatch::new()
            .custom("gift", true)
            .line_quantity("2", Decimal::new(5, 1))
            .line_fulfillment_source("2", "Chicago")
            .line_status_reason("2", StatusReason::BACKORDER_HOLD)
            .line_custom("2", "note", "fragile");
        assert!(!patch.is_empty());
        let before = order();
        let after = OrderUpdate::from(patch).apply(&before).unwrap();
        assert_eq!(after.ship_to, before.ship_to);
        assert_eq!(after.custom.get("keep"), Some(&Value::from(1)));
        assert_eq!(after.custom.get("gift"), Some(&Value::Bool(true)));
        assert_eq!(after.lines[0], before.lines[0]);
        let line = &after.lines[1];
        assert_eq!(line.quantity.to_string(), "0.5");
        assert_eq!(line.fulfillment_source.as_deref(), Some("Chicago"));
        assert_eq!(line.status_reason, Some(StatusReason::BACKORDER_HOLD));
        assert_eq!(line.custom.get("note"), Some(&Value::from("fragile")));
    }

    #[test]
    fn a_patch_naming_a_missing_line_or_a_document_of_another_order_is_refused() {
        let e = OrderUpdate::from(OrderPatch::new().line_quantity("9", 1))
            .apply(&order())
            .unwrap_err();
        assert_eq!(
            e,
            "the patch names line '9', which order 'SO-1' does not have"
        );
        let e = OrderUpdate::from(Order::new("SO-2"))
            .apply(&order())
            .unwrap_err();
        assert!(e.contains("cannot change"), "{e}");
        assert!(OrderPatch::new().is_empty());
    }
}
