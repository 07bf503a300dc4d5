//! Background work: everything an engine needs running besides the calls a host makes —
//! recovery at start, the timer worker (retries, turns whose futures were dropped, flows
//! resumed elsewhere), and on a shared store the worker that claims orders — started with
//! one call and stopped with one call that drains what is under way.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;

use super::Engine;
use crate::document::AsOrderId;
use crate::error::{Error, Result};
use crate::execution::OrderState;

/// A stop request that any number of loops can wait on.
pub(super) type Stop = Shared<oneshot::Receiver<()>>;

/// Asks the background work of [`Engine::background`] to stop.
///
/// Dropping it asks too: work whose handle is gone stops at its next round.
#[derive(Debug)]
pub struct Shutdown {
    stop: Option<oneshot::Sender<()>>,
}

impl Shutdown {
    /// Asks the work to stop: it finishes the round under way (every turn it started
    /// commits or fails as it would), then its future resolves.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The background work of one engine, running on the host's Tokio runtime
/// ([`Engine::start`]). [`shutdown`](Self::shutdown) stops it and waits until it has
/// drained; dropping the handle stops it without waiting.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
#[derive(Debug)]
pub struct Background {
    shutdown: Option<Shutdown>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[cfg(feature = "tokio")]
impl Background {
    /// Stops the background work and waits until the round under way has finished: every
    /// turn it started has committed (or failed as it would have), and nothing of it runs
    /// any more. What is still due runs at the next start, on this instance or any other.
    ///
    /// # Errors
    ///
    /// [`Error::Configuration`] when the work panicked.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.stop();
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| {
                Error::Configuration(format!("the background work of the engine failed: {e}"))
            }),
            None => Ok(()),
        }
    }

    /// Whether the work has ended (it ends only when asked to, or when it panicked).
    pub fn is_finished(&self) -> bool {
        self.task
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
    }
}

#[cfg(feature = "tokio")]
impl Drop for Background {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.stop();
        }
    }
}

/// The future of [`Engine::background`].
pub type BackgroundWork = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

impl Engine {
    /// Starts everything the engine needs running in the background, on the current Tokio
    /// runtime: recovery of what a previous run left in flight, then the timer worker
    /// (retries on their durable timers, turns whose futures were dropped, queued work of a
    /// flow resumed on another instance); on a shared store, the worker that claims orders
    /// instead (it covers both). Call it once, right after [`build`](super::EngineBuilder::build);
    /// keep the handle, and call [`Background::shutdown`] when the service stops.
    ///
    /// Errors the work meets are not returned — it keeps going — but each is a `tracing`
    /// event (with the `tracing` feature); an order that cannot run is set aside
    /// ([`set_aside_orders`](Self::set_aside_orders)).
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (like `tokio::spawn`).
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn start(&self) -> Background {
        let (work, shutdown) = self.background();
        Background {
            shutdown: Some(shutdown),
            task: Some(tokio::spawn(work)),
        }
    }

    /// The background work of [`start`](Self::start) as a future, for a host that spawns
    /// it on a runtime of its own choosing, with the handle that stops it: the future
    /// resolves once [`Shutdown::stop`] was called (or the handle dropped) and the round
    /// under way has finished.
    pub fn background(&self) -> (BackgroundWork, Shutdown) {
        let (tx, rx) = oneshot::channel();
        let stop = rx.shared();
        let engine = self.clone();
        let work = async move {
            if engine.inner.shared.is_some() {
                engine.worker_loop(Some(stop)).await;
            } else {
                let report = engine.recover().await;
                #[cfg(feature = "tracing")]
                match &report {
                    Ok(r) if !r.set_aside.is_empty() || !r.failed.is_empty() => {
                        tracing::warn!(
                            resumed = r.resumed,
                            set_aside = r.set_aside.len(),
                            failed = r.failed.len(),
                            "recovery at start left orders behind"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "recovery at start failed; the timer worker tries again")
                    }
                }
                if report.is_err() {
                    // The timer worker's first round runs recovery again.
                    engine.inner.request_recovery();
                }
                engine.timer_loop(Some(stop)).await;
            }
        };
        (Box::pin(work), Shutdown { stop: Some(tx) })
    }

    /// Waits until an order has settled: nothing of it can move now and no timer of it is
    /// pending — every path has ended, failed, or waits for an event. With the background
    /// work running ([`start`](Self::start)), an order whose step waits on a retry settles
    /// once the retry has run. Returns its committed state.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownOrder`] for an order the store does not hold; store errors.
    pub async fn settled(&self, order: impl AsOrderId) -> Result<OrderState> {
        let order = &*order.as_order_id();
        loop {
            let seen = self.inner.commits.generation();
            let Some(state) = self.inner.store.load(order).await? else {
                return Err(Error::UnknownOrder(order.clone()));
            };
            if !state.has_runnable() && state.next_wake().is_none() {
                return Ok(state);
            }
            let now = self.inner.clock.now();
            let poll = self.inner.config.timer_poll;
            let wait = state
                .next_wake()
                .map_or(poll, |at| at.since(now).min(poll))
                .max(Duration::from_millis(1));
            let sleep = self.inner.clock.sleep(wait);
            let changed = std::pin::pin!(self.inner.commits.changed(seen));
            futures::future::select(sleep, changed).await;
        }
    }
}

/// Resolves when a stop was asked for (never, without a stop).
pub(super) async fn stopped(stop: Option<&Stop>) {
    match stop {
        Some(stop) => {
            let _ = stop.clone().await;
        }
        None => futures::future::pending::<()>().await,
    }
}

/// A worker's rest between rounds: until `sleep` ends or `wake` fires (work arrived), or
/// until a stop is asked for — then `true`.
pub(super) async fn rest(
    sleep: impl Future<Output = ()>,
    wake: impl Future<Output = ()>,
    stop: Option<&Stop>,
) -> bool {
    let (sleep, wake) = (std::pin::pin!(sleep), std::pin::pin!(wake));
    let woken = futures::future::select(sleep, wake);
    matches!(
        futures::future::select(woken, std::pin::pin!(stopped(stop))).await,
        futures::future::Either::Right(_)
    )
}

/// Whether a stop was asked for.
pub(super) fn is_stopped(stop: Option<&Stop>) -> bool {
    stop.is_some_and(|s| s.peek().is_some())
}
