//! Retries of provider calls: the policy a step carries ([`RetryPolicy`]) and the decision
//! it makes on a failure ([`RetryPolicy::next_attempt`]).
//!
//! The decision reads the error the action returned, through [`Retryable`]: an action that
//! returns a retryable provider error (or an [`ActionError`](crate::action::ActionError) of
//! a retryable kind) runs again after the policy's backoff, on a durable timer, while
//! attempts are left; one that handles the error and returns `Ok` does not.
//!
//! ```
//! use std::time::Duration;
//! use orderflow::provider::{ProviderError, RetryPolicy};
//!
//! let retry = RetryPolicy::new(3, Duration::from_millis(500));
//! let outage = ProviderError::unavailable("connection refused");
//! // After attempt 1 failed: attempt 2 in 500 ms (no jitter: the random draw is not taken).
//! assert_eq!(retry.next_attempt(&outage, 1, || 0.5), Some(Duration::from_millis(500)));
//! // Attempt 3 was the last.
//! assert_eq!(retry.next_attempt(&outage, 3, || 0.5), None);
//! // A refusal is final.
//! assert_eq!(retry.next_attempt(&ProviderError::rejected("bad data"), 1, || 0.5), None);
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{millis, whole_millis};

/// A failure that says whether another attempt may succeed: what
/// [`RetryPolicy::next_attempt`] reads. [`ProviderError`](super::ProviderError) and
/// [`ActionError`](crate::action::ActionError) are.
pub trait Retryable {
    /// Whether another attempt may succeed.
    fn is_retryable(&self) -> bool;
}

impl<T: Retryable + ?Sized> Retryable for &T {
    fn is_retryable(&self) -> bool {
        (**self).is_retryable()
    }
}

/// Retries of a provider call: attempts with exponential backoff, capped, with jitter.
///
/// The waits are [`Duration`]s counted in whole milliseconds, as the JSON form writes them
/// (`backoff_ms`, `max_backoff_ms`): a fraction of a millisecond is dropped.
///
/// ```
/// use std::time::Duration;
/// use orderflow::flow::RetryPolicy;
///
/// let retry = RetryPolicy::new(4, Duration::from_millis(250)).with_max_backoff(Duration::from_secs(1));
/// assert_eq!(retry.wait_before(3), Duration::from_millis(500));
/// assert_eq!(retry.wait_before(4), Duration::from_secs(1));
/// let json = serde_json::to_string(&retry).unwrap();
/// assert_eq!(json, r#"{"attempts":4,"backoff_ms":250,"max_backoff_ms":1000,"jitter":0.0}"#);
/// assert_eq!(serde_json::from_str::<RetryPolicy>(&json).unwrap(), retry);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Total attempts, at least 1.
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each further one. JSON: `backoff_ms`.
    #[serde(default, rename = "backoff_ms", with = "millis")]
    pub backoff: Duration,
    /// The longest wait between attempts. JSON: `max_backoff_ms`.
    #[serde(
        default = "default_max_backoff",
        rename = "max_backoff_ms",
        with = "millis"
    )]
    pub max_backoff: Duration,
    /// Fraction of each wait (0 to 1) that is randomized. A value that is not finite is
    /// refused when the policy is read (formats other than JSON can carry one); one out of
    /// range fails [`check`](Self::check), which flow validation and
    /// [`EngineBuilder::build`](crate::EngineBuilder::build) run.
    #[serde(default, deserialize_with = "finite_jitter")]
    pub jitter: f64,
}

pub(crate) fn default_max_backoff() -> Duration {
    Duration::from_secs(60)
}

fn finite_jitter<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let jitter = f64::deserialize(d)?;
    if jitter.is_finite() {
        Ok(jitter)
    } else {
        Err(serde::de::Error::custom(format!(
            "jitter must be a finite number from 0 to 1, not {jitter}"
        )))
    }
}

impl RetryPolicy {
    /// A single attempt.
    pub const NONE: Self = Self {
        attempts: 1,
        backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        jitter: 0.0,
    };

    /// `attempts` attempts with `backoff` before the second, doubling, capped at a minute,
    /// without jitter.
    pub fn new(attempts: u32, backoff: Duration) -> Self {
        Self {
            attempts,
            backoff,
            max_backoff: default_max_backoff(),
            jitter: 0.0,
        }
    }

    /// Sets the jitter fraction.
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the cap.
    pub fn with_max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Checks the policy's numbers: at least one attempt, and a jitter from 0 to 1 (not NaN,
    /// not infinite). The error says which and why.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.attempts == 0 {
            return Err("attempts must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err("jitter must be between 0 and 1");
        }
        Ok(())
    }

    /// The wait before attempt `next` (2 for the first retry), before jitter: the backoff,
    /// doubled for each attempt after the second, capped (a cap below the backoff counts as
    /// the backoff). In whole milliseconds, as the engine waits.
    pub fn wait_before(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(63);
        let backoff = whole_millis(self.backoff);
        Duration::from_millis(
            backoff
                .saturating_mul(1u64 << doublings)
                .min(whole_millis(self.max_backoff).max(backoff)),
        )
    }

    /// The wait before the next attempt of a step whose attempt `attempt` (1 for the first)
    /// failed with `error`: `None` when the error is not retryable or `attempt` was the
    /// last, else [`wait_before`](Self::wait_before)`(attempt + 1)` less its jitter, a
    /// fraction of it drawn from `random` (a number in `[0, 1)`; called only when the
    /// policy has jitter and the wait is not zero, so a seeded source stays in step).
    pub fn next_attempt(
        &self,
        error: &(impl Retryable + ?Sized),
        attempt: u32,
        random: impl FnOnce() -> f64,
    ) -> Option<Duration> {
        if !error.is_retryable() || attempt >= self.attempts.max(1) {
            return None;
        }
        let base = whole_millis(self.wait_before(attempt + 1));
        if self.jitter > 0.0 && base > 0 {
            let jitter = (base as f64 * self.jitter.clamp(0.0, 1.0)) * random();
            Some(Duration::from_millis(base - jitter as u64))
        } else {
            Some(Duration::from_millis(base))
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

/// The seeded random source of retry jitter (SplitMix64): small, fast, and the same
/// sequence for the same seed, so a test's retry schedule is the same on every run.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    /// A source seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Jitter, RetryPolicy, Retryable};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    struct Failure(bool);

    impl Retryable for Failure {
        fn is_retryable(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let r = RetryPolicy::new(10, ms(100)).with_max_backoff(ms(1_000));
        let waits: Vec<u64> = (2..=7)
            .map(|n| r.wait_before(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(r.wait_before(200), ms(1_000));
        // A cap below the backoff counts as the backoff; a fraction of a millisecond is dropped.
        let r = RetryPolicy::new(3, Duration::from_micros(2_700)).with_max_backoff(ms(1));
        assert_eq!(r.wait_before(2), ms(2));
        assert_eq!(r.wait_before(5), ms(2));
        let huge = RetryPolicy::new(3, Duration::MAX);
        assert_eq!(huge.wait_before(9), ms(u64::MAX));
    }

    #[test]
    fn jitter_is_finite_and_in_range() {
        assert_eq!(RetryPolicy::default().check(), Ok(()));
        assert_eq!(RetryPolicy::new(3, ms(10)).with_jitter(1.0).check(), Ok(()));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.1, 1.5] {
            assert_eq!(
                RetryPolicy::new(3, ms(10)).with_jitter(bad).check(),
                Err("jitter must be between 0 and 1"),
                "{bad}"
            );
        }
        assert_eq!(
            RetryPolicy::new(0, ms(10)).check(),
            Err("attempts must be at least 1")
        );
        // JSON carries no NaN or infinity; a serde_json::Value cannot hold them either, so
        // the non-finite path is reached through a deserializer that hands one over.
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error, F64Deserializer};
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let d: F64Deserializer<Error> = bad.into_deserializer();
            let err = super::finite_jitter(d).unwrap_err().to_string();
            assert!(err.contains("jitter must be a finite number"), "{err}");
        }
        let err =
            serde_json::from_str::<RetryPolicy>(r#"{"attempts": 2, "jitter": 1e400}"#).unwrap_err();
        assert!(err.to_string().contains("number out of range"), "{err}");
    }

    #[test]
    fn the_next_attempt_comes_from_the_error_and_the_attempts_left() {
        let r = RetryPolicy::new(3, ms(100));
        let never = || -> f64 { panic!("no jitter to draw") };
        assert_eq!(r.next_attempt(&Failure(true), 1, never), Some(ms(100)));
        assert_eq!(r.next_attempt(&Failure(true), 2, never), Some(ms(200)));
        assert_eq!(r.next_attempt(&Failure(true), 3, never), None);
        assert_eq!(r.next_attempt(&Failure(false), 1, never), None);
        assert_eq!(
            RetryPolicy::NONE.next_attempt(&Failure(true), 1, never),
            None
        );
        // Zero attempts counts as one.
        assert_eq!(
            RetryPolicy::new(0, ms(1)).next_attempt(&Failure(true), 1, never),
            None
        );
    }

    #[test]
    fn jitter_takes_a_drawn_fraction_off_the_wait() {
        let r = RetryPolicy::new(5, ms(1_000)).with_jitter(0.5);
        assert_eq!(r.next_attempt(&Failure(true), 1, || 0.0), Some(ms(1_000)));
        assert_eq!(r.next_attempt(&Failure(true), 1, || 0.5), Some(ms(750)));
        assert_eq!(r.next_attempt(&Failure(true), 2, || 0.999), Some(ms(1_001)));
        // No wait, nothing drawn.
        let now = RetryPolicy::new(2, Duration::ZERO).with_jitter(1.0);
        assert_eq!(
            now.next_attempt(&Failure(true), 1, || panic!("drawn")),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn jitter_is_seeded() {
        let draw = |seed| {
            let mut j = Jitter::new(seed);
            (0..4).map(|_| j.next_f64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(7).iter().all(|x| (0.0..1.0).contains(x)));
    }
}
