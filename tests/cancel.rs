//! Cancellation-point enumeration: hosts run `submit` inside HTTP handlers that are
//! cancelled when the client goes away, and inside timeouts. For the six canonical flows,
//! with a store and providers that yield to the executor at every operation (as they do
//! across a network), a clean run counts the K points where `submit` returns `Pending`;
//! then for every k in 0..K the run drops the future it is driving at its k-th pending
//! point: a `submit`, or a round of the timer worker's `run_due` (the retry path).
//!
//! After each drop, only the running background work — the timer worker's `run_due`,
//! with time moving on — may act: no restart, no new event. It must leave nothing behind:
//! no path ready or running, no turn still marked under way. Then the host re-delivers the
//! event it got no acknowledgement for, and the run must end as the clean one did: the same
//! documents, timelines, executions and journeys, and every idempotency key applied once.

mod common;

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::task::Poll;

use common::canonical::{Scenario, World, scenarios};
use orderflow::clock::Clock;
use orderflow::document::{Order, OrderId, RecordId};
use orderflow::execution::ExecutionStatus;
use orderflow::journey::{Finding, Outcome};
use orderflow::provider::RequestKind;
use orderflow::testing::store::FaultyStore;
use orderflow::{Engine, MemoryStore, Store};

/// A timeline entry without its time.
type Entry = (u64, String, String, Option<RecordId>, Option<String>);
/// A journey row without its times.
type Row = (
    String,
    Vec<RecordId>,
    Outcome,
    u32,
    u32,
    Vec<String>,
    Vec<Finding>,
);
/// An execution by id, flow, version, round and status.
type Exec = (String, String, String, u32, ExecutionStatus);

/// One order as a run leaves it, times left out.
type OrderOutcome = (Order, Vec<Entry>, Vec<Exec>, Vec<Row>);

/// What a run ends with, times left out: a dropped turn is resumed later on the clock.
#[derive(Debug, PartialEq)]
struct Outcomes {
    orders: Vec<OrderOutcome>,
    effects: Vec<(String, RequestKind, String)>,
}

/// Polls `fut` to completion, or drops it when it is about to return the run's
/// cancel-point `Pending` (counted across every future the run drives).
async fn drive<F: Future>(fut: F, cancel: &mut Cancel) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    futures::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => {
            let n = cancel.seen;
            cancel.seen += 1;
            if cancel.at == Some(n) {
                cancel.dropped = true;
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }
    })
    .await
}

/// The timer worker's rounds, with time moving on to each timer, until none is set. A
/// round whose `run_due` reaches the cancel point is dropped there, and the worker goes on
/// with its next round.
async fn settle(engine: &Engine, world: &World, cancel: &mut Cancel) {
    for _ in 0..1_000 {
        let Some(at) = engine.next_due().await.unwrap() else {
            return;
        };
        let now = world.clock.now();
        if at > now {
            world.clock.advance(at.since(now));
        }
        if let Some(ran) = drive(engine.run_due(), cancel).await {
            ran.unwrap();
        }
    }
    panic!("timers kept coming");
}

/// Where a run drops a future: at the `at`-th pending point of the futures it drives.
struct Cancel {
    at: Option<usize>,
    seen: usize,
    dropped: bool,
}

struct Run {
    outcomes: Outcomes,
    /// Pending points seen.
    points: usize,
    dropped: bool,
}

async fn run(scenario: &Scenario, cancel_at: Option<usize>, base: Arc<dyn Store>) -> Run {
    let world = World::new();
    {
        let setup = world.engine(base.clone()).await.unwrap();
        for flow in &scenario.flows {
            setup.create_flow(flow.clone()).await.unwrap();
            setup.publish(&flow.name).await.unwrap();
        }
    }
    let store = Arc::new(FaultyStore::new(base.clone()));
    store.yielding(true);
    for provider in world.providers() {
        provider.yielding(true);
    }
    let engine = world.engine(store.clone()).await.unwrap();
    let mut cancel = Cancel {
        at: cancel_at,
        seen: 0,
        dropped: false,
    };
    for event in &scenario.events {
        loop {
            match drive(engine.submit(event.clone()), &mut cancel).await {
                Some(result) => {
                    result.unwrap_or_else(|e| panic!("{}: submit failed: {e}", scenario.name));
                    break;
                }
                None => {
                    // Only the running workers act: nothing may stay in flight.
                    settle(&engine, &world, &mut cancel).await;
                    for id in &scenario.orders {
                        let Some(state) = engine.order_state(&OrderId::from(*id)).await.unwrap()
                        else {
                            continue;
                        };
                        assert!(
                            !state.has_runnable() && state.resume_at().is_none(),
                            "{}: dropped at pending point {}: order {id} was left with work \
                             in flight that no worker takes up: {:?}",
                            scenario.name,
                            cancel_at.unwrap_or_default(),
                            state.executions()
                        );
                    }
                    // The host had no acknowledgement: it delivers the event again.
                }
            }
        }
    }
    settle(&engine, &world, &mut cancel).await;
    if cancel.dropped {
        // One more round after a dropped timer round: what it left is due now.
        settle(&engine, &world, &mut cancel).await;
    }

    let mut orders = Vec::new();
    for id in &scenario.orders {
        let id = OrderId::from(*id);
        let state = engine
            .order_state(&id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{}: order {id} is lost", scenario.name));
        let journey = engine.journey(&id).await.unwrap();
        orders.push((
            state.order().clone(),
            state
                .timeline()
                .iter()
                .map(|e| {
                    (
                        e.seq,
                        e.id.to_string(),
                        e.kind.to_string(),
                        e.record.clone(),
                        e.raised_by.clone(),
                    )
                })
                .collect(),
            state
                .executions()
                .iter()
                .map(|x| {
                    (
                        x.id().to_string(),
                        x.flow().to_owned(),
                        x.version().to_string(),
                        x.round(),
                        x.status(),
                    )
                })
                .collect(),
            journey
                .steps
                .into_iter()
                .map(|s| {
                    (
                        s.step, s.records, s.outcome, s.attempts, s.round, s.details, s.findings,
                    )
                })
                .collect(),
        ));
    }
    let mut effects = Vec::new();
    for p in world.providers() {
        for (key, n) in p.effects_per_key() {
            assert_eq!(n, 1, "{}: key {key} took effect {n} times", scenario.name);
        }
        effects.extend(
            p.effects()
                .into_iter()
                .map(|e| (e.order.clone(), e.kind, e.record.to_string())),
        );
    }
    effects.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    Run {
        outcomes: Outcomes { orders, effects },
        points: cancel.seen,
        dropped: cancel.dropped,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_future_dropped_at_any_await_leaves_every_order_resumable() {
    enumerate_cancel_points("memory", || async {
        Arc::new(MemoryStore::new()) as Arc<dyn Store>
    })
    .await;
}

/// The same enumeration on SQLite: every run on a fresh file.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "current_thread")]
async fn a_future_dropped_at_any_await_leaves_every_order_resumable_on_sqlite() {
    let fresh = common::fresh::FreshSqlite::new();
    enumerate_cancel_points("SQLite", || fresh.open()).await;
}

/// The same enumeration on PostgreSQL: every run on a fresh schema of the server at
/// `ORDERFLOW_PG_URL` (skipped without it).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_dropped_at_any_await_leaves_every_order_resumable_on_postgres() {
    let Some(fresh) = common::fresh::FreshPostgres::from_env("cancel") else {
        return;
    };
    enumerate_cancel_points("PostgreSQL", || fresh.open()).await;
    fresh.drop_all().await;
}

/// Drops a turn's future at every await of every scenario, each run on a fresh store from
/// `open`, and checks every order ends as the run without a drop does.
async fn enumerate_cancel_points<F, Fut>(backend: &str, open: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for scenario in scenarios() {
        let clean = run(&scenario, None, open().await).await;
        let k = clean.points;
        assert!(
            k > 0,
            "{}: a yielding store makes submit pend",
            scenario.name
        );
        for (order, _, executions, _) in &clean.outcomes.orders {
            assert!(
                executions.iter().all(|x| x.4 == ExecutionStatus::Completed),
                "{}: order {} completes without cancellation",
                scenario.name,
                order.id
            );
        }
        let mut covered = 0;
        let mut unreached = 0;
        for point in 0..k {
            let cancelled = run(&scenario, Some(point), open().await).await;
            assert_eq!(
                cancelled.outcomes, clean.outcomes,
                "{}: a submit dropped at pending point {point} changed the result",
                scenario.name
            );
            if cancelled.dropped {
                covered += 1;
            } else {
                // A store with threads of its own (SQLite's writer, PostgreSQL's pool) pends
                // as often as its threads are slower than the turn: a run may end before
                // the point. It still ended as the clean run did. In memory, every run
                // pends at the same points.
                assert_ne!(
                    backend, "memory",
                    "{}: the drop at pending point {point} happened",
                    scenario.name
                );
                unreached += 1;
            }
        }
        // Straight to the process's stderr, past the test harness's capture: `cargo test`
        // shows the coverage of every run.
        let _ = writeln!(
            std::io::stderr(),
            "cancellation on {backend}: {}: {covered}/{k} cancel points covered ({} effects; \
             {unreached} not reached in their run)",
            scenario.name,
            clean.outcomes.effects.len()
        );
        assert!(
            covered * 2 > k,
            "{}: most points are reached ({covered}/{k})",
            scenario.name
        );
    }
}
