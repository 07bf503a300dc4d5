//! Work sharing on PostgreSQL: the [`SharedStore`] operations of [`PostgresStore`], and the
//! listener for work notifications.

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::AsyncMessage;

use super::errors::pg_error;
use super::queries::quote;
use super::{PostgresStore, lock};
use crate::clock::Timestamp;
use crate::document::OrderId;
use crate::event::Event;
use crate::store::shared::{DeadLetter, Lease, Queued, SharedStore, lease_lost};
use crate::store::{Store, StoreError, wake_key};

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
    pub(super) fn channel(&self) -> String {
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
