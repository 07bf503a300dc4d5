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
    /// A document could not be parsed.
    #[error("invalid {what} document{}: {message}", location(*.line, *.column))]
    Document {
        /// What was parsed ("flow", "event").
        what: &'static str,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong.
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
    #[error("flow '{flow}' is {status:?}: cannot {operation}")]
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
