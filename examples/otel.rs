//! The reference lab traced and measured through OpenTelemetry: one trace per order, and
//! the engine's metrics, printed by the stdout exporters.
//!
//! ```text
//! cargo run --example otel --features tracing,metrics
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
//! Metrics: with the `metrics` feature the engine records through the `metrics` facade
//! (names and labels in `orderflow::metrics`). [`OtelRecorder`] is a `metrics` recorder
//! that hands each counter, gauge and histogram to an OpenTelemetry meter, so the same
//! exporter pipeline carries them; a production host points the meter provider at an OTLP
//! exporter.
//!
//! `tests/otel.rs` runs this file's [`traced_lab`] with in-memory exporters and checks the
//! traces and metrics it produces.

use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::{TraceContextExt as _, TraceId, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
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

/// A `metrics` recorder that records into an OpenTelemetry meter: counters as `u64`
/// counters, gauges as `f64` gauges, histograms as `f64` histograms, the key's labels as
/// attributes.
#[derive(Debug)]
pub(crate) struct OtelRecorder {
    meter: Meter,
}

impl OtelRecorder {
    /// A recorder into `meter`.
    pub(crate) fn new(meter: Meter) -> Self {
        Self { meter }
    }
}

fn attributes(key: &metrics::Key) -> Vec<KeyValue> {
    key.labels()
        .map(|l| KeyValue::new(l.key().to_owned(), l.value().to_owned()))
        .collect()
}

struct OtelCounter(opentelemetry::metrics::Counter<u64>, Vec<KeyValue>);

impl metrics::CounterFn for OtelCounter {
    fn increment(&self, value: u64) {
        self.0.add(value, &self.1);
    }
    fn absolute(&self, _value: u64) {
        // An OpenTelemetry counter only adds; the engine never sets absolute values.
    }
}

struct OtelGauge(
    opentelemetry::metrics::Gauge<f64>,
    Vec<KeyValue>,
    Mutex<f64>,
);

impl metrics::GaugeFn for OtelGauge {
    fn increment(&self, value: f64) {
        let mut v = self.2.lock().unwrap();
        *v += value;
        self.0.record(*v, &self.1);
    }
    fn decrement(&self, value: f64) {
        self.increment(-value);
    }
    fn set(&self, value: f64) {
        *self.2.lock().unwrap() = value;
        self.0.record(value, &self.1);
    }
}

struct OtelHistogram(opentelemetry::metrics::Histogram<f64>, Vec<KeyValue>);

impl metrics::HistogramFn for OtelHistogram {
    fn record(&self, value: f64) {
        self.0.record(value, &self.1);
    }
}

impl metrics::Recorder for OtelRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let counter = self.meter.u64_counter(key.name().to_owned()).build();
        metrics::Counter::from_arc(Arc::new(OtelCounter(counter, attributes(key))))
    }

    fn register_gauge(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        let gauge = self.meter.f64_gauge(key.name().to_owned()).build();
        metrics::Gauge::from_arc(Arc::new(OtelGauge(gauge, attributes(key), Mutex::new(0.0))))
    }

    fn register_histogram(
        &self,
        key: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        let histogram = self.meter.f64_histogram(key.name().to_owned()).build();
        metrics::Histogram::from_arc(Arc::new(OtelHistogram(histogram, attributes(key))))
    }
}

/// A meter provider exporting through `exporter` (when flushed or shut down), and the
/// `metrics` recorder that feeds it.
pub(crate) fn meters<E: PushMetricExporter>(exporter: E) -> (SdkMeterProvider, OtelRecorder) {
    let provider = SdkMeterProvider::builder()
        .with_resource(
            Resource::builder()
                .with_service_name("orderflow-otel-example")
                .build(),
        )
        .with_periodic_exporter(exporter)
        .build();
    let recorder = OtelRecorder::new(provider.meter("orderflow"));
    (provider, recorder)
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
    let (meter_provider, recorder) = meters(opentelemetry_stdout::MetricExporter::default());
    metrics::set_global_recorder(recorder)?;

    let (engine, traces) = traced_lab().await?;
    // Exports whatever is still buffered; a host does this on its way out.
    provider.shutdown()?;
    meter_provider.shutdown()?;
    println!();
    for (id, trace) in traces {
        let journey = engine.journey(&id).await?;
        println!("{id}: trace {trace}\n{journey}");
    }
    Ok(())
}
