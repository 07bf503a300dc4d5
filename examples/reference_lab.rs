//! The reference scenario of Intelligent Order Management's lab, on the memory store:
//! policies and the flow are JSON files (`examples/reference-lab/`), published through the
//! engine; five orders show the four outcomes and a two-line order split between two stores.
//!
//! ```text
//! cargo run --example reference_lab
//! ```

use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Event, MemoryProvider, MemoryStore};

const POLICIES: &str = include_str!("reference-lab/policies.json");
const FLOW: &str = include_str!("reference-lab/flow.json");

fn order(id: &str, country: &str, quantities: &[i64]) -> Order {
    let mut order = Order::new(id)
        .with_order_source("Contoso web shop")
        .with_ship_to_country(country);
    for (n, q) in quantities.iter().enumerate() {
        order = order.with_line(OrderLine::new((n + 1).to_string(), "Surface Pen", *q));
    }
    order
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seattle = MemoryProvider::new("Seattle store 3PL");
    let chicago = MemoryProvider::new("Chicago store 3PL");
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .provider(seattle.clone())
        .provider(chicago.clone())
        .build()
        .await?;

    for policy in PolicyDocument::list_from_json(POLICIES)? {
        let name = policy.name.clone();
        engine.create_policy(policy).await?;
        let version = engine.publish_policy(&name).await?;
        println!("published policy '{name}' v{version}");
    }
    let flow = Flow::from_json(FLOW)?;
    let name = flow.name.clone();
    engine.create_flow(flow).await?;
    let version = engine.publish(&name).await?;
    println!("published flow '{name}' v{version}\n");

    let orders = [
        ("quantity 110, US", order("LAB-1", "US", &[110])),
        ("quantity 10, US", order("LAB-2", "US", &[10])),
        ("quantity 1, US", order("LAB-3", "US", &[1])),
        ("quantity 10, ship-to CA", order("LAB-4", "CA", &[10])),
        (
            "two lines, 150 and 10, US",
            order("LAB-5", "US", &[150, 10]),
        ),
    ];
    for (what, order) in orders {
        let id = order.id.clone();
        engine.submit(Event::new_order(order)).await?;
        let order = engine.order(&id).await?.expect("the order is stored");
        println!("{id} ({what})");
        println!("  order: {}", reason(order.status_reason.as_ref()));
        for line in &order.lines {
            println!(
                "  line {} (quantity {}): {}, source {}",
                line.id,
                line.quantity,
                reason(line.status_reason.as_ref()),
                line.fulfillment_source.as_deref().unwrap_or("-"),
            );
        }
        for fo in &order.fulfillment_orders {
            println!(
                "  fulfillment order {} from {}: {}",
                fo.id,
                fo.fulfillment_source,
                reason(fo.status_reason.as_ref())
            );
        }
        println!();
    }

    let journey = engine.journey("LAB-5").await?;
    println!("journey of LAB-5:\n{journey}");
    for (provider, calls) in [("Seattle", seattle.calls()), ("Chicago", chicago.calls())] {
        let sent: Vec<String> = calls.iter().map(|c| c.record.to_string()).collect();
        println!("{provider} store 3PL received: {}", sent.join(", "));
    }
    Ok(())
}

fn reason(r: Option<&orderflow::StatusReason>) -> String {
    r.map_or_else(|| "(no status reason)".to_owned(), ToString::to_string)
}
