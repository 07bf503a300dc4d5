use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use super::{ActionStep, ElementKind, Flow, Sequence, Step};
use crate::limits::Limits;
use crate::orchestration::ActionKind;

/// Where a problem is: the names of the steps and branches from the top of the flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StepPath(pub Vec<String>);

impl StepPath {
    pub(crate) fn child(&self, segment: &str) -> Self {
        let mut v = self.0.clone();
        v.push(segment.to_owned());
        Self(v)
    }
}

impl fmt::Display for StepPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(flow)");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" / ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

/// What is wrong at a place in a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The flow has no steps.
    EmptyFlow,
    /// The flow or a step has an empty name.
    EmptyName,
    /// No entry action lists an input event, so nothing can start the flow.
    NoTrigger,
    /// Two steps share a name.
    DuplicateStepName(String),
    /// A Condition or Condition-Merge has no action (or merge) before it on its path.
    ConditionWithoutAction,
    /// A step follows a Condition or Splitter, which end their sequence.
    StepAfterBranchingElement(ElementKind),
    /// A Splitter or Splitter-Merge has no branches.
    EmptySplitter,
    /// The first action of a Splitter's branch has no filter, so the branch cannot split.
    UnfilteredBranch(String),
    /// Elements nest deeper than the bound, [`Limits::max_nesting`] (its value): the
    /// steps past it are not looked into.
    TooDeep(usize),
    /// A custom step names no custom action, or a built-in step names one.
    CustomActionMismatch,
    /// The retry policy is out of range.
    InvalidRetry(&'static str),
    /// The timeout is under a millisecond (zero in the JSON form): it would end every call
    /// before it starts.
    InvalidTimeout,
    /// The flow's orchestration type is not registered.
    UnknownOrchestrationType(String),
    /// The orchestration type does not allow this action kind.
    ActionKindNotAllowed(ActionKind),
    /// The orchestration type does not allow this element.
    ElementNotAllowed(ElementKind),
    /// The action kind calls a provider, but the step names none.
    MissingProvider,
    /// The named provider is not registered.
    UnknownProvider(String),
    /// The provider does not offer the request this step sends.
    ProviderLacksRequest {
        /// The provider.
        provider: String,
        /// The request kind it lacks.
        request: String,
    },
    /// The named policy is not registered (or not published).
    UnknownPolicy(String),
    /// The named rule policy exists but has never been published.
    UnpublishedPolicy(String),
    /// The policy is a filter where an execution policy is expected, or the reverse.
    WrongPolicyType {
        /// The policy.
        policy: String,
        /// What the place expects.
        expected: crate::policy::PolicyKind,
    },
    /// The named custom action is not registered.
    UnknownCustomAction(String),
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyFlow => f.write_str("the flow has no steps"),
            Self::EmptyName => f.write_str("the name is empty"),
            Self::NoTrigger => {
                f.write_str("no entry action lists an input event, so nothing can start the flow")
            }
            Self::DuplicateStepName(n) => write!(f, "another step is also named '{n}'"),
            Self::ConditionWithoutAction => {
                f.write_str("a condition needs an action before it on its path")
            }
            Self::StepAfterBranchingElement(e) => {
                write!(f, "a step follows a {e}, which ends its sequence")
            }
            Self::EmptySplitter => f.write_str("the splitter has no branches"),
            Self::UnfilteredBranch(b) => write!(
                f,
                "the first action of branch '{b}' has no filter policy, so it cannot split"
            ),
            Self::TooDeep(max) => {
                write!(f, "elements nest deeper than the limit max_nesting = {max}")
            }
            Self::CustomActionMismatch => {
                f.write_str("a custom step must name its custom action, and only a custom step may")
            }
            Self::InvalidRetry(why) => write!(f, "invalid retry policy: {why}"),
            Self::InvalidTimeout => f.write_str("the timeout must be at least 1 ms"),
            Self::UnknownOrchestrationType(t) => {
                write!(f, "orchestration type '{t}' is not registered")
            }
            Self::ActionKindNotAllowed(k) => {
                write!(f, "the orchestration type does not allow '{k}' actions")
            }
            Self::ElementNotAllowed(e) => write!(f, "the orchestration type does not allow {e}"),
            Self::MissingProvider => f.write_str("this action kind calls a provider; name one"),
            Self::UnknownProvider(p) => write!(f, "provider '{p}' is not registered"),
            Self::ProviderLacksRequest { provider, request } => {
                write!(f, "provider '{provider}' does not offer '{request}'")
            }
            Self::UnknownPolicy(p) => write!(f, "policy '{p}' is not registered"),
            Self::UnpublishedPolicy(p) => {
                write!(
                    f,
                    "policy '{p}' is not published: publish it before the flow"
                )
            }
            Self::WrongPolicyType { policy, expected } => {
                write!(f, "policy '{policy}' is not a {expected} policy")
            }
            Self::UnknownCustomAction(a) => write!(f, "custom action '{a}' is not registered"),
        }
    }
}

/// One problem and its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the flow.
    pub path: StepPath,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// A flow that cannot be published, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The flow's name.
    pub flow: String,
    /// The problems, in the order of the steps.
    pub problems: Vec<Problem>,
}

impl ValidationError {
    /// Whether any problem is of this kind.
    pub fn has(&self, pred: impl Fn(&ProblemKind) -> bool) -> bool {
        self.problems.iter().any(|p| pred(&p.kind))
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "flow '{}' is invalid:", self.flow)?;
        for p in &self.problems {
            write!(f, " [at {}: {}]", p.path, p.kind)?;
        }
        Ok(())
    }
}

/// Checks a flow's structure, independent of what an engine has registered.
///
/// Finds every problem of [`ProblemKind`] that the flow alone shows: empty names, duplicate
/// step names, a Condition with no action before it, steps after a Condition or Splitter, empty
/// Splitters, unfiltered branch-opening actions, missing triggers, nesting beyond the
/// default [`Limits::max_nesting`], custom-action mismatches and out-of-range retry and
/// timeout settings. Publishing also checks references (providers, policies, custom
/// actions, the type).
pub fn validate(flow: &Flow) -> Result<(), ValidationError> {
    validate_with(flow, &Limits::default())
}

/// [`validate`] with the nesting bound of `limits` ([`Limits::max_nesting`]), as an engine
/// validates with its own limits.
pub fn validate_with(flow: &Flow, limits: &Limits) -> Result<(), ValidationError> {
    let mut v = Validator {
        problems: Vec::new(),
        names: HashSet::new(),
        triggers: 0,
        max_nesting: limits.max_nesting,
    };
    if flow.name.trim().is_empty() {
        v.push(StepPath::default(), ProblemKind::EmptyName);
    }
    if flow.steps.is_empty() {
        v.push(StepPath::default(), ProblemKind::EmptyFlow);
    } else {
        v.sequence(&flow.steps, &StepPath::default(), false, true, 0);
        if v.triggers == 0 {
            v.push(StepPath::default(), ProblemKind::NoTrigger);
        }
    }
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(ValidationError {
            flow: flow.name.clone(),
            problems: v.problems,
        })
    }
}

struct Validator<'f> {
    problems: Vec<Problem>,
    names: HashSet<&'f str>,
    triggers: usize,
    max_nesting: usize,
}

impl<'f> Validator<'f> {
    fn push(&mut self, path: StepPath, kind: ProblemKind) {
        self.problems.push(Problem { path, kind });
    }

    /// `outcome_before`: an action or merge precedes this point on the path.
    /// `entry`: no action precedes this point (actions here are entry actions).
    fn sequence(
        &mut self,
        steps: &'f Sequence,
        at: &StepPath,
        mut outcome_before: bool,
        mut entry: bool,
        depth: usize,
    ) {
        if depth > self.max_nesting {
            self.push(at.clone(), ProblemKind::TooDeep(self.max_nesting));
            return;
        }
        let mut ended_by: Option<ElementKind> = None;
        for step in steps {
            let path = at.child(step.name());
            if let Some(element) = ended_by {
                self.push(
                    path.clone(),
                    ProblemKind::StepAfterBranchingElement(element),
                );
                ended_by = None;
            }
            if step.name().trim().is_empty() {
                self.push(path.clone(), ProblemKind::EmptyName);
            } else if !self.names.insert(step.name()) {
                self.push(
                    path.clone(),
                    ProblemKind::DuplicateStepName(step.name().to_owned()),
                );
            }
            match step {
                Step::Action(a) => {
                    self.action(a, &path, entry);
                    outcome_before = true;
                    entry = false;
                }
                Step::Condition(c) | Step::ConditionMerge(c) => {
                    if !outcome_before {
                        self.push(path.clone(), ProblemKind::ConditionWithoutAction);
                    }
                    self.sequence(&c.yes, &path.child("yes"), outcome_before, entry, depth + 1);
                    self.sequence(&c.no, &path.child("no"), outcome_before, entry, depth + 1);
                    if let Step::Condition(_) = step {
                        ended_by = Some(ElementKind::Condition);
                    } else {
                        // A merge has an outcome of its own; whether actions ran depends on
                        // the path, so a merge never opens entry actions after it.
                        outcome_before = true;
                        entry = false;
                    }
                }
                Step::Splitter(s) | Step::SplitterMerge(s) => {
                    if s.branches.is_empty() {
                        self.push(path.clone(), ProblemKind::EmptySplitter);
                    }
                    for (branch, seq) in &s.branches {
                        if let Some(Step::Action(first)) = seq.first() {
                            if first.filter.is_none() {
                                self.push(
                                    path.child(branch).child(&first.name),
                                    ProblemKind::UnfilteredBranch(branch.clone()),
                                );
                            }
                        }
                        self.sequence(seq, &path.child(branch), outcome_before, entry, depth + 1);
                    }
                    if let Step::Splitter(_) = step {
                        ended_by = Some(ElementKind::Splitter);
                    } else {
                        outcome_before = true;
                        entry = false;
                    }
                }
            }
        }
    }

    fn action(&mut self, a: &ActionStep, path: &StepPath, entry: bool) {
        if entry && !a.input_events.is_empty() {
            self.triggers += 1;
        }
        if (a.kind == ActionKind::Custom) != a.custom_action.is_some() {
            self.push(path.clone(), ProblemKind::CustomActionMismatch);
        }
        if let Some(r) = &a.retry {
            if r.attempts == 0 {
                self.push(
                    path.clone(),
                    ProblemKind::InvalidRetry("attempts must be at least 1"),
                );
            }
            if !(0.0..=1.0).contains(&r.jitter) {
                self.push(
                    path.clone(),
                    ProblemKind::InvalidRetry("jitter must be between 0 and 1"),
                );
            }
        }
        if a.timeout.is_some_and(|t| t < Duration::from_millis(1)) {
            self.push(path.clone(), ProblemKind::InvalidTimeout);
        }
    }
}
