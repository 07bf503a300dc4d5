//! Flow problems and analysis warnings as the tool words them: a stable code per kind, and
//! for the names a flow refers to, what a user of the tool can do about them.

use orderflow::flow::analysis::{Warning, WarningKind};
use orderflow::flow::{ProblemKind, StepPath};

use crate::diagnostic::Diagnostic;
use crate::span::Place;

/// The stable code of a flow problem (`validate --format json`'s `code`).
pub(crate) fn code(kind: &ProblemKind) -> &'static str {
    match kind {
        ProblemKind::EmptyFlow => "empty-flow",
        ProblemKind::EmptyName => "empty-name",
        ProblemKind::NoTrigger => "no-trigger",
        ProblemKind::DuplicateStepName(_) => "duplicate-step-name",
        ProblemKind::ConditionWithoutAction => "condition-without-action",
        ProblemKind::StepAfterBranchingElement(_) => "step-after-branching-element",
        ProblemKind::EmptySplitter => "empty-splitter",
        ProblemKind::UnfilteredBranch(_) => "unfiltered-branch",
        ProblemKind::TooDeep(_) => "too-deep",
        ProblemKind::CustomActionMismatch => "custom-action-mismatch",
        ProblemKind::InvalidRetry(_) => "invalid-retry",
        ProblemKind::InvalidTimeout => "invalid-timeout",
        ProblemKind::UnknownOrchestrationType(_) => "unknown-orchestration-type",
        ProblemKind::ActionKindNotAllowed(_) => "action-kind-not-allowed",
        ProblemKind::ElementNotAllowed(_) => "element-not-allowed",
        ProblemKind::MissingProvider => "missing-provider",
        ProblemKind::UnknownProvider(_) => "unknown-provider",
        ProblemKind::ProviderLacksRequest { .. } => "provider-lacks-request",
        ProblemKind::UnknownPolicy(_) => "unknown-policy",
        ProblemKind::UnpublishedPolicy(_) => "unpublished-policy",
        ProblemKind::WrongPolicyType { .. } => "wrong-policy-type",
        ProblemKind::UnknownCustomAction(_) => "unknown-custom-action",
        _ => "invalid-flow",
    }
}

/// What the tool calls a policy the flow expects at a place: the JSON path says whether it
/// is the step's filter.
fn policy_kind(place: Option<&Place>) -> &'static str {
    match place.and_then(|p| p.json_path.as_deref()) {
        Some(path) if path.ends_with("['filter']") => "filter",
        _ => "execution",
    }
}

/// A flow problem as a diagnostic: unknown names say how to declare them.
pub(crate) fn flow_problem(
    flow: &str,
    path: &StepPath,
    kind: &ProblemKind,
    place: Option<Place>,
) -> Diagnostic {
    let at = if path.0.is_empty() {
        format!("flow '{flow}'")
    } else {
        format!("flow '{flow}', step {path}")
    };
    let (d, help) = match kind {
        ProblemKind::UnknownPolicy(p) => {
            let expected = policy_kind(place.as_ref());
            (
                Diagnostic::error(code(kind), format!("policy '{p}' is not defined"))
                    .label("no policy file given defines it, and no --policy declares it"),
                Some(format!(
                    "if it lives in code, declare it: --policy '{p}:{expected}:ENTITY' \
                     (ENTITY: order, order_line, fulfillment_order, fulfillment_order_line)"
                )),
            )
        }
        ProblemKind::UnknownProvider(p) => (
            Diagnostic::error(code(kind), format!("provider '{p}' is not declared"))
                .label("not among the declared providers"),
            Some(format!(
                "declare it with --provider '{p}' or in the declarations file \
                 (with no provider declared, every provider a flow names is assumed)"
            )),
        ),
        ProblemKind::UnknownCustomAction(a) => (
            Diagnostic::error(code(kind), format!("custom action '{a}' is not declared"))
                .label("not among the declared custom actions"),
            Some(format!(
                "declare it with --custom-action '{a}' or in the declarations file \
                 (with none declared, every custom action a flow names is assumed)"
            )),
        ),
        ProblemKind::UnpublishedPolicy(p) => (
            Diagnostic::error(
                code(kind),
                format!("policy '{p}' is invalid, so the flow cannot use it"),
            )
            .label("this policy has errors of its own, reported above"),
            None,
        ),
        other => (Diagnostic::error(code(other), other.to_string()), None),
    };
    let d = d.at(place).note(at);
    match help {
        Some(help) => d.help(help),
        None => d,
    }
}

/// The stable code of an analysis warning.
fn warning_code(kind: &WarningKind) -> &'static str {
    match kind {
        WarningKind::BranchesOverlap { .. } => "branches-overlap",
        WarningKind::UnroutedRecords { .. } => "unrouted-records",
        WarningKind::SendWithoutFulfillmentDetermination => "send-without-determination",
        WarningKind::ConditionAfterInfallibleAction { .. } => "condition-after-infallible-action",
        WarningKind::EventNothingRaises { .. } => "event-nothing-raises",
        WarningKind::FlowsShareTrigger { .. } => "flows-share-trigger",
        _ => "flow-warning",
    }
}

/// An analysis warning as a diagnostic.
pub(crate) fn warning(flow: &str, w: &Warning, place: Option<Place>) -> Diagnostic {
    let at = if w.path.0.is_empty() {
        format!("flow '{flow}'")
    } else {
        format!("flow '{flow}', step {}", w.path)
    };
    Diagnostic::warning(warning_code(&w.kind), w.kind.to_string())
        .at(place)
        .note(at)
}
