//! What can be wrong in a policy document, each problem with its place.

use std::fmt;

use super::document::Operator;
use super::field::FieldType;
use super::{MAX_CONDITIONS, MAX_LIST, MAX_RULES, MAX_TEXT};
use crate::document::Entity;

/// A policy document that failed its checks; lists every problem.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PolicyError {
    /// The policy.
    pub policy: String,
    /// Every problem found, in document order.
    pub problems: Vec<RuleProblem>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy '{}' is invalid: ", self.policy)?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    /// Whether some problem is of a kind matching `pred`.
    pub fn has(&self, pred: impl Fn(&RuleProblemKind) -> bool) -> bool {
        self.problems.iter().any(|p| pred(&p.kind))
    }
}

/// One problem of a policy document, with its place.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RuleProblem {
    /// The rule, by name (or `#<index>` when it has none); `None` for the policy itself.
    pub rule: Option<String>,
    /// The field the problem is about.
    pub field: Option<String>,
    /// What is wrong.
    pub kind: RuleProblemKind,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(rule) = &self.rule {
            write!(f, "rule '{rule}', ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field '{field}': ")?;
        }
        write!(f, "{}", self.kind)
    }
}

/// What is wrong in a policy document.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RuleProblemKind {
    /// The policy has no name.
    EmptyName,
    /// The policy has no rules.
    NoRules,
    /// More rules than [`MAX_RULES`](super::MAX_RULES).
    TooManyRules(usize),
    /// More rows and groups than [`MAX_CONDITIONS`](super::MAX_CONDITIONS).
    TooManyConditions,
    /// A rule has no name.
    EmptyRuleName,
    /// Two rules share a name.
    DuplicateRule,
    /// A filter policy's rule has Set Value actions.
    ActionsInFilter,
    /// Conditions nest deeper than the bound, [`Limits::max_nesting`] (its value): the
    /// conditions past it are not compiled.
    ///
    /// [`Limits::max_nesting`]: crate::limits::Limits::max_nesting
    TooDeep(usize),
    /// An `and`/`or` group without conditions.
    EmptyGroup,
    /// `any_line`/`all_lines` on an entity without lines.
    NoLines(Entity),
    /// The entity has no field of this name.
    UnknownField(Entity),
    /// The value's type does not fit the field's.
    TypeMismatch {
        /// The field's type.
        field: FieldType,
        /// What the value is (`text`, `number`, `true/false`).
        value: &'static str,
    },
    /// An ordering operator on a field without order.
    OrderingOnUnordered {
        /// The operator.
        operator: Operator,
        /// The field's type.
        field: FieldType,
    },
    /// The operator takes a value and has none.
    MissingValue(Operator),
    /// The operator takes no value and has one.
    UnexpectedValue(Operator),
    /// `in`/`not_in` with one value instead of a list.
    ExpectedList(Operator),
    /// A list where one value is expected.
    ExpectedOneValue(Operator),
    /// An empty `in`/`not_in` list.
    EmptyList,
    /// A list longer than [`MAX_LIST`](super::MAX_LIST).
    ListTooLong(usize),
    /// `null` compared: use `contains_data`/`does_not_contain_data`.
    NullValue,
    /// Text longer than [`MAX_TEXT`](super::MAX_TEXT) bytes.
    TextTooLong(usize),
    /// A value an option field does not have.
    UnknownOption {
        /// The value given.
        value: String,
        /// The values the field accepts.
        allowed: &'static [&'static str],
    },
    /// A date that is not ISO 8601 (`YYYY-MM-DD`).
    InvalidDate(String),
    /// Set Value on a field that cannot change (an identifier).
    ReadOnly,
    /// Set Value to `null` on a field that must have a value.
    NotNullable,
}

impl fmt::Display for RuleProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyName => f.write_str("the policy has no name"),
            Self::NoRules => f.write_str("the policy has no rules"),
            Self::TooManyRules(n) => write!(f, "{n} rules; the limit is {MAX_RULES}"),
            Self::TooManyConditions => {
                write!(f, "more than {MAX_CONDITIONS} conditions in the policy")
            }
            Self::EmptyRuleName => f.write_str("the rule has no name"),
            Self::DuplicateRule => f.write_str("another rule has the same name"),
            Self::ActionsInFilter => f.write_str("a filter policy cannot set values"),
            Self::TooDeep(max) => {
                write!(
                    f,
                    "conditions nest deeper than the limit max_nesting = {max}"
                )
            }
            Self::EmptyGroup => f.write_str("an `and`/`or` group has no conditions"),
            Self::NoLines(e) => write!(f, "any_line/all_lines: a {e} has no lines"),
            Self::UnknownField(e) => write!(f, "a {e} has no such field"),
            Self::TypeMismatch { field, value } => {
                write!(f, "compares a {field} field with {value}")
            }
            Self::OrderingOnUnordered { operator, field } => {
                write!(f, "'{operator}' cannot order a {field} field")
            }
            Self::MissingValue(op) => write!(f, "'{op}' needs a value"),
            Self::UnexpectedValue(op) => write!(f, "'{op}' takes no value"),
            Self::ExpectedList(op) => write!(f, "'{op}' needs a list of values"),
            Self::ExpectedOneValue(op) => write!(f, "'{op}' takes one value, not a list"),
            Self::EmptyList => f.write_str("the list of values is empty"),
            Self::ListTooLong(n) => write!(f, "{n} values; the limit is {MAX_LIST}"),
            Self::NullValue => {
                f.write_str("compares with null: use contains_data or does_not_contain_data")
            }
            Self::TextTooLong(n) => write!(f, "text of {n} bytes; the limit is {MAX_TEXT}"),
            Self::UnknownOption { value, allowed } => {
                write!(f, "'{value}' is not one of {}", allowed.join(", "))
            }
            Self::InvalidDate(d) => write!(f, "'{d}' is not a date (YYYY-MM-DD)"),
            Self::ReadOnly => f.write_str("the field cannot be set"),
            Self::NotNullable => f.write_str("the field cannot be cleared"),
        }
    }
}
