//! Target `policy`: a policy document, then a NUL byte and bytes that generate orders; the
//! document is parsed and compiled, and a compiled policy is evaluated on the orders.

use orderflow::document::{Entity, Order, RecordMut, RecordRef};
use orderflow::policy::{ExecutionPolicy, FilterPolicy};
use orderflow::rules::{PolicyDocument, RulePolicy};

use crate::bytes::Bytes;
use crate::docgen;

/// The `policy` target. Never panics on any input; errors are expected.
pub fn policy(data: &[u8]) {
    let (doc, rest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(doc) else {
        return;
    };
    let document = match PolicyDocument::from_json(text) {
        Ok(d) => d,
        Err(e) => return trace!("policy: parse: {e}"),
    };
    // The JSON form is how stores keep policies: it must read back as the same policy.
    let again = PolicyDocument::from_json(&document.to_json());
    assert!(
        again.as_ref().is_ok_and(|a| a == &document),
        "policy JSON round trip changed the document:\n  read back: {again:?}\n  original:  {document:?}"
    );
    let policy = match document.compile() {
        Ok(p) => p,
        Err(e) => return trace!("policy: compile: {e}"),
    };
    assert_eq!(policy.name(), document.name);
    assert_eq!(policy.entity(), document.entity);
    let mut r = Bytes::new(rest);
    for _ in 0..4 {
        let mut order = docgen::order(&mut r, "SO-1");
        evaluate(&policy, &mut order);
        trace!("policy: evaluated on {order:?}");
        if r.is_empty() {
            break;
        }
    }
}

/// Runs the policy on every record of its entity, as the kind it is.
fn evaluate(policy: &RulePolicy, order: &mut Order) {
    match policy {
        RulePolicy::Filter(f) => filter(&**f, order),
        RulePolicy::Execution(p) => execute(&**p, order),
    }
}

/// `admits` twice on every record of the filter's entity: it must be a function of the
/// record.
fn filter(policy: &dyn FilterPolicy, order: &Order) {
    let twice = |record: RecordRef<'_>| {
        let a = policy.admits(record);
        assert_eq!(a, policy.admits(record));
    };
    match policy.entity() {
        Entity::Order => twice(RecordRef::Order(order)),
        Entity::OrderLine => {
            for l in &order.lines {
                twice(RecordRef::Line(order, l));
            }
        }
        Entity::FulfillmentOrder => {
            for fo in &order.fulfillment_orders {
                twice(RecordRef::FulfillmentOrder(order, fo));
            }
        }
        Entity::FulfillmentOrderLine => {
            for fo in &order.fulfillment_orders {
                for l in &fo.lines {
                    twice(RecordRef::FulfillmentOrderLine(order, fo, l));
                }
            }
        }
    }
}

/// `execute` on every record of the policy's entity.
fn execute(policy: &dyn ExecutionPolicy, order: &mut Order) {
    match policy.entity() {
        Entity::Order => {
            let _ = policy.execute(RecordMut::Order(order));
        }
        Entity::OrderLine => {
            for l in &mut order.lines {
                let _ = policy.execute(RecordMut::Line(l));
            }
        }
        Entity::FulfillmentOrder => {
            for fo in &mut order.fulfillment_orders {
                let _ = policy.execute(RecordMut::FulfillmentOrder(fo));
            }
        }
        Entity::FulfillmentOrderLine => {
            for fo in &mut order.fulfillment_orders {
                for l in &mut fo.lines {
                    let _ = policy.execute(RecordMut::FulfillmentOrderLine(l));
                }
            }
        }
    }
}
