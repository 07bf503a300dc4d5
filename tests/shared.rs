//! Work sharing in memory: the `SharedStore` protocol on `SharedMemoryStore`, and engines
//! sharing orders through it — claims, fencing after a lapsed lease, dead letters, wake-ups.

mod common;

use std::time::Duration;

use orderflow::store::SharedMemoryStore;
use orderflow::{ManualClock, Timestamp};

#[tokio::test]
async fn the_memory_store_keeps_the_protocol() {
    let clock = ManualClock::new(Timestamp(0));
    let a = SharedMemoryStore::new(clock.clone());
    let b = a.handle();
    let lease = Duration::from_secs(30);
    common::shared::check_protocol(&a, &b, lease, || {
        clock.advance(lease + Duration::from_millis(1));
        async {}
    })
    .await;
}

#[tokio::test]
async fn two_engines_share_the_orders() {
    let store = SharedMemoryStore::new(ManualClock::new(Timestamp(0)));
    let other = store.handle();
    common::shared::instances_share_orders(store, other, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_engine_is_fenced_off() {
    let clock = ManualClock::new(Timestamp(0));
    let store = SharedMemoryStore::new(clock.clone());
    let other = store.handle();
    let lease = Duration::from_secs(30);
    common::shared::a_stalled_instance_is_fenced_off(store, other, lease, || {
        clock.advance(lease + Duration::from_millis(1));
        async {}
    })
    .await;
}

/// A shared store with one rule broken, to show the conformance check catches it.
#[derive(Debug)]
struct Broken {
    inner: SharedMemoryStore,
    fault: Fault,
    /// Calls of `maintain`.
    maintained: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// Commits made through any `Broken` store.
static COMMITS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing broken.
    None,
    /// `release` keeps the lease: the order never comes back.
    ReleaseKeepsLease,
    /// A stale holder's commit reports success.
    CommitSwallowsLeaseLost,
    /// A failed event is dropped instead of kept as a dead letter.
    DropsDeadLetters,
    /// Claims ignore live leases' fencing: a second claim of a held order succeeds.
    ClaimsHeldOrders,
    /// The second commit fails (the server unreachable) and writes nothing.
    SecondCommitFails,
}

mod broken {
    use super::{Broken, Fault};
    use async_trait::async_trait;
    use orderflow::document::OrderId;
    use orderflow::execution::OrderState;
    use orderflow::flow::Flow;
    use orderflow::journey::StepRow;
    use orderflow::rules::{PolicyDocument, PolicyRecord};
    use orderflow::store::{
        ChangeSet, DeadLetter, Lease, Queued, SetAside, SharedStore, Store, StoreError,
        StoreErrorKind,
    };
    use orderflow::{Event, Timestamp};
    use semver::Version;
    use std::time::Duration;

    #[async_trait]
    impl Store for Broken {
        async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
            self.inner.flows().await
        }
        async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
            self.inner.save_flow(flow, frozen).await
        }
        async fn flow_version(&self, n: &str, v: &Version) -> Result<Option<Flow>, StoreError> {
            self.inner.flow_version(n, v).await
        }
        async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
            self.inner.policies().await
        }
        async fn save_policy(&self, r: &PolicyRecord, p: bool) -> Result<(), StoreError> {
            self.inner.save_policy(r, p).await
        }
        async fn policy_version(
            &self,
            n: &str,
            v: u32,
        ) -> Result<Option<PolicyDocument>, StoreError> {
            self.inner.policy_version(n, v).await
        }
        async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
            self.inner.load(order).await
        }
        async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
            if self.fault == Fault::SecondCommitFails
                && super::COMMITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 1
            {
                return Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    "the server went away",
                ));
            }
            match self.inner.commit(change).await {
                Err(e)
                    if e.kind() == StoreErrorKind::LeaseLost
                        && self.fault == Fault::CommitSwallowsLeaseLost =>
                {
                    Ok(())
                }
                other => other,
            }
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

    #[async_trait]
    impl SharedStore for Broken {
        async fn enqueue(&self, event: &Event) -> Result<(), StoreError> {
            self.inner.enqueue(event).await
        }
        async fn claim(
            &self,
            now: Timestamp,
            limit: usize,
            lease: Duration,
        ) -> Result<Vec<Lease>, StoreError> {
            if self.fault == Fault::ClaimsHeldOrders {
                // Claims as if every lease had lapsed.
                return self
                    .inner
                    .claim(now, limit, Duration::ZERO)
                    .await
                    .map(|mut l| {
                        l.extend(l.clone());
                        l
                    });
            }
            self.inner.claim(now, limit, lease).await
        }
        async fn inbox(&self, lease: &Lease, limit: usize) -> Result<Vec<Queued>, StoreError> {
            self.inner.inbox(lease, limit).await
        }
        async fn consume(
            &self,
            lease: &Lease,
            seq: u64,
            failure: Option<&str>,
        ) -> Result<(), StoreError> {
            let failure = failure.filter(|_| self.fault != Fault::DropsDeadLetters);
            self.inner.consume(lease, seq, failure).await
        }
        async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
            if self.fault == Fault::ReleaseKeepsLease {
                return Ok(());
            }
            self.inner.release(lease).await
        }
        async fn dead_letters(&self, order: &OrderId) -> Result<Vec<DeadLetter>, StoreError> {
            self.inner.dead_letters(order).await
        }
        async fn wake(&self, order: &OrderId) -> Result<(), StoreError> {
            self.inner.wake(order).await
        }
        async fn work_arrived(&self) {
            self.inner.work_arrived().await
        }
        async fn maintain(&self) -> Result<(), StoreError> {
            self.maintained
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.inner.maintain().await
        }
    }
}

#[tokio::test]
async fn the_protocol_check_catches_broken_stores() {
    use futures::FutureExt;
    for fault in [
        Fault::ReleaseKeepsLease,
        Fault::CommitSwallowsLeaseLost,
        Fault::DropsDeadLetters,
        Fault::ClaimsHeldOrders,
    ] {
        let clock = ManualClock::new(Timestamp(0));
        let store = SharedMemoryStore::new(clock.clone());
        let a = Broken {
            inner: store.handle(),
            fault,
            maintained: Default::default(),
        };
        let b = Broken {
            inner: store.handle(),
            fault,
            maintained: Default::default(),
        };
        let lease = Duration::from_secs(30);
        let check = orderflow::testing::conformance::check_shared_store(&a, &b, lease, || {
            clock.advance(lease + Duration::from_millis(1));
            async {}
        });
        let outcome = std::panic::AssertUnwindSafe(check).catch_unwind().await;
        assert!(outcome.is_err(), "the check misses {fault:?}");
    }
}

/// The worker runs the store's housekeeping every `WorkConfig::maintenance` of its clock,
/// and queued orders as they arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_orders_and_housekeeping() {
    use orderflow::engine::WorkConfig;
    use orderflow::{Config, Engine, Event, Order};
    use std::sync::atomic::Ordering;

    let clock = ManualClock::new(Timestamp(0));
    let maintained = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let store = Broken {
        inner: SharedMemoryStore::new(clock.clone()),
        fault: Fault::None,
        maintained: maintained.clone(),
    };
    let engine = Engine::builder()
        .shared_store(store)
        .clock(clock.clone())
        .config(
            Config::default().with_work(
                WorkConfig::default()
                    .with_poll(Duration::from_secs(1))
                    .with_maintenance(Duration::from_secs(10)),
            ),
        )
        .build()
        .await
        .unwrap();
    let worker = tokio::spawn(engine.clone().run_worker());
    engine
        .enqueue(Event::new_order(Order::new("W-1")))
        .await
        .unwrap();
    // The enqueue wakes the worker, which runs the order without the clock moving.
    let mut waited = 0;
    while engine.order("W-1").await.unwrap().is_none() {
        assert!(waited < 500, "the worker ran the queued order");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        maintained.load(Ordering::Relaxed),
        0,
        "no housekeeping before its time"
    );
    for _ in 0..25 {
        clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let runs = maintained.load(Ordering::Relaxed);
    assert!(
        (1..=3).contains(&runs),
        "housekeeping every 10 s over 25 s: {runs}"
    );
    worker.abort();
}

/// A round that fails after a provider call, before its result is committed, leaves the
/// order claimed; when the lease lapses, the order is claimed again and the step resumes
/// under the same key, instead of the order leaving the work list with a step in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_round_resumes_after_the_lease() {
    use orderflow::{Event, StatusReason};

    let clock = ManualClock::new(Timestamp(0));
    let store = Broken {
        inner: SharedMemoryStore::new(clock.clone()),
        fault: Fault::SecondCommitFails,
        maintained: Default::default(),
    };
    let seattle = common::shared::Ledger3pl::new("Seattle store 3PL");
    let chicago = common::shared::Ledger3pl::new("Chicago store 3PL");
    let lease = Duration::from_secs(30);
    let engine =
        common::shared::shared_engine(store, seattle.instance(), chicago.instance(), lease).await;
    common::publish_lab(&engine).await;
    COMMITS.store(0, std::sync::atomic::Ordering::Relaxed);
    engine
        .enqueue(Event::new_order(common::lab_order("FAIL-1", 150)))
        .await
        .unwrap();
    let report = engine.work().await.unwrap();
    assert_eq!((report.claimed, report.failed), (1, 1), "{report:?}");
    assert_eq!(seattle.calls.lock().unwrap().len(), 1, "the 3PL was called");
    // Still claimed: nothing to do until the lease lapses.
    assert_eq!(engine.work().await.unwrap().claimed, 0);
    clock.advance(lease + Duration::from_millis(1));
    let report = engine.work().await.unwrap();
    assert_eq!((report.claimed, report.failed), (1, 0), "{report:?}");
    let order = engine.order("FAIL-1").await.unwrap().unwrap();
    assert_eq!(order.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    let calls = seattle.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "the call was repeated once");
    assert_eq!(calls[0], calls[1], "under the same key");
    assert_eq!(engine.work().await.unwrap().claimed, 0, "nothing left");
}
