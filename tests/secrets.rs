//! A sentinel credential in provider configuration, driven through every failure path: it
//! shows up in no log line, error, journey, dry run or span.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orderflow::clock::{Clock, ManualClock, Timestamp};
use orderflow::document::Order;
use orderflow::engine::Config;
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::provider::{
    CallContext, Provider, ProviderError, Reply, Request, RequestKind, Secret,
};
use orderflow::testing::store::{Fault, FaultyStore};
use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore, Store};

const SENTINEL: &str = "SENTINEL-sk-live-7f3a9c";

/// What the billing provider does next.
#[derive(Debug, Clone, Copy)]
enum Mode {
    Retryable,
    Fatal,
    Panic,
    Hang,
    Ok,
}

/// A billing provider whose configuration holds its key as a `Secret`, and which is as
/// careless as providers get: it logs its whole configuration and puts it in every error
/// and panic message.
#[derive(Debug, Clone)]
struct Billing {
    url: String,
    api_key: Secret,
    script: Arc<Mutex<Vec<Mode>>>,
}

#[async_trait]
impl Provider for Billing {
    fn name(&self) -> &str {
        "Billing"
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendInvoice]
    }
    async fn call(&self, _: Request<'_>, cx: &CallContext<'_>) -> Result<Reply, ProviderError> {
        // The key is used where it is needed...
        assert_eq!(self.api_key.expose(), SENTINEL);
        // ...and the configuration is logged everywhere else.
        tracing::warn!(config = ?self, key = %self.api_key, attempt = cx.attempt, "calling billing");
        let mode = self.script.lock().unwrap().pop().unwrap_or(Mode::Ok);
        match mode {
            Mode::Retryable => Err(ProviderError::unavailable(format!("{self:?} is down"))),
            Mode::Fatal => Err(ProviderError::rejected(format!(
                "{self:?} refused key {}",
                self.api_key
            ))),
            Mode::Panic => panic!("billing adapter bug with {self:?}"),
            Mode::Hang => futures::future::pending().await,
            Mode::Ok => Ok(Reply::Done),
        }
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything the engine and the host would show, collected.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn add(&mut self, what: impl std::fmt::Display, text: impl Into<String>) {
        self.0.push(format!("{what}: {}", text.into()));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_sentinel_is_in_no_log_error_journey_or_span() {
    let logs = Buffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Newest last: popped from the end.
    let script = Arc::new(Mutex::new(vec![
        Mode::Ok,
        Mode::Hang,
        Mode::Panic,
        Mode::Fatal,
        Mode::Retryable,
    ]));
    let billing = Billing {
        url: "https://billing.example".into(),
        api_key: serde_json::from_str(&format!("\"{SENTINEL}\"")).unwrap(),
        script: script.clone(),
    };
    let clock = ManualClock::new(Timestamp::from_millis(0));
    let base: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let store = Arc::new(FaultyStore::new(base.clone()));
    let engine = Engine::builder()
        .store(store.clone())
        .clock(clock.clone())
        .provider(billing.clone())
        .config(
            Config::default()
                .with_retry(RetryPolicy::new(3, 100).with_jitter(0.0))
                .with_timeout(Duration::from_millis(500)),
        )
        .build()
        .await
        .unwrap();
    let flow = Flow::builder("Invoice")
        .steps(|s| {
            s.action(
                ActionStep::new("Invoice", ActionKind::SendToInvoice)
                    .input_event(EventKind::NEW_ORDER)
                    .provider("Billing"),
            )
        })
        .build()
        .unwrap();
    engine.create_flow(flow.clone()).await.unwrap();
    engine.publish("Invoice").await.unwrap();

    let mut seen = Seen::default();
    let order = "SO-1";
    // Retryable, then fatal: the step fails (three attempts allowed; a fatal error stops).
    engine
        .submit(Event::new_order(Order::new(order)))
        .await
        .unwrap();
    clock.advance(Duration::from_millis(100));
    engine.run_due().await.unwrap();
    // Reprocess: the provider panics, then hangs past the timeout, then succeeds.
    let failed = engine.failed_executions(&order.into()).await.unwrap();
    engine.reprocess(&failed[0]).await.unwrap();
    while let Some(at) = engine.next_due().await.unwrap() {
        clock.advance(at.since(clock.now()));
        let due = {
            let engine = engine.clone();
            tokio::spawn(async move { engine.run_due().await })
        };
        while !due.is_finished() {
            tokio::task::yield_now().await;
            if let Some(at) = clock.next_wake() {
                clock.advance(at.since(clock.now()));
            }
        }
        due.await.unwrap().unwrap();
    }
    // A store that fails: the error goes back to the host.
    store.fail_at(
        store.op_count(),
        Fault::Error(orderflow::store::StoreErrorKind::Unavailable),
    );
    let store_error = engine
        .submit(Event::new_order(Order::new("SO-2")))
        .await
        .unwrap_err();
    seen.add("store error", format!("{store_error} / {store_error:?}"));
    // An engine error naming the provider: reprocess of an execution that did not fail.
    let ids = engine.failed_executions(&order.into()).await.unwrap();
    seen.add("failed executions", format!("{ids:?}"));

    let journey = engine.journey(&order.into()).await.unwrap();
    seen.add("journey", journey.to_string());
    seen.add("journey json", serde_json::to_string(&journey).unwrap());
    seen.add("journey debug", format!("{journey:?}"));
    let state = engine.order_state(&order.into()).await.unwrap().unwrap();
    seen.add("order state", serde_json::to_string(&state).unwrap());
    seen.add("engine", format!("{engine:?}"));
    seen.add("provider debug", format!("{billing:?}"));
    seen.add(
        "provider config json",
        serde_json::to_string(&billing.api_key).unwrap(),
    );
    let sim = engine.simulate(&flow, &Order::new("SO-3")).await.unwrap();
    seen.add("dry run", format!("{sim} {sim:?}"));
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for line in logs.lines() {
        seen.add("log", line);
    }

    // The paths were taken: each failure left its trace, redacted.
    let all = seen.0.join("\n");
    assert!(all.contains("is down"), "the retryable error was recorded");
    assert!(
        all.contains("refused key [redacted]"),
        "the fatal error was recorded"
    );
    assert!(
        all.contains("billing adapter bug"),
        "the panic was recorded"
    );
    assert!(
        all.contains("did not answer within 500 ms"),
        "the timeout was recorded"
    );
    assert!(
        all.contains("calling billing"),
        "the provider's log lines were captured"
    );
    assert!(
        all.contains("Secret([redacted])"),
        "the configuration was shown, redacted"
    );
    assert!(
        script.lock().unwrap().is_empty(),
        "every scripted failure ran"
    );
    // And the sentinel is nowhere.
    for line in &seen.0 {
        assert!(!line.contains(SENTINEL), "the credential leaked: {line}");
    }
    let _ = billing.url;
}
