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
//! | `revisions_round_trip` | `expected: None` creates; each commit replaces the whole state and stores its own `revision` |
//! | `conflicting_commits_change_nothing` | a stale, future or missing `expected`, or a creating commit for a stored order, fails with `Conflict` and leaves state, journey, live orders and timers as they were |
//! | `large_state_round_trips` | an order with 1,000 lines, a long timeline and several executions loads back exactly, decimals digit for digit (28-digit quantities, 1/3 in a custom attribute) |
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

mod shared;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use futures::future::join_all;
use semver::Version;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::clock::Timestamp;
use crate::document::{
    Decimal, Entity, FulfillmentOrder, FulfillmentOrderLine, LineId, Order, OrderId, OrderLine,
    RecordId, State, StatusReason, Value,
};
use crate::event::{EventId, EventKind};
use crate::execution::{
    BranchState, Execution, ExecutionId, Frame, OrderState, Phase, Position, Resume, Selection,
    Token,
};
use crate::flow::{ActionStep, Flow};
use crate::journey::{Detail, Outcome, StepRef, StepRow, TimelineEntry};
use crate::orchestration::ActionKind;
use crate::policy::{Criticality, PolicyKind};
use crate::rules::{Condition, PolicyDocument, PolicyRecord, PolicyStatus, Rule};
use crate::store::{Commit, SetAside, Store, StoreError, StoreErrorKind};

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
    empty_store(&make()).await;
    flows_in_creation_order(&make()).await;
    frozen_flow_versions(&make()).await;
    policies_in_creation_order(&make()).await;
    published_policy_versions(&make()).await;
    revisions_round_trip(&make()).await;
    conflicting_commits_change_nothing(&make()).await;
    large_state_round_trips(&make()).await;
    journey_in_commit_order(&make()).await;
    live_orders_follow_commits(&make()).await;
    due_follows_timers(&make()).await;
    concurrent_commits_to_distinct_orders(&make()).await;
    concurrent_commits_to_one_order(&make()).await;
    catalog_revision_rises(&make()).await;
    set_aside_orders_leave_background_work(&make()).await;
    purge_removes_completed_orders(&make()).await;
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

    async fn commit(self, store: &dyn Store, what: &str, commit: Commit) {
        self.ok(what, store.commit(commit).await);
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
enum TokenStatus {
    Ready,
    Waiting,
    Retrying,
    Failed,
}

fn token(id: u32, status: TokenStatus, wake_at: Option<u64>) -> Token {
    let mut token = Token::new(id, Position::Node(id), Selection::default(), Vec::new());
    token.trigger = Some(1);
    token.phase = match status {
        TokenStatus::Ready => Phase::Arrived,
        TokenStatus::Waiting => Phase::Parked,
        // A retrying token always has its timer.
        TokenStatus::Retrying => Phase::Retrying {
            at: at(wake_at.unwrap_or(0)),
        },
        TokenStatus::Failed => Phase::Failed {
            error: "failed".to_owned(),
            resume: Resume::Admitted,
        },
    };
    token
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

async fn empty_store(store: &dyn Store) {
    let c = Check("empty_store");
    c.eq("flows()", c.ok("flows()", store.flows().await), Vec::new());
    c.eq(
        "flow_version(Fulfil, 1.0.0)",
        c.ok(
            "flow_version(Fulfil, 1.0.0)",
            store.flow_version("Fulfil", &Version::new(1, 0, 0)).await,
        ),
        None,
    );
    c.policies(store, "policies()", Vec::new()).await;
    c.eq(
        "policy_version(Check, 1)",
        c.ok(
            "policy_version(Check, 1)",
            store.policy_version("Check", 1).await,
        ),
        None,
    );
    c.eq("load(SO-1)", c.load(store, "SO-1").await, None);
    c.eq("journey(SO-1)", c.journey(store, "SO-1").await, Vec::new());
    c.eq("live_orders()", c.live(store).await, BTreeSet::new());
    c.eq(
        "due(T+10^9, 100)",
        c.due(store, 1_000_000_000, 100).await,
        Vec::new(),
    );
    c.eq("next_due()", c.next_due(store).await, None);
}

async fn flows_in_creation_order(store: &dyn Store) {
    let c = Check("flows_in_creation_order");
    let v1 = Version::new(1, 0, 0);
    let zeta = flow("Zeta", v1.clone(), "first created");
    let alpha = flow("Alpha", v1.clone(), "second created");
    let mid = flow("Mid", v1.clone(), "third created");
    for f in [&zeta, &alpha, &mid] {
        c.ok("save_flow(_, false)", store.save_flow(f, false).await);
    }
    c.flows(
        store,
        "flows() after creating Zeta, Alpha, Mid",
        vec![zeta.clone(), alpha.clone(), mid.clone()],
    )
    .await;

    let alpha2 = flow("Alpha", Version::new(1, 1, 0), "second created, edited");
    c.ok(
        "save_flow(Alpha, false)",
        store.save_flow(&alpha2, false).await,
    );
    let mut zeta2 = flow("Zeta", v1, "first created, published");
    zeta2.last_published = Some(zeta2.version.clone());
    c.ok("save_flow(Zeta, true)", store.save_flow(&zeta2, true).await);
    c.flows(
        store,
        "flows() after replacing Alpha and Zeta (each keeps its place)",
        vec![zeta2, alpha2, mid],
    )
    .await;
}

async fn frozen_flow_versions(store: &dyn Store) {
    let c = Check("frozen_flow_versions");
    let v1 = Version::new(1, 0, 0);
    let v2 = Version::new(2, 0, 0);
    let version = |name: &'static str, v: Version| async move {
        let what = format!("flow_version({name}, {v})");
        let found = store.flow_version(name, &v).await;
        c.ok(&what, found)
    };

    let first = flow("Fulfil", v1.clone(), "first");
    c.ok(
        "save_flow(Fulfil 1.0.0, true)",
        store.save_flow(&first, true).await,
    );
    c.eq(
        "flow_version(Fulfil, 1.0.0) after freezing it",
        version("Fulfil", v1.clone()).await,
        Some(first.clone()),
    );

    let edited = flow("Fulfil", v1.clone(), "edited after freezing");
    c.ok(
        "save_flow(Fulfil 1.0.0 edited, false)",
        store.save_flow(&edited, false).await,
    );
    c.flows(store, "flows() after editing the draft", vec![edited])
        .await;
    c.eq(
        "flow_version(Fulfil, 1.0.0) after editing the draft (frozen versions never change)",
        version("Fulfil", v1.clone()).await,
        Some(first.clone()),
    );

    let second = flow("Fulfil", v2.clone(), "second");
    c.ok(
        "save_flow(Fulfil 2.0.0, false)",
        store.save_flow(&second, false).await,
    );
    c.eq(
        "flow_version(Fulfil, 2.0.0) before it is frozen",
        version("Fulfil", v2.clone()).await,
        None,
    );
    c.ok(
        "save_flow(Fulfil 2.0.0, true)",
        store.save_flow(&second, true).await,
    );
    c.eq(
        "flow_version(Fulfil, 2.0.0) after freezing it",
        version("Fulfil", v2.clone()).await,
        Some(second),
    );
    c.eq(
        "flow_version(Fulfil, 1.0.0) after freezing 2.0.0",
        version("Fulfil", v1.clone()).await,
        Some(first),
    );

    let pre: Version = "3.0.0-rc.1+build.7".parse().expect("a valid version");
    let rc = flow("Fulfil", pre.clone(), "a release candidate");
    c.ok(
        "save_flow(Fulfil 3.0.0-rc.1+build.7, true)",
        store.save_flow(&rc, true).await,
    );
    c.eq(
        "flow_version(Fulfil, 3.0.0-rc.1+build.7)",
        version("Fulfil", pre).await,
        Some(rc),
    );

    let other = flow("Other", v1.clone(), "another flow at the same version");
    c.ok(
        "save_flow(Other 1.0.0, true)",
        store.save_flow(&other, true).await,
    );
    c.eq(
        "flow_version(Other, 1.0.0)",
        version("Other", v1.clone()).await,
        Some(other),
    );
    c.eq(
        "flow_version(Fulfil, 1.0.0) after freezing Other 1.0.0",
        version("Fulfil", v1.clone()).await.map(|f| f.description),
        Some("first".to_owned()),
    );

    c.eq(
        "flow_version(Fulfil, 4.0.0) (never saved)",
        version("Fulfil", Version::new(4, 0, 0)).await,
        None,
    );
    c.eq(
        "flow_version(Fulfil, 1.0.1) (never saved)",
        version("Fulfil", Version::new(1, 0, 1)).await,
        None,
    );
    c.eq(
        "flow_version(Missing, 1.0.0) (unknown flow)",
        version("Missing", v1).await,
        None,
    );
}

async fn policies_in_creation_order(store: &dyn Store) {
    let c = Check("policies_in_creation_order");
    let zeta = record(
        policy("Zeta", "first created"),
        PolicyStatus::Unpublished,
        None,
    );
    let alpha = record(
        policy("Alpha", "second created"),
        PolicyStatus::Unpublished,
        None,
    );
    let mid = record(
        policy("Mid", "third created"),
        PolicyStatus::Unpublished,
        None,
    );
    for r in [&zeta, &alpha, &mid] {
        c.ok("save_policy(_, false)", store.save_policy(r, false).await);
    }
    c.policies(
        store,
        "policies() after creating Zeta, Alpha, Mid",
        vec![zeta, alpha.clone(), mid.clone()],
    )
    .await;

    let alpha2 = record(
        policy("Alpha", "second created, edited"),
        PolicyStatus::Unpublished,
        None,
    );
    c.ok(
        "save_policy(Alpha, false)",
        store.save_policy(&alpha2, false).await,
    );
    let zeta2 = record(
        policy("Zeta", "first created, published"),
        PolicyStatus::Published,
        Some(1),
    );
    c.ok(
        "save_policy(Zeta, true)",
        store.save_policy(&zeta2, true).await,
    );
    c.policies(
        store,
        "policies() after replacing Alpha and Zeta (each keeps its place)",
        vec![zeta2, alpha2, mid],
    )
    .await;
}

async fn published_policy_versions(store: &dyn Store) {
    let c = Check("published_policy_versions");
    let version = |name: &'static str, v: u32| async move {
        let what = format!("policy_version({name}, {v})");
        let found = store.policy_version(name, v).await;
        c.ok(&what, found)
    };

    let doc1 = policy("Check", "version one");
    let draft = record(doc1.clone(), PolicyStatus::Unpublished, None);
    c.ok(
        "save_policy(draft, false)",
        store.save_policy(&draft, false).await,
    );
    c.eq(
        "policy_version(Check, 1) before any publish",
        version("Check", 1).await,
        None,
    );

    let published = record(doc1.clone(), PolicyStatus::Published, Some(1));
    c.ok(
        "save_policy(v1, true)",
        store.save_policy(&published, true).await,
    );
    c.eq(
        "policy_version(Check, 1) after publishing it",
        version("Check", 1).await,
        Some(doc1.clone()),
    );
    c.policies(store, "policies() after publishing v1", vec![published])
        .await;

    let doc2 = policy("Check", "version two");
    let edited = record(doc2.clone(), PolicyStatus::Unpublished, Some(1));
    c.ok(
        "save_policy(edited draft, false)",
        store.save_policy(&edited, false).await,
    );
    c.policies(store, "policies() after editing the draft", vec![edited])
        .await;
    c.eq(
        "policy_version(Check, 1) after editing the draft (published versions never change)",
        version("Check", 1).await,
        Some(doc1.clone()),
    );
    c.eq(
        "policy_version(Check, 2) before it is published",
        version("Check", 2).await,
        None,
    );

    let published2 = record(doc2.clone(), PolicyStatus::Published, Some(2));
    c.ok(
        "save_policy(v2, true)",
        store.save_policy(&published2, true).await,
    );
    c.eq(
        "policy_version(Check, 2) after publishing it",
        version("Check", 2).await,
        Some(doc2),
    );
    c.eq(
        "policy_version(Check, 1) after publishing v2",
        version("Check", 1).await,
        Some(doc1),
    );

    let other_doc = policy("Other", "another policy at the same version");
    let other = record(other_doc.clone(), PolicyStatus::Published, Some(1));
    c.ok(
        "save_policy(Other v1, true)",
        store.save_policy(&other, true).await,
    );
    c.eq(
        "policy_version(Other, 1)",
        version("Other", 1).await,
        Some(other_doc),
    );
    c.eq(
        "policy_version(Check, 1) after publishing Other v1",
        version("Check", 1).await.map(|d| d.description),
        Some("version one".to_owned()),
    );

    c.eq(
        "policy_version(Check, 3) (never published)",
        version("Check", 3).await,
        None,
    );
    c.eq(
        "policy_version(Missing, 1) (unknown policy)",
        version("Missing", 1).await,
        None,
    );
}

async fn revisions_round_trip(store: &dyn Store) {
    let c = Check("revisions_round_trip");
    let id = "SO-1";

    let created = idle(id, 1);
    c.commit(
        store,
        "creating commit (expected None)",
        Commit::new(None, created.clone(), Vec::new()),
    )
    .await;
    c.eq(
        "load after creating",
        c.load(store, id).await,
        Some(created),
    );

    // Each commit replaces the whole state: lines and executions come and go.
    let mut with_lines = idle(id, 2);
    with_lines.order = Arc::new(
        Order::new(id)
            .with_line(OrderLine::new("1", "Widget", 2))
            .with_line(OrderLine::new("2", "Gadget", Decimal::new(15, 1))),
    );
    let mut with_execution = timed(id, 3, &[]);
    with_execution.order =
        Arc::new(Order::new(id).with_line(OrderLine::new("2", "Gadget", Decimal::new(15, 1))));
    let finished = idle(id, 4);
    let mut expected = 1;
    for (state, what) in [
        (with_lines, "a commit adding lines"),
        (
            with_execution,
            "a commit removing a line and adding an execution",
        ),
        (finished, "a commit removing the lines and the execution"),
    ] {
        c.commit(
            store,
            what,
            Commit::new(Some(expected), state.clone(), Vec::new()),
        )
        .await;
        expected = state.revision;
        c.eq(
            &format!("load after {what}"),
            c.load(store, id).await,
            Some(state),
        );
    }

    // The stored revision is the state's own, not one the store counts itself.
    let jumped = idle(id, 1_000_000_007);
    c.commit(
        store,
        "a commit to revision 1000000007",
        Commit::new(Some(4), jumped.clone(), Vec::new()),
    )
    .await;
    c.eq(
        "load after a commit to revision 1000000007",
        c.load(store, id).await,
        Some(jumped),
    );
    let next = idle(id, 1_000_000_008);
    c.commit(
        store,
        "a commit expecting revision 1000000007",
        Commit::new(Some(1_000_000_007), next.clone(), Vec::new()),
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

async fn conflicting_commits_change_nothing(store: &dyn Store) {
    let c = Check("conflicting_commits_change_nothing");
    let id = "SO-1";
    let first = timed(id, 1, &[]);
    c.commit(
        store,
        "creating commit",
        Commit::new(None, first, vec![step(id, "a")]),
    )
    .await;
    let mut second = timed(id, 2, &[]);
    Arc::make_mut(&mut second.order).customer = Some("C-1".to_owned());
    c.commit(
        store,
        "commit expecting revision 1",
        Commit::new(Some(1), second.clone(), vec![step(id, "b")]),
    )
    .await;

    // Every rejected commit would have changed the order, added a row, ended the
    // execution and set a timer.
    let mut rejected = timed(id, 3, &[500]);
    Arc::make_mut(&mut rejected.order).customer = Some("someone else".to_owned());
    rejected.executions[0]
        .tokens
        .push(token(7, TokenStatus::Ready, None));
    let mut ended = idle(id, 3);
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
        let commit = Commit::new(expected, state.clone(), vec![step(id, "rejected")]);
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
            .commit(Commit::new(Some(1), ghost, vec![step(unknown, "ghost")]))
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
    let third = idle(id, 3);
    c.commit(
        store,
        "commit expecting revision 2 after the conflicts",
        Commit::new(Some(2), third.clone(), Vec::new()),
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

async fn large_state_round_trips(store: &dyn Store) {
    let c = Check("large_state_round_trips");
    let id = "SO-LARGE";
    let state = large_state(id);
    c.commit(
        store,
        "creating commit of a large state",
        Commit::new(None, state.clone(), Vec::new()),
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
    Arc::make_mut(&mut next.order).lines.truncate(999);
    Arc::make_mut(&mut next.order).lines[998].quantity = Decimal::new(10_005, 1);
    next.timeline.pop();
    c.commit(
        store,
        "commit of a large state with one line and one entry fewer",
        Commit::new(Some(42), next.clone(), Vec::new()),
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

async fn journey_in_commit_order(store: &dyn Store) {
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
        c.commit(
            store,
            &what,
            Commit::new(expected, idle(id, revision), rows),
        )
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

async fn live_orders_follow_commits(store: &dyn Store) {
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
        c.commit(store, &what, Commit::new(None, state.clone(), Vec::new()))
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
        Commit::new(Some(1), running("L-READY", 2, Vec::new()), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "commit starting an execution on L-IDLE",
        Commit::new(Some(1), timed("L-IDLE", 2, &[]), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "commit dropping L-FAILED's executions",
        Commit::new(Some(1), idle("L-FAILED", 2), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "commit keeping L-WAITING live",
        Commit::new(Some(1), timed("L-WAITING", 2, &[]), Vec::new()),
    )
    .await;
    c.eq(
        "live_orders() after four more commits",
        c.live(store).await,
        id_set(&["L-WAITING", "L-RETRYING", "L-IDLE"]),
    );
}

async fn due_follows_timers(store: &dyn Store) {
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
        c.commit(store, &what, Commit::new(None, state.clone(), Vec::new()))
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
        Commit::new(Some(1), timed("T-B", 2, &[]), Vec::new()),
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
        Commit::new(Some(1), timed("T-A", 2, &[50]), Vec::new()),
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
        Commit::new(Some(1), timed("T-C", 2, &[400]), Vec::new()),
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
        Commit::new(Some(1), timed("T-F", 2, &[60]), Vec::new()),
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
        c.commit(store, what, Commit::new(Some(2), idle(id, 3), Vec::new()))
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
        Commit::new(Some(2), timed("T-C", 3, &[]), Vec::new()),
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
        c.commit(
            store,
            &what,
            Commit::new(None, timed(id, 1, &[700]), Vec::new()),
        )
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

async fn concurrent_commits_to_distinct_orders(store: &dyn Store) {
    let c = Check("concurrent_commits_to_distinct_orders");
    let count = 200u64;
    let id = |n: u64| format!("C-{n:03}");
    let results = join_all((0..count).map(|n| {
        let order = id(n);
        let state = timed(&order, 1, &[1_000 + n]);
        let row = step(&order, "created");
        store.commit(Commit::new(None, state, vec![row]))
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

async fn concurrent_commits_to_one_order(store: &dyn Store) {
    let c = Check("concurrent_commits_to_one_order");
    let id = "SO-1";
    let writers = 20;
    c.commit(
        store,
        "creating commit",
        Commit::new(None, timed(id, 1, &[]), vec![step(id, "created")]),
    )
    .await;

    let contender = |n: usize| {
        let mut state = timed(id, 2, &[100 + n as u64]);
        Arc::make_mut(&mut state.order).customer = Some(format!("writer {n}"));
        (state, step(id, &format!("writer {n}")))
    };
    let results = join_all((0..writers).map(|n| {
        let (state, row) = contender(n);
        store.commit(Commit::new(Some(1), state, vec![row]))
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

async fn catalog_revision_rises(store: &dyn Store) {
    let c = Check("catalog_revision_rises");
    let start = c.ok("catalog_revision()", store.catalog_revision().await);
    let flow = flow("Catalog flow", Version::new(1, 0, 0), "");
    c.ok("save_flow(draft)", store.save_flow(&flow, false).await);
    let after_flow = c.ok("catalog_revision()", store.catalog_revision().await);
    if after_flow <= start {
        c.fail(
            "catalog_revision() after save_flow",
            format_args!("expected more than {start}, found {after_flow}"),
        );
    }
    c.commit(
        store,
        "creating commit of C-1",
        Commit::new(None, idle("C-1", 1), Vec::new()),
    )
    .await;
    c.eq(
        "catalog_revision() after an order commit",
        c.ok("catalog_revision()", store.catalog_revision().await),
        after_flow,
    );
    let record = record(
        policy("Catalog policy", ""),
        PolicyStatus::Unpublished,
        None,
    );
    c.ok(
        "save_policy(draft)",
        store.save_policy(&record, false).await,
    );
    let after_policy = c.ok("catalog_revision()", store.catalog_revision().await);
    if after_policy <= after_flow {
        c.fail(
            "catalog_revision() after save_policy",
            format_args!("expected more than {after_flow}, found {after_policy}"),
        );
    }
}

async fn set_aside_orders_leave_background_work(store: &dyn Store) {
    let c = Check("set_aside_orders_leave_background_work");
    c.commit(
        store,
        "creating commit of A-TIMED",
        Commit::new(None, timed("A-TIMED", 1, &[100]), Vec::new()),
    )
    .await;
    c.commit(
        store,
        "creating commit of A-OK",
        Commit::new(None, timed("A-OK", 1, &[200]), Vec::new()),
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
        Commit::new(Some(1), timed("A-TIMED", 2, &[50]), Vec::new()),
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

async fn purge_removes_completed_orders(store: &dyn Store) {
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
        c.commit(store, &what, Commit::new(None, state.clone(), journey))
            .await;
    }
    c.commit(
        store,
        "commit making R-REVIVED live again",
        Commit::new(Some(1), timed("R-REVIVED", 2, &[]), Vec::new()),
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
            .commit(Commit::new(Some(1), idle("R-OLD-1", 2), Vec::new()))
            .await,
    );
    c.commit(
        store,
        "creating commit of a new R-OLD-1",
        Commit::new(None, idle("R-OLD-1", 1), vec![step("R-OLD-1", "Again")]),
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
