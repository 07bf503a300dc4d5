//! What the backend tests share: the reference lab on an engine, and the check that an
//! engine resumes everything from its store.

// Each test binary uses a part of this module.
#![allow(dead_code)]

pub(crate) mod canonical;
pub(crate) mod fresh;
#[cfg(feature = "postgres")]
pub(crate) mod ledger;

use orderflow::Decimal;
use std::future::Future;

use orderflow::document::{Order, OrderId, OrderLine};
use orderflow::flow::Flow;
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Event, MemoryProvider, Outcome, StatusReason, Store};

pub(crate) const POLICIES: &str = include_str!("../../examples/reference-lab/policies.json");
pub(crate) const FLOW: &str = include_str!("../../examples/reference-lab/flow.json");

fn id(s: &str) -> OrderId {
    OrderId::from(s)
}

/// An engine on `store` with the lab's two store providers (not yet published).
pub(crate) async fn lab_engine(store: impl Store) -> (Engine, MemoryProvider, MemoryProvider) {
    let seattle = MemoryProvider::new("Seattle store 3PL");
    let chicago = MemoryProvider::new("Chicago store 3PL");
    let engine = Engine::builder()
        .store(store)
        .provider(seattle.clone())
        .provider(chicago.clone())
        .build()
        .await
        .unwrap();
    (engine, seattle, chicago)
}

/// A one-line US order.
pub(crate) fn lab_order(id: &str, quantity: impl Into<Decimal>) -> Order {
    Order::new(id)
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", quantity))
}

/// Publishes the reference lab's policies and flow.
pub(crate) async fn publish_lab(engine: &Engine) {
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
}

/// Runs the lab on a store from `open`, drops the engine, opens the store again with a new
/// engine, and checks flows, policies, orders and journeys are all there, nothing runs
/// twice, and the new engine keeps working.
pub(crate) async fn engine_resumes_from_the_store<F, Fut, S>(open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: Store,
{
    let (engine, seattle, chicago) = lab_engine(open().await).await;
    for policy in PolicyDocument::list_from_json(POLICIES).unwrap() {
        let name = policy.name.clone();
        engine.create_policy(policy).await.unwrap();
        assert_eq!(engine.publish_policy(&name).await.unwrap(), 1);
    }
    engine
        .create_flow(Flow::from_json(FLOW).unwrap())
        .await
        .unwrap();
    let version = engine.publish("Reference lab").await.unwrap();
    for (order, quantity) in [("LAB-1", 110), ("LAB-2", 10), ("LAB-3", 1)] {
        engine
            .submit(Event::new_order(lab_order(order, quantity)))
            .await
            .unwrap();
    }
    assert_eq!((seattle.calls().len(), chicago.calls().len()), (1, 1));
    let journeys = [
        engine.journey(&id("LAB-1")).await.unwrap(),
        engine.journey(&id("LAB-2")).await.unwrap(),
        engine.journey(&id("LAB-3")).await.unwrap(),
    ];
    drop(engine);

    let (engine, seattle, chicago) = lab_engine(open().await).await;
    let flow = engine.flow("Reference lab").unwrap();
    assert_eq!(flow.last_published, Some(version.clone()));
    assert_eq!(
        engine
            .store()
            .flow_version("Reference lab", &version)
            .await
            .unwrap()
            .map(|f| f.name),
        Some("Reference lab".to_owned())
    );
    assert_eq!(
        engine.policies().len(),
        PolicyDocument::list_from_json(POLICIES).unwrap().len()
    );
    let lab1 = engine.order(&id("LAB-1")).await.unwrap().unwrap();
    assert_eq!(lab1.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert_eq!(
        lab1.lines[0].fulfillment_source.as_deref(),
        Some("Seattle store")
    );
    let lab3 = engine.order(&id("LAB-3")).await.unwrap().unwrap();
    assert_eq!(
        lab3.status_reason,
        Some(StatusReason::ORDER_VALIDATION_FAILED)
    );
    for (n, before) in journeys.iter().enumerate() {
        let order = id(&format!("LAB-{}", n + 1));
        let after = engine.journey(&order).await.unwrap();
        assert_eq!(format!("{after:?}"), format!("{before:?}"));
    }
    assert_eq!(
        engine
            .journey(&id("LAB-2"))
            .await
            .unwrap()
            .outcome("Send to Chicago"),
        Some(Outcome::Succeeded)
    );
    // Nothing was left to resume, so nothing ran twice.
    engine.recover().await.unwrap();
    assert_eq!((seattle.calls().len(), chicago.calls().len()), (0, 0));

    // The reopened engine keeps working on the file.
    engine
        .submit(Event::new_order(lab_order("LAB-4", 110)))
        .await
        .unwrap();
    assert_eq!(seattle.calls().len(), 1);
    assert_eq!(
        engine
            .journey(&id("LAB-4"))
            .await
            .unwrap()
            .outcome("Send to Seattle"),
        Some(Outcome::Succeeded)
    );
}

pub(crate) mod shared;

/// New order → to ERP (provider "ERP"), then on Shipped → invoice (provider "Billing"): a
/// flow with a provider call at once and a durable wait, as the operating tests need.
pub(crate) fn ship_and_bill(name: &str, version: semver::Version) -> Flow {
    use orderflow::{ActionKind, ActionStep, EventKind};
    Flow::builder(name)
        .version(version)
        .steps(|s| {
            s.action(
                ActionStep::new("To ERP", ActionKind::SendToFulfillmentErp)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("ERP"),
            )
            .action(
                ActionStep::new("Invoice when shipped", ActionKind::SendToInvoice)
                    .input_event(EventKind::SHIPPED)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap()
}

/// Creates and publishes [`ship_and_bill`] as "Ship and bill" 1.0.0.
pub(crate) async fn publish_ship_and_bill(engine: &Engine) {
    engine
        .create_flow(ship_and_bill(
            "Ship and bill",
            semver::Version::new(1, 0, 0),
        ))
        .await
        .unwrap();
    engine.publish("Ship and bill").await.unwrap();
}

/// A new order of two pens, shipping to the US.
pub(crate) fn pen_order(id: &str) -> Event {
    Event::new_order(
        Order::new(id)
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", 2)),
    )
}

/// The Shipped event of an order.
pub(crate) fn shipped(id: &str) -> Event {
    Event::new(format!("shipped-{id}"), orderflow::EventKind::SHIPPED, id)
}

/// Starts this test binary again as a child process running the ignored test `name`, with
/// `env` set: a second process of the test, killed or left running as the test decides.
#[cfg(unix)]
pub(crate) fn spawn_test_child(name: &str, env: &[(&str, &str)]) -> std::process::Child {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().expect("the child starts")
}
