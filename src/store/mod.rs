//! Durable state: flows and policies with their versions, orders with their executions and timelines, and
//! journeys.
//!
//! The store's unit is the **order**: [`Store::load`] returns everything about one order as an
//! [`OrderState`], and [`Store::commit`] applies a [`ChangeSet`] — what changed since the
//! revision it was computed from: the document if it changed, the executions that changed,
//! the timeline entries and journey rows it appends — atomically. The trait is coarse on
//! purpose, so a SQL backend needs few round trips per step, and a commit writes what
//! changed, not the whole order again. [`MemoryStore`] is always compiled; durable backends come behind features.
//!
//! # Contract
//!
//! - `commit` is atomic: after it returns `Ok`, a `load` sees the whole commit; after an error,
//!   it sees none of it or all of it, never part.
//! - `commit` applies only if the stored revision is `change.expected` (`None`: the order is
//!   not stored yet); otherwise it fails with [`StoreErrorKind::Conflict`] and changes nothing.
//! - A commit changes what it carries and nothing else, as [`OrderState::apply`] says: a
//!   document it does not carry stays; an execution it carries replaces the one with its
//!   sequence number and the others stay; its timeline entries and journey rows come after
//!   the ones already stored. The state a `load` returns is the stored one with every
//!   commit applied in order.
//! - `save_flow` with `frozen = true` also records the flow under its version, atomically with
//!   the definition; frozen versions never change (saving one again leaves it as it
//!   was). `save_policy` with `published = true` does the same for a policy's published
//!   version.
//! - `live_orders` lists exactly the orders whose last commit said they are
//!   [`live`](ChangeSet::live) (the engine computes it as [`OrderState::has_live`]).
//! - `due(now, limit)` lists the orders whose last commit's
//!   [`next_wake`](ChangeSet::next_wake) ([`OrderState::next_wake`]) is at or before `now`,
//!   earliest first; `next_due` is the earliest such time over all orders. Both follow
//!   every commit.
//! - `catalog_revision` rises with every `save_flow` and `save_policy`, atomically with
//!   it, as every process sharing the store sees it.
//! - An order [`set_aside`](Store::set_aside) is in neither `live_orders` nor `due` (nor a
//!   shared store's claims) until [`restore`](Store::restore)d; nothing else about it
//!   changes.
//! - `purge(before, limit)` removes up to `limit` *completed* orders whose last commit's
//!   [`completed_at`](ChangeSet::completed_at) ([`OrderState::completed_at`]) is earlier
//!   than `before`, oldest first, each atomically
//!   with everything the store keeps for it (journey, and for a [`SharedStore`] its dead
//!   letters), and returns their ids. Completed means no live execution and nothing
//!   pending: no durable timer and, in a shared store, no queued event and no lease. An
//!   order committed after it was read for a purge is not removed. Once removed, the id is
//!   free: a new order may take it, and the store's de-duplication of its event ids is gone
//!   with its timeline (purge only what can no longer be redelivered). Freed space goes back
//!   to a baseline: memory is released, a file store reuses or returns its pages.
//! - Errors say whether retrying may help ([`StoreError::is_retryable`]).
//!
//! [`MemoryStore`] is the reference implementation. A store can also wrap another one — a
//! decorator implementing the same trait — as this complete implementation that counts
//! commits does:
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use async_trait::async_trait;
//! use orderflow::clock::Timestamp;
//! use orderflow::document::OrderId;
//! use orderflow::execution::OrderState;
//! use orderflow::flow::Flow;
//! use orderflow::journey::StepRow;
//! use orderflow::rules::{PolicyDocument, PolicyRecord};
//! use orderflow::store::{ChangeSet, MemoryStore, SetAside, Store, StoreError, Unreadable};
//!
//! #[derive(Debug, Default)]
//! struct Counting<S> {
//!     inner: S,
//!     commits: AtomicU64,
//! }
//!
//! #[async_trait]
//! impl<S: Store> Store for Counting<S> {
//!     async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
//!         self.inner.flows().await
//!     }
//!     async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
//!         self.inner.save_flow(flow, frozen).await
//!     }
//!     async fn flow_version(&self, name: &str, version: &semver::Version)
//!         -> Result<Option<Flow>, StoreError>
//!     {
//!         self.inner.flow_version(name, version).await
//!     }
//!     async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
//!         self.inner.policies().await
//!     }
//!     async fn save_policy(&self, record: &PolicyRecord, published: bool)
//!         -> Result<(), StoreError>
//!     {
//!         self.inner.save_policy(record, published).await
//!     }
//!     async fn policy_version(&self, name: &str, version: u32)
//!         -> Result<Option<PolicyDocument>, StoreError>
//!     {
//!         self.inner.policy_version(name, version).await
//!     }
//!     async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
//!         self.inner.load(order).await
//!     }
//!     async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
//!         self.commits.fetch_add(1, Ordering::Relaxed);
//!         self.inner.commit(change).await
//!     }
//!     async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
//!         self.inner.journey(order).await
//!     }
//!     async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
//!         self.inner.live_orders().await
//!     }
//!     async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
//!         self.inner.due(now, limit).await
//!     }
//!     async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
//!         self.inner.next_due().await
//!     }
//!     async fn catalog_revision(&self) -> Result<u64, StoreError> {
//!         self.inner.catalog_revision().await
//!     }
//!     async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
//!         self.inner.read_flows().await
//!     }
//!     async fn read_policies(&self) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
//!         self.inner.read_policies().await
//!     }
//!     async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
//!         self.inner.set_aside(order, reason).await
//!     }
//!     async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
//!         self.inner.set_aside_orders().await
//!     }
//!     async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
//!         self.inner.restore(order).await
//!     }
//!     async fn purge(&self, completed_before: Timestamp, limit: usize)
//!         -> Result<Vec<OrderId>, StoreError>
//!     {
//!         self.inner.purge(completed_before, limit).await
//!     }
//! }
//!
//! # futures::executor::block_on(async {
//! let store = Counting::<MemoryStore>::default();
//! let mut state = OrderState::new(orderflow::document::Order::new("SO-1"));
//! state.set_revision(1);
//! store.commit(ChangeSet::diff(None, &state)).await?;
//! assert_eq!(store.commits.load(Ordering::Relaxed), 1);
//! assert_eq!(store.load(state.id()).await?, Some(state));
//! # Ok::<(), StoreError>(())
//! # }).unwrap();
//! ```

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod codec;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub mod shared;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use semver::Version;

use crate::clock::Timestamp;
use crate::document::{Order, OrderId};
use crate::execution::{Execution, OrderState};
use crate::flow::Flow;
use crate::journey::{StepRow, TimelineEntry};
use crate::rules::{PolicyDocument, PolicyRecord};

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresConfig, PostgresStore};
pub use shared::{DeadLetter, Lease, Queued, SharedMemoryStore, SharedStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

/// The class of a store failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The order changed since it was loaded.
    Conflict,
    /// The backend could not be reached.
    Unavailable,
    /// Stored data could not be read back.
    Corrupt,
    /// The backend refuses writes (full, read-only).
    Refused,
    /// The store's lease on the order is no longer current: another engine instance
    /// claimed it (see [`SharedStore`]). Nothing was written; the instance must drop the
    /// order.
    LeaseLost,
    /// Anything else.
    Other,
}

/// The kind in words, as [`StoreError`]'s message shows it after `store`: `conflict`,
/// `unavailable`, `corrupt`, `refused`, `lease lost`, `failed`.
impl fmt::Display for StoreErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::Corrupt => "corrupt",
            Self::Refused => "refused",
            Self::LeaseLost => "lease lost",
            Self::Other => "failed",
        })
    }
}

/// A failed store operation. Its message reads `store <kind>: <what happened>`
/// (`store unavailable: connection refused`), the kind in words.
#[derive(Debug, thiserror::Error)]
#[error("store {kind}: {message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error of a kind.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The class of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether the operation may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::Unavailable | StoreErrorKind::Conflict
        )
    }

    /// The conflict of a commit computed from revision `expected` (`None`: a new order)
    /// on an order stored at revision `stored` (`None`: not stored), in words.
    pub(crate) fn conflict(
        order: impl fmt::Display,
        stored: Option<u64>,
        expected: Option<u64>,
    ) -> Self {
        let stored = match stored {
            Some(revision) => format!("is at revision {revision}"),
            None => "is not stored".to_owned(),
        };
        let expected = match expected {
            Some(revision) => format!("revision {revision}"),
            None => "a new order".to_owned(),
        };
        Self::new(
            StoreErrorKind::Conflict,
            format!("order {order} {stored}, the commit expected {expected}"),
        )
    }
}

/// An atomic change to one order: what changed since the revision it was computed from.
///
/// A store checks `expected` against the revision it holds and then applies the change as
/// [`OrderState::apply`] says: the document if the change carries one, each execution it
/// carries in place of the stored one with the same sequence number, its timeline entries
/// and journey rows appended. What it does not carry stays as stored. The indexes
/// ([`live`](Self::live), [`next_wake`](Self::next_wake),
/// [`completed_at`](Self::completed_at)) are computed from the whole state after the
/// change, so a store that keeps rows need not rebuild it.
///
/// [`ChangeSet::diff`] computes one from two states.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChangeSet {
    /// The order.
    pub order: OrderId,
    /// The revision the change was computed from; `None` for a new order.
    pub expected: Option<u64>,
    /// The order's revision once the change is applied: a revision the order has not had
    /// since it was created (the engine counts up), as the SQL stores key the commit's
    /// journal row by it.
    pub revision: u64,
    /// The document, when the order is new or the document changed since `expected`;
    /// shared with the turn that changed it, not copied.
    pub document: Option<Arc<Order>>,
    /// Executions that are new or changed since `expected`, each whole: it replaces the
    /// stored execution with its sequence number (`id.seq`), or is added.
    pub executions: Vec<Execution>,
    /// Timeline entries appended since `expected`, in arrival order.
    pub timeline: Vec<TimelineEntry>,
    /// Journey rows appended since `expected`, in order.
    pub journey: Vec<StepRow>,
    /// The order's resume timer after the change ([`OrderState::resume_at`]).
    pub resume_at: Option<Timestamp>,
    /// Whether the order has a live execution after the change
    /// ([`OrderState::has_live`]): what [`Store::live_orders`] lists.
    pub live: bool,
    /// The order's earliest durable timer after the change ([`OrderState::next_wake`]):
    /// what [`Store::due`] and [`Store::next_due`] read.
    pub next_wake: Option<Timestamp>,
    /// When the order completed, after the change ([`OrderState::completed_at`]): what
    /// [`Store::purge`] reads.
    pub completed_at: Option<Timestamp>,
}

impl ChangeSet {
    /// The change that takes an order from `before` (`None`: not stored yet) to `after`:
    /// `after`'s revision, resume timer and indexes; its document when `before` has none
    /// or another one; its executions that are new or differ from `before`'s; its
    /// timeline entries past `before`'s. No journey rows: add them with
    /// [`with_journey`](Self::with_journey).
    pub fn diff(before: Option<&OrderState>, after: &OrderState) -> Self {
        let document = match before {
            Some(b) if Arc::ptr_eq(&b.order, &after.order) || b.order == after.order => None,
            _ => Some(after.order.clone()),
        };
        let executions = after
            .executions
            .iter()
            .filter(|e| {
                before.is_none_or(|b| {
                    b.executions
                        .binary_search_by_key(&e.id.seq, |x| x.id.seq)
                        .map_or(true, |i| b.executions[i] != **e)
                })
            })
            .cloned()
            .collect();
        let seen = before.map_or(0, |b| b.timeline.len());
        Self {
            document,
            executions,
            timeline: after.timeline.get(seen..).unwrap_or_default().to_vec(),
            ..Self::indexes(before.map(|b| b.revision), after)
        }
    }

    /// A change from revision `expected` to `state` that carries no document, execution,
    /// timeline entry or journey row yet: `state`'s id, revision, resume timer and
    /// indexes. The engine fills in what it changed.
    pub fn indexes(expected: Option<u64>, state: &OrderState) -> Self {
        Self {
            order: state.order.id.clone(),
            expected,
            revision: state.revision,
            document: None,
            executions: Vec::new(),
            timeline: Vec::new(),
            journey: Vec::new(),
            resume_at: state.resume_at,
            live: state.has_live(),
            next_wake: state.next_wake(),
            completed_at: state.completed_at(),
        }
    }

    /// The change with `rows` as its journey rows.
    pub fn with_journey(mut self, rows: Vec<StepRow>) -> Self {
        self.journey = rows;
        self
    }
}

// Here rather than in `execution`, which has no business knowing the store's types.
impl OrderState {
    /// Applies a [`ChangeSet`] computed from this state's revision: the new revision and
    /// resume timer, the document if the change carries one, each execution it carries in
    /// place of the one with the same sequence number (or added in start order), and its
    /// timeline entries appended. What a store that keeps whole states does on a commit,
    /// once it has checked the revision; journey rows are not part of the state.
    pub fn apply(&mut self, change: ChangeSet) {
        self.revision = change.revision;
        self.resume_at = change.resume_at;
        if let Some(document) = change.document {
            self.order = document;
        }
        // Grown by what the change adds, not doubled: a store keeps the state for the
        // order's life, and large growth steps cost a copy each.
        let added = change
            .executions
            .iter()
            .filter(|x| {
                self.executions
                    .binary_search_by_key(&x.id.seq, |e| e.id.seq)
                    .is_err()
            })
            .count();
        self.executions.reserve_exact(added);
        self.timeline.reserve_exact(change.timeline.len());
        for execution in change.executions {
            match self
                .executions
                .binary_search_by_key(&execution.id.seq, |e| e.id.seq)
            {
                Ok(i) => self.executions[i] = execution,
                Err(i) => self.executions.insert(i, execution),
            }
        }
        self.timeline.extend(change.timeline);
    }

    /// The state a [`ChangeSet`] for a new order creates (`None` if it carries no
    /// document): what [`apply`](Self::apply) makes of it on an empty state.
    pub fn created(change: ChangeSet) -> Option<Self> {
        let document = change.document.clone()?;
        let mut state = Self::from_parts(document, 0, Vec::new(), Vec::new(), None);
        state.apply(change);
        Some(state)
    }
}

/// Durable state. See the [module docs](self) for the contract.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Every flow definition, in creation order.
    async fn flows(&self) -> Result<Vec<Flow>, StoreError>;
    /// Creates or replaces a flow definition; `frozen` also records it under its version.
    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError>;
    /// A frozen flow version.
    async fn flow_version(&self, name: &str, version: &Version)
    -> Result<Option<Flow>, StoreError>;
    /// Every rule policy (draft, status, last published version), in creation order.
    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError>;
    /// Creates or replaces a rule policy; `published` also records its document under
    /// `record.last_published`, atomically with the record.
    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError>;
    /// A published policy version.
    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError>;
    /// Everything about one order.
    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError>;
    /// Applies a change to one order atomically, if the order is at the revision the
    /// change was computed from.
    async fn commit(&self, change: ChangeSet) -> Result<(), StoreError>;
    /// The journey rows of an order, in order.
    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError>;
    /// Orders that have a live execution.
    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError>;
    /// Up to `limit` orders whose earliest durable timer ([`OrderState::next_wake`]) is at
    /// or before `now`, earliest first.
    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError>;
    /// The earliest durable timer of any order, if one is set.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// The catalog's revision: a number that every [`save_flow`](Self::save_flow) and
    /// [`save_policy`](Self::save_policy) raises, atomically with the change, and that
    /// every process sharing the store reads alike. Engines compare it before each turn and
    /// reload the catalog when it moved, so a change made through one instance holds on
    /// every other before it next runs an order.
    async fn catalog_revision(&self) -> Result<u64, StoreError>;

    /// Every flow definition, in creation order, with the ones whose stored row cannot be
    /// read back reported apart instead of failing the listing, so one damaged draft never
    /// keeps an engine from starting. The default reads [`flows`](Self::flows), which has
    /// no rows of its own to skip.
    async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
        Ok((self.flows().await?, Vec::new()))
    }

    /// Every rule policy as [`read_flows`](Self::read_flows) lists flows.
    async fn read_policies(&self) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
        Ok((self.policies().await?, Vec::new()))
    }

    /// Sets an order aside with the reason (an order that cannot be decoded or run): it
    /// leaves [`live_orders`](Self::live_orders), [`due`](Self::due),
    /// [`next_due`](Self::next_due) and shared stores' claims until
    /// [`restore`](Self::restore), so background work goes on with every other order. Its
    /// state, journey and queued events stay as they are; commits to it still apply. Setting
    /// aside an order again replaces the reason; an order need not be stored (its first
    /// event may be what cannot run).
    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError>;

    /// The orders set aside, oldest first.
    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError>;

    /// Takes an order back from the set-aside list: live, due and claimable again as its
    /// state says. Whether it was set aside.
    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError>;

    /// Removes up to `limit` orders completed before `completed_before`
    /// ([`OrderState::completed_at`]), oldest first, with their journeys and everything else
    /// kept for them, and returns their ids. Live orders and orders with pending work stay.
    /// Retention for a host: call it periodically with a cutoff in the past (see
    /// [`Engine::purge_completed`](crate::Engine::purge_completed)), `limit` keeping each
    /// call short; the ids returned say what left, for the host's audit log.
    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError>;
}

/// A catalog row (flow or policy) that could not be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unreadable {
    /// The flow's or policy's name, as its row names it.
    pub name: String,
    /// Why it could not be read.
    pub reason: String,
}

impl Unreadable {
    /// A row named `name` that failed to read for `reason`.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// An order set aside ([`Store::set_aside`]), with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetAside {
    /// The order.
    pub order: OrderId,
    /// Why it was set aside.
    pub reason: String,
}

impl SetAside {
    /// `order`, set aside for `reason`.
    pub fn new(order: OrderId, reason: impl Into<String>) -> Self {
        Self {
            order,
            reason: reason.into(),
        }
    }
}

macro_rules! forward_store {
    ($t:ty) => {
        #[async_trait]
        impl<T: Store + ?Sized> Store for $t {
            async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
                (**self).flows().await
            }
            async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
                (**self).save_flow(flow, frozen).await
            }
            async fn flow_version(
                &self,
                name: &str,
                version: &Version,
            ) -> Result<Option<Flow>, StoreError> {
                (**self).flow_version(name, version).await
            }
            async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
                (**self).policies().await
            }
            async fn save_policy(
                &self,
                record: &PolicyRecord,
                published: bool,
            ) -> Result<(), StoreError> {
                (**self).save_policy(record, published).await
            }
            async fn policy_version(
                &self,
                name: &str,
                version: u32,
            ) -> Result<Option<PolicyDocument>, StoreError> {
                (**self).policy_version(name, version).await
            }
            async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
                (**self).load(order).await
            }
            async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
                (**self).commit(change).await
            }
            async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
                (**self).journey(order).await
            }
            async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
                (**self).live_orders().await
            }
            async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
                (**self).due(now, limit).await
            }
            async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
                (**self).next_due().await
            }
            async fn catalog_revision(&self) -> Result<u64, StoreError> {
                (**self).catalog_revision().await
            }
            async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
                (**self).read_flows().await
            }
            async fn read_policies(
                &self,
            ) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
                (**self).read_policies().await
            }
            async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
                (**self).set_aside(order, reason).await
            }
            async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
                (**self).set_aside_orders().await
            }
            async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
                (**self).restore(order).await
            }
            async fn purge(
                &self,
                completed_before: Timestamp,
                limit: usize,
            ) -> Result<Vec<OrderId>, StoreError> {
                (**self).purge(completed_before, limit).await
            }
        }
    };
}

forward_store!(Arc<T>);
forward_store!(Box<T>);

const _: Option<&dyn Store> = None;

/// A timestamp as a signed SQL integer key that sorts like the timestamp: the top bit
/// flipped, so signed order is `u64` order (the SQL stores' `next_wake`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn wake_key(at: Timestamp) -> i64 {
    (at.as_millis() ^ (1 << 63)) as i64
}

/// The timestamp of a [`wake_key`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn wake_time(key: i64) -> Timestamp {
    Timestamp::from_millis(key as u64 ^ (1 << 63))
}

#[cfg(all(test, any(feature = "sqlite", feature = "postgres")))]
mod tests {
    use super::{Timestamp, wake_key, wake_time};

    #[test]
    fn wake_keys_sort_like_timestamps() {
        let times = [
            0,
            1,
            1_700_000_000_000,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX,
        ];
        for pair in times.windows(2) {
            let (a, b) = (
                Timestamp::from_millis(pair[0]),
                Timestamp::from_millis(pair[1]),
            );
            assert!(wake_key(a) < wake_key(b));
            assert_eq!(wake_time(wake_key(a)), a);
        }
    }
}
