//! The walk along every path of a flow: what each path has seen, and the warnings each step
//! and element gives.

use std::collections::HashSet;

use super::filters::{Admits, admits, overlap, unrouted};
use super::{Context, Verdict, Warning, WarningKind};
use crate::event::EventKind;
use crate::flow::{ActionStep, Flow, Sequence, SplitterStep, Step, StepPath};
use crate::orchestration::ActionKind;
use crate::policy::PolicyKind;

/// The warnings of `flow`, in step order, the flows-sharing-a-trigger ones last.
pub(super) fn warnings(flow: &Flow, cx: &Context<'_>) -> Vec<Warning> {
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
