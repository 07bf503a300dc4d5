//! Draws the journey of one reference-lab order (quantity 110 to the US: validated, sourced
//! from Seattle, the Chicago branch skipped) as the README's picture, `docs/journey.svg`, and
//! writes the order's HTML report beside it when asked.
//!
//! ```text
//! cargo run --example journey_picture                      # writes docs/journey.svg
//! cargo run --example journey_picture -- /tmp/LAB-1.html   # the HTML report instead
//! ```

use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::render::{self, Report};
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Event, MemoryProvider, MemoryStore};

const POLICIES: &str = include_str!("reference-lab/policies.json");
const FLOW: &str = include_str!("reference-lab/flow.json");

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"))
        .build()
        .await?;
    for policy in PolicyDocument::list_from_json(POLICIES)? {
        let name = policy.name.clone();
        engine.create_policy(policy).await?;
        engine.publish_policy(&name).await?;
    }
    let flow = Flow::from_json(FLOW)?;
    engine.create_flow(flow.clone()).await?;
    engine.publish(&flow.name).await?;

    let submitted = Order::new("LAB-1")
        .with_order_source("Contoso web shop")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 110));
    engine.submit(Event::new_order(submitted.clone())).await?;
    let journey = engine.journey("LAB-1").await?;
    let now = engine.order("LAB-1").await?.ok_or("the order is stored")?;

    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/docs/journey.svg").to_owned());
    let text = if path.ends_with(".html") {
        render::journey_html(&Report::new(&flow, &journey).before(&submitted).after(&now))
    } else {
        render::journey_svg(&flow, &journey)
    };
    std::fs::write(&path, text)?;
    println!("wrote {path}");
    Ok(())
}
