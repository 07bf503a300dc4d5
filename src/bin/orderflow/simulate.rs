//! `orderflow simulate`: a flow run on an order with no provider called, and for CI the
//! assertion of how the order's path ends (`--expect`).

use std::path::{Path, PathBuf};

use clap::ValueEnum;
use orderflow::document::Order;
use orderflow::execution::ExecutionStatus;

use crate::diagnostic::{Diagnostic, Reporter};
use crate::engine::{self, Known};
use crate::input::{self, Input};
use crate::{Failure, Outcome, Report};

/// How a simulated order's path ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Expect {
    /// Every path ended.
    Completed,
    /// A path ended Failed.
    Failed,
    /// Every live path waits for an event.
    Waiting,
}

impl Expect {
    /// How a dry run's execution ended, if it started one.
    fn of(status: ExecutionStatus) -> Option<Self> {
        match status {
            ExecutionStatus::Completed => Some(Self::Completed),
            ExecutionStatus::Failed => Some(Self::Failed),
            ExecutionStatus::Waiting => Some(Self::Waiting),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Waiting => "waiting",
        }
    }
}

pub(crate) async fn simulate(
    flow: &Path,
    order: &Path,
    policies: &[PathBuf],
    format: Report,
    expect: Option<Expect>,
    out: &mut Reporter,
) -> Outcome {
    let flow_doc = input::read_flow(flow, out)?;
    let text = input::read(order, Input::Order, out)?;
    let order_doc: Order = serde_json::from_str(&text).map_err(|e| {
        let root = crate::span::parse(&text);
        out.emit(
            Diagnostic::error("invalid-order", input::json_message(&e))
                .in_file(order)
                .at(input::syntax_place(
                    &text,
                    e.line(),
                    e.column(),
                    root.as_ref(),
                )),
        );
        Failure::Invalid
    })?;
    let mut all = Vec::new();
    for p in policies {
        all.extend(input::read_policies(p, out)?);
    }
    let known = Known {
        documents: &all,
        ..Known::default()
    };
    let engine = engine::engine(&[&flow_doc], &known).await?;
    let simulation = match engine.simulate(&flow_doc, &order_doc).await {
        Ok(s) => s,
        Err(e) => {
            let text = out.text(flow).unwrap_or_default().to_owned();
            input::report(flow, &text, &e, out);
            return Err(Failure::Invalid);
        }
    };
    match format {
        Report::Text => crate::output(&simulation),
        Report::Json => crate::output(format!(
            "{}\n",
            serde_json::to_string_pretty(&simulation).unwrap_or_default()
        )),
    }
    let Some(expected) = expect else {
        return Ok(());
    };
    let ended = simulation
        .journey
        .executions
        .first()
        .map(|e| (e.status, e.failure.clone()));
    match ended {
        Some((status, _)) if Expect::of(status) == Some(expected) => Ok(()),
        Some((status, failure)) => Err(Failure::Unexpected(format!(
            "order '{}' was expected to end {}, its path ended {status:?}{}",
            order_doc.id,
            expected.name(),
            failure.map(|why| format!(": {why}")).unwrap_or_default()
        ))),
        None => Err(Failure::Unexpected(format!(
            "order '{}' was expected to end {}, the flow did not start for it",
            order_doc.id,
            expected.name()
        ))),
    }
}
