//! Recovery: resuming every live order from the store alone, and what background work
//! does with an order that cannot run (set aside, or left for the next try).

use std::sync::{Mutex, PoisonError};

use futures::StreamExt;

use super::Engine;
use super::turn;
use crate::document::{AsOrderId, OrderId};
use crate::error::{Error, Result};
use crate::store::SetAside;

/// Orders [`Engine::recover`] and [`Engine::run_due`] work on at once.
pub(super) const CONCURRENT_ORDERS: usize = 64;

/// What [`Engine::recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Orders it ran.
    pub resumed: usize,
    /// Orders it set aside, with the reasons: their stored state does not decode, or their
    /// flow cannot run here.
    pub set_aside: Vec<SetAside>,
    /// Orders it could not run this time (a passing store error), with the errors: they
    /// stay live for the next try.
    pub failed: Vec<(OrderId, String)>,
}

/// How one order's background turn went.
pub(super) enum OrderOutcome {
    Ran(bool),
    SetAside(String),
    Failed(Error),
}

impl Engine {
    /// Resumes every order with a live execution from the store: what a restarted engine
    /// does first, and what resume and stop do for queued work.
    ///
    /// One order that cannot be resumed never stops the others: an order whose stored
    /// state does not decode, or whose flow cannot run here, is set aside
    /// ([`set_aside_orders`](Self::set_aside_orders)) with the reason; one that failed on a
    /// passing store error is left for the next try. The report says which was which.
    ///
    /// # Errors
    ///
    /// Only when the store cannot list the live orders.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let orders = self.inner.store.live_orders().await?;
        let report = Mutex::new(RecoveryReport::default());
        // Orders run concurrently, so a store that groups commits shares its transactions.
        futures::stream::iter(orders)
            .for_each_concurrent(CONCURRENT_ORDERS, |order| {
                let report = &report;
                async move {
                    let outcome = self.run_order(&order, |turn| turn.run_pending()).await;
                    let mut report = report.lock().unwrap_or_else(PoisonError::into_inner);
                    match outcome {
                        OrderOutcome::Ran(true) => report.resumed += 1,
                        OrderOutcome::Ran(false) => {}
                        OrderOutcome::SetAside(reason) => {
                            report.set_aside.push(SetAside::new(order, reason));
                        }
                        OrderOutcome::Failed(e) => report.failed.push((order, e.to_string())),
                    }
                }
            })
            .await;
        Ok(report.into_inner().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs one order under its lock with `f`, handling a failure as background work
    /// does: set aside when it is the order's own, left for later otherwise.
    pub(super) async fn run_order<'a, F, Fut>(&'a self, order: &OrderId, f: F) -> OrderOutcome
    where
        F: FnOnce(turn::Turn<'a>) -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let _guard = self.inner.lock_order(order).await;
        let result = match turn::Turn::load_existing(&self.inner, order.clone()).await {
            Ok(Some(turn)) => f(turn).await,
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        match result {
            Ok(ran) => {
                self.inner.on_order_success(order);
                OrderOutcome::Ran(ran)
            }
            Err(e) => match self.inner.on_order_failure(order, &e).await {
                Some(reason) => OrderOutcome::SetAside(reason),
                None => OrderOutcome::Failed(e),
            },
        }
    }

    /// Runs recovery if a flow left the Paused status and its queued work may not have
    /// run yet (the `resume` or `stop` that did it was dropped, or it happened on another
    /// instance). Background workers call it each round.
    ///
    /// The catalog is looked at first: an instance that resumed a flow may have died
    /// between saving it and waking what queued, its own request gone with it, and
    /// nothing else may make this instance read the catalog again (the orders that
    /// queued are out of the work list, and no event need come).
    pub(super) async fn recover_if_requested(&self) -> Result<()> {
        let synced = self.inner.sync_catalog().await;
        if !self
            .inner
            .recovery
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            return synced;
        }
        if let Err(e) = self.after_unpause().await {
            self.inner
                .recovery
                .store(true, std::sync::atomic::Ordering::Release);
            return Err(e);
        }
        synced
    }

    /// The orders set aside because they could not be decoded or run, with the reasons,
    /// oldest first. Background work ([`recover`](Self::recover), the timer worker, shared
    /// workers) skips them until [`restore`](Self::restore).
    pub async fn set_aside_orders(&self) -> Result<Vec<SetAside>> {
        Ok(self.inner.store.set_aside_orders().await?)
    }

    /// Takes an order back from the set-aside list once its cause is fixed (a provider
    /// registered again, its data repaired) and runs what it has pending: here, or on a
    /// shared store by whichever instance claims it. Whether it was set aside.
    pub async fn restore(&self, order: impl AsOrderId) -> Result<bool> {
        let order = &*order.as_order_id();
        if !self.inner.store.restore(order).await? {
            return Ok(false);
        }
        if self.inner.shared.is_none() {
            let now = self.inner.clock.now();
            if let OrderOutcome::Failed(e) = self
                .run_order(order, |turn| async move {
                    if turn.state().next_wake().is_some_and(|at| at <= now) {
                        turn.run_due(now).await
                    } else {
                        turn.run_pending().await
                    }
                })
                .await
            {
                return Err(e);
            }
        }
        Ok(true)
    }
}
