//! The OpenTelemetry example (`examples/otel.rs`) run with an in-memory exporter: each order
//! is one trace, the host's `order` span its root, the execution a child of it and every step
//! a child of the execution, each span carrying the order, flow and step as attributes.

#![cfg(all(feature = "tokio", feature = "tracing"))]

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
