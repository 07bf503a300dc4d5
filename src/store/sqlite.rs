//! The SQLite store: see [`SqliteStore`] for its design, schema and errors.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use futures::channel::oneshot;
use rusqlite::types::ToSql;
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params,
    params_from_iter,
};
use semver::Version;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Commit, SetAside, Store, StoreError, StoreErrorKind, Unreadable, wake_key, wake_time};
use crate::clock::Timestamp;
use crate::document::OrderId;
use crate::execution::OrderState;
use crate::flow::Flow;
use crate::journey::StepRow;
use crate::rules::{PolicyDocument, PolicyRecord};

/// The most changes one transaction takes.
const MAX_BATCH: usize = 256;
/// How long a connection waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Marks a database file as this crate's (`PRAGMA application_id`): "OFLW".
const APPLICATION_ID: i32 = 0x4F46_4C57;

/// The schema migrations; migration `n` (1-based) brings `user_version` from `n - 1` to `n`.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE flows (
        seq INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        json TEXT NOT NULL
    );
    CREATE TABLE flow_versions (
        name TEXT NOT NULL REFERENCES flows (name),
        version TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE policies (
        seq INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        json TEXT NOT NULL
    );
    CREATE TABLE policy_versions (
        name TEXT NOT NULL REFERENCES policies (name),
        version INTEGER NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE orders (
        id TEXT PRIMARY KEY NOT NULL,
        revision INTEGER NOT NULL,
        state TEXT NOT NULL,
        live INTEGER NOT NULL,
        next_wake INTEGER
    );
    CREATE INDEX orders_live ON orders (id) WHERE live = 1;
    CREATE INDEX orders_next_wake ON orders (next_wake, id) WHERE next_wake IS NOT NULL;
    CREATE TABLE journeys (
        order_id TEXT NOT NULL REFERENCES orders (id),
        seq INTEGER NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (order_id, seq)
    );",
    // Orders set aside (poison): kept out of live_orders, due and next_due.
    "CREATE TABLE aside (
        seq INTEGER PRIMARY KEY,
        order_id TEXT NOT NULL UNIQUE,
        reason TEXT NOT NULL
    );",
    // Retention: when an order completed (`OrderState::completed_at` as a wake key), null
    // while it is live; filled in for the rows already there by `backfill_completion`.
    "ALTER TABLE orders ADD COLUMN completed_at INTEGER;
    CREATE INDEX orders_completed ON orders (completed_at) WHERE completed_at IS NOT NULL;",
];

/// The migration after which `backfill_completion` runs, in the same transaction.
const COMPLETION_MIGRATION: i64 = 3;

/// The schema version this code writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;
type WriteOp = Box<dyn FnOnce(&Connection, &Path) -> Result<(), StoreError> + Send>;
type ReadJob = Box<dyn FnOnce(&Connection, &Path) + Send>;

/// The file a store opened, as the file system names it: device and inode. A store checks
/// before each commit that its path still leads to this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl FileId {
    /// The file at `path` now (following symbolic links).
    fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(Self {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Ok(Self {})
        }
    }
}

/// What the writer checks before it commits: that the database file it has open is still
/// the one at its path.
struct Watch {
    /// The absolute path, so a change of working directory changes nothing.
    path: PathBuf,
    opened: FileId,
    /// Set once the file is found gone or replaced: every later write is refused.
    lost: Option<String>,
}

impl Watch {
    fn check(&mut self, shown: &Path) -> Result<(), StoreError> {
        if self.lost.is_none() {
            let problem = match FileId::of(&self.path) {
                Ok(id) if id == self.opened => return Ok(()),
                Ok(_) => "was replaced by another file",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was deleted",
                Err(_) => "can no longer be found",
            };
            self.lost = Some(format!(
                "SQLite database {} {problem} while this store had it open; nothing more \
                 is committed to the old file: stop the engine and open the database again",
                shown.display()
            ));
        }
        Err(StoreError::new(
            StoreErrorKind::Refused,
            self.lost.clone().unwrap_or_default(),
        ))
    }
}

/// Makes a store the one owner of its database file: an exclusive advisory lock (`flock`
/// on Unix, `LockFileEx` on Windows) on a file beside the database, `<file>-lock`, held while
/// the store is open. The operating system releases it when the process ends, however it
/// ends, so a killed engine leaves nothing to clean up. The lock file itself stays, like
/// SQLite's `-wal` and `-shm` files.
fn take_ownership(path: &Path) -> Result<File, StoreError> {
    let unavailable = |what: &str, e: std::io::Error| {
        StoreError::new(
            StoreErrorKind::Unavailable,
            format!(
                "cannot open SQLite database {} ({what}): check that its directory exists and \
                 is writable: {e}",
                path.display()
            ),
        )
        .with_source(e)
    };
    // Every spelling of the path (relative, absolute, through a symbolic link) leads to
    // one lock file.
    let canonical = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            let name = path
                .file_name()
                .ok_or_else(|| unavailable("it names no file", e))?;
            std::fs::canonicalize(parent)
                .map_err(|e| unavailable("finding its directory", e))?
                .join(name)
        }
        Err(e) => return Err(unavailable("resolving its path", e)),
    };
    let mut lock_path = canonical.into_os_string();
    lock_path.push("-lock");
    let lock_path = PathBuf::from(lock_path);
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| unavailable("creating its lock file", e))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(file),
        Err(fs4::TryLockError::WouldBlock) => Err(StoreError::new(
            StoreErrorKind::Refused,
            format!(
                "SQLite database {} is in use by another orderflow store, in this process or \
                 another (it holds {}); one engine owns a database file at a time",
                path.display(),
                lock_path.display()
            ),
        )),
        Err(fs4::TryLockError::Error(e)) => Err(unavailable("locking its lock file", e)),
    }
}

/// One change for the writer thread and where to send its result.
struct WriteJob {
    op: WriteOp,
    reply: Reply<()>,
    /// A catalog change: the catalog revision rises once its transaction commits.
    catalog: bool,
    /// Runs outside any transaction, on its own (a checkpoint, `VACUUM`).
    alone: bool,
}

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
///   successful commit sees it. Rows are decoded from JSON on the caller's thread, not on the
///   store's.
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
/// Values are the `serde_json` text of the crate's types. Quantities, prices and other
/// document numbers are exact decimals, written as JSON strings (`"quantity": "0.3"`); rows
/// written before they were, with JSON numbers (`"quantity": 0.3`), read as the decimals
/// their text says, so exact decimals needed no migration (`tests/sqlite.rs` reads such a
/// row). Migrations are numbered by
/// `PRAGMA user_version`; [`SqliteStore::open`] applies the missing ones and refuses a file
/// whose version is newer than this code knows. Migration 1 creates:
///
/// | table | columns |
/// |---|---|
/// | `flows` | `seq` (creation order), `name` (unique), `json` ([`Flow`]) |
/// | `flow_versions` | `name`, `version`, `json`: frozen flows, written once (`INSERT … ON CONFLICT DO NOTHING`: the first save of a version stands) |
/// | `policies` | `seq`, `name` (unique), `json` ([`PolicyRecord`]) |
/// | `policy_versions` | `name`, `version`, `json`: published [`PolicyDocument`]s, written once |
/// | `orders` | `id`, `revision`, `state` ([`OrderState`]), `live`, `next_wake` |
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
/// `orders` has partial indexes on its live orders, its durable timers and its completed
/// orders. `next_wake` holds [`OrderState::next_wake`] in milliseconds with the top bit
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
/// use orderflow::store::{Commit, SqliteStore, Store, StoreErrorKind};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # futures::executor::block_on(async {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("orders.db");
///
/// let store = SqliteStore::open(&path)?;
/// let state = OrderState::new(Order::new("SO-1"));
/// store.commit(Commit::new(None, state, Vec::new())).await?;
///
/// // A second commit computed from the same (missing) revision conflicts.
/// let again = OrderState::new(Order::new("SO-1"));
/// let err = store.commit(Commit::new(None, again, Vec::new())).await.unwrap_err();
/// assert_eq!(err.kind(), StoreErrorKind::Conflict);
/// drop(store);
///
/// // The file keeps it.
/// let store = SqliteStore::open(&path)?;
/// assert!(store.load(&OrderId::from("SO-1")).await?.is_some());
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

    async fn send_write(&self, op: WriteOp, alone: bool, catalog: bool) -> Result<(), StoreError> {
        let (reply, rx) = oneshot::channel();
        let job = WriteJob {
            op,
            reply,
            alone,
            catalog,
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

    /// Reads the JSON values of a query's first column.
    async fn read_json<T: DeserializeOwned>(
        &self,
        what: &'static str,
        sql: &'static str,
        key: Option<String>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = self
            .read(move |conn, path| {
                let result = conn.prepare_cached(sql).and_then(|mut stmt| {
                    // The key, if the query has one, is its only parameter.
                    let rows =
                        stmt.query_map(params_from_iter(&key), |row| row.get::<_, String>(0))?;
                    rows.collect::<Result<Vec<_>, _>>()
                });
                result.map_err(|e| sql_error(path, what, e))
            })
            .await?;
        rows.iter()
            .map(|json| decode(&self.path, what, json))
            .collect()
    }

    /// Reads the JSON value of a query's one row, if there is one.
    async fn read_one<T: DeserializeOwned, P: rusqlite::Params + Send + 'static>(
        &self,
        what: &'static str,
        sql: &'static str,
        params: P,
    ) -> Result<Option<T>, StoreError> {
        let json = self
            .read(move |conn, path| {
                conn.prepare_cached(sql)
                    .and_then(|mut stmt| stmt.query_row(params, |row| row.get::<_, String>(0)))
                    .optional()
                    .map_err(|e| sql_error(path, what, e))
            })
            .await?;
        json.map(|json| decode(&self.path, what, &json)).transpose()
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

#[async_trait]
impl Store for SqliteStore {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        self.read_json("reading flows", "SELECT json FROM flows ORDER BY seq", None)
            .await
    }

    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
        let name = flow.name.clone();
        let version = flow.version.to_string();
        let json = encode(&self.path, "flow", &name, flow)?;
        self.write_catalog(move |conn, path| {
            let what = "saving a flow";
            conn.prepare_cached(
                "INSERT INTO flows (name, json) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET json = excluded.json",
            )
            .and_then(|mut stmt| stmt.execute(params![name, json]))
            .map_err(|e| sql_error(path, what, e))?;
            if frozen {
                freeze(conn, path, "flow_versions", &name, &version, &json)?;
            }
            Ok(())
        })
        .await
    }

    async fn flow_version(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<Flow>, StoreError> {
        self.read_one(
            "reading a flow version",
            "SELECT json FROM flow_versions WHERE name = ?1 AND version = ?2",
            (name.to_owned(), version.to_string()),
        )
        .await
    }

    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.read_json(
            "reading policies",
            "SELECT json FROM policies ORDER BY seq",
            None,
        )
        .await
    }

    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError> {
        let name = record.name().to_owned();
        let published = if published {
            let Some(version) = record.last_published else {
                return Err(StoreError::new(
                    StoreErrorKind::Refused,
                    format!("policy '{name}' is saved as published without a version"),
                ));
            };
            let document = encode(&self.path, "policy", &name, &record.document)?;
            Some((version, document))
        } else {
            None
        };
        let json = encode(&self.path, "policy", &name, record)?;
        self.write_catalog(move |conn, path| {
            conn.prepare_cached(
                "INSERT INTO policies (name, json) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET json = excluded.json",
            )
            .and_then(|mut stmt| stmt.execute(params![name, json]))
            .map_err(|e| sql_error(path, "saving a policy", e))?;
            if let Some((version, document)) = published {
                freeze(conn, path, "policy_versions", &name, &version, &document)?;
            }
            Ok(())
        })
        .await
    }

    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError> {
        self.read_one(
            "reading a policy version",
            "SELECT json FROM policy_versions WHERE name = ?1 AND version = ?2",
            (name.to_owned(), version),
        )
        .await
    }

    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
        self.read_one(
            "loading an order",
            "SELECT state FROM orders WHERE id = ?1",
            [order.as_str().to_owned()],
        )
        .await
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let id = commit.state.order.id.as_str().to_owned();
        // Revisions are compared for equality only: any u64 round-trips through i64.
        let expected = commit.expected.map(|r| r as i64);
        let revision = commit.state.revision as i64;
        let live = commit.state.has_live();
        let next_wake = commit.state.next_wake().map(wake_key);
        let completed = commit.state.completed_at().map(wake_key);
        let state = encode(&self.path, "order", &id, &commit.state)?;
        let journey = commit
            .journey
            .iter()
            .map(|step| encode(&self.path, "journey row of order", &id, step))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(move |conn, path| {
            let what = "committing an order";
            let sql = |e| sql_error(path, what, e);
            let changed = match expected {
                None => conn
                    .prepare_cached(
                        "INSERT INTO orders (id, revision, state, live, next_wake, completed_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
                    )
                    .and_then(|mut s| {
                        s.execute(params![id, revision, state, live, next_wake, completed])
                    }),
                Some(expected) => conn
                    .prepare_cached(
                        "UPDATE orders SET revision = ?2, state = ?3, live = ?4, next_wake = ?5,
                             completed_at = ?6
                         WHERE id = ?1 AND revision = ?7",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            id, revision, state, live, next_wake, completed, expected
                        ])
                    }),
            }
            .map_err(sql)?;
            if changed == 0 {
                let stored: Option<i64> = conn
                    .prepare_cached("SELECT revision FROM orders WHERE id = ?1")
                    .and_then(|mut s| s.query_row([&id], |row| row.get(0)).optional())
                    .map_err(sql)?;
                return Err(StoreError::conflict(
                    &id,
                    stored.map(|r| r as u64),
                    expected.map(|r| r as u64),
                ));
            }
            if !journey.is_empty() {
                let last: i64 = conn
                    .prepare_cached(
                        "SELECT COALESCE(MAX(seq), 0) FROM journeys WHERE order_id = ?1",
                    )
                    .and_then(|mut s| s.query_row([&id], |row| row.get(0)))
                    .map_err(sql)?;
                let mut insert = conn
                    .prepare_cached(
                        "INSERT INTO journeys (order_id, seq, json) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(sql)?;
                for (seq, json) in (last + 1..).zip(&journey) {
                    insert.execute(params![id, seq, json]).map_err(sql)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        self.read_json(
            "reading a journey",
            "SELECT json FROM journeys WHERE order_id = ?1 ORDER BY seq",
            Some(order.as_str().to_owned()),
        )
        .await
    }

    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        self.read(|conn, path| {
            conn.prepare_cached(
                "SELECT id FROM orders WHERE live = 1
                 AND id NOT IN (SELECT order_id FROM aside) ORDER BY id",
            )
            .and_then(|mut stmt| {
                stmt.query_map([], |row| row.get::<_, String>(0).map(OrderId::from))?
                    .collect()
            })
            .map_err(|e| sql_error(path, "listing live orders", e))
        })
        .await
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let now = wake_key(now);
        self.read(move |conn, path| {
            conn.prepare_cached(
                "SELECT id FROM orders WHERE next_wake IS NOT NULL AND next_wake <= ?1
                 AND id NOT IN (SELECT order_id FROM aside)
                 ORDER BY next_wake, id LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map([now, limit], |row| {
                    row.get::<_, String>(0).map(OrderId::from)
                })?
                .collect()
            })
            .map_err(|e| sql_error(path, "listing due orders", e))
        })
        .await
    }

    /// Deletes the orders and their journey rows in one transaction (through the
    /// `completed_at` index), frees the pages they held (`incremental_vacuum`), then
    /// checkpoints the write-ahead log and truncates it, so the files shrink back. A file
    /// created before this version does not give pages back until [`SqliteStore::vacuum`]
    /// (it reuses them for new orders meanwhile).
    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        let before = wake_key(completed_before);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (tx, rx) = std::sync::mpsc::channel();
        self.write(move |conn, path| {
            let sql = |e| sql_error(path, "purging completed orders", e);
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM orders
                     WHERE completed_at IS NOT NULL AND completed_at < ?1
                     AND id NOT IN (SELECT order_id FROM aside)
                     ORDER BY completed_at, id LIMIT ?2",
                )
                .and_then(|mut stmt| {
                    stmt.query_map(params![before, limit], |row| row.get(0))?
                        .collect()
                })
                .map_err(sql)?;
            if !ids.is_empty() {
                let mut journeys = conn
                    .prepare_cached("DELETE FROM journeys WHERE order_id = ?1")
                    .map_err(sql)?;
                let mut orders = conn
                    .prepare_cached("DELETE FROM orders WHERE id = ?1")
                    .map_err(sql)?;
                for id in &ids {
                    journeys.execute([id]).map_err(sql)?;
                    orders.execute([id]).map_err(sql)?;
                }
                // It frees one page per row it returns: step it to the end.
                conn.prepare_cached("PRAGMA incremental_vacuum")
                    .and_then(|mut stmt| {
                        let mut rows = stmt.query([])?;
                        while rows.next()?.is_some() {}
                        Ok(())
                    })
                    .map_err(sql)?;
            }
            let _ = tx.send(ids);
            Ok(())
        })
        .await?;
        let purged: Vec<OrderId> = rx
            .try_recv()
            .unwrap_or_default()
            .into_iter()
            .map(OrderId::from)
            .collect();
        if !purged.is_empty() {
            self.checkpoint().await?;
        }
        Ok(purged)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn, path| {
            conn.prepare_cached(
                "SELECT next_wake FROM orders WHERE next_wake IS NOT NULL
                 AND id NOT IN (SELECT order_id FROM aside) ORDER BY next_wake LIMIT 1",
            )
            .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)).optional())
            .map(|key| key.map(wake_time))
            .map_err(|e| sql_error(path, "reading the next timer", e))
        })
        .await
    }

    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        Ok(self.catalog.load(Ordering::Acquire))
    }

    async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
        self.read_catalog("reading flows", "SELECT name, json FROM flows ORDER BY seq")
            .await
    }

    async fn read_policies(&self) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
        self.read_catalog(
            "reading policies",
            "SELECT name, json FROM policies ORDER BY seq",
        )
        .await
    }

    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        let (id, reason) = (order.as_str().to_owned(), reason.to_owned());
        self.write(move |conn, path| {
            conn.prepare_cached(
                "INSERT INTO aside (order_id, reason) VALUES (?1, ?2)
                 ON CONFLICT (order_id) DO UPDATE SET reason = excluded.reason",
            )
            .and_then(|mut stmt| stmt.execute(params![id, reason]))
            .map(drop)
            .map_err(|e| sql_error(path, "setting an order aside", e))
        })
        .await
    }

    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
        self.read(|conn, path| {
            conn.prepare_cached("SELECT order_id, reason FROM aside ORDER BY seq")
                .and_then(|mut stmt| {
                    stmt.query_map([], |row| {
                        Ok(SetAside::new(
                            OrderId::from(row.get::<_, String>(0)?),
                            row.get::<_, String>(1)?,
                        ))
                    })?
                    .collect()
                })
                .map_err(|e| sql_error(path, "listing orders set aside", e))
        })
        .await
    }

    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
        let id = order.as_str().to_owned();
        let (tx, rx) = oneshot::channel();
        self.write(move |conn, path| {
            let n = conn
                .prepare_cached("DELETE FROM aside WHERE order_id = ?1")
                .and_then(|mut stmt| stmt.execute(params![id]))
                .map_err(|e| sql_error(path, "restoring an order set aside", e))?;
            let _ = tx.send(n > 0);
            Ok(())
        })
        .await?;
        Ok(rx.await.unwrap_or(false))
    }
}

impl SqliteStore {
    /// Reads catalog rows (`name`, `json`), reporting the ones that do not decode apart.
    async fn read_catalog<T: DeserializeOwned + Send + 'static>(
        &self,
        what: &'static str,
        sql: &'static str,
    ) -> Result<(Vec<T>, Vec<Unreadable>), StoreError> {
        let rows = self
            .read(move |conn, path| {
                conn.prepare_cached(sql)
                    .and_then(|mut stmt| {
                        stmt.query_map([], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                        })?
                        .collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(|e| sql_error(path, what, e))
            })
            .await?;
        let mut read = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for (name, json) in rows {
            match decode(&self.path, what, &json) {
                Ok(value) => read.push(value),
                Err(e) => unreadable.push(Unreadable::new(name, e.to_string())),
            }
        }
        Ok((read, unreadable))
    }
}

/// Records a frozen version. A frozen version never changes: the first save of it stands,
/// and saving it again (even with another definition) leaves it as it was.
fn freeze(
    conn: &Connection,
    path: &Path,
    table: &str,
    name: &str,
    version: &dyn ToSql,
    json: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (name, version, json) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, version) DO NOTHING"
    ))
    .and_then(|mut stmt| stmt.execute(params![name, version, json]))
    .map_err(|e| sql_error(path, "recording a frozen version", e))?;
    Ok(())
}

/// The writer thread: applies queued changes in batches until the store is dropped.
fn write_loop(
    mut conn: Connection,
    path: &Path,
    mut watch: Watch,
    jobs: &mpsc::Receiver<WriteJob>,
    transactions: &AtomicU64,
    catalog: &AtomicU64,
) {
    let mut held: Option<WriteJob> = None;
    loop {
        let first = match held.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        if first.alone {
            let result = watch.check(path).and_then(|()| (first.op)(&conn, path));
            let _ = first.reply.send(result);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) if job.alone => {
                    held = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let catalogs: Vec<bool> = batch.iter().map(|j| j.catalog).collect();
        let (ops, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|j| (j.op, j.reply)).unzip();
        let results = match apply_batch(&mut conn, path, &mut watch, ops) {
            Ok((results, committed)) => {
                if committed {
                    transactions.fetch_add(1, Ordering::Relaxed);
                    let changed = results.iter().zip(&catalogs).any(|(r, c)| *c && r.is_ok());
                    if changed {
                        catalog.fetch_add(1, Ordering::AcqRel);
                    }
                }
                results
            }
            Err(e) => {
                let message = e.to_string();
                let kind = e.kind();
                let mut results = vec![Err(e)];
                results.resize_with(replies.len(), || {
                    Err(StoreError::new(kind, message.clone()))
                });
                results
            }
        };
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Applies changes in one transaction, each in its own savepoint, and says whether it
/// committed (it does not when every change failed). `Err` when the transaction as a whole
/// failed: then none of it is applied.
fn apply_batch(
    conn: &mut Connection,
    path: &Path,
    watch: &mut Watch,
    ops: Vec<WriteOp>,
) -> Result<(Vec<Result<(), StoreError>>, bool), StoreError> {
    let what = "writing a transaction";
    let sql = |e| sql_error(path, what, e);
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql)?;
    let mut results = Vec::with_capacity(ops.len());
    let mut applied = 0;
    for op in ops {
        let mut savepoint = tx.savepoint().map_err(sql)?;
        match op(&savepoint, path) {
            Ok(()) => {
                savepoint.commit().map_err(sql)?;
                applied += 1;
                results.push(Ok(()));
            }
            Err(e) => {
                // When the change cannot be undone alone (SQLite already gave up the whole
                // transaction, say on a full disk), the batch fails with its cause.
                if savepoint.rollback().is_err() {
                    return Err(e);
                }
                savepoint.commit().map_err(sql)?;
                results.push(Err(e));
            }
        }
    }
    if applied == 0 {
        tx.rollback().map_err(sql)?;
    } else {
        // One stat per batch: a file deleted or renamed over since it was opened gets no
        // acknowledgement for writes nobody would read.
        if let Err(e) = watch.check(path) {
            tx.rollback().map_err(sql)?;
            return Err(e);
        }
        tx.commit().map_err(sql)?;
    }
    Ok((results, applied > 0))
}

/// Opens a connection with this store's settings.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| sql_error(path, "opening", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sql_error(path, "opening", e))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(|e| sql_error(path, "opening", e))?;
    Ok(conn)
}

/// The schema version of a file, after checking it is a database of this crate's or empty.
fn schema_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let what = "reading the schema version";
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| sql_error(path, what, e))?;
    let application: i32 = conn
        .pragma_query_value(None, "application_id", |row| row.get(0))
        .map_err(|e| sql_error(path, what, e))?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| sql_error(path, what, e))?;
    let foreign = if application == 0 {
        version == 0 && tables > 0
    } else {
        application != APPLICATION_ID
    };
    if foreign {
        return Err(StoreError::new(
            StoreErrorKind::Refused,
            format!(
                "SQLite database {} belongs to another application (it has tables but no \
                 orderflow schema); give orderflow a file of its own",
                path.display()
            ),
        ));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::new(
            StoreErrorKind::Refused,
            format!(
                "SQLite database {} has schema version {version}, newer than this version of \
                 orderflow knows ({SCHEMA_VERSION}); open it with a newer orderflow",
                path.display()
            ),
        ));
    }
    Ok(version)
}

/// Checks that a file opened read-only has the current schema.
fn check_schema(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version = schema_version(conn, path)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    Err(StoreError::new(
        StoreErrorKind::Refused,
        format!(
            "SQLite database {} has schema version {version}, not {SCHEMA_VERSION}; open it \
             read-write once to create or migrate its schema",
            path.display()
        ),
    ))
}

/// Applies the migrations a file lacks, each in its own transaction.
fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut version = schema_version(conn, path)?;
    while version < SCHEMA_VERSION {
        let next = version + 1;
        let sql = MIGRATIONS[(next - 1) as usize];
        let result = conn
            .execute_batch(&format!("BEGIN IMMEDIATE; {sql}"))
            .and_then(|()| {
                if next == COMPLETION_MIGRATION {
                    backfill_completion(conn)
                } else {
                    Ok(())
                }
            })
            .and_then(|()| {
                conn.execute_batch(&format!(
                    "PRAGMA application_id = {APPLICATION_ID};
                     PRAGMA user_version = {next};
                     COMMIT;"
                ))
            });
        if let Err(e) = result {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            // Another process may have migrated it meanwhile: look again.
            let now = schema_version(conn, path)?;
            if now >= next {
                version = now;
                continue;
            }
            return Err(sql_error(
                path,
                &format!("migrating to schema version {next}"),
                e,
            ));
        }
        version = next;
    }
    Ok(())
}

/// Fills in `completed_at` for the orders stored before it existed. A row that does not
/// decode keeps it null (it is never purged) rather than blocking the migration; reading
/// it fails as before.
fn backfill_completion(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT id, state FROM orders WHERE live = 0")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE orders SET completed_at = ?2 WHERE id = ?1")?;
    for (id, state) in rows {
        if let Ok(state) = serde_json::from_str::<OrderState>(&state) {
            update.execute(params![id, state.completed_at().map(wake_key)])?;
        }
    }
    Ok(())
}

/// Maps a SQLite error to a store error naming the file.
fn sql_error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    let file = path.display();
    let (kind, message) = match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => (
            StoreErrorKind::Unavailable,
            format!("SQLite database {file} is locked by another connection ({what}); try again"),
        ),
        Some(ErrorCode::NotADatabase) => (
            StoreErrorKind::Corrupt,
            format!("{file} is not a SQLite database ({what})"),
        ),
        Some(ErrorCode::DatabaseCorrupt) => (
            StoreErrorKind::Corrupt,
            format!("SQLite database {file} is damaged ({what})"),
        ),
        Some(ErrorCode::ReadOnly) => (
            StoreErrorKind::Refused,
            format!("SQLite database {file} is read-only ({what})"),
        ),
        Some(ErrorCode::DiskFull) => (
            StoreErrorKind::Refused,
            format!("SQLite database {file}: the disk is full ({what})"),
        ),
        Some(ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied) => (
            StoreErrorKind::Refused,
            format!("SQLite database {file}: permission denied ({what})"),
        ),
        Some(ErrorCode::CannotOpen) => (
            StoreErrorKind::Unavailable,
            format!(
                "cannot open SQLite database {file} ({what}): check that its directory \
                 exists and is writable"
            ),
        ),
        Some(ErrorCode::SystemIoFailure) => (
            StoreErrorKind::Unavailable,
            format!("I/O error on SQLite database {file} ({what})"),
        ),
        Some(ErrorCode::FileLockingProtocolFailed) => (
            StoreErrorKind::Unavailable,
            format!("SQLite database {file}: file locking failed ({what})"),
        ),
        None if matches!(
            e,
            rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::Utf8Error(..)
        ) =>
        {
            (
                StoreErrorKind::Corrupt,
                format!("SQLite database {file} holds a value of the wrong type ({what})"),
            )
        }
        _ => (
            StoreErrorKind::Other,
            format!("SQLite database {file}: {what} failed"),
        ),
    };
    StoreError::new(kind, format!("{message}: {e}")).with_source(e)
}

fn encode(
    path: &Path,
    what: &str,
    name: &str,
    value: &impl Serialize,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Other,
            format!(
                "{what} '{name}' cannot be written to {}: {e}",
                path.display()
            ),
        )
        .with_source(e)
    })
}

fn decode<T: DeserializeOwned>(path: &Path, what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!(
                "SQLite database {}: a stored row does not decode ({what}): {e}",
                path.display()
            ),
        )
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            store
                .commit(Commit::new(None, small, Vec::new()))
                .await
                .unwrap();
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
                .commit(Commit::new(None, big_order("big"), Vec::new()))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Refused, "{err}");
            assert!(err.to_string().contains("full"), "{err}");
            assert_eq!(store.load(&OrderId::from("big")).await.unwrap(), None);
            assert!(store.load(&OrderId::from("small")).await.unwrap().is_some());

            limit(Some(1 << 30)).await.unwrap();
            store
                .commit(Commit::new(None, big_order("big"), Vec::new()))
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
                .commit(Commit::new(None, state, Vec::new()))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Unavailable);
            assert!(err.is_retryable());
            // Reads go on: they have a thread of their own.
            assert_eq!(store.load(&OrderId::from("A")).await.unwrap(), None);
        });
    }
}
