//! The reference scenario of `DOMAIN.md` (Intelligent Order Management's own lab), with the
//! policies and the flow read from `examples/reference-lab/`: the four outcomes, and a
//! two-line order split between two stores.

use orderflow::document::{Order, OrderLine, RecordId};
use orderflow::flow::Flow;
use orderflow::provider::RequestKind;
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Event, EventKind, MemoryProvider, MemoryStore, Outcome, StatusReason};

const POLICIES: &str = include_str!("../examples/reference-lab/policies.json");
const FLOW: &str = include_str!("../examples/reference-lab/flow.json");

struct Lab {
    engine: Engine,
    seattle: MemoryProvider,
    chicago: MemoryProvider,
}

async fn lab() -> Lab {
    let seattle = MemoryProvider::new("Seattle store 3PL");
    let chicago = MemoryProvider::new("Chicago store 3PL");
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .provider(seattle.clone())
        .provider(chicago.clone())
        .build()
        .await
        .unwrap();
    for policy in PolicyDocument::list_from_json(POLICIES).unwrap() {
        let name = policy.name.clone();
        engine.create_policy(policy).await.unwrap();
        assert_eq!(engine.publish_policy(&name).await.unwrap(), 1);
    }
    let flow = Flow::from_json(FLOW).unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Reference lab").await.unwrap();
    Lab {
        engine,
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

impl Lab {
    async fn run(&self, order: Order) -> (Order, orderflow::Journey) {
        let id = order.id.clone();
        self.engine.submit(Event::new_order(order)).await.unwrap();
        let stored = self.engine.order(&id).await.unwrap().unwrap();
        let journey = self.engine.journey(&id).await.unwrap();
        (stored, journey)
    }

    /// The fulfillment orders each provider was sent, in order.
    fn sent(&self) -> (Vec<RecordId>, Vec<RecordId>) {
        let records = |p: &MemoryProvider| {
            p.calls()
                .into_iter()
                .inspect(|c| assert_eq!(c.kind, RequestKind::SendFulfillmentOrder))
                .map(|c| c.record)
                .collect()
        };
        (records(&self.seattle), records(&self.chicago))
    }
}

fn fo(id: &str) -> RecordId {
    RecordId::FulfillmentOrder(id.into())
}

#[tokio::test]
async fn quantity_110_ships_from_seattle() {
    let lab = lab().await;
    let (order, journey) = lab.run(order("LAB-1", "US", &[110])).await;
    assert_eq!(order.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert_eq!(
        order.lines[0].fulfillment_source.as_deref(),
        Some("Seattle store")
    );
    assert_eq!(order.fulfillment_orders.len(), 1);
    assert_eq!(
        order.fulfillment_orders[0].fulfillment_source,
        "Seattle store"
    );
    assert_eq!(journey.outcome("Send to Seattle"), Some(Outcome::Succeeded));
    assert_eq!(journey.outcome("Send to Chicago"), Some(Outcome::Skipped));
    assert_eq!(lab.sent(), (vec![fo("LAB-1-FO1")], vec![]));
}

#[tokio::test]
async fn quantity_10_ships_from_chicago() {
    let lab = lab().await;
    let (order, journey) = lab.run(order("LAB-2", "US", &[10])).await;
    assert_eq!(order.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert_eq!(
        order.lines[0].fulfillment_source.as_deref(),
        Some("Chicago store")
    );
    assert_eq!(journey.outcome("Send to Seattle"), Some(Outcome::Skipped));
    assert_eq!(journey.outcome("Send to Chicago"), Some(Outcome::Succeeded));
    assert_eq!(lab.sent(), (vec![], vec![fo("LAB-2-FO1")]));
}

#[tokio::test]
async fn quantity_1_fails_line_validation_and_nothing_is_sent() {
    let lab = lab().await;
    let (order, journey) = lab.run(order("LAB-3", "US", &[1])).await;
    assert_eq!(
        order.status_reason,
        Some(StatusReason::ORDER_VALIDATION_FAILED)
    );
    assert_eq!(
        order.lines[0].status_reason,
        Some(StatusReason::ORDER_LINE_VALIDATION_FAILED)
    );
    assert_eq!(
        journey.outcome("Validate order header"),
        Some(Outcome::Succeeded)
    );
    assert_eq!(
        journey.outcome("Validate order lines"),
        Some(Outcome::Failed)
    );
    let findings = &journey
        .step("Validate order lines")
        .next()
        .unwrap()
        .findings;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].policy, "Quantity at least 5");
    assert_eq!(findings[0].record, RecordId::Line("1".into()));
    assert_eq!(findings[0].reason, "quantity is below 5");
    assert!(journey.has_event(&EventKind::ORDER_LINES_VALIDATION_FAILED));
    assert!(order.fulfillment_orders.is_empty());
    assert_eq!(
        journey.outcome("Policy based fulfillment determination"),
        None
    );
    assert_eq!(lab.sent(), (vec![], vec![]));
}

#[tokio::test]
async fn ship_to_canada_fails_header_validation_and_lines_are_not_validated() {
    let lab = lab().await;
    let (order, journey) = lab.run(order("LAB-4", "CA", &[10])).await;
    assert_eq!(
        order.status_reason,
        Some(StatusReason::ORDER_VALIDATION_FAILED)
    );
    assert_eq!(order.lines[0].status_reason, None);
    assert_eq!(order.lines[0].fulfillment_source, None);
    assert_eq!(
        journey.outcome("Validate order header"),
        Some(Outcome::Failed)
    );
    assert_eq!(journey.outcome("Validate order lines"), None);
    assert!(journey.has_event(&EventKind::ORDER_HEADER_VALIDATION_FAILED));
    let header = journey.step("Validate order header").next().unwrap();
    assert_eq!(header.findings[0].reason, "ship-to country is not US");
    assert_eq!(lab.sent(), (vec![], vec![]));
}

#[tokio::test]
async fn two_lines_150_and_10_yield_two_fulfillment_orders_sent_down_both_branches() {
    let lab = lab().await;
    let (order, journey) = lab.run(order("LAB-5", "US", &[150, 10])).await;
    assert_eq!(order.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    let sources: Vec<_> = order
        .lines
        .iter()
        .map(|l| l.fulfillment_source.as_deref().unwrap())
        .collect();
    assert_eq!(sources, ["Seattle store", "Chicago store"]);
    let fos: Vec<_> = order
        .fulfillment_orders
        .iter()
        .map(|f| (f.id.as_str(), f.fulfillment_source.as_str(), f.lines.len()))
        .collect();
    assert_eq!(
        fos,
        [
            ("LAB-5-FO1", "Seattle store", 1),
            ("LAB-5-FO2", "Chicago store", 1)
        ]
    );
    assert!(
        order
            .fulfillment_orders
            .iter()
            .all(|f| f.status_reason == Some(StatusReason::SENT_TO_FULFILLMENT))
    );
    let seattle = journey.step("Send to Seattle").next().unwrap();
    assert_eq!(seattle.outcome, Outcome::Succeeded);
    assert!(seattle.records.contains(&fo("LAB-5-FO1")));
    assert!(!seattle.records.contains(&fo("LAB-5-FO2")));
    let chicago = journey.step("Send to Chicago").next().unwrap();
    assert_eq!(chicago.outcome, Outcome::Succeeded);
    assert!(chicago.records.contains(&fo("LAB-5-FO2")));
    assert!(!chicago.records.contains(&fo("LAB-5-FO1")));
    let created = journey
        .timeline
        .iter()
        .filter(|e| e.kind == EventKind::FULFILLMENT_ORDER_CREATED)
        .count();
    assert_eq!(created, 2);
    assert_eq!(lab.sent(), (vec![fo("LAB-5-FO1")], vec![fo("LAB-5-FO2")]));
}
