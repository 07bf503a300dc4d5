//! Scale-out on PostgreSQL (needs `ORDERFLOW_PG_URL`; without it nothing is measured).
//!
//! - `instances`: orders per second through the reference lab with 1, 2 and 4 engine
//!   instances sharing one schema (queued with `enqueue`, run by `work` rounds), against
//!   the same orders through `submit` on one engine with no queue (the single-instance
//!   path) in the same run.
//! - `claim`: the latency of claiming one ready order in an empty schema (the baseline)
//!   and in one holding 1,000,000 completed orders whose events went through the work list
//!   and inbox (1,000,000 rows inserted and deleted in each).
//!
//! `cargo bench --bench scale --features postgres` (`-- --quick` for a short run).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use orderflow::document::{Order, OrderLine};
use orderflow::engine::WorkConfig;
use orderflow::flow::Flow;
use orderflow::rules::PolicyDocument;
use orderflow::store::{PostgresConfig, PostgresStore, SharedStore};
use orderflow::{Config, Engine, Event, MemoryProvider, Timestamp};

const POLICIES: &str = include_str!("../examples/reference-lab/policies.json");
const FLOW: &str = include_str!("../examples/reference-lab/flow.json");
/// Orders per measured batch.
const BATCH: usize = 400;

fn url() -> Option<String> {
    std::env::var("ORDERFLOW_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn connect(url: &str, schema: &str) -> PostgresStore {
    PostgresStore::connect_with(
        PostgresConfig::new(url)
            .with_schema(schema)
            .with_max_connections(8),
    )
    .await
    .expect("connects")
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    client
}

async fn reset(url: &str, schema: &str) {
    admin(url)
        .await
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .expect("drops");
}

async fn publish(engine: &Engine) {
    for policy in PolicyDocument::list_from_json(POLICIES).expect("policies") {
        let name = policy.name.clone();
        engine.create_policy(policy).await.expect("created");
        engine.publish_policy(&name).await.expect("published");
    }
    engine
        .create_flow(Flow::from_json(FLOW).expect("flow"))
        .await
        .expect("created");
    engine.publish("Reference lab").await.expect("published");
}

fn builder() -> orderflow::EngineBuilder {
    Engine::builder()
        .config(Config::default().with_work(WorkConfig::default().with_batch(32)))
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"))
}

fn order(batch: u64, i: usize) -> Event {
    let quantity = if i % 2 == 0 { 150 } else { 10 };
    Event::new_order(
        Order::new(format!("B{batch}-{i}"))
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", quantity)),
    )
}

/// `n` instances on a fresh schema, the lab published (the others built after it, so
/// they load the published flow).
async fn instances(url: &str, schema: &str, n: usize) -> Vec<Engine> {
    reset(url, schema).await;
    let mut engines = Vec::new();
    for i in 0..n {
        let engine = builder()
            .shared_store(connect(url, schema).await)
            .build()
            .await
            .expect("builds");
        if i == 0 {
            publish(&engine).await;
        }
        engines.push(engine);
    }
    engines
}

/// Queues a batch (not timed), then times the instances' work rounds until every order
/// has run.
async fn shared_batch(engines: &[Engine], batch: u64) -> Duration {
    futures::stream::iter(0..BATCH)
        .for_each_concurrent(16, |i| async move {
            engines[i % engines.len()]
                .enqueue(order(batch, i))
                .await
                .expect("queued");
        })
        .await;
    let started = Instant::now();
    let done = std::sync::atomic::AtomicUsize::new(0);
    futures::future::join_all(engines.iter().map(|engine| {
        let done = &done;
        async move {
            while done.load(std::sync::atomic::Ordering::Relaxed) < BATCH {
                let report = engine.work().await.expect("works");
                done.fetch_add(report.events, std::sync::atomic::Ordering::Relaxed);
                if report.claimed == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }))
    .await;
    started.elapsed()
}

fn instances_bench(c: &mut Criterion) {
    let Some(url) = url() else {
        eprintln!("scale: ORDERFLOW_PG_URL is not set; nothing measured");
        return;
    };
    let rt = runtime();
    let mut group = c.benchmark_group("instances");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut batch = 0u64;

    // The single-instance path: `submit` on one engine, no queue.
    let schema = "orderflow_bench_direct";
    let direct = rt.block_on(async {
        reset(&url, schema).await;
        let engine = builder()
            .store(connect(&url, schema).await)
            .build()
            .await
            .expect("builds");
        publish(&engine).await;
        engine
    });
    group.bench_function("submit, 1 instance", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                batch += 1;
                let engine = &direct;
                total += rt.block_on(async {
                    let started = Instant::now();
                    futures::stream::iter(0..BATCH)
                        .for_each_concurrent(32, |i| async move {
                            engine.submit(order(batch, i)).await.expect("submitted");
                        })
                        .await;
                    started.elapsed()
                });
            }
            total
        });
    });
    for n in [1, 2, 4] {
        let schema = format!("orderflow_bench_shared_{n}");
        let engines = rt.block_on(instances(&url, &schema, n));
        group.bench_with_input(BenchmarkId::new("shared", n), &n, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    batch += 1;
                    total += rt.block_on(shared_batch(&engines, batch));
                }
                total
            });
        });
        rt.block_on(reset(&url, &schema));
    }
    rt.block_on(reset(&url, schema));
    group.finish();
}

/// Fills a schema with `n` completed orders (their rows as schema 5 keeps a finished order)
/// whose events passed through the work list and the inbox: the rows inserted and deleted
/// there in batches, as a day of traffic would.
async fn completed_history(url: &str, schema: &str, n: u64) {
    let db = admin(url).await;
    db.batch_execute(&format!(
        "INSERT INTO \"{schema}\".orders (id, revision, document, live, next_wake, completed_at)
         SELECT 'DONE-' || g, 9, '{{}}', false, NULL, 1 FROM generate_series(1, {n}) g"
    ))
    .await
    .expect("orders");
    let step = 100_000;
    for start in (0..n).step_by(step as usize) {
        let end = start + step;
        db.batch_execute(&format!(
            "INSERT INTO \"{schema}\".inbox (order_id, event)
                 SELECT 'DONE-' || g, '{{}}' FROM generate_series({start}, {end} - 1) g;
             INSERT INTO \"{schema}\".work (order_id, ready_at, queued)
                 SELECT 'DONE-' || g, -9223372036854775808, g FROM generate_series({start}, {end} - 1) g;
             DELETE FROM \"{schema}\".inbox;
             DELETE FROM \"{schema}\".work;"
        ))
        .await
        .expect("churn");
    }
}

/// Times `claim` of one ready order, `iters` times (queueing, consuming and releasing it
/// around each, untimed).
async fn claims(store: &PostgresStore, next: &mut u64, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        *next += 1;
        store
            .enqueue(&order(0, *next as usize))
            .await
            .expect("queued");
        let started = Instant::now();
        let leases = store
            .claim(Timestamp(u64::MAX >> 1), 1, Duration::from_secs(30))
            .await
            .expect("claims");
        total += started.elapsed();
        for lease in leases {
            for q in store.inbox(&lease, 10).await.expect("inbox") {
                store.consume(&lease, q.seq, None).await.expect("consumed");
            }
            store.release(&lease).await.expect("released");
        }
    }
    total
}

fn claim_bench(c: &mut Criterion) {
    let Some(url) = url() else {
        return;
    };
    let rt = runtime();
    let mut group = c.benchmark_group("claim");
    let mut next = 0u64;

    let schema = "orderflow_bench_claim_empty";
    let store = rt.block_on(async {
        reset(&url, schema).await;
        connect(&url, schema).await
    });
    group.bench_function("empty", |b| {
        b.iter_custom(|iters| rt.block_on(claims(&store, &mut next, iters)));
    });
    drop(store);
    rt.block_on(reset(&url, schema));

    let schema = "orderflow_bench_claim_history";
    let store = rt.block_on(async {
        reset(&url, schema).await;
        let store = connect(&url, schema).await;
        completed_history(&url, schema, 1_000_000).await;
        store
    });
    // Right after the churn, before any vacuum: the work list's index still holds the dead
    // entries of a million deleted rows.
    group.bench_function("1,000,000 completed, before housekeeping", |b| {
        b.iter_custom(|iters| rt.block_on(claims(&store, &mut next, iters)));
    });
    // What the workers' periodic housekeeping (and autovacuum) do.
    rt.block_on(store.maintain()).expect("maintained");
    group.bench_function("1,000,000 completed", |b| {
        b.iter_custom(|iters| rt.block_on(claims(&store, &mut next, iters)));
    });
    drop(store);
    rt.block_on(reset(&url, schema));
    group.finish();
}

criterion_group!(benches, instances_bench, claim_bench);
criterion_main!(benches);
