//! The metrics the engine records, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! With the `metrics` feature the engine records counters and histograms with the
//! `metrics` crate's macros; the host installs the recorder it wants (a Prometheus
//! exporter, OpenTelemetry, `metrics-util`'s debugging recorder in tests) before it
//! builds the engine. Without a recorder a call costs a lookup and, for labelled metrics,
//! the label strings; without the feature the calls are not compiled at all. [`describe`] gives the recorder each metric's unit
//! and description; [`EngineBuilder::build`](crate::EngineBuilder::build) calls it.
//!
//! Dry runs ([`Engine::simulate`](crate::Engine::simulate)) record nothing.
//!
//! # The metrics
//!
//! | Name | Type | Unit | Labels | What it counts |
//! |---|---|---|---|---|
//! | `orderflow_orders_accepted_total` | counter | orders | — | New orders taken on: the first event of an order the store did not hold, with its document, counted when its first commit succeeds ([`submit`](crate::Engine::submit) or a work round) |
//! | `orderflow_events_accepted_total` | counter | events | `duplicate` | Events an engine took on an order's timeline ([`submit`](crate::Engine::submit), or a work round taking a queued event), counted once the event is committed, even if the turn fails later; `duplicate="true"` for an event id the order had seen (accepted and ignored), else `"false"` |
//! | `orderflow_events_enqueued_total` | counter | events | — | Events queued in a shared store by [`enqueue`](crate::Engine::enqueue) (whether one is a duplicate is known only when a worker takes it: see `orderflow_events_accepted_total`) |
//! | `orderflow_steps_total` | counter | steps | `flow`, `step`, `outcome` | Journey rows written: each action, condition, splitter and merge that finished, with `outcome` one of `succeeded`, `failed`, `skipped`, `cancelled`. Counted as the row is written, before its commit: a turn whose commit fails (a store outage, a lost lease) and that runs again counts its steps again |
//! | `orderflow_provider_call_seconds` | histogram | seconds | `provider`, `kind` | Wall time of each provider call attempt (timeouts and panics included), measured with [`std::time::Instant`], not the engine's clock |
//! | `orderflow_provider_errors_total` | counter | calls | `provider`, `kind`, `error` | Provider calls that failed, with `error` one of `rejected`, `unavailable`, `timeout`, `panicked`, `invalid_reply`, `other` |
//! | `orderflow_provider_retries_total` | counter | calls | `provider`, `kind` | Failed provider calls whose step is scheduled to run again (a retryable error, attempts left) |
//! | `orderflow_timers_due_total` | counter | orders | — | Orders whose due durable timers ran to the end of their turn (a retry's backoff ended, or a turn that never finished was resumed): by [`run_due`](crate::Engine::run_due), the timer worker, a work round or [`restore`](crate::Engine::restore) |
//! | `orderflow_work_claimed_orders` | histogram | orders | — | Orders each claim on a shared store took ([`work`](crate::Engine::work)); a round that claims a full [`batch`](crate::engine::WorkConfig::batch) means more work waits |
//! | `orderflow_work_claim_seconds` | histogram | seconds | — | Wall time of each claim on a shared store, the failed ones included |
//! | `orderflow_dead_letters_total` | counter | events | — | Queued events set aside as dead letters ([`WorkReport::dead_letters`](crate::engine::WorkReport::dead_letters)) |
//! | `orderflow_orders_set_aside_total` | counter | orders | `kind` | Orders set aside because they cannot be decoded or run ([`set_aside_orders`](crate::Engine::set_aside_orders)), by the kind of the error that did it |
//! | `orderflow_order_failures_total` | counter | turns | `kind`, `set_aside` | Order turns that failed in background work ([`recover`](crate::Engine::recover), [`run_due`](crate::Engine::run_due), a work round, [`restore`](crate::Engine::restore)), by error kind; `set_aside="true"` when the order was set aside for it |
//! | `orderflow_worker_errors_total` | counter | errors | `worker`, `operation`, `kind` | Errors a background worker swallowed and tries again after. `worker="timers"` ([`run_timers`](crate::Engine::run_timers)) with `operation="round"` (a round failed: the store could not list due timers, or waking a resumed flow's orders failed); `worker="shared"` ([`run_worker`](crate::Engine::run_worker)) with `operation` one of `claim`, `housekeeping` ([`SharedStore::maintain`](crate::store::SharedStore::maintain)), `recovery` (waking a resumed flow's orders), `timers` (listing the next due timer before sleeping), `release` (giving back the claim of an order just set aside; its lease lapses instead), `lease` (an order's lease ran out while it ran and another instance took it over: this instance's work on it was fenced off, [`WorkReport::lost`](crate::engine::WorkReport::lost)) |
//!
//! Label values:
//! - `kind` on provider metrics: the [`RequestKind`] in
//!   snake case (`determine_fulfillment`, `send_fulfillment_order`, `send_to_erp`,
//!   `send_invoice`, `custom`); `provider` is the provider's registered name.
//! - `kind` on error metrics: the [`ErrorKind`] in snake case
//!   (`document`, `validation`, `not_found`, `already_exists`, `invalid_state`,
//!   `invalid_input`, `store`, `configuration`, `limit`).
//! - `flow` and `step` come from published flows, a set the host controls. No metric is
//!   labelled by order, execution or event: their number has no bound.
//!
//! Failures of single orders are not worker errors: they are
//! `orderflow_order_failures_total` (and `orderflow_orders_set_aside_total` when the order
//! is set aside), whichever worker ran the order. Every error a background worker
//! swallows is also a `tracing` event with the `tracing` feature: `warn` for the worker
//! errors and order failures, `error` when an order cannot be set aside.
//!
//! Queue depth: a [`SharedStore`](crate::store::SharedStore) does not report how many
//! events wait in it, and the engine does not guess. `orderflow_work_claimed_orders` says
//! what each claim found; rounds that keep claiming a full batch mean work is waiting.
//!
//! The names are constants of this module, for hosts that filter or look them up.
//!
//! # Example
//!
//! A host reads the engine's counters from the recorder it installed (here `metrics-util`'s
//! debugging recorder, for this thread only):
//!
//! ```
//! # #[cfg(feature = "metrics")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use orderflow::document::{Order, OrderLine};
//! use orderflow::{Engine, Event, MemoryStore};
//!
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! let _local = metrics::set_default_local_recorder(&recorder);
//!
//! let engine = Engine::builder().store(MemoryStore::new()).build().await?;
//! let order = Order::new("SO-1").with_line(OrderLine::new("1", "Surface Pen", 2));
//! engine.submit(Event::new_order(order)).await?;
//!
//! let accepted: Vec<_> = snapshotter
//!     .snapshot()
//!     .into_vec()
//!     .into_iter()
//!     .filter(|(key, ..)| key.key().name() == orderflow::metrics::ORDERS_ACCEPTED)
//!     .map(|(.., value)| value)
//!     .collect();
//! assert_eq!(accepted, [DebugValue::Counter(1)]);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "metrics"))]
//! # fn main() {}
//! ```

/// `orderflow_orders_accepted_total`: new orders taken on.
pub const ORDERS_ACCEPTED: &str = "orderflow_orders_accepted_total";
/// `orderflow_events_accepted_total{duplicate}`: events taken on an order's timeline.
pub const EVENTS_ACCEPTED: &str = "orderflow_events_accepted_total";
/// `orderflow_events_enqueued_total`: events queued in a shared store.
pub const EVENTS_ENQUEUED: &str = "orderflow_events_enqueued_total";
/// `orderflow_steps_total{flow,step,outcome}`: journey rows written.
pub const STEPS: &str = "orderflow_steps_total";
/// `orderflow_provider_call_seconds{provider,kind}`: provider call latency.
pub const PROVIDER_CALL_SECONDS: &str = "orderflow_provider_call_seconds";
/// `orderflow_provider_errors_total{provider,kind,error}`: failed provider calls.
pub const PROVIDER_ERRORS: &str = "orderflow_provider_errors_total";
/// `orderflow_provider_retries_total{provider,kind}`: failed calls to be tried again.
pub const PROVIDER_RETRIES: &str = "orderflow_provider_retries_total";
/// `orderflow_timers_due_total`: orders whose due timers ran.
pub const TIMERS_DUE: &str = "orderflow_timers_due_total";
/// `orderflow_work_claimed_orders`: orders per claim on a shared store.
pub const WORK_CLAIMED: &str = "orderflow_work_claimed_orders";
/// `orderflow_work_claim_seconds`: claim latency on a shared store.
pub const WORK_CLAIM_SECONDS: &str = "orderflow_work_claim_seconds";
/// `orderflow_dead_letters_total`: queued events set aside as dead letters.
pub const DEAD_LETTERS: &str = "orderflow_dead_letters_total";
/// `orderflow_orders_set_aside_total{kind}`: orders set aside.
pub const ORDERS_SET_ASIDE: &str = "orderflow_orders_set_aside_total";
/// `orderflow_order_failures_total{kind,set_aside}`: failed order turns in background work.
pub const ORDER_FAILURES: &str = "orderflow_order_failures_total";
/// `orderflow_worker_errors_total{worker,operation,kind}`: errors workers swallowed.
pub const WORKER_ERRORS: &str = "orderflow_worker_errors_total";

use crate::error::{Error, ErrorKind};
use crate::journey::Outcome;
use crate::provider::{ProviderError, RequestKind};

/// Gives the installed recorder each metric's unit and description (a Prometheus
/// exporter prints them as `# HELP` lines). [`EngineBuilder::build`](crate::EngineBuilder::build)
/// calls it; a host that installs its recorder later may call it again. Without the
/// `metrics` feature it does nothing.
pub fn describe() {
    #[cfg(feature = "metrics")]
    describe_all();
}

#[cfg(feature = "metrics")]
fn describe_all() {
    use metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(ORDERS_ACCEPTED, Unit::Count, "New orders taken on");
    describe_counter!(
        EVENTS_ACCEPTED,
        Unit::Count,
        "Events taken on an order's timeline, duplicates labelled"
    );
    describe_counter!(
        EVENTS_ENQUEUED,
        Unit::Count,
        "Events queued in a shared store"
    );
    describe_counter!(
        STEPS,
        Unit::Count,
        "Journey rows written, by flow, step and outcome"
    );
    describe_histogram!(
        PROVIDER_CALL_SECONDS,
        Unit::Seconds,
        "Wall time of each provider call attempt"
    );
    describe_counter!(PROVIDER_ERRORS, Unit::Count, "Failed provider calls");
    describe_counter!(
        PROVIDER_RETRIES,
        Unit::Count,
        "Failed provider calls whose step runs again"
    );
    describe_counter!(TIMERS_DUE, Unit::Count, "Orders whose due timers ran");
    describe_histogram!(WORK_CLAIMED, Unit::Count, "Orders each claim took");
    describe_histogram!(WORK_CLAIM_SECONDS, Unit::Seconds, "Wall time of each claim");
    describe_counter!(
        DEAD_LETTERS,
        Unit::Count,
        "Queued events set aside as dead letters"
    );
    describe_counter!(ORDERS_SET_ASIDE, Unit::Count, "Orders set aside");
    describe_counter!(
        ORDER_FAILURES,
        Unit::Count,
        "Order turns that failed in background work"
    );
    describe_counter!(
        WORKER_ERRORS,
        Unit::Count,
        "Errors background workers swallowed and try again after"
    );
}

/// Counts one unit of a counter, compiled away without the feature.
macro_rules! count {
    ($name:expr $(, $k:literal => $v:expr)* $(,)?) => {{
        #[cfg(feature = "metrics")]
        ::metrics::counter!($name $(, $k => $v)*).increment(1);
        // Marks the arguments used without evaluating them.
        #[cfg(not(feature = "metrics"))]
        { let _ = || ($name $(, $v)*); }
    }};
}

/// A new order was taken on (its first event committed).
pub(crate) fn order_accepted() {
    count!(ORDERS_ACCEPTED);
}

/// An event was taken on an order's timeline (or ignored as a duplicate).
pub(crate) fn event_accepted(duplicate: bool) {
    count!(EVENTS_ACCEPTED, "duplicate" => if duplicate { "true" } else { "false" });
}

/// An event was queued in a shared store.
pub(crate) fn event_enqueued() {
    count!(EVENTS_ENQUEUED);
}

/// A journey row was written.
pub(crate) fn step(flow: &str, step: &str, outcome: Outcome) {
    count!(
        STEPS,
        "flow" => flow.to_owned(),
        "step" => step.to_owned(),
        "outcome" => outcome_name(outcome),
    );
}

/// Orders whose due timers ran.
pub(crate) fn timer_due() {
    count!(TIMERS_DUE);
}

/// A queued event became a dead letter.
pub(crate) fn dead_letter() {
    count!(DEAD_LETTERS);
}

/// An order was set aside for `error`.
pub(crate) fn set_aside(error: &Error) {
    count!(ORDERS_SET_ASIDE, "kind" => error_kind_name(error.kind()));
}

/// An order's turn failed in background work.
pub(crate) fn order_failure(error: &Error, set_aside: bool) {
    count!(
        ORDER_FAILURES,
        "kind" => error_kind_name(error.kind()),
        "set_aside" => if set_aside { "true" } else { "false" },
    );
}

/// Which background worker swallowed an error.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Worker {
    /// [`Engine::run_timers`](crate::Engine::run_timers).
    Timers,
    /// [`Engine::run_worker`](crate::Engine::run_worker).
    Shared,
}

/// A background worker swallowed `error` in `operation` and goes on.
pub(crate) fn worker_error(worker: Worker, operation: &'static str, error: &Error) {
    let worker = match worker {
        Worker::Timers => "timers",
        Worker::Shared => "shared",
    };
    count!(
        WORKER_ERRORS,
        "worker" => worker,
        "operation" => operation,
        "kind" => error_kind_name(error.kind()),
    );
}

/// Wall time since a start, measured only with the feature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch {
    #[cfg(feature = "metrics")]
    started: std::time::Instant,
}

impl Stopwatch {
    pub(crate) fn start() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            started: std::time::Instant::now(),
        }
    }

    #[cfg(feature = "metrics")]
    fn seconds(self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// What the engine tells the metrics of each provider call: how long it took and how it
/// ended. `None` without the `metrics` feature, so calls are not timed for nobody.
pub(crate) const CALL_OBSERVER: Option<crate::provider::call::CallObserver> =
    if cfg!(feature = "metrics") {
        Some(provider_call)
    } else {
        None
    };

/// A provider call ended after `elapsed`.
fn provider_call(
    provider: &str,
    kind: RequestKind,
    elapsed: std::time::Duration,
    result: Result<(), &ProviderError>,
) {
    #[cfg(feature = "metrics")]
    {
        let kind = request_kind_name(kind);
        metrics::histogram!(PROVIDER_CALL_SECONDS, "provider" => provider.to_owned(), "kind" => kind)
            .record(elapsed.as_secs_f64());
        if let Err(e) = result {
            count!(
                PROVIDER_ERRORS,
                "provider" => provider.to_owned(),
                "kind" => kind,
                "error" => provider_error_name(e.kind()),
            );
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (provider, kind, elapsed, result);
}

/// A step runs again after its calls of these kinds to `provider` failed retryably.
pub(crate) fn provider_retries(provider: &str, kinds: &[RequestKind]) {
    #[cfg(feature = "metrics")]
    for kind in kinds {
        count!(PROVIDER_RETRIES, "provider" => provider.to_owned(), "kind" => request_kind_name(*kind));
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (provider, kinds);
}

/// A claim on a shared store ended, taking `claimed` orders (`None`: it failed).
pub(crate) fn claim(watch: Stopwatch, claimed: Option<usize>) {
    #[cfg(feature = "metrics")]
    {
        metrics::histogram!(WORK_CLAIM_SECONDS).record(watch.seconds());
        if let Some(n) = claimed {
            #[allow(clippy::cast_precision_loss)]
            metrics::histogram!(WORK_CLAIMED).record(n as f64);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (watch, claimed);
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::Skipped => "skipped",
        Outcome::Cancelled => "cancelled",
    }
}

fn error_kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Document => "document",
        ErrorKind::Validation => "validation",
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::InvalidState => "invalid_state",
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::Store => "store",
        ErrorKind::Configuration => "configuration",
        ErrorKind::Limit => "limit",
    }
}

#[cfg(feature = "metrics")]
fn request_kind_name(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::DetermineFulfillment => "determine_fulfillment",
        RequestKind::SendFulfillmentOrder => "send_fulfillment_order",
        RequestKind::SendToErp => "send_to_erp",
        RequestKind::SendInvoice => "send_invoice",
        RequestKind::Custom => "custom",
    }
}

#[cfg(feature = "metrics")]
fn provider_error_name(kind: crate::provider::ProviderErrorKind) -> &'static str {
    use crate::provider::ProviderErrorKind as K;
    match kind {
        K::Rejected => "rejected",
        K::Unavailable => "unavailable",
        K::Timeout => "timeout",
        K::Panicked => "panicked",
        K::InvalidReply => "invalid_reply",
        K::Other => "other",
    }
}
