//! Unit tests of the machine, one group per rule of DESIGN §3 (`rules`) and for what keeps
//! it durable (`durability`), driven directly: no engine, no store, no runtime. A test
//! compiles a flow, feeds events and action results, and reads the commands, the state and
//! the journey rows.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

mod durability;
mod rules;

use super::append_event;
use super::lifecycle::{cancel, reprocess, wake_due};
use super::merge::{marks, verdict};
use super::state::{Bounds, Command, Done, Env, Input, Machine, Route, Run};
use crate::action::{Action, ActionContext, ActionError, Effects};
use crate::clock::Timestamp;
use crate::document::{Entity, Order, OrderLine, RecordId, RecordMut, RecordRef};
use crate::engine::plan::{self, Plan, Registry, Resolution};
use crate::engine::{Config, builtin};
use crate::error::Result;
use crate::event::{EventId, EventKind};
use crate::execution::{BranchState, ExecutionStatus, OrderState, Outcome, PathStatus, Phase};
use crate::flow::{ActionStep, Flow, SequenceBuilder};
use crate::journey::{BranchMark, Detail, StepRef, StepRow};
use crate::orchestration::{OrchestrationType, OrderOrchestration};
use crate::policy::{Check, Criticality, Policy, execution_fn, filter_fn};

/// An action the tests never run: the machine only asks for it.
#[derive(Debug)]
struct Work(Effects);

#[async_trait]
impl Action for Work {
    async fn run(&self, _cx: &mut ActionContext<'_>) -> std::result::Result<(), ActionError> {
        Ok(())
    }

    fn effects(&self) -> Effects {
        self.0
    }
}

const START: EventKind = EventKind::NEW_ORDER;
const SHIPPED: EventKind = EventKind::SHIPPED;

/// An internal step (runs without a commit before it).
fn step(name: &str) -> ActionStep {
    ActionStep::custom(name, "Internal")
}

/// An external step (a provider call: committed before it runs).
fn external(name: &str) -> ActionStep {
    ActionStep::custom(name, "External")
}

fn registry() -> Registry {
    let mut registry = Registry::default();
    let kind: Arc<dyn OrchestrationType> = Arc::new(OrderOrchestration);
    registry.types.insert(kind.name().to_owned(), kind);
    builtin::register(&mut registry.builtins);
    registry
        .actions
        .insert("Internal".into(), Arc::new(Work(Effects::Pure)));
    registry
        .actions
        .insert("External".into(), Arc::new(Work(Effects::External)));
    let policies: [(&str, Policy); 5] = [
        (
            "Everything",
            Policy::from(filter_fn("Everything", Entity::Order, |_| true)),
        ),
        (
            "Line 1 only",
            Policy::from(filter_fn(
                "Line 1 only",
                Entity::OrderLine,
                |r| matches!(r, RecordRef::Line(_, l) if l.id.as_str() == "1"),
            )),
        ),
        (
            "Nothing",
            Policy::from(filter_fn("Nothing", Entity::Order, |_| false)),
        ),
        (
            "Needs customer",
            Policy::from(execution_fn(
                "Needs customer",
                Entity::Order,
                Criticality::Critical,
                |r| match r {
                    RecordMut::Order(o) if o.customer.is_some() => Check::Passed,
                    _ => Check::failed("no customer"),
                },
            )),
        ),
        (
            "Note customer",
            Policy::from(execution_fn(
                "Note customer",
                Entity::Order,
                Criticality::Information,
                |r| match r {
                    RecordMut::Order(o) if o.customer.is_some() => Check::Passed,
                    _ => Check::failed("no customer"),
                },
            )),
        ),
    ];
    for (name, p) in policies {
        registry.policies.insert(name.into(), p);
    }
    registry
}

fn compile(name: &str, steps: impl FnOnce(SequenceBuilder) -> SequenceBuilder) -> Arc<Plan> {
    let flow = Flow::builder(name)
        .steps(steps)
        .build()
        .expect("valid flow");
    let mut rules = |_: &str| Resolution::Unknown;
    Arc::new(plan::compile(&flow, &registry(), &mut rules, &Config::default()).expect("compiles"))
}

/// The catalog: flows by the events that start them, in creation order, and paused flows.
#[derive(Default)]
struct TestEnv {
    flows: Vec<(String, Arc<Plan>)>,
    paused: HashSet<String>,
}

impl TestEnv {
    fn with(mut self, name: &str, plan: Arc<Plan>) -> Self {
        self.flows.push((name.to_owned(), plan));
        self
    }
}

impl Env for TestEnv {
    fn routes(&self, kind: &EventKind) -> Result<Vec<Route>> {
        Ok(self
            .flows
            .iter()
            .filter(|(_, p)| p.triggers.contains(kind))
            .map(|(f, p)| Route {
                flow: f.clone(),
                version: semver::Version::new(1, 0, 0),
                plan: p.clone(),
            })
            .collect())
    }

    fn paused(&self, flow: &str) -> bool {
        self.paused.contains(flow)
    }
}

fn order() -> Order {
    Order::new("SO-1")
        .with_line(OrderLine::new("1", "Pen", 1))
        .with_line(OrderLine::new("2", "Ink", 2))
}

fn machine() -> Machine {
    Machine::new(
        OrderState::new(order()),
        Bounds {
            max_journey: 100,
            max_steps_per_turn: 1_000,
        },
    )
}

const T: Timestamp = Timestamp(1_000);

/// Puts an event on the timeline.
fn event(m: &mut Machine, env: &TestEnv, id: &str, kind: EventKind) -> u64 {
    append_event(m, env, EventId::from(id), kind, None, None, T).expect("routes")
}

/// Drives the machine to `Idle`, answering every run with `answer`; the commands seen.
fn drive(m: &mut Machine, env: &TestEnv, mut answer: impl FnMut(&Run) -> Done) -> Vec<Command> {
    let mut seen = Vec::new();
    let mut input = Input::Go;
    loop {
        let command = m.advance(env, input, T).expect("advances");
        input = match &command {
            Command::Idle => {
                seen.push(command);
                return seen;
            }
            Command::Load(e) => panic!("execution {e} has no plan"),
            Command::Commit { .. } => {
                m.committed();
                Input::Go
            }
            Command::Run(run) => Input::Done(answer(run)),
        };
        seen.push(command);
    }
}

fn ok(_: &Run) -> Done {
    Done::default()
}

fn fail(why: &str) -> Done {
    Done {
        result: Err(why.to_owned()),
        ..Done::default()
    }
}

/// The journey rows as (step name, outcome), names from the plan.
fn rows(m: &Machine, plan: &Plan) -> Vec<(String, Outcome)> {
    m.journey
        .iter()
        .map(|r| (name(plan, r), r.outcome()))
        .collect()
}

fn name(plan: &Plan, row: &StepRow) -> String {
    match row.step() {
        StepRef::Node(n) => plan.node(n).name.clone(),
        StepRef::Merge(j) => format!("{} (merge)", plan.join(j).name),
        StepRef::End => "end".into(),
        StepRef::Named => "?".into(),
    }
}

fn row(name: &str, outcome: Outcome) -> (String, Outcome) {
    (name.to_owned(), outcome)
}

fn status(m: &Machine, e: usize) -> ExecutionStatus {
    m.state.executions[e].status()
}

#[test]
fn step_names_number_a_flow_as_the_compiler_does() {
    let p = compile("F", |s| {
        s.action(step("Start").input_event(START))
            .condition_merge(
                "Valid?",
                |yes| {
                    yes.splitter_merge("Split", |b| {
                        b.branch("a", |s| {
                            s.action(step("A1").filter("Everything")).action(step("A2"))
                        })
                        .branch("b", |s| {
                            s.action(step("B1").filter("Everything")).condition(
                                "Inner?",
                                |y| y.action(step("Y")),
                                |n| n.action(step("N")),
                            )
                        })
                    })
                },
                |no| no.action(step("Report")),
            )
            .action(step("After"))
    });
    let names: Vec<&str> = p.names.nodes.iter().map(|n| n.name.as_str()).collect();
    let compiled: Vec<&str> = p.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, compiled);
    let merges: Vec<&str> = p.names.merges.iter().map(|j| j.name.as_str()).collect();
    let joins: Vec<&str> = p.joins.iter().map(|j| j.name.as_str()).collect();
    assert_eq!(merges, joins);
    assert_eq!(merges, ["Valid?", "Split"]);
}
