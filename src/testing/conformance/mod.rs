//! The checks every [`Store`] implementation must pass.
//!
//! [`check_store`] runs each check of the [store contract](crate::store#contract) on a fresh,
//! empty store made by the closure it is given, and panics — naming the check, what it
//! expected and what it found — at the first one that fails. Run it from a test of each
//! backend, and once more through `Arc<dyn Store>` if the engine will see the store that
//! way:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use orderflow::store::{MemoryStore, Store};
//! use orderflow::testing::conformance::check_store;
//!
//! check_store(MemoryStore::new).await;
//! check_store(|| Arc::new(MemoryStore::new()) as Arc<dyn Store>).await;
//! # });
//! ```
//!
//! The checks:
//!
//! | check | what it holds the store to |
//! |---|---|
//! | `empty_store` | a new store has no flows, policies, orders, journeys, live orders or timers |
//! | `flows_in_creation_order` | `flows` lists definitions in creation order; a save replaces one in place |
//! | `frozen_flow_versions` | `save_flow(_, true)` records a version for `flow_version`; later saves never change it; unknown versions are `None` |
//! | `policies_in_creation_order` | the same as flows, for `policies` |
//! | `published_policy_versions` | `save_policy(_, true)` records `last_published` for `policy_version`; later saves never change it; unknown versions are `None` |
//! | `revisions_round_trip` | `expected: None` creates; each commit applies its change and stores its own `revision` |
//! | `conflicting_commits_change_nothing` | a stale, future or missing `expected`, or a creating commit for a stored order, fails with `Conflict` and leaves state, journey, live orders and timers as they were |
//! | `large_state_round_trips` | an order with 1,000 lines, a long timeline and several executions loads back exactly, decimals digit for digit (28-digit quantities, 1/3 in a custom attribute) |
//! | `change_sets_apply_what_they_carry` | a commit changes what it carries and keeps the rest: the executions it does not carry, the document when it carries none, the timeline entries and journey rows before its own; a new execution comes after the others; a partial commit from a stale revision changes nothing |
//! | `journey_in_commit_order` | `journey` returns the rows of every commit, in commit order, per order |
//! | `live_orders_follow_commits` | `live_orders` is exactly the orders whose last committed state `has_live()` |
//! | `due_follows_timers` | `due` lists orders whose committed `next_wake()` is at or before `now`, earliest first, up to `limit`, following every commit; `next_due` is the earliest |
//! | `concurrent_commits_to_distinct_orders` | 200 concurrent creating commits all land |
//! | `concurrent_commits_to_one_order` | of 20 concurrent commits naming the same `expected`, exactly one lands; the rest fail with `Conflict` |
//! | `catalog_revision_rises` | every `save_flow` and `save_policy` raises `catalog_revision`; order commits leave it as it is |
//! | `set_aside_orders_leave_background_work` | a set-aside order (stored or not) is listed with its reason, oldest first, and is in neither `live_orders`, `due` nor `next_due` — also after later commits to it — until `restore`, which puts it back as its state says; its state and journey stay |
//! | `purge_removes_completed_orders` | `purge` removes, oldest first and up to `limit`, the orders whose `completed_at()` is before the cutoff, with their journeys; live, failed, timed and later-completed orders stay; a removed id can be created anew |
//!
//! Timestamps stay below `i64::MAX` and revisions below `2^53`, so a backend storing them
//! as SQL integers or JSON numbers passes.

mod catalog;
mod indexes;
mod orders;
mod shared;

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

/// Runs every conformance check, each on a fresh, empty store from `make`.
///
/// `make` is called once per check; every store it returns must be empty and independent
/// of the others. `S` may be a backend type, an `Arc<dyn Store>` or a `Box<dyn Store>`.
/// `make` is `Send` so that the returned future is, and can be spawned on a multi-threaded
/// runtime.
///
/// # Panics
///
/// At the first check the store fails, with a message naming the check, the operation and
/// what was expected versus found. A store operation that returns an error where the
/// contract expects success fails the check too.
pub async fn check_store<S, F>(mut make: F)
where
    F: FnMut() -> S + Send,
    S: Store,
{
    catalog::empty_store(&make()).await;
    catalog::flows_in_creation_order(&make()).await;
    catalog::frozen_flow_versions(&make()).await;
    catalog::policies_in_creation_order(&make()).await;
    catalog::published_policy_versions(&make()).await;
    orders::revisions_round_trip(&make()).await;
    orders::conflicting_commits_change_nothing(&make()).await;
    orders::large_state_round_trips(&make()).await;
    orders::journey_in_commit_order(&make()).await;
    orders::change_sets_apply_what_they_carry(&make()).await;
    indexes::live_orders_follow_commits(&make()).await;
    indexes::due_follows_timers(&make()).await;
    indexes::concurrent_commits_to_distinct_orders(&make()).await;
    indexes::concurrent_commits_to_one_order(&make()).await;
    catalog::catalog_revision_rises(&make()).await;
    indexes::set_aside_orders_leave_background_work(&make()).await;
    indexes::purge_removes_completed_orders(&make()).await;
}

pub use shared::check_shared_store;

/// A check under way: names itself in every failure.
#[derive(Debug, Clone, Copy)]
struct Check(&'static str);

impl Check {
    #[track_caller]
    fn fail(self, what: &str, problem: impl fmt::Display) -> ! {
        panic!(
            "store conformance check `{}` failed: {what}: {problem}",
            self.0
        )
    }

    /// The value of an operation the contract says succeeds.
    #[track_caller]
    fn ok<T>(self, what: &str, result: Result<T, StoreError>) -> T {
        match result {
            Ok(value) => value,
            Err(e) => self.fail(what, format_args!("expected success, found error `{e}`")),
        }
    }

    #[track_caller]
    fn eq<T: PartialEq + fmt::Debug>(self, what: &str, found: T, expected: T) {
        if found != expected {
            self.fail(what, format_args!("expected {expected:?}, found {found:?}"));
        }
    }

    /// An operation the contract says fails with a conflict.
    #[track_caller]
    fn conflict<T: fmt::Debug>(self, what: &str, result: Result<T, StoreError>) {
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

    async fn commit(self, store: &dyn Store, what: &str, change: ChangeSet) {
        self.ok(what, store.commit(change).await);
    }

    /// `flows()`, compared by name first so an ordering bug reads as one.
    async fn flows(self, store: &dyn Store, what: &str, expected: Vec<Flow>) {
        let found = self.ok(what, store.flows().await);
        let names = |flows: &[Flow]| flows.iter().map(|f| f.name.clone()).collect::<Vec<_>>();
        self.eq(&format!("{what}, by name"), names(&found), names(&expected));
        self.eq(what, found, expected);
    }

    /// `policies()`, compared by name first so an ordering bug reads as one.
    async fn policies(self, store: &dyn Store, what: &str, expected: Vec<PolicyRecord>) {
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

    async fn load(self, store: &dyn Store, id: &str) -> Option<OrderState> {
        self.ok(&format!("load({id})"), store.load(&id.into()).await)
    }

    async fn journey(self, store: &dyn Store, id: &str) -> Vec<StepRow> {
        self.ok(&format!("journey({id})"), store.journey(&id.into()).await)
    }

    /// `live_orders` as a set: the contract gives it no order.
    async fn live(self, store: &dyn Store) -> BTreeSet<OrderId> {
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

    async fn due(self, store: &dyn Store, now: u64, limit: usize) -> Vec<OrderId> {
        self.ok(
            &format!("due(T+{now}, {limit})"),
            store.due(at(now), limit).await,
        )
    }

    async fn next_due(self, store: &dyn Store) -> Option<Timestamp> {
        self.ok("next_due()", store.next_due().await)
    }
}

/// The base of every timestamp the checks use: realistic epoch milliseconds.
const T0: u64 = 1_750_000_000_000;

/// `T0` plus `ms` milliseconds.
fn at(ms: u64) -> Timestamp {
    Timestamp(T0 + ms)
}

fn ids(list: &[&str]) -> Vec<OrderId> {
    list.iter().map(|id| OrderId::from(*id)).collect()
}

fn id_set(list: &[&str]) -> BTreeSet<OrderId> {
    list.iter().map(|id| OrderId::from(*id)).collect()
}

fn flow(name: &str, version: Version, description: &str) -> Flow {
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

fn policy(name: &str, description: &str) -> PolicyDocument {
    let mut doc = PolicyDocument::new(name, PolicyKind::Execution, Entity::Order)
        .with_criticality(Criticality::Information)
        .with_rule(
            Rule::check("Has customer", Condition::has_data("customer"))
                .with_message("the order has no customer"),
        );
    doc.description = description.to_owned();
    doc
}

fn record(doc: PolicyDocument, status: PolicyStatus, last_published: Option<u32>) -> PolicyRecord {
    let mut record = PolicyRecord::new(doc, Some(at(0)));
    record.status = status;
    record.last_published = last_published;
    record
}

/// A value of an engine type from its serde form, so the fixtures keep compiling as the
/// types gain (defaulted) fields.
fn from_json<T: DeserializeOwned>(what: &str, value: serde_json::Value) -> T {
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

fn token(id: u32, status: TokenStatus, wake_at: Option<u64>) -> Token {
    let mut token = Token::new(id, Position::Node(id), Selection::default(), Vec::new());
    token.trigger = Some(1);
    token.phase = phase(status, wake_at);
    token
}

/// The phase of a fixture token: a retrying one always has its timer.
fn phase(status: TokenStatus, wake_at: Option<u64>) -> Phase {
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

fn execution(order: &str, seq: u32, tokens: Vec<Token>) -> Execution {
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
fn idle(id: &str, revision: u64) -> OrderState {
    let mut state = OrderState::new(Order::new(id));
    state.revision = revision;
    state
}

/// An order at `revision` with one execution holding `tokens`.
fn running(id: &str, revision: u64, tokens: Vec<Token>) -> OrderState {
    let mut state = idle(id, revision);
    state.executions.push(execution(id, 1, tokens));
    state
}

/// An order at `revision` whose durable timers are `wakes` (none: live, but no timer).
fn timed(id: &str, revision: u64, wakes: &[u64]) -> OrderState {
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
fn change(expected: Option<u64>, state: OrderState, rows: Vec<StepRow>) -> ChangeSet {
    ChangeSet {
        expected,
        ..ChangeSet::diff(None, &state)
    }
    .with_journey(rows)
}

fn step(order: &str, name: &str) -> StepRow {
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
