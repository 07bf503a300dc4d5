//! Panic catching around a provider call: a provider that panics fails that attempt with a
//! retryable [`Panicked`](super::ProviderErrorKind::Panicked) error naming the panic,
//! instead of unwinding through the engine.

use std::future::Future;

use futures::FutureExt;

use super::{ProviderError, ProviderErrorKind, Reply};

/// Catches the panics of a call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CatchPanic;

impl CatchPanic {
    /// Runs `call`, a call to `provider`; a panic becomes the attempt's error.
    pub(crate) async fn call<F>(provider: &str, call: F) -> Result<Reply, ProviderError>
    where
        F: Future<Output = Result<Reply, ProviderError>>,
    {
        match std::panic::AssertUnwindSafe(call).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => Err(ProviderError::new(
                ProviderErrorKind::Panicked,
                format!("provider '{provider}' panicked: {}", panic_message(&*panic)),
            )),
        }
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::CatchPanic;
    use crate::provider::{ProviderErrorKind, Reply};

    #[test]
    fn a_panic_is_a_retryable_failure_of_the_attempt() {
        let result = futures::executor::block_on(CatchPanic::call("P", async {
            if true {
                panic!("out of cheese");
            }
            Ok(Reply::Done)
        }));
        let error = result.unwrap_err();
        assert_eq!(error.kind(), ProviderErrorKind::Panicked);
        assert!(error.is_retryable());
        assert_eq!(error.message(), "provider 'P' panicked: out of cheese");
        let fine = futures::executor::block_on(CatchPanic::call("P", async { Ok(Reply::Done) }));
        assert_eq!(fine.unwrap(), Reply::Done);
    }
}
