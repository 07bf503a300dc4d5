//! Target `engine`: bytes decode to a sequence of engine operations on a memory store and a
//! manual clock (create, publish, stop, pause, resume, republish flows from a small menu;
//! submit orders and events; reprocess; advance time and run due timers; script provider
//! failures; republish policies; restart on the same store), with invariants checked after
//! every operation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;
use orderflow::document::{Entity, OrderId, RecordId, RecordRef};
use orderflow::event::EventId;
use orderflow::execution::{ExecutionId, PathStatus};
use orderflow::flow::Flow;
use orderflow::policy::{Check, Criticality, execution_fn, filter_fn};
use orderflow::rules::{Condition, Operator, PolicyDocument, Rule};
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::{
    Config, Engine, Event, EventKind, FlowStatus, ManualClock, MemoryStore, Timestamp,
};

use crate::bytes::Bytes;
use crate::docgen;

const LAB_FLOW: &str = include_str!("../../examples/reference-lab/flow.json");
const LAB_POLICIES: &str = include_str!("../../examples/reference-lab/policies.json");
const RETRY_FLOW: &str = include_str!("../../examples/flows/fulfillment-with-retry.json");
const SAMPLE_FLOW: &str = include_str!("../../examples/flows/test-order-flow-sample.json");

/// Two flows that start each other: bounded only by the engine's runaway limits.
const PING_FLOW: &str = r#"{"name": "Ping", "steps": [
  {"action": {"name": "Answer ping", "kind": "custom", "custom_action": "Raise Pong",
              "input_events": ["Ping"]}}]}"#;
const PONG_FLOW: &str = r#"{"name": "Pong", "steps": [
  {"action": {"name": "Answer pong", "kind": "custom", "custom_action": "Raise Ping",
              "input_events": ["Pong"]}}]}"#;

/// Determination with retries, a Condition-Merge, a tolerant Splitter-Merge over the
/// fulfillment orders, and two waits for external events.
const SHIPPING_FLOW: &str = r#"{"name": "Shipping", "version": "1.0.0", "steps": [
  {"action": {"name": "Header", "kind": "validate_order_header", "input_events": ["New Order"],
              "execution_policies": ["Ship-to US"]}},
  {"action": {"name": "Determine", "kind": "send_to_dom", "provider": "Contoso DOM",
              "retry": {"attempts": 3, "backoff_ms": 1000, "max_backoff_ms": 4000, "jitter": 0.5},
              "on_failure": "Ping"}},
  {"condition_merge": {"name": "Determined?",
    "yes": [
      {"splitter_merge": {"name": "By source", "on_branch_failure": "tolerate", "branches": {
        "Seattle": [{"action": {"name": "Send Seattle", "kind": "send_to_fulfillment",
                                "filter": "Seattle store", "provider": "Seattle store 3PL"}}],
        "Chicago": [{"action": {"name": "Ship Chicago", "kind": "custom", "custom_action": "Ship it",
                                "filter": "Chicago store"}}]}}}],
    "no": [{"action": {"name": "Triage", "kind": "custom", "custom_action": "Maybe fail"}}]}},
  {"action": {"name": "Invoice", "kind": "send_to_invoice", "provider": "Contoso Billing",
              "input_events": ["Shipped"], "on_failure": "Invoice failed",
              "retry": {"attempts": 2, "backoff_ms": 500}}},
  {"action": {"name": "ERP", "kind": "send_to_fulfillment_erp", "provider": "Contoso ERP",
              "input_events": ["Invoiced"], "timeout_ms": 1000}}]}"#;

/// Line validation and rule assignment, then a Splitter without merge.
const LINES_FLOW: &str = r#"{"name": "Lines", "version": "0.1.0", "steps": [
  {"action": {"name": "Lines valid", "kind": "validate_order_line", "input_events": ["New Order", "Resubmitted"],
              "execution_policies": ["Quantity at least 5"]}},
  {"action": {"name": "Assign", "kind": "assign_fulfillment_source",
              "execution_policies": ["Fulfillment source assignment"]}},
  {"splitter": {"name": "Route", "branches": {
    "Rush": [{"action": {"name": "Rush check", "kind": "custom", "custom_action": "Maybe fail",
                         "filter": "Has rush"}},
             {"condition": {"name": "Rush ok?", "yes": [],
                            "no": [{"action": {"name": "Rush alert", "kind": "custom",
                                               "custom_action": "Raise Ping"}}]}}],
    "Big": [{"action": {"name": "Big DOM", "kind": "send_to_dom", "filter": "Big lines",
                        "provider": "Contoso DOM", "input_events": ["Shipped"]}}]}}}]}"#;

/// Starts on "Shipped" (so also on events other flows wait for).
const LISTENER_FLOW: &str = r#"{"name": "Listener", "steps": [
  {"action": {"name": "Heard", "kind": "custom", "custom_action": "Maybe fail",
              "input_events": ["Shipped", "Invoice failed"], "on_failure": "Resubmitted",
              "filter": "Order header filter"}}]}"#;

const FLOWS: &[&str] = &[
    LAB_FLOW,
    RETRY_FLOW,
    SAMPLE_FLOW,
    PING_FLOW,
    PONG_FLOW,
    SHIPPING_FLOW,
    LINES_FLOW,
    LISTENER_FLOW,
];

const EXTRA_POLICIES: &str = r#"[
  {"name": "Has rush", "type": "filter", "entity": "order",
   "rules": [{"name": "Rush", "condition": {"field": "custom.rush", "operator": "contains_data"}}]},
  {"name": "Big lines", "type": "filter", "entity": "order_line",
   "rules": [{"name": "Big", "condition": {"field": "quantity", "operator": ">=", "value": 100}}]}
]"#;

const PROVIDERS: &[&str] = &[
    "Contoso DOM",
    "Contoso 3PL",
    "Contoso Billing",
    "Contoso ERP",
    "Seattle store 3PL",
    "Chicago store 3PL",
];

const ORDERS: &[&str] = &["SO-1", "SO-2", "SO-3"];
const EVENT_IDS: &[&str] = &["e1", "e2", "e3", "new:SO-1", "e4"];
const KINDS: &[&str] = &[
    "Shipped",
    "Invoiced",
    "Ping",
    "Pong",
    "New Order",
    "Resubmitted",
    "Invoice failed",
    "",
];
const ADVANCE_MS: &[u64] = &[0, 1, 400, 500, 1_000, 2_000, 5_000, 60_000, 3_600_000];

fn flow_menu(i: usize) -> Flow {
    Flow::from_json(FLOWS[i % FLOWS.len()]).expect("the menu's flows parse")
}

fn flow_name(i: usize) -> String {
    flow_menu(i).name
}

/// What lives across engine restarts: the store, the clock, the providers.
struct World {
    store: Arc<MemoryStore>,
    clock: ManualClock,
    providers: Vec<ScriptedProvider>,
    seed: u64,
    engine: Engine,
    /// Orders some submit was accepted for.
    known: HashSet<OrderId>,
    /// Event ids each order accepted (not as duplicates).
    seen: HashMap<OrderId, HashSet<EventId>>,
    fresh: u32,
}

async fn build(
    store: &Arc<MemoryStore>,
    clock: &ManualClock,
    providers: &[ScriptedProvider],
    seed: u64,
) -> Engine {
    let mut b = Engine::builder()
        .store(store.clone())
        .clock(clock.clone())
        .config(
            Config::default()
                .with_seed(seed)
                .with_max_steps_per_turn(120)
                .with_max_journey(100),
        );
    for p in providers {
        b = b.provider(p.clone());
    }
    b = b
        .policy(filter_fn(
            "Filter Policy – BigCommerce",
            Entity::Order,
            |r| matches!(r, RecordRef::Order(o) if o.order_source.as_deref() == Some("BigCommerce")),
        ))
        .policy(filter_fn(
            "Filter Policy – Orderful",
            Entity::Order,
            |r| matches!(r, RecordRef::Order(o) if o.order_source.as_deref() == Some("Orderful")),
        ))
        .policy(filter_fn("Order header filter", Entity::Order, |r| {
            matches!(r, RecordRef::Order(o) if o.ship_to.country.is_some())
        }))
        .policy(execution_fn(
            "Order header Validation Policy",
            Entity::Order,
            Criticality::Critical,
            |r| match r {
                orderflow::document::RecordMut::Order(o) if o.ship_to.country.is_some() => {
                    Check::Passed
                }
                _ => Check::failed("no ship-to country"),
            },
        ))
        .action(
            "Raise Pong",
            orderflow::action_fn(|cx| {
                cx.raise(EventKind::new("Pong"), None);
                Box::pin(async { Ok(()) })
            }),
        )
        .action(
            "Raise Ping",
            orderflow::action_fn(|cx| {
                cx.raise(EventKind::new("Ping"), None);
                Box::pin(async { Ok(()) })
            }),
        )
        .action(
            "Ship it",
            orderflow::action_fn(|cx| {
                let fos: Vec<_> = cx.fulfillment_orders().map(|f| f.id.clone()).collect();
                for id in fos {
                    cx.raise(EventKind::SHIPPED, Some(RecordId::FulfillmentOrder(id)));
                }
                Box::pin(async { Ok(()) })
            }),
        )
        .action(
            "Maybe fail",
            orderflow::action_fn(|cx| {
                let fail = matches!(
                    cx.order().custom.get("fail"),
                    Some(orderflow::document::Value::Bool(true))
                );
                cx.note("maybe");
                Box::pin(async move {
                    if fail {
                        Err(orderflow::ActionError::new("asked to fail"))
                    } else {
                        Ok(())
                    }
                })
            }),
        );
    b.build()
        .await
        .expect("the engine builds on a store it wrote itself")
}

fn lab_policy_with_threshold(threshold: orderflow::Decimal) -> PolicyDocument {
    // Built in code: any decimal threshold, including ones no JSON number carries exactly
    // (the largest decimal, 28 places).
    PolicyDocument::new(
        "Quantity at least 5",
        orderflow::PolicyKind::Execution,
        Entity::OrderLine,
    )
    .with_criticality(Criticality::Critical)
    .with_rule(
        Rule::check(
            "Minimum quantity",
            Condition::compare("quantity", Operator::GreaterOrEqual, threshold),
        )
        .with_message("quantity too low"),
    )
}

impl World {
    async fn new(seed: u64) -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = ManualClock::new(Timestamp(1_000_000));
        let providers: Vec<ScriptedProvider> = PROVIDERS
            .iter()
            .map(|n| {
                let p = ScriptedProvider::new(*n, clock.clone());
                if *n == "Contoso DOM" {
                    p.sourcing_from("Seattle store")
                } else {
                    p
                }
            })
            .collect();
        let engine = build(&store, &clock, &providers, seed).await;
        let mut policies = PolicyDocument::list_from_json(LAB_POLICIES).expect("lab policies");
        policies.extend(PolicyDocument::list_from_json(EXTRA_POLICIES).expect("extra policies"));
        for p in policies {
            let name = p.name.clone();
            engine.create_policy(p).await.expect("create policy");
            engine.publish_policy(&name).await.expect("publish policy");
        }
        Self {
            store,
            clock,
            providers,
            seed,
            engine,
            known: HashSet::new(),
            seen: HashMap::new(),
            fresh: 0,
        }
    }

    async fn submit(&mut self, event: Event) {
        let order = event.order.clone();
        let id = event.id.clone();
        let was_seen = self.seen.get(&order).is_some_and(|s| s.contains(&id));
        let result = self.engine.submit(event).await;
        trace!("engine: submit {id} to {order}: {result:?}");
        let Ok(receipt) = result else {
            return;
        };
        self.known.insert(order.clone());
        if was_seen {
            assert!(
                receipt.duplicate,
                "event '{id}' was accepted before by '{order}' but is not reported duplicate: {receipt:?}"
            );
            return;
        }
        if receipt.duplicate {
            return;
        }
        self.seen
            .entry(order.clone())
            .or_default()
            .insert(id.clone());
        let state = self
            .engine
            .order_state(&order)
            .await
            .expect("order state")
            .expect("an order with an accepted event has a state");
        assert!(
            state
                .timeline()
                .iter()
                .any(|e| e.id == id && e.seq == receipt.seq),
            "the receipt's seq {} for '{id}' is not the event's place on the timeline: {:?}",
            receipt.seq,
            state.timeline()
        );
    }

    async fn op(&mut self, r: &mut Bytes<'_>) {
        let e = &self.engine;
        match r.u8() % 16 {
            0 => {
                let res = e.create_flow(flow_menu(r.below(FLOWS.len()))).await;
                trace!("engine: create: {res:?}");
            }
            1 => {
                let res = e.publish(&flow_name(r.below(FLOWS.len()))).await;
                trace!("engine: publish: {res:?}");
            }
            2 => {
                let res = e.stop(&flow_name(r.below(FLOWS.len()))).await;
                trace!("engine: stop: {res:?}");
            }
            3 => {
                let res = e.pause(&flow_name(r.below(FLOWS.len()))).await;
                trace!("engine: pause: {res:?}");
            }
            4 => {
                let res = e.resume(&flow_name(r.below(FLOWS.len()))).await;
                trace!("engine: resume: {res:?}");
            }
            5 => {
                // Republish with a bumped version, maybe with another flow's steps.
                let name = flow_name(r.below(FLOWS.len()));
                let _ = e.stop(&name).await;
                let Some(mut flow) = e.flow(&name) else {
                    return;
                };
                match r.below(3) {
                    0 => flow.version.patch += 1,
                    1 => flow.version.minor += 1,
                    _ => {} // same version: publish must refuse it once published
                }
                if r.below(4) == 0 {
                    flow.steps = flow_menu(r.below(FLOWS.len())).steps;
                }
                let res = e.update_flow(flow).await;
                trace!("engine: update: {res:?}");
                let res = e.publish(&name).await;
                trace!("engine: republish: {res:?}");
            }
            6 => {
                let id = *r.pick(ORDERS);
                let doc = docgen::order(r, id);
                let event = if r.bool() {
                    Event::new_order(doc)
                } else {
                    Event::new(*r.pick(EVENT_IDS), EventKind::NEW_ORDER, id).with_order(doc)
                };
                self.submit(event).await;
            }
            7 => {
                let order = *r.pick(ORDERS);
                let kind = EventKind::new(*r.pick(KINDS));
                let id = if r.bool() {
                    (*r.pick(EVENT_IDS)).to_owned()
                } else {
                    self.fresh += 1;
                    format!("f{}", self.fresh)
                };
                let mut event = Event::new(id, kind, order);
                match r.below(5) {
                    0 => event = event.with_record(RecordId::FulfillmentOrder("FO-1".into())),
                    1 => event = event.with_record(RecordId::FulfillmentOrder("FO-2".into())),
                    2 => event = event.with_record(RecordId::Line("1".into())),
                    _ => {}
                }
                if r.below(4) == 0 {
                    let doc = docgen::order(r, order);
                    event = event.with_order(doc);
                }
                self.submit(event).await;
            }
            8 => {
                let order = OrderId::from(*r.pick(ORDERS));
                let failed = e
                    .failed_executions(&order)
                    .await
                    .expect("failed executions");
                for failed in failed.into_iter().take(1 + r.below(2)) {
                    let res = e.reprocess(&failed).await;
                    let id = &failed.id;
                    trace!("engine: reprocess {id}: {res:?}");
                    if let Err(orderflow::Error::NotReprocessable(_)) = res {
                        panic!("{id} was listed failed but is not reprocessable");
                    }
                }
            }
            9 => {
                let ms = *r.pick(ADVANCE_MS);
                self.clock.advance(Duration::from_millis(ms));
                let res = e.run_due().await;
                trace!("engine: +{ms} ms, run_due: {res:?}");
                if res.is_ok() {
                    self.check_no_overdue().await;
                }
            }
            10 => {
                let p = &self.providers[r.below(self.providers.len())];
                let n = 1 + r.below(4);
                let script: Vec<Behavior> = (0..n)
                    .map(|_| match r.below(6) {
                        0 => Behavior::Retryable("busy".into()),
                        1 => Behavior::Fatal("rejected".into()),
                        2 => Behavior::LostReply,
                        3 => Behavior::Panic("provider bug".into()),
                        _ => Behavior::Ok,
                    })
                    .collect();
                trace!("engine: script {p:?}: {script:?}");
                if r.below(8) == 0 {
                    p.reset_script();
                }
                p.script(script);
            }
            11 => {
                let threshold = docgen::number(r);
                let res = e.update_policy(lab_policy_with_threshold(threshold)).await;
                trace!("engine: update policy: {res:?}");
                let res = e.publish_policy("Quantity at least 5").await;
                trace!("engine: publish policy: {res:?}");
            }
            12 => {
                let res = e.recover().await;
                trace!("engine: recover: {res:?}");
            }
            13 => {
                let flow = flow_menu(r.below(FLOWS.len()));
                let id = *r.pick(ORDERS);
                let doc = docgen::order(r, id);
                let res = e.simulate(&flow, &doc).await;
                trace!("engine: simulate: {:?}", res.map(|s| s.journey.steps.len()));
            }
            14 => {
                // A restart: a new engine on the same store, which recovers.
                self.engine = build(&self.store, &self.clock, &self.providers, self.seed).await;
                let res = self.engine.recover().await;
                trace!("engine: restart, recover: {res:?}");
            }
            _ => {
                let order = OrderId::from(*r.pick(ORDERS));
                let id = ExecutionId {
                    order,
                    seq: 1 + u32::from(r.u8()),
                };
                let res = e.reprocess(&id).await;
                trace!("engine: reprocess {id}: {res:?}");
            }
        }
    }

    /// After `run_due`, no timer of a flow that can move is still due.
    async fn check_no_overdue(&self) {
        let now = orderflow::Clock::now(&self.clock);
        for order in &self.known {
            let Some(state) = self.engine.order_state(order).await.expect("state") else {
                continue;
            };
            for exec in state.executions() {
                if self.engine.flow(exec.flow()).map(|f| f.status) == Some(FlowStatus::Paused) {
                    continue;
                }
                for path in exec.paths() {
                    if let PathStatus::Retrying { at } = path {
                        assert!(
                            at > now,
                            "{}: a path is still due after run_due at {now:?}: {path:?}",
                            exec.id()
                        );
                    }
                }
            }
        }
    }

    /// Invariants that hold between operations.
    async fn check(&self) {
        for order in &self.known {
            let state = self
                .engine
                .order_state(order)
                .await
                .expect("order state is readable")
                .expect("an accepted order has a state");
            let journey = self
                .engine
                .journey(order)
                .await
                .expect("the journey of an accepted order is readable");
            assert_eq!(journey.timeline, state.timeline());
            for w in state.timeline().windows(2) {
                assert!(
                    w[0].seq < w[1].seq,
                    "{order}: timeline seq not increasing: {:?}",
                    state.timeline()
                );
            }
            let seqs: HashSet<u64> = state.timeline().iter().map(|e| e.seq).collect();
            assert_eq!(journey.executions.len(), state.executions().len());
            for w in state.executions().windows(2) {
                assert!(
                    w[0].id().seq < w[1].id().seq,
                    "{order}: execution ids not increasing"
                );
            }
            for (summary, exec) in journey.executions.iter().zip(state.executions()) {
                assert_eq!(&summary.id, exec.id());
                assert_eq!(summary.status, exec.status());
                assert_eq!(
                    exec.paths().next().is_none(),
                    exec.ended().is_some(),
                    "{}: ended {:?} with paths {:?} ({:?})",
                    exec.id(),
                    exec.ended(),
                    exec.paths().collect::<Vec<_>>(),
                    exec.status()
                );
                assert!(
                    seqs.contains(&exec.trigger()),
                    "{}: trigger {} is not on the timeline",
                    exec.id(),
                    exec.trigger()
                );
                let paused =
                    self.engine.flow(exec.flow()).map(|f| f.status) == Some(FlowStatus::Paused);
                for path in exec.paths() {
                    match path {
                        PathStatus::Running => {
                            panic!("{}: a path is Running between operations", exec.id())
                        }
                        PathStatus::Ready => assert!(
                            paused,
                            "{}: a path is Ready but flow '{}' is not paused",
                            exec.id(),
                            exec.flow()
                        ),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// The `engine` target. Never panics; errors of single operations are expected.
pub fn engine(data: &[u8]) {
    let mut r = Bytes::new(data);
    let seed = u64::from(r.u8());
    block_on(async {
        let mut world = World::new(seed).await;
        // Bounded work per input: at most 48 operations.
        for _ in 0..48 {
            if r.is_empty() {
                break;
            }
            world.op(&mut r).await;
            world.check().await;
        }
    });
}
