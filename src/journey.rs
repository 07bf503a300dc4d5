//! The journey of an order: every step result and the timeline of its events.
//!
//! Each step an execution takes leaves a [`StepRecord`] (flow, version, step, records,
//! outcome, attempts, times, details); each event, submitted or raised, leaves a
//! [`TimelineEntry`] in arrival order. [`Engine::journey`](crate::Engine::journey) returns
//! both as a [`Journey`].

use std::fmt;

use semver::Version;
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::document::{OrderId, RecordId};
use crate::event::{EventId, EventKind};
use crate::execution::{ExecutionId, ExecutionStatus};
use crate::policy::Criticality;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Did its work.
    Succeeded,
    /// Failed after its retries.
    Failed,
    /// Its filter left no records (or no branch of a merge was entered); not a failure.
    Skipped,
    /// Its execution was cancelled ([`Engine::cancel`](crate::Engine::cancel)) while a path
    /// stood at the step (waiting, failed, retrying or about to run): the path ended there.
    Cancelled,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::Skipped => "Skipped",
            Self::Cancelled => "Cancelled",
        })
    }
}

/// A failed check of an execution policy on one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// The policy.
    pub policy: String,
    /// Its criticality.
    pub criticality: Criticality,
    /// The record that failed the check.
    pub record: RecordId,
    /// Why.
    pub reason: String,
}

/// One step an execution took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRecord {
    /// The execution.
    pub execution: ExecutionId,
    /// The flow.
    pub flow: String,
    /// The flow version the execution is pinned to.
    pub version: Version,
    /// The step's name.
    pub step: String,
    /// The records the step took (after its filter).
    pub records: Vec<RecordId>,
    /// How it ended.
    pub outcome: Outcome,
    /// Provider call attempts made (0 when none).
    pub attempts: u32,
    /// Reprocess round: 0 for the first run, 1 after the first reprocess, …
    pub round: u32,
    /// When the step started.
    pub started: Timestamp,
    /// When it ended.
    pub ended: Timestamp,
    /// What happened, for a reader ("branch Seattle taken", "waited for Shipped").
    pub details: Vec<String>,
    /// Failed policy checks.
    pub findings: Vec<Finding>,
}

/// One event on an order's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimelineEntry {
    /// Position on the timeline, from 1.
    pub seq: u64,
    /// The event id.
    pub id: EventId,
    /// What happened.
    pub kind: EventKind,
    /// The record it concerns.
    pub record: Option<RecordId>,
    /// When it arrived.
    pub at: Timestamp,
    /// The step that raised it, or `None` for a submitted event.
    pub raised_by: Option<String>,
}

/// A summary of one execution of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExecutionSummary {
    /// The execution.
    pub id: ExecutionId,
    /// The flow.
    pub flow: String,
    /// The pinned version.
    pub version: Version,
    /// Where it stands.
    pub status: ExecutionStatus,
}

/// Everything that happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Journey {
    /// The order.
    pub order: OrderId,
    /// Its executions, in start order.
    pub executions: Vec<ExecutionSummary>,
    /// Every step taken, in order.
    pub steps: Vec<StepRecord>,
    /// Every event, in arrival order.
    pub timeline: Vec<TimelineEntry>,
}

impl Journey {
    /// An order's journey from what a [`Store`](crate::Store) holds: its state and its
    /// journey rows (what [`Engine::journey`](crate::Engine::journey) returns, for tools
    /// that read a store without an engine).
    pub fn from_state(state: crate::execution::OrderState, steps: Vec<StepRecord>) -> Self {
        Self {
            order: state.order.id.clone(),
            executions: state
                .executions
                .iter()
                .map(|e| ExecutionSummary {
                    id: e.id.clone(),
                    flow: e.flow.clone(),
                    version: e.version.clone(),
                    status: e.status(),
                })
                .collect(),
            steps,
            timeline: state.timeline,
        }
    }

    /// The records of a step by name, in order (a step runs more than once when reprocessed
    /// or taken by several paths).
    pub fn step<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a StepRecord> + 'a {
        self.steps.iter().filter(move |s| s.step == name)
    }

    /// The outcome of the last run of a step, if it ran.
    pub fn outcome(&self, step: &str) -> Option<Outcome> {
        self.step(step).last().map(|s| s.outcome)
    }

    /// Whether an event of this kind is on the timeline.
    pub fn has_event(&self, kind: &EventKind) -> bool {
        self.timeline.iter().any(|e| &e.kind == kind)
    }
}

/// A report for a reader: the executions; each step, led by the time it started (RFC 3339 in
/// UTC, as [`Timestamp`] displays), with its flow, outcome, records and details; then the
/// timeline, each event with the time it arrived:
///
/// ```text
/// order T-1
///   execution T-1#1 of 'Check' v1.0.0: Completed
///   2028-02-29T23:59:59.500Z [Check] Header → Succeeded (order, line 1); took event 'New Order' (#1)
///   timeline:
///       1. 2028-02-29T23:59:59.500Z New Order
///       2. 2028-02-29T23:59:59.500Z Validation of Order Header has Succeeded ← Header
/// ```
impl fmt::Display for Journey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "order {}", self.order)?;
        for e in &self.executions {
            writeln!(
                f,
                "  execution {} of '{}' v{}: {:?}",
                e.id, e.flow, e.version, e.status
            )?;
        }
        for s in &self.steps {
            write!(f, "  {} [{}] {} → {}", s.started, s.flow, s.step, s.outcome)?;
            if !s.records.is_empty() {
                let records: Vec<String> = s.records.iter().map(ToString::to_string).collect();
                write!(f, " ({})", records.join(", "))?;
            }
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
        }
        writeln!(f, "  timeline:")?;
        for e in &self.timeline {
            write!(f, "    {:>3}. {} {}", e.seq, e.at, e.kind)?;
            if let Some(r) = &e.record {
                write!(f, " ({r})")?;
            }
            if let Some(by) = &e.raised_by {
                write!(f, " ← {by}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
