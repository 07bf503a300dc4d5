//! Rule policies against the same rules written as plain Rust closures, in the same run:
//! the reference lab's line check and source assignment, its store filter, and a compound
//! header check (and/or, `in`, a custom attribute, all lines).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::Decimal;
use orderflow::document::{
    Entity, FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine, RecordMut, RecordRef, Value,
};
use orderflow::policy::{
    Check, Criticality, ExecutionPolicy, FilterPolicy, execution_fn, filter_fn,
};
use orderflow::rules::PolicyDocument;

const POLICIES: &str = include_str!("../examples/reference-lab/policies.json");

const HEADER: &str = r#"{
  "name": "Header", "type": "execution", "entity": "order",
  "rules": [ { "name": "Deliverable", "condition": { "and": [
    { "field": "ship_to.country", "operator": "in", "value": ["US", "CA", "MX"] },
    { "field": "custom.channel", "operator": "equals", "value": "web" },
    { "all_lines": { "field": "quantity", "operator": ">=", "value": 5 } },
    { "or": [
      { "field": "currency", "operator": "equals", "value": "USD" },
      { "field": "currency", "operator": "does_not_contain_data" } ] } ] } } ]
}"#;

fn order() -> Order {
    let mut order = Order::new("SO-1")
        .with_ship_to_country("US")
        .with_custom("channel", "web");
    for (i, q) in [150, 10, 40, 7].into_iter().enumerate() {
        order = order.with_line(OrderLine::new((i + 1).to_string(), "Surface Pen", q));
    }
    let mut fo = FulfillmentOrder::new("SO-1-FO1", "Chicago store");
    fo.lines
        .push(FulfillmentOrderLine::new("2", "Surface Pen", 10));
    order.fulfillment_orders.push(fo);
    order
}

fn rule(name: &str) -> orderflow::RulePolicy {
    PolicyDocument::list_from_json(POLICIES)
        .unwrap()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .compile()
        .unwrap()
}

/// Runs an execution policy on every line of the order.
fn on_lines(policy: &dyn ExecutionPolicy, order: &mut Order) -> usize {
    let mut passed = 0;
    for line in &mut order.lines {
        passed += usize::from(policy.execute(RecordMut::Line(line)).passed());
    }
    passed
}

fn bench(c: &mut Criterion) {
    let mut order = order();

    let mut group = c.benchmark_group("policy/line_check");
    let rule_check = rule("Quantity at least 5").into_execution().unwrap();
    let closure_check = execution_fn(
        "Quantity at least 5",
        Entity::OrderLine,
        Criticality::Critical,
        |r| match r {
            RecordMut::Line(l) if l.quantity >= Decimal::from(5) => Check::Passed,
            _ => Check::failed("quantity is below 5"),
        },
    );
    group.bench_function("rule", |b| {
        b.iter(|| on_lines(black_box(&rule_check), &mut order));
    });
    group.bench_function("closure", |b| {
        b.iter(|| on_lines(black_box(&closure_check), &mut order));
    });
    group.finish();

    let mut group = c.benchmark_group("policy/assignment");
    let rule_assign = rule("Fulfillment source assignment")
        .into_execution()
        .unwrap();
    let closure_assign = execution_fn(
        "Fulfillment source assignment",
        Entity::OrderLine,
        Criticality::Information,
        |r| {
            if let RecordMut::Line(l) = r {
                let source = if l.quantity >= Decimal::from(100) {
                    "Seattle store"
                } else {
                    "Chicago store"
                };
                if l.fulfillment_source.as_deref() != Some(source) {
                    l.fulfillment_source = Some(source.to_owned());
                }
            }
            Check::Passed
        },
    );
    group.bench_function("rule", |b| {
        b.iter(|| on_lines(black_box(&rule_assign), &mut order));
    });
    group.bench_function("closure", |b| {
        b.iter(|| on_lines(black_box(&closure_assign), &mut order));
    });
    group.finish();

    let mut group = c.benchmark_group("policy/filter");
    let rule_filter = rule("Chicago store").into_filter().unwrap();
    let closure_filter = filter_fn(
        "Chicago store",
        Entity::FulfillmentOrder,
        |r| matches!(r, RecordRef::FulfillmentOrder(_, f) if f.fulfillment_source == "Chicago store"),
    );
    let admits = |p: &dyn FilterPolicy, o: &Order| {
        p.admits(RecordRef::FulfillmentOrder(o, &o.fulfillment_orders[0]))
    };
    group.bench_function("rule", |b| {
        b.iter(|| admits(black_box(&rule_filter), &order));
    });
    group.bench_function("closure", |b| {
        b.iter(|| admits(black_box(&closure_filter), &order));
    });
    group.finish();

    let mut group = c.benchmark_group("policy/compound_header");
    let rule_header = PolicyDocument::from_json(HEADER)
        .unwrap()
        .compile()
        .unwrap()
        .into_execution()
        .unwrap();
    let closure_header = execution_fn("Header", Entity::Order, Criticality::Critical, |r| {
        let RecordMut::Order(o) = r else {
            return Check::Passed;
        };
        let holds = matches!(o.ship_to.country.as_deref(), Some("US" | "CA" | "MX"))
            && matches!(o.custom.get("channel"), Some(Value::Text(t)) if t == "web")
            && o.lines.iter().all(|l| l.quantity >= Decimal::from(5))
            && (o.currency.as_deref() == Some("USD")
                || o.currency.as_deref().is_none_or(str::is_empty));
        if holds {
            Check::Passed
        } else {
            Check::failed("rule 'Deliverable' does not hold")
        }
    });
    group.bench_function("rule", |b| {
        b.iter(|| {
            black_box(&rule_header)
                .execute(RecordMut::Order(&mut order))
                .passed()
        });
    });
    group.bench_function("closure", |b| {
        b.iter(|| {
            black_box(&closure_header)
                .execute(RecordMut::Order(&mut order))
                .passed()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
