//! The PostgreSQL store: it passes the store conformance suite (directly and through
//! `Arc<dyn Store>`), keeps everything for a new store on the same schema, migrates once when
//! stores start together, refuses a schema from the future, fails clearly without showing
//! the password, and an engine resumes from it.
//!
//! The server comes from `ORDERFLOW_PG_URL` (CI sets it); without it each test says so and
//! passes. Every test works in schemas of its own, with random names, and drops them at the
//! end, even when it fails.

#![cfg(feature = "postgres")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use orderflow::clock::Timestamp;
use orderflow::document::{Order, OrderId};
use orderflow::execution::OrderState;
use orderflow::flow::Flow;
use orderflow::journey::StepRow;
use orderflow::rules::{PolicyDocument, PolicyRecord, PolicyStatus};
use orderflow::store::{ChangeSet, PostgresConfig, PostgresStore, Store, StoreErrorKind};
use orderflow::testing::conformance::check_store;
use serde_json::json;

use common::{FLOW, POLICIES};

/// The test server's URL, or `None` (and a notice) when none is configured.
fn server(test: &str) -> Option<String> {
    match std::env::var("ORDERFLOW_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("{test}: ORDERFLOW_PG_URL is not set; skipping (CI sets it)");
            None
        }
    }
}

/// The schemas a test creates: each name is new, and all are dropped when this is.
#[derive(Debug)]
struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            names: Mutex::new(Vec::new()),
        }
    }

    /// A schema name no other test or run uses.
    fn fresh(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "orderflow_test_{}_{nanos:09}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name.clone());
        name
    }

    /// The configuration of a store on a fresh schema.
    fn config(&self) -> PostgresConfig {
        PostgresConfig::new(&self.url).with_schema(self.fresh())
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(self.names.get_mut().unwrap_or_else(PoisonError::into_inner));
        if names.is_empty() {
            return;
        }
        let url = self.url.clone();
        // On a thread with a runtime of its own: this may run while a test's runtime
        // unwinds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                let connection = tokio::spawn(connection);
                for name in names {
                    client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await
                        .unwrap();
                }
                drop(client);
                let _ = connection.await;
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("the test schemas could not be dropped");
        }
    }
}

/// Connects a store from synchronous code inside a multi-threaded runtime, as
/// `check_store`'s `make` needs: its connections run on the test's runtime.
fn connect_blocking(config: PostgresConfig) -> PostgresStore {
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(PostgresStore::connect_with(config))
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_store_conformance_suite() {
    let Some(url) = server("passes_the_store_conformance_suite") else {
        return;
    };
    let schemas = Schemas::new(&url);
    check_store(|| connect_blocking(schemas.config())).await;
    check_store(|| Arc::new(connect_blocking(schemas.config())) as Arc<dyn Store>).await;
}

/// An order state at `revision`: with a live execution when `live`, and a retrying token
/// waking at `wake` (ms) when given.
fn state(id: &str, revision: u64, live: bool, wake: Option<u64>) -> OrderState {
    let mut value = serde_json::to_value(OrderState::new(Order::new(id))).unwrap();
    value["revision"] = json!(revision);
    if live || wake.is_some() {
        let token = |id: u32, phase: serde_json::Value| {
            json!({
                "id": id, "at": {"Node": id}, "phase": phase,
                "records": {"lines": null, "fulfillment_orders": null}, "last": null,
                "trigger": null, "took": null, "attempt": 1, "calls": 0, "earlier": null,
                "frames": [], "absorbed": [],
            })
        };
        let mut tokens = vec![token(0, json!("Parked"))];
        if let Some(wake) = wake {
            tokens.push(token(1, json!({"Retrying": {"at": wake}})));
        }
        value["executions"] = json!([{
            "id": {"order": id, "seq": 1}, "flow": "Reference lab", "version": "1.0.0",
            "plan": 0, "trigger": 1, "round": 0, "tokens": tokens, "joins": [],
            "consumed": [], "accepted": [], "next_token": 2, "steps": 0, "started": 0,
            "ended": null, "cancelled": null,
        }]);
    }
    serde_json::from_value(value).unwrap()
}

/// The commit of `state` over revision `expected`, carrying its document, every execution
/// and timeline entry, and `rows`.
fn change(expected: Option<u64>, state: OrderState, rows: Vec<StepRow>) -> ChangeSet {
    let mut change = ChangeSet::diff(None, &state);
    change.expected = expected;
    change.with_journey(rows)
}

fn step(order: &str, name: &str) -> StepRow {
    let _ = order;
    serde_json::from_value(json!({
        "execution": 1, "round": 0, "step": {"Node": 0},
        "records": {"lines": null, "fulfillment_orders": null}, "sizes": [0, 0],
        "outcome": "succeeded", "attempts": 1, "started": 10, "ended": 20,
        "details": [{"Note": name}], "findings": [],
    }))
    .unwrap()
}

/// The name a fixture row carries (its note).
fn note(row: &StepRow) -> String {
    match row.details() {
        [orderflow::journey::Detail::Note(name)] => name.clone(),
        other => panic!("not a fixture row: {other:?}"),
    }
}

fn id(s: &str) -> OrderId {
    OrderId::from(s)
}

/// Writes one of everything.
async fn fill(store: &PostgresStore) -> (Flow, PolicyRecord) {
    let mut flow = Flow::from_json(FLOW).unwrap();
    store.save_flow(&flow, false).await.unwrap();
    store.save_flow(&flow, true).await.unwrap();
    flow.description = "edited after publishing".into();
    store.save_flow(&flow, false).await.unwrap();

    let document = PolicyDocument::list_from_json(POLICIES).unwrap().remove(0);
    let mut record = PolicyRecord::new(document, None);
    record.status = PolicyStatus::Published;
    record.last_published = Some(1);
    store.save_policy(&record, true).await.unwrap();

    store
        .commit(change(
            None,
            state("A", 1, true, Some(7)),
            vec![step("A", "Validate")],
        ))
        .await
        .unwrap();
    store
        .commit(change(
            Some(1),
            state("A", 2, true, Some(5)),
            vec![step("A", "Route"), step("A", "Send")],
        ))
        .await
        .unwrap();
    store
        .commit(change(None, state("B", 1, false, None), Vec::new()))
        .await
        .unwrap();
    (flow, record)
}

/// Checks what `fill` wrote.
async fn check(store: &PostgresStore, flow: &Flow, record: &PolicyRecord) {
    assert_eq!(store.flows().await.unwrap(), vec![flow.clone()]);
    let frozen = store
        .flow_version(&flow.name, &flow.version)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        frozen.description, flow.description,
        "a frozen version changed"
    );
    assert_eq!(store.policies().await.unwrap(), vec![record.clone()]);
    assert_eq!(
        store.policy_version(record.name(), 1).await.unwrap(),
        Some(record.document.clone())
    );
    assert_eq!(
        store.load(&id("A")).await.unwrap(),
        Some(state("A", 2, true, Some(5)))
    );
    let names: Vec<_> = store
        .journey(&id("A"))
        .await
        .unwrap()
        .into_iter()
        .map(|row| note(&row))
        .collect();
    assert_eq!(names, ["Validate", "Route", "Send"]);
    assert_eq!(store.live_orders().await.unwrap(), vec![id("A")]);
    assert_eq!(
        store
            .due(orderflow::clock::Timestamp::from_millis(6), 10)
            .await
            .unwrap(),
        vec![id("A")]
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(orderflow::clock::Timestamp::from_millis(5))
    );
}

#[tokio::test]
async fn a_new_store_on_the_schema_sees_everything() {
    let Some(url) = server("a_new_store_on_the_schema_sees_everything") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    assert_eq!(store.schema(), config.schema);
    let (flow, record) = fill(&store).await;
    check(&store, &flow, &record).await;
    drop(store);

    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    check(&store, &flow, &record).await;
    // It goes on where the other left off: the journey keeps its order.
    store
        .commit(change(
            Some(2),
            state("A", 3, false, None),
            vec![step("A", "Done")],
        ))
        .await
        .unwrap();
    let journey = store.journey(&id("A")).await.unwrap();
    assert_eq!(journey.last().map(note).as_deref(), Some("Done"));
    assert_eq!(journey.len(), 4);
    assert_eq!(store.live_orders().await.unwrap(), Vec::<OrderId>::new());

    // Another schema on the same database is another store.
    let other = PostgresStore::connect_with(schemas.config()).await.unwrap();
    assert_eq!(other.load(&id("A")).await.unwrap(), None);
    assert!(other.flows().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_starting_together_migrate_once() {
    let Some(url) = server("stores_starting_together_migrate_once") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    let starts = (0..6).map(|_| {
        let config = config.clone().with_max_connections(2);
        tokio::spawn(PostgresStore::connect_with(config))
    });
    let stores: Vec<_> = futures::future::join_all(starts)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    // They share the orders: a commit through one conflicts through another.
    stores[0]
        .commit(change(None, state("S", 1, false, None), Vec::new()))
        .await
        .unwrap();
    let err = stores[5]
        .commit(change(None, state("S", 1, false, None), Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");

    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            &format!(
                "SELECT version FROM \"{}\".schema_migrations",
                config.schema
            ),
            &[],
        )
        .await
        .unwrap();
    let mut versions: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
    versions.sort_unstable();
    let expected: Vec<i32> = (1..=versions.len() as i32).collect();
    assert_eq!(versions, expected, "each migration applied once");
    assert!(versions.len() >= 3, "every migration applied: {versions:?}");
}

#[tokio::test]
async fn a_schema_from_the_future_is_refused() {
    let Some(url) = server("a_schema_from_the_future_is_refused") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    drop(PostgresStore::connect_with(config.clone()).await.unwrap());
    // As a newer orderflow's migration would have left it.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "INSERT INTO \"{}\".schema_migrations (version) VALUES (99)",
            config.schema
        ))
        .await
        .unwrap();
    let err = PostgresStore::connect_with(config).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Refused, "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[tokio::test]
async fn dropped_tables_read_as_corrupt() {
    let Some(url) = server("dropped_tables_read_as_corrupt") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    fill(&store).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "UPDATE \"{0}\".executions SET state = '\\x7f00'::bytea WHERE order_id = 'A'",
            config.schema
        ))
        .await
        .unwrap();
    let err = store.load(&id("A")).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    for part in [
        config.schema.as_str(),
        "order A",
        "execution 1",
        "format version 127",
    ] {
        assert!(err.to_string().contains(part), "{part}: {err}");
    }
    client
        .batch_execute(&format!("DROP TABLE \"{0}\".journal", config.schema))
        .await
        .unwrap();
    let err = store.load(&id("A")).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    assert!(err.to_string().contains(&config.schema), "{err}");
    let err = store.journey(&id("A")).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
}

#[tokio::test]
async fn an_order_written_with_json_numbers_reads_as_the_decimals_written() {
    let Some(url) = server("an_order_written_with_json_numbers_reads_as_the_decimals_written")
    else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    let client = client(&url).await;
    schema_before(&client, &config.schema, 5).await;
    // The row's state as earlier versions wrote it: the order's numbers are JSON numbers.
    let mut state = serde_json::to_value(OrderState::new(Order::new("SO-OLD"))).unwrap();
    state["order"] = json!({
        "id": "SO-OLD",
        "custom": {"weight": 0.3},
        "lines": [
            {"id": "1", "product": "Pen", "quantity": 2.0, "price": 19.99},
            {"id": "2", "product": "Coffee", "quantity": 0.3},
        ],
    });
    let text = serde_json::to_string(&state).unwrap();
    assert!(text.contains(r#""quantity":0.3"#), "{text}");
    old_order(&client, &config.schema, ("SO-OLD", 0), &text, false, &[]).await;
    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    let loaded = store.load(&id("SO-OLD")).await.unwrap().unwrap();
    let numbers: Vec<String> = loaded
        .order()
        .lines
        .iter()
        .map(|l| format!("{} {:?}", l.quantity, l.price.map(|p| p.to_string())))
        .collect();
    assert_eq!(numbers, ["2 Some(\"19.99\")", "0.3 None"]);
    assert_eq!(
        loaded.order().custom["weight"],
        orderflow::document::Value::Number(orderflow::Decimal::new(3, 1))
    );
}

/// Everything an error shows: its message, its sources' and its `Debug`.
fn shown(err: &orderflow::store::StoreError) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        text.push_str(&format!(" {e} {e:?}"));
        source = e.source();
    }
    text
}

#[tokio::test]
async fn a_wrong_url_is_unavailable_and_hides_the_password() {
    // Needs no server: nothing listens on port 1.
    let url = "postgres://orderflow:hunter2-do-not-show@127.0.0.1:1/test";
    let config = PostgresConfig::new(url).with_connect_timeout(Duration::from_secs(2));
    assert!(!format!("{config:?}").contains("hunter2"));
    let err = PostgresStore::connect_with(config).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.is_retryable());
    let text = shown(&err);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");

    // A URL that does not parse is a mistake to fix, not to retry.
    let err = PostgresStore::connect("postgres://orderflow:hunter2-do-not-show@127.0.0.1:port/x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Other, "{err}");
    assert!(!err.is_retryable());
    assert!(!shown(&err).contains("hunter2"), "{err:?}");

    for config in [
        PostgresConfig::new(url).with_schema(""),
        PostgresConfig::new(url).with_schema("x".repeat(64)),
        PostgresConfig::new(url).with_max_connections(0),
    ] {
        let err = PostgresStore::connect_with(config).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Other, "{err}");
        assert!(!shown(&err).contains("hunter2"), "{err:?}");
    }
}

#[tokio::test]
async fn a_missing_database_or_user_is_refused() {
    let Some(url) = server("a_missing_database_or_user_is_refused") else {
        return;
    };
    let config: tokio_postgres::Config = url.parse().unwrap();
    let (host, port) = match (&config.get_hosts()[0], config.get_ports().first()) {
        (tokio_postgres::config::Host::Tcp(host), port) => (host.clone(), *port.unwrap_or(&5432)),
        _ => return,
    };
    let user = config.get_user().unwrap_or("postgres");
    let err = PostgresStore::connect(&format!(
        "postgres://{user}:hunter2@{host}:{port}/orderflow_no_such_database"
    ))
    .await
    .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Refused, "{err}");
    assert!(!shown(&err).contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn an_engine_resumes_from_the_database() {
    let Some(url) = server("an_engine_resumes_from_the_database") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    common::engine_resumes_from_the_store(|| async {
        PostgresStore::connect_with(config.clone()).await.unwrap()
    })
    .await;
}

/// Two stores on one schema: two instances.
async fn two_instances(schemas: &Schemas) -> (PostgresStore, PostgresStore) {
    let config = schemas.config();
    let a = PostgresStore::connect_with(config.clone()).await.unwrap();
    let b = PostgresStore::connect_with(config).await.unwrap();
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_work_sharing_protocol() {
    let Some(url) = server("keeps_the_work_sharing_protocol") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let (a, b) = two_instances(&schemas).await;
    let lease = Duration::from_millis(300);
    common::shared::check_protocol(&a, &b, lease, || {
        tokio::time::sleep(lease + Duration::from_millis(100))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_orders() {
    let Some(url) = server("two_instances_share_the_orders") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let (a, b) = two_instances(&schemas).await;
    common::shared::instances_share_orders(a, b, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_instance_is_fenced_off() {
    let Some(url) = server("a_stalled_instance_is_fenced_off") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let (a, b) = two_instances(&schemas).await;
    let lease = Duration::from_secs(1);
    common::shared::a_stalled_instance_is_fenced_off(a, b, lease, || {
        tokio::time::sleep(lease + Duration::from_millis(200))
    })
    .await;
}

/// The server drops the connection in the middle of a commit (`pg_terminate_backend` on
/// the backend running it): the commit does not land, the order is given back and run
/// again from what was committed, on a new connection, with no transition recorded twice
/// and each fulfillment order sent under one key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_a_commit() {
    let Some(url) = server("a_connection_lost_during_a_commit") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    let schema = config.schema.clone();
    let store = PostgresStore::connect_with(config).await.unwrap();
    let seattle = common::shared::Ledger3pl::new("Seattle store 3PL");
    let chicago = common::shared::Ledger3pl::new("Chicago store 3PL");
    let engine = common::shared::shared_engine(
        store,
        seattle.instance(),
        chicago.instance(),
        // A failed round leaves its order claimed until the lease lapses.
        Duration::from_secs(2),
    )
    .await;
    common::publish_lab(&engine).await;

    // The first update of order CUT-1 sleeps inside its commit, so the test can cut it.
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "CREATE SEQUENCE \"{schema}\".slow_once;
             CREATE FUNCTION \"{schema}\".slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.id = 'CUT-1' AND nextval('\"{schema}\".slow_once') = 1 THEN
                     PERFORM pg_sleep(60);
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER slow BEFORE UPDATE ON \"{schema}\".orders
                 FOR EACH ROW EXECUTE FUNCTION \"{schema}\".slow_commit();"
        ))
        .await
        .unwrap();
    let orders = ["CUT-1", "CUT-2", "CUT-3", "CUT-4"];
    for (i, id) in orders.iter().enumerate() {
        let quantity = if i % 2 == 0 { 150 } else { 10 };
        engine
            .enqueue(orderflow::Event::new_order(common::lab_order(id, quantity)))
            .await
            .unwrap();
    }

    let worker = tokio::spawn({
        let engine = engine.clone();
        async move {
            let mut failed = 0;
            for _ in 0..600 {
                // A claim or a read may meet the cut connection before the pool has seen
                // it close: a retryable error, tried again.
                let report = match engine.work().await {
                    Ok(report) => report,
                    Err(e) if e.is_retryable() => continue,
                    Err(e) => panic!("{e}"),
                };
                failed += report.failed;
                assert_eq!(report.lost, 0);
                if report.claimed == 0 {
                    let mut done = true;
                    for id in ["CUT-1", "CUT-2", "CUT-3", "CUT-4"] {
                        done &= match engine.order(&OrderId::from(id)).await {
                            Ok(order) => order.is_some_and(|o| {
                                o.status_reason
                                    == Some(orderflow::StatusReason::SENT_TO_FULFILLMENT)
                            }),
                            Err(e) if e.is_retryable() => false,
                            Err(e) => panic!("{e}"),
                        };
                    }
                    if done {
                        return failed;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            panic!("the orders did not complete");
        }
    });
    // Cut the backend sleeping in the commit.
    let terminated = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let rows = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE wait_event = 'PgSleep' AND query LIKE $1",
                    &[&format!("%\"{schema}\".orders%")],
                )
                .await
                .unwrap();
            if rows.iter().any(|r| r.get::<_, bool>(0)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        terminated.is_ok(),
        "the commit reached the server and was cut"
    );
    let failed = worker.await.unwrap();
    // The cut commit fails its round; a pooled connection the pool has not yet seen close
    // may fail one more.
    assert!((1..=2).contains(&failed), "orders failed: {failed}");

    for id in orders {
        let journey = engine.journey(&OrderId::from(id)).await.unwrap();
        let mut names: Vec<&str> = journey.steps.iter().map(|s| s.step.as_str()).collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            total,
            "{id}: no step recorded twice: {names:?}"
        );
    }
    for ledger in [&seattle, &chicago] {
        let calls = ledger.calls.lock().unwrap().clone();
        let applied = ledger.applied.lock().unwrap().clone();
        assert!(applied.values().all(|&n| n == 1));
        assert_eq!(
            applied.len(),
            2,
            "two fulfillment orders per source: {calls:?}"
        );
    }
}

/// A completed order: one execution, tokens all gone, ended at `ended` ms; one event on
/// its timeline at `event` ms.
/// A client of the server at `url`.
async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Brings `schema` to the version before `version`, as the migrations of that release left
/// it: the DBA script of [`PostgresStore::migration_sql`] cut before migration `version`.
async fn schema_before(client: &tokio_postgres::Client, schema: &str, version: u32) {
    let script = PostgresStore::migration_sql(schema);
    let cut = script
        .find(&format!("\n-- Migration {version}."))
        .unwrap_or_else(|| panic!("the script has a migration {version}"));
    client
        .batch_execute(&format!("{}\nCOMMIT;", &script[..cut]))
        .await
        .unwrap();
}

/// Stores order `id` in a schema from [`schema_before`] (version 5 or below), as those
/// versions wrote it: its whole state as JSON text, a JSON row per journey step.
async fn old_order(
    client: &tokio_postgres::Client,
    schema: &str,
    (id, revision): (&str, i64),
    state: &str,
    live: bool,
    steps: &[StepRow],
) {
    client
        .execute(
            &format!(
                "INSERT INTO \"{schema}\".orders (id, revision, state, live, next_wake, journey_len)
                 VALUES ($1, $2, $3, $4, NULL, $5)"
            ),
            &[&id, &revision, &state, &live, &(steps.len() as i64)],
        )
        .await
        .unwrap();
    for (seq, step) in (1i64..).zip(steps) {
        client
            .execute(
                &format!(
                    "INSERT INTO \"{schema}\".journeys (order_id, seq, json) VALUES ($1, $2, $3)"
                ),
                &[&id, &seq, &serde_json::to_string(step).unwrap()],
            )
            .await
            .unwrap();
    }
}

fn completed_state(id: &str, ended: u64, event: u64) -> OrderState {
    let mut value = serde_json::to_value(OrderState::new(Order::new(id))).unwrap();
    value["revision"] = json!(1);
    value["timeline"] = json!([{
        "seq": 1, "id": format!("{id}-e1"), "kind": "Custom", "record": null, "at": event,
        "raised_by": null,
    }]);
    value["executions"] = json!([{
        "id": {"order": id, "seq": 1}, "flow": "Reference lab", "version": "1.0.0",
        "plan": 0, "trigger": 1, "round": 0, "tokens": [], "joins": [], "consumed": [],
        "accepted": [], "next_token": 1, "steps": 0, "started": 100, "ended": ended,
        "cancelled": null,
    }]);
    serde_json::from_value(value).unwrap()
}

#[tokio::test]
async fn orders_stored_before_retention_are_purged_after_the_migration() {
    let Some(url) = server("orders_stored_before_retention_are_purged_after_the_migration") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    // The schema as version 3 wrote it, with a row that does not decode (which the
    // migrations leave alone, never purged).
    let client = client(&url).await;
    schema_before(&client, &config.schema, 4).await;
    for (state, live) in [
        (completed_state("DONE", 5_000, 7_000), false),
        (state("LIVE", 1, true, None), true),
    ] {
        let text = serde_json::to_string(&state).unwrap();
        let steps = [step("x", "Validate")];
        old_order(
            &client,
            &config.schema,
            (state.id().as_str(), 1),
            &text,
            live,
            &steps,
        )
        .await;
    }
    old_order(&client, &config.schema, ("POISON", 1), "{", false, &[]).await;

    let store = PostgresStore::connect_with(config).await.unwrap();
    // Completed at its last event (7,000 ms), not at its execution's end.
    assert!(store.purge(Timestamp(7_000), 10).await.unwrap().is_empty());
    assert_eq!(
        store.purge(Timestamp(u64::MAX), 10).await.unwrap(),
        [OrderId::from("DONE")]
    );
    assert!(store.load(&OrderId::from("DONE")).await.unwrap().is_none());
    assert_eq!(
        store.load(&OrderId::from("LIVE")).await.unwrap(),
        Some(state("LIVE", 1, true, None))
    );
    assert_eq!(
        store.journey(&OrderId::from("LIVE")).await.unwrap(),
        [step("x", "Validate")]
    );
    let err = store.load(&OrderId::from("POISON")).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_reads_what_another_wrote_and_the_server_refuses_its_writes() {
    let Some(url) =
        server("a_read_only_store_reads_what_another_wrote_and_the_server_refuses_its_writes")
    else {
        return;
    };
    let schemas = Schemas::new(&url);
    let config = schemas.config();
    let writer = PostgresStore::connect_with(config.clone()).await.unwrap();
    let (flow, record) = fill(&writer).await;

    let reader = PostgresStore::connect_with(config.clone().with_read_only(true))
        .await
        .unwrap();
    check(&reader, &flow, &record).await;
    let before = reader.load(&id("A")).await.unwrap().expect("A is stored");
    let refused = reader
        .commit(change(Some(2), state("A", 3, false, None), Vec::new()))
        .await;
    assert!(refused.is_err(), "a read-only store wrote: {refused:?}");
    assert!(reader.save_flow(&flow, false).await.is_err());
    assert_eq!(writer.load(&id("A")).await.unwrap(), Some(before));

    // It never creates or migrates a schema: pointed at one that does not exist, it fails
    // and the schema stays absent.
    let missing = schemas.fresh();
    let absent = PostgresStore::connect_with(
        PostgresConfig::new(&url)
            .with_schema(missing.as_str())
            .with_read_only(true),
    )
    .await;
    assert!(absent.is_err(), "a read-only store opened a missing schema");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let found = client
        .query(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
            &[&missing],
        )
        .await
        .unwrap();
    assert!(found.is_empty(), "schema {missing} was created");
    drop(client);
    let _ = connection.await;
}
