//! Commits before provider calls, durable retries, crash recovery, pauses, cancel, and the
//! bounds that keep a turn finite.

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
    assert!(!wake_due(&mut m, Timestamp(4_999)));
    assert!(wake_due(&mut m, at));
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
    cancel(&mut m, 0, T);
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

/// The step budget is what a turn may take, not one less: a flow of three actions moves
/// four times (each action, then the path's end), and runs to its end on a budget of four.
#[test]
fn a_turn_may_take_exactly_its_step_budget() {
    let p = compile("F", |s| {
        s.action(step("One").input_event(START))
            .action(step("Two"))
            .action(step("Three"))
    });
    let env = TestEnv::default().with("F", p.clone());
    let run = |budget| {
        let mut m = Machine::new(
            OrderState::new(order()),
            Bounds {
                max_journey: 1_000,
                max_steps_per_turn: budget,
            },
        );
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        m
    };
    let m = run(4);
    assert_eq!(status(&m, 0), ExecutionStatus::Completed);
    assert_eq!(
        rows(&m, &p),
        [
            row("One", Outcome::Succeeded),
            row("Two", Outcome::Succeeded),
            row("Three", Outcome::Succeeded)
        ]
    );
    let m = run(3);
    let failure = m.state.executions[0].failure().expect("failed");
    assert!(
        failure.contains("more than 3 steps in one turn"),
        "{failure}"
    );
}

/// An order whose flow ran its first step and waits for a shipment.
fn waiting_for_shipment() -> (Arc<Plan>, TestEnv, Machine) {
    let p = compile("F", |s| {
        s.action(step("Start").input_event(START))
            .action(step("On shipment").input_event(SHIPPED))
    });
    let env = TestEnv::default().with("F", p.clone());
    let mut m = machine();
    event(&mut m, &env, "e1", START);
    drive(&mut m, &env, ok);
    assert_eq!(status(&m, 0), ExecutionStatus::Waiting);
    (p, env, m)
}

/// Starts another turn on the machine, with room for `budget` steps.
fn next_turn(m: &mut Machine, budget: u64) {
    m.bounds.max_steps_per_turn = budget;
    m.taken = 0;
}

/// A path the step budget failed takes its step up from where it stood: one that had just
/// reached a step goes through the step's filter again on reprocess (here the filter
/// admits nothing, so the step is skipped rather than run).
#[test]
fn a_path_failed_by_the_step_budget_is_filtered_again_on_reprocess() {
    let p = compile("F", |s| {
        s.action(step("One").input_event(START))
            .action(step("Two").filter("Nothing"))
            .action(step("Three"))
    });
    let env = TestEnv::default().with("F", p.clone());
    let mut m = machine();
    m.bounds.max_steps_per_turn = 1;
    event(&mut m, &env, "e1", START);
    drive(&mut m, &env, ok);
    assert_eq!(status(&m, 0), ExecutionStatus::Failed);
    assert_eq!(rows(&m, &p), [row("One", Outcome::Succeeded)]);
    // The next turn, with room to move.
    next_turn(&mut m, 1_000);
    assert!(reprocess(&mut m, 0));
    drive(&mut m, &env, ok);
    assert_eq!(
        rows(&m, &p),
        [row("One", Outcome::Succeeded), row("Two", Outcome::Skipped)]
    );
}

/// A path woken by its input event and then failed by the step budget before it moved
/// still takes that event on reprocess: the journey says which event the step took.
#[test]
fn a_woken_path_failed_by_the_step_budget_takes_its_event_on_reprocess() {
    let (p, env, mut m) = waiting_for_shipment();
    // A turn with no room at all: the woken path fails before it moves.
    next_turn(&mut m, 0);
    let shipped = event(&mut m, &env, "e2", SHIPPED);
    drive(&mut m, &env, ok);
    assert_eq!(status(&m, 0), ExecutionStatus::Failed);
    next_turn(&mut m, 1_000);
    assert!(reprocess(&mut m, 0));
    drive(&mut m, &env, ok);
    assert_eq!(status(&m, 0), ExecutionStatus::Completed);
    let last = m.journey.last().expect("a row");
    assert_eq!(name(&p, last), "On shipment");
    assert_eq!(last.details(), [Detail::TookEvent(shipped)]);
}

/// An execution ends when its last path does: not while a path waits for an event, and at
/// the moment the last one finished.
#[test]
fn an_execution_ends_when_its_last_path_does() {
    let (_, env, mut m) = waiting_for_shipment();
    assert_eq!(
        m.state.executions[0].ended(),
        None,
        "it waits, it has not ended"
    );
    event(&mut m, &env, "e2", SHIPPED);
    let later = Timestamp(T.0 + 500);
    let mut input = Input::Go;
    loop {
        match m.advance(&env, input, later).expect("advances") {
            Command::Idle => break,
            Command::Run(_) => input = Input::Done(Done::default()),
            Command::Commit { .. } => {
                m.committed();
                input = Input::Go;
            }
            Command::Load(e) => panic!("execution {e} has no plan"),
        }
    }
    assert_eq!(status(&m, 0), ExecutionStatus::Completed);
    assert_eq!(m.state.executions[0].ended(), Some(later));
}

/// A turn left under way is taken up once its resume time has come, and not before.
#[test]
fn an_unfinished_turn_is_taken_up_once_its_resume_time_comes() {
    let mut m = machine();
    m.state.resume_at = Some(Timestamp(5_000));
    assert!(!wake_due(&mut m, Timestamp(4_999)));
    assert_eq!(m.state.resume_at, Some(Timestamp(5_000)));
    assert!(wake_due(&mut m, Timestamp(5_000)));
    assert_eq!(m.state.resume_at, None);
    assert!(m.changes.any, "the turn commits that it took the order up");
}
