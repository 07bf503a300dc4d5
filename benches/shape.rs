//! A graph shape, per order: validate the header, a Splitter-Merge whose two branches are
//! both taken (each a filtered line validation), then send the order to the ERP through a
//! no-op provider. The engine on the memory store against, in the same run, hand-written
//! code doing the same checks and the same call (goal: under 5 µs per order on one core).
//!
//! ```text
//! cargo bench --bench shape
//! ```

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::document::{Entity, Order, OrderLine, RecordRef};
use orderflow::flow::{ActionStep, Flow};
use orderflow::policy::{FilterPolicy, filter_fn};
use orderflow::{ActionKind, Engine, EventKind, MemoryStore, StatusReason};

use support::{NoopClient, NoopProvider, time_hand_written, time_submits};

const CHUNK: u64 = 10_000;

fn order(i: u64) -> Order {
    Order::new(format!("SO-{i}"))
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 10))
}

fn us(r: RecordRef<'_>) -> bool {
    matches!(r, RecordRef::Order(o) if o.ship_to.country.as_deref() == Some("US"))
}

fn has_lines(r: RecordRef<'_>) -> bool {
    matches!(r, RecordRef::Order(o) if !o.lines.is_empty())
}

async fn engine() -> Engine {
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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("shape_split_merge");
    group.bench_function("engine", |b| {
        b.iter_custom(|iters| time_submits(&rt, engine, order, iters, CHUNK));
    });
    let us_filter = filter_fn("US", Entity::Order, us);
    let lines_filter = filter_fn("Has lines", Entity::Order, has_lines);
    let erp = NoopClient;
    group.bench_function("hand_written", |b| {
        b.iter_custom(|iters| {
            time_hand_written(&rt, order, iters, CHUNK, async |o| {
                o.status_reason = Some(StatusReason::ORDER_VALIDATION_SUCCESS);
                for filter in [&us_filter as &dyn FilterPolicy, &lines_filter] {
                    if filter.admits(RecordRef::Order(o)) {
                        o.status_reason = Some(StatusReason::ORDER_VALIDATION_SUCCESS);
                    }
                }
                let key = format!("{}/send", o.id);
                erp.send(&key, o).await.expect("sent");
                o.status_reason = Some(StatusReason::SENT_TO_FULFILLMENT);
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
