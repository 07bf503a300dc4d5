//! The writer thread: group commit of queued changes, each in a savepoint of one transaction.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};

use rusqlite::{Connection, TransactionBehavior};

use super::errors::sql_error;
use super::file::Watch;
use crate::document::OrderId;
use crate::store::StoreError;

/// Where a write's result goes.
pub(super) type Reply<T> = futures::channel::oneshot::Sender<Result<T, StoreError>>;
/// One write, run on the writer thread's connection.
pub(super) type WriteOp =
    Box<dyn FnOnce(&Connection, &std::path::Path) -> Result<(), StoreError> + Send>;

/// The most changes one transaction takes.
const MAX_BATCH: usize = 256;

/// One change for the writer thread and where to send its result.
pub(super) struct WriteJob {
    pub(super) op: WriteOp,
    pub(super) reply: Reply<()>,
    /// A catalog change: the catalog revision rises once its transaction commits.
    pub(super) catalog: bool,
    /// Runs outside any transaction, on its own (a checkpoint, `VACUUM`).
    pub(super) alone: bool,
    /// For an order's commit: keeps the order pending until the job is dropped, after its
    /// reply is sent.
    pub(super) pending: Option<Pending>,
}

/// The writer thread: applies queued changes in batches until the store is dropped.
pub(super) fn write_loop(
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
        let mut ops = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        // Orders stay pending until their batch has committed and they have their replies.
        let mut pending = Vec::with_capacity(batch.len());
        for job in batch {
            ops.push(job.op);
            replies.push(job.reply);
            pending.push(job.pending);
        }
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
        drop(pending);
    }
}

/// Applies changes in one transaction, each in its own savepoint, and says whether it
/// committed (it does not when every change failed). `Err` when the transaction as a whole
/// failed: then none of it is applied.
pub(super) fn apply_batch(
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

/// The orders with commits queued for the writer, and how many each.
pub(super) type PendingOrders = HashMap<OrderId, usize>;

/// An order's commit queued for the writer: counted in the store's pending orders from the
/// moment it is queued until the writer drops its job, after its batch committed (or
/// failed).
pub(super) struct Pending {
    orders: Arc<Mutex<PendingOrders>>,
    order: OrderId,
}

impl Pending {
    pub(super) fn new(orders: &Arc<Mutex<PendingOrders>>, order: &OrderId) -> Self {
        *lock(orders).entry(order.clone()).or_default() += 1;
        Self {
            orders: orders.clone(),
            order: order.clone(),
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut orders = lock(&self.orders);
        if let Some(n) = orders.get_mut(&self.order) {
            *n -= 1;
            if *n == 0 {
                orders.remove(&self.order);
            }
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
