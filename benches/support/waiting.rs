//! A flow that leaves each order's execution waiting (`benches/memory.rs`,
//! `benches/footprint.rs`, `benches/events.rs`): "Wait for shipment" validates the header on
//! "New Order", which passes, then waits at a step that takes "Shipped".

use orderflow::flow::{ActionStep, Flow};
use orderflow::{ActionKind, Config, Engine, EventKind, MemoryStore, Store};

/// An engine on the memory store with "Wait for shipment" published.
pub(crate) async fn engine() -> Engine {
    engine_with(MemoryStore::new(), Config::default()).await
}

/// An engine on `store` with `config` and "Wait for shipment" published.
pub(crate) async fn engine_with(store: impl Store, config: Config) -> Engine {
    let engine = Engine::builder()
        .store(store)
        .config(config)
        .build()
        .await
        .expect("engine builds");
    let flow = Flow::builder("Wait for shipment")
        .steps(|s| {
            s.action(
                ActionStep::new("Validate", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER),
            )
            .action(
                ActionStep::new("On shipment", ActionKind::ValidateOrderLine)
                    .input_event(EventKind::SHIPPED),
            )
        })
        .build()
        .expect("flow is valid");
    engine.create_flow(flow).await.expect("created");
    engine
        .publish("Wait for shipment")
        .await
        .expect("published");
    engine
}
