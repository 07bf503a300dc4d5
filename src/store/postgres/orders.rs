//! The order rows: the order's own row (the document as JSON text, the revision, the resume
//! timer and the indexes), one binary row per execution and one binary journal row per
//! commit (see [`codec`](crate::store::codec)); and the move of rows stored before them.

use std::sync::Arc;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use super::errors::pg_error;
use crate::document::{Order, OrderId};
use crate::execution::OrderState;
use crate::journey::StepRow;
use crate::store::codec::{self, CodecError};
use crate::store::{ChangeSet, StoreError, StoreErrorKind, wake_key, wake_time};

/// How many orders of the old form one transaction moves.
const MOVE_BATCH: i64 = 100;

/// A commit's parameters, encoded: `$1` … `$10` of the commit statements.
pub(super) struct Encoded {
    pub(super) id: String,
    pub(super) revision: i64,
    pub(super) document: Option<String>,
    pub(super) resume_at: Option<i64>,
    pub(super) live: bool,
    pub(super) next_wake: Option<i64>,
    pub(super) completed_at: Option<i64>,
    pub(super) seqs: Vec<i64>,
    pub(super) states: Vec<Vec<u8>>,
    pub(super) journal: Option<Vec<u8>>,
}

impl Encoded {
    /// The parameters in statement order.
    pub(super) fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.id,
            &self.revision,
            &self.document,
            &self.resume_at,
            &self.live,
            &self.next_wake,
            &self.completed_at,
            &self.seqs,
            &self.states,
            &self.journal,
        ]
    }
}

impl PostgresStore {
    /// Encodes `change`: its document as JSON text, its executions and journal as binary
    /// rows.
    pub(super) fn encode_change(&self, change: &ChangeSet) -> Result<Encoded, StoreError> {
        let id = change.order.as_str();
        let unwritable = |what: &str, e: postcard::Error| {
            StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "{what} of order '{id}' cannot be written to PostgreSQL {}: {e}",
                    self.target
                ),
            )
            .with_source(e)
        };
        let document = change
            .document
            .as_deref()
            .map(|doc| self.encode("order", id, doc))
            .transpose()?;
        let mut seqs = Vec::with_capacity(change.executions.len());
        let mut states = Vec::with_capacity(change.executions.len());
        for e in &change.executions {
            seqs.push(i64::from(e.id.seq));
            states.push(codec::encode_execution(e).map_err(|err| unwritable("an execution", err))?);
        }
        let journal = codec::encode_journal(&change.timeline, &change.journey)
            .map_err(|e| unwritable("the journal", e))?;
        // Revisions are compared for equality only: any u64 round-trips through i64.
        Ok(Encoded {
            id: id.to_owned(),
            revision: change.revision as i64,
            document,
            resume_at: change.resume_at.map(wake_key),
            live: change.live,
            next_wake: change.next_wake.map(wake_key),
            completed_at: change.completed_at.map(wake_key),
            seqs,
            states,
            journal,
        })
    }

    /// The error for a binary row that does not decode, naming the order and the row.
    fn unreadable(&self, order: &OrderId, row: &str, e: CodecError) -> StoreError {
        StoreError::new(
            StoreErrorKind::Corrupt,
            format!(
                "PostgreSQL {}: {row} of order {order} does not decode: {e}",
                self.target
            ),
        )
        .with_source(e)
    }

    /// The journal rows `(revision, entries)` of a row's columns `at` and `at + 1`.
    fn journal_rows(
        &self,
        what: &str,
        row: &Row,
        at: usize,
    ) -> Result<Vec<codec::Journal>, StoreError> {
        let revisions: Vec<i64> = row.try_get(at).map_err(|e| self.corrupt(what, e))?;
        let entries: Vec<Vec<u8>> = row.try_get(at + 1).map_err(|e| self.corrupt(what, e))?;
        let order: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
        revisions
            .iter()
            .zip(&entries)
            .map(|(revision, bytes)| {
                codec::decode_journal(bytes).map_err(|e| {
                    self.unreadable(
                        &OrderId::from(order),
                        &format!("the journal row of revision {revision}"),
                        e,
                    )
                })
            })
            .collect()
    }

    /// An order's state from the row of the `load` statement: `id`, `revision`, `document`,
    /// `resume_at`, `state` (an order stored before schema 5, not moved yet), the execution
    /// `seq`s and rows, the journal revisions and rows.
    pub(super) fn decode_order(&self, row: &Row) -> Result<OrderState, StoreError> {
        let what = "loading an order";
        let corrupt = |e| self.corrupt(what, e);
        let id: &str = row.try_get(0).map_err(corrupt)?;
        let order = OrderId::from(id);
        let document: Option<&str> = row.try_get(2).map_err(corrupt)?;
        let Some(document) = document else {
            return Err(self.not_moved(&order, row.try_get(4).map_err(corrupt)?));
        };
        let document: Order = serde_json::from_str(document).map_err(|e| self.corrupt(what, e))?;
        let revision: i64 = row.try_get(1).map_err(corrupt)?;
        let resume_at: Option<i64> = row.try_get(3).map_err(corrupt)?;
        let seqs: Vec<i64> = row.try_get(5).map_err(corrupt)?;
        let states: Vec<Vec<u8>> = row.try_get(6).map_err(corrupt)?;
        let executions = seqs
            .iter()
            .zip(&states)
            .map(|(seq, bytes)| {
                codec::decode_execution(bytes)
                    .map_err(|e| self.unreadable(&order, &format!("execution {seq}"), e))
            })
            .collect::<Result<_, _>>()?;
        let timeline = self
            .journal_rows(what, row, 7)?
            .into_iter()
            .flat_map(|j| j.timeline)
            .collect();
        Ok(OrderState::from_parts(
            Arc::new(document),
            revision as u64,
            timeline,
            executions,
            resume_at.map(wake_time),
        ))
    }

    /// The error for an order still in the form of schema 4: being moved by a store that
    /// is opening (worth retrying), or a state that never decoded (a poison order).
    fn not_moved(&self, order: &OrderId, state: Option<&str>) -> StoreError {
        match state.map(OrderState::from_json) {
            Some(Ok(_)) => StoreError::new(
                StoreErrorKind::Unavailable,
                format!(
                    "PostgreSQL {}: order {order} is being moved to the rows of schema \
                     version 5 by a store that is opening; try again",
                    self.target
                ),
            ),
            Some(Err(e)) => self.corrupt(
                "loading an order stored before schema version 5",
                std::io::Error::other(e),
            ),
            None => StoreError::new(
                StoreErrorKind::Corrupt,
                format!("PostgreSQL {}: order {order} has no document", self.target),
            ),
        }
    }

    /// An order's journey from the row of the `journey` statement: the order's JSON rows
    /// from before schema 5 (kept only for an order whose state never decoded), then the
    /// journal's.
    pub(super) fn decode_journey(&self, row: &Row) -> Result<Vec<StepRow>, StoreError> {
        let what = "reading a journey";
        let old: Vec<&str> = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
        let mut steps = old
            .into_iter()
            .map(|json| {
                StepRow::from_json(json).map_err(|e| self.corrupt(what, std::io::Error::other(e)))
            })
            .collect::<Result<Vec<StepRow>, _>>()?;
        for journal in self.journal_rows(what, row, 2)? {
            steps.extend(journal.journey);
        }
        Ok(steps)
    }

    /// Moves the orders stored before schema version 5 (the whole state as JSON in
    /// `orders.state`, a JSON row per step in `journeys`) to the rows of schema 5, in
    /// batches of 100 orders per transaction, skipping rows another store is moving. A
    /// state that does not decode stays as it is: loading it fails as before, and the
    /// engine sets the order aside.
    pub(super) async fn move_to_binary_rows(&self) -> Result<(), StoreError> {
        let what = "moving orders to the rows of schema version 5";
        let sql = |e| pg_error(&self.target, what, e);
        let schema = super::queries::quote(&self.schema);
        let mut client = self.client(what).await?;
        let mut last = String::new();
        loop {
            let tx = client.transaction().await.map_err(sql)?;
            let rows = tx
                .query(
                    &format!(
                        "SELECT id, revision, state FROM {schema}.orders
                         WHERE document IS NULL AND id > $1 ORDER BY id LIMIT $2
                         FOR UPDATE SKIP LOCKED"
                    ),
                    &[&last, &MOVE_BATCH],
                )
                .await
                .map_err(sql)?;
            let Some(row) = rows.last() else {
                return tx.commit().await.map_err(sql);
            };
            last = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
            for row in &rows {
                let id: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
                let revision: i64 = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
                let state: Option<&str> = row.try_get(2).map_err(|e| self.corrupt(what, e))?;
                let Some(state) = state.and_then(|s| OrderState::from_json(s).ok()) else {
                    continue;
                };
                let steps: Vec<StepRow> = tx
                    .query(
                        &format!(
                            "SELECT json FROM {schema}.journeys WHERE order_id = $1 ORDER BY seq"
                        ),
                        &[&id],
                    )
                    .await
                    .map_err(sql)?
                    .iter()
                    .filter_map(|r| r.try_get::<_, &str>(0).ok())
                    .filter_map(|json| StepRow::from_json(json).ok())
                    .collect();
                let mut change = ChangeSet::diff(None, &state).with_journey(steps);
                change.revision = revision as u64;
                let encoded = self.encode_change(&change)?;
                tx.execute(
                    &format!(
                        "WITH o AS (
                             UPDATE {schema}.orders SET document = $2, resume_at = $3, state = NULL
                             WHERE id = $1 RETURNING id
                         ), x AS (
                             INSERT INTO {schema}.executions (order_id, seq, state)
                             SELECT o.id, e.seq, e.state
                             FROM o, unnest($4::bigint[], $5::bytea[]) AS e (seq, state)
                         ), j AS (
                             INSERT INTO {schema}.journal (order_id, revision, entries)
                             SELECT o.id, $6, $7 FROM o WHERE $7::bytea IS NOT NULL
                         )
                         DELETE FROM {schema}.journeys WHERE order_id = $1"
                    ),
                    &[
                        &encoded.id,
                        &encoded.document,
                        &encoded.resume_at,
                        &encoded.seqs,
                        &encoded.states,
                        &revision,
                        &encoded.journal,
                    ],
                )
                .await
                .map_err(sql)?;
            }
            tx.commit().await.map_err(sql)?;
        }
    }
}
