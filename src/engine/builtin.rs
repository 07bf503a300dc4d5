//! The built-in actions of order orchestration.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::action::{Action, ActionContext, ActionError, ActionErrorKind, Effects, Sourcing};
use crate::document::{Decimal, FulfillmentOrderId, LineId, RecordId, State, StatusReason};
use crate::orchestration::ActionKind;
use crate::provider::{FulfillmentPlan, ProviderError, ProviderErrorKind, Reply, Request};

pub(super) fn register(builtins: &mut HashMap<ActionKind, Arc<dyn Action>>) {
    builtins.insert(
        ActionKind::ValidateOrderHeader,
        Arc::new(ValidateOrderHeader),
    );
    builtins.insert(ActionKind::ValidateOrderLine, Arc::new(ValidateOrderLine));
    builtins.insert(
        ActionKind::AssignFulfillmentSource,
        Arc::new(AssignFulfillmentSource),
    );
    builtins.insert(ActionKind::SendToDom, Arc::new(SendToDom));
    builtins.insert(ActionKind::SendToFulfillment, Arc::new(SendToFulfillment));
    builtins.insert(ActionKind::SendToFulfillmentErp, Arc::new(SendToErp));
    builtins.insert(ActionKind::SendToInvoice, Arc::new(SendToInvoice));
}

/// Stands in for an action a flow names but the engine lacks; compilation reports the
/// problem, so it never runs in a published flow.
#[derive(Debug)]
pub(super) struct Unavailable;

#[async_trait]
impl Action for Unavailable {
    async fn run(&self, _cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        Err(ActionError::new("the step's action is not registered"))
    }
}

/// Execution policies on the header; sets "Order Validation Success" or "… Failed".
#[derive(Debug)]
struct ValidateOrderHeader;

#[async_trait]
impl Action for ValidateOrderHeader {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        if cx.policy_failed() {
            cx.order_mut().status_reason = Some(StatusReason::ORDER_VALIDATION_FAILED);
            return Err(ActionError::new("order header validation failed"));
        }
        cx.order_mut().status_reason = Some(StatusReason::ORDER_VALIDATION_SUCCESS);
        Ok(())
    }
    fn effects(&self) -> Effects {
        Effects::Pure
    }
    fn handles_policy_failures(&self) -> bool {
        true
    }
}

/// Execution policies per line; a failing line fails the order's validation.
#[derive(Debug)]
struct ValidateOrderLine;

#[async_trait]
impl Action for ValidateOrderLine {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        let failed: Vec<LineId> = cx
            .findings()
            .iter()
            .filter(|f| f.criticality == crate::policy::Criticality::Critical)
            .filter_map(|f| match &f.record {
                RecordId::Line(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let order = cx.order_mut();
        for line in &mut order.lines {
            if failed.contains(&line.id) {
                line.status_reason = Some(StatusReason::ORDER_LINE_VALIDATION_FAILED);
            }
        }
        if failed.is_empty() && !cx.policy_failed() {
            cx.order_mut().status_reason = Some(StatusReason::ORDER_VALIDATION_SUCCESS);
            Ok(())
        } else {
            cx.order_mut().status_reason = Some(StatusReason::ORDER_VALIDATION_FAILED);
            Err(ActionError::new(format!(
                "{} line(s) failed validation",
                failed.len()
            )))
        }
    }
    fn effects(&self) -> Effects {
        Effects::Pure
    }
    fn handles_policy_failures(&self) -> bool {
        true
    }
}

/// Execution policies set each line's source; one fulfillment order per source.
#[derive(Debug)]
struct AssignFulfillmentSource;

#[async_trait]
impl Action for AssignFulfillmentSource {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        let lines: Vec<(LineId, Decimal, Option<String>)> = cx
            .lines()
            .map(|l| (l.id.clone(), l.quantity, l.fulfillment_source.clone()))
            .collect();
        let mut sourcing = Sourcing::new();
        let mut unsourced = Vec::new();
        for (id, quantity, source) in &lines {
            match source {
                Some(s) => {
                    sourcing.allocate(cx, s, id, *quantity)?;
                }
                None => unsourced.push(id.clone()),
            }
        }
        mark_unsourced(cx, &unsourced);
        let sourced = lines.len() - unsourced.len();
        sourcing.finish(cx);
        if sourced == 0 {
            cx.order_mut().status_reason = Some(StatusReason::INVENTORY_NOT_FOUND);
            return Err(ActionError::new("no line has a fulfillment source"));
        }
        Ok(())
    }
    fn effects(&self) -> Effects {
        Effects::Pure
    }
}

fn mark_unsourced(cx: &mut ActionContext<'_>, unsourced: &[LineId]) {
    if unsourced.is_empty() {
        return;
    }
    let names: Vec<&str> = unsourced.iter().map(LineId::as_str).collect();
    let note = format!("no source for line(s) {}: Backorder Hold", names.join(", "));
    for line in &mut cx.order_mut().lines {
        if unsourced.contains(&line.id) {
            line.status_reason = Some(StatusReason::BACKORDER_HOLD);
        }
    }
    cx.note(note);
}

/// Fulfillment determination by the DOM provider.
#[derive(Debug)]
struct SendToDom;

#[async_trait]
impl Action for SendToDom {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        let reply = cx
            .call(
                &RecordId::Order,
                Request::DetermineFulfillment { order: cx.order() },
            )
            .await?;
        let Reply::FulfillmentPlan(plan) = reply else {
            return Err(ProviderError::new(
                ProviderErrorKind::InvalidReply,
                "fulfillment determination returned no fulfillment plan",
            )
            .into());
        };
        check_plan(cx, &plan)?;
        let lines: Vec<(LineId, Decimal)> =
            cx.lines().map(|l| (l.id.clone(), l.quantity)).collect();
        let mut sourcing = Sourcing::new();
        let mut unsourced = Vec::new();
        for (id, quantity) in &lines {
            // A plan may list a line, or a source of a line, more than once: sum per source.
            // `check_plan` bounded every sum by the line's quantity, so none overflows.
            let mut per_source: Vec<(&str, Decimal)> = Vec::new();
            for a in plan
                .lines
                .iter()
                .filter(|p| &p.line == id)
                .flat_map(|p| p.allocations.iter())
                .filter(|a| a.quantity > Decimal::ZERO)
            {
                match per_source.iter_mut().find(|(s, _)| *s == a.source) {
                    Some((_, q)) => *q += a.quantity,
                    None => per_source.push((&a.source, a.quantity)),
                }
            }
            let mut total = Decimal::ZERO;
            for (source, q) in per_source {
                total += q;
                sourcing.allocate(cx, source, id, q)?;
            }
            if total.is_zero() {
                unsourced.push(id.clone());
            } else if total < *quantity {
                cx.note(format!(
                    "line {id} partially sourced: {total} of {quantity}; the rest is on Backorder Hold"
                ));
                if let Some(line) = cx.order_mut().lines.iter_mut().find(|l| &l.id == id) {
                    line.status_reason = Some(StatusReason::BACKORDER_HOLD);
                }
            }
        }
        mark_unsourced(cx, &unsourced);
        let sourced = lines.len() - unsourced.len();
        sourcing.finish(cx);
        if sourced == 0 {
            cx.order_mut().status_reason = Some(StatusReason::INVENTORY_NOT_FOUND);
            return Err(ActionError::new(
                "fulfillment determination sourced no line",
            ));
        }
        Ok(())
    }
}

/// Rejects plans that name unknown lines or impossible quantities: a negative allocation,
/// or more allocated to a line than it orders. Quantities are exact, so allocations that
/// add up to the line's quantity (0.1 + 0.2 of 0.3) allocate it fully.
fn check_plan(cx: &ActionContext<'_>, plan: &FulfillmentPlan) -> Result<(), ActionError> {
    let mut totals: Vec<(&LineId, Decimal)> = Vec::new();
    for p in &plan.lines {
        let Some(line) = cx.order().line(p.line.as_str()) else {
            return Err(invalid_plan(format!(
                "the plan names unknown line {}",
                p.line
            )));
        };
        // A line may appear in several entries: the sum over all of them must fit.
        let slot = match totals.iter().position(|(l, _)| *l == &p.line) {
            Some(i) => i,
            None => {
                totals.push((&p.line, Decimal::ZERO));
                totals.len() - 1
            }
        };
        for a in &p.allocations {
            if a.quantity < Decimal::ZERO || a.source.is_empty() {
                return Err(invalid_plan(format!(
                    "the plan allocates {} from '{}' to line {}",
                    a.quantity, a.source, p.line
                )));
            }
            // Checked after each allocation, so the running sum stays within the line's
            // quantity; two huge allocations overflow instead of panicking.
            let Some(total) = totals[slot].1.checked_add(a.quantity) else {
                return Err(invalid_plan(format!(
                    "the plan allocates more than the largest decimal to line {}",
                    p.line
                )));
            };
            if total > line.quantity {
                return Err(invalid_plan(format!(
                    "the plan allocates {total} to line {} of quantity {}",
                    p.line, line.quantity
                )));
            }
            totals[slot].1 = total;
        }
    }
    Ok(())
}

fn invalid_plan(message: String) -> ActionError {
    ProviderError::new(ProviderErrorKind::InvalidReply, message).into()
}

/// Each fulfillment order the step took to the step's fulfillment provider.
///
/// What it sends is what its path carries: every active fulfillment order the step took
/// (its filter decides which). What it already sent it knows from its own accepted calls
/// — step, round and record, the parts of the idempotency key — kept by the engine while
/// the step may run again ([`ActionContext::called_before`]): a durable retry or a
/// reprocess sends only what did not go through. The status reason "Sent To Fulfillment" is
/// what the step reports on the document, never what it decides by: another step (a
/// second 3PL in sequence, an overlapping branch of a splitter) sends the same fulfillment
/// order to its own provider.
///
/// A run that sends nothing says why on its journey entry: no fulfillment order taken
/// fails the step; inactive ones, or ones an earlier run sent, are named in a note.
#[derive(Debug)]
struct SendToFulfillment;

#[async_trait]
impl Action for SendToFulfillment {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        let mut to_send = Vec::new();
        let mut inactive = Vec::new();
        let mut sent_before = Vec::new();
        for fo in cx.fulfillment_orders() {
            let id = fo.id.clone();
            if fo.state != State::Active {
                inactive.push(id);
            } else if cx.called_before(&RecordId::FulfillmentOrder(id.clone())) {
                sent_before.push(id);
            } else {
                to_send.push(id);
            }
        }
        if to_send.is_empty() && inactive.is_empty() && sent_before.is_empty() {
            return Err(ActionError::new(
                "no fulfillment order to send: the step took none",
            ));
        }
        let mut reasons = Vec::new();
        if !inactive.is_empty() {
            reasons.push(format!("inactive: {}", list(&inactive)));
        }
        if !sent_before.is_empty() {
            reasons.push(format!(
                "sent by an earlier run of this step: {}",
                list(&sent_before)
            ));
        }
        if to_send.is_empty() {
            cx.note(format!(
                "no fulfillment order to send: {}",
                reasons.join("; ")
            ));
        } else if !reasons.is_empty() {
            cx.note(format!("not sent: {}", reasons.join("; ")));
        }
        let mut failures = Vec::new();
        let mut kind: Option<(ProviderErrorKind, bool)> = None;
        let mut sent = sent_before;
        for id in to_send {
            let record = RecordId::FulfillmentOrder(id.clone());
            let result = {
                let order = cx.order();
                let Some(fo) = order.fulfillment_order(id.as_str()) else {
                    continue;
                };
                cx.call(
                    &record,
                    Request::SendFulfillmentOrder {
                        order,
                        fulfillment_order: fo,
                    },
                )
                .await
            };
            match result {
                Ok(_) => sent.push(id),
                Err(e) => {
                    // The step's error is retryable if any failure was, so the step runs
                    // again for the rest; only that is read, not which failure's kind it is.
                    if kind.is_none_or(|(_, retryable)| !retryable && e.is_retryable()) {
                        kind = Some((e.kind(), e.is_retryable()));
                    }
                    failures.push(format!("{id}: {e}"));
                }
            }
        }
        let order = cx.order_mut();
        // A durable retry starts again from the document as it was: mark what earlier runs
        // sent as well as what this run sent.
        for fo in &mut order.fulfillment_orders {
            if sent.contains(&fo.id) {
                fo.status_reason = Some(StatusReason::SENT_TO_FULFILLMENT);
            }
        }
        let mut active = order
            .fulfillment_orders
            .iter()
            .filter(|f| f.state == State::Active)
            .peekable();
        let any_active = active.peek().is_some();
        if any_active
            && active.all(|f| f.status_reason.as_ref() == Some(&StatusReason::SENT_TO_FULFILLMENT))
        {
            order.status_reason = Some(StatusReason::SENT_TO_FULFILLMENT);
        }
        match kind {
            None => Ok(()),
            Some((kind, retryable)) => Err(ActionError::of_kind(
                ActionErrorKind::Provider(kind),
                format!("sending failed for {}", failures.join("; ")),
            )
            .with_retryable(retryable)),
        }
    }
}

fn list(ids: &[FulfillmentOrderId]) -> String {
    let names: Vec<&str> = ids.iter().map(FulfillmentOrderId::as_str).collect();
    names.join(", ")
}

/// The order to the ERP, which determines fulfillment itself.
#[derive(Debug)]
struct SendToErp;

#[async_trait]
impl Action for SendToErp {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        cx.call(&RecordId::Order, Request::SendToErp { order: cx.order() })
            .await?;
        cx.order_mut().status_reason = Some(StatusReason::SENT_TO_FULFILLMENT);
        Ok(())
    }
}

/// The order to the billing provider.
#[derive(Debug)]
struct SendToInvoice;

#[async_trait]
impl Action for SendToInvoice {
    async fn run(&self, cx: &mut ActionContext<'_>) -> Result<(), ActionError> {
        cx.call(&RecordId::Order, Request::SendInvoice { order: cx.order() })
            .await?;
        cx.order_mut().status_reason = Some(StatusReason::INVOICED);
        Ok(())
    }
}
