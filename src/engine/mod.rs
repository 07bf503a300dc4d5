//! The engine: routes events to published flows, runs executions, records journeys.
//!
//! Build one with [`Engine::builder`], registering the store, clock, providers, policies and
//! custom actions; then create and publish flows and [`submit`](Engine::submit) events.
//! `Engine` is a cheap handle (`Clone`), safe to share across tasks.
//!
//! Work for one order is serialized; different orders run concurrently, as many as callers
//! submit at once. `submit` returns once the event is committed and the order has run to
//! quiescence: every path of every execution is waiting for an event, failed, or ended.
//!
//! All execution state lives in the [`Store`]: the engine keeps only caches (compiled flow
//! versions) and per-order locks, so an engine built on the same store resumes every
//! execution ([`Engine::recover`]).

mod background;
mod builtin;
mod plan;
mod run;
mod simulate;
mod work;

#[cfg(feature = "tokio")]
pub use background::Background;
pub use background::{BackgroundWork, Shutdown};
pub use simulate::{Change, FilterDecision, SimulatedCall, Simulation, Wait};
pub use work::{WorkConfig, WorkReport};

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use indexmap::IndexMap;
use semver::Version;

use crate::action::Action;
use crate::clock::{Clock, Timestamp};
use crate::document::{AsOrderId, Order, OrderId, RecordId};
use crate::error::{Error, Result};
use crate::event::{Event, EventId, EventKind};
use crate::execution::{self, ExecutionId, OrderState, TokenStatus};
use crate::flow::{Flow, FlowStatus, RetryPolicy};
use crate::journey::Journey;
use crate::orchestration::{ActionKind, OrchestrationType, OrderOrchestration};
use crate::policy::Policy;
use crate::provider::{CallContext, Provider, ProviderError, ProviderErrorKind, Reply, Request};
use crate::rules::{PolicyDocument, PolicyRecord, PolicyStatus, RulePolicy};
use crate::store::{MemoryStore, SetAside, SharedStore, Store};
use crate::update::OrderUpdate;

use plan::{Plan, Registry, Resolution};

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
    /// Longest sleep of [`Engine::run_timers`] between looks at the store's timers (timers
    /// set by this engine wake it at once; ones set by another engine on the same store
    /// are seen within this). Default: 1 s.
    pub timer_poll: Duration,
    /// Bounds on flows, policies and events the engine takes. Default:
    /// [`Limits::default`](crate::limits::Limits).
    pub limits: crate::limits::Limits,
    /// How the engine shares work with other instances over a
    /// [`SharedStore`]: lease length, poll interval, batch
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
            limits: crate::limits::Limits::default(),
            work: WorkConfig::default(),
        }
    }
}

impl Config {
    /// Sets the bounds on untrusted input.
    pub fn with_limits(mut self, limits: crate::limits::Limits) -> Self {
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

/// What [`Engine::recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Orders it ran.
    pub resumed: usize,
    /// Orders it set aside, with the reasons: their stored state does not decode, or their
    /// flow cannot run here.
    pub set_aside: Vec<SetAside>,
    /// Orders it could not run this time (a passing store error), with the errors: they
    /// stay live for the next try.
    pub failed: Vec<(OrderId, String)>,
}

/// How one order's background turn went.
enum OrderOutcome {
    Ran(bool),
    SetAside(String),
    Failed(Error),
}

/// What [`Engine::submit`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The order had seen the event's id before; nothing was done.
    pub duplicate: bool,
    /// The event's position on the order's timeline (the first one's, for a duplicate: 0).
    pub seq: u64,
    /// Executions the event (or events raised while processing it) started.
    pub started: Vec<ExecutionId>,
}

/// Builds an [`Engine`].
pub struct EngineBuilder {
    store: Option<Arc<dyn Store>>,
    shared: Option<Arc<dyn SharedStore>>,
    clock: Option<Arc<dyn Clock>>,
    config: Config,
    registry: Registry,
    duplicates: Vec<String>,
}

impl fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl EngineBuilder {
    fn new() -> Self {
        let mut registry = Registry::default();
        registry.types.insert(
            OrderOrchestration.name().to_owned(),
            Arc::new(OrderOrchestration),
        );
        builtin::register(&mut registry.builtins);
        Self {
            store: None,
            shared: None,
            clock: None,
            config: Config::default(),
            registry,
            duplicates: Vec::new(),
        }
    }

    /// A store that engine instances share (`PostgresStore`, feature `postgres`;
    /// [`SharedMemoryStore`](crate::store::SharedMemoryStore)): the engine's store, and
    /// what [`Engine::enqueue`] and the worker ([`Engine::run_worker`]) use.
    pub fn shared_store(mut self, store: impl SharedStore) -> Self {
        let store = Arc::new(store);
        self.store = Some(store.clone());
        self.shared = Some(store);
        self
    }

    /// The store (default: a fresh [`MemoryStore`]). A store given here is used by this
    /// engine alone; give one that instances share with
    /// [`shared_store`](Self::shared_store).
    pub fn store(mut self, store: impl Store) -> Self {
        self.shared = None;
        self.store = Some(Arc::new(store));
        self
    }

    /// The clock (default: [`SystemClock`](crate::clock::SystemClock) with the `tokio`
    /// feature; required without it).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Engine-wide settings.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Registers a provider under its name.
    pub fn provider(mut self, provider: impl Provider) -> Self {
        let name = provider.name().to_owned();
        if self
            .registry
            .providers
            .insert(name.clone(), Arc::new(provider))
            .is_some()
        {
            self.duplicates.push(format!("provider '{name}'"));
        }
        self
    }

    /// Registers a policy under its name.
    pub fn policy(mut self, policy: impl Policy) -> Self {
        let name = policy.name().to_owned();
        if self
            .registry
            .policies
            .insert(name.clone(), Arc::new(policy))
            .is_some()
        {
            self.duplicates.push(format!("policy '{name}'"));
        }
        self
    }

    /// Registers a custom action under `name`, for [`ActionKind::Custom`] steps.
    pub fn action(mut self, name: impl Into<String>, action: impl Action) -> Self {
        let name = name.into();
        if self
            .registry
            .actions
            .insert(name.clone(), Arc::new(action))
            .is_some()
        {
            self.duplicates.push(format!("custom action '{name}'"));
        }
        self
    }

    /// Replaces the implementation of a built-in action kind.
    pub fn builtin(mut self, kind: ActionKind, action: impl Action) -> Self {
        self.registry.builtins.insert(kind, Arc::new(action));
        self
    }

    /// Registers an orchestration type under its name.
    pub fn orchestration_type(mut self, kind: impl OrchestrationType) -> Self {
        let name = kind.name().to_owned();
        if self
            .registry
            .types
            .insert(name.clone(), Arc::new(kind))
            .is_some()
        {
            self.duplicates.push(format!("orchestration type '{name}'"));
        }
        self
    }

    /// Builds the engine, loading the flows the store holds. Then start its background work
    /// with [`Engine::start`] (or spawn [`Engine::background`]): without it, retries wait on
    /// their timers for nobody.
    ///
    /// Fails when two parts share a name, when the default retry policy is out of range
    /// ([`RetryPolicy::check`]), when no clock is given without the `tokio` feature, or when
    /// the store fails.
    pub async fn build(self) -> Result<Engine> {
        crate::metrics::describe();
        if !self.duplicates.is_empty() {
            return Err(Error::Configuration(format!(
                "registered twice: {}",
                self.duplicates.join(", ")
            )));
        }
        if let Err(why) = self.config.retry.check() {
            return Err(Error::Configuration(format!(
                "the default retry policy (Config::retry): {why}"
            )));
        }
        let clock = match self.clock {
            Some(c) => c,
            None => default_clock()?,
        };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        if self.shared.is_some() {
            self.config.work.check(self.config.timeout)?;
        }
        let inner = Inner {
            admission: Admission::new(self.config.max_in_flight),
            store,
            shared: self.shared,
            clock,
            rng: Mutex::new(SplitMix64(self.config.seed)),
            config: self.config,
            registry: self.registry,
            catalog: RwLock::new(Catalog::default()),
            lifecycle: futures::lock::Mutex::new(()),
            locks: Mutex::new(HashMap::new()),
            timers: Signal::default(),
            dry: None,
            recovery: std::sync::atomic::AtomicBool::new(false),
            problems: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            commits: background::Commits::default(),
        };
        // What the store holds and this engine cannot read or run is reported
        // (`Engine::catalog_problems`), never a reason not to start.
        inner.reload_catalog().await?;
        Ok(Engine {
            inner: Arc::new(inner),
        })
    }
}

#[cfg(feature = "tokio")]
fn default_clock() -> Result<Arc<dyn Clock>> {
    Ok(Arc::new(crate::clock::SystemClock))
}

#[cfg(not(feature = "tokio"))]
fn default_clock() -> Result<Arc<dyn Clock>> {
    Err(Error::Configuration(
        "no clock: give one with EngineBuilder::clock (or enable the `tokio` feature)".into(),
    ))
}

/// Whether an error is the store being out of reach (worth trying again later), as
/// opposed to something about what it holds.
fn is_outage(e: &Error) -> bool {
    matches!(e, Error::Store(s) if s.kind() == crate::store::StoreErrorKind::Unavailable)
}

/// Orders [`Engine::recover`] and [`Engine::run_due`] work on at once.
const CONCURRENT_ORDERS: usize = 64;

/// Flow definitions and compiled versions; a cache of the store.
#[derive(Debug, Default)]
struct Catalog {
    flows: IndexMap<String, Flow>,
    plans: HashMap<(String, Version), Arc<Plan>>,
    /// Event kind → flows (in creation order) whose entry actions list it.
    routes: HashMap<EventKind, Vec<(String, Version)>>,
    /// Rule policies (drafts and status), in creation order.
    policies: IndexMap<String, PolicyRecord>,
    /// The last published version of each rule policy, compiled.
    latest: HashMap<String, Arc<RulePolicy>>,
    /// Compiled policy versions pinned by flow versions.
    policy_versions: HashMap<(String, u32), Arc<RulePolicy>>,
    /// Published flow versions that cannot run here, with the reason: they keep their
    /// routes, so the events that would start them are refused rather than taken.
    broken: HashMap<(String, Version), String>,
    /// The store's catalog revision these definitions were read at; `None` until read.
    revision: Option<u64>,
}

impl Catalog {
    /// Resolves a policy name to the last published version, recording the pin.
    fn resolve_latest(&self, name: &str, pins: &mut IndexMap<String, u32>) -> Resolution {
        match (self.latest.get(name), self.policies.contains_key(name)) {
            (Some(p), _) => {
                pins.insert(name.to_owned(), p.version().unwrap_or_default());
                Resolution::Found(p.clone())
            }
            (None, true) => Resolution::Unpublished,
            (None, false) => Resolution::Unknown,
        }
    }
}

impl Catalog {
    fn reroute(&mut self) {
        self.routes.clear();
        for flow in self.flows.values() {
            if flow.status == FlowStatus::Unpublished {
                continue;
            }
            let Some(version) = &flow.last_published else {
                continue;
            };
            let key = (flow.name.clone(), version.clone());
            let triggers = match self.plans.get(&key) {
                Some(plan) => plan.triggers.clone(),
                None if self.broken.contains_key(&key) => entry_events(&flow.steps),
                None => continue,
            };
            for kind in triggers {
                self.routes
                    .entry(kind)
                    .or_default()
                    .push((flow.name.clone(), version.clone()));
            }
        }
    }

    fn status(&self, flow: &str) -> Option<FlowStatus> {
        self.flows.get(flow).map(|f| f.status)
    }
}

/// The event kinds that start a flow: its entry actions' input events (through a leading
/// Splitter's branches), read from the definition itself.
fn entry_events(steps: &[crate::flow::Step]) -> Vec<EventKind> {
    fn walk(steps: &[crate::flow::Step], out: &mut Vec<EventKind>) {
        match steps.first() {
            Some(crate::flow::Step::Action(a)) => {
                for kind in &a.input_events {
                    if !out.contains(kind) {
                        out.push(kind.clone());
                    }
                }
            }
            Some(crate::flow::Step::Splitter(s) | crate::flow::Step::SplitterMerge(s)) => {
                for branch in s.branches.values() {
                    walk(branch, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(steps, &mut out);
    out
}

/// Something in the store's catalog this engine cannot read or run
/// ([`Engine::catalog_problems`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CatalogProblem {
    /// The flow or policy.
    pub name: String,
    /// `"flow"` or `"policy"`.
    pub what: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Bounds how many submits run at once: a semaphore whose permits travel through a channel.
/// Waiters queue fairly on the receiver's lock; a waiter dropped before it gets a permit
/// takes none.
struct Admission {
    permits: futures::lock::Mutex<futures::channel::mpsc::UnboundedReceiver<()>>,
    returns: futures::channel::mpsc::UnboundedSender<()>,
}

impl Admission {
    fn new(n: usize) -> Self {
        let (returns, rx) = futures::channel::mpsc::unbounded();
        for _ in 0..n.max(1) {
            returns.unbounded_send(()).expect("the receiver is alive");
        }
        Self {
            permits: futures::lock::Mutex::new(rx),
            returns,
        }
    }

    async fn acquire(&self) -> Permit<'_> {
        use futures::StreamExt;
        let mut permits = self.permits.lock().await;
        // The sender lives in `self`, so the stream never ends while we wait.
        let _ = permits.next().await;
        Permit(self)
    }
}

struct Permit<'a>(&'a Admission);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let _ = self.0.returns.unbounded_send(());
    }
}

/// A small, fast, seedable random source (SplitMix64) for retry jitter.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Inner {
    admission: Admission,
    store: Arc<dyn Store>,
    /// The same store as [`SharedStore`], when instances share it.
    shared: Option<Arc<dyn SharedStore>>,
    clock: Arc<dyn Clock>,
    config: Config,
    registry: Registry,
    rng: Mutex<SplitMix64>,
    catalog: RwLock<Catalog>,
    /// Serializes flow lifecycle operations.
    lifecycle: futures::lock::Mutex<()>,
    /// One lock per order being worked on.
    locks: Mutex<HashMap<OrderId, Arc<futures::lock::Mutex<()>>>>,
    /// Wakes the timer worker when a turn sets a timer.
    timers: Signal,
    /// Set on the throwaway engine of a dry run: calls are recorded, not made.
    dry: Option<simulate::DryRun>,
    /// A flow left the Paused status (here or, as a catalog reload saw, on another
    /// instance) and what queued for it has not been run for certain yet: the background
    /// workers run recovery until it has, so dropping `resume` (or `stop`) halfway strands
    /// nothing.
    recovery: std::sync::atomic::AtomicBool,
    /// What the last catalog read could not read or run.
    problems: Mutex<Vec<CatalogProblem>>,
    /// Orders whose turns failed in a row on store errors that are not transient, and how
    /// often: set aside past [`MAX_FAILURES`].
    failures: Mutex<HashMap<OrderId, u32>>,
    /// Wakes [`Engine::settled`] when a turn commits.
    commits: background::Commits,
}

/// Turns in a row an order may fail on a store error that is neither an outage nor a
/// conflict (a refused write, say) before background work sets it aside.
const MAX_FAILURES: u32 = 5;

/// A wake-up for one waiter: set by any thread, awaited by the timer worker.
#[derive(Debug, Default)]
struct Signal {
    set: std::sync::atomic::AtomicBool,
    waker: futures::task::AtomicWaker,
}

impl Signal {
    fn notify(&self) {
        self.set.store(true, std::sync::atomic::Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once notified (at once if notified since the last wait).
    fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
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

impl Inner {
    /// Reloads the catalog when the store's revision moved since it was read: another
    /// instance (or this one) created, published, paused, resumed or stopped something.
    /// Every turn calls it before it runs an order.
    async fn sync_catalog(&self) -> Result<()> {
        let revision = self.store.catalog_revision().await?;
        if self.read_catalog().revision == Some(revision) {
            return Ok(());
        }
        self.reload_catalog().await
    }

    /// Reads the catalog from the store and installs it: flows and policies that cannot be
    /// read back, and published versions that cannot run here, are reported
    /// ([`Engine::catalog_problems`]) instead of failing the engine; only a store that
    /// cannot be read at all fails it.
    async fn reload_catalog(&self) -> Result<()> {
        let revision = self.store.catalog_revision().await?;
        let (flows, unreadable_flows) = self.store.read_flows().await?;
        let (policies, unreadable_policies) = self.store.read_policies().await?;
        let mut problems: Vec<CatalogProblem> = unreadable_flows
            .into_iter()
            .map(|u| CatalogProblem {
                name: u.name,
                what: "flow",
                reason: u.reason,
            })
            .chain(unreadable_policies.into_iter().map(|u| CatalogProblem {
                name: u.name,
                what: "policy",
                reason: u.reason,
            }))
            .collect();
        let mut latest = HashMap::new();
        for record in &policies {
            if let Some(v) = record.last_published {
                match self.load_policy(record.name(), v).await {
                    Ok(policy) => {
                        latest.insert(record.name().to_owned(), policy);
                    }
                    Err(e) if is_outage(&e) => return Err(e),
                    Err(e) => problems.push(CatalogProblem {
                        name: record.name().to_owned(),
                        what: "policy",
                        reason: e.to_string(),
                    }),
                }
            }
        }
        let mut broken = HashMap::new();
        for flow in &flows {
            if let (Some(version), true) =
                (&flow.last_published, flow.status != FlowStatus::Unpublished)
            {
                // Compile what routing needs now; older versions compile when first used.
                match self.plan(&flow.name, version).await {
                    Ok(_) => {}
                    Err(e) if is_outage(&e) => return Err(e),
                    Err(e) => {
                        problems.push(CatalogProblem {
                            name: flow.name.clone(),
                            what: "flow",
                            reason: e.to_string(),
                        });
                        broken.insert((flow.name.clone(), version.clone()), e.to_string());
                    }
                }
            }
        }
        #[cfg(feature = "tracing")]
        for p in &problems {
            tracing::warn!(name = %p.name, what = p.what, reason = %p.reason, "catalog entry cannot be used");
        }
        let mut catalog = self.write_catalog();
        if catalog.revision.is_some_and(|r| r > revision) {
            // A later read got there first.
            return Ok(());
        }
        let unpaused = catalog.flows.values().any(|old| {
            old.status == FlowStatus::Paused
                && flows
                    .iter()
                    .find(|f| f.name == old.name)
                    .is_none_or(|f| f.status != FlowStatus::Paused)
        });
        catalog.flows = flows.into_iter().map(|f| (f.name.clone(), f)).collect();
        catalog.policies = policies
            .into_iter()
            .map(|p| (p.name().to_owned(), p))
            .collect();
        catalog.latest = latest;
        catalog.broken = broken;
        catalog.revision = Some(revision);
        catalog.reroute();
        drop(catalog);
        *self.problems.lock().unwrap_or_else(PoisonError::into_inner) = problems;
        if unpaused {
            self.request_recovery();
        }
        Ok(())
    }

    /// Asks the background workers to run recovery (a paused flow was resumed or stopped).
    fn request_recovery(&self) {
        self.recovery
            .store(true, std::sync::atomic::Ordering::Release);
        self.timers.notify();
    }

    /// What background work does with an order whose turn failed: sets it aside (with the
    /// reason, returned) when the failure is the order's own — its stored state does not
    /// decode, its flow cannot run here, a store error that is not an outage keeps
    /// recurring — and leaves it for a later try otherwise.
    async fn on_order_failure(&self, order: &OrderId, error: &Error) -> Option<String> {
        let poison = match error {
            Error::Store(e) => match e.kind() {
                crate::store::StoreErrorKind::Corrupt => true,
                crate::store::StoreErrorKind::Refused | crate::store::StoreErrorKind::Other => {
                    let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
                    let n = failures.entry(order.clone()).or_default();
                    *n += 1;
                    if *n >= MAX_FAILURES {
                        failures.remove(order);
                        true
                    } else {
                        false
                    }
                }
                _ => false,
            },
            _ => true,
        };
        #[cfg(feature = "tracing")]
        tracing::warn!(order = %order, error = %error, set_aside = poison, "order failed");
        if !poison {
            crate::metrics::order_failure(error, false);
            return None;
        }
        let reason = error.to_string();
        match self.store.set_aside(order, &reason).await {
            Ok(()) => {
                crate::metrics::order_failure(error, true);
                crate::metrics::set_aside(error);
                Some(reason)
            }
            Err(_e) => {
                #[cfg(feature = "tracing")]
                tracing::error!(order = %order, error = %_e, "order could not be set aside");
                crate::metrics::order_failure(error, false);
                None
            }
        }
    }

    /// Forgets an order's run of failures after a turn that worked.
    fn on_order_success(&self, order: &OrderId) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if !failures.is_empty() {
            failures.remove(order);
        }
    }

    fn read_catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_catalog(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The compiled plan of a flow version, compiling it from the store if needed.
    async fn plan(&self, flow: &str, version: &Version) -> Result<Arc<Plan>> {
        let key = (flow.to_owned(), version.clone());
        if let Some(p) = self.read_catalog().plans.get(&key) {
            return Ok(p.clone());
        }
        let Some(def) = self.store.flow_version(flow, version).await? else {
            return Err(Error::UnknownFlow(format!("{flow} v{version}")));
        };
        let mut pinned: HashMap<String, Arc<dyn Policy>> = HashMap::new();
        for (name, v) in &def.policy_versions {
            let policy = self.load_policy(name, *v).await?;
            pinned.insert(name.clone(), policy);
        }
        let mut resolve = |name: &str| match pinned.get(name) {
            Some(p) => Resolution::Found(p.clone()),
            None => Resolution::Unknown,
        };
        let plan = Arc::new(plan::compile(
            &def,
            &self.registry,
            &mut resolve,
            &self.config,
        )?);
        self.write_catalog().plans.insert(key, plan.clone());
        Ok(plan)
    }

    /// A published policy version, compiled (cached).
    async fn load_policy(&self, name: &str, version: u32) -> Result<Arc<RulePolicy>> {
        let key = (name.to_owned(), version);
        if let Some(p) = self.read_catalog().policy_versions.get(&key) {
            return Ok(p.clone());
        }
        let Some(doc) = self.store.policy_version(name, version).await? else {
            return Err(Error::UnknownPolicy(format!("{name} v{version}")));
        };
        let policy = Arc::new(crate::rules::compile::compile(&doc, Some(version))?);
        self.write_catalog()
            .policy_versions
            .insert(key, policy.clone());
        Ok(policy)
    }

    /// Tells the timer worker a timer was set.
    pub(crate) fn wake_timers(&self, _at: Timestamp) {
        self.timers.notify();
    }

    /// The wait before attempt `attempt` of a retry policy, with seeded jitter.
    fn backoff(&self, retry: &RetryPolicy, attempt: u32) -> u64 {
        let base = crate::flow::whole_millis(retry.wait_before(attempt));
        if retry.jitter > 0.0 && base > 0 {
            let r = self
                .rng
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next_f64();
            let jitter = (base as f64 * retry.jitter.clamp(0.0, 1.0)) * r;
            base - jitter as u64
        } else {
            base
        }
    }

    async fn lock_order(&self, order: &OrderId) -> OrderGuard<'_> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.entry(order.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        OrderGuard {
            inner: self,
            order: order.clone(),
            lock,
            guard: Some(guard),
        }
    }
}

struct OrderGuard<'a> {
    inner: &'a Inner,
    order: OrderId,
    lock: Arc<futures::lock::Mutex<()>>,
    guard: Option<futures::lock::OwnedMutexGuard<()>>,
}

impl Drop for OrderGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map and this guard hold the only references: nobody waits for the lock.
        if Arc::strong_count(&self.lock) == 2 {
            locks.remove(&self.order);
        }
    }
}

/// The orchestration engine. See the [module docs](self).
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Starts building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    /// The clock the engine reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The store the engine writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Every flow definition, in creation order.
    pub fn flows(&self) -> Vec<Flow> {
        self.inner.read_catalog().flows.values().cloned().collect()
    }

    /// A flow definition by name.
    pub fn flow(&self, name: &str) -> Option<Flow> {
        self.inner.read_catalog().flows.get(name).cloned()
    }

    /// Creates an unpublished flow. Its structure is checked at publish, so a draft may be
    /// incomplete; its name must be new and not empty.
    pub async fn create_flow(&self, mut flow: Flow) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        if flow.name.trim().is_empty() {
            return Err(Error::Validation(crate::flow::ValidationError {
                flow: flow.name,
                problems: vec![crate::flow::Problem {
                    path: crate::flow::StepPath::default(),
                    kind: crate::flow::ProblemKind::EmptyName,
                }],
            }));
        }
        crate::limits::check_flow(&flow, &self.inner.config.limits)?;
        if self.inner.read_catalog().flows.contains_key(&flow.name) {
            return Err(Error::FlowExists(flow.name));
        }
        flow.created_on = Some(self.inner.clock.now());
        flow.status = FlowStatus::Unpublished;
        flow.last_published = None;
        flow.policy_versions = IndexMap::new();
        self.inner.store.save_flow(&flow, false).await?;
        self.inner
            .write_catalog()
            .flows
            .insert(flow.name.clone(), flow);
        Ok(())
    }

    /// Replaces an unpublished flow's definition (steps, description, type, version).
    /// A published or paused flow must be stopped first.
    pub async fn update_flow(&self, flow: Flow) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        crate::limits::check_flow(&flow, &self.inner.config.limits)?;
        let current = self.current(&flow.name)?;
        if current.status != FlowStatus::Unpublished {
            return Err(Error::FlowStatus {
                flow: flow.name,
                status: current.status,
                operation: "edit",
            });
        }
        let updated = Flow {
            created_on: current.created_on,
            status: FlowStatus::Unpublished,
            last_published: current.last_published,
            policy_versions: IndexMap::new(),
            ..flow
        };
        self.inner.store.save_flow(&updated, false).await?;
        self.inner
            .write_catalog()
            .flows
            .insert(updated.name.clone(), updated);
        Ok(())
    }

    fn current(&self, name: &str) -> Result<Flow> {
        self.flow(name)
            .ok_or_else(|| Error::UnknownFlow(name.to_owned()))
    }

    /// Validates an unpublished flow and freezes it at its version, which must be greater
    /// than the last published one. New executions start on this version; running ones stay
    /// on theirs.
    pub async fn publish(&self, name: &str) -> Result<Version> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        let mut flow = self.current(name)?;
        if flow.status != FlowStatus::Unpublished {
            return Err(Error::FlowStatus {
                flow: flow.name,
                status: flow.status,
                operation: "publish",
            });
        }
        if let Some(last) = &flow.last_published {
            if flow.version <= *last {
                return Err(Error::VersionNotGreater {
                    flow: flow.name,
                    version: flow.version,
                    last: last.clone(),
                });
            }
        }
        flow.status = FlowStatus::Published;
        flow.last_published = Some(flow.version.clone());
        let mut pins = IndexMap::new();
        let plan = {
            let catalog = self.inner.read_catalog();
            let mut resolve = |name: &str| catalog.resolve_latest(name, &mut pins);
            plan::compile(
                &flow,
                &self.inner.registry,
                &mut resolve,
                &self.inner.config,
            )?
        };
        flow.policy_versions = pins;
        self.inner.store.save_flow(&flow, true).await?;
        let version = flow.version.clone();
        let mut catalog = self.inner.write_catalog();
        catalog
            .plans
            .insert((flow.name.clone(), version.clone()), Arc::new(plan));
        catalog.flows.insert(flow.name.clone(), flow);
        catalog.reroute();
        Ok(version)
    }

    async fn set_status(
        &self,
        name: &str,
        from: &[FlowStatus],
        to: FlowStatus,
        operation: &'static str,
    ) -> Result<FlowStatus> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        let mut flow = self.current(name)?;
        if !from.contains(&flow.status) {
            return Err(Error::FlowStatus {
                flow: flow.name,
                status: flow.status,
                operation,
            });
        }
        let was = flow.status;
        flow.status = to;
        if was == FlowStatus::Paused {
            // Recorded before the change is saved: if this call is dropped past the save,
            // the background workers still run what queued while the flow was paused.
            self.inner.request_recovery();
        }
        self.inner.store.save_flow(&flow, false).await?;
        let mut catalog = self.inner.write_catalog();
        catalog.flows.insert(flow.name.clone(), flow);
        catalog.reroute();
        Ok(was)
    }

    /// Runs what waited on a flow that is no longer paused: on a shared store, every live
    /// order is made ready for whichever instance claims it; otherwise this instance runs
    /// them.
    async fn after_unpause(&self) -> Result<()> {
        match &self.inner.shared {
            Some(shared) => {
                for order in self.inner.store.live_orders().await? {
                    shared.wake(&order).await?;
                }
            }
            None => {
                self.recover().await?;
            }
        }
        Ok(())
    }

    /// Stops a published or paused flow: it starts no new executions; running ones (paused
    /// ones included) finish on their pinned version. The flow becomes editable.
    pub async fn stop(&self, name: &str) -> Result<()> {
        // The status it had is read under the same lock as the change: a pause racing
        // this stop is either refused or seen here.
        let was = self
            .set_status(
                name,
                &[FlowStatus::Published, FlowStatus::Paused],
                FlowStatus::Unpublished,
                "stop",
            )
            .await?;
        if was == FlowStatus::Paused {
            self.after_unpause().await?;
        }
        Ok(())
    }

    /// Pauses a published flow: none of its executions moves, and events that would start
    /// or advance them queue until [`resume`](Self::resume).
    pub async fn pause(&self, name: &str) -> Result<()> {
        self.set_status(name, &[FlowStatus::Published], FlowStatus::Paused, "pause")
            .await
            .map(drop)
    }

    /// Resumes a paused flow and runs what queued while it was paused (on a shared store:
    /// makes those orders ready for the workers of every instance).
    pub async fn resume(&self, name: &str) -> Result<()> {
        self.set_status(name, &[FlowStatus::Paused], FlowStatus::Published, "resume")
            .await?;
        self.after_unpause().await
    }

    /// The rule policies, in creation order.
    pub fn policies(&self) -> Vec<PolicyRecord> {
        self.inner
            .read_catalog()
            .policies
            .values()
            .cloned()
            .collect()
    }

    /// The rule policy with this name.
    pub fn policy(&self, name: &str) -> Option<PolicyRecord> {
        self.inner.read_catalog().policies.get(name).cloned()
    }

    /// A published version of a rule policy, as it was published.
    pub async fn policy_version(&self, name: &str, version: u32) -> Result<Option<PolicyDocument>> {
        Ok(self.inner.store.policy_version(name, version).await?)
    }

    /// Creates an unpublished rule policy. Its rules are checked at publish, so a draft may
    /// be incomplete; its name must be new (among rule policies and policies registered in
    /// code) and not empty.
    pub async fn create_policy(&self, document: PolicyDocument) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        if document.name.trim().is_empty() {
            return Err(Error::Policy(crate::rules::PolicyError {
                policy: document.name,
                problems: vec![crate::rules::RuleProblem {
                    rule: None,
                    field: None,
                    kind: crate::rules::RuleProblemKind::EmptyName,
                }],
            }));
        }
        crate::limits::check_policy(&document, &self.inner.config.limits)?;
        if self.inner.registry.policies.contains_key(&document.name)
            || self
                .inner
                .read_catalog()
                .policies
                .contains_key(&document.name)
        {
            return Err(Error::PolicyExists(document.name));
        }
        let record = PolicyRecord::new(document, Some(self.inner.clock.now()));
        self.inner.store.save_policy(&record, false).await?;
        self.inner
            .write_catalog()
            .policies
            .insert(record.name().to_owned(), record);
        Ok(())
    }

    /// Replaces a rule policy's draft. Published versions never change: flows keep the
    /// versions they were published with, and the draft is used once it is published.
    pub async fn update_policy(&self, document: PolicyDocument) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        crate::limits::check_policy(&document, &self.inner.config.limits)?;
        let Some(mut record) = self.policy(&document.name) else {
            return Err(Error::UnknownPolicy(document.name));
        };
        record.document = document;
        record.status = PolicyStatus::Unpublished;
        self.inner.store.save_policy(&record, false).await?;
        self.inner
            .write_catalog()
            .policies
            .insert(record.name().to_owned(), record);
        Ok(())
    }

    /// Checks and compiles a rule policy's draft and publishes it as a new version (1, 2,
    /// …), which flows published from now on use. Fails with [`Error::Policy`] naming
    /// every problem, or [`Error::NothingToPublish`] when the draft is already published.
    pub async fn publish_policy(&self, name: &str) -> Result<u32> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        let Some(mut record) = self.policy(name) else {
            return Err(Error::UnknownPolicy(name.to_owned()));
        };
        if record.status == PolicyStatus::Published {
            return Err(Error::NothingToPublish(name.to_owned()));
        }
        let version = record.last_published.map_or(1, |v| v + 1);
        let compiled = Arc::new(crate::rules::compile::compile(
            &record.document,
            Some(version),
        )?);
        record.status = PolicyStatus::Published;
        record.last_published = Some(version);
        self.inner.store.save_policy(&record, true).await?;
        let mut catalog = self.inner.write_catalog();
        catalog
            .policy_versions
            .insert((name.to_owned(), version), compiled.clone());
        catalog.latest.insert(name.to_owned(), compiled);
        catalog.policies.insert(name.to_owned(), record);
        Ok(version)
    }

    /// Publish-time analysis beyond validity: warnings a user can read about `flow`
    /// (branches that may overlap or leave records unrouted, Send to Fulfillment without
    /// fulfillment determination, Conditions that cannot take `no`, waits on events nothing
    /// raises, published flows that start on the same event), judged against this engine's
    /// published rule policies and published flows. `external_events` are events the host
    /// submits itself. Warnings never stop a publish; see [`crate::flow::analysis`].
    pub fn analyze(
        &self,
        flow: &Flow,
        external_events: &[EventKind],
    ) -> Vec<crate::flow::analysis::Warning> {
        let catalog = self.inner.read_catalog();
        let policies: IndexMap<String, PolicyDocument> = catalog
            .latest
            .iter()
            .map(|(name, p)| (name.clone(), p.document().clone()))
            .collect();
        let flows: Vec<Flow> = catalog
            .flows
            .values()
            .filter(|f| f.name != flow.name && f.status != FlowStatus::Unpublished)
            .cloned()
            .collect();
        drop(catalog);
        let cx = crate::flow::analysis::Context::new(&policies, &flows, external_events);
        crate::flow::analysis::analyze(flow, &cx)
    }

    /// A dry run: what `flow` would do with `order`, without calling a provider or touching
    /// this engine's store. The flow is checked as [`publish`](Self::publish) would check
    /// it (against this engine's providers, actions and published policies) but need not be
    /// created or published; it starts on the first input event of its entry actions. See
    /// [`Simulation`] for what the report holds and how provider answers are simulated.
    pub async fn simulate(&self, flow: &Flow, order: &Order) -> Result<Simulation> {
        let mut flow = flow.clone();
        flow.status = FlowStatus::Published;
        flow.last_published = Some(flow.version.clone());
        let mut pins = IndexMap::new();
        let plan = {
            let catalog = self.inner.read_catalog();
            let mut resolve = |name: &str| catalog.resolve_latest(name, &mut pins);
            Arc::new(plan::compile(
                &flow,
                &self.inner.registry,
                &mut resolve,
                &self.inner.config,
            )?)
        };
        flow.policy_versions = pins;
        let Some(trigger) = plan.triggers.first().cloned() else {
            return Err(Error::InvalidEvent(format!(
                "flow '{}' has no input event to start a dry run on",
                flow.name
            )));
        };
        let mut catalog = Catalog::default();
        catalog
            .plans
            .insert((flow.name.clone(), flow.version.clone()), plan.clone());
        catalog.flows.insert(flow.name.clone(), flow);
        catalog.reroute();
        // The throwaway store's catalog is this one: nothing to reload from it.
        catalog.revision = Some(0);
        let dry = Self {
            inner: Arc::new(Inner {
                admission: Admission::new(1),
                store: Arc::new(MemoryStore::new()),
                clock: self.inner.clock.clone(),
                config: self.inner.config.clone(),
                registry: self.inner.registry.clone(),
                rng: Mutex::new(SplitMix64(self.inner.config.seed)),
                catalog: RwLock::new(catalog),
                lifecycle: futures::lock::Mutex::new(()),
                locks: Mutex::new(HashMap::new()),
                timers: Signal::default(),
                dry: Some(simulate::DryRun::default()),
                shared: None,
                recovery: std::sync::atomic::AtomicBool::new(false),
                problems: Mutex::new(Vec::new()),
                failures: Mutex::new(HashMap::new()),
                commits: background::Commits::default(),
            }),
        };
        let event = Event::new(format!("dry-run:{}", order.id), trigger, order.id.clone())
            .with_order(order.clone());
        dry.submit(event).await?;
        let state = dry
            .inner
            .store
            .load(&order.id)
            .await?
            .ok_or_else(|| Error::UnknownOrder(order.id.clone()))?;
        let journey = dry.journey(&order.id).await?;
        let mut waits = Vec::new();
        for exec in &state.executions {
            for token in &exec.tokens {
                if token.status != TokenStatus::Waiting {
                    continue;
                }
                if let execution::Position::Node(n) = token.at {
                    if let plan::NodeKind::Action(a) = &plan.node(n).kind {
                        waits.push(Wait {
                            step: a.step.name.clone(),
                            events: a.step.input_events.clone(),
                        });
                    }
                }
            }
        }
        let (calls, filters, changes) = dry
            .inner
            .dry
            .as_ref()
            .map(simulate::DryRun::take)
            .unwrap_or_default();
        Ok(Simulation {
            journey,
            order: Arc::unwrap_or_clone(state.order),
            calls,
            filters,
            changes,
            waits,
        })
    }

    /// Submits an event: records it on the order's timeline, starts the flows it triggers,
    /// releases the steps waiting for it, and runs the order to quiescence.
    ///
    /// An event whose id the order has seen is accepted and ignored
    /// ([`Receipt::duplicate`]). An event for an unknown order must bring the order's
    /// document ([`Event::with_order`]); for a known order a document it brings is ignored:
    /// the stored order, with what flows set on it, stays the truth. Correct a known
    /// order's data with [`update_order`](Self::update_order).
    ///
    /// `submit` runs the order in this instance, holding no lease: instances that share a
    /// store take events with [`enqueue`](Self::enqueue) instead, so that each order runs
    /// only where it is claimed.
    pub async fn submit(&self, event: Event) -> Result<Receipt> {
        check_event(&event)?;
        crate::limits::check_event(&event, &self.inner.config.limits)?;
        let _permit = self.inner.admission.acquire().await;
        let _guard = self.inner.lock_order(&event.order).await;
        let mut event = event;
        // A new order's state takes the document itself, not a copy.
        let document = event.document.take();
        run::Turn::load(&self.inner, event.order.clone(), document)
            .await?
            .submit(event)
            .await
    }

    /// Re-runs an execution's failed paths from their failed steps, in a new round (new
    /// idempotency keys). Fails if the execution has no failed path.
    pub async fn reprocess(&self, execution: &ExecutionId) -> Result<()> {
        let _guard = self.inner.lock_order(&execution.order).await;
        let Some(turn) = run::Turn::load_existing(&self.inner, execution.order.clone()).await?
        else {
            return Err(Error::UnknownExecution(execution.clone()));
        };
        turn.reprocess(execution).await
    }

    /// Corrects an order's data between steps: a whole new document or a patch
    /// ([`OrderUpdate`]), recorded on the order's timeline as an "Order updated" event
    /// ([`EventKind::ORDER_UPDATED`]) with the id `id`. Then the order runs to quiescence,
    /// as after [`submit`](Self::submit): flows that take "Order updated" start or move.
    ///
    /// The update waits for a turn in progress on the order and applies after what an
    /// earlier turn left in flight has finished, so no step sees the document change
    /// under it; every path sees the new document from its next step on — a failed path
    /// when it is [reprocessed](Self::reprocess), which is how a host fixes the data a
    /// step failed on. See [`crate::update`] for the whole contract.
    ///
    /// An `id` the order has seen is accepted and ignored ([`Receipt::duplicate`]), so an
    /// update may be retried. Like `submit`, it runs the order in this instance.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownOrder`] for an order the engine does not hold;
    /// [`Error::InvalidUpdate`] when the document changes the order's id, names a record
    /// twice ([`Order::check_ids`]) or a patch names a line the order lacks;
    /// [`Error::Limit`] past the engine's [`Limits`](crate::limits::Limits) (document size
    /// and strings, timeline length). A refused update changes nothing (work an earlier
    /// turn left in flight has run, as any call on the order runs it).
    ///
    /// ```
    /// # futures::executor::block_on(async {
    /// use orderflow::document::Address;
    /// use orderflow::{Engine, Event, Order, OrderPatch};
    ///
    /// let clock = orderflow::ManualClock::new(orderflow::Timestamp::from_millis(0));
    /// let engine = Engine::builder().clock(clock).build().await?;
    /// engine.submit(Event::new_order(Order::new("SO-1"))).await?;
    /// let us = Address { country: Some("US".into()), ..Address::default() };
    /// let receipt = engine
    ///     .update_order("SO-1", "fix-1", OrderPatch::new().ship_to(us))
    ///     .await?;
    /// assert!(!receipt.duplicate);
    /// let order = engine.order("SO-1").await?.unwrap();
    /// assert_eq!(order.ship_to.country.as_deref(), Some("US"));
    /// let again = engine.update_order("SO-1", "fix-1", OrderPatch::new()).await?;
    /// assert!(again.duplicate);
    /// # Ok::<(), orderflow::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn update_order(
        &self,
        order: impl AsOrderId,
        id: impl Into<EventId>,
        update: impl Into<OrderUpdate>,
    ) -> Result<Receipt> {
        let order = &*order.as_order_id();
        let id = id.into();
        check_update_id(order, &id, &self.inner.config.limits)?;
        let update = update.into();
        let _permit = self.inner.admission.acquire().await;
        let _guard = self.inner.lock_order(order).await;
        let Some(turn) = run::Turn::load_existing(&self.inner, order.clone()).await? else {
            return Err(Error::UnknownOrder(order.clone()));
        };
        turn.update(id, update).await
    }

    /// Cancels an execution: every path it has left ends where it stands — waiting for an
    /// event, failed and waiting for reprocess, waiting on a retry timer (the timer goes,
    /// so [`next_due`](Self::next_due) forgets it), or ready to run — with a
    /// [`Cancelled`](crate::Outcome::Cancelled) entry in the journey, and the execution's
    /// status becomes [`Cancelled`](crate::execution::ExecutionStatus::Cancelled). It is
    /// no longer its flow's live execution: the next event that starts the flow for the
    /// order starts a new one. It is not reprocessable and is not listed by
    /// [`failed_executions`](Self::failed_executions).
    ///
    /// The cancel waits for a turn in progress on the order and is committed as any turn
    /// is: once it returns, it holds across restarts; dropped before it returns, it either
    /// happened or did not, and the order stays resumable either way. A step a turn left
    /// committed as under way (a crash, a dropped future) is cancelled without being run
    /// again: its provider may have taken the call, under its idempotency key. The order's
    /// other executions then run what they have pending.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownExecution`] for an execution the store does not hold;
    /// [`Error::NotCancellable`] for one that completed or was cancelled before.
    pub async fn cancel(&self, execution: &ExecutionId) -> Result<()> {
        let _guard = self.inner.lock_order(&execution.order).await;
        let Some(turn) = run::Turn::load_existing(&self.inner, execution.order.clone()).await?
        else {
            return Err(Error::UnknownExecution(execution.clone()));
        };
        turn.cancel(execution).await
    }

    /// Resumes every order with a live execution from the store: what a restarted engine
    /// does first, and what resume and stop do for queued work.
    ///
    /// One order that cannot be resumed never stops the others: an order whose stored
    /// state does not decode, or whose flow cannot run here, is set aside
    /// ([`set_aside_orders`](Self::set_aside_orders)) with the reason; one that failed on a
    /// passing store error is left for the next try. The report says which was which.
    ///
    /// # Errors
    ///
    /// Only when the store cannot list the live orders.
    pub async fn recover(&self) -> Result<RecoveryReport> {
        let orders = self.inner.store.live_orders().await?;
        let report = Mutex::new(RecoveryReport::default());
        // Orders run concurrently, so a store that groups commits shares its transactions.
        futures::stream::iter(orders)
            .for_each_concurrent(CONCURRENT_ORDERS, |order| {
                let report = &report;
                async move {
                    let outcome = self.run_order(&order, |turn| turn.run_pending()).await;
                    let mut report = report.lock().unwrap_or_else(PoisonError::into_inner);
                    match outcome {
                        OrderOutcome::Ran(true) => report.resumed += 1,
                        OrderOutcome::Ran(false) => {}
                        OrderOutcome::SetAside(reason) => {
                            report.set_aside.push(SetAside::new(order, reason));
                        }
                        OrderOutcome::Failed(e) => report.failed.push((order, e.to_string())),
                    }
                }
            })
            .await;
        Ok(report.into_inner().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs one order under its lock with `f`, handling a failure as background work
    /// does: set aside when it is the order's own, left for later otherwise.
    async fn run_order<'a, F, Fut>(&'a self, order: &OrderId, f: F) -> OrderOutcome
    where
        F: FnOnce(run::Turn<'a>) -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let _guard = self.inner.lock_order(order).await;
        let result = match run::Turn::load_existing(&self.inner, order.clone()).await {
            Ok(Some(turn)) => f(turn).await,
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        match result {
            Ok(ran) => {
                self.inner.on_order_success(order);
                OrderOutcome::Ran(ran)
            }
            Err(e) => match self.inner.on_order_failure(order, &e).await {
                Some(reason) => OrderOutcome::SetAside(reason),
                None => OrderOutcome::Failed(e),
            },
        }
    }

    /// Runs every step whose durable timer (a retry's backoff, or the resumption of a turn
    /// that never finished) is due on the engine's clock, order by order; returns how many
    /// orders it ran. [`run_timers`] calls it in a loop; tests on a
    /// [`ManualClock`](crate::ManualClock) call it after advancing time. An order that
    /// fails is handled as [`recover`](Self::recover) handles it; the others go on.
    ///
    /// [`run_timers`]: Self::run_timers
    ///
    /// # Errors
    ///
    /// Only when the store cannot list the due orders.
    pub async fn run_due(&self) -> Result<usize> {
        const BATCH: usize = 256;
        let now = self.inner.clock.now();
        let mut ran = 0;
        loop {
            let due = self.inner.store.due(now, BATCH).await?;
            let full = due.len() == BATCH;
            let progressed = std::sync::atomic::AtomicUsize::new(0);
            futures::stream::iter(due)
                .for_each_concurrent(CONCURRENT_ORDERS, |order| {
                    let progressed = &progressed;
                    async move {
                        let outcome = self.run_order(&order, |turn| turn.run_due(now)).await;
                        // An order set aside leaves the due list too: progress.
                        if matches!(outcome, OrderOutcome::Ran(true) | OrderOutcome::SetAside(_)) {
                            progressed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
                .await;
            let progressed = progressed.into_inner();
            ran += progressed;
            if !full || progressed == 0 {
                return Ok(ran);
            }
        }
    }

    /// Runs recovery if a flow left the Paused status and its queued work may not have
    /// run yet (the `resume` or `stop` that did it was dropped, or it happened on another
    /// instance). Background workers call it each round.
    ///
    /// The catalog is looked at first: an instance that resumed a flow may have died
    /// between saving it and waking what queued, its own request gone with it, and
    /// nothing else may make this instance read the catalog again (the orders that
    /// queued are out of the work list, and no event need come).
    async fn recover_if_requested(&self) -> Result<()> {
        let synced = self.inner.sync_catalog().await;
        if !self
            .inner
            .recovery
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            return synced;
        }
        if let Err(e) = self.after_unpause().await {
            self.inner
                .recovery
                .store(true, std::sync::atomic::Ordering::Release);
            return Err(e);
        }
        synced
    }

    /// The orders set aside because they could not be decoded or run, with the reasons,
    /// oldest first. Background work ([`recover`](Self::recover), the timer worker, shared
    /// workers) skips them until [`restore`](Self::restore).
    pub async fn set_aside_orders(&self) -> Result<Vec<SetAside>> {
        Ok(self.inner.store.set_aside_orders().await?)
    }

    /// Takes an order back from the set-aside list once its cause is fixed (a provider
    /// registered again, its data repaired) and runs what it has pending: here, or on a
    /// shared store by whichever instance claims it. Whether it was set aside.
    pub async fn restore(&self, order: impl AsOrderId) -> Result<bool> {
        let order = &*order.as_order_id();
        if !self.inner.store.restore(order).await? {
            return Ok(false);
        }
        if self.inner.shared.is_none() {
            let now = self.inner.clock.now();
            if let OrderOutcome::Failed(e) = self
                .run_order(order, |turn| async move {
                    if turn.state().next_wake().is_some_and(|at| at <= now) {
                        turn.run_due(now).await
                    } else {
                        turn.run_pending().await
                    }
                })
                .await
            {
                return Err(e);
            }
        }
        Ok(true)
    }

    /// What this engine found in the store's catalog and cannot use: flows or policies
    /// whose stored rows cannot be read back, and published flow versions that cannot run
    /// here (a provider or action they name is not registered). The engine starts and
    /// runs everything else; events that would start a flow that cannot run are refused,
    /// and orders running one are set aside.
    pub fn catalog_problems(&self) -> Vec<CatalogProblem> {
        self.inner
            .problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// When the next durable timer is due, if any is set.
    pub async fn next_due(&self) -> Result<Option<Timestamp>> {
        Ok(self.inner.store.next_due().await?)
    }

    /// The timer worker: runs due steps, then sleeps on the engine's clock until the next
    /// timer (or [`Config::timer_poll`]), for as long as it is polled. Spawn it on the
    /// host's runtime (`tokio::spawn(engine.clone().run_timers())` with the `tokio`
    /// feature's clock). It also runs recovery when a paused flow is resumed or stopped
    /// (here or on another instance) and the call that did it did not get to. It never
    /// returns: an order that cannot run is set aside and the others go on, and a store
    /// that cannot list its timers is traced (with the `tracing` feature) and asked again
    /// after [`Config::timer_poll`].
    pub async fn run_timers(self) -> Result<()> {
        self.timer_loop(None).await;
        Ok(())
    }

    /// The timer worker's rounds until `stop` (never without one). A round under way is
    /// finished before the stop is seen.
    async fn timer_loop(&self, stop: Option<background::Stop>) {
        loop {
            if background::is_stopped(stop.as_ref()) {
                return;
            }
            let wait = match self.timer_round().await {
                Ok(wait) => wait,
                // A store that cannot list its timers now may later: one order's trouble
                // never reaches here (it is set aside), so the worker keeps going.
                Err(e) => {
                    #[cfg(feature = "tracing")]
                    tracing::warn!(error = %e, "timer round failed; trying again");
                    crate::metrics::worker_error(crate::metrics::Worker::Timers, "round", &e);
                    self.inner.config.timer_poll
                }
            };
            let sleep = self.inner.clock.sleep(wait);
            if background::rest(sleep, self.inner.timers.wait(), stop.as_ref()).await {
                return;
            }
        }
    }

    /// One round of the timer worker: run what is due; how long to sleep.
    async fn timer_round(&self) -> Result<Duration> {
        self.recover_if_requested().await?;
        let ran = self.run_due().await?;
        let poll = self.inner.config.timer_poll;
        let now = self.inner.clock.now();
        Ok(match self.next_due().await? {
            // Still due, and nothing ran: an order failing on a passing error. Try again
            // after the poll interval rather than at once.
            Some(at) if at <= now && ran == 0 => poll,
            Some(at) => at.since(now).min(poll),
            None => poll,
        })
    }

    /// The order document as the engine holds it.
    pub async fn order(&self, order: impl AsOrderId) -> Result<Option<Order>> {
        let order = order.as_order_id();
        Ok(self
            .inner
            .store
            .load(&order)
            .await?
            .map(|s| Arc::unwrap_or_clone(s.order)))
    }

    /// Everything the store holds about an order's executions.
    pub async fn order_state(&self, order: impl AsOrderId) -> Result<Option<OrderState>> {
        let order = order.as_order_id();
        Ok(self.inner.store.load(&order).await?)
    }

    /// An order's journey: its executions, every step taken and its timeline.
    ///
    /// Reads committed state only and never waits for the order's lock, so a provider call
    /// in flight does not hold it up: the state and its journey rows are read apart, and
    /// read again if a commit came between them.
    pub async fn journey(&self, order: impl AsOrderId) -> Result<Journey> {
        let order = &*order.as_order_id();
        let mut state = self.inner.store.load(order).await?;
        loop {
            let Some(read) = state else {
                return Err(Error::UnknownOrder(order.clone()));
            };
            let steps = self.inner.store.journey(order).await?;
            let again = self.inner.store.load(order).await?;
            if again.as_ref().is_some_and(|s| s.revision == read.revision) {
                return Ok(Journey::from_state(read, steps));
            }
            state = again;
        }
    }

    /// The executions of an order that wait for reprocess.
    pub async fn failed_executions(&self, order: impl AsOrderId) -> Result<Vec<ExecutionId>> {
        Ok(self
            .inner
            .store
            .load(&order.as_order_id())
            .await?
            .map(|s| {
                s.executions
                    .iter()
                    .filter(|e| e.tokens.iter().any(|t| t.status == TokenStatus::Failed))
                    .map(|e| e.id.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Retention: removes up to `limit` orders that completed before `before` (no live
    /// execution, nothing pending; see [`OrderState::completed_at`]), oldest first, with
    /// their journeys, timelines and dead letters, and returns their ids. Call it
    /// periodically with a cutoff in the past — longer ago than any event for those orders
    /// could still arrive — so that memory and files stay at what the open orders need.
    ///
    /// A purged order is forgotten: an event for it afterwards is treated as for an order
    /// never seen (a new-order event creates it anew, with none of its former event ids to
    /// de-duplicate against). Orders with a live execution are never removed; a turn that
    /// loaded a completed order just before it was purged fails its commit with a
    /// retryable conflict instead of writing over nothing, and the event submitted again
    /// finds the order gone.
    pub async fn purge_completed(&self, before: Timestamp, limit: usize) -> Result<Vec<OrderId>> {
        Ok(self.inner.store.purge(before, limit).await?)
    }
}

fn check_event(event: &Event) -> Result<()> {
    if event.id.0.trim().is_empty() {
        return Err(Error::InvalidEvent("the event id is empty".into()));
    }
    if event.kind.as_str().trim().is_empty() {
        return Err(Error::InvalidEvent(format!(
            "event '{}' has an empty kind",
            event.id
        )));
    }
    if event.order.as_str().trim().is_empty() {
        return Err(Error::InvalidEvent(format!(
            "event '{}' names no order",
            event.id
        )));
    }
    if let Some(doc) = &event.document {
        if doc.id != event.order {
            return Err(Error::InvalidEvent(format!(
                "event '{}' is about order '{}' but brings the document of '{}'",
                event.id, event.order, doc.id
            )));
        }
        doc.check_ids()
            .map_err(|e| Error::InvalidEvent(format!("event '{}': {e}", event.id)))?;
    }
    Ok(())
}

/// The checks an update's id and order id pass before the update waits for the order.
fn check_update_id(order: &OrderId, id: &EventId, limits: &crate::limits::Limits) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidUpdate {
        order: order.clone(),
        reason: reason.to_owned(),
    };
    if order.as_str().trim().is_empty() {
        return Err(invalid("it names no order"));
    }
    if id.as_str().trim().is_empty() {
        return Err(invalid("the update id is empty"));
    }
    for (s, what) in [(id.as_str(), "id"), (order.as_str(), "order")] {
        if s.len() > limits.max_string_bytes {
            return Err(crate::limits::LimitError {
                what: "order update",
                limit: "max_string_bytes",
                max: limits.max_string_bytes,
                found: s.len(),
                place: format!("the update's {what}"),
            }
            .into());
        }
    }
    Ok(())
}

/// Makes provider calls for one step: timeout per attempt, retries with backoff and jitter
/// on the engine's clock, panics caught, the idempotency key derived from committed state.
pub(crate) struct Caller<'a> {
    inner: &'a Inner,
    step: &'a str,
    provider: Option<&'a Arc<dyn Provider>>,
    retry: RetryPolicy,
    timeout: Duration,
    /// The execution and reprocess round: with the step and the record, the idempotency
    /// key, written only when a call is made.
    execution: &'a ExecutionId,
    round: u32,
    /// The step's attempt: 1, then one more for each durable retry.
    attempt: u32,
    attempts: std::sync::atomic::AtomicU32,
    /// When a retryable failure asks for the step to run again.
    retry_at: Mutex<Option<Timestamp>>,
    /// The records whose calls succeeded in this run, kept on the execution while the step
    /// may run again.
    accepted: Mutex<Vec<RecordId>>,
}

impl<'a> Caller<'a> {
    pub(crate) fn provider(&self) -> Option<&Arc<dyn Provider>> {
        self.provider
    }

    /// Provider calls made in this run of the step.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The records whose calls succeeded in this run of the step.
    pub(crate) fn take_accepted(&self) -> Vec<RecordId> {
        std::mem::take(&mut *self.accepted.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// When the step should run again, if a call failed with a retryable error and the
    /// retry policy has attempts left.
    pub(crate) fn retry_at(&self) -> Option<Timestamp> {
        *self.retry_at.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One attempt of a provider call, bounded by the step's timeout, with a panic caught.
    /// A retryable failure with attempts left schedules the step's next run (a durable
    /// timer the engine commits) and returns the error to the action.
    pub(crate) async fn call(
        &self,
        record: &RecordId,
        request: Request<'_>,
    ) -> Result<Reply, ProviderError> {
        let Some(provider) = self.provider else {
            return Err(ProviderError::rejected("the step names no provider"));
        };
        if !provider.offers().contains(&request.kind()) {
            return Err(ProviderError::rejected(format!(
                "provider '{}' does not offer '{}'",
                provider.name(),
                request.kind()
            )));
        }
        let key = self.key(record);
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(dry) = &self.inner.dry {
            return Ok(dry.call(self.step, provider.name(), &request, record));
        }
        let deadline = self.inner.clock.now().after(self.timeout);
        let cx = CallContext {
            idempotency_key: &key,
            attempt: self.attempt,
            deadline,
        };
        let kind = request.kind();
        let watch = crate::metrics::Stopwatch::start();
        let call = std::panic::AssertUnwindSafe(provider.call(request, &cx)).catch_unwind();
        let result = match with_timeout(call, || self.inner.clock.sleep(self.timeout)).await {
            Some(Ok(result)) => result,
            Some(Err(panic)) => Err(ProviderError::new(
                ProviderErrorKind::Panicked,
                format!(
                    "provider '{}' panicked: {}",
                    provider.name(),
                    panic_message(&*panic)
                ),
            )),
            None => Err(ProviderError::new(
                ProviderErrorKind::Timeout,
                format!(
                    "provider '{}' did not answer within {} ms",
                    provider.name(),
                    self.timeout.as_millis()
                ),
            )),
        };
        if result.is_ok() {
            let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
            accepted.push(record.clone());
        }
        let retry = result
            .as_ref()
            .is_err_and(|e| e.is_retryable() && self.attempt < self.retry.attempts.max(1));
        if retry {
            let at = self.inner.clock.now().after(Duration::from_millis(
                self.inner.backoff(&self.retry, self.attempt + 1),
            ));
            let mut retry_at = self.retry_at.lock().unwrap_or_else(PoisonError::into_inner);
            retry_at.get_or_insert(at);
        }
        let outcome = result.as_ref().map(drop);
        crate::metrics::provider_call(provider.name(), kind, watch, outcome, retry);
        result
    }
}

/// Runs `fut` against a timeout from `sleep`; `None` when the timeout ends first. The
/// sleep is made only if `fut` does not finish on its first poll: a provider that answers
/// at once costs no timer.
async fn with_timeout<F: std::future::Future>(
    fut: F,
    sleep: impl FnOnce() -> futures::future::BoxFuture<'static, ()>,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = Some(sleep);
    let mut timer: Option<futures::future::BoxFuture<'static, ()>> = None;
    futures::future::poll_fn(move |cx| {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(out));
        }
        if let Some(make) = sleep.take() {
            timer = Some(make());
        }
        match &mut timer {
            Some(t) => t.as_mut().poll(cx).map(|()| None),
            None => std::task::Poll::Pending,
        }
    })
    .await
}

impl Caller<'_> {
    /// `<execution>/<step>/<round>/<record>`, written in one buffer.
    fn key(&self, record: &RecordId) -> String {
        use std::fmt::Write;
        let mut key = String::with_capacity(64);
        let _ = write!(key, "{}/{}/{}/", self.execution, self.step, self.round);
        let _ = match record {
            RecordId::Order => key.write_str("order"),
            RecordId::Line(l) => write!(key, "line:{l}"),
            RecordId::FulfillmentOrder(f) => write!(key, "fo:{f}"),
            RecordId::FulfillmentOrderLine(f, n) => write!(key, "fo:{f}:{n}"),
        };
        key
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}
