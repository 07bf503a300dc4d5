//! The SQLite store: every operation round-trips and survives reopening the file, commits
//! conflict and batch, damaged, foreign, read-only and future files fail clearly, it passes
//! the store conformance suite, and an engine resumes from the file.

#![cfg(feature = "sqlite")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orderflow::clock::Timestamp;
use orderflow::document::{Decimal, Order, OrderId, OrderLine, Value};
use orderflow::execution::OrderState;
use orderflow::flow::Flow;
use orderflow::journey::StepRow;
use orderflow::rules::{PolicyDocument, PolicyRecord, PolicyStatus};
use orderflow::store::{ChangeSet, SqliteStore, Store, StoreError, StoreErrorKind};
use orderflow::{Event, StatusReason};
use serde_json::json;
use tempfile::TempDir;

use common::{FLOW, POLICIES};

fn temp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orderflow.db");
    (dir, path)
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

fn failure<T: std::fmt::Debug>(result: Result<T, StoreError>) -> (StoreErrorKind, String) {
    let e = result.unwrap_err();
    (e.kind(), e.to_string())
}

/// Writes one of everything.
async fn fill(store: &SqliteStore) -> (Flow, PolicyRecord) {
    let mut flow = Flow::from_json(FLOW).unwrap();
    store.save_flow(&flow, false).await.unwrap();
    store.save_flow(&flow, true).await.unwrap();
    flow.description = "edited after publishing".into();
    store.save_flow(&flow, false).await.unwrap();

    let doc = PolicyDocument::list_from_json(POLICIES).unwrap().remove(0);
    let mut record = PolicyRecord::new(doc, Some(Timestamp::from_millis(1)));
    store.save_policy(&record, false).await.unwrap();
    record.status = PolicyStatus::Published;
    record.last_published = Some(1);
    store.save_policy(&record, true).await.unwrap();

    store
        .commit(change(
            None,
            state("A", 1, true, Some(5_000)),
            vec![step("A", "Validate")],
        ))
        .await
        .unwrap();
    store
        .commit(change(
            Some(1),
            state("A", 2, true, Some(3_000)),
            vec![step("A", "Send"), step("A", "Wait")],
        ))
        .await
        .unwrap();
    store
        .commit(change(None, state("B", 1, true, None), Vec::new()))
        .await
        .unwrap();
    store
        .commit(change(None, state("C", 1, false, None), Vec::new()))
        .await
        .unwrap();
    (flow, record)
}

/// Checks what `fill` wrote.
async fn check(store: &SqliteStore, flow: &Flow, record: &PolicyRecord) {
    let original = Flow::from_json(FLOW).unwrap();
    assert_eq!(store.flows().await.unwrap(), vec![flow.clone()]);
    assert_eq!(
        store
            .flow_version(&original.name, &original.version)
            .await
            .unwrap(),
        Some(original.clone()),
        "a frozen version keeps the definition it was frozen with"
    );
    assert_eq!(
        store
            .flow_version(&original.name, &semver::Version::new(9, 0, 0))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.policies().await.unwrap(), vec![record.clone()]);
    assert_eq!(
        store.policy_version(record.name(), 1).await.unwrap(),
        Some(record.document.clone())
    );
    assert_eq!(store.policy_version(record.name(), 2).await.unwrap(), None);

    assert_eq!(
        store.load(&id("A")).await.unwrap(),
        Some(state("A", 2, true, Some(3_000)))
    );
    assert_eq!(store.load(&id("Z")).await.unwrap(), None);
    let steps: Vec<_> = store
        .journey(&id("A"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| note(&s))
        .collect();
    assert_eq!(steps, ["Validate", "Send", "Wait"]);
    assert_eq!(store.journey(&id("B")).await.unwrap(), Vec::new());
    assert_eq!(store.live_orders().await.unwrap(), vec![id("A"), id("B")]);
    assert_eq!(
        store.due(Timestamp::from_millis(2_999), 10).await.unwrap(),
        Vec::<OrderId>::new()
    );
    assert_eq!(
        store.due(Timestamp::from_millis(3_000), 10).await.unwrap(),
        vec![id("A")]
    );
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(Timestamp::from_millis(3_000))
    );
}

#[tokio::test]
async fn every_operation_round_trips_and_survives_reopening() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let (flow, record) = fill(&store).await;
    check(&store, &flow, &record).await;
    assert!(format!("{store:?}").contains("orderflow.db"));
    assert_eq!(store.path(), path);
    store.check_integrity().await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    check(&store, &flow, &record).await;

    // The order's timer moves with each commit; a finished order leaves both lists.
    store
        .commit(change(
            Some(2),
            state("A", 3, false, None),
            vec![step("A", "Done")],
        ))
        .await
        .unwrap();
    assert_eq!(store.live_orders().await.unwrap(), vec![id("B")]);
    assert_eq!(store.next_due().await.unwrap(), None);
    assert_eq!(
        store
            .due(Timestamp::from_millis(u64::MAX), 10)
            .await
            .unwrap(),
        Vec::<OrderId>::new()
    );
    assert_eq!(store.journey(&id("A")).await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_frozen_version_never_changes() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let flow = Flow::from_json(FLOW).unwrap();
    store.save_flow(&flow, true).await.unwrap();
    // Saving the same version again is a no-op.
    store.save_flow(&flow, true).await.unwrap();
    // Saving it again with another definition replaces the draft, not the version.
    let mut changed = flow.clone();
    changed.description = "another definition under the same version".into();
    store.save_flow(&changed, true).await.unwrap();
    assert_eq!(store.flows().await.unwrap(), vec![changed]);
    assert_eq!(
        store.flow_version(&flow.name, &flow.version).await.unwrap(),
        Some(flow.clone())
    );
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.flow_version(&flow.name, &flow.version).await.unwrap(),
        Some(flow)
    );

    let doc = PolicyDocument::list_from_json(POLICIES).unwrap().remove(0);
    let record = PolicyRecord::new(doc, None);
    let (kind, message) = failure(store.save_policy(&record, true).await);
    assert_eq!(kind, StoreErrorKind::Refused, "{message}");
    assert_eq!(store.policies().await.unwrap(), Vec::new());

    let mut published = record.clone();
    published.status = PolicyStatus::Published;
    published.last_published = Some(1);
    store.save_policy(&published, true).await.unwrap();
    let mut edited = published.clone();
    edited.document.description = "edited under the same version".into();
    store.save_policy(&edited, true).await.unwrap();
    assert_eq!(store.policies().await.unwrap(), vec![edited]);
    assert_eq!(
        store.policy_version(record.name(), 1).await.unwrap(),
        Some(record.document)
    );
}

#[tokio::test]
async fn a_stale_commit_conflicts_and_changes_nothing() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    store
        .commit(change(
            None,
            state("A", 1, true, Some(7)),
            vec![step("A", "one")],
        ))
        .await
        .unwrap();
    let attempts = [
        change(None, state("A", 1, false, None), vec![step("A", "x")]),
        change(Some(0), state("A", 1, false, None), vec![step("A", "x")]),
        change(Some(2), state("A", 3, false, None), vec![step("A", "x")]),
        change(
            Some(1),
            state("Nope", 2, false, None),
            vec![step("Nope", "x")],
        ),
    ];
    for commit in attempts {
        let (kind, message) = failure(store.commit(commit).await);
        assert_eq!(kind, StoreErrorKind::Conflict, "{message}");
    }
    assert_eq!(
        store.load(&id("A")).await.unwrap(),
        Some(state("A", 1, true, Some(7)))
    );
    assert_eq!(store.load(&id("Nope")).await.unwrap(), None);
    assert_eq!(store.journey(&id("A")).await.unwrap().len(), 1);
    assert_eq!(store.live_orders().await.unwrap(), vec![id("A")]);
    assert_eq!(
        store.next_due().await.unwrap(),
        Some(Timestamp::from_millis(7))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_land_in_few_transactions() {
    let (_dir, path) = temp();
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let commits = (0..500).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let order = format!("O-{n:03}");
            let journey = vec![step(&order, "Validate")];
            store
                .commit(change(None, state(&order, 1, true, None), journey))
                .await
        })
    });
    // Two commits for one order in the same burst: exactly one lands.
    let racing = (0..2).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .commit(change(None, state("RACE", 1, false, None), Vec::new()))
                .await
        })
    });
    let results = futures::future::join_all(commits).await;
    for r in results {
        r.unwrap().unwrap();
    }
    let raced: Vec<_> = futures::future::join_all(racing)
        .await
        .into_iter()
        .map(|r| r.unwrap().map_err(|e| e.kind()))
        .collect();
    assert!(raced.contains(&Ok(())), "{raced:?}");
    assert!(raced.contains(&Err(StoreErrorKind::Conflict)), "{raced:?}");

    let transactions = store.transactions();
    assert!(
        transactions < 500,
        "502 commits took {transactions} transactions: they were not batched"
    );
    // A transaction takes at most 256 writes, so the count is a real count.
    assert!(
        transactions >= 2,
        "502 commits cannot fit in {transactions} transactions"
    );
    assert_eq!(store.live_orders().await.unwrap().len(), 500);
    for n in [0, 250, 499] {
        let order = id(&format!("O-{n:03}"));
        assert!(store.load(&order).await.unwrap().is_some());
        assert_eq!(store.journey(&order).await.unwrap().len(), 1);
    }
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.live_orders().await.unwrap().len(), 500);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_corrupt() {
    let (_dir, path) = temp();
    std::fs::write(
        &path,
        "this is not a database, just some text\n".repeat(100),
    )
    .unwrap();
    let (kind, message) = failure(SqliteStore::open(&path));
    assert_eq!(kind, StoreErrorKind::Corrupt, "{message}");
    assert!(message.contains("not a SQLite database"), "{message}");
    assert!(message.contains("orderflow.db"), "{message}");
}

/// A SQLite file another application made (tables of its own, no orderflow schema) is
/// refused, whether or not that application set an application id, and is left as it was:
/// orderflow adds no table to it.
#[tokio::test]
async fn a_database_of_another_application_is_refused_and_left_alone() {
    for application_id in [None, Some(42)] {
        let (_dir, path) = temp();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total TEXT);")
            .unwrap();
        if let Some(id) = application_id {
            conn.pragma_update(None, "application_id", id).unwrap();
        }
        drop(conn);
        let (kind, message) = failure(SqliteStore::open(&path));
        assert_eq!(
            kind,
            StoreErrorKind::Refused,
            "{application_id:?}: {message}"
        );
        assert!(
            message.contains("belongs to another application"),
            "{application_id:?}: {message}"
        );
        let conn = rusqlite::Connection::open(&path).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, ["invoices"], "{application_id:?}");
    }
}

/// Fills a file with enough orders to span many pages, and closes it.
async fn many_orders(path: &Path) {
    let store = SqliteStore::open(path).unwrap();
    for n in 0..200 {
        let order = format!("O-{n}");
        let mut doc = Order::new(order.as_str());
        for line in 0..20 {
            doc = doc.with_line(OrderLine::new(line.to_string(), "Surface Pen", 1));
        }
        let mut state = OrderState::new(doc);
        state.set_revision(1);
        store
            .commit(change(None, state, vec![step(&order, "Validate")]))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_truncated_database_fails_clearly() {
    let (_dir, path) = temp();
    many_orders(&path).await;
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 64 * 1024, "the file is {len} bytes");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 3).unwrap();
    drop(file);

    // Open may see it already; if not, reading what was cut off says so.
    let store = match SqliteStore::open(&path) {
        Ok(store) => store,
        Err(e) => {
            assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");
            return;
        }
    };
    let mut errors = Vec::new();
    for n in 0..200 {
        if let Err(e) = store.load(&id(&format!("O-{n}"))).await {
            errors.push(e);
        }
    }
    if let Err(e) = store.live_orders().await {
        errors.push(e);
    }
    if let Err(e) = store.check_integrity().await {
        errors.push(e);
    }
    assert!(!errors.is_empty(), "a third of the file is gone, unnoticed");
    for e in &errors {
        assert_eq!(e.kind(), StoreErrorKind::Corrupt, "{e}");
        assert!(e.to_string().contains("orderflow.db"), "{e}");
    }
}

/// `check_integrity` finds damage anywhere in the file: a copy of a closed database with
/// one page overwritten by garbage, for pages spread over the whole file, is reported
/// `Corrupt` every time (or refused as such when it is opened, when the page is one that
/// opening reads), while the undamaged file checks clean.
#[tokio::test]
async fn check_integrity_finds_a_damaged_page_anywhere() {
    let (dir, path) = temp();
    many_orders(&path).await;
    SqliteStore::open(&path)
        .unwrap()
        .check_integrity()
        .await
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    const PAGE: usize = 4096;
    let pages = bytes.len() / PAGE;
    assert!(pages > 20, "{pages} pages");
    let copy = dir.path().join("damaged.db");
    let mut checked = 0;
    // Every page but the first (the header), in steps that cover the file.
    for page in (1..pages).step_by((pages / 40).max(1)) {
        let mut damaged = bytes.clone();
        damaged[page * PAGE..(page + 1) * PAGE].fill(0xff);
        std::fs::write(&copy, &damaged).unwrap();
        let store = match SqliteStore::open(&copy) {
            Ok(store) => store,
            Err(e) => {
                assert_eq!(e.kind(), StoreErrorKind::Corrupt, "page {page}: {e}");
                continue;
            }
        };
        let err = store.check_integrity().await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt, "page {page}: {err}");
        assert!(err.to_string().contains("damaged.db"), "{err}");
        checked += 1;
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("damaged.db{suffix}")));
        }
    }
    assert!(
        checked >= 10,
        "only {checked} damaged copies could be opened"
    );
}

#[tokio::test]
async fn a_database_cut_to_a_few_bytes_fails_clearly() {
    let (_dir, path) = temp();
    many_orders(&path).await;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(40).unwrap();
    drop(file);
    let (kind, message) = failure(SqliteStore::open(&path));
    assert_eq!(kind, StoreErrorKind::Corrupt, "{message}");
}

#[tokio::test]
async fn a_read_only_database_refuses_writes_and_loses_nothing() {
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let (flow, record) = fill(&store).await;
    drop(store);

    let store = SqliteStore::open_read_only(&path).unwrap();
    check(&store, &flow, &record).await;
    let (kind, message) = failure(
        store
            .commit(change(
                Some(2),
                state("A", 3, false, None),
                vec![step("A", "x")],
            ))
            .await,
    );
    assert_eq!(kind, StoreErrorKind::Refused, "{message}");
    assert!(message.contains("read-only"), "{message}");
    assert!(message.contains("orderflow.db"), "{message}");
    let (kind, _) = failure(store.save_flow(&flow, false).await);
    assert_eq!(kind, StoreErrorKind::Refused);
    check(&store, &flow, &record).await;
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    check(&store, &flow, &record).await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_write_protected_file_refuses_writes_and_loses_nothing() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let (flow, record) = fill(&store).await;
    drop(store);
    let protect = |mode| {
        for p in [&path, &dir.path().to_path_buf()] {
            let mut perms = std::fs::metadata(p).unwrap().permissions();
            perms.set_mode(if p == &path { mode & 0o666 } else { mode });
            std::fs::set_permissions(p, perms).unwrap();
        }
    };
    protect(0o555);
    // A privileged user (root) writes through file permissions: nothing to check then.
    let privileged = std::fs::OpenOptions::new().append(true).open(&path).is_ok();
    if !privileged {
        match SqliteStore::open(&path) {
            Ok(store) => {
                let (kind, message) = failure(
                    store
                        .commit(change(Some(2), state("A", 3, false, None), Vec::new()))
                        .await,
                );
                assert_eq!(kind, StoreErrorKind::Refused, "{message}");
            }
            Err(e) => {
                assert!(e.to_string().contains("orderflow.db"), "{e}");
            }
        }
    }
    protect(0o755);
    let store = SqliteStore::open(&path).unwrap();
    check(&store, &flow, &record).await;
}

#[tokio::test]
async fn a_database_from_the_future_is_refused() {
    let (_dir, path) = temp();
    drop(SqliteStore::open(&path).unwrap());
    // As a newer orderflow's migration would have left it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let (kind, message) = failure(SqliteStore::open(&path));
    assert_eq!(kind, StoreErrorKind::Refused, "{message}");
    assert!(message.contains("newer"), "{message}");
    let (kind, _) = failure(SqliteStore::open_read_only(&path));
    assert_eq!(kind, StoreErrorKind::Refused);
}

/// A migration that fails (here the file says schema version 1 but already holds a table
/// version 2 would create, as a hand-edited or badly restored file might) is rolled back
/// and reported, naming the version, and the file is left at its version: opening again
/// fails the same way, and never loops.
#[tokio::test]
async fn a_failed_migration_is_rolled_back_and_reported() {
    let (_dir, path) = temp();
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    for _ in 0..2 {
        let (kind, message) = failure(SqliteStore::open(&path));
        assert_eq!(kind, StoreErrorKind::Other, "{message}");
        assert!(
            message.contains("migrating to schema version 2"),
            "{message}"
        );
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, 1, "the failed migration was rolled back");
    }
}

/// A database file as the migrations up to `version` (2 or 3) left it, before orders were
/// stored in rows per part: each order's whole state as JSON in `orders.state`, one JSON row
/// per step in `journeys`. The SQL is those migrations' own.
fn old_file(path: &Path, version: u32) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
        CREATE TABLE flows (seq INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, json TEXT NOT NULL);
        CREATE TABLE flow_versions (name TEXT NOT NULL REFERENCES flows (name),
            version TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (name, version));
        CREATE TABLE policies (seq INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            json TEXT NOT NULL);
        CREATE TABLE policy_versions (name TEXT NOT NULL REFERENCES policies (name),
            version INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (name, version));
        CREATE TABLE orders (id TEXT PRIMARY KEY NOT NULL, revision INTEGER NOT NULL,
            state TEXT NOT NULL, live INTEGER NOT NULL, next_wake INTEGER);
        CREATE INDEX orders_live ON orders (id) WHERE live = 1;
        CREATE INDEX orders_next_wake ON orders (next_wake, id) WHERE next_wake IS NOT NULL;
        CREATE TABLE journeys (order_id TEXT NOT NULL REFERENCES orders (id),
            seq INTEGER NOT NULL, json TEXT NOT NULL, PRIMARY KEY (order_id, seq));
        CREATE TABLE aside (seq INTEGER PRIMARY KEY, order_id TEXT NOT NULL UNIQUE,
            reason TEXT NOT NULL);
        PRAGMA application_id = 1330007127;",
    )
    .unwrap();
    if version >= 3 {
        conn.execute_batch(
            "ALTER TABLE orders ADD COLUMN completed_at INTEGER;
            CREATE INDEX orders_completed ON orders (completed_at)
                WHERE completed_at IS NOT NULL;",
        )
        .unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
    conn
}

/// Stores order `id` at `revision` in a file from [`old_file`], as those versions wrote it.
fn old_order(
    conn: &rusqlite::Connection,
    (id, revision): (&str, i64),
    state: &str,
    live: bool,
    steps: &[StepRow],
) {
    conn.execute(
        "INSERT INTO orders (id, revision, state, live, next_wake) VALUES (?1, ?2, ?3, ?4, NULL)",
        rusqlite::params![id, revision, state, live],
    )
    .unwrap();
    for (seq, step) in (1..).zip(steps) {
        conn.execute(
            "INSERT INTO journeys (order_id, seq, json) VALUES (?1, ?2, ?3)",
            rusqlite::params![id, seq, serde_json::to_string(step).unwrap()],
        )
        .unwrap();
    }
}

#[tokio::test]
async fn orders_of_schema_3_move_to_binary_rows_and_their_json_numbers_read_as_the_decimals_written()
 {
    let (_dir, path) = temp();
    // The row as earlier versions wrote it: the order's numbers are JSON numbers, and the
    // whole state is one JSON value with its timeline.
    let mut state = serde_json::to_value(state("SO-OLD", 3, true, Some(9_000))).unwrap();
    state["order"] = json!({
        "id": "SO-OLD",
        "custom": {"weight": 0.3},
        "lines": [
            {"id": "1", "product": "Pen", "quantity": 2.0, "price": 19.99},
            {"id": "2", "product": "Coffee", "quantity": 0.3, "price": 0.1},
        ],
        "fulfillment_orders": [{"id": "FO-1", "fulfillment_source": "East",
            "lines": [{"order_line": "2", "product": "Coffee", "quantity": 0.3}]}],
    });
    state["timeline"] = json!([
        {"seq": 1, "id": "evt-1", "kind": "New Order", "record": null, "at": 5, "raised_by": null},
        {"seq": 2, "id": "evt-2", "kind": "Shipped", "record": {"line": "1"}, "at": 6,
         "raised_by": "Send"},
    ]);
    state["resume_at"] = json!(12_000);
    let text = serde_json::to_string(&state).unwrap();
    assert!(text.contains(r#""quantity":0.3"#), "{text}");
    let conn = old_file(&path, 3);
    let steps = [step("SO-OLD", "Validate"), step("SO-OLD", "Send")];
    old_order(&conn, ("SO-OLD", 3), &text, true, &steps);
    old_order(&conn, ("BAD", 7), r#"{"order": 42"#, false, &[]);
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    let loaded = store.load(&OrderId::from("SO-OLD")).await.unwrap().unwrap();
    let expected: OrderState = serde_json::from_value(state).unwrap();
    assert_eq!(loaded, expected, "the whole state moved over");
    assert_eq!(loaded.timeline().len(), 2);
    assert_eq!(loaded.resume_at(), Some(Timestamp(12_000)));
    let order = &loaded.order();
    let numbers: Vec<String> = order
        .lines
        .iter()
        .flat_map(|l| [l.quantity.to_string(), l.price.unwrap().to_string()])
        .collect();
    assert_eq!(numbers, ["2", "19.99", "0.3", "0.1"]);
    assert_eq!(order.lines[1].quantity, Decimal::new(3, 1));
    assert_eq!(
        order.fulfillment_orders[0].lines[0].quantity,
        Decimal::new(3, 1)
    );
    assert_eq!(order.custom["weight"], Value::Number(Decimal::new(3, 1)));
    assert_eq!(
        store.journey(&id("SO-OLD")).await.unwrap(),
        [step("SO-OLD", "Validate"), step("SO-OLD", "Send")]
    );
    assert_eq!(store.live_orders().await.unwrap(), [id("SO-OLD")]);
    // The row that did not decode still does not: it is reported, not lost or guessed at.
    let err = store.load(&id("BAD")).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");

    // Committed again, the document holds strings; it reads back equal, and the timeline
    // goes on from the moved entries.
    let mut next = loaded.clone();
    next.set_revision(4);
    let mut entry = next.timeline()[1].clone();
    entry.seq = 3;
    next.timeline_mut().push(entry);
    next.order_mut().customer = Some("Contoso".into());
    store
        .commit(ChangeSet::diff(Some(&loaded), &next).with_journey(vec![step("SO-OLD", "Bill")]))
        .await
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let row: String = conn
        .query_row("SELECT document FROM orders WHERE id = 'SO-OLD'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(row.contains(r#""quantity":"0.3""#), "{row}");
    assert!(row.contains(r#""price":"19.99""#), "{row}");
    let old_tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name IN ('journeys', 'orders_v3', 'journeys_v3')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old_tables, 0, "the old tables are gone");
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let again = store.load(&OrderId::from("SO-OLD")).await.unwrap().unwrap();
    assert_eq!(again, next);
    assert_eq!(store.journey(&id("SO-OLD")).await.unwrap().len(), 3);
}

/// A decimal of any scale (0 to 28) and up to 28 digits, sign included.
fn decimal() -> impl proptest::strategy::Strategy<Value = Decimal> {
    use proptest::strategy::Strategy;
    (
        -9_999_999_999_999_999_999_999_999_999_i128..=9_999_999_999_999_999_999_999_999_999,
        0u32..=28,
    )
        .prop_map(|(digits, scale)| Decimal::from_i128_with_scale(digits, scale))
}

#[test]
fn random_decimals_read_back_digit_for_digit() {
    use proptest::test_runner::{Config, TestRunner};
    let (_dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    let mut runner = TestRunner::new(Config::with_cases(64));
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(
            &proptest::collection::vec((decimal(), decimal()), 1..6),
            |pairs| {
                let id = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut order = Order::new(format!("SO-{id}"));
                for (i, (quantity, price)) in pairs.iter().enumerate() {
                    let mut line = OrderLine::new(i.to_string(), "P", *quantity);
                    line.price = Some(*price);
                    line.custom.insert("n".to_owned(), Value::Number(*price));
                    order.lines.push(line);
                }
                let state = OrderState::new(order.clone());
                futures::executor::block_on(store.commit(change(None, state, Vec::new()))).unwrap();
                let loaded = futures::executor::block_on(store.load(&order.id))
                    .unwrap()
                    .unwrap();
                let digits = |o: &Order| {
                    o.lines
                        .iter()
                        .map(|l| format!("{} {:?}", l.quantity, l.price.map(|p| p.to_string())))
                        .collect::<Vec<_>>()
                };
                proptest::prop_assert_eq!(loaded.order(), &order);
                proptest::prop_assert_eq!(digits(loaded.order()), digits(&order));
                Ok(())
            },
        )
        .unwrap();
}

#[tokio::test]
async fn a_missing_directory_is_a_clear_error() {
    let (dir, _) = temp();
    let path = dir.path().join("no such directory").join("orderflow.db");
    let (kind, message) = failure(SqliteStore::open(&path));
    assert_eq!(kind, StoreErrorKind::Unavailable, "{message}");
    assert!(message.contains("no such directory"), "{message}");
}

/// A path through a plain file, as if it were a directory, cannot be resolved, and the
/// error says so (not that a lock file could not be made).
#[cfg(unix)]
#[tokio::test]
async fn a_path_through_a_file_is_a_clear_error() {
    let (dir, _) = temp();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"a file, not a directory").unwrap();
    let (kind, message) = failure(SqliteStore::open(file.join("orderflow.db")));
    assert_eq!(kind, StoreErrorKind::Unavailable, "{message}");
    assert!(message.contains("resolving its path"), "{message}");
    assert!(message.contains("notes.txt"), "{message}");
}

#[tokio::test]
async fn passes_the_store_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    orderflow::testing::conformance::check_store(|| {
        n += 1;
        SqliteStore::open(dir.path().join(format!("conformance-{n}.db"))).unwrap()
    })
    .await;
    let mut m = 0;
    orderflow::testing::conformance::check_store(|| {
        m += 1;
        let path = dir.path().join(format!("dyn-{m}.db"));
        Arc::new(SqliteStore::open(path).unwrap()) as Arc<dyn Store>
    })
    .await;
}

#[tokio::test]
async fn an_engine_resumes_from_the_file() {
    let (_dir, path) = temp();
    common::engine_resumes_from_the_store(|| async { SqliteStore::open(&path).unwrap() }).await;
}

#[tokio::test]
async fn an_engine_on_a_read_only_database_refuses_work_instead_of_losing_it() {
    let (_dir, path) = temp();
    {
        let (engine, _, _) = common::lab_engine(SqliteStore::open(&path).unwrap()).await;
        common::publish_lab(&engine).await;
        engine
            .submit(Event::new_order(common::lab_order("RO-1", 10)))
            .await
            .unwrap();
    }

    let (engine, seattle, chicago) =
        common::lab_engine(SqliteStore::open_read_only(&path).unwrap()).await;
    let err = engine
        .submit(Event::new_order(common::lab_order("RO-2", 150)))
        .await
        .expect_err("a read-only database cannot take an order");
    assert_eq!(err.kind(), orderflow::ErrorKind::Store, "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("orderflow.db"), "{err}");
    // Nothing was sent for an order the engine could not record.
    assert!(seattle.calls().is_empty() && chicago.calls().is_empty());
    // What was stored is intact and readable.
    let kept = engine.order(&id("RO-1")).await.unwrap().unwrap();
    assert_eq!(kept.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    drop(engine);

    // Writable again: the refused order goes through, once.
    let (engine, seattle, _) = common::lab_engine(SqliteStore::open(&path).unwrap()).await;
    engine
        .submit(Event::new_order(common::lab_order("RO-2", 150)))
        .await
        .unwrap();
    let order = engine.order(&id("RO-2")).await.unwrap().unwrap();
    assert_eq!(order.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert_eq!(seattle.calls().len(), 1);
}

/// The path of `path` relative to the working directory (`../../tmp/…`).
fn relative_spelling(path: &Path) -> PathBuf {
    let cwd = std::env::current_dir().unwrap();
    let mut relative = PathBuf::new();
    for _ in cwd.components().skip(1) {
        relative.push("..");
    }
    relative.join(path.strip_prefix("/").unwrap())
}

#[cfg(unix)]
#[tokio::test]
async fn a_second_store_on_one_file_is_refused_by_any_spelling() {
    let (dir, path) = temp();
    let first = SqliteStore::open(&path).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let spellings = [
        path.clone(),
        dir.path().join("sub/../orderflow.db"),
        dir.path().join("./orderflow.db"),
        relative_spelling(&path),
        link.clone(),
    ];
    for spelling in &spellings {
        assert!(spelling.exists(), "{}", spelling.display());
        let (kind, message) = failure(SqliteStore::open(spelling));
        assert_eq!(kind, StoreErrorKind::Refused, "{message}");
        assert!(
            message.contains("in use by another orderflow store"),
            "{message}"
        );
        assert!(
            message.contains(&spelling.display().to_string()),
            "the message names the file: {message}"
        );
    }
    // The refused openers changed nothing: the owner goes on.
    first
        .commit(change(None, state("A", 1, false, None), Vec::new()))
        .await
        .unwrap();
    // A reader takes no ownership.
    let reader = SqliteStore::open_read_only(&link).unwrap();
    assert!(reader.load(&id("A")).await.unwrap().is_some());
    drop(reader);
    // Dropping the owner hands the file on.
    drop(first);
    let second = SqliteStore::open(&link).unwrap();
    assert!(second.load(&id("A")).await.unwrap().is_some());
}

#[tokio::test]
async fn stores_on_different_files_in_one_directory_do_not_interfere() {
    let (dir, path) = temp();
    let _a = SqliteStore::open(&path).unwrap();
    let _b = SqliteStore::open(dir.path().join("other.db")).unwrap();
}

#[tokio::test]
async fn an_in_memory_path_is_refused_for_what_it_is_not_for_ownership() {
    // SQLite's in-memory name and the empty path (a private temporary database) are both
    // refused for what they are, with no lock file made for them.
    for path in [":memory:", ""] {
        let (kind, message) = failure(SqliteStore::open(path));
        assert_eq!(kind, StoreErrorKind::Refused, "{path:?}: {message}");
        assert!(message.contains("WAL"), "{path:?}: {message}");
    }
}

/// The child of `a_killed_owner_leaves_the_file_free`: opens the file, says so, and holds it
/// until it is killed (a minute at most).
#[tokio::test]
#[ignore = "the child process of `a_killed_owner_leaves_the_file_free`"]
async fn owner_child_process() {
    let db = PathBuf::from(std::env::var("ORDERFLOW_OWNER_DB").unwrap());
    let store = SqliteStore::open(&db).unwrap();
    store
        .commit(change(None, state("CHILD", 1, false, None), Vec::new()))
        .await
        .unwrap();
    println!("OPEN");
    std::thread::sleep(std::time::Duration::from_secs(60));
    drop(store);
}

#[tokio::test]
async fn a_bare_file_name_opens_in_the_working_directory() {
    const CHILD: &str = "ORDERFLOW_BARE_NAME_CHILD";
    if std::env::var_os(CHILD).is_some() {
        // The child: open the database by its bare name where it was started, and commit.
        let store = SqliteStore::open("orderflow.db").unwrap();
        store
            .commit(change(None, state("BARE", 1, false, None), Vec::new()))
            .await
            .unwrap();
        return;
    }
    let (dir, path) = temp();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_bare_file_name_opens_in_the_working_directory",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the child starts");
    assert!(status.success(), "the child failed: {status}");
    assert!(dir.path().join("orderflow.db-lock").exists());
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.load(&id("BARE")).await.unwrap().is_some());
}

#[cfg(unix)]
#[tokio::test]
async fn a_killed_owner_leaves_the_file_free() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let (_dir, path) = temp();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "owner_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ORDERFLOW_OWNER_DB", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts");
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // libtest may print the test's name on the same line.
    let opened = stdout
        .lines()
        .map_while(Result::ok)
        .any(|l| l.ends_with("OPEN"));
    assert!(opened, "the child opened the file");

    let (kind, message) = failure(SqliteStore::open(&path));
    assert_eq!(kind, StoreErrorKind::Refused, "{message}");
    assert!(
        message.contains("in use by another orderflow store"),
        "{message}"
    );
    assert!(message.contains("orderflow.db"), "{message}");

    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let store = SqliteStore::open(&path).expect("a killed owner holds nothing");
    assert!(store.load(&id("CHILD")).await.unwrap().is_some());
}

/// Runs the reference lab on the file at `path`, lets `swap` delete or replace the file
/// under the running engine, and checks that the next order is refused, naming the file,
/// and that nothing was sent for it.
async fn file_swapped_under_a_running_engine(swap: impl FnOnce(&Path), what: &str) {
    let (_dir, path) = temp();
    let (engine, seattle, chicago) = common::lab_engine(SqliteStore::open(&path).unwrap()).await;
    common::publish_lab(&engine).await;
    engine
        .submit(Event::new_order(common::lab_order("BEFORE", 10)))
        .await
        .unwrap();
    let sent = seattle.calls().len() + chicago.calls().len();

    swap(&path);
    for order in ["AFTER-1", "AFTER-2"] {
        let err = engine
            .submit(Event::new_order(common::lab_order(order, 10)))
            .await
            .expect_err("an order into a file nobody will read is not acknowledged");
        assert_eq!(err.kind(), orderflow::ErrorKind::Store, "{err}");
        assert!(!err.is_retryable(), "{err}");
        let message = err.to_string();
        assert!(message.contains("orderflow.db"), "{message}");
        assert!(message.contains(what), "{message}");
    }
    assert_eq!(
        seattle.calls().len() + chicago.calls().len(),
        sent,
        "nothing was sent for an order that was not recorded"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_database_deleted_under_a_running_engine_takes_no_more_orders() {
    file_swapped_under_a_running_engine(|path| std::fs::remove_file(path).unwrap(), "was deleted")
        .await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_database_replaced_under_a_running_engine_takes_no_more_orders() {
    let other = tempfile::tempdir().unwrap();
    let replacement = other.path().join("replacement.db");
    drop(SqliteStore::open(&replacement).unwrap());
    file_swapped_under_a_running_engine(
        |path| std::fs::rename(&replacement, path).unwrap(),
        "was replaced",
    )
    .await;
}

/// A path that no longer leads anywhere for another reason than a deleted file (here its
/// directory was moved away and a plain file put in its place) is reported as such, not as
/// a deletion, and takes no more commits.
#[cfg(unix)]
#[tokio::test]
async fn a_database_whose_directory_became_a_file_takes_no_more_commits() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let store = SqliteStore::open(data.join("orderflow.db")).unwrap();
    store
        .commit(change(None, state("A", 1, false, None), Vec::new()))
        .await
        .unwrap();
    std::fs::rename(&data, dir.path().join("moved")).unwrap();
    std::fs::write(&data, b"not a directory").unwrap();
    let (kind, message) = failure(
        store
            .commit(change(None, state("B", 1, false, None), Vec::new()))
            .await,
    );
    assert_eq!(kind, StoreErrorKind::Refused, "{message}");
    assert!(message.contains("can no longer be found"), "{message}");
    assert!(message.contains("orderflow.db"), "{message}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_replaced_file_gets_no_commit_and_the_store_stays_refusing() {
    let (dir, path) = temp();
    let store = SqliteStore::open(&path).unwrap();
    store
        .commit(change(None, state("A", 1, false, None), Vec::new()))
        .await
        .unwrap();
    let replacement = dir.path().join("replacement.db");
    drop(SqliteStore::open(&replacement).unwrap());
    std::fs::rename(&replacement, &path).unwrap();

    let (kind, message) = failure(
        store
            .commit(change(None, state("B", 1, false, None), Vec::new()))
            .await,
    );
    assert_eq!(kind, StoreErrorKind::Refused, "{message}");
    assert!(message.contains("was replaced"), "{message}");
    // Refused for good, even for a write that would have gone through.
    let (kind, _) = failure(
        store
            .save_flow(&Flow::from_json(FLOW).unwrap(), false)
            .await,
    );
    assert_eq!(kind, StoreErrorKind::Refused);
    drop(store);

    // Nothing the old store was refused reached the path: not even through the old file's
    // write-ahead log, which SQLite replays into whatever file bears the name (so an
    // operator replaces a database together with its `-wal` file).
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.load(&id("B")).await.unwrap(), None);
    assert!(store.flows().await.unwrap().is_empty());
}

/// A completed order: one execution, tokens all gone, ended at `ended` ms; one event on
/// its timeline at `event` ms.
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
    let (_dir, path) = temp();
    // As schema version 2 wrote them.
    let conn = old_file(&path, 2);
    for (state, live) in [
        (completed_state("DONE", 5_000, 7_000), false),
        (state("LIVE", 1, true, None), true),
    ] {
        let text = serde_json::to_string(&state).unwrap();
        let id = state.id().as_str();
        old_order(&conn, (id, 1), &text, live, &[step("x", "Validate")]);
    }
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    // Completed at its last event (7,000 ms), not at its execution's end.
    assert!(store.purge(Timestamp(7_000), 10).await.unwrap().is_empty());
    assert_eq!(
        store.purge(Timestamp(u64::MAX), 10).await.unwrap(),
        [id("DONE")]
    );
    assert_eq!(store.load(&id("DONE")).await.unwrap(), None);
    assert!(store.journey(&id("DONE")).await.unwrap().is_empty());
    assert_eq!(
        store.load(&id("LIVE")).await.unwrap(),
        Some(state("LIVE", 1, true, None))
    );
    assert_eq!(
        store.journey(&id("LIVE")).await.unwrap(),
        [step("x", "Validate")]
    );
}
