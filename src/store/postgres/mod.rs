//! The PostgreSQL store: see [`PostgresStore`] for its design, schema and errors.

mod config;
mod errors;
mod operations;
mod orders;
mod queries;
mod schema;
#[cfg(test)]
mod tests;
mod tls;
mod work;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use deadpool_postgres::{Manager, Object, Pool, Runtime};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::shared::{Queued, Wakeup};
use super::{StoreError, StoreErrorKind, Unreadable};
use crate::document::OrderId;
use crate::redact;
use config::{check_schema_name, driver_config};
use errors::{pg_error, pool_error};
use queries::{Queries, quote};

pub use config::PostgresConfig;

#[cfg(doc)]
use super::{ChangeSet, SharedStore, Store};
#[cfg(doc)]
use crate::{
    event::Event,
    execution::OrderState,
    flow::Flow,
    journey::StepRow,
    rules::{PolicyDocument, PolicyRecord},
};

/// Stores opened by this process, for owner names.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// A [`Store`] in a PostgreSQL database: durable, and reachable from many machines.
///
/// Share one store through an `Arc` (or give it to one [`Engine`](crate::Engine)); dropping it
/// closes its connections.
///
/// # Design
///
/// - **Driver.** [`tokio_postgres`] with a [`deadpool_postgres`] pool. `tokio-postgres` is
///   the plain asynchronous PostgreSQL client that `sqlx`'s and `diesel-async`'s own
///   PostgreSQL support is compared against: it has no query macros, no compile-time
///   database, a small dependency tree, pipelining on one connection, and per-connection
///   prepared-statement caching through the pool. Both crates declare `rust-version = 1.85`,
///   this crate's; `sqlx` 0.9 needs 1.94. Migrations are this module's own (below), so
///   `sqlx`'s migrator would not have been used anyway: its table lives outside the
///   configured schema.
/// - **Runtime.** The store needs Tokio (the `postgres` feature turns on `tokio`): call it
///   from inside a Tokio runtime with I/O and time enabled. Each connection runs as a task
///   of the runtime that opened it. The rest of the crate stays runtime-agnostic.
/// - **Pool.** Up to [`PostgresConfig::max_connections`] connections, opened on demand and
///   reused; an operation waits at most [`PostgresConfig::acquire_timeout`] for one.
///   Statements are prepared once per connection.
/// - **One statement per commit.** [`Store::commit`] is a single SQL statement — so a single
///   transaction and a single round trip — that checks the revision and writes what the
///   [`ChangeSet`] carries: `INSERT … ON CONFLICT (id) DO NOTHING` for a new order,
///   `UPDATE … WHERE id = $1 AND revision = $2` otherwise (the document only when the change
///   carries one), with the changed executions upserted and the commit's one journal row
///   inserted by data-modifying `WITH`s over the changed row. Nothing of the order is read
///   back. `load` is one statement too, so it reads the order's rows from one snapshot. No changed row means
///   [`Conflict`](StoreErrorKind::Conflict), and then nothing was written. Two commits to
///   one order from any number of processes serialize on the order's row lock, so exactly
///   one of two commits naming the same revision lands. `save_flow` and `save_policy` are
///   one transaction each.
/// - **Cancellation.** Dropping an operation's future is safe: a transaction left open is
///   rolled back before its connection serves anything else. A commit whose future is
///   dropped once its statement is sent may still be applied, as when a reply is lost.
/// - **Sharing.** Nothing assumes one process owns the database: revision checks happen in
///   the database, and migrations take an advisory lock. Any number of stores may open one
///   schema. It is a [`SharedStore`]: instances of a service, each with its own store on the
///   schema, take events with [`Engine::enqueue`](crate::Engine::enqueue) and run
///   [`Engine::run_worker`](crate::Engine::run_worker); see [work sharing](#work-sharing).
///   Engines that [`submit`](crate::Engine::submit) directly, with no queue, run one per
///   schema: two of them would both resume the same live orders.
///
/// # TLS
///
/// Connections use TLS as libpq's `sslmode` in the [connection string](PostgresConfig::url)
/// says, on [rustls](https://docs.rs/rustls) through `tokio-postgres-rustls` (which also
/// gives SCRAM its channel binding), with rustls's `ring` provider: no OpenSSL, and none
/// of the CMake build that rustls's default provider, `aws-lc-rs`, needs. The provider is
/// the store's own, so a host's choice of process-wide rustls provider does not matter.
///
/// | `sslmode` | TLS | certificate check |
/// |---|---|---|
/// | `disable` | never | — |
/// | `prefer` (default) | if the server offers it, else plain | the chain, when roots are given; else none |
/// | `require` | always | the chain, when roots are given (libpq: `require` with a root certificate is `verify-ca`); else none |
/// | `verify-ca` | always | the chain |
/// | `verify-full` | always | the chain, and that the certificate names the host connected to |
///
/// Roots are given by `sslrootcert=<PEM file>` in the connection string,
/// [`PostgresConfig::with_ca_file`] and [`PostgresConfig::with_root_certificates`]; all
/// of them are trusted together. `sslrootcert=system`, and `verify-ca`/`verify-full` with
/// no roots given, trust the Mozilla root program's roots compiled into the crate
/// (`webpki-roots`): the same roots on every machine, with no dependence on the image's
/// CA bundle (distroless and scratch images have none). Those cover servers with a
/// publicly trusted certificate (Azure Database for PostgreSQL); Amazon RDS and Cloud SQL
/// sign with CAs of their own, whose bundle you download and give as `sslrootcert`. As
/// in libpq, `sslrootcert=system` makes `verify-full` the default and refuses a weaker
/// mode. Unlike libpq, nothing is read from `~/.postgresql/root.crt`, and a failed TLS
/// handshake under `prefer` is not retried in plain. Client certificates (`sslcert`,
/// `sslkey`) are not supported. The `LISTEN` connection for work notifications uses the
/// same settings as the pool.
///
/// A certificate that does not check out fails the connection with
/// [`Refused`](StoreErrorKind::Refused) (retrying would not help), and the message says
/// why in words (not signed by a trusted CA, issued for another host, expired) and names
/// the server; so does `sslmode=require` against a server without TLS.
///
/// # A host's pool, and migrations run by a DBA
///
/// [`PostgresStore::from_pool`] builds a store on a `deadpool_postgres::Pool` (version
/// 0.14) the host made, with its own TLS, IAM authentication or pgbouncer settings; its
/// docs say what the store expects of the pool. [`PostgresStore::migration_sql`] gives
/// the migration SQL as one script; with
/// [`PostgresConfig::with_migrate(false)`](PostgresConfig::with_migrate), a store never
/// changes the schema and refuses to start on one that is not at the version it writes.
///
/// # Work sharing
///
/// The [protocol](super::shared) on PostgreSQL, one statement per operation:
///
/// - **Enqueue** inserts the event into `inbox` and upserts the order's `work` row (ready
///   now, remembering its oldest queued event), then `pg_notify`s the schema's channel; the
///   notification goes out when the transaction commits.
/// - **Claim** selects ready rows — `ready_at` due on the engine's clock, no live lease —
///   oldest queued first, `FOR UPDATE SKIP LOCKED` (concurrent claims take different
///   orders without waiting on each other), and sets owner, a fencing token from the
///   schema's `fences` sequence and `lease_until = now() + lease`: lease times are the
///   database's clock, so instances' clocks need not agree. The same statement returns the
///   first 64 queued events of each claimed order, which the lease's first
///   [`inbox`](SharedStore::inbox) hands out without a round trip.
/// - **Fenced commits.** While the store holds a lease on an order, [`Store::commit`] adds
///   a data-modifying `WITH` that updates the order's `work` row only if its fencing token
///   is still the lease's (renewing the lease), and writes the order only if that row was
///   updated: a stale holder's commit changes nothing and fails with
///   [`LeaseLost`](StoreErrorKind::LeaseLost). The row lock it takes orders the commit
///   against claims.
/// - **Release** calls the schema's `release_order` function (one round trip): it locks the
///   `work` row (checking the token), then, in statements whose snapshots see every event
///   queued before the lock was granted, deletes the row or makes it ready again (events
///   waiting) or at the order's next timer.
/// - **Wake-ups.** The first wait for work starts a listener task with a connection of its
///   own (with the pool's TLS settings) that `LISTEN`s on the schema's channel; it
///   reconnects after a second if the connection drops. Workers also poll
///   ([`WorkConfig::poll`](crate::engine::WorkConfig)), and only poll on a
///   [host's pool](PostgresStore::from_pool) given no URL.
/// - **Maintenance.** `work` and `inbox` hold only pending work: rows leave when their order
///   is quiescent and its events are consumed, so claims scan a table the size of the
///   backlog whatever the history (`benches/scale.rs` measures claim latency with 1,000,000
///   completed orders behind it). What they leave behind are dead rows and index entries,
///   which claims would otherwise have to step over: both tables are created with
///   autovacuum thresholds of 2% (and `work` with `fillfactor = 70` for in-place updates),
///   and [`SharedStore::maintain`], which workers call every
///   [`WorkConfig::maintenance`](crate::engine::WorkConfig::maintenance), runs
///   `VACUUM (SKIP_LOCKED, ANALYZE)` on the two tables. `orders`, `executions` and `journal`
///   keep every order, as the source of truth, until [`Store::purge`] removes it.
///
/// # Schema
///
/// Every table lives in the configured [schema](PostgresConfig::schema), created if it is
/// missing, so one database can hold several independent stores. Catalog rows, events and
/// order documents are the `serde_json` text of the crate's types, kept as `text` exactly as
/// written (`jsonb` would reorder keys and re-round numbers); execution state and journal
/// entries are compact binary rows (`bytea`: a format version byte, then postcard; a
/// version this code does not know is [`Corrupt`](StoreErrorKind::Corrupt), naming the
/// order and the row). Document numbers are exact decimals written as JSON
/// strings; rows written with JSON numbers by earlier versions read as the decimals their
/// text says, so exact decimals needed no migration. Migrations are numbered in the schema's
/// `schema_migrations` table (`version`, `applied_at`); [`PostgresStore::connect`] applies
/// the missing ones in one transaction under an advisory lock, so processes starting
/// together migrate once, and refuses a schema whose version is newer than this code knows.
/// [`PostgresStore::migration_sql`] is the same migrations as a script for a DBA, and
/// [`PostgresConfig::migrate`] turns the automatic migration off.
/// Migration 1 creates:
///
/// | table | columns |
/// |---|---|
/// | `flows` | `seq` (creation order), `name` (unique), `json` ([`Flow`]) |
/// | `flow_versions` | `name`, `version`, `json`: frozen flows, written once (`INSERT … ON CONFLICT DO NOTHING`: the first save of a version stands) |
/// | `policies` | `seq`, `name` (unique), `json` ([`PolicyRecord`]) |
/// | `policy_versions` | `name`, `version`, `json`: published [`PolicyDocument`]s, written once |
/// | `orders` | `id` (primary key), `revision`, `state` ([`OrderState`]), `live`, `next_wake`, `journey_len` |
/// | `journeys` | `order_id`, `seq`, `json` ([`StepRow`]) |
///
/// Migration 2 adds work sharing:
///
/// | table | columns |
/// |---|---|
/// | `work` | `order_id` (primary key), `ready_at` (a wake key, as `next_wake`), `queued` (oldest queued event), `owner`, `lease_until`, `lease_ms`, `fence`: orders with work to do or a timer, and their leases |
/// | `inbox` | `seq` (queue order), `order_id`, `event` ([`Event`]), `queued_at` |
/// | `dead_letters` | `seq`, `order_id`, `event`, `reason`, `failed_at` |
///
/// and the sequence `fences`.
///
/// Migration 3 adds catalog coherence and poison isolation: `catalog` (one row, the
/// `revision` every flow and policy save raises in its transaction), `aside` (`seq`,
/// `order_id`, `reason`, `set_at`: orders set aside, which live, due, claim and purge
/// queries leave out), and `work.woken` (an order woken while claimed stays ready at its
/// release).
///
/// Migration 4 adds retention: `orders.completed_at`, when the order completed
/// ([`OrderState::completed_at`], a wake key; null while it is live), with a partial index
/// that [`Store::purge`] reads, filled in from the stored state for the rows already there.
///
/// Migration 5 stores orders in rows per part: `orders` gains `document`
/// ([`Order`](crate::document::Order) as JSON) and `resume_at`, loses `journey_len`, and
/// its `state` may be null; it adds
///
/// | table | columns |
/// |---|---|
/// | `executions` | `order_id`, `seq`, `state` (an [`Execution`](crate::execution::Execution), binary): upserted when it changed |
/// | `journal` | `order_id`, `revision`, `entries` (the [`TimelineEntry`](crate::journey::TimelineEntry)s and [`StepRow`]s one commit appended, binary) |
///
/// An order's timeline and journey are its journal rows in revision order. SQL cannot write
/// the binary rows, so the migration (run by a store or by a DBA's script) leaves the orders
/// stored before it as they were, and a store moves them over when it opens, 100 orders per
/// transaction, skipping rows another opening store is moving (a `load` of such an order
/// meanwhile is [`Unavailable`](StoreErrorKind::Unavailable), worth retrying). An order whose
/// old state does not decode keeps its `state` and `journeys` rows: loading it fails as
/// before (`Corrupt`), and its journey still reads.
///
/// `orders` has partial indexes on its live orders and on its durable timers. `next_wake`,
/// `resume_at` and `completed_at` hold milliseconds with the top bit flipped, so a signed
/// `bigint` sorts every `u64` timestamp in order; `revision` holds the `u64` revision's
/// bits as a `bigint`. Key columns use the `"C"` collation: bytewise, the same on every
/// server.
///
/// # Errors
///
/// An unreachable server, a dropped connection, no free connection within the acquire
/// timeout, a serialization failure or a deadlock, a server shutting down or out of
/// connections are [`Unavailable`](StoreErrorKind::Unavailable) (worth retrying). A failed
/// login, a missing permission, a read-only server, a full disk, a violated constraint, a
/// value PostgreSQL cannot store, a newer schema, a schema not at this code's version with
/// migration off, a server certificate that does not check out and a server without TLS
/// under `sslmode=require` are [`Refused`](StoreErrorKind::Refused). Stored rows that no longer decode, tables that are
/// missing or altered, and data PostgreSQL reports damaged are
/// [`Corrupt`](StoreErrorKind::Corrupt). A URL that does not parse or is ambiguous, and
/// invalid settings, are [`Other`](StoreErrorKind::Other). Each message names the server
/// and schema through [`redact::connection_string`]; none holds the URL's password or any
/// part of it, nor does any error's source.
///
/// # Example
///
/// ```no_run
/// use orderflow::document::{Order, OrderId};
/// use orderflow::execution::OrderState;
/// use orderflow::store::{ChangeSet, PostgresConfig, PostgresStore, Store, StoreErrorKind};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = PostgresConfig::new("postgres://orderflow@127.0.0.1:5432/shop")
///     .with_schema("orderflow");
/// let store = PostgresStore::connect_with(config.clone()).await?;
/// let mut state = OrderState::new(Order::new("SO-1"));
/// state.revision = 1;
/// store.commit(ChangeSet::diff(None, &state)).await?;
///
/// // A second commit computed from the same (missing) revision conflicts.
/// let err = store.commit(ChangeSet::diff(None, &state)).await.unwrap_err();
/// assert_eq!(err.kind(), StoreErrorKind::Conflict);
/// drop(store);
///
/// // The database keeps it.
/// let store = PostgresStore::connect_with(config).await?;
/// assert!(store.load(&OrderId::from("SO-1")).await?.is_some());
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PostgresStore {
    pool: Pool,
    schema: String,
    /// The server and schema, for messages: the URL without its password.
    target: String,
    sql: Queries,
    /// Where the listener for work notifications connects, and with which TLS; none for
    /// a host's pool given no URL.
    listen_to: Option<(tokio_postgres::Config, MakeRustlsConnect)>,
    /// This store's name in the work list's `owner` column.
    owner: String,
    /// The leases this store holds: order → fencing token.
    leases: Mutex<HashMap<OrderId, i64>>,
    /// The first queued events of each order claimed, read by the claim itself: the first
    /// `inbox` of a lease takes them instead of a round trip.
    prefetched: Mutex<HashMap<OrderId, (u64, Vec<Queued>)>>,
    /// Set by the listener on each notification.
    wakeup: Arc<Wakeup>,
    /// The wake-up generation this store's worker last saw.
    seen: AtomicU64,
    /// The listener task, started by the first wait for work.
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.listener).take() {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .field("connections", &status.size)
            .field("max_connections", &status.max_size)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the server at `url` with the default [`PostgresConfig`] (schema
    /// `orderflow`) and brings the schema up to date.
    ///
    /// # Errors
    ///
    /// As [`connect_with`](Self::connect_with).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects as `config` says, over TLS as its `sslmode` says ([TLS](Self#tls)), and
    /// creates the schema if it is missing and applies the migrations it lacks (or, with
    /// [`migrate`](PostgresConfig::migrate) off, checks that the schema is at the version
    /// this code writes).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](StoreErrorKind::Unavailable) when the server cannot be reached;
    /// [`Refused`](StoreErrorKind::Refused) when it refuses the login or the schema's
    /// creation, when the schema was written by a newer version of this crate, when
    /// migration is off and the schema is not at this code's version, or when TLS fails
    /// ([TLS](Self#tls)); [`Other`](StoreErrorKind::Other) for a URL that does not parse or
    /// holds an unencoded `@` the driver could misread, an unknown `sslmode`, a root
    /// certificate file that cannot be read or holds no certificate, an empty or too long
    /// schema name, or no connections allowed.
    pub async fn connect_with(config: PostgresConfig) -> Result<Self, StoreError> {
        let target = format!(
            "{} (schema \"{}\")",
            redact::connection_string(&config.url),
            config.schema
        );
        let invalid = |problem: String| {
            StoreError::new(
                StoreErrorKind::Other,
                format!("PostgreSQL {target}: {problem}"),
            )
        };
        check_schema_name(&config.schema).map_err(invalid)?;
        if config.max_connections == 0 {
            return Err(invalid("max_connections must be at least 1".to_owned()));
        }
        let (pg, tls) = driver_config(&config).map_err(invalid)?;
        let pool = Pool::builder(Manager::new(pg.clone(), tls.clone()))
            .max_size(config.max_connections)
            .wait_timeout(Some(config.acquire_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                invalid(format!("cannot build the connection pool: {e}")).with_source(e)
            })?;
        Self::open(pool, config, target, Some((pg, tls))).await
    }

    /// A store on a pool the host built and configured (its own TLS, IAM tokens, pgbouncer
    /// settings), with the schema and migration setting of `config`.
    ///
    /// What the store expects of the pool:
    ///
    /// - Connections to one database, on which the role may read and write the schema's
    ///   tables (and create them, when `config.migrate` is true). Every statement of the
    ///   store runs on the pool's connections; the pool's size and timeouts are the host's
    ///   ([`max_connections`](PostgresConfig::max_connections) and the timeouts of
    ///   `config` are not used).
    /// - Session state kept for the length of one operation: a transaction runs on one
    ///   connection, and statements are prepared per connection (`prepare_cached`), so
    ///   behind pgbouncer use session pooling, or transaction pooling with a pgbouncer
    ///   that tracks prepared statements (1.21 or newer, `max_prepared_statements` set).
    /// - A Tokio runtime, as for [`connect_with`](Self::connect_with).
    ///
    /// The one connection the store opens itself is the `LISTEN` connection for work
    /// notifications ([work sharing](#work-sharing)): a pooled connection cannot carry it,
    /// since `deadpool-postgres` drops the notifications of its connections. It connects
    /// to `config.url` with the TLS settings of `config`, and reconnects with them after
    /// a drop. With an empty `config.url` there is no listener: workers find work by
    /// polling ([`WorkConfig::poll`](crate::engine::WorkConfig)), which is also what
    /// happens while the listener cannot connect (an expired IAM token, say).
    ///
    /// ```no_run
    /// use deadpool_postgres::{Manager, Pool};
    /// use orderflow::store::{PostgresConfig, PostgresStore};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tls = tokio_postgres::NoTls;
    /// let pg: tokio_postgres::Config = "host=db.internal user=shop dbname=shop".parse()?;
    /// let pool = Pool::builder(Manager::new(pg, tls)).max_size(8).build()?;
    /// // No listener: workers poll for work.
    /// let store = PostgresStore::from_pool(pool, PostgresConfig::new("").with_schema("shop"))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect_with`](Self::connect_with): the schema's checks and migration run on a
    /// connection of the pool. Messages name the server by `config.url` (redacted), or as
    /// "the host's pool" when it is empty.
    pub async fn from_pool(pool: Pool, config: PostgresConfig) -> Result<Self, StoreError> {
        let server = if config.url.is_empty() {
            "the host's pool".to_owned()
        } else {
            redact::connection_string(&config.url)
        };
        let target = format!("{server} (schema \"{}\")", config.schema);
        let invalid = |problem: String| {
            StoreError::new(
                StoreErrorKind::Other,
                format!("PostgreSQL {target}: {problem}"),
            )
        };
        check_schema_name(&config.schema).map_err(invalid)?;
        let listen = if config.url.is_empty() {
            None
        } else {
            Some(driver_config(&config).map_err(invalid)?)
        };
        Self::open(pool, config, target, listen).await
    }

    /// A store on `pool`, with the schema brought up to date or checked.
    async fn open(
        pool: Pool,
        config: PostgresConfig,
        target: String,
        listen_to: Option<(tokio_postgres::Config, MakeRustlsConnect)>,
    ) -> Result<Self, StoreError> {
        let owner = format!(
            "{}:{}:{:x}",
            std::process::id(),
            INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() & 0xffff_ffff)
        );
        let store = Self {
            pool,
            sql: Queries::new(&quote(&config.schema)),
            schema: config.schema,
            target,
            listen_to,
            owner,
            leases: Mutex::new(HashMap::new()),
            prefetched: Mutex::new(HashMap::new()),
            wakeup: Arc::new(Wakeup::default()),
            seen: AtomicU64::new(0),
            listener: Mutex::new(None),
        };
        if config.migrate && !config.read_only {
            store.migrate().await?;
        } else {
            store.check_version().await?;
        }
        // A read-only store reads rows an older version wrote as they are.
        if !config.read_only {
            store.move_to_binary_rows().await?;
        }
        Ok(store)
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A pooled connection.
    async fn client(&self, what: &str) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&self.target, what, e))
    }

    /// Runs a cached statement and returns its rows.
    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let error = |e| pg_error(&self.target, what, e);
        let client = self.client(what).await?;
        let statement = client.prepare_cached(sql).await.map_err(error)?;
        client.query(&statement, params).await.map_err(error)
    }

    /// Reads the JSON values of a query's first column.
    async fn read_json<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>, StoreError> {
        self.query(what, sql, params)
            .await?
            .iter()
            .map(|row| self.json(what, row))
            .collect()
    }

    /// Reads the JSON value of a query's one row, if there is one.
    async fn read_one<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        let rows = self.query(what, sql, params).await?;
        rows.first().map(|row| self.json(what, row)).transpose()
    }

    /// Reads the order ids of a query's first column.
    async fn read_ids(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<OrderId>, StoreError> {
        self.query(what, sql, params)
            .await?
            .iter()
            .map(|row| {
                row.try_get::<_, &str>(0)
                    .map(OrderId::from)
                    .map_err(|e| self.corrupt(what, e))
            })
            .collect()
    }

    /// Reads catalog rows (`name`, `json`), reporting the ones that do not decode apart.
    async fn read_catalog<T: DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
    ) -> Result<(Vec<T>, Vec<Unreadable>), StoreError> {
        let rows = self.query(what, sql, &[]).await?;
        let mut read = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for row in &rows {
            let name: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
            let json: &str = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
            match serde_json::from_str(json) {
                Ok(value) => read.push(value),
                Err(e) => unreadable.push(Unreadable::new(name, self.corrupt(what, e).to_string())),
            }
        }
        Ok((read, unreadable))
    }

    /// Decodes a row's first column, JSON text.
    fn json<T: DeserializeOwned>(&self, what: &str, row: &Row) -> Result<T, StoreError> {
        let json: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
        serde_json::from_str(json).map_err(|e| self.corrupt(what, e))
    }

    /// The error for a stored value that does not decode.
    fn corrupt(&self, what: &str, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!(
                "PostgreSQL {}: a stored row does not decode ({what}): {e}",
                self.target
            ),
        )
        .with_source(e)
    }

    /// A value's JSON text, for writing.
    fn encode(&self, what: &str, name: &str, value: &impl Serialize) -> Result<String, StoreError> {
        serde_json::to_string(value).map_err(|e| {
            StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "{what} '{name}' cannot be written to PostgreSQL {}: {e}",
                    self.target
                ),
            )
            .with_source(e)
        })
    }

    /// Upserts a definition and, when `frozen` is given, records its version (first save
    /// wins), in one transaction.
    async fn save(
        &self,
        what: &str,
        upsert: &str,
        name: &str,
        json: &str,
        frozen: Option<(&str, &(dyn ToSql + Sync), &str)>,
    ) -> Result<(), StoreError> {
        let sql = |e| pg_error(&self.target, what, e);
        let mut client = self.client(what).await?;
        let tx = client.transaction().await.map_err(sql)?;
        let statement = tx.prepare_cached(upsert).await.map_err(sql)?;
        tx.execute(&statement, &[&name, &json]).await.map_err(sql)?;
        if let Some((freeze, version, json)) = frozen {
            let statement = tx.prepare_cached(freeze).await.map_err(sql)?;
            tx.execute(&statement, &[&name, version, &json])
                .await
                .map_err(sql)?;
        }
        let statement = tx
            .prepare_cached(&self.sql.bump_catalog)
            .await
            .map_err(sql)?;
        tx.execute(&statement, &[]).await.map_err(sql)?;
        tx.commit().await.map_err(sql)
    }
}
