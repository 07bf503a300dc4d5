//! Footprint: what one order costs the engine in allocations, in memory held and in bytes
//! written to disk. A plain `main`, not criterion: it prints its figures, one line each, for
//! comparing the engine's core before and after a change. Runs in well under a minute.
//!
//! ```text
//! cargo bench --features sqlite --bench footprint
//! ```
//!
//! Each figure and how it is measured:
//!
//! - **Allocations per reference-lab order**, and the bytes they ask for: the reference order
//!   (`support::lab_order`: one US line, quantity 110 or 10 by turns, so half ship from
//!   Seattle and half from Chicago) through the reference lab's published policies and flow
//!   on the memory store with no-op providers, as `benches/reference.rs` runs it. After a
//!   warm-up of 100 orders (the runtime's and the engine's one-time allocations), 10,000
//!   orders are submitted one after another on one thread, their events built beforehand,
//!   inside `allocation_counter::measure` (a counting global allocator; it counts the
//!   current thread, which is the only one that runs the engine). Printed: total
//!   allocations and total bytes allocated divided by the number of orders, and the bytes
//!   still held at the end per order (what the memory store keeps of a finished order: its
//!   document, executions and journey).
//! - **Allocations per split-merge order**, and the bytes they ask for: the shape of
//!   `benches/shape.rs` (`support::shape`: validate the header, a Splitter-Merge whose two
//!   branches are both taken, send to the ERP through a no-op provider) on the memory store,
//!   its one-line US order, counted the same way: a warm-up of 100 orders, then 10,000
//!   orders inside `allocation_counter::measure`, the totals divided by the number of orders
//!   (goal: at most 30 allocations per order).
//! - **Bytes per parked execution beyond the order document**: the method of
//!   `benches/memory.rs` with 20,000 orders. A two-step flow validates the header on
//!   "New Order", which passes, then waits at a step that takes "Shipped"; each submitted
//!   order leaves one execution waiting on the memory store. The figure is the bytes still
//!   allocated after the submits, per order, minus the bytes of the same order documents
//!   held in a `Vec` (measured the same way in the same run).
//! - **Bytes written per order on SQLite**: 2,000 reference-lab orders submitted one after
//!   another (no group commit: each commit is its own transaction) to a `SqliteStore` on a
//!   fresh file, which it opens in WAL mode with `synchronous=FULL`. The catalog is
//!   published first, that store closed and the write-ahead log checkpointed into the file
//!   (`PRAGMA wal_checkpoint(TRUNCATE)` on a connection of the bench's own). The figures
//!   cover a second store on the same file, from just after its engine is built until the
//!   store is closed and the log checkpointed the same way, so they include copying the log
//!   into the file. Printed per order: the growth of the files (database plus write-ahead
//!   log, each end after its checkpoint); the process's `write_bytes` (bytes sent to the
//!   storage layer) and `wchar` (bytes passed to `write` and the like) from
//!   `/proc/self/io` (Linux only; every thread of the process, the store's writer thread
//!   included); and the store's write transactions.

mod support;

use std::path::Path;
use std::sync::Arc;

use orderflow::document::Order;
use orderflow::execution::ExecutionStatus;
use orderflow::journey::{Journey, Outcome};
use orderflow::store::SqliteStore;
use orderflow::{Engine, Event};

use support::{NoopProvider, lab_engine, lab_engine_on, lab_order, one_line_order, shape, waiting};

/// Orders measured for allocations (reference lab, split-merge shape).
const ORDERS: u64 = 10_000;
/// Orders submitted before the allocations are measured.
const WARM_UP: u64 = 100;
/// Executions left waiting for an event.
const PARKED: u64 = 20_000;
/// Reference-lab orders written to SQLite.
const SQLITE_ORDERS: u64 = 2_000;

fn main() {
    // `cargo bench` passes criterion's flags (`--bench`, `--quick`); this bench takes none.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let started = std::time::Instant::now();
    allocations(&rt);
    split_merge_allocations(&rt);
    parked(&rt);
    sqlite(&rt);
    println!("footprint took {:.1} s", started.elapsed().as_secs_f64());
}

/// The journey of order `SO-{i}`, after asserting that its executions completed.
async fn completed_journey(engine: &Engine, i: u64) -> Journey {
    let journey = engine.journey(format!("SO-{i}")).await.expect("journey");
    assert!(
        journey
            .executions
            .iter()
            .all(|e| e.status == ExecutionStatus::Completed),
        "SO-{i}: {:?}",
        journey.executions
    );
    journey
}

/// Asserts that a reference-lab order went the way its quantity sends it: validated,
/// assigned, and sent to the store that holds it, and its execution completed.
async fn check_lab_order(engine: &Engine, i: u64) {
    let journey = completed_journey(engine, i).await;
    let (sent, skipped) = if i % 2 == 0 {
        ("Send to Seattle", "Send to Chicago")
    } else {
        ("Send to Chicago", "Send to Seattle")
    };
    assert_eq!(journey.outcome(sent), Some(Outcome::Succeeded), "SO-{i}");
    assert_ne!(journey.outcome(skipped), Some(Outcome::Succeeded), "SO-{i}");
}

/// Counts what `ORDERS` submits of `order(i)` allocate on `engine`, after `WARM_UP` orders
/// of their own; returns the count (the events are built beforehand, outside it).
fn count_allocations(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    order: fn(u64) -> Order,
) -> allocation_counter::AllocationInfo {
    rt.block_on(async {
        for i in 0..WARM_UP {
            engine
                .submit(Event::new_order(order(ORDERS + i)))
                .await
                .expect("submitted");
        }
    });
    let events: Vec<Event> = (0..ORDERS).map(|i| Event::new_order(order(i))).collect();
    allocation_counter::measure(|| {
        rt.block_on(async {
            for event in events {
                engine.submit(event).await.expect("submitted");
            }
        });
    })
}

fn allocations(rt: &tokio::runtime::Runtime) {
    let engine = rt.block_on(lab_engine());
    let traffic = count_allocations(rt, &engine, lab_order);
    rt.block_on(async {
        check_lab_order(&engine, 0).await;
        check_lab_order(&engine, ORDERS - 1).await;
    });
    let n = ORDERS as f64;
    println!(
        "allocations per reference-lab order: {} ({} B)",
        grouped(traffic.count_total as f64 / n),
        grouped(traffic.bytes_total as f64 / n),
    );
    println!(
        "  held by the memory store per finished order: {} B ({} orders, memory store)",
        grouped(traffic.bytes_current as f64 / n),
        grouped(n),
    );
}

fn split_merge_allocations(rt: &tokio::runtime::Runtime) {
    let engine = rt.block_on(shape::engine());
    let traffic = count_allocations(rt, &engine, shape::order);
    for i in [0, ORDERS - 1] {
        let journey = rt.block_on(completed_journey(&engine, i));
        for step in ["Check A", "Check B", "Send"] {
            assert_eq!(
                journey.outcome(step),
                Some(Outcome::Succeeded),
                "SO-{i} {step}"
            );
        }
    }
    let n = ORDERS as f64;
    println!(
        "allocations per split-merge order: {} ({} B)",
        grouped(traffic.count_total as f64 / n),
        grouped(traffic.bytes_total as f64 / n),
    );
}

fn parked(rt: &tokio::runtime::Runtime) {
    let engine = rt.block_on(waiting::engine());
    // Warms the runtime and the engine's maps so their one-time allocations are not counted.
    rt.block_on(engine.submit(Event::new_order(one_line_order(u64::MAX))))
        .expect("submitted");

    let mut documents: Vec<Order> = Vec::new();
    let baseline = allocation_counter::measure(|| {
        documents = (0..PARKED).map(one_line_order).collect();
    });
    drop(documents);
    let held = allocation_counter::measure(|| {
        rt.block_on(async {
            for i in 0..PARKED {
                engine
                    .submit(Event::new_order(one_line_order(i)))
                    .await
                    .expect("submitted");
            }
        });
    });
    for i in [0, PARKED - 1] {
        let journey = rt
            .block_on(engine.journey(format!("SO-{i}")))
            .expect("journey");
        assert_eq!(journey.executions.len(), 1, "SO-{i}");
        assert_eq!(
            journey.executions[0].status,
            ExecutionStatus::Waiting,
            "SO-{i}"
        );
    }

    let per_document = baseline.bytes_current as f64 / PARKED as f64;
    let per_order = held.bytes_current as f64 / PARKED as f64;
    println!(
        "bytes per parked execution beyond the order document: {} B",
        grouped(per_order - per_document)
    );
    println!(
        "  held per order {} B, order document alone {} B ({} executions waiting, memory store)",
        grouped(per_order),
        grouped(per_document),
        grouped(PARKED as f64),
    );
}

fn sqlite(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("footprint.db");

    // The catalog, in a store closed before the measured one opens.
    rt.block_on(async {
        let engine = lab_engine_on(SqliteStore::open(&path).expect("store opens")).await;
        drop(engine);
    });
    checkpoint(&path);
    let before = files(&path);

    let store = Arc::new(SqliteStore::open(&path).expect("store opens"));
    // The catalog is in the file: this engine reads it, with the same providers.
    let engine = rt
        .block_on(
            Engine::builder()
                .store(store.clone())
                .provider(NoopProvider::new("Seattle store 3PL"))
                .provider(NoopProvider::new("Chicago store 3PL"))
                .build(),
        )
        .expect("engine builds");
    let events: Vec<Event> = (0..SQLITE_ORDERS)
        .map(|i| Event::new_order(lab_order(i)))
        .collect();
    let transactions_before = store.transactions();
    let io_before = proc_io();
    rt.block_on(async {
        for event in events {
            engine.submit(event).await.expect("submitted");
        }
        check_lab_order(&engine, 0).await;
        check_lab_order(&engine, SQLITE_ORDERS - 1).await;
    });
    let transactions = store.transactions() - transactions_before;
    drop(engine);
    let store = Arc::into_inner(store).expect("the engine is gone: the store is ours alone");
    drop(store);
    checkpoint(&path);
    let io_after = proc_io();
    let after = files(&path);

    let n = SQLITE_ORDERS as f64;
    let growth = (after.0 + after.1) as f64 - (before.0 + before.1) as f64;
    let io = match (io_before, io_after) {
        (Some(b), Some(a)) => format!(
            "{} B write_bytes, {} B wchar",
            grouped((a.write_bytes - b.write_bytes) as f64 / n),
            grouped((a.wchar - b.wchar) as f64 / n),
        ),
        _ => "write_bytes and wchar not available (no /proc/self/io)".to_owned(),
    };
    println!(
        "bytes written per order on SQLite: {} B file growth; {io}",
        grouped(growth / n)
    );
    println!(
        "  {} orders one after another, synchronous=FULL, {:.1} write transactions per order; \
         file {} B -> {} B (db {} B + wal {} B after the checkpoint)",
        grouped(n),
        transactions as f64 / n,
        grouped((before.0 + before.1) as f64),
        grouped((after.0 + after.1) as f64),
        grouped(after.0 as f64),
        grouped(after.1 as f64),
    );
}

/// Copies the write-ahead log of the closed database at `db` into the file and truncates
/// the log (SQLite's `PRAGMA wal_checkpoint(TRUNCATE)`, on a connection of its own).
fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).expect("database opens");
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .expect("checkpoint runs");
    assert_eq!(
        busy, 0,
        "the checkpoint was blocked: the store is still open"
    );
}

/// The sizes of the database file and of its write-ahead log (0 when absent).
fn files(db: &Path) -> (u64, u64) {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    (size(db), size(Path::new(&wal)))
}

/// The process's write counters from `/proc/self/io`.
#[derive(Debug, Clone, Copy)]
struct Io {
    wchar: u64,
    write_bytes: u64,
}

fn proc_io() -> Option<Io> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(Io {
        wchar: field("wchar")?,
        write_bytes: field("write_bytes")?,
    })
}

/// `x` rounded to a whole number, with thousands separated by commas.
fn grouped(x: f64) -> String {
    let rounded = x.round();
    let digits = format!("{}", rounded.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        out.insert(0, '-');
    }
    out
}
