//! The work-sharing protocol of a `SharedStore`, checked on two handles of one store: what
//! the memory and PostgreSQL tests share.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orderflow::document::{Order, OrderId};
use orderflow::engine::WorkConfig;
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::store::SharedStore;
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
    orderflow::testing::conformance::check_shared_store(a, b, lease, expire).await;

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
        // A key applies once; a repeated call finds it applied.
        self.applied.lock().unwrap().entry(key).or_insert(1);
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
        let quantity = if i % 2 == 0 { 150 } else { 10 };
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
        .enqueue(Event::new_order(super::lab_order("RACE-1", 150)))
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
        done.order().status_reason,
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
