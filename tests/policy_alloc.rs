//! Evaluating compiled rule policies allocates nothing on the common paths: filters, checks
//! that pass, and Set Value that finds the value already set. Counted with a counting global
//! allocator, per thread.

use std::sync::Arc;

use orderflow::document::{
    Entity, FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine, RecordMut, RecordRef,
};
use orderflow::policy::{ExecutionPolicy, FilterPolicy, PolicyKind};
use orderflow::rules::{Condition, Operator, PolicyDocument, Rule, RuleExecution, RuleFilter};

fn compile_filter(doc: PolicyDocument) -> Arc<RuleFilter> {
    let policy = doc.compile().expect("the policy is valid");
    policy.into_filter().expect("a filter policy")
}

fn compile_execution(doc: PolicyDocument) -> Arc<RuleExecution> {
    let policy = doc.compile().expect("the policy is valid");
    policy.into_execution().expect("an execution policy")
}

fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn the_counter_counts() {
    // Guards against a vacuous pass: the allocator must be the counting one.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn filters_and_passing_checks_allocate_nothing() {
    let mut order = Order::new("SO-1")
        .with_ship_to_country("US")
        .with_custom("channel", "web")
        .with_line(OrderLine::new("1", "Pen", 150).with_fulfillment_source("Seattle store"))
        .with_line(OrderLine::new("2", "Dock", 10));
    let mut fo = FulfillmentOrder::new("SO-1-FO1", "Seattle store");
    fo.lines.push(FulfillmentOrderLine::new("1", "Pen", 150));
    order.fulfillment_orders.push(fo);

    let filter = compile_filter(
        PolicyDocument::new("Seattle", PolicyKind::Filter, Entity::FulfillmentOrder).with_rule(
            Rule::check(
                "Seattle",
                Condition::And(vec![
                    Condition::equals("fulfillment_source", "Seattle store"),
                    Condition::AnyLine(Box::new(Condition::compare(
                        "quantity",
                        Operator::GreaterThan,
                        100,
                    ))),
                ]),
            ),
        ),
    );
    let header = compile_execution(
        PolicyDocument::new("Header", PolicyKind::Execution, Entity::Order).with_rule(Rule::check(
            "US web orders with lines",
            Condition::And(vec![
                Condition::is_in("ship_to.country", ["US", "CA", "MX"]),
                Condition::equals("custom.channel", "web"),
                Condition::has_data("ship_to.country"),
                Condition::AllLines(Box::new(Condition::compare(
                    "quantity",
                    Operator::GreaterOrEqual,
                    5,
                ))),
                Condition::Or(vec![
                    Condition::equals("currency", "USD"),
                    Condition::row("currency", Operator::DoesNotContainData, None),
                ]),
            ]),
        )),
    );
    let assignment = compile_execution(
        PolicyDocument::new("Assign", PolicyKind::Execution, Entity::OrderLine)
            .with_rule(Rule::set(
                "Large",
                Condition::compare("quantity", Operator::GreaterOrEqual, 100),
                "fulfillment_source",
                "Seattle store",
            ))
            .with_rule(Rule::set(
                "Small",
                Condition::compare("quantity", Operator::LessThan, 100),
                "fulfillment_source",
                "Chicago store",
            )),
    );

    // The first run of the assignment sets line 2's source (one allocation, expected).
    for line in &mut order.lines {
        assert!(assignment.execute(RecordMut::Line(line)).passed());
    }

    let n = allocations(|| {
        for _ in 0..100 {
            let fo = &order.fulfillment_orders[0];
            assert!(filter.admits(RecordRef::FulfillmentOrder(&order, fo)));
            assert!(header.execute(RecordMut::Order(&mut order)).passed());
            for line in &mut order.lines {
                assert!(assignment.execute(RecordMut::Line(line)).passed());
            }
        }
    });
    assert_eq!(n, 0, "evaluation allocated {n} times");

    // A record the filter turns away allocates nothing either.
    order.fulfillment_orders[0].fulfillment_source = "Chicago store".into();
    let n = allocations(|| {
        let fo = &order.fulfillment_orders[0];
        assert!(!filter.admits(RecordRef::FulfillmentOrder(&order, fo)));
    });
    assert_eq!(n, 0);
}
