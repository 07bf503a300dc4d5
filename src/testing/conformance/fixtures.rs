//! What the checks share: the check that names itself in failures, and the flows,
//! policies, states, change sets and journey rows they commit.

use std::collections::BTreeSet;
use std::fmt;

use semver::Version;
use serde::de::DeserializeOwned;

use crate::clock::Timestamp;
use crate::document::{Entity, Order, OrderId, OrderLine};
use crate::event::EventKind;
use crate::execution::{
    Execution, ExecutionId, OrderState, Phase, Position, Resume, Selection, Token,
};
use crate::flow::{ActionStep, Flow};
use crate::journey::{Detail, Outcome, StepRef, StepRow};
use crate::orchestration::ActionKind;
use crate::policy::{Criticality, PolicyKind};
use crate::rules::{Condition, PolicyDocument, PolicyRecord, PolicyStatus, Rule};
use crate::store::{ChangeSet, Store, StoreError, StoreErrorKind};
use rust_decimal::Decimal;

/// A check under way: names itself in every failure.
#[derive(Debug, Clone, Copy)]
pub(super) struct Check(pub(super) &'static str);

impl Check {
    #[track_caller]
    pub(super) fn fail(self, what: &str, problem: impl fmt::Display) -> ! {
        panic!(
            "store conformance check `{}` failed: {what}: {problem}",
            self.0
        )
    }

    /// The value of an operation the contract says succeeds.
    #[track_caller]
    pub(super) fn ok<T>(self, what: &str, result: Result<T, StoreError>) -> T {
        match result {
            Ok(value) => value,
            Err(e) => self.fail(what, format_args!("expected success, found error `{e}`")),
        }
    }

    #[track_caller]
    pub(super) fn eq<T: PartialEq + fmt::Debug>(self, what: &str, found: T, expected: T) {
        if found != expected {
            self.fail(what, format_args!("expected {expected:?}, found {found:?}"));
        }
    }

    /// An operation the contract says fails with a conflict.
    #[track_caller]
    pub(super) fn conflict<T: fmt::Debug>(self, what: &str, result: Result<T, StoreError>) {
        match result {
            Err(e) if e.kind() == StoreErrorKind::Conflict => {}
            Err(e) => self.fail(
                what,
                format_args!(
                    "expected a Conflict error, found a {:?} error `{e}`",
                    e.kind()
                ),
            ),
            Ok(value) => self.fail(
                what,
                format_args!("expected a Conflict error, found success ({value:?})"),
            ),
        }
    }

    pub(super) async fn commit(self, store: &dyn Store, what: &str, change: ChangeSet) {
        self.ok(what, store.commit(change).await);
    }

    /// `flows()`, compared by name first so an ordering bug reads as one.
    pub(super) async fn flows(self, store: &dyn Store, what: &str, expected: Vec<Flow>) {
        let found = self.ok(what, store.flows().await);
        let names = |flows: &[Flow]| flows.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        self.eq(&format!("{what}, by name"), names(&found), names(&expected));
        self.eq(what, found, expected);
    }

    /// `policies()`, compared by name first so an ordering bug reads as one.
    pub(super) async fn policies(self, store: &dyn Store, what: &str, expected: Vec<PolicyRecord>) {
        let found = self.ok(what, store.policies().await);
        let names = |records: &[PolicyRecord]| {
            records
                .iter()
                .map(|r| r.name().to_owned())
                .collect::<Vec<_>>()
        };
        self.eq(&format!("{what}, by name"), names(&found), names(&expected));
        self.eq(what, found, expected);
    }

    pub(super) async fn load(self, store: &dyn Store, id: &str) -> Option<OrderState> {
        self.ok(&format!("load({id})"), store.load(&id.into()).await)
    }

    pub(super) async fn journey(self, store: &dyn Store, id: &str) -> Vec<StepRow> {
        self.ok(&format!("journey({id})"), store.journey(&id.into()).await)
    }

    /// `live_orders` as a set: the contract gives it no order.
    pub(super) async fn live(self, store: &dyn Store) -> BTreeSet<OrderId> {
        let live = self.ok("live_orders()", store.live_orders().await);
        let set: BTreeSet<OrderId> = live.iter().cloned().collect();
        if set.len() != live.len() {
            self.fail(
                "live_orders()",
                format_args!("lists an order twice: {live:?}"),
            );
        }
        set
    }

    pub(super) async fn due(self, store: &dyn Store, now: u64, limit: usize) -> Vec<OrderId> {
        self.ok(
            &format!("due(T+{now}, {limit})"),
            store.due(at(now), limit).await,
        )
    }

    pub(super) async fn next_due(self, store: &dyn Store) -> Option<Timestamp> {
        self.ok("next_due()", store.next_due().await)
    }
}

/// The base of every timestamp the checks use: realistic epoch milliseconds.
pub(super) const T0: u64 = 1_750_000_000_000;

/// `T0` plus `ms` milliseconds.
pub(super) fn at(ms: u64) -> Timestamp {
    Timestamp(T0 + ms)
}

pub(super) fn ids(list: &[&str]) -> Vec<OrderId> {
    list.iter().map(|id| OrderId::from(*id)).collect()
}

pub(super) fn id_set(list: &[&str]) -> BTreeSet<OrderId> {
    list.iter().map(|id| OrderId::from(*id)).collect()
}

pub(super) fn flow(name: &str, version: Version, description: &str) -> Flow {
    Flow::builder(name)
        .version(version)
        .description(description)
        .steps(|s| {
            s.action(
                ActionStep::new("Validate header", ActionKind::ValidateOrderHeader)
                    .input_event(EventKind::NEW_ORDER),
            )
            .action(
                ActionStep::new("Validate lines", ActionKind::ValidateOrderLine)
                    .input_event(EventKind::new("Order Header Validation Succeeded")),
            )
        })
        .build()
        .unwrap_or_else(|e| panic!("store conformance: the test flow '{name}' is invalid: {e}"))
}

pub(super) fn policy(name: &str, description: &str) -> PolicyDocument {
    let mut doc = PolicyDocument::new(name, PolicyKind::Execution, Entity::Order)
        .with_criticality(Criticality::Information)
        .with_rule(
            Rule::check("Has customer", Condition::has_data("customer"))
                .with_message("the order has no customer"),
        );
    doc.description = description.to_owned();
    doc
}

pub(super) fn record(
    doc: PolicyDocument,
    status: PolicyStatus,
    last_published: Option<u32>,
) -> PolicyRecord {
    let mut record = PolicyRecord::new(doc, Some(at(0)));
    record.status = status;
    record.last_published = last_published;
    record
}

/// A value of an engine type from its serde form, so the fixtures keep compiling as the
/// types gain (defaulted) fields.
pub(super) fn from_json<T: DeserializeOwned>(what: &str, value: serde_json::Value) -> T {
    serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("store conformance: the {what} fixture no longer parses: {e}"))
}

/// What a fixture token is doing.
#[derive(Debug, Clone, Copy)]
pub(super) enum TokenStatus {
    Ready,
    Waiting,
    Retrying,
    Failed,
}

pub(super) fn token(id: u32, status: TokenStatus, wake_at: Option<u64>) -> Token {
    let mut token = Token::new(id, Position::Node(id), Selection::default(), Vec::new());
    token.trigger = Some(1);
    token.phase = phase(status, wake_at);
    token
}

/// The phase of a fixture token: a retrying one always has its timer.
pub(super) fn phase(status: TokenStatus, wake_at: Option<u64>) -> Phase {
    match status {
        TokenStatus::Ready => Phase::Arrived,
        TokenStatus::Waiting => Phase::Parked,
        TokenStatus::Retrying => Phase::Retrying {
            at: at(wake_at.unwrap_or(0)),
        },
        TokenStatus::Failed => Phase::Failed {
            error: "failed".to_owned(),
            resume: Resume::Admitted,
        },
    }
}

pub(super) fn execution(order: &str, seq: u32, tokens: Vec<Token>) -> Execution {
    let mut exec = Execution::start(
        ExecutionId {
            order: order.into(),
            seq,
        },
        "Fulfil".to_owned(),
        Version::new(1, 0, 0),
        0x5eed,
        Position::End,
        1,
        at(0),
    );
    exec.next_token = tokens.len() as u32;
    exec.tokens = tokens;
    exec
}

/// An order with no executions at `revision`.
pub(super) fn idle(id: &str, revision: u64) -> OrderState {
    let mut state = OrderState::new(Order::new(id));
    state.revision = revision;
    state
}

/// An order at `revision` with one execution holding `tokens`.
pub(super) fn running(id: &str, revision: u64, tokens: Vec<Token>) -> OrderState {
    let mut state = idle(id, revision);
    state.executions.push(execution(id, 1, tokens));
    state
}

/// An order at `revision` whose durable timers are `wakes` (none: live, but no timer).
pub(super) fn timed(id: &str, revision: u64, wakes: &[u64]) -> OrderState {
    let mut tokens: Vec<Token> = wakes
        .iter()
        .zip(1..)
        .map(|(&wake, n)| token(n, TokenStatus::Retrying, Some(wake)))
        .collect();
    if tokens.is_empty() {
        tokens.push(token(0, TokenStatus::Ready, None));
    }
    running(id, revision, tokens)
}

/// The commit of `state` over revision `expected`, carrying its document, every execution
/// and every timeline entry, and `rows`: for a stored order with no timeline yet whose
/// executions `state` all has, what makes the stored state `state`.
pub(super) fn change(expected: Option<u64>, state: OrderState, rows: Vec<StepRow>) -> ChangeSet {
    ChangeSet {
        expected,
        ..ChangeSet::diff(None, &state)
    }
    .with_journey(rows)
}

pub(super) fn step(order: &str, name: &str) -> StepRow {
    let mut doc = Order::new(order);
    doc.lines.push(OrderLine::new("1", "Widget", Decimal::ONE));
    StepRow::new(
        1,
        0,
        StepRef::Node(name.len() as u32),
        &Selection::default(),
        &doc,
        Outcome::Succeeded,
        1,
        at(10),
        at(20),
        vec![Detail::Note(format!("{name} ran"))],
        Vec::new(),
    )
}
