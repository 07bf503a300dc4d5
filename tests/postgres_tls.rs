//! The PostgreSQL store on a managed database's terms: TLS as libpq's `sslmode` and
//! `sslrootcert` say, a pool the host built, and a schema its DBA migrates.
//!
//! The local server speaks no TLS, so each TLS test starts its own endpoint: a proxy that
//! answers PostgreSQL's `SSLRequest`, does the TLS handshake with a certificate made here
//! (a CA of the test's own, `rcgen`), and forwards the decrypted stream to the real server.
//! Like a server whose `pg_hba.conf` has only `hostssl` lines, it refuses a plain startup;
//! a second kind of proxy offers no TLS (answers `N`) and forwards plain.
//!
//! The server comes from `ORDERFLOW_PG_URL` (CI sets it); without it each test says so and
//! passes.

#![cfg(feature = "postgres")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, Pool};
use orderflow::Event;
use orderflow::document::{Order, OrderId};
use orderflow::execution::OrderState;
use orderflow::store::{
    ChangeSet, PostgresConfig, PostgresStore, SharedStore, Store, StoreError, StoreErrorKind,
};
use orderflow::testing::conformance::check_store;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// A password that no message may show.
const SECRET: &str = "s3cret-never-shown";

/// The test server's URL, or `None` (and a notice) when none is configured.
fn server(test: &str) -> Option<String> {
    match std::env::var("ORDERFLOW_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("{test}: ORDERFLOW_PG_URL is not set; skipping (CI sets it)");
            None
        }
    }
}

/// A certificate authority made for one test.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA's certificate in a PEM file of its own.
    fn pem_file(&self, dir: &tempfile::TempDir, name: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, self.pem()).unwrap();
        path
    }

    /// A server certificate for `names` (host names or IP addresses) and its TLS setup.
    fn server(&self, names: &[&str]) -> rustls::ServerConfig {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "orderflow test server");
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let chain = vec![CertificateDer::from(cert.der().to_vec())];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap()
    }
}

/// PostgreSQL's `SSLRequest` code.
const SSL_REQUEST: u32 = 80_877_103;

/// A proxy in front of the real server: with a TLS setup, a TLS-only endpoint; without,
/// one that offers no TLS.
struct Proxy {
    addr: SocketAddr,
    /// TLS sessions it completed.
    tls_sessions: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(upstream: SocketAddr, tls: Option<rustls::ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.map(|config| TlsAcceptor::from(Arc::new(config)));
        let tls_sessions = Arc::new(AtomicUsize::new(0));
        let sessions = tls_sessions.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    // A client that gives up (a refused certificate) ends its connection.
                    let _ = serve(client, upstream, acceptor, sessions).await;
                });
            }
        });
        Self {
            addr,
            tls_sessions,
            task,
        }
    }

    fn sessions(&self) -> usize {
        self.tls_sessions.load(Ordering::SeqCst)
    }
}

/// One client connection through the proxy.
async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    sessions: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut head = [0_u8; 8];
    client.read_exact(&mut head).await?;
    let len = u32::from_be_bytes(head[..4].try_into().unwrap());
    let code = u32::from_be_bytes(head[4..].try_into().unwrap());
    let mut server = TcpStream::connect(upstream).await?;
    match (len == 8 && code == SSL_REQUEST, acceptor) {
        (true, Some(acceptor)) => {
            client.write_all(b"S").await?;
            let mut tls = acceptor.accept(client).await?;
            sessions.fetch_add(1, Ordering::SeqCst);
            tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
        }
        (true, None) => {
            // No TLS here: the client goes on with a plain startup.
            client.write_all(b"N").await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
        (false, Some(_)) => {
            // A plain startup where only TLS is allowed: refused, as the server does.
            let mut rest = vec![0_u8; (len as usize).saturating_sub(8).min(10_000)];
            client.read_exact(&mut rest).await?;
            let mut fields = Vec::new();
            for (tag, value) in [
                (b'S', "FATAL"),
                (b'V', "FATAL"),
                (b'C', "28000"),
                (
                    b'M',
                    "no pg_hba.conf entry for host \"127.0.0.1\", user \"postgres\", SSL off",
                ),
            ] {
                fields.push(tag);
                fields.extend_from_slice(value.as_bytes());
                fields.push(0);
            }
            fields.push(0);
            let mut message = vec![b'E'];
            message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
            message.extend_from_slice(&fields);
            client.write_all(&message).await?;
        }
        (false, None) => {
            server.write_all(&head).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
    }
    Ok(())
}

/// The real server's address and login, from `url`.
struct Upstream {
    addr: SocketAddr,
    user: String,
    dbname: String,
    password: Option<String>,
}

impl Upstream {
    fn new(url: &str) -> Self {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(host) => host.clone(),
            other => panic!("the test server must be on TCP, not {other:?}"),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let host = if host == "localhost" {
            "127.0.0.1".to_owned()
        } else {
            host
        };
        Self {
            addr: format!("{host}:{port}").parse().unwrap(),
            user: config.get_user().unwrap_or("postgres").to_owned(),
            dbname: config.get_dbname().unwrap_or("postgres").to_owned(),
            password: config
                .get_password()
                .map(|p| String::from_utf8(p.to_vec()).unwrap()),
        }
    }

    /// A key-value connection string through `proxy`, with `tls` options. `fake_password`
    /// gives the login a password that no message may show when the server needs none
    /// (the connections that use it never get to the login).
    fn via(&self, proxy: &Proxy, tls: &str, fake_password: bool) -> String {
        let password = match (&self.password, fake_password) {
            (Some(password), _) => format!(" password='{password}'"),
            (None, true) => format!(" password={SECRET}"),
            (None, false) => String::new(),
        };
        format!(
            "host=127.0.0.1 port={} user={} dbname={}{password} {tls}",
            proxy.addr.port(),
            self.user,
            self.dbname
        )
    }
}

/// Schema names no other test or run uses, dropped at the end.
struct Schemas {
    url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            names: Mutex::new(Vec::new()),
        }
    }

    fn fresh(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "orderflow_tls_{}_{nanos:09}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name.clone());
        name
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(self.names.get_mut().unwrap_or_else(PoisonError::into_inner));
        if names.is_empty() {
            return;
        }
        let url = self.url.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = plain_client(&url).await;
                for name in names {
                    client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await
                        .unwrap();
                }
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("the test schemas could not be dropped");
        }
    }
}

/// A plain client of the real server, its connection driven by a task.
async fn plain_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// An order written and read back, with its journey.
async fn round_trip(store: &dyn Store, id: &str) {
    let state = OrderState::new(Order::new(id));
    store.commit(ChangeSet::diff(None, &state)).await.unwrap();
    let loaded = store.load(&OrderId::from(id)).await.unwrap().unwrap();
    assert_eq!(loaded.order().id.as_str(), id);
    assert!(store.journey(&OrderId::from(id)).await.unwrap().is_empty());
}

/// The error of a connection that must fail.
async fn refused(config: PostgresConfig) -> StoreError {
    match PostgresStore::connect_with(config).await {
        Ok(store) => panic!("connected: {store:?}"),
        Err(e) => e,
    }
}

/// The message names the proxy's server and shows no password.
fn names_the_server(message: &str, proxy: &Proxy) {
    assert!(
        message.contains(&format!("port={}", proxy.addr.port())),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_with_the_test_ca_connects_over_tls() {
    let Some(url) = server("require_with_the_test_ca_connects_over_tls") else {
        return;
    };
    let upstream = Upstream::new(&url);
    let schemas = Schemas::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("orderflow test CA");
    let ca_file = ca.pem_file(&dir, "ca.pem");
    let proxy = Proxy::start(upstream.addr, Some(ca.server(&["localhost", "127.0.0.1"]))).await;

    // sslrootcert in the string: require checks the chain against it.
    let tls = format!("sslmode=require sslrootcert='{}'", ca_file.display());
    let config =
        PostgresConfig::new(upstream.via(&proxy, &tls, false)).with_schema(schemas.fresh());
    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    assert!(
        proxy.sessions() >= 1,
        "the store's connection went through TLS"
    );
    round_trip(&store, "SO-TLS-1").await;

    // The LISTEN connection takes the same TLS: the proxy refuses anything plain, and a
    // second store's enqueue wakes this one.
    store.work_arrived().await; // the listener's first connection wakes the worker
    let sessions = proxy.sessions();
    let other = PostgresStore::connect_with(config.clone()).await.unwrap();
    let woken = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(20), store.work_arrived())
            .await
            .is_ok()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    other
        .enqueue(&Event::new_order(Order::new("SO-TLS-2")))
        .await
        .unwrap();
    assert!(
        woken.await.unwrap(),
        "the listener over TLS saw the enqueue"
    );
    assert!(proxy.sessions() > sessions);

    // verify-full with the CA given by the configuration, as a file and as PEM text.
    for config in [
        PostgresConfig::new(upstream.via(&proxy, "sslmode=verify-full", false))
            .with_ca_file(&ca_file),
        PostgresConfig::new(upstream.via(&proxy, "sslmode=verify-full", false))
            .with_root_certificates(ca.pem()),
    ] {
        let store = PostgresStore::connect_with(config.with_schema(schemas.fresh()))
            .await
            .unwrap();
        round_trip(&store, "SO-TLS-3").await;
    }

    // The conformance suite, every store over TLS with verify-full.
    let url = upstream.via(
        &proxy,
        &format!("sslmode=verify-full sslrootcert='{}'", ca_file.display()),
        false,
    );
    check_store(|| {
        let config = PostgresConfig::new(&url).with_schema(schemas.fresh());
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(PostgresStore::connect_with(config))
        })
        .unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_certificate_for_another_host() {
    let Some(url) = server("verify_full_refuses_a_certificate_for_another_host") else {
        return;
    };
    let upstream = Upstream::new(&url);
    let schemas = Schemas::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("orderflow test CA");
    let ca_file = ca.pem_file(&dir, "ca.pem");
    let proxy = Proxy::start(upstream.addr, Some(ca.server(&["db.example.com"]))).await;
    let root = format!("sslrootcert='{}'", ca_file.display());

    let e = refused(
        PostgresConfig::new(upstream.via(&proxy, &format!("sslmode=verify-full {root}"), true))
            .with_schema(schemas.fresh()),
    )
    .await;
    assert_eq!(e.kind(), StoreErrorKind::Refused, "{e}");
    let message = e.to_string();
    assert!(message.contains("not issued for the host"), "{message}");
    names_the_server(&message, &proxy);

    // The chain is the test CA's: verify-ca and require (with the root) accept it.
    for mode in ["verify-ca", "require"] {
        let config =
            PostgresConfig::new(upstream.via(&proxy, &format!("sslmode={mode} {root}"), false))
                .with_schema(schemas.fresh());
        let store = PostgresStore::connect_with(config).await.unwrap();
        round_trip(&store, "SO-CA").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_is_refused() {
    let Some(url) = server("a_certificate_from_another_ca_is_refused") else {
        return;
    };
    let upstream = Upstream::new(&url);
    let schemas = Schemas::new(&url);
    let dir = tempfile::tempdir().unwrap();
    let trusted = Ca::new("orderflow test CA");
    let ca_file = trusted.pem_file(&dir, "ca.pem");
    let rogue = Ca::new("someone else's CA");
    let proxy = Proxy::start(
        upstream.addr,
        Some(rogue.server(&["localhost", "127.0.0.1"])),
    )
    .await;

    let configs = [
        PostgresConfig::new(upstream.via(
            &proxy,
            &format!("sslmode=require sslrootcert='{}'", ca_file.display()),
            true,
        )),
        PostgresConfig::new(upstream.via(&proxy, "sslmode=verify-ca", true)).with_ca_file(&ca_file),
        PostgresConfig::new(upstream.via(&proxy, "sslmode=prefer", true))
            .with_root_certificates(trusted.pem()),
        // No roots given: verify-full checks against Mozilla's, which do not hold it.
        PostgresConfig::new(upstream.via(&proxy, "sslmode=verify-full", true)),
    ];
    for config in configs {
        let e = refused(config.with_schema(schemas.fresh())).await;
        assert_eq!(e.kind(), StoreErrorKind::Refused, "{e}");
        let message = e.to_string();
        assert!(
            message.contains("not signed by a trusted certificate authority"),
            "{message}"
        );
        names_the_server(&message, &proxy);
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            assert!(!s.to_string().contains(SECRET), "{s}");
            source = s.source();
        }
    }

    // require without a root encrypts without checking, as libpq does.
    let config = PostgresConfig::new(upstream.via(&proxy, "sslmode=require", false))
        .with_schema(schemas.fresh());
    let store = PostgresStore::connect_with(config).await.unwrap();
    round_trip(&store, "SO-UNCHECKED").await;
    assert!(proxy.sessions() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_decides_between_tls_and_plain() {
    let Some(url) = server("sslmode_decides_between_tls_and_plain") else {
        return;
    };
    let upstream = Upstream::new(&url);
    let schemas = Schemas::new(&url);
    let ca = Ca::new("orderflow test CA");
    let tls_only = Proxy::start(upstream.addr, Some(ca.server(&["127.0.0.1"]))).await;
    let plain_only = Proxy::start(upstream.addr, None).await;

    // disable against a server that requires TLS: the server's refusal, named.
    let e = refused(
        PostgresConfig::new(upstream.via(&tls_only, "sslmode=disable", true))
            .with_schema(schemas.fresh()),
    )
    .await;
    assert_eq!(e.kind(), StoreErrorKind::Refused, "{e}");
    let message = e.to_string();
    assert!(message.contains("SSL off"), "{message}");
    names_the_server(&message, &tls_only);
    assert_eq!(tls_only.sessions(), 0);

    // require against a server without TLS.
    let e = refused(
        PostgresConfig::new(upstream.via(&plain_only, "sslmode=require", true))
            .with_schema(schemas.fresh()),
    )
    .await;
    assert_eq!(e.kind(), StoreErrorKind::Refused, "{e}");
    let message = e.to_string();
    assert!(message.contains("does not offer TLS"), "{message}");
    names_the_server(&message, &plain_only);

    // prefer, the default: TLS where offered, plain where not.
    for (proxy, tls) in [(&tls_only, true), (&plain_only, false)] {
        for mode in ["sslmode=prefer", ""] {
            let before = proxy.sessions();
            let config =
                PostgresConfig::new(upstream.via(proxy, mode, false)).with_schema(schemas.fresh());
            let store = PostgresStore::connect_with(config).await.unwrap();
            round_trip(&store, "SO-PREFER").await;
            assert_eq!(
                proxy.sessions() > before,
                tls,
                "{mode} through {}",
                proxy.addr
            );
        }
    }

    // An sslmode libpq does not know is refused, naming the option.
    let e = refused(PostgresConfig::new("host=127.0.0.1 sslmode=s3cret")).await;
    assert!(e.to_string().contains("`sslmode`"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_sql_run_by_hand_makes_a_working_store() {
    let Some(url) = server("the_migration_sql_run_by_hand_makes_a_working_store") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let config = PostgresConfig::new(&url)
        .with_schema(&schema)
        .with_migrate(false);

    // An empty schema, and migration off: refused, saying what to do.
    let e = refused(config.clone()).await;
    assert_eq!(e.kind(), StoreErrorKind::Refused, "{e}");
    let message = e.to_string();
    for expected in [
        "at version 0",
        "expects version 5",
        "PostgresStore::migration_sql",
        "with_migrate(false)",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let client = plain_client(&url).await;
    let exists = client
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await
        .unwrap();
    assert!(exists.is_none(), "a refused connect creates nothing");

    // The DBA runs the script, twice: the second run changes nothing.
    let sql = PostgresStore::migration_sql(&schema);
    client.batch_execute(&sql).await.unwrap();
    client.batch_execute(&sql).await.unwrap();
    let versions: Vec<i32> = client
        .query(
            &format!("SELECT version FROM \"{schema}\".schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);

    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    round_trip(&store, "SO-DBA").await;
    store
        .enqueue(&Event::new_order(Order::new("SO-DBA-2")))
        .await
        .unwrap();

    // The same tables, columns, functions and indexes as a schema the store migrates.
    let migrated = schemas.fresh();
    drop(
        PostgresStore::connect_with(PostgresConfig::new(&url).with_schema(&migrated))
            .await
            .unwrap(),
    );
    let shape = |schema: String| {
        let client = &client;
        async move {
            let columns = client
                .query(
                    "SELECT table_name::text, column_name::text, data_type::text,
                            COALESCE(column_default, '')
                     FROM information_schema.columns WHERE table_schema = $1
                     ORDER BY 1, 2",
                    &[&schema],
                )
                .await
                .unwrap();
            let indexes = client
                .query(
                    "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 ORDER BY 1",
                    &[&schema],
                )
                .await
                .unwrap();
            let functions = client
                .query(
                    "SELECT p.proname::text, p.prosrc FROM pg_proc p
                     JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = $1 ORDER BY 1",
                    &[&schema],
                )
                .await
                .unwrap();
            let text = |rows: Vec<tokio_postgres::Row>, n: usize| -> Vec<Vec<String>> {
                rows.iter()
                    .map(|r| (0..n).map(|i| r.get::<_, String>(i)).collect())
                    .collect()
            };
            (text(columns, 4), text(indexes, 1), text(functions, 2))
        }
    };
    let by_hand = shape(schema.clone()).await;
    assert!(!by_hand.0.is_empty() && !by_hand.2.is_empty());
    assert_eq!(by_hand, shape(migrated).await);

    // A schema from the future: the script refuses it before changing anything.
    client
        .batch_execute(&format!(
            "INSERT INTO \"{schema}\".schema_migrations (version) VALUES (99)"
        ))
        .await
        .unwrap();
    let e = client.batch_execute(&sql).await.unwrap_err();
    let e = e.as_db_error().map(ToString::to_string).unwrap_or_default();
    assert!(e.contains("newer than this script"), "{e}");
    // The script's transaction failed: this session ends it, as psql's next line would.
    client.batch_execute("ROLLBACK").await.unwrap();
    let e = refused(config).await;
    assert_eq!(e.kind(), StoreErrorKind::Refused, "{e}");

    // A schema name with quotes, a `%` and a dollar quote in it.
    let odd = format!("{}'\"%$orderflow$", schemas.fresh());
    schemas
        .names
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(odd.replace('"', "\"\""));
    client
        .batch_execute(&PostgresStore::migration_sql(&odd))
        .await
        .unwrap();
    let store = PostgresStore::connect_with(
        PostgresConfig::new(&url)
            .with_schema(&odd)
            .with_migrate(false),
    )
    .await
    .unwrap();
    round_trip(&store, "SO-ODD").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_the_hosts_pool() {
    let Some(url) = server("a_store_on_the_hosts_pool") else {
        return;
    };
    let schemas = Schemas::new(&url);
    let schema = schemas.fresh();
    let pg: tokio_postgres::Config = url.parse().unwrap();
    let pool = Pool::builder(Manager::new(pg, tokio_postgres::NoTls))
        .max_size(4)
        .build()
        .unwrap();

    // No URL: no listener, the schema migrated through the pool.
    let store =
        PostgresStore::from_pool(pool.clone(), PostgresConfig::new("").with_schema(&schema))
            .await
            .unwrap();
    round_trip(&store, "SO-POOL").await;
    assert!(format!("{store:?}").contains("the host's pool"));
    assert!(pool.status().size >= 1, "the host's pool serves the store");

    // With a URL for its listener: another store's enqueue wakes it.
    let listening = PostgresStore::from_pool(
        pool.clone(),
        PostgresConfig::new(&url)
            .with_schema(&schema)
            .with_migrate(false),
    )
    .await
    .unwrap();
    listening.work_arrived().await;
    let woken = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(20), listening.work_arrived())
            .await
            .is_ok()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    store
        .enqueue(&Event::new_order(Order::new("SO-POOL-2")))
        .await
        .unwrap();
    assert!(woken.await.unwrap(), "the listener saw the enqueue");

    // The conformance suite on stores sharing the host's pool, each on its own schema.
    check_store(|| {
        let config = PostgresConfig::new("").with_schema(schemas.fresh());
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current()
                .block_on(PostgresStore::from_pool(pool.clone(), config))
        })
        .unwrap()
    })
    .await;
}
