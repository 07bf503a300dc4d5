//! Wake-ups: the timer worker's, when a turn sets a timer, and that of whoever waits for a
//! commit ([`Engine::settled`](super::Engine::settled)).

use std::future::Future;

/// A wake-up for one waiter: set by any thread, awaited by the timer worker.
#[derive(Debug, Default)]
pub(super) struct Signal {
    set: std::sync::atomic::AtomicBool,
    waker: futures::task::AtomicWaker,
}

impl Signal {
    pub(super) fn notify(&self) {
        self.set.store(true, std::sync::atomic::Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once notified (at once if notified since the last wait).
    pub(super) fn wait(&self) -> impl Future<Output = ()> + '_ {
        futures::future::poll_fn(move |cx| {
            self.waker.register(cx.waker());
            if self.set.swap(false, std::sync::atomic::Ordering::AcqRel) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
}

/// Wakes whoever waits for an order to change ([`Engine::settled`]) when a turn commits:
/// with a manual clock nothing else would wake them.
#[derive(Debug, Default)]
pub(super) struct Commits {
    generation: std::sync::atomic::AtomicU64,
    waiters: std::sync::atomic::AtomicUsize,
    wakers: std::sync::Mutex<Vec<std::task::Waker>>,
}

impl Commits {
    /// A commit happened.
    pub(super) fn notify(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.generation.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            let mut wakers = self
                .wakers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.waiters.store(0, SeqCst);
            for waker in wakers.drain(..) {
                waker.wake();
            }
        }
    }

    /// The number of commits so far.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves once a commit happened after `seen` was read.
    pub(super) fn changed(&self, seen: u64) -> impl Future<Output = ()> + '_ {
        use std::sync::atomic::Ordering::SeqCst;
        futures::future::poll_fn(move |cx| {
            if self.generation.load(SeqCst) != seen {
                return std::task::Poll::Ready(());
            }
            self.waiters.fetch_add(1, SeqCst);
            self.wakers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(cx.waker().clone());
            if self.generation.load(SeqCst) != seen {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }
}
