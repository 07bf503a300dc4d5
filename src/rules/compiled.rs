//! Compiled rule policies: a filter or an execution policy that reads fields directly.

use std::cmp::Ordering;
use std::sync::Arc;

use super::document::PolicyDocument;
use super::record::{Lit, Rec, Scalar, Setter, custom_mut, value_scalar};
use super::row::RowFn;
use crate::document::{Entity, RecordMut, RecordRef, Value};
use crate::policy::{Check, Criticality, ExecutionPolicy, FilterPolicy, Policy, PolicyKind};

/// A compiled rule policy: a filter ([`RuleFilter`]) or an execution policy
/// ([`RuleExecution`]), as its document's `type` says. Each reads fields through accessors
/// chosen at compile time.
///
/// Made by [`PolicyDocument::compile`] or by an engine when it publishes a policy; an engine
/// registers one as the [`Policy`] it converts into.
#[derive(Debug, Clone)]
pub enum RulePolicy {
    /// A filter policy's rules.
    Filter(Arc<RuleFilter>),
    /// An execution policy's rules.
    Execution(Arc<RuleExecution>),
}

impl RulePolicy {
    fn rules(&self) -> &Rules {
        match self {
            Self::Filter(p) => &p.0,
            Self::Execution(p) => &p.0,
        }
    }

    /// The document this policy was compiled from.
    pub fn document(&self) -> &PolicyDocument {
        &self.rules().document
    }

    /// The published version this was compiled from (`None` when compiled directly).
    pub fn version(&self) -> Option<u32> {
        self.rules().version
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.document().name
    }

    /// The records it applies to.
    pub fn entity(&self) -> Entity {
        self.document().entity
    }

    /// Filter or execution.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Self::Filter(_) => PolicyKind::Filter,
            Self::Execution(_) => PolicyKind::Execution,
        }
    }

    /// The filter, if this is one.
    pub fn as_filter(&self) -> Option<&RuleFilter> {
        match self {
            Self::Filter(p) => Some(p),
            Self::Execution(_) => None,
        }
    }

    /// The execution policy, if this is one.
    pub fn as_execution(&self) -> Option<&RuleExecution> {
        match self {
            Self::Filter(_) => None,
            Self::Execution(p) => Some(p),
        }
    }

    /// The filter, if this is one.
    pub fn into_filter(self) -> Option<Arc<RuleFilter>> {
        match self {
            Self::Filter(p) => Some(p),
            Self::Execution(_) => None,
        }
    }

    /// The execution policy, if this is one.
    pub fn into_execution(self) -> Option<Arc<RuleExecution>> {
        match self {
            Self::Filter(_) => None,
            Self::Execution(p) => Some(p),
        }
    }
}

impl From<RulePolicy> for Policy {
    fn from(policy: RulePolicy) -> Self {
        match policy {
            RulePolicy::Filter(p) => Self::Filter(p),
            RulePolicy::Execution(p) => Self::Execution(p),
        }
    }
}

/// A compiled filter policy: admits a record when every rule's condition holds.
#[derive(Debug)]
pub struct RuleFilter(Rules);

/// A compiled execution policy: sets values where rules with actions hold, and fails on the
/// first check that does not.
#[derive(Debug)]
pub struct RuleExecution(Rules);

impl RuleFilter {
    /// The document this policy was compiled from.
    pub fn document(&self) -> &PolicyDocument {
        &self.0.document
    }
}

impl RuleExecution {
    /// The document this policy was compiled from.
    pub fn document(&self) -> &PolicyDocument {
        &self.0.document
    }
}

/// What both kinds hold: the document and its compiled rules.
#[derive(Debug)]
pub(super) struct Rules {
    pub(super) document: PolicyDocument,
    pub(super) version: Option<u32>,
    pub(super) rules: Box<[CompiledRule]>,
}

impl Rules {
    /// The policy of the document's kind.
    pub(super) fn into_policy(self) -> RulePolicy {
        match self.document.kind {
            PolicyKind::Filter => RulePolicy::Filter(Arc::new(RuleFilter(self))),
            PolicyKind::Execution => RulePolicy::Execution(Arc::new(RuleExecution(self))),
        }
    }
}

#[derive(Debug)]
pub(super) struct CompiledRule {
    pub(super) condition: Option<Cond>,
    pub(super) actions: Box<[Assign]>,
    pub(super) reason: Box<str>,
}

#[derive(Debug)]
pub(super) enum Cond {
    And(Box<[Self]>),
    Or(Box<[Self]>),
    AnyLine(Box<Self>),
    AllLines(Box<Self>),
    /// A row on a well-known field, compiled to a closure.
    Row(RowFn),
    /// A row on a custom attribute, read by name.
    Custom(Box<str>, Op),
}

#[derive(Debug)]
pub(super) enum Op {
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
pub(super) enum Assign {
    Known(Setter, Option<Lit>),
    Custom(Box<str>, Value),
}

impl FilterPolicy for RuleFilter {
    fn name(&self) -> &str {
        &self.0.document.name
    }
    fn entity(&self) -> Entity {
        self.0.document.entity
    }
    fn admits(&self, record: RecordRef<'_>) -> bool {
        let rec = Rec::of(record);
        self.0
            .rules
            .iter()
            .all(|r| r.condition.as_ref().is_none_or(|c| c.holds(rec)))
    }
}

impl ExecutionPolicy for RuleExecution {
    fn name(&self) -> &str {
        &self.0.document.name
    }
    fn entity(&self) -> Entity {
        self.0.document.entity
    }
    fn criticality(&self) -> Criticality {
        self.0.document.criticality
    }
    fn execute(&self, mut record: RecordMut<'_>) -> Check {
        let mut failed: Option<&CompiledRule> = None;
        for rule in &self.0.rules {
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
                let custom = custom_mut(record);
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
