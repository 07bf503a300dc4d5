//! The JSON forms of documents, read with limits and exact numbers.
//!
//! Flows, policies and events come from users, admin screens, commerce sites and 3PLs as
//! JSON text. Reading one is a boundary: it turns untrusted text into a typed document or
//! into an [`Error`] that names the place ([`Error::Document`] with a line and column, or
//! [`Error::Limit`]). Each document's `from_json` is here, beside the others, above the
//! documents themselves and the crate's [`Error`], so the document modules know nothing of
//! the error type of the API:
//!
//! - [`Flow::from_json`](crate::flow::Flow::from_json) (in `flow.rs`): the flow's shape and
//!   structural limits on the parsed JSON, then the typed flow's limits.
//! - [`PolicyDocument::from_json`](crate::rules::PolicyDocument::from_json) and
//!   [`list_from_json`](crate::rules::PolicyDocument::list_from_json) (in `policy.rs`):
//!   rules and their nesting, and numbers that read as the decimals they write.
//! - [`Event::from_json`](crate::Event::from_json) (in `event.rs`): the payload's and order
//!   document's sizes measured on the text before they are built, and the order document's
//!   numbers read exactly.
//!
//! Every document goes through [`parse_document`]: the text's size before parsing, every
//! string's length on the parsed JSON, the typed value, and records written as objects.

mod event;
mod flow;
mod policy;

use crate::error::Error;
use crate::limits::{LimitError, Limits};
use crate::measure::{check_strings, shorten};

/// Parses a document within the limits on its text: the size first, then strings (and
/// `shape`, a check of the document's form) on the parsed JSON, then the typed value (each
/// parse keeps its line and column in errors), and finally that every record was written
/// as a JSON object: serde would otherwise take a struct from an array, by position.
fn parse_document<T: serde::de::DeserializeOwned + serde::Serialize>(
    what: &'static str,
    json: &str,
    limits: &Limits,
    max_bytes: (&'static str, usize),
    shape: impl FnOnce(&serde_json::Value) -> Result<(), Error>,
) -> Result<T, Error> {
    if json.len() > max_bytes.1 {
        return Err(LimitError::new(
            what,
            max_bytes.0,
            max_bytes.1,
            json.len(),
            "the document".into(),
        )
        .into());
    }
    let located = |e: serde_json::Error| Error::Document {
        what,
        line: e.line(),
        column: e.column(),
        message: json_message(&e),
    };
    let value: serde_json::Value = serde_json::from_str(json).map_err(located)?;
    shape(&value)?;
    check_strings(what, &value, limits)?;
    let typed: T = serde_json::from_str(json).map_err(located)?;
    let written = serde_json::to_value(&typed).map_err(|e| document_error(what, e.to_string()))?;
    objects_where_records(&value, &written).map_err(|message| document_error(what, message))?;
    Ok(typed)
}

/// A document error without a position in the text (the message names the place).
fn document_error(what: &'static str, message: String) -> Error {
    Error::Document {
        what,
        line: 0,
        column: 0,
        message,
    }
}

/// Compares a document as read with its typed value written back: where the typed value is
/// an object the document must have one, not an array.
fn objects_where_records(
    read: &serde_json::Value,
    written: &serde_json::Value,
) -> Result<(), String> {
    use serde_json::Value;
    let mut stack = vec![(read, written, "$".to_owned())];
    while let Some((r, w, path)) = stack.pop() {
        match (r, w) {
            (Value::Array(_), Value::Object(_)) => {
                return Err(format!(
                    "expected an object at {path}, found an array (records are written as objects with named fields)"
                ));
            }
            (Value::Object(r), Value::Object(w)) => {
                for (k, rv) in r {
                    if let Some(wv) = w.get(k) {
                        stack.push((rv, wv, format!("{path}.{}", shorten(k))));
                    }
                }
            }
            (Value::Array(r), Value::Array(w)) => {
                for (i, (rv, wv)) in r.iter().zip(w).enumerate() {
                    stack.push((rv, wv, format!("{path}[{i}]")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A `serde_json` error's message without the ` at line L column C` it ends with: the
/// position is kept in [`Error::Document`]'s fields and shown once.
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) if e.line() != 0 => message.to_owned(),
        _ => text,
    }
}

/// Refuses a document whose JSON numbers do not all read as the decimals written (see
/// [`first_inexact`](crate::number::first_inexact)), naming the first with its line and
/// column; `offset` is where `part` starts in `json`.
fn check_exact(what: &'static str, json: &str, part: &str, offset: usize) -> Result<(), Error> {
    let Some((at, token)) = crate::number::first_inexact(part) else {
        return Ok(());
    };
    let before = &json[..(offset + at).min(json.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
    Err(Error::Document {
        what,
        line,
        column,
        message: format!(
            "the number {token} has more digits than a JSON number carries exactly (15 \
             significant digits): write it as a string (\"{token}\") for a quantity or a \
             price, or as {{\"decimal\": \"{token}\"}} for a rule's value or a custom \
             attribute"
        ),
    })
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::event::Event;

    #[test]
    fn an_inexact_number_in_an_order_document_is_named_at_its_line_and_column() {
        let digits = "0.12345678901234567891";
        // The payload is the host's: the same number there is left alone.
        let json = format!(
            "{{\"id\": \"e-1\", \"kind\": \"New Order\", \"order\": \"SO-1\",\n\
             \"payload\": {{\"note\": {digits}}},\n\
             \"document\": {{\"id\": \"SO-1\",\n  \"custom\": {{\"weight\": {digits}}}}}}}"
        );
        let e = Event::from_json(&json).unwrap_err();
        let Error::Document {
            what,
            line,
            column,
            message,
        } = &e
        else {
            panic!("a document error: {e}");
        };
        assert_eq!((*what, *line, *column), ("event", 4, 24), "{e}");
        assert!(message.contains(&format!("\"{digits}\"")), "{message}");

        let exact = json.replacen(&format!("\"weight\": {digits}"), "\"weight\": 0.5", 1);
        Event::from_json(&exact).unwrap();
    }

    #[test]
    fn a_record_written_as_an_array_is_refused_with_its_place() {
        let json = r#"{"id": "e-1", "kind": "New Order", "order": "SO-1", "document": ["SO-1"]}"#;
        let e = Event::from_json(json).unwrap_err();
        assert!(
            matches!(&e, Error::Document { line: 0, message, .. }
                if message.contains("expected an object at $.document, found an array")),
            "{e}"
        );
    }
}
