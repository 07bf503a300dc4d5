//! Cost per event on one order: the 10,000th event on an order costs about what its second
//! does (goal: within 1.2x).
//!
//! The reference lab is published on an engine on the memory store, and one lab order
//! submitted (its "New Order" runs the flow to completion). Then further events go to that
//! same order, each with a unique id and a kind no flow takes ("Note"), so each one is a
//! whole turn that loads the order, routes the event, puts it on the timeline and commits,
//! and nothing else. Two functions of one group, their events built beforehand:
//!
//! - `first`: events 2 to 101 on a fresh order (a new order per batch of 100, submitted
//!   untimed; the engine replaced every 100 orders).
//! - `10,000th`: events 10,000 onward on an order prepared untimed with 9,999 events, at
//!   most 200 timed per prepared order, so the timeline stays between 9,999 and 10,199
//!   entries. Each prepared order is on a fresh engine (the memory it holds goes with it).
//!   Preparing it through `submit` would cost as much as the events it prepares, so the
//!   events 3 to 9,999 are written through the store: the engine submits the lab order
//!   and event 2, and one commit appends 9,997 copies of event 2's timeline entry, each
//!   with its own id, position and time, which is what `submit` would have stored for them
//!   (the bench checks that the engine then takes event 10,000 as the 10,000th).
//!
//! Both engines allow 19,998 entries on an order's timeline (the default limit is 10,000,
//! which the lab order's five outcome events and 10,000 submitted ones would pass).
//!
//! The figure is the ratio of the medians (`events_on_one_order/10,000th` over
//! `events_on_one_order/first`).
//!
//! ```text
//! cargo bench --bench events
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::document::OrderId;
use orderflow::limits::Limits;
use orderflow::store::{ChangeSet, Store};
use orderflow::{Config, Engine, Event, EventKind, MemoryStore};

use support::{lab_engine_with, lab_order};

/// Events timed on one fresh order (its events 2 to 101).
const FIRST: u64 = 100;
/// Fresh orders an engine takes before it is replaced.
const ORDERS_PER_ENGINE: u64 = 100;
/// Events on the prepared order before the timed ones.
const PREPARED: u64 = 9_999;
/// Events timed on one prepared order.
const LATE: u64 = 200;

/// The lab on a fresh memory store, with room on an order's timeline for the events timed
/// (the default limit is 10,000 entries).
async fn roomy_engine(store: Arc<MemoryStore>) -> Engine {
    let limits = Limits::default().with_max_timeline_events(2 * PREPARED as usize);
    lab_engine_with(store, Config::default().with_limits(limits)).await
}

/// A kind no flow of the lab takes.
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
fn time_first(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    let mut orders = 0;
    let mut engine = rt.block_on(roomy_engine(Arc::default()));
    while done < iters {
        if orders == ORDERS_PER_ENGINE {
            engine = rt.block_on(roomy_engine(Arc::default()));
            orders = 0;
        }
        let order = lab_order(orders);
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

/// An engine holding one lab order that has had `PREPARED` events, and how many outcome
/// events its flow put on its timeline besides.
async fn prepared() -> (Engine, OrderId, u64) {
    let store = Arc::new(MemoryStore::new());
    let engine = roomy_engine(Arc::clone(&store)).await;
    let order = lab_order(0);
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
fn time_late(rt: &tokio::runtime::Runtime, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let (engine, id, outcomes) = rt.block_on(prepared());
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
    group.bench_function("first", |b| b.iter_custom(|iters| time_first(&rt, iters)));
    group.bench_function("10,000th", |b| b.iter_custom(|iters| time_late(&rt, iters)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
