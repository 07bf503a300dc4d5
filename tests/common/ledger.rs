//! A 3PL whose ledger is a table in the PostgreSQL database every test process shares.

use std::sync::Arc;

use async_trait::async_trait;
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};

/// A 3PL whose effects are rows in the database every process shares: a key applies once
/// (`ON CONFLICT DO NOTHING`), and every call is counted.
#[derive(Debug, Clone)]
pub(crate) struct DbLedger {
    name: String,
    client: Arc<tokio_postgres::Client>,
    schema: String,
}

impl DbLedger {
    /// A 3PL named `name` writing to the `effects` table of `schema`.
    pub(crate) fn new(name: &str, client: Arc<tokio_postgres::Client>, schema: &str) -> Self {
        Self {
            name: name.to_owned(),
            client,
            schema: schema.to_owned(),
        }
    }
}

#[async_trait]
impl Provider for DbLedger {
    fn name(&self) -> &str {
        &self.name
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendFulfillmentOrder]
    }
    async fn call(
        &self,
        request: Request<'_>,
        cx: &CallContext<'_>,
    ) -> Result<Reply, ProviderError> {
        let Request::SendFulfillmentOrder {
            order,
            fulfillment_order,
        } = request
        else {
            return Err(ProviderError::rejected("only fulfillment orders"));
        };
        self.client
            .execute(
                &format!(
                    "INSERT INTO \"{}\".effects (key, order_id, fulfillment_order, provider)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (key) DO UPDATE SET calls = effects.calls + 1",
                    self.schema
                ),
                &[
                    &cx.idempotency_key,
                    &order.id.as_str(),
                    &fulfillment_order.id.as_str(),
                    &self.name,
                ],
            )
            .await
            .map_err(|e| ProviderError::unavailable(e.to_string()))?;
        Ok(Reply::Done)
    }
}

/// A client for the test's own statements.
pub(crate) async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The ledger table of `schema`: one row per idempotency key, with its calls counted.
pub(crate) async fn create_effects(db: &tokio_postgres::Client, schema: &str) {
    db.batch_execute(&format!(
        "CREATE TABLE \"{schema}\".effects (
             key TEXT PRIMARY KEY,
             order_id TEXT NOT NULL,
             fulfillment_order TEXT NOT NULL,
             provider TEXT NOT NULL,
             calls INTEGER NOT NULL DEFAULT 1
         )"
    ))
    .await
    .unwrap();
}
