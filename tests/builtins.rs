//! The built-in actions through the engine (outcomes, status reasons, events, fulfillment
//! orders) and the publish lifecycle of rule policies (versions, pinning, restart).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use orderflow::action::{Action, Sourcing, action_fn};
use orderflow::clock::Clock;
use orderflow::document::{
    Decimal, Entity, FulfillmentOrder, FulfillmentOrderLine, LineId, Order, OrderLine, RecordId,
    RecordMut, State, StatusReason,
};
use orderflow::engine::Config;
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow, ProblemKind, RetryPolicy};
use orderflow::journey::Journey;
use orderflow::policy::{Check, Criticality, PolicyKind, execution_fn, filter_fn};
use orderflow::provider::{
    Allocation, CallContext, FulfillmentPlan, PlannedLine, Reply, Request, RequestKind,
};
use orderflow::rules::{Condition, Operator, PolicyDocument, PolicyStatus, Rule};
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::testing::store::{Fault, FaultyStore};
use orderflow::{
    ActionKind, Engine, EngineBuilder, Error, ErrorKind, Event, EventKind, ManualClock,
    MemoryProvider, MemoryStore, Outcome, Provider, ProviderError, Timestamp,
};

// Helpers --------------------------------------------------------------------------------

fn builder() -> EngineBuilder {
    Engine::builder()
        .store(MemoryStore::new())
        .config(Config::default().with_retry(RetryPolicy::NONE))
}

async fn install(engine: &Engine, flow: Flow) {
    let name = flow.name.clone();
    engine.create_flow(flow).await.unwrap();
    engine.publish(&name).await.unwrap();
}

async fn install_policy(engine: &Engine, doc: PolicyDocument) -> u32 {
    let name = doc.name.clone();
    engine.create_policy(doc).await.unwrap();
    engine.publish_policy(&name).await.unwrap()
}

async fn journey(engine: &Engine, order: &str) -> Journey {
    engine.journey(order).await.unwrap()
}

async fn stored(engine: &Engine, order: &str) -> Order {
    engine.order(order).await.unwrap().unwrap()
}

fn order(id: &str, country: &str, quantities: &[i64]) -> Order {
    let mut order = Order::new(id).with_ship_to_country(country);
    for (n, q) in quantities.iter().enumerate() {
        order = order.with_line(OrderLine::new((n + 1).to_string(), "Surface Pen", *q));
    }
    order
}

fn line_reason(order: &Order, line: &str) -> Option<StatusReason> {
    order.line(line).unwrap().status_reason.clone()
}

fn fo_by_source<'a>(order: &'a Order, source: &str) -> &'a FulfillmentOrder {
    order
        .fulfillment_orders
        .iter()
        .find(|f| f.fulfillment_source == source)
        .unwrap_or_else(|| panic!("no fulfillment order from {source}: {order:?}"))
}

/// (order line, quantity) of a fulfillment order, in its order; these tests use whole
/// quantities.
fn fo_lines(fo: &FulfillmentOrder) -> Vec<(String, i64)> {
    fo.lines
        .iter()
        .map(|l| {
            assert!(l.quantity.fract().is_zero(), "{l:?}");
            let q = i64::try_from(l.quantity).unwrap();
            (l.order_line.as_str().to_owned(), q)
        })
        .collect()
}

fn events_of(j: &Journey, kind: &EventKind) -> Vec<Option<RecordId>> {
    j.timeline
        .iter()
        .filter(|e| &e.kind == kind)
        .map(|e| e.record.clone())
        .collect()
}

fn details(j: &Journey, step: &str) -> String {
    j.step(step).last().unwrap().details.join(" | ")
}

fn validate_header(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER)
}

/// Execution policy (Critical, order line): quantity >= `min`.
fn min_quantity(name: &str, min: i64) -> PolicyDocument {
    PolicyDocument::new(name, PolicyKind::Execution, Entity::OrderLine).with_rule(
        Rule::check(
            "Minimum quantity",
            Condition::compare("quantity", Operator::GreaterOrEqual, min),
        )
        .with_message(format!("quantity is below {min}")),
    )
}

/// Execution policy (Critical, order): ship-to country is US.
fn ship_to_us() -> PolicyDocument {
    PolicyDocument::new("Ship-to US", PolicyKind::Execution, Entity::Order).with_rule(
        Rule::check("Country is US", Condition::equals("ship_to.country", "US"))
            .with_message("ship-to country is not US"),
    )
}

/// Execution policy (Information, order line): quantity >= 100 → Seattle, 10..100 → Chicago,
/// below 10: no source.
/// Flow `name`: validate the header, assign fulfillment sources by the "Source assignment"
/// policy, then `send`.
fn send_flow(name: &str, send: ActionStep) -> Flow {
    Flow::builder(name)
        .steps(|s| {
            s.action(validate_header("Header"))
                .action(
                    ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                        .execution_policy("Source assignment"),
                )
                .action(send)
        })
        .build()
        .unwrap()
}

fn assignment() -> PolicyDocument {
    PolicyDocument::new(
        "Source assignment",
        PolicyKind::Execution,
        Entity::OrderLine,
    )
    .with_criticality(Criticality::Information)
    .with_rule(Rule::set(
        "Large",
        Condition::compare("quantity", Operator::GreaterOrEqual, 100),
        "fulfillment_source",
        "Seattle",
    ))
    .with_rule(Rule::set(
        "Medium",
        Condition::And(vec![
            Condition::compare("quantity", Operator::LessThan, 100),
            Condition::compare("quantity", Operator::GreaterOrEqual, 10),
        ]),
        "fulfillment_source",
        "Chicago",
    ))
}

/// A provider offering everything, scripted by the test: a fixed answer to fulfillment
/// determination, and refusals (non-retryable) per fulfillment source or for all requests.
#[derive(Debug, Clone)]
struct Scripted {
    name: &'static str,
    plan: Reply,
    /// Fulfillment sources whose fulfillment orders are refused; "*" refuses every request.
    refuse: Arc<Mutex<HashSet<String>>>,
    /// Accepted calls: (kind, fulfillment order id or "order").
    calls: Arc<Mutex<Vec<(RequestKind, String)>>>,
}

impl Scripted {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            plan: Reply::Done,
            refuse: Arc::default(),
            calls: Arc::default(),
        }
    }

    fn planning(mut self, lines: Vec<(&str, Vec<(&str, i64)>)>) -> Self {
        self.plan = Reply::FulfillmentPlan(plan(lines));
        self
    }

    fn refusing(self, what: &str) -> Self {
        self.refuse.lock().unwrap().insert(what.to_owned());
        self
    }

    fn accept_all(&self) {
        self.refuse.lock().unwrap().clear();
    }

    fn calls(&self) -> Vec<(RequestKind, String)> {
        self.calls.lock().unwrap().clone()
    }
}

fn plan(lines: Vec<(&str, Vec<(&str, i64)>)>) -> FulfillmentPlan {
    FulfillmentPlan {
        lines: lines
            .into_iter()
            .map(|(line, allocations)| PlannedLine {
                line: line.into(),
                allocations: allocations
                    .into_iter()
                    .map(|(source, quantity)| Allocation::new(source, quantity))
                    .collect(),
            })
            .collect(),
    }
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    fn offers(&self) -> &[RequestKind] {
        &[
            RequestKind::DetermineFulfillment,
            RequestKind::SendFulfillmentOrder,
            RequestKind::SendToErp,
            RequestKind::SendInvoice,
        ]
    }

    async fn call(
        &self,
        request: Request<'_>,
        _cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        let (record, source) = match request {
            Request::SendFulfillmentOrder {
                fulfillment_order, ..
            } => (
                fulfillment_order.id.as_str().to_owned(),
                Some(fulfillment_order.fulfillment_source.clone()),
            ),
            _ => ("order".to_owned(), None),
        };
        {
            let refuse = self.refuse.lock().unwrap();
            if refuse.contains("*") || source.is_some_and(|s| refuse.contains(&s)) {
                return Err(ProviderError::rejected(format!("{record} refused")));
            }
        }
        self.calls.lock().unwrap().push((request.kind(), record));
        Ok(match request {
            Request::DetermineFulfillment { .. } => self.plan.clone(),
            _ => Reply::Done,
        })
    }
}

// Validate Order Header ------------------------------------------------------------------

async fn header_engine() -> Engine {
    let engine = builder().build().await.unwrap();
    install_policy(&engine, ship_to_us()).await;
    install_policy(&engine, min_quantity("Quantity at least 5", 5)).await;
    let flow = Flow::builder("Validate")
        .steps(|s| {
            s.action(validate_header("Header").execution_policy("Ship-to US"))
                .action(
                    ActionStep::new("Lines", ActionKind::ValidateOrderLine)
                        .execution_policy("Quantity at least 5"),
                )
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
}

#[tokio::test]
async fn validate_order_header_succeeds_and_sets_validation_success() {
    let engine = header_engine().await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Header"), Some(Outcome::Succeeded), "{j}");
    assert!(j.step("Header").next().unwrap().findings.is_empty());
    assert!(j.has_event(&EventKind::ORDER_HEADER_VALIDATION_SUCCEEDED));
    assert!(!j.has_event(&EventKind::ORDER_HEADER_VALIDATION_FAILED));
    let o = stored(&engine, "SO-1").await;
    assert_eq!(
        o.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
    let raised = j
        .timeline
        .iter()
        .find(|e| e.kind == EventKind::ORDER_HEADER_VALIDATION_SUCCEEDED)
        .unwrap();
    assert_eq!(raised.raised_by.as_deref(), Some("Header"));
}

#[tokio::test]
async fn validate_order_header_fails_on_a_critical_policy_and_lines_are_not_validated() {
    let engine = header_engine().await;
    engine
        .submit(Event::new_order(order("SO-CA", "CA", &[10])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-CA").await;
    assert_eq!(j.outcome("Header"), Some(Outcome::Failed), "{j}");
    assert_eq!(j.outcome("Lines"), None, "lines are not validated");
    assert!(j.has_event(&EventKind::ORDER_HEADER_VALIDATION_FAILED));
    assert!(!j.has_event(&EventKind::ORDER_HEADER_VALIDATION_SUCCEEDED));
    assert!(!j.has_event(&EventKind::ORDER_LINES_VALIDATION_SUCCEEDED));
    let header = j.step("Header").next().unwrap();
    assert_eq!(header.findings.len(), 1, "{:?}", header.findings);
    assert_eq!(header.findings[0].policy, "Ship-to US");
    assert_eq!(header.findings[0].record, RecordId::Order);
    assert_eq!(header.findings[0].criticality, Criticality::Critical);
    assert!(
        header.findings[0]
            .reason
            .contains("ship-to country is not US"),
        "{:?}",
        header.findings[0]
    );
    let o = stored(&engine, "SO-CA").await;
    assert_eq!(o.status_reason, Some(StatusReason::ORDER_VALIDATION_FAILED));
    assert_eq!(line_reason(&o, "1"), None);
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);
}

#[tokio::test]
async fn validate_order_header_without_policies_succeeds() {
    let engine = builder().build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| s.action(validate_header("Header")))
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(order("SO-1", "CA", &[1])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Header"), Some(Outcome::Succeeded));
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
}

#[tokio::test]
async fn an_information_policy_failure_on_the_header_is_a_finding_and_the_step_succeeds() {
    let engine = builder()
        .policy(execution_fn(
            "Has customer",
            Entity::Order,
            Criticality::Information,
            |r| match r {
                RecordMut::Order(o) if o.customer.is_none() => Check::failed("no customer"),
                _ => Check::Passed,
            },
        ))
        .build()
        .await
        .unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| s.action(validate_header("Header").execution_policy("Has customer")))
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[1])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Header"), Some(Outcome::Succeeded), "{j}");
    let findings = &j.step("Header").next().unwrap().findings;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].policy, "Has customer");
    assert_eq!(findings[0].criticality, Criticality::Information);
    assert_eq!(findings[0].reason, "no customer");
    assert!(j.has_event(&EventKind::ORDER_HEADER_VALIDATION_SUCCEEDED));
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
}

// Validate Order Line --------------------------------------------------------------------

#[tokio::test]
async fn validate_order_line_succeeds_when_every_line_passes() {
    let engine = header_engine().await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10, 5])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Lines"), Some(Outcome::Succeeded), "{j}");
    assert!(j.has_event(&EventKind::ORDER_LINES_VALIDATION_SUCCEEDED));
    assert!(!j.has_event(&EventKind::ORDER_LINES_VALIDATION_FAILED));
    let o = stored(&engine, "SO-1").await;
    assert_eq!(
        o.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
    assert_eq!(line_reason(&o, "1"), None);
    assert_eq!(line_reason(&o, "2"), None);
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn a_failing_line_fails_the_order_validation() {
    let engine = header_engine().await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10, 1, 7])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Header"), Some(Outcome::Succeeded));
    assert_eq!(j.outcome("Lines"), Some(Outcome::Failed), "{j}");
    assert!(j.has_event(&EventKind::ORDER_LINES_VALIDATION_FAILED));
    assert!(!j.has_event(&EventKind::ORDER_LINES_VALIDATION_SUCCEEDED));
    let lines = j.step("Lines").next().unwrap();
    assert_eq!(lines.findings.len(), 1, "{:?}", lines.findings);
    assert_eq!(lines.findings[0].record, RecordId::Line("2".into()));
    assert_eq!(lines.findings[0].policy, "Quantity at least 5");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.status_reason, Some(StatusReason::ORDER_VALIDATION_FAILED));
    assert_eq!(line_reason(&o, "1"), None);
    assert_eq!(
        line_reason(&o, "2"),
        Some(StatusReason::ORDER_LINE_VALIDATION_FAILED)
    );
    assert_eq!(line_reason(&o, "3"), None);
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);
}

#[tokio::test]
async fn an_information_line_policy_failure_is_a_finding_and_the_step_succeeds() {
    let engine = builder().build().await.unwrap();
    install_policy(
        &engine,
        min_quantity("Prefer 5", 5).with_criticality(Criticality::Information),
    )
    .await;
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header")).action(
                    ActionStep::new("Lines", ActionKind::ValidateOrderLine)
                        .execution_policy("Prefer 5"),
                )
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10, 1])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Lines"), Some(Outcome::Succeeded), "{j}");
    let findings = &j.step("Lines").next().unwrap().findings;
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].criticality, Criticality::Information);
    assert_eq!(findings[0].record, RecordId::Line("2".into()));
    assert!(j.has_event(&EventKind::ORDER_LINES_VALIDATION_SUCCEEDED));
    let o = stored(&engine, "SO-1").await;
    assert_eq!(
        o.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
    assert_eq!(line_reason(&o, "2"), None);
}

#[tokio::test]
async fn a_critical_order_policy_on_line_validation_fails_it() {
    let engine = builder()
        .policy(execution_fn(
            "Never",
            Entity::Order,
            Criticality::Critical,
            |_| Check::failed("no"),
        ))
        .build()
        .await
        .unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header")).action(
                    ActionStep::new("Lines", ActionKind::ValidateOrderLine)
                        .execution_policy("Never"),
                )
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Lines"), Some(Outcome::Failed));
    assert!(j.has_event(&EventKind::ORDER_LINES_VALIDATION_FAILED));
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.status_reason, Some(StatusReason::ORDER_VALIDATION_FAILED));
    assert_eq!(line_reason(&o, "1"), None, "no line failed");
}

// Assign Fulfillment Source --------------------------------------------------------------

async fn assign_engine() -> Engine {
    let engine = builder().build().await.unwrap();
    install_policy(&engine, assignment()).await;
    install(
        &engine,
        Flow::builder("Assign")
            .steps(|s| {
                s.action(validate_header("Header")).action(
                    ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                        .execution_policy("Source assignment"),
                )
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
}

#[tokio::test]
async fn assign_fulfillment_source_creates_one_fulfillment_order_per_source() {
    let engine = assign_engine().await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[150, 20, 30])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Assign"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 2, "{o:?}");
    let seattle = fo_by_source(&o, "Seattle");
    let chicago = fo_by_source(&o, "Chicago");
    assert_eq!(fo_lines(seattle), [("1".to_owned(), 150)]);
    assert_eq!(
        fo_lines(chicago),
        [("2".to_owned(), 20), ("3".to_owned(), 30)],
        "two lines with the same source share one fulfillment order"
    );
    assert_eq!(
        o.line("1").unwrap().fulfillment_source.as_deref(),
        Some("Seattle")
    );
    assert_eq!(
        o.line("3").unwrap().fulfillment_source.as_deref(),
        Some("Chicago")
    );
    for l in &o.lines {
        assert_eq!(l.status_reason, None);
    }
    assert_eq!(
        o.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS),
        "assignment leaves the order's status reason"
    );
    // One creation event per fulfillment order, naming it.
    let created = events_of(&j, &EventKind::FULFILLMENT_ORDER_CREATED);
    assert_eq!(created.len(), 2);
    assert!(created.contains(&Some(RecordId::FulfillmentOrder(seattle.id.clone()))));
    assert!(created.contains(&Some(RecordId::FulfillmentOrder(chicago.id.clone()))));
    assert!(j.has_event(&EventKind::FULFILLMENT_SOURCE_ASSIGNED));
    assert!(!j.has_event(&EventKind::FULFILLMENT_SOURCE_ASSIGNMENT_FAILED));
    // The step carries the fulfillment orders it created.
    let records = &j.step("Assign").next().unwrap().records;
    assert!(records.contains(&RecordId::FulfillmentOrder(seattle.id.clone())));
    assert!(records.contains(&RecordId::FulfillmentOrder(chicago.id.clone())));
}

#[tokio::test]
async fn assign_fulfillment_source_puts_lines_without_a_source_on_backorder_hold() {
    let engine = assign_engine().await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[150, 3])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Assign"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 1);
    assert_eq!(
        fo_lines(fo_by_source(&o, "Seattle")),
        [("1".to_owned(), 150)]
    );
    assert_eq!(line_reason(&o, "1"), None);
    assert_eq!(line_reason(&o, "2"), Some(StatusReason::BACKORDER_HOLD));
    assert_eq!(
        o.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
    let note = details(&j, "Assign");
    assert!(
        note.contains("Backorder Hold") && note.contains('2'),
        "{note}"
    );
    assert_eq!(
        events_of(&j, &EventKind::FULFILLMENT_ORDER_CREATED).len(),
        1
    );
    assert!(j.has_event(&EventKind::FULFILLMENT_SOURCE_ASSIGNED));
}

#[tokio::test]
async fn assign_fulfillment_source_with_no_source_at_all_fails_with_inventory_not_found() {
    let engine = assign_engine().await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[3, 4])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Assign"), Some(Outcome::Failed), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert!(o.fulfillment_orders.is_empty());
    assert_eq!(o.status_reason, Some(StatusReason::INVENTORY_NOT_FOUND));
    assert_eq!(line_reason(&o, "1"), Some(StatusReason::BACKORDER_HOLD));
    assert_eq!(line_reason(&o, "2"), Some(StatusReason::BACKORDER_HOLD));
    assert!(j.has_event(&EventKind::FULFILLMENT_SOURCE_ASSIGNMENT_FAILED));
    assert!(!j.has_event(&EventKind::FULFILLMENT_SOURCE_ASSIGNED));
    assert!(!j.has_event(&EventKind::FULFILLMENT_ORDER_CREATED));
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);
}

#[tokio::test]
async fn assign_fulfillment_source_uses_sources_already_on_the_lines() {
    let engine = builder().build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header")).action(ActionStep::new(
                    "Assign",
                    ActionKind::AssignFulfillmentSource,
                ))
            })
            .build()
            .unwrap(),
    )
    .await;
    let o = Order::new("SO-1")
        .with_line(OrderLine::new("1", "Pen", 2).with_fulfillment_source("Dallas"))
        .with_line(OrderLine::new("2", "Ink", 4).with_fulfillment_source("Dallas"));
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Assign"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 1);
    assert_eq!(
        fo_lines(fo_by_source(&o, "Dallas")),
        [("1".to_owned(), 2), ("2".to_owned(), 4)]
    );
}

// Send to DOM ----------------------------------------------------------------------------

async fn dom_engine(provider: impl Provider) -> Engine {
    let name = provider.name().to_owned();
    let engine = builder().provider(provider).build().await.unwrap();
    install(
        &engine,
        Flow::builder("DOM")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("DOM", ActionKind::SendToDom).provider(name.as_str()))
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
}

#[tokio::test]
async fn send_to_dom_with_a_full_plan_sources_every_line() {
    let dom = MemoryProvider::new("DOM").sourcing_from("East DC");
    let engine = dom_engine(dom.clone()).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[3, 8])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(dom.calls().len(), 1);
    assert_eq!(dom.calls()[0].kind, RequestKind::DetermineFulfillment);
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 1);
    let fo = fo_by_source(&o, "East DC");
    assert_eq!(fo_lines(fo), [("1".to_owned(), 3), ("2".to_owned(), 8)]);
    assert!(o.lines.iter().all(|l| l.status_reason.is_none()));
    assert!(j.has_event(&EventKind::SENT_TO_FULFILLMENT_DETERMINATION));
    assert!(!j.has_event(&EventKind::SEND_TO_FULFILLMENT_DETERMINATION_FAILED));
    assert_eq!(
        events_of(&j, &EventKind::FULFILLMENT_ORDER_CREATED),
        [Some(RecordId::FulfillmentOrder(fo.id.clone()))]
    );
    assert_eq!(j.step("DOM").next().unwrap().attempts, 1);
}

#[tokio::test]
async fn send_to_dom_with_a_split_plan_creates_one_fulfillment_order_per_source() {
    let dom = Scripted::new("DOM").planning(vec![
        ("1", vec![("East", 6), ("West", 4)]),
        ("2", vec![("West", 5)]),
    ]);
    let engine = dom_engine(dom).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10, 5])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 2);
    assert_eq!(fo_lines(fo_by_source(&o, "East")), [("1".to_owned(), 6)]);
    assert_eq!(
        fo_lines(fo_by_source(&o, "West")),
        [("1".to_owned(), 4), ("2".to_owned(), 5)]
    );
    assert!(o.lines.iter().all(|l| l.status_reason.is_none()));
    assert_eq!(
        events_of(&j, &EventKind::FULFILLMENT_ORDER_CREATED).len(),
        2
    );
}

#[tokio::test]
async fn send_to_dom_with_a_partial_plan_puts_the_line_on_backorder_hold() {
    let dom = Scripted::new("DOM").planning(vec![
        ("1", vec![("East", 4), ("West", 3)]),
        ("2", vec![("East", 5)]),
    ]);
    let engine = dom_engine(dom).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10, 5])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(
        fo_lines(fo_by_source(&o, "East")),
        [("1".to_owned(), 4), ("2".to_owned(), 5)]
    );
    assert_eq!(fo_lines(fo_by_source(&o, "West")), [("1".to_owned(), 3)]);
    assert_eq!(line_reason(&o, "1"), Some(StatusReason::BACKORDER_HOLD));
    assert_eq!(line_reason(&o, "2"), None);
    let note = details(&j, "DOM");
    assert!(
        note.contains("line 1 partially sourced: 7 of 10") && note.contains("Backorder Hold"),
        "{note}"
    );
    assert!(j.has_event(&EventKind::SENT_TO_FULFILLMENT_DETERMINATION));
}

#[tokio::test]
async fn send_to_dom_leaving_a_line_unsourced_puts_it_on_backorder_hold() {
    // Line 2 is listed with nothing; line 3 is not listed at all.
    let dom = Scripted::new("DOM").planning(vec![("1", vec![("East", 2)]), ("2", vec![])]);
    let engine = dom_engine(dom).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[2, 5, 1])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 1);
    assert_eq!(line_reason(&o, "1"), None);
    assert_eq!(line_reason(&o, "2"), Some(StatusReason::BACKORDER_HOLD));
    assert_eq!(line_reason(&o, "3"), Some(StatusReason::BACKORDER_HOLD));
    let note = details(&j, "DOM");
    assert!(note.contains("Backorder Hold"), "{note}");
}

#[tokio::test]
async fn send_to_dom_sourcing_nothing_fails_with_inventory_not_found() {
    let dom = Scripted::new("DOM").planning(vec![("1", vec![("East", 0)])]);
    let engine = dom_engine(dom).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[2, 5])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Failed), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert!(o.fulfillment_orders.is_empty(), "{o:?}");
    assert_eq!(o.status_reason, Some(StatusReason::INVENTORY_NOT_FOUND));
    assert_eq!(line_reason(&o, "1"), Some(StatusReason::BACKORDER_HOLD));
    assert_eq!(line_reason(&o, "2"), Some(StatusReason::BACKORDER_HOLD));
    assert!(j.has_event(&EventKind::SEND_TO_FULFILLMENT_DETERMINATION_FAILED));
    assert!(!j.has_event(&EventKind::SENT_TO_FULFILLMENT_DETERMINATION));
    assert!(!j.has_event(&EventKind::FULFILLMENT_ORDER_CREATED));
    assert_eq!(j.executions[0].status, ExecutionStatus::Failed);
}

/// Runs a Send to DOM step with a scripted plan on order SO-1 of lines 10 and 5; asserts
/// the step failed as an invalid plan without touching the order, and returns the journey.
async fn rejected_plan(dom: Scripted) -> Journey {
    let engine = dom_engine(dom).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10, 5])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Failed), "{j}");
    assert!(j.has_event(&EventKind::SEND_TO_FULFILLMENT_DETERMINATION_FAILED));
    assert!(!j.has_event(&EventKind::FULFILLMENT_ORDER_CREATED));
    let o = stored(&engine, "SO-1").await;
    assert!(o.fulfillment_orders.is_empty(), "{o:?}");
    assert_eq!(
        o.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
    assert!(o.lines.iter().all(|l| l.status_reason.is_none()), "{o:?}");
    assert_eq!(j.step("DOM").next().unwrap().attempts, 1, "not retried");
    j
}

#[tokio::test]
async fn send_to_dom_rejects_a_plan_naming_an_unknown_line() {
    let j = rejected_plan(
        Scripted::new("DOM").planning(vec![("1", vec![("East", 10)]), ("9", vec![("East", 1)])]),
    )
    .await;
    assert!(details(&j, "DOM").contains("unknown line 9"), "{j}");
}

#[tokio::test]
async fn send_to_dom_rejects_an_over_allocation() {
    let j =
        rejected_plan(Scripted::new("DOM").planning(vec![("1", vec![("East", 8), ("West", 3)])]))
            .await;
    assert!(details(&j, "DOM").contains("allocates 11"), "{j}");
}

#[tokio::test]
async fn send_to_dom_rejects_negative_or_sourceless_allocations() {
    // A plan's quantities are decimals: NaN and infinity cannot be written (tests/numbers.rs
    // refuses them in a plan's JSON).
    rejected_plan(Scripted::new("DOM").planning(vec![("1", vec![("East", -1)])])).await;
    rejected_plan(Scripted::new("DOM").planning(vec![("1", vec![("", 2)])])).await;
}

#[tokio::test]
async fn send_to_dom_rejects_a_reply_without_a_plan() {
    // `Scripted::new` answers fulfillment determination with `Done`.
    let j = rejected_plan(Scripted::new("DOM")).await;
    assert!(details(&j, "DOM").contains("no fulfillment plan"), "{j}");
}

#[tokio::test]
async fn send_to_dom_rejects_an_over_allocation_split_across_entries_of_one_line() {
    // Each entry alone fits line 1 (quantity 10); together they allocate 12.
    rejected_plan(
        Scripted::new("DOM").planning(vec![("1", vec![("East", 6)]), ("1", vec![("West", 6)])]),
    )
    .await;
}

#[tokio::test]
async fn send_to_dom_adds_allocations_of_one_line_from_the_same_source() {
    let dom = Scripted::new("DOM").planning(vec![("1", vec![("East", 4), ("East", 6)])]);
    let engine = dom_engine(dom).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(line_reason(&o, "1"), None, "fully sourced: 4 + 6 = 10");
    assert_eq!(fo_lines(fo_by_source(&o, "East")), [("1".to_owned(), 10)]);
}

#[tokio::test]
async fn send_to_dom_fails_when_the_provider_refuses() {
    let engine = dom_engine(Scripted::new("DOM").refusing("*")).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Failed), "{j}");
    assert!(j.has_event(&EventKind::SEND_TO_FULFILLMENT_DETERMINATION_FAILED));
    assert!(stored(&engine, "SO-1").await.fulfillment_orders.is_empty());
}

// Send to Fulfillment --------------------------------------------------------------------

fn to_source(source: &'static str) -> impl Fn(orderflow::document::RecordRef<'_>) -> bool {
    move |r| {
        matches!(r, orderflow::document::RecordRef::FulfillmentOrder(_, fo)
            if fo.fulfillment_source == source)
    }
}

/// An engine whose flow validates, assigns sources by the rule policy and sends every
/// fulfillment order (no filter) to `provider`.
async fn send_engine(provider: Scripted) -> Engine {
    let engine = builder().provider(provider).build().await.unwrap();
    install_policy(&engine, assignment()).await;
    install(
        &engine,
        Flow::builder("Send")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(
                        ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                            .execution_policy("Source assignment"),
                    )
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
}

#[tokio::test]
async fn send_to_fulfillment_sends_each_fulfillment_order_once() {
    let tpl = Scripted::new("3PL");
    let engine = send_engine(tpl.clone()).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[150, 20, 30])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    let seattle = fo_by_source(&o, "Seattle");
    let chicago = fo_by_source(&o, "Chicago");
    let mut sent: Vec<String> = tpl.calls().into_iter().map(|(_, r)| r).collect();
    sent.sort();
    let mut expected = vec![
        seattle.id.as_str().to_owned(),
        chicago.id.as_str().to_owned(),
    ];
    expected.sort();
    assert_eq!(sent, expected);
    assert!(
        tpl.calls()
            .iter()
            .all(|(k, _)| *k == RequestKind::SendFulfillmentOrder)
    );
    for fo in &o.fulfillment_orders {
        assert_eq!(fo.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    }
    assert_eq!(o.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert!(j.has_event(&EventKind::SENT_TO_FULFILLMENT));
    assert!(!j.has_event(&EventKind::SEND_TO_FULFILLMENT_FAILED));
    assert_eq!(j.step("Send").next().unwrap().attempts, 2);
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn a_provider_error_fails_send_to_fulfillment_and_reprocess_sends_only_what_is_left() {
    let tpl = Scripted::new("3PL").refusing("Chicago");
    let engine = send_engine(tpl.clone()).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[150, 20])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Failed), "{j}");
    assert!(j.has_event(&EventKind::SEND_TO_FULFILLMENT_FAILED));
    assert!(!j.has_event(&EventKind::SENT_TO_FULFILLMENT));
    assert!(details(&j, "Send").contains("refused"), "{j}");
    let o = stored(&engine, "SO-1").await;
    let seattle = fo_by_source(&o, "Seattle").clone();
    let chicago = fo_by_source(&o, "Chicago").clone();
    assert_eq!(
        seattle.status_reason,
        Some(StatusReason::SENT_TO_FULFILLMENT)
    );
    assert_eq!(chicago.status_reason, None);
    assert_ne!(
        o.status_reason,
        Some(StatusReason::SENT_TO_FULFILLMENT),
        "not every fulfillment order is sent"
    );
    assert_eq!(
        tpl.calls(),
        [(
            RequestKind::SendFulfillmentOrder,
            seattle.id.as_str().to_owned()
        )]
    );

    tpl.accept_all();
    let failed = engine.failed_executions("SO-1").await.unwrap();
    assert_eq!(failed.len(), 1);
    engine.reprocess(&failed[0]).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(
        tpl.calls(),
        [
            (
                RequestKind::SendFulfillmentOrder,
                seattle.id.as_str().to_owned()
            ),
            (
                RequestKind::SendFulfillmentOrder,
                chicago.id.as_str().to_owned()
            ),
        ],
        "the fulfillment order already sent is not sent again"
    );
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert!(
        o.fulfillment_orders
            .iter()
            .all(|f| f.status_reason == Some(StatusReason::SENT_TO_FULFILLMENT))
    );
    assert!(j.has_event(&EventKind::SENT_TO_FULFILLMENT));
}

/// When one fulfillment order is refused for good and another fails for a while, the step
/// fails retryably: it runs again on its durable timer for what did not go through,
/// instead of waiting for a reprocess.
#[tokio::test]
async fn send_to_fulfillment_retries_when_any_fulfillment_order_failed_retryably() {
    let clock = ManualClock::new(Timestamp(0));
    let tpl = ScriptedProvider::new("3PL", clock.clone()).script([
        Behavior::Fatal("refused".into()),
        Behavior::Retryable("busy".into()),
    ]);
    let engine = builder()
        .clock(clock.clone())
        .provider(tpl.clone())
        .build()
        .await
        .unwrap();
    install_policy(&engine, assignment()).await;
    install(
        &engine,
        send_flow(
            "Send",
            ActionStep::new("Send", ActionKind::SendToFulfillment)
                .provider("3PL")
                .retry(RetryPolicy::new(2, Duration::from_secs(60))),
        ),
    )
    .await;
    engine
        .submit(Event::new_order(two_sources()))
        .await
        .unwrap();
    assert_eq!(tpl.calls().len(), 2, "{:?}", tpl.calls());
    assert!(
        engine.failed_executions("SO-1").await.unwrap().is_empty(),
        "the step waits to run again"
    );
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    assert_eq!(state.next_wake(), Some(Timestamp(60_000)));
}

#[tokio::test]
async fn the_order_is_sent_to_fulfillment_only_once_all_its_fulfillment_orders_are() {
    let seattle_3pl = Scripted::new("Seattle 3PL");
    let chicago_3pl = Scripted::new("Chicago 3PL");
    let engine = builder()
        .provider(seattle_3pl.clone())
        .provider(chicago_3pl.clone())
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
    install_policy(&engine, assignment()).await;
    let release = EventKind::new("Release Chicago");
    let flow = Flow::builder("Split")
        .steps(|s| {
            s.action(validate_header("Header"))
                .action(
                    ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                        .execution_policy("Source assignment"),
                )
                .splitter("By source", |b| {
                    b.branch("Seattle", |s| {
                        s.action(
                            ActionStep::new("Send Seattle", ActionKind::SendToFulfillment)
                                .filter("Seattle FOs")
                                .provider("Seattle 3PL"),
                        )
                    })
                    .branch("Chicago", |s| {
                        s.action(
                            ActionStep::new("Send Chicago", ActionKind::SendToFulfillment)
                                .filter("Chicago FOs")
                                .provider("Chicago 3PL")
                                .input_event(release.clone()),
                        )
                    })
                })
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[150, 20])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send Seattle"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(j.outcome("Send Chicago"), None, "waits for its release");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(
        fo_by_source(&o, "Seattle").status_reason,
        Some(StatusReason::SENT_TO_FULFILLMENT)
    );
    assert_eq!(fo_by_source(&o, "Chicago").status_reason, None);
    assert_eq!(
        o.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS),
        "one of two fulfillment orders sent: the order is not Sent To Fulfillment yet"
    );
    assert_eq!(seattle_3pl.calls().len(), 1);
    assert!(chicago_3pl.calls().is_empty());

    engine
        .submit(Event::new("release-1", release, "SO-1"))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send Chicago"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert_eq!(seattle_3pl.calls().len(), 1);
    assert_eq!(
        chicago_3pl.calls(),
        [(
            RequestKind::SendFulfillmentOrder,
            fo_by_source(&o, "Chicago").id.as_str().to_owned()
        )]
    );
    assert_eq!(events_of(&j, &EventKind::SENT_TO_FULFILLMENT).len(), 2);
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn an_inactive_fulfillment_order_does_not_hold_back_the_order() {
    let tpl = Scripted::new("3PL");
    let engine = builder().provider(tpl.clone()).build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    let mut active = FulfillmentOrder::new("FO-A", "East");
    active
        .lines
        .push(FulfillmentOrderLine::new("1", "Surface Pen", 2));
    let mut cancelled = FulfillmentOrder::new("FO-X", "West");
    cancelled.state = State::Inactive;
    let mut o = order("SO-1", "US", &[2]);
    o.fulfillment_orders = vec![active, cancelled];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    assert!(
        tpl.calls().iter().any(|(_, r)| r == "FO-A"),
        "{:?}",
        tpl.calls()
    );
}

#[tokio::test]
async fn an_inactive_fulfillment_order_is_not_sent() {
    let tpl = Scripted::new("3PL");
    let engine = builder().provider(tpl.clone()).build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    let mut active = FulfillmentOrder::new("FO-A", "East");
    active
        .lines
        .push(FulfillmentOrderLine::new("1", "Surface Pen", 2));
    let mut cancelled = FulfillmentOrder::new("FO-X", "West");
    cancelled.state = State::Inactive;
    let mut o = order("SO-1", "US", &[2]);
    o.fulfillment_orders = vec![active, cancelled];
    engine.submit(Event::new_order(o)).await.unwrap();
    assert_eq!(
        tpl.calls(),
        [(RequestKind::SendFulfillmentOrder, "FO-A".to_owned())]
    );
}

/// A step whose fulfillment orders are all inactive has nothing to send: it calls no one,
/// succeeds, and says why on its journey entry (only a step that took none fails).
#[tokio::test]
async fn send_to_fulfillment_with_only_inactive_fulfillment_orders_succeeds_and_says_why() {
    let tpl = Scripted::new("3PL");
    let engine = builder().provider(tpl.clone()).build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    let mut cancelled = FulfillmentOrder::new("FO-X", "West");
    cancelled.state = State::Inactive;
    let mut o = order("SO-1", "US", &[2]);
    o.fulfillment_orders = vec![cancelled];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    assert!(tpl.calls().is_empty(), "{:?}", tpl.calls());
    let said = details(&j, "Send");
    assert!(
        said.contains("no fulfillment order to send: inactive: FO-X"),
        "{said}"
    );
}

#[tokio::test]
async fn send_to_fulfillment_without_fulfillment_orders_fails() {
    let tpl = Scripted::new("3PL");
    let engine = builder().provider(tpl.clone()).build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[2])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Failed), "{j}");
    assert!(j.has_event(&EventKind::SEND_TO_FULFILLMENT_FAILED));
    assert!(tpl.calls().is_empty());
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
}

// Send to Fulfillment (ERP) and Send to Invoice ------------------------------------------

async fn single_step_engine(kind: ActionKind, provider: Scripted) -> Engine {
    let engine = builder().provider(provider).build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Step", kind).provider("P"))
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[2])))
        .await
        .unwrap();
    engine
}

#[tokio::test]
async fn send_to_fulfillment_erp_sets_sent_to_fulfillment() {
    let erp = Scripted::new("P");
    let engine = single_step_engine(ActionKind::SendToFulfillmentErp, erp.clone()).await;
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Step"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(erp.calls(), [(RequestKind::SendToErp, "order".to_owned())]);
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::SENT_TO_FULFILLMENT)
    );
    assert!(j.has_event(&EventKind::SENT_TO_ERP));
    assert!(!j.has_event(&EventKind::SEND_TO_ERP_FAILED));
}

#[tokio::test]
async fn send_to_fulfillment_erp_fails_when_the_erp_refuses() {
    let engine = single_step_engine(
        ActionKind::SendToFulfillmentErp,
        Scripted::new("P").refusing("*"),
    )
    .await;
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Step"), Some(Outcome::Failed), "{j}");
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
    assert!(j.has_event(&EventKind::SEND_TO_ERP_FAILED));
    assert!(!j.has_event(&EventKind::SENT_TO_ERP));
}

#[tokio::test]
async fn send_to_invoice_sets_invoiced() {
    let billing = Scripted::new("P");
    let engine = single_step_engine(ActionKind::SendToInvoice, billing.clone()).await;
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Step"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(
        billing.calls(),
        [(RequestKind::SendInvoice, "order".to_owned())]
    );
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::INVOICED)
    );
    assert!(j.has_event(&EventKind::SENT_TO_INVOICE));
    assert!(!j.has_event(&EventKind::SEND_TO_INVOICE_FAILED));
}

#[tokio::test]
async fn send_to_invoice_fails_when_billing_refuses() {
    let engine =
        single_step_engine(ActionKind::SendToInvoice, Scripted::new("P").refusing("*")).await;
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Step"), Some(Outcome::Failed), "{j}");
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS)
    );
    assert!(j.has_event(&EventKind::SEND_TO_INVOICE_FAILED));
    assert!(!j.has_event(&EventKind::SENT_TO_INVOICE));
}

// Policy lifecycle -----------------------------------------------------------------------

fn flow_using(name: &str, policy: &str) -> Flow {
    Flow::builder(name)
        .steps(|s| {
            s.action(validate_header("Header")).action(
                ActionStep::new("Lines", ActionKind::ValidateOrderLine).execution_policy(policy),
            )
        })
        .build()
        .unwrap()
}

fn with_version(mut flow: Flow, minor: u64) -> Flow {
    flow.version = semver::Version::new(1, minor, 0);
    flow
}

#[tokio::test]
async fn a_flow_naming_an_unpublished_or_unknown_policy_fails_to_publish() {
    let engine = builder().build().await.unwrap();
    engine
        .create_policy(min_quantity("Draft only", 5))
        .await
        .unwrap();
    assert_eq!(
        engine.policy("Draft only").unwrap().status,
        PolicyStatus::Unpublished
    );
    engine
        .create_flow(flow_using("Uses draft", "Draft only"))
        .await
        .unwrap();
    let err = engine.publish("Uses draft").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    let Error::Validation(v) = &err else {
        panic!("{err:?}")
    };
    assert!(
        v.has(|k| matches!(k, ProblemKind::UnpublishedPolicy(n) if n == "Draft only")),
        "{v}"
    );
    assert!(
        !v.has(|k| matches!(k, ProblemKind::UnknownPolicy(_))),
        "{v}"
    );

    engine
        .create_flow(flow_using("Uses nothing", "No such policy"))
        .await
        .unwrap();
    let err = engine.publish("Uses nothing").await.unwrap_err();
    let Error::Validation(v) = &err else {
        panic!("{err:?}")
    };
    assert!(
        v.has(|k| matches!(k, ProblemKind::UnknownPolicy(n) if n == "No such policy")),
        "{v}"
    );

    // Once the policy is published, the flow publishes and pins it.
    assert_eq!(engine.publish_policy("Draft only").await.unwrap(), 1);
    engine.publish("Uses draft").await.unwrap();
    assert_eq!(
        engine
            .flow("Uses draft")
            .unwrap()
            .policy_versions
            .get("Draft only"),
        Some(&1)
    );
}

#[tokio::test]
async fn publishing_a_policy_gives_versions_and_rejects_what_does_not_fit() {
    let engine = builder()
        .policy(execution_fn(
            "In code",
            Entity::Order,
            Criticality::Critical,
            |_| Check::Passed,
        ))
        .build()
        .await
        .unwrap();
    let name = "Quantity";
    engine.create_policy(min_quantity(name, 5)).await.unwrap();
    let record = engine.policy(name).unwrap();
    assert_eq!(record.status, PolicyStatus::Unpublished);
    assert_eq!(record.last_published, None);
    assert_eq!(engine.policy_version(name, 1).await.unwrap(), None);

    assert_eq!(engine.publish_policy(name).await.unwrap(), 1);
    let record = engine.policy(name).unwrap();
    assert_eq!(record.status, PolicyStatus::Published);
    assert_eq!(record.last_published, Some(1));

    let err = engine.publish_policy(name).await.unwrap_err();
    assert!(
        matches!(&err, Error::NothingToPublish(n) if n == name),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidState);

    engine.update_policy(min_quantity(name, 50)).await.unwrap();
    let record = engine.policy(name).unwrap();
    assert_eq!(record.status, PolicyStatus::Unpublished);
    assert_eq!(record.last_published, Some(1));
    assert_eq!(engine.publish_policy(name).await.unwrap(), 2);
    assert_eq!(
        engine.policy_version(name, 1).await.unwrap(),
        Some(min_quantity(name, 5))
    );
    assert_eq!(
        engine.policy_version(name, 2).await.unwrap(),
        Some(min_quantity(name, 50))
    );

    // Names are taken by rule policies and by policies registered in code.
    let err = engine
        .create_policy(min_quantity(name, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PolicyExists(n) if n == name),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let err = engine
        .create_policy(min_quantity("In code", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::PolicyExists(n) if n == "In code"),
        "{err:?}"
    );
    assert!(engine.policy("In code").is_none());

    // Unknown names.
    let err = engine.publish_policy("Nope").await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownPolicy(n) if n == "Nope"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = engine
        .update_policy(min_quantity("Nope", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownPolicy(n) if n == "Nope"),
        "{err:?}"
    );

    let names: Vec<String> = engine
        .policies()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(names, [name]);
}

#[tokio::test]
async fn an_invalid_draft_fails_to_publish_and_the_last_version_stays_in_force() {
    let engine = builder().build().await.unwrap();
    let name = "Quantity";
    install_policy(&engine, min_quantity(name, 5)).await;
    let broken =
        PolicyDocument::new(name, PolicyKind::Execution, Entity::OrderLine).with_rule(Rule::check(
            "Bad",
            Condition::compare("no_such_field", Operator::GreaterOrEqual, 5),
        ));
    engine.update_policy(broken.clone()).await.unwrap();
    let err = engine.publish_policy(name).await.unwrap_err();
    assert!(matches!(&err, Error::Policy(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Validation);
    let record = engine.policy(name).unwrap();
    assert_eq!(record.last_published, Some(1));
    assert_eq!(record.status, PolicyStatus::Unpublished);
    assert_eq!(record.document, broken, "the draft is kept");
    assert_eq!(engine.policy_version(name, 2).await.unwrap(), None);

    // A flow published now uses version 1.
    install(&engine, flow_using("F", name)).await;
    assert_eq!(
        engine.flow("F").unwrap().policy_versions.get(name),
        Some(&1)
    );
    engine
        .submit(Event::new_order(order("SO-1", "US", &[5])))
        .await
        .unwrap();
    engine
        .submit(Event::new_order(order("SO-2", "US", &[4])))
        .await
        .unwrap();
    assert_eq!(
        journey(&engine, "SO-1").await.outcome("Lines"),
        Some(Outcome::Succeeded)
    );
    assert_eq!(
        journey(&engine, "SO-2").await.outcome("Lines"),
        Some(Outcome::Failed)
    );

    // Fixing the draft publishes version 2.
    engine.update_policy(min_quantity(name, 50)).await.unwrap();
    assert_eq!(engine.publish_policy(name).await.unwrap(), 2);
}

#[tokio::test]
async fn a_published_flow_keeps_its_policy_version_until_it_is_republished() {
    let engine = builder().build().await.unwrap();
    let name = "Quantity";
    install_policy(&engine, min_quantity(name, 5)).await;
    install(&engine, flow_using("F", name)).await;
    assert_eq!(
        engine
            .flow("F")
            .unwrap()
            .policy_versions
            .into_iter()
            .collect::<Vec<_>>(),
        [(name.to_owned(), 1)]
    );

    engine.update_policy(min_quantity(name, 50)).await.unwrap();
    assert_eq!(engine.publish_policy(name).await.unwrap(), 2);
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(
        j.outcome("Lines"),
        Some(Outcome::Succeeded),
        "v1 in force: {j}"
    );
    assert_eq!(
        engine.flow("F").unwrap().policy_versions.get(name),
        Some(&1)
    );

    engine.stop("F").await.unwrap();
    engine
        .update_flow(with_version(flow_using("F", name), 1))
        .await
        .unwrap();
    assert_eq!(
        engine.publish("F").await.unwrap(),
        semver::Version::new(1, 1, 0)
    );
    assert_eq!(
        engine.flow("F").unwrap().policy_versions.get(name),
        Some(&2)
    );
    engine
        .submit(Event::new_order(order("SO-2", "US", &[10])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-2").await;
    assert_eq!(
        j.outcome("Lines"),
        Some(Outcome::Failed),
        "v2 in force: {j}"
    );
    assert_eq!(j.executions[0].version, semver::Version::new(1, 1, 0));
    assert_eq!(
        line_reason(&stored(&engine, "SO-2").await, "1"),
        Some(StatusReason::ORDER_LINE_VALIDATION_FAILED)
    );
    engine
        .submit(Event::new_order(order("SO-3", "US", &[60])))
        .await
        .unwrap();
    assert_eq!(
        journey(&engine, "SO-3").await.outcome("Lines"),
        Some(Outcome::Succeeded)
    );
}

const LINES_READY: EventKind = EventKind::from_static("Lines ready");

/// Validates the header on New Order, then the lines with `policy` on "Lines ready".
fn waiting_flow(name: &str, policy: &str) -> Flow {
    Flow::builder(name)
        .steps(|s| {
            s.action(validate_header("Header")).action(
                ActionStep::new("Lines", ActionKind::ValidateOrderLine)
                    .execution_policy(policy)
                    .input_event(LINES_READY),
            )
        })
        .build()
        .unwrap()
}

fn lines_ready(order: &str) -> Event {
    Event::new(format!("ready:{order}"), LINES_READY, order)
}

#[tokio::test]
async fn a_waiting_execution_keeps_its_policy_version_across_republishes() {
    let engine = builder().build().await.unwrap();
    let name = "Quantity";
    install_policy(&engine, min_quantity(name, 5)).await;
    install(&engine, waiting_flow("W", name)).await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[10])))
        .await
        .unwrap();
    assert_eq!(
        journey(&engine, "SO-1").await.executions[0].status,
        ExecutionStatus::Waiting
    );

    engine.update_policy(min_quantity(name, 50)).await.unwrap();
    assert_eq!(engine.publish_policy(name).await.unwrap(), 2);
    engine.stop("W").await.unwrap();
    engine
        .update_flow(with_version(waiting_flow("W", name), 1))
        .await
        .unwrap();
    engine.publish("W").await.unwrap();
    assert_eq!(
        engine.flow("W").unwrap().policy_versions.get(name),
        Some(&2)
    );

    engine
        .submit(Event::new_order(order("SO-2", "US", &[10])))
        .await
        .unwrap();
    engine.submit(lines_ready("SO-1")).await.unwrap();
    engine.submit(lines_ready("SO-2")).await.unwrap();

    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.executions[0].version, semver::Version::new(1, 0, 0));
    assert_eq!(j.outcome("Lines"), Some(Outcome::Succeeded), "v1: {j}");
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
    let j = journey(&engine, "SO-2").await;
    assert_eq!(j.executions[0].version, semver::Version::new(1, 1, 0));
    assert_eq!(j.outcome("Lines"), Some(Outcome::Failed), "v2: {j}");
}

#[tokio::test]
async fn a_rebuilt_engine_loads_policies_their_versions_and_pinned_flows() {
    let store = Arc::new(MemoryStore::new());
    let name = "Quantity";
    let build = || async {
        Engine::builder()
            .store(store.clone())
            .config(Config::default().with_retry(RetryPolicy::NONE))
            .build()
            .await
            .unwrap()
    };
    {
        let first = build().await;
        install_policy(&first, min_quantity(name, 5)).await;
        install_policy(&first, ship_to_us()).await;
        install(&first, waiting_flow("W", name)).await;
        first
            .submit(Event::new_order(order("SO-1", "US", &[10])))
            .await
            .unwrap();
        first.update_policy(min_quantity(name, 50)).await.unwrap();
        assert_eq!(first.publish_policy(name).await.unwrap(), 2);
        // An unpublished draft on top of version 2.
        first.update_policy(min_quantity(name, 500)).await.unwrap();
    }

    let second = build().await;
    let names: Vec<String> = second
        .policies()
        .iter()
        .map(|p| p.name().to_owned())
        .collect();
    assert_eq!(names, [name, "Ship-to US"]);
    let record = second.policy(name).unwrap();
    assert_eq!(record.last_published, Some(2));
    assert_eq!(record.status, PolicyStatus::Unpublished);
    assert_eq!(record.document, min_quantity(name, 500));
    assert_eq!(
        second.policy("Ship-to US").unwrap().status,
        PolicyStatus::Published
    );
    assert_eq!(
        second.policy_version(name, 1).await.unwrap(),
        Some(min_quantity(name, 5))
    );
    assert_eq!(
        second.policy_version(name, 2).await.unwrap(),
        Some(min_quantity(name, 50))
    );
    assert_eq!(second.policy_version(name, 3).await.unwrap(), None);
    assert_eq!(
        second.flow("W").unwrap().policy_versions.get(name),
        Some(&1)
    );

    // The waiting execution and new orders of the pinned flow still use version 1.
    second
        .submit(Event::new_order(order("SO-2", "US", &[10])))
        .await
        .unwrap();
    second.submit(lines_ready("SO-1")).await.unwrap();
    second.submit(lines_ready("SO-2")).await.unwrap();
    assert_eq!(
        journey(&second, "SO-1").await.outcome("Lines"),
        Some(Outcome::Succeeded)
    );
    assert_eq!(
        journey(&second, "SO-2").await.outcome("Lines"),
        Some(Outcome::Succeeded)
    );

    // A flow published on the rebuilt engine pins the last published version, 2.
    second.stop("W").await.unwrap();
    second
        .update_flow(with_version(waiting_flow("W", name), 1))
        .await
        .unwrap();
    second.publish("W").await.unwrap();
    assert_eq!(
        second.flow("W").unwrap().policy_versions.get(name),
        Some(&2)
    );
    second
        .submit(Event::new_order(order("SO-3", "US", &[10])))
        .await
        .unwrap();
    second.submit(lines_ready("SO-3")).await.unwrap();
    assert_eq!(
        journey(&second, "SO-3").await.outcome("Lines"),
        Some(Outcome::Failed)
    );

    // Publishing the draft continues the numbering.
    assert_eq!(second.publish_policy(name).await.unwrap(), 3);
    assert_eq!(
        second.policy_version(name, 3).await.unwrap(),
        Some(min_quantity(name, 500))
    );
}

// Intake: a document names each record once ---------------------------------------------

/// Asserts `result` is the intake refusal of a document with a duplicate id, naming the
/// order and each of `names`.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, Error>, names: &[&str]) {
    let e = result.expect_err("a duplicate id is refused");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let message = e.to_string();
    assert!(message.contains("'SO-1'"), "names the order: {message}");
    for name in names {
        assert!(
            message.contains(&format!("'{name}'")),
            "names {name}: {message}"
        );
    }
}

#[tokio::test]
async fn submit_refuses_an_order_naming_a_line_id_twice() {
    let engine = header_engine().await;
    let o = order("SO-1", "US", &[5, 6, 7]).with_line(OrderLine::new("2", "Ink", 8));
    assert_refused(engine.submit(Event::new_order(o)).await, &["2"]);
    assert!(
        engine.order("SO-1").await.unwrap().is_none(),
        "nothing of the order is stored"
    );
    let message = engine
        .submit(Event::new_order(
            order("SO-1", "US", &[5]).with_line(OrderLine::new("1", "Ink", 8)),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("line id '1' more than once"), "{message}");
}

fn fo(id: &str, source: &str, lines: &[(&str, i64)]) -> FulfillmentOrder {
    let mut fo = FulfillmentOrder::new(id, source);
    for (line, quantity) in lines {
        fo.lines
            .push(FulfillmentOrderLine::new(*line, "Surface Pen", *quantity));
    }
    fo
}

#[tokio::test]
async fn submit_refuses_duplicate_fulfillment_order_ids_and_fulfillment_order_lines() {
    let engine = header_engine().await;
    let mut o = order("SO-1", "US", &[5, 6]);
    o.fulfillment_orders = vec![
        fo("FO-A", "East", &[("1", 5)]),
        fo("FO-B", "West", &[("2", 6)]),
        fo("FO-A", "West", &[("2", 6)]),
    ];
    let result = engine.submit(Event::new_order(o)).await;
    assert_refused(result, &["FO-A"]);

    // One fulfillment order listing order line 2 twice.
    let mut o = order("SO-1", "US", &[5, 6]);
    o.fulfillment_orders = vec![fo("FO-A", "East", &[("1", 5), ("2", 3), ("2", 3)])];
    let result = engine.submit(Event::new_order(o)).await;
    assert_refused(result, &["FO-A", "2"]);
    assert!(engine.order("SO-1").await.unwrap().is_none());

    // The same ids in different fulfillment orders are fine.
    let mut o = order("SO-1", "US", &[5, 6]);
    o.fulfillment_orders = vec![
        fo("FO-A", "East", &[("1", 2), ("2", 3)]),
        fo("FO-B", "West", &[("1", 3), ("2", 3)]),
    ];
    engine.submit(Event::new_order(o)).await.unwrap();
}

#[tokio::test]
async fn enqueue_refuses_an_order_naming_a_record_twice() {
    let engine = Engine::builder()
        .shared_store(orderflow::store::SharedMemoryStore::new(ManualClock::new(
            Timestamp(0),
        )))
        .build()
        .await
        .unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| s.action(validate_header("Header")))
            .build()
            .unwrap(),
    )
    .await;
    let o = order("SO-1", "US", &[5, 6]).with_line(OrderLine::new("1", "Ink", 1));
    assert_refused(engine.enqueue(Event::new_order(o)).await, &["1"]);
    let mut o = order("SO-1", "US", &[5]);
    o.fulfillment_orders = vec![fo("FO-A", "East", &[]), fo("FO-A", "East", &[])];
    assert_refused(engine.enqueue(Event::new_order(o)).await, &["FO-A"]);
    let report = engine.work().await.unwrap();
    assert_eq!(report.events, 0, "nothing was queued: {report:?}");
    assert!(engine.order("SO-1").await.unwrap().is_none());

    // The well-formed document goes through.
    engine
        .enqueue(Event::new_order(order("SO-1", "US", &[5])))
        .await
        .unwrap();
    engine.work().await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Header"), Some(Outcome::Succeeded), "{j}");
}

// Generated fulfillment order ids --------------------------------------------------------

#[tokio::test]
async fn send_to_dom_gives_a_fresh_id_and_leaves_fulfillment_orders_the_order_has() {
    let dom = Scripted::new("DOM").planning(vec![("1", vec![("East", 3)])]);
    let engine = dom_engine(dom).await;
    // One fulfillment order on arrival: the generator's next would be SO-1-FO2 — taken,
    // and for the same source, already sent.
    let mut existing = fo("SO-1-FO2", "East", &[("1", 3)]);
    existing.status_reason = Some(StatusReason::SENT_TO_FULFILLMENT);
    let mut o = order("SO-1", "US", &[3]);
    o.fulfillment_orders = vec![existing.clone()];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 2, "{o:?}");
    assert_eq!(o.fulfillment_orders[0], existing, "untouched");
    let created = &o.fulfillment_orders[1];
    assert_eq!(created.id.as_str(), "SO-1-FO3");
    assert_eq!(created.fulfillment_source, "East");
    assert_eq!(fo_lines(created), [("1".to_owned(), 3)]);
    assert_eq!(created.status_reason, None);
    assert_eq!(
        events_of(&j, &EventKind::FULFILLMENT_ORDER_CREATED),
        [Some(RecordId::FulfillmentOrder(created.id.clone()))]
    );
    assert!(o.check_ids().is_ok());
}

#[tokio::test]
async fn fulfillment_orders_made_again_after_a_reprocess_get_fresh_ids() {
    // Assign creates a fulfillment order, Send to DOM is refused; after a reprocess it
    // sources the line again. The order arrived with SO-1-FO3, which the second
    // determination's generator reaches.
    let dom = Scripted::new("DOM")
        .planning(vec![("1", vec![("Seattle", 5)])])
        .refusing("*");
    let engine = builder().provider(dom.clone()).build().await.unwrap();
    install(
        &engine,
        Flow::builder("Re-source")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new(
                        "Assign",
                        ActionKind::AssignFulfillmentSource,
                    ))
                    .action(ActionStep::new("DOM", ActionKind::SendToDom).provider("DOM"))
            })
            .build()
            .unwrap(),
    )
    .await;
    let mut legacy = fo("SO-1-FO3", "Legacy", &[("1", 5)]);
    legacy.state = State::Inactive;
    let mut o = Order::new("SO-1")
        .with_line(OrderLine::new("1", "Surface Pen", 5).with_fulfillment_source("Seattle"));
    o.fulfillment_orders = vec![legacy.clone()];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Failed), "{j}");
    let first = stored(&engine, "SO-1").await;
    let ids: Vec<&str> = first
        .fulfillment_orders
        .iter()
        .map(|f| f.id.as_str())
        .collect();
    assert_eq!(ids, ["SO-1-FO3", "SO-1-FO2"]);
    let assigned = first.fulfillment_orders[1].clone();

    dom.accept_all();
    let failed = engine.failed_executions("SO-1").await.unwrap();
    engine.reprocess(&failed[0]).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("DOM"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    let ids: Vec<&str> = o.fulfillment_orders.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, ["SO-1-FO3", "SO-1-FO2", "SO-1-FO4"], "{o:?}");
    assert_eq!(o.fulfillment_orders[0], legacy, "untouched");
    assert_eq!(o.fulfillment_orders[1], assigned, "untouched");
    assert_eq!(o.fulfillment_orders[2].fulfillment_source, "Seattle");
    assert_eq!(fo_lines(&o.fulfillment_orders[2]), [("1".to_owned(), 5)]);
    assert_eq!(
        events_of(&j, &EventKind::FULFILLMENT_ORDER_CREATED),
        [
            Some(RecordId::FulfillmentOrder("SO-1-FO2".into())),
            Some(RecordId::FulfillmentOrder("SO-1-FO4".into())),
        ]
    );
}

#[tokio::test]
async fn assign_fulfillment_source_gives_a_fresh_id_and_leaves_existing_fulfillment_orders() {
    let engine = builder().build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header")).action(ActionStep::new(
                    "Assign",
                    ActionKind::AssignFulfillmentSource,
                ))
            })
            .build()
            .unwrap(),
    )
    .await;
    let existing = fo("SO-1-FO2", "Dallas", &[("1", 1)]);
    let mut o = Order::new("SO-1")
        .with_line(OrderLine::new("1", "Pen", 2).with_fulfillment_source("Dallas"))
        .with_line(OrderLine::new("2", "Ink", 4).with_fulfillment_source("Dallas"));
    o.fulfillment_orders = vec![existing.clone()];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Assign"), Some(Outcome::Succeeded), "{j}");
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.fulfillment_orders.len(), 2, "{o:?}");
    assert_eq!(o.fulfillment_orders[0], existing, "untouched");
    assert_eq!(o.fulfillment_orders[1].id.as_str(), "SO-1-FO3");
    assert_eq!(
        fo_lines(&o.fulfillment_orders[1]),
        [("1".to_owned(), 2), ("2".to_owned(), 4)]
    );
}

// Send to Fulfillment: what it already sent is its own step's business ------------------

fn testkit(name: &str, clock: &ManualClock) -> ScriptedProvider {
    ScriptedProvider::new(name, clock.clone())
}

/// The idempotency keys `provider` was called with for a fulfillment order, in call order.
fn keys_for(provider: &ScriptedProvider, fo: &str) -> Vec<String> {
    let record = RecordId::FulfillmentOrder(fo.into());
    provider
        .calls()
        .into_iter()
        .filter(|c| c.record == record)
        .map(|c| c.idempotency_key)
        .collect()
}

/// `provider` took the fulfillment order exactly `n` times (across keys), and every call for
/// it carried one key.
fn assert_sent(provider: &ScriptedProvider, fo: &str, n: usize) {
    let record = RecordId::FulfillmentOrder(fo.into());
    assert_eq!(
        provider.effects_for("SO-1", RequestKind::SendFulfillmentOrder, &record),
        n,
        "{provider:?} took {fo}: {:?}",
        provider.effects()
    );
    let mut keys = keys_for(provider, fo);
    keys.dedup();
    assert!(
        keys.len() <= 1,
        "{fo} was sent under several keys: {keys:?}"
    );
}

/// Line 1 (150) goes to Seattle as SO-1-FO1, line 2 (20) to Chicago as SO-1-FO2.
fn two_sources() -> Order {
    order("SO-1", "US", &[150, 20])
}

#[tokio::test]
async fn overlapping_splitter_branches_each_send_the_fulfillment_order_to_their_provider() {
    let clock = ManualClock::new(Timestamp(0));
    let a = testkit("3PL A", &clock);
    let b = testkit("3PL B", &clock);
    let engine = builder()
        .clock(clock.clone())
        .provider(a.clone())
        .provider(b.clone())
        .policy(filter_fn("Every FO", Entity::FulfillmentOrder, |_| true))
        .policy(filter_fn(
            "Seattle FOs",
            Entity::FulfillmentOrder,
            to_source("Seattle"),
        ))
        .build()
        .await
        .unwrap();
    install_policy(&engine, assignment()).await;
    let flow = Flow::builder("Overlap")
        .steps(|s| {
            s.action(validate_header("Header"))
                .action(
                    ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                        .execution_policy("Source assignment"),
                )
                .splitter("Both", |b| {
                    b.branch("All", |s| {
                        s.action(
                            ActionStep::new("Send A", ActionKind::SendToFulfillment)
                                .filter("Every FO")
                                .provider("3PL A"),
                        )
                    })
                    .branch("Seattle", |s| {
                        s.action(
                            ActionStep::new("Send B", ActionKind::SendToFulfillment)
                                .filter("Seattle FOs")
                                .provider("3PL B"),
                        )
                    })
                })
        })
        .build()
        .unwrap();
    install(&engine, flow).await;
    engine
        .submit(Event::new_order(two_sources()))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send A"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(j.outcome("Send B"), Some(Outcome::Succeeded), "{j}");
    // Both branches admitted SO-1-FO1 (Seattle): each provider took it once.
    assert_sent(&a, "SO-1-FO1", 1);
    assert_sent(&b, "SO-1-FO1", 1);
    assert_sent(&a, "SO-1-FO2", 1);
    assert_sent(&b, "SO-1-FO2", 0);
    assert_eq!(a.calls().len(), 2);
    assert_eq!(b.calls().len(), 1);
    assert_eq!(j.step("Send B").next().unwrap().attempts, 1);
    let o = stored(&engine, "SO-1").await;
    assert_eq!(o.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
}

#[tokio::test]
async fn a_second_send_to_fulfillment_step_sends_to_its_own_provider() {
    let clock = ManualClock::new(Timestamp(0));
    let a = testkit("3PL A", &clock);
    let b = testkit("3PL B", &clock);
    let engine = builder()
        .clock(clock.clone())
        .provider(a.clone())
        .provider(b.clone())
        .build()
        .await
        .unwrap();
    install_policy(&engine, assignment()).await;
    install(
        &engine,
        Flow::builder("Two 3PLs")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(
                        ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                            .execution_policy("Source assignment"),
                    )
                    .action(
                        ActionStep::new("Send A", ActionKind::SendToFulfillment).provider("3PL A"),
                    )
                    .action(
                        ActionStep::new("Send B", ActionKind::SendToFulfillment).provider("3PL B"),
                    )
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(two_sources()))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send B"), Some(Outcome::Succeeded), "{j}");
    for fo in ["SO-1-FO1", "SO-1-FO2"] {
        assert_sent(&a, fo, 1);
        assert_sent(&b, fo, 1);
    }
    assert_eq!(j.step("Send B").next().unwrap().attempts, 2);
    assert_eq!(
        details(&j, "Send B"),
        "",
        "a step that sends everything has nothing to explain"
    );
    assert_eq!(j.executions[0].status, ExecutionStatus::Completed);
}

#[tokio::test]
async fn a_durable_retry_does_not_send_again_what_the_provider_took() {
    let clock = ManualClock::new(Timestamp(0));
    // SO-1-FO2's first send applies but its reply is lost: a retryable failure.
    let a = testkit("3PL A", &clock).script_key("fo:SO-1-FO2", [Behavior::LostReply]);
    let engine = builder()
        .clock(clock.clone())
        .provider(a.clone())
        .build()
        .await
        .unwrap();
    install_policy(&engine, assignment()).await;
    install(
        &engine,
        send_flow(
            "Retry",
            ActionStep::new("Send", ActionKind::SendToFulfillment)
                .provider("3PL A")
                .retry(RetryPolicy::new(3, Duration::from_millis(100)).with_jitter(0.0)),
        ),
    )
    .await;
    engine
        .submit(Event::new_order(two_sources()))
        .await
        .unwrap();
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    let accepted: Vec<&RecordId> = state.executions()[0]
        .accepted_calls()
        .map(|(_, _, record)| record)
        .collect();
    assert_eq!(
        accepted,
        [&RecordId::FulfillmentOrder("SO-1-FO1".into())],
        "the committed state keeps what the parked step had sent"
    );
    assert_eq!(a.calls().len(), 2);

    clock.advance(std::time::Duration::from_millis(100));
    engine.run_due().await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(keys_for(&a, "SO-1-FO1").len(), 1, "not called again");
    let fo2 = keys_for(&a, "SO-1-FO2");
    assert_eq!(fo2.len(), 2, "the lost reply is retried");
    assert_eq!(fo2[0], fo2[1], "under the same key");
    assert_sent(&a, "SO-1-FO1", 1);
    assert_sent(&a, "SO-1-FO2", 1);
    assert!(
        details(&j, "Send").contains("not sent: sent by an earlier run of this step: SO-1-FO1"),
        "{j}"
    );
    // The retry started from the document as it was, yet both are marked sent.
    let o = stored(&engine, "SO-1").await;
    assert!(
        o.fulfillment_orders
            .iter()
            .all(|f| f.status_reason == Some(StatusReason::SENT_TO_FULFILLMENT)),
        "{o:?}"
    );
    assert_eq!(o.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    assert!(
        state.executions()[0].accepted_calls().next().is_none(),
        "a step that moved on forgets its calls"
    );
}

#[tokio::test]
async fn a_reprocess_sends_under_new_keys_only_what_did_not_go_through() {
    let clock = ManualClock::new(Timestamp(0));
    let a = testkit("3PL A", &clock).script_key("fo:SO-1-FO2", [Behavior::Fatal("no".into())]);
    let engine = builder()
        .clock(clock.clone())
        .provider(a.clone())
        .build()
        .await
        .unwrap();
    install_policy(&engine, assignment()).await;
    install(
        &engine,
        send_flow(
            "Reprocess",
            ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL A"),
        ),
    )
    .await;
    engine
        .submit(Event::new_order(two_sources()))
        .await
        .unwrap();
    let failed = engine.failed_executions("SO-1").await.unwrap();
    engine.reprocess(&failed[0]).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    assert_sent(&a, "SO-1-FO1", 1);
    let fo2 = keys_for(&a, "SO-1-FO2");
    assert_eq!(fo2.len(), 2);
    assert_ne!(fo2[0], fo2[1], "a reprocess calls under a new key");
    assert_eq!(
        a.effects_for(
            "SO-1",
            RequestKind::SendFulfillmentOrder,
            &RecordId::FulfillmentOrder("SO-1-FO2".into())
        ),
        1,
        "the refused call applied nothing"
    );
    assert!(
        details(&j, "Send").contains("sent by an earlier run of this step: SO-1-FO1"),
        "{j}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_crash_anywhere_never_sends_a_fulfillment_order_twice_under_two_keys() {
    let flow = Flow::builder("Two 3PLs")
        .steps(|s| {
            s.action(validate_header("Header"))
                .action(
                    ActionStep::new("Assign", ActionKind::AssignFulfillmentSource)
                        .execution_policy("Source assignment"),
                )
                .action(
                    ActionStep::new("Send A", ActionKind::SendToFulfillment)
                        .provider("3PL A")
                        .retry(RetryPolicy::new(3, Duration::from_millis(100)).with_jitter(0.0)),
                )
                .action(ActionStep::new("Send B", ActionKind::SendToFulfillment).provider("3PL B"))
        })
        .build()
        .unwrap();
    struct Run {
        ops: u64,
        a: ScriptedProvider,
        b: ScriptedProvider,
        steps: Vec<(String, Option<Outcome>)>,
    }
    async fn run(flow: &Flow, fault: Option<(u64, Fault)>) -> Run {
        let clock = ManualClock::new(Timestamp(0));
        // 3PL A loses its reply to SO-1-FO2 once: the step retries on a durable timer.
        let a = testkit("3PL A", &clock).script_key("fo:SO-1-FO2", [Behavior::LostReply]);
        let b = testkit("3PL B", &clock);
        let engine_on = |store: Arc<dyn orderflow::Store>| {
            builder()
                .store(store)
                .clock(clock.clone())
                .provider(a.clone())
                .provider(b.clone())
                .build()
        };
        let base: Arc<dyn orderflow::Store> = Arc::new(MemoryStore::new());
        {
            let setup = engine_on(base.clone()).await.unwrap();
            install_policy(&setup, assignment()).await;
            install(&setup, flow.clone()).await;
        }
        let store = Arc::new(FaultyStore::new(base.clone()));
        if let Some((n, f)) = fault {
            store.fail_at(n, f);
        }
        let start = || async {
            loop {
                if let Ok(engine) = engine_on(store.clone()).await {
                    return engine;
                }
                store.restart();
            }
        };
        let mut engine = start().await;
        // The host delivers the order until it is acknowledged, then the engine runs to
        // quiescence, restarted after each crash.
        while engine
            .submit(Event::new_order(two_sources()))
            .await
            .is_err()
        {
            store.restart();
            engine = start().await;
        }
        loop {
            let step = async {
                engine.recover().await?;
                match engine.next_due().await? {
                    None => Ok(false),
                    Some(at) => {
                        clock.advance(at.since(clock.now()));
                        engine.run_due().await?;
                        Ok::<bool, Error>(true)
                    }
                }
            };
            match step.await {
                Ok(false) => break,
                Ok(true) => {}
                Err(_) => {
                    store.restart();
                    engine = start().await;
                }
            }
        }
        let ops = store.op_count();
        let reader = engine_on(base).await.unwrap();
        let j = journey(&reader, "SO-1").await;
        let steps = ["Send A", "Send B"]
            .iter()
            .map(|s| ((*s).to_owned(), j.outcome(s)))
            .collect();
        Run { ops, a, b, steps }
    }

    let clean = run(&flow, None).await;
    for (step, outcome) in &clean.steps {
        assert_eq!(*outcome, Some(Outcome::Succeeded), "{step}");
    }
    let mut runs = 0;
    for n in 0..clean.ops {
        for fault in [Fault::CrashBefore, Fault::CrashAfter] {
            let r = run(&flow, Some((n, fault))).await;
            runs += 1;
            assert_eq!(r.steps, clean.steps, "crash {fault:?} at op {n}");
            for fo in ["SO-1-FO1", "SO-1-FO2"] {
                assert_sent(&r.a, fo, 1);
                assert_sent(&r.b, fo, 1);
            }
            for p in [&r.a, &r.b] {
                assert!(p.effects_per_key().values().all(|&k| k == 1));
            }
        }
    }
    assert!(
        runs >= 20,
        "the scenario makes enough store operations: {runs}"
    );
}

// A step that sends nothing says why -----------------------------------------------------

#[tokio::test]
async fn send_to_fulfillment_taking_no_fulfillment_order_fails_and_says_so() {
    let tpl = Scripted::new("3PL");
    let engine = builder().provider(tpl.clone()).build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    engine
        .submit(Event::new_order(order("SO-1", "US", &[2])))
        .await
        .unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Failed), "{j}");
    assert_eq!(
        details(&j, "Send"),
        "no fulfillment order to send: the step took none"
    );
    assert!(tpl.calls().is_empty());
}

#[tokio::test]
async fn send_to_fulfillment_with_only_inactive_fulfillment_orders_says_why_it_sent_none() {
    let tpl = Scripted::new("3PL");
    let engine = builder().provider(tpl.clone()).build().await.unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    let mut o = order("SO-1", "US", &[2]);
    let mut cancelled = fo("FO-X", "West", &[("1", 2)]);
    cancelled.state = State::Inactive;
    o.fulfillment_orders = vec![cancelled];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(j.step("Send").next().unwrap().attempts, 0);
    assert_eq!(
        details(&j, "Send"),
        "no fulfillment order to send: inactive: FO-X"
    );
    assert!(tpl.calls().is_empty());
    assert_eq!(
        stored(&engine, "SO-1").await.status_reason,
        Some(StatusReason::ORDER_VALIDATION_SUCCESS),
        "nothing sent: the order is not Sent To Fulfillment"
    );
}

#[tokio::test]
async fn a_reprocessed_send_with_nothing_left_to_send_says_why() {
    // FO-2's send is refused; a second flow then cancels FO-2 (an execution policy sets it
    // inactive). The reprocessed step has sent FO-1 already and FO-2 is closed.
    let clock = ManualClock::new(Timestamp(0));
    let tpl = testkit("3PL", &clock).script_key("fo:FO-2", [Behavior::Fatal("no".into())]);
    let cancel = EventKind::new("Cancel West");
    let engine = builder()
        .clock(clock.clone())
        .provider(tpl.clone())
        .policy(execution_fn(
            "Close West",
            Entity::FulfillmentOrder,
            Criticality::Information,
            |r| {
                if let RecordMut::FulfillmentOrder(f) = r {
                    if f.fulfillment_source == "West" {
                        f.state = State::Inactive;
                    }
                }
                Check::Passed
            },
        ))
        .build()
        .await
        .unwrap();
    install(
        &engine,
        Flow::builder("Ship")
            .steps(|s| {
                s.action(validate_header("Header"))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    install(
        &engine,
        Flow::builder("Cancel")
            .steps(|s| {
                s.action(
                    ActionStep::new("Close", ActionKind::ValidateOrderHeader)
                        .input_event(cancel.clone())
                        .execution_policy("Close West"),
                )
            })
            .build()
            .unwrap(),
    )
    .await;
    let mut o = order("SO-1", "US", &[2, 3]);
    o.fulfillment_orders = vec![
        fo("FO-1", "East", &[("1", 2)]),
        fo("FO-2", "West", &[("2", 3)]),
    ];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Failed), "{j}");
    engine
        .submit(Event::new("cancel-1", cancel, "SO-1"))
        .await
        .unwrap();
    let ship = journey(&engine, "SO-1")
        .await
        .executions
        .iter()
        .find(|e| e.flow == "Ship")
        .unwrap()
        .id
        .clone();
    engine.reprocess(&ship).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(
        details(&j, "Send"),
        "no fulfillment order to send: inactive: FO-2; sent by an earlier run of this step: FO-1"
    );
    assert_eq!(j.step("Send").last().unwrap().attempts, 0);
    assert_sent(&tpl, "FO-1", 1);
    assert_eq!(tpl.calls().len(), 2, "FO-1 once, FO-2 refused once");
}

#[tokio::test]
async fn a_send_step_whose_filter_admits_nothing_is_skipped_with_the_reason() {
    let tpl = Scripted::new("3PL");
    let engine = builder()
        .provider(tpl.clone())
        .policy(filter_fn(
            "Seattle FOs",
            Entity::FulfillmentOrder,
            to_source("Seattle"),
        ))
        .build()
        .await
        .unwrap();
    install(
        &engine,
        Flow::builder("F")
            .steps(|s| {
                s.action(validate_header("Header")).action(
                    ActionStep::new("Send", ActionKind::SendToFulfillment)
                        .filter("Seattle FOs")
                        .provider("3PL"),
                )
            })
            .build()
            .unwrap(),
    )
    .await;
    let mut o = order("SO-1", "US", &[2]);
    o.fulfillment_orders = vec![fo("FO-1", "East", &[("1", 2)])];
    engine.submit(Event::new_order(o)).await.unwrap();
    let j = journey(&engine, "SO-1").await;
    assert_eq!(j.outcome("Send"), Some(Outcome::Skipped), "{j}");
    assert_eq!(
        details(&j, "Send"),
        "filter 'Seattle FOs' admitted no record"
    );
    assert!(tpl.calls().is_empty());
}

// A custom sourcing step creates fulfillment orders as Send to DOM does -------------------

/// Line 1 of 0.3 kg of coffee: 0.1 from Seattle, 0.2 from Redmond.
fn coffee() -> Order {
    Order::new("SO-1")
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Coffee beans", Decimal::new(3, 1)))
}

type BoxedAction = Box<dyn Action>;

/// Sources the order through `first`, then sends every fulfillment order the path carries to
/// the 3PL; returns the stored order, the journey and what the 3PL received.
async fn source_and_send(
    first: ActionStep,
    custom: Option<BoxedAction>,
    dom: Option<Scripted>,
) -> (Order, Journey, Vec<(RequestKind, String)>) {
    let tpl = Scripted::new("3PL");
    let mut b = builder().provider(tpl.clone());
    if let Some(action) = custom {
        b = b.action("split sourcing", action);
    }
    if let Some(dom) = dom {
        b = b.provider(dom);
    }
    let engine = b.build().await.unwrap();
    install(
        &engine,
        Flow::builder("Source and send")
            .steps(|s| {
                s.action(first.input_event(EventKind::NEW_ORDER))
                    .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
            })
            .build()
            .unwrap(),
    )
    .await;
    engine.submit(Event::new_order(coffee())).await.unwrap();
    (
        stored(&engine, "SO-1").await,
        journey(&engine, "SO-1").await,
        tpl.calls(),
    )
}

#[tokio::test]
async fn a_custom_action_sources_an_order_as_send_to_dom_does_and_send_to_fulfillment_sends_it() {
    let split: BoxedAction = Box::new(action_fn(|cx| {
        async move {
            let lines: Vec<(LineId, Decimal)> =
                cx.lines().map(|l| (l.id.clone(), l.quantity)).collect();
            let mut sourcing = Sourcing::new();
            for (line, quantity) in lines {
                let seattle = Decimal::new(1, 1);
                sourcing.allocate(cx, "Seattle", &line, seattle)?;
                sourcing.allocate(cx, "Redmond", &line, quantity - seattle)?;
            }
            let created = sourcing.finish(cx);
            cx.note(format!("created {}", created.len()));
            Ok(())
        }
        .boxed()
    }));
    let (custom, j, sent) = source_and_send(
        ActionStep::custom("Source", "split sourcing"),
        Some(split),
        None,
    )
    .await;
    assert_eq!(j.outcome("Source"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(j.outcome("Send"), Some(Outcome::Succeeded), "{j}");
    assert_eq!(
        details(&j, "Source"),
        "took event 'New Order' (#1) | created 2"
    );

    // Two fulfillment orders that add up to the line exactly, each sent once.
    let seattle = fo_by_source(&custom, "Seattle");
    let redmond = fo_by_source(&custom, "Redmond");
    assert_eq!(
        (seattle.id.as_str(), redmond.id.as_str()),
        ("SO-1-FO1", "SO-1-FO2")
    );
    assert_eq!(seattle.lines[0].quantity, Decimal::new(1, 1));
    assert_eq!(redmond.lines[0].quantity, Decimal::new(2, 1));
    assert_eq!(
        seattle.lines[0].quantity + redmond.lines[0].quantity,
        custom.lines[0].quantity
    );
    assert_eq!(redmond.lines[0].product, "Coffee beans");
    assert_eq!(
        sent,
        [
            (RequestKind::SendFulfillmentOrder, "SO-1-FO1".to_owned()),
            (RequestKind::SendFulfillmentOrder, "SO-1-FO2".to_owned()),
        ]
    );
    let created = events_of(&j, &EventKind::FULFILLMENT_ORDER_CREATED);
    assert_eq!(
        created,
        [
            Some(RecordId::FulfillmentOrder("SO-1-FO1".into())),
            Some(RecordId::FulfillmentOrder("SO-1-FO2".into())),
        ]
    );
    for fo in &custom.fulfillment_orders {
        assert_eq!(fo.status_reason, Some(StatusReason::SENT_TO_FULFILLMENT));
    }

    // The same split planned by a DOM provider gives the same documents, events and calls.
    let mut dom = Scripted::new("DOM");
    dom.plan = Reply::FulfillmentPlan(FulfillmentPlan {
        lines: vec![PlannedLine {
            line: "1".into(),
            allocations: vec![
                Allocation::new("Seattle", Decimal::new(1, 1)),
                Allocation::new("Redmond", Decimal::new(2, 1)),
            ],
        }],
    });
    let (by_dom, dom_journey, dom_sent) = source_and_send(
        ActionStep::new("Source", ActionKind::SendToDom).provider("DOM"),
        None,
        Some(dom),
    )
    .await;
    assert_eq!(by_dom.fulfillment_orders, custom.fulfillment_orders);
    assert_eq!(
        events_of(&dom_journey, &EventKind::FULFILLMENT_ORDER_CREATED),
        created
    );
    assert_eq!(dom_sent, sent);
}

#[tokio::test]
async fn a_custom_sourcing_step_cannot_allocate_more_than_a_line_orders() {
    let greedy: BoxedAction = Box::new(action_fn(|cx| {
        async move {
            let line = LineId::from("1");
            let mut sourcing = Sourcing::new();
            sourcing.allocate(cx, "Seattle", &line, Decimal::new(2, 1))?;
            // Allocating again from the same source adds to its fulfillment order.
            sourcing.allocate(cx, "Seattle", &line, Decimal::new(1, 1))?;
            // 0.3 of 0.3 is allocated: nothing more fits, from any source.
            let refused = sourcing
                .allocate(cx, "Redmond", &line, Decimal::new(1, 2))
                .unwrap_err();
            cx.note(refused.message().to_owned());
            let unknown = sourcing
                .allocate(cx, "Redmond", &LineId::from("9"), Decimal::ONE)
                .unwrap_err();
            cx.note(unknown.message().to_owned());
            let negative = sourcing
                .allocate(cx, "Redmond", &line, Decimal::NEGATIVE_ONE)
                .unwrap_err();
            cx.note(negative.message().to_owned());
            assert_eq!(sourcing.created().len(), 1);
            sourcing.finish(cx);
            Ok(())
        }
        .boxed()
    }));
    let (order, j, sent) = source_and_send(
        ActionStep::custom("Source", "split sourcing"),
        Some(greedy),
        None,
    )
    .await;
    assert_eq!(
        details(&j, "Source"),
        "took event 'New Order' (#1) \
         | cannot allocate 0.01 more of line 1 from 'Redmond': 0.3 of 0.3 is allocated already \
         | cannot allocate line 9 from 'Redmond': the order has no such line \
         | cannot allocate -1 of line 1 from 'Redmond': the quantity is negative"
    );
    assert_eq!(order.fulfillment_orders.len(), 1, "nothing more created");
    assert_eq!(
        fo_lines_exact(&order.fulfillment_orders[0]),
        [("1".to_owned(), Decimal::new(3, 1))]
    );
    assert_eq!(
        sent,
        [(RequestKind::SendFulfillmentOrder, "SO-1-FO1".to_owned())]
    );
}

fn fo_lines_exact(fo: &FulfillmentOrder) -> Vec<(String, Decimal)> {
    fo.lines
        .iter()
        .map(|l| (l.order_line.as_str().to_owned(), l.quantity))
        .collect()
}
