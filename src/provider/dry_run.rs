//! The dry-run substitution: in a dry run ([`Engine::simulate`](crate::Engine::simulate))
//! a step's provider is not called; the call is recorded and answered with a simulated
//! reply instead.

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{Allocation, FulfillmentPlan, PlannedLine, Reply, Request, RequestKind};
use crate::document::RecordId;

/// A provider call a dry run would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SimulatedCall {
    /// The step.
    pub step: String,
    /// The provider.
    pub provider: String,
    /// The request.
    pub request: RequestKind,
    /// The record it is about.
    pub record: RecordId,
}

/// Stands in for every provider of a dry run: records each call and answers it — done,
/// and for fulfillment determination a plan sourcing each line fully from the fulfillment
/// source it already has (a line without one stays unsourced).
#[derive(Debug, Default)]
pub(crate) struct DryRunCalls {
    calls: Mutex<Vec<SimulatedCall>>,
}

impl DryRunCalls {
    /// Records the call `step` would make to `provider` for `record`, and answers it.
    pub(crate) fn answer(
        &self,
        step: &str,
        provider: &str,
        request: &Request<'_>,
        record: &RecordId,
    ) -> Reply {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(SimulatedCall {
                step: step.to_owned(),
                provider: provider.to_owned(),
                request: request.kind(),
                record: record.clone(),
            });
        match request {
            Request::DetermineFulfillment { order } => Reply::FulfillmentPlan(FulfillmentPlan {
                lines: order
                    .lines
                    .iter()
                    .filter_map(|l| {
                        l.fulfillment_source.as_ref().map(|source| PlannedLine {
                            line: l.id.clone(),
                            allocations: vec![Allocation {
                                source: source.clone(),
                                quantity: l.quantity,
                            }],
                        })
                    })
                    .collect(),
            }),
            _ => Reply::Done,
        }
    }

    /// The calls recorded so far, taken.
    pub(crate) fn take(&self) -> Vec<SimulatedCall> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::{DryRunCalls, SimulatedCall};
    use crate::document::{Order, OrderLine, RecordId};
    use crate::provider::{Reply, Request, RequestKind};

    #[test]
    fn calls_are_recorded_and_answered_without_a_provider() {
        let calls = DryRunCalls::default();
        let mut sourced = OrderLine::new("1", "SKU", 2);
        sourced.fulfillment_source = Some("East".into());
        let mut order = Order::new("SO-1");
        order.lines = vec![sourced, OrderLine::new("2", "SKU", 1)];
        let reply = calls.answer(
            "Source",
            "DOM",
            &Request::DetermineFulfillment { order: &order },
            &RecordId::Order,
        );
        let Reply::FulfillmentPlan(plan) = reply else {
            panic!("a plan: {reply:?}");
        };
        // Only the line with a source is planned, fully, from it.
        assert_eq!(plan.lines.len(), 1);
        assert_eq!(plan.lines[0].allocations[0].source, "East");
        let erp = calls.answer(
            "ERP",
            "SAP",
            &Request::SendToErp { order: &order },
            &RecordId::Order,
        );
        assert_eq!(erp, Reply::Done);
        assert_eq!(
            calls.take(),
            [
                SimulatedCall {
                    step: "Source".into(),
                    provider: "DOM".into(),
                    request: RequestKind::DetermineFulfillment,
                    record: RecordId::Order,
                },
                SimulatedCall {
                    step: "ERP".into(),
                    provider: "SAP".into(),
                    request: RequestKind::SendToErp,
                    record: RecordId::Order,
                },
            ]
        );
        assert!(calls.take().is_empty());
    }
}
