//! The reference interpreter of the token machine's model test (DESIGN.md §3, rules 3–7 and
//! 9): random valid flow trees, the orders run through them, and what the rules predict.
//! Shared by the engine's model test (`tests/model.rs`) and the machine's own (it runs the
//! machine directly, in `src/engine/machine/model.rs`).

// Shared by two test crates, each of which uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use orderflow::document::{Entity, Order, OrderLine, RecordId, RecordRef, Value};
use orderflow::flow::{ActionStep, SequenceBuilder};
use orderflow::{EventKind, Outcome};
use proptest::prelude::*;

/// Orders run through each generated flow (each with its own outcomes and filter results).
pub(crate) const ORDERS: usize = 3;
/// Lines of each order, for line filters.
pub(crate) const LINES: [&str; 2] = ["L1", "L2"];
/// Every line selected.
pub(crate) const ALL: u8 = 0b11;

/// What a filter admits, per order.
#[derive(Debug, Clone)]
pub(crate) struct FilterGen {
    /// Filter on order lines (per line) instead of the order header.
    pub(crate) lines: bool,
    /// Order-level answer, per order.
    pub(crate) order: [bool; ORDERS],
    /// Line-level answers, per order and line.
    pub(crate) line: [[bool; 2]; ORDERS],
}

/// A generated step. Names are given by [`normalize`].
#[derive(Debug, Clone)]
pub(crate) enum G {
    Action {
        name: String,
        ok: [bool; ORDERS],
        filter: Option<FilterGen>,
        /// Used when the action opens a Splitter branch and so must have a filter.
        spare: FilterGen,
    },
    Cond {
        name: String,
        merge: bool,
        yes: Vec<Self>,
        no: Vec<Self>,
    },
    Split {
        name: String,
        merge: bool,
        tolerate: bool,
        branches: Vec<Vec<Self>>,
    },
}

pub(crate) fn filter_gen() -> impl Strategy<Value = FilterGen> {
    (
        prop::bool::weighted(0.4),
        prop::array::uniform3(prop::bool::weighted(0.75)),
        prop::array::uniform3(prop::array::uniform2(prop::bool::weighted(0.7))),
    )
        .prop_map(|(lines, order, line)| FilterGen { lines, order, line })
}

pub(crate) fn action_gen() -> impl Strategy<Value = G> {
    (
        prop::array::uniform3(prop::bool::weighted(0.8)),
        prop::option::weighted(0.3, filter_gen()),
        filter_gen(),
    )
        .prop_map(|(ok, filter, spare)| G::Action {
            name: String::new(),
            ok,
            filter,
            spare,
        })
}

pub(crate) fn step_gen() -> impl Strategy<Value = G> {
    action_gen().prop_recursive(4, 48, 4, |inner| {
        let seq = prop::collection::vec(inner, 0..4);
        prop_oneof![
            (any::<bool>(), seq.clone(), seq.clone()).prop_map(|(merge, yes, no)| G::Cond {
                name: String::new(),
                merge,
                yes,
                no,
            }),
            (
                any::<bool>(),
                prop::bool::weighted(0.25),
                prop::collection::vec(seq, 1..4)
            )
                .prop_map(|(merge, tolerate, branches)| G::Split {
                    name: String::new(),
                    merge,
                    tolerate,
                    branches,
                }),
        ]
    })
}

/// A flow: an entry action (the trigger, listing "New Order") and the steps after it.
pub(crate) fn flow_gen() -> impl Strategy<Value = Vec<G>> {
    (action_gen(), prop::collection::vec(step_gen(), 0..4)).prop_map(|(entry, rest)| {
        let mut steps = vec![entry];
        steps.extend(rest);
        let mut n = 0;
        normalize(&mut steps, false, &mut n);
        steps
    })
}

/// Makes a generated tree valid: unique names, no step after a Condition or Splitter (such
/// an element becomes its merging form), a filter on every Splitter branch-opening action.
pub(crate) fn normalize(seq: &mut [G], opens_branch: bool, n: &mut usize) {
    let len = seq.len();
    for (i, step) in seq.iter_mut().enumerate() {
        *n += 1;
        let last = i + 1 == len;
        match step {
            G::Action {
                name,
                filter,
                spare,
                ..
            } => {
                *name = format!("a{n}");
                if opens_branch && i == 0 && filter.is_none() {
                    *filter = Some(spare.clone());
                }
            }
            G::Cond {
                name,
                merge,
                yes,
                no,
            } => {
                if !last {
                    *merge = true;
                }
                *name = format!("{}{n}", if *merge { "cm" } else { "c" });
                normalize(yes, false, n);
                normalize(no, false, n);
            }
            G::Split {
                name,
                merge,
                branches,
                ..
            } => {
                if !last {
                    *merge = true;
                }
                *name = format!("{}{n}", if *merge { "sm" } else { "s" });
                for b in branches.iter_mut() {
                    normalize(b, true, n);
                }
            }
        }
    }
}

pub(crate) fn filter_name(step: &str) -> String {
    format!("admit {step}")
}

pub(crate) fn build_seq(mut s: SequenceBuilder, seq: &[G], entry: bool) -> SequenceBuilder {
    for (i, step) in seq.iter().enumerate() {
        s = match step {
            G::Action { name, filter, .. } => {
                let mut a = ActionStep::custom(name.as_str(), "planned");
                if entry && i == 0 {
                    a = a.input_event(EventKind::NEW_ORDER);
                }
                if filter.is_some() {
                    a = a.filter(filter_name(name));
                }
                s.action(a)
            }
            G::Cond {
                name,
                merge,
                yes,
                no,
            } => {
                let y = |b| build_seq(b, yes, false);
                let n = |b| build_seq(b, no, false);
                if *merge {
                    s.condition_merge(name.as_str(), y, n)
                } else {
                    s.condition(name.as_str(), y, n)
                }
            }
            G::Split {
                name,
                merge,
                tolerate,
                branches,
            } => {
                let f = |mut b: orderflow::flow::SplitterBuilder| {
                    for (j, seq) in branches.iter().enumerate() {
                        b = b.branch(format!("b{j}"), |s| build_seq(s, seq, false));
                    }
                    if *merge && *tolerate {
                        b = b.tolerate_failed_branches();
                    }
                    b
                };
                if *merge {
                    s.splitter_merge(name.as_str(), f)
                } else {
                    s.splitter(name.as_str(), f)
                }
            }
        };
    }
    s
}

pub(crate) fn visit<'a>(seq: &'a [G], f: &mut impl FnMut(&'a G)) {
    for step in seq {
        f(step);
        match step {
            G::Action { .. } => {}
            G::Cond { yes, no, .. } => {
                visit(yes, f);
                visit(no, f);
            }
            G::Split { branches, .. } => {
                for b in branches {
                    visit(b, f);
                }
            }
        }
    }
}

/// Names of every step nested inside an element.
pub(crate) fn descendants(step: &G) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |g: &G| {
        out.push(
            match g {
                G::Action { name, .. } | G::Cond { name, .. } | G::Split { name, .. } => name,
            }
            .clone(),
        );
    };
    match step {
        G::Action { .. } => {}
        G::Cond { yes, no, .. } => {
            visit(yes, &mut push);
            visit(no, &mut push);
        }
        G::Split { branches, .. } => {
            for b in branches {
                visit(b, &mut push);
            }
        }
    }
    out
}

pub(crate) fn order_doc(flow: &[G], k: usize) -> Order {
    let mut order = Order::new(format!("O{k}"));
    for l in LINES {
        order = order.with_line(OrderLine::new(l, "P", 1));
    }
    visit(flow, &mut |g| {
        if let G::Action {
            name, ok, filter, ..
        } = g
        {
            order.custom.insert(format!("ok:{name}"), ok[k].into());
            if let Some(f) = filter {
                order
                    .custom
                    .insert(format!("admit:{name}"), f.order[k].into());
                for (li, l) in LINES.iter().enumerate() {
                    order
                        .custom
                        .insert(format!("admit:{name}:{l}"), f.line[k][li].into());
                }
            }
        }
    });
    order
}

// ---------------------------------------------------------------------------------------
// The reference interpreter.

/// How the tokens of a path ended.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Ends {
    /// Tokens that reached the path's exit (a merge's arrival or the end of the flow).
    pub(crate) arrived: u32,
    /// The union of the lines they carried.
    pub(crate) mask: u8,
    /// Tokens that ended Failed.
    pub(crate) failed: u32,
}

impl Ends {
    fn add(&mut self, other: Self) {
        self.arrived += other.arrived;
        self.mask |= other.mask;
        self.failed += other.failed;
    }
}

#[derive(Debug, Default)]
pub(crate) struct Expect {
    /// (step, outcome, selected lines; `None` for Skipped where records are not compared).
    pub(crate) records: Vec<(String, Outcome, Option<u8>)>,
    /// Actions that ran, with their outcome.
    pub(crate) ran: Vec<(String, bool)>,
}

pub(crate) fn lines_admitted(f: &FilterGen, k: usize, mask: u8) -> u8 {
    if f.lines {
        let mut admitted = 0;
        for li in 0..LINES.len() {
            if mask & (1 << li) != 0 && f.line[k][li] {
                admitted |= 1 << li;
            }
        }
        admitted
    } else if f.order[k] {
        mask
    } else {
        0
    }
}

/// Rule 7's merge outcome.
pub(crate) fn merge_outcome(ends: Ends, tolerate: bool) -> Outcome {
    if ends.failed > 0 && !(tolerate && ends.arrived > 0) {
        Outcome::Failed
    } else if ends.arrived > 0 {
        Outcome::Succeeded
    } else {
        Outcome::Skipped
    }
}

/// Walks one path: `last` is the outcome of the previous action (or merge), `mask` the lines.
pub(crate) fn walk(seq: &[G], mut last: Outcome, mut mask: u8, k: usize, x: &mut Expect) -> Ends {
    for (i, step) in seq.iter().enumerate() {
        let condition_next = matches!(seq.get(i + 1), Some(G::Cond { .. }));
        match step {
            G::Action {
                name, ok, filter, ..
            } => {
                // Rule 3: the filter narrows the records; none left ends the path Skipped.
                if let Some(f) = filter {
                    let admitted = lines_admitted(f, k, mask);
                    let none_left = if f.lines { admitted == 0 } else { !f.order[k] };
                    if none_left {
                        x.records.push((name.clone(), Outcome::Skipped, None));
                        return Ends::default();
                    }
                    mask = admitted;
                }
                x.ran.push((name.clone(), ok[k]));
                if ok[k] {
                    x.records
                        .push((name.clone(), Outcome::Succeeded, Some(mask)));
                    last = Outcome::Succeeded;
                } else {
                    x.records.push((name.clone(), Outcome::Failed, Some(mask)));
                    // Rule 4: only a directly following Condition continues, on `no`.
                    if !condition_next {
                        return Ends {
                            failed: 1,
                            ..Ends::default()
                        };
                    }
                    last = Outcome::Failed;
                }
            }
            G::Cond {
                name,
                merge,
                yes,
                no,
            } => {
                // Rule 5: routes on the previous outcome; the element itself succeeds.
                x.records
                    .push((name.clone(), Outcome::Succeeded, Some(mask)));
                let path = if last == Outcome::Succeeded { yes } else { no };
                let ends = walk(path, last, mask, k, x);
                if !*merge {
                    return ends;
                }
                match merged(name, ends, false, mask, condition_next, x) {
                    Some((outcome, m)) => {
                        last = outcome;
                        mask = m;
                    }
                    None => return ends_after_merge(ends, false),
                }
            }
            G::Split {
                name,
                merge,
                tolerate,
                branches,
            } => {
                // Rule 6: every branch is offered the token; filters decide.
                x.records
                    .push((name.clone(), Outcome::Succeeded, Some(mask)));
                let mut ends = Ends::default();
                for b in branches {
                    ends.add(walk(b, last, mask, k, x));
                }
                if !*merge {
                    return ends;
                }
                match merged(name, ends, *tolerate, mask, condition_next, x) {
                    Some((outcome, m)) => {
                        last = outcome;
                        mask = m;
                    }
                    None => return ends_after_merge(ends, *tolerate),
                }
            }
        }
    }
    Ends {
        arrived: 1,
        mask,
        failed: 0,
    }
}

/// Records a merge; `Some((outcome, records))` when the path goes on after it.
pub(crate) fn merged(
    name: &str,
    ends: Ends,
    tolerate: bool,
    input: u8,
    condition_next: bool,
    x: &mut Expect,
) -> Option<(Outcome, u8)> {
    let outcome = merge_outcome(ends, tolerate);
    let records = if ends.arrived > 0 { ends.mask } else { input };
    let shown = (outcome != Outcome::Skipped).then_some(records);
    x.records.push((name.to_owned(), outcome, shown));
    match outcome {
        Outcome::Succeeded => Some((outcome, records)),
        Outcome::Failed if condition_next => Some((outcome, records)),
        // The model cancels nothing.
        Outcome::Failed | Outcome::Skipped | Outcome::Cancelled => None,
    }
}

/// How the path ends when it stops at a merge (Skipped, or Failed with nothing to route it).
pub(crate) fn ends_after_merge(ends: Ends, tolerate: bool) -> Ends {
    match merge_outcome(ends, tolerate) {
        Outcome::Failed => Ends {
            failed: 1,
            ..Ends::default()
        },
        _ => Ends::default(),
    }
}

pub(crate) fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::Succeeded => 0,
        Outcome::Failed => 1,
        Outcome::Skipped => 2,
        Outcome::Cancelled => 3,
    }
}

pub(crate) fn mask_of(records: &[RecordId]) -> Result<u8, String> {
    let mut mask = 0;
    for r in records {
        match r {
            RecordId::Order => {}
            RecordId::Line(id) => {
                let li = LINES
                    .iter()
                    .position(|l| *l == id.as_str())
                    .ok_or_else(|| format!("unknown line {id}"))?;
                mask |= 1 << li;
            }
            other => return Err(format!("unexpected record {other}")),
        }
    }
    Ok(mask)
}

pub(crate) type Multiset = BTreeMap<(String, u8, u8), usize>;

pub(crate) fn multiset(
    records: impl IntoIterator<Item = (String, Outcome, Option<u8>)>,
) -> Multiset {
    let mut m = Multiset::new();
    for (name, outcome, mask) in records {
        *m.entry((name, outcome_code(outcome), mask.unwrap_or(0xFF)))
            .or_default() += 1;
    }
    m
}

/// Every filter the flow names: its action's name and the entity it reads.
pub(crate) fn filters(flow: &[G]) -> Vec<(String, Entity)> {
    let mut filters = Vec::new();
    visit(flow, &mut |g| {
        if let G::Action {
            name,
            filter: Some(f),
            ..
        } = g
        {
            let entity = if f.lines {
                Entity::OrderLine
            } else {
                Entity::Order
            };
            filters.push((name.clone(), entity));
        }
    });
    filters
}

/// What the filter of action `name` admits: what the order's custom fields say for it.
pub(crate) fn admits(name: &str) -> impl Fn(RecordRef<'_>) -> bool + Send + Sync + 'static {
    let order_key = format!("admit:{name}");
    let line_prefix = format!("admit:{name}:");
    move |r| match r {
        RecordRef::Order(o) => o.custom.get(&order_key) == Some(&Value::Bool(true)),
        RecordRef::Line(o, l) => {
            o.custom.get(&format!("{line_prefix}{}", l.id)) == Some(&Value::Bool(true))
        }
        _ => false,
    }
}
