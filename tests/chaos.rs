//! A chaos run on PostgreSQL: engine processes started at different times share one
//! schema while the catalog changes under them — the flow paused and resumed, stopped and
//! republished at a new version — one process is killed with SIGKILL and started again,
//! and poison orders are mixed in: some whose stored state no longer decodes, some whose
//! next event starts a flow that names a provider the workers do not have.
//!
//! Every acknowledged healthy order must complete; each fulfillment order must take effect
//! once, at its own provider, under one idempotency key; every poison order must be set
//! aside with its reason. The counts are printed.
//!
//! Needs `ORDERFLOW_PG_URL` (skipped without it); `.ci/run` runs it.

#![cfg(all(feature = "postgres", unix))]

mod common;

use std::collections::HashSet;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ledger::{DbLedger, admin, create_effects};
use orderflow::document::OrderId;
use orderflow::engine::WorkConfig;
use orderflow::flow::{ActionStep, Flow, FlowStatus};
use orderflow::store::{PostgresConfig, PostgresStore};
use orderflow::{ActionKind, Config, Engine, Event, EventKind, StatusReason};

const LEASE: Duration = Duration::from_secs(2);
const WAVES: usize = 8;
const PER_WAVE: usize = 60;

/// An engine instance on the schema. Workers have the two store 3PLs; the parent also has
/// the returns desk, which the workers lack.
async fn instance(url: &str, schema: &str, returns_desk: bool) -> Engine {
    let store = PostgresStore::connect_with(
        PostgresConfig::new(url)
            .with_schema(schema)
            .with_max_connections(6),
    )
    .await
    .unwrap();
    let client = Arc::new(admin(url).await);
    let mut builder = Engine::builder()
        .shared_store(store)
        .config(
            Config::default()
                .with_timeout(Duration::from_secs(1))
                .with_work(
                    WorkConfig::default()
                        .with_lease(LEASE)
                        .with_poll(Duration::from_millis(100))
                        .with_batch(16),
                ),
        )
        .provider(DbLedger::new("Seattle store 3PL", client.clone(), schema))
        .provider(DbLedger::new("Chicago store 3PL", client.clone(), schema));
    if returns_desk {
        builder = builder.provider(DbLedger::new("Returns desk", client, schema));
    }
    builder.build().await.unwrap()
}

/// A child process: one worker instance, built whenever the parent starts it, running
/// until killed. Run by the parent test only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a child process of `chaos_on_postgres`"]
async fn chaos_child() {
    let url = std::env::var("ORDERFLOW_PG_URL").unwrap();
    let schema = std::env::var("ORDERFLOW_CHAOS_SCHEMA").unwrap();
    let engine = instance(&url, &schema, false).await;
    engine.run_worker().await.unwrap();
}

fn spawn_child(url: &str, schema: &str) -> Child {
    common::spawn_test_child(
        "chaos_child",
        &[
            ("ORDERFLOW_PG_URL", url),
            ("ORDERFLOW_CHAOS_SCHEMA", schema),
        ],
    )
}

fn returns_flow() -> Flow {
    Flow::builder("Returns")
        .steps(|s| {
            s.action(
                ActionStep::new("To the returns desk", ActionKind::SendToFulfillment)
                    .input_event(EventKind::new("Return requested"))
                    .provider("Returns desk"),
            )
        })
        .build()
        .unwrap()
}

async fn count(db: &tokio_postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).await.unwrap().get(0)
}

/// Waits until `done` holds, failing after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_postgres() {
    let Ok(url) = std::env::var("ORDERFLOW_PG_URL") else {
        eprintln!("ORDERFLOW_PG_URL is not set; skipping (CI sets it)");
        return;
    };
    let schema = format!("orderflow_chaos_{}", std::process::id());
    let db = admin(&url).await;
    let admin_engine = instance(&url, &schema, true).await;
    create_effects(&db, &schema).await;
    let started = Instant::now();

    // The first worker starts on an empty catalog.
    let mut children = vec![spawn_child(&url, &schema)];
    let mut workers = 1;
    common::publish_lab(&admin_engine).await;
    admin_engine.create_flow(returns_flow()).await.unwrap();
    admin_engine.publish("Returns").await.unwrap();

    let inbox = format!("SELECT count(*) FROM \"{schema}\".inbox");
    let sent = |ids: Vec<String>| {
        let db = &db;
        let schema = &schema;
        async move {
            let rows = db
                .query(
                    &format!(
                        "SELECT count(DISTINCT order_id) FROM \"{schema}\".effects
                         WHERE order_id = ANY($1)"
                    ),
                    &[&ids],
                )
                .await
                .unwrap();
            rows[0].get::<_, i64>(0) as usize == ids.len()
        }
    };
    let mut healthy: Vec<String> = Vec::new();
    let mut corrupt: Vec<String> = Vec::new();
    let mut broken: Vec<String> = Vec::new();
    let mut kills = 0;
    let mut catalog_changes = Vec::new();
    for wave in 0..WAVES {
        let ids: Vec<String> = (0..PER_WAVE).map(|i| format!("W{wave}-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let quantity = if i % 2 == 0 { 150 } else { 10 };
            admin_engine
                .enqueue(Event::new_order(common::lab_order(id, quantity)))
                .await
                .unwrap();
        }
        healthy.extend(ids.iter().cloned());
        match wave {
            // A second worker, built after the publishes.
            1 => {
                children.push(spawn_child(&url, &schema));
                workers += 1;
            }
            // Paused while orders queue; resumed a second later.
            2 => {
                admin_engine.pause("Reference lab").await.unwrap();
                catalog_changes.push("pause");
                for i in 0..PER_WAVE {
                    let id = format!("P{wave}-{i}");
                    admin_engine
                        .enqueue(Event::new_order(common::lab_order(&id, 10)))
                        .await
                        .unwrap();
                    healthy.push(id);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                admin_engine.resume("Reference lab").await.unwrap();
                catalog_changes.push("resume");
            }
            // One worker killed with SIGKILL mid-run, a third started, the killed one
            // started again later.
            3 => {
                let mut victim = children.remove(0);
                victim.kill().expect("SIGKILL");
                let _ = victim.wait();
                kills += 1;
                children.push(spawn_child(&url, &schema));
                workers += 1;
            }
            4 => {
                children.push(spawn_child(&url, &schema));
                workers += 1;
            }
            // Republished at a new version once the queue is drained (events that arrive
            // while a flow is stopped start nothing, by design).
            5 => {
                wait_until("the queue drains", Duration::from_secs(120), || async {
                    count(&db, &inbox).await == 0
                })
                .await;
                admin_engine.stop("Reference lab").await.unwrap();
                let mut next = admin_engine.flow("Reference lab").unwrap();
                next.version = semver::Version::new(1, 1, 0);
                admin_engine.update_flow(next).await.unwrap();
                admin_engine.publish("Reference lab").await.unwrap();
                catalog_changes.push("stop, edit and republish at 1.1.0");
            }
            // Poison: stored state that no longer decodes, and a next event for a flow the
            // workers cannot run.
            6 => {
                let victims: Vec<String> = healthy.drain(..10).collect();
                wait_until(
                    "the poison orders' first events complete",
                    Duration::from_secs(120),
                    || sent(victims.clone()),
                )
                .await;
                for (n, id) in victims.into_iter().enumerate() {
                    if n % 2 == 0 {
                        wait_until(
                            "the order leaves the work list",
                            Duration::from_secs(60),
                            || {
                                let db = &db;
                                let sql = format!(
                                    "SELECT count(*) FROM \"{schema}\".work WHERE order_id = '{id}'"
                                );
                                async move { count(db, &sql).await == 0 }
                            },
                        )
                        .await;
                        db.execute(
                            &format!(
                                "UPDATE \"{schema}\".orders SET document = '{{' WHERE id = $1"
                            ),
                            &[&id],
                        )
                        .await
                        .unwrap();
                        admin_engine
                            .enqueue(Event::new(
                                format!("note-{id}"),
                                EventKind::new("Note"),
                                id.as_str(),
                            ))
                            .await
                            .unwrap();
                        corrupt.push(id);
                    } else {
                        admin_engine
                            .enqueue(Event::new(
                                format!("return-{id}"),
                                EventKind::new("Return requested"),
                                id.as_str(),
                            ))
                            .await
                            .unwrap();
                        broken.push(id);
                    }
                }
            }
            _ => {}
        }
    }

    // Everything healthy completes; every poison order is set aside.
    let poison: HashSet<OrderId> = corrupt
        .iter()
        .chain(&broken)
        .map(|id| OrderId::from(id.as_str()))
        .collect();
    wait_until(
        "every healthy order is sent",
        Duration::from_secs(180),
        || sent(healthy.clone()),
    )
    .await;
    wait_until(
        "every poison order is set aside",
        Duration::from_secs(120),
        || async {
            let aside = admin_engine.set_aside_orders().await.unwrap();
            aside.len() >= poison.len()
        },
    )
    .await;
    let elapsed = started.elapsed();
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }

    for id in &healthy {
        let order = admin_engine
            .order(&OrderId::from(id.as_str()))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {id} is lost"));
        assert_eq!(
            order.status_reason.as_ref(),
            Some(&StatusReason::SENT_TO_FULFILLMENT),
            "order {id}"
        );
    }
    // Each fulfillment order took effect once, at one provider, under one key.
    let rows = db
        .query(
            &format!(
                "SELECT fulfillment_order, count(*), count(DISTINCT provider), sum(calls)
                 FROM \"{schema}\".effects GROUP BY fulfillment_order"
            ),
            &[],
        )
        .await
        .unwrap();
    let mut repeats = 0;
    for row in &rows {
        let (fo, keys, providers, calls): (String, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!((keys, providers), (1, 1), "fulfillment order {fo}");
        repeats += calls - 1;
    }
    let returns = count(
        &db,
        &format!("SELECT count(*) FROM \"{schema}\".effects WHERE provider = 'Returns desk'"),
    )
    .await;
    assert_eq!(returns, 0, "no worker ran the flow it cannot run");

    let aside = admin_engine.set_aside_orders().await.unwrap();
    let aside_ids: HashSet<OrderId> = aside.iter().map(|a| a.order.clone()).collect();
    assert_eq!(aside_ids, poison, "exactly the poison orders are set aside");
    for a in &aside {
        let id = a.order.as_str();
        let expected = if corrupt.iter().any(|c| c == id) {
            "decode"
        } else {
            "Returns desk"
        };
        assert!(a.reason.contains(expected), "{id}: {}", a.reason);
    }
    let republished = futures::future::join_all(healthy.iter().map(|id| {
        let engine = &admin_engine;
        async move {
            engine
                .order_state(&OrderId::from(id.as_str()))
                .await
                .unwrap()
                .is_some_and(|s| *s.executions()[0].version() == semver::Version::new(1, 1, 0))
        }
    }))
    .await
    .into_iter()
    .filter(|on_new| *on_new)
    .count();
    assert!(
        republished > 0,
        "orders after the republish ran version 1.1.0"
    );
    assert_eq!(
        admin_engine.flow("Reference lab").unwrap().status,
        FlowStatus::Published
    );
    println!(
        "chaos on PostgreSQL: {} healthy orders acknowledged, {} completed ({republished} on \
         the republished 1.1.0); {} fulfillment orders each took effect once at one provider \
         ({repeats} calls repeated under their key); {} poison orders ({} undecodable, {} \
         needing a missing provider), {} set aside with their reasons; catalog changes \
         during the run: {}; worker processes started: {workers}, SIGKILLed and replaced: \
         {kills}; {:?}",
        healthy.len(),
        healthy.len(),
        rows.len(),
        poison.len(),
        corrupt.len(),
        broken.len(),
        aside.len(),
        catalog_changes.join(", "),
        elapsed
    );
    db.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
