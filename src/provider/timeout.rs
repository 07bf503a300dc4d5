//! The timeout of one attempt of a provider call, on the engine's clock: the call is
//! abandoned (its future dropped) when the clock's sleep ends first, and the attempt fails
//! with a retryable [`Timeout`](super::ProviderErrorKind::Timeout) error.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{ProviderError, ProviderErrorKind, Reply};
use crate::clock::{Clock, Timestamp};

/// How long one attempt of a call may take, and the clock that times it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeout<'a> {
    after: Duration,
    clock: &'a dyn Clock,
}

impl<'a> Timeout<'a> {
    /// Attempts bounded by `after` on `clock`.
    pub(crate) fn new(after: Duration, clock: &'a dyn Clock) -> Self {
        Self { after, clock }
    }

    /// When an attempt starting now is abandoned: what the provider is told.
    pub(crate) fn deadline(&self) -> Timestamp {
        self.clock.now().after(self.after)
    }

    /// Runs `call`, a call to `provider`, within the timeout.
    pub(crate) async fn bound<F>(&self, provider: &str, call: F) -> Result<Reply, ProviderError>
    where
        F: Future<Output = Result<Reply, ProviderError>>,
    {
        match within(call, || self.clock.sleep(self.after)).await {
            Some(result) => result,
            None => Err(ProviderError::new(
                ProviderErrorKind::Timeout,
                format!(
                    "provider '{provider}' did not answer within {} ms",
                    self.after.as_millis()
                ),
            )),
        }
    }
}

/// Runs `fut` against a timeout from `sleep`; `None` when the timeout ends first. The
/// sleep is made only if `fut` does not finish on its first poll: a provider that answers
/// at once costs no timer.
async fn within<F: Future>(
    fut: F,
    sleep: impl FnOnce() -> BoxFuture<'static, ()>,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = Some(sleep);
    let mut timer: Option<BoxFuture<'static, ()>> = None;
    futures::future::poll_fn(move |cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if let Some(make) = sleep.take() {
            timer = Some(make());
        }
        match &mut timer {
            Some(t) => t.as_mut().poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Timeout;
    use crate::clock::{Clock, ManualClock, Timestamp};
    use crate::provider::{ProviderErrorKind, Reply};

    #[test]
    fn an_answer_in_time_is_the_answer_and_sets_no_timer() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let timeout = Timeout::new(Duration::from_millis(50), &clock);
        let reply = futures::executor::block_on(timeout.bound("P", async { Ok(Reply::Done) }));
        assert_eq!(reply.unwrap(), Reply::Done);
        assert_eq!(clock.sleepers(), 0);
        assert_eq!(
            timeout.deadline(),
            clock.now().after(Duration::from_millis(50))
        );
    }

    #[test]
    fn a_call_that_outlives_the_timeout_fails_as_a_retryable_timeout() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let timeout = Timeout::new(Duration::from_millis(50), &clock);
        let (result, ()) = futures::executor::block_on(async {
            futures::join!(timeout.bound("P", futures::future::pending()), async {
                clock.advance(Duration::from_millis(50))
            })
        });
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ProviderErrorKind::Timeout);
        assert!(error.is_retryable());
        assert_eq!(error.message(), "provider 'P' did not answer within 50 ms");
    }
}
