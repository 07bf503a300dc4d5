//! Order documents generated from fuzz bytes, on the values the example policies and flows
//! test (countries, sources, quantities around their thresholds, custom attributes).

use orderflow::document::{
    FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine, OrderType, State, StatusReason, Value,
};

use crate::bytes::Bytes;

pub(crate) const COUNTRIES: &[&str] = &["US", "CA", "GB", "", "us"];
pub(crate) const SOURCES: &[&str] = &[
    "BigCommerce",
    "Orderful",
    "Seattle store",
    "Chicago store",
    "",
];
const REASONS: &[&str] = &["Sent To Fulfillment", "Validated", "On hold", ""];
const DATES: &[&str] = &["2026-12-01", "2026-01-31", "2026-02-30", "", "not a date"];
const ATTRS: &[&str] = &["priority", "rush", "tier", "fail", ""];
const TEXTS: &[&str] = &["high", "low", "", "US", "Seattle store", "2026-12-01"];
const PRODUCTS: &[&str] = &["Surface Pen", "Surface Laptop", ""];
const LINE_IDS: &[&str] = &["1", "2", "3", "4"];
const FO_IDS: &[&str] = &["FO-1", "FO-2", "FO-3"];

/// Whether generated numbers may be NaN or infinite (rule evaluation) or only finite
/// (documents submitted to an engine, as JSON would bring them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbers {
    Any,
    Finite,
}

pub(crate) fn number(r: &mut Bytes<'_>, numbers: Numbers) -> f64 {
    const TABLE: [f64; 12] = [
        0.0, 1.0, 4.0, 5.0, 10.0, 99.0, 100.0, 150.0, -1.0, 0.5, 1e15, -0.0,
    ];
    match r.below(16) {
        i @ 0..=11 => TABLE[i],
        12 => f64::from(r.u16()),
        13 if numbers == Numbers::Any => f64::NAN,
        14 if numbers == Numbers::Any => f64::INFINITY,
        15 if numbers == Numbers::Any => f64::from_bits(r.u64()),
        _ => f64::MAX,
    }
}

fn value(r: &mut Bytes<'_>, numbers: Numbers) -> Value {
    match r.below(4) {
        0 => Value::Null,
        1 => Value::Bool(r.bool()),
        2 => Value::Number(number(r, numbers)),
        _ => Value::Text((*r.pick(TEXTS)).to_owned()),
    }
}

fn custom(r: &mut Bytes<'_>, numbers: Numbers) -> orderflow::document::Attributes {
    let mut attrs = orderflow::document::Attributes::new();
    for _ in 0..r.below(3) {
        let name = (*r.pick(ATTRS)).to_owned();
        attrs.insert(name, value(r, numbers));
    }
    attrs
}

fn state(r: &mut Bytes<'_>) -> State {
    if r.below(4) == 0 {
        State::Inactive
    } else {
        State::Active
    }
}

fn reason(r: &mut Bytes<'_>) -> Option<StatusReason> {
    r.opt(REASONS).map(StatusReason::new)
}

/// An order with id `id`: header fields, up to four lines and up to two fulfillment orders.
pub(crate) fn order(r: &mut Bytes<'_>, id: &str, numbers: Numbers) -> Order {
    let mut o = Order::new(id);
    o.order_source = r.opt(SOURCES);
    o.ship_to.country = r.opt(COUNTRIES);
    if r.bool() {
        o.bill_to.country = r.opt(COUNTRIES);
        o.ship_to.city = r.opt(&["Seattle", "Chicago", ""]);
        o.customer = r.opt(&["C-1", ""]);
        o.currency = r.opt(&["USD", "EUR"]);
        o.company = r.opt(&["USMF", ""]);
        o.fulfillment_strategy = r.opt(&["ship complete", "nearest"]);
        o.order_number = r.opt(&["SO-1", ""]);
        o.external_order_id = r.opt(&["X-1"]);
    }
    if r.below(4) == 0 {
        o.order_type = OrderType::Subscription;
    }
    o.state = state(r);
    o.status_reason = reason(r);
    o.custom = custom(r, numbers);
    for _ in 0..r.below(5) {
        let mut line = OrderLine::new(*r.pick(LINE_IDS), *r.pick(PRODUCTS), number(r, numbers));
        line.fulfillment_source = r.opt(SOURCES);
        if r.bool() {
            line.unit = r.opt(&["ea", ""]);
            line.price = r.bool().then(|| number(r, numbers));
            line.shipping_warehouse = r.opt(&["WH-1", ""]);
            line.split_group = r.opt(&["A", "B"]);
            line.requested_delivery_date = r.opt(DATES);
            line.state = state(r);
            line.status_reason = reason(r);
            line.custom = custom(r, numbers);
        }
        o.lines.push(line);
    }
    for _ in 0..r.below(3) {
        let mut fo = FulfillmentOrder::new(*r.pick(FO_IDS), *r.pick(SOURCES));
        fo.state = state(r);
        fo.status_reason = reason(r);
        fo.custom = custom(r, numbers);
        for _ in 0..r.below(3) {
            let mut l =
                FulfillmentOrderLine::new(*r.pick(LINE_IDS), *r.pick(PRODUCTS), number(r, numbers));
            l.state = state(r);
            l.status_reason = reason(r);
            l.custom = custom(r, numbers);
            fo.lines.push(l);
        }
        o.fulfillment_orders.push(fo);
    }
    o
}
