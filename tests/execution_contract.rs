//! Black-box tests of the execution contract (DESIGN.md §3, rules 1–11) and the engine's
//! documented semantics (README "Semantics").

use orderflow::Decimal;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use orderflow::document::{
    Entity, FulfillmentOrder, Order, OrderLine, RecordId, RecordMut, RecordRef, StatusReason,
};
use orderflow::engine::Config;
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::journey::Journey;
use orderflow::policy::{Check, Criticality, execution_fn, filter_fn};
use orderflow::{
    ActionError, ActionKind, Engine, EngineBuilder, ErrorKind, Event, EventKind, MemoryProvider,
    MemoryStore, Outcome, action_fn,
};

fn builder() -> EngineBuilder {
    Engine::builder()
        .store(MemoryStore::new())
        .config(Config::default().with_retry(RetryPolicy::NONE))
        .action(
            "ok",
            action_fn(|_| Box::pin(async { Ok::<(), ActionError>(()) })),
        )
        .action(
            "boom",
            action_fn(|_| Box::pin(async { Err(ActionError::new("boom")) })),
        )
}

fn order(id: &str) -> Order {
    Order::new(id)
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Pen", 1))
}

fn validate(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER)
}

fn ok(name: &str) -> ActionStep {
    ActionStep::custom(name, "ok")
}

fn boom(name: &str) -> ActionStep {
    ActionStep::custom(name, "boom")
}

fn shipped(id: &str, order: &str) -> Event {
    Event::new(id, EventKind::SHIPPED, order)
}

async fn journey(engine: &Engine, order: &str) -> Journey {
    engine.journey(order).await.unwrap()
}

async fn install(engine: &Engine, flow: Flow) {
    let name = flow.name.clone();
    engine.create_flow(flow).await.unwrap();
    engine.publish(&name).await.unwrap();
}

/// Step names with outcomes, in journey order.
fn trace(j: &Journey) -> Vec<(String, Outcome)> {
    j.steps
        .iter()
        .map(|s| (s.step.clone(), s.outcome))
        .collect()
}

fn t(items: &[(&str, Outcome)]) -> Vec<(String, Outcome)> {
    items.iter().map(|(s, o)| ((*s).to_owned(), *o)).collect()
}

fn wait_shipped_flow(name: &str) -> Flow {
    Flow::builder(name)
        .steps(|s| {
            s.action(validate(&format!("{name} validate")))
                .action(ok(&format!("{name} after ship")).input_event(EventKind::SHIPPED))
        })
        .build()
        .unwrap()
}

// Rule 1 ---------------------------------------------------------------------------------

#[tokio::test]
async fn every_matching_flow_starts_in_creation_order_once_per_order() {
    let engine = builder().build().await.unwrap();
    install(&engine, wait_shipped_flow("Zeta")).await;
    install(&engine, wait_shipped_flow("Alpha")).await;
    install(&engine, wait_shipped_flow("Stopped")).await;
    engine.stop("Stopped").await.unwrap();

    let receipt = engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    assert!(!receipt.duplicate);
    assert_eq!(receipt.started.len(), 2);
    let j = journey(&engine, "SO-1").await;
    let flows: Vec<&str> = j.executions.iter().map(|e| e.flow.as_str()).collect();
    assert_eq!(
        flows,
        ["Zeta", "Alpha"],
        "creation order; a stopped flow starts nothing"
    );
    assert!(
        j.executions
            .iter()
            .all(|e| e.status == ExecutionStatus::Waiting)
    );
    assert_eq!(
        trace(&j),
        t(&[
            ("Zeta validate", Outcome::Succeeded),
            ("Alpha validate", Outcome::Succeeded)
        ])
    );

    // A second trigger (another id) while both executions are live starts nothing …
    let receipt = engine
        .submit(Event::new("again", EventKind::NEW_ORDER, "SO-1"))
        .await
        .unwrap();
    assert!(!receipt.duplicate);
    assert!(receipt.started.is_empty());
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.executions.len(), 2);
    assert_eq!(j.steps.len(), 2);
    // … but it is on the timeline.
    assert!(j.timeline.iter().any(|e| e.id.as_str() == "again"));
    assert_eq!(
        receipt.seq,
        j.timeline
            .iter()
            .find(|e| e.id.as_str() == "again")
            .unwrap()
            .seq
    );
}

// Rule 2 ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_step_after_its_predecessor_waits_for_its_event() {
    let engine = builder().build().await.unwrap();
    install(&engine, wait_shipped_flow("F")).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.executions[0].status, ExecutionStatus::Waiting);
    assert_eq!(trace(&j), t(&[("F validate", Outcome::Succeeded)]));

    engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
    assert_eq!(
        trace(&j),
        t(&[
            ("F validate", Outcome::Succeeded),
            ("F after ship", Outcome::Succeeded)
        ])
    );
}

/// An engine whose "Inbox" flow runs A on New Order, then B on "Payment captured", then C
/// on Shipped.
async fn inbox_engine() -> Engine {
    let engine = builder().build().await.unwrap();
    let flow = Flow::builder("Inbox")
        .steps(|s| {
            s.action(validate("A"))
                .action(ok("B").input_event(EventKind::new("Payment captured")))
                .action(ok("C").input_event(EventKind::SHIPPED))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
}

fn payment(id: &str, order: &str) -> Event {
    Event::new(id, EventKind::new("Payment captured"), order)
}

#[tokio::test]
async fn an_earlier_unconsumed_event_in_the_inbox_counts() {
    let engine = inbox_engine().await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(trace(&j), t(&[("A", Outcome::Succeeded)]));
    assert_eq!(j.executions[0].status, ExecutionStatus::Waiting);

    engine.submit(payment("pay-1", "SO-1")).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    // Rule 2: the Shipped that arrived earlier and was not consumed counts, so C takes it.
    assert_eq!(
        trace(&j),
        t(&[
            ("A", Outcome::Succeeded),
            ("B", Outcome::Succeeded),
            ("C", Outcome::Succeeded)
        ])
    );
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn in_order_events_release_sequential_waits() {
    let engine = inbox_engine().await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    engine.submit(payment("pay-1", "SO-1")).await.unwrap();
    assert_eq!(
        journey(&engine, "SO-1").await.executions[0].status,
        ExecutionStatus::Waiting
    );
    engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("C"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

// Rule 1 (ids) ---------------------------------------------------------------------------

#[tokio::test]
async fn a_duplicate_event_id_is_accepted_and_ignored() {
    let billing = MemoryProvider::new("Billing");
    let engine = builder().provider(billing.clone()).build().await.unwrap();
    let flow = Flow::builder("Bill")
        .steps(|s| {
            s.action(validate("Validate")).action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::SHIPPED)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let first = engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    assert!(!first.duplicate);
    assert_eq!(billing.calls().len(), 1);
    let again = engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    assert!(again.duplicate);
    assert!(again.started.is_empty());
    assert_eq!(billing.calls().len(), 1);
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.step("Invoice").count(), 1);
    assert_eq!(
        j.timeline
            .iter()
            .filter(|e| e.id.as_str() == "ship-1")
            .count(),
        1
    );
}

// Rule 11 errors -------------------------------------------------------------------------

#[tokio::test]
async fn lifecycle_errors_have_their_kinds() {
    let engine = builder().build().await.unwrap();
    install(&engine, wait_shipped_flow("F")).await;
    let err = engine
        .update_flow(wait_shipped_flow("F"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    let err = engine
        .create_flow(wait_shipped_flow("F"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);

    engine.stop("F").await.unwrap();
    // Same version (1.0.0) again: not greater.
    engine.update_flow(wait_shipped_flow("F")).await.unwrap();
    let err = engine.publish("F").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
    // A lower version neither.
    let mut lower = wait_shipped_flow("F");
    lower.version = semver::Version::new(0, 9, 0);
    engine.update_flow(lower).await.unwrap();
    assert_eq!(
        engine.publish("F").await.unwrap_err().kind(),
        ErrorKind::InvalidState
    );
    let higher = Flow::builder("F")
        .version(semver::Version::new(1, 0, 1))
        .steps(|s| s.action(validate("v")))
        .build()
        .unwrap();
    engine.update_flow(higher).await.unwrap();
    assert_eq!(
        engine.publish("F").await.unwrap(),
        semver::Version::new(1, 0, 1)
    );
}

// Rule 3 ---------------------------------------------------------------------------------

fn to_source(source: &'static str) -> impl Fn(RecordRef<'_>) -> bool + Send + Sync {
    move |r| matches!(r, RecordRef::FulfillmentOrder(_, fo) if fo.fulfillment_source == source)
}

/// An engine whose "Route" flow validates, assigns each line a source by quantity
/// (`source_for`), and sends each fulfillment order down its source's branch to its own
/// provider; with `merge`, the branches merge and an "After" step follows.
async fn routing(
    merge: bool,
    source_for: fn(Decimal) -> &'static str,
) -> (Engine, MemoryProvider, MemoryProvider) {
    let seattle = MemoryProvider::new("Seattle 3PL");
    let chicago = MemoryProvider::new("Chicago 3PL");
    let engine = builder()
        .provider(seattle.clone())
        .provider(chicago.clone())
        .policy(execution_fn(
            "Source by quantity",
            Entity::OrderLine,
            Criticality::Information,
            move |r| {
                if let RecordMut::Line(line) = r {
                    line.fulfillment_source = Some(source_for(line.quantity).to_owned());
                }
                Check::Passed
            },
        ))
        .policy(filter_fn(
            "Seattle FOs",
            Entity::FulfillmentOrder,
            to_source("Seattle"),
        ))
        .policy(filter_fn(
            "Chicago FOs",
            Entity::FulfillmentOrder,
            to_source("Chicago"),
        ))
        .build()
        .await
        .unwrap();
    let send = |name: &str, filter: &str, provider: &str| {
        ActionStep::new(name, ActionKind::SendToFulfillment)
            .filter(filter)
            .provider(provider)
    };
    let branches = |b: orderflow::flow::SplitterBuilder| {
        b.branch("Seattle", |s| {
            s.action(send("Send Seattle", "Seattle FOs", "Seattle 3PL"))
        })
        .branch("Chicago", |s| {
            s.action(send("Send Chicago", "Chicago FOs", "Chicago 3PL"))
        })
    };
    let flow = Flow::builder("Route")
        .steps(|s| {
            let s = s.action(validate("Validate")).action(
                ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                    .execution_policy("Source by quantity"),
            );
            if merge {
                s.splitter_merge("By source", branches).action(ok("After"))
            } else {
                s.splitter("By source", branches)
            }
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    (engine, seattle, chicago)
}

#[tokio::test]
async fn fulfillment_orders_are_routed_one_by_one() {
    let (engine, seattle, chicago) = routing(false, |q| {
        if q >= Decimal::from(100) {
            "Seattle"
        } else {
            "Chicago"
        }
    })
    .await;
    let o = Order::new("SO-1")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Pallet", 150))
        .with_line(OrderLine::new("2", "Pen", 10));
    engine.submit(Event::new_order(o)).await.unwrap();

    let stored = engine.order("SO-1").await.unwrap().unwrap();
    assert_eq!(stored.fulfillment_orders.len(), 2);
    let fo_of = |source: &str| {
        let fo = stored
            .fulfillment_orders
            .iter()
            .find(|f| f.fulfillment_source == source)
            .unwrap();
        orderflow::document::RecordId::FulfillmentOrder(fo.id.clone())
    };
    let s_calls = seattle.calls();
    let c_calls = chicago.calls();
    assert_eq!(s_calls.len(), 1, "{s_calls:?}");
    assert_eq!(c_calls.len(), 1, "{c_calls:?}");
    assert_eq!(s_calls[0].record, fo_of("Seattle"));
    assert_eq!(c_calls[0].record, fo_of("Chicago"));
    assert_eq!(
        stored.status_reason,
        Some(StatusReason::SENT_TO_FULFILLMENT)
    );

    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send Seattle"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("Send Chicago"), Some(Outcome::Succeeded));
    // The step's records carry the order and its lines too; the fulfillment orders among
    // them are the ones the branch's filter admitted.
    let fos = |step: &str| -> Vec<orderflow::document::RecordId> {
        j.step(step)
            .next()
            .unwrap()
            .records
            .iter()
            .filter(|r| matches!(r, orderflow::document::RecordId::FulfillmentOrder(_)))
            .cloned()
            .collect()
    };
    assert_eq!(fos("Send Seattle"), vec![fo_of("Seattle")]);
    assert_eq!(fos("Send Chicago"), vec![fo_of("Chicago")]);
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn a_filter_admitting_nothing_skips_without_failing() {
    let engine = builder()
        .policy(filter_fn("Nothing", Entity::Order, |_| false))
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(ok("Filtered").filter("Nothing"))
                .action(ok("After"))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(
        trace(&j),
        t(&[
            ("Validate", Outcome::Succeeded),
            ("Filtered", Outcome::Skipped)
        ])
    );
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
    assert!(engine.failed_executions("SO-1").await.unwrap().is_empty());
}

// Rules 4 and 5 --------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_action_without_a_condition_fails_the_execution() {
    let engine = builder().build().await.unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(boom("Boom"))
                .action(ok("After"))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(
        trace(&j),
        t(&[("Validate", Outcome::Succeeded), ("Boom", Outcome::Failed)])
    );
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);
    assert_eq!(
        engine.failed_executions("SO-1").await.unwrap(),
        vec![j.executions[0].id.clone()]
    );
}

#[tokio::test]
async fn a_condition_after_a_failed_action_takes_no() {
    let engine = builder().build().await.unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(boom("Boom"))
                .condition(
                    "Worked?",
                    |y| y.action(ok("Yes step")),
                    |n| n.action(ok("No step")),
                )
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Boom"), Some(Outcome::Failed));
    assert_eq!(j.outcome("No step"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("Yes step"), None);
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
    assert!(engine.failed_executions("SO-1").await.unwrap().is_empty());
}

async fn condition_merge_case(first: fn(&str) -> ActionStep) -> Journey {
    let engine = builder().build().await.unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(first("First"))
                .condition_merge(
                    "Worked?",
                    |y| y.action(ok("Yes step")),
                    |n| n.action(ok("No step")),
                )
                .action(ok("After merge"))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    journey(&engine, "SO-1").await
}

#[tokio::test]
async fn a_condition_merge_continues_after_either_path() {
    let j = condition_merge_case(ok).await;
    assert_eq!(j.outcome("Yes step"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("No step"), None);
    assert_eq!(j.outcome("After merge"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);

    let j = condition_merge_case(boom).await;
    assert_eq!(j.outcome("First"), Some(Outcome::Failed));
    assert_eq!(j.outcome("Yes step"), None);
    assert_eq!(j.outcome("No step"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("After merge"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

// Rules 6 and 7 --------------------------------------------------------------------------

/// Runs `Validate → Split[branches] → After` on one order; each branch is one step (or
/// none, for an empty branch).
async fn split_case(tolerate: bool, branches: Vec<(&'static str, Option<ActionStep>)>) -> Journey {
    let engine = builder()
        .policy(filter_fn("All", Entity::Order, |_| true))
        .policy(filter_fn("Nothing", Entity::Order, |_| false))
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(validate("Validate"))
                .splitter_merge("Split", |mut b| {
                    for (name, step) in branches {
                        b = b.branch(name, |s| match step {
                            Some(step) => s.action(step),
                            None => s,
                        });
                    }
                    if tolerate {
                        b.tolerate_failed_branches()
                    } else {
                        b
                    }
                })
                .action(ok("After"))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    journey(&engine, "SO-1").await
}

/// The merge's record: the last journey record named after the element.
fn merge_outcome(j: &Journey) -> Outcome {
    j.step("Split")
        .last()
        .expect("the merge left a record")
        .outcome
}

#[tokio::test]
async fn all_admitting_branches_run_and_merge() {
    let j = split_case(
        false,
        vec![
            ("One", Some(ok("Branch one").filter("All"))),
            ("Two", Some(ok("Branch two").filter("All"))),
        ],
    )
    .await;
    assert_eq!(j.outcome("Branch one"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("Branch two"), Some(Outcome::Succeeded));
    assert_eq!(merge_outcome(&j), Outcome::Succeeded);
    assert_eq!(j.outcome("After"), Some(Outcome::Succeeded));
    assert_eq!(j.step("After").count(), 1, "the merge fires once");
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn a_merge_does_not_wait_for_a_filtered_out_branch() {
    let j = split_case(
        false,
        vec![
            ("One", Some(ok("Branch one").filter("All"))),
            ("Two", Some(ok("Branch two").filter("Nothing"))),
        ],
    )
    .await;
    assert_eq!(j.outcome("Branch one"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("Branch two"), Some(Outcome::Skipped));
    assert_eq!(merge_outcome(&j), Outcome::Succeeded);
    assert_eq!(j.outcome("After"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn a_failed_branch_fails_the_merge_unless_tolerated() {
    let branches = || {
        vec![
            ("One", Some(ok("Branch one").filter("All"))),
            ("Two", Some(boom("Branch two").filter("All"))),
        ]
    };
    let j = split_case(false, branches()).await;
    assert_eq!(j.outcome("Branch one"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("Branch two"), Some(Outcome::Failed));
    assert_eq!(merge_outcome(&j), Outcome::Failed);
    assert_eq!(j.outcome("After"), None);
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);

    let j = split_case(true, branches()).await;
    assert_eq!(j.outcome("Branch two"), Some(Outcome::Failed));
    assert_eq!(merge_outcome(&j), Outcome::Succeeded);
    assert_eq!(j.outcome("After"), Some(Outcome::Succeeded));
}

#[tokio::test]
async fn a_merge_with_no_branch_entered_is_skipped() {
    let j = split_case(
        false,
        vec![
            ("One", Some(ok("Branch one").filter("Nothing"))),
            ("Two", Some(ok("Branch two").filter("Nothing"))),
        ],
    )
    .await;
    assert_eq!(j.outcome("Branch one"), Some(Outcome::Skipped));
    assert_eq!(j.outcome("Branch two"), Some(Outcome::Skipped));
    assert_eq!(merge_outcome(&j), Outcome::Skipped);
    assert_eq!(
        j.outcome("After"),
        None,
        "nothing after a skipped merge runs"
    );
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn an_empty_branch_passes_its_input_through() {
    let j = split_case(
        false,
        vec![
            ("Empty", None),
            ("Two", Some(ok("Branch two").filter("Nothing"))),
        ],
    )
    .await;
    assert_eq!(j.outcome("Branch two"), Some(Outcome::Skipped));
    assert_eq!(merge_outcome(&j), Outcome::Succeeded);
    assert_eq!(j.outcome("After"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

// Rule 9 ---------------------------------------------------------------------------------

#[tokio::test]
async fn output_events_start_other_flows_and_on_failure_raises_its_event() {
    let engine = builder().build().await.unwrap();
    let first = Flow::builder("First")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(boom("Boom").on_failure(EventKind::new("Needs attention")))
        })
        .build()
        .unwrap();
    let second = Flow::builder("Second")
        .steps(|s| {
            s.action(ok("Second start").input_event(EventKind::ORDER_HEADER_VALIDATION_SUCCEEDED))
        })
        .build()
        .unwrap();
    install(&engine, first).await;
    install(&engine, second).await;
    let receipt = engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    assert_eq!(
        receipt.started.len(),
        2,
        "the raised event started the second flow"
    );
    let j = journey(&engine, "SO-1").await;
    let flows: Vec<&str> = j.executions.iter().map(|e| e.flow.as_str()).collect();
    assert_eq!(flows, ["First", "Second"]);
    assert_eq!(j.outcome("Second start"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[1].status, ExecutionStatus::Completed);
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);

    let raised = j
        .timeline
        .iter()
        .find(|e| e.kind == EventKind::ORDER_HEADER_VALIDATION_SUCCEEDED)
        .expect("validation succeeded is on the timeline");
    assert_eq!(raised.raised_by.as_deref(), Some("Validate"));
    let extra = j
        .timeline
        .iter()
        .find(|e| e.kind == EventKind::new("Needs attention"))
        .expect("the on_failure event is on the timeline");
    assert_eq!(extra.raised_by.as_deref(), Some("Boom"));
    // Timeline positions are 1, 2, 3, … in arrival order.
    let seqs: Vec<u64> = j.timeline.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=j.timeline.len() as u64).collect::<Vec<_>>());
    assert_eq!(j.timeline[0].kind, EventKind::NEW_ORDER);
    assert_eq!(j.timeline[0].raised_by, None);
}

// Rule 11 --------------------------------------------------------------------------------

#[tokio::test]
async fn a_republished_flow_keeps_running_executions_on_their_version() {
    let engine = builder().build().await.unwrap();
    install(&engine, wait_shipped_flow("F")).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    assert_eq!(
        journey(&engine, "SO-1").await.executions[0].status,
        ExecutionStatus::Waiting
    );

    engine.stop("F").await.unwrap();
    let mut next = wait_shipped_flow("F");
    next.version = semver::Version::new(1, 1, 0);
    engine.update_flow(next).await.unwrap();
    assert_eq!(
        engine.publish("F").await.unwrap(),
        semver::Version::new(1, 1, 0)
    );

    engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.executions.len(), 1);
    assert_eq!(j.executions[0].version, semver::Version::new(1, 0, 0));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
    let after = j.step("F after ship").next().expect("the waiting step ran");
    assert_eq!(after.outcome, Outcome::Succeeded);
    assert_eq!(after.version, semver::Version::new(1, 0, 0));

    engine
        .submit(Event::new_order(order("SO-2")))
        .await
        .unwrap();
    let j = journey(&engine, "SO-2").await;
    assert_eq!(j.executions[0].version, semver::Version::new(1, 1, 0));
    assert!(
        j.steps
            .iter()
            .all(|s| s.version == semver::Version::new(1, 1, 0))
    );
    assert_eq!(j.outcome("F validate"), Some(Outcome::Succeeded));
}

#[tokio::test]
async fn a_stopped_flow_lets_running_executions_finish() {
    let engine = builder().build().await.unwrap();
    install(&engine, wait_shipped_flow("F")).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    engine.stop("F").await.unwrap();
    let receipt = engine
        .submit(Event::new_order(order("SO-2")))
        .await
        .unwrap();
    assert!(receipt.started.is_empty());
    engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("F after ship"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn a_paused_flow_queues_its_events_until_resumed() {
    let engine = builder().build().await.unwrap();
    install(&engine, wait_shipped_flow("F")).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    engine.pause("F").await.unwrap();

    engine
        .submit(Event::new_order(order("SO-2")))
        .await
        .unwrap();
    engine.submit(shipped("ship-1", "SO-1")).await.unwrap();
    engine.submit(shipped("ship-2", "SO-2")).await.unwrap();
    let j2 = journey(&engine, "SO-2").await;
    assert!(j2.steps.is_empty(), "nothing of a paused flow moves");
    assert_eq!(j2.timeline.len(), 2, "its events queue on the timeline");
    let j1 = journey(&engine, "SO-1").await;
    assert_eq!(trace(&j1), t(&[("F validate", Outcome::Succeeded)]));

    engine.resume("F").await.unwrap();
    let j1 = journey(&engine, "SO-1").await;
    assert_eq!(j1.outcome("F after ship"), Some(Outcome::Succeeded));
    assert_eq!(j1.executions[0].status, ExecutionStatus::Completed);
    let j2 = journey(&engine, "SO-2").await;
    assert_eq!(
        trace(&j2),
        t(&[
            ("F validate", Outcome::Succeeded),
            ("F after ship", Outcome::Succeeded)
        ])
    );
    assert_eq!(j2.executions[0].status, ExecutionStatus::Completed);
}

// Rule 4 (reprocess) ---------------------------------------------------------------------

#[tokio::test]
async fn reprocess_reruns_the_failed_step_in_a_new_round() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let engine = builder()
        .action(
            "flaky",
            action_fn(move |_| {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    if n == 0 {
                        Err(ActionError::new("first time fails"))
                    } else {
                        Ok(())
                    }
                })
            }),
        )
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(ActionStep::custom("Flaky", "flaky"))
                .action(ok("After"))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let failed = engine.failed_executions("SO-1").await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        journey(&engine, "SO-1").await.executions[0].status,
        ExecutionStatus::Failed
    );

    engine.reprocess(&failed[0]).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    let flaky: Vec<(Outcome, u32)> = j.step("Flaky").map(|s| (s.outcome, s.round)).collect();
    assert_eq!(flaky, [(Outcome::Failed, 0), (Outcome::Succeeded, 1)]);
    assert_eq!(
        j.step("Validate").count(),
        1,
        "steps before the failed one do not rerun"
    );
    assert_eq!(j.outcome("After"), Some(Outcome::Succeeded));
    assert_eq!(j.step("After").next().unwrap().round, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
    assert!(engine.failed_executions("SO-1").await.unwrap().is_empty());

    let err = engine.reprocess(&failed[0]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidState);
}

// Rule 8 ---------------------------------------------------------------------------------

#[tokio::test]
async fn information_failures_are_recorded_and_critical_ones_fail_the_step() {
    let engine = builder()
        .policy(execution_fn(
            "Info check",
            Entity::OrderLine,
            Criticality::Information,
            |_| Check::failed("just so you know"),
        ))
        .policy(execution_fn(
            "Critical check",
            Entity::Order,
            Criticality::Critical,
            |_| Check::failed("no way"),
        ))
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(ok("Informed").execution_policy("Info check"))
                .action(ok("Blocked").execution_policy("Critical check"))
                .action(ok("Never"))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(
        trace(&j),
        t(&[
            ("Validate", Outcome::Succeeded),
            ("Informed", Outcome::Succeeded),
            ("Blocked", Outcome::Failed)
        ])
    );
    let informed = j.step("Informed").next().unwrap();
    assert_eq!(informed.findings.len(), 1, "{:?}", informed.findings);
    assert_eq!(informed.findings[0].policy, "Info check");
    assert_eq!(informed.findings[0].criticality, Criticality::Information);
    let blocked = j.step("Blocked").next().unwrap();
    assert_eq!(blocked.findings.len(), 1);
    assert_eq!(blocked.findings[0].criticality, Criticality::Critical);
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);
}

// Rule 1 (live executions only) ----------------------------------------------------------

#[tokio::test]
async fn a_trigger_after_the_execution_completed_starts_a_new_one() {
    let engine = builder().build().await.unwrap();
    let flow = Flow::builder("F")
        .steps(|s| s.action(validate("Validate")))
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1")))
        .await
        .unwrap();
    let receipt = engine
        .submit(Event::new("again", EventKind::NEW_ORDER, "SO-1"))
        .await
        .unwrap();
    assert_eq!(
        receipt.started.len(),
        1,
        "the first execution is no longer live"
    );
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.executions.len(), 2);
    assert!(
        j.executions
            .iter()
            .all(|e| e.status == ExecutionStatus::Completed)
    );
}

// Rules 6 and 7 (records) ----------------------------------------------------------------

#[tokio::test]
async fn records_admitted_by_no_branch_stop_and_a_merge_unions_what_arrived() {
    let (engine, seattle, chicago) = routing(true, |q| match q {
        q if q >= Decimal::from(100) => "Seattle",
        q if q >= Decimal::from(10) => "Chicago",
        _ => "Dallas",
    })
    .await;
    let o = Order::new("SO-1")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Pallet", 150))
        .with_line(OrderLine::new("2", "Box", 10))
        .with_line(OrderLine::new("3", "Pen", 1));
    engine.submit(Event::new_order(o)).await.unwrap();

    let stored = engine.order("SO-1").await.unwrap().unwrap();
    assert_eq!(stored.fulfillment_orders.len(), 3);
    assert_eq!(seattle.calls().len(), 1);
    assert_eq!(chicago.calls().len(), 1);
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("By source"), Some(Outcome::Succeeded));
    let id_of = |source: &str| {
        let fo = stored
            .fulfillment_orders
            .iter()
            .find(|f| f.fulfillment_source == source)
            .unwrap();
        orderflow::document::RecordId::FulfillmentOrder(fo.id.clone())
    };
    let merged = &j.step("By source").last().unwrap().records;
    assert!(merged.contains(&id_of("Seattle")), "{merged:?}");
    assert!(merged.contains(&id_of("Chicago")), "{merged:?}");
    assert!(
        !merged.contains(&id_of("Dallas")),
        "the Dallas FO was admitted by no branch: {merged:?}"
    );
    assert_eq!(j.outcome("After"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

/// A billing provider that, when called, reads the order as its store holds it.
#[derive(Debug)]
struct ReadsTheStore {
    store: Arc<dyn orderflow::Store>,
    seen: Arc<std::sync::Mutex<Vec<(u64, usize)>>>,
}

#[async_trait::async_trait]
impl orderflow::provider::Provider for ReadsTheStore {
    fn name(&self) -> &str {
        "Billing"
    }
    fn offers(&self) -> &[orderflow::provider::RequestKind] {
        &[orderflow::provider::RequestKind::SendInvoice]
    }
    async fn call(
        &self,
        _: orderflow::provider::Request<'_>,
        _: &orderflow::provider::CallContext<'_>,
    ) -> Result<orderflow::provider::Reply, orderflow::provider::ProviderError> {
        let state = self
            .store
            .load(&orderflow::OrderId::from("SO-1"))
            .await
            .unwrap()
            .expect("committed before the call");
        let fulfillment_orders = state.order().fulfillment_orders.len();
        self.seen
            .lock()
            .unwrap()
            .push((state.revision(), fulfillment_orders));
        Ok(orderflow::provider::Reply::Done)
    }
}

/// Every commit of an order is a new revision of it: the store's check of the expected
/// revision is what stops an engine holding an older copy (a second instance, a turn that
/// lost a race) from overwriting it. The commit made before a provider call is one — the
/// provider already sees it stored, with what the steps before the call did to the order —
/// and the turn's last commit another.
#[tokio::test]
async fn every_commit_of_an_order_is_a_new_revision_in_the_store() {
    let store: Arc<dyn orderflow::Store> = Arc::new(MemoryStore::new());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let engine = Engine::builder()
        .store(store.clone())
        .config(Config::default().with_retry(RetryPolicy::NONE))
        .provider(ReadsTheStore {
            store: store.clone(),
            seen: seen.clone(),
        })
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Bill when shipped")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(
                    ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                        .input_event(EventKind::SHIPPED),
                )
                .action(ActionStep::new("Invoice", ActionKind::SendToInvoice).provider("Billing"))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    let revision = || async {
        engine
            .order_state("SO-1")
            .await
            .unwrap()
            .unwrap()
            .revision()
    };

    let sourced = Order::new("SO-1")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Pen", 1).with_fulfillment_source("Dallas"));
    engine.submit(Event::new_order(sourced)).await.unwrap();
    let created = revision().await;
    assert!(created > 0, "a new order's first commit is a revision");
    engine.submit(shipped("s-1", "SO-1")).await.unwrap();
    let before_call = seen.lock().unwrap().clone();
    assert_eq!(before_call.len(), 1);
    let (at_call, fulfillment_orders) = before_call[0];
    assert!(
        at_call > created,
        "the commit before the call: {at_call} after {created}"
    );
    assert_eq!(fulfillment_orders, 1, "the fulfillment order Assign made");
    let after = revision().await;
    assert!(after > at_call, "the turn's last commit: {after}");
    assert_eq!(
        journey(&engine, "SO-1").await.outcome("Invoice"),
        Some(Outcome::Succeeded)
    );
}

/// Runs flow "Pick, then wait for Shipped" on `order`, with the Pick step filtered by
/// `filter` (named "Carried"), then submits a shipment about each of `others` — none of
/// which the waiting step may take — and last one about `carried`, which it takes.
async fn waiting_step_takes_only_carried_records(
    filter: impl Into<orderflow::policy::Policy>,
    order: Order,
    others: &[RecordId],
    carried: RecordId,
) {
    let engine = builder().policy(filter).build().await.unwrap();
    let flow = Flow::builder("Ship what is carried")
        .steps(|s| {
            s.action(validate("Validate"))
                .action(ok("Pick").filter("Carried"))
                .action(ok("Ship").input_event(EventKind::SHIPPED))
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    let id = order.id.clone();
    engine.submit(Event::new_order(order)).await.unwrap();
    for (n, record) in others.iter().enumerate() {
        engine
            .submit(shipped(&format!("other-{n}"), id.as_str()).with_record(record.clone()))
            .await
            .unwrap();
        let j = journey(&engine, id.as_str()).await;
        assert_eq!(j.outcome("Ship"), None, "{record} is not the path's record");
        assert_eq!(j.executions[0].status, ExecutionStatus::Waiting);
    }
    engine
        .submit(shipped("carried", id.as_str()).with_record(carried))
        .await
        .unwrap();
    let j = journey(&engine, id.as_str()).await;
    assert_eq!(j.outcome("Ship"), Some(Outcome::Succeeded));
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

/// Rule 2 (events about one record): a waiting step takes an event that concerns one
/// record only when its path carries that record — the record is on the order and the
/// path's selection (narrowed by an earlier step's filter) holds it. Line 2 is on the
/// order but not on the path; line 9 is on neither.
#[tokio::test]
async fn a_waiting_step_takes_an_event_only_for_a_record_its_path_carries() {
    let line = |id: &str| RecordId::Line(id.into());
    waiting_step_takes_only_carried_records(
        filter_fn(
            "Carried",
            Entity::OrderLine,
            |r| matches!(r, RecordRef::Line(_, line) if line.id.as_str() == "1"),
        ),
        order("SO-1").with_line(OrderLine::new("2", "Pen", 1)),
        &[line("2"), line("9")],
        line("1"),
    )
    .await;
}

/// The same for fulfillment orders: a step waiting on a path that carries fulfillment order
/// FO-1 takes no event about FO-2 (on the order, not on the path), nor about one of FO-2's
/// lines, nor about a fulfillment order the order lacks; it takes the one about FO-1's line.
#[tokio::test]
async fn a_waiting_step_takes_an_event_only_for_a_fulfillment_order_its_path_carries() {
    let fo = |id: &str| RecordId::FulfillmentOrder(id.into());
    let fo_line = |id: &str| RecordId::FulfillmentOrderLine(id.into(), 0);
    let mut two = order("SO-1");
    two.fulfillment_orders = vec![
        FulfillmentOrder::new("FO-1", "East"),
        FulfillmentOrder::new("FO-2", "West"),
    ];
    waiting_step_takes_only_carried_records(
        filter_fn(
            "Carried",
            Entity::FulfillmentOrder,
            |r| matches!(r, RecordRef::FulfillmentOrder(_, fo) if fo.id.as_str() == "FO-1"),
        ),
        two,
        &[fo("FO-2"), fo_line("FO-2"), fo("FO-9")],
        fo_line("FO-1"),
    )
    .await;
}
