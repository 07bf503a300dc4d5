//! Engine against hand-written code on the reference scenario of `DOMAIN.md` (IOM's lab):
//! validate the header and lines, assign sources by policy, create fulfillment orders, send
//! each to its store. The engine runs the lab's published policies and flow on the memory
//! store with no-op providers (`support::lab_order`: quantity 110 ships from Seattle, 10
//! from Chicago, by turns). Two baselines run in the same run, each a hand-written async
//! function doing the same policy evaluation and provider calls in the same order
//! (`support::HandWritten`):
//!
//! - `hand_written`: nothing more. No store, no journey, no timeline.
//! - `hand_written_durable`: the same, and the durable work the engine does, on the same
//!   `MemoryStore` through the public `Store` trait. Before the benchmark, the engine runs
//!   one Seattle and one Chicago order on a store that keeps a copy of every `ChangeSet`
//!   committed (`support::recording`), and the bench checks that what it recorded is what
//!   the store then gives back (`load`, `journey`). Those change sets are the templates:
//!   the engine commits twice per lab order, once before its one provider call (creating
//!   the order: the document, the execution, the timeline so far, the journey rows so far,
//!   a resume timer) and once at the end (the document again, the execution, the last
//!   outcome event and journey rows, completed). The baseline commits the same number of
//!   times at the same points, per order: before the provider call the template's first
//!   change set, after it the template's last, each one cloned (executions, timeline
//!   entries, journey rows: clones of the engine's own, so the same rows) with what the
//!   public API lets it set for the order filled in: the order id, the document (its own,
//!   held in an `Arc` and copied before a change while the store holds it, as the engine
//!   does), each timeline entry's event id (built from the order id as the engine names
//!   them) and arrival time, and the resume timer, next wake and completion time from
//!   one clock read per commit. It reads the clock once per commit and builds the
//!   "New Order" event id in the timed region (the engine's was built with the event,
//!   before the timer started).
//!
//!   What it does not do: it cannot set what the crate keeps private, so every order's
//!   execution carries the template order's id (`ExecutionId::order`) and its start and end
//!   times, and its journey rows carry the template's times; the store does not look at
//!   them, and they are the same size as the order's own would be. It does not compute the
//!   change set's indexes (live, next wake, completed) from a whole state as the engine
//!   does (`ChangeSet::indexes`): hand-written code knows them from where it is, and takes
//!   them from the template. It has no event routing, no flow plan, no de-duplication of
//!   event ids, no per-order lock: what it measures is the durable work alone, so that
//!   `engine / hand_written_durable` is the engine's overhead over doing the same writes by
//!   hand.
//!
//! Goal: the engine within 1.5x of `hand_written_durable`; the README states both ratios
//! (criterion prints the medians: `reference_lab/engine`, `reference_lab/hand_written`,
//! `reference_lab/hand_written_durable`).
//!
//! ```text
//! cargo bench --bench reference
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use orderflow::clock::Timestamp;
use orderflow::document::Order;
use orderflow::store::{ChangeSet, Store};
use orderflow::{Event, MemoryStore};

use support::recording::Recording;
use support::{
    HandWritten, lab_engine, lab_engine_on, lab_order, time_hand_written, time_runs, time_submits,
};

/// Orders an engine (or the durable baseline's store) holds before it is replaced by a
/// fresh one.
const CHUNK: u64 = 10_000;

/// One engine commit for a lab order, as the durable baseline repeats it.
#[derive(Debug)]
struct Commit {
    /// The change set the engine committed for the template order.
    change: ChangeSet,
    /// Each timeline entry's event id around the order id: `new:` and `` for `new:SO-0`.
    ids: Vec<(String, String)>,
    /// The resume timer and next wake, after the commit's clock reading.
    resume_in: Option<Duration>,
    wake_in: Option<Duration>,
}

/// What the engine commits for one lab order, in commit order.
#[derive(Debug)]
struct Template {
    commits: Vec<Commit>,
}

impl Template {
    /// Runs the engine on `lab_order(i)` on a store that records its commits, checks that
    /// the recorded change sets are what the store then holds, and keeps them.
    async fn record(i: u64) -> Self {
        let store = Arc::new(Recording::new(MemoryStore::new()));
        let engine = lab_engine_on(Arc::clone(&store)).await;
        store.take();
        let order = lab_order(i);
        let id = order.id.clone();
        engine
            .submit(Event::new_order(order))
            .await
            .expect("submitted");
        let changes = store.take();
        let state = store.load(&id).await.expect("loads").expect("stored");
        assert_eq!(state.revision(), changes.len() as u64);
        let timeline: Vec<_> = changes.iter().flat_map(|c| c.timeline.clone()).collect();
        assert_eq!(state.timeline(), timeline.as_slice());
        let journey: Vec<_> = changes.iter().flat_map(|c| c.journey.clone()).collect();
        assert_eq!(store.journey(&id).await.expect("journey"), journey);
        assert_eq!(
            changes.last().and_then(|c| c.document.as_deref()),
            Some(state.order())
        );
        let commits = changes
            .into_iter()
            .map(|change| {
                let ids = change
                    .timeline
                    .iter()
                    .map(|entry| {
                        let (before, after) = entry
                            .id
                            .as_str()
                            .split_once(id.as_str())
                            .expect("event ids name the order");
                        (before.to_owned(), after.to_owned())
                    })
                    .collect();
                let now = change.timeline.iter().map(|e| e.at).max();
                let after = |t: Option<Timestamp>| {
                    t.map(|t| t.since(now.expect("a timer is set after an event")))
                };
                Commit {
                    resume_in: after(change.resume_at),
                    wake_in: after(change.next_wake),
                    ids,
                    change,
                }
            })
            .collect();
        Self { commits }
    }
}

/// The reference lab written by hand, committing to a memory store what the engine
/// commits (see the module docs).
#[derive(Debug)]
struct Durable {
    hand: HandWritten,
    /// The Seattle order's and the Chicago order's commits.
    templates: [Template; 2],
}

impl Durable {
    async fn new() -> Self {
        Self {
            hand: HandWritten::new(),
            templates: [Template::record(0).await, Template::record(1).await],
        }
    }

    /// Runs `order` through the hand-written lab, committing to `store` as the engine
    /// does for the order `template`.
    async fn run(&self, store: &MemoryStore, template: usize, order: Order) {
        let commits = &self.templates[template].commits;
        let mut doc = Arc::new(order);
        let mut next = 0;
        self.hand
            .run_with(&mut doc, async |doc| {
                commit(store, &commits[next], doc).await;
                next += 1;
            })
            .await
            .expect("sent");
        assert_eq!(next + 1, commits.len(), "one commit per provider call");
        commit(store, &commits[next], &doc).await;
    }
}

/// Commits `template` for the order `doc`: the template's change set with the order's id,
/// document, event ids and times.
async fn commit(store: &MemoryStore, template: &Commit, doc: &Arc<Order>) {
    let now = Timestamp::from(SystemTime::now());
    let mut change = template.change.clone();
    change.order = doc.id.clone();
    if change.document.is_some() {
        change.document = Some(Arc::clone(doc));
    }
    for (entry, (before, after)) in change.timeline.iter_mut().zip(&template.ids) {
        let mut id = String::with_capacity(before.len() + doc.id.as_str().len() + after.len());
        id.push_str(before);
        id.push_str(doc.id.as_str());
        id.push_str(after);
        entry.id = id.into();
        entry.at = now;
    }
    change.resume_at = template.resume_in.map(|d| now.after(d));
    change.next_wake = template.wake_in.map(|d| now.after(d));
    change.completed_at = change.completed_at.map(|_| now);
    store.commit(change).await.expect("committed");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("reference_lab");
    group.bench_function("engine", |b| {
        b.iter_custom(|iters| time_submits(&rt, lab_engine, lab_order, iters, CHUNK));
    });
    let hand = HandWritten::new();
    group.bench_function("hand_written", |b| {
        b.iter_custom(|iters| {
            time_hand_written(&rt, lab_order, iters, CHUNK, async |o| {
                hand.run(o).await.expect("sent");
            })
        });
    });
    let durable = rt.block_on(Durable::new());
    // The baseline stores what the engine stores: the same timeline and journey.
    for (i, template) in durable.templates.iter().enumerate() {
        let store = MemoryStore::new();
        let order = lab_order(i as u64 + 2);
        let id = order.id.clone();
        rt.block_on(durable.run(&store, i, order));
        let state = rt
            .block_on(store.load(&id))
            .expect("loads")
            .expect("stored");
        let kinds = |t: &[orderflow::execution::TimelineEntry]| -> Vec<String> {
            t.iter().map(|e| e.kind.to_string()).collect()
        };
        let expected: Vec<_> = template
            .commits
            .iter()
            .flat_map(|c| c.change.timeline.clone())
            .collect();
        assert_eq!(kinds(state.timeline()), kinds(&expected));
        let rows: Vec<_> = template
            .commits
            .iter()
            .flat_map(|c| c.change.journey.clone())
            .collect();
        assert_eq!(rt.block_on(store.journey(&id)).expect("journey"), rows);
    }
    group.bench_function("hand_written_durable", |b| {
        b.iter_custom(|iters| {
            time_runs(
                &rt,
                |i| (i as usize % 2, Some(lab_order(i))),
                iters,
                CHUNK,
                MemoryStore::new,
                async |store, (template, order)| {
                    let order = order.take().expect("each order runs once");
                    durable.run(store, *template, order).await;
                },
            )
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
