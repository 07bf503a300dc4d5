//! Unit tests of the machine, one group per rule of DESIGN §3, driven directly: no engine,
//! no store, no runtime. A test compiles a flow, feeds events and action results, and reads
//! the commands, the state and the journey rows.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use super::merge::{marks, verdict};
use super::{Bounds, Command, Done, Env, Input, Machine, Route, Run, append_event};
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
    append_event(m, env, EventId(id.into()), kind, None, None, T).expect("routes")
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
    }
}

fn row(name: &str, outcome: Outcome) -> (String, Outcome) {
    (name.to_owned(), outcome)
}

fn status(m: &Machine, e: usize) -> ExecutionStatus {
    m.state.executions[e].status()
}

mod rule_1_start {
    use super::*;

    #[test]
    fn an_event_starts_every_flow_that_takes_it_in_creation_order_once() {
        let a = compile("A", |s| s.action(step("A1").input_event(START)));
        let b = compile("B", |s| s.action(step("B1").input_event(START)));
        let other = compile("C", |s| s.action(step("C1").input_event(SHIPPED)));
        let env = TestEnv::default()
            .with("A", a)
            .with("B", b)
            .with("C", other);
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        let flows: Vec<&str> = m.state.executions.iter().map(|x| x.flow.as_str()).collect();
        assert_eq!(flows, ["A", "B"]);
        assert_eq!(m.started.len(), 2);
        // A second trigger while both are live starts none; it still goes on the timeline.
        event(&mut m, &env, "e2", START);
        assert_eq!(m.state.executions.len(), 2);
        assert_eq!(m.state.timeline.len(), 2);
    }

    #[test]
    fn a_flow_starts_again_once_its_execution_completed() {
        let a = compile("A", |s| s.action(step("A1").input_event(START)));
        let env = TestEnv::default().with("A", a);
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
        event(&mut m, &env, "e2", START);
        assert_eq!(m.state.executions.len(), 2);
    }

    #[test]
    fn every_execution_keeps_its_plan_fingerprint() {
        let a = compile("A", |s| s.action(step("A1").input_event(START)));
        let env = TestEnv::default().with("A", a.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        assert_eq!(m.state.executions[0].plan_tag(), a.tag);
        let renamed = compile("A", |s| s.action(step("Other").input_event(START)));
        assert_ne!(
            a.tag, renamed.tag,
            "a different layout has another fingerprint"
        );
    }
}

mod rule_2_chaining {
    use super::*;

    fn plan() -> Arc<Plan> {
        compile("F", |s| {
            s.action(step("Validate").input_event(START))
                .action(step("On shipment").input_event(SHIPPED))
        })
    }

    #[test]
    fn a_step_with_input_events_parks_until_one_arrives() {
        let p = plan();
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        assert_eq!(drive(&mut m, &env, ok).last(), Some(&Command::Idle));
        assert_eq!(status(&m, 0), ExecutionStatus::Waiting);
        assert_eq!(m.state.executions[0].tokens[0].phase, Phase::Parked);
        let seq = event(&mut m, &env, "e2", SHIPPED);
        drive(&mut m, &env, ok);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
        let last = m.journey.last().expect("a row");
        assert_eq!(last.details(), [Detail::TookEvent(seq)]);
    }

    #[test]
    fn an_event_that_arrived_before_the_step_was_reached_counts() {
        let p = plan();
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        let early = event(&mut m, &env, "e2", SHIPPED);
        drive(&mut m, &env, ok);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
        assert_eq!(m.state.executions[0].consumed, [1, early]);
    }

    #[test]
    fn a_step_runs_only_after_the_one_before_it_succeeded() {
        let p = compile("F", |s| {
            s.action(step("First").input_event(START))
                .action(step("Second"))
        });
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        let mut ran = Vec::new();
        drive(&mut m, &env, |run| {
            ran.push(run.node);
            fail("no")
        });
        assert_eq!(ran, [0], "the second step never ran");
        assert_eq!(rows(&m, &p), [row("First", Outcome::Failed)]);
    }
}

mod rule_3_filter {
    use super::*;

    #[test]
    fn a_filter_narrows_the_records_and_none_left_is_skipped() {
        let p2 = compile("G", |s| {
            s.action(step("Start").input_event(START))
                .splitter("Split", |b| {
                    b.branch("one", |s| s.action(step("Line 1").filter("Line 1 only")))
                        .branch("none", |s| s.action(step("Never").filter("Nothing")))
                })
        });
        let env = TestEnv::default().with("G", p2.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        let journey = rows(&m, &p2);
        assert!(
            journey.contains(&row("Never", Outcome::Skipped)),
            "{journey:?}"
        );
        assert!(
            journey.contains(&row("Line 1", Outcome::Succeeded)),
            "{journey:?}"
        );
        let skipped = m
            .journey
            .iter()
            .find(|r| r.outcome() == Outcome::Skipped)
            .expect("a skipped row");
        assert_eq!(skipped.details(), [Detail::FilterAdmittedNone]);
        assert_eq!(
            status(&m, 0),
            ExecutionStatus::Completed,
            "Skipped is no failure"
        );
        let line1 = m
            .journey
            .iter()
            .find(|r| name(&p2, r) == "Line 1")
            .expect("row");
        assert_eq!(
            line1.records.lines.as_deref(),
            Some(&["1".into()][..]),
            "only line 1 was admitted"
        );
    }
}

mod rule_4_outcome {
    use super::*;

    #[test]
    fn a_failed_step_ends_its_path_failed_and_reprocess_runs_it_again() {
        let p = compile("F", |s| {
            s.action(step("Check").input_event(START))
                .action(step("After"))
        });
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, |_| fail("bad data"));
        assert_eq!(status(&m, 0), ExecutionStatus::Failed);
        assert_eq!(m.state.executions[0].failure().as_deref(), Some("bad data"));
        assert_eq!(
            m.state.executions[0].paths().collect::<Vec<_>>(),
            [PathStatus::Failed]
        );
        assert!(super::super::reprocess(&mut m, 0));
        assert_eq!(m.state.executions[0].round, 1);
        drive(&mut m, &env, ok);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
        assert_eq!(
            rows(&m, &p),
            [
                row("Check", Outcome::Failed),
                row("Check", Outcome::Succeeded),
                row("After", Outcome::Succeeded)
            ]
        );
        assert_eq!(m.journey[1].round, 1);
    }

    #[test]
    fn after_a_failure_a_directly_following_condition_continues_on_no() {
        let p = compile("F", |s| {
            s.action(step("Check").input_event(START)).condition(
                "Valid?",
                |yes| yes.action(step("Ship")),
                |no| no.action(step("Report")),
            )
        });
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, |run| {
            if run.node == 0 { fail("bad") } else { ok(run) }
        });
        assert_eq!(
            rows(&m, &p),
            [
                row("Check", Outcome::Failed),
                row("Valid?", Outcome::Succeeded),
                row("Report", Outcome::Succeeded)
            ]
        );
        assert_eq!(m.journey[1].details(), [Detail::Path { yes: false }]);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
    }
}

mod rule_5_condition {
    use super::*;

    #[test]
    fn a_condition_routes_on_the_previous_outcome() {
        let p = compile("F", |s| {
            s.action(step("Check").input_event(START)).condition(
                "Valid?",
                |yes| yes.action(step("Ship")),
                |no| no.action(step("Report")),
            )
        });
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        assert_eq!(
            rows(&m, &p),
            [
                row("Check", Outcome::Succeeded),
                row("Valid?", Outcome::Succeeded),
                row("Ship", Outcome::Succeeded)
            ]
        );
        assert_eq!(m.journey[1].details(), [Detail::Path { yes: true }]);
    }
}

mod rule_6_splitter {
    use super::*;

    #[test]
    fn every_branch_is_offered_the_token_and_runs() {
        let p = compile("F", |s| {
            s.action(step("Start").input_event(START))
                .splitter("Split", |b| {
                    b.branch("a", |s| s.action(step("A").filter("Everything")))
                        .branch("b", |s| s.action(step("B").filter("Everything")))
                        .branch("c", |s| s.action(step("C").filter("Everything")))
                })
        });
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        let names: Vec<String> = rows(&m, &p).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Start", "Split", "A", "B", "C"]);
        assert_eq!(m.journey[1].details(), [Detail::Offered]);
        // Every branch got its own token: the splitter's and two copies.
        assert_eq!(m.state.executions[0].next_token, 4);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
    }
}

mod rule_7_merge {
    use super::*;

    fn branches(spec: &[(bool, bool)]) -> Vec<BranchState> {
        spec.iter()
            .map(|&(entered, arrived)| BranchState { entered, arrived })
            .collect()
    }

    #[test]
    fn the_verdict_follows_what_the_branches_did() {
        let arrived = branches(&[(true, true), (true, false)]);
        assert_eq!(verdict(&arrived, false, false), Outcome::Succeeded);
        assert_eq!(verdict(&arrived, true, false), Outcome::Failed);
        assert_eq!(
            verdict(&arrived, true, true),
            Outcome::Succeeded,
            "tolerated"
        );
        let none = branches(&[(true, false), (false, false)]);
        assert_eq!(verdict(&none, false, false), Outcome::Skipped);
        assert_eq!(
            verdict(&none, true, true),
            Outcome::Failed,
            "tolerance needs a branch that arrived"
        );
        assert_eq!(
            marks(
                &branches(&[(true, true), (true, false), (true, false), (false, false)]),
                &[1]
            ),
            [
                BranchMark::Arrived,
                BranchMark::Failed,
                BranchMark::FilteredOut,
                BranchMark::NotEntered
            ]
        );
    }

    fn split_merge(tolerate: bool) -> Arc<Plan> {
        compile("F", |s| {
            s.action(step("Start").input_event(START))
                .splitter_merge("Both", |b| {
                    let b = b
                        .branch("lines", |s| s.action(step("Lines").filter("Line 1 only")))
                        .branch("never", |s| s.action(step("Never").filter("Nothing")))
                        .branch("waits", |s| {
                            s.action(step("Waits").filter("Everything").input_event(SHIPPED))
                        });
                    if tolerate {
                        b.tolerate_failed_branches()
                    } else {
                        b
                    }
                })
                .action(step("After"))
        })
    }

    #[test]
    fn a_merge_waits_for_live_branches_but_never_for_a_filtered_out_one() {
        let p = split_merge(false);
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        // "Never" was filtered out; "Waits" is still live: the merge waits for it alone.
        assert_eq!(status(&m, 0), ExecutionStatus::Waiting);
        assert!(!rows(&m, &p).iter().any(|(n, _)| n == "Both (merge)"));
        event(&mut m, &env, "e2", SHIPPED);
        drive(&mut m, &env, ok);
        let journey = rows(&m, &p);
        assert!(
            journey.contains(&row("Both (merge)", Outcome::Succeeded)),
            "{journey:?}"
        );
        assert_eq!(journey.last(), Some(&row("After", Outcome::Succeeded)));
        let merge = m
            .journey
            .iter()
            .find(|r| matches!(r.step(), StepRef::Merge(_)))
            .expect("the merge's row");
        assert_eq!(
            merge.details(),
            [Detail::Merge(vec![
                BranchMark::Arrived,
                BranchMark::FilteredOut,
                BranchMark::Arrived
            ])]
        );
        // The merged token carries the union of what arrived: line 1 from one branch,
        // everything from the other.
        assert_eq!(merge.records.lines, None);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
    }

    #[test]
    fn a_failed_branch_fails_the_merge_unless_tolerated() {
        for tolerate in [false, true] {
            let p = split_merge(tolerate);
            let env = TestEnv::default().with("F", p.clone());
            let mut m = machine();
            event(&mut m, &env, "e1", START);
            event(&mut m, &env, "e2", SHIPPED);
            drive(&mut m, &env, |run| {
                if name_of(&p, run) == "Waits" {
                    fail("no stock")
                } else {
                    ok(run)
                }
            });
            let journey = rows(&m, &p);
            if tolerate {
                assert!(journey.contains(&row("Both (merge)", Outcome::Succeeded)));
                assert_eq!(status(&m, 0), ExecutionStatus::Completed);
            } else {
                assert!(journey.contains(&row("Both (merge)", Outcome::Failed)));
                assert_eq!(status(&m, 0), ExecutionStatus::Failed);
                let failure = m.state.executions[0].failure().expect("a reason");
                assert_eq!(failure, "merge 'Both' failed: branch waits failed");
                // Reprocess revives the failed branch, and the merge fires again.
                assert!(super::super::reprocess(&mut m, 0));
                drive(&mut m, &env, ok);
                assert_eq!(status(&m, 0), ExecutionStatus::Completed);
                assert_eq!(rows(&m, &p).last(), Some(&row("After", Outcome::Succeeded)));
            }
        }
    }

    fn name_of(p: &Plan, run: &Run) -> String {
        p.node(run.node).name.clone()
    }
}

mod rule_8_policies {
    use super::*;

    #[test]
    fn a_critical_failure_fails_the_step_and_an_information_one_is_recorded() {
        let p = compile("F", |s| {
            s.action(
                step("Check")
                    .input_event(START)
                    .execution_policy("Note customer"),
            )
            .action(step("Strict").execution_policy("Needs customer"))
        });
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        let mut runs = Vec::new();
        drive(&mut m, &env, |run| {
            runs.push((run.runs, run.critical.clone()));
            if run.runs {
                ok(run)
            } else {
                fail(run.critical.as_deref().unwrap_or_default())
            }
        });
        assert_eq!(
            runs[0],
            (true, None),
            "an Information failure lets the step run"
        );
        assert!(!runs[1].0, "a Critical failure: the action does not run");
        assert_eq!(
            rows(&m, &p),
            [
                row("Check", Outcome::Succeeded),
                row("Strict", Outcome::Failed)
            ]
        );
        assert_eq!(m.journey[0].findings.len(), 1);
        assert_eq!(
            m.journey[0].findings[0].criticality,
            Criticality::Information
        );
        assert_eq!(m.journey[0].findings[0].record, RecordId::Order);
    }
}

mod rule_9_output_events {
    use super::*;

    #[test]
    fn a_finished_step_raises_its_outcome_event_which_starts_other_flows() {
        let first = compile("First", |s| s.action(step("Work").input_event(START)));
        let done = EventKind::new("Work has Succeeded");
        let second = compile("Second", |s| {
            s.action(step("Next").input_event(done.clone()))
        });
        let env = TestEnv::default()
            .with("First", first)
            .with("Second", second);
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        let kinds: Vec<String> = m
            .state
            .timeline
            .iter()
            .map(|e| e.kind.to_string())
            .collect();
        assert_eq!(
            kinds,
            ["New Order", "Work has Succeeded", "Next has Succeeded"]
        );
        assert_eq!(m.state.timeline[1].raised_by.as_deref(), Some("Work"));
        assert_eq!(m.state.executions.len(), 2);
        assert_eq!(status(&m, 1), ExecutionStatus::Completed);
    }
}

mod durability {
    use super::*;

    #[test]
    fn a_provider_call_is_committed_before_it_runs() {
        let p = compile("F", |s| {
            s.action(step("Check").input_event(START))
                .action(external("Send"))
        });
        let env = TestEnv::default().with("F", p);
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        let commands = drive(&mut m, &env, ok);
        let kinds: Vec<&str> = commands
            .iter()
            .map(|c| match c {
                Command::Run(r) if r.external => "run external",
                Command::Run(_) => "run",
                Command::Commit { .. } => "commit",
                Command::Load(_) => "load",
                Command::Idle => "idle",
            })
            .collect();
        assert_eq!(kinds, ["run", "commit", "run external", "idle"]);
    }

    #[test]
    fn a_retryable_failure_parks_the_token_on_a_durable_timer() {
        let p = compile("F", |s| s.action(external("Send").input_event(START)));
        let env = TestEnv::default().with("F", p);
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        let at = Timestamp(5_000);
        let commands = drive(&mut m, &env, |_| Done {
            result: Err("unavailable".into()),
            retry_at: Some(at),
            attempts: 1,
            snapshot: Some((Arc::new(order()), Default::default())),
            ..Done::default()
        });
        assert!(commands.contains(&Command::Commit { wake: Some(at) }));
        assert_eq!(m.state.next_wake(), Some(at));
        assert!(m.journey.is_empty(), "no row until the step settles");
        assert!(!super::super::wake_due(&mut m, Timestamp(4_999)));
        assert!(super::super::wake_due(&mut m, at));
        let mut attempts = Vec::new();
        drive(&mut m, &env, |run| {
            attempts.push(run.attempt);
            Done {
                attempts: 1,
                ..Done::default()
            }
        });
        assert_eq!(attempts, [2]);
        let last = m.journey.last().expect("the settled row");
        assert_eq!(last.outcome(), Outcome::Succeeded);
        assert_eq!(last.attempts, 2, "both attempts' calls count");
        assert_eq!(
            last.details()[0],
            Detail::Error("attempt 1 failed: unavailable".into())
        );
    }

    #[test]
    fn a_step_committed_as_under_way_runs_again_after_a_crash() {
        let p = compile("F", |s| s.action(external("Send").input_event(START)));
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        // Stop at the commit before the call, as a process that dies in the call.
        let first = m.advance(&env, Input::Go, T).expect("advances");
        assert_eq!(first, Command::Commit { wake: None });
        let committed = m.state.clone();
        assert_eq!(
            committed.executions[0].paths().collect::<Vec<_>>(),
            [PathStatus::Running]
        );
        let mut again = Machine::new(
            committed,
            Bounds {
                max_journey: 100,
                max_steps_per_turn: 1_000,
            },
        );
        again.set_plan(0, p);
        let commands = drive(&mut again, &env, ok);
        assert!(matches!(commands[0], Command::Commit { wake: None }));
        assert!(matches!(&commands[1], Command::Run(r) if r.external));
        assert_eq!(
            again.state.executions[0].status(),
            ExecutionStatus::Completed
        );
    }

    #[test]
    fn a_paused_flow_does_not_move_and_an_execution_without_a_plan_asks_for_it() {
        let p = compile("F", |s| s.action(step("Work").input_event(START)));
        let mut env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        env.paused.insert("F".into());
        assert_eq!(
            m.advance(&env, Input::Go, T).expect("advances"),
            Command::Idle
        );
        env.paused.clear();
        let mut fresh = Machine::new(
            m.state.clone(),
            Bounds {
                max_journey: 100,
                max_steps_per_turn: 1_000,
            },
        );
        assert_eq!(
            fresh.advance(&env, Input::Go, T).expect("advances"),
            Command::Load(0)
        );
        assert!(matches!(
            fresh.advance(&env, Input::Plan(0, p), T).expect("advances"),
            Command::Run(_)
        ));
    }

    #[test]
    fn cancel_ends_every_path_where_it_stands() {
        let p = compile("F", |s| {
            s.action(step("Validate").input_event(START))
                .action(step("On shipment").input_event(SHIPPED))
        });
        let env = TestEnv::default().with("F", p);
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        super::super::cancel(&mut m, 0, T);
        assert_eq!(status(&m, 0), ExecutionStatus::Cancelled);
        let last = m.journey.last().expect("a row");
        assert_eq!(last.outcome(), Outcome::Cancelled);
        assert_eq!(
            last.details(),
            [Detail::Cancelled(crate::journey::CancelledWhile::Waiting)]
        );
        assert!(!m.state.executions[0].is_live());
    }

    #[test]
    fn flows_that_start_each_other_fail_past_the_step_budget() {
        let ping = compile("Ping", |s| {
            s.action(step("Ping").input_event(EventKind::new("Pong has Succeeded")))
        });
        let pong = compile("Pong", |s| {
            s.action(step("Pong").input_event(EventKind::new("Ping has Succeeded")))
        });
        let env = TestEnv::default().with("Ping", ping).with("Pong", pong);
        let mut m = Machine::new(
            OrderState::new(order()),
            Bounds {
                max_journey: 1_000,
                max_steps_per_turn: 20,
            },
        );
        event(&mut m, &env, "e1", EventKind::new("Pong has Succeeded"));
        drive(&mut m, &env, ok);
        let failed: Vec<String> = m
            .state
            .executions
            .iter()
            .filter_map(|e| e.failure())
            .collect();
        assert!(!failed.is_empty());
        assert!(
            failed[0].contains("more than 20 steps in one turn"),
            "{failed:?}"
        );
    }

    #[test]
    fn a_path_past_the_journey_bound_fails() {
        let p = compile("F", |s| {
            s.action(step("One").input_event(START))
                .action(step("Two"))
                .action(step("Three"))
        });
        let env = TestEnv::default().with("F", p);
        let mut m = Machine::new(
            OrderState::new(order()),
            Bounds {
                max_journey: 2,
                max_steps_per_turn: 1_000,
            },
        );
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        assert_eq!(m.journey.len(), 2);
        let failure = m.state.executions[0].failure().expect("failed");
        assert!(failure.contains("journey limit of 2"), "{failure}");
    }
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
