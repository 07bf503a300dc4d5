//! Admission is bounded: a saturated engine makes `submit` wait instead of dropping work.

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::channel::oneshot;
use orderflow::engine::Config;
use orderflow::flow::{ActionStep, Flow};
use orderflow::{Engine, Event, EventKind, Order, action_fn};

#[tokio::test(flavor = "current_thread")]
async fn a_saturated_engine_makes_submit_wait() {
    let gate: Arc<Mutex<Option<oneshot::Receiver<()>>>> = Arc::default();
    let (open, rx) = oneshot::channel();
    *gate.lock().unwrap() = Some(rx);
    let held = gate.clone();
    let engine = Engine::builder()
        .config(Config::default().with_max_in_flight(1))
        .action(
            "wait for the gate",
            action_fn(move |_| {
                let rx = held.lock().unwrap().take();
                async move {
                    if let Some(rx) = rx {
                        let _ = rx.await;
                    }
                    Ok(())
                }
                .boxed()
            }),
        )
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Gate")
        .steps(|s| {
            s.action(
                ActionStep::custom("Gate", "wait for the gate").input_event(EventKind::NEW_ORDER),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Gate").await.unwrap();

    let first = tokio::spawn({
        let engine = engine.clone();
        async move { engine.submit(Event::new_order(Order::new("A"))).await }
    });
    let second = tokio::spawn({
        let engine = engine.clone();
        async move { engine.submit(Event::new_order(Order::new("B"))).await }
    });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(!first.is_finished());
    assert!(!second.is_finished(), "B waits for A's permit");
    assert!(
        engine.order("B").await.unwrap().is_none(),
        "B was not started"
    );

    open.send(()).unwrap();
    first.await.unwrap().unwrap();
    let receipt = second.await.unwrap().unwrap();
    assert_eq!(receipt.started.len(), 1, "B ran once A finished");
}
