//! A fresh store per run, for the enumerations that run a scenario once per crash or cancel
//! point: a new SQLite file in one temporary directory, or a new schema on the PostgreSQL
//! server at `ORDERFLOW_PG_URL`, all dropped at the end.

#![cfg(any(feature = "sqlite", feature = "postgres"))]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use orderflow::Store;

/// New SQLite files, one per [`open`](Self::open), removed with the directory.
#[cfg(feature = "sqlite")]
pub(crate) struct FreshSqlite {
    dir: tempfile::TempDir,
    next: AtomicU64,
}

#[cfg(feature = "sqlite")]
impl FreshSqlite {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            next: AtomicU64::new(0),
        }
    }

    /// A store on a new file.
    pub(crate) fn open(&self) -> impl Future<Output = Arc<dyn Store>> + use<> {
        let path = self.dir.path().join(format!(
            "run-{}.db",
            self.next.fetch_add(1, Ordering::Relaxed)
        ));
        async move { Arc::new(orderflow::store::SqliteStore::open(path).unwrap()) as Arc<dyn Store> }
    }
}

/// New schemas on the server at `ORDERFLOW_PG_URL`, one per [`open`](Self::open), named
/// after `what` and the process.
#[cfg(feature = "postgres")]
pub(crate) struct FreshPostgres {
    url: String,
    prefix: String,
    next: AtomicU64,
}

#[cfg(feature = "postgres")]
impl FreshPostgres {
    /// `None`, saying so, when `ORDERFLOW_PG_URL` is not set (CI sets it).
    pub(crate) fn from_env(what: &str) -> Option<Self> {
        let Ok(url) = std::env::var("ORDERFLOW_PG_URL") else {
            eprintln!("ORDERFLOW_PG_URL is not set; skipping (CI sets it)");
            return None;
        };
        Some(Self {
            url,
            prefix: format!("orderflow_{what}_{}", std::process::id()),
            next: AtomicU64::new(0),
        })
    }

    /// A store on a new schema.
    pub(crate) fn open(&self) -> impl Future<Output = Arc<dyn Store>> + use<> {
        let named = self.open_named();
        async move { named.await.0 }
    }

    /// A store on a new schema, and the schema's name (for a tool that opens it by name).
    pub(crate) fn open_named(&self) -> impl Future<Output = (Arc<dyn Store>, String)> + use<> {
        use orderflow::store::{PostgresConfig, PostgresStore};
        let schema = format!(
            "{}_{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        );
        let config = PostgresConfig::new(&self.url).with_schema(schema.clone());
        async move {
            let store =
                Arc::new(PostgresStore::connect_with(config).await.unwrap()) as Arc<dyn Store>;
            (store, schema)
        }
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Drops every schema [`open`](Self::open) made.
    pub(crate) async fn drop_all(self) {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT nspname FROM pg_catalog.pg_namespace WHERE starts_with(nspname, $1)",
                &[&format!("{}_", self.prefix)],
            )
            .await
            .unwrap();
        for row in rows {
            let name: String = row.get(0);
            client
                .batch_execute(&format!("DROP SCHEMA \"{name}\" CASCADE"))
                .await
                .unwrap();
        }
    }
}
