//! Concurrency: orders per second through the reference lab (memory store, no-op providers)
//! with 1, 16 and 1,024 orders in flight on Tokio's multi-thread runtime with 2 worker
//! threads, and with 1,024 in flight on 1 worker thread against 2 (goal: 2 cores give at
//! least 1.7x the orders per second of 1). The baseline in the same run is the hand-written
//! lab at the same concurrency. Criterion's element throughput is orders.
//!
//! ```text
//! cargo bench --bench concurrency
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orderflow::Event;

use support::{HandWritten, lab_engine, lab_order};

/// Orders an engine holds before it is replaced by a fresh one.
const ORDERS_PER_ENGINE: u64 = 20_000;

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_time()
        .build()
        .expect("runtime")
}

/// `rounds` orders through each of `in_flight` tasks that submit one after another.
fn time_engine(rt: &tokio::runtime::Runtime, in_flight: u64, rounds: u64) -> Duration {
    let chunk = (ORDERS_PER_ENGINE / in_flight).max(1);
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < rounds {
        let n = chunk.min(rounds - done);
        let engine = rt.block_on(lab_engine());
        let batches: Vec<Vec<Event>> = (0..in_flight)
            .map(|task| {
                (0..n)
                    .map(|r| Event::new_order(lab_order(r * in_flight + task)))
                    .collect()
            })
            .collect();
        let start = Instant::now();
        rt.block_on(async {
            let tasks: Vec<_> = batches
                .into_iter()
                .map(|events| {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        for event in events {
                            engine.submit(event).await.expect("submitted");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("the task ends");
            }
        });
        total += start.elapsed();
        drop(engine);
        done += n;
    }
    total
}

fn time_hand_written(
    rt: &tokio::runtime::Runtime,
    hand: &Arc<HandWritten>,
    in_flight: u64,
    rounds: u64,
) -> Duration {
    let batches: Vec<Vec<_>> = (0..in_flight)
        .map(|task| {
            (0..rounds)
                .map(|r| lab_order(r * in_flight + task))
                .collect()
        })
        .collect();
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = batches
            .into_iter()
            .map(|mut orders| {
                let hand = hand.clone();
                tokio::spawn(async move {
                    for o in &mut orders {
                        hand.run(o).await.expect("sent");
                    }
                    orders
                })
            })
            .collect();
        for task in tasks {
            std::hint::black_box(task.await.expect("the task ends"));
        }
    });
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let two = runtime(2);
    let one = runtime(1);
    let hand = Arc::new(HandWritten::new());

    let mut group = c.benchmark_group("concurrency/in_flight");
    for in_flight in [1u64, 16, 1_024] {
        group.throughput(Throughput::Elements(in_flight));
        group.bench_with_input(
            BenchmarkId::new("engine", in_flight),
            &in_flight,
            |b, &k| {
                b.iter_custom(|rounds| time_engine(&two, k, rounds));
            },
        );
        group.bench_with_input(
            BenchmarkId::new("hand_written", in_flight),
            &in_flight,
            |b, &k| b.iter_custom(|rounds| time_hand_written(&two, &hand, k, rounds)),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("concurrency/workers");
    let in_flight = 1_024;
    group.throughput(Throughput::Elements(in_flight));
    for (workers, rt) in [(1, &one), (2, &two)] {
        group.bench_with_input(BenchmarkId::new("engine", workers), &workers, |b, _| {
            b.iter_custom(|rounds| time_engine(rt, in_flight, rounds));
        });
        group.bench_with_input(
            BenchmarkId::new("hand_written", workers),
            &workers,
            |b, _| b.iter_custom(|rounds| time_hand_written(rt, &hand, in_flight, rounds)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
