//! A graph shape, per order: validate the header, a Splitter-Merge whose two branches are
//! both taken (each a filtered line validation), then send the order to the ERP through a
//! no-op provider (`support::shape`). The engine on the memory store against, in the same
//! run, hand-written code doing the same checks and the same call. Goal: at most 2.7 µs per
//! order on one core (half the fastest in-memory DAG executor's time for the same shape),
//! and at most 30 allocations per order (`benches/footprint.rs` counts them).
//!
//! ```text
//! cargo bench --bench shape
//! ```

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::StatusReason;
use orderflow::document::{Entity, RecordRef};
use orderflow::policy::{FilterPolicy, filter_fn};

use support::shape::{engine, has_lines, order, us};
use support::{NoopClient, time_hand_written, time_submits};

const CHUNK: u64 = 10_000;

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
