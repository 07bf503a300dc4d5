//! Flow size: one order through flows of 10, 100 and 1,000 chained steps (pure header
//! validations, each raising its outcome event), reported per step (criterion's element
//! throughput is steps). The baseline in the same run is hand-written code taking the same
//! steps; the goal is engine time per step flat within 1.2x from 10 to 1,000 steps.
//!
//! ```text
//! cargo bench --bench flow_size
//! ```

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orderflow::flow::{ActionStep, Flow};
use orderflow::{ActionKind, Engine, EventKind, MemoryStore, StatusReason};

use support::{one_line_order, time_hand_written, time_submits};

/// Steps an engine's store holds before the engine is replaced by a fresh one.
const STEPS_PER_ENGINE: u64 = 100_000;

async fn engine(steps: usize) -> Engine {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .build()
        .await
        .expect("engine builds");
    let flow = Flow::builder("Long")
        .steps(|mut s| {
            for n in 0..steps {
                let mut step =
                    ActionStep::new(format!("Step {n}"), ActionKind::ValidateOrderHeader);
                if n == 0 {
                    step = step.input_event(EventKind::NEW_ORDER);
                }
                s = s.action(step);
            }
            s
        })
        .build()
        .expect("flow is valid");
    engine.create_flow(flow).await.expect("created");
    engine.publish("Long").await.expect("published");
    engine
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("flow_size");
    for steps in [10usize, 100, 1_000] {
        let n = steps as u64;
        group.throughput(Throughput::Elements(n));
        let chunk = (STEPS_PER_ENGINE / n).max(1);
        group.bench_with_input(BenchmarkId::new("engine", steps), &steps, |b, &steps| {
            b.iter_custom(|iters| {
                time_submits(&rt, || engine(steps), one_line_order, iters, chunk)
            });
        });
        group.bench_with_input(
            BenchmarkId::new("hand_written", steps),
            &steps,
            |b, &steps| {
                b.iter_custom(|iters| {
                    time_hand_written(&rt, one_line_order, iters, chunk, async |o| {
                        for _ in 0..steps {
                            let ok = o.ship_to.country.is_some();
                            o.status_reason = Some(if ok {
                                StatusReason::ORDER_VALIDATION_SUCCESS
                            } else {
                                StatusReason::ORDER_VALIDATION_FAILED
                            });
                            std::hint::black_box(&o.status_reason);
                        }
                    })
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
