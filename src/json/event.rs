//! An event's JSON form: the payload's and order document's sizes measured on the text
//! before they are built, the typed event's checks, and the order document's numbers read
//! exactly.

use super::{check_exact, parse_document};
use crate::error::Error;
use crate::event::Event;
use crate::limits::{LimitError, Limits};
use crate::measure::shorten;

impl Event {
    /// Parses an event from JSON (as a host receives it from a commerce site or a 3PL)
    /// within the default [`Limits`]: see
    /// [`from_json_with`](Self::from_json_with).
    pub fn from_json(json: &str) -> Result<Self, Error> {
        Self::from_json_with(json, &Limits::default())
    }

    /// Parses an event within `limits`: its size before parsing
    /// (`max_event_bytes`), every string's length, then the payload's and order
    /// document's sizes. Past a limit: [`Error::Limit`]; malformed, or
    /// with a number in the order document that does not read as the decimal it writes
    /// (more than 15 significant digits: write it as a string):
    /// [`Error::Document`].
    pub fn from_json_with(json: &str, limits: &Limits) -> Result<Self, Error> {
        event_text(json, limits)?;
        let event: Self = parse_document(
            "event",
            json,
            limits,
            ("max_event_bytes", limits.max_event_bytes),
            |_| Ok(()),
        )?;
        event.check_limits(limits)?;
        if let Some((document, offset)) = event_document_text(json) {
            check_exact("event", json, document, offset)?;
        }
        Ok(event)
    }
}

/// An event's payload and order document as written in its text, measured without building
/// them, so an oversize one is turned away in time and memory independent of its content.
fn event_text(json: &str, limits: &Limits) -> Result<(), Error> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Parts<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        payload: Option<&'a RawValue>,
        #[serde(borrow, default)]
        document: Option<&'a RawValue>,
    }
    if json.len() > limits.max_event_bytes {
        return Err(LimitError::new(
            "event",
            "max_event_bytes",
            limits.max_event_bytes,
            json.len(),
            "the document".into(),
        )
        .into());
    }
    // A text that is not an event object is left to the full parse to report.
    let Ok(parts) = serde_json::from_str::<Parts<'_>>(json) else {
        return Ok(());
    };
    let id = parts.id.map_or("", |r| r.get().trim_matches('"'));
    let place = || format!("event '{}'", shorten(id));
    if let Some(payload) = parts.payload {
        let size = payload.get().len();
        if size > limits.max_payload_bytes {
            return Err(LimitError::new(
                "event",
                "max_payload_bytes",
                limits.max_payload_bytes,
                size,
                place(),
            )
            .into());
        }
    }
    if let Some(document) = parts.document {
        let size = document.get().len();
        if size > limits.max_order_bytes {
            return Err(LimitError::new(
                "event",
                "max_order_bytes",
                limits.max_order_bytes,
                size,
                place(),
            )
            .into());
        }
    }
    Ok(())
}

/// An event's order document as written in its text, and where it starts: its numbers are
/// decimals and must read as written (the payload is the host's and may hold any number).
fn event_document_text(json: &str) -> Option<(&str, usize)> {
    #[derive(serde::Deserialize)]
    struct Parts<'a> {
        #[serde(borrow, default)]
        document: Option<&'a serde_json::value::RawValue>,
    }
    let document = serde_json::from_str::<Parts<'_>>(json)
        .ok()?
        .document?
        .get();
    // The raw value borrows from `json`: its start is an offset into it.
    let offset = (document.as_ptr() as usize).checked_sub(json.as_ptr() as usize)?;
    Some((document, offset))
}
