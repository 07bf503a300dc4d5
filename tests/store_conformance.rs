//! The store conformance suite on the memory store, directly, through `Arc<dyn Store>` and
//! `Box<dyn Store>`, and wrapped in a `FaultyStore` with no faults armed.

use std::sync::Arc;

use async_trait::async_trait;
use orderflow::clock::Timestamp;
use orderflow::document::{Order, OrderId};
use orderflow::execution::OrderState;
use orderflow::flow::Flow;
use orderflow::journey::StepRow;
use orderflow::rules::{PolicyDocument, PolicyRecord};
use orderflow::store::{ChangeSet, MemoryStore, SetAside, Store, StoreError};
use orderflow::testing::conformance::check_store;
use orderflow::testing::store::FaultyStore;

#[tokio::test]
async fn memory_store() {
    check_store(MemoryStore::new).await;
}

#[tokio::test]
async fn memory_store_as_arc_dyn_store() {
    check_store(|| Arc::new(MemoryStore::new()) as Arc<dyn Store>).await;
}

#[tokio::test]
async fn memory_store_as_box_dyn_store() {
    check_store(|| Box::new(MemoryStore::new()) as Box<dyn Store>).await;
}

#[tokio::test]
async fn faulty_store_without_faults() {
    check_store(|| FaultyStore::new(Arc::new(MemoryStore::new()))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_shared_across_threads() {
    let handle = tokio::spawn(check_store(|| {
        Arc::new(MemoryStore::new()) as Arc<dyn Store>
    }));
    handle.await.unwrap();
}

/// A store with one bug, to show the suite catches it.
#[derive(Debug)]
struct Broken {
    inner: MemoryStore,
    bug: Bug,
    aside: std::sync::Mutex<Vec<SetAside>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bug {
    /// Applies every commit, whatever revision it expects.
    IgnoresExpected,
    /// Lists flows newest first.
    FlowsNewestFirst,
    /// Records a version on every save, frozen or not.
    FreezesDrafts,
    /// Never lists an order as live.
    NoLiveOrders,
    /// Ignores `limit`.
    DueUnlimited,
    /// Lists due orders latest first.
    DueLatestFirst,
    /// Returns journey rows newest first.
    JourneyNewestFirst,
    /// Never raises the catalog revision.
    CatalogRevisionStill,
    /// Lists set-aside orders but leaves them live and due.
    AsideStaysLive,
    /// Purges every completed order, whatever the cutoff.
    PurgeIgnoresCutoff,
    /// Ignores the purge's `limit`.
    PurgeUnlimited,
    /// Drops the timeline entries of every commit but the creating one.
    DropsAppendedTimeline,
    /// Takes a commit without a document as one that empties it.
    EmptiesUnsentDocument,
}

impl Broken {
    fn new(bug: Bug) -> Self {
        Self {
            inner: MemoryStore::new(),
            bug,
            aside: std::sync::Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Store for Broken {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        let mut flows = self.inner.flows().await?;
        if self.bug == Bug::FlowsNewestFirst {
            flows.reverse();
        }
        Ok(flows)
    }
    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
        let frozen = frozen || self.bug == Bug::FreezesDrafts;
        self.inner.save_flow(flow, frozen).await
    }
    async fn flow_version(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<Option<Flow>, StoreError> {
        self.inner.flow_version(name, version).await
    }
    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.inner.policies().await
    }
    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError> {
        self.inner.save_policy(record, published).await
    }
    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError> {
        self.inner.policy_version(name, version).await
    }
    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
        self.inner.load(order).await
    }
    async fn commit(&self, mut change: ChangeSet) -> Result<(), StoreError> {
        let expected = match self.bug {
            Bug::IgnoresExpected => self.inner.load(&change.order).await?.map(|s| s.revision()),
            _ => change.expected,
        };
        if change.expected.is_some() {
            match self.bug {
                Bug::DropsAppendedTimeline => change.timeline.clear(),
                Bug::EmptiesUnsentDocument if change.document.is_none() => {
                    change.document = Some(Arc::new(Order::new(change.order.as_str())));
                }
                _ => {}
            }
        }
        self.inner
            .commit({
                change.expected = expected;
                change
            })
            .await
    }
    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        let mut rows = self.inner.journey(order).await?;
        if self.bug == Bug::JourneyNewestFirst {
            rows.reverse();
        }
        Ok(rows)
    }
    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        if self.bug == Bug::NoLiveOrders {
            return Ok(Vec::new());
        }
        self.inner.live_orders().await
    }
    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let limit = if self.bug == Bug::DueUnlimited {
            usize::MAX
        } else {
            limit
        };
        let mut due = self.inner.due(now, limit).await?;
        if self.bug == Bug::DueLatestFirst {
            due.reverse();
        }
        Ok(due)
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due().await
    }
    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        if self.bug == Bug::CatalogRevisionStill {
            return Ok(0);
        }
        self.inner.catalog_revision().await
    }
    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        if self.bug == Bug::AsideStaysLive {
            // Listed, but left in the live and due lists.
            let mut aside = self.aside.lock().unwrap();
            match aside.iter_mut().find(|a| &a.order == order) {
                Some(a) => a.reason = reason.to_owned(),
                None => aside.push(SetAside::new(order.clone(), reason)),
            }
            return Ok(());
        }
        self.inner.set_aside(order, reason).await
    }
    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
        if self.bug == Bug::AsideStaysLive {
            return Ok(self.aside.lock().unwrap().clone());
        }
        self.inner.set_aside_orders().await
    }
    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
        self.inner.restore(order).await
    }
    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        let before = match self.bug {
            Bug::PurgeIgnoresCutoff => Timestamp(u64::MAX),
            _ => completed_before,
        };
        let limit = match self.bug {
            Bug::PurgeUnlimited => usize::MAX,
            _ => limit,
        };
        self.inner.purge(before, limit).await
    }
}

async fn broken(bug: Bug) {
    check_store(|| Broken::new(bug)).await;
}

#[tokio::test]
#[should_panic(expected = "check `conflicting_commits_change_nothing` failed")]
async fn catches_a_store_ignoring_the_expected_revision() {
    broken(Bug::IgnoresExpected).await;
}

#[tokio::test]
#[should_panic(expected = "check `flows_in_creation_order` failed")]
async fn catches_flows_out_of_creation_order() {
    broken(Bug::FlowsNewestFirst).await;
}

#[tokio::test]
#[should_panic(expected = "check `frozen_flow_versions` failed")]
async fn catches_a_draft_save_changing_a_frozen_version() {
    broken(Bug::FreezesDrafts).await;
}

#[tokio::test]
#[should_panic(expected = "live_orders()")]
async fn catches_missing_live_orders() {
    broken(Bug::NoLiveOrders).await;
}

#[tokio::test]
#[should_panic(expected = "check `due_follows_timers` failed: due(T+10^9, 2) (limit)")]
async fn catches_due_ignoring_its_limit() {
    broken(Bug::DueUnlimited).await;
}

#[tokio::test]
#[should_panic(expected = "check `due_follows_timers` failed")]
async fn catches_due_out_of_time_order() {
    broken(Bug::DueLatestFirst).await;
}

#[tokio::test]
#[should_panic(expected = "journey")]
async fn catches_a_journey_out_of_commit_order() {
    broken(Bug::JourneyNewestFirst).await;
}

#[tokio::test]
#[should_panic(expected = "check `catalog_revision_rises` failed")]
async fn catches_a_catalog_revision_that_never_moves() {
    broken(Bug::CatalogRevisionStill).await;
}

#[tokio::test]
#[should_panic(expected = "check `set_aside_orders_leave_background_work` failed: live_orders()")]
async fn catches_set_aside_orders_left_live() {
    broken(Bug::AsideStaysLive).await;
}

#[tokio::test]
#[should_panic(expected = "check `purge_removes_completed_orders` failed: purge(T+500, 10)")]
async fn catches_a_purge_past_its_cutoff() {
    broken(Bug::PurgeIgnoresCutoff).await;
}

#[tokio::test]
#[should_panic(expected = "check `purge_removes_completed_orders` failed: purge(T+500, 0)")]
async fn catches_a_purge_ignoring_its_limit() {
    broken(Bug::PurgeUnlimited).await;
}

#[tokio::test]
#[should_panic(expected = "timeline")]
async fn catches_a_store_dropping_appended_timeline_entries() {
    broken(Bug::DropsAppendedTimeline).await;
}

#[tokio::test]
#[should_panic(
    expected = "check `revisions_round_trip` failed: load after a commit ending the execution"
)]
async fn catches_a_store_emptying_a_document_the_commit_did_not_carry() {
    broken(Bug::EmptiesUnsentDocument).await;
}
