//! An engine rebuilt on the same store resumes from the store alone: published flows,
//! waiting executions, paused work.

use std::sync::Arc;

use orderflow::document::{Order, OrderLine};
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow, FlowStatus};
use orderflow::{ActionKind, Engine, Event, EventKind, MemoryProvider, MemoryStore, Outcome};

async fn engine(store: &Arc<MemoryStore>, billing: &MemoryProvider) -> Engine {
    Engine::builder()
        .store(store.clone())
        .provider(billing.clone())
        .build()
        .await
        .unwrap()
}

fn flow() -> Flow {
    Flow::builder("Bill when shipped")
        .steps(|s| {
            s.action(
                ActionStep::new("Validate", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER),
            )
            .action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::SHIPPED)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap()
}

fn order(id: &str) -> Order {
    Order::new(id).with_line(OrderLine::new("1", "Pen", 1))
}

#[tokio::test]
async fn a_rebuilt_engine_resumes_waiting_executions() {
    let store = Arc::new(MemoryStore::new());
    let billing = MemoryProvider::new("Billing");
    {
        let first = engine(&store, &billing).await;
        first.create_flow(flow()).await.unwrap();
        first.publish("Bill when shipped").await.unwrap();
        first.submit(Event::new_order(order("SO-1"))).await.unwrap();
        let state = first.order_state("SO-1").await.unwrap().unwrap();
        assert_eq!(state.executions()[0].status(), ExecutionStatus::Waiting);
    }

    let second = engine(&store, &billing).await;
    assert_eq!(
        second.flow("Bill when shipped").unwrap().status,
        FlowStatus::Published
    );
    assert_eq!(
        second.recover().await.unwrap().resumed,
        0,
        "nothing can move before Shipped"
    );
    second
        .submit(Event::new("ship-1", EventKind::SHIPPED, "SO-1"))
        .await
        .unwrap();
    let journey = second.journey("SO-1").await.unwrap();
    assert_eq!(journey.outcome("Invoice"), Some(Outcome::Succeeded));
    assert_eq!(journey.executions[0].status, ExecutionStatus::Completed);
    assert_eq!(billing.calls().len(), 1);

    // New orders start on the rebuilt engine too, and the old event id is still known.
    let receipt = second
        .submit(Event::new_order(order("SO-2")))
        .await
        .unwrap();
    assert_eq!(receipt.started.len(), 1);
    let receipt = second
        .submit(Event::new("ship-1", EventKind::SHIPPED, "SO-1"))
        .await
        .unwrap();
    assert!(receipt.duplicate);
    assert_eq!(billing.calls().len(), 1);
}

#[tokio::test]
async fn work_queued_by_a_paused_flow_runs_after_a_restart_and_resume() {
    let store = Arc::new(MemoryStore::new());
    let billing = MemoryProvider::new("Billing");
    {
        let first = engine(&store, &billing).await;
        first.create_flow(flow()).await.unwrap();
        first.publish("Bill when shipped").await.unwrap();
        first.pause("Bill when shipped").await.unwrap();
        first.submit(Event::new_order(order("SO-1"))).await.unwrap();
        first
            .submit(Event::new("ship-1", EventKind::SHIPPED, "SO-1"))
            .await
            .unwrap();
        let journey = first.journey("SO-1").await.unwrap();
        assert!(journey.steps.is_empty(), "nothing of a paused flow moves");
        assert_eq!(
            journey.timeline.len(),
            2,
            "its events queue on the timeline"
        );
    }
    let second = engine(&store, &billing).await;
    assert_eq!(
        second.flow("Bill when shipped").unwrap().status,
        FlowStatus::Paused
    );
    second.resume("Bill when shipped").await.unwrap();
    let journey = second.journey("SO-1").await.unwrap();
    assert_eq!(journey.outcome("Validate"), Some(Outcome::Succeeded));
    assert_eq!(journey.outcome("Invoice"), Some(Outcome::Succeeded));
}
