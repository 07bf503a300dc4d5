//! Reading untrusted JSON documents (flows, policies, events) within the [`Limits`]: the
//! text's size before parsing, every string's length on the parsed JSON, records written as
//! objects. What each document checks on its typed form lives beside the document.

use crate::limits::{LimitError, Limits};

/// Every string (keys included) of parsed JSON, without recursion, in memory proportional
/// to the nesting depth (a place is written out only for an error).
pub(crate) fn check_strings(
    what: &'static str,
    value: &serde_json::Value,
    limits: &Limits,
) -> Result<(), LimitError> {
    use serde_json::Value;
    /// An open container: its remaining children.
    enum Frame<'v> {
        Array(std::iter::Enumerate<std::slice::Iter<'v, Value>>),
        Object(serde_json::map::Iter<'v>),
    }
    /// Where a value sits in its parent.
    enum Seg<'v> {
        Index(usize),
        Key(&'v str),
    }
    fn place(segs: &[Seg<'_>], last: Option<&Seg<'_>>) -> String {
        let mut p = "$".to_owned();
        for seg in segs.iter().chain(last) {
            match seg {
                Seg::Index(i) => p.push_str(&format!("[{i}]")),
                Seg::Key(k) => {
                    p.push('.');
                    p.push_str(shorten(k));
                }
            }
        }
        p
    }
    let long = |s: &str| s.len() > limits.max_string_bytes;
    let mut frames: Vec<Frame<'_>> = Vec::new();
    // The segment of each open container but the root.
    let mut segs: Vec<Seg<'_>> = Vec::new();
    let mut next: Option<(&Value, Option<Seg<'_>>)> = Some((value, None));
    loop {
        if let Some((v, seg)) = next.take() {
            match v {
                Value::String(s) if long(s) => {
                    return Err(LimitError::new(
                        what,
                        "max_string_bytes",
                        limits.max_string_bytes,
                        s.len(),
                        place(&segs, seg.as_ref()),
                    ));
                }
                Value::Array(items) => {
                    segs.extend(seg);
                    frames.push(Frame::Array(items.iter().enumerate()));
                }
                Value::Object(map) => {
                    segs.extend(seg);
                    frames.push(Frame::Object(map.iter()));
                }
                _ => {}
            }
        }
        let Some(frame) = frames.last_mut() else {
            return Ok(());
        };
        let child = match frame {
            Frame::Array(items) => items.next().map(|(i, v)| (v, Seg::Index(i))),
            Frame::Object(entries) => match entries.next() {
                Some((k, _)) if long(k) => {
                    return Err(LimitError::new(
                        what,
                        "max_string_bytes",
                        limits.max_string_bytes,
                        k.len(),
                        format!("a key of {}", place(&segs, None)),
                    ));
                }
                Some((k, v)) => Some((v, Seg::Key(k.as_str()))),
                None => None,
            },
        };
        match child {
            Some((v, seg)) => next = Some((v, Some(seg))),
            None => {
                frames.pop();
                if !frames.is_empty() {
                    segs.pop();
                }
            }
        }
    }
}

/// A key as it appears in a place: long keys are cut (their length is the error).
pub(crate) fn shorten(key: &str) -> &str {
    let mut end = key.len().min(64);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// Counts bytes written, to measure a serialized size without keeping it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn serialized_size(value: &impl serde::Serialize) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a value that does not serialize counts as nothing.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Parses a document within the limits on its text: the size first, then strings (and
/// `shape`, a check of the document's form) on the parsed JSON, then the typed value (each
/// parse keeps its line and column in errors), and finally that every record was written
/// as a JSON object: serde would otherwise take a struct from an array, by position.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned + serde::Serialize>(
    what: &'static str,
    json: &str,
    limits: &Limits,
    max_bytes: (&'static str, usize),
    shape: impl FnOnce(&serde_json::Value) -> Result<(), crate::Error>,
) -> Result<T, crate::Error> {
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
    let located = |e: serde_json::Error| crate::Error::Document {
        what,
        line: e.line(),
        column: e.column(),
        message: json_message(&e),
    };
    let unlocated = |message: String| crate::Error::Document {
        what,
        line: 0,
        column: 0,
        message,
    };
    let value: serde_json::Value = serde_json::from_str(json).map_err(located)?;
    shape(&value)?;
    check_strings(what, &value, limits)?;
    let typed: T = serde_json::from_str(json).map_err(located)?;
    let written = serde_json::to_value(&typed).map_err(|e| unlocated(e.to_string()))?;
    objects_where_records(&value, &written).map_err(unlocated)?;
    Ok(typed)
}

/// A document error without a position in the text (the message names the place).
pub(crate) fn document_error(what: &'static str, message: String) -> crate::Error {
    crate::Error::Document {
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
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) if e.line() != 0 => message.to_owned(),
        _ => text,
    }
}
