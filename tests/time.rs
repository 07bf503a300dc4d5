//! Time in the public API. Durations are `std::time::Duration` in the Rust API and integer
//! milliseconds in a flow's JSON form, which stays byte for byte what earlier versions wrote;
//! a journey's text shows its times as RFC 3339 dates.
//!
//! `tests/flow_json/*.json` are the outputs of `Flow::to_json` (`*.pretty.json`) and of
//! `serde_json::to_string`, the form the SQL stores keep (`*.compact.json`), written by
//! orderflow 0.1.0, when the fields were `u64` milliseconds, for the sources below. Every
//! source must still read, and write exactly those bytes.

use std::time::Duration;

use orderflow::document::{Order, OrderLine};
use orderflow::flow::{ActionStep, Flow, RetryPolicy, Step};
use orderflow::{ActionKind, Engine, Event, EventKind, ManualClock, Timestamp};
use semver::Version;

/// A flow with every shape of retry and timeout: all fields set, defaults left out, a
/// single attempt with zero waits, the longest and shortest timeouts.
const RETRY_TIMEOUT: &str = r#"{"name":"Retry and timeout","version":"1.2.3","steps":[
 {"action":{"name":"A","kind":"send_to_dom","provider":"DOM","input_events":["New Order"],
   "retry":{"attempts":4,"backoff_ms":500,"max_backoff_ms":8000,"jitter":0.25},"timeout_ms":10000}},
 {"action":{"name":"B","kind":"send_to_invoice","provider":"Billing",
   "retry":{"attempts":2},"timeout_ms":18446744073709551615}},
 {"action":{"name":"C","kind":"send_to_fulfillment_erp","provider":"ERP",
   "retry":{"attempts":1,"backoff_ms":0,"max_backoff_ms":0,"jitter":0.0},"timeout_ms":1}}]}"#;

/// (name, source, 0.1.0's pretty output, 0.1.0's compact output).
const CASES: [(&str, &str, &str, &str); 4] = [
    (
        "reference-lab",
        include_str!("../examples/reference-lab/flow.json"),
        include_str!("flow_json/reference-lab.pretty.json"),
        include_str!("flow_json/reference-lab.compact.json"),
    ),
    (
        "fulfillment-with-retry",
        include_str!("../examples/flows/fulfillment-with-retry.json"),
        include_str!("flow_json/fulfillment-with-retry.pretty.json"),
        include_str!("flow_json/fulfillment-with-retry.compact.json"),
    ),
    (
        "test-order-flow-sample",
        include_str!("../examples/flows/test-order-flow-sample.json"),
        include_str!("flow_json/test-order-flow-sample.pretty.json"),
        include_str!("flow_json/test-order-flow-sample.compact.json"),
    ),
    (
        "retry-and-timeout",
        RETRY_TIMEOUT,
        include_str!("flow_json/retry-and-timeout.pretty.json"),
        include_str!("flow_json/retry-and-timeout.compact.json"),
    ),
];

#[test]
fn flow_json_reads_and_writes_the_bytes_earlier_versions_wrote() {
    for (name, source, pretty, compact) in CASES {
        let flow = Flow::from_json(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(flow.to_json(), pretty, "{name}: pretty form");
        assert_eq!(
            serde_json::to_string(&flow).unwrap(),
            compact,
            "{name}: compact form"
        );
        // What earlier versions wrote reads back to the same flow, and writes itself again.
        for written in [pretty, compact] {
            let again = Flow::from_json(written).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(again, flow, "{name}");
            assert_eq!(again.to_json(), pretty, "{name}");
            assert_eq!(serde_json::to_string(&again).unwrap(), compact, "{name}");
        }
    }
}

/// Every action of a sequence, on every path.
fn actions(steps: &[Step]) -> Vec<&ActionStep> {
    steps
        .iter()
        .flat_map(|step| match step {
            Step::Action(a) => vec![a],
            Step::Condition(c) | Step::ConditionMerge(c) => {
                let mut found = actions(&c.yes);
                found.extend(actions(&c.no));
                found
            }
            Step::Splitter(s) | Step::SplitterMerge(s) => {
                s.branches.values().flat_map(|b| actions(b)).collect()
            }
            other => panic!("a step this test does not know: {other:?}"),
        })
        .collect()
}

fn action<'a>(flow: &'a Flow, name: &str) -> &'a ActionStep {
    actions(&flow.steps)
        .into_iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no action {name}"))
}

#[test]
fn json_milliseconds_are_durations_in_rust() {
    let flow = Flow::from_json(RETRY_TIMEOUT).unwrap();
    let a = action(&flow, "A");
    let retry = a.retry.unwrap();
    assert_eq!(retry.backoff, Duration::from_millis(500));
    assert_eq!(retry.max_backoff, Duration::from_secs(8));
    assert_eq!(retry.wait_before(2), Duration::from_millis(500));
    assert_eq!(retry.wait_before(6), Duration::from_secs(8));
    assert_eq!(a.timeout, Some(Duration::from_secs(10)));
    // Left out: no backoff, a minute's cap.
    let b = action(&flow, "B");
    let retry = b.retry.unwrap();
    assert_eq!(
        (retry.backoff, retry.max_backoff),
        (Duration::ZERO, Duration::from_secs(60))
    );
    assert_eq!(b.timeout, Some(Duration::from_millis(u64::MAX)));
    assert_eq!(action(&flow, "C").retry, Some(RetryPolicy::NONE));

    let lab = Flow::from_json(include_str!("../examples/reference-lab/flow.json")).unwrap();
    let lab_actions = actions(&lab.steps);
    assert!(lab_actions.len() > 3);
    assert!(
        lab_actions
            .iter()
            .all(|a| a.retry.is_none() && a.timeout.is_none())
    );
}

#[test]
fn a_flow_built_with_durations_writes_the_same_json() {
    let flow = Flow::builder("Retry and timeout")
        .version(Version::new(1, 2, 3))
        .steps(|s| {
            s.action(
                ActionStep::new("A", ActionKind::SendToDom)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("DOM")
                    .retry(
                        RetryPolicy::new(4, Duration::from_millis(500))
                            .with_max_backoff(Duration::from_secs(8))
                            .with_jitter(0.25),
                    )
                    .timeout(Duration::from_secs(10)),
            )
            .action(
                ActionStep::new("B", ActionKind::SendToInvoice)
                    .provider("Billing")
                    .retry(RetryPolicy::new(2, Duration::ZERO))
                    .timeout(Duration::MAX),
            )
            .action(
                ActionStep::new("C", ActionKind::SendToFulfillmentErp)
                    .provider("ERP")
                    .retry(RetryPolicy::NONE)
                    // The JSON form counts whole milliseconds.
                    .timeout(Duration::from_micros(1_999)),
            )
        })
        .build()
        .unwrap();
    let [(_, _, pretty, compact)] = [CASES[3]];
    assert_eq!(flow.to_json(), pretty);
    assert_eq!(serde_json::to_string(&flow).unwrap(), compact);
}

#[test]
fn a_timeout_under_a_millisecond_fails_validation() {
    for timeout in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
    ] {
        let err = Flow::builder("F")
            .steps(|s| {
                s.action(
                    ActionStep::new("A", ActionKind::ValidateOrderHeader)
                        .input_event(EventKind::NEW_ORDER)
                        .timeout(timeout),
                )
            })
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the timeout must be at least 1 ms"),
            "{timeout:?}: {err}"
        );
    }
}

#[tokio::test]
async fn the_journey_text_shows_when_steps_started_and_events_arrived() {
    let start = Timestamp::parse_rfc3339("2028-02-29T23:59:59.500Z").unwrap();
    let clock = ManualClock::new(start);
    let engine = Engine::builder()
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Check")
        .steps(|s| {
            s.action(
                ActionStep::new("Header", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER),
            )
            .action(
                ActionStep::new("Lines", ActionKind::ValidateOrderLine)
                    .input_event(EventKind::from("Approved")),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Check").await.unwrap();
    let order = Order::new("T-1").with_line(OrderLine::new("1", "Pen", 1));
    engine.submit(Event::new_order(order)).await.unwrap();
    // Over midnight into March of a leap year.
    clock.advance(Duration::from_millis(600));
    engine
        .submit(Event::new("approved-1", EventKind::from("Approved"), "T-1"))
        .await
        .unwrap();

    let text = engine.journey("T-1").await.unwrap().to_string();
    for line in [
        "  2028-02-29T23:59:59.500Z [Check] Header → Succeeded",
        "  2028-03-01T00:00:00.100Z [Check] Lines → Succeeded",
        "      1. 2028-02-29T23:59:59.500Z New Order\n",
        ". 2028-03-01T00:00:00.100Z Approved\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
}
