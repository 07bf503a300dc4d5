//! Unit tests of the scripted provider: each behavior, the ledger, keys and clones.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use super::*;
use crate::clock::ManualClock;
use crate::document::{FulfillmentOrder, OrderLine};
use crate::provider::ProviderErrorKind;

fn rig() -> (ManualClock, ScriptedProvider) {
    let clock = ManualClock::new(Timestamp::from_millis(1_000));
    let provider = ScriptedProvider::new("Billing", clock.clone());
    (clock, provider)
}

fn order(id: &str) -> Order {
    Order::new(id)
        .with_line(OrderLine::new("1", "Pen", 2))
        .with_line(OrderLine::new("2", "Ink", 5))
}

fn cx(key: &str, attempt: u32) -> CallContext<'_> {
    CallContext {
        idempotency_key: key,
        attempt,
        deadline: Timestamp::from_millis(u64::MAX),
    }
}

/// Runs a call that must finish without waiting.
fn invoice(p: &ScriptedProvider, order: &Order, key: &str) -> Result<Reply, ProviderError> {
    p.call(Request::SendInvoice { order }, &cx(key, 1))
        .now_or_never()
        .expect("answers at once")
}

#[test]
fn ok_applies_once_and_answers_done() {
    let (_, p) = rig();
    let o = order("SO-1");
    assert_eq!(invoice(&p, &o, "k1").unwrap(), Reply::Done);
    let effects = p.effects();
    assert_eq!(effects.len(), 1);
    assert_eq!(effects[0].idempotency_key, "k1");
    assert_eq!(effects[0].kind, RequestKind::SendInvoice);
    assert_eq!(effects[0].order, "SO-1");
    assert_eq!(effects[0].record, RecordId::Order);
    assert_eq!(effects[0].at, Timestamp::from_millis(1_000));
    let calls = p.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].behavior, Behavior::Ok);
    assert_eq!(calls[0].attempt, 1);
}

#[test]
fn retryable_and_fatal_apply_nothing_with_their_kinds() {
    let (_, p) = rig();
    p.then(Behavior::Retryable("down".into()))
        .then(Behavior::Fatal("no account".into()));
    let o = order("SO-1");
    let e = invoice(&p, &o, "k1").unwrap_err();
    assert_eq!(e.kind(), ProviderErrorKind::Unavailable);
    assert!(e.is_retryable());
    assert_eq!(e.message(), "down");
    let e = invoice(&p, &o, "k1").unwrap_err();
    assert_eq!(e.kind(), ProviderErrorKind::Rejected);
    assert!(!e.is_retryable());
    assert_eq!(e.message(), "no account");
    assert!(p.effects().is_empty());
    assert_eq!(p.calls().len(), 2);
    assert_eq!(
        invoice(&p, &o, "k1").unwrap(),
        Reply::Done,
        "then the default"
    );
    assert_eq!(p.effects().len(), 1);
}

#[test]
fn lost_reply_applies_then_fails_retryably_and_the_retry_is_deduplicated() {
    let (_, p) = rig();
    p.then(Behavior::LostReply);
    let o = order("SO-1");
    let e = invoice(&p, &o, "k1").unwrap_err();
    assert_eq!(e.kind(), ProviderErrorKind::Unavailable);
    assert!(e.is_retryable());
    assert_eq!(p.effects().len(), 1, "applied although the reply was lost");
    assert_eq!(invoice(&p, &o, "k1").unwrap(), Reply::Done);
    assert_eq!(p.effects().len(), 1);
    assert_eq!(p.duplicate_calls(), 1);
    assert_eq!(p.effects_per_key(), BTreeMap::from([("k1".to_owned(), 1)]));
}

#[test]
fn panic_panics_inside_call_and_applies_nothing() {
    let (_, p) = rig();
    p.then(Behavior::Panic("adapter bug".into()));
    let o = order("SO-1");
    let caught = std::panic::catch_unwind(AssertUnwindSafe(|| invoice(&p, &o, "k1")));
    let payload = caught.expect_err("panics");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("adapter bug")
    );
    assert!(p.effects().is_empty());
    assert_eq!(p.calls()[0].behavior, Behavior::Panic("adapter bug".into()));
    assert_eq!(
        invoice(&p, &o, "k1").unwrap(),
        Reply::Done,
        "usable after a panic"
    );
}

#[test]
fn delay_answers_after_the_clock_advances_and_applies_only_then() {
    let (clock, p) = rig();
    p.then(Behavior::Delay(Duration::from_millis(500)));
    let o = order("SO-1");
    let c = cx("k1", 1);
    let mut call = p.call(Request::SendInvoice { order: &o }, &c);
    assert!((&mut call).now_or_never().is_none());
    assert!(p.effects().is_empty(), "nothing applied while waiting");
    clock.advance(Duration::from_millis(499));
    assert!((&mut call).now_or_never().is_none());
    clock.advance(Duration::from_millis(1));
    assert_eq!(call.now_or_never().unwrap().unwrap(), Reply::Done);
    assert_eq!(p.effects().len(), 1);
    assert_eq!(p.effects()[0].at, Timestamp::from_millis(1_500));
    assert_eq!(p.calls()[0].at, Timestamp::from_millis(1_000));
}

#[test]
fn an_abandoned_delay_applies_nothing() {
    let (clock, p) = rig();
    p.then(Behavior::Delay(Duration::from_millis(500)));
    let o = order("SO-1");
    let c = cx("k1", 1);
    let mut call = p.call(Request::SendInvoice { order: &o }, &c);
    assert!((&mut call).now_or_never().is_none());
    drop(call);
    clock.advance(Duration::from_secs(1));
    assert!(p.effects().is_empty());
}

#[test]
fn late_applies_at_once_and_answers_after_the_wait() {
    let (clock, p) = rig();
    p.then(Behavior::Late(Duration::from_millis(2_000)));
    let o = order("SO-1");
    let c = cx("k1", 1);
    let mut call = p.call(Request::SendInvoice { order: &o }, &c);
    assert!((&mut call).now_or_never().is_none());
    assert_eq!(p.effects().len(), 1, "applied before the reply");
    assert_eq!(p.effects()[0].at, Timestamp::from_millis(1_000));
    // The engine's timeout abandons the call; the effect stays and a retry reuses it.
    drop(call);
    assert_eq!(invoice(&p, &o, "k1").unwrap(), Reply::Done);
    assert_eq!(p.effects().len(), 1);

    p.then(Behavior::Late(Duration::from_millis(2_000)));
    let c = cx("k2", 1);
    let mut call = p.call(Request::SendInvoice { order: &o }, &c);
    assert!((&mut call).now_or_never().is_none());
    clock.advance(Duration::from_millis(2_000));
    assert_eq!(call.now_or_never().unwrap().unwrap(), Reply::Done);
    assert_eq!(p.effects().len(), 2);
}

#[test]
fn hang_never_answers_however_far_the_clock_moves() {
    let (clock, p) = rig();
    p.then(Behavior::Hang);
    let o = order("SO-1");
    let c = cx("k1", 1);
    let mut call = p.call(Request::SendInvoice { order: &o }, &c);
    for _ in 0..3 {
        assert!((&mut call).now_or_never().is_none());
        clock.advance(Duration::from_secs(3_600));
    }
    assert!(call.now_or_never().is_none());
    assert!(p.effects().is_empty());
    assert_eq!(p.calls()[0].behavior, Behavior::Hang);
}

#[test]
fn a_repeated_key_gets_the_first_plan_and_no_new_effect() {
    let (_, p) = rig();
    let p = p.sourcing_from("Seattle");
    let o = order("SO-1");
    let c = cx("plan", 1);
    let first = p
        .call(Request::DetermineFulfillment { order: &o }, &c)
        .now_or_never()
        .unwrap()
        .unwrap();
    let Reply::FulfillmentPlan(plan) = &first else {
        panic!("a plan, got {first:?}");
    };
    assert_eq!(plan.lines.len(), 2);
    assert_eq!(plan.lines[1].line.as_str(), "2");
    assert_eq!(plan.lines[1].allocations[0].source, "Seattle");
    assert_eq!(plan.lines[1].allocations[0].quantity, 5.into());

    // A repeat with the same key after the source changed still gets the first plan.
    p.sourcing_from("Paris");
    let c = cx("plan", 2);
    let again = p
        .call(Request::DetermineFulfillment { order: &o }, &c)
        .now_or_never()
        .unwrap()
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(p.effects().len(), 1);
    assert_eq!(p.calls().len(), 2);
    assert_eq!(p.calls()[1].attempt, 2);
    assert_eq!(p.duplicate_calls(), 1);
}

#[test]
fn sources_from_its_name_by_default_or_from_a_planner() {
    let (_, p) = rig();
    let o = order("SO-1");
    let c = cx("a", 1);
    let Reply::FulfillmentPlan(plan) = p
        .call(Request::DetermineFulfillment { order: &o }, &c)
        .now_or_never()
        .unwrap()
        .unwrap()
    else {
        panic!("a plan");
    };
    assert_eq!(plan.lines[0].allocations[0].source, "Billing");

    p.planning(|order: &Order| FulfillmentPlan {
        lines: vec![PlannedLine {
            line: order.lines[0].id.clone(),
            allocations: Vec::new(),
        }],
    });
    let c = cx("b", 1);
    let Reply::FulfillmentPlan(plan) = p
        .call(Request::DetermineFulfillment { order: &o }, &c)
        .now_or_never()
        .unwrap()
        .unwrap()
    else {
        panic!("a plan");
    };
    assert_eq!(plan.lines.len(), 1);
    assert!(plan.lines[0].allocations.is_empty());
}

#[test]
fn fulfillment_orders_are_their_own_records() {
    let (_, p) = rig();
    let o = order("SO-1");
    let fo = FulfillmentOrder::new("FO-1", "Seattle");
    let c = cx("ship", 1);
    let reply = p
        .call(
            Request::SendFulfillmentOrder {
                order: &o,
                fulfillment_order: &fo,
            },
            &c,
        )
        .now_or_never()
        .unwrap()
        .unwrap();
    assert_eq!(reply, Reply::Done);
    let record = RecordId::FulfillmentOrder("FO-1".into());
    assert_eq!(p.calls()[0].record, record);
    assert_eq!(
        p.effects_for("SO-1", RequestKind::SendFulfillmentOrder, &record),
        1
    );
    assert_eq!(
        p.effects_for("SO-1", RequestKind::SendFulfillmentOrder, &RecordId::Order),
        0
    );
}

#[test]
fn erp_and_custom_requests_answer_done() {
    let (_, p) = rig();
    let o = order("SO-1");
    let payload = serde_json::json!({"x": 1});
    let c = cx("erp", 1);
    let erp = p.call(Request::SendToErp { order: &o }, &c).now_or_never();
    assert_eq!(erp.unwrap().unwrap(), Reply::Done);
    let c = cx("custom", 1);
    let custom = p
        .call(
            Request::Custom {
                name: "loyalty",
                order: &o,
                payload: &payload,
            },
            &c,
        )
        .now_or_never();
    assert_eq!(custom.unwrap().unwrap(), Reply::Done);
    let kinds: Vec<_> = p.effects().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [RequestKind::SendToErp, RequestKind::Custom]);
}

#[test]
fn key_scripts_take_precedence_over_the_global_script() {
    let (_, p) = rig();
    p.script([Behavior::Fatal("global".into()), Behavior::Ok])
        .script_key("SO-2", [Behavior::Retryable("two".into())])
        .script_key("SO-2", [Behavior::Retryable("two again".into())]);
    let o1 = order("SO-1");
    let o2 = order("SO-2");
    let message = |r: Result<Reply, ProviderError>| r.err().map(|e| e.message().to_owned());
    assert_eq!(
        message(invoice(&p, &o2, "exec/SO-2/invoice")),
        Some("two".into())
    );
    assert_eq!(
        message(invoice(&p, &o1, "exec/SO-1/invoice")),
        Some("global".into())
    );
    assert_eq!(
        message(invoice(&p, &o2, "exec/SO-2/invoice")),
        Some("two again".into())
    );
    assert_eq!(p.remaining(), 1);
    // The key script is exhausted: SO-2 falls through to the global script.
    assert_eq!(message(invoice(&p, &o2, "exec/SO-2/invoice")), None);
    assert_eq!(p.remaining(), 0);
    assert_eq!(message(invoice(&p, &o1, "exec/SO-1/invoice")), None);
    assert_eq!(p.effects().len(), 2);
}

#[test]
fn default_behaviour_and_reset() {
    let (_, p) = rig();
    p.by_default(Behavior::Retryable("always down".into()))
        .then(Behavior::Ok)
        .script_key("x", [Behavior::Ok]);
    let o = order("SO-1");
    assert!(invoice(&p, &o, "a").is_ok());
    assert!(invoice(&p, &o, "b").is_err());
    p.reset_script();
    assert_eq!(p.remaining(), 0);
    assert!(invoice(&p, &o, "x").is_ok(), "the default is Ok again");
    assert_eq!(p.calls().len(), 3, "the ledger stays");
}

#[test]
fn ledger_counts_duplicates_and_unstable_keys() {
    let (_, p) = rig();
    let o = order("SO-1");
    for key in ["k1", "k1", "k2", "k1"] {
        invoice(&p, &o, key).unwrap();
    }
    assert_eq!(p.calls().len(), 4);
    assert_eq!(p.duplicate_calls(), 2);
    assert_eq!(
        p.effects_per_key(),
        BTreeMap::from([("k1".to_owned(), 1), ("k2".to_owned(), 1)])
    );
    // Two keys for the same invoice: the target was billed twice.
    assert_eq!(
        p.effects_for("SO-1", RequestKind::SendInvoice, &RecordId::Order),
        2
    );
    assert_eq!(
        p.effects_for("SO-9", RequestKind::SendInvoice, &RecordId::Order),
        0
    );
}

#[test]
fn clones_share_script_and_ledger_and_offering_narrows() {
    let (_, p) = rig();
    assert_eq!(p.offers(), ALL_KINDS);
    let registered = p.clone().offering(&[RequestKind::SendInvoice]);
    assert_eq!(registered.offers(), [RequestKind::SendInvoice]);
    assert_eq!(registered.name(), "Billing");
    p.then(Behavior::Fatal("no".into()));
    let o = order("SO-1");
    assert!(invoice(&registered, &o, "k").is_err());
    assert!(invoice(&registered, &o, "k").is_ok());
    assert_eq!(p.calls().len(), 2);
    assert_eq!(p.effects().len(), 1);
    let debug = format!("{p:?}");
    assert!(
        debug.contains("Billing") && debug.contains("calls: 2"),
        "{debug}"
    );
}
