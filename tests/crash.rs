//! Crash-point enumeration: for six canonical flows, a fault-free run counts the K store
//! operations the scenario makes; then for every i in 0..K the store "crashes" at operation
//! i — before applying it, and again after applying it — the engine is dropped, a new one is
//! built on the same store, the host re-delivers the events it had no acknowledgement for,
//! and everything runs to quiescence. Every run must converge to the fault-free result: no
//! order lost, equal final states and journeys, each idempotency key applied exactly once,
//! and at most one raw duplicate provider call per crash.

mod common;

use std::sync::Arc;

use common::canonical::{Final, Scenario, World, scenarios};
use orderflow::clock::Clock;
use orderflow::document::OrderId;
use orderflow::execution::ExecutionStatus;
use orderflow::testing::store::{Fault, FaultyStore};
use orderflow::{Engine, MemoryStore, Store};

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
        orders.push((
            state.order().clone(),
            state.timeline().to_vec(),
            state.executions().to_vec(),
            journey.steps,
        ));
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

/// The same enumeration on SQLite: every run on a fresh file.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "current_thread")]
async fn every_crash_point_converges_on_sqlite() {
    let fresh = common::fresh::FreshSqlite::new();
    enumerate_crash_points("SQLite", || fresh.open()).await;
}

/// The same enumeration on PostgreSQL: every run on a fresh schema of the server at
/// `ORDERFLOW_PG_URL` (skipped without it), all dropped at the end.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_converges_on_postgres() {
    let Some(fresh) = common::fresh::FreshPostgres::from_env("crash") else {
        return;
    };
    enumerate_crash_points("PostgreSQL", || fresh.open()).await;
    fresh.drop_all().await;
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
