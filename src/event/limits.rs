//! An event within the [`Limits`]: its text, measured before it is parsed, and the typed
//! event.

use super::Event;
use crate::document::RecordId;
use crate::limits::{LimitError, Limits};
use crate::parse::{check_strings, serialized_size, shorten};

impl Event {
    /// Checks the event within `limits` — its strings, its payload's size and strings, and
    /// the order document it brings — as an engine does when it is submitted; an event read
    /// with [`Event::from_json_with`] met them as it was parsed.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), LimitError> {
        let event = self;
        let id = event.id.0.as_str();
        let place = || format!("event '{}'", shorten(id));
        for (s, what) in [
            (id, "id"),
            (event.kind.as_str(), "kind"),
            (event.order.as_str(), "order"),
        ] {
            if s.len() > limits.max_string_bytes {
                return Err(LimitError::new(
                    "event",
                    "max_string_bytes",
                    limits.max_string_bytes,
                    s.len(),
                    format!("{} ({what})", place()),
                ));
            }
        }
        if let Some(record) = &event.record {
            let long = match record {
                RecordId::Order => 0,
                RecordId::Line(l) => l.as_str().len(),
                RecordId::FulfillmentOrder(f) | RecordId::FulfillmentOrderLine(f, _) => {
                    f.as_str().len()
                }
            };
            if long > limits.max_string_bytes {
                return Err(LimitError::new(
                    "event",
                    "max_string_bytes",
                    limits.max_string_bytes,
                    long,
                    format!("{} (record)", place()),
                ));
            }
        }
        let payload = serialized_size(&event.payload);
        if payload > limits.max_payload_bytes {
            return Err(LimitError::new(
                "event",
                "max_payload_bytes",
                limits.max_payload_bytes,
                payload,
                place(),
            ));
        }
        check_strings("event", &event.payload, limits).map_err(|mut e| {
            e.place = format!("{} payload {}", place(), e.place);
            e
        })?;
        if let Some(order) = &event.document {
            order.check_limits("event", limits, place)?;
        }
        Ok(())
    }
}

/// An event's payload and order document as written in its text, measured without building
/// them, so an oversize one is turned away in time and memory independent of its content.
pub(crate) fn event_text(json: &str, limits: &Limits) -> Result<(), crate::Error> {
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
pub(crate) fn event_document_text(json: &str) -> Option<(&str, usize)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Order;
    use crate::event::EventKind;

    #[test]
    fn payloads_and_order_documents_meet_their_limits() {
        let event = Event::new("e-1", EventKind::SHIPPED, "SO-1")
            .with_payload(serde_json::json!({ "note": "x".repeat(70_000) }));
        let e = event.check_limits(&Limits::default()).unwrap_err();
        assert_eq!(e.limit, "max_payload_bytes");
        let event = Event::new_order(Order::new("SO-1"));
        event.check_limits(&Limits::default()).unwrap();
        let e = event
            .check_limits(&Limits::default().with_max_order_bytes(10))
            .unwrap_err();
        assert_eq!(e.limit, "max_order_bytes");
    }
}
