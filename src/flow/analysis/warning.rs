//! What the analysis reports: warnings, each with its place and a sentence a user can act
//! on, and the verdicts of the questions behind them.

use std::fmt;

use crate::document::Entity;
use crate::event::EventKind;
use crate::flow::StepPath;
use crate::orchestration::ActionKind;

/// The answer to a question the analysis asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verdict {
    /// Decided: it can happen.
    Yes,
    /// Decided: it cannot happen.
    No,
    /// The policies involved do not let the analysis decide.
    CannotTell,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::CannotTell => "cannot tell",
        })
    }
}

/// Something a flow may do that its author likely did not mean, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Warning {
    /// The step (or element) concerned.
    pub path: StepPath,
    /// What may happen.
    pub kind: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

/// What may happen. Its `Display` is a sentence a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarningKind {
    /// Two branches of a Splitter or Splitter-Merge may admit the same record, which then
    /// takes both (branches are inclusive).
    BranchesOverlap {
        /// The earlier branch.
        first: String,
        /// The later branch.
        second: String,
        /// [`Verdict::Yes`] or [`Verdict::CannotTell`].
        verdict: Verdict,
    },
    /// Some records may be admitted by no branch of a Splitter or Splitter-Merge; they stop.
    UnroutedRecords {
        /// [`Verdict::Yes`] or [`Verdict::CannotTell`].
        verdict: Verdict,
        /// The entity the branches' filters apply to, when known.
        entity: Option<Entity>,
        /// The field every branch's filter tests, when known.
        field: Option<String>,
        /// The values the branches admit on that field, in branch order.
        values: Vec<String>,
    },
    /// A Send to Fulfillment action can run with no Assign Fulfillment Source, Send to DOM
    /// (or Custom) action before it on its path, so there may be no fulfillment order to send.
    SendWithoutFulfillmentDetermination,
    /// A Condition or Condition-Merge routes on an action that never fails, so its `no` path
    /// never runs.
    ConditionAfterInfallibleAction {
        /// The previous action's step name.
        action: String,
        /// Its kind.
        kind: ActionKind,
    },
    /// A step waits for an event no action of this flow or the other flows raises, and the
    /// host has not said it comes from outside.
    EventNothingRaises {
        /// The event.
        event: EventKind,
    },
    /// Another flow starts on an event this flow starts on, and its entry filter may admit the
    /// same records.
    FlowsShareTrigger {
        /// The other flow.
        flow: String,
        /// The event both start on.
        event: EventKind,
        /// [`Verdict::Yes`] or [`Verdict::CannotTell`].
        verdict: Verdict,
    },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BranchesOverlap {
                first,
                second,
                verdict: Verdict::Yes,
            } => write!(
                f,
                "branches '{first}' and '{second}' can admit the same record, which then takes \
                 both; make their filters exclusive if each record should take one branch"
            ),
            Self::BranchesOverlap { first, second, .. } => write!(
                f,
                "cannot tell whether branches '{first}' and '{second}' overlap; make sure no \
                 record passes both filters, or that taking both is intended"
            ),
            Self::UnroutedRecords {
                verdict: Verdict::Yes,
                entity: Some(entity),
                field: Some(field),
                values,
            } => {
                let entity = entity.to_string();
                let article = if entity.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                let field = field_words(field);
                let values = values.join(", ");
                let test = if values.contains(", ") {
                    format!("is none of {values}")
                } else {
                    format!("is not {values}")
                };
                write!(
                    f,
                    "{article} {entity} whose {field} {test} takes no branch; add a branch \
                     for the rest if they should go on"
                )
            }
            Self::UnroutedRecords { .. } => f.write_str(
                "cannot tell whether every record takes a branch; a record no branch's filter \
                 admits stops here",
            ),
            Self::SendWithoutFulfillmentDetermination => write!(
                f,
                "{} can run with no {} or {} before it on its path, so there may be no \
                 fulfillment order to send; determine fulfillment before it",
                ActionKind::SendToFulfillment,
                ActionKind::AssignFulfillmentSource,
                ActionKind::SendToDom,
            ),
            Self::ConditionAfterInfallibleAction { action, kind } => write!(
                f,
                "the previous action '{action}' ({kind} without execution policies) always \
                 succeeds, so the no path never runs; give it an execution policy or remove \
                 the condition"
            ),
            Self::EventNothingRaises { event } => write!(
                f,
                "no action of this flow or the other flows raises '{event}', so it must come \
                 from outside; make sure the host submits it and list it among the external \
                 events"
            ),
            Self::FlowsShareTrigger {
                flow,
                event,
                verdict: Verdict::Yes,
            } => write!(
                f,
                "flow '{flow}' also starts on '{event}' and may take the same records, so both \
                 run for one order; give their entry actions disjoint filters if only one \
                 should"
            ),
            Self::FlowsShareTrigger { flow, event, .. } => write!(
                f,
                "flow '{flow}' also starts on '{event}'; cannot tell whether its entry filter \
                 and this flow's admit the same records, so both may run for one order"
            ),
        }
    }
}

/// "fulfillment_source" → "fulfillment source"; "custom.priority" → "priority".
fn field_words(field: &str) -> String {
    field
        .strip_prefix("custom.")
        .unwrap_or(field)
        .replace(['_', '.'], " ")
}
