//! What every handle of one engine shares: the store, the clock, settings, the registered
//! parts, the catalog cache, per-order locks and the background workers' signals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use semver::Version;

use super::admission::Admission;
use super::catalog::{Catalog, CatalogProblem};
use super::config::Config;
use super::dry_run::DryRun;
use super::locks::{OrderGuard, OrderLocks};
use super::plan::{self, Plan, Registry, Resolution};
use super::signals::{Commits, Signal};
use crate::clock::{Clock, Timestamp};
use crate::document::OrderId;
use crate::error::{Error, Result};
use crate::flow::FlowStatus;
use crate::policy::Policy;
use crate::provider::retry::Jitter;
use crate::rules::RulePolicy;
use crate::store::{SharedStore, Store};

/// Whether an error is the store being out of reach (worth trying again later), as
/// opposed to something about what it holds.
pub(super) fn is_outage(e: &Error) -> bool {
    matches!(e, Error::Store(s) if s.kind() == crate::store::StoreErrorKind::Unavailable)
}

/// The engine's store, called as the trait object itself: `Arc<dyn Store>` implements
/// [`Store`] by forwarding, and a call through that impl boxes its future twice.
#[derive(Clone, Debug)]
pub(super) struct StoreRef(pub(super) Arc<dyn Store>);

impl std::ops::Deref for StoreRef {
    type Target = dyn Store;

    fn deref(&self) -> &dyn Store {
        &*self.0
    }
}

pub(super) struct Inner {
    pub(super) admission: Admission,
    pub(super) store: StoreRef,
    /// The same store as [`SharedStore`], when instances share it.
    pub(super) shared: Option<Arc<dyn SharedStore>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) config: Config,
    pub(super) registry: Registry,
    pub(super) jitter: Mutex<Jitter>,
    pub(super) catalog: RwLock<Catalog>,
    /// Serializes flow lifecycle operations.
    pub(super) lifecycle: futures::lock::Mutex<()>,
    /// One lock per order being worked on.
    pub(super) locks: OrderLocks,
    /// Wakes the timer worker when a turn sets a timer.
    pub(super) timers: Signal,
    /// Set on the throwaway engine of a dry run: calls are recorded, not made.
    pub(super) dry: Option<DryRun>,
    /// A flow left the Paused status (here or, as a catalog reload saw, on another
    /// instance) and what queued for it has not been run for certain yet: the background
    /// workers run recovery until it has, so dropping `resume` (or `stop`) halfway strands
    /// nothing.
    pub(super) recovery: std::sync::atomic::AtomicBool,
    /// What the last catalog read could not read or run.
    pub(super) problems: Mutex<Vec<CatalogProblem>>,
    /// Orders whose turns failed in a row on store errors that are not transient, and how
    /// often: set aside past [`MAX_FAILURES`].
    pub(super) failures: Mutex<HashMap<OrderId, u32>>,
    /// Wakes [`Engine::settled`] when a turn commits.
    pub(super) commits: Commits,
}

/// Turns in a row an order may fail on a store error that is neither an outage nor a
/// conflict (a refused write, say) before background work sets it aside.
pub(super) const MAX_FAILURES: u32 = 5;

impl Inner {
    /// The shared state of a new engine over `store` (and `shared`, the same store when
    /// instances share it) with `catalog` as read so far; `max_in_flight` submits at once.
    /// A dry run's engine records with `dry`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        store: Arc<dyn Store>,
        shared: Option<Arc<dyn SharedStore>>,
        clock: Arc<dyn Clock>,
        config: Config,
        registry: Registry,
        catalog: Catalog,
        max_in_flight: usize,
        dry: Option<DryRun>,
    ) -> Self {
        Self {
            admission: Admission::new(max_in_flight),
            store: StoreRef(store),
            shared,
            clock,
            jitter: Mutex::new(Jitter::new(config.seed)),
            config,
            registry,
            catalog: RwLock::new(catalog),
            lifecycle: futures::lock::Mutex::new(()),
            locks: OrderLocks::default(),
            timers: Signal::default(),
            dry,
            recovery: std::sync::atomic::AtomicBool::new(false),
            problems: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::new()),
            commits: Commits::default(),
        }
    }

    /// Reloads the catalog when the store's revision moved since it was read: another
    /// instance (or this one) created, published, paused, resumed or stopped something.
    /// Every turn calls it before it runs an order.
    pub(super) async fn sync_catalog(&self) -> Result<()> {
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
    pub(super) async fn reload_catalog(&self) -> Result<()> {
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
    pub(super) fn request_recovery(&self) {
        self.recovery
            .store(true, std::sync::atomic::Ordering::Release);
        self.timers.notify();
    }

    /// What background work does with an order whose turn failed: sets it aside (with the
    /// reason, returned) when the failure is the order's own — its stored state does not
    /// decode, its flow cannot run here, a store error that is not an outage keeps
    /// recurring — and leaves it for a later try otherwise.
    pub(super) async fn on_order_failure(&self, order: &OrderId, error: &Error) -> Option<String> {
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
    pub(super) fn on_order_success(&self, order: &OrderId) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if !failures.is_empty() {
            failures.remove(order);
        }
    }

    pub(super) fn read_catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn write_catalog(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The compiled plan of a flow version, compiling it from the store if needed.
    pub(super) async fn plan(&self, flow: &str, version: &Version) -> Result<Arc<Plan>> {
        let key = (flow.to_owned(), version.clone());
        if let Some(p) = self.read_catalog().plans.get(&key) {
            return Ok(p.clone());
        }
        let Some(def) = self.store.flow_version(flow, version).await? else {
            return Err(Error::UnknownFlow(format!("{flow} v{version}")));
        };
        let mut pinned: HashMap<String, Policy> = HashMap::new();
        for (name, v) in &def.policy_versions {
            let policy = self.load_policy(name, *v).await?;
            pinned.insert(name.clone(), Policy::from(RulePolicy::clone(&policy)));
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
    pub(super) async fn load_policy(&self, name: &str, version: u32) -> Result<Arc<RulePolicy>> {
        let key = (name.to_owned(), version);
        if let Some(p) = self.read_catalog().policy_versions.get(&key) {
            return Ok(p.clone());
        }
        let Some(doc) = self.store.policy_version(name, version).await? else {
            return Err(Error::UnknownPolicy(format!("{name} v{version}")));
        };
        let policy = Arc::new(crate::rules::compile::compile(
            &doc,
            Some(version),
            &self.config.limits,
        )?);
        self.write_catalog()
            .policy_versions
            .insert(key, policy.clone());
        Ok(policy)
    }

    /// Tells the timer worker a timer was set.
    pub(super) fn wake_timers(&self, _at: Timestamp) {
        self.timers.notify();
    }

    /// A number in `[0, 1)` from the seeded jitter source.
    pub(super) fn random(&self) -> f64 {
        self.jitter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_f64()
    }

    /// Waits for the order's lock: work for one order is serialized.
    pub(super) async fn lock_order(&self, order: &OrderId) -> OrderGuard<'_> {
        self.locks.lock(order).await
    }
}
