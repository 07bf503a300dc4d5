//! Cost per event on one order: the 10,000th event on an order costs about what its second
//! does (goal: within 1.2x).
//!
//! An engine on the memory store with a flow published, and one order submitted; then
//! further events go to that same order, each with a unique id and a kind no flow takes
//! ("Note"), so each one is a whole turn that loads the order, routes the event against
//! the order's executions, puts it on the timeline and commits, and nothing else. Two
//! scenarios:
//!
//! - the reference lab (`support::lab_order`): the order's "New Order" runs the flow to
//!   completion, so the events meet a completed execution;
//! - `waiting/`: "Wait for shipment" (`support::waiting`), whose execution validates the
//!   order and then waits for "Shipped", so every event meets a live execution whose
//!   waiting step looks at it and does not take it.
//!
//! Two functions per scenario, in one group, their events built beforehand:
//!
//! - `first`: events 2 to 101 on a fresh order (a new order per batch of 100, submitted
//!   untimed; the engine replaced every 100 orders).
//! - `10,000th`: events 10,000 onward on an order prepared untimed with 9,999 events, at
//!   most 200 timed per prepared order, so the timeline stays between 9,999 and 10,199
//!   events. Each prepared order is on a fresh engine (the memory it holds goes with it).
//!   Preparing it through `submit` would cost as much as the events it prepares, so
//!   events 3 to 9,999 are written through the store: the engine takes the order and
//!   event 2, and one commit appends 9,997 copies of event 2's timeline entry, each with
//!   its own id and position (and event 2's arrival time), which is what `submit` would
//!   have stored for them. The bench checks afterwards that the engine put the timed
//!   events at the positions that follow, and that the execution is still waiting in the
//!   `waiting/` scenario.
//!
//! The flow's outcome events are on the timeline too (five for a lab order), so both
//! engines allow 19,998 entries on an order's timeline; the default limit, 10,000, would
//! refuse the lab order's 9,996th event.
//!
//! The figures are the ratios of the medians: `events_on_one_order/10,000th` over
//! `events_on_one_order/first`, and `waiting/10,000th` over `waiting/first`.
//!
//! ```text
//! cargo bench --bench events
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::document::{Order, OrderId};
use orderflow::limits::Limits;
use orderflow::store::{ChangeSet, Store};
use orderflow::{Config, Engine, Event, EventKind, MemoryStore};

use support::{lab_engine_with, lab_order, one_line_order, waiting};

/// Events timed on one fresh order (its events 2 to 101).
const FIRST: u64 = 100;
/// Fresh orders an engine takes before it is replaced.
const ORDERS_PER_ENGINE: u64 = 100;
/// Events on the prepared order before the timed ones.
const PREPARED: u64 = 9_999;
/// Events timed on one prepared order.
const LATE: u64 = 200;

/// What the order goes through before its further events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The reference lab: the order's execution completes.
    Lab,
    /// "Wait for shipment": the order's execution waits for "Shipped".
    Waiting,
}

impl Scenario {
    /// The scenario's engine on `store`, with room on an order's timeline for the events
    /// timed (the default limit is 10,000 entries).
    async fn engine(self, store: Arc<MemoryStore>) -> Engine {
        let limits = Limits::default().with_max_timeline_events(2 * PREPARED as usize);
        let config = Config::default().with_limits(limits);
        match self {
            Self::Lab => lab_engine_with(store, config).await,
            Self::Waiting => waiting::engine_with(store, config).await,
        }
    }

    /// The scenario's order `SO-{i}`.
    fn order(self, i: u64) -> Order {
        match self {
            Self::Lab => lab_order(i),
            Self::Waiting => one_line_order(i),
        }
    }
}

/// A kind no flow takes.
fn note() -> EventKind {
    EventKind::new("Note")
}

/// Events `from..to` (by position on the order's timeline) for `order`, each with its own
/// id.
fn notes(order: &OrderId, from: u64, to: u64) -> Vec<Event> {
    (from..to)
        .map(|n| Event::new(format!("note-{n}"), note(), order.clone()))
        .collect()
}

/// Submits `events` on `rt` and returns how long they took.
fn time_events(rt: &tokio::runtime::Runtime, engine: &Engine, events: Vec<Event>) -> Duration {
    let start = Instant::now();
    rt.block_on(async {
        for event in events {
            engine.submit(event).await.expect("submitted");
        }
    });
    start.elapsed()
}

/// Times `iters` events 2, 3, ... on fresh orders, `FIRST` per order.
fn time_first(rt: &tokio::runtime::Runtime, scenario: Scenario, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    let mut orders = 0;
    let mut engine = rt.block_on(scenario.engine(Arc::default()));
    while done < iters {
        if orders == ORDERS_PER_ENGINE {
            engine = rt.block_on(scenario.engine(Arc::default()));
            orders = 0;
        }
        let order = scenario.order(orders);
        let id = order.id.clone();
        rt.block_on(engine.submit(Event::new_order(order)))
            .expect("submitted");
        orders += 1;
        let n = FIRST.min(iters - done);
        total += time_events(rt, &engine, notes(&id, 2, 2 + n));
        done += n;
    }
    total
}

/// An engine holding one order of `scenario` that has had `PREPARED` events, and how many outcome
/// events its flow put on its timeline besides.
async fn prepared(scenario: Scenario) -> (Engine, OrderId, u64) {
    let store = Arc::new(MemoryStore::new());
    let engine = scenario.engine(Arc::clone(&store)).await;
    let order = scenario.order(0);
    let id = order.id.clone();
    engine
        .submit(Event::new_order(order))
        .await
        .expect("submitted");
    for event in notes(&id, 2, 3) {
        engine.submit(event).await.expect("submitted");
    }
    let mut state = store.load(&id).await.expect("loads").expect("stored");
    // The lab order's outcome events are on the timeline too, after its "New Order".
    let outcomes = state.timeline().len() as u64 - 2;
    let template = state.timeline().last().expect("event 2").clone();
    assert_eq!(
        (template.kind.clone(), template.seq),
        (note(), 2 + outcomes)
    );
    let entries: Vec<_> = (3..=PREPARED)
        .map(|n| {
            let mut entry = template.clone();
            entry.id = format!("note-{n}").into();
            entry.seq = n + outcomes;
            entry
        })
        .collect();
    let expected = state.revision();
    state.set_revision(expected + 1);
    state.timeline_mut().extend(entries.iter().cloned());
    let mut change = ChangeSet::indexes(Some(expected), &state);
    change.timeline = entries;
    store.commit(change).await.expect("committed");
    (engine, id, outcomes)
}

/// Times `iters` events 10,000, 10,001, ... on prepared orders, `LATE` per order.
fn time_late(rt: &tokio::runtime::Runtime, scenario: Scenario, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let (engine, id, outcomes) = rt.block_on(prepared(scenario));
        let n = LATE.min(iters - done);
        let from = PREPARED + 1;
        total += time_events(rt, &engine, notes(&id, from, from + n));
        // The timed events were the order's events 10,000 onward.
        let state = rt
            .block_on(engine.order_state(id.clone()))
            .expect("loads")
            .expect("stored");
        let last = state.timeline().last().expect("events");
        let events = PREPARED + n;
        assert_eq!(last.id.as_str(), format!("note-{events}"));
        assert_eq!(last.seq, events + outcomes);
        assert_eq!(state.has_live(), scenario == Scenario::Waiting);
        done += n;
    }
    total
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("events_on_one_order");
    group.sample_size(20);
    for (scenario, prefix) in [(Scenario::Lab, ""), (Scenario::Waiting, "waiting/")] {
        group.bench_function(format!("{prefix}first"), |b| {
            b.iter_custom(|iters| time_first(&rt, scenario, iters))
        });
        group.bench_function(format!("{prefix}10,000th"), |b| {
            b.iter_custom(|iters| time_late(&rt, scenario, iters))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
