//! Model-based property test of the token machine (DESIGN.md §3, rules 3–7 and 9).
//!
//! proptest generates random, valid flow trees of Custom actions, Conditions,
//! Condition-Merges, Splitters and Splitter-Merges (nested up to depth 4), plus, for each of
//! a few orders, whether every action succeeds and what every filter admits (the order as a
//! whole, or each of its two lines). A small reference interpreter written here walks the
//! tree for each order and predicts:
//!
//! - the multiset of journey records `(step, outcome, records)`: actions Succeeded, Failed or
//!   Skipped; Conditions and Splitter openers Succeeded; each merge's outcome (Failed if an
//!   entered branch failed unless tolerated, Skipped if no branch arrived, else Succeeded)
//!   carrying the union of the records that arrived;
//! - how often each custom action ran (exactly once when it is recorded Succeeded/Failed);
//! - the events raised by finished actions (rule 9);
//! - the execution's final status (Completed, or Failed when some path ended Failed).
//!
//! The engine runs the same flow on the memory store and its journey must match. A merge
//! record must also come after every record of its branches, and its opener before them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use orderflow::document::{Entity, Order, OrderLine, RecordId, RecordRef, Value};
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow, SequenceBuilder};
use orderflow::policy::filter_fn;
use orderflow::{ActionError, Engine, Event, EventKind, Journey, Outcome, action_fn};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Orders run through each generated flow (each with its own outcomes and filter results).
const ORDERS: usize = 3;
/// Lines of each order, for line filters.
const LINES: [&str; 2] = ["L1", "L2"];
/// Every line selected.
const ALL: u8 = 0b11;

/// What a filter admits, per order.
#[derive(Debug, Clone)]
struct FilterGen {
    /// Filter on order lines (per line) instead of the order header.
    lines: bool,
    /// Order-level answer, per order.
    order: [bool; ORDERS],
    /// Line-level answers, per order and line.
    line: [[bool; 2]; ORDERS],
}

/// A generated step. Names are given by [`normalize`].
#[derive(Debug, Clone)]
enum G {
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

fn filter_gen() -> impl Strategy<Value = FilterGen> {
    (
        prop::bool::weighted(0.4),
        prop::array::uniform3(prop::bool::weighted(0.75)),
        prop::array::uniform3(prop::array::uniform2(prop::bool::weighted(0.7))),
    )
        .prop_map(|(lines, order, line)| FilterGen { lines, order, line })
}

fn action_gen() -> impl Strategy<Value = G> {
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

fn step_gen() -> impl Strategy<Value = G> {
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
fn flow_gen() -> impl Strategy<Value = Vec<G>> {
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
fn normalize(seq: &mut [G], opens_branch: bool, n: &mut usize) {
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

fn filter_name(step: &str) -> String {
    format!("admit {step}")
}

fn build_seq(mut s: SequenceBuilder, seq: &[G], entry: bool) -> SequenceBuilder {
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

fn visit<'a>(seq: &'a [G], f: &mut impl FnMut(&'a G)) {
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
fn descendants(step: &G) -> Vec<String> {
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

fn order_doc(flow: &[G], k: usize) -> Order {
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
struct Ends {
    /// Tokens that reached the path's exit (a merge's arrival or the end of the flow).
    arrived: u32,
    /// The union of the lines they carried.
    mask: u8,
    /// Tokens that ended Failed.
    failed: u32,
}

impl Ends {
    fn add(&mut self, other: Self) {
        self.arrived += other.arrived;
        self.mask |= other.mask;
        self.failed += other.failed;
    }
}

#[derive(Debug, Default)]
struct Expect {
    /// (step, outcome, selected lines; `None` for Skipped where records are not compared).
    records: Vec<(String, Outcome, Option<u8>)>,
    /// Actions that ran, with their outcome.
    ran: Vec<(String, bool)>,
}

fn lines_admitted(f: &FilterGen, k: usize, mask: u8) -> u8 {
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
fn merge_outcome(ends: Ends, tolerate: bool) -> Outcome {
    if ends.failed > 0 && !(tolerate && ends.arrived > 0) {
        Outcome::Failed
    } else if ends.arrived > 0 {
        Outcome::Succeeded
    } else {
        Outcome::Skipped
    }
}

/// Walks one path: `last` is the outcome of the previous action (or merge), `mask` the lines.
fn walk(seq: &[G], mut last: Outcome, mut mask: u8, k: usize, x: &mut Expect) -> Ends {
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
fn merged(
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
fn ends_after_merge(ends: Ends, tolerate: bool) -> Ends {
    match merge_outcome(ends, tolerate) {
        Outcome::Failed => Ends {
            failed: 1,
            ..Ends::default()
        },
        _ => Ends::default(),
    }
}

fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::Succeeded => 0,
        Outcome::Failed => 1,
        Outcome::Skipped => 2,
        Outcome::Cancelled => 3,
    }
}

fn mask_of(records: &[RecordId]) -> Result<u8, String> {
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

type Multiset = BTreeMap<(String, u8, u8), usize>;

fn multiset(records: impl IntoIterator<Item = (String, Outcome, Option<u8>)>) -> Multiset {
    let mut m = Multiset::new();
    for (name, outcome, mask) in records {
        *m.entry((name, outcome_code(outcome), mask.unwrap_or(0xFF)))
            .or_default() += 1;
    }
    m
}

// ---------------------------------------------------------------------------------------
// Running the engine.

type Runs = Arc<Mutex<HashMap<(String, String), u32>>>;

async fn engine_for(flow: &[G], runs: Runs) -> Result<Engine, String> {
    let mut builder = Engine::builder().action(
        "planned",
        action_fn(move |cx| {
            let step = cx.step().name.clone();
            let order = cx.order().id.to_string();
            let ok = cx.order().custom.get(&format!("ok:{step}")) == Some(&Value::Bool(true));
            *runs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry((order, step))
                .or_default() += 1;
            futures::future::ready(if ok {
                Ok(())
            } else {
                Err(ActionError::new("planned failure"))
            })
            .boxed()
        }),
    );
    let mut filters = Vec::new();
    visit(flow, &mut |g| {
        if let G::Action {
            name,
            filter: Some(f),
            ..
        } = g
        {
            filters.push((name.clone(), f.lines));
        }
    });
    for (name, lines) in filters {
        let order_key = format!("admit:{name}");
        let line_prefix = format!("admit:{name}:");
        let entity = if lines {
            Entity::OrderLine
        } else {
            Entity::Order
        };
        builder = builder.policy(filter_fn(filter_name(&name), entity, move |r| match r {
            RecordRef::Order(o) => o.custom.get(&order_key) == Some(&Value::Bool(true)),
            RecordRef::Line(o, l) => {
                o.custom.get(&format!("{line_prefix}{}", l.id)) == Some(&Value::Bool(true))
            }
            _ => false,
        }));
    }
    builder.build().await.map_err(|e| e.to_string())
}

fn record_index(journey: &Journey, name: &str) -> Vec<usize> {
    journey
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.step == name)
        .map(|(i, _)| i)
        .collect()
}

async fn run_case(flow_tree: &[G]) -> Result<(), String> {
    let flow = Flow::builder("Model")
        .steps(|s| build_seq(s, flow_tree, true))
        .build()
        .map_err(|e| format!("generated an invalid flow: {e}"))?;
    let runs: Runs = Arc::default();
    let engine = engine_for(flow_tree, runs.clone()).await?;
    engine
        .create_flow(flow.clone())
        .await
        .map_err(|e| e.to_string())?;
    engine.publish("Model").await.map_err(|e| e.to_string())?;

    for k in 0..ORDERS {
        let order = order_doc(flow_tree, k);
        let id = order.id.clone();
        let receipt = engine
            .submit(Event::new_order(order))
            .await
            .map_err(|e| format!("submit failed: {e}"))?;
        let journey = engine.journey(&id).await.map_err(|e| e.to_string())?;
        let context = || format!("order {id}\nflow:\n{}\njourney:\n{journey}", flow.to_json());

        let mut x = Expect::default();
        let ends = walk(flow_tree, Outcome::Succeeded, ALL, k, &mut x);
        let status = if ends.failed > 0 {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Completed
        };

        if receipt.started.len() != 1 || journey.executions.len() != 1 {
            return Err(format!(
                "expected exactly one execution, receipt {receipt:?}\n{}",
                context()
            ));
        }
        if journey.executions[0].status != status {
            return Err(format!(
                "execution status: expected {status:?}, got {:?}\n{}",
                journey.executions[0].status,
                context()
            ));
        }

        // The journey's records, as a multiset (records of Skipped steps not compared).
        let mut actual = Vec::new();
        for s in &journey.steps {
            let mask = if s.outcome == Outcome::Skipped {
                None
            } else {
                Some(mask_of(&s.records)?)
            };
            actual.push((s.step.clone(), s.outcome, mask));
        }
        let (want, got) = (multiset(x.records.clone()), multiset(actual));
        if want != got {
            let missing: Vec<_> = want
                .iter()
                .filter(|(k, n)| got.get(*k) != Some(n))
                .collect();
            let extra: Vec<_> = got
                .iter()
                .filter(|(k, n)| want.get(*k) != Some(n))
                .collect();
            return Err(format!(
                "journey differs from the model ((step, outcome 0=S 1=F 2=Sk, lines mask) → count)\n\
                 expected but not found: {missing:?}\nfound but not expected: {extra:?}\n\
                 expected records in walk order: {:?}\n{}",
                x.records,
                context()
            ));
        }

        // Merge records: the last with the element's name, after everything in its branches;
        // the opener before everything in its branches.
        let mut elements = Vec::new();
        visit(flow_tree, &mut |g| {
            if let G::Cond { name, merge, .. } | G::Split { name, merge, .. } = g {
                elements.push((name.clone(), *merge, descendants(g)));
            }
        });
        for (name, merge, inner) in elements {
            let at = record_index(&journey, &name);
            let Some(&opener) = at.first() else { continue };
            let merge_at = if merge { at.get(1).copied() } else { None };
            for d in &inner {
                for i in record_index(&journey, d) {
                    if i < opener || merge_at.is_some_and(|m| i > m) {
                        return Err(format!(
                            "record of '{d}' (#{i}) lies outside element '{name}' \
                             (opener #{opener}, merge {merge_at:?})\n{}",
                            context()
                        ));
                    }
                }
            }
            if merge {
                let want = x.records.iter().filter(|r| r.0 == name).nth(1).map(|r| r.1);
                if journey.outcome(&name) != want {
                    return Err(format!(
                        "merge '{name}': expected {want:?} as its last record, got {:?}\n{}",
                        journey.outcome(&name),
                        context()
                    ));
                }
            }
        }

        // Each action that ran ran once, and only those ran.
        {
            let runs = runs.lock().unwrap_or_else(PoisonError::into_inner);
            let mut ran: Vec<(String, u32)> = runs
                .iter()
                .filter(|((o, _), _)| *o == id.to_string())
                .map(|((_, s), n)| (s.clone(), *n))
                .collect();
            ran.sort();
            let mut want: Vec<(String, u32)> = x.ran.iter().map(|(s, _)| (s.clone(), 1)).collect();
            want.sort();
            if ran != want {
                return Err(format!(
                    "custom action runs: expected {want:?}, got {ran:?}\n{}",
                    context()
                ));
            }
        }

        // Rule 9: every finished action raised its outcome event, and nothing else was raised.
        let mut raised: Vec<(String, String)> = journey
            .timeline
            .iter()
            .filter_map(|e| e.raised_by.clone().map(|by| (by, e.kind.to_string())))
            .collect();
        raised.sort();
        let mut want: Vec<(String, String)> = x
            .ran
            .iter()
            .map(|(s, ok)| {
                let word = if *ok { "Succeeded" } else { "Failed" };
                (s.clone(), format!("{s} has {word}"))
            })
            .collect();
        want.sort();
        if raised != want {
            return Err(format!(
                "raised events: expected {want:?}, got {raised:?}\n{}",
                context()
            ));
        }
        for (i, e) in journey.timeline.iter().enumerate() {
            if e.seq != i as u64 + 1 {
                return Err(format!("timeline seq gap at {i}\n{}", context()));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn token_machine_matches_the_model(flow in flow_gen()) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        if let Err(why) = rt.block_on(run_case(&flow)) {
            return Err(TestCaseError::fail(why));
        }
    }
}

/// A fixed case covering every element once, so a regression shows without shrinking.
#[test]
fn a_fixed_flow_matches_the_model() {
    let action = |ok: bool, filter: Option<FilterGen>| G::Action {
        name: String::new(),
        ok: [ok; ORDERS],
        filter,
        spare: FilterGen {
            lines: false,
            order: [true; ORDERS],
            line: [[true; 2]; ORDERS],
        },
    };
    let lines = |a: bool, b: bool| FilterGen {
        lines: true,
        order: [true; ORDERS],
        line: [[a, b]; ORDERS],
    };
    let mut flow = vec![
        action(true, None),
        G::Split {
            name: String::new(),
            merge: true,
            tolerate: false,
            branches: vec![
                vec![action(true, Some(lines(true, false)))],
                vec![action(true, Some(lines(false, true))), action(false, None)],
                vec![],
            ],
        },
        G::Cond {
            name: String::new(),
            merge: true,
            yes: vec![action(true, None)],
            no: vec![action(true, None)],
        },
        G::Split {
            name: String::new(),
            merge: false,
            tolerate: false,
            branches: vec![
                vec![action(true, Some(lines(false, false)))],
                vec![
                    action(false, Some(lines(true, true))),
                    G::Cond {
                        name: String::new(),
                        merge: false,
                        yes: vec![],
                        no: vec![action(true, None)],
                    },
                ],
            ],
        },
    ];
    let mut n = 0;
    normalize(&mut flow, false, &mut n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    if let Err(why) = rt.block_on(run_case(&flow)) {
        panic!("{why}");
    }
}

/// Rules 6 and 7: a branch whose opening filter rejects the records is filtered out, and a
/// merge never waits for a filtered-out branch, also when that branch's action lists an
/// input event that has not arrived.
#[tokio::test]
async fn a_merge_does_not_wait_for_a_filtered_out_branch_with_input_events() {
    let engine = Engine::builder()
        .action(
            "ok",
            action_fn(|_cx| futures::future::ready(Ok(())).boxed()),
        )
        .policy(filter_fn("Never", Entity::Order, |_| false))
        .policy(filter_fn("Always", Entity::Order, |_| true))
        .build()
        .await
        .expect("engine");
    let flow = Flow::builder("F")
        .steps(|s| {
            s.action(ActionStep::custom("A", "ok").input_event(EventKind::NEW_ORDER))
                .splitter_merge("M", |b| {
                    b.branch("x", |s| {
                        s.action(
                            ActionStep::custom("X", "ok")
                                .filter("Never")
                                .input_event(EventKind::SHIPPED),
                        )
                    })
                    .branch("y", |s| {
                        s.action(ActionStep::custom("Y", "ok").filter("Always"))
                    })
                })
                .action(ActionStep::custom("After", "ok"))
        })
        .build()
        .expect("valid");
    engine.create_flow(flow).await.expect("created");
    engine.publish("F").await.expect("published");
    engine
        .submit(Event::new_order(Order::new("O1")))
        .await
        .expect("submitted");
    let journey = engine.journey("O1").await.expect("journey");
    assert_eq!(
        journey.executions[0].status,
        ExecutionStatus::Completed,
        "{journey}"
    );
    assert_eq!(journey.outcome("X"), Some(Outcome::Skipped), "{journey}");
    assert_eq!(journey.outcome("M"), Some(Outcome::Succeeded), "{journey}");
    assert_eq!(
        journey.outcome("After"),
        Some(Outcome::Succeeded),
        "{journey}"
    );
}
