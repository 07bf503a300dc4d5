//! Tracing: with the `tracing` feature every execution and every step is a span carrying the
//! order, flow, version, step, attempt and outcome, so a host's subscriber (an OpenTelemetry
//! pipeline, say) sees the orchestration.

#![cfg(feature = "tracing")]

use std::io::Write;
use std::sync::{Arc, Mutex};

use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Event, MemoryProvider};
use tracing_subscriber::fmt::format::FmtSpan;

const POLICIES: &str = include_str!("../examples/reference-lab/policies.json");
const FLOW: &str = include_str!("../examples/reference-lab/flow.json");

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A subscriber for this thread that writes closed spans and events, without colour, to
/// the returned buffer until the guard is dropped.
fn capture() -> (Buffer, tracing::subscriber::DefaultGuard) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

#[tokio::test(flavor = "current_thread")]
async fn executions_and_steps_are_spans_with_their_fields() {
    let (buffer, _guard) = capture();

    let engine = Engine::builder()
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"))
        .build()
        .await
        .unwrap();
    for policy in PolicyDocument::list_from_json(POLICIES).unwrap() {
        let name = policy.name.clone();
        engine.create_policy(policy).await.unwrap();
        engine.publish_policy(&name).await.unwrap();
    }
    engine
        .create_flow(Flow::from_json(FLOW).unwrap())
        .await
        .unwrap();
    engine.publish("Reference lab").await.unwrap();
    let order = Order::new("TR-1")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 1));
    engine.submit(Event::new_order(order)).await.unwrap();

    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let closes: Vec<&str> = out.lines().filter(|l| l.contains("close")).collect();
    let step = |name: &str| {
        closes
            .iter()
            .find(|l| l.contains("orderflow.step") && l.contains(&format!("step={name}")))
            .copied()
            .unwrap_or_else(|| panic!("no span for step {name}:\n{out}"))
    };
    let header = step("Validate order header");
    for field in [
        "order=TR-1",
        "flow=Reference lab",
        "version=1.0.0",
        "attempt=1",
        "outcome=Succeeded",
    ] {
        assert!(header.contains(field), "{field} missing in {header}");
    }
    assert!(
        header.contains("orderflow.execution"),
        "the step span is inside its execution's: {header}"
    );
    assert!(step("Validate order lines").contains("outcome=Failed"));
    assert!(
        closes
            .iter()
            .any(|l| l.contains("orderflow.execution") && l.contains("execution=TR-1#1")),
        "{out}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_order_set_aside_is_a_warning_with_its_reason() {
    use std::time::Duration;

    use orderflow::flow::{ActionStep, RetryPolicy};
    use orderflow::testing::provider::{Behavior, ScriptedProvider};
    use orderflow::{ActionKind, Config, EventKind, ManualClock, MemoryStore, Store, Timestamp};

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = ManualClock::new(Timestamp::from_millis(1_000));
    let billing = ScriptedProvider::new("Billing", clock.clone());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let config = Config::default()
        .with_retry(RetryPolicy::new(3, Duration::from_millis(100)).with_jitter(0.0));
    {
        let engine = Engine::builder()
            .store(store.clone())
            .clock(clock.clone())
            .config(config.clone())
            .provider(billing.clone())
            .build()
            .await
            .unwrap();
        let flow = Flow::builder("Bill")
            .steps(|s| {
                s.action(
                    ActionStep::new("Invoice", ActionKind::SendToInvoice)
                        .input_event(EventKind::NEW_ORDER)
                        .provider("Billing"),
                )
            })
            .build()
            .unwrap();
        engine.create_flow(flow).await.unwrap();
        engine.publish("Bill").await.unwrap();
        billing.then(Behavior::Retryable("billing restarting".into()));
        engine
            .submit(Event::new_order(Order::new("SO-1")))
            .await
            .unwrap();
    }
    // An instance without the provider meets the order on its timer.
    let engine = Engine::builder()
        .store(store)
        .clock(clock.clone())
        .config(config)
        .build()
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    engine.run_due().await.unwrap();
    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("order failed"))
        .unwrap_or_else(|| panic!("no warning for the order:\n{out}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("order=SO-1"), "{line}");
    assert!(line.contains("set_aside=true"), "{line}");
    assert!(line.contains("Billing"), "{line}");
    assert!(out.contains("catalog entry cannot be used"), "{out}");
}

/// A step whose attempt failed retryably waits for its timer; the steps that run or are
/// skipped meanwhile in the same turn get spans of their own, and the waiting step's span
/// never takes their outcome.
#[tokio::test(flavor = "current_thread")]
async fn a_step_waiting_to_retry_keeps_its_span_apart_from_the_next_steps() {
    use orderflow::flow::{ActionStep, RetryPolicy};
    use orderflow::{ActionError, action_fn};
    use std::time::Duration;

    let (buffer, _guard) = capture();

    let engine = Engine::builder()
        .policy(orderflow::policy::filter_fn(
            "Everything",
            orderflow::document::Entity::Order,
            |_| true,
        ))
        .policy(orderflow::policy::filter_fn(
            "Nothing",
            orderflow::document::Entity::Order,
            |_| false,
        ))
        .action(
            "flaky",
            action_fn(|_| Box::pin(async { Err(ActionError::new("busy").with_retryable(true)) })),
        )
        .action(
            "steady",
            action_fn(|_| Box::pin(async { Ok::<(), ActionError>(()) })),
        )
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Two branches")
        .steps(|s| {
            s.action(
                ActionStep::new("Header", orderflow::ActionKind::ValidateOrderHeader)
                    .input_event(orderflow::EventKind::NEW_ORDER),
            )
            .splitter("Split", |b| {
                b.branch("a", |s| {
                    s.action(
                        ActionStep::custom("Flaky", "flaky")
                            .filter("Everything")
                            .retry(RetryPolicy::new(3, Duration::from_secs(3600))),
                    )
                })
                .branch("b", |s| {
                    s.action(ActionStep::custom("Filtered out", "steady").filter("Nothing"))
                })
                .branch("c", |s| {
                    s.action(ActionStep::custom("Steady", "steady").filter("Everything"))
                })
            })
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Two branches").await.unwrap();
    let order = Order::new("TR-2")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 1));
    engine.submit(Event::new_order(order)).await.unwrap();
    let journey = engine.journey("TR-2").await.unwrap();
    assert_eq!(
        journey.outcome("Steady"),
        Some(orderflow::Outcome::Succeeded)
    );

    let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let closes: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("close") && l.contains("orderflow.step"))
        .collect();
    let spans = |name: &str| -> Vec<&str> {
        closes
            .iter()
            .filter(|l| l.contains(&format!("step={name}")))
            .copied()
            .collect()
    };
    let steady = spans("Steady");
    assert_eq!(steady.len(), 1, "{out}");
    assert!(steady[0].contains("outcome=Succeeded"), "{}", steady[0]);
    assert!(steady[0].contains("attempt=1"), "{}", steady[0]);
    let skipped = spans("Filtered out");
    assert_eq!(skipped.len(), 1, "{out}");
    assert!(skipped[0].contains("outcome=Skipped"), "{}", skipped[0]);
    for flaky in spans("Flaky") {
        assert!(
            !flaky.contains("outcome="),
            "the attempt is not over: {flaky}"
        );
    }
}
