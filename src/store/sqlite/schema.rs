//! The schema and its migrations.

use std::path::Path;

use rusqlite::{Connection, params};

use super::errors::sql_error;
use crate::execution::OrderState;
use crate::journey::StepRow;
use crate::store::codec;
use crate::store::{StoreError, StoreErrorKind, wake_key};

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
    // Rows per part: the order's row with its document, a binary row per execution, a
    // binary journal row per commit. The old tables are renamed (their foreign key follows)
    // and their indexes dropped, so the new ones take the names; `move_to_binary_rows`
    // moves the orders over and drops the old tables.
    "ALTER TABLE orders RENAME TO orders_v3;
    ALTER TABLE journeys RENAME TO journeys_v3;
    DROP INDEX orders_live;
    DROP INDEX orders_next_wake;
    DROP INDEX orders_completed;
    CREATE TABLE orders (
        id TEXT PRIMARY KEY NOT NULL,
        revision INTEGER NOT NULL,
        document TEXT NOT NULL,
        resume_at INTEGER,
        live INTEGER NOT NULL,
        next_wake INTEGER,
        completed_at INTEGER
    );
    CREATE INDEX orders_live ON orders (id) WHERE live = 1;
    CREATE INDEX orders_next_wake ON orders (next_wake, id) WHERE next_wake IS NOT NULL;
    CREATE INDEX orders_completed ON orders (completed_at) WHERE completed_at IS NOT NULL;
    CREATE TABLE executions (
        order_id TEXT NOT NULL REFERENCES orders (id),
        seq INTEGER NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (order_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE journal (
        order_id TEXT NOT NULL REFERENCES orders (id),
        revision INTEGER NOT NULL,
        entries BLOB NOT NULL,
        PRIMARY KEY (order_id, revision)
    ) WITHOUT ROWID;",
];

/// The migration after which `backfill_completion` runs, in the same transaction.
const COMPLETION_MIGRATION: i64 = 3;
/// The migration after which `move_to_binary_rows` runs, in the same transaction.
const BINARY_ROWS_MIGRATION: i64 = 4;

/// The schema version this code writes.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version of a file, after checking it is a database of this crate's or empty.
pub(super) fn schema_version(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
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
pub(super) fn check_schema(conn: &Connection, path: &Path) -> Result<(), StoreError> {
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
pub(super) fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut version = schema_version(conn, path)?;
    while version < SCHEMA_VERSION {
        let next = version + 1;
        let sql = MIGRATIONS[(next - 1) as usize];
        let result = conn
            .execute_batch(&format!("BEGIN IMMEDIATE; {sql}"))
            .and_then(|()| match next {
                COMPLETION_MIGRATION => backfill_completion(conn),
                BINARY_ROWS_MIGRATION => move_to_binary_rows(conn),
                _ => Ok(()),
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
pub(super) fn backfill_completion(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT id, state FROM orders WHERE live = 0")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE orders SET completed_at = ?2 WHERE id = ?1")?;
    for (id, state) in rows {
        if let Ok(state) = OrderState::from_json(&state) {
            update.execute(params![id, state.completed_at().map(wake_key)])?;
        }
    }
    Ok(())
}

/// Moves the orders of schema 3 (`orders_v3`: the whole state as JSON; `journeys_v3`: a JSON
/// row per step) to the rows of schema 4, then drops the old tables. Each order's timeline
/// and journey become one journal row at its revision. A state that does not decode is moved
/// as it is, its text as the document, so loading it still fails as before (and the engine
/// sets it aside); its journey rows that decode are kept.
pub(super) fn move_to_binary_rows(conn: &Connection) -> rusqlite::Result<()> {
    let unencodable = |e: postcard::Error| rusqlite::Error::ToSqlConversionFailure(Box::new(e));
    let mut orders = conn.prepare(
        "SELECT id, revision, state, live, next_wake, completed_at FROM orders_v3 ORDER BY id",
    )?;
    let mut journeys =
        conn.prepare("SELECT json FROM journeys_v3 WHERE order_id = ?1 ORDER BY seq")?;
    let mut insert_order = conn.prepare(
        "INSERT INTO orders (id, revision, document, resume_at, live, next_wake, completed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut insert_execution =
        conn.prepare("INSERT INTO executions (order_id, seq, state) VALUES (?1, ?2, ?3)")?;
    let mut insert_journal =
        conn.prepare("INSERT INTO journal (order_id, revision, entries) VALUES (?1, ?2, ?3)")?;
    let mut rows = orders.query([])?;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let revision: i64 = row.get(1)?;
        let text: String = row.get(2)?;
        let (live, next_wake, completed_at): (bool, Option<i64>, Option<i64>) =
            (row.get(3)?, row.get(4)?, row.get(5)?);
        let steps: Vec<StepRow> = journeys
            .query_map([&id], |r| r.get::<_, String>(0))?
            .filter_map(|json| json.ok().and_then(|j| StepRow::from_json(&j).ok()))
            .collect();
        let state = OrderState::from_json(&text).ok();
        let (document, resume_at, timeline) = match &state {
            Some(state) => (
                serde_json::to_string(&*state.order)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
                state.resume_at.map(wake_key),
                &state.timeline[..],
            ),
            None => (text.clone(), None, &[][..]),
        };
        insert_order.execute(params![
            id,
            revision,
            document,
            resume_at,
            live,
            next_wake,
            completed_at
        ])?;
        for execution in state.iter().flat_map(|s| &s.executions) {
            let row = codec::encode_execution(execution).map_err(unencodable)?;
            insert_execution.execute(params![id, execution.id.seq, row])?;
        }
        if let Some(entries) = codec::encode_journal(timeline, &steps).map_err(unencodable)? {
            insert_journal.execute(params![id, revision, entries])?;
        }
    }
    drop(rows);
    conn.execute_batch("DROP TABLE journeys_v3; DROP TABLE orders_v3;")
}
