//! The fields rules can read and set: stable names, types, and direct accessors.

use std::fmt;

use super::record::{Lit, Rec, Setter};
use super::row::{self, RowBuilder};
use crate::document::{Decimal, Entity, OrderType, RecordMut, State, StatusReason};

/// What a field holds, which decides the operators and values it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldType {
    /// Free text: every operator; ordering compares characters.
    Text,
    /// A number: every operator; values must be numbers.
    Number,
    /// A reference or option (a source, a country, a status): equality, lists and
    /// contains-data only; ordering operators are rejected.
    Lookup,
    /// An ISO 8601 date (`2026-12-01`): ordering compares dates.
    Date,
    /// A flag (custom attributes only): equality and contains-data.
    Flag,
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Lookup => "lookup",
            Self::Date => "date",
            Self::Flag => "flag",
        })
    }
}

/// A well-known field as rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldInfo {
    /// The stable name rules use.
    pub name: &'static str,
    /// The entity it belongs to.
    pub entity: Entity,
    /// Its type.
    pub ty: FieldType,
    /// Whether Set Value may change it (identifiers may not).
    pub settable: bool,
    /// Whether it may be empty (Set Value to `null` clears it).
    pub nullable: bool,
    /// The values an option field accepts; empty for any value.
    pub options: &'static [&'static str],
}

/// Every well-known field, by entity. Custom attributes are `custom.<name>` on any entity.
pub fn fields() -> impl Iterator<Item = &'static FieldInfo> {
    FIELDS.iter().map(|d| &d.info)
}

pub(crate) struct FieldDef {
    pub(crate) info: FieldInfo,
    /// Compiles a row on this field into a closure with the accessor inlined.
    pub(crate) row: RowBuilder,
    pub(crate) set: Option<Setter>,
}

/// The field of `entity` named `name`.
pub(crate) fn lookup(entity: Entity, name: &str) -> Option<&'static FieldDef> {
    FIELDS
        .iter()
        .find(|d| d.info.entity == entity && d.info.name == name)
}

fn opt(s: &Option<String>) -> Option<&str> {
    s.as_deref()
}

fn reason(r: &Option<StatusReason>) -> Option<&str> {
    r.as_ref().map(StatusReason::as_str)
}

fn state(s: State) -> Option<&'static str> {
    Some(match s {
        State::Active => "active",
        State::Inactive => "inactive",
    })
}

fn order_type(t: OrderType) -> Option<&'static str> {
    Some(match t {
        OrderType::SalesOrder => "sales_order",
        OrderType::Subscription => "subscription",
    })
}

const STATES: &[&str] = &["active", "inactive"];
const ORDER_TYPES: &[&str] = &["sales_order", "subscription"];

// Setters change a value only when it differs, so re-running a policy allocates nothing.

fn set_opt(slot: &mut Option<String>, v: Option<&Lit>) {
    match v {
        None => *slot = None,
        Some(Lit::Text(t)) if !slot.as_deref().is_some_and(|s| row::text_eq(s, t)) => {
            *slot = Some(t.to_string());
        }
        Some(_) => {}
    }
}

fn set_text(slot: &mut String, v: Option<&Lit>) {
    if let Some(Lit::Text(t)) = v {
        if !row::text_eq(slot, t) {
            *slot = t.to_string();
        }
    }
}

fn set_num(slot: &mut Decimal, v: Option<&Lit>) {
    if let Some(Lit::Number(n)) = v {
        *slot = *n;
    }
}

fn set_opt_num(slot: &mut Option<Decimal>, v: Option<&Lit>) {
    match v {
        None => *slot = None,
        Some(Lit::Number(n)) => *slot = Some(*n),
        Some(_) => {}
    }
}

fn set_reason(slot: &mut Option<StatusReason>, v: Option<&Lit>) {
    match v {
        None => *slot = None,
        Some(Lit::Text(t)) if slot.as_ref().map(StatusReason::as_str) != Some(&**t) => {
            *slot = Some(StatusReason::new(&**t));
        }
        Some(_) => {}
    }
}

fn set_state(slot: &mut State, v: Option<&Lit>) {
    match v {
        Some(Lit::Text(t)) if &**t == "active" => *slot = State::Active,
        Some(Lit::Text(t)) if &**t == "inactive" => *slot = State::Inactive,
        _ => {}
    }
}

fn set_order_type(slot: &mut OrderType, v: Option<&Lit>) {
    match v {
        Some(Lit::Text(t)) if &**t == "sales_order" => *slot = OrderType::SalesOrder,
        Some(Lit::Text(t)) if &**t == "subscription" => *slot = OrderType::Subscription,
        _ => {}
    }
}

/// The row builder of a table row: numbers read as numbers, everything else as text. The
/// accessor closure is a distinct type per field, so each row closure inlines it.
macro_rules! row {
    (Number, $variant:ident, |$r:ident| $get:expr) => {
        |op| {
            row::number(
                |rec: Rec<'_>| match rec {
                    Rec::$variant($r) => $get,
                    _ => None,
                },
                op,
            )
        }
    };
    ($ty:ident, $variant:ident, |$r:ident| $get:expr) => {
        |op| {
            row::text(
                |rec| match rec {
                    Rec::$variant($r) => $get,
                    _ => None,
                },
                op,
            )
        }
    };
}

/// One table row: `field!(Variant, "name", Type, nullable, options, |r| get, |r, v| set)`.
/// A `ro` row has no setter.
macro_rules! field {
    ($variant:ident, $entity:ident, $name:expr, $ty:ident, $nullable:expr, $options:expr,
     |$r:ident| $get:expr, |$w:ident, $v:ident| $set:expr) => {
        FieldDef {
            info: FieldInfo {
                name: $name,
                entity: Entity::$entity,
                ty: FieldType::$ty,
                settable: true,
                nullable: $nullable,
                options: $options,
            },
            row: row!($ty, $variant, |$r| $get),
            set: Some(|rec, $v| {
                if let RecordMut::$variant($w) = rec {
                    $set
                }
            }),
        }
    };
    (ro $variant:ident, $entity:ident, $name:expr, $ty:ident, |$r:ident| $get:expr) => {
        FieldDef {
            info: FieldInfo {
                name: $name,
                entity: Entity::$entity,
                ty: FieldType::$ty,
                settable: false,
                nullable: false,
                options: &[],
            },
            row: row!($ty, $variant, |$r| $get),
            set: None,
        }
    };
}

/// An optional text field of a document: `opt_field!(Variant, Entity, "name", Type, path)`.
macro_rules! opt_field {
    ($variant:ident, $entity:ident, $name:expr, $ty:ident, $($path:ident).+) => {
        field!($variant, $entity, $name, $ty, true, &[],
            |r| opt(&r.$($path).+), |w, v| set_opt(&mut w.$($path).+, v))
    };
}

static FIELDS: &[FieldDef] = &[
    // Order header.
    field!(ro Order, Order, "id", Text, |r| Some(r.id.as_str())),
    opt_field!(Order, Order, "order_number", Text, order_number),
    opt_field!(Order, Order, "external_order_id", Text, external_order_id),
    opt_field!(Order, Order, "order_source", Lookup, order_source),
    opt_field!(Order, Order, "customer", Lookup, customer),
    opt_field!(Order, Order, "currency", Lookup, currency),
    opt_field!(Order, Order, "ship_to.name", Text, ship_to.name),
    opt_field!(Order, Order, "ship_to.street", Text, ship_to.street),
    opt_field!(Order, Order, "ship_to.city", Text, ship_to.city),
    opt_field!(Order, Order, "ship_to.state", Text, ship_to.state),
    opt_field!(
        Order,
        Order,
        "ship_to.postal_code",
        Text,
        ship_to.postal_code
    ),
    opt_field!(Order, Order, "ship_to.country", Lookup, ship_to.country),
    opt_field!(Order, Order, "bill_to.name", Text, bill_to.name),
    opt_field!(Order, Order, "bill_to.street", Text, bill_to.street),
    opt_field!(Order, Order, "bill_to.city", Text, bill_to.city),
    opt_field!(Order, Order, "bill_to.state", Text, bill_to.state),
    opt_field!(
        Order,
        Order,
        "bill_to.postal_code",
        Text,
        bill_to.postal_code
    ),
    opt_field!(Order, Order, "bill_to.country", Lookup, bill_to.country),
    field!(
        Order,
        Order,
        "order_type",
        Lookup,
        false,
        ORDER_TYPES,
        |r| order_type(r.order_type),
        |w, v| set_order_type(&mut w.order_type, v)
    ),
    opt_field!(Order, Order, "company", Lookup, company),
    opt_field!(
        Order,
        Order,
        "fulfillment_strategy",
        Text,
        fulfillment_strategy
    ),
    field!(
        Order,
        Order,
        "state",
        Lookup,
        false,
        STATES,
        |r| state(r.state),
        |w, v| set_state(&mut w.state, v)
    ),
    field!(
        Order,
        Order,
        "status_reason",
        Lookup,
        true,
        &[],
        |r| reason(&r.status_reason),
        |w, v| set_reason(&mut w.status_reason, v)
    ),
    // Order line.
    field!(ro Line, OrderLine, "id", Text, |r| Some(r.id.as_str())),
    field!(
        Line,
        OrderLine,
        "product",
        Lookup,
        false,
        &[],
        |r| Some(&r.product),
        |w, v| set_text(&mut w.product, v)
    ),
    opt_field!(Line, OrderLine, "unit", Lookup, unit),
    field!(
        Line,
        OrderLine,
        "quantity",
        Number,
        false,
        &[],
        |r| Some(r.quantity),
        |w, v| set_num(&mut w.quantity, v)
    ),
    field!(
        Line,
        OrderLine,
        "price",
        Number,
        true,
        &[],
        |r| r.price,
        |w, v| set_opt_num(&mut w.price, v)
    ),
    opt_field!(
        Line,
        OrderLine,
        "fulfillment_source",
        Lookup,
        fulfillment_source
    ),
    opt_field!(
        Line,
        OrderLine,
        "shipping_warehouse",
        Lookup,
        shipping_warehouse
    ),
    opt_field!(Line, OrderLine, "split_group", Text, split_group),
    opt_field!(
        Line,
        OrderLine,
        "requested_delivery_date",
        Date,
        requested_delivery_date
    ),
    field!(
        Line,
        OrderLine,
        "state",
        Lookup,
        false,
        STATES,
        |r| state(r.state),
        |w, v| set_state(&mut w.state, v)
    ),
    field!(
        Line,
        OrderLine,
        "status_reason",
        Lookup,
        true,
        &[],
        |r| reason(&r.status_reason),
        |w, v| set_reason(&mut w.status_reason, v)
    ),
    // Fulfillment order.
    field!(ro FulfillmentOrder, FulfillmentOrder, "id", Text, |r| Some(r.id.as_str())),
    field!(
        FulfillmentOrder,
        FulfillmentOrder,
        "fulfillment_source",
        Lookup,
        false,
        &[],
        |r| Some(&r.fulfillment_source),
        |w, v| set_text(&mut w.fulfillment_source, v)
    ),
    field!(
        FulfillmentOrder,
        FulfillmentOrder,
        "state",
        Lookup,
        false,
        STATES,
        |r| state(r.state),
        |w, v| set_state(&mut w.state, v)
    ),
    field!(
        FulfillmentOrder,
        FulfillmentOrder,
        "status_reason",
        Lookup,
        true,
        &[],
        |r| reason(&r.status_reason),
        |w, v| set_reason(&mut w.status_reason, v)
    ),
    // Fulfillment order line.
    field!(ro FulfillmentOrderLine, FulfillmentOrderLine, "order_line", Lookup,
        |r| Some(r.order_line.as_str())),
    field!(
        FulfillmentOrderLine,
        FulfillmentOrderLine,
        "product",
        Lookup,
        false,
        &[],
        |r| Some(&r.product),
        |w, v| set_text(&mut w.product, v)
    ),
    field!(
        FulfillmentOrderLine,
        FulfillmentOrderLine,
        "quantity",
        Number,
        false,
        &[],
        |r| Some(r.quantity),
        |w, v| set_num(&mut w.quantity, v)
    ),
    field!(
        FulfillmentOrderLine,
        FulfillmentOrderLine,
        "state",
        Lookup,
        false,
        STATES,
        |r| state(r.state),
        |w, v| set_state(&mut w.state, v)
    ),
    field!(
        FulfillmentOrderLine,
        FulfillmentOrderLine,
        "status_reason",
        Lookup,
        true,
        &[],
        |r| reason(&r.status_reason),
        |w, v| set_reason(&mut w.status_reason, v)
    ),
];
