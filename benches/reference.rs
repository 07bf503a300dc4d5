//! Engine against hand-written code on the reference scenario of `DOMAIN.md` (IOM's lab):
//! validate the header and lines, assign sources by policy, create fulfillment orders, send
//! each to its store. The engine runs the lab's published policies and flow on the memory
//! store with no-op providers; the baseline, in the same run, is a hand-written async
//! function doing the same policy evaluation and provider calls in the same order (no store,
//! no journey). The figure is the ratio of their medians (goal: at most 1.5x).
//!
//! ```text
//! cargo bench --bench reference
//! ```

mod support;

use criterion::{Criterion, criterion_group, criterion_main};

use support::{HandWritten, lab_engine, lab_order, time_hand_written, time_submits};

/// Orders an engine holds before it is replaced by a fresh one.
const CHUNK: u64 = 10_000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("reference_lab");
    group.bench_function("engine", |b| {
        b.iter_custom(|iters| time_submits(&rt, lab_engine, lab_order, iters, CHUNK));
    });
    let hand = HandWritten::new();
    group.bench_function("hand_written", |b| {
        b.iter_custom(|iters| {
            time_hand_written(&rt, lab_order, iters, CHUNK, async |o| {
                hand.run(o).await.expect("sent");
            })
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
