//! A flow's JSON form: its shape and structural limits on the parsed JSON, before the typed
//! flow is built, then the typed flow's own checks.

use super::{document_error, parse_document};
use crate::error::Error;
use crate::flow::Flow;
use crate::limits::{LimitError, Limits};
use crate::measure::shorten;

impl Flow {
    /// Parses a flow document, rejecting unknown fields and wrong types with the place.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        Self::from_json_with(json, &Limits::default())
    }

    /// Parses a flow from JSON within `limits`: the document's size before parsing, every
    /// string's length, then steps, branches and element nesting
    /// ([`check_limits`](Self::check_limits)). Past a limit: [`Error::Limit`]
    /// naming it and the place; malformed: [`Error::Document`].
    pub fn from_json_with(json: &str, limits: &Limits) -> Result<Self, Error> {
        let flow: Self = parse_document(
            "flow",
            json,
            limits,
            ("max_document_bytes", limits.max_document_bytes),
            |value| flow_shape(value, limits),
        )?;
        flow.check_limits(limits)?;
        Ok(flow)
    }
}

/// The step kinds a flow document writes, one per step object.
const STEP_KINDS: [&str; 5] = [
    "action",
    "condition",
    "condition_merge",
    "splitter",
    "splitter_merge",
];

/// The form and size of a flow document on its parsed JSON, before the typed flow is
/// built: each step an object with exactly one step kind (so a mistake reads as itself
/// rather than as the parser's complaint at a comma), and the step, branch and nesting
/// limits, checked as the walk goes so it never holds more than the limits allow.
fn flow_shape(value: &serde_json::Value, limits: &Limits) -> Result<(), Error> {
    use serde_json::Value;
    // (a sequence, its place, element nesting)
    let mut stack: Vec<(&Value, String, usize)> = Vec::new();
    if let Some(steps) = value.get("steps") {
        stack.push((steps, "$.steps".to_owned(), 0));
    }
    let mut count = 0usize;
    while let Some((sequence, path, depth)) = stack.pop() {
        let Value::Array(steps) = sequence else {
            continue;
        };
        for (i, step) in steps.iter().enumerate() {
            count += 1;
            if count > limits.max_steps {
                return Err(LimitError::new(
                    "flow",
                    "max_steps",
                    limits.max_steps,
                    count,
                    format!("{path}[{i}]"),
                )
                .into());
            }
            let Value::Object(map) = step else {
                continue;
            };
            if map.len() != 1 || !map.keys().all(|k| STEP_KINDS.contains(&k.as_str())) {
                let keys: Vec<String> = map.keys().map(|k| format!("`{}`", shorten(k))).collect();
                return Err(document_error(
                    "flow",
                    format!(
                        "a step has exactly one of `action`, `condition`, `condition_merge`, `splitter`, `splitter_merge`; found {} at {path}[{i}]",
                        if keys.is_empty() {
                            "none".to_owned()
                        } else {
                            keys.join(", ")
                        }
                    ),
                ));
            }
            for (kind, body) in map {
                let nested = body.get("yes").is_some()
                    || body.get("no").is_some()
                    || body.get("branches").is_some();
                if !nested {
                    continue;
                }
                let at = format!("{path}[{i}].{kind}");
                if depth + 1 > limits.max_nesting {
                    return Err(LimitError::new(
                        "flow",
                        "max_nesting",
                        limits.max_nesting,
                        depth + 1,
                        at,
                    )
                    .into());
                }
                for key in ["yes", "no"] {
                    if let Some(seq) = body.get(key) {
                        stack.push((seq, format!("{at}.{key}"), depth + 1));
                    }
                }
                if let Some(Value::Object(branches)) = body.get("branches") {
                    if branches.len() > limits.max_branches {
                        return Err(LimitError::new(
                            "flow",
                            "max_branches",
                            limits.max_branches,
                            branches.len(),
                            at,
                        )
                        .into());
                    }
                    for (name, seq) in branches {
                        stack.push((seq, format!("{at}.branches.{}", shorten(name)), depth + 1));
                    }
                }
            }
        }
    }
    Ok(())
}
