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
