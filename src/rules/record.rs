//! A record as compiled rules read and set it, and the values they compare.

use crate::document::{
    Attributes, Decimal, FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine, RecordMut,
    RecordRef, Value,
};

/// A field's value as read, borrowed from the record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Missing,
    Text(&'a str),
    Number(Decimal),
    Bool(bool),
}

/// A checked literal of a compiled rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Text(Box<str>),
    Number(Decimal),
    Bool(bool),
}

/// A record being read, at the entity the compiled condition expects.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rec<'a> {
    Order(&'a Order),
    Line(&'a OrderLine),
    FulfillmentOrder(&'a FulfillmentOrder),
    FulfillmentOrderLine(&'a FulfillmentOrderLine),
}

impl<'a> Rec<'a> {
    pub(crate) fn of(record: RecordRef<'a>) -> Self {
        match record {
            RecordRef::Order(o) => Self::Order(o),
            RecordRef::Line(_, l) => Self::Line(l),
            RecordRef::FulfillmentOrder(_, f) => Self::FulfillmentOrder(f),
            RecordRef::FulfillmentOrderLine(_, _, l) => Self::FulfillmentOrderLine(l),
        }
    }

    pub(crate) fn of_mut(record: &'a RecordMut<'_>) -> Self {
        match record {
            RecordMut::Order(o) => Self::Order(o),
            RecordMut::Line(l) => Self::Line(l),
            RecordMut::FulfillmentOrder(f) => Self::FulfillmentOrder(f),
            RecordMut::FulfillmentOrderLine(l) => Self::FulfillmentOrderLine(l),
        }
    }

    pub(crate) fn custom(self) -> &'a Attributes {
        match self {
            Self::Order(o) => &o.custom,
            Self::Line(l) => &l.custom,
            Self::FulfillmentOrder(f) => &f.custom,
            Self::FulfillmentOrderLine(l) => &l.custom,
        }
    }
}

pub(crate) fn custom_mut<'r>(record: &'r mut RecordMut<'_>) -> &'r mut Attributes {
    match record {
        RecordMut::Order(o) => &mut o.custom,
        RecordMut::Line(l) => &mut l.custom,
        RecordMut::FulfillmentOrder(f) => &mut f.custom,
        RecordMut::FulfillmentOrderLine(l) => &mut l.custom,
    }
}

pub(crate) fn value_scalar(v: &Value) -> Scalar<'_> {
    match v {
        Value::Null => Scalar::Missing,
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => Scalar::Number(*n),
        Value::Text(t) => Scalar::Text(t),
    }
}

/// Sets a well-known field to a checked literal, or clears it.
pub(crate) type Setter = fn(&mut RecordMut<'_>, Option<&Lit>);
