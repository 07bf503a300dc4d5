//! One bad order among healthy ones, on a SQLite file: an order row that no longer
//! decodes and a draft flow row that no longer decodes are written into the file next to
//! healthy orders (one with a provider call in flight, some waiting on retry timers). An
//! engine opened on the file starts, reports the draft, sets the bad order aside with its
//! reason, and recovers, retries and takes events for every other order.

#![cfg(feature = "sqlite")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::pen_order as new_order;
use orderflow::clock::{ManualClock, Timestamp};
use orderflow::document::OrderId;
use orderflow::engine::Config;
use orderflow::execution::ExecutionStatus;
use orderflow::flow::RetryPolicy;
use orderflow::store::SqliteStore;
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::{Engine, Event, EventKind};

struct World {
    clock: ManualClock,
    erp: ScriptedProvider,
    billing: ScriptedProvider,
}

impl World {
    async fn engine(&self, path: &Path) -> Engine {
        Engine::builder()
            .store(SqliteStore::open(path).unwrap())
            .clock(self.clock.clone())
            .config(
                Config::default()
                    .with_retry(RetryPolicy::new(3, Duration::from_millis(100)).with_jitter(0.0))
                    .with_timeout(Duration::from_secs(5)),
            )
            .provider(self.erp.clone())
            .provider(self.billing.clone())
            .build()
            .await
            .unwrap()
    }
}

async fn status(engine: &Engine, id: &str) -> Vec<ExecutionStatus> {
    engine
        .order_state(&OrderId::from(id))
        .await
        .unwrap()
        .map(|s| s.executions().iter().map(|x| x.status()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_row_among_healthy_orders_is_set_aside_and_the_rest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orderflow.db");
    let clock = ManualClock::new(Timestamp::from_millis(1_000));
    let world = World {
        erp: ScriptedProvider::new("ERP", clock.clone()),
        billing: ScriptedProvider::new("Billing", clock.clone()),
        clock,
    };
    {
        let engine = world.engine(&path).await;
        common::publish_ship_and_bill(&engine).await;
        engine
            .create_flow(common::ship_and_bill(
                "Draft",
                semver::Version::new(1, 0, 0),
            ))
            .await
            .unwrap();
        // Healthy orders waiting on a retry of the ERP call, and the future poison.
        for id in ["RETRY-1", "RETRY-2", "POISON"] {
            world
                .erp
                .script_key(id, [Behavior::Retryable("ERP restarting".into())]);
            engine.submit(new_order(id)).await.unwrap();
        }
        // One order's call is in flight when the process goes away.
        world.erp.script_key("INFLIGHT", [Behavior::Hang]);
        let running = engine.clone();
        let call = tokio::spawn(async move { running.submit(new_order("INFLIGHT")).await });
        while !world
            .erp
            .calls()
            .iter()
            .any(|c| c.idempotency_key.contains("INFLIGHT"))
        {
            tokio::task::yield_now().await;
        }
        call.abort();
        let _ = call.await;
    }
    // The bad rows, written next to the healthy ones.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        // An execution row of a format no orderflow wrote.
        let changed = conn
            .execute(
                "UPDATE executions SET state = x'7f00' WHERE order_id = 'POISON'",
                [],
            )
            .unwrap();
        assert_eq!(changed, 1);
        conn.execute(
            "UPDATE flows SET json = '{\"name\": \"Draft\", \"steps\": \"not steps\"}' \
             WHERE name = 'Draft'",
            [],
        )
        .unwrap();
    }

    let engine = world.engine(&path).await;
    let problems = engine.catalog_problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].name.as_str(), problems[0].what),
        ("Draft", "flow")
    );
    assert!(engine.flow("Ship and bill").is_some());

    let report = engine.recover().await.unwrap();
    println!("recovery: {report:?}");
    assert_eq!(
        report.resumed, 1,
        "the order with a call in flight: {report:?}"
    );
    assert_eq!(report.set_aside.len(), 1, "{report:?}");
    assert_eq!(report.set_aside[0].order, OrderId::from("POISON"));
    assert!(report.set_aside[0].reason.contains("decode"), "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        status(&engine, "INFLIGHT").await,
        [ExecutionStatus::Waiting]
    );

    // The timers go on for the healthy orders; the poison one is off them.
    world.clock.advance(Duration::from_secs(1));
    assert_eq!(engine.run_due().await.unwrap(), 2);
    for id in ["RETRY-1", "RETRY-2", "INFLIGHT"] {
        assert_eq!(
            status(&engine, id).await,
            [ExecutionStatus::Waiting],
            "{id}"
        );
        engine
            .submit(Event::new(format!("shipped-{id}"), EventKind::SHIPPED, id))
            .await
            .unwrap();
        assert_eq!(
            status(&engine, id).await,
            [ExecutionStatus::Completed],
            "{id}"
        );
    }
    assert_eq!(engine.next_due().await.unwrap(), None);
    assert_eq!(
        engine
            .set_aside_orders()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.order)
            .collect::<Vec<_>>(),
        [OrderId::from("POISON")]
    );
    // A second recovery leaves it aside.
    let again = engine.recover().await.unwrap();
    assert!(
        again.set_aside.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );
}
