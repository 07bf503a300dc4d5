//! What a dry run observes as its turn goes: the calls it would make (answered by the
//! provider module's substitution), what filters decide, and the fields steps change.

use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::document::{Order, RecordId};
use crate::provider::dry_run::{DryRunCalls, SimulatedCall};

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

/// What a dry-run engine records as its turn goes.
#[derive(Debug, Default)]
pub(crate) struct DryRun {
    pub(crate) calls: DryRunCalls,
    pub(crate) filters: Mutex<Vec<FilterDecision>>,
    pub(crate) changes: Mutex<Vec<Change>>,
}

impl DryRun {
    fn push<T>(list: &Mutex<Vec<T>>, item: T) {
        list.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item);
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
        (self.calls.take(), take(&self.filters), take(&self.changes))
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
