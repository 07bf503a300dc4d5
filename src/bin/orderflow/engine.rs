//! The engines the tool checks and simulates flows with: a memory store, a placeholder for
//! every provider and custom action it should assume, the policies given in files
//! (published) and those declared to live in code (stand-ins that admit and pass).

use async_trait::async_trait;
use orderflow::flow::{Flow, Step, StepPath};
use orderflow::policy::{Check, Criticality, PolicyKind, execution_fn, filter_fn};
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::rules::PolicyDocument;
use orderflow::{Engine, Error};

use crate::Failure;
use crate::declarations::CodePolicy;

/// A provider for the tool's engines: checks pass, and nothing is ever called.
#[derive(Debug)]
struct Placeholder(String);

#[async_trait]
impl Provider for Placeholder {
    fn name(&self) -> &str {
        &self.0
    }
    fn offers(&self) -> &[RequestKind] {
        &[
            RequestKind::DetermineFulfillment,
            RequestKind::SendFulfillmentOrder,
            RequestKind::SendToErp,
            RequestKind::SendInvoice,
            RequestKind::Custom,
        ]
    }
    async fn call(&self, _: Request<'_>, _: &CallContext<'_>) -> Result<Reply, ProviderError> {
        Err(ProviderError::rejected(
            "the command-line tool calls no provider",
        ))
    }
}

/// What a flow's step refers to by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RefKind {
    Policy(PolicyKind),
    Provider,
    CustomAction,
}

/// A name a step refers to, and the step.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub(crate) kind: RefKind,
    pub(crate) name: String,
    pub(crate) path: StepPath,
}

/// Every name a flow's steps refer to, in document order, with the step's path (as
/// validation names places: step names, and branch names or `yes`/`no` under elements).
pub(crate) fn references(flow: &Flow) -> Vec<Reference> {
    let mut found = Vec::new();
    walk(&flow.steps, &StepPath::default(), &mut found);
    found
}

fn walk(steps: &[Step], at: &StepPath, found: &mut Vec<Reference>) {
    for step in steps {
        let mut path = at.clone();
        path.0.push(step.name().to_owned());
        let mut push = |kind, name: &String| {
            found.push(Reference {
                kind,
                name: name.clone(),
                path: path.clone(),
            });
        };
        match step {
            Step::Action(a) => {
                if let Some(f) = &a.filter {
                    push(RefKind::Policy(PolicyKind::Filter), f);
                }
                for p in &a.execution_policies {
                    push(RefKind::Policy(PolicyKind::Execution), p);
                }
                if let Some(p) = &a.provider {
                    push(RefKind::Provider, p);
                }
                if let Some(c) = &a.custom_action {
                    push(RefKind::CustomAction, c);
                }
            }
            Step::Condition(c) | Step::ConditionMerge(c) => {
                for (branch, seq) in [("yes", &c.yes), ("no", &c.no)] {
                    let mut inner = path.clone();
                    inner.0.push(branch.to_owned());
                    walk(seq, &inner, found);
                }
            }
            Step::Splitter(s) | Step::SplitterMerge(s) => {
                for (branch, seq) in &s.branches {
                    let mut inner = path.clone();
                    inner.0.push(branch.clone());
                    walk(seq, &inner, found);
                }
            }
            _ => {}
        }
    }
}

/// What an engine of the tool knows.
#[derive(Debug, Default)]
pub(crate) struct Known<'a> {
    /// Rule policies from files: created and published (invalid ones stay unpublished).
    pub(crate) documents: &'a [PolicyDocument],
    /// Policies that live in code, as stand-ins.
    pub(crate) code: &'a [CodePolicy],
    /// The providers that exist; `None`: every provider the flows name.
    pub(crate) providers: Option<&'a [String]>,
    /// The custom actions that exist; `None`: every one the flows name.
    pub(crate) custom_actions: Option<&'a [String]>,
}

/// An engine that knows `known`, so publish-time checks judge the flows' references.
pub(crate) async fn engine(flows: &[&Flow], known: &Known<'_>) -> Result<Engine, Failure> {
    let mut named_providers = Vec::new();
    let mut named_actions = Vec::new();
    for flow in flows {
        for r in references(flow) {
            match r.kind {
                RefKind::Provider => named_providers.push(r.name),
                RefKind::CustomAction => named_actions.push(r.name),
                RefKind::Policy(_) => {}
            }
        }
    }
    let mut providers: Vec<String> = known.providers.map_or(named_providers, <[_]>::to_vec);
    let mut actions: Vec<String> = known.custom_actions.map_or(named_actions, <[_]>::to_vec);
    providers.sort();
    providers.dedup();
    actions.sort();
    actions.dedup();
    let mut builder = Engine::builder();
    for p in providers {
        builder = builder.provider(Placeholder(p));
    }
    for a in actions {
        builder = builder.action(a, orderflow::action_fn(|_cx| Box::pin(async { Ok(()) })));
    }
    let mut seen = std::collections::HashSet::new();
    for p in known.code {
        if !seen.insert(p.name.clone()) {
            continue;
        }
        builder = match p.kind {
            PolicyKind::Filter => builder.policy(filter_fn(p.name.clone(), p.entity, |_| true)),
            _ => builder.policy(execution_fn(
                p.name.clone(),
                p.entity,
                Criticality::Information,
                |_| Check::Passed,
            )),
        };
    }
    let engine = builder.build().await.map_err(|e| usage(&e))?;
    for policy in known.documents {
        if !seen.insert(policy.name.clone()) {
            continue;
        }
        engine
            .create_policy(policy.clone())
            .await
            .map_err(|e| usage(&e))?;
        // Invalid policies are reported by `validate`; here they stay unpublished.
        let _ = engine.publish_policy(&policy.name).await;
    }
    Ok(engine)
}

fn usage(e: &Error) -> Failure {
    Failure::Usage(format!("cannot set up the checking engine: {e}"))
}
