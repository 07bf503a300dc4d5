//! Bounds that keep one order from running away: the journey limit per execution and the
//! step budget of one turn (flows starting each other in a cycle).

use orderflow::engine::Config;
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow};
use orderflow::{Engine, Event, EventKind, Order, action_fn};

fn step(name: &str) -> ActionStep {
    ActionStep::custom(name, "ok")
}

async fn engine(config: Config) -> Engine {
    Engine::builder()
        .config(config)
        .action("ok", action_fn(|_| Box::pin(async { Ok(()) })))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_execution_fails_at_its_journey_limit() {
    let engine = engine(Config::default().with_max_journey(2)).await;
    let flow = Flow::builder("Long")
        .steps(|s| {
            s.action(step("One").input_event(EventKind::NEW_ORDER))
                .action(step("Two"))
                .action(step("Three"))
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Long").await.unwrap();
    engine
        .submit(Event::new_order(Order::new("SO-1")))
        .await
        .unwrap();
    let journey = engine.journey("SO-1").await.unwrap();
    let names: Vec<&str> = journey.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(names, ["One", "Two"]);
    assert_eq!(journey.executions[0].status, ExecutionStatus::Failed);
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    let error = state.executions()[0].failure().unwrap();
    assert!(error.contains("journey limit of 2"), "{error}");
}

#[tokio::test]
async fn flows_starting_each_other_in_a_cycle_are_stopped() {
    let engine = engine(Config::default().with_max_steps_per_turn(50)).await;
    let ping = Flow::builder("Ping")
        .steps(|s| {
            s.action(
                step("Ping")
                    .input_event(EventKind::NEW_ORDER)
                    .input_event(EventKind::new("Pong has Succeeded")),
            )
        })
        .build()
        .unwrap();
    let pong = Flow::builder("Pong")
        .steps(|s| s.action(step("Pong").input_event(EventKind::new("Ping has Succeeded"))))
        .build()
        .unwrap();
    for flow in [ping, pong] {
        let name = flow.name.clone();
        engine.create_flow(flow).await.unwrap();
        engine.publish(&name).await.unwrap();
    }
    engine
        .submit(Event::new_order(Order::new("SO-1")))
        .await
        .unwrap();
    let failed = engine.failed_executions("SO-1").await.unwrap();
    assert!(!failed.is_empty());
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    let error = state.executions().iter().find_map(|e| e.failure()).unwrap();
    assert!(error.contains("more than 50 steps in one turn"), "{error}");
    let journey = engine.journey("SO-1").await.unwrap();
    assert!(journey.steps.len() <= 50);
}
