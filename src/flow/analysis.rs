//! Static analysis: what a flow may do that its author likely did not mean.
//!
//! [`validate`](super::validate) rejects flows that cannot run. [`analyze`] looks further and
//! reports [`Warning`]s about flows that run but may surprise: Splitter branches that can take
//! the same record, records that take no branch, a Send to Fulfillment with no fulfillment
//! determination before it, a Condition whose `no` path can never run, a step waiting for an
//! event nothing raises, and two flows starting on the same event for the same orders.
//!
//! Some questions depend on what filter policies admit. The analysis reads declarative rule
//! policies ([`PolicyDocument`]) where their rules allow: a filter whose rules compare a field
//! with `equals` or `in` against literal values (inside `and` groups that only add more rows)
//! admits only those values, so two such filters on the same field overlap exactly when their
//! values intersect. Anything else — a policy registered in code, an `or`, an ordering
//! operator, filters on different fields — leaves the question open, and the warning says so
//! ([`Verdict::CannotTell`]). A warning is reported when the answer is [`Verdict::Yes`] or
//! [`Verdict::CannotTell`], never when it is [`Verdict::No`].
//!
//! A few decisions, since the engine cannot see inside host code:
//!
//! - A Custom action may create fulfillment orders, so it counts as fulfillment determination,
//!   and it may raise "Creation of Fulfillment Order has Succeeded". Other events a custom
//!   action raises are invisible here: list them among the [`Context::external_events`].
//! - A step that waits for "Creation of Fulfillment Order has Succeeded" (or follows one that
//!   does) has a fulfillment order to send.
//! - Only Validate Order Header and Validate Order Line without execution policies count as
//!   never failing; every other action may fail.
//!
//! ```
//! use indexmap::IndexMap;
//! use orderflow::flow::analysis::{Context, WarningKind, analyze};
//! use orderflow::flow::{ActionStep, Flow};
//! use orderflow::{ActionKind, EventKind};
//!
//! let flow = Flow::builder("Ship")
//!     .steps(|s| {
//!         s.action(
//!             ActionStep::new("Validate", ActionKind::ValidateOrderHeader)
//!                 .input_event(EventKind::NEW_ORDER),
//!         )
//!         .action(ActionStep::new("Send", ActionKind::SendToFulfillment).provider("3PL"))
//!     })
//!     .build()
//!     .unwrap();
//!
//! let policies = IndexMap::new();
//! let warnings = analyze(&flow, &Context::new(&policies, &[], &[]));
//! assert_eq!(warnings.len(), 1);
//! assert_eq!(warnings[0].kind, WarningKind::SendWithoutFulfillmentDetermination);
//! assert!(warnings[0].to_string().starts_with("Send: Send to Fulfillment can run"));
//! ```

use std::collections::HashSet;
use std::fmt;

use indexmap::IndexMap;

use super::{ActionStep, Flow, Sequence, SplitterStep, Step, StepPath};
use crate::document::{Entity, Value};
use crate::event::EventKind;
use crate::limits::Limits;
use crate::orchestration::ActionKind;
use crate::policy::PolicyKind;
use crate::rules::{Condition, Operand, Operator, PolicyDocument, fields};

/// What the analysis knows besides the flow itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Rule policies by name (code-registered policies are opaque: analysis says "cannot
    /// tell").
    pub policies: &'a IndexMap<String, PolicyDocument>,
    /// The other published flows, for the "two flows start on the same event" check. A flow
    /// of the analyzed flow's name is skipped.
    pub flows: &'a [Flow],
    /// Event kinds the host says come from outside (e.g. "Shipped").
    pub external_events: &'a [EventKind],
    /// How deep the analysis looks into elements and conditions: an engine's
    /// [`Limits::max_nesting`], the default one unless [`with_limits`](Self::with_limits)
    /// says otherwise.
    pub max_nesting: usize,
}

impl<'a> Context<'a> {
    /// A context of rule policies, other flows and events the host submits.
    pub fn new(
        policies: &'a IndexMap<String, PolicyDocument>,
        flows: &'a [Flow],
        external_events: &'a [EventKind],
    ) -> Self {
        Self {
            policies,
            flows,
            external_events,
            max_nesting: Limits::default().max_nesting,
        }
    }

    /// Looks as deep as `limits` let a document nest.
    pub fn with_limits(mut self, limits: &Limits) -> Self {
        self.max_nesting = limits.max_nesting;
        self
    }
}

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

/// Analyzes a flow; see the [module docs](self). Returns the warnings in step order (the
/// flows-sharing-a-trigger warnings last); empty when there is nothing to report. Never
/// panics: elements and conditions nested deeper than the context's bound
/// ([`Context::max_nesting`]) are not looked into.
pub fn analyze(flow: &Flow, cx: &Context<'_>) -> Vec<Warning> {
    let mut raised = HashSet::new();
    raises(&flow.steps, &mut raised, cx.max_nesting, 0);
    for other in cx.flows {
        raises(&other.steps, &mut raised, cx.max_nesting, 0);
    }
    let mut a = Analyzer {
        cx,
        raised,
        warnings: Vec::new(),
    };
    let start = State {
        prev: Prev::None,
        determined: false,
    };
    a.sequence(&flow.steps, &StepPath::default(), start, 0);
    a.shared_triggers(flow);
    a.warnings
}

/// Adds every event an action of `steps` may raise.
fn raises(steps: &Sequence, out: &mut HashSet<EventKind>, max: usize, depth: usize) {
    if depth > max {
        return;
    }
    for step in steps {
        match step {
            Step::Action(a) => {
                match (a.kind.succeeded_event(), a.kind.failed_event()) {
                    (Some(ok), Some(failed)) => {
                        out.insert(ok);
                        out.insert(failed);
                    }
                    _ => {
                        out.insert(EventKind::new(format!("{} has Succeeded", a.name)));
                        out.insert(EventKind::new(format!("{} has Failed", a.name)));
                    }
                }
                if determines(a.kind) {
                    out.insert(EventKind::FULFILLMENT_ORDER_CREATED);
                }
                if let Some(e) = &a.on_failure {
                    out.insert(e.clone());
                }
            }
            Step::Condition(c) | Step::ConditionMerge(c) => {
                raises(&c.yes, out, max, depth + 1);
                raises(&c.no, out, max, depth + 1);
            }
            Step::Splitter(s) | Step::SplitterMerge(s) => {
                for seq in s.branches.values() {
                    raises(seq, out, max, depth + 1);
                }
            }
        }
    }
}

/// Whether an action of this kind may create fulfillment orders.
fn determines(kind: ActionKind) -> bool {
    matches!(
        kind,
        ActionKind::AssignFulfillmentSource | ActionKind::SendToDom | ActionKind::Custom
    )
}

/// Whether a step of this kind and configuration always succeeds.
fn cannot_fail(a: &ActionStep) -> bool {
    matches!(
        a.kind,
        ActionKind::ValidateOrderHeader | ActionKind::ValidateOrderLine
    ) && a.execution_policies.is_empty()
}

/// What a path has seen so far.
#[derive(Debug, Clone, Copy)]
struct State<'f> {
    /// What a Condition here routes on.
    prev: Prev<'f>,
    /// Whether fulfillment orders may exist on every way to here.
    determined: bool,
}

#[derive(Debug, Clone, Copy)]
enum Prev<'f> {
    None,
    Action(&'f ActionStep),
    /// A merge's outcome, which may be a failure.
    Merge,
}

#[derive(Debug)]
struct Analyzer<'c, 'a> {
    cx: &'c Context<'a>,
    raised: HashSet<EventKind>,
    warnings: Vec<Warning>,
}

impl<'a> Analyzer<'_, 'a> {
    fn warn(&mut self, path: StepPath, kind: WarningKind) {
        self.warnings.push(Warning { path, kind });
    }

    /// Walks a sequence; returns the state at its end.
    fn sequence<'f>(
        &mut self,
        steps: &'f Sequence,
        at: &StepPath,
        mut st: State<'f>,
        depth: usize,
    ) -> State<'f> {
        if depth > self.cx.max_nesting {
            return st;
        }
        for step in steps {
            let path = at.child(step.name());
            match step {
                Step::Action(a) => {
                    self.action(a, &path, &mut st);
                }
                Step::Condition(c) | Step::ConditionMerge(c) => {
                    if let Prev::Action(prev) = st.prev {
                        if cannot_fail(prev) {
                            self.warn(
                                path.clone(),
                                WarningKind::ConditionAfterInfallibleAction {
                                    action: prev.name.clone(),
                                    kind: prev.kind,
                                },
                            );
                        }
                    }
                    let yes = self.sequence(&c.yes, &path.child("yes"), st, depth + 1);
                    let no = self.sequence(&c.no, &path.child("no"), st, depth + 1);
                    st.determined = yes.determined && no.determined;
                    st.prev = Prev::Merge;
                }
                Step::Splitter(s) | Step::SplitterMerge(s) => {
                    self.splitter(s, &path);
                    let mut determined = true;
                    for (branch, seq) in &s.branches {
                        let end = self.sequence(seq, &path.child(branch), st, depth + 1);
                        determined &= end.determined;
                    }
                    if !s.branches.is_empty() {
                        st.determined = determined;
                    }
                    st.prev = Prev::Merge;
                }
            }
        }
        st
    }

    fn action<'f>(&mut self, a: &'f ActionStep, path: &StepPath, st: &mut State<'f>) {
        for (i, event) in a.input_events.iter().enumerate() {
            if a.input_events[..i].contains(event)
                || *event == EventKind::NEW_ORDER
                || self.cx.external_events.contains(event)
                || self.raised.contains(event)
            {
                continue;
            }
            self.warn(
                path.clone(),
                WarningKind::EventNothingRaises {
                    event: event.clone(),
                },
            );
        }
        if a.input_events
            .contains(&EventKind::FULFILLMENT_ORDER_CREATED)
        {
            st.determined = true;
        }
        if a.kind == ActionKind::SendToFulfillment && !st.determined {
            self.warn(
                path.clone(),
                WarningKind::SendWithoutFulfillmentDetermination,
            );
        }
        if determines(a.kind) {
            st.determined = true;
        }
        st.prev = Prev::Action(a);
    }

    fn splitter(&mut self, s: &SplitterStep, path: &StepPath) {
        let admits: Vec<(&str, Admits<'_>)> = s
            .branches
            .iter()
            .map(|(name, seq)| (name.as_str(), self.branch(seq)))
            .collect();
        for (i, (first, a)) in admits.iter().enumerate() {
            for (second, b) in &admits[i + 1..] {
                let verdict = overlap(a, b);
                if verdict != Verdict::No {
                    self.warn(
                        path.clone(),
                        WarningKind::BranchesOverlap {
                            first: (*first).to_owned(),
                            second: (*second).to_owned(),
                            verdict,
                        },
                    );
                }
            }
        }
        if let Some(kind) = unrouted(admits.iter().map(|(_, a)| a)) {
            self.warn(path.clone(), kind);
        }
    }

    /// What a branch admits: its first action's filter; everything when it opens with no
    /// action (the token passes on whole).
    fn branch(&self, seq: &Sequence) -> Admits<'a> {
        match seq.first() {
            None | Some(Step::Condition(_) | Step::ConditionMerge(_)) => Admits::All,
            Some(Step::Action(a)) => self.filter(a.filter.as_deref()),
            Some(Step::Splitter(_) | Step::SplitterMerge(_)) => Admits::Opaque,
        }
    }

    fn filter(&self, name: Option<&str>) -> Admits<'a> {
        let Some(name) = name else {
            return Admits::All;
        };
        match self.cx.policies.get(name) {
            Some(doc) if doc.kind == PolicyKind::Filter => admits(doc, self.cx.max_nesting),
            _ => Admits::Opaque,
        }
    }

    /// Warns about other flows starting on an event an entry action of `flow` lists.
    fn shared_triggers(&mut self, flow: &Flow) {
        let mut mine = Vec::new();
        entries(
            &flow.steps,
            &StepPath::default(),
            &mut mine,
            self.cx.max_nesting,
            0,
        );
        let cx = self.cx;
        for other in cx.flows.iter().filter(|o| o.name != flow.name) {
            let mut theirs = Vec::new();
            entries(
                &other.steps,
                &StepPath::default(),
                &mut theirs,
                self.cx.max_nesting,
                0,
            );
            for (path, entry) in &mine {
                let ours = self.filter(entry.filter.as_deref());
                for (i, event) in entry.input_events.iter().enumerate() {
                    if entry.input_events[..i].contains(event) {
                        continue;
                    }
                    let verdict = theirs
                        .iter()
                        .filter(|(_, t)| t.input_events.contains(event))
                        .map(|(_, t)| overlap(&ours, &self.filter(t.filter.as_deref())))
                        .fold(Verdict::No, worse);
                    if verdict != Verdict::No {
                        self.warn(
                            path.clone(),
                            WarningKind::FlowsShareTrigger {
                                flow: other.name.clone(),
                                event: event.clone(),
                                verdict,
                            },
                        );
                    }
                }
            }
        }
    }
}

/// The more alarming of two verdicts.
fn worse(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::Yes, _) | (_, Verdict::Yes) => Verdict::Yes,
        (Verdict::CannotTell, _) | (_, Verdict::CannotTell) => Verdict::CannotTell,
        _ => Verdict::No,
    }
}

/// The entry actions of a sequence (reached from its start without passing another action),
/// with their paths.
fn entries<'f>(
    steps: &'f Sequence,
    at: &StepPath,
    out: &mut Vec<(StepPath, &'f ActionStep)>,
    max: usize,
    depth: usize,
) {
    if depth > max {
        return;
    }
    let Some(step) = steps.first() else {
        return;
    };
    let path = at.child(step.name());
    match step {
        Step::Action(a) => out.push((path, a)),
        Step::Condition(c) | Step::ConditionMerge(c) => {
            entries(&c.yes, &path.child("yes"), out, max, depth + 1);
            entries(&c.no, &path.child("no"), out, max, depth + 1);
        }
        Step::Splitter(s) | Step::SplitterMerge(s) => {
            for (branch, seq) in &s.branches {
                entries(seq, &path.child(branch), out, max, depth + 1);
            }
        }
    }
}

/// Field → the values a filter admits on it.
type FieldSets<'p> = Vec<(&'p str, Vec<&'p Value>)>;

/// What a filter admits, as far as the analysis can read it.
#[derive(Debug)]
enum Admits<'p> {
    /// Every record.
    All,
    /// Records of `entity` whose fields hold one of the listed values, and which pass the
    /// conditions the analysis does not read (`extra`).
    Sets {
        entity: Entity,
        /// Field → the values admitted (already intersected when a field is tested twice).
        fields: FieldSets<'p>,
        /// Whether other conditions restrict further.
        extra: bool,
    },
    /// A code policy, or rules the analysis does not read.
    Opaque,
}

/// Reads a filter policy: admitted when every rule's condition holds.
fn admits(doc: &PolicyDocument, max: usize) -> Admits<'_> {
    let mut sets: FieldSets<'_> = Vec::new();
    let mut extra = false;
    for rule in &doc.rules {
        if let Some(c) = &rule.condition {
            conjuncts(c, doc.entity, &mut sets, &mut extra, max, 1);
        }
    }
    if sets.is_empty() && !extra {
        return Admits::All;
    }
    Admits::Sets {
        entity: doc.entity,
        fields: sets,
        extra,
    }
}

/// Adds the `equals`/`in` rows of a conjunction to `sets`; anything else sets `extra`.
fn conjuncts<'p>(
    c: &'p Condition,
    entity: Entity,
    sets: &mut FieldSets<'p>,
    extra: &mut bool,
    max: usize,
    depth: usize,
) {
    if depth > max {
        *extra = true;
        return;
    }
    match c {
        Condition::And(items) => {
            for item in items {
                conjuncts(item, entity, sets, extra, max, depth + 1);
            }
        }
        Condition::Row(row) => {
            let values: Vec<&Value> = match (row.operator, &row.value) {
                (Operator::Equals | Operator::In, Some(Operand::One(v))) => vec![v],
                (Operator::In, Some(Operand::Many(vs))) => vs.iter().collect(),
                _ => {
                    *extra = true;
                    return;
                }
            };
            if values.iter().any(|v| matches!(v, Value::Null)) {
                *extra = true;
                return;
            }
            let options = options(entity, &row.field);
            let values = values.into_iter().filter(|v| {
                options.is_empty() || matches!(v, Value::Text(t) if options.contains(&t.as_str()))
            });
            match sets.iter_mut().find(|(f, _)| *f == row.field) {
                Some((_, have)) => {
                    let values: Vec<&Value> = values.collect();
                    have.retain(|v| values.contains(v));
                }
                None => {
                    let mut unique: Vec<&Value> = Vec::new();
                    for v in values {
                        if !unique.contains(&v) {
                            unique.push(v);
                        }
                    }
                    sets.push((&row.field, unique));
                }
            }
        }
        Condition::Or(_) | Condition::AnyLine(_) | Condition::AllLines(_) => *extra = true,
    }
}

/// The options of an option field of `entity` (empty for any value).
fn options(entity: Entity, field: &str) -> &'static [&'static str] {
    fields()
        .find(|f| f.entity == entity && f.name == field)
        .map_or(&[], |f| f.options)
}

/// Whether the values of a field can be exhausted by listing them: an option field that is
/// never empty, whose options are all in `values`.
fn covers(entity: Entity, field: &str, values: &[&Value]) -> bool {
    fields()
        .find(|f| f.entity == entity && f.name == field)
        .is_some_and(|f| {
            !f.options.is_empty()
                && !f.nullable
                && f.options
                    .iter()
                    .all(|o| values.iter().any(|v| matches!(v, Value::Text(t) if t == o)))
        })
}

/// Whether one record can pass both filters.
fn overlap(a: &Admits<'_>, b: &Admits<'_>) -> Verdict {
    let empty = |x: &Admits<'_>| matches!(x, Admits::Sets { fields, .. } if fields.iter().any(|(_, v)| v.is_empty()));
    if empty(a) || empty(b) {
        return Verdict::No;
    }
    match (a, b) {
        (Admits::All, _) | (_, Admits::All) => Verdict::Yes,
        (
            Admits::Sets {
                entity: ea,
                fields: fa,
                extra: xa,
            },
            Admits::Sets {
                entity: eb,
                fields: fb,
                extra: xb,
            },
        ) if ea == eb => {
            let mut shared = false;
            for (field, va) in fa {
                if let Some((_, vb)) = fb.iter().find(|(f, _)| f == field) {
                    shared = true;
                    if !va.iter().any(|v| vb.contains(v)) {
                        return Verdict::No;
                    }
                }
            }
            if shared && !xa && !xb {
                Verdict::Yes
            } else {
                Verdict::CannotTell
            }
        }
        _ => Verdict::CannotTell,
    }
}

/// Whether some record passes no branch's filter; `None` when every record takes one.
fn unrouted<'x, 'p: 'x>(branches: impl Iterator<Item = &'x Admits<'p>>) -> Option<WarningKind> {
    let cannot_tell = WarningKind::UnroutedRecords {
        verdict: Verdict::CannotTell,
        entity: None,
        field: None,
        values: Vec::new(),
    };
    let mut all: Vec<(&FieldSets<'_>, bool)> = Vec::new();
    let mut entity = None;
    let mut opaque = false;
    for b in branches {
        match b {
            Admits::All => return None,
            Admits::Opaque => opaque = true,
            Admits::Sets {
                entity: e,
                fields,
                extra,
            } => {
                if entity.is_some_and(|seen| seen != *e) {
                    opaque = true;
                }
                entity = Some(*e);
                all.push((fields, *extra));
            }
        }
    }
    if opaque {
        return Some(cannot_tell);
    }
    let (Some(entity), Some((first, _))) = (entity, all.first()) else {
        return None;
    };
    // A field every branch tests: a value none of them lists passes no branch.
    let mut covered_single = None;
    for (field, _) in first.iter() {
        let mut union: Vec<&Value> = Vec::new();
        let mut everywhere = true;
        for (fields, _) in &all {
            match fields.iter().find(|(f, _)| f == field) {
                Some((_, vs)) => {
                    for v in vs {
                        if !union.contains(v) {
                            union.push(v);
                        }
                    }
                }
                None => everywhere = false,
            }
        }
        if !everywhere {
            continue;
        }
        if !covers(entity, field, &union) {
            return Some(WarningKind::UnroutedRecords {
                verdict: Verdict::Yes,
                entity: Some(entity),
                field: Some((*field).to_owned()),
                values: union.iter().map(|v| show(v)).collect(),
            });
        }
        covered_single = Some(*field);
    }
    // Every branch tests only that one field, and together they list all its options.
    let decided = covered_single.is_some_and(|field| {
        all.iter()
            .all(|(fields, extra)| !extra && fields.len() == 1 && fields[0].0 == field)
    });
    if decided { None } else { Some(cannot_tell) }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "nothing".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Text(t) => t.clone(),
    }
}
