//! Dry runs: what a flow would do with an order, without calling a provider or touching the
//! engine's store.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::document::{Order, RecordId};
use crate::event::EventKind;
use crate::journey::{Journey, Outcome};
use crate::provider::{Allocation, FulfillmentPlan, PlannedLine, Reply, Request, RequestKind};

/// What [`Engine::simulate`](super::Engine::simulate) found: the path the order would take
/// and everything the run would decide on the way.
///
/// The run is real in everything but its effects: filters and execution policies are
/// evaluated, pure steps (validation, rule-based assignment) change a copy of the order,
/// and a step that would call a provider records the call instead and takes a simulated
/// answer — done, and for fulfillment determination a plan sourcing each line fully from
/// the fulfillment source it already has (a line without one stays unsourced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Simulation {
    /// The steps as they would run, with outcomes, details and findings.
    pub journey: Journey,
    /// The order as the run would leave it.
    pub order: Order,
    /// Provider calls the run would make, in order; none is made.
    pub calls: Vec<SimulatedCall>,
    /// What each filter would admit and turn away.
    pub filters: Vec<FilterDecision>,
    /// What each step would change on the order (execution policies' Set Value included).
    pub changes: Vec<Change>,
    /// Where the order would wait for an event.
    pub waits: Vec<Wait>,
}

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

/// What a step's filter would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FilterDecision {
    /// The step.
    pub step: String,
    /// The filter policy.
    pub policy: String,
    /// Records it would let through.
    pub admitted: Vec<RecordId>,
    /// Records it would turn away.
    pub rejected: Vec<RecordId>,
}

/// One field a step would change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Change {
    /// The step.
    pub step: String,
    /// The field, as a path into the order (`lines[1].fulfillment_source`, by line id).
    pub field: String,
    /// The value before (`null` when absent).
    pub before: serde_json::Value,
    /// The value after (`null` when removed).
    pub after: serde_json::Value,
}

/// A step where the order would wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Wait {
    /// The step.
    pub step: String,
    /// The events it would wait for.
    pub events: Vec<EventKind>,
}

impl fmt::Display for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dry run of order {}", self.journey.order)?;
        for s in &self.journey.steps {
            let outcome = match s.outcome {
                Outcome::Succeeded => "would succeed",
                Outcome::Failed => "would fail",
                Outcome::Skipped => "would be skipped",
                Outcome::Cancelled => "would be cancelled",
            };
            write!(f, "  {} {outcome}", s.step)?;
            for d in &s.details {
                write!(f, "; {d}")?;
            }
            for finding in &s.findings {
                write!(
                    f,
                    "; {} on {}: {}",
                    finding.policy, finding.record, finding.reason
                )?;
            }
            writeln!(f)?;
            for d in self.filters.iter().filter(|d| d.step == s.step) {
                writeln!(
                    f,
                    "    filter '{}' admits {}; turns away {}",
                    d.policy,
                    list(&d.admitted),
                    list(&d.rejected)
                )?;
            }
            for c in self.changes.iter().filter(|c| c.step == s.step) {
                writeln!(f, "    sets {}: {} -> {}", c.field, c.before, c.after)?;
            }
            for c in self.calls.iter().filter(|c| c.step == s.step) {
                writeln!(
                    f,
                    "    would call '{}' ({}) for {} (not called)",
                    c.provider, c.request, c.record
                )?;
            }
        }
        for w in &self.waits {
            let events: Vec<&str> = w.events.iter().map(EventKind::as_str).collect();
            writeln!(f, "  {} would wait for {}", w.step, events.join(" or "))?;
        }
        Ok(())
    }
}

fn list(records: &[RecordId]) -> String {
    if records.is_empty() {
        return "nothing".to_owned();
    }
    records
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a dry-run engine records as its turn goes.
#[derive(Debug, Default)]
pub(crate) struct DryRun {
    pub(crate) calls: Mutex<Vec<SimulatedCall>>,
    pub(crate) filters: Mutex<Vec<FilterDecision>>,
    pub(crate) changes: Mutex<Vec<Change>>,
}

impl DryRun {
    fn push<T>(list: &Mutex<Vec<T>>, item: T) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item);
    }

    /// Records a call and answers it as the dry run does.
    pub(crate) fn call(
        &self,
        step: &str,
        provider: &str,
        request: &Request<'_>,
        record: &RecordId,
    ) -> Reply {
        Self::push(
            &self.calls,
            SimulatedCall {
                step: step.to_owned(),
                provider: provider.to_owned(),
                request: request.kind(),
                record: record.clone(),
            },
        );
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

    pub(crate) fn filter(&self, decision: FilterDecision) {
        Self::push(&self.filters, decision);
    }

    /// Records what a step changed, from the order before and after it.
    pub(crate) fn changed(&self, step: &str, before: &Order, after: &Order) {
        let (Ok(before), Ok(after)) = (serde_json::to_value(before), serde_json::to_value(after))
        else {
            return;
        };
        let mut changes = Vec::new();
        diff(String::new(), &before, &after, &mut changes);
        let mut list = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        for (field, before, after) in changes {
            list.push(Change {
                step: step.to_owned(),
                field,
                before,
                after,
            });
        }
    }

    pub(crate) fn take(&self) -> (Vec<SimulatedCall>, Vec<FilterDecision>, Vec<Change>) {
        (take(&self.calls), take(&self.filters), take(&self.changes))
    }
}

fn take<T>(list: &Mutex<Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *list.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Leaf differences between two JSON values; arrays of objects with an `id` are matched by
/// it, so a path names a line by its id rather than its position.
fn diff(
    path: String,
    before: &serde_json::Value,
    after: &serde_json::Value,
    out: &mut Vec<(String, serde_json::Value, serde_json::Value)>,
) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                diff(join(k), va, b.get(k).unwrap_or(&Value::Null), out);
            }
            for (k, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                diff(join(k), &Value::Null, vb, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if keyed(a) && keyed(b) => {
            let id = |v: &Value| v.get("id").map(ToString::to_string).unwrap_or_default();
            for va in a {
                let vb = b.iter().find(|vb| id(vb) == id(va)).unwrap_or(&Value::Null);
                diff(format!("{path}[{}]", id(va).trim_matches('"')), va, vb, out);
            }
            for vb in b.iter().filter(|vb| !a.iter().any(|va| id(va) == id(vb))) {
                diff(
                    format!("{path}[{}]", id(vb).trim_matches('"')),
                    &Value::Null,
                    vb,
                    out,
                );
            }
        }
        (a, b) if a != b => out.push((path, a.clone(), b.clone())),
        _ => {}
    }
}

fn keyed(items: &[serde_json::Value]) -> bool {
    items.iter().all(|v| v.get("id").is_some())
}
