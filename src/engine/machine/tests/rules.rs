//! One group of tests per rule of DESIGN §3.

mod rule_1_start {
    use super::super::*;

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
        let second = event(&mut m, &env, "e2", START);
        assert_eq!(m.state.executions.len(), 2);
        drive(&mut m, &env, ok);
        // The new execution's first step takes the event that started it, not the first.
        assert_eq!(m.state.executions[1].consumed, [second]);
        let last = m.journey.last().expect("a row");
        assert_eq!(last.details(), [Detail::TookEvent(second)]);
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
    use super::super::*;

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

    /// Each flow takes events for itself: one shipment is taken by every flow waiting for
    /// it, while within one flow an event is taken once, so a second step waiting for a
    /// shipment needs a second shipment.
    #[test]
    fn an_event_is_taken_once_per_flow() {
        let twice = compile("Twice", |s| {
            s.action(step("Start").input_event(START))
                .action(step("First shipment").input_event(SHIPPED))
                .action(step("Second shipment").input_event(SHIPPED))
        });
        let once = compile("Once", |s| {
            s.action(step("Begin").input_event(START))
                .action(step("Shipment").input_event(SHIPPED))
        });
        let env = TestEnv::default().with("Twice", twice).with("Once", once);
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        drive(&mut m, &env, ok);
        let first = event(&mut m, &env, "e2", SHIPPED);
        drive(&mut m, &env, ok);
        assert_eq!(
            status(&m, 0),
            ExecutionStatus::Waiting,
            "one shipment taken"
        );
        assert_eq!(
            status(&m, 1),
            ExecutionStatus::Completed,
            "the same shipment"
        );
        assert_eq!(m.state.executions[1].consumed, [1, first]);
        let second = event(&mut m, &env, "e3", SHIPPED);
        drive(&mut m, &env, ok);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
        assert_eq!(m.state.executions[0].consumed, [1, first, second]);
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
    use super::super::*;

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
    use super::super::*;

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
        assert!(reprocess(&mut m, 0));
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
    use super::super::*;

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
    use super::super::*;

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
    use super::super::*;

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
            drive(&mut m, &env, |run| waits_fails(&p, run));
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
                assert!(reprocess(&mut m, 0));
                drive(&mut m, &env, ok);
                assert_eq!(status(&m, 0), ExecutionStatus::Completed);
                assert_eq!(rows(&m, &p).last(), Some(&row("After", Outcome::Succeeded)));
            }
        }
    }

    /// A state 0.1 wrote can hold a path still ready right after a merge that failed with
    /// nothing to route the failure; the machine ends it Failed where it stands (it does
    /// not spin until the step budget runs out), and reprocess still revives the branch.
    #[test]
    fn a_ready_path_left_after_a_failed_merge_ends_failed() {
        let p = split_merge(false);
        let env = TestEnv::default().with("F", p.clone());
        let mut m = machine();
        event(&mut m, &env, "e1", START);
        event(&mut m, &env, "e2", SHIPPED);
        drive(&mut m, &env, |run| waits_fails(&p, run));
        let token = m.state.executions[0]
            .tokens
            .iter_mut()
            .find(|t| matches!(t.at, crate::execution::Position::Merged(_)))
            .expect("the failed merge's path");
        token.phase = Phase::Arrived;
        let journey = m.journey.len();
        drive(&mut m, &env, ok);
        assert_eq!(status(&m, 0), ExecutionStatus::Failed);
        let failure = m.state.executions[0].failure().unwrap_or_default();
        assert!(!failure.contains("steps in one turn"), "{failure}");
        assert_eq!(m.journey.len(), journey, "no step ran");
        assert!(reprocess(&mut m, 0));
        drive(&mut m, &env, ok);
        assert_eq!(status(&m, 0), ExecutionStatus::Completed);
    }

    /// The answer to every run: step "Waits" fails for want of stock, the others succeed.
    fn waits_fails(p: &Plan, run: &Run) -> Done {
        if name_of(p, run) == "Waits" {
            fail("no stock")
        } else {
            ok(run)
        }
    }

    fn name_of(p: &Plan, run: &Run) -> String {
        p.node(run.node).name.clone()
    }
}

mod rule_8_policies {
    use super::super::*;

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
    use super::super::*;

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
        // Each outcome event has its own id, `execution/path/step/round/index`, the same
        // whenever the step finishes again after a crash.
        let id = |i: usize| m.state.timeline[i].id.to_string();
        let exec = |e: usize| m.state.executions[e].id.to_string();
        assert!(id(1).starts_with(&format!("{}/", exec(0))), "{}", id(1));
        assert!(id(1).ends_with("/Work/0/0"), "{}", id(1));
        assert!(id(2).starts_with(&format!("{}/", exec(1))), "{}", id(2));
        assert!(id(2).ends_with("/Next/0/0"), "{}", id(2));
        assert_eq!(m.state.executions.len(), 2);
        assert_eq!(status(&m, 1), ExecutionStatus::Completed);
    }
}
