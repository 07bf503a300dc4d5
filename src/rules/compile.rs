//! Checking and compiling policy documents, and evaluating the compiled form.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;

use crate::document::{Decimal, Entity, RecordMut, RecordRef, Value};
use crate::policy::{Check, Criticality, Policy, PolicyKind};

use super::document::{Condition, Operand, Operator, PolicyDocument, Row, SetValue};
use super::field::{self, FieldType, Lit, Rec, Scalar, Setter, value_scalar};
use super::row::{Cmp, RowFn, RowOp};
use super::{MAX_CONDITION_DEPTH, MAX_CONDITIONS, MAX_LIST, MAX_RULES, MAX_TEXT};

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
    /// Nesting deeper than [`MAX_CONDITION_DEPTH`](super::MAX_CONDITION_DEPTH).
    TooDeep,
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
            Self::TooDeep => write!(
                f,
                "conditions nest deeper than the limit of {MAX_CONDITION_DEPTH}"
            ),
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

/// A compiled rule policy: implements [`Policy`] by reading fields directly.
///
/// Made by [`PolicyDocument::compile`] or by an engine when it publishes a policy.
#[derive(Debug)]
pub struct RulePolicy {
    pub(super) document: PolicyDocument,
    version: Option<u32>,
    rules: Box<[CompiledRule]>,
}

impl RulePolicy {
    /// The published version this was compiled from (`None` when compiled directly).
    pub fn version(&self) -> Option<u32> {
        self.version
    }
}

#[derive(Debug)]
struct CompiledRule {
    condition: Option<Cond>,
    actions: Box<[Assign]>,
    reason: Box<str>,
}

#[derive(Debug)]
enum Cond {
    And(Box<[Self]>),
    Or(Box<[Self]>),
    AnyLine(Box<Self>),
    AllLines(Box<Self>),
    /// A row on a well-known field, compiled to a closure.
    Row(RowFn),
    /// A row on a custom attribute, read by name.
    Custom(Box<str>, Op),
}

/// How a resolved field is read.
enum Get {
    Known(&'static field::FieldDef),
    Custom(Box<str>),
}

#[derive(Debug)]
enum Op {
    Present,
    Absent,
    Eq(Lit),
    Ne(Lit),
    Gt(Lit),
    Ge(Lit),
    Lt(Lit),
    Le(Lit),
    In(Box<[Lit]>),
    NotIn(Box<[Lit]>),
}

#[derive(Debug)]
enum Assign {
    Known(Setter, Option<Lit>),
    Custom(Box<str>, Value),
}

impl Policy for RulePolicy {
    fn name(&self) -> &str {
        &self.document.name
    }
    fn kind(&self) -> PolicyKind {
        self.document.kind
    }
    fn entity(&self) -> Entity {
        self.document.entity
    }
    fn criticality(&self) -> Criticality {
        self.document.criticality
    }

    fn admits(&self, record: RecordRef<'_>) -> bool {
        let rec = Rec::of(record);
        self.rules
            .iter()
            .all(|r| r.condition.as_ref().is_none_or(|c| c.holds(rec)))
    }

    fn execute(&self, mut record: RecordMut<'_>) -> Check {
        let mut failed: Option<&CompiledRule> = None;
        for rule in &self.rules {
            let holds = match &rule.condition {
                None => true,
                Some(c) => c.holds(Rec::of_mut(&record)),
            };
            if rule.actions.is_empty() {
                if !holds && failed.is_none() {
                    failed = Some(rule);
                }
            } else if holds {
                for action in &rule.actions {
                    action.apply(&mut record);
                }
            }
        }
        match failed {
            None => Check::Passed,
            Some(rule) => Check::failed(rule.reason.to_string()),
        }
    }
}

impl Cond {
    /// Evaluates a row in place and anything else through a call: most conditions are
    /// rows.
    #[inline(always)]
    fn holds(&self, rec: Rec<'_>) -> bool {
        match self {
            Self::Row(row) => (row.test)(rec),
            other => other.eval(rec),
        }
    }

    fn eval(&self, rec: Rec<'_>) -> bool {
        match self {
            Self::And(cs) => cs.iter().all(|c| c.holds(rec)),
            Self::Or(cs) => cs.iter().any(|c| c.holds(rec)),
            Self::AnyLine(c) => match rec {
                Rec::Order(o) => o.lines.iter().any(|l| c.holds(Rec::Line(l))),
                Rec::FulfillmentOrder(f) => f
                    .lines
                    .iter()
                    .any(|l| c.holds(Rec::FulfillmentOrderLine(l))),
                _ => false,
            },
            Self::AllLines(c) => match rec {
                Rec::Order(o) => o.lines.iter().all(|l| c.holds(Rec::Line(l))),
                Rec::FulfillmentOrder(f) => f
                    .lines
                    .iter()
                    .all(|l| c.holds(Rec::FulfillmentOrderLine(l))),
                _ => false,
            },
            Self::Row(row) => (row.test)(rec),
            Self::Custom(name, op) => op.holds(
                rec.custom()
                    .get(&**name)
                    .map_or(Scalar::Missing, value_scalar),
            ),
        }
    }
}

impl Op {
    fn holds(&self, v: Scalar<'_>) -> bool {
        let ord = |lit: &Lit| compare(v, lit);
        match self {
            Self::Present => match v {
                Scalar::Missing => false,
                Scalar::Text(t) => !t.is_empty(),
                Scalar::Number(_) | Scalar::Bool(_) => true,
            },
            Self::Absent => !Self::Present.holds(v),
            Self::Eq(l) => ord(l) == Some(Ordering::Equal),
            Self::Ne(l) => ord(l) != Some(Ordering::Equal),
            Self::Gt(l) => ord(l) == Some(Ordering::Greater),
            Self::Ge(l) => matches!(ord(l), Some(Ordering::Greater | Ordering::Equal)),
            Self::Lt(l) => ord(l) == Some(Ordering::Less),
            Self::Le(l) => matches!(ord(l), Some(Ordering::Less | Ordering::Equal)),
            Self::In(ls) => ls.iter().any(|l| ord(l) == Some(Ordering::Equal)),
            Self::NotIn(ls) => !ls.iter().any(|l| ord(l) == Some(Ordering::Equal)),
        }
    }
}

/// Compares a field's value with a literal of the same type; `None` when they do not
/// compare (missing value, another type). Numbers compare exactly.
fn compare(v: Scalar<'_>, lit: &Lit) -> Option<Ordering> {
    match (v, lit) {
        (Scalar::Text(a), Lit::Text(b)) => Some(a.cmp(b)),
        (Scalar::Number(a), Lit::Number(b)) => Some(a.cmp(b)),
        (Scalar::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Assign {
    fn apply(&self, record: &mut RecordMut<'_>) {
        match self {
            Self::Known(set, value) => set(record, value.as_ref()),
            Self::Custom(name, value) => {
                let custom = field::custom_mut(record);
                if matches!(value, Value::Null) {
                    custom.shift_remove(&**name);
                } else if let Some(slot) = custom.get_mut(&**name) {
                    if slot != value {
                        *slot = value.clone();
                    }
                } else {
                    custom.insert(name.to_string(), value.clone());
                }
            }
        }
    }
}

/// Checks and compiles a document; `version` is the published version it stands for.
pub(crate) fn compile(
    doc: &PolicyDocument,
    version: Option<u32>,
) -> Result<RulePolicy, PolicyError> {
    let mut c = Compiler {
        problems: Vec::new(),
        rule: None,
        conditions: 0,
        too_many_reported: false,
    };
    if doc.name.trim().is_empty() {
        c.problem(None, RuleProblemKind::EmptyName);
    }
    if doc.rules.is_empty() {
        c.problem(None, RuleProblemKind::NoRules);
    }
    if doc.rules.len() > MAX_RULES {
        c.problem(None, RuleProblemKind::TooManyRules(doc.rules.len()));
    }
    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(doc.rules.len().min(MAX_RULES));
    for (i, rule) in doc.rules.iter().take(MAX_RULES).enumerate() {
        c.rule = Some(if rule.name.trim().is_empty() {
            format!("#{}", i + 1)
        } else {
            rule.name.clone()
        });
        if rule.name.trim().is_empty() {
            c.problem(None, RuleProblemKind::EmptyRuleName);
        } else if !names.insert(rule.name.as_str()) {
            c.problem(None, RuleProblemKind::DuplicateRule);
        }
        if doc.kind == PolicyKind::Filter && !rule.actions.is_empty() {
            c.problem(None, RuleProblemKind::ActionsInFilter);
        }
        if let Some(m) = &rule.message {
            c.text_len(None, m);
        }
        let condition = rule
            .condition
            .as_ref()
            .and_then(|cond| c.condition(cond, doc.entity, 1));
        let actions: Vec<Assign> = rule
            .actions
            .iter()
            .filter_map(|a| c.assign(a, doc.entity))
            .collect();
        rules.push(CompiledRule {
            condition,
            actions: actions.into(),
            reason: rule
                .message
                .clone()
                .unwrap_or_else(|| format!("rule '{}' does not hold", rule.name))
                .into(),
        });
    }
    if !c.problems.is_empty() {
        return Err(PolicyError {
            policy: doc.name.clone(),
            problems: c.problems,
        });
    }
    Ok(RulePolicy {
        document: doc.clone(),
        version,
        rules: rules.into(),
    })
}

struct Compiler {
    problems: Vec<RuleProblem>,
    rule: Option<String>,
    conditions: usize,
    too_many_reported: bool,
}

/// A resolved field: how to read it, its type, and (for known fields) the table row.
struct Resolved {
    get: Get,
    ty: Option<FieldType>,
    def: Option<&'static field::FieldDef>,
}

impl Compiler {
    fn problem(&mut self, field: Option<&str>, kind: RuleProblemKind) {
        self.problems.push(RuleProblem {
            rule: self.rule.clone(),
            field: field.map(str::to_owned),
            kind,
        });
    }

    fn text_len(&mut self, field: Option<&str>, text: &str) -> bool {
        if text.len() > MAX_TEXT {
            self.problem(field, RuleProblemKind::TextTooLong(text.len()));
            return false;
        }
        true
    }

    fn condition(&mut self, cond: &Condition, entity: Entity, depth: usize) -> Option<Cond> {
        if depth > MAX_CONDITION_DEPTH {
            self.problem(None, RuleProblemKind::TooDeep);
            return None;
        }
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            if !self.too_many_reported {
                self.too_many_reported = true;
                self.problem(None, RuleProblemKind::TooManyConditions);
            }
            return None;
        }
        match cond {
            Condition::And(cs) | Condition::Or(cs) => {
                if cs.is_empty() {
                    self.problem(None, RuleProblemKind::EmptyGroup);
                }
                let compiled: Vec<Cond> = cs
                    .iter()
                    .filter_map(|c| self.condition(c, entity, depth + 1))
                    .collect();
                Some(if matches!(cond, Condition::And(_)) {
                    Cond::And(compiled.into())
                } else {
                    Cond::Or(compiled.into())
                })
            }
            Condition::AnyLine(c) | Condition::AllLines(c) => {
                let lines = match entity {
                    Entity::Order => Entity::OrderLine,
                    Entity::FulfillmentOrder => Entity::FulfillmentOrderLine,
                    other => {
                        self.problem(None, RuleProblemKind::NoLines(other));
                        return None;
                    }
                };
                let inner = Box::new(self.condition(c, lines, depth + 1)?);
                Some(if matches!(cond, Condition::AnyLine(_)) {
                    Cond::AnyLine(inner)
                } else {
                    Cond::AllLines(inner)
                })
            }
            Condition::Row(row) => self.row(row, entity),
        }
    }

    fn resolve(&mut self, name: &str, entity: Entity) -> Option<Resolved> {
        if let Some(attr) = name.strip_prefix("custom.").filter(|a| !a.is_empty()) {
            if !self.text_len(Some(name), attr) {
                return None;
            }
            return Some(Resolved {
                get: Get::Custom(attr.into()),
                ty: None,
                def: None,
            });
        }
        match field::lookup(entity, name) {
            Some(def) => Some(Resolved {
                get: Get::Known(def),
                ty: Some(def.info.ty),
                def: Some(def),
            }),
            None => {
                self.problem(Some(name), RuleProblemKind::UnknownField(entity));
                None
            }
        }
    }

    fn row(&mut self, row: &Row, entity: Entity) -> Option<Cond> {
        let name = row.field.as_str();
        let resolved = self.resolve(name, entity)?;
        let op = row.operator;
        let values: &[Value] = match (&row.value, op) {
            (Some(_), op) if op.takes_no_value() => {
                self.problem(Some(name), RuleProblemKind::UnexpectedValue(op));
                return None;
            }
            (None, op) if op.takes_no_value() => &[],
            (None, op) => {
                self.problem(Some(name), RuleProblemKind::MissingValue(op));
                return None;
            }
            (Some(Operand::One(_)), op) if op.takes_list() => {
                self.problem(Some(name), RuleProblemKind::ExpectedList(op));
                return None;
            }
            (Some(Operand::Many(_)), op) if !op.takes_list() => {
                self.problem(Some(name), RuleProblemKind::ExpectedOneValue(op));
                return None;
            }
            (Some(Operand::One(v)), _) => std::slice::from_ref(v),
            (Some(Operand::Many(vs)), _) => {
                if vs.is_empty() {
                    self.problem(Some(name), RuleProblemKind::EmptyList);
                    return None;
                }
                if vs.len() > MAX_LIST {
                    self.problem(Some(name), RuleProblemKind::ListTooLong(vs.len()));
                    return None;
                }
                vs
            }
        };
        // A custom attribute takes the type of the first value it is compared with.
        let ty = resolved
            .ty
            .or_else(|| values.first().and_then(value_type))
            .unwrap_or(FieldType::Text);
        if op.is_ordering() && matches!(ty, FieldType::Lookup | FieldType::Flag) {
            self.problem(
                Some(name),
                RuleProblemKind::OrderingOnUnordered {
                    operator: op,
                    field: ty,
                },
            );
            return None;
        }
        let options = resolved.def.map_or(&[][..], |d| d.info.options);
        let mut lits = Vec::with_capacity(values.len());
        let mut ok = true;
        for v in values {
            match self.literal(name, v, ty, options) {
                Some(l) => lits.push(l),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        if let Get::Known(def) = resolved.get {
            return Some(Cond::Row(specialize(def, op, lits)));
        }
        let Get::Custom(name) = resolved.get else {
            return None;
        };
        let one = || lits[0].clone();
        let op = match op {
            Operator::ContainsData => Op::Present,
            Operator::DoesNotContainData => Op::Absent,
            Operator::Equals => Op::Eq(one()),
            Operator::NotEquals => Op::Ne(one()),
            Operator::GreaterThan => Op::Gt(one()),
            Operator::GreaterOrEqual => Op::Ge(one()),
            Operator::LessThan => Op::Lt(one()),
            Operator::LessOrEqual => Op::Le(one()),
            Operator::In => Op::In(lits.clone().into()),
            Operator::NotIn => Op::NotIn(lits.clone().into()),
        };
        Some(Cond::Custom(name, op))
    }

    /// Checks a value against the field's type and options.
    fn literal(
        &mut self,
        field: &str,
        value: &Value,
        ty: FieldType,
        options: &'static [&'static str],
    ) -> Option<Lit> {
        let mismatch = |what| RuleProblemKind::TypeMismatch {
            field: ty,
            value: what,
        };
        let kind = match value {
            Value::Null => RuleProblemKind::NullValue,
            Value::Number(n) if ty == FieldType::Number => return Some(Lit::Number(*n)),
            Value::Number(_) => mismatch("a number"),
            Value::Bool(b) if ty == FieldType::Flag => return Some(Lit::Bool(*b)),
            Value::Bool(_) => mismatch("true/false"),
            Value::Text(_) if matches!(ty, FieldType::Number | FieldType::Flag) => mismatch("text"),
            Value::Text(t) if !self.text_len(Some(field), t) => return None,
            Value::Text(t) if !options.is_empty() && !options.contains(&t.as_str()) => {
                RuleProblemKind::UnknownOption {
                    value: t.clone(),
                    allowed: options,
                }
            }
            Value::Text(t) if ty == FieldType::Date && !is_iso_date(t) => {
                RuleProblemKind::InvalidDate(t.clone())
            }
            Value::Text(t) => return Some(Lit::Text(t.as_str().into())),
        };
        self.problem(Some(field), kind);
        None
    }

    fn assign(&mut self, action: &SetValue, entity: Entity) -> Option<Assign> {
        let name = action.field.as_str();
        let resolved = self.resolve(name, entity)?;
        let Some(def) = resolved.def else {
            // A custom attribute takes any value; null removes it.
            return match &action.value {
                Value::Text(t) if !self.text_len(Some(name), t) => None,
                _ => match resolved.get {
                    Get::Custom(attr) => Some(Assign::Custom(attr, action.value.clone())),
                    Get::Known(_) => None,
                },
            };
        };
        let Some(set) = def.set else {
            self.problem(Some(name), RuleProblemKind::ReadOnly);
            return None;
        };
        if matches!(action.value, Value::Null) {
            if !def.info.nullable {
                self.problem(Some(name), RuleProblemKind::NotNullable);
                return None;
            }
            return Some(Assign::Known(set, None));
        }
        let lit = self.literal(name, &action.value, def.info.ty, def.info.options)?;
        Some(Assign::Known(set, Some(lit)))
    }
}

/// The compiled row of a well-known field; literals were checked against its type.
fn specialize(def: &'static field::FieldDef, op: Operator, lits: Vec<Lit>) -> RowFn {
    let texts = |lits: Vec<Lit>| -> Box<[Box<str>]> {
        lits.into_iter()
            .filter_map(|l| match l {
                Lit::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    };
    let numbers = |lits: Vec<Lit>| -> Box<[Decimal]> {
        lits.into_iter()
            .filter_map(|l| match l {
                Lit::Number(n) => Some(n),
                _ => None,
            })
            .collect()
    };
    let number = def.info.ty == FieldType::Number;
    let cmp = match op {
        Operator::Equals => Cmp::Eq,
        Operator::NotEquals => Cmp::Ne,
        Operator::GreaterThan => Cmp::Gt,
        Operator::GreaterOrEqual => Cmp::Ge,
        Operator::LessThan => Cmp::Lt,
        Operator::LessOrEqual => Cmp::Le,
        Operator::ContainsData | Operator::DoesNotContainData | Operator::In | Operator::NotIn => {
            Cmp::Eq
        }
    };
    let row = match op {
        Operator::ContainsData => RowOp::Present(false),
        Operator::DoesNotContainData => RowOp::Present(true),
        Operator::In | Operator::NotIn if number => {
            RowOp::NumberIn(numbers(lits), op == Operator::NotIn)
        }
        Operator::In | Operator::NotIn => RowOp::TextIn(texts(lits), op == Operator::NotIn),
        _ => match lits.into_iter().next() {
            Some(Lit::Number(n)) => RowOp::Number(cmp, n),
            Some(Lit::Text(t)) => RowOp::Text(cmp, t),
            // Type checks admit no other value; a mismatch compares like a missing value.
            _ => RowOp::TextIn(Box::new([]), cmp == Cmp::Ne),
        },
    };
    RowFn {
        field: def.info.name,
        test: (def.row)(row),
    }
}

fn value_type(v: &Value) -> Option<FieldType> {
    match v {
        Value::Null => None,
        Value::Bool(_) => Some(FieldType::Flag),
        Value::Number(_) => Some(FieldType::Number),
        Value::Text(_) => Some(FieldType::Text),
    }
}

/// `YYYY-MM-DD`, a real calendar date.
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use super::is_iso_date;

    #[test]
    fn dates_follow_the_calendar() {
        for ok in ["2024-02-29", "2000-02-29", "2026-12-31", "2026-04-30"] {
            assert!(is_iso_date(ok), "{ok}");
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-04-31",
            "2026-00-10",
            "2026-1-01",
        ] {
            assert!(!is_iso_date(bad), "{bad}");
        }
    }
}
