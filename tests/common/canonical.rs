//! The canonical flows the crash and cancellation enumerations run: six scenarios (linear,
//! condition, splitter-merge with a filtered-out branch, a wait for an external event, a
//! retry path, two flows on one event) and the world of providers they call.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use orderflow::clock::{ManualClock, Timestamp};
use orderflow::document::{Entity, Order, OrderLine, RecordMut, RecordRef};
use orderflow::engine::Config;
use orderflow::execution::Execution;
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::journey::{StepRecord, TimelineEntry};
use orderflow::policy::{Check, Criticality, execution_fn, filter_fn};
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::testing::provider::ScriptedProvider;
use orderflow::{ActionKind, Engine, Event, EventKind, Store};

/// Fails every attempt before the third with a retryable error, then delegates: the retry
/// path, decided by the attempt number the engine commits, so a re-run after a crash sees
/// the same behaviour.
#[derive(Debug, Clone)]
pub(crate) struct FlakyBilling(pub(crate) ScriptedProvider);

#[async_trait]
impl Provider for FlakyBilling {
    fn name(&self) -> &str {
        "Flaky billing"
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendInvoice]
    }
    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        if cx.attempt < 3 {
            return Err(ProviderError::unavailable("billing is restarting"));
        }
        self.0.call(request, cx).await
    }
}

/// The external systems: they outlive every engine of a run.
#[derive(Clone)]
pub(crate) struct World {
    pub(crate) clock: ManualClock,
    pub(crate) dom: ScriptedProvider,
    pub(crate) tpl: ScriptedProvider,
    pub(crate) erp: ScriptedProvider,
    pub(crate) billing: ScriptedProvider,
    pub(crate) flaky: ScriptedProvider,
}

impl World {
    pub(crate) fn new() -> Self {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        Self {
            dom: ScriptedProvider::new("DOM", clock.clone()).sourcing_from("East"),
            tpl: ScriptedProvider::new("3PL", clock.clone()),
            erp: ScriptedProvider::new("ERP", clock.clone()),
            billing: ScriptedProvider::new("Billing", clock.clone()),
            flaky: ScriptedProvider::new("Flaky billing", clock.clone()),
            clock,
        }
    }

    pub(crate) fn providers(&self) -> [&ScriptedProvider; 5] {
        [&self.dom, &self.tpl, &self.erp, &self.billing, &self.flaky]
    }

    pub(crate) async fn engine(&self, store: Arc<dyn Store>) -> orderflow::Result<Engine> {
        Engine::builder()
            .store(store)
            .clock(self.clock.clone())
            .config(
                Config::default()
                    .with_retry(RetryPolicy::new(4, Duration::from_millis(100)).with_jitter(0.0))
                    .with_timeout(std::time::Duration::from_secs(5)),
            )
            .provider(self.dom.clone())
            .provider(self.tpl.clone())
            .provider(self.erp.clone())
            .provider(self.billing.clone())
            .provider(FlakyBilling(self.flaky.clone()))
            .policy(execution_fn(
                "Ship-to US",
                Entity::Order,
                Criticality::Critical,
                |r| match r {
                    RecordMut::Order(o) if o.ship_to.country.as_deref() == Some("US") => {
                        Check::Passed
                    }
                    _ => Check::failed("ship-to country is not US"),
                },
            ))
            .policy(execution_fn(
                "Source East",
                Entity::OrderLine,
                Criticality::Information,
                |r| {
                    if let RecordMut::Line(l) = r {
                        if l.fulfillment_source.is_none() {
                            l.fulfillment_source = Some("East".into());
                        }
                    }
                    Check::Passed
                },
            ))
            .policy(filter_fn("East", Entity::FulfillmentOrder, |r| {
                matches!(r, RecordRef::FulfillmentOrder(_, f) if f.fulfillment_source == "East")
            }))
            .policy(filter_fn("West", Entity::FulfillmentOrder, |r| {
                matches!(r, RecordRef::FulfillmentOrder(_, f) if f.fulfillment_source == "West")
            }))
            .build()
            .await
    }
}

pub(crate) struct Scenario {
    pub(crate) name: &'static str,
    pub(crate) flows: Vec<Flow>,
    pub(crate) events: Vec<Event>,
    pub(crate) orders: Vec<&'static str>,
}

fn action(name: &str, kind: ActionKind) -> ActionStep {
    ActionStep::new(name, kind)
}

fn new_order(id: &str, country: &str) -> Event {
    Event::new_order(
        Order::new(id)
            .with_ship_to_country(country)
            .with_line(OrderLine::new("1", "Surface Pen", 10))
            .with_line(OrderLine::new("2", "Surface Dock", 2)),
    )
}

pub(crate) fn scenarios() -> Vec<Scenario> {
    let linear = Flow::builder("Linear")
        .steps(|s| {
            s.action(
                action("Validate", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER)
                    .execution_policy("Ship-to US"),
            )
            .action(action("Determine", ActionKind::SendToDom).provider("DOM"))
            .action(action("Ship", ActionKind::SendToFulfillment).provider("3PL"))
            .action(action("Invoice", ActionKind::SendToInvoice).provider("Billing"))
        })
        .build()
        .unwrap();
    let condition = Flow::builder("Condition")
        .steps(|s| {
            s.action(
                action("Validate", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER)
                    .execution_policy("Ship-to US"),
            )
            .condition(
                "Valid?",
                |yes| yes.action(action("Invoice", ActionKind::SendToInvoice).provider("Billing")),
                |no| {
                    no.action(action("Tell ERP", ActionKind::SendToFulfillmentErp).provider("ERP"))
                },
            )
        })
        .build()
        .unwrap();
    let splitter = Flow::builder("Splitter")
        .steps(|s| {
            s.action(
                action("Assign", ActionKind::AssignFulfillmentSource)
                    .input_event(EventKind::NEW_ORDER)
                    .execution_policy("Source East"),
            )
            .splitter_merge("By source", |b| {
                b.branch("East", |s| {
                    s.action(
                        action("Ship East", ActionKind::SendToFulfillment)
                            .filter("East")
                            .provider("3PL"),
                    )
                })
                .branch("West", |s| {
                    s.action(
                        action("Ship West", ActionKind::SendToFulfillment)
                            .filter("West")
                            .provider("3PL"),
                    )
                })
            })
            .action(action("Invoice", ActionKind::SendToInvoice).provider("Billing"))
        })
        .build()
        .unwrap();
    let wait = Flow::builder("Wait")
        .steps(|s| {
            s.action(
                action("To ERP", ActionKind::SendToFulfillmentErp)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("ERP"),
            )
            .action(
                action("Invoice when shipped", ActionKind::SendToInvoice)
                    .input_event(EventKind::SHIPPED)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap();
    let retry = Flow::builder("Retry")
        .steps(|s| {
            s.action(
                action("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Flaky billing"),
            )
        })
        .build()
        .unwrap();
    let first = Flow::builder("First of two")
        .steps(|s| {
            s.action(
                action("To ERP", ActionKind::SendToFulfillmentErp)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("ERP"),
            )
        })
        .build()
        .unwrap();
    let second = Flow::builder("Second of two")
        .steps(|s| {
            s.action(
                action("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap();
    vec![
        Scenario {
            name: "linear",
            flows: vec![linear],
            events: vec![new_order("L-1", "US")],
            orders: vec!["L-1"],
        },
        Scenario {
            name: "condition",
            flows: vec![condition],
            events: vec![new_order("C-1", "US"), new_order("C-2", "CA")],
            orders: vec!["C-1", "C-2"],
        },
        Scenario {
            name: "splitter-merge with a filtered-out branch",
            flows: vec![splitter],
            events: vec![new_order("S-1", "US")],
            orders: vec!["S-1"],
        },
        Scenario {
            name: "wait for an external event",
            flows: vec![wait],
            events: vec![
                new_order("W-1", "US"),
                Event::new("shipped-W-1", EventKind::SHIPPED, "W-1"),
            ],
            orders: vec!["W-1"],
        },
        Scenario {
            name: "retry path",
            flows: vec![retry],
            events: vec![new_order("R-1", "US")],
            orders: vec!["R-1"],
        },
        Scenario {
            name: "two flows on one event",
            flows: vec![first, second],
            events: vec![new_order("T-1", "US")],
            orders: vec!["T-1"],
        },
    ]
}

/// One order as a run leaves it: the document, its timeline, executions and journey.
pub(crate) type OrderResult = (Order, Vec<TimelineEntry>, Vec<Execution>, Vec<StepRecord>);

/// What a run ends with, compared across runs.
#[derive(Debug, PartialEq)]
pub(crate) struct Final {
    pub(crate) orders: Vec<OrderResult>,
    pub(crate) effects: Vec<(String, RequestKind, String)>,
}
