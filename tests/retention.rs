//! Retention: completed orders leave, and what they held goes back. The reference lab runs
//! a batch of orders to completion, then `Engine::purge_completed` removes them; the test
//! prints the bytes each completed order held and what is left after the purge, and holds
//! the store to its baseline: heap bytes on the memory store (a counting global allocator),
//! file bytes on SQLite (database and write-ahead log).
//!
//! ```text
//! cargo test --features sqlite --test retention -- --nocapture
//! ```

mod common;

use async_trait::async_trait;
use orderflow::clock::Timestamp;
use orderflow::execution::ExecutionStatus;
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::{Engine, Event, ManualClock, Store};

/// When the orders run: the manual clock stands still, so they all complete at `NOW`.
const NOW: Timestamp = Timestamp(1_750_000_000_000);

/// A 3PL that keeps nothing: the bytes measured are the engine's and the store's.
#[derive(Debug)]
struct Forgetful(&'static str);

#[async_trait]
impl Provider for Forgetful {
    fn name(&self) -> &str {
        self.0
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendFulfillmentOrder]
    }
    async fn call(
        &self,
        _request: Request<'_>,
        _cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        Ok(Reply::Done)
    }
}

async fn lab(store: impl Store) -> Engine {
    let engine = Engine::builder()
        .store(store)
        .clock(ManualClock::new(NOW))
        .provider(Forgetful("Seattle store 3PL"))
        .provider(Forgetful("Chicago store 3PL"))
        .build()
        .await
        .unwrap();
    common::publish_lab(&engine).await;
    engine
}

/// Runs orders `from..from + count` of the reference lab to completion.
async fn run_orders(engine: &Engine, from: usize, count: usize) {
    for n in from..from + count {
        let id = format!("RET-{n:06}");
        // Every third order takes the large-quantity path.
        let quantity = if n % 3 == 0 { 150 } else { 10 };
        engine
            .submit(Event::new_order(common::lab_order(&id, quantity)))
            .await
            .unwrap();
    }
    let last = format!("RET-{:06}", from + count - 1);
    let state = engine.order_state(&last).await.unwrap().unwrap();
    assert!(
        state
            .executions()
            .iter()
            .all(|e| e.status() == ExecutionStatus::Completed),
        "the lab's orders complete"
    );
}

/// Purges everything completed up to now and checks it was exactly `count` orders.
async fn purge_all(engine: &Engine, count: usize) {
    let purged = engine
        .purge_completed(NOW.after(std::time::Duration::from_millis(1)), usize::MAX)
        .await
        .unwrap();
    assert_eq!(purged.len(), count, "every completed order is purged");
}

#[test]
fn the_memory_store_returns_to_its_baseline() {
    const ORDERS: usize = 2_000;
    // One thread: the counting allocator counts per thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let engine = rt.block_on(lab(orderflow::MemoryStore::new()));
    // A first round warms what the engine keeps for good (compiled plans, map capacity).
    rt.block_on(async {
        run_orders(&engine, 0, ORDERS).await;
        purge_all(&engine, ORDERS).await;
    });

    let held = allocation_counter::measure(|| rt.block_on(run_orders(&engine, ORDERS, ORDERS)));
    let freed = allocation_counter::measure(|| rt.block_on(purge_all(&engine, ORDERS)));
    let left = held.bytes_current + freed.bytes_current;
    println!(
        "memory store: {ORDERS} completed orders held {} bytes ({} per order); after the \
         purge {left} bytes are left ({:.1} per order)",
        held.bytes_current,
        held.bytes_current / ORDERS as i64,
        left as f64 / ORDERS as f64
    );
    assert!(
        held.bytes_current > (ORDERS * 1_000) as i64,
        "completed orders take room before the purge"
    );
    assert!(
        left <= 4 * 1024,
        "the purge gives back what the orders held: {left} bytes are left"
    );
}

#[cfg(feature = "sqlite")]
#[test]
fn the_sqlite_file_returns_to_its_baseline() {
    use orderflow::store::SqliteStore;

    const ORDERS: usize = 2_000;
    /// A few pages of slack: the b-trees' interior pages may settle differently.
    const SLACK: u64 = 16 * 4096;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("retention.db");
    let size = || {
        ["", "-wal"]
            .iter()
            .map(|suffix| {
                let mut file = path.clone().into_os_string();
                file.push(suffix);
                std::fs::metadata(file).map_or(0, |m| m.len())
            })
            .sum::<u64>()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let engine = rt.block_on(lab(SqliteStore::open(&path).unwrap()));
    rt.block_on(async {
        run_orders(&engine, 0, 100).await;
        purge_all(&engine, 100).await;
    });
    let baseline = size();

    rt.block_on(run_orders(&engine, 100, ORDERS));
    let full = size();
    rt.block_on(purge_all(&engine, ORDERS));
    let after = size();
    println!(
        "SQLite: baseline {baseline} bytes; {ORDERS} completed orders {full} bytes ({} per \
         order); after the purge {after} bytes",
        (full - baseline) / ORDERS as u64
    );
    assert!(
        full > baseline + (ORDERS * 1_000) as u64,
        "completed orders take room before the purge"
    );
    assert!(
        after <= baseline + SLACK,
        "the file shrinks back: {after} bytes after the purge, baseline {baseline}"
    );
    drop(engine);

    // The file is whole, and only the catalog is left in it.
    let store = SqliteStore::open(&path).unwrap();
    rt.block_on(async {
        store.check_integrity().await.unwrap();
        assert!(store.live_orders().await.unwrap().is_empty());
        assert!(store.load(&"RET-000100".into()).await.unwrap().is_none());
        assert_eq!(store.flows().await.unwrap().len(), 1);
    });
}

/// A file made before retention existed has no incremental auto-vacuum: a purge leaves its
/// pages free for new orders, and `vacuum` gives them back and switches the file over.
#[cfg(feature = "sqlite")]
#[test]
fn an_older_file_shrinks_at_vacuum_and_by_itself_after() {
    use orderflow::store::SqliteStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let auto_vacuum = || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_query_value(None, "auto_vacuum", |r| r.get::<_, i64>(0))
            .unwrap()
    };
    drop(SqliteStore::open(&path).unwrap());
    // As a file from before: no auto-vacuum.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA auto_vacuum = NONE; VACUUM;
         PRAGMA journal_mode = WAL;",
    )
    .unwrap();
    drop(conn);
    assert_eq!(auto_vacuum(), 0);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let engine = rt.block_on(lab(store.clone()));
    let size = || std::fs::metadata(&path).unwrap().len();
    let empty = size();
    rt.block_on(async {
        run_orders(&engine, 0, 500).await;
        purge_all(&engine, 500).await;
    });
    let purged = size();
    rt.block_on(store.vacuum()).unwrap();
    let vacuumed = size();
    println!(
        "older SQLite file: {empty} bytes empty, {purged} after 500 orders and a purge, \
         {vacuumed} after vacuum"
    );
    assert!(
        purged > empty + 500 * 1_000,
        "the purge left its pages in the file"
    );
    assert!(vacuumed <= empty + 16 * 4096, "vacuum gives them back");
    drop(engine);
    drop(store);
    assert_eq!(
        auto_vacuum(),
        2,
        "the file is switched to incremental auto-vacuum"
    );
}

#[tokio::test]
async fn a_purged_order_can_come_back_as_a_new_one() {
    let seattle = orderflow::MemoryProvider::new("Seattle store 3PL");
    let engine = Engine::builder()
        .store(orderflow::MemoryStore::new())
        .clock(ManualClock::new(NOW))
        .provider(seattle.clone())
        .provider(Forgetful("Chicago store 3PL"))
        .build()
        .await
        .unwrap();
    common::publish_lab(&engine).await;
    let order = || Event::new_order(common::lab_order("AGAIN", 150));
    engine.submit(order()).await.unwrap();
    assert_eq!(seattle.calls().len(), 1);
    // Submitted again before the purge: a duplicate, ignored.
    engine.submit(order()).await.unwrap();
    assert_eq!(seattle.calls().len(), 1);

    let cutoff = NOW.after(std::time::Duration::from_millis(1));
    // Completed at NOW, not before it: nothing goes yet.
    assert!(engine.purge_completed(NOW, 10).await.unwrap().is_empty());
    assert_eq!(
        engine.purge_completed(cutoff, 10).await.unwrap(),
        [orderflow::document::OrderId::from("AGAIN")]
    );
    assert!(engine.order_state("AGAIN").await.unwrap().is_none());
    // Forgotten: the same order is a new one now, and runs again.
    engine.submit(order()).await.unwrap();
    assert_eq!(seattle.calls().len(), 2);
    assert!(!engine.journey("AGAIN").await.unwrap().steps.is_empty());
}
