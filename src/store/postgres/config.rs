//! Where and how a store connects: [`PostgresConfig`], and the driver's configuration and
//! TLS connector made from it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls;
use crate::redact;
#[cfg(doc)]
use crate::store::StoreErrorKind;

/// The longest identifier PostgreSQL keeps; it silently cuts longer ones.
pub(super) const MAX_IDENTIFIER: usize = 63;

/// Where and how a [`PostgresStore`](crate::store::PostgresStore) connects.
///
/// Build one with [`PostgresConfig::new`] and adjust it with the `with_` methods (or set the
/// fields). `Debug` shows the URL as [`redact::connection_string`] does: every password
/// in it, in any of the forms below, replaced by `[redacted]`.
///
/// ```
/// use std::time::Duration;
/// use orderflow::store::PostgresConfig;
///
/// let config =
///     PostgresConfig::new("postgres://orderflow:s3cret@db.internal:5432/shop?sslmode=verify-full")
///         .with_ca_file("/etc/ssl/certs/db-ca.pem") // read when the store connects
///         .with_schema("orderflow_eu")
///         .with_max_connections(32)
///         .with_acquire_timeout(Duration::from_secs(10))
///         .with_migrate(false); // the DBA runs PostgresStore::migration_sql
/// assert_eq!(config.schema, "orderflow_eu");
/// let shown = format!("{config:?}");
/// assert!(shown.contains("db.internal") && !shown.contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PostgresConfig {
    /// The server and credentials, as a `postgres://user:password@host:port/database` URL
    /// or a `host=… user=… dbname=…` key-value string (the forms `libpq` takes). In a URL,
    /// percent-encode an `@` in the user name, password, database name or parameters as
    /// `%40`: a URL with more than one `@`, or an `@` after its host, is refused, since the
    /// driver would read part of the password as a host or database name.
    ///
    /// TLS follows libpq's `sslmode` and `sslrootcert` options (see
    /// [TLS](crate::store::PostgresStore#tls)): `sslmode` is `disable`, `prefer` (the default),
    /// `require`, `verify-ca` or `verify-full`; `sslrootcert` names a PEM file of trusted
    /// roots, or is `system` for the bundled Mozilla roots. Client certificates
    /// (`sslcert`, `sslkey`) are not supported.
    pub url: String,
    /// The schema holding the store's tables, created if it is missing. Default:
    /// `orderflow`. At most 63 bytes; any characters (it is always quoted). Stores on
    /// different schemas of one database are independent.
    pub schema: String,
    /// The most connections the store opens. Default: 16. Connections open on demand and
    /// are kept for reuse.
    pub max_connections: usize,
    /// How long opening one connection may take. Default: 10 seconds. A `connect_timeout`
    /// in the URL takes precedence.
    pub connect_timeout: Duration,
    /// How long an operation waits for a free connection when all `max_connections` are
    /// busy, before failing with [`Unavailable`](StoreErrorKind::Unavailable). Default: 30
    /// seconds.
    pub acquire_timeout: Duration,
    /// A PEM file of root certificates the server's certificate must chain to, in addition
    /// to a `sslrootcert` in the URL. Given roots make `prefer` and `require` check the
    /// chain, as libpq does with a root certificate. Default: none.
    pub ca_file: Option<PathBuf>,
    /// Root certificates as PEM text, used as [`ca_file`](Self::ca_file) is. Default: empty.
    pub ca_pem: Vec<u8>,
    /// Whether [`PostgresStore::connect_with`](crate::store::PostgresStore::connect_with) applies missing migrations (under an
    /// advisory lock). When false, it only checks that the schema is at the version this
    /// code writes and refuses otherwise: the schema is then the DBA's, who runs
    /// [`PostgresStore::migration_sql`](crate::store::PostgresStore::migration_sql). Default: true.
    pub migrate: bool,
    /// Whether the store only reads, for tools that inspect a store another engine owns
    /// (`orderflow journey --postgres`). Its sessions start with
    /// `default_transaction_read_only` on, so the server itself refuses every write the
    /// store might attempt, and connecting neither migrates the schema (it must be at the
    /// version this code writes) nor moves rows an older version wrote (they are read as
    /// they are). On a host's pool ([`PostgresStore::from_pool`](crate::store::PostgresStore::from_pool))
    /// the pool's sessions are the host's: the store still neither migrates nor moves rows.
    /// Default: false.
    pub read_only: bool,
}

impl PostgresConfig {
    /// The defaults, connecting to `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "orderflow".to_owned(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
            ca_file: None,
            ca_pem: Vec::new(),
            migrate: true,
            read_only: false,
        }
    }

    /// Trusts the root certificates in the PEM file at `path` (see
    /// [`ca_file`](Self::ca_file)), e.g. the CA bundle of Amazon RDS or Cloud SQL.
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Trusts the root certificates in `pem`, PEM text (see [`ca_pem`](Self::ca_pem)); each
    /// call adds to the ones before.
    #[must_use]
    pub fn with_root_certificates(mut self, pem: impl AsRef<[u8]>) -> Self {
        if !self.ca_pem.is_empty() && !self.ca_pem.ends_with(b"\n") {
            self.ca_pem.push(b'\n');
        }
        self.ca_pem.extend_from_slice(pem.as_ref());
        self
    }

    /// Opens the store for reading only (see [`read_only`](Self::read_only)).
    #[must_use]
    pub fn with_read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Applies missing migrations at connect (`true`, the default), or only checks the
    /// schema's version (`false`; see [`migrate`](Self::migrate)).
    #[must_use]
    pub fn with_migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    /// Keeps the tables in `schema`.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Opens at most `max` connections.
    #[must_use]
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Gives up opening a connection after `timeout`.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Gives up waiting for a free connection after `timeout`.
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &redact::connection_string(&self.url))
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("ca_file", &self.ca_file)
            .field("ca_pem_bytes", &self.ca_pem.len())
            .field("migrate", &self.migrate)
            .finish()
    }
}

/// Why `schema` cannot name the store's schema, if it cannot.
pub(super) fn check_schema_name(schema: &str) -> Result<(), String> {
    if schema.is_empty() || schema.len() > MAX_IDENTIFIER {
        return Err(format!(
            "the schema name must be 1 to {MAX_IDENTIFIER} bytes long"
        ));
    }
    Ok(())
}

/// The driver's configuration and the TLS connector for `config`: the URL without the
/// TLS options the store reads itself, the roots from `sslrootcert` and the configured CA
/// file and PEM. Errors name options and files, never a text of the URL.
pub(super) fn driver_config(
    config: &PostgresConfig,
) -> Result<(tokio_postgres::Config, MakeRustlsConnect), String> {
    if let Some(problem) = redact::url_ambiguity(&config.url) {
        return Err(format!("the connection URL is ambiguous: {problem}"));
    }
    let (rest, options) = tls::take_options(&config.url)
        .map_err(|problem| format!("the connection string does not parse: {problem}"))?;
    // The driver's error is not kept as the source: its cause may quote the string.
    let mut pg: tokio_postgres::Config = rest.parse().map_err(|e| {
        format!(
            "the connection string does not parse: {}",
            parse_problem(&e)
        )
    })?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(config.connect_timeout);
    }
    if pg.get_application_name().is_none() {
        pg.application_name("orderflow");
    }
    if config.read_only {
        // Appended to options the URL may give: the server refuses this session's writes.
        let options = match pg.get_options() {
            Some(given) => format!("{given} -c default_transaction_read_only=on"),
            None => "-c default_transaction_read_only=on".to_owned(),
        };
        pg.options(&options);
    }
    let mut roots = tls::Roots::default();
    match options.root_cert.as_deref() {
        Some("system") => roots.system = true,
        Some(file) => roots
            .given
            .extend(tls::read_pem_file(file.as_ref(), "sslrootcert file")?),
        None => {}
    }
    if let Some(file) = &config.ca_file {
        roots.given.extend(tls::read_pem_file(file, "CA file")?);
    }
    if !config.ca_pem.is_empty() {
        roots.given.extend(tls::read_pem(
            &config.ca_pem,
            "the configured root certificates",
        )?);
    }
    // As libpq: sslrootcert=system makes verify-full the default.
    let mode = options.mode.unwrap_or(if roots.system {
        tls::SslMode::VerifyFull
    } else {
        tls::SslMode::Prefer
    });
    pg.ssl_mode(mode.driver());
    let connector = tls::connector(mode, roots)?;
    Ok((pg, connector))
}

/// What a connection string's parse error says, without any text of the string: the
/// driver's messages may quote a character or an option name from it, which may be part of
/// a password (a quote doubled SQL-style, a password with an unquoted space).
pub(super) fn parse_problem(e: &tokio_postgres::Error) -> String {
    let Some(cause) = std::error::Error::source(e).map(ToString::to_string) else {
        return e.to_string();
    };
    if let Some(name) = cause
        .strip_prefix("unknown option `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return if redact::is_known_option(name) {
            format!("option `{name}` is not supported")
        } else {
            "an unknown option".to_owned()
        };
    }
    if let Some(at) = cause.strip_prefix("unexpected character at byte ") {
        let at: String = at.chars().take_while(char::is_ascii_digit).collect();
        return format!("unexpected character at byte {at}");
    }
    // These name a fixed option, a position or nothing of the string.
    let safe = [
        "invalid value for option `",
        "invalid utf-8 sequence",
        "unexpected EOF",
    ];
    let exact = [
        "unterminated quoted connection parameter value",
        "unterminated parameter",
    ];
    if safe.iter().any(|p| cause.starts_with(p)) || exact.contains(&cause.as_str()) {
        cause
    } else {
        e.to_string()
    }
}
