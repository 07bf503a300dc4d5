//! The PostgreSQL store: see [`PostgresStore`] for its design, schema and errors.

mod tls;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, Object, Pool, PoolError, Runtime};
use semver::Version;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::shared::{DeadLetter, Lease, Queued, SharedStore, Wakeup, lease_lost};
use super::{Commit, SetAside, Store, StoreError, StoreErrorKind, Unreadable, wake_key, wake_time};
use crate::clock::Timestamp;
use crate::document::OrderId;
use crate::event::Event;
use crate::execution::OrderState;
use crate::flow::Flow;
use crate::journey::StepRow;
use crate::redact;
use crate::rules::{PolicyDocument, PolicyRecord};

/// The schema migrations; migration `n` (1-based) is recorded as version `n` in the schema's
/// `schema_migrations` table. Each runs with `search_path` set to the store's schema.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE flows (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT COLLATE \"C\" NOT NULL UNIQUE,
        json TEXT NOT NULL
    );
    CREATE TABLE flow_versions (
        name TEXT COLLATE \"C\" NOT NULL REFERENCES flows (name),
        version TEXT COLLATE \"C\" NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE policies (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name TEXT COLLATE \"C\" NOT NULL UNIQUE,
        json TEXT NOT NULL
    );
    CREATE TABLE policy_versions (
        name TEXT COLLATE \"C\" NOT NULL REFERENCES policies (name),
        version BIGINT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE orders (
        id TEXT COLLATE \"C\" PRIMARY KEY,
        revision BIGINT NOT NULL,
        state TEXT NOT NULL,
        live BOOLEAN NOT NULL,
        next_wake BIGINT,
        journey_len BIGINT NOT NULL
    );
    CREATE INDEX orders_live ON orders (id) WHERE live;
    CREATE INDEX orders_next_wake ON orders (next_wake, id) WHERE next_wake IS NOT NULL;
    CREATE TABLE journeys (
        order_id TEXT COLLATE \"C\" NOT NULL REFERENCES orders (id),
        seq BIGINT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (order_id, seq)
    );",
    // Work sharing: the work list, the inbox, dead letters, fencing tokens. The two hot
    // tables hold only pending work, so they stay small; vacuum them early and leave room
    // for in-place (HOT) updates of the work list.
    "CREATE SEQUENCE fences;
    CREATE TABLE work (
        order_id TEXT COLLATE \"C\" PRIMARY KEY,
        ready_at BIGINT NOT NULL,
        queued BIGINT,
        owner TEXT,
        lease_until TIMESTAMPTZ,
        lease_ms BIGINT,
        fence BIGINT NOT NULL DEFAULT 0
    ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02,
            autovacuum_vacuum_threshold = 200, autovacuum_analyze_scale_factor = 0.05);
    CREATE INDEX work_ready ON work (ready_at, queued);
    CREATE TABLE inbox (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        order_id TEXT COLLATE \"C\" NOT NULL,
        event TEXT NOT NULL,
        queued_at TIMESTAMPTZ NOT NULL DEFAULT now()
    ) WITH (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200,
            autovacuum_analyze_scale_factor = 0.05);
    CREATE INDEX inbox_order ON inbox (order_id, seq);
    CREATE TABLE dead_letters (
        seq BIGINT PRIMARY KEY,
        order_id TEXT COLLATE \"C\" NOT NULL,
        event TEXT NOT NULL,
        reason TEXT NOT NULL,
        failed_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX dead_letters_order ON dead_letters (order_id, seq);
    -- Gives a claimed order back in one round trip. The lock comes first, in a statement of
    -- its own: the release statement's snapshot, taken after the lock is granted, sees every
    -- event queued before (an enqueue locks the same row). The order is ready again at once
    -- with events waiting (p_ready: the earliest key), at its next timer with one, and
    -- leaves the work list otherwise. False: the lease is no longer current.
    CREATE FUNCTION release_order(p_order TEXT, p_fence BIGINT, p_ready BIGINT)
    RETURNS BOOLEAN LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
        current_fence BIGINT;
        first_event BIGINT;
        wake BIGINT;
    BEGIN
        SELECT fence INTO current_fence FROM work WHERE order_id = p_order FOR UPDATE;
        IF current_fence IS DISTINCT FROM p_fence THEN
            RETURN FALSE;
        END IF;
        SELECT min(seq) INTO first_event FROM inbox WHERE order_id = p_order;
        SELECT next_wake INTO wake FROM orders WHERE id = p_order;
        IF first_event IS NULL AND wake IS NULL THEN
            DELETE FROM work WHERE order_id = p_order;
        ELSE
            UPDATE work
            SET owner = NULL, lease_until = NULL, lease_ms = NULL,
                ready_at = CASE WHEN first_event IS NOT NULL THEN p_ready ELSE wake END,
                queued = first_event
            WHERE order_id = p_order;
        END IF;
        RETURN TRUE;
    END $$;",
    // Catalog coherence and poison isolation: the catalog revision every save raises;
    // orders set aside, kept out of live, due and claims; a wake-up that survives the
    // release of an order claimed when it came.
    "CREATE TABLE catalog (
        id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
        revision BIGINT NOT NULL
    );
    INSERT INTO catalog (revision) VALUES (0);
    CREATE TABLE aside (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        order_id TEXT COLLATE \"C\" PRIMARY KEY,
        reason TEXT NOT NULL,
        set_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    ALTER TABLE work ADD COLUMN woken BOOLEAN NOT NULL DEFAULT false;
    CREATE OR REPLACE FUNCTION release_order(p_order TEXT, p_fence BIGINT, p_ready BIGINT)
    RETURNS BOOLEAN LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
    DECLARE
        current_fence BIGINT;
        was_woken BOOLEAN;
        first_event BIGINT;
        wake BIGINT;
    BEGIN
        SELECT fence, woken INTO current_fence, was_woken
        FROM work WHERE order_id = p_order FOR UPDATE;
        IF current_fence IS DISTINCT FROM p_fence THEN
            RETURN FALSE;
        END IF;
        SELECT min(seq) INTO first_event FROM inbox WHERE order_id = p_order;
        SELECT next_wake INTO wake FROM orders WHERE id = p_order;
        IF first_event IS NULL AND wake IS NULL AND NOT was_woken THEN
            DELETE FROM work WHERE order_id = p_order;
        ELSE
            UPDATE work
            SET owner = NULL, lease_until = NULL, lease_ms = NULL,
                ready_at = CASE WHEN first_event IS NOT NULL OR was_woken THEN p_ready
                                ELSE wake END,
                queued = first_event
            WHERE order_id = p_order;
        END IF;
        RETURN TRUE;
    END $$;",
    // Retention: when an order completed (`OrderState::completed_at` as a wake key: the
    // milliseconds less 2^63), null while it is live; filled in here for the rows already
    // there, from the state they hold. A row whose state does not parse (a poison order)
    // stays null, never purged, rather than failing the migration. The helper function is
    // the session's, and the session may be a pool's that migrates another schema next:
    // replaced if there, dropped after.
    "ALTER TABLE orders ADD COLUMN completed_at BIGINT;
    CREATE OR REPLACE FUNCTION pg_temp.completion(state TEXT) RETURNS BIGINT LANGUAGE sql AS $f$
        SELECT (GREATEST(
            COALESCE((SELECT max((e ->> 'at')::numeric)
                      FROM jsonb_array_elements(state::jsonb -> 'timeline') e), 0),
            COALESCE((SELECT max(GREATEST((x ->> 'started')::numeric,
                                          COALESCE((x ->> 'ended')::numeric, 0)))
                      FROM jsonb_array_elements(state::jsonb -> 'executions') x), 0)
        ) - 9223372036854775808)::bigint
    $f$;
    DO $d$
    DECLARE
        r RECORD;
    BEGIN
        BEGIN
            UPDATE orders SET completed_at = pg_temp.completion(state) WHERE NOT live;
        EXCEPTION WHEN others THEN
            -- Some row does not parse: fill the others one by one.
            FOR r IN SELECT id, state FROM orders WHERE NOT live LOOP
                BEGIN
                    UPDATE orders SET completed_at = pg_temp.completion(r.state)
                    WHERE id = r.id;
                EXCEPTION WHEN others THEN
                    NULL;
                END;
            END LOOP;
        END;
    END $d$;
    DROP FUNCTION pg_temp.completion(TEXT);
    CREATE INDEX orders_completed ON orders (completed_at) WHERE completed_at IS NOT NULL;",
];

/// The schema version this code writes.
const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// How many queued events of each claimed order the claim reads.
const PREFETCH: usize = 64;

/// Stores opened by this process, for owner names.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// The longest identifier PostgreSQL keeps; it silently cuts longer ones.
const MAX_IDENTIFIER: usize = 63;

/// Where and how a [`PostgresStore`] connects.
///
/// Build one with [`PostgresConfig::new`] and adjust it with the `with_` methods (or set the
/// fields). `Debug` shows the URL as [`redact::connection_string`] does: every password
/// in it, in any of the forms below, replaced by `[redacted]`.
///
/// ```
/// use std::time::Duration;
/// use orderflow::store::PostgresConfig;
///
/// let config =
///     PostgresConfig::new("postgres://orderflow:s3cret@db.internal:5432/shop?sslmode=verify-full")
///         .with_ca_file("/etc/ssl/certs/db-ca.pem") // read when the store connects
///         .with_schema("orderflow_eu")
///         .with_max_connections(32)
///         .with_acquire_timeout(Duration::from_secs(10))
///         .with_migrate(false); // the DBA runs PostgresStore::migration_sql
/// assert_eq!(config.schema, "orderflow_eu");
/// let shown = format!("{config:?}");
/// assert!(shown.contains("db.internal") && !shown.contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PostgresConfig {
    /// The server and credentials, as a `postgres://user:password@host:port/database` URL
    /// or a `host=… user=… dbname=…` key-value string (the forms `libpq` takes). In a URL,
    /// percent-encode an `@` in the user name, password, database name or parameters as
    /// `%40`: a URL with more than one `@`, or an `@` after its host, is refused, since the
    /// driver would read part of the password as a host or database name.
    ///
    /// TLS follows libpq's `sslmode` and `sslrootcert` options (see
    /// [TLS](PostgresStore#tls)): `sslmode` is `disable`, `prefer` (the default),
    /// `require`, `verify-ca` or `verify-full`; `sslrootcert` names a PEM file of trusted
    /// roots, or is `system` for the bundled Mozilla roots. Client certificates
    /// (`sslcert`, `sslkey`) are not supported.
    pub url: String,
    /// The schema holding the store's tables, created if it is missing. Default:
    /// `orderflow`. At most 63 bytes; any characters (it is always quoted). Stores on
    /// different schemas of one database are independent.
    pub schema: String,
    /// The most connections the store opens. Default: 16. Connections open on demand and
    /// are kept for reuse.
    pub max_connections: usize,
    /// How long opening one connection may take. Default: 10 seconds. A `connect_timeout`
    /// in the URL takes precedence.
    pub connect_timeout: Duration,
    /// How long an operation waits for a free connection when all `max_connections` are
    /// busy, before failing with [`Unavailable`](StoreErrorKind::Unavailable). Default: 30
    /// seconds.
    pub acquire_timeout: Duration,
    /// A PEM file of root certificates the server's certificate must chain to, in addition
    /// to a `sslrootcert` in the URL. Given roots make `prefer` and `require` check the
    /// chain, as libpq does with a root certificate. Default: none.
    pub ca_file: Option<PathBuf>,
    /// Root certificates as PEM text, used as [`ca_file`](Self::ca_file) is. Default: empty.
    pub ca_pem: Vec<u8>,
    /// Whether [`PostgresStore::connect_with`] applies missing migrations (under an
    /// advisory lock). When false, it only checks that the schema is at the version this
    /// code writes and refuses otherwise: the schema is then the DBA's, who runs
    /// [`PostgresStore::migration_sql`]. Default: true.
    pub migrate: bool,
}

impl PostgresConfig {
    /// The defaults, connecting to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "orderflow".to_owned(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
            ca_file: None,
            ca_pem: Vec::new(),
            migrate: true,
        }
    }

    /// Trusts the root certificates in the PEM file at `path` (see
    /// [`ca_file`](Self::ca_file)), e.g. the CA bundle of Amazon RDS or Cloud SQL.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Trusts the root certificates in `pem`, PEM text (see [`ca_pem`](Self::ca_pem)); each
    /// call adds to the ones before.
    #[must_use]
    pub fn with_root_certificates(mut self, pem: impl AsRef<[u8]>) -> Self {
        if !self.ca_pem.is_empty() && !self.ca_pem.ends_with(b"\n") {
            self.ca_pem.push(b'\n');
        }
        self.ca_pem.extend_from_slice(pem.as_ref());
        self
    }

    /// Applies missing migrations at connect (`true`, the default), or only checks the
    /// schema's version (`false`; see [`migrate`](Self::migrate)).
    #[must_use]
    pub fn with_migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Keeps the tables in `schema`.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Opens at most `max` connections.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Gives up opening a connection after `timeout`.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Gives up waiting for a free connection after `timeout`.
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact::connection_string(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("ca_file", &self.ca_file)
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("migrate", &self.migrate)
            .finish()
    }
}

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
///   transaction and a single round trip — that checks the revision, writes the state and
///   appends the journey rows: `INSERT … ON CONFLICT (id) DO NOTHING` for a new order,
///   `UPDATE … WHERE id = $1 AND revision = $2` otherwise, with the journey rows inserted by
///   a data-modifying `WITH` over the changed row. No changed row means
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
///   `VACUUM (SKIP_LOCKED, ANALYZE)` on the two tables. `orders` and `journeys` keep every order, as the source of
///   truth; archiving old orders is the host's choice.
///
/// # Schema
///
/// Every table lives in the configured [schema](PostgresConfig::schema), created if it is
/// missing, so one database can hold several independent stores. Values are the
/// `serde_json` text of the crate's types, kept as `text` exactly as written (`jsonb` would
/// reorder keys and re-round numbers). Document numbers are exact decimals written as JSON
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
/// `orders` has partial indexes on its live orders and on its durable timers. `next_wake`
/// holds [`OrderState::next_wake`] in milliseconds with the top bit flipped, so a signed
/// `bigint` sorts every `u64` timestamp in order; `revision` holds the `u64` revision's
/// bits as a `bigint` (it is only compared for equality). `journey_len` counts the order's
/// journey rows, so a commit numbers the rows it appends without reading the journey. Key
/// columns use the `"C"` collation: bytewise, the same on every server.
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
/// use orderflow::store::{Commit, PostgresConfig, PostgresStore, Store, StoreErrorKind};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = PostgresConfig::new("postgres://orderflow@127.0.0.1:5432/shop")
///     .with_schema("orderflow");
/// let store = PostgresStore::connect_with(config.clone()).await?;
/// let state = OrderState::new(Order::new("SO-1"));
/// store.commit(Commit::new(None, state, Vec::new())).await?;
///
/// // A second commit computed from the same (missing) revision conflicts.
/// let again = OrderState::new(Order::new("SO-1"));
/// let err = store.commit(Commit::new(None, again, Vec::new())).await.unwrap_err();
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

    /// The SQL that brings `schema` to the version this code writes, for a DBA to run
    /// (`psql -v ON_ERROR_STOP=1 -f orderflow.sql`, say) when stores connect with
    /// [`with_migrate(false)`](PostgresConfig::with_migrate).
    ///
    /// One transaction, under the advisory lock the stores take: it creates the schema and
    /// its `schema_migrations` table if they are missing, applies each migration the
    /// schema lacks (each in a `DO` block that checks `schema_migrations`) and records it,
    /// exactly as [`connect_with`](Self::connect_with) would. Running it again changes
    /// nothing; on a schema newer than this code it fails before changing anything.
    ///
    /// ```
    /// use orderflow::store::PostgresStore;
    ///
    /// let sql = PostgresStore::migration_sql("orderflow_eu");
    /// assert!(sql.starts_with("-- orderflow"));
    /// assert!(sql.contains("CREATE SCHEMA IF NOT EXISTS \"orderflow_eu\""));
    /// assert!(sql.trim_end().ends_with("COMMIT;"));
    /// ```
    pub fn migration_sql(schema: &str) -> String {
        let quoted = quote(schema);
        let lock = literal(&format!("orderflow schema {schema}"));
        let mut sql = format!(
            "-- orderflow: the PostgreSQL schema {quoted} at version {SCHEMA_VERSION}.\n\
             -- Applies the migrations the schema lacks, in one transaction; safe to run again.\n\
             BEGIN;\n\
             SELECT pg_advisory_xact_lock(hashtextextended({lock}, 0));\n\
             CREATE SCHEMA IF NOT EXISTS {quoted};\n\
             SET LOCAL search_path TO {quoted};\n\
             CREATE TABLE IF NOT EXISTS schema_migrations (\n    \
                 version INTEGER PRIMARY KEY,\n    \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()\n\
             );\n\
             DO $orderflow$\n\
             DECLARE found INTEGER;\n\
             BEGIN\n    \
                 SELECT COALESCE(max(version), 0) INTO found FROM schema_migrations;\n    \
                 IF found > {SCHEMA_VERSION} THEN\n        \
                     RAISE EXCEPTION 'the schema is at version %, newer than this script \
                     ({SCHEMA_VERSION})', found;\n    \
                 END IF;\n\
             END $orderflow$;\n"
        );
        for (i, migration) in MIGRATIONS.iter().enumerate() {
            let version = i + 1;
            sql.push_str(&format!(
                "\n-- Migration {version}.\n\
                 DO $orderflow_{version}$\n\
                 BEGIN\n    \
                     IF NOT EXISTS (SELECT 1 FROM schema_migrations WHERE version = {version}) THEN\n        \
                         EXECUTE $orderflow_sql_{version}$\n    {migration}\n$orderflow_sql_{version}$;\n        \
                         INSERT INTO schema_migrations (version) VALUES ({version});\n    \
                     END IF;\n\
                 END $orderflow_{version}$;\n"
            ));
        }
        sql.push_str("\nCOMMIT;\n");
        sql
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
        if config.migrate {
            store.migrate().await?;
        } else {
            store.check_version().await?;
        }
        Ok(store)
    }

    /// With automatic migration off: the schema must be at the version this code writes.
    async fn check_version(&self) -> Result<(), StoreError> {
        let client = self.client("checking the schema version").await?;
        let found = self.schema_version(&client).await?;
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        let schema = &self.schema;
        Err(StoreError::new(
            StoreErrorKind::Refused,
            format!(
                "PostgreSQL {}: the schema is at version {found}, this version of orderflow \
                 expects version {SCHEMA_VERSION}, and automatic migration is off \
                 (PostgresConfig::with_migrate(false)); run the SQL of \
                 PostgresStore::migration_sql for the schema '{schema}' on the database, which applies \
                 the missing migrations, or connect once with migration on",
                self.target
            ),
        ))
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

    /// Creates the schema if it is missing and applies the migrations it lacks.
    async fn migrate(&self) -> Result<(), StoreError> {
        let what = "migrating the schema";
        let sql = |e| pg_error(&self.target, what, e);
        let mut client = self.client(what).await?;
        // The common case, a schema that is up to date, takes no lock.
        if self.schema_version(&client).await? == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = client.transaction().await.map_err(sql)?;
        // Processes starting together take turns; the later ones find the work done.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            &[&format!("orderflow schema {}", self.schema)],
        )
        .await
        .map_err(sql)?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                &[&self.schema],
            )
            .await
            .map_err(sql)?
            .is_some();
        let schema = quote(&self.schema);
        if !exists {
            tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .map_err(sql)?;
        }
        tx.batch_execute(&format!(
            "SET LOCAL search_path TO {schema};
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             );"
        ))
        .await
        .map_err(sql)?;
        let mut version = self.schema_version(&tx).await?;
        while version < SCHEMA_VERSION {
            let next = version + 1;
            let step = |e| {
                pg_error(
                    &self.target,
                    &format!("migrating to schema version {next}"),
                    e,
                )
            };
            tx.batch_execute(MIGRATIONS[(next - 1) as usize])
                .await
                .map_err(step)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&next],
            )
            .await
            .map_err(step)?;
            version = next;
        }
        tx.commit().await.map_err(sql)
    }

    /// The schema's version: 0 when it or its `schema_migrations` table is missing.
    ///
    /// # Errors
    ///
    /// [`Refused`](StoreErrorKind::Refused) for a version newer than this code knows.
    async fn schema_version(&self, client: &impl GenericClient) -> Result<i32, StoreError> {
        let what = "reading the schema version";
        let sql = |e| pg_error(&self.target, what, e);
        let has_table = client
            .query_opt(
                "SELECT 1 FROM pg_catalog.pg_tables
                 WHERE schemaname = $1 AND tablename = 'schema_migrations'",
                &[&self.schema],
            )
            .await
            .map_err(sql)?
            .is_some();
        if !has_table {
            return Ok(0);
        }
        let row = client
            .query_one(
                &format!(
                    "SELECT COALESCE(MAX(version), 0) FROM {}.schema_migrations",
                    quote(&self.schema)
                ),
                &[],
            )
            .await
            .map_err(sql)?;
        let version: i32 = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::new(
                StoreErrorKind::Refused,
                format!(
                    "PostgreSQL {} has schema version {version}, newer than this version of \
                     orderflow knows ({SCHEMA_VERSION}); use a newer orderflow",
                    self.target
                ),
            ));
        }
        Ok(version)
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

#[async_trait]
impl Store for PostgresStore {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        self.read_json("reading flows", &self.sql.flows, &[]).await
    }

    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
        let json = self.encode("flow", &flow.name, flow)?;
        let version = flow.version.to_string();
        let frozen = frozen.then_some((
            self.sql.freeze_flow.as_str(),
            &version as &(dyn ToSql + Sync),
            json.as_str(),
        ));
        self.save(
            "saving a flow",
            &self.sql.save_flow,
            &flow.name,
            &json,
            frozen,
        )
        .await
    }

    async fn flow_version(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<Flow>, StoreError> {
        self.read_one(
            "reading a flow version",
            &self.sql.flow_version,
            &[&name, &version.to_string()],
        )
        .await
    }

    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.read_json("reading policies", &self.sql.policies, &[])
            .await
    }

    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError> {
        let name = record.name();
        let published = if published {
            let Some(version) = record.last_published else {
                return Err(StoreError::new(
                    StoreErrorKind::Refused,
                    format!("policy '{name}' is saved as published without a version"),
                ));
            };
            let document = self.encode("policy", name, &record.document)?;
            Some((i64::from(version), document))
        } else {
            None
        };
        let json = self.encode("policy", name, record)?;
        let frozen = published.as_ref().map(|(version, document)| {
            (
                self.sql.freeze_policy.as_str(),
                version as &(dyn ToSql + Sync),
                document.as_str(),
            )
        });
        self.save(
            "saving a policy",
            &self.sql.save_policy,
            name,
            &json,
            frozen,
        )
        .await
    }

    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError> {
        self.read_one(
            "reading a policy version",
            &self.sql.policy_version,
            &[&name, &i64::from(version)],
        )
        .await
    }

    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
        self.read_one("loading an order", &self.sql.load, &[&order.as_str()])
            .await
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let what = "committing an order";
        let id = commit.state.order.id.as_str();
        // Revisions are compared for equality only: any u64 round-trips through i64.
        let revision = commit.state.revision as i64;
        let live = commit.state.has_live();
        let next_wake = commit.state.next_wake().map(wake_key);
        let completed = commit.state.completed_at().map(wake_key);
        let state = self.encode("order", id, &commit.state)?;
        let journey = commit
            .journey
            .iter()
            .map(|step| self.encode("journey row of order", id, step))
            .collect::<Result<Vec<_>, _>>()?;
        let fence = lock(&self.leases).get(&commit.state.order.id).copied();
        let expected = commit.expected.map(|e| e as i64);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &id, &revision, &state, &live, &next_wake, &journey, &completed,
        ];
        if let Some(expected) = &expected {
            params.push(expected);
        }
        if let Some(fence) = &fence {
            params.push(fence);
        }
        let sql = match (expected.is_some(), fence.is_some()) {
            (false, false) => &self.sql.create,
            (true, false) => &self.sql.update,
            (false, true) => &self.sql.create_fenced,
            (true, true) => &self.sql.update_fenced,
        };
        let rows = self.query(what, sql, &params).await?;
        let count = |i: usize| -> Result<i64, StoreError> {
            rows.first()
                .map_or(Ok(0), |row| row.try_get(i))
                .map_err(|e| self.corrupt(what, e))
        };
        if let Some(fence) = fence {
            if count(1)? == 0 {
                lock(&self.leases).remove(&commit.state.order.id);
                lock(&self.prefetched).remove(&commit.state.order.id);
                return Err(lease_lost(&Lease::new(
                    commit.state.order.id.clone(),
                    fence as u64,
                )));
            }
        }
        if count(0)? > 0 {
            return Ok(());
        }
        let stored = self
            .query(what, &self.sql.revision, &[&id])
            .await?
            .first()
            .map(|row| row.try_get::<_, i64>(0))
            .transpose()
            .map_err(|e| self.corrupt(what, e))?;
        Err(StoreError::conflict(
            id,
            stored.map(|r| r as u64),
            commit.expected,
        ))
    }

    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        self.read_json("reading a journey", &self.sql.journey, &[&order.as_str()])
            .await
    }

    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        self.read_ids("listing live orders", &self.sql.live, &[])
            .await
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_ids(
            "listing due orders",
            &self.sql.due,
            &[&wake_key(now), &limit],
        )
        .await
    }

    /// One statement through the `completed_at` index; PostgreSQL's autovacuum reclaims
    /// the space of the deleted rows for new ones.
    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_ids(
            "purging completed orders",
            &self.sql.purge,
            &[&wake_key(completed_before), &limit],
        )
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let what = "reading the next timer";
        let rows = self.query(what, &self.sql.next_due, &[]).await?;
        let key: Option<i64> = match rows.first() {
            Some(row) => row.try_get(0).map_err(|e| self.corrupt(what, e))?,
            None => None,
        };
        Ok(key.map(wake_time))
    }

    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        let what = "reading the catalog revision";
        let rows = self.query(what, &self.sql.catalog_revision, &[]).await?;
        let revision: i64 = rows
            .first()
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("PostgreSQL {}: the catalog table has no row", self.target),
                )
            })?
            .try_get(0)
            .map_err(|e| self.corrupt(what, e))?;
        Ok(revision as u64)
    }

    async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
        self.read_catalog("reading flows", &self.sql.flow_rows)
            .await
    }

    async fn read_policies(&self) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
        self.read_catalog("reading policies", &self.sql.policy_rows)
            .await
    }

    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        self.query(
            "setting an order aside",
            &self.sql.set_aside,
            &[&order.as_str(), &reason],
        )
        .await?;
        Ok(())
    }

    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
        let what = "listing orders set aside";
        self.query(what, &self.sql.aside, &[])
            .await?
            .iter()
            .map(|row| {
                let order: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
                let reason: String = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
                Ok(SetAside::new(OrderId::from(order), reason))
            })
            .collect()
    }

    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
        let what = "restoring an order set aside";
        let rows = self
            .query(
                what,
                &self.sql.restore,
                &[&order.as_str(), &wake_key(Timestamp(0)), &self.channel()],
            )
            .await?;
        let n: i64 = rows
            .first()
            .map_or(Ok(0), |row| row.try_get(0))
            .map_err(|e| self.corrupt(what, e))?;
        Ok(n > 0)
    }
}

#[async_trait]
impl SharedStore for PostgresStore {
    async fn enqueue(&self, event: &Event) -> Result<(), StoreError> {
        let id = event.order.as_str();
        let json = self.encode("event for order", id, event)?;
        self.query(
            "queueing an event",
            &self.sql.enqueue,
            &[&id, &json, &wake_key(Timestamp(0)), &self.channel()],
        )
        .await?;
        Ok(())
    }

    async fn claim(
        &self,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        let what = "claiming orders";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX).max(1);
        let rows = self
            .query(
                what,
                &self.sql.claim,
                &[&wake_key(now), &limit, &self.owner, &lease_ms],
            )
            .await?;
        let mut leases = Vec::with_capacity(rows.len());
        let mut claimed = Vec::with_capacity(rows.len());
        let mut poisoned = Vec::new();
        for row in &rows {
            let order: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
            let fence: i64 = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
            let seqs: Vec<i64> = row.try_get(2).map_err(|e| self.corrupt(what, e))?;
            let events: Vec<&str> = row.try_get(3).map_err(|e| self.corrupt(what, e))?;
            let queued = seqs
                .into_iter()
                .zip(events)
                .map(|(seq, json)| {
                    Ok(Queued {
                        seq: seq as u64,
                        event: serde_json::from_str(json).map_err(|e| self.corrupt(what, e))?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>();
            let order = OrderId::from(order);
            match queued {
                Ok(queued) => {
                    claimed.push((order.clone(), fence, queued));
                    leases.push(Lease::new(order, fence as u64));
                }
                // A queued event that does not decode: the order is set aside with the
                // reason, and the claim goes on with the others.
                Err(e) => poisoned.push((Lease::new(order, fence as u64), e)),
            }
        }
        for (lease, e) in poisoned {
            self.set_aside(
                &lease.order,
                &format!("a queued event does not decode: {e}"),
            )
            .await?;
            self.release(&lease).await?;
        }
        let mut held = lock(&self.leases);
        let mut prefetched = lock(&self.prefetched);
        for (order, fence, queued) in claimed {
            held.insert(order.clone(), fence);
            prefetched.insert(order, (fence as u64, queued));
        }
        Ok(leases)
    }

    async fn inbox(&self, lease: &Lease, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let what = "reading an inbox";
        {
            // The claim read the first events: hand them out once.
            let mut prefetched = lock(&self.prefetched);
            if let Some((fence, queued)) = prefetched.remove(&lease.order) {
                if fence == lease.fence {
                    if queued.len() <= limit {
                        return Ok(queued);
                    }
                    let mut queued = queued;
                    let rest = queued.split_off(limit);
                    prefetched.insert(lease.order.clone(), (fence, rest));
                    return Ok(queued);
                }
            }
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(what, &self.sql.inbox, &[&lease.order.as_str(), &limit])
            .await?;
        let mut queued = Vec::with_capacity(rows.len());
        for row in &rows {
            let fence: i64 = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
            if fence as u64 != lease.fence {
                return Err(self.lost(lease));
            }
            let seq: Option<i64> = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
            let json: Option<&str> = row.try_get(2).map_err(|e| self.corrupt(what, e))?;
            if let (Some(seq), Some(json)) = (seq, json) {
                let event = serde_json::from_str(json).map_err(|e| self.corrupt(what, e))?;
                queued.push(Queued {
                    seq: seq as u64,
                    event,
                });
            }
        }
        if rows.is_empty() {
            return Err(self.lost(lease));
        }
        Ok(queued)
    }

    async fn consume(
        &self,
        lease: &Lease,
        seq: u64,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let what = "removing a queued event";
        let rows = self
            .query(
                what,
                &self.sql.consume,
                &[
                    &lease.order.as_str(),
                    &(seq as i64),
                    &(lease.fence as i64),
                    &failure,
                ],
            )
            .await?;
        let current: bool = rows
            .first()
            .map_or(Ok(false), |row| row.try_get(0))
            .map_err(|e| self.corrupt(what, e))?;
        if current {
            Ok(())
        } else {
            Err(self.lost(lease))
        }
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        let what = "releasing an order";
        lock(&self.leases).remove(&lease.order);
        lock(&self.prefetched).remove(&lease.order);
        let rows = self
            .query(
                what,
                &self.sql.release,
                &[
                    &lease.order.as_str(),
                    &(lease.fence as i64),
                    &wake_key(Timestamp(0)),
                ],
            )
            .await?;
        let current: bool = rows
            .first()
            .map_or(Ok(false), |row| row.try_get(0))
            .map_err(|e| self.corrupt(what, e))?;
        if current {
            Ok(())
        } else {
            Err(lease_lost(lease))
        }
    }

    async fn maintain(&self) -> Result<(), StoreError> {
        let what = "vacuuming the work list and inbox";
        let client = self.client(what).await?;
        client
            .batch_execute(&self.sql.maintain)
            .await
            .map_err(|e| pg_error(&self.target, what, e))
    }

    async fn dead_letters(&self, order: &OrderId) -> Result<Vec<DeadLetter>, StoreError> {
        let what = "reading dead letters";
        self.query(what, &self.sql.dead_letters, &[&order.as_str()])
            .await?
            .iter()
            .map(|row| {
                let event: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
                let reason: String = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
                Ok(DeadLetter {
                    event: serde_json::from_str(event).map_err(|e| self.corrupt(what, e))?,
                    reason,
                })
            })
            .collect()
    }

    async fn wake(&self, order: &OrderId) -> Result<(), StoreError> {
        self.query(
            "waking an order",
            &self.sql.wake,
            &[&order.as_str(), &wake_key(Timestamp(0)), &self.channel()],
        )
        .await?;
        Ok(())
    }

    async fn work_arrived(&self) {
        self.listen();
        self.wakeup.wait(&self.seen).await;
    }
}

impl PostgresStore {
    /// The notification channel of the store's schema: a name derived from it, short
    /// enough for any schema name.
    fn channel(&self) -> String {
        // FNV-1a: stable across processes and versions.
        let hash = self.schema.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        format!("orderflow_{hash:016x}")
    }

    /// The error for a lease found no longer current; the store forgets it.
    fn lost(&self, lease: &Lease) -> StoreError {
        lock(&self.leases).remove(&lease.order);
        lock(&self.prefetched).remove(&lease.order);
        lease_lost(lease)
    }

    /// Starts the listener for work notifications, unless it runs: a task with its own
    /// connection that `LISTEN`s on the schema's channel and wakes the store's worker on
    /// each notification. When the connection drops, it reconnects after a second; it
    /// wakes the worker after each (re)connection, since notifications sent meanwhile are
    /// lost. Workers poll as well, so a listener that cannot connect only slows wake-ups.
    fn listen(&self) {
        let mut task = lock(&self.listener);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let Some((pg, tls)) = self.listen_to.clone() else {
            return;
        };
        let wakeup = self.wakeup.clone();
        let listen = format!("LISTEN {}", quote(&self.channel()));
        *task = Some(tokio::spawn(async move {
            loop {
                if let Ok((client, mut connection)) = pg.connect(tls.clone()).await {
                    let wake = wakeup.clone();
                    let driver = tokio::spawn(async move {
                        while let Some(message) =
                            futures::future::poll_fn(|cx| connection.poll_message(cx)).await
                        {
                            match message {
                                Ok(AsyncMessage::Notification(_)) => wake.notify(),
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    });
                    if client.batch_execute(&listen).await.is_ok() {
                        wakeup.notify();
                        let _ = driver.await;
                    } else {
                        driver.abort();
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }
}

/// The store's statements, with its schema's name in them.
#[derive(Debug)]
struct Queries {
    flows: String,
    save_flow: String,
    freeze_flow: String,
    flow_version: String,
    policies: String,
    save_policy: String,
    freeze_policy: String,
    policy_version: String,
    load: String,
    create: String,
    update: String,
    create_fenced: String,
    update_fenced: String,
    revision: String,
    enqueue: String,
    claim: String,
    inbox: String,
    consume: String,
    release: String,
    maintain: String,
    dead_letters: String,
    purge: String,
    journey: String,
    live: String,
    due: String,
    next_due: String,
    catalog_revision: String,
    bump_catalog: String,
    flow_rows: String,
    policy_rows: String,
    set_aside: String,
    aside: String,
    restore: String,
    wake: String,
}

impl Queries {
    /// The statements on the tables of `schema`, a quoted identifier.
    fn new(schema: &str) -> Self {
        // Journey rows for the order the first CTE changed: none when it changed nothing.
        // `base` is the number of rows the order had before; `$6` holds the new rows.
        // A commit: the order written if its revision matches (`$7`), then its journey rows
        // appended, in one statement; the result is how many orders it wrote. With a fencing
        // token (parameter `fence`), a first CTE checks that the token is still the order's
        // and renews the lease, the order is written only if it did, and a second column
        // says whether it did.
        let commit = |create: bool, fence: Option<usize>| {
            let (check, guard, result) = match fence {
                None => (String::new(), "", "SELECT count(*) FROM o"),
                Some(param) => (
                    format!(
                        "f AS (
                             UPDATE {schema}.work
                             SET lease_until = now() + lease_ms * interval '1 millisecond'
                             WHERE order_id = $1 AND fence = ${param}
                             RETURNING 1
                         ), "
                    ),
                    " AND EXISTS (SELECT 1 FROM f)",
                    "SELECT (SELECT count(*) FROM o), (SELECT count(*) FROM f)",
                ),
            };
            let write = if create {
                format!(
                    "INSERT INTO {schema}.orders
                         (id, revision, state, live, next_wake, journey_len, completed_at)
                     SELECT $1, $2, $3, $4, $5, cardinality($6::text[]), $7 WHERE true{guard}
                     ON CONFLICT (id) DO NOTHING
                     RETURNING id, 0::bigint AS base"
                )
            } else {
                format!(
                    "UPDATE {schema}.orders
                     SET revision = $2, state = $3, live = $4, next_wake = $5,
                         journey_len = journey_len + cardinality($6::text[]),
                         completed_at = $7
                     WHERE id = $1 AND revision = $8{guard}
                     RETURNING id, journey_len - cardinality($6::text[]) AS base"
                )
            };
            format!(
                "WITH {check}o AS ({write}), j AS (
                     INSERT INTO {schema}.journeys (order_id, seq, json)
                     SELECT o.id, o.base + r.n, r.json
                     FROM o, unnest($6::text[]) WITH ORDINALITY AS r (json, n)
                 )
                 {result}"
            )
        };
        // `nextval` takes the sequence's name as a string literal.
        let fences = format!("'{}'", format!("{schema}.fences").replace('\'', "''"));
        Self {
            create: commit(true, None),
            update: commit(false, None),
            create_fenced: commit(true, Some(8)),
            update_fenced: commit(false, Some(9)),
            // The order is ready at once ($3: the earliest key); the notification goes out
            // when the transaction commits.
            enqueue: format!(
                "WITH i AS (
                     INSERT INTO {schema}.inbox (order_id, event) VALUES ($1, $2)
                     RETURNING seq
                 ), w AS (
                     INSERT INTO {schema}.work (order_id, ready_at, queued)
                     SELECT $1, $3, seq FROM i
                     ON CONFLICT (order_id) DO UPDATE
                     SET ready_at = $3,
                         queued = LEAST(work.queued, excluded.queued)
                 )
                 SELECT pg_notify($4, '')"
            ),
            // Ready ($1: the engine's now as a wake key), not held by a live lease; locked
            // rows are skipped, so concurrent claims take different orders. Lease times are
            // the database's.
            claim: format!(
                "WITH c AS (
                     SELECT order_id FROM {schema}.work
                     WHERE ready_at <= $1 AND (lease_until IS NULL OR lease_until < now())
                       AND NOT EXISTS (
                           SELECT 1 FROM {schema}.aside a WHERE a.order_id = work.order_id
                       )
                     ORDER BY ready_at, queued
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ), u AS (
                     UPDATE {schema}.work w
                     SET owner = $3, fence = nextval({fences}), lease_ms = $4::bigint,
                         woken = false,
                         lease_until = now() + $4::bigint * interval '1 millisecond'
                     FROM c WHERE w.order_id = c.order_id
                     RETURNING w.order_id, w.fence
                 )
                 SELECT u.order_id, u.fence,
                        COALESCE(p.seqs, '{{}}'::bigint[]), COALESCE(p.events, '{{}}'::text[])
                 FROM u LEFT JOIN LATERAL (
                     SELECT array_agg(q.seq ORDER BY q.seq) AS seqs,
                            array_agg(q.event ORDER BY q.seq) AS events
                     FROM (
                         SELECT seq, event FROM {schema}.inbox i WHERE i.order_id = u.order_id
                         ORDER BY seq LIMIT {PREFETCH}
                     ) q
                 ) p ON true"
            ),
            inbox: format!(
                "SELECT w.fence, i.seq, i.event
                 FROM (SELECT fence FROM {schema}.work WHERE order_id = $1) w
                 LEFT JOIN LATERAL (
                     SELECT seq, event FROM {schema}.inbox WHERE order_id = $1
                     ORDER BY seq LIMIT $2
                 ) i ON true"
            ),
            consume: format!(
                "WITH d AS (
                     DELETE FROM {schema}.inbox
                     WHERE seq = $2 AND order_id = $1
                       AND EXISTS (SELECT 1 FROM {schema}.work WHERE order_id = $1 AND fence = $3)
                     RETURNING seq, order_id, event
                 ), x AS (
                     INSERT INTO {schema}.dead_letters (seq, order_id, event, reason)
                     SELECT seq, order_id, event, $4 FROM d WHERE $4::text IS NOT NULL
                 )
                 SELECT EXISTS (
                     SELECT 1 FROM {schema}.work WHERE order_id = $1 AND fence = $3
                 )"
            ),
            release: format!("SELECT {schema}.release_order($1, $2, $3)"),
            // Another instance's vacuum of the same table makes this one skip it.
            maintain: format!("VACUUM (SKIP_LOCKED, ANALYZE) {schema}.work, {schema}.inbox"),
            dead_letters: format!(
                "SELECT event, reason FROM {schema}.dead_letters WHERE order_id = $1 ORDER BY seq"
            ),
            flows: format!("SELECT json FROM {schema}.flows ORDER BY seq"),
            save_flow: format!(
                "INSERT INTO {schema}.flows (name, json) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET json = excluded.json"
            ),
            freeze_flow: format!(
                "INSERT INTO {schema}.flow_versions (name, version, json) VALUES ($1, $2, $3)
                 ON CONFLICT (name, version) DO NOTHING"
            ),
            flow_version: format!(
                "SELECT json FROM {schema}.flow_versions WHERE name = $1 AND version = $2"
            ),
            policies: format!("SELECT json FROM {schema}.policies ORDER BY seq"),
            save_policy: format!(
                "INSERT INTO {schema}.policies (name, json) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET json = excluded.json"
            ),
            freeze_policy: format!(
                "INSERT INTO {schema}.policy_versions (name, version, json) VALUES ($1, $2, $3)
                 ON CONFLICT (name, version) DO NOTHING"
            ),
            policy_version: format!(
                "SELECT json FROM {schema}.policy_versions WHERE name = $1 AND version = $2"
            ),
            load: format!("SELECT state FROM {schema}.orders WHERE id = $1"),
            revision: format!("SELECT revision FROM {schema}.orders WHERE id = $1"),
            journey: format!("SELECT json FROM {schema}.journeys WHERE order_id = $1 ORDER BY seq"),
            live: format!(
                "SELECT id FROM {schema}.orders o WHERE live
                 AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                 ORDER BY id"
            ),
            due: format!(
                "SELECT id FROM {schema}.orders o WHERE next_wake IS NOT NULL AND next_wake <= $1
                 AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                 ORDER BY next_wake, id LIMIT $2"
            ),
            next_due: format!(
                "SELECT next_wake FROM {schema}.orders o WHERE next_wake IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                 ORDER BY next_wake LIMIT 1"
            ),
            catalog_revision: format!("SELECT revision FROM {schema}.catalog"),
            bump_catalog: format!("UPDATE {schema}.catalog SET revision = revision + 1"),
            flow_rows: format!("SELECT name, json FROM {schema}.flows ORDER BY seq"),
            policy_rows: format!("SELECT name, json FROM {schema}.policies ORDER BY seq"),
            set_aside: format!(
                "INSERT INTO {schema}.aside (order_id, reason) VALUES ($1, $2)
                 ON CONFLICT (order_id) DO UPDATE SET reason = excluded.reason, set_at = now()"
            ),
            aside: format!("SELECT order_id, reason FROM {schema}.aside ORDER BY seq"),
            // Back from the list, and ready at once ($2: the earliest key).
            restore: format!(
                "WITH d AS (
                     DELETE FROM {schema}.aside WHERE order_id = $1 RETURNING order_id
                 ), w AS (
                     INSERT INTO {schema}.work (order_id, ready_at, woken)
                     SELECT order_id, $2, true FROM d
                     ON CONFLICT (order_id) DO UPDATE SET ready_at = $2, woken = true
                 )
                 SELECT count(*), pg_notify($3, '') FROM d"
            ),
            wake: format!(
                "WITH w AS (
                     INSERT INTO {schema}.work (order_id, ready_at, woken) VALUES ($1, $2, true)
                     ON CONFLICT (order_id) DO UPDATE SET ready_at = $2, woken = true
                 )
                 SELECT pg_notify($3, '')"
            ),
            // Completed orders ($1: the cutoff as a wake key), oldest first through the
            // partial index, none with pending work (a work-list row: queued events, a
            // timer, a lease). Rows locked by a commit in flight are skipped, and a row a
            // commit changed meanwhile is checked again once locked. The journey, inbox and
            // dead-letter rows go in the same statement.
            purge: format!(
                "WITH p AS (
                     SELECT id FROM {schema}.orders o
                     WHERE completed_at IS NOT NULL AND completed_at < $1
                       AND NOT EXISTS (SELECT 1 FROM {schema}.work w WHERE w.order_id = o.id)
                       AND NOT EXISTS (SELECT 1 FROM {schema}.aside a WHERE a.order_id = o.id)
                     ORDER BY completed_at, id
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ), j AS (
                     DELETE FROM {schema}.journeys WHERE order_id IN (SELECT id FROM p)
                 ), i AS (
                     DELETE FROM {schema}.inbox WHERE order_id IN (SELECT id FROM p)
                 ), d AS (
                     DELETE FROM {schema}.dead_letters WHERE order_id IN (SELECT id FROM p)
                 ), o AS (
                     DELETE FROM {schema}.orders WHERE id IN (SELECT id FROM p)
                     RETURNING id, completed_at
                 )
                 SELECT id FROM o ORDER BY completed_at, id"
            ),
        }
    }
}

/// `name` as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as a SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Why `schema` cannot name the store's schema, if it cannot.
fn check_schema_name(schema: &str) -> Result<(), String> {
    if schema.is_empty() || schema.len() > MAX_IDENTIFIER {
        return Err(format!(
            "the schema name must be 1 to {MAX_IDENTIFIER} bytes long"
        ));
    }
    Ok(())
}

/// The driver's configuration and the TLS connector for `config`: the URL without the
/// TLS options the store reads itself, the roots from `sslrootcert` and the configured CA
/// file and PEM. Errors name options and files, never a text of the URL.
fn driver_config(
    config: &PostgresConfig,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect), String> {
    if let Some(problem) = redact::url_ambiguity(&config.url) {
        return Err(format!("the connection URL is ambiguous: {problem}"));
    }
    let (rest, options) = tls::take_options(&config.url)
        .map_err(|problem| format!("the connection string does not parse: {problem}"))?;
    // The driver's error is not kept as the source: its cause may quote the string.
    let mut pg: tokio_postgres::Config = rest.parse().map_err(|e| {
        format!(
            "the connection string does not parse: {}",
            parse_problem(&e)
        )
    })?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(config.connect_timeout);
    }
    if pg.get_application_name().is_none() {
        pg.application_name("orderflow");
    }
    let mut roots = tls::Roots::default();
    match options.root_cert.as_deref() {
        Some("system") => roots.system = true,
        Some(file) => roots
            .given
            .extend(tls::read_pem_file(file.as_ref(), "sslrootcert file")?),
        None => {}
    }
    if let Some(file) = &config.ca_file {
        roots.given.extend(tls::read_pem_file(file, "CA file")?);
    }
    if !config.ca_pem.is_empty() {
        roots.given.extend(tls::read_pem(
            &config.ca_pem,
            "the configured root certificates",
        )?);
    }
    // As libpq: sslrootcert=system makes verify-full the default.
    let mode = options.mode.unwrap_or(if roots.system {
        tls::SslMode::VerifyFull
    } else {
        tls::SslMode::Prefer
    });
    pg.ssl_mode(mode.driver());
    let connector = tls::connector(mode, roots)?;
    Ok((pg, connector))
}

/// What a connection string's parse error says, without any text of the string: the
/// driver's messages may quote a character or an option name from it, which may be part of
/// a password (a quote doubled SQL-style, a password with an unquoted space).
fn parse_problem(e: &tokio_postgres::Error) -> String {
    let Some(cause) = std::error::Error::source(e).map(ToString::to_string) else {
        return e.to_string();
    };
    if let Some(name) = cause
        .strip_prefix("unknown option `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return if redact::is_known_option(name) {
            format!("option `{name}` is not supported")
        } else {
            "an unknown option".to_owned()
        };
    }
    if let Some(at) = cause.strip_prefix("unexpected character at byte ") {
        let at: String = at.chars().take_while(char::is_ascii_digit).collect();
        return format!("unexpected character at byte {at}");
    }
    // These name a fixed option, a position or nothing of the string.
    let safe = [
        "invalid value for option `",
        "invalid utf-8 sequence",
        "unexpected EOF",
    ];
    let exact = [
        "unterminated quoted connection parameter value",
        "unterminated parameter",
    ];
    if safe.iter().any(|p| cause.starts_with(p)) || exact.contains(&cause.as_str()) {
        cause
    } else {
        e.to_string()
    }
}

/// Maps a pool error to a store error naming the server.
fn pool_error(target: &str, what: &str, e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(target, what, e),
        PoolError::Timeout(_) => StoreError::new(
            StoreErrorKind::Unavailable,
            format!(
                "PostgreSQL {target} is unavailable ({what}): no connection within the \
                 timeout ({e}); try again"
            ),
        )
        .with_source(e),
        PoolError::Closed => StoreError::new(
            StoreErrorKind::Unavailable,
            format!("PostgreSQL {target}: the connection pool is closed ({what})"),
        )
        .with_source(e),
        _ => StoreError::new(
            StoreErrorKind::Other,
            format!("PostgreSQL {target}: {what} failed: {e}"),
        )
        .with_source(e),
    }
}

/// Maps a driver error to a store error naming the server.
fn pg_error(target: &str, what: &str, e: tokio_postgres::Error) -> StoreError {
    if let Some(problem) = tls::problem(&e) {
        return StoreError::new(
            StoreErrorKind::Refused,
            format!("PostgreSQL {target}: no TLS connection ({what}): {problem}"),
        )
        .with_source(e);
    }
    let kind = error_kind(&e);
    let detail = match (e.as_db_error(), std::error::Error::source(&e)) {
        (Some(db), _) => db.to_string(),
        (None, Some(source)) => format!("{e}: {source}"),
        (None, None) => e.to_string(),
    };
    let message = match kind {
        StoreErrorKind::Unavailable => {
            format!("PostgreSQL {target} is unavailable ({what}); try again: {detail}")
        }
        StoreErrorKind::Refused => format!("PostgreSQL {target} refused {what}: {detail}"),
        StoreErrorKind::Corrupt => format!(
            "PostgreSQL {target}: {what}: the store's data or tables are damaged or \
             missing: {detail}"
        ),
        _ => format!("PostgreSQL {target}: {what} failed: {detail}"),
    };
    StoreError::new(kind, message).with_source(e)
}

/// The class of a driver error: by its SQLSTATE when the server sent one.
fn error_kind(e: &tokio_postgres::Error) -> StoreErrorKind {
    let Some(code) = e.code() else {
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        return if e.is_closed() || io {
            StoreErrorKind::Unavailable
        } else if e.to_string() == "authentication error" {
            // The server asked for a password the URL does not give.
            StoreErrorKind::Refused
        } else {
            StoreErrorKind::Other
        };
    };
    match code.code() {
        // Serialization failure, deadlock, lock not available, statement timeout or
        // cancel, server shutting down or starting, out of connections or memory, system
        // errors.
        "40001" | "40P01" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "53000" | "53200"
        | "53300" | "58000" | "58030" => StoreErrorKind::Unavailable,
        // Connection exceptions.
        c if c.starts_with("08") => StoreErrorKind::Unavailable,
        // Damaged data or indexes; the store's schema or tables gone, or altered.
        "XX001" | "XX002" | "3F000" | "42P01" | "42703" => StoreErrorKind::Corrupt,
        // Disk full, read-only transaction (a standby), no privilege, no such database.
        "53100" | "25006" | "42501" | "3D000" => StoreErrorKind::Refused,
        // Constraint violations, failed logins, values it cannot store, program limits.
        c if ["23", "28", "22", "54"]
            .iter()
            .any(|class| c.starts_with(class)) =>
        {
            StoreErrorKind::Refused
        }
        _ => StoreErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_quote_nothing_of_the_string() {
        // Each string holds a password with a `Q`, which no message may show.
        let cases = [
            (
                "host=h password='it''s Q' user=x",
                "unexpected character at byte 23",
            ),
            ("host=h password=my Qword=x", "an unknown option"),
            ("postgres://u:p@h/db?Qx=1", "an unknown option"),
            (
                "host=h sslpassword=Q",
                "option `sslpassword` is not supported",
            ),
            (
                "postgres://u:Q@h:port/db",
                "invalid value for option `port`",
            ),
            (
                "host=h password='Q",
                "unterminated quoted connection parameter value",
            ),
            ("host=h password=Q dangling", "unexpected EOF"),
        ];
        for (url, expected) in cases {
            let e = url.parse::<tokio_postgres::Config>().unwrap_err();
            let problem = parse_problem(&e);
            assert_eq!(problem, expected, "{url}: {e:?}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("orderflow"), "\"orderflow\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
