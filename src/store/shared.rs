//! Work sharing: a store that many engine instances share, with events queued in it and
//! orders claimed under leases.
//!
//! One engine per store needs none of this: [`Engine::submit`](crate::Engine::submit) runs
//! an order in the calling instance. When several instances of a service share one
//! database, each event is instead *queued* in the store
//! ([`Engine::enqueue`](crate::Engine::enqueue)), and every instance runs a worker
//! ([`Engine::run_worker`](crate::Engine::run_worker)) that claims orders with work to do,
//! runs them to quiescence and releases them. The protocol, which a [`SharedStore`]
//! implements:
//!
//! - **Ready orders.** An order is ready when it has queued events, or when its earliest
//!   durable timer ([`OrderState::next_wake`](crate::execution::OrderState::next_wake)) is
//!   due; an order whose last holder died is ready again once the lease runs out. Orders
//!   with nothing to do take no room in the store's work list, so claiming stays as fast
//!   with a million completed orders as with none.
//! - **Leases.** [`claim`](SharedStore::claim) takes up to `limit` ready orders that no live
//!   lease holds, each with a lease of the given length measured on the *store's* clock (the
//!   database's, for PostgreSQL), and a fencing token larger than any given before.
//! - **Fencing.** While a store holds a lease on an order, every [`commit`](super::Store::commit)
//!   it makes to that order checks that the lease's token is still the order's current one,
//!   and extends the lease; a commit after another instance took the order over fails with
//!   [`LeaseLost`](super::StoreErrorKind::LeaseLost) and writes nothing. So an instance
//!   paused past its lease (a long garbage-collection pause, a stopped process, a partition)
//!   cannot overwrite what its successor did.
//! - **Inbox.** [`enqueue`](SharedStore::enqueue) adds an event to its order's inbox and
//!   makes the order ready, in one transaction. The holder reads the inbox
//!   ([`inbox`](SharedStore::inbox)) oldest first and removes each event once the engine has
//!   committed it ([`consume`](SharedStore::consume)); an event removed late (a crash in
//!   between) is delivered again and ignored as a duplicate, since the order's timeline
//!   keeps every event id. An event that can never be processed (an unknown order with no
//!   document) moves to the store's dead letters with the reason, rather than being lost
//!   or retried forever.
//! - **Release.** [`release`](SharedStore::release) gives the order back: ready again at
//!   once if events arrived meanwhile, ready at its next timer if it has one, and out of the
//!   work list otherwise.
//!
//! [`SharedMemoryStore`] implements it in memory, for tests and for several engines in one
//! process; `PostgresStore` (feature `postgres`) implements it on PostgreSQL.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use semver::Version;

use super::{ChangeSet, MemoryStore, SetAside, Store, StoreError, StoreErrorKind};
use crate::clock::{Clock, Timestamp};
use crate::document::OrderId;
use crate::event::Event;
use crate::execution::OrderState;
use crate::flow::Flow;
use crate::journey::StepRow;
use crate::rules::{PolicyDocument, PolicyRecord};

/// A claim on one order: its id and the fencing token it was granted with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Lease {
    /// The claimed order.
    pub order: OrderId,
    /// The fencing token: larger than that of every earlier claim of any order in the
    /// store.
    pub fence: u64,
}

impl Lease {
    /// A lease on `order` with token `fence`.
    pub fn new(order: OrderId, fence: u64) -> Self {
        Self { order, fence }
    }
}

/// An event waiting in an order's inbox.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Queued {
    /// Its place in the store's queue: later events have larger numbers.
    pub seq: u64,
    /// The event.
    pub event: Event,
}

/// An event that could not be processed, with the reason.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The event.
    pub event: Event,
    /// Why it was set aside.
    pub reason: String,
}

/// A [`Store`] that engine instances share: events queue in it, and instances claim orders
/// under leases with fencing tokens. See the [module docs](self) for the protocol.
#[async_trait]
pub trait SharedStore: Store {
    /// Adds `event` to its order's inbox and makes the order ready, atomically, and wakes
    /// idle instances.
    async fn enqueue(&self, event: &Event) -> Result<(), StoreError>;

    /// Claims up to `limit` ready orders — queued events, a durable timer due at `now`
    /// (the engine's clock), or a lapsed lease — each for `lease` on the store's clock.
    /// The store remembers its leases: commits to a claimed order are fenced until
    /// [`release`](Self::release).
    async fn claim(
        &self,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Lease>, StoreError>;

    /// Up to `limit` of the order's queued events, oldest first.
    ///
    /// # Errors
    ///
    /// [`LeaseLost`](StoreErrorKind::LeaseLost) when the lease is no longer current.
    async fn inbox(&self, lease: &Lease, limit: usize) -> Result<Vec<Queued>, StoreError>;

    /// Removes a queued event: processed, or, with a `failure` reason, moved to the dead
    /// letters.
    ///
    /// # Errors
    ///
    /// [`LeaseLost`](StoreErrorKind::LeaseLost) when the lease is no longer current.
    async fn consume(
        &self,
        lease: &Lease,
        seq: u64,
        failure: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Gives a claimed order back: ready at once if its inbox is not empty, at its next
    /// durable timer if it has one, out of the work list otherwise. The store forgets the
    /// lease whatever the outcome.
    ///
    /// # Errors
    ///
    /// [`LeaseLost`](StoreErrorKind::LeaseLost) when the lease is no longer current.
    async fn release(&self, lease: &Lease) -> Result<(), StoreError>;

    /// Events set aside for an order, oldest first.
    async fn dead_letters(&self, order: &OrderId) -> Result<Vec<DeadLetter>, StoreError>;

    /// Makes an order ready now, as a queued event would, without queueing one (an order
    /// set aside stays out of claims all the same): what resuming a paused flow and
    /// restoring a set-aside order need, so that whichever instance claims the order next
    /// runs what it has pending. An order with nothing pending leaves the work list at its
    /// next release.
    async fn wake(&self, order: &OrderId) -> Result<(), StoreError>;

    /// Resolves when work may have arrived (an event was queued by any instance). A store
    /// that cannot tell never resolves; workers poll as well.
    async fn work_arrived(&self);

    /// Housekeeping that keeps claims fast as work churns through the store (a database
    /// vacuums its work list and inbox). Workers call it every
    /// [`WorkConfig::maintenance`](crate::engine::WorkConfig::maintenance); concurrent
    /// calls from several instances must be harmless.
    async fn maintain(&self) -> Result<(), StoreError>;
}

macro_rules! forward_shared {
    ($($ptr:ident),*) => {$(
        #[async_trait]
        impl<S: SharedStore + ?Sized> SharedStore for $ptr<S> {
            async fn enqueue(&self, event: &Event) -> Result<(), StoreError> {
                (**self).enqueue(event).await
            }
            async fn claim(
                &self,
                now: Timestamp,
                limit: usize,
                lease: Duration,
            ) -> Result<Vec<Lease>, StoreError> {
                (**self).claim(now, limit, lease).await
            }
            async fn inbox(&self, lease: &Lease, limit: usize) -> Result<Vec<Queued>, StoreError> {
                (**self).inbox(lease, limit).await
            }
            async fn consume(
                &self,
                lease: &Lease,
                seq: u64,
                failure: Option<&str>,
            ) -> Result<(), StoreError> {
                (**self).consume(lease, seq, failure).await
            }
            async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
                (**self).release(lease).await
            }
            async fn dead_letters(&self, order: &OrderId) -> Result<Vec<DeadLetter>, StoreError> {
                (**self).dead_letters(order).await
            }
            async fn wake(&self, order: &OrderId) -> Result<(), StoreError> {
                (**self).wake(order).await
            }
            async fn work_arrived(&self) {
                (**self).work_arrived().await
            }
            async fn maintain(&self) -> Result<(), StoreError> {
                (**self).maintain().await
            }
        }
    )*};
}

forward_shared!(Arc, Box);

/// The error for a lease that is no longer current.
pub(crate) fn lease_lost(lease: &Lease) -> StoreError {
    StoreError::new(
        StoreErrorKind::LeaseLost,
        format!(
            "the lease on order {} (fencing token {}) is no longer current: another instance \
             took the order over",
            lease.order, lease.fence
        ),
    )
}

/// Wakes the workers of a store when work arrives: a generation counter and the wakers of
/// those waiting. Each waiter remembers the generation it last saw, so a wake-up between two
/// waits is not lost.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    generation: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl Wakeup {
    /// Wakes every waiter.
    pub(crate) fn notify(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let wakers =
            std::mem::take(&mut *self.wakers.lock().unwrap_or_else(PoisonError::into_inner));
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves once the generation differs from `seen`, and records it there.
    pub(crate) async fn wait(&self, seen: &AtomicU64) {
        futures::future::poll_fn(|cx| {
            let current = self.generation.load(Ordering::Acquire);
            if current != seen.load(Ordering::Acquire) {
                seen.store(current, Ordering::Release);
                return Poll::Ready(());
            }
            {
                let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
            }
            // A notify between the first look and the registration is seen here.
            let current = self.generation.load(Ordering::Acquire);
            if current != seen.load(Ordering::Acquire) {
                seen.store(current, Ordering::Release);
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// A [`SharedStore`] in memory: a [`MemoryStore`] with an inbox, a work list and leases on
/// an injected clock, for several engines in one process and for testing the protocol
/// (leases run out when a [`ManualClock`](crate::ManualClock) is advanced).
///
/// Each engine gets its own [`handle`](Self::handle), which holds that engine's leases, as
/// each process's connection to a database would; handles see the same data.
///
/// ```
/// use std::time::Duration;
/// use orderflow::store::{SharedMemoryStore, SharedStore, StoreErrorKind};
/// use orderflow::{Event, ManualClock, Order, Timestamp};
///
/// # futures::executor::block_on(async {
/// let clock = ManualClock::new(Timestamp(0));
/// let first = SharedMemoryStore::new(clock.clone());
/// let second = first.handle();
/// first.enqueue(&Event::new_order(Order::new("SO-1"))).await?;
///
/// let lease = first.claim(Timestamp(0), 10, Duration::from_secs(30)).await?.remove(0);
/// // Held: the other instance finds nothing to claim.
/// assert!(second.claim(Timestamp(0), 10, Duration::from_secs(30)).await?.is_empty());
///
/// // The first instance stalls past its lease; the second takes the order over.
/// clock.advance(Duration::from_secs(31));
/// let taken = second.claim(Timestamp(0), 10, Duration::from_secs(30)).await?.remove(0);
/// assert!(taken.fence > lease.fence);
/// // The first one's writes are fenced off.
/// let err = first.release(&lease).await.unwrap_err();
/// assert_eq!(err.kind(), StoreErrorKind::LeaseLost);
/// # Ok::<(), orderflow::store::StoreError>(())
/// # }).unwrap();
/// ```
pub struct SharedMemoryStore {
    shared: Arc<Shared>,
    /// This handle's leases: order → fencing token.
    held: Mutex<HashMap<OrderId, u64>>,
    /// The wake-up generation this handle last saw.
    seen: AtomicU64,
}

struct Shared {
    store: MemoryStore,
    clock: Arc<dyn Clock>,
    /// Asynchronous, so a fenced commit holds it across the memory store's commit.
    queue: futures::lock::Mutex<Queue>,
    arrived: Wakeup,
}

#[derive(Default)]
struct Queue {
    /// Orders with work, and their claim state.
    work: HashMap<OrderId, Work>,
    /// Queued events by order, then by sequence number.
    inbox: HashMap<OrderId, BTreeMap<u64, Event>>,
    queued: usize,
    next_seq: u64,
    next_fence: u64,
    dead: Vec<(OrderId, DeadLetter)>,
}

#[derive(Debug, Clone, Copy)]
struct Work {
    /// When it is ready, on the engines' clock: `Timestamp(0)` for queued events.
    ready_at: Timestamp,
    /// The sequence number of its oldest queued event: among ready orders, the one waiting
    /// longest is claimed first (and so is an order whose holder died).
    queued: Option<u64>,
    /// The current lease: its token, when it runs out on the store's clock, and its length.
    lease: Option<(u64, Timestamp, Duration)>,
    /// Woken ([`SharedStore::wake`]) since it was last claimed: ready again at release even
    /// with nothing queued, since its holder may have run it before the wake-up's cause.
    woken: bool,
}

impl fmt::Debug for SharedMemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SharedMemoryStore");
        out.field("orders", &self.shared.store.order_count());
        if let Some(queue) = self.shared.queue.try_lock() {
            out.field("work", &queue.work.len())
                .field("queued", &queue.queued);
        }
        out.field("held", &self.held().len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    async fn lock(&self) -> futures::lock::MutexGuard<'_, Queue> {
        self.queue.lock().await
    }
}

impl SharedMemoryStore {
    /// An empty store whose leases run on `clock`.
    pub fn new(clock: impl Clock) -> Self {
        Self::from_shared(Arc::new(Shared {
            store: MemoryStore::new(),
            clock: Arc::new(clock),
            queue: futures::lock::Mutex::new(Queue::default()),
            arrived: Wakeup::default(),
        }))
    }

    fn from_shared(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            held: Mutex::new(HashMap::new()),
            seen: AtomicU64::new(0),
        }
    }

    /// Another handle on the same data, holding no leases: one per engine instance.
    pub fn handle(&self) -> Self {
        Self::from_shared(self.shared.clone())
    }

    /// How many events are queued, in all inboxes.
    pub async fn queued(&self) -> usize {
        self.shared.lock().await.queued
    }

    /// How many orders are in the work list (ready, waiting for a timer, or claimed).
    pub async fn work_len(&self) -> usize {
        self.shared.lock().await.work.len()
    }

    fn held(&self) -> MutexGuard<'_, HashMap<OrderId, u64>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The order's work entry, if `lease` is its current claim.
    fn current<'q>(queue: &'q mut Queue, lease: &Lease) -> Result<&'q mut Work, StoreError> {
        match queue.work.get_mut(&lease.order) {
            Some(w) if w.lease.is_some_and(|(fence, ..)| fence == lease.fence) => Ok(w),
            _ => Err(lease_lost(lease)),
        }
    }
}

#[async_trait]
impl Store for SharedMemoryStore {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        self.shared.store.flows().await
    }
    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
        self.shared.store.save_flow(flow, frozen).await
    }
    async fn flow_version(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<Flow>, StoreError> {
        self.shared.store.flow_version(name, version).await
    }
    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.shared.store.policies().await
    }
    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError> {
        self.shared.store.save_policy(record, published).await
    }
    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError> {
        self.shared.store.policy_version(name, version).await
    }
    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
        self.shared.store.load(order).await
    }

    async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
        let fence = self.held().get(&change.order).copied();
        let Some(fence) = fence else {
            return self.shared.store.commit(change).await;
        };
        let lease = Lease::new(change.order.clone(), fence);
        // The queue stays locked across the write, so no claim comes between the fence
        // check and the commit.
        let mut queue = self.shared.lock().await;
        let work = Self::current(&mut queue, &lease)?;
        self.shared.store.commit(change).await?;
        if let Some((_, until, length)) = &mut work.lease {
            *until = self.shared.clock.now().after(*length);
        }
        Ok(())
    }

    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        self.shared.store.journey(order).await
    }
    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        self.shared.store.live_orders().await
    }
    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        self.shared.store.due(now, limit).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.shared.store.next_due().await
    }
    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        self.shared.store.catalog_revision().await
    }
    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        self.shared.store.set_aside(order, reason).await
    }
    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
        self.shared.store.set_aside_orders().await
    }
    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
        if !self.shared.store.restore(order).await? {
            return Ok(false);
        }
        self.wake(order).await?;
        Ok(true)
    }

    /// Orders in the work list (queued events, a timer, a lease) stay; the dead letters of
    /// those removed go with them. The queue stays locked throughout, so no claim or
    /// enqueue comes between the check and the removal.
    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        let mut queue = self.shared.lock().await;
        let purged = self
            .shared
            .store
            .purge_except(completed_before, limit, |id| queue.work.contains_key(id));
        if !purged.is_empty() && !queue.dead.is_empty() {
            let gone: std::collections::HashSet<&OrderId> = purged.iter().collect();
            queue.dead.retain(|(id, _)| !gone.contains(id));
            if queue.dead.len() < queue.dead.capacity() / 4 {
                queue.dead.shrink_to_fit();
            }
        }
        Ok(purged)
    }
}

#[async_trait]
impl SharedStore for SharedMemoryStore {
    async fn enqueue(&self, event: &Event) -> Result<(), StoreError> {
        {
            let mut queue = self.shared.lock().await;
            let seq = queue.next_seq;
            queue.next_seq += 1;
            queue.queued += 1;
            queue
                .inbox
                .entry(event.order.clone())
                .or_default()
                .insert(seq, event.clone());
            let work = queue.work.entry(event.order.clone()).or_insert(Work {
                ready_at: Timestamp(0),
                queued: Some(seq),
                lease: None,
                woken: false,
            });
            work.ready_at = Timestamp(0);
            work.queued = Some(work.queued.map_or(seq, |q| q.min(seq)));
        }
        self.shared.arrived.notify();
        Ok(())
    }

    async fn claim(
        &self,
        now: Timestamp,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Lease>, StoreError> {
        let store_now = self.shared.clock.now();
        let mut queue = self.shared.lock().await;
        let mut ready: Vec<(Timestamp, Option<u64>, OrderId)> = queue
            .work
            .iter()
            .filter(|(id, w)| {
                w.ready_at <= now
                    && w.lease.is_none_or(|(_, until, _)| until <= store_now)
                    && !self.shared.store.is_aside(id)
            })
            .map(|(id, w)| (w.ready_at, w.queued, id.clone()))
            .collect();
        ready.sort();
        ready.truncate(limit);
        let mut claimed = Vec::with_capacity(ready.len());
        let mut held = self.held();
        for (.., order) in ready {
            queue.next_fence += 1;
            let fence = queue.next_fence;
            if let Some(w) = queue.work.get_mut(&order) {
                w.lease = Some((fence, store_now.after(lease), lease));
                w.woken = false;
            }
            held.insert(order.clone(), fence);
            claimed.push(Lease::new(order, fence));
        }
        Ok(claimed)
    }

    async fn inbox(&self, lease: &Lease, limit: usize) -> Result<Vec<Queued>, StoreError> {
        let mut queue = self.shared.lock().await;
        Self::current(&mut queue, lease)?;
        Ok(queue
            .inbox
            .get(&lease.order)
            .into_iter()
            .flatten()
            .take(limit)
            .map(|(&seq, event)| Queued {
                seq,
                event: event.clone(),
            })
            .collect())
    }

    async fn consume(
        &self,
        lease: &Lease,
        seq: u64,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut queue = self.shared.lock().await;
        Self::current(&mut queue, lease)?;
        let removed = queue
            .inbox
            .get_mut(&lease.order)
            .and_then(|q| q.remove(&seq));
        if let Some(event) = removed {
            queue.queued -= 1;
            if queue
                .inbox
                .get(&lease.order)
                .is_some_and(BTreeMap::is_empty)
            {
                queue.inbox.remove(&lease.order);
            }
            {
                if let Some(reason) = failure {
                    queue.dead.push((
                        lease.order.clone(),
                        DeadLetter {
                            event,
                            reason: reason.to_owned(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
        self.held().remove(&lease.order);
        let next_wake = self.shared.store.next_wake(&lease.order);
        let mut queue = self.shared.lock().await;
        Self::current(&mut queue, lease)?;
        let first = queue
            .inbox
            .get(&lease.order)
            .and_then(|q| q.keys().next().copied());
        let woken = Self::current(&mut queue, lease)?.woken;
        let pending = first.is_some() || woken;
        if pending || next_wake.is_some() {
            let work = Self::current(&mut queue, lease)?;
            work.lease = None;
            work.queued = first;
            work.ready_at = if pending {
                Timestamp(0)
            } else {
                next_wake.unwrap_or(Timestamp(0))
            };
        } else {
            queue.work.remove(&lease.order);
        }
        Ok(())
    }

    async fn dead_letters(&self, order: &OrderId) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self
            .shared
            .lock()
            .await
            .dead
            .iter()
            .filter(|(id, _)| id == order)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn wake(&self, order: &OrderId) -> Result<(), StoreError> {
        {
            let mut queue = self.shared.lock().await;
            let work = queue.work.entry(order.clone()).or_insert(Work {
                ready_at: Timestamp(0),
                queued: None,
                lease: None,
                woken: true,
            });
            work.ready_at = Timestamp(0);
            work.woken = true;
        }
        self.shared.arrived.notify();
        Ok(())
    }

    async fn work_arrived(&self) {
        self.shared.arrived.wait(&self.seen).await;
    }

    /// Nothing to do: the memory store's work list holds exactly the pending work.
    async fn maintain(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
