//! Checks of the catalog: flows, policies, their frozen versions and the catalog revision.

use std::collections::BTreeSet;

use semver::Version;

use super::fixtures::{Check, change, flow, idle, policy, record};
use crate::rules::PolicyStatus;
use crate::store::Store;

pub(super) async fn empty_store(store: &dyn Store) {
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

pub(super) async fn flows_in_creation_order(store: &dyn Store) {
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

pub(super) async fn frozen_flow_versions(store: &dyn Store) {
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

pub(super) async fn policies_in_creation_order(store: &dyn Store) {
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

pub(super) async fn published_policy_versions(store: &dyn Store) {
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

pub(super) async fn catalog_revision_rises(store: &dyn Store) {
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
        change(None, idle("C-1", 1), Vec::new()),
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
