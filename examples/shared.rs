//! Two engine instances sharing work over one PostgreSQL database.
//!
//! ```text
//! cargo run --example shared --features postgres -- postgres://postgres@127.0.0.1:5432/test
//! ```
//!
//! Each instance is what one process of a host service would hold: its own store (its own
//! connections and leases) and its own worker. Orders are queued through either instance;
//! whichever claims an order runs it, and `LISTEN`/`NOTIFY` wakes the idle one. The example
//! queues 200 orders of the reference lab, waits until they have all been sent to
//! fulfillment, and prints how the two instances split them. Run it twice, or start it in
//! two terminals at once: each run uses new order ids on the same schema.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use orderflow::document::{Order, OrderLine};
use orderflow::engine::WorkConfig;
use orderflow::flow::Flow;
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::rules::PolicyDocument;
use orderflow::store::{PostgresConfig, PostgresStore};
use orderflow::{Config, Engine, Event, StatusReason};

const POLICIES: &str = include_str!("reference-lab/policies.json");
const FLOW: &str = include_str!("reference-lab/flow.json");
const ORDERS: usize = 200;

/// A 3PL that counts what this instance sent it.
#[derive(Debug, Clone)]
struct Counting3pl {
    name: &'static str,
    sent: Arc<AtomicUsize>,
}

#[async_trait]
impl Provider for Counting3pl {
    fn name(&self) -> &str {
        self.name
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendFulfillmentOrder]
    }
    async fn call(&self, _: Request<'_>, _: &CallContext<'_>) -> Result<Reply, ProviderError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(Reply::Done)
    }
}

/// One instance: a store of its own on the shared schema, and the two 3PLs.
async fn instance(
    url: &str,
    sent: &Arc<AtomicUsize>,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let store =
        PostgresStore::connect_with(PostgresConfig::new(url).with_schema("orderflow_example"))
            .await?;
    let engine = Engine::builder()
        .shared_store(store)
        .config(Config::default().with_work(WorkConfig::default().with_batch(16)))
        .provider(Counting3pl {
            name: "Seattle store 3PL",
            sent: sent.clone(),
        })
        .provider(Counting3pl {
            name: "Chicago store 3PL",
            sent: sent.clone(),
        })
        .build()
        .await?;
    Ok(engine)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ORDERFLOW_PG_URL").ok())
        .ok_or("usage: shared <postgres://user@host:port/database>")?;
    let sent = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let first = instance(&url, &sent[0]).await?;
    if first.flow("Reference lab").is_none() {
        for policy in PolicyDocument::list_from_json(POLICIES)? {
            let name = policy.name.clone();
            first.create_policy(policy).await?;
            first.publish_policy(&name).await?;
        }
        first.create_flow(Flow::from_json(FLOW)?).await?;
        first.publish("Reference lab").await?;
    }
    // The second instance starts after publishing, so it loads the published flow.
    let second = instance(&url, &sent[1]).await?;
    let workers = [
        tokio::spawn(first.clone().run_worker()),
        tokio::spawn(second.clone().run_worker()),
    ];

    let run = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let started = Instant::now();
    let ids: Vec<String> = (0..ORDERS).map(|i| format!("EX-{run}-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let quantity = if i % 2 == 0 { 150 } else { 10 };
        let order = Order::new(id.as_str())
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", quantity));
        // Queue through either instance: the queue is the database's.
        let via = if i % 2 == 0 { &first } else { &second };
        via.enqueue(Event::new_order(order)).await?;
    }
    let last = ids.last().ok_or("no orders")?.as_str();
    loop {
        let done = first
            .order(last)
            .await?
            .is_some_and(|o| o.status_reason == Some(StatusReason::SENT_TO_FULFILLMENT));
        let sent_total: usize = sent.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        if done && sent_total >= ORDERS {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err("the orders did not complete in two minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for worker in workers {
        worker.abort();
    }
    for id in &ids {
        let order = first.order(&id).await?.ok_or("an order is missing")?;
        assert_eq!(order.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    }
    println!(
        "{ORDERS} orders sent to fulfillment in {:.2?}: instance 1 ran {}, instance 2 ran {}",
        started.elapsed(),
        sent[0].load(Ordering::Relaxed),
        sent[1].load(Ordering::Relaxed),
    );
    Ok(())
}
