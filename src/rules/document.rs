//! The policy document: serde data users store, review and publish.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::document::{Entity, Value};
use crate::policy::{Criticality, PolicyKind};

/// A declarative policy: what users write. See the [module docs](super).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyDocument {
    /// Unique name; flow steps refer to it.
    pub name: String,
    /// Filter or execution.
    #[serde(rename = "type")]
    pub kind: PolicyKind,
    /// What a failed check does (execution policies). Defaults to Critical.
    #[serde(default)]
    pub criticality: Criticality,
    /// The records it applies to.
    pub entity: Entity,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The rules, evaluated in order.
    pub rules: Vec<Rule>,
}

impl PolicyDocument {
    /// A policy without rules.
    pub fn new(name: impl Into<String>, kind: PolicyKind, entity: Entity) -> Self {
        Self {
            name: name.into(),
            kind,
            criticality: Criticality::default(),
            entity,
            description: String::new(),
            rules: Vec::new(),
        }
    }

    /// Sets the criticality.
    pub fn with_criticality(mut self, criticality: Criticality) -> Self {
        self.criticality = criticality;
        self
    }

    /// Adds a rule.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }

    /// The policy as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a policy always serializes")
    }
}

/// One rule: a condition and, in execution policies, the values to set when it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Rule {
    /// Unique within the policy; errors and findings name it.
    pub name: String,
    /// When the rule holds; absent: always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Set Value actions (execution policies only). Without actions the rule is a check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<SetValue>,
    /// The failure reason when the check does not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Rule {
    /// A check: the policy fails on a record where `condition` does not hold.
    pub fn check(name: impl Into<String>, condition: Condition) -> Self {
        Self {
            name: name.into(),
            condition: Some(condition),
            actions: Vec::new(),
            message: None,
        }
    }

    /// Sets `field` to `value` where `condition` holds.
    pub fn set(
        name: impl Into<String>,
        condition: Condition,
        field: impl Into<String>,
        value: impl Into<Value>,
    ) -> Self {
        Self::check(name, condition).with_action(SetValue::new(field, value))
    }

    /// Adds a Set Value action.
    pub fn with_action(mut self, action: SetValue) -> Self {
        self.actions.push(action);
        self
    }

    /// Sets the failure reason.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// A Set Value action: `field` becomes `value` (`null` clears an optional field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SetValue {
    /// The field of the policy's entity.
    pub field: String,
    /// The new value.
    pub value: Value,
}

impl SetValue {
    /// Sets `field` to `value`.
    pub fn new(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            value: value.into(),
        }
    }
}

/// A condition: a row, an `and`/`or` group, or a quantifier over lines.
///
/// In JSON a condition is an object with exactly one of `and`, `or`, `any_line`,
/// `all_lines`, or a row (`field`, `operator`, `value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCondition", into = "RawCondition")]
#[non_exhaustive]
pub enum Condition {
    /// Every condition holds.
    And(Vec<Self>),
    /// At least one condition holds.
    Or(Vec<Self>),
    /// The condition holds for at least one line of the record (an order's lines, a
    /// fulfillment order's lines).
    AnyLine(Box<Self>),
    /// The condition holds for every line of the record.
    AllLines(Box<Self>),
    /// A field compared with a value.
    Row(Row),
}

impl Condition {
    /// A row: `field operator operand`.
    pub fn row(field: impl Into<String>, operator: Operator, operand: Option<Operand>) -> Self {
        Self::Row(Row {
            field: field.into(),
            operator,
            value: operand,
        })
    }

    /// `field = value`.
    pub fn equals(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::row(field, Operator::Equals, Some(Operand::One(value.into())))
    }

    /// `field <op> value` for a comparison operator.
    pub fn compare(field: impl Into<String>, operator: Operator, value: impl Into<Value>) -> Self {
        Self::row(field, operator, Some(Operand::One(value.into())))
    }

    /// `field in (values)`.
    pub fn is_in<V: Into<Value>>(
        field: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Self::row(
            field,
            Operator::In,
            Some(Operand::Many(values.into_iter().map(Into::into).collect())),
        )
    }

    /// `field` contains data.
    pub fn has_data(field: impl Into<String>) -> Self {
        Self::row(field, Operator::ContainsData, None)
    }
}

/// A field compared with a value, as one row of IOM's condition builder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Row {
    /// The field's stable name (`quantity`, `ship_to.country`, `custom.priority`).
    pub field: String,
    /// The comparison.
    pub operator: Operator,
    /// The value compared with: one value, a list for `in`/`not_in`, none for the
    /// contains-data operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Operand>,
}

/// The operators of IOM's condition builder, plus `in` and `not_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Operator {
    /// Equal to the value.
    #[serde(rename = "equals", alias = "=", alias = "==")]
    Equals,
    /// Not equal to the value (a missing value is not equal).
    #[serde(rename = "not_equals", alias = "!=", alias = "<>")]
    NotEquals,
    /// The field has a value (non-empty text).
    #[serde(rename = "contains_data")]
    ContainsData,
    /// The field has no value (or empty text).
    #[serde(rename = "does_not_contain_data")]
    DoesNotContainData,
    /// Greater than.
    #[serde(rename = ">", alias = "greater_than")]
    GreaterThan,
    /// Greater than or equal to.
    #[serde(rename = ">=", alias = "greater_or_equal")]
    GreaterOrEqual,
    /// Less than.
    #[serde(rename = "<", alias = "less_than")]
    LessThan,
    /// Less than or equal to.
    #[serde(rename = "<=", alias = "less_or_equal")]
    LessOrEqual,
    /// Equal to one of the listed values.
    #[serde(rename = "in")]
    In,
    /// Equal to none of the listed values (a missing value is in none).
    #[serde(rename = "not_in")]
    NotIn,
}

impl Operator {
    /// Whether the operator orders values (`>`, `>=`, `<`, `<=`).
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            Self::GreaterThan | Self::GreaterOrEqual | Self::LessThan | Self::LessOrEqual
        )
    }

    /// Whether the operator takes a list.
    pub fn takes_list(self) -> bool {
        matches!(self, Self::In | Self::NotIn)
    }

    /// Whether the operator takes no value.
    pub fn takes_no_value(self) -> bool {
        matches!(self, Self::ContainsData | Self::DoesNotContainData)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Equals => "equals",
            Self::NotEquals => "not_equals",
            Self::ContainsData => "contains_data",
            Self::DoesNotContainData => "does_not_contain_data",
            Self::GreaterThan => ">",
            Self::GreaterOrEqual => ">=",
            Self::LessThan => "<",
            Self::LessOrEqual => "<=",
            Self::In => "in",
            Self::NotIn => "not_in",
        })
    }
}

/// The value side of a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Operand {
    /// One value.
    One(Value),
    /// A list, for `in` and `not_in`.
    Many(Vec<Value>),
}

/// The JSON shape of a condition; converted with clear errors.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    and: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    or: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any_line: Option<Box<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all_lines: Option<Box<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator: Option<Operator>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    value: Option<serde_json::Value>,
}

/// Keeps `"value": null` apart from an absent value, so a null comparison is reported as
/// such and round-trips.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

impl TryFrom<RawCondition> for Condition {
    type Error = String;

    fn try_from(raw: RawCondition) -> Result<Self, String> {
        let is_row = raw.field.is_some() || raw.operator.is_some() || raw.value.is_some();
        let kinds = [
            raw.and.is_some(),
            raw.or.is_some(),
            raw.any_line.is_some(),
            raw.all_lines.is_some(),
            is_row,
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(
                "a condition has exactly one of `and`, `or`, `any_line`, `all_lines`, \
                 or a row (`field`, `operator`, `value`)"
                    .to_owned(),
            );
        }
        if let Some(c) = raw.and {
            return Ok(Self::And(c));
        }
        if let Some(c) = raw.or {
            return Ok(Self::Or(c));
        }
        if let Some(c) = raw.any_line {
            return Ok(Self::AnyLine(c));
        }
        if let Some(c) = raw.all_lines {
            return Ok(Self::AllLines(c));
        }
        let field = raw.field.ok_or("a row needs a `field`")?;
        let operator = raw
            .operator
            .ok_or_else(|| format!("the row on '{field}' needs an `operator`"))?;
        let value = raw
            .value
            .map(|v| operand(v).map_err(|e| format!("the row on '{field}': {e}")))
            .transpose()?;
        Ok(Self::Row(Row {
            field,
            operator,
            value,
        }))
    }
}

fn operand(v: serde_json::Value) -> Result<Operand, String> {
    match v {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                serde_json::Value::Array(_) => Err("a list may not hold lists".to_owned()),
                other => scalar(other),
            })
            .collect::<Result<_, _>>()
            .map(Operand::Many),
        other => scalar(other).map(Operand::One),
    }
}

fn scalar(v: serde_json::Value) -> Result<Value, String> {
    match v {
        serde_json::Value::Array(_) => unreachable!("lists are handled by the caller"),
        // An object is a value only in the exact-decimal form `{"decimal": "<digits>"}`.
        serde_json::Value::Object(o) if !o.contains_key(crate::number::DECIMAL_KEY) => {
            Err("a value is text, a number, true/false or a list, not an object".into())
        }
        // Numbers read as exact decimals: `0.3` is 0.3; one that does not fit is refused.
        other => Value::deserialize(other).map_err(|e| e.to_string()),
    }
}

impl From<Condition> for RawCondition {
    fn from(c: Condition) -> Self {
        let mut raw = Self::default();
        match c {
            Condition::And(c) => raw.and = Some(c),
            Condition::Or(c) => raw.or = Some(c),
            Condition::AnyLine(c) => raw.any_line = Some(c),
            Condition::AllLines(c) => raw.all_lines = Some(c),
            Condition::Row(row) => {
                raw.field = Some(row.field);
                raw.operator = Some(row.operator);
                raw.value = row
                    .value
                    .map(|v| serde_json::to_value(v).unwrap_or_default());
            }
        }
        raw
    }
}

/// Whether a policy's draft is published as it stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyStatus {
    /// Never published, or edited since its last publish. Flows use the last published
    /// version, if any.
    #[default]
    Unpublished,
    /// The draft is the last published version.
    Published,
}

/// A rule policy as an engine keeps it: the draft, its status, and the last published
/// version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyRecord {
    /// The current draft.
    pub document: PolicyDocument,
    /// Whether the draft is published as it stands.
    pub status: PolicyStatus,
    /// The last published version (1, 2, …); `None` before the first publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_published: Option<u32>,
    /// When the policy was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_on: Option<Timestamp>,
}

impl PolicyRecord {
    /// A new unpublished record for a draft.
    pub fn new(document: PolicyDocument, created_on: Option<Timestamp>) -> Self {
        Self {
            document,
            status: PolicyStatus::Unpublished,
            last_published: None,
            created_on,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.document.name
    }
}
