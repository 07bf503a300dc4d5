//! Checking a policy document and compiling it for evaluation.

use std::collections::HashSet;

use super::compiled::{Assign, CompiledRule, Cond, Op, RulePolicy, Rules};
use super::document::{Condition, Operand, Operator, PolicyDocument, Row, SetValue};
use super::field::{self, FieldType};
use super::problem::{PolicyError, RuleProblem, RuleProblemKind};
use super::record::Lit;
use super::row::{Cmp, RowFn, RowOp};
use super::{MAX_CONDITIONS, MAX_LIST, MAX_RULES, MAX_TEXT};
use crate::document::{Decimal, Entity, Value};
use crate::limits::Limits;
use crate::policy::PolicyKind;

impl PolicyDocument {
    /// Checks the policy and compiles it for evaluation, its conditions nested at most as
    /// deep as the default [`Limits::max_nesting`]. The error lists every problem, each
    /// naming the rule and field.
    pub fn compile(&self) -> Result<RulePolicy, PolicyError> {
        self.compile_with(&Limits::default())
    }

    /// [`compile`](Self::compile) with the nesting bound of `limits`, as an engine
    /// compiles with its own limits.
    pub fn compile_with(&self, limits: &Limits) -> Result<RulePolicy, PolicyError> {
        compile(self, None, limits)
    }
}

/// How a resolved field is read.
enum Get {
    Known(&'static field::FieldDef),
    Custom(Box<str>),
}

/// Checks and compiles a document; `version` is the published version it stands for.
pub(crate) fn compile(
    doc: &PolicyDocument,
    version: Option<u32>,
    limits: &Limits,
) -> Result<RulePolicy, PolicyError> {
    let mut c = Compiler {
        problems: Vec::new(),
        rule: None,
        conditions: 0,
        too_many_reported: false,
        max_nesting: limits.max_nesting,
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
    Ok(Rules {
        document: doc.clone(),
        version,
        rules: rules.into(),
    }
    .into_policy())
}

struct Compiler {
    problems: Vec<RuleProblem>,
    rule: Option<String>,
    conditions: usize,
    too_many_reported: bool,
    max_nesting: usize,
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
        if depth > self.max_nesting {
            self.problem(None, RuleProblemKind::TooDeep(self.max_nesting));
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
        for ok in [
            "2024-02-29",
            "2000-02-29",
            "2026-02-28",
            "2026-12-31",
            "2026-04-30",
        ] {
            assert!(is_iso_date(ok), "{ok}");
        }
        for bad in [
            "2024-02-291",
            "2024-02x29",
            "2024x02-29",
            "2024-02-29T00:00:00Z",
            "2024-",
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
