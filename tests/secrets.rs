//! A sentinel credential in provider configuration, driven through every failure path: it
//! shows up in no log line, error, journey, dry run or span. And a sentinel password in
//! every form of connection string: no part of it shows in the redacted string, nor (with
//! the `postgres` feature) in the PostgreSQL store's configuration, the store, or the
//! errors of a failed connection.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use orderflow::clock::{ManualClock, Timestamp};
use orderflow::document::Order;
use orderflow::engine::Config;
use orderflow::flow::{ActionStep, Flow, RetryPolicy};
use orderflow::provider::{
    CallContext, Provider, ProviderError, Reply, Request, RequestKind, Secret,
};
use orderflow::testing::settle;
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
                .with_retry(RetryPolicy::new(3, Duration::from_millis(100)).with_jitter(0.0))
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
    let failed = engine.failed_executions(order).await.unwrap();
    engine.reprocess(&failed[0]).await.unwrap();
    settle(&engine, &clock).await.unwrap();
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
    let ids = engine.failed_executions(order).await.unwrap();
    seen.add("failed executions", format!("{ids:?}"));

    let journey = engine.journey(order).await.unwrap();
    seen.add("journey", journey.to_string());
    seen.add("journey json", serde_json::to_string(&journey).unwrap());
    seen.add("journey debug", format!("{journey:?}"));
    let state = engine.order_state(order).await.unwrap().unwrap();
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

/// Pieces of a sentinel database password: no part of any of them may show.
const PG_PARTS: [&str; 6] = [
    "SNTLq7Kx2W",
    "SNTLv9Rz4T",
    "SNTLm3Jy8P",
    "SNTLh5Dw1N",
    "SNTLc6Gf0B",
    "SNTLk2Ls7M",
];

/// The first piece of a sentinel password found in `text`, or any six characters of one.
fn pg_leak(text: &str) -> Option<String> {
    PG_PARTS
        .iter()
        .flat_map(|part| (0..=part.len() - 6).map(move |i| &part[i..i + 6]))
        .find(|window| text.contains(window))
        .map(str::to_owned)
}

/// `s` percent-encoded, alphanumerics aside.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The sentinel password, in every form a connection string holds one, for a server at
/// `host:port` (`host` as a URL writes it) with database `db` and user `user`. Each comes
/// with whether the driver reads it as meant (the others are refused before connecting:
/// an ambiguous URL, a doubled quote, an option the driver does not take).
fn pg_forms(host: &str, port: u16, user: &str, db: &str) -> Vec<(&'static str, String, bool)> {
    let [a, b, c, d, e, f] = PG_PARTS;
    // `?`, `#`, `@`, `/` and an escape, unencoded.
    let raw = format!("{a}?{b}#{c}@{d}/{e}%40{f}");
    let enc = encode(&raw);
    let plain = format!("{a}{b}{c}{d}{e}{f}");
    // Spaces, a quote and a backslash, for key-value strings.
    let spaced = format!("{a} it's {b}\\{c}");
    let quoted = spaced.replace('\\', "\\\\").replace('\'', "\\'");
    let doubled = spaced.replace('\'', "''");
    let kv_host = host.trim_start_matches('[').trim_end_matches(']');
    vec![
        (
            "raw ?#@/ in the user info",
            format!("postgres://{user}:{raw}@{host}:{port}/{db}?sslmode=disable"),
            false,
        ),
        (
            "percent-encoded user info, postgresql://",
            format!("postgresql://{user}:{enc}@{host}:{port}/{db}"),
            true,
        ),
        (
            "a plain password",
            format!("postgres://{user}:{plain}@{host}:{port}/{db}"),
            true,
        ),
        (
            "a user without a password, the password in the query",
            format!("postgres://{user}@{host}:{port}/{db}?password={enc}&sslmode=disable"),
            true,
        ),
        (
            "no user, the password in the query",
            format!("postgres://{host}:{port}/{db}?user={user}&password={plain}"),
            true,
        ),
        (
            "an IPv6 host",
            format!("postgres://{user}:{enc}@[::1]:{port}/{db}"),
            true,
        ),
        (
            "two hosts",
            format!("postgres://{user}:{enc}@{host}:{port},{host}:{port}/{db}"),
            true,
        ),
        (
            "sslpassword and password in the query",
            format!("postgres://{user}@{host}:{port}/{db}?sslpassword={enc}&password={enc}"),
            false,
        ),
        (
            "key-value, quoted with \\'",
            format!("host={kv_host} port={port} user={user} password='{quoted}' dbname={db}"),
            true,
        ),
        (
            "key-value, quoted with ''",
            format!("host={kv_host} port={port} password='{doubled}' user={user} dbname={db}"),
            false,
        ),
        (
            "key-value, spaces around =",
            format!("host={kv_host} port={port} user={user} password = {plain} dbname={db}"),
            true,
        ),
    ]
}

#[test]
fn no_part_of_a_connection_password_shows_in_any_form() {
    for (form, url, _) in pg_forms("127.0.0.1", 1, "app", "shop") {
        assert!(
            pg_leak(&url).is_some(),
            "{form}: the test's own check sees the password"
        );
        let shown = orderflow::redact::connection_string(&url);
        assert_eq!(pg_leak(&shown), None, "{form}: {url} shows {shown}");
        assert!(shown.contains("[redacted]"), "{form}: {shown}");
        assert!(
            shown.contains("127.0.0.1") || shown.contains("[::1]"),
            "{form}: the server is still named: {shown}"
        );
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::time::Duration;

    use orderflow::Store;
    use orderflow::document::OrderId;
    use orderflow::store::{PostgresConfig, PostgresStore, StoreError, StoreErrorKind};

    use super::{pg_forms, pg_leak};

    /// An error as a host would see it: its message, its `Debug`, and each source's.
    fn shown(err: &StoreError) -> String {
        let mut text = format!("{err} {err:?}");
        let mut source = std::error::Error::source(err);
        while let Some(e) = source {
            text.push_str(&format!(" {e} {e:?}"));
            source = e.source();
        }
        text
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_connection_shows_no_part_of_the_password() {
        // Nothing listens on port 1: each connection that parses is refused at once.
        for (form, url, parses) in pg_forms("127.0.0.1", 1, "app", "shop") {
            let config = PostgresConfig::new(&url).with_connect_timeout(Duration::from_secs(5));
            let debug = format!("{config:?}");
            assert_eq!(pg_leak(&debug), None, "{form}: {debug}");
            assert!(debug.contains("[redacted]"), "{form}: {debug}");
            let err = PostgresStore::connect_with(config).await.unwrap_err();
            let text = shown(&err);
            assert_eq!(pg_leak(&text), None, "{form}: {text}");
            assert!(text.contains("[redacted]"), "{form}: {text}");
            assert_eq!(
                err.kind() == StoreErrorKind::Unavailable,
                parses,
                "{form}: the driver reads it as meant and gets as far as the network: {text}"
            );
            match err.kind() {
                // Refused by the system...
                StoreErrorKind::Unavailable => assert!(
                    text.contains("127.0.0.1") || text.contains("[::1]"),
                    "{form}: names the server: {text}"
                ),
                // ...or refused before connecting: an ambiguous URL, a string the driver
                // does not parse.
                StoreErrorKind::Other => assert!(
                    text.contains("ambiguous") || text.contains("does not parse"),
                    "{form}: {text}"
                ),
                other => panic!("{form}: {other:?}: {text}"),
            }
            // An invalid setting is reported with the server named, too.
            let err = PostgresStore::connect_with(PostgresConfig::new(&url).with_schema(""))
                .await
                .unwrap_err();
            let text = shown(&err);
            assert_eq!(pg_leak(&text), None, "{form}: {text}");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connected_store_and_its_errors_show_no_part_of_the_password() {
        let Ok(server) = std::env::var("ORDERFLOW_PG_URL") else {
            eprintln!("ORDERFLOW_PG_URL is not set; skipping (CI sets it)");
            return;
        };
        let config: tokio_postgres::Config = server.parse().unwrap();
        let host = config
            .get_hosts()
            .iter()
            .find_map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let db = config.get_dbname().unwrap_or("postgres").to_owned();
        let schema = format!("orderflow_secrets_{}", std::process::id());
        let (admin, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        let mut connected = 0;
        for (form, url, parses) in pg_forms(&host, port, &user, &db) {
            if !parses || form.contains("IPv6") {
                continue; // Refused before connecting, or another server: the test above.
            }
            let config = PostgresConfig::new(&url)
                .with_schema(&schema)
                .with_connect_timeout(Duration::from_secs(5));
            // A trust-auth server takes the sentinel password unasked; one that checks
            // passwords refuses it. Either way nothing may show it.
            let store = match PostgresStore::connect_with(config).await {
                Ok(store) => store,
                Err(err) => {
                    let text = shown(&err);
                    assert_eq!(pg_leak(&text), None, "{form}: {text}");
                    assert_eq!(err.kind(), StoreErrorKind::Refused, "{form}: {text}");
                    continue;
                }
            };
            connected += 1;
            let debug = format!("{store:?}");
            assert_eq!(pg_leak(&debug), None, "{form}: {debug}");
            assert!(debug.contains("[redacted]"), "{form}: {debug}");
            // An error from the running store: its tables gone from under it.
            admin
                .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .await
                .unwrap();
            let err = store.load(&OrderId::from("SO-1")).await.unwrap_err();
            let text = shown(&err);
            assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{form}: {text}");
            assert_eq!(pg_leak(&text), None, "{form}: {text}");
            assert!(text.contains("[redacted]"), "{form}: {text}");
        }
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .unwrap();
        drop(admin);
        let _ = connection.await;
        eprintln!("{connected} stores connected with the sentinel password");
    }
}
