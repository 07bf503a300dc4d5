//! The work-sharing protocol of a [`SharedStore`]: see [`check_shared_store`].

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use super::fixtures::timed;
use crate::clock::Timestamp;
use crate::document::{Order, OrderId};
use crate::event::{Event, EventKind};
use crate::execution::OrderState;
use crate::store::{ChangeSet, SharedStore, StoreErrorKind};

fn new_order(id: &str) -> Event {
    Event::new_order(Order::new(id))
}

/// Checks the [work-sharing protocol](crate::store::shared) on `a` and `b`, two handles
/// (instances) on one empty store whose leases last `lease`; `expire` must make every lease
/// granted so far run out (advance the store's clock, or sleep past `lease` for a database).
/// Panics at the first broken rule.
///
/// What it holds the store to: an empty store has nothing to claim; a queued event makes its
/// order ready for exactly one instance; the holder's commits land, others find the order
/// held; events queued while an order is held make it ready again at release; fencing
/// tokens grow; a lapsed lease is taken over, after which the old holder's inbox reads,
/// consumes, releases and commits fail with [`LeaseLost`](StoreErrorKind::LeaseLost) and
/// write nothing, while the new holder's commits land; a failed event becomes a dead letter
/// with its reason; a released order with a durable timer is ready at the timer and not
/// before; a long inbox is read in pages, oldest first, each event once; the order waiting
/// longest is claimed first; an order set aside is not claimed until it is restored;
/// housekeeping from two instances at once loses nothing; concurrent claims never hand out an
/// order twice. Wake-ups ([`SharedStore::work_arrived`]) need a runtime's timers to check,
/// so they are left to the caller.
///
/// ```
/// # futures::executor::block_on(async {
/// use std::time::Duration;
/// use orderflow::store::SharedMemoryStore;
/// use orderflow::testing::conformance::check_shared_store;
/// use orderflow::{ManualClock, Timestamp};
///
/// let clock = ManualClock::new(Timestamp(0));
/// let store = SharedMemoryStore::new(clock.clone());
/// let lease = Duration::from_secs(30);
/// check_shared_store(&store, &store.handle(), lease, || {
///     clock.advance(lease + Duration::from_millis(1));
///     async {}
/// })
/// .await;
/// # });
/// ```
pub async fn check_shared_store<S, E, Fut>(a: &S, b: &S, lease: Duration, expire: E)
where
    S: SharedStore,
    E: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let now = Timestamp(1_000);
    let id = OrderId::from("SH-1");

    // Nothing to claim in an empty store.
    assert!(a.claim(now, 10, lease).await.unwrap().is_empty());

    // An event makes its order ready; one instance claims it, the other finds nothing.
    a.enqueue(&new_order("SH-1")).await.unwrap();
    let first = a.claim(now, 10, lease).await.unwrap();
    assert_eq!(first.len(), 1, "the order with a queued event is claimed");
    let held = first[0].clone();
    assert_eq!(held.order, id);
    assert!(
        b.claim(now, 10, lease).await.unwrap().is_empty(),
        "a held order is not claimed twice"
    );
    let inbox = a.inbox(&held, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].event.order, id);

    // A commit by the holder is fenced and lands.
    let state = OrderState::new(Order::new("SH-1"));
    a.commit(ChangeSet::diff(None, &state)).await.unwrap();
    a.consume(&held, inbox[0].seq, None).await.unwrap();
    assert!(
        a.inbox(&held, 10).await.unwrap().is_empty(),
        "a consumed event is gone"
    );

    // An event arriving while the order is held makes it ready again at release.
    b.enqueue(&Event::new(
        "SH-1-e2",
        EventKind::from("Custom"),
        id.clone(),
    ))
    .await
    .unwrap();
    assert!(
        b.claim(now, 10, lease).await.unwrap().is_empty(),
        "still held"
    );
    a.release(&held).await.unwrap();
    let again = b.claim(now, 10, lease).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "events queued meanwhile make the released order ready"
    );
    let held_b = again[0].clone();
    assert!(held_b.fence > held.fence, "fencing tokens grow");
    let inbox = b.inbox(&held_b, 10).await.unwrap();
    assert_eq!(inbox.len(), 1);
    // The old lease is fenced off everywhere.
    for err in [
        a.inbox(&held, 10).await.map(drop).unwrap_err(),
        a.consume(&held, inbox[0].seq, None).await.unwrap_err(),
        a.release(&held).await.unwrap_err(),
    ] {
        assert_eq!(err.kind(), StoreErrorKind::LeaseLost, "{err}");
    }
    b.consume(&held_b, inbox[0].seq, Some("cannot be processed"))
        .await
        .unwrap();
    let dead = b.dead_letters(&id).await.unwrap();
    assert_eq!(dead.len(), 1, "a failed event is kept as a dead letter");
    assert_eq!(dead[0].event.id.as_str(), "SH-1-e2");
    assert_eq!(dead[0].reason, "cannot be processed");
    b.release(&held_b).await.unwrap();
    assert!(
        a.claim(now, 10, lease).await.unwrap().is_empty(),
        "nothing left to do"
    );

    // A lapsed lease: the order is taken over, and the stale holder's commit is rejected
    // and writes nothing.
    a.enqueue(&new_order("SH-2")).await.unwrap();
    let stale = a.claim(now, 10, lease).await.unwrap().remove(0);
    a.commit(ChangeSet::diff(None, &OrderState::new(Order::new("SH-2"))))
        .await
        .unwrap();
    expire().await;
    let taken = b.claim(now, 10, lease).await.unwrap();
    assert_eq!(taken.len(), 1, "a lapsed lease is taken over");
    assert!(taken[0].fence > stale.fence);
    let stored = a.load(&OrderId::from("SH-2")).await.unwrap().unwrap();
    let mut next = stored.clone();
    next.revision += 1;
    std::sync::Arc::make_mut(&mut next.order).order_source = Some("stale write".to_owned());
    let err = a
        .commit(ChangeSet::diff(Some(&stored), &next))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost, "{err}");
    assert_eq!(
        a.load(&OrderId::from("SH-2")).await.unwrap().unwrap(),
        stored,
        "nothing written"
    );
    // The new holder's commit lands.
    b.commit(ChangeSet::diff(Some(&stored), &next))
        .await
        .unwrap();
    assert_eq!(b.load(&OrderId::from("SH-2")).await.unwrap().unwrap(), next);
    let queued = b.inbox(&taken[0], 10).await.unwrap();
    for q in queued {
        b.consume(&taken[0], q.seq, None).await.unwrap();
    }
    b.release(&taken[0]).await.unwrap();

    // A released order with a durable timer is ready at the timer, not before.
    a.enqueue(&new_order("SH-3")).await.unwrap();
    let held_timed = a.claim(now, 10, lease).await.unwrap().remove(0);
    let state = timed("SH-3", 0, &[50_000]);
    let wake = state.next_wake().expect("the state has a timer");
    a.commit(ChangeSet::diff(None, &state)).await.unwrap();
    for q in a.inbox(&held_timed, 10).await.unwrap() {
        a.consume(&held_timed, q.seq, None).await.unwrap();
    }
    a.release(&held_timed).await.unwrap();
    assert!(
        b.claim(Timestamp(wake.0 - 1), 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "not yet due"
    );
    let due = b.claim(wake, 10, lease).await.unwrap();
    assert_eq!(
        due.iter().map(|l| l.order.clone()).collect::<Vec<_>>(),
        [OrderId::from("SH-3")]
    );
    b.release(&due[0]).await.unwrap();

    // The order waiting longest goes first: one whose holder died is taken over before
    // orders queued after it.
    a.enqueue(&new_order("OLD")).await.unwrap();
    let old = a.claim(now, 1, lease).await.unwrap();
    for i in 0..5 {
        a.enqueue(&new_order(&format!("NEW-{i}"))).await.unwrap();
    }
    expire().await;
    let first = b.claim(now, 1, lease).await.unwrap();
    assert_eq!(
        first[0].order, old[0].order,
        "the lapsed order is claimed first"
    );
    let rest = b.claim(now, 10, lease).await.unwrap();
    let order: Vec<String> = rest.iter().map(|l| l.order.to_string()).collect();
    assert_eq!(
        order,
        ["NEW-0", "NEW-1", "NEW-2", "NEW-3", "NEW-4"],
        "oldest first"
    );
    for l in first.iter().chain(&rest) {
        for q in b.inbox(l, 10).await.unwrap() {
            b.consume(l, q.seq, None).await.unwrap();
        }
        b.release(l).await.unwrap();
    }

    // A long inbox is read in pages, oldest first, each event once.
    a.enqueue(&new_order("LONG")).await.unwrap();
    for n in 1..70 {
        a.enqueue(&Event::new(
            format!("LONG-e{n}"),
            EventKind::from("Custom"),
            OrderId::from("LONG"),
        ))
        .await
        .unwrap();
    }
    let long = a.claim(now, 10, lease).await.unwrap().remove(0);
    let mut read = Vec::new();
    loop {
        let page = a.inbox(&long, 10).await.unwrap();
        assert!(page.len() <= 10, "a page holds at most its limit");
        if page.is_empty() {
            break;
        }
        for q in page {
            read.push(q.event.id.to_string());
            a.consume(&long, q.seq, None).await.unwrap();
        }
    }
    let expected: Vec<String> = std::iter::once("new:LONG".to_owned())
        .chain((1..70).map(|n| format!("LONG-e{n}")))
        .collect();
    assert_eq!(
        read, expected,
        "every queued event read once, in the order queued"
    );
    a.release(&long).await.unwrap();

    // Housekeeping from two instances at once is harmless and loses nothing.
    a.enqueue(&new_order("KEPT")).await.unwrap();
    let (x, y) = futures::join!(a.maintain(), b.maintain());
    x.unwrap();
    y.unwrap();
    let kept = b.claim(now, 10, lease).await.unwrap();
    assert_eq!(
        kept.len(),
        1,
        "an order queued before housekeeping is still ready"
    );
    assert_eq!(b.inbox(&kept[0], 10).await.unwrap().len(), 1);
    for q in b.inbox(&kept[0], 10).await.unwrap() {
        b.consume(&kept[0], q.seq, None).await.unwrap();
    }
    b.release(&kept[0]).await.unwrap();

    // An order set aside is not claimed, whatever work it has queued; restored, it is.
    let aside = OrderId::from("ASIDE");
    a.enqueue(&new_order("ASIDE")).await.unwrap();
    a.set_aside(&aside, "its state does not decode")
        .await
        .unwrap();
    assert!(
        b.claim(now, 10, lease).await.unwrap().is_empty(),
        "a set-aside order is not claimed"
    );
    assert!(a.restore(&aside).await.unwrap());
    let back = b.claim(now, 10, lease).await.unwrap();
    assert_eq!(
        back.iter().map(|l| l.order.clone()).collect::<Vec<_>>(),
        [aside],
        "a restored order is claimed with the work it had queued"
    );
    for q in b.inbox(&back[0], 10).await.unwrap() {
        b.consume(&back[0], q.seq, None).await.unwrap();
    }
    b.release(&back[0]).await.unwrap();

    // Concurrent claims split the ready orders: none is handed out twice.
    for i in 0..200 {
        a.enqueue(&new_order(&format!("SPLIT-{i}"))).await.unwrap();
    }
    let mut seen = HashSet::new();
    loop {
        let (x, y) = futures::join!(a.claim(now, 7, lease), b.claim(now, 5, lease));
        let (x, y) = (x.unwrap(), y.unwrap());
        if x.is_empty() && y.is_empty() {
            break;
        }
        for l in x.iter().chain(&y) {
            assert!(seen.insert(l.order.clone()), "{} claimed twice", l.order);
        }
    }
    assert_eq!(seen.len(), 200, "every ready order was claimed");

    // Retention: a completed order with pending work (a queued event, a lease) stays; once
    // it has none it goes, with its dead letters.
    let purged = |list: Vec<OrderId>| list.contains(&OrderId::from("RET-1"));
    a.enqueue(&new_order("RET-1")).await.unwrap();
    let held = a.claim(now, 10, lease).await.unwrap();
    assert_eq!(held.len(), 1, "the retention order is claimed");
    let held = held[0].clone();
    a.commit(ChangeSet::diff(None, &OrderState::new(Order::new("RET-1"))))
        .await
        .unwrap();
    let first = a.inbox(&held, 10).await.unwrap();
    a.consume(&held, first[0].seq, Some("cannot be processed"))
        .await
        .unwrap();
    assert!(
        !purged(a.purge(now, 1_000).await.unwrap()),
        "an order under a lease is not purged"
    );
    b.enqueue(&Event::new(
        "RET-1-e2",
        EventKind::from("Custom"),
        OrderId::from("RET-1"),
    ))
    .await
    .unwrap();
    a.release(&held).await.unwrap();
    assert!(
        !purged(b.purge(now, 1_000).await.unwrap()),
        "an order with a queued event is not purged"
    );
    let held = b.claim(now, 10, lease).await.unwrap().remove(0);
    for q in b.inbox(&held, 10).await.unwrap() {
        b.consume(&held, q.seq, None).await.unwrap();
    }
    b.release(&held).await.unwrap();
    assert_eq!(a.dead_letters(&held.order).await.unwrap().len(), 1);
    assert!(
        purged(a.purge(now, 1_000).await.unwrap()),
        "a completed order with no pending work is purged"
    );
    assert!(a.load(&held.order).await.unwrap().is_none());
    assert!(
        a.dead_letters(&held.order).await.unwrap().is_empty(),
        "its dead letters went with it"
    );
}
