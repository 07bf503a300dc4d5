//! A host service: the engine inside an HTTP API, the way a team puts it in production.
//!
//! ```text
//! cargo run --example service --features sqlite
//! ORDERFLOW_ADDR=127.0.0.1:0 ORDERFLOW_DB=/tmp/shop.db cargo run --example service --features sqlite
//! ORDERFLOW_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --example service --features sqlite,postgres
//! ```
//!
//! - `POST /events` — an event as JSON (`Event`'s documented form); with PostgreSQL it is
//!   queued for whichever instance claims the order (202), otherwise run at once (200, the
//!   receipt).
//! - `GET /orders/{id}` — the order document; `GET /orders/{id}/journey` — its journey as
//!   JSON; `GET /orders/{id}/journey.mmd` — the journey on each flow as a Mermaid diagram;
//!   `GET /orders/{id}/journey.html` — a self-contained HTML report of the order on the flow
//!   of its latest execution (`render::journey_html`): the path drawn as SVG, the timeline,
//!   every step's details, the order's fields.
//! - `POST /orders/{id}/executions/{seq}/reprocess` and `…/cancel`.
//! - `GET /health`.
//!
//! At start it recovers what a previous run left in flight and starts the background work
//! (`Engine::start`); on SIGTERM or Ctrl-C it stops taking requests, lets the ones under way
//! finish, drains the background work, and exits. SQLite by default (`ORDERFLOW_DB`, default
//! `orderflow-service.db` in the temporary directory); PostgreSQL when `ORDERFLOW_PG_URL` is
//! set (build with `--features postgres`). It prints `listening on http://<addr>` once it
//! takes requests.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orderflow::document::OrderId;
use orderflow::execution::ExecutionId;
use orderflow::flow::Flow;
use orderflow::render::{self, Report};
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Error, ErrorKind, Event, MemoryProvider};

const POLICIES: &str = include_str!("reference-lab/policies.json");
const FLOW: &str = include_str!("reference-lab/flow.json");

#[derive(Clone)]
struct App {
    engine: Engine,
    /// Events are queued (a shared store) rather than run in the request.
    queued: bool,
}

/// An engine error as an HTTP response: the status from its kind, the message as text.
struct Failure(Error);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = match self.0.kind() {
            ErrorKind::Document
            | ErrorKind::Validation
            | ErrorKind::InvalidInput
            | ErrorKind::Limit => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::AlreadyExists | ErrorKind::InvalidState => StatusCode::CONFLICT,
            ErrorKind::Store if self.0.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, format!("{}\n", self.0)).into_response()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn post_event(State(app): State<App>, body: String) -> Result<Response, Failure> {
    let event = Event::from_json(&body)?;
    if app.queued {
        app.engine.enqueue(event).await?;
        return Ok((StatusCode::ACCEPTED, "queued\n").into_response());
    }
    let receipt = app.engine.submit(event).await?;
    Ok(json(&serde_json::json!({
        "duplicate": receipt.duplicate,
        "seq": receipt.seq,
        "started": receipt.started.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })))
}

async fn get_order(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Failure> {
    let order = OrderId::from(id.as_str());
    match app.engine.order(&order).await? {
        Some(document) => Ok(json(&document)),
        None => Err(Error::UnknownOrder(order).into()),
    }
}

async fn get_journey(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Failure> {
    let journey = app.engine.journey(&id).await?;
    Ok(json(&journey))
}

async fn get_mermaid(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Failure> {
    let journey = app.engine.journey(&id).await?;
    let mut out = String::new();
    for execution in &journey.executions {
        let flow: Option<Flow> = app
            .engine
            .store()
            .flow_version(&execution.flow, &execution.version)
            .await
            .map_err(Error::from)?;
        if let Some(flow) = flow {
            out.push_str(&format!("%% {} ({})\n", execution.id, flow.name));
            out.push_str(&render::journey_mermaid(&flow, &journey));
            out.push('\n');
        }
    }
    Ok(([(header::CONTENT_TYPE, "text/vnd.mermaid")], out).into_response())
}

async fn get_report(State(app): State<App>, Path(id): Path<String>) -> Result<Response, Failure> {
    let order = OrderId::from(id.as_str());
    let document = app
        .engine
        .order(&order)
        .await?
        .ok_or_else(|| Error::UnknownOrder(order.clone()))?;
    let journey = app.engine.journey(&order).await?;
    let latest = journey
        .executions
        .last()
        .ok_or_else(|| Error::UnknownOrder(order.clone()))?;
    let flow: Flow = app
        .engine
        .store()
        .flow_version(&latest.flow, &latest.version)
        .await
        .map_err(Error::from)?
        .ok_or_else(|| Error::UnknownFlow(latest.flow.clone()))?;
    let html = render::journey_html(&Report::new(&flow, &journey).after(&document));
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

fn execution(order: &str, seq: u32) -> ExecutionId {
    ExecutionId {
        order: OrderId::from(order),
        seq,
    }
}

async fn reprocess(
    State(app): State<App>,
    Path((order, seq)): Path<(String, u32)>,
) -> Result<StatusCode, Failure> {
    app.engine.reprocess(&execution(&order, seq)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn cancel(
    State(app): State<App>,
    Path((order, seq)): Path<(String, u32)>,
) -> Result<StatusCode, Failure> {
    app.engine.cancel(&execution(&order, seq)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn engine() -> Result<(Engine, bool), Box<dyn std::error::Error>> {
    let builder = Engine::builder()
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"));
    if let Ok(url) = std::env::var("ORDERFLOW_PG_URL") {
        #[cfg(feature = "postgres")]
        {
            let store = orderflow::store::PostgresStore::connect(&url).await?;
            let engine = builder.shared_store(store).build().await?;
            return Ok((engine, true));
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            return Err("ORDERFLOW_PG_URL is set: build with --features postgres".into());
        }
    }
    let path = std::env::var("ORDERFLOW_DB").map_or_else(
        |_| std::env::temp_dir().join("orderflow-service.db"),
        std::path::PathBuf::from,
    );
    let store = orderflow::store::SqliteStore::open(&path)?;
    Ok((builder.store(store).build().await?, false))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (engine, queued) = engine().await?;
    if engine.flow("Reference lab").is_none() {
        for policy in PolicyDocument::list_from_json(POLICIES)? {
            let name = policy.name.clone();
            engine.create_policy(policy).await?;
            engine.publish_policy(&name).await?;
        }
        engine.create_flow(Flow::from_json(FLOW)?).await?;
        engine.publish("Reference lab").await?;
    }
    // Recovery of what a previous run left in flight, then retries and timers.
    let background = engine.start();

    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/events", post(post_event))
        .route("/orders/{id}", get(get_order))
        .route("/orders/{id}/journey", get(get_journey))
        .route("/orders/{id}/journey.mmd", get(get_mermaid))
        .route("/orders/{id}/journey.html", get(get_report))
        .route("/orders/{id}/executions/{seq}/reprocess", post(reprocess))
        .route("/orders/{id}/executions/{seq}/cancel", post(cancel))
        .with_state(App {
            engine: engine.clone(),
            queued,
        });
    let addr = std::env::var("ORDERFLOW_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(terminated())
        .await?;
    // Requests under way have finished; now the background work's turn under way.
    background.shutdown().await?;
    println!("stopped cleanly");
    Ok(())
}
