//! The model test of the token machine, run against the machine directly: the same random
//! flow trees and the same reference interpreter as the engine's model test
//! (`tests/model.rs`, sharing `tests/model/reference.rs`), with no engine, store or runtime
//! around the machine. Each action's outcome and each filter's answers come from the order's
//! custom fields, as in the engine's test.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

#[path = "../../../tests/model/reference.rs"]
mod reference;

use reference::{
    ALL, G, ORDERS, admits, build_seq, filter_name, filters, mask_of, multiset, order_doc, walk,
};

use super::append_event;
use super::state::{Bounds, Command, Done, Env, Input, Machine, Route};
use crate::action::{Action, ActionContext, ActionError, Effects};
use crate::clock::Timestamp;
use crate::document::{Order, Value};
use crate::engine::plan::{self, Plan, Registry, Resolution};
use crate::engine::{Config, builtin};
use crate::error::Result;
use crate::event::{EventId, EventKind};
use crate::execution::{ExecutionStatus, OrderState, Outcome};
use crate::flow::Flow;
use crate::orchestration::{OrchestrationType, OrderOrchestration};
use crate::policy::{Policy, filter_fn};

#[derive(Debug)]
struct Planned;

#[async_trait::async_trait]
impl Action for Planned {
    async fn run(&self, _cx: &mut ActionContext<'_>) -> std::result::Result<(), ActionError> {
        unreachable!("the machine's test answers runs itself")
    }

    fn effects(&self) -> Effects {
        Effects::External
    }
}

struct OneFlow(Arc<Plan>);

impl Env for OneFlow {
    fn routes(&self, kind: &EventKind) -> Result<Vec<Route>> {
        Ok(if self.0.triggers.contains(kind) {
            vec![Route {
                flow: "Model".into(),
                version: semver::Version::new(1, 0, 0),
                plan: self.0.clone(),
            }]
        } else {
            Vec::new()
        })
    }

    fn paused(&self, _flow: &str) -> bool {
        false
    }
}

fn compile(tree: &[G]) -> std::result::Result<Arc<Plan>, String> {
    let flow = Flow::builder("Model")
        .steps(|s| build_seq(s, tree, true))
        .build()
        .map_err(|e| format!("generated an invalid flow: {e}"))?;
    let mut registry = Registry::default();
    let kind: Arc<dyn OrchestrationType> = Arc::new(OrderOrchestration);
    registry.types.insert(kind.name().to_owned(), kind);
    builtin::register(&mut registry.builtins);
    registry.actions.insert("planned".into(), Arc::new(Planned));
    for (name, entity) in filters(tree) {
        registry.policies.insert(
            filter_name(&name),
            Policy::from(filter_fn(filter_name(&name), entity, admits(&name))),
        );
    }
    let mut rules = |_: &str| Resolution::Unknown;
    plan::compile(&flow, &registry, &mut rules, &Config::default())
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Runs one order through the machine; the journey rows resolved as (step, outcome,
/// lines mask), the actions run, the events raised, and the execution's status.
type Ran = (
    Vec<(String, Outcome, Option<u8>)>,
    Vec<String>,
    Vec<(String, String)>,
    ExecutionStatus,
);

fn run_order(plan: &Arc<Plan>, order: Order) -> std::result::Result<Ran, String> {
    let env = OneFlow(plan.clone());
    let mut m = Machine::new(
        OrderState::new(order),
        Bounds {
            max_journey: 10_000,
            max_steps_per_turn: 100_000,
        },
    );
    let t = Timestamp(1);
    append_event(
        &mut m,
        &env,
        EventId::from("e1"),
        EventKind::NEW_ORDER,
        None,
        None,
        t,
    )
    .map_err(|e| e.to_string())?;
    let mut ran = Vec::new();
    let mut input = Input::Go;
    loop {
        input = match m.advance(&env, input, t).map_err(|e| e.to_string())? {
            Command::Idle => break,
            Command::Load(e) => return Err(format!("execution {e} has no plan")),
            Command::Commit { .. } => {
                m.committed();
                Input::Go
            }
            Command::Run(run) => {
                let step = plan.node(run.node).name.clone();
                let ok =
                    m.state.order.custom.get(&format!("ok:{step}")) == Some(&Value::Bool(true));
                ran.push(step);
                Input::Done(Done {
                    result: if ok {
                        Ok(())
                    } else {
                        Err("planned failure".into())
                    },
                    ..Done::default()
                })
            }
        };
    }
    if m.state.executions.len() != 1 {
        return Err(format!(
            "{} executions, expected one",
            m.state.executions.len()
        ));
    }
    let mut rows = Vec::new();
    for row in &m.journey {
        let name = match row.step() {
            crate::journey::StepRef::Node(n) => plan.node(n).name.clone(),
            crate::journey::StepRef::Merge(j) => plan.join(j).name.clone(),
            crate::journey::StepRef::End => "end".into(),
            crate::journey::StepRef::Named => "?".into(),
        };
        let mask = if row.outcome() == Outcome::Skipped {
            None
        } else {
            Some(mask_of(&row.record_ids(&m.state.order))?)
        };
        rows.push((name, row.outcome(), mask));
    }
    let raised = m
        .state
        .timeline
        .iter()
        .filter_map(|e| e.raised_by.clone().map(|by| (by, e.kind.to_string())))
        .collect();
    Ok((rows, ran, raised, m.state.executions[0].status()))
}

fn run_case(tree: &[G]) -> std::result::Result<(), String> {
    let plan = compile(tree)?;
    for k in 0..ORDERS {
        let (rows, ran, mut raised, status) = run_order(&plan, order_doc(tree, k))?;
        let mut x = reference::Expect::default();
        let ends = walk(tree, Outcome::Succeeded, ALL, k, &mut x);
        let want_status = if ends.failed > 0 {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Completed
        };
        if status != want_status {
            return Err(format!(
                "order {k}: status {status:?}, expected {want_status:?}"
            ));
        }
        let (want, got) = (multiset(x.records.clone()), multiset(rows.clone()));
        if want != got {
            return Err(format!(
                "order {k}: journey differs from the model\nexpected {:?}\ngot {rows:?}",
                x.records
            ));
        }
        let mut want_ran: Vec<String> = x.ran.iter().map(|(s, _)| s.clone()).collect();
        let mut ran = ran;
        want_ran.sort();
        ran.sort();
        if ran != want_ran {
            return Err(format!(
                "order {k}: actions run {ran:?}, expected {want_ran:?}"
            ));
        }
        raised.sort();
        let mut want_raised: Vec<(String, String)> = x
            .ran
            .iter()
            .map(|(s, ok)| {
                let word = if *ok { "Succeeded" } else { "Failed" };
                (s.clone(), format!("{s} has {word}"))
            })
            .collect();
        want_raised.sort();
        if raised != want_raised {
            return Err(format!(
                "order {k}: raised {raised:?}, expected {want_raised:?}"
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_machine_matches_the_model(tree in reference::flow_gen()) {
        if let Err(why) = run_case(&tree) {
            return Err(TestCaseError::fail(why));
        }
    }
}
