//! Checks of what the store indexes: live orders, durable timers, concurrent commits, orders
//! set aside and purges.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::json;

use super::fixtures::{
    Check, TokenStatus, at, change, from_json, id_set, idle, ids, running, step, timed, token,
};
use crate::document::OrderId;
use crate::event::{EventId, EventKind};
use crate::execution::OrderState;
use crate::store::{SetAside, Store, StoreErrorKind};

pub(super) async fn live_orders_follow_commits(store: &dyn Store) {
    let c = Check("live_orders_follow_commits");
    let states = [
        timed("L-READY", 1, &[]),
        running("L-WAITING", 1, vec![token(0, TokenStatus::Waiting, None)]),
        running("L-FAILED", 1, vec![token(0, TokenStatus::Failed, None)]),
        timed("L-RETRYING", 1, &[100]),
        idle("L-IDLE", 1),
        running("L-DONE", 1, Vec::new()),
    ];
    for state in &states {
        let what = format!("creating commit of {}", state.id());
        c.commit(store, &what, change(None, state.clone(), Vec::new()))
            .await;
    }
    let expected = states
        .iter()
        .filter(|s| s.has_live())
        .map(|s| s.id().clone())
        .collect::<BTreeSet<_>>();
    c.eq(
        "fixture: the live orders",
        expected.clone(),
        id_set(&["L-READY", "L-WAITING", "L-FAILED", "L-RETRYING"]),
    );
    c.eq(
        "live_orders() after creating six orders",
        c.live(store).await,
        expected,
    );

    c.commit(
        store,
        "commit ending L-READY's execution",
        change(Some(1), running("L-READY", 2, Vec::new()), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "commit starting an execution on L-IDLE",
        change(Some(1), timed("L-IDLE", 2, &[]), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "commit ending L-FAILED's execution",
        change(Some(1), running("L-FAILED", 2, Vec::new()), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "commit keeping L-WAITING live",
        change(Some(1), timed("L-WAITING", 2, &[]), Vec::new()),
    )
    .await;
    c.eq(
        "live_orders() after four more commits",
        c.live(store).await,
        id_set(&["L-WAITING", "L-RETRYING", "L-IDLE"]),
    );
}

pub(super) async fn due_follows_timers(store: &dyn Store) {
    let c = Check("due_follows_timers");
    let far = 1_000_000_000;
    // C's earliest timer is its second token's; its waiting token's stale `wake_at` is no
    // timer, and E holds no token.
    let mut c_state = timed("T-C", 1, &[250, 200]);
    c_state.executions[0]
        .tokens
        .push(token(9, TokenStatus::Waiting, Some(5)));
    let states = [
        timed("T-A", 1, &[300]),
        timed("T-B", 1, &[100]),
        c_state,
        timed("T-D", 1, &[]),
        idle("T-F", 1),
    ];
    for state in &states {
        let what = format!("creating commit of {}", state.id());
        c.commit(store, &what, change(None, state.clone(), Vec::new()))
            .await;
    }
    c.eq(
        "fixture: the orders' next_wake()",
        states.iter().map(OrderState::next_wake).collect(),
        vec![Some(at(300)), Some(at(100)), Some(at(200)), None, None],
    );

    c.eq("next_due()", c.next_due(store).await, Some(at(100)));
    c.eq("due(T+99, 10)", c.due(store, 99, 10).await, Vec::new());
    c.eq(
        "due(T+100, 10) (a timer exactly at now is due)",
        c.due(store, 100, 10).await,
        ids(&["T-B"]),
    );
    c.eq(
        "due(T+299, 10)",
        c.due(store, 299, 10).await,
        ids(&["T-B", "T-C"]),
    );
    c.eq(
        "due(T+10^9, 10)",
        c.due(store, far, 10).await,
        ids(&["T-B", "T-C", "T-A"]),
    );
    c.eq(
        "due(T+10^9, 2) (limit)",
        c.due(store, far, 2).await,
        ids(&["T-B", "T-C"]),
    );
    c.eq(
        "due(T+10^9, 1) (limit)",
        c.due(store, far, 1).await,
        ids(&["T-B"]),
    );
    c.eq(
        "due(T+10^9, 0) (limit)",
        c.due(store, far, 0).await,
        Vec::new(),
    );

    c.commit(
        store,
        "commit clearing T-B's timer (still live)",
        change(Some(1), timed("T-B", 2, &[]), Vec::new()),
    )
    .await;
    c.eq(
        "due(T+10^9, 10) after clearing T-B's timer",
        c.due(store, far, 10).await,
        ids(&["T-C", "T-A"]),
    );
    c.eq(
        "next_due() after clearing T-B's timer",
        c.next_due(store).await,
        Some(at(200)),
    );

    c.commit(
        store,
        "commit moving T-A's timer from T+300 to T+50",
        change(Some(1), timed("T-A", 2, &[50]), Vec::new()),
    )
    .await;
    c.eq(
        "due(T+10^9, 10) after moving T-A's timer earlier",
        c.due(store, far, 10).await,
        ids(&["T-A", "T-C"]),
    );
    c.eq(
        "next_due() after moving T-A's timer earlier",
        c.next_due(store).await,
        Some(at(50)),
    );
    c.eq(
        "due(T+49, 10) after moving T-A's timer earlier",
        c.due(store, 49, 10).await,
        Vec::new(),
    );

    c.commit(
        store,
        "commit moving T-C's timer from T+200 to T+400",
        change(Some(1), timed("T-C", 2, &[400]), Vec::new()),
    )
    .await;
    c.eq(
        "due(T+399, 10) after moving T-C's timer later",
        c.due(store, 399, 10).await,
        ids(&["T-A"]),
    );
    c.commit(
        store,
        "commit setting a timer on T-F",
        change(Some(1), timed("T-F", 2, &[60]), Vec::new()),
    )
    .await;
    c.eq(
        "due(T+10^9, 10) after setting a timer on T-F",
        c.due(store, far, 10).await,
        ids(&["T-A", "T-F", "T-C"]),
    );

    for (id, what) in [
        ("T-A", "commit ending T-A's execution"),
        ("T-F", "commit ending T-F's execution"),
    ] {
        c.commit(
            store,
            what,
            change(Some(2), running(id, 3, Vec::new()), Vec::new()),
        )
        .await;
    }
    c.eq(
        "due(T+10^9, 10) after ending T-A and T-F",
        c.due(store, far, 10).await,
        ids(&["T-C"]),
    );
    c.eq(
        "next_due() after ending T-A and T-F",
        c.next_due(store).await,
        Some(at(400)),
    );
    c.commit(
        store,
        "commit clearing T-C's timer",
        change(Some(2), timed("T-C", 3, &[]), Vec::new()),
    )
    .await;
    c.eq(
        "due(T+10^9, 10) with no timers left",
        c.due(store, far, 10).await,
        Vec::new(),
    );
    c.eq(
        "next_due() with no timers left",
        c.next_due(store).await,
        None,
    );

    // Orders due at the same time are all listed, in some order.
    for id in ["T-X", "T-Y", "T-Z"] {
        let what = format!("creating commit of {id} with a timer at T+700");
        c.commit(store, &what, change(None, timed(id, 1, &[700]), Vec::new()))
            .await;
    }
    let found: BTreeSet<OrderId> = c.due(store, 700, 10).await.into_iter().collect();
    c.eq(
        "due(T+700, 10) with three timers at T+700",
        found,
        id_set(&["T-X", "T-Y", "T-Z"]),
    );
    c.eq(
        "due(T+700, 2) with three timers at T+700 (limit)",
        c.due(store, 700, 2).await.len(),
        2,
    );
}

pub(super) async fn concurrent_commits_to_distinct_orders(store: &dyn Store) {
    let c = Check("concurrent_commits_to_distinct_orders");
    let count = 200u64;
    let id = |n: u64| format!("C-{n:03}");
    let results = join_all((0..count).map(|n| {
        let order = id(n);
        let state = timed(&order, 1, &[1_000 + n]);
        let row = step(&order, "created");
        store.commit(change(None, state, vec![row]))
    }))
    .await;
    for (n, result) in (0..count).zip(results) {
        c.ok(&format!("concurrent creating commit of {}", id(n)), result);
    }
    for n in 0..count {
        let order = id(n);
        c.eq(
            &format!("load({order}) after the concurrent commits"),
            c.load(store, &order).await,
            Some(timed(&order, 1, &[1_000 + n])),
        );
        c.eq(
            &format!("journey({order}) after the concurrent commits"),
            c.journey(store, &order).await,
            vec![step(&order, "created")],
        );
    }
    let all: Vec<String> = (0..count).map(id).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    c.eq(
        "live_orders() after the concurrent commits",
        c.live(store).await,
        id_set(&all),
    );
    c.eq(
        "due(T+10^9, 1000) after the concurrent commits",
        c.due(store, 1_000_000_000, 1_000).await,
        ids(&all),
    );
    c.eq(
        "next_due() after the concurrent commits",
        c.next_due(store).await,
        Some(at(1_000)),
    );
}

pub(super) async fn concurrent_commits_to_one_order(store: &dyn Store) {
    let c = Check("concurrent_commits_to_one_order");
    let id = "SO-1";
    let writers = 20;
    c.commit(
        store,
        "creating commit",
        change(None, timed(id, 1, &[]), vec![step(id, "created")]),
    )
    .await;

    let contender = |n: usize| {
        let mut state = timed(id, 2, &[100 + n as u64]);
        std::sync::Arc::make_mut(&mut state.order).customer = Some(format!("writer {n}"));
        (state, step(id, &format!("writer {n}")))
    };
    let results = join_all((0..writers).map(|n| {
        let (state, row) = contender(n);
        store.commit(change(Some(1), state, vec![row]))
    }))
    .await;

    let mut winners = Vec::new();
    for (n, result) in results.into_iter().enumerate() {
        match result {
            Ok(()) => winners.push(n),
            Err(e) if e.kind() == StoreErrorKind::Conflict => {}
            Err(e) => c.fail(
                &format!("concurrent commit {n} expecting revision 1"),
                format_args!(
                    "expected success or a Conflict error, found a {:?} error `{e}`",
                    e.kind()
                ),
            ),
        }
    }
    let winner = match winners[..] {
        [winner] => winner,
        _ => c.fail(
            &format!("{writers} concurrent commits expecting revision 1"),
            format_args!(
                "expected exactly one to succeed, found {} did: {winners:?}",
                winners.len()
            ),
        ),
    };
    let (state, row) = contender(winner);
    c.eq(
        "load after the concurrent commits (the winner's state)",
        c.load(store, id).await,
        Some(state),
    );
    c.eq(
        "journey after the concurrent commits (the winner's row only)",
        c.journey(store, id).await,
        vec![step(id, "created"), row],
    );
    c.eq(
        "due(T+10^9, 10) after the concurrent commits (the winner's timer only)",
        c.due(store, 1_000_000_000, 10).await,
        ids(&[id]),
    );
    c.eq(
        "next_due() after the concurrent commits (the winner's timer)",
        c.next_due(store).await,
        Some(at(100 + winner as u64)),
    );
}

pub(super) async fn set_aside_orders_leave_background_work(store: &dyn Store) {
    let c = Check("set_aside_orders_leave_background_work");
    c.commit(
        store,
        "creating commit of A-TIMED",
        change(None, timed("A-TIMED", 1, &[100]), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "creating commit of A-OK",
        change(None, timed("A-OK", 1, &[200]), Vec::new()),
    )
    .await;
    c.ok(
        "set_aside(A-TIMED)",
        store.set_aside(&"A-TIMED".into(), "cannot decode").await,
    );
    c.ok(
        "set_aside(A-NEVER-STORED)",
        store
            .set_aside(&"A-NEVER-STORED".into(), "first event")
            .await,
    );
    c.ok(
        "set_aside(A-TIMED) again",
        store
            .set_aside(&"A-TIMED".into(), "still cannot decode")
            .await,
    );
    c.eq(
        "set_aside_orders()",
        c.ok("set_aside_orders()", store.set_aside_orders().await),
        vec![
            SetAside::new("A-TIMED".into(), "still cannot decode"),
            SetAside::new("A-NEVER-STORED".into(), "first event"),
        ],
    );
    c.eq("live_orders()", c.live(store).await, id_set(&["A-OK"]));
    c.eq(
        "due(T+1000, 10)",
        c.due(store, 1000, 10).await,
        vec!["A-OK".into()],
    );
    c.eq("next_due()", c.next_due(store).await, Some(at(200)));
    c.commit(
        store,
        "commit to the set-aside A-TIMED",
        change(Some(1), timed("A-TIMED", 2, &[50]), Vec::new()),
    )
    .await;
    c.eq(
        "live_orders() after a commit to a set-aside order",
        c.live(store).await,
        id_set(&["A-OK"]),
    );
    c.eq(
        "next_due() after a commit to a set-aside order",
        c.next_due(store).await,
        Some(at(200)),
    );
    c.eq(
        "load(A-TIMED) while set aside",
        c.load(store, "A-TIMED").await.map(|s| s.revision),
        Some(2),
    );
    c.eq(
        "restore(A-TIMED)",
        c.ok("restore(A-TIMED)", store.restore(&"A-TIMED".into()).await),
        true,
    );
    c.eq(
        "restore(A-TIMED) again",
        c.ok("restore(A-TIMED)", store.restore(&"A-TIMED".into()).await),
        false,
    );
    c.eq(
        "live_orders() after restore",
        c.live(store).await,
        id_set(&["A-OK", "A-TIMED"]),
    );
    c.eq(
        "due(T+1000, 10) after restore",
        c.due(store, 1000, 10).await,
        vec!["A-TIMED".into(), "A-OK".into()],
    );
    c.eq(
        "set_aside_orders() after restore",
        c.ok("set_aside_orders()", store.set_aside_orders().await),
        vec![SetAside::new("A-NEVER-STORED".into(), "first event")],
    );
}

/// An order at `revision` whose one execution ended at `T+ended`, with timeline entries at
/// `T+events`.
fn completed(id: &str, revision: u64, ended: u64, events: &[u64]) -> OrderState {
    let mut state = running(id, revision, Vec::new());
    state.executions[0].ended = Some(at(ended));
    for (&ms, seq) in events.iter().zip(1u64..) {
        state.timeline.push(from_json(
            "timeline entry",
            json!({
                "seq": seq,
                "id": EventId::from(format!("{id}-evt-{seq}")),
                "kind": EventKind::from("Custom"),
                "record": null,
                "at": at(ms),
                "raised_by": null,
            }),
        ));
    }
    state
}

pub(super) async fn purge_removes_completed_orders(store: &dyn Store) {
    let c = Check("purge_removes_completed_orders");
    let states = [
        running("R-WAITING", 1, vec![token(0, TokenStatus::Waiting, None)]),
        running("R-FAILED", 1, vec![token(0, TokenStatus::Failed, None)]),
        timed("R-RETRYING", 1, &[100]),
        timed("R-READY", 1, &[]),
        completed("R-OLD-1", 1, 100, &[]),
        // Completed at its last event, after its execution ended.
        completed("R-OLD-2", 1, 200, &[50, 400]),
        completed("R-OLD-3", 1, 300, &[]),
        completed("R-REVIVED", 1, 150, &[]),
        // Its execution ended before the cutoff, its last event came after.
        completed("R-LATE-EVENT", 1, 100, &[600]),
        completed("R-NEW", 1, 1_000, &[]),
    ];
    for state in &states {
        let what = format!("creating commit of {}", state.id());
        let journey = vec![step(state.id().as_str(), "Validate")];
        c.commit(store, &what, change(None, state.clone(), journey))
            .await;
    }
    c.commit(
        store,
        "commit making R-REVIVED live again",
        change(Some(1), timed("R-REVIVED", 2, &[]), Vec::new()),
    )
    .await;

    let purge = |before: u64, limit: usize| async move {
        c.ok(
            &format!("purge(T+{before}, {limit})"),
            store.purge(at(before), limit).await,
        )
    };
    c.eq("purge(T+500, 0)", purge(500, 0).await, Vec::new());
    c.eq(
        "purge(T+500, 2): the two oldest completed orders",
        purge(500, 2).await,
        ids(&["R-OLD-1", "R-OLD-3"]),
    );
    c.eq(
        "purge(T+500, 10): the rest completed before the cutoff",
        purge(500, 10).await,
        ids(&["R-OLD-2"]),
    );
    c.eq("purge(T+500, 10) again", purge(500, 10).await, Vec::new());
    for gone in ["R-OLD-1", "R-OLD-2", "R-OLD-3"] {
        c.eq(
            &format!("load({gone}) after purge"),
            c.load(store, gone).await,
            None,
        );
        c.eq(
            &format!("journey({gone}) after purge"),
            c.journey(store, gone).await,
            Vec::new(),
        );
    }
    for kept in states.iter().map(|s| s.id().as_str()) {
        if kept.starts_with("R-OLD") {
            continue;
        }
        if c.load(store, kept).await.is_none() {
            c.fail(&format!("load({kept}) after purge"), "it was purged");
        }
        c.eq(
            &format!("journey({kept}) after purge"),
            c.journey(store, kept).await.len(),
            1,
        );
    }
    c.eq(
        "live_orders() after purge",
        c.live(store).await,
        id_set(&[
            "R-WAITING",
            "R-FAILED",
            "R-RETRYING",
            "R-READY",
            "R-REVIVED",
        ]),
    );
    c.eq(
        "due(T+100, 10) after purge",
        c.due(store, 100, 10).await,
        ids(&["R-RETRYING"]),
    );

    // A later cutoff takes the later ones; live orders stay whatever the cutoff.
    c.eq(
        "purge(T+10^9, 10)",
        purge(1_000_000_000, 10).await,
        ids(&["R-LATE-EVENT", "R-NEW"]),
    );
    c.eq(
        "live_orders() after purging everything completed",
        c.live(store).await,
        id_set(&[
            "R-WAITING",
            "R-FAILED",
            "R-RETRYING",
            "R-READY",
            "R-REVIVED",
        ]),
    );

    // A purged order is gone: a commit computed from it conflicts, a new one takes its id.
    c.conflict(
        "commit to purged R-OLD-1 expecting revision 1",
        store
            .commit(change(Some(1), idle("R-OLD-1", 2), Vec::new()))
            .await,
    );
    c.commit(
        store,
        "creating commit of a new R-OLD-1",
        change(None, idle("R-OLD-1", 1), vec![step("R-OLD-1", "Again")]),
    )
    .await;
    c.eq(
        "load(R-OLD-1) after it came back",
        c.load(store, "R-OLD-1").await,
        Some(idle("R-OLD-1", 1)),
    );
    c.eq(
        "journey(R-OLD-1) after it came back",
        c.journey(store, "R-OLD-1").await,
        vec![step("R-OLD-1", "Again")],
    );
}
