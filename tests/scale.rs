//! Three engine processes share one PostgreSQL database: 10,000 orders of the reference lab
//! are queued, three child processes run workers on them, one is killed with SIGKILL
//! midway. Every order completes, every fulfillment order takes effect under exactly one
//! idempotency key, and the time until the survivors took over the dead process's orders
//! is printed.
//!
//! Needs `ORDERFLOW_PG_URL` (skipped without it); `.ci/run` runs it. The size can be set
//! with `ORDERFLOW_SCALE_ORDERS` (default 10,000).

#![cfg(all(feature = "postgres", unix))]

mod common;

use std::collections::HashMap;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ledger::{DbLedger, admin, create_effects};
use futures::StreamExt;
use orderflow::document::OrderId;
use orderflow::engine::WorkConfig;
use orderflow::store::{PostgresConfig, PostgresStore};
use orderflow::{Config, Engine, Event, StatusReason};

/// How long a claim holds an order: short, so the takeover is quick to wait for.
const LEASE: Duration = Duration::from_secs(2);

/// An engine instance on the shared schema, with the ledger 3PLs.
async fn instance(url: &str, schema: &str) -> Engine {
    let store = PostgresStore::connect_with(
        PostgresConfig::new(url)
            .with_schema(schema)
            .with_max_connections(8),
    )
    .await
    .unwrap();
    let client = Arc::new(admin(url).await);
    let ledger = |name: &str| DbLedger::new(name, client.clone(), schema);
    Engine::builder()
        .shared_store(store)
        .config(
            Config::default()
                .with_timeout(Duration::from_secs(1))
                .with_work(
                    WorkConfig::default()
                        .with_lease(LEASE)
                        .with_poll(Duration::from_millis(200))
                        .with_batch(32),
                ),
        )
        .provider(ledger("Seattle store 3PL"))
        .provider(ledger("Chicago store 3PL"))
        .build()
        .await
        .unwrap()
}

/// A child process: one engine instance running its worker until killed. Run by the
/// parent test only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of `three_processes_one_killed`"]
async fn scale_child() {
    let url = std::env::var("ORDERFLOW_PG_URL").unwrap();
    let schema = std::env::var("ORDERFLOW_SCALE_SCHEMA").unwrap();
    let engine = instance(&url, &schema).await;
    println!("READY");
    engine.run_worker().await.unwrap();
}

fn spawn_child(url: &str, schema: &str) -> Child {
    common::spawn_test_child(
        "scale_child",
        &[
            ("ORDERFLOW_PG_URL", url),
            ("ORDERFLOW_SCALE_SCHEMA", schema),
        ],
    )
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_one_killed() {
    let Ok(url) = std::env::var("ORDERFLOW_PG_URL") else {
        eprintln!("ORDERFLOW_PG_URL is not set; skipping (CI sets it)");
        return;
    };
    let orders: usize = std::env::var("ORDERFLOW_SCALE_ORDERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let schema = format!("orderflow_scale_{}", std::process::id());
    let db = admin(&url).await;
    let setup = instance(&url, &schema).await;
    common::publish_lab(&setup).await;
    create_effects(&db, &schema).await;

    // Queue every order, then start three instances.
    let started = Instant::now();
    futures::stream::iter(0..orders)
        .map(|i| {
            let setup = &setup;
            async move {
                let quantity = if i % 2 == 0 { 150 } else { 10 };
                setup
                    .enqueue(Event::new_order(common::lab_order(
                        &format!("S-{i}"),
                        quantity,
                    )))
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!("queued {orders} orders in {:?}", started.elapsed());
    let mut children: Vec<Child> = (0..3).map(|_| spawn_child(&url, &schema)).collect();
    let started = Instant::now();

    // Kill one once a third of the orders are through.
    let inbox = format!("SELECT count(*) FROM \"{schema}\".inbox");
    while count(&db, &inbox).await > (orders as i64) * 2 / 3 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the instances make progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victim = children.remove(0);
    let pid = victim.id();
    let held = format!("SELECT count(*) FROM \"{schema}\".work WHERE owner LIKE '{pid}:%'");
    let mut victim = victim;
    victim.kill().expect("SIGKILL");
    let killed = Instant::now();
    let _ = victim.wait();
    let orphaned = count(&db, &held).await;
    println!(
        "killed instance {pid} after {:?}, holding {orphaned} orders",
        started.elapsed()
    );
    // Takeover: until no order is held by the dead instance any more.
    let taken_over = loop {
        let stranded = count(&db, &held).await;
        if stranded == 0 {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < LEASE * 30,
            "the dead instance's orders are taken over"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    println!(
        "takeover: the survivors took the dead instance's {orphaned} orders over within \
         {taken_over:?} of the kill (lease {LEASE:?})"
    );

    // Everything completes.
    let pending = format!(
        "SELECT (SELECT count(*) FROM \"{schema}\".inbox) + (SELECT count(*) FROM \"{schema}\".work)"
    );
    while count(&db, &pending).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "every order completes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "{orders} orders through three instances (one killed) in {elapsed:?}: {:.0} orders/s",
        orders as f64 / elapsed.as_secs_f64()
    );

    let statuses: Vec<(String, Option<StatusReason>)> = futures::stream::iter(0..orders)
        .map(|i| {
            let setup = &setup;
            async move {
                let id = format!("S-{i}");
                let order = setup
                    .order(&OrderId::from(id.as_str()))
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("order {id} is lost"));
                (id, order.status_reason)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (id, status) in &statuses {
        assert_eq!(
            status.as_ref(),
            Some(&StatusReason::SENT_TO_FULFILLMENT),
            "order {id}"
        );
    }
    // One effect per fulfillment order: each was sent under one key, and every order's
    // fulfillment order was sent.
    let rows = db
        .query(
            &format!(
                "SELECT order_id, count(*), sum(calls) FROM \"{schema}\".effects GROUP BY order_id"
            ),
            &[],
        )
        .await
        .unwrap();
    let per_order: HashMap<String, (i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    assert_eq!(
        per_order.len(),
        orders,
        "every order's fulfillment order took effect"
    );
    for (order, (keys, _)) in &per_order {
        assert_eq!(*keys, 1, "order {order}: sent under {keys} keys");
    }
    let repeats: i64 = per_order.values().map(|(_, calls)| calls - 1).sum();
    println!(
        "{orders} orders complete; each fulfillment order took effect under exactly one key; \
         {repeats} calls repeated under the same key (provider de-duplicated)"
    );
    db.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
