//! Durability costs, each against the memory store in the same run: orders per second
//! through the reference flow on SQLite with `synchronous=FULL` (every transaction synced),
//! and the time a new engine takes to resume 10,000 executions in flight.
//!
//! `cargo bench --bench durability --features sqlite`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use orderflow::document::{Order, OrderLine};
use orderflow::flow::Flow;
use orderflow::rules::PolicyDocument;
use orderflow::store::SqliteStore;
use orderflow::{Engine, Event, MemoryProvider, MemoryStore, Store};

const POLICIES: &str = include_str!("../examples/reference-lab/policies.json");
const FLOW: &str = include_str!("../examples/reference-lab/flow.json");
/// Orders per measured batch of the throughput benchmark, submitted 64 at a time.
const BATCH: u64 = 512;
const IN_FLIGHT: usize = 64;
/// Executions in flight for the recovery benchmark.
const EXECUTIONS: u64 = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn db_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orderflow-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

/// Makes a fresh store for a benchmark of the given name.
type MakeStore = Box<dyn Fn(&str) -> Arc<dyn Store>>;

fn stores() -> [(&'static str, MakeStore); 2] {
    [
        (
            "memory",
            Box::new(|_| Arc::new(MemoryStore::new()) as Arc<dyn Store>),
        ),
        (
            "sqlite",
            Box::new(|name| Arc::new(SqliteStore::open(db_path(name)).unwrap()) as Arc<dyn Store>),
        ),
    ]
}

async fn engine(store: Arc<dyn Store>, publish: bool) -> Engine {
    let engine = Engine::builder()
        .store(store)
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"))
        .build()
        .await
        .unwrap();
    if publish {
        for policy in PolicyDocument::list_from_json(POLICIES).unwrap() {
            let name = policy.name.clone();
            engine.create_policy(policy).await.unwrap();
            engine.publish_policy(&name).await.unwrap();
        }
        engine
            .create_flow(Flow::from_json(FLOW).unwrap())
            .await
            .unwrap();
        engine.publish("Reference lab").await.unwrap();
    }
    engine
}

fn order(i: u64) -> Order {
    Order::new(format!("B-{i}"))
        .with_ship_to_country("US")
        .with_line(OrderLine::new(
            "1",
            "Surface Pen",
            if i % 2 == 0 { 150 } else { 10 },
        ))
}

async fn submit_all(engine: &Engine, ids: std::ops::Range<u64>) {
    use futures::StreamExt;
    futures::stream::iter(ids)
        .for_each_concurrent(IN_FLIGHT, |i| async move {
            engine.submit(Event::new_order(order(i))).await.unwrap();
        })
        .await;
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("durability/reference_flow");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    for (name, make) in stores() {
        let engine = rt.block_on(engine(make("throughput"), true));
        let mut next = 0u64;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let engine = engine.clone();
                let start_at = next;
                next += iters * BATCH;
                async move {
                    let started = Instant::now();
                    submit_all(&engine, start_at..start_at + iters * BATCH).await;
                    started.elapsed()
                }
            });
        });
    }
    group.finish();
}

fn recovery(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("durability/recover_10k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for (name, make) in stores() {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // 10,000 executions in flight: submitted while the flow is paused, so
                    // each waits in the store with its first step ready.
                    let store = make("recovery");
                    rt.block_on(async {
                        let first = engine(store.clone(), true).await;
                        first.pause("Reference lab").await.unwrap();
                        submit_all(&first, 0..EXECUTIONS).await;
                    });
                    // A new engine on the store resumes them all.
                    let started = Instant::now();
                    rt.block_on(async {
                        let second = engine(store.clone(), false).await;
                        second.resume("Reference lab").await.unwrap();
                    });
                    total += started.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, throughput, recovery);
criterion_main!(benches);
