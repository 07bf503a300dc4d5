//! Dry runs: `Engine::simulate` shows the path, filter decisions, values set and waits of a
//! flow for an order, and never calls a provider or touches the engine's store.

use orderflow::document::{Order, OrderLine, RecordId};
use orderflow::flow::{ActionStep, Flow};
use orderflow::rules::PolicyDocument;
use orderflow::{ActionKind, Engine, EventKind, MemoryProvider, MemoryStore, Outcome, Store};
use std::sync::Arc;

const POLICIES: &str = include_str!("../examples/reference-lab/policies.json");
const FLOW: &str = include_str!("../examples/reference-lab/flow.json");

struct Lab {
    engine: Engine,
    store: Arc<MemoryStore>,
    seattle: MemoryProvider,
    chicago: MemoryProvider,
}

async fn lab() -> Lab {
    let store = Arc::new(MemoryStore::new());
    let seattle = MemoryProvider::new("Seattle store 3PL");
    let chicago = MemoryProvider::new("Chicago store 3PL");
    let engine = Engine::builder()
        .store(store.clone())
        .provider(seattle.clone())
        .provider(chicago.clone())
        .build()
        .await
        .unwrap();
    for policy in PolicyDocument::list_from_json(POLICIES).unwrap() {
        let name = policy.name.clone();
        engine.create_policy(policy).await.unwrap();
        engine.publish_policy(&name).await.unwrap();
    }
    Lab {
        engine,
        store,
        seattle,
        chicago,
    }
}

fn order(id: &str, country: &str, quantities: &[i64]) -> Order {
    let mut order = Order::new(id).with_ship_to_country(country);
    for (n, q) in quantities.iter().enumerate() {
        order = order.with_line(OrderLine::new((n + 1).to_string(), "Surface Pen", *q));
    }
    order
}

fn fo(id: &str) -> RecordId {
    RecordId::FulfillmentOrder(id.into())
}

#[tokio::test]
async fn a_dry_run_shows_the_path_filters_and_values_and_calls_nothing() {
    let lab = lab().await;
    let flow = Flow::from_json(FLOW).unwrap();
    let sim = lab
        .engine
        .simulate(&flow, &order("SIM-1", "US", &[150, 10]))
        .await
        .unwrap();

    // The path, with outcomes.
    let steps: Vec<(&str, Outcome)> = sim
        .journey
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.outcome))
        .collect();
    assert_eq!(
        steps,
        [
            ("Validate order header", Outcome::Succeeded),
            ("Validate order lines", Outcome::Succeeded),
            ("Policy based fulfillment determination", Outcome::Succeeded),
            ("By store", Outcome::Succeeded),
            ("Send to Seattle", Outcome::Succeeded),
            ("Send to Chicago", Outcome::Succeeded),
        ]
    );
    // Filters: each store's filter admits its fulfillment order and turns the other away.
    let seattle = sim
        .filters
        .iter()
        .find(|d| d.step == "Send to Seattle")
        .unwrap();
    assert_eq!(seattle.policy, "Seattle store");
    assert!(seattle.admitted.contains(&fo("SIM-1-FO1")));
    assert_eq!(seattle.rejected, [fo("SIM-1-FO2")]);
    let chicago = sim
        .filters
        .iter()
        .find(|d| d.step == "Send to Chicago")
        .unwrap();
    assert_eq!(chicago.rejected, [fo("SIM-1-FO1")]);
    // What the assignment policy would set.
    let sets: Vec<(&str, &serde_json::Value)> = sim
        .changes
        .iter()
        .filter(|c| c.step == "Policy based fulfillment determination")
        .filter(|c| c.field.ends_with("fulfillment_source"))
        .map(|c| (c.field.as_str(), &c.after))
        .collect();
    assert_eq!(
        sets,
        [
            (
                "lines[1].fulfillment_source",
                &serde_json::json!("Seattle store")
            ),
            (
                "lines[2].fulfillment_source",
                &serde_json::json!("Chicago store")
            ),
        ]
    );
    assert!(
        sim.changes
            .iter()
            .any(|c| c.step == "Validate order header" && c.field == "status_reason")
    );
    // The calls it would make, none made.
    let calls: Vec<(&str, &str, RecordId)> = sim
        .calls
        .iter()
        .map(|c| (c.step.as_str(), c.provider.as_str(), c.record.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("Send to Seattle", "Seattle store 3PL", fo("SIM-1-FO1")),
            ("Send to Chicago", "Chicago store 3PL", fo("SIM-1-FO2")),
        ]
    );
    assert!(lab.seattle.calls().is_empty() && lab.chicago.calls().is_empty());
    // The engine's own store is untouched.
    assert_eq!(lab.store.order_count(), 0);
    assert!(lab.store.flows().await.unwrap().is_empty());
    assert!(sim.waits.is_empty());
    // The report reads.
    let text = sim.to_string();
    assert!(text.contains("would call 'Seattle store 3PL'"), "{text}");
    assert!(text.contains("not called"), "{text}");
}

#[tokio::test]
async fn a_dry_run_shows_failed_validation_and_where_the_order_would_wait() {
    let lab = lab().await;
    let flow = Flow::from_json(FLOW).unwrap();
    let sim = lab
        .engine
        .simulate(&flow, &order("SIM-2", "US", &[1]))
        .await
        .unwrap();
    assert_eq!(
        sim.journey.outcome("Validate order lines"),
        Some(Outcome::Failed)
    );
    assert_eq!(
        sim.journey.steps[1].findings[0].reason,
        "quantity is below 5"
    );
    // What the failed step changed is shown too: the status it gave the order.
    let failed: Vec<(&str, &serde_json::Value)> = sim
        .changes
        .iter()
        .filter(|c| c.step == "Validate order lines")
        .map(|c| (c.field.as_str(), &c.after))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "lines[1].status_reason",
                &serde_json::json!("Order Line Validation Failed")
            ),
            (
                "status_reason",
                &serde_json::json!("Order Validation Failed")
            ),
        ]
    );
    assert!(sim.calls.is_empty());

    let waiting = Flow::builder("Bill on shipment")
        .steps(|s| {
            s.action(
                ActionStep::new("Header", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER),
            )
            .action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::SHIPPED)
                    .provider("Seattle store 3PL"),
            )
        })
        .build()
        .unwrap();
    let sim = lab
        .engine
        .simulate(&waiting, &order("SIM-3", "US", &[10]))
        .await
        .unwrap();
    assert_eq!(sim.waits.len(), 1);
    assert_eq!(sim.waits[0].step, "Invoice");
    assert_eq!(sim.waits[0].events, [EventKind::SHIPPED]);
    assert!(sim.to_string().contains("Invoice would wait for Shipped"));
    assert!(lab.seattle.calls().is_empty());
}

#[tokio::test]
async fn a_dry_run_checks_the_flow_as_publish_would() {
    let lab = lab().await;
    let broken = Flow::builder("Broken")
        .steps(|s| {
            s.action(
                ActionStep::new("Send", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Nobody"),
            )
        })
        .build()
        .unwrap();
    let err = lab
        .engine
        .simulate(&broken, &order("SIM-4", "US", &[1]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), orderflow::ErrorKind::Validation, "{err}");
}
