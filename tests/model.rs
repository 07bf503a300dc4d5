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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use orderflow::document::{Entity, Order, Value};
use orderflow::execution::ExecutionStatus;
use orderflow::flow::{ActionStep, Flow};
use orderflow::policy::filter_fn;
use orderflow::{ActionError, Engine, Event, EventKind, Journey, Outcome, action_fn};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[path = "model/reference.rs"]
mod reference;

use reference::*;

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
    for (name, entity) in filters(flow) {
        builder = builder.policy(filter_fn(filter_name(&name), entity, admits(&name)));
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
