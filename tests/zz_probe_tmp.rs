//! temporary probe
use futures::FutureExt;
use orderflow::document::Order;
use orderflow::flow::{ActionStep, Flow};
use orderflow::{Engine, Event, EventKind, action_fn};

#[tokio::test]
async fn inbox_earlier_event() {
    let engine = Engine::builder()
        .action("ok", action_fn(|_cx| async { Ok(()) }.boxed()))
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(ActionStep::custom("A", "ok").input_event(EventKind::NEW_ORDER))
                .action(ActionStep::custom("Ship", "ok").input_event(EventKind::SHIPPED))
                .action(
                    ActionStep::custom("Deliver", "ok").input_event(EventKind::new("Delivered")),
                )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("F").await.unwrap();
    engine
        .submit(Event::new_order(Order::new("O1")))
        .await
        .unwrap();
    engine
        .submit(Event::new("d1", EventKind::new("Delivered"), "O1"))
        .await
        .unwrap();
    engine
        .submit(Event::new("s1", EventKind::SHIPPED, "O1"))
        .await
        .unwrap();
    let j = engine.journey(&"O1".into()).await.unwrap();
    println!("{j}");
}
