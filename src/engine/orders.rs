//! What a host does with orders: submit events, correct an order, reprocess or cancel an
//! execution, and read what the store holds.

use std::collections::HashMap;
use std::sync::Arc;

use super::inner::is_outage;
use super::turn;
use super::{Engine, Receipt};
use crate::clock::Timestamp;
use crate::document::{AsOrderId, Order, OrderId};
use crate::error::{Error, Result};
use crate::event::{Event, EventId};
use crate::execution::{self, ExecutionId, OrderState};
use crate::flow::StepNames;
use crate::journey::Journey;
use crate::update::OrderUpdate;

impl Engine {
    /// Submits an event: records it on the order's timeline, starts the flows it triggers,
    /// releases the steps waiting for it, and runs the order to quiescence.
    ///
    /// An event whose id the order has seen is accepted and ignored
    /// ([`Receipt::duplicate`]). An event for an unknown order must bring the order's
    /// document ([`Event::with_order`]); for a known order a document it brings is ignored:
    /// the stored order, with what flows set on it, stays the truth. Correct a known
    /// order's data with [`update_order`](Self::update_order).
    ///
    /// `submit` runs the order in this instance, holding no lease: instances that share a
    /// store take events with [`enqueue`](Self::enqueue) instead, so that each order runs
    /// only where it is claimed.
    pub async fn submit(&self, event: Event) -> Result<Receipt> {
        check_event(&event)?;
        event.check_limits(&self.inner.config.limits)?;
        let _permit = self.inner.admission.acquire().await;
        let _guard = self.inner.lock_order(&event.order).await;
        let mut event = event;
        // A new order's state takes the document itself, not a copy.
        let document = event.document.take();
        turn::Turn::load(&self.inner, event.order.clone(), document)
            .await?
            .submit(event)
            .await
    }

    /// Re-runs an execution's failed paths from their failed steps, in a new round (new
    /// idempotency keys). Fails if the execution has no failed path.
    pub async fn reprocess(&self, execution: impl AsRef<ExecutionId>) -> Result<()> {
        let execution = execution.as_ref();
        let _guard = self.inner.lock_order(&execution.order).await;
        let Some(turn) = turn::Turn::load_existing(&self.inner, execution.order.clone()).await?
        else {
            return Err(Error::UnknownExecution(execution.clone()));
        };
        turn.reprocess(execution).await
    }

    /// Corrects an order's data between steps: a whole new document or a patch
    /// ([`OrderUpdate`]), recorded on the order's timeline as an "Order updated" event
    /// ([`EventKind::ORDER_UPDATED`](crate::event::EventKind::ORDER_UPDATED)) with the id `id`. Then the order runs to quiescence,
    /// as after [`submit`](Self::submit): flows that take "Order updated" start or move.
    ///
    /// The update waits for a turn in progress on the order and applies after what an
    /// earlier turn left in flight has finished, so no step sees the document change
    /// under it; every path sees the new document from its next step on — a failed path
    /// when it is [reprocessed](Self::reprocess), which is how a host fixes the data a
    /// step failed on. See [`crate::update`] for the whole contract.
    ///
    /// An `id` the order has seen is accepted and ignored ([`Receipt::duplicate`]), so an
    /// update may be retried. Like `submit`, it runs the order in this instance.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownOrder`] for an order the engine does not hold;
    /// [`Error::InvalidUpdate`] when the document changes the order's id, names a record
    /// twice ([`Order::check_ids`]) or a patch names a line the order lacks;
    /// [`Error::Limit`] past the engine's [`Limits`](crate::limits::Limits) (document size
    /// and strings, timeline length). A refused update changes nothing (work an earlier
    /// turn left in flight has run, as any call on the order runs it).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use orderflow::document::Address;
    /// use orderflow::{Engine, Event, Order, OrderPatch};
    ///
    /// let clock = orderflow::ManualClock::new(orderflow::Timestamp::from_millis(0));
    /// let engine = Engine::builder().clock(clock).build().await?;
    /// engine.submit(Event::new_order(Order::new("SO-1"))).await?;
    /// let us = Address { country: Some("US".into()), ..Address::default() };
    /// let receipt = engine
    ///     .update_order("SO-1", "fix-1", OrderPatch::new().ship_to(us))
    ///     .await?;
    /// assert!(!receipt.duplicate);
    /// let order = engine.order("SO-1").await?.unwrap();
    /// assert_eq!(order.ship_to.country.as_deref(), Some("US"));
    /// let again = engine.update_order("SO-1", "fix-1", OrderPatch::new()).await?;
    /// assert!(again.duplicate);
    /// # Ok::<(), orderflow::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn update_order(
        &self,
        order: impl AsOrderId,
        id: impl Into<EventId>,
        update: impl Into<OrderUpdate>,
    ) -> Result<Receipt> {
        let order = &*order.as_order_id();
        let id = id.into();
        check_update_id(order, &id, &self.inner.config.limits)?;
        let update = update.into();
        let _permit = self.inner.admission.acquire().await;
        let _guard = self.inner.lock_order(order).await;
        let Some(turn) = turn::Turn::load_existing(&self.inner, order.clone()).await? else {
            return Err(Error::UnknownOrder(order.clone()));
        };
        turn.update(id, update).await
    }

    /// Cancels an execution: every path it has left ends where it stands — waiting for an
    /// event, failed and waiting for reprocess, waiting on a retry timer (the timer goes,
    /// so [`next_due`](Self::next_due) forgets it), or ready to run — with a
    /// [`Cancelled`](crate::Outcome::Cancelled) entry in the journey, and the execution's
    /// status becomes [`Cancelled`](crate::execution::ExecutionStatus::Cancelled). It is
    /// no longer its flow's live execution: the next event that starts the flow for the
    /// order starts a new one. It is not reprocessable and is not listed by
    /// [`failed_executions`](Self::failed_executions).
    ///
    /// The cancel waits for a turn in progress on the order and is committed as any turn
    /// is: once it returns, it holds across restarts; dropped before it returns, it either
    /// happened or did not, and the order stays resumable either way. A step a turn left
    /// committed as under way (a crash, a dropped future) is cancelled without being run
    /// again: its provider may have taken the call, under its idempotency key. The order's
    /// other executions then run what they have pending.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownExecution`] for an execution the store does not hold;
    /// [`Error::NotCancellable`] for one that completed or was cancelled before.
    pub async fn cancel(&self, execution: impl AsRef<ExecutionId>) -> Result<()> {
        let execution = execution.as_ref();
        let _guard = self.inner.lock_order(&execution.order).await;
        let Some(turn) = turn::Turn::load_existing(&self.inner, execution.order.clone()).await?
        else {
            return Err(Error::UnknownExecution(execution.clone()));
        };
        turn.cancel(execution).await
    }

    /// The order document as the engine holds it.
    pub async fn order(&self, order: impl AsOrderId) -> Result<Option<Order>> {
        let order = order.as_order_id();
        Ok(self
            .inner
            .store
            .load(&order)
            .await?
            .map(|s| std::sync::Arc::unwrap_or_clone(s.order)))
    }

    /// Everything the store holds about an order's executions.
    pub async fn order_state(&self, order: impl AsOrderId) -> Result<Option<OrderState>> {
        let order = order.as_order_id();
        Ok(self.inner.store.load(&order).await?)
    }

    /// An order's journey: its executions, every step taken and its timeline.
    ///
    /// Reads committed state only and never waits for the order's lock, so a provider call
    /// in flight does not hold it up: the state and its journey rows are read apart, and
    /// read again if a commit came between them.
    pub async fn journey(&self, order: impl AsOrderId) -> Result<Journey> {
        let order = &*order.as_order_id();
        let mut state = self.inner.store.load(order).await?;
        loop {
            let Some(read) = state else {
                return Err(Error::UnknownOrder(order.clone()));
            };
            let rows = self.inner.store.journey(order).await?;
            let again = self.inner.store.load(order).await?;
            if again.as_ref().is_some_and(|s| s.revision == read.revision) {
                let mut names = HashMap::new();
                for exec in &read.executions {
                    let key = (exec.flow.clone(), exec.version.clone());
                    if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(key) {
                        // A flow that cannot be compiled here still has a definition to
                        // name its steps by.
                        let table = match self.inner.plan(&exec.flow, &exec.version).await {
                            Ok(plan) => Some(plan.names.clone()),
                            Err(e) if is_outage(&e) => return Err(e),
                            Err(_) => self
                                .inner
                                .store
                                .flow_version(&exec.flow, &exec.version)
                                .await?
                                .map(|flow| Arc::new(StepNames::of(&flow))),
                        };
                        slot.insert(table);
                    }
                }
                return Ok(Journey::resolve(&read, &rows, |flow, version| {
                    names
                        .get(&(flow.to_owned(), version.clone()))
                        .cloned()
                        .flatten()
                }));
            }
            state = again;
        }
    }

    /// The executions of an order that wait for reprocess, each with why its paths failed.
    /// Pass one to [`reprocess`](Self::reprocess) or [`cancel`](Self::cancel).
    pub async fn failed_executions(
        &self,
        order: impl AsOrderId,
    ) -> Result<Vec<execution::FailedExecution>> {
        Ok(self
            .inner
            .store
            .load(&order.as_order_id())
            .await?
            .map(|s| {
                s.executions
                    .iter()
                    .filter(|e| e.is_failed())
                    .map(|e| execution::FailedExecution {
                        id: e.id.clone(),
                        flow: e.flow.clone(),
                        version: e.version.clone(),
                        reason: e.failure().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Retention: removes up to `limit` orders that completed before `before` (no live
    /// execution, nothing pending; see [`OrderState::completed_at`]), oldest first, with
    /// their journeys, timelines and dead letters, and returns their ids. Call it
    /// periodically with a cutoff in the past — longer ago than any event for those orders
    /// could still arrive — so that memory and files stay at what the open orders need.
    ///
    /// A purged order is forgotten: an event for it afterwards is treated as for an order
    /// never seen (a new-order event creates it anew, with none of its former event ids to
    /// de-duplicate against). Orders with a live execution are never removed; a turn that
    /// loaded a completed order just before it was purged fails its commit with a
    /// retryable conflict instead of writing over nothing, and the event submitted again
    /// finds the order gone.
    pub async fn purge_completed(&self, before: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        Ok(self.inner.store.purge(before, limit).await?)
    }
}

pub(super) fn check_event(event: &Event) -> Result<()> {
    if event.id.as_str().trim().is_empty() {
        return Err(Error::InvalidEvent("the event id is empty".into()));
    }
    if event.kind.as_str().trim().is_empty() {
        return Err(Error::InvalidEvent(format!(
            "event '{}' has an empty kind",
            event.id
        )));
    }
    if event.order.as_str().trim().is_empty() {
        return Err(Error::InvalidEvent(format!(
            "event '{}' names no order",
            event.id
        )));
    }
    if let Some(doc) = &event.document {
        if doc.id != event.order {
            return Err(Error::InvalidEvent(format!(
                "event '{}' is about order '{}' but brings the document of '{}'",
                event.id, event.order, doc.id
            )));
        }
        doc.check_ids()
            .map_err(|e| Error::InvalidEvent(format!("event '{}': {e}", event.id)))?;
    }
    Ok(())
}

/// The checks an update's id and order id pass before the update waits for the order.
fn check_update_id(order: &OrderId, id: &EventId, limits: &crate::limits::Limits) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidUpdate {
        order: order.clone(),
        reason: reason.to_owned(),
    };
    if order.as_str().trim().is_empty() {
        return Err(invalid("it names no order"));
    }
    if id.as_str().trim().is_empty() {
        return Err(invalid("the update id is empty"));
    }
    for (s, what) in [(id.as_str(), "id"), (order.as_str(), "order")] {
        if s.len() > limits.max_string_bytes {
            return Err(crate::limits::LimitError {
                what: "order update",
                limit: "max_string_bytes",
                max: limits.max_string_bytes,
                found: s.len(),
                place: format!("the update's {what}"),
            }
            .into());
        }
    }
    Ok(())
}
