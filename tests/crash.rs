//! Crash-point enumeration: for six canonical flows, a fault-free run counts the K store
//! operations the scenario makes; then for every i in 0..K the store "crashes" at operation
//! i — before applying it, and again after applying it — the engine is dropped, a new one is
//! built on the same store, the host re-delivers the events it had no acknowledgement for,
//! and everything runs to quiescence. Every run must converge to the fault-free result: no
//! order lost, equal final states and journeys, each idempotency key applied exactly once,
//! and at most one raw duplicate provider call per crash.

use std::sync::Arc;

use async_trait::async_trait;
use orderflow::clock::{Clock, ManualClock, Timestamp};
use orderflow::document::{Entity, Order, OrderId, OrderLine, RecordMut, RecordRef};
use orderflow::engine::Config;
use orderflow::execution::{Execution, ExecutionStatus};
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::journey::{StepRecord, TimelineEntry};
use orderflow::policy::{Check, Criticality, execution_fn, filter_fn};
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::testing::provider::ScriptedProvider;
use orderflow::testing::store::{Fault, FaultyStore};
use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore, Store};

/// Fails every attempt before the third with a retryable error, then delegates: the retry
/// path, decided by the attempt number the engine commits, so a re-run after a crash sees
/// the same behaviour.
#[derive(Debug, Clone)]
struct FlakyBilling(ScriptedProvider);

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
struct World {
    clock: ManualClock,
    dom: ScriptedProvider,
    tpl: ScriptedProvider,
    erp: ScriptedProvider,
    billing: ScriptedProvider,
    flaky: ScriptedProvider,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::new(Timestamp::from_millis(1_000));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        Self {
            dom: ScriptedProvider::new("DOM", shared.clone()).sourcing_from("East"),
            tpl: ScriptedProvider::new("3PL", shared.clone()),
            erp: ScriptedProvider::new("ERP", shared.clone()),
            billing: ScriptedProvider::new("Billing", shared.clone()),
            flaky: ScriptedProvider::new("Flaky billing", shared),
            clock,
        }
    }

    fn providers(&self) -> [&ScriptedProvider; 5] {
        [&self.dom, &self.tpl, &self.erp, &self.billing, &self.flaky]
    }

    async fn engine(&self, store: Arc<dyn Store>) -> orderflow::Result<Engine> {
        Engine::builder()
            .store(store)
            .clock(self.clock.clone())
            .config(
                Config::default()
                    .with_retry(RetryPolicy::new(4, 100).with_jitter(0.0))
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

struct Scenario {
    name: &'static str,
    flows: Vec<Flow>,
    events: Vec<Event>,
    orders: Vec<&'static str>,
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

fn scenarios() -> Vec<Scenario> {
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
type OrderResult = (Order, Vec<TimelineEntry>, Vec<Execution>, Vec<StepRecord>);

/// What a run ends with, compared across runs.
#[derive(Debug, PartialEq)]
struct Final {
    orders: Vec<OrderResult>,
    effects: Vec<(String, RequestKind, String)>,
}

struct Run {
    fin: Final,
    ops: u64,
    duplicate_calls: usize,
    restarts: u32,
}

/// Builds an engine on the faulty store, restarting after crashes until one is built.
async fn start(world: &World, store: &Arc<FaultyStore>, restarts: &mut u32) -> Engine {
    loop {
        match world.engine(store.clone()).await {
            Ok(engine) => return engine,
            Err(_) => {
                *restarts += 1;
                store.restart();
            }
        }
    }
}

async fn run(scenario: &Scenario, fault: Option<(u64, Fault)>, base: Arc<dyn Store>) -> Run {
    let world = World::new();
    {
        let setup = world.engine(base.clone()).await.unwrap();
        for flow in &scenario.flows {
            setup.create_flow(flow.clone()).await.unwrap();
            setup.publish(&flow.name).await.unwrap();
        }
    }
    let store = Arc::new(FaultyStore::new(base.clone()));
    if let Some((at, fault)) = fault {
        store.fail_at(at, fault);
    }
    let mut restarts = 0;
    let mut engine = start(&world, &store, &mut restarts).await;

    // The host delivers each event until it is acknowledged (at-least-once).
    for event in &scenario.events {
        loop {
            match engine.submit(event.clone()).await {
                Ok(_) => break,
                Err(_) => {
                    restarts += 1;
                    store.restart();
                    engine = start(&world, &store, &mut restarts).await;
                }
            }
        }
    }
    // Then runs to quiescence: what a restarted engine does, and due timers on time.
    loop {
        let step = async {
            engine.recover().await?;
            match engine.next_due().await? {
                None => Ok(false),
                Some(at) => {
                    world.clock.advance(at.since(world.clock.now()));
                    engine.run_due().await?;
                    Ok::<bool, orderflow::Error>(true)
                }
            }
        };
        match step.await {
            Ok(false) => break,
            Ok(true) => {}
            Err(_) => {
                restarts += 1;
                store.restart();
                engine = start(&world, &store, &mut restarts).await;
            }
        }
    }
    let ops = store.op_count();

    // Read the result from the store itself, fault-free.
    let reader = world.engine(base).await.unwrap();
    let mut orders = Vec::new();
    for id in &scenario.orders {
        let id = OrderId::from(*id);
        let state = reader
            .order_state(&id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("order {id} is lost"));
        let journey = reader.journey(&id).await.unwrap();
        orders.push((state.order, state.timeline, state.executions, journey.steps));
    }
    let mut effects = Vec::new();
    let mut duplicate_calls = 0;
    for p in world.providers() {
        for (key, n) in p.effects_per_key() {
            assert_eq!(n, 1, "{}: key {key} took effect {n} times", scenario.name);
        }
        effects.extend(
            p.effects()
                .into_iter()
                .map(|e| (e.order.clone(), e.kind, e.record.to_string())),
        );
        duplicate_calls += p.duplicate_calls();
    }
    effects.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    Run {
        fin: Final { orders, effects },
        ops,
        duplicate_calls,
        restarts,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_crash_point_converges_to_the_fault_free_result() {
    enumerate_crash_points("memory", || async {
        Arc::new(MemoryStore::new()) as Arc<dyn Store>
    })
    .await;
}

/// The same enumeration on PostgreSQL: every run on a fresh schema of the server at
/// `ORDERFLOW_PG_URL` (skipped without it), all dropped at the end.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_converges_on_postgres() {
    use orderflow::store::{PostgresConfig, PostgresStore};
    let Ok(url) = std::env::var("ORDERFLOW_PG_URL") else {
        eprintln!("ORDERFLOW_PG_URL is not set; skipping (CI sets it)");
        return;
    };
    let prefix = format!("orderflow_crash_{}", std::process::id());
    let next = std::sync::atomic::AtomicU64::new(0);
    enumerate_crash_points("PostgreSQL", || {
        let config = PostgresConfig::new(&url).with_schema(format!(
            "{prefix}_{}",
            next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        async move { Arc::new(PostgresStore::connect_with(config).await.unwrap()) as Arc<dyn Store> }
    })
    .await;
    // Drop the run's schemas.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT nspname FROM pg_catalog.pg_namespace WHERE starts_with(nspname, $1)",
            &[&format!("{prefix}_")],
        )
        .await
        .unwrap();
    for row in rows {
        let name: String = row.get(0);
        client
            .batch_execute(&format!("DROP SCHEMA \"{name}\" CASCADE"))
            .await
            .unwrap();
    }
}

/// Runs each scenario fault-free, then crashed before and after each of its store
/// operations, each run on a fresh store from `open`, and checks every crashed run ends
/// as the fault-free one did.
async fn enumerate_crash_points<F, Fut>(backend: &str, open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    for scenario in scenarios() {
        let clean = run(&scenario, None, open().await).await;
        let k = clean.ops;
        assert!(k > 0, "{}: the scenario touches the store", scenario.name);
        for (id, _, executions, _) in &clean.fin.orders {
            assert!(
                executions
                    .iter()
                    .all(|x| x.status() == ExecutionStatus::Completed),
                "{}: order {} completes fault-free",
                scenario.name,
                id.id
            );
        }
        let mut covered = 0;
        let mut crashes = 0;
        for i in 0..k {
            for fault in [Fault::CrashBefore, Fault::CrashAfter] {
                let crashed = run(&scenario, Some((i, fault)), open().await).await;
                assert!(
                    crashed.restarts >= 1,
                    "{}: the crash at operation {i} ({fault:?}) fired",
                    scenario.name
                );
                assert_eq!(
                    crashed.fin, clean.fin,
                    "{}: a crash at operation {i} ({fault:?}) changed the result",
                    scenario.name
                );
                assert!(
                    crashed.duplicate_calls <= clean.duplicate_calls + crashed.restarts as usize,
                    "{}: a crash at operation {i} ({fault:?}) made {} raw duplicate calls \
                     ({} without crashes, {} restarts)",
                    scenario.name,
                    crashed.duplicate_calls,
                    clean.duplicate_calls,
                    crashed.restarts
                );
                crashes += 1;
            }
            covered += 1;
        }
        println!(
            "{backend}: {}: K = {k} store operations, crash points covered {covered}/{k} \
             ({crashes} crashed runs, before and after each operation), {} effects",
            scenario.name,
            clean.fin.effects.len()
        );
    }
}
