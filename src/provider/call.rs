//! A step's provider calls, as an action makes them through
//! [`ActionContext::call`](crate::action::ActionContext::call): the layers of
//! [`timeout`](super::timeout), [`catch_panic`](super::catch_panic),
//! [`idempotency`](super::idempotency) and, in a dry run, [`dry_run`](super::dry_run)
//! around one provider, with what the step's run needs to know afterwards — how many calls
//! it made, which records' calls succeeded, and which calls failed retryably. Whether the
//! step runs again is decided on the error the action returns
//! ([`RetryPolicy::next_attempt`](super::RetryPolicy::next_attempt)), not here.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::catch_panic::CatchPanic;
use super::dry_run::DryRunCalls;
use super::idempotency::IdempotencyKey;
use super::timeout::Timeout;
use super::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use crate::document::RecordId;

/// What the host's metrics see of each call: the provider, the request kind, how long the
/// attempt took and how it ended.
pub(crate) type CallObserver = fn(&str, RequestKind, Duration, Result<(), &ProviderError>);

/// The provider calls of one run of one step.
#[derive(Debug)]
pub(crate) struct StepCalls<'a> {
    step: &'a str,
    provider: Option<&'a Arc<dyn Provider>>,
    key: IdempotencyKey<'a>,
    timeout: Timeout<'a>,
    /// The step's attempt: 1, then one more for each durable retry.
    attempt: u32,
    /// Set in a dry run: calls are recorded and answered, not made.
    dry_run: Option<&'a DryRunCalls>,
    observer: Option<CallObserver>,
    made: AtomicU32,
    /// The records whose calls succeeded in this run.
    accepted: Mutex<Vec<RecordId>>,
    /// The kinds of the calls that failed with a retryable error.
    retryable: Mutex<Vec<RequestKind>>,
}

impl<'a> StepCalls<'a> {
    /// Calls of `step` to `provider` (none when the step names no provider), keyed by `key`,
    /// each attempt bounded by `timeout`, in the step's attempt `attempt`.
    pub(crate) fn new(
        step: &'a str,
        provider: Option<&'a Arc<dyn Provider>>,
        key: IdempotencyKey<'a>,
        timeout: Timeout<'a>,
        attempt: u32,
    ) -> Self {
        Self {
            step,
            provider,
            key,
            timeout,
            attempt,
            dry_run: None,
            observer: None,
            made: AtomicU32::new(0),
            accepted: Mutex::new(Vec::new()),
            retryable: Mutex::new(Vec::new()),
        }
    }

    /// Records and answers the calls instead of making them (a dry run), when given.
    pub(crate) fn dry_run(mut self, calls: Option<&'a DryRunCalls>) -> Self {
        self.dry_run = calls;
        self
    }

    /// Tells `observer` about each call made.
    pub(crate) fn observed(mut self, observer: Option<CallObserver>) -> Self {
        self.observer = observer;
        self
    }

    /// The step's provider.
    pub(crate) fn provider(&self) -> Option<&'a Arc<dyn Provider>> {
        self.provider
    }

    /// Calls made in this run (dry-run calls included).
    pub(crate) fn made(&self) -> u32 {
        self.made.load(Ordering::Relaxed)
    }

    /// The records whose calls succeeded in this run.
    pub(crate) fn take_accepted(&self) -> Vec<RecordId> {
        std::mem::take(&mut *self.accepted.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The kinds of the calls that failed with a retryable error in this run.
    pub(crate) fn take_retryable_failures(&self) -> Vec<RequestKind> {
        std::mem::take(
            &mut *self
                .retryable
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// One attempt of a call for `record`: refused when the step has no provider or the
    /// provider does not offer the request's kind; else keyed, bounded by the timeout, with
    /// a panic caught (or, in a dry run, recorded and answered).
    pub(crate) async fn call(
        &self,
        record: &RecordId,
        request: Request<'_>,
    ) -> Result<Reply, ProviderError> {
        let Some(provider) = self.provider else {
            return Err(ProviderError::rejected("the step names no provider"));
        };
        let name = provider.name();
        let kind = request.kind();
        if !provider.offers().contains(&kind) {
            return Err(ProviderError::rejected(format!(
                "provider '{name}' does not offer '{kind}'"
            )));
        }
        let key = self.key.for_record(record);
        self.made.fetch_add(1, Ordering::Relaxed);
        if let Some(dry) = self.dry_run {
            return Ok(dry.answer(self.step, name, &request, record));
        }
        let cx = CallContext {
            idempotency_key: &key,
            attempt: self.attempt,
            deadline: self.timeout.deadline(),
        };
        let started = self.observer.map(|_| std::time::Instant::now());
        let result = self
            .timeout
            // Through the trait object itself: `Arc<dyn Provider>` forwards, which would box
            // the call's future twice.
            .bound(
                name,
                CatchPanic::call(name, (**provider).call(request, &cx)),
            )
            .await;
        match &result {
            Ok(_) => self
                .accepted
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(record.clone()),
            Err(e) if e.is_retryable() => self
                .retryable
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(kind),
            Err(_) => {}
        }
        if let (Some(observe), Some(started)) = (self.observer, started) {
            observe(name, kind, started.elapsed(), result.as_ref().map(drop));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::StepCalls;
    use crate::clock::{ManualClock, Timestamp};
    use crate::document::{Order, RecordId};
    use crate::provider::dry_run::DryRunCalls;
    use crate::provider::idempotency::IdempotencyKey;
    use crate::provider::timeout::Timeout;
    use crate::provider::{MemoryProvider, Provider, ProviderErrorKind, Request};

    #[test]
    fn calls_are_keyed_counted_and_remembered() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let memory = MemoryProvider::new("ERP").unavailable_for(1);
        let provider: Arc<dyn Provider> = Arc::new(memory.clone());
        let execution = "SO-1#1";
        let calls = StepCalls::new(
            "Send",
            Some(&provider),
            IdempotencyKey::new(&execution, "Send", 1),
            Timeout::new(Duration::from_secs(1), &clock),
            2,
        );
        let order = Order::new("SO-1");
        let send = || Request::SendToErp { order: &order };
        let first = futures::executor::block_on(calls.call(&RecordId::Order, send()));
        assert_eq!(first.unwrap_err().kind(), ProviderErrorKind::Unavailable);
        futures::executor::block_on(calls.call(&RecordId::Order, send())).unwrap();
        assert_eq!(calls.made(), 2);
        assert_eq!(calls.take_accepted(), [RecordId::Order]);
        assert_eq!(calls.take_retryable_failures().len(), 1);
        let received = memory.calls();
        assert_eq!(received[0].idempotency_key, "SO-1#1/Send/1/order");
        assert_eq!(received[1].idempotency_key, received[0].idempotency_key);
        assert_eq!(received[1].attempt, 2);
    }

    #[test]
    fn a_step_without_a_provider_or_a_dry_run_calls_nobody() {
        let clock = ManualClock::new(Timestamp::from_millis(0));
        let execution = "SO-1#1";
        let timeout = Timeout::new(Duration::from_secs(1), &clock);
        let order = Order::new("SO-1");
        let none = StepCalls::new(
            "S",
            None,
            IdempotencyKey::new(&execution, "S", 1),
            timeout,
            1,
        );
        let refused = futures::executor::block_on(
            none.call(&RecordId::Order, Request::SendInvoice { order: &order }),
        );
        assert_eq!(refused.unwrap_err().kind(), ProviderErrorKind::Rejected);
        assert_eq!(none.made(), 0);

        let memory = MemoryProvider::new("Billing");
        let provider: Arc<dyn Provider> = Arc::new(memory.clone());
        let dry = DryRunCalls::default();
        let calls = StepCalls::new(
            "S",
            Some(&provider),
            IdempotencyKey::new(&execution, "S", 1),
            timeout,
            1,
        )
        .dry_run(Some(&dry));
        futures::executor::block_on(
            calls.call(&RecordId::Order, Request::SendInvoice { order: &order }),
        )
        .unwrap();
        assert!(memory.calls().is_empty(), "a dry run calls no provider");
        assert_eq!(dry.take().len(), 1);
        assert_eq!(calls.made(), 1);
    }
}
