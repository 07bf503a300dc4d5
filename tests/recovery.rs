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

/// Work of a paused flow committed as under way, whose turn then failed to make its last
/// commit, is recovered without leaving its timer behind: after `recover` the order has no
/// wake time, and once that time would have come the timer worker finds nothing due.
#[tokio::test]
async fn recovered_work_of_a_paused_flow_leaves_no_timer_behind() {
    use orderflow::ManualClock;
    use orderflow::store::StoreErrorKind;
    use orderflow::testing::store::{Fault, FaultyStore};

    let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let clock = ManualClock::new(orderflow::Timestamp(1_000_000));
    let billing = MemoryProvider::new("Billing");
    let engine = Engine::builder()
        .store(store.clone())
        .clock(clock.clone())
        .provider(billing.clone())
        .build()
        .await
        .unwrap();
    engine.create_flow(flow()).await.unwrap();
    engine.publish("Bill when shipped").await.unwrap();
    for id in ["SO-0", "SO-1", "SO-2"] {
        engine.submit(Event::new_order(order(id))).await.unwrap();
    }
    engine.pause("Bill when shipped").await.unwrap();
    let shipped = |id: &str| Event::new(format!("ship-{id}"), EventKind::SHIPPED, id);

    // SO-2 shows the store operations of a shipment for a paused flow (after SO-0's has
    // brought the catalog up to date): the event committed with the order marked under
    // way, then a last commit that clears the mark.
    engine.submit(shipped("SO-0")).await.unwrap();
    let from = store.op_count();
    engine.submit(shipped("SO-2")).await.unwrap();
    let commits: Vec<u64> = store.ops()[from as usize..]
        .iter()
        .filter(|op| op.name == "commit")
        .map(|op| op.n - from)
        .collect();
    assert_eq!(commits.len(), 2, "{:?}", store.ops());
    let state = engine.order_state("SO-2").await.unwrap().unwrap();
    assert_eq!(state.resume_at(), None);

    // SO-1's last commit fails: the order stays marked under way.
    let from = store.op_count();
    store.fail_at(from + commits[1], Fault::Error(StoreErrorKind::Unavailable));
    let failed = engine.submit(shipped("SO-1")).await.unwrap_err();
    assert!(failed.to_string().contains("injected error"), "{failed}");
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    assert!(state.resume_at().is_some(), "the failed turn left its mark");

    // Still paused: recovery takes the order up, and clears the mark.
    engine.recover().await.unwrap();
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    assert_eq!(state.resume_at(), None);
    assert_eq!(state.next_wake(), None);
    clock.advance(std::time::Duration::from_secs(24 * 3600));
    assert_eq!(engine.run_due().await.unwrap(), 0, "nothing is due");

    // Resumed, the shipment's work runs.
    engine.resume("Bill when shipped").await.unwrap();
    let journey = engine.journey("SO-1").await.unwrap();
    assert_eq!(journey.outcome("Invoice"), Some(Outcome::Succeeded));
}
