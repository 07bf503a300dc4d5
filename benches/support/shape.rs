//! The split-merge shape (`benches/shape.rs`, `benches/footprint.rs`): validate the header,
//! a Splitter-Merge whose two branches are both taken (each a filtered line validation),
//! then send the order to the ERP through a no-op provider.

use orderflow::document::{Entity, Order, OrderLine, RecordRef};
use orderflow::flow::{ActionStep, Flow};
use orderflow::policy::filter_fn;
use orderflow::{ActionKind, Engine, EventKind, MemoryStore};

use super::NoopProvider;

/// A one-line US order of ten pens: both branches take it.
pub(crate) fn order(i: u64) -> Order {
    Order::new(format!("SO-{i}"))
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 10))
}

/// Branch A's filter ("US"): the order ships to the US.
pub(crate) fn us(r: RecordRef<'_>) -> bool {
    matches!(r, RecordRef::Order(o) if o.ship_to.country.as_deref() == Some("US"))
}

/// Branch B's filter ("Has lines"): the order has lines.
pub(crate) fn has_lines(r: RecordRef<'_>) -> bool {
    matches!(r, RecordRef::Order(o) if !o.lines.is_empty())
}

/// An engine on the memory store with the shape's flow ("Shape") published.
pub(crate) async fn engine() -> Engine {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .provider(NoopProvider::new("ERP"))
        .policy(filter_fn("US", Entity::Order, us))
        .policy(filter_fn("Has lines", Entity::Order, has_lines))
        .build()
        .await
        .expect("engine builds");
    let flow = Flow::builder("Shape")
        .steps(|s| {
            s.action(
                ActionStep::new("Validate", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER),
            )
            .splitter_merge("Split", |b| {
                b.branch("A", |s| {
                    s.action(ActionStep::new("Check A", ActionKind::ValidateOrderLine).filter("US"))
                })
                .branch("B", |s| {
                    s.action(
                        ActionStep::new("Check B", ActionKind::ValidateOrderLine)
                            .filter("Has lines"),
                    )
                })
            })
            .action(ActionStep::new("Send", ActionKind::SendToFulfillmentErp).provider("ERP"))
        })
        .build()
        .expect("flow is valid");
    engine.create_flow(flow).await.expect("created");
    engine.publish("Shape").await.expect("published");
    engine
}
