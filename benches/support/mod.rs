//! What the benchmarks share: no-op providers, the reference lab on an engine, its
//! hand-written twin, and a loop that times submits on fresh engines.

// Each bench binary uses a part of this module.
#![allow(dead_code)]

pub(crate) mod recording;
pub(crate) mod shape;
pub(crate) mod waiting;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use orderflow::document::{FulfillmentOrder, Order, OrderLine, RecordMut, RecordRef};
use orderflow::flow::Flow;
use orderflow::policy::{ExecutionPolicy, FilterPolicy};
use orderflow::provider::{CallContext, Reply, Request, RequestKind};
use orderflow::rules::{PolicyDocument, RuleExecution, RuleFilter, RulePolicy};
use orderflow::{Config, Engine, Event, MemoryStore, Provider, ProviderError, StatusReason, Store};

pub(crate) const POLICIES: &str = include_str!("../../examples/reference-lab/policies.json");
pub(crate) const FLOW: &str = include_str!("../../examples/reference-lab/flow.json");

/// What a host's client for an external system does when the system answers at once:
/// nothing. The hand-written baselines call it directly; [`NoopProvider`] wraps it.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NoopClient;

impl NoopClient {
    pub(crate) async fn send(&self, key: &str, order: &Order) -> Result<(), ProviderError> {
        std::hint::black_box((key, &order.id));
        Ok(())
    }
}

/// A provider that answers every request at once with `Done`.
#[derive(Debug)]
pub(crate) struct NoopProvider {
    name: String,
    client: NoopClient,
}

impl NoopProvider {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            client: NoopClient,
        }
    }
}

const OFFERS: &[RequestKind] = &[
    RequestKind::SendFulfillmentOrder,
    RequestKind::SendToErp,
    RequestKind::SendInvoice,
];

#[async_trait]
impl Provider for NoopProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn offers(&self) -> &[RequestKind] {
        OFFERS
    }

    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        let order = match request {
            Request::SendFulfillmentOrder { order, .. }
            | Request::SendToErp { order }
            | Request::SendInvoice { order } => order,
            other => return Err(ProviderError::rejected(format!("{}", other.kind()))),
        };
        self.client.send(cx.idempotency_key, order).await?;
        Ok(Reply::Done)
    }
}

/// A one-line US order of ten pens.
pub(crate) fn one_line_order(i: u64) -> Order {
    Order::new(format!("SO-{i}"))
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", 10))
}

/// A one-line US order: quantity 110 ships from Seattle, 10 from Chicago.
pub(crate) fn lab_order(i: u64) -> Order {
    let quantity = if i % 2 == 0 { 110 } else { 10 };
    Order::new(format!("SO-{i}"))
        .with_ship_to_country("US")
        .with_line(OrderLine::new("1", "Surface Pen", quantity))
}

/// An engine on the memory store with the reference lab's policies and flow published and
/// no-op store providers.
pub(crate) async fn lab_engine() -> Engine {
    lab_engine_on(MemoryStore::new()).await
}

/// An engine on `store` with the reference lab's policies and flow published and no-op
/// store providers.
pub(crate) async fn lab_engine_on(store: impl Store) -> Engine {
    lab_engine_with(store, Config::default()).await
}

/// An engine on `store` with `config` and the reference lab's policies and flow published
/// and no-op store providers.
pub(crate) async fn lab_engine_with(store: impl Store, config: Config) -> Engine {
    let engine = Engine::builder()
        .store(store)
        .config(config)
        .provider(NoopProvider::new("Seattle store 3PL"))
        .provider(NoopProvider::new("Chicago store 3PL"))
        .build()
        .await
        .expect("engine builds");
    for policy in PolicyDocument::list_from_json(POLICIES).expect("policies parse") {
        let name = policy.name.clone();
        engine.create_policy(policy).await.expect("created");
        engine.publish_policy(&name).await.expect("published");
    }
    engine
        .create_flow(Flow::from_json(FLOW).expect("flow parses"))
        .await
        .expect("created");
    engine.publish("Reference lab").await.expect("published");
    engine
}

/// The reference lab written by hand: the same compiled policies, evaluated in the flow's
/// order, and the same provider calls, with no engine.
#[derive(Debug)]
pub(crate) struct HandWritten {
    ship_to_us: Arc<RuleExecution>,
    quantity: Arc<RuleExecution>,
    assignment: Arc<RuleExecution>,
    seattle_filter: Arc<RuleFilter>,
    chicago_filter: Arc<RuleFilter>,
    seattle: NoopClient,
    chicago: NoopClient,
}

impl HandWritten {
    pub(crate) fn new() -> Self {
        let docs = PolicyDocument::list_from_json(POLICIES).expect("policies parse");
        let policy = |name: &str| -> RulePolicy {
            docs.iter()
                .find(|p| p.name == name)
                .expect("the lab has the policy")
                .compile()
                .expect("the policy compiles")
        };
        let execution = |name: &str| policy(name).into_execution().expect("an execution policy");
        let filter = |name: &str| policy(name).into_filter().expect("a filter policy");
        Self {
            ship_to_us: execution("Ship-to US"),
            quantity: execution("Quantity at least 5"),
            assignment: execution("Fulfillment source assignment"),
            seattle_filter: filter("Seattle store"),
            chicago_filter: filter("Chicago store"),
            seattle: NoopClient,
            chicago: NoopClient,
        }
    }

    /// Validates the header and lines, assigns sources, creates one fulfillment order per
    /// source and sends each to its store.
    pub(crate) async fn run(&self, mut order: &mut Order) -> Result<(), ProviderError> {
        // A function, not an async closure: a closure's future would not be `Send` for
        // every lifetime of its argument, which `tokio::spawn` asks of `run`'s.
        async fn nothing(_: &&mut Order) {}
        self.run_with(&mut order, nothing).await
    }

    /// [`run`](Self::run) on a document held as `D`, calling `before_call` with it before
    /// each provider call.
    pub(crate) async fn run_with<D: Document>(
        &self,
        doc: &mut D,
        mut before_call: impl AsyncFnMut(&D),
    ) -> Result<(), ProviderError> {
        let order = doc.write();
        if !self.ship_to_us.execute(RecordMut::Order(order)).passed() {
            order.status_reason = Some(StatusReason::ORDER_VALIDATION_FAILED);
            return Ok(());
        }
        order.status_reason = Some(StatusReason::ORDER_VALIDATION_SUCCESS);
        let mut failed = false;
        for line in &mut order.lines {
            if !self.quantity.execute(RecordMut::Line(line)).passed() {
                line.status_reason = Some(StatusReason::ORDER_LINE_VALIDATION_FAILED);
                failed = true;
            }
        }
        if failed {
            order.status_reason = Some(StatusReason::ORDER_VALIDATION_FAILED);
            return Ok(());
        }
        for line in &mut order.lines {
            self.assignment.execute(RecordMut::Line(line));
        }
        for n in 0..order.lines.len() {
            let Some(source) = order.lines[n].fulfillment_source.clone() else {
                continue;
            };
            let index = match order
                .fulfillment_orders
                .iter()
                .position(|f| f.fulfillment_source == source)
            {
                Some(i) => i,
                None => {
                    let id = format!("{}-FO{}", order.id, order.fulfillment_orders.len() + 1);
                    order
                        .fulfillment_orders
                        .push(FulfillmentOrder::new(id, source));
                    order.fulfillment_orders.len() - 1
                }
            };
            let line = &order.lines[n];
            let fo_line = orderflow::document::FulfillmentOrderLine::new(
                line.id.clone(),
                line.product.clone(),
                line.quantity,
            );
            order.fulfillment_orders[index].lines.push(fo_line);
        }
        for (filter, client) in [
            (&self.seattle_filter, &self.seattle),
            (&self.chicago_filter, &self.chicago),
        ] {
            for n in 0..doc.read().fulfillment_orders.len() {
                let order = doc.read();
                let fo = &order.fulfillment_orders[n];
                if !filter.admits(RecordRef::FulfillmentOrder(order, fo)) {
                    continue;
                }
                let key = format!("{}/{}", order.id, fo.id);
                before_call(doc).await;
                client.send(&key, doc.read()).await?;
                doc.write().fulfillment_orders[n].status_reason =
                    Some(StatusReason::SENT_TO_FULFILLMENT);
            }
        }
        doc.write().status_reason = Some(StatusReason::SENT_TO_FULFILLMENT);
        Ok(())
    }
}

/// An order document as a hand-written pipeline holds it: in place (`&mut Order`), or
/// shared with a store and copied before a change while the store holds it (`Arc<Order>`),
/// as the engine holds it.
pub(crate) trait Document {
    fn read(&self) -> &Order;
    fn write(&mut self) -> &mut Order;
}

impl Document for &mut Order {
    fn read(&self) -> &Order {
        self
    }

    fn write(&mut self) -> &mut Order {
        self
    }
}

impl Document for Arc<Order> {
    fn read(&self) -> &Order {
        self
    }

    fn write(&mut self) -> &mut Order {
        Self::make_mut(self)
    }
}

impl Default for HandWritten {
    fn default() -> Self {
        Self::new()
    }
}

/// Times `iters` submits of `order(i)` on `rt`, on engines from `engine` replaced (untimed)
/// every `chunk` orders so the store stays the size a host's would; each engine takes one
/// untimed warm-up order (`order(u64::MAX)`) first.
pub(crate) fn time_submits<F, Fut>(
    rt: &tokio::runtime::Runtime,
    engine: F,
    order: fn(u64) -> Order,
    iters: u64,
    chunk: u64,
) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Engine>,
{
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let engine = rt.block_on(engine());
        // One untimed order first: the engine's first turn reads the catalog its setup
        // published (every flow compiled once), which a host pays once, not per order.
        rt.block_on(engine.submit(Event::new_order(order(u64::MAX))))
            .expect("warm-up order submitted");
        let events: Vec<Event> = (done..done + n)
            .map(|i| Event::new_order(order(i)))
            .collect();
        let start = Instant::now();
        rt.block_on(async {
            for event in events {
                engine.submit(event).await.expect("submitted");
            }
        });
        total += start.elapsed();
        drop(engine);
        done += n;
    }
    total
}

/// Times `iters` runs of a hand-written pipeline on `order(i)`, the documents built
/// beforehand as [`time_submits`] does.
pub(crate) fn time_hand_written<F>(
    rt: &tokio::runtime::Runtime,
    order: fn(u64) -> Order,
    iters: u64,
    chunk: u64,
    run: F,
) -> Duration
where
    F: AsyncFn(&mut Order),
{
    time_runs(rt, order, iters, chunk, || (), async |(), o| run(o).await)
}

/// Times `iters` runs of `run` on `input(i)`, the inputs built beforehand as
/// [`time_submits`] builds its events, with what `setup` makes (a store) replaced
/// (untimed) every `chunk` runs as [`time_submits`] replaces its engines.
pub(crate) fn time_runs<S, T, F>(
    rt: &tokio::runtime::Runtime,
    input: impl Fn(u64) -> T,
    iters: u64,
    chunk: u64,
    setup: impl Fn() -> S,
    run: F,
) -> Duration
where
    F: AsyncFn(&S, &mut T),
{
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let state = setup();
        let mut inputs: Vec<T> = (done..done + n).map(&input).collect();
        let start = Instant::now();
        rt.block_on(async {
            for i in &mut inputs {
                run(&state, i).await;
            }
        });
        total += start.elapsed();
        std::hint::black_box(&inputs);
        drop(state);
        done += n;
    }
    total
}
