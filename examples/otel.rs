//! The reference lab traced through OpenTelemetry: one trace per order, printed by the
//! stdout exporter.
//!
//! ```text
//! cargo run --example otel --features tracing
//! ```
//!
//! With the `tracing` feature the engine opens an `orderflow.execution` span per execution
//! and an `orderflow.step` span per step inside it, carrying the order, flow, version, step,
//! attempt and outcome. `tracing-opentelemetry` turns them into OpenTelemetry spans. The
//! engine's spans are children of whatever span is current when the work runs: here the
//! host's `order` span around each `submit`, the root of that order's trace (in a service,
//! the request's span). A production host swaps the stdout exporter for an OTLP one
//! (`opentelemetry-otlp`) and a batch processor; nothing else changes.
//!
//! `tests/otel.rs` runs this file's [`traced_lab`] with an in-memory exporter and checks
//! the traces it produces.

use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};
use orderflow::prelude::*;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const POLICIES: &str = include_str!("reference-lab/policies.json");
const FLOW: &str = include_str!("reference-lab/flow.json");

/// The orders the example submits: one for each store of the lab.
pub(crate) const ORDERS: [(&str, i64); 2] = [("OTEL-1", 110), ("OTEL-2", 10)];

/// A tracer provider that exports each span through `exporter` as it ends, and a
/// `tracing` subscriber that hands every span at INFO and above to it.
pub(crate) fn pipeline<E: SpanExporter + 'static>(
    exporter: E,
) -> (SdkTracerProvider, impl tracing::Subscriber + Send + Sync) {
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name("orderflow-otel-example")
                .build(),
        )
        .with_simple_exporter(exporter)
        .build();
    let tracer = provider.tracer("orderflow");
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    (provider, subscriber)
}

/// Publishes the reference lab on a memory store and submits [`ORDERS`], each inside an
/// `order` span of its own, the way a host's request handler would. Returns the engine and
/// each order's trace id.
///
/// # Errors
///
/// When the lab's documents do not publish or an order is refused.
pub(crate) async fn traced_lab()
-> Result<(Engine, Vec<(OrderId, TraceId)>), Box<dyn std::error::Error>> {
    let engine = Engine::builder()
        .store(MemoryStore::new())
        .provider(MemoryProvider::new("Seattle store 3PL"))
        .provider(MemoryProvider::new("Chicago store 3PL"))
        .build()
        .await?;
    for policy in PolicyDocument::list_from_json(POLICIES)? {
        let name = policy.name.clone();
        engine.create_policy(policy).await?;
        engine.publish_policy(&name).await?;
    }
    let flow = Flow::from_json(FLOW)?;
    let name = flow.name.clone();
    engine.create_flow(flow).await?;
    engine.publish(&name).await?;

    let mut traces = Vec::new();
    for (id, quantity) in ORDERS {
        let order = Order::new(id)
            .with_order_source("Contoso web shop")
            .with_ship_to_country("US")
            .with_line(OrderLine::new("1", "Surface Pen", quantity));
        let span = tracing::info_span!("order", order = id);
        // What a host puts in its logs or response headers to find the trace.
        let trace = span.context().span().span_context().trace_id();
        engine
            .submit(Event::new_order(order))
            .instrument(span)
            .await?;
        traces.push((OrderId::from(id), trace));
    }
    Ok((engine, traces))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (provider, subscriber) = pipeline(opentelemetry_stdout::SpanExporter::default());
    tracing::subscriber::set_global_default(subscriber)?;

    let (engine, traces) = traced_lab().await?;
    // Exports whatever is still buffered; a host does this on its way out.
    provider.shutdown()?;
    println!();
    for (id, trace) in traces {
        let journey = engine.journey(&id).await?;
        println!("{id}: trace {trace}\n{journey}");
    }
    Ok(())
}
