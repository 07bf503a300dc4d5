//! Unit tests of the execution state: selections, accepted calls, and state written by 0.1.

use super::{Execution, ExecutionId, Selection};
use crate::clock::Timestamp;
use crate::document::{FulfillmentOrderId, RecordId};

fn fo(id: &str) -> RecordId {
    RecordId::FulfillmentOrder(id.into())
}

#[test]
fn accepted_calls_are_kept_per_step_across_rounds_until_the_step_moves_on() {
    let mut exec = Execution::start(
        ExecutionId {
            order: "SO-1".into(),
            seq: 1,
        },
        "F".into(),
        semver::Version::new(1, 0, 0),
        0,
        super::Position::End,
        1,
        Timestamp(0),
    );
    exec.tokens.clear();
    exec.keep_accepted("Send A", vec![fo("1")]);
    exec.keep_accepted("Send B", vec![fo("1")]);
    exec.round = 1;
    exec.keep_accepted("Send A", vec![fo("1"), fo("2")]);
    let kept: Vec<(&str, u32, &RecordId)> = exec
        .accepted
        .iter()
        .map(|a| (a.step.as_str(), a.round, &a.record))
        .collect();
    assert_eq!(
        kept,
        [
            ("Send A", 0, &fo("1")),
            ("Send B", 0, &fo("1")),
            ("Send A", 1, &fo("2"))
        ],
        "one entry per step and record, from the round that made it"
    );
    exec.forget_accepted("Send A");
    assert_eq!(exec.accepted.len(), 1);
    assert_eq!(exec.accepted[0].step, "Send B");
}

fn fos(ids: &[&str]) -> Selection {
    Selection {
        lines: None,
        fulfillment_orders: Some(ids.iter().map(|i| FulfillmentOrderId::from(*i)).collect()),
    }
}

#[test]
fn union_keeps_order_and_all_absorbs() {
    let mut a = fos(&["1", "2"]);
    a.union(&fos(&["2", "3"]));
    assert_eq!(a, fos(&["1", "2", "3"]));
    a.union(&Selection::default());
    assert_eq!(a, Selection::default());
    let mut all = Selection::default();
    all.union(&fos(&["9"]));
    assert_eq!(all, Selection::default());
}

#[test]
fn state_written_by_0_1_reads_with_phases_for_its_tokens() {
    let json = serde_json::json!({
        "order": crate::document::Order::new("SO-1"),
        "revision": 3,
        "timeline": [],
        "executions": [{
            "id": {"order": "SO-1", "seq": 1}, "flow": "F", "version": "1.0.0",
            "trigger": 1, "round": 0, "joins": [], "next_token": 5, "steps": 2,
            "started": 0, "ended": null,
            "tokens": [
                {"id": 0, "at": {"node": 1}, "status": "waiting", "records": {},
                 "last": "succeeded", "admitted": true, "waited": false, "frames": []},
                {"id": 1, "at": {"node": 2}, "status": "retrying", "records": {},
                 "last": null, "admitted": true, "waited": true, "frames": [],
                 "attempt": 2, "wake_at": 900, "error": "attempt 1 failed: busy"},
                {"id": 2, "at": {"node": 3}, "status": "failed", "records": {},
                 "last": "failed", "admitted": true, "waited": true, "frames": [],
                 "error": "no stock"},
                {"id": 3, "at": {"node": 4}, "status": "running", "records": {},
                 "last": null, "admitted": true, "waited": true, "frames": []},
                {"id": 4, "at": "end", "status": "ready", "records": {},
                 "last": null, "admitted": false, "waited": false, "frames": []}
            ]
        }]
    });
    let state = super::OrderState::from_json(&json.to_string()).expect("reads");
    let phases: Vec<&super::Phase> = state.executions[0]
        .tokens
        .iter()
        .map(|t| &t.phase)
        .collect();
    assert_eq!(
        phases,
        [
            &super::Phase::Parked,
            &super::Phase::Retrying { at: Timestamp(900) },
            &super::Phase::Failed {
                error: "no stock".into(),
                resume: super::Resume::Admitted
            },
            &super::Phase::Calling,
            &super::Phase::Arrived,
        ]
    );
    assert_eq!(
        state.executions[0].tokens[1].earlier.as_deref(),
        Some("attempt 1 failed: busy")
    );
    assert_eq!(state.revision(), 3);
    assert_eq!(state.next_wake(), Some(Timestamp(900)));
    // And the current form round-trips.
    let again = serde_json::to_string(&state).expect("writes");
    assert_eq!(super::OrderState::from_json(&again).expect("reads"), state);
    assert!(super::OrderState::from_json("{}").is_err());
}
