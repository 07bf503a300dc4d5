//! One lock per order being worked on: work for one order is serialized, different orders
//! run concurrently, and the map holds only orders someone works on or waits for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::document::OrderId;

/// The locks of the orders being worked on.
#[derive(Debug, Default)]
pub(super) struct OrderLocks {
    locks: Mutex<HashMap<OrderId, Arc<futures::lock::Mutex<()>>>>,
}

impl OrderLocks {
    /// Waits for the order's lock; it is held until the guard is dropped.
    pub(super) async fn lock(&self, order: &OrderId) -> OrderGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(order.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        OrderGuard {
            locks: self,
            order: order.clone(),
            lock,
            guard: Some(guard),
        }
    }
}

/// An order's lock, held.
pub(super) struct OrderGuard<'a> {
    locks: &'a OrderLocks,
    order: OrderId,
    lock: Arc<futures::lock::Mutex<()>>,
    guard: Option<futures::lock::OwnedMutexGuard<()>>,
}

impl Drop for OrderGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self
            .locks
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map and this guard hold the only references: nobody waits for the lock.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.order);
        }
    }
}
