//! Background work started with one call: retries run without the host knowing about
//! timers, a previous run's work in flight is recovered, a shared store's worker claims
//! queued events, and shutdown drains the turn under way before it returns.

#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::pen_order;
use orderflow::clock::{ManualClock, SystemClock, Timestamp};
use orderflow::execution::ExecutionStatus;
use orderflow::flow::RetryPolicy;
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::store::SharedMemoryStore;
use orderflow::testing::provider::{Behavior, ScriptedProvider};
use orderflow::{Config, Engine, MemoryStore, Store};

fn config() -> Config {
    Config::default()
        .with_retry(RetryPolicy::new(3, Duration::from_millis(50)).with_jitter(0.0))
        .with_timeout(Duration::from_secs(5))
        .with_timer_poll(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_run_in_the_background_without_the_host_knowing_about_timers() {
    let erp = ScriptedProvider::new("ERP", SystemClock);
    let billing = ScriptedProvider::new("Billing", SystemClock);
    erp.then(Behavior::Retryable("ERP restarting".into()));
    let engine = Engine::builder()
        .config(config())
        .provider(erp.clone())
        .provider(billing)
        .build()
        .await
        .unwrap();
    let background = engine.start();
    common::publish_ship_and_bill(&engine).await;
    engine.submit(pen_order("SO-1")).await.unwrap();
    // The first call failed; the retry runs on its own.
    let state = engine.settled("SO-1").await.unwrap();
    assert_eq!(erp.calls().len(), 2);
    assert_eq!(erp.effects().len(), 1);
    assert_eq!(state.executions()[0].status(), ExecutionStatus::Waiting);
    background.shutdown().await.unwrap();
}

/// A billing system that holds each call until the test lets it go.
#[derive(Debug, Clone)]
struct Gated {
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Semaphore>,
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl Provider for Gated {
    fn name(&self) -> &str {
        "Billing"
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendInvoice]
    }
    async fn call(&self, _: Request<'_>, _: &CallContext<'_>) -> Result<Reply, ProviderError> {
        let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n == 0 {
            return Err(ProviderError::unavailable("billing restarting"));
        }
        self.entered.notify_one();
        let _ = self.release.acquire().await.unwrap();
        Ok(Reply::Done)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_drains_the_turn_under_way() {
    let clock = ManualClock::new(Timestamp::from_millis(1_000));
    let erp = ScriptedProvider::new("ERP", clock.clone());
    let billing = Gated {
        entered: Arc::new(tokio::sync::Notify::new()),
        release: Arc::new(tokio::sync::Semaphore::new(0)),
        calls: Arc::default(),
    };
    let engine = Engine::builder()
        .clock(clock.clone())
        .config(config())
        .provider(erp)
        .provider(billing.clone())
        .build()
        .await
        .unwrap();
    common::publish_ship_and_bill(&engine).await;
    engine.submit(pen_order("SO-1")).await.unwrap();
    engine.submit(common::shipped("SO-1")).await.unwrap();
    // The invoice failed once and waits on its retry timer.
    assert!(engine.next_due().await.unwrap().is_some());

    let background = engine.start();
    clock.advance(Duration::from_millis(50));
    // The timer worker runs the retry; the call is held.
    billing.entered.notified().await;
    let shutdown = tokio::spawn(background.shutdown());
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the turn under way"
    );
    billing.release.add_permits(1);
    shutdown.await.unwrap().unwrap();
    // The turn committed before shutdown returned.
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    assert_eq!(state.executions()[0].status(), ExecutionStatus::Completed);
    assert_eq!(engine.next_due().await.unwrap(), None);
}

#[tokio::test(flavor = "current_thread")]
async fn a_start_recovers_what_a_dropped_turn_left_in_flight() {
    let clock = ManualClock::new(Timestamp::from_millis(1_000));
    let erp = ScriptedProvider::new("ERP", clock.clone());
    let billing = ScriptedProvider::new("Billing", clock.clone());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let build = || {
        Engine::builder()
            .store(store.clone())
            .clock(clock.clone())
            .config(config())
            .provider(erp.clone())
            .provider(billing.clone())
            .build()
    };
    {
        let engine = build().await.unwrap();
        common::publish_ship_and_bill(&engine).await;
        erp.then(Behavior::Hang);
        let running = engine.clone();
        let call = tokio::spawn(async move { running.submit(pen_order("SO-1")).await });
        while erp.calls().is_empty() {
            tokio::task::yield_now().await;
        }
        // The process goes away with the call in flight.
        call.abort();
        let _ = call.await;
    }
    let engine = build().await.unwrap();
    let background = engine.start();
    let state = engine.settled("SO-1").await.unwrap();
    assert_eq!(state.executions()[0].status(), ExecutionStatus::Waiting);
    assert_eq!(erp.effects().len(), 1);
    background.shutdown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_shared_store_the_background_claims_queued_events() {
    let clock = ManualClock::new(Timestamp::from_millis(1_000));
    let erp = ScriptedProvider::new("ERP", clock.clone());
    let billing = ScriptedProvider::new("Billing", clock.clone());
    let store = SharedMemoryStore::new(clock.clone());
    let engine = Engine::builder()
        .shared_store(store.handle())
        .clock(clock.clone())
        .config(config())
        .provider(erp.clone())
        .provider(billing)
        .build()
        .await
        .unwrap();
    common::publish_ship_and_bill(&engine).await;
    let background = engine.start();
    engine.enqueue(pen_order("SO-1")).await.unwrap();
    while erp.effects().is_empty() {
        tokio::task::yield_now().await;
    }
    background.shutdown().await.unwrap();
    assert_eq!(store.queued().await, 0);
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    assert_eq!(state.executions()[0].status(), ExecutionStatus::Waiting);
}
