//! Order corrections and cancellation: `Engine::update_order` fixes an order's data between
//! steps (a whole document or a patch), shows on the timeline and is checked as a new order
//! is, so a reprocessed step runs with the corrected data; `Engine::cancel` ends an
//! execution (its paths, its retry timer), the journey says Cancelled, and the flow starts
//! afresh on its next trigger. Both are committed like any turn.

mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use orderflow::action::{ActionContext, ActionError, action_fn};
use orderflow::clock::{ManualClock, Timestamp};
use orderflow::document::{Address, Decimal, Entity, Order, OrderId, OrderLine, Value};
use orderflow::engine::Config;
use orderflow::execution::{ExecutionId, ExecutionStatus, PathStatus};
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::policy::PolicyKind;
use orderflow::render;
use orderflow::rules::{Condition, PolicyDocument, Rule};
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::testing::store::FaultyStore;
use orderflow::{
    ActionKind, Engine, EngineBuilder, Error, ErrorKind, Event, EventKind, MemoryStore, OrderPatch,
    OrderUpdate, Outcome, StatusReason, Store,
};

// Helpers --------------------------------------------------------------------------------

fn id(s: &str) -> OrderId {
    OrderId::from(s)
}

fn exec(order: &str, seq: u32) -> ExecutionId {
    ExecutionId {
        order: id(order),
        seq,
    }
}

fn us() -> Address {
    Address {
        country: Some("US".into()),
        ..Address::default()
    }
}

fn clock() -> ManualClock {
    ManualClock::new(Timestamp::from_millis(1_000))
}

fn builder(clock: &ManualClock) -> EngineBuilder {
    Engine::builder()
        .clock(clock.clone())
        .config(Config::default().with_retry(RetryPolicy::NONE))
}

async fn install(engine: &Engine, flow: Flow) {
    let name = flow.name.clone();
    engine.create_flow(flow).await.unwrap();
    engine.publish(&name).await.unwrap();
}

async fn install_policy(engine: &Engine, doc: PolicyDocument) {
    let name = doc.name.clone();
    engine.create_policy(doc).await.unwrap();
    engine.publish_policy(&name).await.unwrap();
}

/// Execution policy (Critical, order): ship-to country is US.
fn ship_to_us() -> PolicyDocument {
    PolicyDocument::new("Ship-to US", PolicyKind::Execution, Entity::Order).with_rule(
        Rule::check("Country is US", Condition::equals("ship_to.country", "US"))
            .with_message("ship-to country is not US"),
    )
}

/// Validate Order Header (Critical "Ship-to US") on New Order, then Validate Order Line.
async fn validation_engine(clock: &ManualClock, store: impl Store) -> Engine {
    let engine = builder(clock).store(store).build().await.unwrap();
    install_policy(&engine, ship_to_us()).await;
    let flow = Flow::builder("Validate")
        .steps(|s| {
            s.action(
                ActionStep::new("Header", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER)
                    .execution_policy("Ship-to US"),
            )
            .action(ActionStep::new("Lines", ActionKind::ValidateOrderLine))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
}

/// An order with no ship-to country: it fails "Ship-to US".
fn no_country(order: &str) -> Order {
    Order::new(order).with_line(OrderLine::new("1", "Surface Pen", 10))
}

fn kinds(journey: &orderflow::Journey) -> Vec<String> {
    journey
        .timeline
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect()
}

/// What a custom action saw of the order, per run: (step, ship-to country, custom "note").
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<Value>)>>>;

/// A custom action that records what it sees.
fn recorder(seen: &Seen) -> impl orderflow::Action {
    let seen = seen.clone();
    action_fn(move |cx: &mut ActionContext<'_>| {
        let seen = seen.clone();
        async move {
            note(&seen, cx);
            Ok::<(), ActionError>(())
        }
        .boxed()
    })
}

fn note(seen: &Seen, cx: &ActionContext<'_>) {
    let order = cx.order();
    seen.lock().unwrap().push((
        cx.step().name.clone(),
        order.ship_to.country.clone(),
        order.custom.get("note").cloned(),
    ));
}

// Update, then reprocess -------------------------------------------------------------------

#[tokio::test]
async fn a_ship_to_fixed_by_a_patch_lets_the_reprocessed_header_validation_succeed() {
    let clock = clock();
    let engine = validation_engine(&clock, MemoryStore::new()).await;
    engine
        .submit(Event::new_order(no_country("SO-1")))
        .await
        .unwrap();
    let failed = engine.failed_executions(&id("SO-1")).await.unwrap();
    assert_eq!(failed, [exec("SO-1", 1)]);

    let receipt = engine
        .update_order(&id("SO-1"), "fix-ship-to", OrderPatch::new().ship_to(us()))
        .await
        .unwrap();
    assert!(!receipt.duplicate);
    assert!(receipt.started.is_empty(), "an update starts no flow here");
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(
        journey.outcome("Header"),
        Some(Outcome::Failed),
        "an update does not re-run a failed step by itself: {journey}"
    );
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(order.ship_to.country.as_deref(), Some("US"));
    assert_eq!(
        order.lines,
        no_country("SO-1").lines,
        "the rest is as it was"
    );

    engine.reprocess(&exec("SO-1", 1)).await.unwrap();
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    let header: Vec<(Outcome, u32)> = journey
        .step("Header")
        .map(|s| (s.outcome, s.round))
        .collect();
    assert_eq!(
        header,
        [(Outcome::Failed, 0), (Outcome::Succeeded, 1)],
        "{journey}"
    );
    assert_eq!(journey.outcome("Lines"), Some(Outcome::Succeeded));
    assert_eq!(journey.executions[0].status, ExecutionStatus::Completed);
    assert!(
        engine
            .failed_executions(&id("SO-1"))
            .await
            .unwrap()
            .is_empty()
    );
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(
        order.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );

    // The timeline tells the story in order, the update under the id the host gave.
    assert_eq!(
        kinds(&journey),
        [
            "New Order",
            "Validation of Order Header has Failed",
            "Order updated",
            "Validation of Order Header has Succeeded",
            "Validation of Order Lines has Succeeded",
        ]
    );
    let update = &journey.timeline[2];
    assert_eq!(update.id.as_str(), "fix-ship-to");
    assert_eq!(update.kind, EventKind::ORDER_UPDATED);
    assert_eq!(update.raised_by, None);
    assert_eq!(update.seq, receipt.seq);

    // The same update id again is accepted and ignored, even with other content.
    let again = engine
        .update_order(
            &id("SO-1"),
            "fix-ship-to",
            OrderPatch::new().custom("note", "ignored"),
        )
        .await
        .unwrap();
    assert!(again.duplicate);
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert!(order.custom.is_empty());
    assert_eq!(engine.journey(&id("SO-1")).await.unwrap().timeline.len(), 5);
}

#[tokio::test]
async fn a_replaced_document_is_what_the_reprocessed_step_validates() {
    let clock = clock();
    let engine = validation_engine(&clock, MemoryStore::new()).await;
    engine
        .submit(Event::new_order(no_country("SO-1")))
        .await
        .unwrap();
    // The host reads the order as the engine holds it, fixes it and sends it back whole.
    let mut order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(
        order.status_reason,
        Some(StatusReason::ORDER_VALIDATION_FAILED)
    );
    order.ship_to.country = Some("US".into());
    order.lines[0].quantity = Decimal::new(125, 1);
    engine
        .update_order(&id("SO-1"), "fix-1", OrderUpdate::Replace(Box::new(order)))
        .await
        .unwrap();
    engine.reprocess(&exec("SO-1", 1)).await.unwrap();
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(
        journey.outcome("Header"),
        Some(Outcome::Succeeded),
        "{journey}"
    );
    assert_eq!(journey.outcome("Lines"), Some(Outcome::Succeeded));
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(order.lines[0].quantity.to_string(), "12.5");
}

#[tokio::test]
async fn a_patch_of_custom_attributes_is_seen_by_the_next_step() {
    let clock = clock();
    let seen: Seen = Arc::default();
    let engine = builder(&clock)
        .action("record", recorder(&seen))
        .build()
        .await
        .unwrap();
    install_policy(
        &engine,
        PolicyDocument::new("Approved", PolicyKind::Execution, Entity::Order).with_rule(
            Rule::check("Approved", Condition::equals("custom.approved", true))
                .with_message("the order is not approved"),
        ),
    )
    .await;
    let flow = Flow::builder("Approve and ship")
        .steps(|s| {
            s.action(
                ActionStep::custom("Approve", "record")
                    .input_event(EventKind::NEW_ORDER)
                    .execution_policy("Approved"),
            )
            .action(ActionStep::custom("Ship", "record").input_event(EventKind::SHIPPED))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;

    engine
        .submit(Event::new_order(
            Order::new("SO-1").with_ship_to_country("US"),
        ))
        .await
        .unwrap();
    assert_eq!(
        engine
            .journey(&id("SO-1"))
            .await
            .unwrap()
            .outcome("Approve"),
        Some(Outcome::Failed)
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the policy stopped the action"
    );

    // The rule policy reads custom.approved, the action custom.note: both see the patch.
    engine
        .update_order(
            &id("SO-1"),
            "approve",
            OrderPatch::new()
                .custom("approved", true)
                .custom("note", "rush"),
        )
        .await
        .unwrap();
    engine.reprocess(&exec("SO-1", 1)).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(
            "Approve".into(),
            Some("US".into()),
            Some(Value::from("rush"))
        )]
    );

    // A path waiting for its event sees an update made while it waited.
    engine
        .update_order(
            &id("SO-1"),
            "note",
            OrderPatch::new().custom("note", "express"),
        )
        .await
        .unwrap();
    engine.submit(common::shipped("SO-1")).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().last().cloned(),
        Some((
            "Ship".into(),
            Some("US".into()),
            Some(Value::from("express"))
        ))
    );
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.executions[0].status, ExecutionStatus::Completed);
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(order.custom.get("approved"), Some(&Value::Bool(true)));
}

#[tokio::test]
async fn a_flow_that_takes_order_updated_runs_on_an_update() {
    let clock = clock();
    let seen: Seen = Arc::default();
    let engine = builder(&clock)
        .action("record", recorder(&seen))
        .build()
        .await
        .unwrap();
    install(
        &engine,
        Flow::builder("Revalidate")
            .steps(|s| {
                s.action(
                    ActionStep::custom("Look again", "record")
                        .input_event(EventKind::ORDER_UPDATED),
                )
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(Order::new("SO-1")))
        .await
        .unwrap();
    let receipt = engine
        .update_order(&id("SO-1"), "u1", OrderPatch::new().custom("note", "new"))
        .await
        .unwrap();
    assert_eq!(receipt.started, [exec("SO-1", 1)]);
    assert_eq!(
        *seen.lock().unwrap(),
        [("Look again".into(), None, Some(Value::from("new")))]
    );
}

// An update racing a step in flight ----------------------------------------------------

/// A custom action that records what it sees when it starts and when it ends, and in
/// between waits for a permit of `gate` (none at first): a provider call in flight.
fn gated(seen: &Seen, gate: &Arc<tokio::sync::Semaphore>) -> impl orderflow::Action {
    let seen = seen.clone();
    let gate = gate.clone();
    action_fn(move |cx: &mut ActionContext<'_>| {
        let seen = seen.clone();
        let gate = gate.clone();
        async move {
            note(&seen, cx);
            gate.acquire().await.unwrap().forget();
            note(&seen, cx);
            Ok::<(), ActionError>(())
        }
        .boxed()
    })
}

async fn gated_engine(
    clock: &ManualClock,
    store: impl Store,
) -> (Engine, Seen, Arc<tokio::sync::Semaphore>) {
    let seen: Seen = Arc::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let engine = builder(clock)
        .store(store)
        .action("call", gated(&seen, &gate))
        .action("record", recorder(&seen))
        .build()
        .await
        .unwrap();
    install(
        &engine,
        Flow::builder("Call then wait")
            .steps(|s| {
                s.action(ActionStep::custom("Call", "call").input_event(EventKind::NEW_ORDER))
                    .action(ActionStep::custom("Later", "record").input_event(EventKind::SHIPPED))
            })
            .build()
            .unwrap(),
    )
    .await;
    (engine, seen, gate)
}

async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("never happened");
}

#[tokio::test(flavor = "current_thread")]
async fn an_update_racing_a_step_in_flight_applies_after_the_step_never_under_it() {
    let clock = clock();
    let (engine, seen, gate) = gated_engine(&clock, MemoryStore::new()).await;
    let submitting = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .submit(Event::new_order(
                    Order::new("SO-1").with_ship_to_country("CA"),
                ))
                .await
        }
    });
    until(|| seen.lock().unwrap().len() == 1).await;
    let state = engine.order_state(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(
        state.executions()[0].paths().next(),
        Some(PathStatus::Running),
        "the call is committed as under way"
    );

    let updating = tokio::spawn({
        let engine = engine.clone();
        async move {
            let patch = OrderPatch::new().ship_to(us());
            engine.update_order(&id("SO-1"), "to-us", patch).await
        }
    });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!updating.is_finished(), "the update waits for the step");
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(order.ship_to.country.as_deref(), Some("CA"));

    gate.add_permits(1);
    submitting.await.unwrap().unwrap();
    updating.await.unwrap().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("Call".into(), Some("CA".into()), None),
            ("Call".into(), Some("CA".into()), None),
        ],
        "the step saw one document from start to end"
    );
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(
        kinds(&journey),
        ["New Order", "Call has Succeeded", "Order updated"],
        "the update comes after the step"
    );

    engine.submit(common::shipped("SO-1")).await.unwrap();
    assert_eq!(
        seen.lock().unwrap().last().cloned(),
        Some(("Later".into(), Some("US".into()), None)),
        "the next step sees the update"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_update_after_a_dropped_turn_first_finishes_its_step_with_the_old_document() {
    let clock = clock();
    let (engine, seen, gate) = gated_engine(&clock, MemoryStore::new()).await;
    let submitting = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .submit(Event::new_order(
                    Order::new("SO-1").with_ship_to_country("CA"),
                ))
                .await
        }
    });
    until(|| seen.lock().unwrap().len() == 1).await;
    // The caller gives up (a cancelled HTTP handler): the call stays committed as under way.
    submitting.abort();
    assert!(submitting.await.unwrap_err().is_cancelled());
    let state = engine.order_state(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(
        state.executions()[0].paths().next(),
        Some(PathStatus::Running)
    );

    gate.add_permits(1);
    engine
        .update_order(&id("SO-1"), "to-us", OrderPatch::new().ship_to(us()))
        .await
        .unwrap();
    let seen_now = seen.lock().unwrap().clone();
    assert_eq!(seen_now.len(), 3, "{seen_now:?}");
    assert!(
        seen_now
            .iter()
            .all(|(step, country, _)| step == "Call" && country.as_deref() == Some("CA")),
        "the step in flight ran again with the document it started with: {seen_now:?}"
    );
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(
        kinds(&journey),
        ["New Order", "Call has Succeeded", "Order updated"]
    );
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(order.ship_to.country.as_deref(), Some("US"));
    let state = engine.order_state(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(state.resume_at(), None, "nothing left to resume");
}

// Refused updates ---------------------------------------------------------------------------

#[tokio::test]
async fn an_update_that_fails_the_intake_checks_is_refused_and_changes_nothing() {
    let clock = clock();
    let engine = validation_engine(&clock, MemoryStore::new()).await;
    engine
        .submit(Event::new_order(no_country("SO-1")))
        .await
        .unwrap();
    let before = engine.order_state(&id("SO-1")).await.unwrap().unwrap();

    let duplicate_line = no_country("SO-1").with_line(OrderLine::new("1", "Ink", 1));
    let e = engine
        .update_order(&id("SO-1"), "u1", duplicate_line)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidUpdate { .. }), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        e.to_string(),
        "update of order 'SO-1' refused: order 'SO-1' has line id '1' more than once"
    );

    let e = engine
        .update_order(&id("SO-1"), "u2", no_country("SO-2"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidUpdate { .. }), "{e:?}");
    assert!(e.to_string().contains("id cannot change"), "{e}");

    let e = engine
        .update_order(&id("SO-1"), "u3", OrderPatch::new().line_quantity("7", 1))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidUpdate { .. }), "{e:?}");
    assert!(e.to_string().contains("line '7'"), "{e}");

    let long = "x".repeat(5_000);
    let e = engine
        .update_order(
            &id("SO-1"),
            "u4",
            OrderPatch::new().custom("note", long.as_str()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");
    assert!(e.to_string().contains("max_string_bytes"), "{e}");

    let e = engine
        .update_order(&id("SO-1"), " ", OrderPatch::new())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "an empty id: {e}");
    assert_eq!(
        e.to_string(),
        "update of order 'SO-1' refused: the update id is empty"
    );
    let e = engine
        .update_order(&id("SO-1"), "u".repeat(5_000), OrderPatch::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");

    let e = engine
        .update_order(&id("SO-9"), "u5", OrderPatch::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::UnknownOrder(_)), "{e:?}");

    let after = engine.order_state(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(after, before, "refused updates change nothing");
    // A refused id was not taken: the corrected update goes through under it.
    let receipt = engine
        .update_order(&id("SO-1"), "u1", OrderPatch::new().ship_to(us()))
        .await
        .unwrap();
    assert!(!receipt.duplicate);
}

#[tokio::test]
async fn an_event_bringing_a_document_for_a_known_order_does_not_change_it() {
    let clock = clock();
    let engine = validation_engine(&clock, MemoryStore::new()).await;
    engine
        .submit(Event::new_order(no_country("SO-1")))
        .await
        .unwrap();
    let fixed = no_country("SO-1").with_ship_to_country("US");
    engine
        .submit(Event::new("again", EventKind::SHIPPED, "SO-1").with_order(fixed))
        .await
        .unwrap();
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(
        order.ship_to.country, None,
        "only update_order corrects a known order"
    );
}

// Cancel ------------------------------------------------------------------------------------

async fn ship_and_bill_engine(
    clock: &ManualClock,
    store: impl Store,
    retry: RetryPolicy,
) -> (Engine, ScriptedProvider, ScriptedProvider) {
    let erp = ScriptedProvider::new("ERP", clock.clone());
    let billing = ScriptedProvider::new("Billing", clock.clone());
    let engine = Engine::builder()
        .store(store)
        .clock(clock.clone())
        .config(Config::default().with_retry(retry))
        .provider(erp.clone())
        .provider(billing.clone())
        .build()
        .await
        .unwrap();
    install(
        &engine,
        common::ship_and_bill("Ship and bill", semver::Version::new(1, 0, 0)),
    )
    .await;
    (engine, erp, billing)
}

#[tokio::test]
async fn cancel_of_a_waiting_execution_ends_it_and_the_next_trigger_starts_afresh() {
    let clock = clock();
    let (engine, erp, billing) =
        ship_and_bill_engine(&clock, MemoryStore::new(), RetryPolicy::NONE).await;
    engine.submit(common::pen_order("SO-1")).await.unwrap();
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.executions[0].status, ExecutionStatus::Waiting);

    engine.cancel(&exec("SO-1", 1)).await.unwrap();
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.executions[0].status, ExecutionStatus::Cancelled);
    let last = journey.steps.last().unwrap();
    assert_eq!(last.step, "Invoice when shipped");
    assert_eq!(last.outcome, Outcome::Cancelled);
    assert!(
        last.details[0].contains("waiting for an input event"),
        "{last:?}"
    );
    assert!(
        journey
            .to_string()
            .contains("Invoice when shipped → Cancelled")
    );
    let state = engine.order_state(&id("SO-1")).await.unwrap().unwrap();
    assert!(state.executions()[0].paths().next().is_none());
    assert!(state.executions()[0].cancelled().is_some());
    assert!(!state.has_live());
    assert!(
        engine
            .failed_executions(&id("SO-1"))
            .await
            .unwrap()
            .is_empty()
    );
    let e = engine.reprocess(&exec("SO-1", 1)).await.unwrap_err();
    assert!(matches!(e, Error::NotReprocessable(_)), "{e:?}");

    // The event it waited for moves nothing now.
    engine.submit(common::shipped("SO-1")).await.unwrap();
    assert!(billing.effects().is_empty());

    // A new trigger starts a new execution of the flow, from its first step.
    let receipt = engine
        .submit(Event::new("new-again", EventKind::NEW_ORDER, "SO-1"))
        .await
        .unwrap();
    assert_eq!(receipt.started, [exec("SO-1", 2)]);
    assert_eq!(erp.effects().len(), 2, "To ERP ran again");
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.executions[0].status, ExecutionStatus::Cancelled);
    assert_eq!(
        journey.executions[1].status,
        ExecutionStatus::Completed,
        "the Shipped no execution took is the new one's: {journey}"
    );
    assert_eq!(billing.effects().len(), 1);

    // Twice is an error that says why.
    let e = engine.cancel(&exec("SO-1", 1)).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::NotCancellable {
                status: ExecutionStatus::Cancelled,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::InvalidState);
    assert_eq!(
        e.to_string(),
        "execution SO-1#1 was already cancelled: nothing to cancel"
    );
}

#[tokio::test]
async fn cancel_of_a_failed_execution_takes_it_off_the_failed_list() {
    let clock = clock();
    let engine = validation_engine(&clock, MemoryStore::new()).await;
    engine
        .submit(Event::new_order(no_country("SO-1")))
        .await
        .unwrap();
    assert_eq!(
        engine.failed_executions(&id("SO-1")).await.unwrap(),
        [exec("SO-1", 1)]
    );
    engine.cancel(&exec("SO-1", 1)).await.unwrap();
    assert!(
        engine
            .failed_executions(&id("SO-1"))
            .await
            .unwrap()
            .is_empty()
    );
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.outcome("Header"), Some(Outcome::Cancelled));
    let details = &journey.step("Header").last().unwrap().details;
    assert!(
        details[0] == "cancelled after the path failed: order header validation failed",
        "{details:?}"
    );

    // Fixed data and a new trigger: a new execution validates the corrected order.
    engine
        .update_order(&id("SO-1"), "fix", OrderPatch::new().ship_to(us()))
        .await
        .unwrap();
    let receipt = engine
        .submit(Event::new("new-2", EventKind::NEW_ORDER, "SO-1"))
        .await
        .unwrap();
    assert_eq!(receipt.started, [exec("SO-1", 2)]);
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.outcome("Header"), Some(Outcome::Succeeded));
    assert_eq!(journey.executions[1].status, ExecutionStatus::Completed);

    // The journey drawing shows where the cancelled path ended.
    let flow = engine.flow("Validate").unwrap();
    let mut only_first = journey.clone();
    only_first.steps.retain(|s| s.execution.seq == 1);
    let chart = render::journey_mermaid(&flow, &only_first);
    assert!(chart.contains("classDef cancelled fill:#fff3bf"), "{chart}");
    assert!(chart.contains("class s0 cancelled"), "{chart}");
    assert!(render::journey_dot(&flow, &only_first).contains("#e67700"));
}

#[tokio::test]
async fn cancel_of_a_retrying_execution_clears_its_timer() {
    let clock = clock();
    let (engine, erp, _billing) = ship_and_bill_engine(
        &clock,
        MemoryStore::new(),
        RetryPolicy::new(3, Duration::from_millis(1_000)).with_jitter(0.0),
    )
    .await;
    erp.then(Behavior::Retryable("ERP is down".into()));
    engine.submit(common::pen_order("SO-1")).await.unwrap();
    let state = engine.order_state(&id("SO-1")).await.unwrap().unwrap();
    assert!(matches!(
        state.executions()[0].paths().next(),
        Some(PathStatus::Retrying { .. })
    ));
    assert!(engine.next_due().await.unwrap().is_some());

    engine.cancel(&exec("SO-1", 1)).await.unwrap();
    assert_eq!(
        engine.next_due().await.unwrap(),
        None,
        "the retry timer is gone"
    );
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.outcome("To ERP"), Some(Outcome::Cancelled));
    let details = &journey.step("To ERP").last().unwrap().details;
    assert!(
        details[0].contains("waiting to retry: attempt 2"),
        "{details:?}"
    );

    clock.advance(Duration::from_secs(60));
    assert_eq!(engine.run_due().await.unwrap(), 0);
    assert_eq!(erp.calls().len(), 1, "no retry after the cancel");
}

#[tokio::test]
async fn cancel_of_a_completed_or_unknown_execution_is_an_error() {
    let clock = clock();
    let engine = validation_engine(&clock, MemoryStore::new()).await;
    engine
        .submit(Event::new_order(
            no_country("SO-1").with_ship_to_country("US"),
        ))
        .await
        .unwrap();
    let e = engine.cancel(&exec("SO-1", 1)).await.unwrap_err();
    assert!(
        matches!(
            &e,
            Error::NotCancellable {
                status: ExecutionStatus::Completed,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "execution SO-1#1 has completed: nothing to cancel"
    );
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.executions[0].status, ExecutionStatus::Completed);
    for missing in [exec("SO-1", 2), exec("SO-9", 1)] {
        let e = engine.cancel(&missing).await.unwrap_err();
        assert!(matches!(e, Error::UnknownExecution(_)), "{e:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancel_dropped_at_its_commit_leaves_the_execution_as_it_was() {
    let clock = clock();
    let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let (engine, _erp, _billing) =
        ship_and_bill_engine(&clock, store.clone() as Arc<dyn Store>, RetryPolicy::NONE).await;
    engine.submit(common::pen_order("SO-1")).await.unwrap();
    let before = engine.order_state(&id("SO-1")).await.unwrap().unwrap();

    let mut commit = store.park_next("commit");
    let cancelling = tokio::spawn({
        let engine = engine.clone();
        async move { engine.cancel(&exec("SO-1", 1)).await }
    });
    commit.arrived().await;
    cancelling.abort();
    assert!(cancelling.await.unwrap_err().is_cancelled());
    commit.release();
    assert_eq!(
        engine.order_state(&id("SO-1")).await.unwrap().unwrap(),
        before,
        "a cancel that never committed changed nothing"
    );
    // Asked again, it happens.
    engine.cancel(&exec("SO-1", 1)).await.unwrap();
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.executions[0].status, ExecutionStatus::Cancelled);
    assert_eq!(
        journey
            .steps
            .iter()
            .filter(|s| s.outcome == Outcome::Cancelled)
            .count(),
        1
    );
}

// SQLite -------------------------------------------------------------------------------------

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn an_update_and_a_cancel_survive_reopening_the_sqlite_file() {
    use orderflow::store::SqliteStore;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orderflow.db");
    let clock = clock();
    {
        let engine = validation_engine(&clock, SqliteStore::open(&path).unwrap()).await;
        engine
            .submit(Event::new_order(no_country("SO-1")))
            .await
            .unwrap();
        engine
            .submit(Event::new_order(no_country("SO-2")))
            .await
            .unwrap();
        engine
            .update_order(&id("SO-1"), "fix", OrderPatch::new().ship_to(us()))
            .await
            .unwrap();
        engine.cancel(&exec("SO-2", 1)).await.unwrap();
    }

    let store = SqliteStore::open(&path).unwrap();
    let engine = builder(&clock).store(store).build().await.unwrap();
    let order = engine.order(&id("SO-1")).await.unwrap().unwrap();
    assert_eq!(order.ship_to.country.as_deref(), Some("US"));
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(journey.timeline[2].kind, EventKind::ORDER_UPDATED);
    assert_eq!(journey.timeline[2].id.as_str(), "fix");
    let again = engine
        .update_order(&id("SO-1"), "fix", OrderPatch::new())
        .await
        .unwrap();
    assert!(again.duplicate, "the update's id is remembered");
    engine.reprocess(&exec("SO-1", 1)).await.unwrap();
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    assert_eq!(
        journey.outcome("Header"),
        Some(Outcome::Succeeded),
        "{journey}"
    );

    let journey = engine.journey(&id("SO-2")).await.unwrap();
    assert_eq!(journey.executions[0].status, ExecutionStatus::Cancelled);
    assert_eq!(journey.outcome("Header"), Some(Outcome::Cancelled));
    assert!(
        engine
            .failed_executions(&id("SO-2"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        engine.store().live_orders().await.unwrap().is_empty(),
        "SO-1 completed after its reprocess; SO-2 is cancelled: neither is live"
    );
}

// Cancellation points -------------------------------------------------------------------------

/// Where a run drops a future: at the `at`-th pending point of the futures it drives.
struct DropAt {
    at: Option<usize>,
    seen: usize,
    dropped: bool,
}

/// Polls `fut` to completion, or drops it at the run's drop point.
async fn drive<F: std::future::Future>(fut: F, drop_at: &mut DropAt) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    futures::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending => {
            let n = drop_at.seen;
            drop_at.seen += 1;
            if drop_at.at == Some(n) {
                drop_at.dropped = true;
                std::task::Poll::Ready(None)
            } else {
                std::task::Poll::Pending
            }
        }
    })
    .await
}

/// The timer worker's rounds, time moving on to each timer, until none is set.
async fn settle(engine: &Engine, clock: &ManualClock) {
    orderflow::testing::settle(engine, clock).await.unwrap();
}

/// An order as a run leaves it, times left out.
type Left = (
    Order,
    Vec<(u64, String, String)>,
    Vec<ExecutionStatus>,
    Vec<(String, Outcome, u32, Vec<String>)>,
    Vec<(String, usize)>,
);

/// Ship and bill plus a flow that sends the order to the ERP again on "Order updated";
/// then an update and a cancel, each driven to its `at`-th pending point and dropped there
/// (the store and providers yield at every operation, as across a network). After a drop,
/// only the timer worker acts, and must leave nothing in flight; then the host calls again.
async fn correct_and_cancel(at: Option<usize>) -> (Left, usize, bool) {
    let clock = clock();
    let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let (engine, erp, billing) =
        ship_and_bill_engine(&clock, store.clone() as Arc<dyn Store>, RetryPolicy::NONE).await;
    install(
        &engine,
        Flow::builder("Resend")
            .steps(|s| {
                s.action(
                    ActionStep::new("Resend to ERP", ActionKind::SendToFulfillmentErp)
                        .input_event(EventKind::ORDER_UPDATED)
                        .provider("ERP"),
                )
            })
            .build()
            .unwrap(),
    )
    .await;
    engine.submit(common::pen_order("SO-1")).await.unwrap();
    store.yielding(true);
    erp.yielding(true);
    billing.yielding(true);

    let mut drop_at = DropAt {
        at,
        seen: 0,
        dropped: false,
    };
    let left_nothing_in_flight = |state: orderflow::execution::OrderState| {
        assert!(
            !state.has_runnable() && state.resume_at().is_none(),
            "dropped at pending point {at:?}: work left in flight: {:?}",
            state.executions()
        );
    };
    let patch = || OrderPatch::new().line_quantity("1", 3);
    loop {
        match drive(
            engine.update_order(&id("SO-1"), "u1", patch()),
            &mut drop_at,
        )
        .await
        {
            Some(result) => {
                result.unwrap();
                break;
            }
            None => {
                settle(&engine, &clock).await;
                left_nothing_in_flight(engine.order_state(&id("SO-1")).await.unwrap().unwrap());
            }
        }
    }
    loop {
        match drive(engine.cancel(&exec("SO-1", 1)), &mut drop_at).await {
            Some(Ok(())) => break,
            // An earlier call committed before it was dropped.
            Some(Err(Error::NotCancellable {
                status: ExecutionStatus::Cancelled,
                ..
            })) => break,
            Some(Err(e)) => panic!("cancel failed: {e}"),
            None => {
                settle(&engine, &clock).await;
                left_nothing_in_flight(engine.order_state(&id("SO-1")).await.unwrap().unwrap());
            }
        }
    }
    settle(&engine, &clock).await;
    engine.submit(common::shipped("SO-1")).await.unwrap();

    let state = engine.order_state(&id("SO-1")).await.unwrap().unwrap();
    let journey = engine.journey(&id("SO-1")).await.unwrap();
    let mut effects: Vec<(String, usize)> = erp
        .effects_per_key()
        .into_iter()
        .chain(billing.effects_per_key())
        .collect();
    effects.sort();
    let left = (
        state.order().clone(),
        state
            .timeline()
            .iter()
            .map(|e| (e.seq, e.id.to_string(), e.kind.to_string()))
            .collect(),
        state.executions().iter().map(|x| x.status()).collect(),
        journey
            .steps
            .into_iter()
            .map(|s| (s.step, s.outcome, s.round, s.details))
            .collect(),
        effects,
    );
    (left, drop_at.seen, drop_at.dropped)
}

#[tokio::test(flavor = "current_thread")]
async fn an_update_or_a_cancel_dropped_at_any_await_ends_as_the_clean_run() {
    let (clean, points, _) = correct_and_cancel(None).await;
    assert!(
        points > 4,
        "a yielding store makes both calls pend: {points}"
    );
    assert_eq!(
        clean.2,
        [ExecutionStatus::Cancelled, ExecutionStatus::Completed],
        "ship and bill cancelled, the resend done"
    );
    assert_eq!(clean.0.lines[0].quantity, Decimal::from(3));
    assert!(
        clean.4.iter().all(|(_, n)| *n == 1) && clean.4.len() == 2,
        "the ERP took the order and its resend, billing nothing: {:?}",
        clean.4
    );
    for point in 0..points {
        let (dropped, _, happened) = correct_and_cancel(Some(point)).await;
        assert!(happened, "the drop at pending point {point} happened");
        assert_eq!(dropped, clean, "dropped at pending point {point}");
    }
    // Past the harness's capture, as tests/cancel.rs reports its coverage.
    let _ = writeln!(
        std::io::stderr(),
        "cancellation: update and cancel: {points}/{points} cancel points covered"
    );
}
