//! An order document within the [`Limits`]: every string and the whole document's size.

use super::{Address, Attributes, Order, Value};
use crate::limits::{LimitError, Limits};

impl Order {
    /// Checks the document within `limits`: every string, then its size. `what` is the
    /// kind of input that brings it ("event", "order update"); `place` names that input.
    pub(crate) fn check_limits(
        &self,
        what: &'static str,
        limits: &Limits,
        place: impl Fn() -> String,
    ) -> Result<(), LimitError> {
        if let Some(long) = self
            .strings()
            .map(str::len)
            .find(|n| *n > limits.max_string_bytes)
        {
            return Err(LimitError::new(
                what,
                "max_string_bytes",
                limits.max_string_bytes,
                long,
                format!("{} (order document)", place()),
            ));
        }
        let size = crate::measure::serialized_size(self);
        if size > limits.max_order_bytes {
            return Err(LimitError::new(
                what,
                "max_order_bytes",
                limits.max_order_bytes,
                size,
                place(),
            ));
        }
        Ok(())
    }

    /// Every string of the document, without serializing it.
    fn strings(&self) -> impl Iterator<Item = &str> {
        fn opt(s: &Option<String>) -> Option<&str> {
            s.as_deref()
        }
        fn address(a: &Address) -> impl Iterator<Item = &str> {
            [
                &a.name,
                &a.street,
                &a.city,
                &a.state,
                &a.postal_code,
                &a.country,
            ]
            .into_iter()
            .filter_map(opt)
        }
        fn custom(c: &Attributes) -> impl Iterator<Item = &str> {
            c.iter().flat_map(|(k, v)| {
                let text = match v {
                    Value::Text(t) => Some(t.as_str()),
                    _ => None,
                };
                std::iter::once(k.as_str()).chain(text)
            })
        }
        let header = [
            &self.order_number,
            &self.external_order_id,
            &self.order_source,
            &self.customer,
            &self.currency,
            &self.company,
            &self.fulfillment_strategy,
        ]
        .into_iter()
        .filter_map(opt)
        .chain([self.id.as_str()])
        .chain(self.status_reason.as_ref().map(|r| r.as_str()))
        .chain(address(&self.ship_to))
        .chain(address(&self.bill_to))
        .chain(custom(&self.custom));
        let lines = self.lines.iter().flat_map(|l| {
            [
                &l.unit,
                &l.fulfillment_source,
                &l.shipping_warehouse,
                &l.split_group,
                &l.requested_delivery_date,
            ]
            .into_iter()
            .filter_map(opt)
            .chain([l.id.as_str(), l.product.as_str()])
            .chain(l.status_reason.as_ref().map(|r| r.as_str()))
            .chain(custom(&l.custom))
        });
        let fos = self.fulfillment_orders.iter().flat_map(|f| {
            [f.id.as_str(), f.fulfillment_source.as_str()]
                .into_iter()
                .chain(f.status_reason.as_ref().map(|r| r.as_str()))
                .chain(custom(&f.custom))
                .chain(f.lines.iter().flat_map(|l| {
                    [l.order_line.as_str(), l.product.as_str()]
                        .into_iter()
                        .chain(l.status_reason.as_ref().map(|r| r.as_str()))
                        .chain(custom(&l.custom))
                }))
        });
        header.chain(lines).chain(fos)
    }
}
