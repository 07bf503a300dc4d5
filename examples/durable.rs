//! The reference lab on the SQLite store, killed and restarted: the first run submits its
//! orders at once and stops dead (`std::process::abort`, no clean shutdown) inside a 3PL
//! call, with the calls of other orders in flight, once the given number of calls were
//! made; the next run reopens the file, resumes what was in flight (and says how many
//! orders that was) and finishes every order, each call repeated under its idempotency key.
//!
//! ```text
//! cargo run --example durable --features sqlite -- --kill-after 3
//! cargo run --example durable --features sqlite
//! ```
//!
//! The database is `orderflow-durable.db` in the system's temporary directory; `--fresh`
//! starts over.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::provider::{CallContext, ProviderError, Reply, Request, RequestKind};
use orderflow::rules::PolicyDocument;
use orderflow::store::SqliteStore;
use orderflow::{Engine, Event, MemoryProvider, Provider};

const POLICIES: &str = include_str!("reference-lab/policies.json");
const FLOW: &str = include_str!("reference-lab/flow.json");
const ORDERS: u32 = 10;

/// A 3PL that kills the process inside its call once `kill_at` calls were made: the
/// engine committed the step as running before it called.
#[derive(Debug, Clone)]
struct Crashing {
    inner: MemoryProvider,
    calls: Arc<AtomicU32>,
    kill_at: Option<u32>,
}

#[async_trait]
impl Provider for Crashing {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn offers(&self) -> &[RequestKind] {
        self.inner.offers()
    }
    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.kill_at.is_some_and(|k| n > k) {
            println!(
                "stopping dead inside call {n} ({}); run again without --kill-after",
                cx.idempotency_key
            );
            std::process::abort();
        }
        // Another order's call goes on meanwhile.
        tokio::task::yield_now().await;
        self.inner.call(request, cx).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kill_after = args
        .iter()
        .position(|a| a == "--kill-after")
        .and_then(|i| args.get(i + 1))
        .map(|n| n.parse::<u32>())
        .transpose()?;
    let path = std::env::temp_dir().join("orderflow-durable.db");
    if args.iter().any(|a| a == "--fresh") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    let calls = Arc::new(AtomicU32::new(0));
    let provider = |name: &str| Crashing {
        inner: MemoryProvider::new(name),
        calls: calls.clone(),
        kill_at: kill_after,
    };
    let engine = Engine::builder()
        .store(SqliteStore::open(&path)?)
        .provider(provider("Seattle store 3PL"))
        .provider(provider("Chicago store 3PL"))
        .build()
        .await?;
    if engine.flow("Reference lab").is_none() {
        for policy in PolicyDocument::list_from_json(POLICIES)? {
            let name = policy.name.clone();
            engine.create_policy(policy).await?;
            engine.publish_policy(&name).await?;
        }
        engine.create_flow(Flow::from_json(FLOW)?).await?;
        engine.publish("Reference lab").await?;
        println!("{}: published the reference lab", path.display());
    }

    // What a restarted service does first: resume every execution in flight.
    let report = engine.recover().await?;
    println!(
        "{}: resumed {} orders in flight, {} set aside",
        path.display(),
        report.resumed,
        report.set_aside.len()
    );

    // Every order not yet taken, at once, as a service's handlers would.
    let mut pending = Vec::new();
    for i in 1..=ORDERS {
        let id = format!("DUR-{i}");
        if engine.order(&id).await?.is_some() {
            continue;
        }
        let quantity = if i % 2 == 0 { 150 } else { 10 };
        let order = Order::new(id.as_str())
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", quantity));
        let engine = engine.clone();
        pending.push(tokio::spawn(async move {
            engine.submit(Event::new_order(order)).await.map(|_| id)
        }));
    }
    for submit in pending {
        let id = submit.await??;
        println!("{id}: accepted");
    }

    for i in 1..=ORDERS {
        let id = format!("DUR-{i}");
        let order = engine.order(&id).await?.expect("stored");
        let reason = order
            .status_reason
            .map_or_else(|| "(none)".to_owned(), |r| r.to_string());
        println!("{id}: {reason}");
    }
    Ok(())
}
