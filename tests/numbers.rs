//! Exact numbers: quantities, prices and document numbers are decimals. Fractional plans add
//! up exactly, documents written by earlier versions (JSON numbers) read as the decimals
//! their text says, every stored document reads back equal, and no NaN or infinity gets in.

use std::time::Duration;

use orderflow::clock::{ManualClock, Timestamp};
use orderflow::document::{FulfillmentOrder, FulfillmentOrderLine, Order, OrderLine, Value};
use orderflow::engine::Config;
use orderflow::execution::OrderState;
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::policy::ExecutionPolicy;
use orderflow::provider::{Allocation, FulfillmentPlan, PlannedLine};
use orderflow::rules::PolicyDocument;
use orderflow::store::{ChangeSet, MemoryStore, Store};
use orderflow::testing::provider::ScriptedProvider;
use orderflow::{ActionKind, Decimal, Engine, ErrorKind, Event, EventKind, Outcome};
use proptest::prelude::*;
use rust_decimal_macros::dec;

/// An engine on the memory store whose one flow sends each new order to fulfillment
/// determination at `dom`.
async fn dom_engine(dom: ScriptedProvider) -> Engine {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .clock(ManualClock::new(Timestamp::from_millis(0)))
        .provider(dom)
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Source")
        .steps(|s| {
            s.action(
                ActionStep::new("DOM", ActionKind::SendToDom)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("DOM"),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Source").await.unwrap();
    engine
}

fn dom(plan: FulfillmentPlan) -> ScriptedProvider {
    ScriptedProvider::new("DOM", ManualClock::new(Timestamp::from_millis(0)))
        .planning(move |_| plan.clone())
}

fn one_line_plan(allocations: Vec<Allocation>) -> FulfillmentPlan {
    FulfillmentPlan {
        lines: vec![PlannedLine {
            line: "1".into(),
            allocations,
        }],
    }
}

#[tokio::test]
async fn a_fractional_line_planned_across_two_sources_is_fully_allocated() {
    // What a double would make of it: 0.1 + 0.2 is 0.30000000000000004, above the line's
    // 0.3, and the plan would be refused as an over-allocation.
    assert!(std::hint::black_box(0.1_f64) + 0.2 > 0.3);
    // The DOM's reply as it comes over the wire, in JSON numbers.
    let plan: FulfillmentPlan = serde_json::from_str(
        r#"{"lines": [{"line": "1", "allocations": [
            {"source": "East", "quantity": 0.1}, {"source": "West", "quantity": 0.2}]}]}"#,
    )
    .unwrap();
    let engine = dom_engine(dom(plan)).await;
    let order = Order::new("SO-KG").with_line(OrderLine::new("1", "Coffee (kg)", dec!(0.3)));
    engine.submit(Event::new_order(order)).await.unwrap();

    let journey = engine.journey("SO-KG").await.unwrap();
    assert_eq!(
        journey.outcome("DOM"),
        Some(Outcome::Succeeded),
        "{journey}"
    );
    let details = journey.step("DOM").last().unwrap().details.join(" | ");
    assert!(!details.contains("partially"), "{details}");
    let order = engine.order("SO-KG").await.unwrap().unwrap();
    assert_eq!(order.lines[0].status_reason, None, "not on Backorder Hold");
    assert_eq!(order.fulfillment_orders.len(), 2);
    let shipped: Vec<String> = order
        .fulfillment_orders
        .iter()
        .flat_map(|f| &f.lines)
        .map(|l| l.quantity.to_string())
        .collect();
    assert_eq!(shipped, ["0.1", "0.2"]);
    let total: Decimal = order
        .fulfillment_orders
        .iter()
        .flat_map(|f| &f.lines)
        .map(|l| l.quantity)
        .sum();
    assert_eq!(total, order.lines[0].quantity);
    assert_eq!(total.to_string(), "0.3");
}

#[tokio::test]
async fn the_least_over_allocation_is_refused() {
    // One unit in the 28th place too many: exact sums see it.
    let plan = one_line_plan(vec![
        Allocation::new("East", dec!(0.1)),
        Allocation::new("West", dec!(0.2000000000000000000000000001)),
    ]);
    let engine = dom_engine(dom(plan)).await;
    let order = Order::new("SO-OVER").with_line(OrderLine::new("1", "Coffee (kg)", dec!(0.3)));
    engine.submit(Event::new_order(order)).await.unwrap();
    let journey = engine.journey("SO-OVER").await.unwrap();
    assert_eq!(journey.outcome("DOM"), Some(Outcome::Failed), "{journey}");
    let details = journey.step("DOM").last().unwrap().details.join(" | ");
    assert!(
        details.contains("allocates 0.3000000000000000000000000001 to line 1 of quantity 0.3"),
        "{details}"
    );
}

#[tokio::test]
async fn allocations_past_the_largest_decimal_are_an_invalid_plan_not_a_panic() {
    let plan = one_line_plan(vec![
        Allocation::new("East", Decimal::MAX),
        Allocation::new("West", Decimal::MAX),
    ]);
    let engine = dom_engine(dom(plan)).await;
    let order = Order::new("SO-MAX").with_line(OrderLine::new("1", "Grain", Decimal::MAX));
    engine.submit(Event::new_order(order)).await.unwrap();
    let journey = engine.journey("SO-MAX").await.unwrap();
    assert_eq!(journey.outcome("DOM"), Some(Outcome::Failed), "{journey}");
    let details = journey.step("DOM").last().unwrap().details.join(" | ");
    assert!(
        details.contains("more than the largest decimal"),
        "{details}"
    );
}

#[test]
fn documents_written_with_json_numbers_read_as_the_decimals_written() {
    // An order as earlier versions wrote it: every number a JSON number.
    let order: Order = serde_json::from_str(
        r#"{"id": "SO-OLD", "custom": {"weight": 0.3, "count": 2, "ratio": 0.30000000000000004},
            "lines": [
              {"id": "1", "product": "Pen", "quantity": 2, "price": 19.99},
              {"id": "2", "product": "Coffee", "quantity": 0.3, "price": 0.1},
              {"id": "3", "product": "Dock", "quantity": 2.0},
              {"id": "4", "product": "Tea", "quantity": 1e-7, "price": 12345678901.25}],
            "fulfillment_orders": [{"id": "FO-1", "fulfillment_source": "East",
              "lines": [{"order_line": "2", "product": "Coffee", "quantity": 0.3}]}]}"#,
    )
    .unwrap();
    let texts: Vec<(String, Option<String>)> = order
        .lines
        .iter()
        .map(|l| (l.quantity.to_string(), l.price.map(|p| p.to_string())))
        .collect();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        texts,
        [
            ("2".to_owned(), some("19.99")),
            ("0.3".to_owned(), some("0.1")),
            ("2".to_owned(), None),
            ("0.0000001".to_owned(), some("12345678901.25")),
        ]
    );
    assert_eq!(
        order.lines[1].quantity,
        Decimal::new(3, 1),
        "0.3, not 0.2999…"
    );
    assert_eq!(order.fulfillment_orders[0].lines[0].quantity, dec!(0.3));
    assert_eq!(order.custom["weight"], Value::Number(dec!(0.3)));
    assert_eq!(order.custom["count"], Value::from(2));
    assert_eq!(
        order.custom["ratio"],
        Value::Number(dec!(0.30000000000000004))
    );

    // Written back, typed numbers are strings and custom numbers stay numbers.
    let json = serde_json::to_value(&order).unwrap();
    assert_eq!(json["lines"][1]["quantity"], "0.3");
    assert_eq!(json["lines"][0]["price"], "19.99");
    assert_eq!(json["fulfillment_orders"][0]["lines"][0]["quantity"], "0.3");
    assert_eq!(json["custom"]["weight"], serde_json::json!(0.3));
    assert_eq!(json["custom"]["count"], serde_json::json!(2));
    let again: Order = serde_json::from_value(json).unwrap();
    assert_eq!(again, order);

    // A provider's plan and a fulfillment order line alone.
    let allocation: Allocation =
        serde_json::from_str(r#"{"source": "East", "quantity": 0.1}"#).unwrap();
    assert_eq!(allocation.quantity.to_string(), "0.1");
    let line: FulfillmentOrderLine =
        serde_json::from_str(r#"{"order_line": "1", "product": "Pen", "quantity": 19.99}"#)
            .unwrap();
    assert_eq!(line.quantity, dec!(19.99));
}

#[test]
fn policies_and_flows_written_with_json_numbers_keep_their_meaning() {
    // A policy with a fractional threshold and a Set Value of a price, as numbers.
    let policy = PolicyDocument::from_json(
        r#"{"name": "Price", "type": "execution", "entity": "order_line", "rules": [
            {"name": "Heavy", "condition": {"field": "quantity", "operator": ">=", "value": 0.3},
             "actions": [{"field": "price", "value": 19.99},
                         {"field": "custom.discount", "value": 0.1}]}]}"#,
    )
    .unwrap()
    .compile()
    .unwrap()
    .into_execution()
    .unwrap();
    let mut exactly = OrderLine::new("1", "Coffee", dec!(0.3));
    assert!(
        policy
            .execute(orderflow::document::RecordMut::Line(&mut exactly))
            .passed()
    );
    assert_eq!(
        exactly.price.map(|p| p.to_string()).as_deref(),
        Some("19.99")
    );
    assert_eq!(exactly.custom["discount"], Value::Number(dec!(0.1)));
    let mut below = OrderLine::new("2", "Coffee", dec!(0.2999999999999999999999999999));
    policy.execute(orderflow::document::RecordMut::Line(&mut below));
    assert_eq!(
        below.price, None,
        "exact comparison: just below 0.3 does not hold"
    );

    // A flow with a fractional jitter, as before.
    let flow = Flow::from_json(
        r#"{"name": "F", "steps": [{"action": {"name": "A", "kind": "validate_order_header",
            "input_events": ["New Order"], "retry": {"attempts": 3, "jitter": 0.2}}}]}"#,
    )
    .unwrap();
    let orderflow::flow::Step::Action(action) = &flow.steps[0] else {
        panic!("{flow:?}")
    };
    assert_eq!(action.retry.unwrap().jitter, 0.2);
}

#[test]
fn numbers_past_a_decimal_or_not_finite_are_refused_where_they_are_read() {
    for (json, expect) in [
        (r#"{"id": "1", "product": "P", "quantity": 1e30}"#, "1e+30"),
        (
            r#"{"id": "1", "product": "P", "quantity": 1e400}"#,
            "number out of range",
        ),
        (
            r#"{"id": "1", "product": "P", "quantity": "NaN"}"#,
            "\"NaN\"",
        ),
        (
            r#"{"id": "1", "product": "P", "quantity": "inf"}"#,
            "\"inf\"",
        ),
        (
            r#"{"id": "1", "product": "P", "quantity": 1, "price": "-Infinity"}"#,
            "\"-Infinity\"",
        ),
        (
            r#"{"id": "1", "product": "P", "quantity": "0.1234567890123456789012345678901"}"#,
            "0.1234567890123456789012345678901",
        ),
        (
            r#"{"id": "1", "product": "P", "quantity": 1, "custom": {"x": {"decimal": "NaN"}}}"#,
            "\"NaN\"",
        ),
        (
            r#"{"id": "1", "product": "P", "quantity": 1, "custom": {"x": {"decimal": "1", "y": 2}}}"#,
            "nothing else",
        ),
        (
            r#"{"id": "1", "product": "P", "quantity": 1, "custom": {"x": {"y": 2}}}"#,
            "a value is null",
        ),
    ] {
        let err = serde_json::from_str::<OrderLine>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expect), "{json}: {err}");
    }
    // Through the engine's parser for untrusted events, with the place.
    let err = Event::from_json(
        r#"{"id": "e1", "kind": "New Order", "order": "SO-1", "document": {"id": "SO-1",
            "lines": [{"id": "1", "product": "P", "quantity": 1e30}]}}"#,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Document, "{err}");
    assert!(
        err.to_string().contains("expected a decimal number"),
        "{err}"
    );
}

#[test]
fn numbers_a_json_number_cannot_carry_exactly_are_refused_with_their_place() {
    // serde_json reads a fractional number through a double: this one would come back as
    // 0.12345678901234568. Untrusted documents are refused instead of read as another value.
    let err = PolicyDocument::from_json(
        r#"{"name": "P", "type": "filter", "entity": "order_line", "rules": [{"name": "R",
            "condition": {"field": "quantity", "operator": ">=",
                          "value": 0.12345678901234567891}}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Document, "{err}");
    let text = err.to_string();
    assert!(text.contains("the number 0.12345678901234567891"), "{text}");
    assert!(
        text.contains(r#"{"decimal": "0.12345678901234567891"}"#),
        "{text}"
    );
    assert!(text.contains("line 3"), "{text}");
    // Written as the message says, it reads exactly.
    let policy = PolicyDocument::from_json(
        r#"{"name": "P", "type": "filter", "entity": "order_line", "rules": [{"name": "R",
            "condition": {"field": "quantity", "operator": ">=",
                          "value": {"decimal": "0.12345678901234567891"}}}]}"#,
    )
    .unwrap();
    let again = PolicyDocument::from_json(&policy.to_json()).unwrap();
    assert_eq!(again, policy);

    // In an event, the order document's numbers are checked; the payload is the host's.
    let event = |document_quantity: &str, payload: &str| {
        Event::from_json(&format!(
            r#"{{"id": "e1", "kind": "New Order", "order": "SO-1", "payload": {payload},
                "document": {{"id": "SO-1", "lines": [{{"id": "1", "product": "P",
                "quantity": {document_quantity}}}]}}}}"#
        ))
    };
    let err = event("2.00000000000000000001", "{}").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Document, "{err}");
    assert!(
        err.to_string()
            .contains("the number 2.00000000000000000001"),
        "{err}"
    );
    let read = event(
        r#""2.00000000000000000001""#,
        r#"{"lat": 47.606209123456789123}"#,
    )
    .unwrap();
    assert_eq!(
        read.document.unwrap().lines[0].quantity,
        dec!(2.00000000000000000001)
    );
    assert!(event("0.3", "{}").is_ok());
}

#[tokio::test]
async fn a_jitter_that_is_not_finite_or_out_of_range_is_refused_naming_it() {
    // In a flow built in code: validation names the step.
    for jitter in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.5, 1.5] {
        let err = Flow::builder("F")
            .steps(|s| {
                s.action(
                    ActionStep::new("A", ActionKind::ValidateOrderHeader)
                        .input_event(EventKind::NEW_ORDER)
                        .retry(RetryPolicy::new(2, Duration::from_millis(10)).with_jitter(jitter)),
                )
            })
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("[at A: invalid retry policy: jitter must be between 0 and 1]"),
            "{jitter}: {text}"
        );
    }
    // As the engine's default: the engine is not built.
    for jitter in [f64::NAN, f64::INFINITY, 2.0] {
        let err = Engine::builder()
            .clock(ManualClock::new(Timestamp::from_millis(0)))
            .config(
                Config::default()
                    .with_retry(RetryPolicy::new(3, Duration::from_millis(10)).with_jitter(jitter)),
            )
            .build()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Configuration, "{jitter}: {err}");
        assert!(err.to_string().contains("jitter"), "{jitter}: {err}");
    }
    // In JSON: NaN and Infinity are not JSON, and 1e400 does not fit a double.
    for jitter in ["NaN", "Infinity", "1e400", "-1e400"] {
        let json = format!(
            r#"{{"name": "F", "steps": [{{"action": {{"name": "A", "kind": "validate_order_header",
               "input_events": ["New Order"], "retry": {{"attempts": 3, "jitter": {jitter}}}}}}}]}}"#
        );
        let err = Flow::from_json(&json).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Document, "{jitter}: {err}");
    }
}

/// A decimal of any scale (0 to 28) and up to 28 digits, sign included.
fn decimal() -> impl Strategy<Value = Decimal> {
    (
        -9_999_999_999_999_999_999_999_999_999_i128..=9_999_999_999_999_999_999_999_999_999,
        0u32..=28,
    )
        .prop_map(|(digits, scale)| Decimal::from_i128_with_scale(digits, scale))
}

fn small_decimal() -> impl Strategy<Value = Decimal> {
    (-1_000_000_000_i64..=1_000_000_000, 0u32..=6)
        .prop_map(|(digits, scale)| Decimal::new(digits, scale))
}

/// An order whose numbers come from the strategy: line quantities and prices, a
/// fulfillment order line, custom numbers on the order and a line.
fn order_with(numbers: &[Decimal]) -> Order {
    let mut order = Order::new("SO-P");
    for (i, pair) in numbers.chunks(2).enumerate() {
        let mut line = OrderLine::new(i.to_string(), "P", pair[0]);
        line.price = pair.get(1).copied();
        line.custom
            .insert("n".to_owned(), Value::Number(pair[pair.len() - 1]));
        order.lines.push(line);
    }
    let mut fo = FulfillmentOrder::new("FO-1", "East");
    fo.lines.push(FulfillmentOrderLine::new(
        "0",
        "P",
        numbers[numbers.len() - 1],
    ));
    order.fulfillment_orders.push(fo);
    order
        .custom
        .insert("first".to_owned(), Value::Number(numbers[0]));
    order
}

/// Every number of an order as text: equal decimals may differ in scale (0.3 and 0.30), and
/// a store must keep the digits as written.
fn digits(order: &Order) -> Vec<String> {
    let mut out = Vec::new();
    for l in &order.lines {
        out.push(l.quantity.to_string());
        out.push(format!("{:?}", l.price.map(|p| p.to_string())));
    }
    for l in order.fulfillment_orders.iter().flat_map(|f| &f.lines) {
        out.push(l.quantity.to_string());
    }
    out
}

proptest! {
    #[test]
    fn decimals_round_trip_through_json(
        numbers in prop::collection::vec(prop_oneof![decimal(), small_decimal()], 1..8),
    ) {
        let order = order_with(&numbers);
        let json = serde_json::to_string(&order).unwrap();
        let again: Order = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&again, &order);
        prop_assert_eq!(digits(&again), digits(&order));
        // Through serde_json::Value too, as the engine's parsers read documents.
        let value = serde_json::to_value(&order).unwrap();
        let again: Order = serde_json::from_value(value).unwrap();
        prop_assert_eq!(&again, &order);
        // A custom value alone.
        for n in &numbers {
            let v = Value::Number(*n);
            let back: Value = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            prop_assert_eq!(back, v);
        }
    }

    #[test]
    fn decimals_round_trip_through_the_memory_store(
        numbers in prop::collection::vec(prop_oneof![decimal(), small_decimal()], 1..8),
    ) {
        let store = MemoryStore::new();
        let order = order_with(&numbers);
        let state = OrderState::new(order.clone());
        futures::executor::block_on(store.commit(ChangeSet::diff(None, &state))).unwrap();
        let loaded = futures::executor::block_on(store.load(&order.id)).unwrap().unwrap();
        prop_assert_eq!(loaded.order(), &order);
        prop_assert_eq!(digits(loaded.order()), digits(&order));
    }
}

#[test]
fn a_value_number_is_a_json_number_when_exact_and_an_object_otherwise() {
    let cases = [
        (dec!(0.3), "0.3"),
        (dec!(2), "2"),
        (dec!(-7.25), "-7.25"),
        (dec!(19.990), "19.99"),
        (
            Decimal::ONE / Decimal::from(3),
            r#"{"decimal":"0.3333333333333333333333333333"}"#,
        ),
        (
            Decimal::MAX,
            r#"{"decimal":"79228162514264337593543950335"}"#,
        ),
    ];
    for (n, json) in cases {
        let v = Value::Number(n);
        assert_eq!(serde_json::to_string(&v).unwrap(), json);
        assert_eq!(serde_json::from_str::<Value>(json).unwrap(), v);
    }
    // Text that looks like a number stays text.
    assert_eq!(
        serde_json::from_str::<Value>(r#""0.3""#).unwrap(),
        Value::Text("0.3".into())
    );
}
