//! A store that fails or "crashes" at a chosen operation.
//!
//! [`FaultyStore`] wraps any [`Store`] and forwards every call to it, numbering the calls
//! from 0 in the order they arrive ([`FaultyStore::ops`]). A test arms a [`Fault`] for one
//! operation number with [`FaultyStore::fail_at`]:
//!
//! - [`Fault::Error`]: that operation is not applied and returns an error of the given kind;
//!   the store keeps working.
//! - [`Fault::CrashBefore`]: the operation is not applied and the process "dies": it and
//!   every later operation fail with [`StoreErrorKind::Unavailable`] until
//!   [`restart`](FaultyStore::restart).
//! - [`Fault::CrashAfter`]: the operation is applied to the wrapped store, then the process
//!   dies the same way — the caller never learns that its write landed.
//!
//! A test "restarts" the process by building a new engine on [`FaultyStore::inner`] (or on
//! the faulty store itself after [`restart`](FaultyStore::restart)): the wrapped store holds
//! exactly what was durable when the crash happened.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use orderflow::document::Order;
//! use orderflow::execution::OrderState;
//! use orderflow::store::{ChangeSet, MemoryStore, Store, StoreErrorKind};
//! use orderflow::testing::store::{Fault, FaultyStore};
//!
//! let store = FaultyStore::new(Arc::new(MemoryStore::new()));
//! store.fail_at(0, Fault::CrashAfter);
//! let state = OrderState::new(Order::new("SO-1"));
//! let err = store.commit(ChangeSet::diff(None, &state)).await.unwrap_err();
//! assert_eq!(err.kind(), StoreErrorKind::Unavailable);
//! assert!(store.is_down());
//! // The write landed before the "crash".
//! assert!(store.inner().load(&"SO-1".into()).await.unwrap().is_some());
//! store.restart();
//! assert!(store.load(&"SO-1".into()).await.unwrap().is_some());
//! assert_eq!(store.ops().iter().map(|op| op.name).collect::<Vec<_>>(), ["commit", "load"]);
//! # });
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use semver::Version;

use crate::clock::Timestamp;
use crate::document::OrderId;
use crate::execution::OrderState;
use crate::flow::Flow;
use crate::journey::StepRow;
use crate::rules::{PolicyDocument, PolicyRecord};
use crate::store::{ChangeSet, SetAside, Store, StoreError, StoreErrorKind, Unreadable};

/// What happens to the operation a fault is armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// Not applied; returns an error of this kind. The store keeps working.
    Error(StoreErrorKind),
    /// Not applied; returns [`StoreErrorKind::Unavailable`], and every later operation fails
    /// the same way until [`FaultyStore::restart`].
    CrashBefore,
    /// Applied to the wrapped store, then returns [`StoreErrorKind::Unavailable`], and every
    /// later operation fails the same way until [`FaultyStore::restart`].
    CrashAfter,
}

/// One operation a [`FaultyStore`] was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Op {
    /// Its number: 0 for the first operation since the store was created.
    pub n: u64,
    /// The [`Store`] method called (`"load"`, `"commit"`, …).
    pub name: &'static str,
    /// The order it concerns (`load`, `commit`, `journey`), if any.
    pub order: Option<OrderId>,
}

/// A [`Store`] wrapper that fails or "crashes" at chosen operations. See the
/// [module docs](self).
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn Store>,
    state: Mutex<State>,
    yielding: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    ops: Vec<Op>,
    faults: HashMap<u64, Fault>,
    down: bool,
    /// Operations to hold, by name: the next one of that name waits at the gate.
    parks: Vec<(&'static str, Gate)>,
    /// Orders whose commits always fail, with the kind of error.
    poisoned: HashMap<OrderId, StoreErrorKind>,
}

/// The store's half of a [`Park`]: says when the operation arrived, waits for its release.
#[derive(Debug)]
struct Gate {
    arrived: futures::channel::oneshot::Sender<()>,
    release: futures::channel::oneshot::Receiver<()>,
}

/// An operation held by [`FaultyStore::park_next`]: the test learns when it arrived and
/// decides when it goes ahead, so two engine calls can be interleaved at a chosen point.
#[derive(Debug)]
pub struct Park {
    arrived: Option<futures::channel::oneshot::Receiver<()>>,
    release: Option<futures::channel::oneshot::Sender<()>>,
}

impl Park {
    /// Resolves once the held operation has arrived (and waits there).
    pub async fn arrived(&mut self) {
        if let Some(rx) = self.arrived.take() {
            let _ = rx.await;
        }
    }

    /// Lets the held operation go ahead (dropping the `Park` does too).
    pub fn release(mut self) {
        if let Some(tx) = self.release.take() {
            let _ = tx.send(());
        }
    }
}

/// What to do with an operation that may go ahead.
enum Plan {
    Forward,
    CrashAfter(u64),
}

impl FaultyStore {
    /// Wraps a store, with no faults armed.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            state: Mutex::new(State::default()),
            yielding: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Makes every commit to `order` fail with an error of `kind`, from now on, while the
    /// store serves every other order: one order a backend keeps refusing (a row too large,
    /// a constraint it breaks) among healthy ones.
    pub fn fail_commits_of(&self, order: impl Into<OrderId>, kind: StoreErrorKind) {
        self.lock().poisoned.insert(order.into(), kind);
    }

    /// Holds the next operation named `name` (`"save_flow"`, `"commit"`, …) before it
    /// reaches the wrapped store, until the returned [`Park`] releases it. Parks of one name
    /// hold that name's operations in the order they were armed.
    pub fn park_next(&self, name: &'static str) -> Park {
        let (arrived_tx, arrived_rx) = futures::channel::oneshot::channel();
        let (release_tx, release_rx) = futures::channel::oneshot::channel();
        self.lock().parks.push((
            name,
            Gate {
                arrived: arrived_tx,
                release: release_rx,
            },
        ));
        Park {
            arrived: Some(arrived_rx),
            release: Some(release_tx),
        }
    }

    /// Makes every operation yield to the executor once (return `Pending`, waking itself)
    /// before it goes ahead, as a store across a network does: each operation is then a
    /// point where a caller's future can be dropped. Tests that drop engine futures at
    /// every await point enumerate these.
    pub fn yielding(&self, on: bool) {
        self.yielding
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The wrapped store: what survives a "crash".
    pub fn inner(&self) -> &Arc<dyn Store> {
        &self.inner
    }

    /// Arms `fault` for operation number `n` (counted from 0 since the store was created;
    /// see [`op_count`](Self::op_count)), replacing a fault already armed for it. A fault
    /// for a number already passed never fires; neither does one whose operation arrives
    /// while the store is down.
    pub fn fail_at(&self, n: u64, fault: Fault) {
        self.lock().faults.insert(n, fault);
    }

    /// How many operations were asked for so far, including failed ones: the number the
    /// next operation gets.
    pub fn op_count(&self) -> u64 {
        self.lock().ops.len() as u64
    }

    /// Every operation asked for so far, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// Whether an injected crash has taken the store down.
    pub fn is_down(&self) -> bool {
        self.lock().down
    }

    /// Brings the store back after a crash. Faults still armed stay armed.
    pub fn restart(&self) {
        self.lock().down = false;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Numbers an operation and decides its fate.
    fn begin(&self, name: &'static str, order: Option<&OrderId>) -> Result<Plan, StoreError> {
        let mut state = self.lock();
        let n = state.ops.len() as u64;
        state.ops.push(Op {
            n,
            name,
            order: order.cloned(),
        });
        let fault = state.faults.remove(&n);
        if let (Some(order), "commit") = (order, name) {
            if let Some(kind) = state.poisoned.get(order) {
                return Err(StoreError::new(
                    *kind,
                    format!("operation #{n} ({name}): injected failure for order {order}"),
                ));
            }
        }
        if state.down {
            return Err(StoreError::new(
                StoreErrorKind::Unavailable,
                format!("operation #{n} ({name}): the store is down after an injected crash"),
            ));
        }
        match fault {
            None => Ok(Plan::Forward),
            Some(Fault::Error(kind)) => Err(StoreError::new(
                kind,
                format!("operation #{n} ({name}): injected error"),
            )),
            Some(Fault::CrashBefore) => {
                state.down = true;
                Err(crash(n, name, "before"))
            }
            Some(Fault::CrashAfter) => {
                // Down from now on: operations numbered after this one happen after the
                // "process" died, even if they overtake it.
                state.down = true;
                Ok(Plan::CrashAfter(n))
            }
        }
    }

    /// Runs `op` on the wrapped store unless a fault says otherwise. `op` is lazy, so an
    /// operation refused here never reaches the wrapped store.
    async fn run<T>(
        &self,
        name: &'static str,
        order: Option<&OrderId>,
        op: impl Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        if self.yielding.load(std::sync::atomic::Ordering::Relaxed) {
            yield_once().await;
        }
        let gate = {
            let mut state = self.lock();
            let at = state.parks.iter().position(|(n, _)| *n == name);
            at.map(|i| state.parks.remove(i).1)
        };
        if let Some(gate) = gate {
            let _ = gate.arrived.send(());
            let _ = gate.release.await;
        }
        match self.begin(name, order)? {
            Plan::Forward => op.await,
            Plan::CrashAfter(n) => {
                // Whatever it returned, the caller never hears of it.
                let _ = op.await;
                Err(crash(n, name, "after"))
            }
        }
    }
}

/// Returns `Pending` once, waking its task, then `Ready`.
pub(crate) async fn yield_once() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

fn crash(n: u64, name: &str, when: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unavailable,
        format!("operation #{n} ({name}): injected crash {when} the operation"),
    )
}

#[async_trait]
impl Store for FaultyStore {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        self.run("flows", None, self.inner.flows()).await
    }

    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
        self.run("save_flow", None, self.inner.save_flow(flow, frozen))
            .await
    }

    async fn flow_version(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<Flow>, StoreError> {
        self.run("flow_version", None, self.inner.flow_version(name, version))
            .await
    }

    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.run("policies", None, self.inner.policies()).await
    }

    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError> {
        self.run(
            "save_policy",
            None,
            self.inner.save_policy(record, published),
        )
        .await
    }

    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError> {
        self.run(
            "policy_version",
            None,
            self.inner.policy_version(name, version),
        )
        .await
    }

    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
        self.run("load", Some(order), self.inner.load(order)).await
    }

    async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
        let order = change.order.clone();
        self.run("commit", Some(&order), self.inner.commit(change))
            .await
    }

    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        self.run("journey", Some(order), self.inner.journey(order))
            .await
    }

    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        self.run("live_orders", None, self.inner.live_orders())
            .await
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        self.run("due", None, self.inner.due(now, limit)).await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.run("next_due", None, self.inner.next_due()).await
    }

    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        self.run("catalog_revision", None, self.inner.catalog_revision())
            .await
    }

    async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
        self.run("flows", None, self.inner.read_flows()).await
    }

    async fn read_policies(&self) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
        self.run("policies", None, self.inner.read_policies()).await
    }

    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        self.run(
            "set_aside",
            Some(order),
            self.inner.set_aside(order, reason),
        )
        .await
    }

    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
        self.run("set_aside_orders", None, self.inner.set_aside_orders())
            .await
    }

    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
        self.run("restore", Some(order), self.inner.restore(order))
            .await
    }

    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        self.run("purge", None, self.inner.purge(completed_before, limit))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Order;
    use crate::store::MemoryStore;

    fn state(id: &str, revision: u64) -> OrderState {
        let mut state = OrderState::new(Order::new(id));
        state.revision = revision;
        state
    }

    fn create(id: &str) -> ChangeSet {
        ChangeSet::diff(None, &state(id, 1))
    }

    fn faulty() -> FaultyStore {
        FaultyStore::new(Arc::new(MemoryStore::new()))
    }

    async fn stored_revision(store: &dyn Store, id: &str) -> Option<u64> {
        store
            .load(&id.into())
            .await
            .unwrap()
            .map(|state| state.revision)
    }

    #[tokio::test]
    async fn forwards_and_numbers_every_operation() {
        let store = faulty();
        store.commit(create("SO-1")).await.unwrap();
        assert_eq!(stored_revision(&store, "SO-1").await, Some(1));
        assert!(store.journey(&"SO-1".into()).await.unwrap().is_empty());
        assert_eq!(store.live_orders().await.unwrap(), Vec::<OrderId>::new());
        assert_eq!(
            store.due(Timestamp(0), 10).await.unwrap(),
            Vec::<OrderId>::new()
        );
        assert_eq!(store.next_due().await.unwrap(), None);
        assert!(store.flows().await.unwrap().is_empty());
        assert!(store.policies().await.unwrap().is_empty());
        assert_eq!(
            store
                .flow_version("F", &Version::new(1, 0, 0))
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.policy_version("P", 1).await.unwrap(), None);

        assert_eq!(store.op_count(), 10);
        let ops = store.ops();
        let names: Vec<_> = ops.iter().map(|op| op.name).collect();
        assert_eq!(
            names,
            [
                "commit",
                "load",
                "journey",
                "live_orders",
                "due",
                "next_due",
                "flows",
                "policies",
                "flow_version",
                "policy_version",
            ]
        );
        assert!(ops.iter().enumerate().all(|(i, op)| op.n == i as u64));
        let so1 = Some(OrderId::from("SO-1"));
        assert_eq!(ops[0].order, so1);
        assert_eq!(ops[1].order, so1);
        assert_eq!(ops[2].order, so1);
        assert_eq!(ops[3].order, None);
        assert!(!store.is_down());
    }

    #[tokio::test]
    async fn error_fault_fails_one_operation_without_applying_it() {
        let store = faulty();
        store.fail_at(0, Fault::Error(StoreErrorKind::Refused));
        let err = store.commit(create("SO-1")).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Refused);
        assert!(!store.is_down());
        assert_eq!(stored_revision(&**store.inner(), "SO-1").await, None);

        // The store keeps working, and the fault fired once.
        store.commit(create("SO-1")).await.unwrap();
        assert_eq!(stored_revision(&store, "SO-1").await, Some(1));

        // Reads fail too when armed.
        store.fail_at(store.op_count(), Fault::Error(StoreErrorKind::Corrupt));
        let err = store.load(&"SO-1".into()).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt);
        assert_eq!(stored_revision(&store, "SO-1").await, Some(1));
        assert_eq!(store.op_count(), 5);
    }

    #[tokio::test]
    async fn crash_before_does_not_apply_and_takes_the_store_down() {
        let store = faulty();
        store.commit(create("SO-1")).await.unwrap();
        store.fail_at(1, Fault::CrashBefore);
        let err = store.commit(create("SO-2")).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        assert!(err.is_retryable());
        assert!(store.is_down());
        assert_eq!(stored_revision(&**store.inner(), "SO-2").await, None);

        // Every operation fails while down, reads included, and reaches nothing.
        let err = store.load(&"SO-1".into()).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        let err = store.commit(create("SO-3")).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        assert_eq!(stored_revision(&**store.inner(), "SO-3").await, None);
        assert_eq!(store.op_count(), 4);

        store.restart();
        assert!(!store.is_down());
        assert_eq!(stored_revision(&store, "SO-1").await, Some(1));
        store.commit(create("SO-2")).await.unwrap();
        assert_eq!(stored_revision(&store, "SO-2").await, Some(1));
    }

    #[tokio::test]
    async fn crash_after_applies_then_takes_the_store_down() {
        let store = faulty();
        store.commit(create("SO-1")).await.unwrap();
        store.fail_at(1, Fault::CrashAfter);
        let next = ChangeSet::diff(Some(&state("SO-1", 1)), &state("SO-1", 2));
        let err = store.commit(next).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        assert!(store.is_down());
        assert_eq!(stored_revision(&**store.inner(), "SO-1").await, Some(2));

        let err = store.live_orders().await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);

        store.restart();
        assert_eq!(stored_revision(&store, "SO-1").await, Some(2));
        assert_eq!(
            store.ops().iter().map(|op| op.name).collect::<Vec<_>>(),
            ["commit", "commit", "live_orders", "load"]
        );
    }

    #[tokio::test]
    async fn crash_after_a_read_loses_its_answer() {
        let store = faulty();
        store.commit(create("SO-1")).await.unwrap();
        store.fail_at(1, Fault::CrashAfter);
        let err = store.load(&"SO-1".into()).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        assert!(store.is_down());
    }

    #[tokio::test]
    async fn armed_faults_survive_a_restart() {
        let store = faulty();
        store.fail_at(0, Fault::CrashBefore);
        store.fail_at(2, Fault::Error(StoreErrorKind::Other));
        assert!(store.commit(create("SO-1")).await.is_err());
        store.restart();
        // Operation 1 goes through; the fault armed for 2 is still there.
        store.commit(create("SO-1")).await.unwrap();
        let err = store.load(&"SO-1".into()).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Other);
        assert!(!store.is_down());
        assert_eq!(stored_revision(&store, "SO-1").await, Some(1));
    }

    #[tokio::test]
    async fn a_fault_whose_operation_arrives_while_down_never_fires() {
        let store = faulty();
        store.fail_at(0, Fault::CrashBefore);
        store.fail_at(1, Fault::Error(StoreErrorKind::Refused));
        assert!(store.next_due().await.is_err());
        let err = store.next_due().await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        store.restart();
        assert_eq!(store.next_due().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_fault_for_a_passed_operation_never_fires() {
        let store = faulty();
        store.commit(create("SO-1")).await.unwrap();
        store.fail_at(0, Fault::CrashBefore);
        assert_eq!(stored_revision(&store, "SO-1").await, Some(1));
        assert!(!store.is_down());
    }
}
