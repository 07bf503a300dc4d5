//! The schema: its migrations, run by a store or by a DBA, and the version check.

use deadpool_postgres::GenericClient;

#[cfg(doc)]
use super::PostgresConfig;
use super::PostgresStore;
use super::errors::pg_error;
use super::queries::{literal, quote};
use crate::store::{StoreError, StoreErrorKind};

/// The schema migrations; migration `n` (1-based) is recorded as version `n` in the schema's
/// `schema_migrations` table. Each runs with `search_path` set to the store's schema.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // Rows per part: the order's row keeps its document (JSON text) and resume timer, each
    // execution gets a binary row, each commit a binary journal row. SQL cannot write the
    // binary rows: the rows stored before stay as they were (`state` set, `document` null)
    // until a store moves them over when it opens (`move_to_binary_rows`).
    "ALTER TABLE orders ADD COLUMN document TEXT, ADD COLUMN resume_at BIGINT,
        ALTER COLUMN state DROP NOT NULL, DROP COLUMN journey_len;
    CREATE TABLE executions (
        order_id TEXT COLLATE \"C\" NOT NULL REFERENCES orders (id),
        seq BIGINT NOT NULL,
        state BYTEA NOT NULL,
        PRIMARY KEY (order_id, seq)
    );
    CREATE TABLE journal (
        order_id TEXT COLLATE \"C\" NOT NULL REFERENCES orders (id),
        revision BIGINT NOT NULL,
        entries BYTEA NOT NULL,
        PRIMARY KEY (order_id, revision)
    );",
];

/// The schema version this code writes.
pub(super) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

impl PostgresStore {
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

    /// With automatic migration off: the schema must be at the version this code writes.
    pub(super) async fn check_version(&self) -> Result<(), StoreError> {
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

    /// Creates the schema if it is missing and applies the migrations it lacks.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
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
    pub(super) async fn schema_version(
        &self,
        client: &impl GenericClient,
    ) -> Result<i32, StoreError> {
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
}
