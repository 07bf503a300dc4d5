//! Policies: filters that route records and execution policies that check and set data.
//!
//! A **filter** ([`FilterPolicy`]) decides, per record of its [`Entity`], whether the record
//! takes a step; records it rejects leave that path. An **execution** policy
//! ([`ExecutionPolicy`]) runs, per record of its entity, before a step's work: it may set
//! values, and its check may fail. A failed check of a [`Criticality::Critical`] policy
//! fails the step; an [`Criticality::Information`] failure is recorded in the journey and the
//! step goes on.
//!
//! They are two traits, so one cannot stand in for the other: a filter has no `execute`, an
//! execution policy no `admits`. An engine registers either kind as a [`Policy`] (the typed
//! pair); a flow step that names a filter among its execution policies, or the reverse, is
//! refused when the flow is published
//! ([`ProblemKind::WrongPolicyType`](crate::flow::ProblemKind::WrongPolicyType)).
//!
//! A filter where an execution policy is expected does not compile:
//!
//! ```compile_fail
//! use orderflow::document::Entity;
//! use orderflow::policy::{ExecutionPolicy, filter_fn};
//!
//! fn run_before_the_step(_: impl ExecutionPolicy) {}
//! run_before_the_step(filter_fn("Web shop", Entity::Order, |_| true));
//! ```
//!
//! Policies are synchronous: they are the hot path and never wait on I/O.
//!
//! # Contract
//!
//! The engine calls [`FilterPolicy::admits`] and [`ExecutionPolicy::execute`] only with
//! records of the policy's entity, as often as it needs (a dry run and the real run both
//! call them). Both must be deterministic functions of the record and must not panic.
//!
//! ```
//! use orderflow::document::{Entity, Order, RecordMut, RecordRef};
//! use orderflow::policy::{Check, Criticality, ExecutionPolicy, FilterPolicy, Policy};
//!
//! /// Ships only to the United States.
//! #[derive(Debug)]
//! struct ShipToUs;
//!
//! impl ExecutionPolicy for ShipToUs {
//!     fn name(&self) -> &str { "Ship-to US" }
//!     fn entity(&self) -> Entity { Entity::Order }
//!     fn criticality(&self) -> Criticality { Criticality::Critical }
//!     fn execute(&self, record: RecordMut<'_>) -> Check {
//!         match record {
//!             RecordMut::Order(o) if o.ship_to.country.as_deref() == Some("US") => Check::Passed,
//!             _ => Check::failed("ship-to country is not US"),
//!         }
//!     }
//! }
//!
//! /// Orders from the web shop.
//! #[derive(Debug)]
//! struct WebShop;
//!
//! impl FilterPolicy for WebShop {
//!     fn name(&self) -> &str { "Web shop" }
//!     fn entity(&self) -> Entity { Entity::Order }
//!     fn admits(&self, record: RecordRef<'_>) -> bool {
//!         matches!(record, RecordRef::Order(o) if o.order_source.as_deref() == Some("Web"))
//!     }
//! }
//!
//! let mut order = Order::new("SO-1").with_ship_to_country("CA");
//! assert!(!ShipToUs.execute(RecordMut::Order(&mut order)).passed());
//! assert!(!WebShop.admits(RecordRef::Order(&order)));
//!
//! // What an engine registers (`EngineBuilder::policy`): either kind, typed.
//! let registered = [Policy::execution(ShipToUs), Policy::filter(WebShop)];
//! assert_eq!(registered[1].kind(), orderflow::PolicyKind::Filter);
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::document::{Entity, RecordMut, RecordRef};

/// Filter or execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Routes records: does this record take this step?
    Filter,
    /// Checks and sets data before a step's work.
    Execution,
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Filter => "filter",
            Self::Execution => "execution",
        })
    }
}

/// What a failed check of an execution policy does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// Recorded in the journey; the step goes on.
    Information,
    /// Fails the step.
    #[default]
    Critical,
}

/// The result of an execution policy on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Every check held.
    Passed,
    /// A check failed, with the reason.
    Failed(Cow<'static, str>),
}

impl Check {
    /// A failed check with a reason.
    pub fn failed(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Failed(reason.into())
    }

    /// Whether every check held.
    pub fn passed(&self) -> bool {
        matches!(self, Self::Passed)
    }
}

/// A filter policy: does a record of its entity take a step? See the [module docs](self)
/// for the contract.
pub trait FilterPolicy: Send + Sync + fmt::Debug + 'static {
    /// The name steps refer to.
    fn name(&self) -> &str;
    /// The records it applies to.
    fn entity(&self) -> Entity;
    /// Whether the record takes the step.
    fn admits(&self, record: RecordRef<'_>) -> bool;
}

/// An execution policy: sets values and checks a record of its entity before a step's work.
/// See the [module docs](self) for the contract.
pub trait ExecutionPolicy: Send + Sync + fmt::Debug + 'static {
    /// The name steps refer to.
    fn name(&self) -> &str;
    /// The records it applies to.
    fn entity(&self) -> Entity;
    /// What a failed check does. Critical by default.
    fn criticality(&self) -> Criticality {
        Criticality::Critical
    }
    /// Sets values and checks the record.
    fn execute(&self, record: RecordMut<'_>) -> Check;
}

macro_rules! forward {
    ($($ptr:ident),*) => {$(
        impl<T: FilterPolicy + ?Sized> FilterPolicy for $ptr<T> {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn entity(&self) -> Entity {
                (**self).entity()
            }
            fn admits(&self, record: RecordRef<'_>) -> bool {
                (**self).admits(record)
            }
        }

        impl<T: ExecutionPolicy + ?Sized> ExecutionPolicy for $ptr<T> {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn entity(&self) -> Entity {
                (**self).entity()
            }
            fn criticality(&self) -> Criticality {
                (**self).criticality()
            }
            fn execute(&self, record: RecordMut<'_>) -> Check {
                (**self).execute(record)
            }
        }
    )*};
}

forward!(Arc, Box);

const _: Option<&dyn FilterPolicy> = None;
const _: Option<&dyn ExecutionPolicy> = None;

/// A policy of either kind, as an engine registers it
/// ([`EngineBuilder::policy`](crate::EngineBuilder::policy)) and a step refers to it by name:
/// the kind is in the type, so a filter can only ever filter and an execution policy only
/// execute.
///
/// [`filter_fn`], [`execution_fn`] and compiled rule policies
/// ([`RulePolicy`](crate::RulePolicy)) convert into it; a policy type of the host's is
/// registered through [`Policy::filter`] or [`Policy::execution`].
#[derive(Debug, Clone)]
pub enum Policy {
    /// A filter policy.
    Filter(Arc<dyn FilterPolicy>),
    /// An execution policy.
    Execution(Arc<dyn ExecutionPolicy>),
}

impl Policy {
    /// A filter policy.
    pub fn filter(policy: impl FilterPolicy) -> Self {
        Self::Filter(Arc::new(policy))
    }

    /// An execution policy.
    pub fn execution(policy: impl ExecutionPolicy) -> Self {
        Self::Execution(Arc::new(policy))
    }

    /// The name steps refer to.
    pub fn name(&self) -> &str {
        match self {
            Self::Filter(p) => p.name(),
            Self::Execution(p) => p.name(),
        }
    }

    /// Filter or execution.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Self::Filter(_) => PolicyKind::Filter,
            Self::Execution(_) => PolicyKind::Execution,
        }
    }

    /// The records it applies to.
    pub fn entity(&self) -> Entity {
        match self {
            Self::Filter(p) => p.entity(),
            Self::Execution(p) => p.entity(),
        }
    }
}

impl<F> From<FilterFn<F>> for Policy
where
    F: Fn(RecordRef<'_>) -> bool + Send + Sync + 'static,
{
    fn from(policy: FilterFn<F>) -> Self {
        Self::filter(policy)
    }
}

impl<F> From<ExecutionFn<F>> for Policy
where
    F: Fn(RecordMut<'_>) -> Check + Send + Sync + 'static,
{
    fn from(policy: ExecutionFn<F>) -> Self {
        Self::execution(policy)
    }
}

/// A filter policy from a closure: `filter_fn("Seattle", Entity::FulfillmentOrder, |r| …)`.
pub fn filter_fn<F>(name: impl Into<String>, entity: Entity, f: F) -> FilterFn<F>
where
    F: Fn(RecordRef<'_>) -> bool + Send + Sync + 'static,
{
    FilterFn {
        name: name.into(),
        entity,
        f,
    }
}

/// A filter policy made by [`filter_fn`].
pub struct FilterFn<F> {
    name: String,
    entity: Entity,
    f: F,
}

impl<F> fmt::Debug for FilterFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterFn")
            .field("name", &self.name)
            .field("entity", &self.entity)
            .finish_non_exhaustive()
    }
}

impl<F> FilterPolicy for FilterFn<F>
where
    F: Fn(RecordRef<'_>) -> bool + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn entity(&self) -> Entity {
        self.entity
    }
    fn admits(&self, record: RecordRef<'_>) -> bool {
        (self.f)(record)
    }
}

/// An execution policy from a closure:
/// `execution_fn("Qty >= 5", Entity::OrderLine, Criticality::Critical, |r| …)`.
pub fn execution_fn<F>(
    name: impl Into<String>,
    entity: Entity,
    criticality: Criticality,
    f: F,
) -> ExecutionFn<F>
where
    F: Fn(RecordMut<'_>) -> Check + Send + Sync + 'static,
{
    ExecutionFn {
        name: name.into(),
        entity,
        criticality,
        f,
    }
}

/// An execution policy made by [`execution_fn`].
pub struct ExecutionFn<F> {
    name: String,
    entity: Entity,
    criticality: Criticality,
    f: F,
}

impl<F> fmt::Debug for ExecutionFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionFn")
            .field("name", &self.name)
            .field("entity", &self.entity)
            .field("criticality", &self.criticality)
            .finish_non_exhaustive()
    }
}

impl<F> ExecutionPolicy for ExecutionFn<F>
where
    F: Fn(RecordMut<'_>) -> Check + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn entity(&self) -> Entity {
        self.entity
    }
    fn criticality(&self) -> Criticality {
        self.criticality
    }
    fn execute(&self, record: RecordMut<'_>) -> Check {
        (self.f)(record)
    }
}
