//! Checks of order commits: revisions, conflicts, change sets, large states, journeys.

use std::sync::Arc;

use serde_json::json;

use super::fixtures::{
    Check, TokenStatus, at, change, execution, from_json, id_set, idle, running, step, timed, token,
};
use crate::document::{
    Decimal, FulfillmentOrder, FulfillmentOrderLine, LineId, Order, OrderLine, RecordId, State,
    StatusReason, Value,
};
use crate::event::{EventId, EventKind};
use crate::execution::{BranchState, Frame, OrderState, Phase, Position, Resume, Selection};
use crate::journey::{Detail, Outcome, TimelineEntry};
use crate::policy::Criticality;
use crate::store::{ChangeSet, Store};

pub(super) async fn revisions_round_trip(store: &dyn Store) {
    let c = Check("revisions_round_trip");
    let id = "SO-1";

    let created = idle(id, 1);
    c.commit(
        store,
        "creating commit (expected None)",
        change(None, created.clone(), Vec::new()),
    )
    .await;
    c.eq(
        "load after creating",
        c.load(store, id).await,
        Some(created),
    );

    // Each commit changes what it carries: the document, then an execution.
    let mut with_lines = idle(id, 2);
    Arc::make_mut(&mut with_lines.order).lines = Order::new(id)
        .with_line(OrderLine::new("1", "Widget", 2))
        .with_line(OrderLine::new("2", "Gadget", Decimal::new(15, 1)))
        .lines;
    let mut with_execution = timed(id, 3, &[]);
    with_execution.order =
        Arc::new(Order::new(id).with_line(OrderLine::new("2", "Gadget", Decimal::new(15, 1))));
    let mut finished = with_execution.clone();
    finished.revision = 4;
    finished.executions[0].tokens.clear();
    finished.executions[0].ended = Some(at(30));
    let mut before = c.load(store, id).await;
    for (state, what) in [
        (with_lines, "a commit adding lines"),
        (
            with_execution,
            "a commit removing a line and adding an execution",
        ),
        (finished, "a commit ending the execution"),
    ] {
        c.commit(store, what, ChangeSet::diff(before.as_ref(), &state))
            .await;
        before = c.load(store, id).await;
        c.eq(&format!("load after {what}"), before.clone(), Some(state));
    }
    let finished = before.unwrap_or_else(|| c.fail("load after the commits", "found None"));

    // The stored revision is the state's own, not one the store counts itself.
    let mut jumped = finished.clone();
    jumped.revision = 1_000_000_007;
    c.commit(
        store,
        "a commit to revision 1000000007",
        ChangeSet::diff(Some(&finished), &jumped),
    )
    .await;
    c.eq(
        "load after a commit to revision 1000000007",
        c.load(store, id).await,
        Some(jumped.clone()),
    );
    let mut next = jumped.clone();
    next.revision = 1_000_000_008;
    c.commit(
        store,
        "a commit expecting revision 1000000007",
        ChangeSet::diff(Some(&jumped), &next),
    )
    .await;
    c.eq(
        "load after a commit expecting revision 1000000007",
        c.load(store, id).await,
        Some(next),
    );

    c.eq(
        "load(SO-2) (another order)",
        c.load(store, "SO-2").await,
        None,
    );
}

pub(super) async fn conflicting_commits_change_nothing(store: &dyn Store) {
    let c = Check("conflicting_commits_change_nothing");
    let id = "SO-1";
    let first = timed(id, 1, &[]);
    c.commit(
        store,
        "creating commit",
        change(None, first, vec![step(id, "a")]),
    )
    .await;
    let mut second = timed(id, 2, &[]);
    Arc::make_mut(&mut second.order).customer = Some("C-1".to_owned());
    c.commit(
        store,
        "commit expecting revision 1",
        change(Some(1), second.clone(), vec![step(id, "b")]),
    )
    .await;

    // Every rejected commit would have changed the order, added a row, ended the
    // execution and set a timer.
    let mut rejected = timed(id, 3, &[500]);
    Arc::make_mut(&mut rejected.order).customer = Some("someone else".to_owned());
    rejected.executions[0]
        .tokens
        .push(token(7, TokenStatus::Ready, None));
    let mut ended = running(id, 3, Vec::new());
    Arc::make_mut(&mut ended.order).customer = Some("someone else".to_owned());

    let journey = vec![step(id, "a"), step(id, "b")];
    let cases = [
        (
            Some(1),
            &rejected,
            "a stale expected revision (1, stored 2)",
        ),
        (
            Some(3),
            &rejected,
            "a future expected revision (3, stored 2)",
        ),
        (Some(0), &ended, "a wrong expected revision (0, stored 2)"),
        (
            None,
            &rejected,
            "a creating commit (expected None) for a stored order",
        ),
    ];
    for (expected, state, what) in cases {
        let commit = change(expected, state.clone(), vec![step(id, "rejected")]);
        c.conflict(&format!("commit with {what}"), store.commit(commit).await);
        c.eq(
            &format!("load after a commit with {what}"),
            c.load(store, id).await,
            Some(second.clone()),
        );
        c.eq(
            &format!("journey after a commit with {what}"),
            c.journey(store, id).await,
            journey.clone(),
        );
        c.eq(
            &format!("live_orders() after a commit with {what}"),
            c.live(store).await,
            id_set(&[id]),
        );
        c.eq(
            &format!("due(T+10^9, 10) after a commit with {what}"),
            c.due(store, 1_000_000_000, 10).await,
            Vec::new(),
        );
        c.eq(
            &format!("next_due() after a commit with {what}"),
            c.next_due(store).await,
            None,
        );
    }

    let unknown = "SO-404";
    let ghost = timed(unknown, 2, &[500]);
    c.conflict(
        "commit expecting revision 1 of an order never stored",
        store
            .commit(change(Some(1), ghost, vec![step(unknown, "ghost")]))
            .await,
    );
    c.eq(
        "load(SO-404) after a conflicting commit",
        c.load(store, unknown).await,
        None,
    );
    c.eq(
        "journey(SO-404) after a conflicting commit",
        c.journey(store, unknown).await,
        Vec::new(),
    );
    c.eq(
        "live_orders() after a conflicting commit to SO-404",
        c.live(store).await,
        id_set(&[id]),
    );
    c.eq(
        "next_due() after a conflicting commit to SO-404",
        c.next_due(store).await,
        None,
    );

    // The order still takes a commit from its stored revision.
    let third = running(id, 3, Vec::new());
    c.commit(
        store,
        "commit expecting revision 2 after the conflicts",
        change(Some(2), third.clone(), Vec::new()),
    )
    .await;
    c.eq(
        "load after the conflicts and a good commit",
        c.load(store, id).await,
        Some(third),
    );
}

/// An order with 1,000 lines, a long timeline and executions using every token field.
fn large_state(id: &str) -> OrderState {
    let tricky = "Ünïcödé — \"quoted\", 'single', back\\slash, new\nline, tab\t, emoji 📦";
    let mut order = Order::new(id)
        .with_order_source("Web shop")
        .with_ship_to_country("NZ")
        .with_custom("gift", true)
        .with_custom("priority", 3)
        .with_custom("share", Decimal::ONE / Decimal::from(3))
        .with_custom("least", Decimal::MIN)
        .with_custom("note", tricky)
        .with_custom("nothing", Value::Null);
    order.order_number = Some("SO-1000".to_owned());
    order.customer = Some("Contoso".to_owned());
    order.currency = Some("EUR".to_owned());
    order.status_reason = Some(StatusReason::ORDER_VALIDATION_SUCCESS);
    for n in 0..1_000u32 {
        let mut line = OrderLine::new(
            format!("{n}"),
            format!("P-{:05}", n * 7),
            Decimal::new(i64::from(n % 9) * 100 + 25, 2),
        );
        line.unit = Some(if n % 2 == 0 { "ea" } else { "kg" }.to_owned());
        line.price = Some(Decimal::new(i64::from(n) * 150, 2));
        if n % 3 == 0 {
            line.fulfillment_source = Some(format!("Store {}", n % 10));
            line.split_group = Some(format!("G{}", n % 4));
        }
        if n % 5 == 0 {
            line.requested_delivery_date = Some("2026-12-01".to_owned());
            line.state = State::Inactive;
            line.status_reason = Some(StatusReason::new(format!("Reason {n}")));
        }
        if n % 7 == 0 {
            line.custom.insert("note".to_owned(), Value::from(tricky));
            line.custom
                .insert("weight".to_owned(), Value::from(Decimal::new(n.into(), 2)));
            line.custom
                .insert("fragile".to_owned(), Value::from(n % 2 == 0));
        }
        order.lines.push(line);
    }
    for s in 0..10u32 {
        let mut fo = FulfillmentOrder::new(format!("FO-{s}"), format!("Store {s}"));
        for n in (0..1_000u32).filter(|n| n % 10 == s).take(20) {
            fo.lines.push(FulfillmentOrderLine::new(
                format!("{n}"),
                format!("P-{:05}", n * 7),
                Decimal::new(i64::from(n % 9) * 100 + 25, 2),
            ));
        }
        order.fulfillment_orders.push(fo);
    }

    // Decimals no double holds: every store must give back each digit and the scale.
    order.lines[1].quantity = Decimal::MAX;
    order.lines[2].quantity = Decimal::new(3, 28);
    order.lines[3].price = Some(Decimal::from_i128_with_scale(
        1_234_567_890_123_456_789_012_345_678,
        10,
    ));
    order.lines[4].quantity = Decimal::new(30_000, 5);
    let mut state = OrderState::new(order);
    state.revision = 42;
    for seq in 1..=1_500u64 {
        let kind = if seq == 1 {
            EventKind::NEW_ORDER
        } else {
            EventKind::new(format!("Event {}", seq % 13))
        };
        let record = match seq % 3 {
            0 => None,
            1 => Some(RecordId::Line(LineId::from(format!("{}", seq % 1_000)))),
            _ => Some(RecordId::FulfillmentOrderLine(
                format!("FO-{}", seq % 10).into(),
                (seq % 20) as usize,
            )),
        };
        let entry: TimelineEntry = from_json(
            "timeline entry",
            json!({
                "seq": seq,
                "id": EventId::from(format!("evt-{seq}")),
                "kind": kind,
                "record": record,
                "at": at(seq * 10),
                "raised_by": (seq % 2 == 0).then(|| format!("Step {seq} {tricky}")),
            }),
        );
        state.timeline.push(entry);
    }

    let mut retrying = token(3, TokenStatus::Retrying, Some(90_000));
    retrying.attempt = 4;
    retrying.calls = 6;
    retrying.earlier = Some(format!("provider timed out: {tricky}"));
    retrying.records = Selection {
        lines: Some((0..50u32).map(|n| LineId::from(format!("{n}"))).collect()),
        fulfillment_orders: Some(vec!["FO-1".into(), "FO-2".into()]),
    };
    retrying.frames = vec![Frame { join: 2, branch: 1 }];
    retrying.last = Some(Outcome::Succeeded);
    retrying.trigger = None;
    let mut failed = token(4, TokenStatus::Failed, None);
    failed.at = Position::Merged(2);
    failed.last = Some(Outcome::Failed);
    failed.phase = Phase::Failed {
        error: "merge 'Merge' failed: branch B failed".to_owned(),
        resume: Resume::Arrived,
    };
    failed.absorbed = vec![token(5, TokenStatus::Failed, None)];
    let mut arriving = token(6, TokenStatus::Waiting, None);
    arriving.at = Position::Arrive { join: 2, branch: 0 };
    let mut live = execution(id, 2, vec![retrying, failed, arriving]);
    live.round = 2;
    live.trigger = 1_400;
    live.next_token = 7;
    live.steps = 123;
    live.consumed = (1..200).collect();
    live.joins = vec![from_json(
        "merge state",
        json!({
            "join": 2,
            "branches": [
                BranchState { entered: true, arrived: true },
                BranchState { entered: true, arrived: false },
            ],
            "input": Selection::default(),
            "records": Selection { lines: Some(vec!["1".into()]), fulfillment_orders: None },
            "frames": [Frame { join: 0, branch: 3 }],
            "fired": false,
        }),
    )];
    let mut done = execution(id, 1, Vec::new());
    done.flow = format!("Validate {tricky}");
    done.version = "2.1.0-beta.3".parse().expect("a valid version");
    done.ended = Some(at(5_000));
    let mut end = token(0, TokenStatus::Ready, None);
    end.at = Position::End;
    state.executions = vec![done, live, execution(id, 3, vec![end])];
    state
}

/// Where two states first differ, so a failure names it instead of printing both.
fn first_difference(found: &OrderState, expected: &OrderState) -> String {
    if found.revision != expected.revision {
        return format!(
            "revision: expected {}, found {}",
            expected.revision, found.revision
        );
    }
    let (fl, el) = (&found.order.lines, &expected.order.lines);
    if fl.len() != el.len() {
        return format!("order lines: expected {}, found {}", el.len(), fl.len());
    }
    if let Some(n) = (0..el.len()).find(|&n| fl[n] != el[n]) {
        return format!("order line {n}: expected {:?}, found {:?}", el[n], fl[n]);
    }
    if found.order != expected.order {
        return format!(
            "order header or fulfillment orders: expected {:?}, found {:?}",
            expected.order, found.order
        );
    }
    let (ft, et) = (&found.timeline, &expected.timeline);
    if ft.len() != et.len() {
        return format!(
            "timeline entries: expected {}, found {}",
            et.len(),
            ft.len()
        );
    }
    if let Some(n) = (0..et.len()).find(|&n| ft[n] != et[n]) {
        return format!(
            "timeline entry {n}: expected {:?}, found {:?}",
            et[n], ft[n]
        );
    }
    format!(
        "executions: expected {:?}, found {:?}",
        expected.executions, found.executions
    )
}

pub(super) async fn large_state_round_trips(store: &dyn Store) {
    let c = Check("large_state_round_trips");
    let id = "SO-LARGE";
    let state = large_state(id);
    c.commit(
        store,
        "creating commit of a large state",
        change(None, state.clone(), Vec::new()),
    )
    .await;
    match c.load(store, id).await {
        None => c.fail(
            "load after committing a large state",
            "expected Some, found None",
        ),
        Some(found) if found != state => c.fail(
            "load after committing a large state",
            first_difference(&found, &state),
        ),
        Some(found) => {
            // Decimals compare by value; the digits written must come back too (0.30000
            // stays 0.30000).
            let digits = |s: &OrderState| {
                s.order
                    .lines
                    .iter()
                    .map(|l| format!("{} {:?}", l.quantity, l.price.map(|p| p.to_string())))
                    .collect::<Vec<_>>()
            };
            c.eq(
                "the digits of quantities and prices after loading a large state",
                digits(&found),
                digits(&state),
            );
        }
    }
    c.eq(
        "next_due() with the large state's retrying token",
        c.next_due(store).await,
        Some(at(90_000)),
    );
    c.eq(
        "live_orders() with the large state",
        c.live(store).await,
        id_set(&[id]),
    );

    let mut next = state.clone();
    next.revision = 43;
    let document = Arc::make_mut(&mut next.order);
    document.lines.truncate(999);
    document.lines[998].quantity = Decimal::new(10_005, 1);
    let mut entry = state.timeline[state.timeline.len() - 1].clone();
    entry.seq += 1;
    next.timeline.push(entry);
    c.commit(
        store,
        "commit of a large state with one line fewer and one more entry",
        ChangeSet::diff(Some(&state), &next),
    )
    .await;
    match c.load(store, id).await {
        None => c.fail("load after the second commit", "expected Some, found None"),
        Some(found) if found != next => c.fail(
            "load after the second commit of a large state",
            first_difference(&found, &next),
        ),
        Some(_) => {}
    }
}

pub(super) async fn journey_in_commit_order(store: &dyn Store) {
    let c = Check("journey_in_commit_order");
    let (a, b) = ("SO-A", "SO-B");
    let mut failed = step(a, "a3");
    failed.outcome = Outcome::Failed;
    failed.attempts = 3;
    failed.round = 1;
    failed.details = vec![
        Detail::Error("provider said no".to_owned()),
        Detail::Note("gave up".to_owned()),
    ];
    failed.findings = vec![from_json(
        "finding",
        json!({
            "policy": "Has customer",
            "criticality": Criticality::Critical,
            "record": RecordId::Line("1".into()),
            "reason": "the order has no customer",
        }),
    )];
    let mut skipped = step(a, "a4");
    skipped.outcome = Outcome::Skipped;
    skipped.records = Selection {
        lines: Some(Vec::new()),
        fulfillment_orders: Some(Vec::new()),
    };
    skipped.details = Vec::new();

    let commits = [
        (a, None, 1, vec![step(a, "a1"), step(a, "a2")]),
        (b, None, 1, vec![step(b, "b1")]),
        (a, Some(1), 2, Vec::new()),
        (a, Some(2), 3, vec![failed.clone(), skipped.clone()]),
        (b, Some(1), 2, vec![step(b, "b2")]),
        (a, Some(3), 4, vec![step(a, "a5")]),
    ];
    for (id, expected, revision, rows) in commits {
        let what = format!(
            "commit of {id} revision {revision} with {} rows",
            rows.len()
        );
        c.commit(store, &what, change(expected, idle(id, revision), rows))
            .await;
    }
    c.eq(
        "journey(SO-A)",
        c.journey(store, a).await,
        vec![step(a, "a1"), step(a, "a2"), failed, skipped, step(a, "a5")],
    );
    c.eq(
        "journey(SO-B)",
        c.journey(store, b).await,
        vec![step(b, "b1"), step(b, "b2")],
    );
    c.eq(
        "journey(SO-C) (never stored)",
        c.journey(store, "SO-C").await,
        Vec::new(),
    );
}

/// A timeline entry at position `seq`, for order `id`.
fn entry(id: &str, seq: u64) -> TimelineEntry {
    from_json(
        "timeline entry",
        json!({
            "seq": seq,
            "id": EventId::from(format!("{id}-evt-{seq}")),
            "kind": EventKind::from("Custom"),
            "record": RecordId::Line("1".into()),
            "at": at(seq * 10),
            "raised_by": if seq % 2 == 0 { json!("Validate") } else { json!(null) },
        }),
    )
}

pub(super) async fn change_sets_apply_what_they_carry(store: &dyn Store) {
    let c = Check("change_sets_apply_what_they_carry");
    let id = "SO-CS";
    let mut created = idle(id, 1);
    created.order = Arc::new(
        Order::new(id)
            .with_line(OrderLine::new("1", "Widget", 2))
            .with_line(OrderLine::new("2", "Gadget", Decimal::new(15, 1))),
    );
    for seq in 1..=3 {
        created.executions.push(execution(
            id,
            seq,
            vec![token(seq, TokenStatus::Ready, None)],
        ));
    }
    created.timeline = vec![entry(id, 1), entry(id, 2)];
    c.commit(
        store,
        "creating commit with three executions and two entries",
        ChangeSet::diff(None, &created).with_journey(vec![step(id, "a")]),
    )
    .await;

    // Only the second execution moves, one entry and one row are added.
    let mut second = created.clone();
    second.revision = 2;
    second.executions[1].tokens[0].phase = Phase::Parked;
    second.executions[1].steps = 1;
    second.timeline.push(entry(id, 3));
    let change = ChangeSet::diff(Some(&created), &second).with_journey(vec![step(id, "b")]);
    c.eq(
        "fixture: the second commit carries no document",
        change.document.is_none(),
        true,
    );
    c.eq(
        "fixture: the second commit's executions",
        change.executions.iter().map(|e| e.id.seq).collect(),
        vec![2],
    );
    c.commit(store, "commit of one execution out of three", change)
        .await;
    c.eq(
        "load after a commit of one execution out of three (the others and the document kept, the entry appended)",
        c.load(store, id).await,
        Some(second.clone()),
    );

    // A commit of the document alone keeps every execution and the timeline.
    let mut third = second.clone();
    third.revision = 3;
    Arc::make_mut(&mut third.order).customer = Some("Contoso".to_owned());
    let mut change = ChangeSet::indexes(Some(2), &third);
    change.document = Some(third.order.clone());
    c.commit(store, "commit of the document alone", change)
        .await;
    c.eq(
        "load after a commit of the document alone",
        c.load(store, id).await,
        Some(third.clone()),
    );

    // A new execution is added after the others; entries and rows keep accumulating.
    let mut fourth = third.clone();
    fourth.revision = 4;
    fourth.executions.push(execution(id, 4, Vec::new()));
    fourth.timeline.extend([entry(id, 4), entry(id, 5)]);
    let change =
        ChangeSet::diff(Some(&third), &fourth).with_journey(vec![step(id, "c"), step(id, "d")]);
    c.commit(store, "commit adding an execution and two entries", change)
        .await;
    c.eq(
        "load after a commit adding an execution and two entries",
        c.load(store, id).await,
        Some(fourth.clone()),
    );

    // A commit carrying nothing but its revision keeps everything.
    let mut fifth = fourth.clone();
    fifth.revision = 5;
    c.commit(
        store,
        "commit of nothing but a revision",
        ChangeSet::diff(Some(&fourth), &fifth),
    )
    .await;
    c.eq(
        "load after a commit of nothing but a revision",
        c.load(store, id).await,
        Some(fifth.clone()),
    );

    // A partial commit from a stale revision changes nothing.
    let mut stale = third.clone();
    stale.revision = 6;
    stale.executions[0].tokens.clear();
    stale.timeline.push(entry(id, 4));
    c.conflict(
        "partial commit expecting revision 3 (stored 5)",
        store
            .commit(ChangeSet::diff(Some(&third), &stale).with_journey(vec![step(id, "x")]))
            .await,
    );
    c.eq(
        "load after a partial commit from a stale revision",
        c.load(store, id).await,
        Some(fifth),
    );
    c.eq(
        "journey after every commit (rows accumulate in commit order)",
        c.journey(store, id).await,
        vec![step(id, "a"), step(id, "b"), step(id, "c"), step(id, "d")],
    );
}
