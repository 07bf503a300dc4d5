//! Target `policy`: a policy document, then a NUL byte and bytes that generate orders; the
//! document is parsed and compiled, and a compiled policy is evaluated on the orders.

use orderflow::Policy;
use orderflow::document::{Entity, Order, RecordMut, RecordRef};
use orderflow::rules::PolicyDocument;

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

/// Runs the policy on every record of its entity: `admits` twice (it must be a function of
/// the record), then `execute`.
fn evaluate(policy: &impl Policy, order: &mut Order) {
    match policy.entity() {
        Entity::Order => {
            let a = policy.admits(RecordRef::Order(order));
            assert_eq!(a, policy.admits(RecordRef::Order(order)));
            let _ = policy.execute(RecordMut::Order(order));
        }
        Entity::OrderLine => {
            for i in 0..order.lines.len() {
                let a = policy.admits(RecordRef::Line(order, &order.lines[i]));
                assert_eq!(a, policy.admits(RecordRef::Line(order, &order.lines[i])));
                let _ = policy.execute(RecordMut::Line(&mut order.lines[i]));
            }
        }
        Entity::FulfillmentOrder => {
            for i in 0..order.fulfillment_orders.len() {
                let fo = &order.fulfillment_orders[i];
                let a = policy.admits(RecordRef::FulfillmentOrder(order, fo));
                assert_eq!(a, policy.admits(RecordRef::FulfillmentOrder(order, fo)));
                let _ = policy.execute(RecordMut::FulfillmentOrder(
                    &mut order.fulfillment_orders[i],
                ));
            }
        }
        Entity::FulfillmentOrderLine => {
            for i in 0..order.fulfillment_orders.len() {
                for j in 0..order.fulfillment_orders[i].lines.len() {
                    let fo = &order.fulfillment_orders[i];
                    let l = &fo.lines[j];
                    let a = policy.admits(RecordRef::FulfillmentOrderLine(order, fo, l));
                    assert_eq!(
                        a,
                        policy.admits(RecordRef::FulfillmentOrderLine(order, fo, l))
                    );
                    let _ = policy.execute(RecordMut::FulfillmentOrderLine(
                        &mut order.fulfillment_orders[i].lines[j],
                    ));
                }
            }
        }
    }
}
