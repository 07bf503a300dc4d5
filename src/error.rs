use crate::document::OrderId;
use crate::execution::{ExecutionId, ExecutionStatus};
use crate::flow::{FlowStatus, ValidationError};
use crate::limits::LimitError;
use crate::rules::PolicyError;
use crate::store::StoreError;

/// The result of engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The class of an [`Error`], for matching without inspecting messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A document (flow, event) could not be parsed.
    Document,
    /// A flow or policy failed validation.
    Validation,
    /// A name does not exist (flow, order, execution).
    NotFound,
    /// A name is taken.
    AlreadyExists,
    /// The operation does not fit the current state (editing a published flow, reprocessing
    /// an execution that has not failed, a version not greater than the last).
    InvalidState,
    /// The input is malformed (an event with an empty id).
    InvalidInput,
    /// The store failed.
    Store,
    /// Engine construction was given inconsistent parts.
    Configuration,
    /// Input went past a configured limit ([`Limits`](crate::limits::Limits)).
    Limit,
}

/// An error of the engine's API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A document could not be parsed. The message gives the position once:
    /// `invalid flow document at line 3, column 12: expected value`.
    #[error("invalid {what} document{}: {message}", location(*.line, *.column))]
    Document {
        /// What was parsed ("flow", "event").
        what: &'static str,
        /// 1-based line of the problem; 0 when the problem is not at one place in the
        /// text (the message names the place).
        line: usize,
        /// The column of the problem on its line.
        column: usize,
        /// What is wrong, without the position (that is `line` and `column`), so a tool
        /// can print `file:line:column: message`.
        message: String,
    },
    /// A flow failed validation; the error lists every problem with its place.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A policy document failed its checks; the error names policy, rule and field.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// No policy has this name.
    #[error("policy '{0}' does not exist")]
    UnknownPolicy(String),
    /// A policy of this name exists (a rule policy or one registered in code).
    #[error("policy '{0}' already exists")]
    PolicyExists(String),
    /// The policy's draft is already published as it stands.
    #[error("policy '{0}' has no unpublished changes")]
    NothingToPublish(String),
    /// No flow has this name.
    #[error("flow '{0}' does not exist")]
    UnknownFlow(String),
    /// A flow of this name exists.
    #[error("flow '{0}' already exists")]
    FlowExists(String),
    /// The flow's status does not allow the operation.
    #[error("flow '{flow}' is {status}: cannot {operation}")]
    FlowStatus {
        /// The flow.
        flow: String,
        /// Its status.
        status: FlowStatus,
        /// What was attempted.
        operation: &'static str,
    },
    /// Publishing needs a version greater than the last published one.
    #[error("flow '{flow}': version {version} is not greater than the last published {last}")]
    VersionNotGreater {
        /// The flow.
        flow: String,
        /// The version asked for.
        version: semver::Version,
        /// The last published version.
        last: semver::Version,
    },
    /// An event is malformed.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The order is unknown and the event brings no document for it.
    #[error("order '{0}' is unknown: send its document with the event")]
    UnknownOrder(OrderId),
    /// No execution has this id.
    #[error("execution {0} does not exist")]
    UnknownExecution(ExecutionId),
    /// Reprocess of an execution with no failed path.
    #[error("execution {0} has not failed: nothing to reprocess")]
    NotReprocessable(ExecutionId),
    /// Cancel of an execution that has already ended: it completed, or was cancelled
    /// before.
    #[error("execution {execution} {}: nothing to cancel", ended(*.status))]
    NotCancellable {
        /// The execution.
        execution: ExecutionId,
        /// How it ended ([`Completed`](ExecutionStatus::Completed) or
        /// [`Cancelled`](ExecutionStatus::Cancelled)).
        status: ExecutionStatus,
    },
    /// An order update was refused: the document it gives (or the patch's result) fails
    /// the checks a new order passes, or it changes the order's id, or a patch names a
    /// line the order lacks. Nothing was changed.
    #[error("update of order '{order}' refused: {reason}")]
    InvalidUpdate {
        /// The order.
        order: OrderId,
        /// Why.
        reason: String,
    },
    /// Two registered parts share a name, or a part is missing.
    #[error("configuration: {0}")]
    Configuration(String),
    /// A published flow version cannot run on this engine (a provider, action or policy
    /// it names is not registered, or its stored definition cannot be read): events that
    /// would start it are not taken, and orders running it are set aside.
    #[error("flow '{flow}' v{version} cannot run: {reason}")]
    FlowBroken {
        /// The flow.
        flow: String,
        /// The version.
        version: semver::Version,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Input went past a limit; the error names the limit and the place.
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl Error {
    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Document { .. } => ErrorKind::Document,
            Self::Validation(_) | Self::Policy(_) => ErrorKind::Validation,
            Self::UnknownFlow(_)
            | Self::UnknownPolicy(_)
            | Self::UnknownOrder(_)
            | Self::UnknownExecution(_) => ErrorKind::NotFound,
            Self::FlowExists(_) | Self::PolicyExists(_) => ErrorKind::AlreadyExists,
            Self::FlowStatus { .. }
            | Self::VersionNotGreater { .. }
            | Self::NothingToPublish(_)
            | Self::NotReprocessable(_)
            | Self::NotCancellable { .. } => ErrorKind::InvalidState,
            Self::InvalidEvent(_) | Self::InvalidUpdate { .. } => ErrorKind::InvalidInput,
            Self::Configuration(_) | Self::FlowBroken { .. } => ErrorKind::Configuration,
            Self::Store(_) => ErrorKind::Store,
            Self::Limit(_) => ErrorKind::Limit,
        }
    }

    /// Whether the same call may succeed later (a store outage).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}

/// How an execution that cannot be cancelled ended, in words.
fn ended(status: ExecutionStatus) -> &'static str {
    match status {
        ExecutionStatus::Cancelled => "was already cancelled",
        ExecutionStatus::Completed => "has completed",
        ExecutionStatus::Running | ExecutionStatus::Waiting | ExecutionStatus::Failed => {
            "has not ended"
        }
    }
}

/// ` at line L, column C`, or nothing when the place is not a position in the text.
fn location(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}, column {column}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::flow::{Flow, Problem, ProblemKind, StepPath};
    use crate::provider::{ProviderError, ProviderErrorKind};
    use crate::rules::{RuleProblem, RuleProblemKind};
    use crate::store::StoreErrorKind;

    /// Each variant's place in [`every_error`]; exhaustive, so a new variant fails to
    /// compile here until it has a sample.
    fn variant(e: &Error) -> usize {
        match e {
            Error::Document { .. } => 0,
            Error::Validation(_) => 1,
            Error::Policy(_) => 2,
            Error::UnknownPolicy(_) => 3,
            Error::PolicyExists(_) => 4,
            Error::NothingToPublish(_) => 5,
            Error::UnknownFlow(_) => 6,
            Error::FlowExists(_) => 7,
            Error::FlowStatus { .. } => 8,
            Error::VersionNotGreater { .. } => 9,
            Error::InvalidEvent(_) => 10,
            Error::UnknownOrder(_) => 11,
            Error::UnknownExecution(_) => 12,
            Error::NotReprocessable(_) => 13,
            Error::NotCancellable { .. } => 14,
            Error::InvalidUpdate { .. } => 15,
            Error::Configuration(_) => 16,
            Error::FlowBroken { .. } => 17,
            Error::Store(_) => 18,
            Error::Limit(_) => 19,
        }
    }
    const VARIANTS: usize = 20;

    const STORE_KINDS: [StoreErrorKind; 6] = [
        StoreErrorKind::Conflict,
        StoreErrorKind::Unavailable,
        StoreErrorKind::Corrupt,
        StoreErrorKind::Refused,
        StoreErrorKind::LeaseLost,
        StoreErrorKind::Other,
    ];

    /// Exhaustive, so a new kind fails to compile here until it is in [`STORE_KINDS`].
    fn store_kind(kind: StoreErrorKind) -> usize {
        match kind {
            StoreErrorKind::Conflict => 0,
            StoreErrorKind::Unavailable => 1,
            StoreErrorKind::Corrupt => 2,
            StoreErrorKind::Refused => 3,
            StoreErrorKind::LeaseLost => 4,
            StoreErrorKind::Other => 5,
        }
    }

    const PROVIDER_KINDS: [ProviderErrorKind; 6] = [
        ProviderErrorKind::Rejected,
        ProviderErrorKind::Unavailable,
        ProviderErrorKind::Timeout,
        ProviderErrorKind::Panicked,
        ProviderErrorKind::InvalidReply,
        ProviderErrorKind::Other,
    ];

    fn provider_kind(kind: ProviderErrorKind) -> usize {
        match kind {
            ProviderErrorKind::Rejected => 0,
            ProviderErrorKind::Unavailable => 1,
            ProviderErrorKind::Timeout => 2,
            ProviderErrorKind::Panicked => 3,
            ProviderErrorKind::InvalidReply => 4,
            ProviderErrorKind::Other => 5,
        }
    }

    /// One error of every variant (every store kind for [`Error::Store`]), with names in
    /// lower case so that a capital letter in a message can only come from `Debug`.
    fn every_error() -> Vec<Error> {
        let execution = ExecutionId {
            order: OrderId::from("so-1"),
            seq: 2,
        };
        let version = |minor| semver::Version::new(1, minor, 0);
        let parsed = Flow::from_json("{\n  \"name\": 1\n}").unwrap_err();
        let mut all = vec![
            parsed,
            Error::Document {
                what: "flow",
                line: 0,
                column: 0,
                message: "expected an object at $.steps[0], found an array".into(),
            },
            Error::Validation(ValidationError {
                flow: "ship".into(),
                problems: vec![
                    Problem {
                        path: StepPath::default(),
                        kind: ProblemKind::EmptyFlow,
                    },
                    Problem {
                        path: StepPath(vec!["split".into(), "east".into()]),
                        kind: ProblemKind::UnfilteredBranch("east".into()),
                    },
                ],
            }),
            Error::Policy(PolicyError {
                policy: "ship-to us".into(),
                problems: vec![RuleProblem {
                    rule: Some("domestic".into()),
                    field: Some("quantity".into()),
                    kind: RuleProblemKind::NoRules,
                }],
            }),
            Error::UnknownPolicy("ship-to us".into()),
            Error::PolicyExists("ship-to us".into()),
            Error::NothingToPublish("ship-to us".into()),
            Error::UnknownFlow("ship".into()),
            Error::FlowExists("ship".into()),
            Error::FlowStatus {
                flow: "ship".into(),
                status: FlowStatus::Published,
                operation: "edit",
            },
            Error::FlowStatus {
                flow: "ship".into(),
                status: FlowStatus::Paused,
                operation: "publish",
            },
            Error::VersionNotGreater {
                flow: "ship".into(),
                version: version(0),
                last: version(1),
            },
            Error::InvalidEvent("the event id is empty".into()),
            Error::UnknownOrder(OrderId::from("so-1")),
            Error::UnknownExecution(execution.clone()),
            Error::NotReprocessable(execution.clone()),
            Error::NotCancellable {
                execution: execution.clone(),
                status: ExecutionStatus::Completed,
            },
            Error::NotCancellable {
                execution,
                status: ExecutionStatus::Cancelled,
            },
            Error::InvalidUpdate {
                order: OrderId::from("so-1"),
                reason: "the update id is empty".into(),
            },
            Error::Configuration("two providers are named 'seattle'".into()),
            Error::FlowBroken {
                flow: "ship".into(),
                version: version(0),
                reason: "provider 'seattle' is not registered".into(),
            },
            Error::Limit(LimitError {
                what: "flow",
                limit: "max_steps",
                max: 10,
                found: 11,
                place: "steps[10]".into(),
            }),
        ];
        all.extend(
            STORE_KINDS
                .into_iter()
                .map(|kind| StoreError::new(kind, "connection refused").into()),
        );
        all.push(StoreError::conflict(OrderId::from("so-1"), Some(3), Some(2)).into());
        all.push(StoreError::conflict(OrderId::from("so-1"), None, Some(2)).into());
        all.push(StoreError::conflict(OrderId::from("so-1"), Some(1), None).into());
        all
    }

    /// The crate's convention for messages: plain words that start lower-case and end
    /// without a period, so they read inside a host's own sentence; no `Debug` text
    /// (`Some(..)`, `None`, quoted strings, braces, paths, variant names).
    fn assert_plain(message: &str) {
        assert!(
            message.starts_with(|c: char| c.is_ascii_lowercase()),
            "starts lower-case: {message}"
        );
        assert!(!message.ends_with('.'), "no trailing period: {message}");
        for debug in ["{", "}", "\"", "Some(", "None", "::"] {
            assert!(!message.contains(debug), "`{debug}` in: {message}");
        }
        assert!(
            !message.contains(|c: char| c.is_ascii_uppercase()),
            "a capital letter (a Debug name?) in: {message}"
        );
    }

    #[test]
    fn every_error_reads_as_plain_words() {
        let all = every_error();
        let covered: BTreeSet<usize> = all.iter().map(variant).collect();
        assert_eq!(
            covered,
            (0..VARIANTS).collect(),
            "a sample of every variant"
        );
        let kinds: BTreeSet<usize> = STORE_KINDS.into_iter().map(store_kind).collect();
        assert_eq!(kinds.len(), STORE_KINDS.len(), "every store kind");
        for e in &all {
            assert_plain(&e.to_string());
        }
        let kinds: BTreeSet<usize> = PROVIDER_KINDS.into_iter().map(provider_kind).collect();
        assert_eq!(kinds.len(), PROVIDER_KINDS.len(), "every provider kind");
        for kind in PROVIDER_KINDS {
            assert_plain(&ProviderError::new(kind, "connection refused").to_string());
        }
    }

    #[test]
    fn a_message_names_its_kind_and_status_in_words() {
        let store = |kind| Error::from(StoreError::new(kind, "connection refused")).to_string();
        assert_eq!(
            store(StoreErrorKind::Unavailable),
            "store unavailable: connection refused"
        );
        assert_eq!(
            store(StoreErrorKind::LeaseLost),
            "store lease lost: connection refused"
        );
        assert_eq!(
            StoreError::conflict(OrderId::from("so-1"), None, Some(2)).to_string(),
            "store conflict: order so-1 is not stored, the commit expected revision 2"
        );
        assert_eq!(
            ProviderError::new(ProviderErrorKind::Timeout, "no reply in 5s").to_string(),
            "timed out: no reply in 5s"
        );
        let status = Error::FlowStatus {
            flow: "ship".into(),
            status: FlowStatus::Published,
            operation: "edit",
        };
        assert_eq!(status.to_string(), "flow 'ship' is published: cannot edit");
    }

    #[test]
    fn a_document_error_gives_its_position_once() {
        let e = Flow::from_json("{\n  \"name\": 1\n}").unwrap_err();
        let Error::Document {
            line,
            column,
            message,
            ..
        } = &e
        else {
            panic!("a document error: {e}");
        };
        assert_eq!((*line, *column), (2, 11));
        assert!(!message.contains("line"), "{message}");
        assert_eq!(
            e.to_string(),
            format!("invalid flow document at line 2, column 11: {message}")
        );
        assert_eq!(e.to_string().matches("line").count(), 1, "{e}");
    }
}
