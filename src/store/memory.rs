use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use indexmap::IndexMap;
use semver::Version;

use super::{ChangeSet, SetAside, Store, StoreError, StoreErrorKind};
use crate::clock::Timestamp;
use crate::document::OrderId;
use crate::execution::OrderState;
use crate::flow::Flow;
use crate::journey::StepRow;
use crate::rules::{PolicyDocument, PolicyRecord};

/// A [`Store`] in memory: for tests, examples, and hosts that keep durability elsewhere.
///
/// Everything is lost when it is dropped. Clones are not shared; share one through an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

/// One order's state and journey, under one key.
#[derive(Debug)]
struct Stored {
    state: OrderState,
    journey: Vec<StepRow>,
    /// Its liveness and earliest timer as its last commit gave them, for `restore`.
    live: bool,
    wake: Option<Timestamp>,
    /// Its entry in the completion index.
    completed: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct Inner {
    flows: IndexMap<String, Flow>,
    versions: HashMap<(String, Version), Flow>,
    policies: IndexMap<String, PolicyRecord>,
    policy_versions: HashMap<(String, u32), PolicyDocument>,
    /// Boxed: a map's spare slots then cost a pointer each, not a whole order's state. An
    /// `IndexMap` keeps each key's hash beside it, so growing the map moves entries without
    /// hashing every order id again.
    orders: IndexMap<OrderId, Box<Stored>>,
    live: BTreeSet<OrderId>,
    /// Durable timers: (when, order), and each order's entry in it.
    timers: BTreeSet<(Timestamp, OrderId)>,
    wakes: HashMap<OrderId, Timestamp>,
    /// Raised by every catalog save.
    catalog_revision: u64,
    /// Orders set aside, oldest first: kept out of `live` and `timers`.
    aside: IndexMap<OrderId, String>,
    /// Completed orders by completion time, for retention.
    completed: BTreeSet<(Timestamp, OrderId)>,
}

impl Inner {
    /// Puts an order's liveness and timer in the indexes as its state says (set-aside
    /// orders stay out of them).
    fn index(&mut self, id: &OrderId, live: bool, wake: Option<Timestamp>) {
        if let Some(old) = self.wakes.remove(id) {
            self.timers.remove(&(old, id.clone()));
        }
        if self.aside.contains_key(id) {
            self.live.remove(id);
            return;
        }
        if live {
            self.live.insert(id.clone());
        } else {
            self.live.remove(id);
        }
        if let Some(at) = wake {
            self.wakes.insert(id.clone(), at);
            self.timers.insert((at, id.clone()));
        }
    }

    /// Removes up to `limit` orders completed before `before`, oldest first, skipping
    /// those `keep` holds on to, and gives the maps' spare room back once they are mostly
    /// empty, so memory returns to what the remaining orders need.
    fn purge(
        &mut self,
        before: Timestamp,
        limit: usize,
        mut keep: impl FnMut(&OrderId) -> bool,
    ) -> Vec<OrderId> {
        let chosen: Vec<(Timestamp, OrderId)> = self
            .completed
            .iter()
            .take_while(|(at, _)| *at < before)
            .filter(|(_, id)| !keep(id) && !self.aside.contains_key(id))
            .take(limit)
            .cloned()
            .collect();
        let mut purged = Vec::with_capacity(chosen.len());
        for key in chosen {
            self.completed.remove(&key);
            self.orders.swap_remove(&key.1);
            purged.push(key.1);
        }
        if self.orders.len() < self.orders.capacity() / 4 {
            self.orders.shrink_to_fit();
        }
        purged
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The order's earliest durable timer, from the timer index (no copy of the state).
    pub(crate) fn next_wake(&self, order: &OrderId) -> Option<Timestamp> {
        self.lock().wakes.get(order).copied()
    }

    /// Whether an order is set aside.
    pub(crate) fn is_aside(&self, order: &OrderId) -> bool {
        self.lock().aside.contains_key(order)
    }

    /// [`Store::purge`] for a store that holds other work for some orders: those `keep`
    /// names stay.
    pub(crate) fn purge_except(
        &self,
        completed_before: Timestamp,
        limit: usize,
        keep: impl FnMut(&OrderId) -> bool,
    ) -> Vec<OrderId> {
        self.lock().purge(completed_before, limit, keep)
    }

    /// How many orders it holds.
    pub fn order_count(&self) -> usize {
        self.lock().orders.len()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        Ok(self.lock().flows.values().cloned().collect())
    }

    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if frozen {
            // A frozen version never changes: the first save of it stands.
            inner
                .versions
                .entry((flow.name.clone(), flow.version.clone()))
                .or_insert_with(|| flow.clone());
        }
        inner.flows.insert(flow.name.clone(), flow.clone());
        inner.catalog_revision += 1;
        Ok(())
    }

    async fn flow_version(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<Flow>, StoreError> {
        Ok(self
            .lock()
            .versions
            .get(&(name.to_owned(), version.clone()))
            .cloned())
    }

    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        Ok(self.lock().policies.values().cloned().collect())
    }

    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if published {
            let Some(version) = record.last_published else {
                return Err(StoreError::new(
                    StoreErrorKind::Refused,
                    format!(
                        "policy '{}' is saved as published without a version",
                        record.name()
                    ),
                ));
            };
            inner
                .policy_versions
                .entry((record.name().to_owned(), version))
                .or_insert_with(|| record.document.clone());
        }
        inner
            .policies
            .insert(record.name().to_owned(), record.clone());
        inner.catalog_revision += 1;
        Ok(())
    }

    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError> {
        Ok(self
            .lock()
            .policy_versions
            .get(&(name.to_owned(), version))
            .cloned())
    }

    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
        Ok(self.lock().orders.get(order).map(|s| s.state.clone()))
    }

    async fn commit(&self, mut change: ChangeSet) -> Result<(), StoreError> {
        // Kept for the order's life: no spare capacity in what each entry holds.
        for step in &mut change.journey {
            step.details.shrink_to_fit();
            step.findings.shrink_to_fit();
        }
        let journey = std::mem::take(&mut change.journey);
        let (live, wake, completed) = (change.live, change.next_wake, change.completed_at);
        let mut inner = self.lock();
        let inner = &mut *inner;
        // One lookup of the order: its slot, or where a new one goes.
        match inner.orders.get_index_of(&change.order) {
            Some(i) => {
                let stored = &mut inner.orders[i];
                if Some(stored.state.revision) != change.expected {
                    return Err(StoreError::conflict(
                        &change.order,
                        Some(stored.state.revision),
                        change.expected,
                    ));
                }
                let (was_live, was_wake, was_completed) =
                    (stored.live, stored.wake, stored.completed);
                let id = change.order.clone();
                // A commit in the middle of a turn (it sets the resume timer) is followed by
                // more: the state is trimmed once the turn's last commit leaves it waiting.
                let settled = change.resume_at.is_none();
                stored.state.apply(change);
                if settled {
                    // Held until the next turn loads a copy: keep no spare capacity.
                    stored.state.shrink_to_fit();
                }
                stored.journey.reserve_exact(journey.len());
                stored.journey.extend(journey);
                stored.live = live;
                stored.wake = wake;
                stored.completed = completed;
                if (was_live, was_wake) != (live, wake) {
                    inner.index(&id, live, wake);
                }
                if was_completed != completed {
                    if let Some(at) = was_completed {
                        inner.completed.remove(&(at, id.clone()));
                    }
                    if let Some(at) = completed {
                        inner.completed.insert((at, id));
                    }
                }
            }
            None => {
                if change.expected.is_some() {
                    return Err(StoreError::conflict(&change.order, None, change.expected));
                }
                let id = change.order.clone();
                let change_settled = change.resume_at.is_none();
                let mut state = OrderState::created(change).ok_or_else(|| {
                    StoreError::new(
                        StoreErrorKind::Refused,
                        format!(
                            "order {id} is new, and the commit creating it carries no document"
                        ),
                    )
                })?;
                if change_settled {
                    state.shrink_to_fit();
                }
                let mut journey = journey;
                journey.shrink_to_fit();
                inner.index(&id, live, wake);
                if let Some(at) = completed {
                    inner.completed.insert((at, id.clone()));
                }
                inner.orders.insert(
                    id,
                    Box::new(Stored {
                        state,
                        journey,
                        live,
                        wake,
                        completed,
                    }),
                );
            }
        }
        Ok(())
    }

    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        Ok(self
            .lock()
            .orders
            .get(order)
            .map(|s| s.journey.clone())
            .unwrap_or_default())
    }

    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        Ok(self.lock().live.iter().cloned().collect())
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        Ok(self
            .lock()
            .timers
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.lock().timers.first().map(|(at, _)| *at))
    }

    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        Ok(self.lock().catalog_revision)
    }

    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.aside.insert(order.clone(), reason.to_owned());
        inner.index(order, false, None);
        Ok(())
    }

    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
        Ok(self
            .lock()
            .aside
            .iter()
            .map(|(order, reason)| SetAside::new(order.clone(), reason.clone()))
            .collect())
    }

    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner.aside.shift_remove(order).is_none() {
            return Ok(false);
        }
        let (live, wake) = inner
            .orders
            .get(order)
            .map_or((false, None), |s| (s.live, s.wake));
        inner.index(order, live, wake);
        Ok(true)
    }

    /// Reads the completion index (no scan of the orders).
    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        Ok(self.lock().purge(completed_before, limit, |_| false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Order;

    #[test]
    fn order_count_counts_the_orders_committed() {
        let store = MemoryStore::new();
        assert_eq!(store.order_count(), 0);
        for id in ["SO-1", "SO-2"] {
            let state = OrderState::new(Order::new(id));
            let change = ChangeSet::diff(None, &state);
            futures::executor::block_on(store.commit(change)).expect("committed");
        }
        assert_eq!(store.order_count(), 2);
    }
}
