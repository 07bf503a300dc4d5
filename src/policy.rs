//! Policies: filters that route records and execution policies that check and set data.
//!
//! A **filter** policy decides, per record of its [`Entity`], whether the record takes a step;
//! records it rejects leave that path. An **execution** policy runs, per record of its entity,
//! before a step's work: it may set values, and its check may fail. A failed check of a
//! [`Criticality::Critical`] policy fails the step; an [`Criticality::Information`] failure is
//! recorded in the journey and the step goes on.
//!
//! Policies are synchronous: they are the hot path and never wait on I/O.
//!
//! # Contract
//!
//! The engine calls [`Policy::admits`] only on filters and [`Policy::execute`] only on
//! execution policies, each only with records of the policy's entity, as often as it needs
//! (a dry run and the real run both call them). Both must be deterministic functions of the
//! record and must not panic.
//!
//! ```
//! use orderflow::document::{Entity, Order, RecordMut, RecordRef};
//! use orderflow::policy::{Check, Criticality, Policy, PolicyKind};
//!
//! /// Ships only to the United States.
//! #[derive(Debug)]
//! struct ShipToUs;
//!
//! impl Policy for ShipToUs {
//!     fn name(&self) -> &str { "Ship-to US" }
//!     fn kind(&self) -> PolicyKind { PolicyKind::Execution }
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
//! let mut order = Order::new("SO-1").with_ship_to_country("CA");
//! assert!(!ShipToUs.execute(RecordMut::Order(&mut order)).passed());
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

/// A filter or execution policy. See the [module docs](self) for the contract.
pub trait Policy: Send + Sync + fmt::Debug + 'static {
    /// The name steps refer to.
    fn name(&self) -> &str;
    /// Filter or execution.
    fn kind(&self) -> PolicyKind;
    /// The records it applies to.
    fn entity(&self) -> Entity;
    /// What a failed check does (execution policies).
    fn criticality(&self) -> Criticality {
        Criticality::Critical
    }
    /// For a filter: whether the record takes the step. Admits everything by default.
    fn admits(&self, record: RecordRef<'_>) -> bool {
        let _ = record;
        true
    }
    /// For an execution policy: set values and check the record. Passes by default.
    fn execute(&self, record: RecordMut<'_>) -> Check {
        let _ = record;
        Check::Passed
    }
}

impl<T: Policy + ?Sized> Policy for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn kind(&self) -> PolicyKind {
        (**self).kind()
    }
    fn entity(&self) -> Entity {
        (**self).entity()
    }
    fn criticality(&self) -> Criticality {
        (**self).criticality()
    }
    fn admits(&self, record: RecordRef<'_>) -> bool {
        (**self).admits(record)
    }
    fn execute(&self, record: RecordMut<'_>) -> Check {
        (**self).execute(record)
    }
}

impl<T: Policy + ?Sized> Policy for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn kind(&self) -> PolicyKind {
        (**self).kind()
    }
    fn entity(&self) -> Entity {
        (**self).entity()
    }
    fn criticality(&self) -> Criticality {
        (**self).criticality()
    }
    fn admits(&self, record: RecordRef<'_>) -> bool {
        (**self).admits(record)
    }
    fn execute(&self, record: RecordMut<'_>) -> Check {
        (**self).execute(record)
    }
}

const _: Option<&dyn Policy> = None;

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

impl<F> Policy for FilterFn<F>
where
    F: Fn(RecordRef<'_>) -> bool + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> PolicyKind {
        PolicyKind::Filter
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

impl<F> Policy for ExecutionFn<F>
where
    F: Fn(RecordMut<'_>) -> Check + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> PolicyKind {
        PolicyKind::Execution
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
