//! The seed's "Test order flow sample": a Splitter-Merge by order source, each branch
//! validating the order header, run on the memory store.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use orderflow::prelude::*;

fn from_source(source: &'static str) -> impl Fn(RecordRef<'_>) -> bool + Send + Sync {
    move |record| matches!(record, RecordRef::Order(o) if o.order_source.as_deref() == Some(source))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .policy(filter_fn(
            "Filter Policy – BigCommerce",
            Entity::Order,
            from_source("BigCommerce"),
        ))
        .policy(filter_fn(
            "Filter Policy – Orderful",
            Entity::Order,
            from_source("Orderful"),
        ))
        .policy(execution_fn(
            "Order header Validation Policy",
            Entity::Order,
            Criticality::Critical,
            |record| match record {
                RecordMut::Order(o) if o.ship_to.country.is_some() => Check::Passed,
                _ => Check::failed("the order has no ship-to country"),
            },
        ))
        .build()
        .await?;

    let validate = |name: &str, filter: &str| {
        ActionStep::new(name, ActionKind::ValidateOrderHeader)
            .input_event(EventKind::NEW_ORDER)
            .filter(filter)
            .execution_policy("Order header Validation Policy")
    };
    let flow = Flow::builder("Test Order flow sample")
        .description("My first orchestration flow")
        .steps(|s| {
            s.splitter_merge("Validation split", |b| {
                b.branch("Order Source 1", |s| {
                    s.action(validate("Test validation 1", "Filter Policy – BigCommerce"))
                })
                .branch("Order Source 2", |s| {
                    s.action(validate("Test validation 2", "Filter Policy – Orderful"))
                })
            })
        })
        .build()?;
    engine.create_flow(flow).await?;
    let version = engine.publish("Test Order flow sample").await?;
    println!("published 'Test Order flow sample' v{version}\n");

    let orders = [
        Order::new("SO-1001")
            .with_order_source("BigCommerce")
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", 2)),
        Order::new("SO-1002")
            .with_order_source("Orderful")
            .with_ship_to_country("CA")
            .with_line(OrderLine::new("1", "Surface Dock", 1)),
        Order::new("SO-1003")
            .with_order_source("Orderful")
            .with_line(OrderLine::new("1", "Xbox Controller", 4)),
        Order::new("SO-1004")
            .with_order_source("Phone")
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Laptop", 1)),
    ];
    for order in orders {
        let id = order.id.clone();
        engine.submit(Event::new_order(order)).await?;
        let journey = engine.journey(&id).await?;
        let status = engine
            .order(&id)
            .await?
            .and_then(|o| o.status_reason)
            .map_or_else(|| "(none)".to_owned(), |s| s.to_string());
        println!("{journey}  status reason: {status}\n");
    }
    Ok(())
}
