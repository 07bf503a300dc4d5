//! Flows: the designer-built definitions the engine runs.
//!
//! A flow is a **sequence** of [`Step`]s. A step is an [`ActionStep`] or an element:
//!
//! - [`Step::Condition`]: a `yes` and a `no` path chosen on the outcome of the previous action;
//!   the paths do not merge.
//! - [`Step::ConditionMerge`]: the same, but the paths merge again and the flow goes on after it.
//! - [`Step::Splitter`]: named branches, each offered the records; the filter of each branch's
//!   first action decides which records go that way. The branches do not merge.
//! - [`Step::SplitterMerge`]: the same, but the branches merge again.
//!
//! A `Condition` or `Splitter` ends its sequence: nothing may follow it, its paths run to their
//! own ends. Structure makes dangling merges and cycles unrepresentable; [`validate`] catches
//! the rest (see [`ProblemKind`]).
//!
//! Flows are plain serde data. Their JSON form (see `examples/flows/*.json`):
//!
//! ```
//! let json = r#"{
//!   "name": "Validate",
//!   "orchestration_type": "Order orchestration",
//!   "version": "1.0.0",
//!   "steps": [
//!     { "action": { "name": "Validate header", "kind": "validate_order_header",
//!                   "input_events": ["New Order"] } }
//!   ]
//! }"#;
//! let flow = orderflow::flow::Flow::from_json(json).unwrap();
//! assert_eq!(flow.steps.len(), 1);
//! ```
//!
//! or build them in code with [`Flow::builder`]:
//!
//! ```
//! use orderflow::flow::{ActionStep, Flow};
//! use orderflow::{ActionKind, EventKind};
//!
//! let flow = Flow::builder("Validate")
//!     .steps(|s| s.action(
//!         ActionStep::new("Validate header", ActionKind::ValidateOrderHeader)
//!             .input_event(EventKind::NEW_ORDER),
//!     ))
//!     .build()
//!     .unwrap();
//! assert_eq!(flow.version, semver::Version::new(1, 0, 0));
//! ```

pub mod analysis;
mod builder;
mod limits;
mod names;
mod validate;

use std::fmt;
use std::time::Duration;

use indexmap::IndexMap;
use semver::Version;
use serde::{Deserialize, Serialize};

pub(crate) use crate::clock::whole_millis;
use crate::clock::{Timestamp, millis};
use crate::event::EventKind;
use crate::orchestration::ActionKind;

pub use crate::journey::StepNames;
pub use crate::orchestration::{ElementKind, ORDER_ORCHESTRATION};
pub use crate::provider::RetryPolicy;
pub use builder::{FlowBuilder, SequenceBuilder, SplitterBuilder};
pub use validate::{Problem, ProblemKind, StepPath, ValidationError, validate, validate_with};

/// A flow's lifecycle status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStatus {
    /// Editable; starts no executions.
    #[default]
    Unpublished,
    /// Frozen at its version; starts executions on its input events.
    Published,
    /// Published, but nothing of it moves: its executions and triggers queue until resumed.
    Paused,
}

/// The status in words, as error messages show it: `unpublished`, `published`, `paused`.
impl fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unpublished => "unpublished",
            Self::Published => "published",
            Self::Paused => "paused",
        })
    }
}

/// A flow: a named, typed, versioned tree of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Flow {
    /// Unique name.
    pub name: String,
    /// The orchestration type deciding which actions and elements the flow may use.
    #[serde(default = "default_orchestration_type")]
    pub orchestration_type: String,
    /// What the flow is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When the flow was created; set by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<Timestamp>,
    /// Lifecycle status; set by the engine.
    #[serde(default)]
    pub status: FlowStatus,
    /// The version the next publish freezes; it must be greater than the last published one.
    #[serde(default = "default_version")]
    pub version: Version,
    /// The version last published; set by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_published: Option<Version>,
    /// The rule policy versions this flow version was published with, by policy name; set
    /// by the engine at publish (drafts carry none). Executions of this version keep using
    /// them when the policies are published again.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub policy_versions: IndexMap<String, u32>,
    /// The steps.
    pub steps: Sequence,
}

fn default_orchestration_type() -> String {
    ORDER_ORCHESTRATION.to_owned()
}

fn default_version() -> Version {
    Version::new(1, 0, 0)
}

/// A run of steps executed one after the other.
pub type Sequence = Vec<Step>;

/// One step of a flow: an action or an element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Step {
    /// Work done for the records the step is given.
    Action(ActionStep),
    /// Two paths on the previous action's outcome that do not merge.
    Condition(ConditionStep),
    /// Two paths on the previous action's outcome that merge again.
    ConditionMerge(ConditionStep),
    /// Named inclusive branches that do not merge.
    Splitter(SplitterStep),
    /// Named inclusive branches that merge again.
    SplitterMerge(SplitterStep),
}

impl Step {
    /// The step's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Action(a) => &a.name,
            Self::Condition(c) | Self::ConditionMerge(c) => &c.name,
            Self::Splitter(s) | Self::SplitterMerge(s) => &s.name,
        }
    }

    /// The element kind, or `None` for an action.
    pub fn element(&self) -> Option<ElementKind> {
        match self {
            Self::Action(_) => None,
            Self::Condition(_) => Some(ElementKind::Condition),
            Self::ConditionMerge(_) => Some(ElementKind::ConditionMerge),
            Self::Splitter(_) => Some(ElementKind::Splitter),
            Self::SplitterMerge(_) => Some(ElementKind::SplitterMerge),
        }
    }
}

/// An action step: what it does, when it runs, which records it takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ActionStep {
    /// Unique within the flow.
    pub name: String,
    /// What the step does.
    pub kind: ActionKind,
    /// Events the step waits for. On an entry action (one reached from the start of the flow
    /// without passing another action) they start the flow; elsewhere the step waits, after
    /// its predecessor, for one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_events: Vec<EventKind>,
    /// A filter policy deciding, per record of its entity, which records take this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Execution policies evaluated, in order, on the records before the action's work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execution_policies: Vec<String>,
    /// The provider the step calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// For [`ActionKind::Custom`]: the registered custom action to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_action: Option<String>,
    /// Retries of provider calls; the engine's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Timeout of each provider call attempt; the engine's default when absent. Counted in
    /// whole milliseconds, as the flow's JSON form writes it (`timeout_ms`): a fraction of a
    /// millisecond is dropped, and a timeout under one millisecond fails validation.
    #[serde(
        default,
        rename = "timeout_ms",
        with = "millis::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// An extra event raised when the step fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<EventKind>,
}

impl ActionStep {
    /// An action step of a kind, with nothing else set.
    pub fn new(name: impl Into<String>, kind: ActionKind) -> Self {
        Self {
            name: name.into(),
            kind,
            input_events: Vec::new(),
            filter: None,
            execution_policies: Vec::new(),
            provider: None,
            custom_action: None,
            retry: None,
            timeout: None,
            on_failure: None,
        }
    }

    /// A [`ActionKind::Custom`] step running the registered action `action`.
    pub fn custom(name: impl Into<String>, action: impl Into<String>) -> Self {
        let mut step = Self::new(name, ActionKind::Custom);
        step.custom_action = Some(action.into());
        step
    }

    /// Adds an input event.
    pub fn input_event(mut self, kind: EventKind) -> Self {
        self.input_events.push(kind);
        self
    }

    /// Sets the filter policy.
    pub fn filter(mut self, policy: impl Into<String>) -> Self {
        self.filter = Some(policy.into());
        self
    }

    /// Adds an execution policy.
    pub fn execution_policy(mut self, policy: impl Into<String>) -> Self {
        self.execution_policies.push(policy.into());
        self
    }

    /// Sets the provider.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Sets the per-attempt timeout (whole milliseconds count: see [`timeout`](Self::timeout)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the extra event raised on failure.
    pub fn on_failure(mut self, kind: EventKind) -> Self {
        self.on_failure = Some(kind);
        self
    }
}

/// A Condition or Condition-Merge: a path for a succeeded previous action and one for a
/// failed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConditionStep {
    /// Unique within the flow.
    pub name: String,
    /// Taken when the previous action succeeded.
    #[serde(default)]
    pub yes: Sequence,
    /// Taken when the previous action failed.
    #[serde(default)]
    pub no: Sequence,
}

/// What a Splitter-Merge does when an entered branch failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BranchFailure {
    /// The merge fails (the default).
    #[default]
    Fail,
    /// The merge succeeds with the records of the branches that arrived, if any did.
    Tolerate,
}

/// A Splitter or Splitter-Merge: named branches, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SplitterStep {
    /// Unique within the flow.
    pub name: String,
    /// The branches by name.
    pub branches: IndexMap<String, Sequence>,
    /// For a Splitter-Merge: what a failed branch does to the merge.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_branch_failure: BranchFailure,
}

fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

impl Flow {
    /// Starts a builder for a flow of the order orchestration type at version 1.0.0.
    pub fn builder(name: impl Into<String>) -> FlowBuilder {
        FlowBuilder::new(name)
    }

    /// The flow as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a flow always serializes")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RetryPolicy;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_are_milliseconds_in_json() {
        let r = RetryPolicy::new(4, Duration::from_micros(1_500)).with_max_backoff(Duration::MAX);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!(
                r#"{{"attempts":4,"backoff_ms":1,"max_backoff_ms":{},"jitter":0.0}}"#,
                u64::MAX
            )
        );
        let read: RetryPolicy = serde_json::from_str(r#"{"attempts":2}"#).unwrap();
        assert_eq!(
            (read.backoff, read.max_backoff),
            (Duration::ZERO, ms(60_000))
        );
        let step: super::ActionStep = serde_json::from_str(
            r#"{"name":"A","kind":"custom","timeout_ms":18446744073709551615}"#,
        )
        .unwrap();
        assert_eq!(step.timeout, Some(ms(u64::MAX)));
        assert!(
            serde_json::to_string(&step)
                .unwrap()
                .contains(r#""timeout_ms":18446744073709551615"#)
        );
        let none = super::ActionStep::new("A", crate::ActionKind::Custom);
        assert!(!serde_json::to_string(&none).unwrap().contains("timeout"));
    }
}
