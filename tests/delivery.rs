//! Duplicate delivery and lost replies: the same event delivered 2 to 10 times, one after
//! the other and all at once, takes effect once; a provider success whose reply is lost, and
//! one that answers after the timeout, are retried under the same key and take effect once.

use std::time::Duration;

use orderflow::clock::{Clock, ManualClock, Timestamp};
use orderflow::document::{Order, OrderLine, RecordId};
use orderflow::engine::Config;
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::provider::RequestKind;
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::testing::settle;
use orderflow::{ActionKind, Engine, Event, EventKind, Outcome};

async fn engine(clock: &ManualClock, billing: &ScriptedProvider) -> Engine {
    let engine = Engine::builder()
        .clock(clock.clone())
        .provider(billing.clone())
        .config(
            Config::default()
                .with_retry(RetryPolicy::new(3, Duration::from_millis(100)).with_jitter(0.0))
                .with_timeout(Duration::from_millis(500)),
        )
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Bill on shipment")
        .steps(|s| {
            s.action(
                ActionStep::new("To ERP", ActionKind::SendToFulfillmentErp)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Billing"),
            )
            .action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::SHIPPED)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Bill on shipment").await.unwrap();
    engine
}

fn world() -> (ManualClock, ScriptedProvider) {
    let clock = ManualClock::new(Timestamp::from_millis(0));
    (
        clock.clone(),
        ScriptedProvider::new("Billing", clock.clone()),
    )
}

fn new_order(id: &str) -> Event {
    Event::new_order(Order::new(id).with_line(OrderLine::new("1", "Pen", 1)))
}

fn effects(p: &ScriptedProvider, order: &str) -> (usize, usize) {
    (
        p.effects_for(order, RequestKind::SendToErp, &RecordId::Order),
        p.effects_for(order, RequestKind::SendInvoice, &RecordId::Order),
    )
}

#[tokio::test(flavor = "current_thread")]
async fn an_event_delivered_again_and_again_takes_effect_once() {
    for n in 2..=10 {
        let (clock, billing) = world();
        let engine = engine(&clock, &billing).await;
        let id = format!("SO-{n}");
        let mut fresh = 0;
        for _ in 0..n {
            let receipt = engine.submit(new_order(&id)).await.unwrap();
            fresh += usize::from(!receipt.duplicate);
        }
        let shipped = Event::new(format!("ship-{id}"), EventKind::SHIPPED, id.as_str());
        for _ in 0..n {
            let receipt = engine.submit(shipped.clone()).await.unwrap();
            fresh += usize::from(!receipt.duplicate);
        }
        assert_eq!(fresh, 2, "{n} deliveries: each event accepted once");
        assert_eq!(effects(&billing, &id), (1, 1), "{n} deliveries");
        assert_eq!(billing.calls().len(), 2, "{n} deliveries: no extra calls");
        let journey = engine.journey(&id).await.unwrap();
        assert_eq!(journey.timeline.len(), 4, "{n} deliveries: {journey}");
        assert_eq!(journey.outcome("Invoice"), Some(Outcome::Succeeded));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_delivered_concurrently_takes_effect_once() {
    for n in 2..=10 {
        let (clock, billing) = world();
        let engine = engine(&clock, &billing).await;
        let id = format!("SO-{n}");
        let submits = (0..n).map(|_| {
            let engine = engine.clone();
            let event = new_order(&id);
            tokio::spawn(async move { engine.submit(event).await })
        });
        let receipts = futures::future::join_all(submits).await;
        let fresh = receipts
            .into_iter()
            .filter(|r| !r.as_ref().unwrap().as_ref().unwrap().duplicate)
            .count();
        assert_eq!(fresh, 1, "{n} concurrent deliveries: accepted once");
        let shipped = Event::new(format!("ship-{id}"), EventKind::SHIPPED, id.as_str());
        let submits = (0..n).map(|_| {
            let engine = engine.clone();
            let event = shipped.clone();
            tokio::spawn(async move { engine.submit(event).await })
        });
        for r in futures::future::join_all(submits).await {
            r.unwrap().unwrap();
        }
        assert_eq!(effects(&billing, &id), (1, 1), "{n} concurrent deliveries");
        assert_eq!(billing.duplicate_calls(), 0);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_success_whose_reply_is_lost_is_retried_under_its_key_and_applies_once() {
    let (clock, billing) = world();
    billing.then(Behavior::LostReply);
    let engine = engine(&clock, &billing).await;
    engine.submit(new_order("SO-1")).await.unwrap();
    // The effect is applied; the engine saw an error and parked the step on its timer.
    assert_eq!(effects(&billing, "SO-1"), (1, 0));
    assert_eq!(
        engine.next_due().await.unwrap(),
        Some(Timestamp::from_millis(100))
    );
    assert_eq!(settle(&engine, &clock).await.unwrap(), 1);
    let calls = billing.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].idempotency_key, calls[1].idempotency_key);
    assert_eq!((calls[0].at.as_millis(), calls[1].at.as_millis()), (0, 100));
    assert_eq!(billing.duplicate_calls(), 1);
    assert_eq!(effects(&billing, "SO-1"), (1, 0));
    let journey = engine.journey("SO-1").await.unwrap();
    assert_eq!(journey.outcome("To ERP"), Some(Outcome::Succeeded));
    assert!(billing.effects_per_key().values().all(|n| *n == 1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_success_after_the_timeout_is_retried_under_its_key_and_applies_once() {
    let (clock, billing) = world();
    billing.then(Behavior::Late(Duration::from_millis(2_000)));
    let engine = engine(&clock, &billing).await;
    let task = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.submit(new_order("SO-1")).await })
    };
    while !task.is_finished() {
        tokio::task::yield_now().await;
        if let Some(at) = clock.next_wake() {
            clock.advance(at.since(clock.now()));
        }
    }
    task.await.unwrap().unwrap();
    // Timed out at 500 ms; the retry is due 100 ms later.
    assert_eq!(
        engine.next_due().await.unwrap(),
        Some(Timestamp::from_millis(600))
    );
    assert_eq!(settle(&engine, &clock).await.unwrap(), 1);
    let calls = billing.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].at.as_millis(), calls[1].at.as_millis()), (0, 600));
    assert_eq!(effects(&billing, "SO-1"), (1, 0));
    let journey = engine.journey("SO-1").await.unwrap();
    let step = journey.step("To ERP").last().unwrap();
    assert_eq!((step.outcome, step.attempts), (Outcome::Succeeded, 2));
}
