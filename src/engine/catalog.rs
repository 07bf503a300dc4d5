//! The catalog: flow definitions, their compiled versions and rule policies, a cache of
//! what the store holds, with the routes from event kinds to the flows they start.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use semver::Version;

use super::plan::{Plan, Resolution};
use crate::event::EventKind;
use crate::flow::{Flow, FlowStatus};
use crate::policy::Policy;
use crate::rules::{PolicyRecord, RulePolicy};

/// A flow version an event kind starts, with its plan (`None` when it cannot run here).
pub(super) type RouteTo = (String, Version, Option<Arc<Plan>>);

/// Flow definitions and compiled versions; a cache of the store.
#[derive(Debug, Default)]
pub(super) struct Catalog {
    pub(super) flows: IndexMap<String, Flow>,
    pub(super) plans: HashMap<(String, Version), Arc<Plan>>,
    /// Event kind → flows (in creation order) whose entry actions list it, each with its
    /// compiled plan (`None` for a broken version: the event is refused).
    pub(super) routes: HashMap<EventKind, Vec<RouteTo>>,
    /// Rule policies (drafts and status), in creation order.
    pub(super) policies: IndexMap<String, PolicyRecord>,
    /// The last published version of each rule policy, compiled.
    pub(super) latest: HashMap<String, Arc<RulePolicy>>,
    /// Compiled policy versions pinned by flow versions.
    pub(super) policy_versions: HashMap<(String, u32), Arc<RulePolicy>>,
    /// Published flow versions that cannot run here, with the reason: they keep their
    /// routes, so the events that would start them are refused rather than taken.
    pub(super) broken: HashMap<(String, Version), String>,
    /// The store's catalog revision these definitions were read at; `None` until read.
    pub(super) revision: Option<u64>,
}

impl Catalog {
    /// Resolves a policy name to the last published version, recording the pin.
    pub(super) fn resolve_latest(
        &self,
        name: &str,
        pins: &mut IndexMap<String, u32>,
    ) -> Resolution {
        match (self.latest.get(name), self.policies.contains_key(name)) {
            (Some(p), _) => {
                pins.insert(name.to_owned(), p.version().unwrap_or_default());
                Resolution::Found(Policy::from(RulePolicy::clone(p)))
            }
            (None, true) => Resolution::Unpublished,
            (None, false) => Resolution::Unknown,
        }
    }
}

impl Catalog {
    pub(super) fn reroute(&mut self) {
        self.routes.clear();
        for flow in self.flows.values() {
            if flow.status == FlowStatus::Unpublished {
                continue;
            }
            let Some(version) = &flow.last_published else {
                continue;
            };
            let key = (flow.name.clone(), version.clone());
            let plan = self.plans.get(&key);
            let triggers = match plan {
                Some(plan) => plan.triggers.clone(),
                None if self.broken.contains_key(&key) => entry_events(&flow.steps),
                None => continue,
            };
            for kind in triggers {
                self.routes.entry(kind).or_default().push((
                    flow.name.clone(),
                    version.clone(),
                    plan.cloned(),
                ));
            }
        }
    }

    pub(super) fn status(&self, flow: &str) -> Option<FlowStatus> {
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
/// ([`Engine::catalog_problems`](super::Engine::catalog_problems)).
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
