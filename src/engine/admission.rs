//! Back-pressure: how many submits run at once.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Bounds how many submits run at once: a semaphore. A free permit is taken without
/// waiting or allocating; when none is free, waiters queue in arrival order and a returned
/// permit is handed to the first of them. A waiter dropped before it gets a permit takes
/// none; one dropped after it was handed one passes it on.
pub(super) struct Admission {
    state: Mutex<State>,
}

struct State {
    free: usize,
    queue: VecDeque<Arc<Slot>>,
}

/// A queued waiter: whether it was handed a permit, and how to wake it.
struct Slot {
    granted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Admission {
    pub(super) fn new(n: usize) -> Self {
        Self {
            state: Mutex::new(State {
                free: n.max(1),
                queue: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a permit; it is returned when the [`Permit`] is dropped.
    pub(super) fn acquire(&self) -> Acquire<'_> {
        Acquire {
            admission: self,
            slot: None,
        }
    }

    /// Returns a permit: to the first waiter, or to the free count.
    fn release(&self) {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(slot) => {
                // Granted under the lock: a waiter dropped concurrently that no longer finds
                // itself in the queue then always sees the grant, and passes it on.
                slot.granted.store(true, Ordering::Release);
                drop(state);
                let waker = slot
                    .waker
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
            None => state.free += 1,
        }
    }
}

/// The future of [`Admission::acquire`].
pub(super) struct Acquire<'a> {
    admission: &'a Admission,
    slot: Option<Arc<Slot>>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Permit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit<'a>> {
        let admission = self.admission;
        if let Some(slot) = &self.slot {
            // The waker is set before `granted` is read again: a grant in between finds it.
            *slot.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
            if slot.granted.load(Ordering::Acquire) {
                self.slot = None;
                return Poll::Ready(Permit(admission));
            }
            return Poll::Pending;
        }
        let mut state = admission.lock();
        if state.free > 0 && state.queue.is_empty() {
            state.free -= 1;
            return Poll::Ready(Permit(admission));
        }
        let slot = Arc::new(Slot {
            granted: AtomicBool::new(false),
            waker: Mutex::new(Some(cx.waker().clone())),
        });
        state.queue.push_back(slot.clone());
        drop(state);
        self.slot = Some(slot);
        Poll::Pending
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let mut state = self.admission.lock();
        if let Some(i) = state.queue.iter().position(|s| Arc::ptr_eq(s, &slot)) {
            state.queue.remove(i);
            return;
        }
        drop(state);
        // Handed a permit it will not use: the next waiter gets it.
        if slot.granted.load(Ordering::Acquire) {
            self.admission.release();
        }
    }
}

/// A submit's place; returned on drop.
pub(super) struct Permit<'a>(&'a Admission);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use std::task::Wake;

    use super::*;

    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll<'a>(f: &mut Acquire<'a>, waker: &Waker) -> Poll<Permit<'a>> {
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn permits_go_to_waiters_in_arrival_order_and_a_dropped_waiter_passes_its_permit_on() {
        let admission = Admission::new(1);
        let woken = Arc::new(Count(0.into()));
        let waker = Waker::from(woken.clone());
        let first = futures::executor::block_on(admission.acquire());
        let (mut a, mut b, mut c) = (
            admission.acquire(),
            admission.acquire(),
            admission.acquire(),
        );
        assert!(poll(&mut a, &waker).is_pending());
        assert!(poll(&mut b, &waker).is_pending());
        assert!(poll(&mut c, &waker).is_pending());
        // `b` leaves before it is handed anything: it takes nothing.
        drop(b);
        drop(first);
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        // `a` was handed the permit but is dropped without taking it: `c` gets it.
        drop(a);
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
        let Poll::Ready(permit) = poll(&mut c, &waker) else {
            panic!("the permit passed on to the next waiter");
        };
        // No permit is free while `c` holds the only one; back once it is dropped.
        let mut d = admission.acquire();
        assert!(poll(&mut d, &waker).is_pending());
        drop(permit);
        let Poll::Ready(held) = poll(&mut d, &waker) else {
            panic!("the returned permit goes to the waiter");
        };
        assert_eq!(admission.lock().free, 0, "d holds the one permit");
        drop(held);
        assert_eq!(admission.lock().free, 1);
    }

    /// Waiters on two threads, many given up on (their futures dropped) while permits are
    /// handed over: afterwards every permit is back and nobody is queued.
    #[test]
    fn waiters_dropped_while_permits_are_handed_over_lose_no_permit() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("runtime");
        let admission = Arc::new(Admission::new(3));
        rt.block_on(async {
            let tasks: Vec<_> = (0..400u64)
                .map(|i| {
                    let admission = admission.clone();
                    tokio::spawn(async move {
                        let wait = std::time::Duration::from_micros(i % 7 * 20);
                        if let Ok(permit) = tokio::time::timeout(wait, admission.acquire()).await {
                            tokio::task::yield_now().await;
                            drop(permit);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("task");
            }
        });
        let state = admission.lock();
        assert_eq!((state.free, state.queue.len()), (3, 0));
    }

    #[test]
    fn a_free_permit_is_taken_at_once_and_returned_on_drop() {
        let admission = Admission::new(2);
        let a = futures::executor::block_on(admission.acquire());
        let b = futures::executor::block_on(admission.acquire());
        assert_eq!(admission.lock().free, 0);
        drop((a, b));
        assert_eq!(admission.lock().free, 2);
    }
}
