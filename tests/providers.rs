//! Provider calls on virtual time: retries on durable timers with their exact schedule,
//! timeouts, hangs, panics, fatal errors, jitter and idempotency keys.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use orderflow::action::{Action, ActionError, action_fn};
use orderflow::clock::{Clock, ManualClock, Timestamp};
use orderflow::document::{Order, OrderLine, RecordId};
use orderflow::engine::Config;
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::journey::Journey;
use orderflow::provider::{
    CallContext, Provider, ProviderError, ProviderErrorKind, Reply, Request, RequestKind,
};
use orderflow::testing::{drive, settle};
use orderflow::{ActionKind, Engine, Event, EventKind, Outcome};

/// What the scripted provider does on one attempt.
#[derive(Debug, Clone, Copy)]
enum Script {
    Ok,
    Retryable,
    Fatal,
    Hang,
    Panic,
    /// Answers OK after this long on the engine's clock.
    Slow(u64),
}

/// A billing provider that follows a script, one entry per call, recording when each call
/// started and with which key; after the script it answers OK.
#[derive(Debug, Clone)]
struct Scripted {
    clock: ManualClock,
    script: Arc<Mutex<Vec<Script>>>,
    calls: Arc<Mutex<Vec<(u64, String, u32)>>>,
}

impl Scripted {
    fn new(clock: &ManualClock, script: &[Script]) -> Self {
        Self {
            clock: clock.clone(),
            script: Arc::new(Mutex::new(script.iter().rev().cloned().collect())),
            calls: Arc::default(),
        }
    }

    fn starts(&self) -> Vec<u64> {
        self.calls.lock().unwrap().iter().map(|c| c.0).collect()
    }

    fn keys(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.1.clone())
            .collect()
    }
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        "Billing"
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendInvoice]
    }
    async fn call(&self, _: Request<'_>, cx: &CallContext<'_>) -> Result<Reply, ProviderError> {
        self.calls.lock().unwrap().push((
            self.clock.now().as_millis(),
            cx.idempotency_key.to_owned(),
            cx.attempt,
        ));
        let next = self.script.lock().unwrap().pop().unwrap_or(Script::Ok);
        match next {
            Script::Ok => Ok(Reply::Done),
            Script::Retryable => Err(ProviderError::unavailable("billing is down")),
            Script::Fatal => Err(ProviderError::rejected("unknown customer account")),
            Script::Hang => futures::future::pending().await,
            Script::Panic => panic!("billing adapter bug"),
            Script::Slow(ms) => {
                self.clock.sleep(Duration::from_millis(ms)).await;
                Ok(Reply::Done)
            }
        }
    }
}

struct Rig {
    engine: Engine,
    clock: ManualClock,
    billing: Scripted,
}

async fn rig(script: &[Script], retry: RetryPolicy, seed: u64) -> Rig {
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let billing = Scripted::new(&clock, script);
    let engine = Engine::builder()
        .clock(clock.clone())
        .provider(billing.clone())
        .config(
            Config::default()
                .with_retry(retry)
                .with_timeout(Duration::from_millis(1_000))
                .with_seed(seed),
        )
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Bill")
        .steps(|s| {
            s.action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Billing")
                    .on_failure(EventKind::new("Billing needs attention")),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Bill").await.unwrap();
    Rig {
        engine,
        clock,
        billing,
    }
}

/// Submits an order, then fires each durable timer when it falls due, driving virtual time
/// (timeouts, slow answers) inside every turn, until no timer is left.
async fn run(rig: &Rig) -> Journey {
    let order = Order::new("SO-1").with_line(OrderLine::new("1", "Pen", 1));
    drive(&rig.clock, rig.engine.submit(Event::new_order(order)))
        .await
        .unwrap();
    let ran = settle(&rig.engine, &rig.clock).await.unwrap();
    assert_eq!(
        ran + 1,
        rig.billing.starts().len(),
        "each due timer ran the order once, and it called again"
    );
    rig.engine.journey("SO-1").await.unwrap()
}

fn invoice(journey: &Journey) -> &orderflow::journey::StepRecord {
    journey
        .step("Invoice")
        .last()
        .expect("the invoice step ran")
}

#[tokio::test(flavor = "current_thread")]
async fn retryable_then_success_follows_the_backoff_schedule() {
    let rig = rig(
        &[Script::Retryable, Script::Retryable, Script::Ok],
        RetryPolicy::new(4, Duration::from_millis(100)),
        0,
    )
    .await;
    let journey = run(&rig).await;
    assert_eq!(rig.billing.starts(), [0, 100, 300]);
    let step = invoice(&journey);
    assert_eq!(step.outcome, Outcome::Succeeded);
    assert_eq!(step.attempts, 3);
    let keys = rig.billing.keys();
    assert!(
        keys.iter().all(|k| k == &keys[0]),
        "one key for every attempt: {keys:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn retries_are_exhausted_and_the_step_fails() {
    let rig = rig(
        &[Script::Retryable; 5],
        RetryPolicy::new(3, Duration::from_millis(50)),
        0,
    )
    .await;
    let journey = run(&rig).await;
    assert_eq!(rig.billing.starts(), [0, 50, 150]);
    let step = invoice(&journey);
    assert_eq!(step.outcome, Outcome::Failed);
    assert!(
        step.details.iter().any(|d| d.contains("billing is down")),
        "{:?}",
        step.details
    );
    assert!(journey.has_event(&EventKind::new("Billing needs attention")));
    assert!(journey.has_event(&EventKind::SEND_TO_INVOICE_FAILED));
}

#[tokio::test(flavor = "current_thread")]
async fn a_fatal_error_is_not_retried() {
    let rig = rig(
        &[Script::Fatal],
        RetryPolicy::new(5, Duration::from_millis(100)),
        0,
    )
    .await;
    let journey = run(&rig).await;
    assert_eq!(rig.billing.starts(), [0]);
    assert_eq!(invoice(&journey).outcome, Outcome::Failed);
    assert_eq!(invoice(&journey).attempts, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_hanging_provider_is_timed_out_and_retried() {
    let rig = rig(
        &[Script::Hang, Script::Ok],
        RetryPolicy::new(3, Duration::from_millis(100)),
        0,
    )
    .await;
    let journey = run(&rig).await;
    // Timed out at 1,000 ms, then 100 ms of backoff.
    assert_eq!(rig.billing.starts(), [0, 1_100]);
    assert_eq!(invoice(&journey).outcome, Outcome::Succeeded);
}

#[tokio::test(flavor = "current_thread")]
async fn a_late_success_counts_as_a_timeout() {
    let rig = rig(
        &[Script::Slow(1_500), Script::Ok],
        RetryPolicy::new(2, Duration::from_millis(100)),
        0,
    )
    .await;
    let journey = run(&rig).await;
    assert_eq!(rig.billing.starts(), [0, 1_100]);
    assert_eq!(invoice(&journey).attempts, 2);
    assert_eq!(invoice(&journey).outcome, Outcome::Succeeded);
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_provider_fails_only_that_attempt() {
    let rig = rig(
        &[Script::Panic, Script::Ok],
        RetryPolicy::new(3, Duration::from_millis(100)),
        0,
    )
    .await;
    let journey = run(&rig).await;
    assert_eq!(rig.billing.starts(), [0, 100]);
    assert_eq!(invoice(&journey).outcome, Outcome::Succeeded);
    // The engine keeps working.
    let order = Order::new("SO-2");
    rig.engine.submit(Event::new_order(order)).await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_panic_on_the_last_attempt_fails_the_step_with_the_panic_message() {
    let rig = rig(&[Script::Panic], RetryPolicy::NONE, 0).await;
    let journey = run(&rig).await;
    let step = invoice(&journey);
    assert_eq!(step.outcome, Outcome::Failed);
    assert!(
        step.details
            .iter()
            .any(|d| d.contains("billing adapter bug")),
        "{:?}",
        step.details
    );
    let err = ProviderError::new(ProviderErrorKind::Panicked, "x");
    assert!(err.is_retryable());
}

#[tokio::test(flavor = "current_thread")]
async fn jitter_is_seeded_and_bounded() {
    let retry = RetryPolicy::new(4, Duration::from_millis(1_000)).with_jitter(0.5);
    let script = [Script::Retryable, Script::Retryable, Script::Retryable];
    let a = rig(&script, retry, 42).await;
    run(&a).await;
    let b = rig(&script, retry, 42).await;
    run(&b).await;
    let c = rig(&script, retry, 7).await;
    run(&c).await;
    assert_eq!(
        a.billing.starts(),
        b.billing.starts(),
        "same seed, same schedule"
    );
    assert_ne!(
        a.billing.starts(),
        c.billing.starts(),
        "another seed, another schedule"
    );
    let starts = a.billing.starts();
    let waits: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for (wait, base) in waits.iter().zip([1_000u64, 2_000, 4_000]) {
        assert!(
            *wait <= base && *wait >= base / 2,
            "wait {wait} for base {base}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn reprocess_uses_a_new_key_group() {
    let rig = rig(&[Script::Fatal, Script::Ok], RetryPolicy::NONE, 0).await;
    run(&rig).await;
    let failed = rig.engine.failed_executions("SO-1").await.unwrap();
    assert_eq!(failed.len(), 1);
    rig.engine.reprocess(&failed[0]).await.unwrap();
    let journey = rig.engine.journey("SO-1").await.unwrap();
    let runs: Vec<(u32, Outcome)> = journey
        .step("Invoice")
        .map(|s| (s.round, s.outcome))
        .collect();
    assert_eq!(runs, [(0, Outcome::Failed), (1, Outcome::Succeeded)]);
    let keys = rig.billing.keys();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
    assert!(
        keys[0].ends_with("/0/order") && keys[1].ends_with("/1/order"),
        "{keys:?}"
    );
    let err = rig.engine.reprocess(&failed[0]).await.unwrap_err();
    assert_eq!(err.kind(), orderflow::ErrorKind::InvalidState);
}

#[tokio::test(flavor = "current_thread")]
async fn a_retry_waits_on_a_durable_timer_that_survives_a_restart() {
    let store = Arc::new(orderflow::MemoryStore::new());
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let billing = Scripted::new(&clock, &[Script::Retryable, Script::Ok]);
    let build = || async {
        Engine::builder()
            .store(store.clone())
            .clock(clock.clone())
            .provider(billing.clone())
            .config(Config::default().with_retry(RetryPolicy::new(3, Duration::from_millis(250))))
            .build()
            .await
            .unwrap()
    };
    let engine = build().await;
    let flow = Flow::builder("Bill")
        .steps(|s| {
            s.action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Bill").await.unwrap();
    engine
        .submit(Event::new_order(Order::new("SO-1")))
        .await
        .unwrap();

    // The submit returned with the step parked on its timer, committed.
    let state = engine.order_state("SO-1").await.unwrap().unwrap();
    let execution = &state.executions()[0];
    let paths: Vec<_> = execution.paths().collect();
    assert_eq!(
        paths,
        [orderflow::execution::PathStatus::Retrying {
            at: Timestamp::from_millis(250)
        }]
    );
    let failure = execution.failure().unwrap();
    assert!(failure.starts_with("attempt 1 failed"), "{failure}");
    assert_eq!(
        engine.next_due().await.unwrap(),
        Some(Timestamp::from_millis(250))
    );
    assert_eq!(
        engine.run_due().await.unwrap(),
        0,
        "nothing is due before its time"
    );
    drop(engine);

    // A new engine on the same store finds the timer and finishes the step.
    let engine = build().await;
    assert_eq!(
        engine.recover().await.unwrap().resumed,
        0,
        "a parked step is not runnable"
    );
    clock.advance(Duration::from_millis(250));
    assert_eq!(engine.run_due().await.unwrap(), 1);
    assert_eq!(engine.next_due().await.unwrap(), None);
    let journey = engine.journey("SO-1").await.unwrap();
    let step = invoice(&journey);
    assert_eq!(step.outcome, Outcome::Succeeded);
    assert_eq!(step.attempts, 2);
    assert_eq!(billing.starts(), [0, 250]);
    let keys = billing.keys();
    assert_eq!(
        keys[0], keys[1],
        "the retry after the restart keeps the key"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_timer_worker_runs_due_retries_on_its_own() {
    let rig = rig(
        &[Script::Retryable, Script::Retryable, Script::Ok],
        RetryPolicy::new(4, Duration::from_millis(100)),
        0,
    )
    .await;
    let worker = tokio::spawn(rig.engine.clone().run_timers());
    let engine = rig.engine.clone();
    let order = Order::new("SO-1");
    engine.submit(Event::new_order(order)).await.unwrap();
    for _ in 0..1_000 {
        tokio::task::yield_now().await;
        if let Some(at) = rig.clock.next_wake() {
            rig.clock.advance(at.since(rig.clock.now()));
        }
        let journey = engine.journey("SO-1").await.unwrap();
        if journey.outcome("Invoice").is_some() {
            break;
        }
    }
    worker.abort();
    let journey = engine.journey("SO-1").await.unwrap();
    assert_eq!(invoice(&journey).outcome, Outcome::Succeeded);
    assert_eq!(rig.billing.starts(), [0, 100, 300]);
}

/// The billing rig with the invoice step's action replaced by `action`.
async fn custom_rig(script: &[Script], retry: RetryPolicy, action: impl Action) -> Rig {
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let billing = Scripted::new(&clock, script);
    let engine = Engine::builder()
        .clock(clock.clone())
        .provider(billing.clone())
        .builtin(ActionKind::SendToInvoice, action)
        .config(Config::default().with_retry(retry))
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Bill")
        .steps(|s| {
            s.action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow).await.unwrap();
    engine.publish("Bill").await.unwrap();
    Rig {
        engine,
        clock,
        billing,
    }
}

/// Submits an order and fires every durable timer as it falls due.
async fn submit_and_settle(rig: &Rig) -> Journey {
    let order = Order::new("SO-1").with_line(OrderLine::new("1", "Pen", 1));
    rig.engine.submit(Event::new_order(order)).await.unwrap();
    settle(&rig.engine, &rig.clock).await.unwrap();
    rig.engine.journey("SO-1").await.unwrap()
}

/// Sends the invoice and hands the provider's answer to `finish`, counting the runs.
fn invoicing(
    runs: Arc<AtomicU32>,
    finish: fn(Result<Reply, ProviderError>) -> Result<(), ActionError>,
) -> impl Action {
    action_fn(move |cx| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            let answer = cx
                .call(&RecordId::Order, Request::SendInvoice { order: cx.order() })
                .await;
            finish(answer)
        }
        .boxed()
    })
}

#[tokio::test(flavor = "current_thread")]
async fn an_action_that_handles_a_retryable_error_and_succeeds_is_not_retried() {
    let runs = Arc::new(AtomicU32::new(0));
    let action = invoicing(runs.clone(), |answer| {
        assert!(answer.is_err(), "the script fails the call");
        Ok(())
    });
    let rig = custom_rig(
        &[Script::Retryable],
        RetryPolicy::new(3, Duration::from_millis(100)),
        action,
    )
    .await;
    let journey = submit_and_settle(&rig).await;
    assert_eq!(invoice(&journey).outcome, Outcome::Succeeded);
    assert_eq!(rig.billing.starts(), [0]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn the_retry_is_decided_on_the_error_the_action_returns() {
    // The provider's outage returned as a business failure: final.
    let runs = Arc::new(AtomicU32::new(0));
    let action = invoicing(runs.clone(), |answer| match answer {
        Ok(_) => Ok(()),
        Err(_) => Err(ActionError::new("the customer is not billable today")),
    });
    let rig = custom_rig(
        &[Script::Retryable],
        RetryPolicy::new(3, Duration::from_millis(100)),
        action,
    )
    .await;
    let journey = submit_and_settle(&rig).await;
    let step = invoice(&journey);
    assert_eq!(step.outcome, Outcome::Failed);
    assert!(
        step.details
            .iter()
            .any(|d| d.contains("not billable today")),
        "{:?}",
        step.details
    );
    assert_eq!(rig.billing.starts(), [0]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // A refusal the action marks retryable runs again on the policy's schedule.
    let runs = Arc::new(AtomicU32::new(0));
    let action = invoicing(runs.clone(), |answer| match answer {
        Ok(_) => Ok(()),
        Err(e) => {
            assert_eq!(e.kind(), ProviderErrorKind::Rejected);
            Err(ActionError::from(e).with_retryable(true))
        }
    });
    let rig = custom_rig(
        &[Script::Fatal, Script::Fatal],
        RetryPolicy::new(3, Duration::from_millis(100)),
        action,
    )
    .await;
    let journey = submit_and_settle(&rig).await;
    let step = invoice(&journey);
    assert_eq!(step.outcome, Outcome::Succeeded);
    assert_eq!(step.attempts, 3);
    assert_eq!(rig.billing.starts(), [0, 100, 300]);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_action_fails_its_step_without_a_retry() {
    let runs = Arc::new(AtomicU32::new(0));
    let counted = runs.clone();
    let action = action_fn(move |_cx| {
        let runs = counted.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            if runs.load(Ordering::SeqCst) > 0 {
                panic!("invoice template missing");
            }
            Ok(())
        }
        .boxed()
    });
    let rig = custom_rig(&[], RetryPolicy::new(3, Duration::from_millis(100)), action).await;
    let journey = submit_and_settle(&rig).await;
    let step = invoice(&journey);
    assert_eq!(step.outcome, Outcome::Failed);
    assert!(
        step.details
            .iter()
            .any(|d| d == "action panicked: invoice template missing"),
        "{:?}",
        step.details
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
