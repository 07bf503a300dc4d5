//! An event within the [`Limits`]: its strings, its payload and the order document it
//! brings, checked on the typed event.

use super::Event;
use crate::document::RecordId;
use crate::limits::{LimitError, Limits};
use crate::measure::{check_strings, serialized_size, shorten};

impl Event {
    /// Checks the event within `limits` — its strings, its payload's size and strings, and
    /// the order document it brings — as an engine does when it is submitted; an event read
    /// with [`Event::from_json_with`] met them as it was parsed.
    pub fn check_limits(&self, limits: &Limits) -> Result<(), LimitError> {
        let event = self;
        let id = event.id.as_str();
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
