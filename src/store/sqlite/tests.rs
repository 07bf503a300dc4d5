use super::*;
use crate::document::OrderId;
use crate::execution::OrderState;
use crate::store::{ChangeSet, Store};

fn big_order(id: &str) -> OrderState {
    let mut order = crate::document::Order::new(id);
    for n in 0..2_000 {
        order = order.with_line(crate::document::OrderLine::new(n.to_string(), "Pen", 1));
    }
    OrderState::new(order)
}

#[test]
fn a_full_disk_refuses_the_batch_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("full.db")).unwrap();
    futures::executor::block_on(async {
        let small = OrderState::new(crate::document::Order::new("small"));
        store.commit(ChangeSet::diff(None, &small)).await.unwrap();
        // The database may grow no more: what SQLite reports on a full disk.
        let limit = |pages: Option<i64>| {
            store.write(move |conn, _| {
                let count: i64 = conn
                    .pragma_query_value(None, "page_count", |row| row.get(0))
                    .unwrap();
                conn.pragma_update(None, "max_page_count", pages.unwrap_or(count))
                    .unwrap();
                Ok(())
            })
        };
        limit(None).await.unwrap();
        let err = store
            .commit(ChangeSet::diff(None, &big_order("big")))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Refused, "{err}");
        assert!(err.to_string().contains("full"), "{err}");
        assert_eq!(store.load(&OrderId::from("big")).await.unwrap(), None);
        assert!(store.load(&OrderId::from("small")).await.unwrap().is_some());

        limit(Some(1 << 30)).await.unwrap();
        store
            .commit(ChangeSet::diff(None, &big_order("big")))
            .await
            .unwrap();
        assert_eq!(
            store.load(&OrderId::from("big")).await.unwrap(),
            Some(big_order("big"))
        );
    });
}

#[test]
fn a_dead_writer_fails_every_later_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("dead.db")).unwrap();
    futures::executor::block_on(async {
        let err = store
            .write(|_, _| panic!("the writer thread dies"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        let state = OrderState::new(crate::document::Order::new("A"));
        let err = store
            .commit(ChangeSet::diff(None, &state))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        assert!(err.is_retryable());
        // Reads go on: they have a thread of their own.
        assert_eq!(store.load(&OrderId::from("A")).await.unwrap(), None);
    });
}

#[test]
fn a_binary_row_of_an_unknown_format_is_corrupt_naming_the_order_and_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("future.db")).unwrap();
    futures::executor::block_on(async {
        let mut state = OrderState::new(crate::document::Order::new("SO-9"));
        state.executions.push(
            serde_json::from_value(serde_json::json!({
                "id": {"order": "SO-9", "seq": 3}, "flow": "F", "version": "1.0.0",
                "plan": 0, "trigger": 1, "round": 0, "tokens": [], "joins": [],
                "consumed": [], "accepted": [], "next_token": 1, "steps": 0, "started": 100,
                "ended": null, "cancelled": null,
            }))
            .unwrap(),
        );
        store.commit(ChangeSet::diff(None, &state)).await.unwrap();
        assert_eq!(store.load(state.id()).await.unwrap(), Some(state.clone()));
        // As a newer orderflow would write it: another format version.
        store
            .write(|conn, _| {
                conn.execute(
                    "UPDATE executions SET state = x'7f00' WHERE order_id = 'SO-9'",
                    [],
                )
                .unwrap();
                Ok(())
            })
            .await
            .unwrap();
        let err = store.load(state.id()).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
        let message = err.to_string();
        for part in ["SO-9", "execution 3", "format version 127", "future.db"] {
            assert!(message.contains(part), "{part}: {message}");
        }
    });
}

/// What a host's retry logic reads: every SQLite failure maps to the kind that says
/// whether trying again can help (a locked or unreachable file: `Unavailable`; a damaged
/// file or a value of the wrong type: `Corrupt`; a refusal that lasts: `Refused`), with a
/// message naming the file and the operation.
#[test]
fn sqlite_failures_map_to_the_kind_that_says_whether_to_retry() {
    use rusqlite::ffi;
    let path = std::path::Path::new("/data/orders.db");
    let code = |c: std::os::raw::c_int| rusqlite::Error::SqliteFailure(ffi::Error::new(c), None);
    let cases = [
        (
            code(ffi::SQLITE_BUSY),
            StoreErrorKind::Unavailable,
            "locked",
        ),
        (
            code(ffi::SQLITE_LOCKED),
            StoreErrorKind::Unavailable,
            "locked",
        ),
        (
            code(ffi::SQLITE_NOTADB),
            StoreErrorKind::Corrupt,
            "not a SQLite database",
        ),
        (
            code(ffi::SQLITE_CORRUPT),
            StoreErrorKind::Corrupt,
            "damaged",
        ),
        (
            code(ffi::SQLITE_READONLY),
            StoreErrorKind::Refused,
            "read-only",
        ),
        (
            code(ffi::SQLITE_FULL),
            StoreErrorKind::Refused,
            "disk is full",
        ),
        (
            code(ffi::SQLITE_PERM),
            StoreErrorKind::Refused,
            "permission denied",
        ),
        (
            code(ffi::SQLITE_AUTH),
            StoreErrorKind::Refused,
            "permission denied",
        ),
        (
            code(ffi::SQLITE_CANTOPEN),
            StoreErrorKind::Unavailable,
            "cannot open",
        ),
        (
            code(ffi::SQLITE_IOERR),
            StoreErrorKind::Unavailable,
            "I/O error",
        ),
        (
            code(ffi::SQLITE_PROTOCOL),
            StoreErrorKind::Unavailable,
            "file locking failed",
        ),
        (
            rusqlite::Error::InvalidColumnType(0, "seq".into(), rusqlite::types::Type::Text),
            StoreErrorKind::Corrupt,
            "wrong type",
        ),
        (
            rusqlite::Error::IntegralValueOutOfRange(0, -1),
            StoreErrorKind::Corrupt,
            "wrong type",
        ),
        (
            rusqlite::Error::QueryReturnedNoRows,
            StoreErrorKind::Other,
            "load failed",
        ),
    ];
    for (error, kind, says) in cases {
        let shown = format!("{error:?}");
        let err = errors::sql_error(path, "load", error);
        assert_eq!(err.kind(), kind, "{shown}: {err}");
        let message = err.to_string();
        assert!(message.contains(says), "{shown}: {message}");
        assert!(message.contains("/data/orders.db"), "{message}");
        assert!(message.contains("load"), "{message}");
    }
}

/// Runs `read` on a thread while a commit of `state`, whose caller stopped waiting (its
/// future polled once, so the store took it, then dropped), is still queued behind a busy
/// writer; releases the writer after the read has had time to start. What the read saw.
fn read_behind_a_dropped_commit<T: Send + 'static>(
    state: OrderState,
    read: impl FnOnce(Arc<SqliteStore>) -> T + Send + 'static,
) -> T {
    use std::future::Future;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("dropped.db")).unwrap());
    let (release_tx, blocker) = hold_writer(&store);
    {
        let mut commit = Box::pin(store.commit(ChangeSet::diff(None, &state)));
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(commit.as_mut().poll(&mut cx).is_pending());
    }
    let reader = store.clone();
    let read = std::thread::spawn(move || read(reader));
    // Give the read time to start while the commit is still queued.
    std::thread::sleep(std::time::Duration::from_millis(100));
    release_tx.send(()).unwrap();
    blocker.join().unwrap();
    read.join().unwrap()
}

/// A commit whose caller stopped waiting (an HTTP handler cancelled after the store took
/// the commit) still lands, and a read started before it lands waits for it: a host that
/// reads back what it submitted never sees the order as it was before, and the timer and
/// recovery queries never miss it.
#[test]
fn reads_wait_for_a_commit_whose_caller_stopped_waiting() {
    let order = || crate::document::Order::new("dropped");
    let loaded = read_behind_a_dropped_commit(OrderState::new(order()), |store| {
        futures::executor::block_on(store.load(&OrderId::from("dropped"))).unwrap()
    });
    assert_eq!(
        loaded.map(|s| s.order().id.clone()),
        Some(OrderId::from("dropped"))
    );
    // An order left under way: due at its resume time.
    let under_way = || {
        let mut state = OrderState::new(order());
        state.resume_at = Some(crate::clock::Timestamp(5));
        state
    };
    let due = read_behind_a_dropped_commit(under_way(), |store| {
        futures::executor::block_on(store.due(crate::clock::Timestamp(10), 10)).unwrap()
    });
    assert_eq!(due, [OrderId::from("dropped")]);
    let next = read_behind_a_dropped_commit(under_way(), |store| {
        futures::executor::block_on(store.next_due()).unwrap()
    });
    assert_eq!(next, Some(crate::clock::Timestamp(5)));
}

/// Holds the store's writer busy until the returned sender is used (or dropped), so the
/// writes queued meanwhile reach it together.
fn hold_writer(store: &Arc<SqliteStore>) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (busy_tx, busy_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let writer = store.clone();
    let blocker = std::thread::spawn(move || {
        futures::executor::block_on(writer.write(move |_, _| {
            busy_tx.send(()).unwrap();
            let _ = release_rx.recv();
            Ok(())
        }))
        .unwrap();
    });
    busy_rx.recv().unwrap();
    (release_tx, blocker)
}

/// Writes that arrive together share transactions of at most 256 writes, and a vacuum
/// queued among them runs on its own, outside any transaction (SQLite refuses to vacuum
/// inside one), after the writes queued before it.
#[test]
fn queued_writes_share_bounded_transactions_and_a_vacuum_runs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("batches.db")).unwrap());
    let (release, blocker) = hold_writer(&store);
    let before = store.transactions();
    let states: Vec<OrderState> = (0..257)
        .map(|n| OrderState::new(crate::document::Order::new(format!("B-{n}"))))
        .collect();
    let commits: Vec<_> = states
        .iter()
        .map(|state| {
            let store = store.clone();
            let change = ChangeSet::diff(None, state);
            std::thread::spawn(move || futures::executor::block_on(store.commit(change)))
        })
        .collect();
    // Every commit is queued before the writer is let go.
    while lock(&store.pending).len() < 257 {
        std::thread::yield_now();
    }
    let vacuum = {
        let store = store.clone();
        std::thread::spawn(move || futures::executor::block_on(store.vacuum()))
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    release.send(()).unwrap();
    blocker.join().unwrap();
    for commit in commits {
        commit.join().unwrap().unwrap();
    }
    vacuum.join().unwrap().unwrap();
    // The held write's own transaction, then 257 writes in two.
    assert_eq!(store.transactions() - before, 3);
    let count = futures::executor::block_on(store.live_orders())
        .unwrap()
        .len();
    assert_eq!(count, 0, "new orders without executions are not live");
    for n in [0, 128, 256] {
        let id = OrderId::from(format!("B-{n}"));
        assert!(
            futures::executor::block_on(store.load(&id))
                .unwrap()
                .is_some()
        );
    }
}

/// A write that fails (a commit at a stale revision) is no transaction: the count of
/// committed transactions stays where it was.
#[test]
fn a_write_that_fails_commits_no_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("failed.db")).unwrap();
    let state = OrderState::new(crate::document::Order::new("F-1"));
    futures::executor::block_on(store.commit(ChangeSet::diff(None, &state))).unwrap();
    let before = store.transactions();
    let err = futures::executor::block_on(store.commit(ChangeSet::diff(None, &state)))
        .expect_err("the order exists: a second first commit conflicts");
    assert_eq!(err.kind(), StoreErrorKind::Conflict, "{err}");
    assert_eq!(store.transactions(), before);
}

/// Once an order's commit has landed, reading it needs nothing from the writer: a read
/// answers while the writer is busy with other work.
#[test]
fn a_read_after_its_commit_landed_does_not_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("busy.db")).unwrap());
    let state = OrderState::new(crate::document::Order::new("R-1"));
    futures::executor::block_on(store.commit(ChangeSet::diff(None, &state))).unwrap();
    let (release, blocker) = hold_writer(&store);
    let (tx, rx) = mpsc::channel();
    let reader = store.clone();
    let read = std::thread::spawn(move || {
        let loaded = futures::executor::block_on(reader.load(&OrderId::from("R-1")));
        let _ = tx.send(loaded.map(|s| s.is_some()));
    });
    // Generous: the read takes a millisecond; only a read stuck behind the writer fails.
    let answered = rx.recv_timeout(std::time::Duration::from_secs(10));
    release.send(()).unwrap();
    blocker.join().unwrap();
    read.join().unwrap();
    assert_eq!(
        answered.ok().map(Result::unwrap),
        Some(true),
        "the read waited"
    );
}
