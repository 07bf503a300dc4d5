//! The order rows: the order's own row (the document as JSON text, the revision, the resume
//! timer and the indexes), one binary row per execution and one binary journal row per
//! commit (see [`codec`](crate::store::codec)).

use std::path::Path;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

use super::errors::{decode, encode, sql_error};
use crate::document::{Order, OrderId};
use crate::execution::OrderState;
use crate::journey::StepRow;
use crate::store::codec::{self, CodecError};
use crate::store::{ChangeSet, StoreError, StoreErrorKind, wake_key, wake_time};

/// A commit, encoded on the caller's thread for the writer's.
pub(super) struct Encoded {
    id: String,
    expected: Option<i64>,
    revision: i64,
    document: Option<String>,
    resume_at: Option<i64>,
    live: bool,
    next_wake: Option<i64>,
    completed_at: Option<i64>,
    executions: Vec<(i64, Vec<u8>)>,
    journal: Option<Vec<u8>>,
}

impl Encoded {
    /// Encodes `change`: its document as JSON text, its executions and journal as binary
    /// rows.
    pub(super) fn new(path: &Path, change: &ChangeSet) -> Result<Self, StoreError> {
        let id = change.order.as_str();
        let unwritable = |what: &str, e: postcard::Error| {
            StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "{what} of order '{id}' cannot be written to {}: {e}",
                    path.display()
                ),
            )
            .with_source(e)
        };
        let document = change
            .document
            .as_deref()
            .map(|doc| encode(path, "order", id, doc))
            .transpose()?;
        let executions = change
            .executions
            .iter()
            .map(|e| {
                codec::encode_execution(e)
                    .map(|row| (i64::from(e.id.seq), row))
                    .map_err(|err| unwritable("an execution", err))
            })
            .collect::<Result<_, _>>()?;
        let journal = codec::encode_journal(&change.timeline, &change.journey)
            .map_err(|e| unwritable("the journal", e))?;
        // Revisions are compared for equality only: any u64 round-trips through i64.
        Ok(Self {
            id: id.to_owned(),
            expected: change.expected.map(|r| r as i64),
            revision: change.revision as i64,
            document,
            resume_at: change.resume_at.map(wake_key),
            live: change.live,
            next_wake: change.next_wake.map(wake_key),
            completed_at: change.completed_at.map(wake_key),
            executions,
            journal,
        })
    }

    /// Writes the commit: the order's row if it is at the expected revision (else
    /// [`Conflict`](StoreErrorKind::Conflict), and nothing is written), then the changed
    /// executions and the journal row. Runs inside the writer's savepoint.
    pub(super) fn write(self, conn: &Connection, path: &Path) -> Result<(), StoreError> {
        let sql = |e| sql_error(path, "committing an order", e);
        let Self {
            id,
            expected,
            revision,
            document,
            resume_at,
            live,
            next_wake,
            completed_at,
            executions,
            journal,
        } = self;
        let changed = match (expected, &document) {
            (None, None) => {
                return Err(StoreError::new(
                    StoreErrorKind::Refused,
                    format!("order {id} is new, and the commit creating it carries no document"),
                ));
            }
            (None, Some(document)) => conn
                .prepare_cached(
                    "INSERT INTO orders
                         (id, revision, document, resume_at, live, next_wake, completed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        revision,
                        document,
                        resume_at,
                        live,
                        next_wake,
                        completed_at
                    ])
                }),
            (Some(expected), _) => conn
                .prepare_cached(
                    "UPDATE orders SET revision = ?2, document = COALESCE(?3, document),
                         resume_at = ?4, live = ?5, next_wake = ?6, completed_at = ?7
                     WHERE id = ?1 AND revision = ?8",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        revision,
                        document,
                        resume_at,
                        live,
                        next_wake,
                        completed_at,
                        expected
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
        if !executions.is_empty() {
            let mut upsert = conn
                .prepare_cached(
                    "INSERT INTO executions (order_id, seq, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (order_id, seq) DO UPDATE SET state = excluded.state",
                )
                .map_err(sql)?;
            for (seq, state) in &executions {
                upsert.execute(params![id, seq, state]).map_err(sql)?;
            }
        }
        if let Some(entries) = journal {
            conn.prepare_cached(
                "INSERT INTO journal (order_id, revision, entries) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![id, revision, entries]))
            .map_err(sql)?;
        }
        Ok(())
    }
}

/// An order's rows, read in one read transaction, decoded on the caller's thread.
pub(super) struct Rows {
    revision: i64,
    document: String,
    resume_at: Option<i64>,
    executions: Vec<(i64, Vec<u8>)>,
    journal: Vec<(i64, Vec<u8>)>,
}

/// Reads an order's rows, all from one snapshot.
pub(super) fn read_order(
    conn: &Connection,
    path: &Path,
    id: &str,
) -> Result<Option<Rows>, StoreError> {
    let sql = |e| sql_error(path, "loading an order", e);
    let tx = conn.unchecked_transaction().map_err(sql)?;
    let order = tx
        .prepare_cached("SELECT revision, document, resume_at FROM orders WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()
        })
        .map_err(sql)?;
    let Some((revision, document, resume_at)) = order else {
        return Ok(None);
    };
    let executions = tx
        .prepare_cached("SELECT seq, state FROM executions WHERE order_id = ?1 ORDER BY seq")
        .and_then(|mut s| {
            s.query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .map_err(sql)?;
    let journal = read_journal(&tx, path, id)?;
    tx.finish().map_err(sql)?;
    Ok(Some(Rows {
        revision,
        document,
        resume_at,
        executions,
        journal,
    }))
}

/// Reads an order's journal rows, `(revision, entries)`, in commit order.
pub(super) fn read_journal(
    conn: &Connection,
    path: &Path,
    id: &str,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    conn.prepare_cached(
        "SELECT revision, entries FROM journal WHERE order_id = ?1 ORDER BY revision",
    )
    .and_then(|mut s| {
        s.query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect()
    })
    .map_err(|e| sql_error(path, "reading a journal", e))
}

/// The error for a binary row that does not decode, naming the order and the row.
fn unreadable(path: &Path, order: &OrderId, row: &str, e: CodecError) -> StoreError {
    StoreError::new(
        StoreErrorKind::Corrupt,
        format!(
            "SQLite database {}: {row} of order {order} does not decode: {e}",
            path.display()
        ),
    )
    .with_source(e)
}

impl Rows {
    /// The order's state.
    pub(super) fn decode(self, path: &Path, order: &OrderId) -> Result<OrderState, StoreError> {
        let document: Order = decode(path, "loading an order's document", &self.document)?;
        let executions = self
            .executions
            .iter()
            .map(|(seq, row)| {
                codec::decode_execution(row)
                    .map_err(|e| unreadable(path, order, &format!("execution {seq}"), e))
            })
            .collect::<Result<_, _>>()?;
        let mut timeline = Vec::new();
        for (revision, row) in &self.journal {
            let entries = codec::decode_timeline(row).map_err(|e| {
                unreadable(
                    path,
                    order,
                    &format!("the journal row of revision {revision}"),
                    e,
                )
            })?;
            timeline.extend(entries);
        }
        Ok(OrderState::from_parts(
            Arc::new(document),
            self.revision as u64,
            timeline,
            executions,
            self.resume_at.map(wake_time),
        ))
    }
}

/// The journey rows of an order's journal rows, in commit order.
pub(super) fn decode_journey(
    path: &Path,
    order: &OrderId,
    journal: Vec<(i64, Vec<u8>)>,
) -> Result<Vec<StepRow>, StoreError> {
    let mut steps = Vec::new();
    for (revision, row) in journal {
        let journal = codec::decode_journal(&row).map_err(|e| {
            unreadable(
                path,
                order,
                &format!("the journal row of revision {revision}"),
                e,
            )
        })?;
        steps.extend(journal.journey);
    }
    Ok(steps)
}
