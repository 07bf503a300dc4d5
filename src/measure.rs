//! Measuring documents against the [`Limits`]: every string of parsed JSON, the size a value
//! serializes to, and a key cut short for the place an error names. Reading a document's
//! text is [`json`](crate::json)'s; what each document checks on its typed form lives beside
//! the document.

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

/// The length of `value`'s JSON text, counted without building it.
pub(crate) fn serialized_size(value: &impl serde::Serialize) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a value that does not serialize counts as nothing.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}
