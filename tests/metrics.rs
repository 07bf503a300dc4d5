//! The metrics the engine records (the `metrics` feature), read back from `metrics-util`'s
//! debugging recorder. Each test installs its own recorder on its thread (a
//! current-thread runtime runs every task there), so tests running in parallel never see
//! each other's numbers. Every assertion compares all the counters a phase recorded, so
//! a metric counted twice, or under another label, fails it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{lab_engine, lab_order, publish_lab};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};
use orderflow::clock::{ManualClock, Timestamp};
use orderflow::document::{Order, OrderLine};
use orderflow::engine::{Config, WorkConfig};
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::metrics as names;
use orderflow::store::SharedMemoryStore;
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore, Outcome};

/// A metric's name and its labels, sorted.
type Key = (String, Vec<(String, String)>);

/// What the recorder holds since the last look.
#[derive(Debug, Default)]
struct Taken {
    counters: BTreeMap<Key, u64>,
    histograms: BTreeMap<Key, Vec<f64>>,
    units: BTreeMap<String, metrics::Unit>,
}

/// Takes what was recorded since the last call (the debugging recorder resets counters
/// and histograms as it reads them); metrics with nothing new are left out.
fn take(snapshotter: &Snapshotter) -> Taken {
    let mut taken = Taken::default();
    for (key, unit, _description, value) in snapshotter.snapshot().into_vec() {
        let (kind, key): (MetricKind, _) = CompositeKey::into_parts(key);
        let name = key.name().to_owned();
        let mut labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        labels.sort();
        if let Some(unit) = unit {
            taken.units.insert(name.clone(), unit);
        }
        match (kind, value) {
            (MetricKind::Counter, DebugValue::Counter(0)) => {}
            (MetricKind::Counter, DebugValue::Counter(n)) => {
                taken.counters.insert((name, labels), n);
            }
            (MetricKind::Histogram, DebugValue::Histogram(values)) if !values.is_empty() => {
                taken
                    .histograms
                    .insert((name, labels), values.iter().map(|v| v.0).collect());
            }
            (MetricKind::Histogram, DebugValue::Histogram(_)) => {}
            (kind, value) => panic!("unexpected {kind:?} {name}: {value:?}"),
        }
    }
    taken
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (name.to_owned(), labels)
}

/// A counter's name, labels and value.
type Expected<'a> = (&'a str, &'a [(&'a str, &'a str)], u64);

/// The counters a phase must have recorded, and nothing else.
fn counters(expected: &[Expected<'_>]) -> BTreeMap<Key, u64> {
    expected
        .iter()
        .map(|(name, labels, n)| (key(name, labels), *n))
        .collect()
}

/// The number of samples of each histogram; every sample a finite, non-negative number.
fn samples(taken: &Taken) -> BTreeMap<Key, usize> {
    for (key, values) in &taken.histograms {
        assert!(
            values.iter().all(|v| v.is_finite() && *v >= 0.0),
            "{key:?}: {values:?}"
        );
    }
    taken
        .histograms
        .iter()
        .map(|(k, v)| (k.clone(), v.len()))
        .collect()
}

fn steps(flow: &str, step: &str, outcome: &str) -> (Key, u64) {
    (
        key(
            names::STEPS,
            &[("flow", flow), ("step", step), ("outcome", outcome)],
        ),
        1,
    )
}

#[tokio::test]
async fn the_reference_lab_counts_orders_events_steps_and_provider_calls() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let (engine, seattle, chicago) = lab_engine(MemoryStore::new()).await;
    publish_lab(&engine).await;
    let before = take(&snapshotter);
    assert!(before.counters.is_empty(), "{:?}", before.counters);
    assert_eq!(
        before.units.get(names::PROVIDER_CALL_SECONDS),
        None,
        "described, not yet recorded"
    );

    // Seven pens pass the lab's checks; one pen fails "Quantity at least 5".
    let event = Event::new_order(lab_order("SO-1", 7));
    assert!(!engine.submit(event.clone()).await.unwrap().duplicate);
    assert!(engine.submit(event).await.unwrap().duplicate);
    engine
        .submit(Event::new_order(lab_order("SO-2", 1)))
        .await
        .unwrap();

    let taken = take(&snapshotter);
    let lab = "Reference lab";
    // SO-1 goes to one store: the other branch's filter leaves it no record.
    let (sent, skipped) = if seattle.calls().len() == 1 {
        ("Send to Seattle", "Send to Chicago")
    } else {
        ("Send to Chicago", "Send to Seattle")
    };
    let mut expected = counters(&[
        (names::ORDERS_ACCEPTED, &[], 2),
        (names::EVENTS_ACCEPTED, &[("duplicate", "false")], 2),
        (names::EVENTS_ACCEPTED, &[("duplicate", "true")], 1),
    ]);
    expected.extend([
        (
            key(
                names::STEPS,
                &[
                    ("flow", lab),
                    ("step", "Validate order header"),
                    ("outcome", "succeeded"),
                ],
            ),
            2,
        ),
        steps(lab, "Validate order lines", "succeeded"),
        steps(lab, "Validate order lines", "failed"),
        steps(lab, "Policy based fulfillment determination", "succeeded"),
        steps(lab, "By store", "succeeded"),
        steps(lab, sent, "succeeded"),
        steps(lab, skipped, "skipped"),
    ]);
    assert_eq!(taken.counters, expected);

    // The steps counted are the journeys' rows.
    let mut rows = BTreeMap::new();
    for order in ["SO-1", "SO-2"] {
        for row in engine.journey(order).await.unwrap().steps {
            let outcome = match row.outcome {
                Outcome::Succeeded => "succeeded",
                Outcome::Failed => "failed",
                Outcome::Cancelled => "cancelled",
                Outcome::Skipped => "skipped",
            };
            *rows
                .entry(key(
                    names::STEPS,
                    &[
                        ("flow", &row.flow),
                        ("step", &row.step),
                        ("outcome", outcome),
                    ],
                ))
                .or_insert(0) += 1;
        }
    }
    let counted: BTreeMap<Key, u64> = taken
        .counters
        .iter()
        .filter(|((name, _), _)| name == names::STEPS)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(counted, rows);

    // One provider call, to the store the order went to.
    assert_eq!(seattle.calls().len() + chicago.calls().len(), 1);
    let provider = if sent == "Send to Seattle" {
        "Seattle store 3PL"
    } else {
        "Chicago store 3PL"
    };
    assert_eq!(
        samples(&taken),
        BTreeMap::from([(
            key(
                names::PROVIDER_CALL_SECONDS,
                &[("provider", provider), ("kind", "send_fulfillment_order")]
            ),
            1
        )])
    );
    assert_eq!(
        taken.units.get(names::PROVIDER_CALL_SECONDS),
        Some(&metrics::Unit::Seconds)
    );
    assert_eq!(taken.units.get(names::STEPS), Some(&metrics::Unit::Count));

    // A dry run records nothing.
    let flow = Flow::from_json(common::FLOW).unwrap();
    engine.simulate(&flow, &lab_order("SIM", 7)).await.unwrap();
    let taken = take(&snapshotter);
    assert!(taken.counters.is_empty(), "{:?}", taken.counters);
    assert!(taken.histograms.is_empty(), "{:?}", taken.histograms);
}

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_millis(1_000))
}

fn config() -> Config {
    Config::default()
        .with_retry(RetryPolicy::new(3, Duration::from_millis(1_000)).with_jitter(0.0))
        .with_timeout(Duration::from_secs(5))
}

/// New order → invoice through Billing.
fn bill() -> Flow {
    Flow::builder("Bill")
        .steps(|s| {
            s.action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap()
}

fn pen(id: &str) -> Event {
    Event::new_order(Order::new(id).with_line(OrderLine::new("1", "Surface Pen", 2)))
}

fn billing(clock: &ManualClock) -> ScriptedProvider {
    ScriptedProvider::new("Billing", clock.clone())
}

#[tokio::test]
async fn a_retryable_failure_counts_an_error_a_retry_and_a_due_timer() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let clock = clock();
    let billing = billing(&clock);
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .config(config())
        .provider(billing.clone())
        .build()
        .await
        .unwrap();
    engine.create_flow(bill()).await.unwrap();
    engine.publish("Bill").await.unwrap();
    take(&snapshotter);

    billing.then(Behavior::Retryable("billing restarting".into()));
    billing.then(Behavior::Ok);
    billing.then(Behavior::Fatal("no such customer".into()));
    engine.submit(pen("SO-1")).await.unwrap();
    let invoice = [("provider", "Billing"), ("kind", "send_invoice")];
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[
            (names::ORDERS_ACCEPTED, &[], 1),
            (names::EVENTS_ACCEPTED, &[("duplicate", "false")], 1),
            (
                names::PROVIDER_ERRORS,
                &[
                    ("provider", "Billing"),
                    ("kind", "send_invoice"),
                    ("error", "unavailable")
                ],
                1
            ),
            (names::PROVIDER_RETRIES, &invoice, 1),
        ]),
        "the step waits for its retry: no journey row yet"
    );
    assert_eq!(
        samples(&taken),
        BTreeMap::from([(key(names::PROVIDER_CALL_SECONDS, &invoice), 1)])
    );

    // Nothing is due before the backoff ends.
    assert_eq!(engine.run_due().await.unwrap(), 0);
    assert!(take(&snapshotter).counters.is_empty());

    clock.advance(Duration::from_secs(1));
    assert_eq!(engine.run_due().await.unwrap(), 1);
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[
            (names::TIMERS_DUE, &[], 1),
            (
                names::STEPS,
                &[
                    ("flow", "Bill"),
                    ("step", "Invoice"),
                    ("outcome", "succeeded")
                ],
                1
            ),
        ])
    );
    assert_eq!(
        samples(&taken),
        BTreeMap::from([(key(names::PROVIDER_CALL_SECONDS, &invoice), 1)])
    );

    // A permanent failure is an error, not a retry, and the step fails.
    engine.submit(pen("SO-2")).await.unwrap();
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[
            (names::ORDERS_ACCEPTED, &[], 1),
            (names::EVENTS_ACCEPTED, &[("duplicate", "false")], 1),
            (
                names::PROVIDER_ERRORS,
                &[
                    ("provider", "Billing"),
                    ("kind", "send_invoice"),
                    ("error", "rejected")
                ],
                1
            ),
            (
                names::STEPS,
                &[("flow", "Bill"), ("step", "Invoice"), ("outcome", "failed")],
                1
            ),
        ])
    );
    assert_eq!(billing.calls().len(), 3);
}

async fn shared_engine(
    store: &SharedMemoryStore,
    clock: &ManualClock,
    billing: Option<&ScriptedProvider>,
) -> Engine {
    let mut builder = Engine::builder()
        .shared_store(store.handle())
        .clock(clock.clone())
        .config(config());
    if let Some(billing) = billing {
        builder = builder.provider(billing.clone());
    }
    builder.build().await.unwrap()
}

#[tokio::test]
async fn a_shared_work_round_counts_claims_queued_events_and_dead_letters() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let clock = clock();
    let billing = billing(&clock);
    let store = SharedMemoryStore::new(clock.clone());
    let engine = shared_engine(&store, &clock, Some(&billing)).await;
    engine.create_flow(bill()).await.unwrap();
    engine.publish("Bill").await.unwrap();
    take(&snapshotter);

    let event = pen("SO-1");
    engine.enqueue(event.clone()).await.unwrap();
    engine.enqueue(event).await.unwrap();
    // An event for an order nobody holds, without its document: it can never run.
    engine
        .enqueue(Event::new("ghost-1", EventKind::SHIPPED, "GHOST"))
        .await
        .unwrap();
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[(names::EVENTS_ENQUEUED, &[], 3)])
    );

    let report = engine.work().await.unwrap();
    assert_eq!(
        (report.claimed, report.events, report.dead_letters),
        (2, 2, 1),
        "{report:?}"
    );
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[
            (names::ORDERS_ACCEPTED, &[], 1),
            (names::EVENTS_ACCEPTED, &[("duplicate", "false")], 1),
            (names::EVENTS_ACCEPTED, &[("duplicate", "true")], 1),
            (names::DEAD_LETTERS, &[], 1),
            (
                names::STEPS,
                &[
                    ("flow", "Bill"),
                    ("step", "Invoice"),
                    ("outcome", "succeeded")
                ],
                1
            ),
        ])
    );
    assert_eq!(
        samples(&taken),
        BTreeMap::from([
            (key(names::WORK_CLAIMED, &[]), 1),
            (key(names::WORK_CLAIM_SECONDS, &[]), 1),
            (
                key(
                    names::PROVIDER_CALL_SECONDS,
                    &[("provider", "Billing"), ("kind", "send_invoice")]
                ),
                1
            ),
        ])
    );
    assert_eq!(taken.histograms[&key(names::WORK_CLAIMED, &[])], [2.0]);
    assert_eq!(
        taken.units.get(names::WORK_CLAIMED),
        Some(&metrics::Unit::Count)
    );
    assert_eq!(
        taken.units.get(names::WORK_CLAIM_SECONDS),
        Some(&metrics::Unit::Seconds)
    );

    // An empty round is a claim of nothing.
    assert_eq!(engine.work().await.unwrap().claimed, 0);
    let taken = take(&snapshotter);
    assert!(taken.counters.is_empty(), "{:?}", taken.counters);
    assert_eq!(taken.histograms[&key(names::WORK_CLAIMED, &[])], [0.0]);
}

#[tokio::test]
async fn orders_set_aside_are_counted_by_error_kind_on_either_worker() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let warnings = Warnings::default();
    #[cfg(feature = "tracing")]
    let _traced = warnings.collect();

    // A shared store: the instance that claims the order lacks its flow's provider.
    let clock = clock();
    let billing = billing(&clock);
    let store = SharedMemoryStore::new(clock.clone());
    let a = shared_engine(&store, &clock, Some(&billing)).await;
    a.create_flow(bill()).await.unwrap();
    a.publish("Bill").await.unwrap();
    a.enqueue(pen("POISON")).await.unwrap();
    let b = shared_engine(&store, &clock, None).await;
    take(&snapshotter);
    let report = b.work().await.unwrap();
    assert_eq!(report.set_aside, 1, "{report:?}");
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[
            (names::ORDERS_SET_ASIDE, &[("kind", "configuration")], 1),
            (
                names::ORDER_FAILURES,
                &[("kind", "configuration"), ("set_aside", "true")],
                1
            ),
        ])
    );

    // The timer worker's round: an order waiting on a retry, due on an instance without
    // the provider. Its execution's flow version does not validate here.
    let store: Arc<dyn orderflow::Store> = Arc::new(MemoryStore::new());
    let a = Engine::builder()
        .store(store.clone())
        .clock(clock.clone())
        .config(config())
        .provider(billing.clone())
        .build()
        .await
        .unwrap();
    a.create_flow(bill()).await.unwrap();
    a.publish("Bill").await.unwrap();
    billing.then(Behavior::Retryable("billing restarting".into()));
    a.submit(pen("LATER")).await.unwrap();
    let b = Engine::builder()
        .store(store.clone())
        .clock(clock.clone())
        .config(config())
        .build()
        .await
        .unwrap();
    take(&snapshotter);
    clock.advance(Duration::from_secs(1));
    assert_eq!(b.run_due().await.unwrap(), 1);
    let aside = b.set_aside_orders().await.unwrap();
    assert_eq!(aside.len(), 1);
    assert!(
        aside[0].reason.contains("'Billing' is not registered"),
        "{aside:?}"
    );
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[
            (names::ORDERS_SET_ASIDE, &[("kind", "validation")], 1),
            (
                names::ORDER_FAILURES,
                &[("kind", "validation"), ("set_aside", "true")],
                1
            ),
        ]),
        "set aside, not run: no due timer counted"
    );
    assert_eq!(warnings.count("order failed", 2), 2);
}

/// A shared memory store whose claims, housekeeping and timer listing fail while it is
/// down, as a database that went away.
#[derive(Debug)]
struct Outage {
    inner: SharedMemoryStore,
    down: Arc<AtomicBool>,
}

mod outage {
    use super::Outage;
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
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    impl Outage {
        fn up(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::Relaxed) {
                Err(StoreError::new(
                    StoreErrorKind::Unavailable,
                    "the server went away",
                ))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait]
    impl Store for Outage {
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
            self.inner.commit(change).await
        }
        async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
            self.inner.journey(order).await
        }
        async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
            self.inner.live_orders().await
        }
        async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
            self.up()?;
            self.inner.due(now, limit).await
        }
        async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
            self.up()?;
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
    impl SharedStore for Outage {
        async fn enqueue(&self, event: &Event) -> Result<(), StoreError> {
            self.inner.enqueue(event).await
        }
        async fn claim(
            &self,
            now: Timestamp,
            limit: usize,
            lease: Duration,
        ) -> Result<Vec<Lease>, StoreError> {
            self.up()?;
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
            self.inner.consume(lease, seq, failure).await
        }
        async fn release(&self, lease: &Lease) -> Result<(), StoreError> {
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
            self.up()?;
            self.inner.maintain().await
        }
    }
}

/// Yields to the spawned worker until the counters it recorded reach `expected`, adding
/// each look to `seen`; then they must be exactly `expected`.
async fn until_counted(
    snapshotter: &Snapshotter,
    seen: &mut BTreeMap<Key, u64>,
    expected: BTreeMap<Key, u64>,
) {
    for _ in 0..10_000 {
        for (k, n) in take(snapshotter).counters {
            *seen.entry(k).or_insert(0) += n;
        }
        if expected.iter().all(|(k, n)| seen.get(k) >= Some(n)) {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Whatever else the worker would do now, it does before it sleeps.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    for (k, n) in take(snapshotter).counters {
        *seen.entry(k).or_insert(0) += n;
    }
    assert_eq!(*seen, expected);
}

/// With the `tracing` feature, the warnings the engine writes on this thread, to check
/// that each error a worker swallows is traced as well as counted.
#[derive(Clone, Default)]
struct Warnings(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Warnings {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Warnings {
    /// Collects the warnings written on this thread while the guard lives.
    #[cfg(feature = "tracing")]
    fn collect(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// How many lines say `message` (always `expected` without the `tracing` feature).
    fn count(&self, message: &str, expected: usize) -> usize {
        if cfg!(feature = "tracing") {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().filter(|l| l.contains(message)).count()
        } else {
            expected
        }
    }
}

#[tokio::test]
async fn errors_the_workers_swallow_are_counted_by_worker_operation_and_kind() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let warnings = Warnings::default();
    #[cfg(feature = "tracing")]
    let _traced = warnings.collect();
    let clock = clock();
    let down = Arc::new(AtomicBool::new(true));
    let store = SharedMemoryStore::new(clock.clone());
    let outage = || Outage {
        inner: store.handle(),
        down: down.clone(),
    };

    // The shared worker: a claim fails at once; a second, and housekeeping, once its
    // interval has passed on the clock.
    let engine = Engine::builder()
        .shared_store(outage())
        .clock(clock.clone())
        .config(
            config().with_work(
                WorkConfig::default()
                    .with_poll(Duration::from_secs(1))
                    .with_maintenance(Duration::from_secs(1)),
            ),
        )
        .build()
        .await
        .unwrap();
    take(&snapshotter);
    let worker = tokio::spawn(engine.clone().run_worker());
    let shared = |op| {
        (
            names::WORKER_ERRORS,
            [("worker", "shared"), ("operation", op), ("kind", "store")],
        )
    };
    let mut seen = BTreeMap::new();
    let (name, labels) = shared("claim");
    until_counted(&snapshotter, &mut seen, counters(&[(name, &labels, 1)])).await;
    clock.advance(Duration::from_secs(1));
    let (housekeeping, housekeeping_labels) = shared("housekeeping");
    until_counted(
        &snapshotter,
        &mut seen,
        counters(&[(name, &labels, 2), (housekeeping, &housekeeping_labels, 1)]),
    )
    .await;
    worker.abort();
    let _ = worker.await;
    assert_eq!(warnings.count("claiming work failed", 2), 2);
    assert_eq!(warnings.count("store housekeeping failed", 1), 1);

    // The timer worker: the store cannot list its timers.
    let engine = Engine::builder()
        .store(outage())
        .clock(clock.clone())
        .config(config())
        .build()
        .await
        .unwrap();
    take(&snapshotter);
    let timers = tokio::spawn(engine.clone().run_timers());
    let mut seen = BTreeMap::new();
    until_counted(
        &snapshotter,
        &mut seen,
        counters(&[(
            names::WORKER_ERRORS,
            &[
                ("worker", "timers"),
                ("operation", "round"),
                ("kind", "store"),
            ],
            1,
        )]),
    )
    .await;
    // Back up: the next round lists its timers and counts nothing.
    down.store(false, Ordering::Relaxed);
    clock.advance(config().timer_poll);
    until_counted(
        &snapshotter,
        &mut seen,
        counters(&[(
            names::WORKER_ERRORS,
            &[
                ("worker", "timers"),
                ("operation", "round"),
                ("kind", "store"),
            ],
            1,
        )]),
    )
    .await;
    timers.abort();
    let _ = timers.await;
    assert_eq!(warnings.count("timer round failed", 1), 1);
}

#[tokio::test]
async fn an_order_lost_to_another_instance_is_counted_once_and_run_there() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let warnings = Warnings::default();
    #[cfg(feature = "tracing")]
    let _traced = warnings.collect();

    let clock = clock();
    let store = SharedMemoryStore::new(clock.clone());
    let lease = Duration::from_secs(6);
    let instance = |billing: &ScriptedProvider| {
        Engine::builder()
            .shared_store(store.handle())
            .clock(clock.clone())
            .config(config().with_work(WorkConfig::default().with_lease(lease)))
            .provider(billing.clone())
            .build()
    };
    // The first instance's Billing never answers; the second's does.
    let stalled_billing = billing(&clock);
    stalled_billing.then(Behavior::Hang);
    let stalled = instance(&stalled_billing).await.unwrap();
    stalled.create_flow(bill()).await.unwrap();
    stalled.publish("Bill").await.unwrap();
    let healthy_billing = billing(&clock);
    let healthy = instance(&healthy_billing).await.unwrap();
    stalled.enqueue(pen("SO-1")).await.unwrap();
    take(&snapshotter);

    let first = tokio::spawn({
        let stalled = stalled.clone();
        async move { stalled.work().await }
    });
    while stalled_billing.calls().is_empty() {
        tokio::task::yield_now().await;
    }
    // The lease runs out (and the stalled call's timeout with it); the healthy instance
    // claims the order before the stalled one runs again.
    clock.advance(lease + Duration::from_millis(1));
    let report = healthy.work().await.unwrap();
    assert_eq!((report.claimed, report.events), (1, 1), "{report:?}");
    let report = first.await.unwrap().unwrap();
    assert_eq!((report.claimed, report.lost), (1, 1), "{report:?}");
    assert_eq!(warnings.count("order lost to another instance", 1), 1);

    let invoice = [("provider", "Billing"), ("kind", "send_invoice")];
    let taken = take(&snapshotter);
    assert_eq!(
        taken.counters,
        counters(&[
            // The stalled instance committed the order and its event before it called
            // Billing: they count once, when durable, though its work round failed.
            (names::ORDERS_ACCEPTED, &[], 1),
            (names::EVENTS_ACCEPTED, &[("duplicate", "false")], 1),
            // The healthy instance resumed the turn left under way (its resumption timer
            // was due), ran the step, and then found the queued event on the timeline.
            (names::TIMERS_DUE, &[], 1),
            (names::EVENTS_ACCEPTED, &[("duplicate", "true")], 1),
            (
                names::STEPS,
                &[
                    ("flow", "Bill"),
                    ("step", "Invoice"),
                    ("outcome", "succeeded")
                ],
                1
            ),
            // The stalled call timed out; its retry was never committed.
            (
                names::PROVIDER_ERRORS,
                &[
                    ("provider", "Billing"),
                    ("kind", "send_invoice"),
                    ("error", "timeout")
                ],
                1
            ),
            (names::PROVIDER_RETRIES, &invoice, 1),
            (
                names::WORKER_ERRORS,
                &[
                    ("worker", "shared"),
                    ("operation", "lease"),
                    ("kind", "store")
                ],
                1
            ),
        ])
    );
    assert_eq!(
        samples(&taken),
        BTreeMap::from([
            (key(names::WORK_CLAIMED, &[]), 2),
            (key(names::WORK_CLAIM_SECONDS, &[]), 2),
            (key(names::PROVIDER_CALL_SECONDS, &invoice), 2),
        ])
    );
}
