use indexmap::IndexMap;
use semver::Version;

use super::{
    ActionStep, BranchFailure, ConditionStep, Flow, FlowStatus, ORDER_ORCHESTRATION, Sequence,
    SplitterStep, Step, ValidationError, validate,
};

/// Builds a [`Flow`] in code; [`build`](Self::build) checks its structure.
#[derive(Debug, Clone)]
pub struct FlowBuilder {
    flow: Flow,
}

impl FlowBuilder {
    pub(super) fn new(name: impl Into<String>) -> Self {
        Self {
            flow: Flow {
                name: name.into(),
                orchestration_type: ORDER_ORCHESTRATION.to_owned(),
                description: String::new(),
                created_on: None,
                status: FlowStatus::Unpublished,
                version: Version::new(1, 0, 0),
                last_published: None,
                policy_versions: IndexMap::new(),
                steps: Vec::new(),
            },
        }
    }

    /// Sets the orchestration type.
    pub fn orchestration_type(mut self, name: impl Into<String>) -> Self {
        self.flow.orchestration_type = name.into();
        self
    }

    /// Sets the description.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.flow.description = text.into();
        self
    }

    /// Sets the version the next publish freezes.
    pub fn version(mut self, version: Version) -> Self {
        self.flow.version = version;
        self
    }

    /// Appends steps built by `f`.
    pub fn steps(mut self, f: impl FnOnce(SequenceBuilder) -> SequenceBuilder) -> Self {
        let built = f(SequenceBuilder::default());
        self.flow.steps.extend(built.steps);
        self
    }

    /// Checks the flow's structure (see [`validate`]) and returns it.
    pub fn build(self) -> Result<Flow, ValidationError> {
        validate(&self.flow)?;
        Ok(self.flow)
    }
}

/// Builds a [`Sequence`] of steps.
#[derive(Debug, Clone, Default)]
pub struct SequenceBuilder {
    steps: Sequence,
}

impl SequenceBuilder {
    /// Appends an action.
    pub fn action(mut self, step: ActionStep) -> Self {
        self.steps.push(Step::Action(step));
        self
    }

    /// Appends a Condition (paths that do not merge); it must be the last step.
    pub fn condition(
        self,
        name: impl Into<String>,
        yes: impl FnOnce(Self) -> Self,
        no: impl FnOnce(Self) -> Self,
    ) -> Self {
        self.push_condition(name.into(), yes, no, Step::Condition)
    }

    /// Appends a Condition-Merge (paths that merge again).
    pub fn condition_merge(
        self,
        name: impl Into<String>,
        yes: impl FnOnce(Self) -> Self,
        no: impl FnOnce(Self) -> Self,
    ) -> Self {
        self.push_condition(name.into(), yes, no, Step::ConditionMerge)
    }

    fn push_condition(
        mut self,
        name: String,
        yes: impl FnOnce(Self) -> Self,
        no: impl FnOnce(Self) -> Self,
        wrap: fn(ConditionStep) -> Step,
    ) -> Self {
        let step = ConditionStep {
            name,
            yes: yes(Self::default()).steps,
            no: no(Self::default()).steps,
        };
        self.steps.push(wrap(step));
        self
    }

    /// Appends a Splitter (branches that do not merge); it must be the last step.
    pub fn splitter(
        self,
        name: impl Into<String>,
        f: impl FnOnce(SplitterBuilder) -> SplitterBuilder,
    ) -> Self {
        self.push_splitter(name.into(), f, Step::Splitter)
    }

    /// Appends a Splitter-Merge (branches that merge again).
    pub fn splitter_merge(
        self,
        name: impl Into<String>,
        f: impl FnOnce(SplitterBuilder) -> SplitterBuilder,
    ) -> Self {
        self.push_splitter(name.into(), f, Step::SplitterMerge)
    }

    fn push_splitter(
        mut self,
        name: String,
        f: impl FnOnce(SplitterBuilder) -> SplitterBuilder,
        wrap: fn(SplitterStep) -> Step,
    ) -> Self {
        let built = f(SplitterBuilder::default());
        self.steps.push(wrap(SplitterStep {
            name,
            branches: built.branches,
            on_branch_failure: built.on_branch_failure,
        }));
        self
    }

    /// The steps built so far.
    pub fn into_steps(self) -> Sequence {
        self.steps
    }
}

/// Builds the branches of a Splitter or Splitter-Merge.
#[derive(Debug, Clone, Default)]
pub struct SplitterBuilder {
    branches: IndexMap<String, Sequence>,
    on_branch_failure: BranchFailure,
}

impl SplitterBuilder {
    /// Adds a branch; a branch of the same name replaces the earlier one.
    pub fn branch(
        mut self,
        name: impl Into<String>,
        f: impl FnOnce(SequenceBuilder) -> SequenceBuilder,
    ) -> Self {
        self.branches
            .insert(name.into(), f(SequenceBuilder::default()).steps);
        self
    }

    /// Lets a Splitter-Merge succeed with the branches that arrived when others failed.
    pub fn tolerate_failed_branches(mut self) -> Self {
        self.on_branch_failure = BranchFailure::Tolerate;
        self
    }
}
