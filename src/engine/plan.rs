//! Compiling a flow into a plan: a flat array of nodes with resolved references.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::action::Action;
use crate::event::EventKind;
use crate::execution::Position;
use crate::flow::{
    ActionStep, BranchFailure, ElementKind, Flow, Problem, ProblemKind, RetryPolicy, Sequence,
    Step, StepPath, ValidationError, validate_with,
};
use crate::orchestration::{ActionKind, OrchestrationType};
use crate::policy::{ExecutionPolicy, FilterPolicy, Policy, PolicyKind};
use crate::provider::{Provider, RequestKind};

use super::Config;

/// What an engine has registered, by name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registry {
    pub(crate) types: HashMap<String, Arc<dyn OrchestrationType>>,
    pub(crate) providers: HashMap<String, Arc<dyn Provider>>,
    pub(crate) policies: HashMap<String, Policy>,
    pub(crate) actions: HashMap<String, Arc<dyn Action>>,
    pub(crate) builtins: HashMap<ActionKind, Arc<dyn Action>>,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) nodes: Vec<Node>,
    pub(crate) joins: Vec<Join>,
    pub(crate) entry: Position,
    pub(crate) triggers: Vec<EventKind>,
    /// The fingerprint of the plan's layout (see [`fingerprint`]), kept with every execution.
    pub(crate) tag: u64,
    /// The names of its steps and merges by index, for journeys.
    pub(crate) names: Arc<crate::flow::StepNames>,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
}

#[derive(Debug)]
pub(crate) enum NodeKind {
    Action(Box<ActionNode>),
    Condition {
        yes: Position,
        no: Position,
        join: Option<u32>,
    },
    Splitter {
        branches: Vec<(String, Position)>,
        join: Option<u32>,
    },
}

#[derive(Debug)]
pub(crate) struct ActionNode {
    pub(crate) step: ActionStep,
    pub(crate) action: Arc<dyn Action>,
    pub(crate) filter: Option<Arc<dyn FilterPolicy>>,
    pub(crate) policies: Vec<Arc<dyn ExecutionPolicy>>,
    pub(crate) provider: Option<Arc<dyn Provider>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
    pub(crate) next: Position,
}

#[derive(Debug)]
pub(crate) struct Join {
    pub(crate) name: String,
    pub(crate) branch_names: Vec<String>,
    pub(crate) after: Position,
    pub(crate) tolerate: bool,
}

impl Plan {
    pub(crate) fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    pub(crate) fn join(&self, id: u32) -> &Join {
        &self.joins[id as usize]
    }

    /// Whether a failed outcome at `pos` is routed (a Condition comes next).
    pub(crate) fn routes_failure(&self, pos: Position) -> bool {
        matches!(pos, Position::Node(n) if matches!(self.node(n).kind, NodeKind::Condition { .. }))
    }
}

/// How a policy name a flow uses resolves among the rule policies.
#[derive(Debug)]
pub(crate) enum Resolution {
    /// A published version.
    Found(Policy),
    /// A rule policy that has no published version.
    Unpublished,
    /// No rule policy has the name.
    Unknown,
}

/// Validates `flow` fully (structure and references) and compiles it. Policy names are
/// looked up among the policies registered in code first, then through `rules`.
pub(crate) fn compile(
    flow: &Flow,
    registry: &Registry,
    rules: &mut dyn FnMut(&str) -> Resolution,
    config: &Config,
) -> Result<Plan, ValidationError> {
    let mut problems = match validate_with(flow, &config.limits) {
        Ok(()) => Vec::new(),
        // Compiling walks the tree recursively: never past the nesting bound.
        Err(e) if e.has(|k| matches!(k, ProblemKind::TooDeep(_))) => return Err(e),
        Err(e) => e.problems,
    };
    let kind = registry.types.get(&flow.orchestration_type);
    if kind.is_none() {
        problems.push(Problem {
            path: StepPath::default(),
            kind: ProblemKind::UnknownOrchestrationType(flow.orchestration_type.clone()),
        });
    }
    let mut c = Compiler {
        registry,
        rules,
        config,
        kind: kind.map(|k| &**k),
        nodes: Vec::new(),
        joins: Vec::new(),
        problems,
    };
    let entry = c.sequence(&flow.steps, Position::End, &StepPath::default());
    if !c.problems.is_empty() {
        return Err(ValidationError {
            flow: flow.name.clone(),
            problems: c.problems,
        });
    }
    let nodes: Vec<Node> = c
        .nodes
        .into_iter()
        .map(|n| n.expect("every reserved node is filled"))
        .collect();
    let mut plan = Plan {
        nodes,
        joins: c.joins,
        entry,
        triggers: Vec::new(),
        tag: 0,
        names: Arc::new(crate::flow::StepNames::of(flow)),
    };
    let mut triggers = Vec::new();
    collect_triggers(&plan, entry, &mut triggers);
    plan.triggers = triggers;
    plan.tag = fingerprint(&plan);
    Ok(plan)
}

/// The version of the plan layout: bumped by any change to how the compiler numbers a
/// flow's steps, so every fingerprint changes with it.
const PLAN_LAYOUT: u64 = 1;

/// A fingerprint of a plan's layout: every node's name, kind and targets, every merge, the
/// entry, and [`PLAN_LAYOUT`] (FNV-1a, stable across builds and platforms). An execution
/// keeps the fingerprint of the plan its positions index; an engine whose compiled plan
/// has another refuses to move it instead of sending a token to the wrong step.
pub(crate) fn fingerprint(plan: &Plan) -> u64 {
    struct Fnv(u64);
    impl Fnv {
        fn bytes(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 ^= u64::from(*b);
                self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
            }
        }
        fn num(&mut self, n: u64) {
            self.bytes(&n.to_le_bytes());
        }
        fn text(&mut self, s: &str) {
            self.num(s.len() as u64);
            self.bytes(s.as_bytes());
        }
        fn pos(&mut self, p: Position) {
            match p {
                Position::Node(n) => {
                    self.num(1);
                    self.num(n.into());
                }
                Position::Arrive { join, branch } => {
                    self.num(2);
                    self.num(join.into());
                    self.num(branch.into());
                }
                Position::Merged(j) => {
                    self.num(3);
                    self.num(j.into());
                }
                Position::End => self.num(4),
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.num(PLAN_LAYOUT);
    h.pos(plan.entry);
    for node in &plan.nodes {
        h.text(&node.name);
        match &node.kind {
            NodeKind::Action(a) => {
                h.num(10);
                h.pos(a.next);
            }
            NodeKind::Condition { yes, no, join } => {
                h.num(11);
                h.pos(*yes);
                h.pos(*no);
                h.num(join.map_or(u64::MAX, u64::from));
            }
            NodeKind::Splitter { branches, join } => {
                h.num(12);
                for (name, p) in branches {
                    h.text(name);
                    h.pos(*p);
                }
                h.num(join.map_or(u64::MAX, u64::from));
            }
        }
    }
    for join in &plan.joins {
        h.text(&join.name);
        for b in &join.branch_names {
            h.text(b);
        }
        h.pos(join.after);
        h.num(u64::from(join.tolerate));
    }
    h.0
}

fn collect_triggers(plan: &Plan, pos: Position, out: &mut Vec<EventKind>) {
    let Position::Node(n) = pos else { return };
    match &plan.node(n).kind {
        NodeKind::Action(a) => {
            for k in &a.step.input_events {
                if !out.contains(k) {
                    out.push(k.clone());
                }
            }
        }
        NodeKind::Splitter { branches, .. } => {
            for (_, p) in branches {
                collect_triggers(plan, *p, out);
            }
        }
        NodeKind::Condition { .. } => {}
    }
}

struct Compiler<'r> {
    registry: &'r Registry,
    rules: &'r mut dyn FnMut(&str) -> Resolution,
    config: &'r Config,
    kind: Option<&'r dyn OrchestrationType>,
    nodes: Vec<Option<Node>>,
    joins: Vec<Join>,
    problems: Vec<Problem>,
}

impl Compiler<'_> {
    fn problem(&mut self, path: &StepPath, kind: ProblemKind) {
        self.problems.push(Problem {
            path: path.clone(),
            kind,
        });
    }

    fn sequence(&mut self, steps: &Sequence, exit: Position, at: &StepPath) -> Position {
        if steps.is_empty() {
            return exit;
        }
        let first = self.nodes.len() as u32;
        self.nodes.extend(steps.iter().map(|_| None));
        for (i, step) in steps.iter().enumerate() {
            let id = first + i as u32;
            // A Condition or Splitter ends its sequence (validation reports any step after
            // one), so their paths continue to the sequence's exit.
            let next = if i + 1 < steps.len() {
                Position::Node(id + 1)
            } else {
                exit
            };
            let node = self.step(step, next, &at.child(step.name()));
            self.nodes[id as usize] = Some(node);
        }
        Position::Node(first)
    }

    fn element_allowed(&mut self, element: ElementKind, path: &StepPath) {
        if let Some(k) = self.kind {
            if !k.allows_element(element) {
                self.problem(path, ProblemKind::ElementNotAllowed(element));
            }
        }
    }

    fn new_join(
        &mut self,
        name: &str,
        branch_names: Vec<String>,
        after: Position,
        tolerate: bool,
    ) -> u32 {
        self.joins.push(Join {
            name: name.to_owned(),
            branch_names,
            after,
            tolerate,
        });
        (self.joins.len() - 1) as u32
    }

    fn step(&mut self, step: &Step, next: Position, path: &StepPath) -> Node {
        let kind = match step {
            Step::Action(a) => NodeKind::Action(Box::new(self.action(a, next, path))),
            Step::Condition(c) => {
                self.element_allowed(ElementKind::Condition, path);
                NodeKind::Condition {
                    yes: self.sequence(&c.yes, next, &path.child("yes")),
                    no: self.sequence(&c.no, next, &path.child("no")),
                    join: None,
                }
            }
            Step::ConditionMerge(c) => {
                self.element_allowed(ElementKind::ConditionMerge, path);
                let join = self.new_join(&c.name, vec!["yes".into(), "no".into()], next, false);
                NodeKind::Condition {
                    yes: self.sequence(
                        &c.yes,
                        Position::Arrive { join, branch: 0 },
                        &path.child("yes"),
                    ),
                    no: self.sequence(
                        &c.no,
                        Position::Arrive { join, branch: 1 },
                        &path.child("no"),
                    ),
                    join: Some(join),
                }
            }
            Step::Splitter(s) => {
                self.element_allowed(ElementKind::Splitter, path);
                let branches = s
                    .branches
                    .iter()
                    .map(|(name, seq)| (name.clone(), self.sequence(seq, next, &path.child(name))))
                    .collect();
                NodeKind::Splitter {
                    branches,
                    join: None,
                }
            }
            Step::SplitterMerge(s) => {
                self.element_allowed(ElementKind::SplitterMerge, path);
                let names: Vec<String> = s.branches.keys().cloned().collect();
                let join = self.new_join(
                    &s.name,
                    names,
                    next,
                    s.on_branch_failure == BranchFailure::Tolerate,
                );
                let branches = s
                    .branches
                    .iter()
                    .enumerate()
                    .map(|(b, (name, seq))| {
                        let exit = Position::Arrive {
                            join,
                            branch: b as u32,
                        };
                        (name.clone(), self.sequence(seq, exit, &path.child(name)))
                    })
                    .collect();
                NodeKind::Splitter {
                    branches,
                    join: Some(join),
                }
            }
        };
        Node {
            name: step.name().to_owned(),
            kind,
        }
    }

    /// The policy a step names, when it is registered (or published) and of the kind the
    /// place expects; a problem otherwise.
    fn policy(&mut self, name: &str, expected: PolicyKind, path: &StepPath) -> Option<Policy> {
        let found = match self.registry.policies.get(name) {
            Some(p) => Some(p.clone()),
            None => match (self.rules)(name) {
                Resolution::Found(p) => Some(p),
                Resolution::Unpublished => {
                    self.problem(path, ProblemKind::UnpublishedPolicy(name.to_owned()));
                    return None;
                }
                Resolution::Unknown => None,
            },
        };
        match found {
            None => {
                self.problem(path, ProblemKind::UnknownPolicy(name.to_owned()));
                None
            }
            Some(p) if p.kind() != expected => {
                self.problem(
                    path,
                    ProblemKind::WrongPolicyType {
                        policy: name.to_owned(),
                        expected,
                    },
                );
                None
            }
            Some(p) => Some(p),
        }
    }

    fn action(&mut self, a: &ActionStep, next: Position, path: &StepPath) -> ActionNode {
        if let Some(k) = self.kind {
            if !k.allows_action(a.kind) {
                self.problem(path, ProblemKind::ActionKindNotAllowed(a.kind));
            }
        }
        let filter =
            a.filter
                .as_ref()
                .and_then(|f| match self.policy(f, PolicyKind::Filter, path)? {
                    Policy::Filter(f) => Some(f),
                    Policy::Execution(_) => None,
                });
        let policies = a
            .execution_policies
            .iter()
            .filter_map(|p| match self.policy(p, PolicyKind::Execution, path)? {
                Policy::Execution(p) => Some(p),
                Policy::Filter(_) => None,
            })
            .collect();
        let provider = match &a.provider {
            None => {
                if a.kind.request().is_some() {
                    self.problem(path, ProblemKind::MissingProvider);
                }
                None
            }
            Some(name) => match self.registry.providers.get(name) {
                None => {
                    self.problem(path, ProblemKind::UnknownProvider(name.clone()));
                    None
                }
                Some(p) => {
                    let request = a.kind.request().unwrap_or(RequestKind::Custom);
                    if (a.kind.request().is_some() || a.kind == ActionKind::Custom)
                        && !p.offers().contains(&request)
                    {
                        self.problem(
                            path,
                            ProblemKind::ProviderLacksRequest {
                                provider: name.clone(),
                                request: request.to_string(),
                            },
                        );
                    }
                    Some(p.clone())
                }
            },
        };
        let action = if a.kind == ActionKind::Custom {
            let name = a.custom_action.as_deref().unwrap_or_default();
            match self.registry.actions.get(name) {
                Some(act) => Some(act.clone()),
                None => {
                    if a.custom_action.is_some() {
                        self.problem(path, ProblemKind::UnknownCustomAction(name.to_owned()));
                    }
                    None
                }
            }
        } else {
            self.registry.builtins.get(&a.kind).cloned()
        };
        ActionNode {
            step: a.clone(),
            action: action.unwrap_or_else(|| Arc::new(super::builtin::Unavailable)),
            filter,
            policies,
            provider,
            retry: a.retry.unwrap_or(self.config.retry),
            // Whole milliseconds, as the flow's JSON form keeps it: a flow read back from
            // a store runs as the one built in code.
            timeout: a
                .timeout
                .map(|t| Duration::from_millis(crate::flow::whole_millis(t)))
                .unwrap_or(self.config.timeout),
            next,
        }
    }
}
