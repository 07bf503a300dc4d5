//! Routing: a "New Order" event on an engine with 1 published flow against one with 1,000
//! published flows of which only one starts on "New Order" (the others on other events).
//! The 1-flow engine is the baseline in the same run; the goal is 1,000 flows within 1.2x.
//!
//! ```text
//! cargo bench --bench routing
//! ```

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use orderflow::flow::{ActionStep, Flow};
use orderflow::{ActionKind, Engine, EventKind, MemoryStore};

use support::{one_line_order, time_submits};

const CHUNK: u64 = 10_000;

async fn engine(flows: usize) -> Engine {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .build()
        .await
        .expect("engine builds");
    for n in 0..flows {
        let trigger = if n == flows / 2 {
            EventKind::NEW_ORDER
        } else {
            EventKind::new(format!("Event {n}"))
        };
        let name = format!("Flow {n}");
        let flow = Flow::builder(name.clone())
            .steps(|s| {
                s.action(
                    ActionStep::new("Validate", ActionKind::ValidateOrderHeader)
                        .input_event(trigger),
                )
            })
            .build()
            .expect("flow is valid");
        engine.create_flow(flow).await.expect("created");
        engine.publish(&name).await.expect("published");
    }
    engine
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("routing");
    for flows in [1usize, 1_000] {
        group.bench_with_input(BenchmarkId::new("flows", flows), &flows, |b, &flows| {
            b.iter_custom(|iters| {
                time_submits(&rt, || engine(flows), one_line_order, iters, CHUNK)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
