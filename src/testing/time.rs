//! Virtual time that moves when the engine waits on it.
//!
//! On a [`ManualClock`] nothing sleeps until a test moves time: a retry timer stays due in
//! the future, and a provider call that waits on the clock (a slow answer, a timeout) stays
//! pending. [`settle`] runs an engine's timers, moving the clock to each next one, until
//! nothing is due; [`drive`] runs one future (a `submit`, a `reprocess`), moving the clock
//! to its next sleeper whenever it waits. Time moves only when the work is waiting and no
//! other task is ready, so every step happens at the virtual time it was planned for.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::clock::{Clock, ManualClock};
use crate::engine::Engine;
use crate::error::Result;

/// The rounds [`settle`] runs before it gives up on an engine whose timers keep coming.
pub const MAX_ROUNDS: usize = 1_000;

/// The times [`drive`] moves the clock for one future before it gives up on it.
pub const MAX_WAKES: usize = 10_000;

/// Runs the engine's durable timers in virtual time until none is set: moves `clock` to
/// the next due timer, runs what is due ([`Engine::run_due`]) while moving the clock to
/// each sleep the turn waits on (a provider's slow answer, a call timeout), and again, at
/// most [`MAX_ROUNDS`] times. Returns how many due orders ran, summed over the rounds.
///
/// This is the timer worker ([`Engine::run_timers`]) with time under the test's control:
/// do not also run the timer worker or background work on the same clock while settling.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use orderflow::clock::{Clock, ManualClock, Timestamp};
/// use orderflow::document::{Order, OrderLine};
/// use orderflow::flow::{ActionStep, Flow};
/// use orderflow::provider::RequestKind;
/// use orderflow::testing::provider::{Behavior, ScriptedProvider};
/// use orderflow::testing::settle;
/// use orderflow::{ActionKind, Engine, Event, EventKind, MemoryStore, Outcome};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let clock = ManualClock::new(Timestamp::from_millis(0));
/// // Billing is down for the first call, then answers two seconds late.
/// let billing = ScriptedProvider::new("Billing", Arc::new(clock.clone()))
///     .offering(&[RequestKind::SendInvoice])
///     .then(Behavior::Retryable("billing restarting".into()))
///     .then(Behavior::Delay(Duration::from_secs(2)));
/// let engine = Engine::builder()
///     .store(MemoryStore::new())
///     .clock(clock.clone())
///     .provider(billing.clone())
///     .build()
///     .await?;
/// let flow = Flow::builder("Bill")
///     .steps(|s| {
///         s.action(
///             ActionStep::new("Invoice", ActionKind::SendToInvoice)
///                 .input_event(EventKind::NEW_ORDER)
///                 .provider("Billing"),
///         )
///     })
///     .build()?;
/// engine.create_flow(flow).await?;
/// engine.publish("Bill").await?;
///
/// let order = Order::new("SO-1").with_line(OrderLine::new("1", "Surface Pen", 1));
/// engine.submit(Event::new_order(order)).await?;
/// assert!(engine.next_due().await?.is_some(), "the retry waits on its timer");
///
/// // The retry timer falls due, the second call answers late: both in virtual time.
/// assert_eq!(settle(&engine, &clock).await?, 1);
/// assert_eq!(engine.next_due().await?, None);
/// let journey = engine.journey("SO-1").await?;
/// assert_eq!(journey.outcome("Invoice"), Some(Outcome::Succeeded));
/// let calls = billing.calls();
/// assert_eq!(calls.len(), 2);
/// assert!(clock.now() >= calls[1].at.after(Duration::from_secs(2)));
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// What [`Engine::next_due`] or [`Engine::run_due`] returns.
///
/// # Panics
///
/// When timers are still due after [`MAX_ROUNDS`] rounds (an order that sets a new timer
/// every time it runs), or as [`drive`] does within a round.
pub async fn settle(engine: &Engine, clock: &ManualClock) -> Result<usize> {
    let mut ran = 0;
    for _ in 0..MAX_ROUNDS {
        let Some(at) = engine.next_due().await? else {
            return Ok(ran);
        };
        clock.advance(at.since(clock.now()));
        ran += drive(clock, engine.run_due()).await?;
    }
    match engine.next_due().await? {
        None => Ok(ran),
        Some(at) => panic!(
            "timers kept coming: still one due at {at} after {MAX_ROUNDS} rounds of \
             run_due (the clock is at {})",
            clock.now()
        ),
    }
}

/// Runs `future` to its end, moving `clock` to the next sleep it waits on once it is
/// idle: pending, and not woken by anything through [`IDLE_TURNS`] turns given to the other
/// tasks on the runtime. A `submit` or `reprocess` whose provider answers late or times out
/// completes in virtual time, while work that is only slow (a store or a provider that
/// yields, a spawned task) is waited for at the time it started.
///
/// The future runs in place (it need not be `Send`), on any runtime. While it is idle and
/// nothing sleeps on the clock, time stands still until something wakes it.
///
/// ```
/// use std::time::Duration;
///
/// use orderflow::clock::{Clock, ManualClock, Timestamp};
/// use orderflow::testing::drive;
///
/// # futures::executor::block_on(async {
/// let clock = ManualClock::new(Timestamp::from_millis(0));
/// let nap = clock.sleep(Duration::from_secs(5));
/// drive(&clock, nap).await;
/// assert_eq!(clock.now(), Timestamp::from_millis(5_000));
/// # });
/// ```
///
/// # Panics
///
/// When the clock has been moved [`MAX_WAKES`] times for the one future and it is still
/// pending: it sleeps in a loop that never ends.
pub async fn drive<F: Future>(clock: &ManualClock, future: F) -> F::Output {
    let mut future = pin!(future);
    let woken = Arc::new(Woken::default());
    let inner = Waker::from(woken.clone());
    let mut idle = 0;
    let mut moves = 0;
    std::future::poll_fn(|cx| {
        *woken.outer.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        loop {
            if woken.flag.swap(false, Ordering::SeqCst) {
                idle = 0;
            }
            if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&inner)) {
                return Poll::Ready(out);
            }
            if woken.flag.load(Ordering::SeqCst) {
                // It woke itself (a yield): it has more to do before it waits.
                return Poll::Pending;
            }
            if idle < IDLE_TURNS {
                // Give the other tasks a turn: one of them may be what it waits for.
                idle += 1;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            idle = 0;
            let Some(at) = clock.next_wake() else {
                return Poll::Pending;
            };
            moves += 1;
            assert!(
                moves <= MAX_WAKES,
                "the future is still pending after the clock moved {MAX_WAKES} times (now \
                 {at}): it sleeps in a loop that never ends"
            );
            clock.advance(at.since(clock.now()));
        }
    })
    .await
}

/// The turns [`drive`] gives the other tasks, with the future pending and not woken, before
/// it takes the future to be waiting on the clock.
pub const IDLE_TURNS: usize = 3;

/// Whether the driven future was woken since it was last polled, and who to wake for it.
#[derive(Default)]
struct Woken {
    flag: AtomicBool,
    outer: Mutex<Option<Waker>>,
}

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.flag.store(true, Ordering::SeqCst);
        if let Some(outer) = &*self.outer.lock().unwrap_or_else(PoisonError::into_inner) {
            outer.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::FutureExt;
    use futures::channel::oneshot;
    use futures::executor::block_on;

    use super::*;
    use crate::clock::Timestamp;

    /// Returns pending `n` times, waking itself each time: work that is slow, not waiting.
    async fn yields(n: usize) {
        let mut left = n;
        std::future::poll_fn(|cx| {
            if left == 0 {
                return Poll::Ready(());
            }
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }

    #[test]
    fn time_stands_still_while_the_work_moves_on_its_own() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let (tx, rx) = oneshot::channel();
        // A call with a 30 s timeout whose answer comes after many yields of its own.
        let call = async {
            futures::select! {
                answer = rx.fuse() => answer.ok(),
                () = clock.sleep(Duration::from_secs(30)).fuse() => None,
            }
        };
        let answer = async {
            yields(50).await;
            tx.send(7).unwrap();
        };
        let (got, ()) = block_on(drive(&clock, futures::future::join(call, answer)));
        assert_eq!(got, Some(7), "answered, not timed out");
        assert_eq!(clock.now(), Timestamp::from_millis(0));
    }

    #[test]
    fn time_moves_to_each_sleep_the_work_waits_on() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let (tx, rx) = oneshot::channel::<()>();
        // Nobody answers: the timeout fires, at 30 s, after a first nap of 2 s.
        let call = async {
            clock.sleep(Duration::from_secs(2)).await;
            futures::select! {
                _ = rx.fuse() => false,
                () = clock.sleep(Duration::from_secs(30)).fuse() => true,
            }
        };
        assert!(block_on(drive(&clock, call)), "timed out");
        assert_eq!(clock.now(), Timestamp::from_millis(32_000));
        drop(tx);
    }

    #[test]
    #[should_panic(expected = "it sleeps in a loop that never ends")]
    fn a_future_that_sleeps_forever_is_given_up_on() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        block_on(drive(&clock, async {
            loop {
                clock.sleep(Duration::from_millis(1)).await;
            }
        }));
    }
}
