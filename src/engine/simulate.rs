//! Dry runs: what a flow would do with an order, without calling a provider or touching the
//! engine's store.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::Engine;
use super::catalog::Catalog;
use super::dry_run::{Change, DryRun, FilterDecision};
use super::inner::Inner;
use super::plan;
use crate::document::{Order, RecordId};
use crate::error::{Error, Result};
use crate::event::{Event, EventKind};
use crate::execution;
use crate::flow::{Flow, FlowStatus};
use crate::journey::{Journey, Outcome};
use crate::provider::dry_run::SimulatedCall;
use crate::store::MemoryStore;

/// What [`Engine::simulate`](super::Engine::simulate) found: the path the order would take
/// and everything the run would decide on the way.
///
/// The run is real in everything but its effects: filters and execution policies are
/// evaluated, pure steps (validation, rule-based assignment) change a copy of the order,
/// and a step that would call a provider records the call instead and takes a simulated
/// answer — done, and for fulfillment determination a plan sourcing each line fully from
/// the fulfillment source it already has (a line without one stays unsourced).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Simulation {
    /// The steps as they would run, with outcomes, details and findings.
    pub journey: Journey,
    /// The order as the run would leave it.
    pub order: Order,
    /// Provider calls the run would make, in order; none is made.
    pub calls: Vec<SimulatedCall>,
    /// What each filter would admit and turn away.
    pub filters: Vec<FilterDecision>,
    /// What each step would change on the order (execution policies' Set Value included).
    pub changes: Vec<Change>,
    /// Where the order would wait for an event.
    pub waits: Vec<Wait>,
}

/// A step where the order would wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Wait {
    /// The step.
    pub step: String,
    /// The events it would wait for.
    pub events: Vec<EventKind>,
}

impl fmt::Display for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dry run of order {}", self.journey.order)?;
        for s in &self.journey.steps {
            let outcome = match s.outcome {
                Outcome::Succeeded => "would succeed",
                Outcome::Failed => "would fail",
                Outcome::Skipped => "would be skipped",
                Outcome::Cancelled => "would be cancelled",
            };
            write!(f, "  {} {outcome}", s.step)?;
            for d in &s.details {
                write!(f, "; {d}")?;
            }
            for finding in &s.findings {
                write!(
                    f,
                    "; {} on {}: {}",
                    finding.policy, finding.record, finding.reason
                )?;
            }
            writeln!(f)?;
            for d in self.filters.iter().filter(|d| d.step == s.step) {
                writeln!(
                    f,
                    "    filter '{}' admits {}; turns away {}",
                    d.policy,
                    list(&d.admitted),
                    list(&d.rejected)
                )?;
            }
            for c in self.changes.iter().filter(|c| c.step == s.step) {
                writeln!(f, "    sets {}: {} -> {}", c.field, c.before, c.after)?;
            }
            for c in self.calls.iter().filter(|c| c.step == s.step) {
                writeln!(
                    f,
                    "    would call '{}' ({}) for {} (not called)",
                    c.provider, c.request, c.record
                )?;
            }
        }
        for w in &self.waits {
            let events: Vec<&str> = w.events.iter().map(EventKind::as_str).collect();
            writeln!(f, "  {} would wait for {}", w.step, events.join(" or "))?;
        }
        Ok(())
    }
}

fn list(records: &[RecordId]) -> String {
    if records.is_empty() {
        return "nothing".to_owned();
    }
    records
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine {
    /// A dry run: what `flow` would do with `order`, without calling a provider or touching
    /// this engine's store. The flow is checked as [`publish`](Self::publish) would check
    /// it (against this engine's providers, actions and published policies) but need not be
    /// created or published; it starts on the first input event of its entry actions. See
    /// [`Simulation`] for what the report holds and how provider answers are simulated.
    pub async fn simulate(&self, flow: &Flow, order: &Order) -> Result<Simulation> {
        let mut flow = flow.clone();
        flow.status = FlowStatus::Published;
        flow.last_published = Some(flow.version.clone());
        let mut pins = IndexMap::new();
        let plan = {
            let catalog = self.inner.read_catalog();
            let mut resolve = |name: &str| catalog.resolve_latest(name, &mut pins);
            Arc::new(plan::compile(
                &flow,
                &self.inner.registry,
                &mut resolve,
                &self.inner.config,
            )?)
        };
        flow.policy_versions = pins;
        let Some(trigger) = plan.triggers.first().cloned() else {
            return Err(Error::InvalidEvent(format!(
                "flow '{}' has no input event to start a dry run on",
                flow.name
            )));
        };
        let mut catalog = Catalog::default();
        catalog
            .plans
            .insert((flow.name.clone(), flow.version.clone()), plan.clone());
        catalog.flows.insert(flow.name.clone(), flow);
        catalog.reroute();
        // The throwaway store's catalog is this one: nothing to reload from it.
        catalog.revision = Some(0);
        let dry = Self {
            inner: Arc::new(Inner::new(
                Arc::new(MemoryStore::new()),
                None,
                self.inner.clock.clone(),
                self.inner.config.clone(),
                self.inner.registry.clone(),
                catalog,
                1,
                Some(DryRun::default()),
            )),
        };
        let event = Event::new(format!("dry-run:{}", order.id), trigger, order.id.clone())
            .with_order(order.clone());
        dry.submit(event).await?;
        let state = dry
            .inner
            .store
            .load(&order.id)
            .await?
            .ok_or_else(|| Error::UnknownOrder(order.id.clone()))?;
        let journey = dry.journey(&order.id).await?;
        let mut waits = Vec::new();
        for exec in &state.executions {
            for token in &exec.tokens {
                if token.phase != execution::Phase::Parked {
                    continue;
                }
                if let execution::Position::Node(n) = token.at {
                    if let plan::NodeKind::Action(a) = &plan.node(n).kind {
                        waits.push(Wait {
                            step: a.step.name.clone(),
                            events: a.step.input_events.clone(),
                        });
                    }
                }
            }
        }
        let (calls, filters, changes) =
            dry.inner.dry.as_ref().map(DryRun::take).unwrap_or_default();
        Ok(Simulation {
            journey,
            order: std::sync::Arc::unwrap_or_clone(state.order),
            calls,
            filters,
            changes,
            waits,
        })
    }
}
