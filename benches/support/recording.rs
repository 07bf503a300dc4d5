//! A store that keeps a copy of every change set committed through it: how a bench learns
//! what the engine commits for an order (how many commits, and what each carries).

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use orderflow::clock::Timestamp;
use orderflow::document::OrderId;
use orderflow::execution::OrderState;
use orderflow::flow::Flow;
use orderflow::journey::StepRow;
use orderflow::rules::{PolicyDocument, PolicyRecord};
use orderflow::store::{ChangeSet, SetAside, Store, StoreError, Unreadable};

/// A [`Store`] that forwards to `inner` and keeps a copy of each commit's change set.
#[derive(Debug)]
pub(crate) struct Recording<S> {
    inner: S,
    commits: Mutex<Vec<ChangeSet>>,
}

impl<S> Recording<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            commits: Mutex::new(Vec::new()),
        }
    }

    /// The change sets committed so far, in commit order, and forgets them.
    pub(crate) fn take(&self) -> Vec<ChangeSet> {
        std::mem::take(&mut *self.commits.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl<S: Store> Store for Recording<S> {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        self.inner.flows().await
    }
    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
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
    async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
        self.commits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(change.clone());
        self.inner.commit(change).await
    }
    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        self.inner.journey(order).await
    }
    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        self.inner.live_orders().await
    }
    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        self.inner.due(now, limit).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due().await
    }
    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        self.inner.catalog_revision().await
    }
    async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
        self.inner.read_flows().await
    }
    async fn read_policies(&self) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
        self.inner.read_policies().await
    }
    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        self.inner.set_aside(order, reason).await
    }
    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
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
        self.inner.purge(completed_before, limit).await
    }
}
