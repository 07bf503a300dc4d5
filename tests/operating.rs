//! Operating safely, tried the way deployments run the engine: instances built at
//! different times over one store, a flow paused through one instance while another
//! works, an order whose flow cannot run among healthy ones, lifecycle operations racing
//! each other, a provider call in flight while the order is read, an order flooded with
//! events.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{pen_order as new_order, shipped};

use futures::FutureExt;
use orderflow::ErrorKind;
use orderflow::clock::{ManualClock, Timestamp};
use orderflow::document::{Order, OrderId};
use orderflow::engine::Config;
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow, FlowStatus, RetryPolicy};
use orderflow::limits::Limits;
use orderflow::rules::{Condition, PolicyDocument, Rule};
use orderflow::store::{SharedMemoryStore, SharedStore};
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::{ActionKind, Engine, Error, Event, EventKind, MemoryStore, PolicyKind, Store};

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_millis(1_000))
}

struct Providers {
    erp: ScriptedProvider,
    billing: ScriptedProvider,
}

impl Providers {
    fn new(clock: &ManualClock) -> Self {
        Self {
            erp: ScriptedProvider::new("ERP", clock.clone()),
            billing: ScriptedProvider::new("Billing", clock.clone()),
        }
    }
}

fn config() -> Config {
    Config::default()
        .with_retry(RetryPolicy::new(3, Duration::from_millis(100)).with_jitter(0.0))
        .with_timeout(Duration::from_secs(5))
}

async fn engine_on(store: Arc<dyn Store>, clock: &ManualClock, p: &Providers) -> Engine {
    Engine::builder()
        .store(store)
        .clock(clock.clone())
        .config(config())
        .provider(p.erp.clone())
        .provider(p.billing.clone())
        .build()
        .await
        .unwrap()
}

async fn shared_engine(store: &SharedMemoryStore, clock: &ManualClock, p: &Providers) -> Engine {
    Engine::builder()
        .shared_store(store.handle())
        .clock(clock.clone())
        .config(config())
        .provider(p.erp.clone())
        .provider(p.billing.clone())
        .build()
        .await
        .unwrap()
}

async fn status(engine: &Engine, order: &str) -> Vec<ExecutionStatus> {
    engine
        .order_state(&OrderId::from(order))
        .await
        .unwrap()
        .map(|s| s.executions().iter().map(|x| x.status()).collect())
        .unwrap_or_default()
}

/// Works the shared store until a round claims nothing.
async fn work(engine: &Engine) {
    for _ in 0..100 {
        if engine.work().await.unwrap().claimed == 0 {
            return;
        }
    }
    panic!("work kept coming");
}

// 1. Every instance sees the catalog as it is now.

#[tokio::test]
async fn an_instance_built_before_a_publish_runs_the_new_flow() {
    let clock = clock();
    let p = Providers::new(&clock);
    let store = SharedMemoryStore::new(clock.clone());
    // Both instances start on an empty catalog.
    let a = shared_engine(&store, &clock, &p).await;
    let b = shared_engine(&store, &clock, &p).await;
    common::publish_ship_and_bill(&b).await;

    a.enqueue(new_order("SO-1")).await.unwrap();
    let report = a.work().await.unwrap();
    assert_eq!((report.claimed, report.events), (1, 1));
    assert_eq!(
        status(&a, "SO-1").await,
        [ExecutionStatus::Waiting],
        "the instance built before the publish started the flow instead of taking the \
         event for nothing"
    );
    assert_eq!(p.erp.effects().len(), 1);
    assert_eq!(
        a.flow("Ship and bill").unwrap().status,
        FlowStatus::Published
    );
}

#[tokio::test]
async fn a_pause_through_one_instance_holds_on_the_other_until_resumed_there() {
    let clock = clock();
    let p = Providers::new(&clock);
    let store = SharedMemoryStore::new(clock.clone());
    let a = shared_engine(&store, &clock, &p).await;
    let b = shared_engine(&store, &clock, &p).await;
    common::publish_ship_and_bill(&a).await;
    a.enqueue(new_order("SO-1")).await.unwrap();
    work(&a).await;
    assert_eq!(p.erp.effects().len(), 1);

    b.pause("Ship and bill").await.unwrap();
    // Instance a works on: the paused flow does not move there either.
    a.enqueue(shipped("SO-1")).await.unwrap();
    a.enqueue(new_order("SO-2")).await.unwrap();
    work(&a).await;
    assert!(
        p.billing.effects().is_empty(),
        "a flow paused through b moved on a"
    );
    assert_eq!(p.erp.effects().len(), 1, "a paused flow started work on a");

    b.resume("Ship and bill").await.unwrap();
    work(&a).await;
    assert_eq!(status(&a, "SO-1").await, [ExecutionStatus::Completed]);
    assert_eq!(status(&a, "SO-2").await, [ExecutionStatus::Waiting]);
    assert_eq!(p.billing.effects().len(), 1);
    assert_eq!(p.erp.effects().len(), 2);
}

/// An instance that resumed a flow can die between saving the flow and waking what queued
/// (SIGKILL, a dropped future with no worker of its own): its recovery flag dies with it.
/// The store then says the flow is published while the orders that queued on it are out of
/// the work list; the other instance's worker must still notice, with no new event.
#[tokio::test]
async fn a_resume_whose_instance_died_after_the_save_is_run_by_the_other_instances_worker() {
    let clock = clock();
    let p = Providers::new(&clock);
    let store = SharedMemoryStore::new(clock.clone());
    let a = shared_engine(&store, &clock, &p).await;
    common::publish_ship_and_bill(&a).await;
    a.pause("Ship and bill").await.unwrap();
    a.enqueue(new_order("SO-1")).await.unwrap();
    work(&a).await;
    assert!(p.erp.effects().is_empty(), "the flow is paused");
    assert_eq!(store.work_len().await, 0, "nothing left to claim");

    // What the dead instance's resume left behind: the flow saved as published, no order
    // woken.
    let mut resumed = a.flow("Ship and bill").unwrap();
    resumed.status = FlowStatus::Published;
    Store::save_flow(&store, &resumed, false).await.unwrap();

    let worker = tokio::spawn(a.clone().run_worker());
    for _ in 0..200 {
        if !p.erp.effects().is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    worker.abort();
    let _ = worker.await;
    assert_eq!(
        p.erp.effects().len(),
        1,
        "the order queued on the paused flow was never run after the resume"
    );
    assert_eq!(status(&a, "SO-1").await, [ExecutionStatus::Waiting]);
}

#[tokio::test]
async fn a_republish_through_one_instance_starts_the_new_version_on_another() {
    let clock = clock();
    let p = Providers::new(&clock);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = engine_on(store.clone(), &clock, &p).await;
    let b = engine_on(store.clone(), &clock, &p).await;
    common::publish_ship_and_bill(&a).await;
    a.submit(new_order("SO-1")).await.unwrap();

    b.stop("Ship and bill").await.unwrap();
    let mut next = b.flow("Ship and bill").unwrap();
    next.version = semver::Version::new(1, 1, 0);
    b.update_flow(next).await.unwrap();
    b.publish("Ship and bill").await.unwrap();

    a.submit(new_order("SO-2")).await.unwrap();
    let state = a.order_state("SO-2").await.unwrap().unwrap();
    assert_eq!(
        *state.executions()[0].version(),
        semver::Version::new(1, 1, 0),
        "a still ran the version it had read at build"
    );
    // The execution a started before the republish stays on its version.
    let first = a.order_state("SO-1").await.unwrap().unwrap();
    assert_eq!(
        *first.executions()[0].version(),
        semver::Version::new(1, 0, 0)
    );
}

#[tokio::test]
async fn a_policy_created_through_one_instance_is_there_for_a_publish_on_another() {
    let clock = clock();
    let p = Providers::new(&clock);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let a = engine_on(store.clone(), &clock, &p).await;
    let b = engine_on(store.clone(), &clock, &p).await;
    let policy = PolicyDocument::new(
        "US only",
        PolicyKind::Execution,
        orderflow::document::Entity::Order,
    )
    .with_rule(Rule::check(
        "US",
        Condition::equals("ship_to.country", "US"),
    ));
    b.create_policy(policy).await.unwrap();
    b.publish_policy("US only").await.unwrap();
    let flow = Flow::builder("Checked")
        .steps(|s| {
            s.action(
                ActionStep::new("Validate", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER)
                    .execution_policy("US only"),
            )
        })
        .build()
        .unwrap();
    a.create_flow(flow).await.unwrap();
    a.publish("Checked").await.unwrap();
    a.submit(new_order("SO-1")).await.unwrap();
    assert_eq!(status(&a, "SO-1").await, [ExecutionStatus::Completed]);
}

// 2. One bad order never stops the others.

/// An engine without the Billing provider: the flow's second step cannot run here.
async fn without_billing(store: Arc<dyn Store>, clock: &ManualClock, p: &Providers) -> Engine {
    Engine::builder()
        .store(store)
        .clock(clock.clone())
        .config(config())
        .provider(p.erp.clone())
        .build()
        .await
        .unwrap()
}

/// New order → invoice through Billing.
fn bill(name: &str, kind: EventKind) -> Flow {
    Flow::builder(name)
        .steps(|s| {
            s.action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(kind)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap()
}

/// Return requested → to ERP.
fn to_erp(name: &str) -> Flow {
    Flow::builder(name)
        .steps(|s| {
            s.action(
                ActionStep::new("To ERP", ActionKind::SendToFulfillmentErp)
                    .input_event(EventKind::new("Return requested"))
                    .provider("ERP"),
            )
        })
        .build()
        .unwrap()
}

fn return_requested(id: &str) -> Event {
    Event::new(
        format!("return-{id}"),
        EventKind::new("Return requested"),
        id,
    )
    .with_order(Order::new(id))
}

#[tokio::test]
async fn an_order_whose_flow_cannot_run_is_set_aside_and_the_others_go_on() {
    let clock = clock();
    let p = Providers::new(&clock);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    {
        let a = engine_on(store.clone(), &clock, &p).await;
        a.create_flow(bill("Bill", EventKind::NEW_ORDER))
            .await
            .unwrap();
        a.publish("Bill").await.unwrap();
        a.create_flow(to_erp("Returns")).await.unwrap();
        a.publish("Returns").await.unwrap();
        // Both orders wait on a retry timer when this instance goes away.
        p.billing
            .then(Behavior::Retryable("billing restarting".into()));
        p.erp.then(Behavior::Retryable("ERP restarting".into()));
        a.submit(new_order("POISON")).await.unwrap();
        a.submit(return_requested("HEALTHY")).await.unwrap();
    }
    // A new instance without the Billing provider starts all the same, and says why the
    // flow cannot run.
    let b = without_billing(store.clone(), &clock, &p).await;
    let problems = b.catalog_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].name, "Bill");
    assert!(problems[0].reason.contains("Billing"), "{problems:?}");

    clock.advance(Duration::from_secs(1));
    assert_eq!(
        b.run_due().await.unwrap(),
        2,
        "both due orders were handled"
    );
    assert_eq!(status(&b, "HEALTHY").await, [ExecutionStatus::Completed]);
    let aside = b.set_aside_orders().await.unwrap();
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].order, OrderId::from("POISON"));
    assert!(aside[0].reason.contains("Billing"), "{aside:?}");
    assert_eq!(
        b.next_due().await.unwrap(),
        None,
        "set aside: off the timers"
    );

    // A new event that would start the flow is refused, not taken for nothing.
    let err = b.submit(new_order("SO-NEW")).await.unwrap_err();
    assert!(matches!(err, Error::FlowBroken { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(b.order_state("SO-NEW").await.unwrap().is_none());
    // Others are taken.
    b.submit(return_requested("HEALTHY-2")).await.unwrap();
    assert_eq!(status(&b, "HEALTHY-2").await, [ExecutionStatus::Completed]);

    // With the provider back, the order is restored and finishes.
    let c = engine_on(store.clone(), &clock, &p).await;
    assert!(c.catalog_problems().is_empty());
    assert!(c.restore("POISON").await.unwrap());
    assert_eq!(status(&c, "POISON").await, [ExecutionStatus::Completed]);
    assert!(c.set_aside_orders().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_worker_sets_a_poison_order_aside_and_keeps_its_events() {
    let clock = clock();
    let p = Providers::new(&clock);
    let store = SharedMemoryStore::new(clock.clone());
    let a = shared_engine(&store, &clock, &p).await;
    a.create_flow(bill("Bill", EventKind::NEW_ORDER))
        .await
        .unwrap();
    a.publish("Bill").await.unwrap();
    a.create_flow(to_erp("Returns")).await.unwrap();
    a.publish("Returns").await.unwrap();
    a.enqueue(new_order("POISON")).await.unwrap();
    a.enqueue(return_requested("HEALTHY")).await.unwrap();

    let b = Engine::builder()
        .shared_store(store.handle())
        .clock(clock.clone())
        .config(config())
        .provider(p.erp.clone())
        .build()
        .await
        .unwrap();
    let report = b.work().await.unwrap();
    assert_eq!(report.claimed, 2);
    assert_eq!(report.set_aside, 1, "{report:?}");
    assert_eq!(
        report.dead_letters, 0,
        "the event is not the order's fault: {report:?}"
    );
    assert_eq!(status(&b, "HEALTHY").await, [ExecutionStatus::Completed]);
    assert_eq!(
        store.queued().await,
        1,
        "the poison order's event stays queued"
    );
    assert!(b.dead_letters("POISON").await.unwrap().is_empty());
    // Claims skip it from now on.
    assert_eq!(b.work().await.unwrap().claimed, 0);

    // An instance with the provider takes it back and runs it.
    assert!(a.restore("POISON").await.unwrap());
    let report = a.work().await.unwrap();
    assert_eq!((report.claimed, report.events), (1, 1), "{report:?}");
    assert_eq!(status(&a, "POISON").await, [ExecutionStatus::Completed]);
}

#[tokio::test]
async fn an_order_whose_commits_keep_failing_is_set_aside_and_the_others_go_on() {
    use orderflow::store::StoreErrorKind;
    use orderflow::testing::store::FaultyStore;

    let clock = clock();
    let p = Providers::new(&clock);
    let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let engine = engine_on(store.clone(), &clock, &p).await;
    engine.create_flow(to_erp("Returns")).await.unwrap();
    engine.publish("Returns").await.unwrap();
    // Both orders wait on a retry timer.
    p.erp.script([
        Behavior::Retryable("ERP restarting".into()),
        Behavior::Retryable("ERP restarting".into()),
    ]);
    engine.submit(return_requested("STUCK")).await.unwrap();
    engine.submit(return_requested("HEALTHY")).await.unwrap();
    // From now on the backend refuses every write of one order.
    store.fail_commits_of("STUCK", StoreErrorKind::Refused);

    clock.advance(Duration::from_secs(1));
    engine.run_due().await.unwrap();
    assert_eq!(
        status(&engine, "HEALTHY").await,
        [ExecutionStatus::Completed]
    );
    // A refusal may pass: the order is tried again on each round, then set aside.
    let mut rounds = 1;
    while engine.set_aside_orders().await.unwrap().is_empty() {
        assert!(
            rounds < 10,
            "the order keeps failing and is never set aside"
        );
        clock.advance(Duration::from_secs(1));
        engine.run_due().await.unwrap();
        rounds += 1;
    }
    let aside = engine.set_aside_orders().await.unwrap();
    assert_eq!(aside[0].order, OrderId::from("STUCK"));
    assert!(aside[0].reason.contains("injected failure"), "{aside:?}");
    assert_eq!(rounds, 5, "set aside at the fifth failure in a row");
    assert_eq!(engine.next_due().await.unwrap(), None);
}

// 7. Per-order growth is bounded, and reads never wait on work.

#[tokio::test]
async fn an_order_takes_no_more_events_than_its_timeline_limit() {
    let clock = clock();
    let engine = Engine::builder()
        .clock(clock.clone())
        .config(Config::default().with_limits(Limits::default().with_max_timeline_events(5)))
        .build()
        .await
        .unwrap();
    engine
        .submit(Event::new("e-0", EventKind::new("Note"), "SO-1").with_order(Order::new("SO-1")))
        .await
        .unwrap();
    for n in 1..5 {
        engine
            .submit(Event::new(format!("e-{n}"), EventKind::new("Note"), "SO-1"))
            .await
            .unwrap();
    }
    let err = engine
        .submit(Event::new("e-5", EventKind::new("Note"), "SO-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Limit);
    let message = err.to_string();
    assert!(
        message.contains("max_timeline_events") && message.contains("SO-1"),
        "{message}"
    );
    // It says how long the timeline would have been: the five it holds and this one.
    assert!(
        message.contains("= 5 ") && message.ends_with("found 6"),
        "{message}"
    );
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    assert_eq!(state.timeline().len(), 5);
    // A duplicate of an event it has is still recognised.
    assert!(
        engine
            .submit(Event::new("e-4", EventKind::new("Note"), "SO-1"))
            .await
            .unwrap()
            .duplicate
    );
}

#[tokio::test]
async fn reads_do_not_wait_behind_a_provider_call_in_flight() {
    let clock = clock();
    let p = Providers::new(&clock);
    let engine = engine_on(Arc::new(MemoryStore::new()), &clock, &p).await;
    common::publish_ship_and_bill(&engine).await;
    p.erp.then(Behavior::Hang);
    let running = engine.clone();
    let call = tokio::spawn(async move { running.submit(new_order("SO-1")).await });
    while p.erp.calls().is_empty() {
        tokio::task::yield_now().await;
    }
    // The memory store answers at once: a read that waited on the order would not.
    let journey = engine
        .journey("SO-1")
        .now_or_never()
        .expect("journey waited behind the call in flight")
        .unwrap();
    assert!(
        journey.steps.is_empty(),
        "nothing committed past the call yet"
    );
    let state = engine
        .order_state("SO-1")
        .now_or_never()
        .expect("order_state waited")
        .unwrap()
        .unwrap();
    assert_eq!(state.timeline().len(), 1);
    assert!(
        engine
            .order("SO-1")
            .now_or_never()
            .expect("order waited")
            .unwrap()
            .is_some()
    );
    call.abort();
}

#[test]
fn the_shared_store_trait_is_usable_as_an_object() {
    fn takes(_: &dyn SharedStore) {}
    takes(&SharedMemoryStore::new(clock()));
}
