//! The idempotency key of a provider call: `<execution>/<step>/<round>/<record>`, derived
//! from committed state only, so the same call after a crash, a timeout or a durable retry
//! carries the same key, and a reprocess (a new round) a new one.

use std::fmt::{self, Write as _};

use crate::document::RecordId;

/// The parts of a step's keys that all its calls share; [`for_record`](Self::for_record)
/// adds the record.
#[derive(Clone, Copy)]
pub(crate) struct IdempotencyKey<'a> {
    execution: &'a (dyn fmt::Display + Sync),
    step: &'a str,
    round: u32,
}

impl fmt::Debug for IdempotencyKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdempotencyKey({}/{}/{}/…)",
            self.execution, self.step, self.round
        )
    }
}

impl<'a> IdempotencyKey<'a> {
    /// The keys of `step`'s calls in `round` of `execution`.
    pub(crate) fn new(execution: &'a (dyn fmt::Display + Sync), step: &'a str, round: u32) -> Self {
        Self {
            execution,
            step,
            round,
        }
    }

    /// `<execution>/<step>/<round>/<record>`, written in one buffer.
    pub(crate) fn for_record(&self, record: &RecordId) -> String {
        let mut key = String::with_capacity(64);
        let _ = write!(key, "{}/{}/{}/", self.execution, self.step, self.round);
        let _ = match record {
            RecordId::Order => key.write_str("order"),
            RecordId::Line(l) => write!(key, "line:{l}"),
            RecordId::FulfillmentOrder(f) => write!(key, "fo:{f}"),
            RecordId::FulfillmentOrderLine(f, n) => write!(key, "fo:{f}:{n}"),
        };
        key
    }
}

#[cfg(test)]
mod tests {
    use super::IdempotencyKey;
    use crate::document::{FulfillmentOrderId, LineId, RecordId};

    #[test]
    fn keys_name_execution_step_round_and_record() {
        let execution = "SO-1#2";
        let key = IdempotencyKey::new(&execution, "Send to 3PL", 3);
        assert_eq!(
            key.for_record(&RecordId::Order),
            "SO-1#2/Send to 3PL/3/order"
        );
        assert_eq!(
            key.for_record(&RecordId::Line(LineId::from("10"))),
            "SO-1#2/Send to 3PL/3/line:10"
        );
        let fo = FulfillmentOrderId::from("SO-1-FO1");
        assert_eq!(
            key.for_record(&RecordId::FulfillmentOrder(fo.clone())),
            "SO-1#2/Send to 3PL/3/fo:SO-1-FO1"
        );
        assert_eq!(
            key.for_record(&RecordId::FulfillmentOrderLine(fo, 2)),
            "SO-1#2/Send to 3PL/3/fo:SO-1-FO1:2"
        );
    }
}
