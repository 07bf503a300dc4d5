//! Durable timers: the timer worker that runs what is due (retries after their backoff,
//! turns whose futures were dropped), woken early when a turn sets a timer.

use std::time::Duration;

use futures::StreamExt;

use super::Engine;
use super::background;
use super::recovery::{CONCURRENT_ORDERS, OrderOutcome};
use crate::clock::Timestamp;
use crate::error::Result;

impl Engine {
    /// Runs every step whose durable timer (a retry's backoff, or the resumption of a turn
    /// that never finished) is due on the engine's clock, order by order; returns how many
    /// orders it ran. [`run_timers`] calls it in a loop; tests on a
    /// [`ManualClock`](crate::ManualClock) call it after advancing time. An order that
    /// fails is handled as [`recover`](Self::recover) handles it; the others go on.
    ///
    /// [`run_timers`]: Self::run_timers
    ///
    /// # Errors
    ///
    /// Only when the store cannot list the due orders.
    pub async fn run_due(&self) -> Result<usize> {
        const BATCH: usize = 256;
        let now = self.inner.clock.now();
        let mut ran = 0;
        loop {
            let due = self.inner.store.due(now, BATCH).await?;
            let full = due.len() == BATCH;
            let progressed = std::sync::atomic::AtomicUsize::new(0);
            futures::stream::iter(due)
                .for_each_concurrent(CONCURRENT_ORDERS, |order| {
                    let progressed = &progressed;
                    async move {
                        let outcome = self.run_order(&order, |turn| turn.run_due(now)).await;
                        // An order set aside leaves the due list too: progress.
                        if matches!(outcome, OrderOutcome::Ran(true) | OrderOutcome::SetAside(_)) {
                            progressed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
                .await;
            let progressed = progressed.into_inner();
            ran += progressed;
            if !full || progressed == 0 {
                return Ok(ran);
            }
        }
    }

    /// When the next durable timer is due, if any is set.
    pub async fn next_due(&self) -> Result<Option<Timestamp>> {
        Ok(self.inner.store.next_due().await?)
    }

    /// The timer worker: runs due steps, then sleeps on the engine's clock until the next
    /// timer (or [`Config::timer_poll`](super::Config::timer_poll)), for as long as it is polled. Spawn it on the
    /// host's runtime (`tokio::spawn(engine.clone().run_timers())` with the `tokio`
    /// feature's clock). It also runs recovery when a paused flow is resumed or stopped
    /// (here or on another instance) and the call that did it did not get to. It never
    /// returns: an order that cannot run is set aside and the others go on, and a store
    /// that cannot list its timers is traced (with the `tracing` feature) and asked again
    /// after [`Config::timer_poll`](super::Config::timer_poll).
    pub async fn run_timers(self) -> Result<()> {
        self.timer_loop(None).await;
        Ok(())
    }

    /// The timer worker's rounds until `stop` (never without one). A round under way is
    /// finished before the stop is seen.
    pub(super) async fn timer_loop(&self, stop: Option<background::Stop>) {
        loop {
            if background::is_stopped(stop.as_ref()) {
                return;
            }
            let wait = match self.timer_round().await {
                Ok(wait) => wait,
                // A store that cannot list its timers now may later: one order's trouble
                // never reaches here (it is set aside), so the worker keeps going.
                Err(e) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(error = %e, "timer round failed; trying again");
                    crate::metrics::worker_error(crate::metrics::Worker::Timers, "round", &e);
                    self.inner.config.timer_poll
                }
            };
            let sleep = self.inner.clock.sleep(wait);
            if background::rest(sleep, self.inner.timers.wait(), stop.as_ref()).await {
                return;
            }
        }
    }

    /// One round of the timer worker: run what is due; how long to sleep.
    async fn timer_round(&self) -> Result<Duration> {
        self.recover_if_requested().await?;
        let ran = self.run_due().await?;
        let poll = self.inner.config.timer_poll;
        let now = self.inner.clock.now();
        Ok(match self.next_due().await? {
            // Still due, and nothing ran: an order failing on a passing error. Try again
            // after the poll interval rather than at once.
            Some(at) if at <= now && ran == 0 => poll,
            Some(at) => at.since(now).min(poll),
            None => poll,
        })
    }
}
