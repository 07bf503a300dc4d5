//! Time, injectable so tests run in virtual time.
//!
//! The engine reads the time for the journey and waits (retry backoff, call timeouts) only
//! through a [`Clock`]. [`SystemClock`] (feature `tokio`) is real time; [`ManualClock`] moves
//! only when a test advances it, so every retry schedule and timeout is reproducible.
//!
//! # Contract
//!
//! `now` never goes backwards. The future `sleep(d)` returns completes once `now` has advanced
//! by at least `d` from the call; it must be `'static` (it may outlive the borrow of the
//! clock) and dropping it cancels the wait.
//!
//! ```
//! use std::time::Duration;
//! use orderflow::clock::{Clock, ManualClock, Timestamp};
//! use futures::FutureExt;
//!
//! let clock = ManualClock::new(Timestamp::from_millis(1_000));
//! let mut nap = clock.sleep(Duration::from_millis(500));
//! assert!((&mut nap).now_or_never().is_none());
//! clock.advance(Duration::from_millis(500));
//! assert!(nap.now_or_never().is_some());
//! assert_eq!(clock.now(), Timestamp::from_millis(1_500));
//! ```
//!
//! A complete implementation: a clock that stands still and never wakes, for code paths that
//! must not wait.
//!
//! ```
//! use std::time::Duration;
//! use futures::future::{BoxFuture, FutureExt};
//! use orderflow::clock::{Clock, Timestamp};
//!
//! #[derive(Debug)]
//! struct Frozen(Timestamp);
//!
//! impl Clock for Frozen {
//!     fn now(&self) -> Timestamp {
//!         self.0
//!     }
//!     fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
//!         futures::future::pending().boxed()
//!     }
//! }
//! assert_eq!(Frozen(Timestamp::from_millis(7)).now().as_millis(), 7);
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// A point in time: milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The time `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This time plus a duration, saturating.
    pub fn after(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
    }

    /// The time from `earlier` to this one, zero if `earlier` is later.
    pub fn since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A source of time for the engine. See the [module docs](self).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
}

impl<T: Clock + ?Sized> Clock for Box<T> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
}

const _: Option<&dyn Clock> = None;

/// Real time, with tokio's timers.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(feature = "tokio")]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(millis(since))
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        tokio::time::sleep(duration).boxed()
    }
}

/// Virtual time that moves only when [`advance`](Self::advance)d. Clones share one time.
#[derive(Clone, Default)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

#[derive(Default)]
struct ManualInner {
    now: u64,
    sleepers: Vec<(u64, oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        let clock = Self::default();
        clock.lock().now = start.0;
        clock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves time forward and wakes the sleepers now due.
    pub fn advance(&self, by: Duration) {
        let due = {
            let mut inner = self.lock();
            inner.now = inner.now.saturating_add(millis(by));
            let now = inner.now;
            let (due, waiting): (Vec<_>, Vec<_>) =
                inner.sleepers.drain(..).partition(|(at, _)| *at <= now);
            inner.sleepers = waiting;
            due
        };
        for (_, tx) in due {
            let _ = tx.send(());
        }
    }

    /// How many sleeps are waiting (dropped ones count until the next advance).
    pub fn sleepers(&self) -> usize {
        let mut inner = self.lock();
        inner.sleepers.retain(|(_, tx)| !tx.is_canceled());
        inner.sleepers.len()
    }

    /// The earliest time a waiting sleep completes.
    pub fn next_wake(&self) -> Option<Timestamp> {
        let mut inner = self.lock();
        inner.sleepers.retain(|(_, tx)| !tx.is_canceled());
        inner.sleepers.iter().map(|(at, _)| Timestamp(*at)).min()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("ManualClock")
            .field("now", &Timestamp(inner.now))
            .field("sleepers", &inner.sleepers.len())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.lock().now)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let mut inner = self.lock();
        let at = inner.now.saturating_add(millis(duration));
        if at <= inner.now {
            return futures::future::ready(()).boxed();
        }
        let (tx, rx) = oneshot::channel();
        inner.sleepers.push((at, tx));
        rx.map(|_| ()).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_sleepers_wake_in_deadline_order_only_when_due() {
        let clock = ManualClock::new(Timestamp(0));
        let mut a = clock.sleep(Duration::from_millis(10));
        let mut b = clock.sleep(Duration::from_millis(20));
        assert_eq!(clock.next_wake(), Some(Timestamp(10)));
        clock.advance(Duration::from_millis(15));
        assert!((&mut a).now_or_never().is_some());
        assert!((&mut b).now_or_never().is_none());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_millis(5));
        assert!(b.now_or_never().is_some());
        assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(
            Timestamp(u64::MAX).after(Duration::from_secs(1)),
            Timestamp(u64::MAX)
        );
        assert_eq!(Timestamp(5).since(Timestamp(9)), Duration::ZERO);
    }
}
