//! Order documents generated from fuzz bytes, on the values the example policies and flows
//! test (countries, sources, quantities around their thresholds, custom attributes).

use orderflow::document::{
    Decimal, FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine, OrderType, State,
    StatusReason, Value,
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

/// A quantity, price or custom number: values around the example policies' thresholds,
/// fractions, and the extremes of a decimal (its largest and smallest, 28 places, any
/// digits), where sums overflow.
pub(crate) fn number(r: &mut Bytes<'_>) -> Decimal {
    const TABLE: [(i64, u32); 12] = [
        (0, 0),
        (1, 0),
        (4, 0),
        (5, 0),
        (10, 0),
        (99, 0),
        (100, 0),
        (150, 0),
        (-1, 0),
        (5, 1),
        (1_000_000_000_000_000, 0),
        (3, 1),
    ];
    match r.below(16) {
        i @ 0..=11 => Decimal::new(TABLE[i].0, TABLE[i].1),
        12 => Decimal::from(r.u16()),
        13 => Decimal::MAX,
        14 => Decimal::MIN,
        15 => {
            // Any 64 bits of digits at any scale a decimal takes.
            let digits = i128::from(r.u64() as i64);
            let scale = r.below(29) as u32;
            Decimal::from_i128_with_scale(digits, scale)
        }
        _ => Decimal::new(1, 28),
    }
}

fn value(r: &mut Bytes<'_>) -> Value {
    match r.below(4) {
        0 => Value::Null,
        1 => Value::Bool(r.bool()),
        2 => Value::Number(number(r)),
        _ => Value::Text((*r.pick(TEXTS)).to_owned()),
    }
}

fn custom(r: &mut Bytes<'_>) -> orderflow::document::Attributes {
    let mut attrs = orderflow::document::Attributes::new();
    for _ in 0..r.below(3) {
        let name = (*r.pick(ATTRS)).to_owned();
        attrs.insert(name, value(r));
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
pub(crate) fn order(r: &mut Bytes<'_>, id: &str) -> Order {
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
    o.custom = custom(r);
    for _ in 0..r.below(5) {
        let mut line = OrderLine::new(*r.pick(LINE_IDS), *r.pick(PRODUCTS), number(r));
        line.fulfillment_source = r.opt(SOURCES);
        if r.bool() {
            line.unit = r.opt(&["ea", ""]);
            line.price = r.bool().then(|| number(r));
            line.shipping_warehouse = r.opt(&["WH-1", ""]);
            line.split_group = r.opt(&["A", "B"]);
            line.requested_delivery_date = r.opt(DATES);
            line.state = state(r);
            line.status_reason = reason(r);
            line.custom = custom(r);
        }
        o.lines.push(line);
    }
    for _ in 0..r.below(3) {
        let mut fo = FulfillmentOrder::new(*r.pick(FO_IDS), *r.pick(SOURCES));
        fo.state = state(r);
        fo.status_reason = reason(r);
        fo.custom = custom(r);
        for _ in 0..r.below(3) {
            let mut l = FulfillmentOrderLine::new(*r.pick(LINE_IDS), *r.pick(PRODUCTS), number(r));
            l.state = state(r);
            l.status_reason = reason(r);
            l.custom = custom(r);
            fo.lines.push(l);
        }
        o.fulfillment_orders.push(fo);
    }
    o
}
