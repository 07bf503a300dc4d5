//! Engine-wide settings: [`Config`], and how an engine shares work with other instances,
//! [`WorkConfig`].

use std::time::Duration;

use crate::error::{Error, Result};
use crate::flow::RetryPolicy;
use crate::limits::Limits;

/// Engine-wide settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Retries of provider calls for steps that set none. Default: 3 attempts, 1 s backoff
    /// doubling to at most 60 s, 20 % jitter.
    pub retry: RetryPolicy,
    /// Timeout of each provider call attempt for steps that set none. Default: 30 s.
    pub timeout: Duration,
    /// Journey entries one execution may record before it fails with a clear error.
    /// Default: 10,000.
    pub max_journey: u32,
    /// Seed of the random source (retry jitter). Default: 0.
    pub seed: u64,
    /// Steps one submit (or reprocess, or recovery) may take for one order before what is
    /// still moving fails as a runaway, such as flows starting each other in a cycle.
    /// Default: 100,000.
    pub max_steps_per_turn: u64,
    /// Submits processed at once; further ones wait (back-pressure) instead of being
    /// rejected. Default: 4,096.
    pub max_in_flight: usize,
    /// Longest sleep of [`Engine::run_timers`](super::Engine::run_timers) between looks at the store's timers (timers
    /// set by this engine wake it at once; ones set by another engine on the same store
    /// are seen within this). Default: 1 s.
    pub timer_poll: Duration,
    /// Bounds on flows, policies and events the engine takes. Default:
    /// [`Limits::default`](crate::limits::Limits).
    pub limits: Limits,
    /// How the engine shares work with other instances over a
    /// [`SharedStore`](crate::store::SharedStore): lease length, poll interval, batch
    /// size. Default: [`WorkConfig::default`].
    pub work: WorkConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            max_journey: 10_000,
            seed: 0,
            max_in_flight: 4_096,
            max_steps_per_turn: 100_000,
            timer_poll: Duration::from_secs(1),
            limits: Limits::default(),
            work: WorkConfig::default(),
        }
    }
}

impl Config {
    /// Sets the bounds on untrusted input.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets how the engine shares work with other instances.
    pub fn with_work(mut self, work: WorkConfig) -> Self {
        self.work = work;
        self
    }

    /// Sets the longest sleep of the timer worker.
    pub fn with_timer_poll(mut self, poll: Duration) -> Self {
        self.timer_poll = poll;
        self
    }

    /// Sets the default retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the default per-attempt timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the journey bound per execution.
    pub fn with_max_journey(mut self, max: u32) -> Self {
        self.max_journey = max;
        self
    }

    /// Sets the random seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the step budget of one turn.
    pub fn with_max_steps_per_turn(mut self, n: u64) -> Self {
        self.max_steps_per_turn = n;
        self
    }

    /// Sets how many submits are processed at once (at least 1).
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }
}

/// How an engine shares work with other instances over a [`SharedStore`](crate::store::SharedStore)
/// ([`Config::work`](super::Config::work)).
///
/// ```
/// use std::time::Duration;
/// use orderflow::{Config, engine::WorkConfig};
///
/// let config = Config::default().with_work(
///     WorkConfig::default()
///         .with_lease(Duration::from_secs(20))
///         .with_batch(64),
/// );
/// assert_eq!(config.work.poll, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkConfig {
    /// How long a claim holds an order, on the store's clock; every commit to the order
    /// renews it. It bounds how long a dead instance's orders wait before another instance
    /// takes them over, and it must be longer than the longest a step can run without
    /// committing — the provider call timeout, [`Config::timeout`](super::Config::timeout)
    /// — or a slow call would lose the order to another instance (which is safe, fenced,
    /// but wasted work). Default: 60 seconds.
    pub lease: Duration,
    /// The longest an idle worker sleeps between looks for work when no wake-up arrives
    /// (the store's notifications, e.g. PostgreSQL's `LISTEN`/`NOTIFY`, wake it at once).
    /// Default: 1 second.
    pub poll: Duration,
    /// How many orders one claim takes (and runs concurrently). Default: 32.
    pub batch: usize,
    /// How often the worker runs the store's housekeeping
    /// ([`SharedStore::maintain`](crate::store::SharedStore::maintain): PostgreSQL vacuums its work list and inbox). Default:
    /// 30 seconds.
    pub maintenance: Duration,
}

impl Default for WorkConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            batch: 32,
            maintenance: Duration::from_secs(30),
        }
    }
}

impl WorkConfig {
    /// Sets the lease length.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Sets the poll interval.
    pub fn with_poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Sets the housekeeping interval.
    pub fn with_maintenance(mut self, every: Duration) -> Self {
        self.maintenance = every;
        self
    }

    /// Sets the claim batch size.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }

    /// Refuses settings that cannot work, given the provider call timeout.
    pub(super) fn check(&self, timeout: Duration) -> Result<()> {
        if self.batch == 0 {
            return Err(Error::Configuration(
                "work.batch must be at least 1".to_owned(),
            ));
        }
        if self.maintenance.is_zero() {
            return Err(Error::Configuration(
                "work.maintenance must be longer than zero".to_owned(),
            ));
        }
        if self.poll.is_zero() {
            return Err(Error::Configuration(
                "work.poll must be longer than zero".to_owned(),
            ));
        }
        if self.lease <= timeout {
            return Err(Error::Configuration(format!(
                "work.lease ({:?}) must be longer than the provider call timeout ({timeout:?}): \
                 a call that runs out its timeout would lose its order to another instance",
                self.lease
            )));
        }
        Ok(())
    }
}
