//! The work-sharing protocol of a `SharedStore`, checked on two handles of one store: what
//! the memory and PostgreSQL tests share.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orderflow::document::{Order, OrderId};
use orderflow::engine::WorkConfig;
use orderflow::execution::OrderState;
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::store::{Commit, SharedStore, StoreErrorKind};
use orderflow::{Config, Engine, Event, EventKind, ManualClock, StatusReason, Timestamp};

fn new_order(id: &str) -> Event {
    Event::new_order(Order::new(id))
}

/// Checks the protocol on `a` and `b`, two handles (instances) on one empty store whose
/// leases last `lease`; `expire` makes every lease granted so far run out.
pub(crate) async fn check_protocol<S, E, Fut>(a: &S, b: &S, lease: Duration, expire: E)
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
    a.commit(Commit::new(None, state.clone(), Vec::new()))
        .await
        .unwrap();
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
    assert_eq!(dead[0].event.id.0, "SH-1-e2");
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
    a.commit(Commit::new(
        None,
        OrderState::new(Order::new("SH-2")),
        Vec::new(),
    ))
    .await
    .unwrap();
    expire().await;
    let taken = b.claim(now, 10, lease).await.unwrap();
    assert_eq!(taken.len(), 1, "a lapsed lease is taken over");
    assert!(taken[0].fence > stale.fence);
    let stored = a.load(&OrderId::from("SH-2")).await.unwrap().unwrap();
    let mut next = stored.clone();
    next.revision += 1;
    next.order = next.order.clone().with_order_source("stale write");
    let err = a
        .commit(Commit::new(Some(stored.revision), next.clone(), Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost, "{err}");
    assert_eq!(
        a.load(&OrderId::from("SH-2")).await.unwrap().unwrap(),
        stored,
        "nothing written"
    );
    // The new holder's commit lands.
    b.commit(Commit::new(Some(stored.revision), next.clone(), Vec::new()))
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
    let timed = a.claim(now, 10, lease).await.unwrap().remove(0);
    let wake = Timestamp(50_000);
    let mut state = serde_json::to_value(OrderState::new(Order::new("SH-3"))).unwrap();
    state["executions"] = serde_json::json!([{
        "id": {"order": "SH-3", "seq": 1}, "flow": "F", "version": "1.0.0",
        "trigger": 1, "round": 0, "joins": [], "next_token": 1,
        "steps": 0, "started": 0, "ended": null,
        "tokens": [{
            "id": 0, "at": {"node": 1}, "status": "retrying", "records": {}, "last": null,
            "admitted": true, "waited": false, "frames": [], "attempt": 2,
            "wake_at": wake.0,
        }],
    }]);
    let state: OrderState = serde_json::from_value(state).unwrap();
    assert_eq!(state.next_wake(), Some(wake));
    a.commit(Commit::new(None, state, Vec::new()))
        .await
        .unwrap();
    for q in a.inbox(&timed, 10).await.unwrap() {
        a.consume(&timed, q.seq, None).await.unwrap();
    }
    a.release(&timed).await.unwrap();
    assert!(
        b.claim(Timestamp(49_999), 10, lease)
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

    // An event queued by one instance wakes the other's worker.
    let woken = async {
        b.work_arrived().await;
        // Settle any wake-up from earlier events first, then wait for a new one.
        b.work_arrived().await;
    };
    let send = async {
        for n in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            a.enqueue(&new_order(&format!("WAKE-{n}"))).await.unwrap();
        }
    };
    let raced = tokio::time::timeout(Duration::from_secs(5), async {
        futures::pin_mut!(send);
        matches!(
            futures::future::select(Box::pin(woken), send).await,
            futures::future::Either::Left(_)
        )
    })
    .await;
    assert_eq!(
        raced.ok(),
        Some(true),
        "a queued event wakes the other instance"
    );
}

/// A 3PL that applies each idempotency key once in a ledger its instances share, and can
/// hold its calls at a gate (a stalled instance).
#[derive(Debug, Clone)]
pub(crate) struct Ledger3pl {
    name: String,
    /// Every call's key, in order, over all instances.
    pub(crate) calls: Arc<Mutex<Vec<String>>>,
    /// Keys applied, with how often each was applied (always once).
    pub(crate) applied: Arc<Mutex<HashMap<String, u32>>>,
    /// Held calls wait for this; `entered` is told when a call waits.
    gate: Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>)>,
}

impl Ledger3pl {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            calls: Arc::default(),
            applied: Arc::default(),
            gate: None,
        }
    }

    /// Another instance's provider on the same ledger, whose calls wait at `gate` after
    /// telling `entered`.
    pub(crate) fn gated(
        &self,
        gate: Arc<tokio::sync::Notify>,
        entered: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            gate: Some((gate, entered)),
            ..self.clone()
        }
    }

    /// Another instance's provider on the same ledger.
    pub(crate) fn instance(&self) -> Self {
        Self {
            gate: None,
            ..self.clone()
        }
    }
}

#[async_trait]
impl Provider for Ledger3pl {
    fn name(&self) -> &str {
        &self.name
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendFulfillmentOrder]
    }
    async fn call(&self, _: Request<'_>, cx: &CallContext<'_>) -> Result<Reply, ProviderError> {
        let key = cx.idempotency_key.to_owned();
        self.calls.lock().unwrap().push(key.clone());
        {
            let mut applied = self.applied.lock().unwrap();
            if !applied.contains_key(&key) {
                applied.insert(key, 1);
            }
        }
        if let Some((gate, entered)) = &self.gate {
            entered.notify_one();
            gate.notified().await;
        }
        Ok(Reply::Done)
    }
}

/// An engine on a shared store with the lab's two 3PLs, on a clock that stands still (so
/// no call times out however long an instance is stalled).
pub(crate) async fn shared_engine(
    store: impl SharedStore,
    seattle: Ledger3pl,
    chicago: Ledger3pl,
    lease: Duration,
) -> Engine {
    Engine::builder()
        .shared_store(store)
        .clock(ManualClock::new(Timestamp(1_000)))
        .config(
            Config::default()
                .with_timeout(lease / 2)
                .with_work(WorkConfig::default().with_lease(lease).with_batch(8)),
        )
        .provider(seattle)
        .provider(chicago)
        .build()
        .await
        .unwrap()
}

/// Two instances share orders: every queued order runs once, on one of them, and each
/// fulfillment order is sent under one key.
pub(crate) async fn instances_share_orders<S: SharedStore>(a: S, b: S, lease: Duration) {
    let seattle = Ledger3pl::new("Seattle store 3PL");
    let chicago = Ledger3pl::new("Chicago store 3PL");
    let one = shared_engine(a, seattle.instance(), chicago.instance(), lease).await;
    super::publish_lab(&one).await;
    let two = shared_engine(b, seattle.instance(), chicago.instance(), lease).await;
    let n = 60;
    for i in 0..n {
        let quantity = if i % 2 == 0 { 150.0 } else { 10.0 };
        one.enqueue(Event::new_order(super::lab_order(
            &format!("SH-{i}"),
            quantity,
        )))
        .await
        .unwrap();
    }
    // An event that can never run: an unknown order, no document.
    two.enqueue(Event::new(
        "orphan-1",
        EventKind::from("Custom"),
        OrderId::from("NOPE"),
    ))
    .await
    .unwrap();
    let (mut ran_one, mut ran_two, mut dead) = (0, 0, 0);
    loop {
        let (x, y) = futures::join!(one.work(), two.work());
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!((x.lost, x.failed, y.lost, y.failed), (0, 0, 0, 0));
        ran_one += x.events;
        ran_two += y.events;
        dead += x.dead_letters + y.dead_letters;
        if x.claimed == 0 && y.claimed == 0 {
            break;
        }
    }
    assert_eq!(ran_one + ran_two, n, "every queued event ran once");
    assert!(
        ran_one > 0 && ran_two > 0,
        "both instances took work ({ran_one}, {ran_two})"
    );
    assert_eq!(dead, 1);
    let letters = one.dead_letters(&OrderId::from("NOPE")).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].reason.contains("NOPE"), "{}", letters[0].reason);
    for i in 0..n {
        let order = one
            .order(&OrderId::from(format!("SH-{i}").as_str()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            order.status_reason,
            Some(StatusReason::SENT_TO_FULFILLMENT),
            "SH-{i}"
        );
    }
    let calls = seattle.calls.lock().unwrap().len() + chicago.calls.lock().unwrap().len();
    assert_eq!(calls, n, "one call per fulfillment order, no repeats");
}

/// An instance stalls inside a provider call past its lease; another takes the order over
/// and finishes it; when the first wakes, its write-back is rejected by the fencing token,
/// and the order keeps the second's result, with no step recorded twice.
pub(crate) async fn a_stalled_instance_is_fenced_off<S, E, Fut>(
    a: S,
    b: S,
    lease: Duration,
    expire: E,
) where
    S: SharedStore,
    E: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let seattle = Ledger3pl::new("Seattle store 3PL");
    let chicago = Ledger3pl::new("Chicago store 3PL");
    let gate = Arc::new(tokio::sync::Notify::new());
    let entered = Arc::new(tokio::sync::Notify::new());
    let stalled = shared_engine(
        a,
        seattle.gated(gate.clone(), entered.clone()),
        chicago.instance(),
        lease,
    )
    .await;
    super::publish_lab(&stalled).await;
    let healthy = shared_engine(b, seattle.instance(), chicago.instance(), lease).await;
    stalled
        .enqueue(Event::new_order(super::lab_order("RACE-1", 150.0)))
        .await
        .unwrap();

    let first = tokio::spawn({
        let stalled = stalled.clone();
        async move { stalled.work().await }
    });
    entered.notified().await;
    // The first instance is inside the call, its lease running out.
    expire().await;
    let report = healthy.work().await.unwrap();
    assert_eq!((report.claimed, report.lost, report.failed), (1, 0, 0));
    let done = healthy
        .order_state(&OrderId::from("RACE-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done.order.status_reason,
        Some(StatusReason::SENT_TO_FULFILLMENT)
    );

    // The stalled instance wakes up: its commit is fenced off.
    gate.notify_one();
    let report = first.await.unwrap().unwrap();
    assert_eq!((report.claimed, report.lost), (1, 1), "{report:?}");
    let after = healthy
        .order_state(&OrderId::from("RACE-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, done, "the stale write-back changed nothing");
    let journey = healthy.journey(&OrderId::from("RACE-1")).await.unwrap();
    let mut names: Vec<&str> = journey.steps.iter().map(|s| s.step.as_str()).collect();
    let total = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), total, "no step recorded twice: {names:?}");
    let calls = seattle.calls.lock().unwrap().clone();
    assert_eq!(
        calls.len(),
        2,
        "the call was repeated once, by the new holder"
    );
    assert_eq!(calls[0], calls[1], "under the same idempotency key");
    assert_eq!(
        seattle.applied.lock().unwrap().values().sum::<u32>(),
        1,
        "one effect"
    );
    // Nothing is left: the order is out of the work list.
    assert_eq!(stalled.work().await.unwrap().claimed, 0);
}
