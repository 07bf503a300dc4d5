//! The SQLite store: see [`SqliteStore`] for its design, schema and errors.

use std::fmt;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use futures::channel::oneshot;
use rusqlite::{Connection, OpenFlags};

#[cfg(doc)]
use super::{ChangeSet, Store};
use super::{StoreError, StoreErrorKind};
use crate::document::OrderId;
#[cfg(doc)]
use crate::{
    execution::OrderState,
    flow::Flow,
    journey::StepRow,
    rules::{PolicyDocument, PolicyRecord},
};
use errors::sql_error;
use file::{FileId, Watch, connect, take_ownership};
use schema::{check_schema, migrate};
use writer::{Pending, WriteJob, WriteOp, lock, write_loop};

mod errors;
mod file;
mod operations;
mod orders;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

type ReadJob = Box<dyn FnOnce(&Connection, &Path) + Send>;

/// A [`Store`] in one SQLite database file: durable, for an engine on one machine.
///
/// Share one store through an `Arc` (or give it to one [`Engine`](crate::Engine)); dropping it
/// finishes the queued work, stops its threads and closes the file.
///
/// # Design
///
/// - **Driver.** [`rusqlite`] with SQLite compiled in (its `bundled` feature), so users need
///   no system library and every build runs the same SQLite. Its API is synchronous; the
///   store drives it from threads of its own and talks to them over channels, which keeps it
///   independent of any async runtime (this crate has none) and never blocks the caller's
///   executor on disk I/O.
/// - **One writer thread** owns the connection that writes. [`Store::commit`],
///   [`Store::save_flow`] and [`Store::save_policy`] send their change to it over a
///   [`std::sync::mpsc`] channel and await a [`futures::channel::oneshot`] reply.
/// - **Group commit.** The writer takes every change queued at that moment (at most
///   256) and applies them in one transaction, each inside its own `SAVEPOINT`: a change that
///   fails its revision check rolls back alone and is answered
///   [`Conflict`](StoreErrorKind::Conflict), the rest commit together, with one fsync for the
///   whole batch. Under load, commits share their fsync instead of queueing for one each;
///   [`SqliteStore::transactions`] counts the transactions. A change whose future is
///   dropped once it is queued may still be applied, as when a database's reply is lost.
/// - **One reader thread** owns a second, read-only connection and serves `load`, `journey`,
///   `flows`, `due` and the other reads. The database is in WAL mode, so reads see the last
///   committed state and run while the writer writes and syncs; a read that follows a
///   successful commit sees it; a `load` reads an order's rows in one read transaction.
///   Rows are decoded on the caller's thread, not on the store's, and a commit's rows are
///   encoded there before it is queued.
/// - **What a commit writes.** A [`ChangeSet`] writes what changed: the order's row (its
///   revision, checked, and indexes; the document only when the change carries it), one
///   upsert per changed execution, and one journal row holding the timeline entries and
///   journey rows it appended. No read of the order's other rows.
/// - **Durability.** `journal_mode=WAL` with `synchronous=FULL`: a commit that returned
///   `Ok` survives a crash or a power loss. `foreign_keys` are on, and a connection waits up
///   to 5 seconds for a lock another process holds before failing with
///   [`Unavailable`](StoreErrorKind::Unavailable).
/// - **One owner per file.** [`SqliteStore::open`] takes an exclusive advisory lock on a
///   file beside the database, `<file>-lock` (`flock` on Unix), and holds it until the store
///   is dropped. A second store on the same file — in another process, or in this one, by
///   whatever spelling of the path (relative, absolute, through a symbolic link) — is
///   refused instead of writing beside the first. The operating system drops the lock with
///   the process however it ends, so after a crash or a `SIGKILL` the next open succeeds.
///   [`SqliteStore::open_read_only`] takes no lock: a tool may read a file an engine writes.
/// - **A file that stays the file.** The store remembers which file it opened (device and
///   inode). Before each transaction commits, the writer checks, with one `stat` per batch,
///   that the path still leads to that file; if the file was deleted or renamed over, the
///   transaction rolls back, the waiting writes fail, and so does every later one: nothing
///   is acknowledged into a file nobody will read again. (The check needs Unix; elsewhere
///   the lock is all there is.)
///
/// # Schema
///
/// Catalog rows and order documents are the `serde_json` text of the crate's types (the
/// document is the host's: it stays readable JSON). Quantities, prices and other document
/// numbers are exact decimals, written as JSON strings (`"quantity": "0.3"`); documents
/// written before they were, with JSON numbers (`"quantity": 0.3`), read as the decimals their
/// text says (`tests/sqlite.rs` reads such a row). Execution state and journal entries are
/// compact binary rows: a format version byte, then postcard (see the crate's
/// `store::codec` module); a row of a version this code does not know is
/// [`Corrupt`](StoreErrorKind::Corrupt), naming the order and the row. Migrations are
/// numbered by `PRAGMA user_version`; [`SqliteStore::open`] applies the missing ones and
/// refuses a file whose version is newer than this code knows. Migration 1 creates:
///
/// | table | columns |
/// |---|---|
/// | `flows` | `seq` (creation order), `name` (unique), `json` ([`Flow`]) |
/// | `flow_versions` | `name`, `version`, `json`: frozen flows, written once (`INSERT … ON CONFLICT DO NOTHING`: the first save of a version stands) |
/// | `policies` | `seq`, `name` (unique), `json` ([`PolicyRecord`]) |
/// | `policy_versions` | `name`, `version`, `json`: published [`PolicyDocument`]s, written once |
/// | `orders` | `id`, `revision`, `state` ([`OrderState`] as JSON), `live`, `next_wake` |
/// | `journeys` | `order_id`, `seq`, `json` ([`StepRow`]) |
///
/// Migration 2 adds `aside` (`seq`, `order_id`, `reason`): the orders set aside
/// ([`Store::set_aside`]), which the live, due and next-timer queries leave out.
///
/// Migration 3 adds retention: `orders.completed_at`, when the order completed
/// ([`OrderState::completed_at`], encoded as `next_wake`; null while it is live), with a
/// partial index that [`Store::purge`] reads; the migration fills it in for the rows
/// already there from their stored state.
///
/// Migration 4 replaces the whole-state rows by rows per part, and moves every stored order
/// to them (decoding its JSON, encoding the binary rows) in the migration's transaction:
///
/// | table | columns |
/// |---|---|
/// | `orders` | `id`, `revision`, `document` ([`Order`](crate::document::Order) as JSON), `resume_at`, `live`, `next_wake`, `completed_at` |
/// | `executions` | `order_id`, `seq`, `state` (an [`Execution`](crate::execution::Execution), binary): upserted when it changed |
/// | `journal` | `order_id`, `revision`, `entries` (the [`TimelineEntry`](crate::journey::TimelineEntry)s and [`StepRow`]s one commit appended, binary) |
///
/// `journeys` is dropped: an order's journey is its journal rows in revision order, as is
/// its timeline. An order whose old row does not decode keeps that row's text as its
/// `document`, so it still fails to load (`Corrupt`) and is set aside as before.
///
/// `orders` has partial indexes on its live orders, its durable timers and its completed
/// orders. `next_wake`, `resume_at` and `completed_at` hold milliseconds with the top bit
/// flipped, so SQLite's signed integers sort every `u64` timestamp in order. A new file
/// uses incremental auto-vacuum, so the pages a purge frees go back to the file system
/// (see [`SqliteStore::vacuum`] for a file from before).
///
/// # Errors
///
/// A busy or locked database, an I/O error and a file that cannot be opened are
/// [`Unavailable`](StoreErrorKind::Unavailable) (worth retrying); a read-only file, a full
/// disk, a newer schema, a file another store owns, and a file deleted or replaced under a
/// running store are [`Refused`](StoreErrorKind::Refused) (not worth retrying as they are:
/// someone must stop the other engine, or reopen the file); a file that is not a
/// database, a damaged one, and stored rows that no longer decode are
/// [`Corrupt`](StoreErrorKind::Corrupt). Each message names the file. If a store thread ends
/// (it panicked), every later call fails with `Unavailable` instead of waiting.
///
/// # Example
///
/// ```
/// use orderflow::document::{Order, OrderId};
/// use orderflow::execution::OrderState;
/// use orderflow::store::{ChangeSet, SqliteStore, Store, StoreErrorKind};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # futures::executor::block_on(async {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("orders.db");
///
/// let store = SqliteStore::open(&path)?;
/// let mut state = OrderState::new(Order::new("SO-1"));
/// state.revision = 1;
/// store.commit(ChangeSet::diff(None, &state)).await?;
///
/// // A second commit computed from the same (missing) revision conflicts.
/// let err = store.commit(ChangeSet::diff(None, &state)).await.unwrap_err();
/// assert_eq!(err.kind(), StoreErrorKind::Conflict);
///
/// // A commit from revision 1 writes what changed: here, the document alone.
/// let mut next = state.clone();
/// next.revision = 2;
/// std::sync::Arc::make_mut(&mut next.order).customer = Some("Contoso".into());
/// store.commit(ChangeSet::diff(Some(&state), &next)).await?;
/// drop(store);
///
/// // The file keeps it.
/// let store = SqliteStore::open(&path)?;
/// assert_eq!(store.load(&OrderId::from("SO-1")).await?, Some(next));
/// # Ok(())
/// # })
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub struct SqliteStore {
    path: Arc<Path>,
    writer: Option<mpsc::Sender<WriteJob>>,
    reader: Option<mpsc::Sender<ReadJob>>,
    threads: Vec<JoinHandle<()>>,
    transactions: Arc<AtomicU64>,
    /// The catalog revision: this process is the file's one writer, so it counts its own
    /// catalog saves.
    catalog: Arc<AtomicU64>,
    /// Orders with commits queued for the writer and not yet committed (a commit whose
    /// caller stopped waiting — its future dropped — still counts until the writer is
    /// done with it): a load of such an order waits for them, so it reads its own writes.
    pending: Arc<std::sync::Mutex<writer::PendingOrders>>,
    /// The ownership lock; released (dropped) after the threads have stopped.
    _owner: Option<File>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("transactions", &self.transactions())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database file at `path`, creating it if it does not exist, and brings its
    /// schema up to date. The store owns the file until it is dropped (see the type docs).
    ///
    /// Blocks while it opens the file and migrates (briefly; call it before serving, or from
    /// a blocking task).
    ///
    /// # Errors
    ///
    /// [`Corrupt`](StoreErrorKind::Corrupt) for a file that is not a SQLite database;
    /// [`Refused`](StoreErrorKind::Refused) for a database written by a newer version of
    /// this crate, a database of another application, one that cannot be switched to WAL
    /// (an in-memory path), or one another [`SqliteStore`] has open, in this process or
    /// another (the message names the file);
    /// [`Unavailable`](StoreErrorKind::Unavailable) when the file cannot be opened or is
    /// locked by a transaction.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::start(path.as_ref(), false)
    }

    /// Opens an existing database file for reading only, as a tool that inspects a database
    /// another process writes would. Every write fails with
    /// [`Refused`](StoreErrorKind::Refused) and changes nothing.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); also [`Refused`](StoreErrorKind::Refused) when the file's
    /// schema is not the one this code writes (it cannot be migrated read-only).
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::start(path.as_ref(), true)
    }

    fn start(path: &Path, read_only: bool) -> Result<Self, StoreError> {
        let path: Arc<Path> = Arc::from(path);
        // A reader takes no lock: a tool may inspect a file an engine is writing. An
        // in-memory path has no file to own (and is refused below: it cannot use WAL).
        let in_memory = path.as_os_str().is_empty() || path.as_os_str() == ":memory:";
        let owner = if read_only || in_memory {
            None
        } else {
            Some(take_ownership(&path)?)
        };
        let writer_conn = if read_only {
            let conn = connect(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
            check_schema(&conn, &path)?;
            conn
        } else {
            let conn = connect(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            )?;
            // Takes effect in a new file only, and only before its first page is written
            // (switching to WAL writes it): pages freed by a purge then go back to the file
            // system. An older file changes at its next `VACUUM`.
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(|e| sql_error(&path, "setting auto_vacuum", e))?;
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(|e| sql_error(&path, "opening it in WAL mode", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::new(
                    StoreErrorKind::Refused,
                    format!(
                        "SQLite database {}: cannot use WAL journal mode (it stays '{mode}'); \
                         give the path of a file on a local disk",
                        path.display()
                    ),
                ));
            }
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(|e| sql_error(&path, "setting synchronous=FULL", e))?;
            migrate(&conn, &path)?;
            conn
        };
        let watch = Watch {
            path: std::path::absolute(&path).unwrap_or_else(|_| path.to_path_buf()),
            opened: FileId::of(&path).map_err(|e| {
                StoreError::new(
                    StoreErrorKind::Unavailable,
                    format!(
                        "cannot read what SQLite database {} is: {e}",
                        path.display()
                    ),
                )
                .with_source(e)
            })?,
            lost: None,
        };
        let reader_conn = connect(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        reader_conn
            .pragma_update(None, "query_only", true)
            .map_err(|e| sql_error(&path, "opening the read connection", e))?;

        let transactions = Arc::new(AtomicU64::new(0));
        let (writer_tx, writer_rx) = mpsc::channel::<WriteJob>();
        let (reader_tx, reader_rx) = mpsc::channel::<ReadJob>();
        let mut store = Self {
            path: path.clone(),
            writer: Some(writer_tx),
            reader: Some(reader_tx),
            threads: Vec::with_capacity(2),
            transactions: transactions.clone(),
            catalog: Arc::new(AtomicU64::new(0)),
            pending: Arc::default(),
            _owner: owner,
        };
        let spawn_error = |e: std::io::Error| {
            StoreError::new(
                StoreErrorKind::Unavailable,
                format!("SQLite database {}: cannot start a thread", path.display()),
            )
            .with_source(e)
        };
        let writer_path = path.clone();
        let catalog = store.catalog.clone();
        store.threads.push(
            std::thread::Builder::new()
                .name("orderflow-sqlite-writer".into())
                .spawn(move || {
                    write_loop(
                        writer_conn,
                        &writer_path,
                        watch,
                        &writer_rx,
                        &transactions,
                        &catalog,
                    )
                })
                .map_err(spawn_error)?,
        );
        let reader_path = path.clone();
        store.threads.push(
            std::thread::Builder::new()
                .name("orderflow-sqlite-reader".into())
                .spawn(move || {
                    while let Ok(job) = reader_rx.recv() {
                        job(&reader_conn, &reader_path);
                    }
                })
                .map_err(spawn_error)?,
        );
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many write transactions the store has committed since it was opened. With group
    /// commit, writes that arrive together share one: under concurrent load this is well
    /// below the number of writes.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Checks the whole file for damage (SQLite's `PRAGMA quick_check`, which reads every
    /// page: slow on a large database). Damage otherwise shows as a
    /// [`Corrupt`](StoreErrorKind::Corrupt) error from the first operation that reads it.
    ///
    /// # Errors
    ///
    /// [`Corrupt`](StoreErrorKind::Corrupt) naming what SQLite found wrong.
    pub async fn check_integrity(&self) -> Result<(), StoreError> {
        let problems = self
            .read(|conn, path| {
                let mut stmt = conn
                    .prepare("PRAGMA quick_check")
                    .map_err(|e| sql_error(path, "checking integrity", e))?;
                let rows = stmt
                    .query_map([], |row| row.get::<_, String>(0))
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(|e| sql_error(path, "checking integrity", e))?;
                Ok(rows)
            })
            .await?;
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        Err(StoreError::new(
            StoreErrorKind::Corrupt,
            format!(
                "SQLite database {} is damaged: {}",
                self.path.display(),
                problems.join("; ")
            ),
        ))
    }

    /// Rewrites the whole file without its free pages (SQLite's `VACUUM`) and switches a
    /// file created by an older version of this crate to incremental auto-vacuum, after
    /// which [`Store::purge`] gives the pages it frees back on its own. Slow on a large
    /// database (it copies every page) and it needs free disk space of the file's size;
    /// commits wait while it runs.
    ///
    /// # Errors
    ///
    /// As any write: [`Refused`](StoreErrorKind::Refused) on a full disk or a read-only
    /// store, [`Unavailable`](StoreErrorKind::Unavailable) on an I/O error.
    pub async fn vacuum(&self) -> Result<(), StoreError> {
        self.write_alone(|conn, path| {
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")
                .map_err(|e| sql_error(path, "vacuuming", e))
        })
        .await?;
        self.checkpoint().await
    }

    /// Copies the write-ahead log into the database file and truncates the log. Readers
    /// in the middle of a read can keep the log from being truncated; it then shrinks at
    /// a later checkpoint.
    async fn checkpoint(&self) -> Result<(), StoreError> {
        self.write_alone(|conn, path| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(|e| sql_error(path, "checkpointing the write-ahead log", e))
        })
        .await
    }

    /// Runs `f` on the reader thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, &Path) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn, path| {
            let _ = tx.send(f(conn, path));
        });
        self.reader
            .as_ref()
            .ok_or_else(|| self.gone())?
            .send(job)
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// Queues a change for the writer thread and waits until its batch is committed.
    async fn write(
        &self,
        op: impl FnOnce(&Connection, &Path) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        self.send_write(Box::new(op), false, false).await
    }

    /// Queues a catalog change: the writer raises the catalog revision once its batch is
    /// committed, whether or not the caller is still waiting.
    async fn write_catalog(
        &self,
        op: impl FnOnce(&Connection, &Path) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        self.send_write(Box::new(op), false, true).await
    }

    /// Runs `op` on the writer's connection outside any transaction, between batches.
    async fn write_alone(
        &self,
        op: impl FnOnce(&Connection, &Path) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        self.send_write(Box::new(op), true, false).await
    }

    /// Queues an order's commit: the order counts as pending until the writer is done.
    async fn write_order(
        &self,
        order: &OrderId,
        op: impl FnOnce(&Connection, &Path) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let guard = Pending::new(&self.pending, order);
        self.send_job(Box::new(op), false, false, Some(guard)).await
    }

    /// Waits until the writer is done with the commits queued for `order`, if any: a read
    /// sees every commit the store accepted, even one whose caller stopped waiting.
    async fn settle_order(&self, order: &OrderId) -> Result<(), StoreError> {
        let queued = lock(&self.pending).contains_key(order);
        if queued {
            // The writer takes jobs in order: once this one is done, so are the earlier. A
            // writer that cannot take it (its thread gone) lands nothing later either: the
            // read goes on, on its own thread.
            let _ = self.write_alone(|_, _| Ok(())).await;
        }
        Ok(())
    }

    /// Waits until the writer is done with every order's queued commits, if any: what the
    /// timer and recovery queries list includes them.
    async fn settle_orders(&self) -> Result<(), StoreError> {
        let queued = !lock(&self.pending).is_empty();
        if queued {
            // The writer takes jobs in order: once this one is done, so are the earlier. A
            // writer that cannot take it (its thread gone) lands nothing later either: the
            // read goes on, on its own thread.
            let _ = self.write_alone(|_, _| Ok(())).await;
        }
        Ok(())
    }

    async fn send_write(&self, op: WriteOp, alone: bool, catalog: bool) -> Result<(), StoreError> {
        self.send_job(op, alone, catalog, None).await
    }

    async fn send_job(
        &self,
        op: WriteOp,
        alone: bool,
        catalog: bool,
        pending: Option<Pending>,
    ) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        let job = WriteJob {
            op,
            reply,
            alone,
            catalog,
            pending,
        };
        self.writer
            .as_ref()
            .ok_or_else(|| self.gone())?
            .send(job)
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())?
    }

    /// The error for a store whose thread has ended.
    fn gone(&self) -> StoreError {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!(
                "SQLite store {}: its thread has stopped (it panicked); open the file again",
                self.path.display()
            ),
        )
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channels ends the threads once they finish what is queued.
        self.writer = None;
        self.reader = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
