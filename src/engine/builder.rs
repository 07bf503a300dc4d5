//! Building an engine: the store, the clock, settings and the parts it runs (providers,
//! policies, actions, orchestration types), checked once in [`EngineBuilder::build`].

use std::fmt;
use std::sync::Arc;

use super::Engine;
use super::builtin;
use super::catalog::Catalog;
use super::config::Config;
use super::inner::Inner;
use super::plan::Registry;
use crate::action::Action;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::orchestration::{ActionKind, OrchestrationType, OrderOrchestration};
use crate::policy::Policy;
use crate::provider::Provider;
use crate::store::{MemoryStore, SharedStore, Store};

impl Engine {
    /// Starts building an engine.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }
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

    /// Registers a filter or execution policy under its name: [`filter_fn`] and
    /// [`execution_fn`] convert into a [`Policy`], a host's own type through
    /// [`Policy::filter`] or [`Policy::execution`]. A step that names it where the other
    /// kind is expected is refused at publish.
    ///
    /// [`filter_fn`]: crate::policy::filter_fn
    /// [`execution_fn`]: crate::policy::execution_fn
    pub fn policy(mut self, policy: impl Into<Policy>) -> Self {
        let policy = policy.into();
        let name = policy.name().to_owned();
        if self
            .registry
            .policies
            .insert(name.clone(), policy)
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
    /// ([`RetryPolicy::check`](crate::provider::RetryPolicy::check)), when no clock is given without the `tokio` feature, or when
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
        let max_in_flight = self.config.max_in_flight;
        let inner = Inner::new(
            store,
            self.shared,
            clock,
            self.config,
            self.registry,
            Catalog::default(),
            max_in_flight,
            None,
        );
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
