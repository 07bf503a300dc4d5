//! Sharing work with other engine instances over a [`SharedStore`]: queueing events,
//! claiming orders, running them and giving them back. The protocol is the store's (see
//! [`crate::store::shared`]); this is the engine's half of it.

use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;

use super::orders::check_event;
use super::recovery::CONCURRENT_ORDERS;
use super::{Engine, turn};
use crate::clock::Timestamp;
use crate::document::AsOrderId;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::metrics::Worker;
use crate::store::{DeadLetter, Lease, SharedStore, StoreErrorKind};

/// How many queued events of one order are read at a time.
const INBOX_BATCH: usize = 64;

/// What one round of [`Engine::work`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkReport {
    /// Orders claimed.
    pub claimed: usize,
    /// Queued events processed (duplicates included).
    pub events: usize,
    /// Queued events set aside as dead letters: they can never be processed (an unknown
    /// order and no document).
    pub dead_letters: usize,
    /// Orders given up because another instance took them over (the lease ran out).
    pub lost: usize,
    /// Orders whose run failed on a store error: left claimed, they are claimed again (by
    /// any instance) when the lease lapses, and resume from what was committed.
    pub failed: usize,
    /// Orders set aside because they cannot be decoded or run (see
    /// [`Engine::set_aside_orders`]): claims skip them, and their queued events wait.
    pub set_aside: usize,
}

impl Engine {
    /// The shared store, or the error for an engine without one.
    fn shared(&self) -> Result<&dyn SharedStore> {
        self.inner.shared.as_deref().ok_or_else(|| {
            Error::Configuration(
                "this engine's store is not shared: build it with EngineBuilder::shared_store"
                    .to_owned(),
            )
        })
    }

    /// Queues an event in the shared store, for whichever instance claims its order next
    /// ([`run_worker`](Self::run_worker), [`work`](Self::work)); returns once it is durable.
    /// The event is checked as [`submit`](Self::submit) checks it. Instances that share a
    /// store take every event this way: an order is then only ever run by the instance
    /// holding its lease.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the engine was not built with
    /// [`shared_store`](super::EngineBuilder::shared_store); the event's own errors;
    /// store errors.
    pub async fn enqueue(&self, event: Event) -> Result<()> {
        let shared = self.shared()?;
        check_event(&event)?;
        event.check_limits(&self.inner.config.limits)?;
        shared.enqueue(&event).await?;
        crate::metrics::event_enqueued();
        Ok(())
    }

    /// Events set aside for an order because they could never be processed (see
    /// [`WorkReport::dead_letters`]), oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an engine without a shared store; store errors.
    pub async fn dead_letters(&self, order: impl AsOrderId) -> Result<Vec<DeadLetter>> {
        let order = order.as_order_id();
        Ok(self.shared()?.dead_letters(&order).await?)
    }

    /// One round of work: claims up to [`WorkConfig::batch`](super::WorkConfig::batch) ready orders, runs each to
    /// quiescence — what an earlier holder left in flight, due timers, then its queued
    /// events in order — and gives it back. Orders run concurrently. An error on one
    /// order does not stop the others; it is counted in the report.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] for an engine without a shared store; a failed claim.
    pub async fn work(&self) -> Result<WorkReport> {
        let shared = self.shared()?;
        let config = &self.inner.config.work;
        let now = self.inner.clock.now();
        let watch = crate::metrics::Stopwatch::start();
        let leases = shared.claim(now, config.batch, config.lease).await;
        crate::metrics::claim(watch, leases.as_ref().ok().map(Vec::len));
        let leases = leases?;
        let report = Mutex::new(WorkReport {
            claimed: leases.len(),
            ..WorkReport::default()
        });
        futures::stream::iter(leases)
            .for_each_concurrent(CONCURRENT_ORDERS, |lease| {
                let report = &report;
                async move {
                    let outcome = self.work_order(shared, &lease, now, report).await;
                    let set_aside = match &outcome {
                        Err(e @ Error::Store(s)) if s.kind() == StoreErrorKind::LeaseLost => {
                            #[cfg(feature = "tracing")]
                            tracing::warn!(order = %lease.order, error = %e, "order lost to another instance");
                            crate::metrics::worker_error(Worker::Shared, "lease", e);
                            false
                        }
                        Err(e) => self.inner.on_order_failure(&lease.order, e).await.is_some(),
                        Ok(()) => {
                            self.inner.on_order_success(&lease.order);
                            false
                        }
                    };
                    if set_aside {
                        // Out of claims now: give it back so its lease does not linger
                        // (if this fails, the lease lapses).
                        if let Err(e) = shared.release(&lease).await {
                            #[cfg(feature = "tracing")]
                            tracing::warn!(order = %lease.order, error = %e, "giving back a set-aside order failed");
                            let e = Error::from(e);
                            crate::metrics::worker_error(Worker::Shared, "release", &e);
                        }
                    }
                    let mut report = report.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Ok(()) => {}
                        Err(Error::Store(e)) if e.kind() == StoreErrorKind::LeaseLost => {
                            report.lost += 1;
                        }
                        Err(_) if set_aside => report.set_aside += 1,
                        Err(_) => report.failed += 1,
                    }
                }
            })
            .await;
        Ok(report.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs one claimed order and gives it back. After an error the order is not given
    /// back: what was committed may hold a step in flight (its provider called, the result
    /// not committed), which only a claim resumes, and a released order with no events or
    /// timers would leave the work list. It is claimed again when its lease lapses.
    async fn work_order(
        &self,
        shared: &dyn SharedStore,
        lease: &Lease,
        now: Timestamp,
        report: &Mutex<WorkReport>,
    ) -> Result<()> {
        self.run_claimed(shared, lease, now, report).await?;
        Ok(shared.release(lease).await?)
    }

    async fn run_claimed(
        &self,
        shared: &dyn SharedStore,
        lease: &Lease,
        now: Timestamp,
        report: &Mutex<WorkReport>,
    ) -> Result<()> {
        let inner = &self.inner;
        let order = &lease.order;
        let _guard = inner.lock_order(order).await;
        // One load serves the first event (a turn runs what an earlier holder left in
        // flight before it takes an event); a due timer runs first, on its own.
        let mut loaded = turn::Turn::load_existing(inner, order.clone()).await?;
        if let Some(turn) = loaded.take() {
            if turn.state().next_wake().is_some_and(|at| at <= now) {
                turn.run_due(now).await?;
            } else {
                loaded = Some(turn);
            }
        }
        loop {
            let queued = shared.inbox(lease, INBOX_BATCH).await?;
            if queued.is_empty() {
                if let Some(turn) = loaded.take() {
                    turn.run_pending().await?;
                }
                return Ok(());
            }
            let full = queued.len();
            for mut q in queued {
                let turn = match loaded.take() {
                    Some(turn) => Ok(turn),
                    // A new order's state takes the document itself.
                    None => turn::Turn::load(inner, order.clone(), q.event.document.take()).await,
                };
                let outcome = match turn {
                    Ok(turn) => turn.submit(q.event).await.map(drop),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(()) => {
                        shared.consume(lease, q.seq, None).await?;
                        lock(report).events += 1;
                    }
                    // The event's own fault: it can never be processed.
                    Err(e) if event_fault(&e) => {
                        shared.consume(lease, q.seq, Some(&e.to_string())).await?;
                        lock(report).dead_letters += 1;
                        crate::metrics::dead_letter();
                    }
                    // The order's (its state, its flow) or the store's: the event stays
                    // queued, and the order is set aside or tried again.
                    Err(e) => return Err(e),
                }
            }
            // A short batch was all there was when it was read; events queued since make
            // the order ready again at release.
            if full < INBOX_BATCH {
                return Ok(());
            }
        }
    }

    /// The worker of an instance that shares its store: claims and runs ready orders
    /// ([`work`](Self::work)) for as long as it is polled; when there is nothing to do, it
    /// sleeps on the engine's clock until work arrives (the store's wake-up), the next
    /// durable timer is due, or [`WorkConfig::poll`](super::WorkConfig::poll) has passed; every
    /// [`WorkConfig::maintenance`](super::WorkConfig::maintenance) it runs the store's housekeeping. Spawn it on the host's
    /// runtime (`tokio::spawn(engine.clone().run_worker())`); it takes the place of
    /// [`recover`](Self::recover) and [`run_timers`](Self::run_timers), since claims find
    /// orders a dead instance left and orders whose timers are due.
    ///
    /// # Errors
    ///
    /// Returns an error only at once, for an engine without a shared store. Store errors
    /// are traced (with the `tracing` feature) and tried again after
    /// [`WorkConfig::poll`](super::WorkConfig::poll); an order that cannot be decoded or run is set aside
    /// ([`Engine::set_aside_orders`]) and the others go on.
    pub async fn run_worker(self) -> Result<()> {
        self.shared()?;
        self.worker_loop(None).await;
        Ok(())
    }

    /// The worker's rounds until `stop` (never without one); a round under way is finished
    /// before the stop is seen. Only for an engine with a shared store.
    pub(super) async fn worker_loop(&self, stop: Option<super::background::Stop>) {
        let Ok(shared) = self.shared() else {
            return;
        };
        let config = self.inner.config.work.clone();
        let mut maintained = self.inner.clock.now();
        loop {
            if super::background::is_stopped(stop.as_ref()) {
                return;
            }
            let now = self.inner.clock.now();
            if now.since(maintained) >= config.maintenance {
                maintained = now;
                if let Err(e) = shared.maintain().await {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(error = %e, "store housekeeping failed");
                    let e = Error::from(e);
                    crate::metrics::worker_error(Worker::Shared, "housekeeping", &e);
                }
            }
            if let Err(e) = self.recover_if_requested().await {
                #[cfg(feature = "tracing")]
                tracing::warn!(error = %e, "waking the orders of a resumed flow failed; trying again");
                crate::metrics::worker_error(Worker::Shared, "recovery", &e);
            }
            // One order's trouble never reaches here (it is set aside or left to its
            // lease); a claim the store cannot serve now may succeed later.
            let wait = match self.work().await {
                Ok(report) if report.claimed == config.batch && report.failed == 0 => {
                    continue;
                }
                Ok(_) => self.idle_wait(&config).await,
                Err(e) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(error = %e, "claiming work failed; trying again");
                    crate::metrics::worker_error(Worker::Shared, "claim", &e);
                    config.poll
                }
            };
            let sleep = self.inner.clock.sleep(wait);
            if super::background::rest(sleep, shared.work_arrived(), stop.as_ref()).await {
                return;
            }
        }
    }

    /// How long an idle worker sleeps: until the next durable timer, at most the poll
    /// interval.
    async fn idle_wait(&self, config: &super::WorkConfig) -> Duration {
        let now = self.inner.clock.now();
        match self.inner.store.next_due().await {
            Ok(Some(at)) if at > now => at.since(now).min(config.poll),
            // Due, but held by another instance (or about to be claimed): look again soon.
            Ok(Some(_)) => config.poll / 10,
            Ok(None) => config.poll,
            Err(e) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(error = %e, "listing due timers failed; trying again");
                crate::metrics::worker_error(Worker::Shared, "timers", &Error::from(e));
                config.poll
            }
        }
    }
}

/// Whether a queued event failed for a reason of its own, so that no later try can
/// process it (it becomes a dead letter): an unknown order without a document, a
/// malformed event, an event past a limit. Anything else is about the order or the store,
/// and the event stays queued.
fn event_fault(e: &Error) -> bool {
    matches!(
        e,
        Error::UnknownOrder(_) | Error::InvalidEvent(_) | Error::Limit(_) | Error::Document { .. }
    )
}

fn lock(report: &Mutex<WorkReport>) -> std::sync::MutexGuard<'_, WorkReport> {
    report.lock().unwrap_or_else(|e| e.into_inner())
}
