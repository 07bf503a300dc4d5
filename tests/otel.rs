//! The OpenTelemetry example (`examples/otel.rs`) run with an in-memory exporter: each order
//! is one trace, the host's `order` span its root, the execution a child of it and every step
//! a child of the execution, each span carrying the order, flow and step as attributes.

#![cfg(all(feature = "tokio", feature = "tracing", feature = "metrics"))]

use std::collections::HashMap;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

#[path = "../examples/otel.rs"]
#[allow(dead_code)] // its `main` runs the stdout pipeline; the test calls the rest
mod example;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn has(span: &SpanData, key: &str, value: &str) -> bool {
    attribute(span, key).as_deref() == Some(value)
}

#[tokio::test(flavor = "current_thread")]
async fn each_order_is_one_trace_of_its_execution_and_steps() {
    let exporter = InMemorySpanExporter::default();
    let (provider, subscriber) = example::pipeline(exporter.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let (_engine, ids) = example::traced_lab().await.unwrap();
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    let mut traces: HashMap<TraceId, Vec<&SpanData>> = HashMap::new();
    for span in &spans {
        traces
            .entry(span.span_context.trace_id())
            .or_default()
            .push(span);
    }
    assert_eq!(
        traces.len(),
        example::ORDERS.len(),
        "one trace per order: {spans:#?}"
    );

    for ((order, quantity), (id, trace)) in example::ORDERS.into_iter().zip(&ids) {
        assert_eq!(id.as_str(), order);
        let members = &traces[trace];
        let root = members.iter().find(|s| s.name == "order").unwrap();
        assert_eq!(
            root.parent_span_id,
            SpanId::INVALID,
            "the host span is the root"
        );
        assert!(has(root, "order", order), "{root:#?}");

        let executions: Vec<_> = members
            .iter()
            .filter(|s| s.name == "orderflow.execution")
            .collect();
        assert_eq!(executions.len(), 1, "{order}: {members:#?}");
        let execution = executions[0];
        assert_eq!(execution.parent_span_id, root.span_context.span_id());
        assert!(has(execution, "order", order), "{execution:#?}");
        assert!(has(execution, "flow", "Reference lab"), "{execution:#?}");
        assert!(has(execution, "version", "1.0.0"), "{execution:#?}");
        assert!(
            has(execution, "execution", &format!("{order}#1")),
            "{execution:#?}"
        );

        let steps: Vec<_> = members
            .iter()
            .filter(|s| s.name == "orderflow.step")
            .collect();
        for step in &steps {
            assert_eq!(
                step.parent_span_id,
                execution.span_context.span_id(),
                "every step is a child of its execution: {step:#?}"
            );
            assert_eq!(step.span_context.trace_id(), *trace);
            assert!(has(step, "order", order), "{step:#?}");
            assert!(has(step, "flow", "Reference lab"), "{step:#?}");
        }
        let outcome = |name: &str| {
            let step = steps
                .iter()
                .find(|s| has(s, "step", name))
                .unwrap_or_else(|| panic!("{order} has no span for step {name}: {steps:#?}"));
            attribute(step, "outcome")
        };
        // The lab's policies send 100 and more from Seattle, less from Chicago.
        let (sent, skipped) = if quantity >= 100 {
            ("Send to Seattle", "Send to Chicago")
        } else {
            ("Send to Chicago", "Send to Seattle")
        };
        for name in [
            "Validate order header",
            "Validate order lines",
            "Policy based fulfillment determination",
            sent,
        ] {
            assert_eq!(
                outcome(name).as_deref(),
                Some("Succeeded"),
                "{order}: {name}"
            );
        }
        assert_eq!(outcome(skipped).as_deref(), Some("Skipped"), "{order}");
        assert!(
            members.iter().all(|s| s.name == "order"
                || s.name == "orderflow.execution"
                || s.name == "orderflow.step"),
            "{members:#?}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_engine_metrics_reach_the_opentelemetry_meter() {
    use opentelemetry_sdk::metrics::InMemoryMetricExporter;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

    let exporter = InMemoryMetricExporter::default();
    let (provider, recorder) = example::meters(exporter.clone());
    let (_, subscriber) = example::pipeline(InMemorySpanExporter::default());
    let _guard = tracing::subscriber::set_default(subscriber);
    let _recorder = metrics::set_default_local_recorder(&recorder);
    example::traced_lab().await.unwrap();
    provider.force_flush().unwrap();

    let mut sums: HashMap<(String, Vec<(String, String)>), u64> = HashMap::new();
    for resource in exporter.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics() {
                if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                    for point in sum.data_points() {
                        let mut labels: Vec<(String, String)> = point
                            .attributes()
                            .map(|kv| (kv.key.to_string(), kv.value.as_str().into_owned()))
                            .collect();
                        labels.sort();
                        *sums.entry((metric.name().to_owned(), labels)).or_default() +=
                            point.value();
                    }
                }
            }
        }
    }
    let get = |name: &str, labels: &[(&str, &str)]| {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        sums.get(&(name.to_owned(), labels)).copied()
    };
    assert_eq!(
        get("orderflow_orders_accepted_total", &[]),
        Some(example::ORDERS.len() as u64),
        "{sums:#?}"
    );
    assert_eq!(
        get(
            "orderflow_steps_total",
            &[
                ("flow", "Reference lab"),
                ("step", "Validate order header"),
                ("outcome", "succeeded"),
            ],
        ),
        Some(example::ORDERS.len() as u64),
        "{sums:#?}"
    );
}
