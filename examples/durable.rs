//! The reference lab on the SQLite store, killed and restarted: the first run stops dead
//! (`std::process::abort`, no clean shutdown) after the given number of orders; the next
//! run reopens the file, resumes what was in flight and finishes every order.
//!
//! ```text
//! cargo run --example durable --features sqlite -- --kill-after 3
//! cargo run --example durable --features sqlite
//! ```
//!
//! The database is `orderflow-durable.db` in the system's temporary directory; `--fresh`
//! starts over.

use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::rules::PolicyDocument;
use orderflow::store::SqliteStore;
use orderflow::{Engine, Event, MemoryProvider};

const POLICIES: &str = include_str!("reference-lab/policies.json");
const FLOW: &str = include_str!("reference-lab/flow.json");
const ORDERS: u32 = 10;

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

    let engine = Engine::builder()
        .store(SqliteStore::open(&path)?)
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"))
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

    let mut submitted = 0;
    for i in 1..=ORDERS {
        let id = format!("DUR-{i}");
        if engine.order(&id.as_str().into()).await?.is_some() {
            continue;
        }
        let quantity = if i % 2 == 0 { 150 } else { 10 };
        let order = Order::new(id.as_str())
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", quantity));
        engine.submit(Event::new_order(order)).await?;
        submitted += 1;
        println!("{id}: accepted");
        if kill_after == Some(submitted) {
            println!("stopping dead after {submitted} orders; run again without --kill-after");
            std::process::abort();
        }
    }

    for i in 1..=ORDERS {
        let id = format!("DUR-{i}");
        let order = engine.order(&id.as_str().into()).await?.expect("stored");
        let reason = order
            .status_reason
            .map_or_else(|| "(none)".to_owned(), |r| r.to_string());
        println!("{id}: {reason}");
    }
    Ok(())
}
