//! The seed's validation flow through the engine, against a hand-written pipeline doing the
//! same policy evaluation, in the same run.

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::document::{Entity, Order, OrderLine, RecordMut, RecordRef, StatusReason};
use orderflow::flow::{ActionStep, Flow};
use orderflow::policy::{Check, Criticality, execution_fn, filter_fn};
use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore};

fn ship_to_us(order: &Order) -> Check {
    if order.ship_to.country.as_deref() == Some("US") {
        Check::Passed
    } else {
        Check::failed("ship-to country is not US")
    }
}

fn order(i: u64) -> Order {
    Order::new(format!("SO-{i}"))
        .with_order_source(if i % 2 == 0 {
            "BigCommerce"
        } else {
            "Orderful"
        })
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 2))
}

async fn engine() -> Engine {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .policy(filter_fn("BigCommerce", Entity::Order, |r| {
            matches!(r, RecordRef::Order(o) if o.order_source.as_deref() == Some("BigCommerce"))
        }))
        .policy(filter_fn("Orderful", Entity::Order, |r| {
            matches!(r, RecordRef::Order(o) if o.order_source.as_deref() == Some("Orderful"))
        }))
        .policy(execution_fn("Ship-to US", Entity::Order, Criticality::Critical, |r| match r {
            RecordMut::Order(o) => ship_to_us(o),
            _ => Check::Passed,
        }))
        .build()
        .await
        .expect("engine builds");
    let validate = |name: &str, filter: &str| {
        ActionStep::new(name, ActionKind::ValidateOrderHeader)
            .input_event(EventKind::NEW_ORDER)
            .filter(filter)
            .execution_policy("Ship-to US")
    };
    let flow = Flow::builder("Sample")
        .steps(|s| {
            s.splitter_merge("Split", |b| {
                b.branch("1", |s| s.action(validate("V1", "BigCommerce")))
                    .branch("2", |s| s.action(validate("V2", "Orderful")))
            })
        })
        .build()
        .expect("flow is valid");
    engine.create_flow(flow).await.expect("created");
    engine.publish("Sample").await.expect("published");
    engine
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let engine = rt.block_on(engine());
    let mut group = c.benchmark_group("sample_flow");
    let mut i = 0u64;
    group.bench_function("engine", |b| {
        b.iter(|| {
            i += 1;
            rt.block_on(engine.submit(Event::new_order(order(i))))
                .expect("submitted")
        })
    });
    let mut j = 0u64;
    group.bench_function("hand_written", |b| {
        b.iter(|| {
            j += 1;
            let mut o = order(j);
            let source = o.order_source.clone();
            if matches!(source.as_deref(), Some("BigCommerce") | Some("Orderful")) {
                o.status_reason = Some(if ship_to_us(&o).passed() {
                    StatusReason::ORDER_VALIDATION_SUCCESS
                } else {
                    StatusReason::ORDER_VALIDATION_FAILED
                });
            }
            o
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
