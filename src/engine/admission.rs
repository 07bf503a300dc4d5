//! Back-pressure: how many submits run at once.

/// Bounds how many submits run at once: a semaphore whose permits travel through a channel.
/// Waiters queue fairly on the receiver's lock; a waiter dropped before it gets a permit
/// takes none.
pub(super) struct Admission {
    permits: futures::lock::Mutex<futures::channel::mpsc::UnboundedReceiver<()>>,
    returns: futures::channel::mpsc::UnboundedSender<()>,
}

impl Admission {
    pub(super) fn new(n: usize) -> Self {
        let (returns, rx) = futures::channel::mpsc::unbounded();
        for _ in 0..n.max(1) {
            returns.unbounded_send(()).expect("the receiver is alive");
        }
        Self {
            permits: futures::lock::Mutex::new(rx),
            returns,
        }
    }

    pub(super) async fn acquire(&self) -> Permit<'_> {
        use futures::StreamExt;
        let mut permits = self.permits.lock().await;
        // The sender lives in `self`, so the stream never ends while we wait.
        let _ = permits.next().await;
        Permit(self)
    }
}

pub(super) struct Permit<'a>(&'a Admission);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let _ = self.0.returns.unbounded_send(());
    }
}
