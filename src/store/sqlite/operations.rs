//! The [`Store`] operations of [`SqliteStore`].

use std::path::Path;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use futures::channel::oneshot;
use rusqlite::types::ToSql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use semver::Version;
use serde::de::DeserializeOwned;

use super::errors::{decode, encode, sql_error};
use super::{SqliteStore, orders};
use crate::clock::Timestamp;
use crate::document::OrderId;
use crate::execution::OrderState;
use crate::flow::Flow;
use crate::journey::StepRow;
use crate::rules::{PolicyDocument, PolicyRecord};
use crate::store::{
    ChangeSet, SetAside, Store, StoreError, StoreErrorKind, Unreadable, wake_key, wake_time,
};

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
        self.settle_order(order).await?;
        let id = order.as_str().to_owned();
        let rows = self
            .read(move |conn, path| orders::read_order(conn, path, &id))
            .await?;
        rows.map(|rows| rows.decode(&self.path, order)).transpose()
    }

    async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
        let encoded = orders::Encoded::new(&self.path, &change)?;
        self.write_order(&change.order, move |conn, path| encoded.write(conn, path))
            .await
    }

    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        let id = order.as_str().to_owned();
        let journal = self
            .read(move |conn, path| orders::read_journal(conn, path, &id))
            .await?;
        orders::decode_journey(&self.path, order, journal)
    }

    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        self.settle_orders().await?;
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
        self.settle_orders().await?;
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

    /// Deletes the orders with their executions and journal rows in one transaction (through the
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
                let mut journal = conn
                    .prepare_cached("DELETE FROM journal WHERE order_id = ?1")
                    .map_err(sql)?;
                let mut executions = conn
                    .prepare_cached("DELETE FROM executions WHERE order_id = ?1")
                    .map_err(sql)?;
                let mut orders = conn
                    .prepare_cached("DELETE FROM orders WHERE id = ?1")
                    .map_err(sql)?;
                for id in &ids {
                    journal.execute([id]).map_err(sql)?;
                    executions.execute([id]).map_err(sql)?;
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
        self.settle_orders().await?;
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
