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
mod fixtures;
mod indexes;
mod orders;
mod shared;

use crate::store::Store;

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
