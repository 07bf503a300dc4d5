//! Many orders at once, and bursts of events for the same order (DESIGN.md §3, rules 1, 2,
//! 7, 9 and 10).
//!
//! 10,000 orders go concurrently through a flow with a Splitter-Merge (a filtered branch per
//! order parity, a two-step branch, an empty branch) and a step waiting for "Shipped". Every
//! order gets its "New Order" twice at once, then a burst of events submitted as separate
//! tasks: two "Shipped" and two unrelated events with distinct ids, and repeats of some ids.
//! Afterwards every journey must be complete and consistent: one execution, Completed; each
//! action recorded exactly once; the merge Succeeded after its branches; the wait took one
//! of the order's "Shipped" events; the timeline numbered 1, 2, 3, … without gaps and
//! holding each event id once; every repeated id acknowledged as a duplicate; and exactly
//! one provider call per action and order, each with its own idempotency key, none retried.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use futures::FutureExt;
use orderflow::document::{Entity, Order, OrderId, OrderLine, RecordId, RecordRef, Value};
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow};
use orderflow::policy::{Policy, filter_fn};
use orderflow::provider::Request;
use orderflow::{Engine, Event, EventKind, MemoryProvider, Outcome, Receipt, action_fn};

const ORDERS: usize = 10_000;
const PROVIDER: &str = "Carrier";
const NOTE: EventKind = EventKind::from_static("Customer note");

/// The actions every order runs (one of `Even`/`Odd` by parity), each calling the provider.
const ACTIONS: [&str; 5] = ["Receive", "Audit", "Score", "Await shipment", "Invoice"];

fn parity_filter(name: &'static str, even: bool) -> impl orderflow::policy::FilterPolicy {
    filter_fn(name, Entity::Order, move |r| match r {
        RecordRef::Order(o) => o.custom.get("even") == Some(&Value::Bool(even)),
        _ => false,
    })
}

fn step(name: &str) -> ActionStep {
    ActionStep::custom(name, "call provider").provider(PROVIDER)
}

async fn engine(provider: MemoryProvider) -> Engine {
    let engine = Engine::builder()
        .provider(provider)
        .policy(Policy::filter(parity_filter("Even orders", true)))
        .policy(Policy::filter(parity_filter("Odd orders", false)))
        .policy(filter_fn("Every order", Entity::Order, |_| true))
        .action(
            "call provider",
            action_fn(|cx| {
                async move {
                    let payload = serde_json::Value::Null;
                    let name = cx.step().name.clone();
                    let request = Request::Custom {
                        name: &name,
                        order: cx.order(),
                        payload: &payload,
                    };
                    cx.call(&RecordId::Order, request).await?;
                    Ok(())
                }
                .boxed()
            }),
        )
        .build()
        .await
        .expect("the engine builds");
    let flow = Flow::builder("Ship and bill")
        .steps(|s| {
            s.action(step("Receive").input_event(EventKind::NEW_ORDER))
                .splitter_merge("Route", |b| {
                    b.branch("even", |s| s.action(step("Even").filter("Even orders")))
                        .branch("odd", |s| s.action(step("Odd").filter("Odd orders")))
                        .branch("all", |s| {
                            s.action(step("Audit").filter("Every order"))
                                .action(step("Score"))
                        })
                        .branch("pass", |s| s)
                })
                .action(step("Await shipment").input_event(EventKind::SHIPPED))
                .action(step("Invoice"))
        })
        .build()
        .expect("the flow is valid");
    engine.create_flow(flow).await.expect("created");
    engine.publish("Ship and bill").await.expect("published");
    engine
}

fn order(i: usize) -> Order {
    Order::new(format!("SO-{i:05}"))
        .with_line(OrderLine::new("1", "Surface Pen", 1))
        .with_custom("even", i % 2 == 0)
}

/// The burst after "New Order": (event id, kind), repeats included.
fn burst() -> Vec<(&'static str, EventKind)> {
    vec![
        ("ship-1", EventKind::SHIPPED),
        ("note-1", NOTE),
        ("ship-2", EventKind::SHIPPED),
        ("ship-1", EventKind::SHIPPED),
        ("note-2", NOTE),
        ("note-1", NOTE),
        ("ship-2", EventKind::SHIPPED),
    ]
}

/// Submits everything for order `i`; returns the receipts by event id.
async fn drive(engine: Engine, i: usize) -> (OrderId, Vec<(String, Receipt)>) {
    let doc = order(i);
    let id = doc.id.clone();
    let mut receipts = Vec::new();
    // "New Order" twice at once: one starts the execution, the other is a duplicate.
    let (a, b) = futures::join!(
        engine.submit(Event::new_order(doc.clone())),
        engine.submit(Event::new_order(doc.clone())),
    );
    let new_id = format!("new:{id}");
    receipts.push((new_id.clone(), a.expect("submit New Order")));
    receipts.push((new_id.clone(), b.expect("submit New Order")));

    // The burst: every event its own task, so they race on both worker threads; a late
    // repeat of "New Order" goes with them.
    let mut tasks = Vec::new();
    for (event_id, kind) in burst() {
        let engine = engine.clone();
        let event = Event::new(event_id, kind, id.clone());
        tasks.push(tokio::spawn(async move {
            (event_id.to_owned(), engine.submit(event).await)
        }));
    }
    {
        let engine = engine.clone();
        let event = Event::new_order(doc);
        tasks.push(tokio::spawn(
            async move { (new_id, engine.submit(event).await) },
        ));
    }
    for task in tasks {
        let (event_id, receipt) = task.await.expect("the task finishes");
        receipts.push((event_id, receipt.expect("submit")));
    }
    (id, receipts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_orders_with_event_bursts() {
    let provider = MemoryProvider::new(PROVIDER);
    let engine = engine(provider.clone()).await;

    let started = Instant::now();
    let handles: Vec<_> = (0..ORDERS)
        .map(|i| tokio::spawn(drive(engine.clone(), i)))
        .collect();
    let mut all = Vec::with_capacity(ORDERS);
    for h in handles {
        all.push(h.await.expect("the order's task finishes"));
    }
    let submitted = started.elapsed();

    let checking = Instant::now();
    let submitted_ids: HashSet<&str> = ["new:", "ship-1", "ship-2", "note-1", "note-2"]
        .into_iter()
        .collect();
    for (n, (id, receipts)) in all.iter().enumerate() {
        let journey = engine.journey(id).await.expect("the journey");
        let ctx = || format!("order {id}:\n{journey}");

        // One execution, started by the first "New Order", Completed.
        assert_eq!(journey.executions.len(), 1, "{}", ctx());
        assert_eq!(
            journey.executions[0].status,
            ExecutionStatus::Completed,
            "{}",
            ctx()
        );

        // Receipts: exactly one non-duplicate per distinct id, repeats flagged duplicate.
        let mut fresh: BTreeMap<String, Vec<&Receipt>> = BTreeMap::new();
        for (event_id, r) in receipts {
            if r.duplicate {
                assert_eq!(r.seq, 0, "a duplicate has no seq: {event_id} {}", ctx());
                assert!(r.started.is_empty(), "{}", ctx());
            } else {
                fresh.entry(event_id.clone()).or_default().push(r);
            }
        }
        assert_eq!(
            receipts.iter().filter(|(_, r)| r.duplicate).count(),
            5,
            "two repeats of New Order and three of burst ids: {receipts:?} {}",
            ctx()
        );
        assert_eq!(fresh.len(), 5, "{receipts:?} {}", ctx());
        for (event_id, rs) in &fresh {
            assert_eq!(rs.len(), 1, "event {event_id} accepted twice: {}", ctx());
            let r = rs[0];
            let entry = &journey.timeline[(r.seq - 1) as usize];
            assert_eq!(
                entry.id.as_str(),
                event_id,
                "receipt seq {} {}",
                r.seq,
                ctx()
            );
            assert_eq!(entry.raised_by, None, "{}", ctx());
            let starts = usize::from(event_id.starts_with("new:"));
            assert_eq!(r.started.len(), starts, "{event_id}: {r:?} {}", ctx());
        }

        // Timeline: 1, 2, 3, … without gaps; every id once; New Order first.
        for (k, e) in journey.timeline.iter().enumerate() {
            assert_eq!(e.seq, k as u64 + 1, "timeline gap: {}", ctx());
        }
        let ids: HashSet<&str> = journey.timeline.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), journey.timeline.len(), "an id twice: {}", ctx());
        assert_eq!(journey.timeline[0].kind, EventKind::NEW_ORDER, "{}", ctx());
        let external: Vec<&str> = journey
            .timeline
            .iter()
            .filter(|e| e.raised_by.is_none())
            .map(|e| {
                let s = e.id.as_str();
                if s.starts_with("new:") { "new:" } else { s }
            })
            .collect();
        assert_eq!(external.len(), 5, "{}", ctx());
        assert_eq!(
            external.iter().copied().collect::<HashSet<_>>(),
            submitted_ids,
            "{}",
            ctx()
        );
        // Six actions ran, each raising its "<step> has Succeeded".
        assert_eq!(journey.timeline.len(), 5 + 6, "{}", ctx());

        // Steps: each action once; the merge Succeeded after every branch step.
        let count = |name: &str| journey.step(name).count();
        let (taken, skipped) = if n % 2 == 0 {
            ("Even", "Odd")
        } else {
            ("Odd", "Even")
        };
        for name in ACTIONS.iter().copied().chain([taken]) {
            assert_eq!(count(name), 1, "{name}: {}", ctx());
            assert_eq!(
                journey.outcome(name),
                Some(Outcome::Succeeded),
                "{name}: {}",
                ctx()
            );
        }
        assert_eq!(count(skipped), 1, "{}", ctx());
        assert_eq!(
            journey.outcome(skipped),
            Some(Outcome::Skipped),
            "{}",
            ctx()
        );
        assert_eq!(count("Route"), 2, "splitter opener and merge: {}", ctx());
        assert_eq!(
            journey.outcome("Route"),
            Some(Outcome::Succeeded),
            "{}",
            ctx()
        );
        assert_eq!(journey.steps.len(), 6 + 1 + 2, "{}", ctx());
        let pos = |name: &str| {
            journey
                .steps
                .iter()
                .rposition(|s| s.step == name)
                .expect("recorded")
        };
        let merge = pos("Route");
        for name in ["Even", "Odd", "Audit", "Score"] {
            assert!(pos(name) < merge, "{name} after the merge: {}", ctx());
        }
        assert!(pos("Receive") < merge && merge < pos("Await shipment"));
        assert!(pos("Await shipment") < pos("Invoice"), "{}", ctx());

        // The wait took one of this order's "Shipped" events.
        let wait = journey.step("Await shipment").next().expect("recorded");
        let took: u64 = wait
            .details
            .iter()
            .find_map(|d| {
                d.strip_prefix("took event 'Shipped' (#")
                    .and_then(|r| r.strip_suffix(')'))
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no event taken: {}", ctx()));
        let shipped = &journey.timeline[(took - 1) as usize];
        assert_eq!(shipped.kind, EventKind::SHIPPED, "{}", ctx());
        assert!(
            shipped.id.as_str() == "ship-1" || shipped.id.as_str() == "ship-2",
            "{}",
            ctx()
        );
        // …the first one that arrived.
        let first_shipped = journey
            .timeline
            .iter()
            .find(|e| e.kind == EventKind::SHIPPED)
            .map(|e| e.seq);
        assert_eq!(first_shipped, Some(took), "{}", ctx());
    }
    let checked = checking.elapsed();

    // Provider calls: one per action and order, distinct keys, no retries.
    let calls = provider.calls();
    assert_eq!(calls.len(), ORDERS * 6, "provider calls");
    let mut per_order: HashMap<&str, usize> = HashMap::new();
    let mut keys = HashSet::new();
    for c in &calls {
        assert_eq!(c.attempt, 1, "a retried call: {c:?}");
        assert!(keys.insert(c.idempotency_key.as_str()), "key twice: {c:?}");
        *per_order.entry(c.order.as_str()).or_default() += 1;
    }
    assert_eq!(per_order.len(), ORDERS);
    assert!(per_order.values().all(|&n| n == 6), "six calls per order");

    println!(
        "{ORDERS} orders, {} submissions: submitted in {submitted:?}, checked in {checked:?}",
        ORDERS * 10
    );
}

/// Rule 2: "events that arrived earlier and were not yet consumed count (the order's
/// inbox)". In a burst, "Delivered" may be processed before "Shipped"; the step waiting for
/// "Delivered" after the one waiting for "Shipped" must still take it.
#[tokio::test]
async fn an_unconsumed_earlier_event_counts_for_a_later_wait() {
    let delivered = EventKind::from_static("Delivered");
    let engine = Engine::builder()
        .action(
            "ok",
            action_fn(|_cx| futures::future::ready(Ok(())).boxed()),
        )
        .build()
        .await
        .expect("engine");
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(ActionStep::custom("A", "ok").input_event(EventKind::NEW_ORDER))
                .action(ActionStep::custom("Ship", "ok").input_event(EventKind::SHIPPED))
                .action(ActionStep::custom("Deliver", "ok").input_event(delivered.clone()))
        })
        .build()
        .expect("valid");
    engine.create_flow(flow).await.expect("created");
    engine.publish("F").await.expect("published");
    let id = OrderId::from("O1");
    engine
        .submit(Event::new_order(Order::new("O1")))
        .await
        .expect("submitted");
    // The burst arrived Delivered-first.
    for (event_id, kind) in [("d-1", delivered), ("s-1", EventKind::SHIPPED)] {
        engine
            .submit(Event::new(event_id, kind, id.clone()))
            .await
            .expect("submitted");
    }
    let journey = engine.journey(&id).await.expect("journey");
    assert_eq!(
        journey.executions[0].status,
        ExecutionStatus::Completed,
        "{journey}"
    );
    assert_eq!(
        journey.outcome("Deliver"),
        Some(Outcome::Succeeded),
        "{journey}"
    );
}
