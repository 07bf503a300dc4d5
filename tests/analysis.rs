//! Black-box tests of flow analysis (`orderflow::flow::analysis`): each warning, a close
//! variant without it, the "cannot tell" cases, and the reference lab.

use indexmap::IndexMap;
use orderflow::document::Entity;
use orderflow::flow::analysis::{Context, Verdict, Warning, WarningKind, analyze};
use orderflow::flow::{ActionStep, Flow, SequenceBuilder, StepPath};
use orderflow::limits::Limits;
use orderflow::rules::{Condition, PolicyDocument, Rule};
use orderflow::{ActionKind, EventKind, PolicyKind};

fn path(segments: &[&str]) -> StepPath {
    StepPath(segments.iter().map(|s| (*s).to_owned()).collect())
}

fn filter(name: &str, entity: Entity, condition: Condition) -> PolicyDocument {
    PolicyDocument::new(name, PolicyKind::Filter, entity).with_rule(Rule::check("Rule", condition))
}

fn source_is(name: &str, sources: &[&str]) -> PolicyDocument {
    let condition = match sources {
        [one] => Condition::equals("fulfillment_source", *one),
        many => Condition::is_in("fulfillment_source", many.iter().copied()),
    };
    filter(name, Entity::FulfillmentOrder, condition)
}

fn policies(docs: impl IntoIterator<Item = PolicyDocument>) -> IndexMap<String, PolicyDocument> {
    docs.into_iter().map(|d| (d.name.clone(), d)).collect()
}

fn run(flow: &Flow, policies: &IndexMap<String, PolicyDocument>) -> Vec<Warning> {
    analyze(flow, &Context::new(policies, &[], &[]))
}

fn of(warnings: &[Warning], pred: impl Fn(&WarningKind) -> bool) -> Vec<&Warning> {
    warnings.iter().filter(|w| pred(&w.kind)).collect()
}

fn overlaps(w: &WarningKind) -> bool {
    matches!(w, WarningKind::BranchesOverlap { .. })
}

fn unrouted(w: &WarningKind) -> bool {
    matches!(w, WarningKind::UnroutedRecords { .. })
}

fn validate(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER)
}

fn assign(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::AssignFulfillmentSource)
        .execution_policy("Fulfillment source assignment")
}

fn send(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::SendToFulfillment).provider("3PL")
}

/// Validate, assign, then a Splitter with one branch per filter (in order).
fn split_flow(filters: &[(&str, Option<&str>)]) -> Flow {
    Flow::builder("Split")
        .steps(|s| {
            s.action(validate("Validate").execution_policy("Ship-to US"))
                .action(assign("Assign"))
                .splitter("By store", |mut b| {
                    for (branch, f) in filters {
                        // A branch without a filter is an empty one: it passes everything on.
                        b = match f {
                            Some(f) => b.branch(*branch, |s| {
                                s.action(send(&format!("Send {branch}")).filter(*f))
                            }),
                            None => b.branch(*branch, |s| s),
                        };
                    }
                    b
                })
        })
        .build()
        .unwrap()
}

#[test]
fn a_clean_flow_has_no_warnings() {
    let flow = Flow::builder("Clean")
        .steps(|s| {
            s.action(validate("Validate").execution_policy("Ship-to US"))
                .condition(
                    "Valid?",
                    |y| y.action(assign("Assign")).action(send("Send")),
                    |n| n,
                )
        })
        .build()
        .unwrap();
    assert_eq!(run(&flow, &IndexMap::new()), Vec::new());
}

#[test]
fn reference_lab_gives_only_the_unrouted_warning() {
    let flow = Flow::from_json(include_str!("../examples/reference-lab/flow.json")).unwrap();
    let docs =
        PolicyDocument::list_from_json(include_str!("../examples/reference-lab/policies.json"))
            .unwrap();
    let warnings = run(&flow, &policies(docs));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert_eq!(w.path, path(&["By store"]));
    assert_eq!(
        w.kind,
        WarningKind::UnroutedRecords {
            verdict: Verdict::Yes,
            entity: Some(Entity::FulfillmentOrder),
            field: Some("fulfillment_source".to_owned()),
            values: vec!["Seattle store".to_owned(), "Chicago store".to_owned()],
        }
    );
    assert_eq!(
        w.to_string(),
        "By store: a fulfillment order whose fulfillment source is none of Seattle store, \
         Chicago store takes no branch; add a branch for the rest if they should go on"
    );
}

#[test]
fn overlapping_literal_sets_overlap() {
    let p = policies([
        source_is("West", &["Seattle store", "Chicago store"]),
        source_is("Chicago store", &["Chicago store"]),
    ]);
    let flow = split_flow(&[("West", Some("West")), ("Chicago", Some("Chicago store"))]);
    let warnings = run(&flow, &p);
    let found = of(&warnings, overlaps);
    assert_eq!(found.len(), 1, "{warnings:#?}");
    assert_eq!(found[0].path, path(&["By store"]));
    assert_eq!(
        found[0].kind,
        WarningKind::BranchesOverlap {
            first: "West".to_owned(),
            second: "Chicago".to_owned(),
            verdict: Verdict::Yes,
        }
    );
    assert_eq!(
        found[0].to_string(),
        "By store: branches 'West' and 'Chicago' can admit the same record, which then takes \
         both; make their filters exclusive if each record should take one branch"
    );
}

#[test]
fn disjoint_literal_sets_do_not_overlap() {
    let p = policies([
        source_is("Seattle store", &["Seattle store"]),
        source_is("Chicago store", &["Chicago store", "Denver store"]),
    ]);
    let flow = split_flow(&[
        ("Seattle", Some("Seattle store")),
        ("Chicago", Some("Chicago store")),
    ]);
    let warnings = run(&flow, &p);
    assert!(of(&warnings, overlaps).is_empty(), "{warnings:#?}");
    // The values are listed in branch order, each once.
    let found = of(&warnings, unrouted);
    assert_eq!(
        found[0].to_string(),
        "By store: a fulfillment order whose fulfillment source is none of Seattle store, \
         Chicago store, Denver store takes no branch; add a branch for the rest if they should \
         go on"
    );
}

#[test]
fn and_groups_that_add_rows_still_decide_disjointness() {
    let seattle = filter(
        "Seattle open",
        Entity::FulfillmentOrder,
        Condition::And(vec![
            Condition::equals("fulfillment_source", "Seattle store"),
            Condition::has_data("status_reason"),
        ]),
    );
    let p = policies([seattle, source_is("Chicago store", &["Chicago store"])]);
    let flow = split_flow(&[
        ("Seattle", Some("Seattle open")),
        ("Chicago", Some("Chicago store")),
    ]);
    let warnings = run(&flow, &p);
    assert!(of(&warnings, overlaps).is_empty(), "{warnings:#?}");
    // A value outside both lists still takes no branch, whatever the extra row says.
    let found = of(&warnings, unrouted);
    assert_eq!(found.len(), 1);
    assert!(matches!(
        found[0].kind,
        WarningKind::UnroutedRecords {
            verdict: Verdict::Yes,
            ..
        }
    ));
}

#[test]
fn shared_values_with_extra_rows_cannot_tell() {
    let seattle = filter(
        "Seattle open",
        Entity::FulfillmentOrder,
        Condition::And(vec![
            Condition::equals("fulfillment_source", "Seattle store"),
            Condition::has_data("status_reason"),
        ]),
    );
    let p = policies([seattle, source_is("Seattle store", &["Seattle store"])]);
    let flow = split_flow(&[
        ("Open", Some("Seattle open")),
        ("All", Some("Seattle store")),
    ]);
    let warnings = run(&flow, &p);
    let found = of(&warnings, overlaps);
    assert_eq!(found.len(), 1);
    assert!(matches!(
        found[0].kind,
        WarningKind::BranchesOverlap {
            verdict: Verdict::CannotTell,
            ..
        }
    ));
}

#[test]
fn a_branch_without_a_filter_overlaps_and_routes_everything() {
    let p = policies([source_is("Seattle store", &["Seattle store"])]);
    let flow = split_flow(&[("Seattle", Some("Seattle store")), ("Rest", None)]);
    let warnings = analyze(&flow, &Context::new(&p, &[], &[]));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(
        warnings[0].kind,
        WarningKind::BranchesOverlap {
            first: "Seattle".to_owned(),
            second: "Rest".to_owned(),
            verdict: Verdict::Yes,
        }
    );
}

#[test]
fn code_policies_cannot_tell() {
    let flow = split_flow(&[("A", Some("Code A")), ("B", Some("Code B"))]);
    let warnings = run(&flow, &IndexMap::new());
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert_eq!(warnings[0].path, path(&["By store"]));
    assert_eq!(
        warnings[0].to_string(),
        "By store: cannot tell whether branches 'A' and 'B' overlap; make sure no record \
         passes both filters, or that taking both is intended"
    );
    assert_eq!(
        warnings[1].kind,
        WarningKind::UnroutedRecords {
            verdict: Verdict::CannotTell,
            entity: None,
            field: None,
            values: Vec::new(),
        }
    );
    assert_eq!(
        warnings[1].to_string(),
        "By store: cannot tell whether every record takes a branch; a record no branch's \
         filter admits stops here"
    );
}

#[test]
fn or_conditions_cannot_tell() {
    let either = filter(
        "Seattle or Denver",
        Entity::FulfillmentOrder,
        Condition::Or(vec![
            Condition::equals("fulfillment_source", "Seattle store"),
            Condition::equals("fulfillment_source", "Denver store"),
        ]),
    );
    let p = policies([either, source_is("Chicago store", &["Chicago store"])]);
    let flow = split_flow(&[
        ("West", Some("Seattle or Denver")),
        ("Chicago", Some("Chicago store")),
    ]);
    let warnings = run(&flow, &p);
    let found = of(&warnings, overlaps);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].kind,
        WarningKind::BranchesOverlap {
            first: "West".to_owned(),
            second: "Chicago".to_owned(),
            verdict: Verdict::CannotTell,
        }
    );
    assert!(matches!(
        of(&warnings, unrouted)[0].kind,
        WarningKind::UnroutedRecords {
            verdict: Verdict::CannotTell,
            ..
        }
    ));
}

#[test]
fn filters_on_different_fields_cannot_tell() {
    let held = filter(
        "Held",
        Entity::FulfillmentOrder,
        Condition::equals("status_reason", "Backorder Hold"),
    );
    let p = policies([held, source_is("Chicago store", &["Chicago store"])]);
    let flow = split_flow(&[("Held", Some("Held")), ("Chicago", Some("Chicago store"))]);
    let warnings = run(&flow, &p);
    assert!(matches!(
        of(&warnings, overlaps)[0].kind,
        WarningKind::BranchesOverlap {
            verdict: Verdict::CannotTell,
            ..
        }
    ));
}

#[test]
fn listing_every_option_routes_every_record() {
    let p = policies([
        filter(
            "Active",
            Entity::FulfillmentOrder,
            Condition::equals("state", "active"),
        ),
        filter(
            "Inactive",
            Entity::FulfillmentOrder,
            Condition::equals("state", "inactive"),
        ),
    ]);
    let flow = split_flow(&[("Active", Some("Active")), ("Inactive", Some("Inactive"))]);
    assert_eq!(run(&flow, &p), Vec::new());
}

#[test]
fn an_option_left_out_is_unrouted() {
    let p = policies([
        filter(
            "Active",
            Entity::FulfillmentOrder,
            Condition::equals("state", "active"),
        ),
        filter(
            "Also active",
            Entity::FulfillmentOrder,
            Condition::is_in("state", ["active"]),
        ),
    ]);
    let flow = split_flow(&[("One", Some("Active")), ("Two", Some("Also active"))]);
    let warnings = run(&flow, &p);
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(matches!(
        warnings[0].kind,
        WarningKind::BranchesOverlap {
            verdict: Verdict::Yes,
            ..
        }
    ));
    assert_eq!(
        warnings[1].to_string(),
        "By store: a fulfillment order whose state is not active takes no branch; add a branch \
         for the rest if they should go on"
    );
}

#[test]
fn send_without_fulfillment_determination() {
    let flow = Flow::builder("Ship")
        .steps(|s| {
            s.action(validate("Validate").execution_policy("Ship-to US"))
                .action(send("Send"))
        })
        .build()
        .unwrap();
    let warnings = run(&flow, &IndexMap::new());
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, path(&["Send"]));
    assert_eq!(
        warnings[0].kind,
        WarningKind::SendWithoutFulfillmentDetermination
    );
    assert_eq!(
        warnings[0].to_string(),
        "Send: Send to Fulfillment can run with no Assign Fulfillment Source or Send to DOM \
         before it on its path, so there may be no fulfillment order to send; determine \
         fulfillment before it"
    );
}

#[test]
fn assign_dom_or_custom_before_send_determines_fulfillment() {
    for before in [
        assign("Determine"),
        ActionStep::new("Determine", ActionKind::SendToDom).provider("DOM"),
        ActionStep::custom("Determine", "make fulfillment orders"),
    ] {
        let flow = Flow::builder("Ship")
            .steps(|s| {
                s.action(validate("Validate").execution_policy("Ship-to US"))
                    .action(before)
                    .action(send("Send"))
            })
            .build()
            .unwrap();
        assert_eq!(run(&flow, &IndexMap::new()), Vec::new());
    }
}

#[test]
fn send_after_a_merge_needs_determination_on_every_path() {
    let flow = |both: bool| {
        Flow::builder("Ship")
            .steps(|s| {
                s.action(validate("Validate").execution_policy("Ship-to US"))
                    .condition_merge(
                        "Valid?",
                        |y| y.action(assign("Assign")),
                        |n| {
                            if both {
                                n.action(assign("Assign anyway"))
                            } else {
                                n
                            }
                        },
                    )
                    .action(send("Send"))
            })
            .build()
            .unwrap()
    };
    let warnings = run(&flow(false), &IndexMap::new());
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, path(&["Send"]));
    assert_eq!(run(&flow(true), &IndexMap::new()), Vec::new());
}

#[test]
fn send_started_by_fulfillment_order_creation_has_a_fulfillment_order() {
    let determine = Flow::builder("Determine")
        .steps(|s| s.action(assign("Assign").input_event(EventKind::NEW_ORDER)))
        .build()
        .unwrap();
    let flow = Flow::builder("Ship each")
        .steps(|s| s.action(send("Send").input_event(EventKind::FULFILLMENT_ORDER_CREATED)))
        .build()
        .unwrap();
    let p = IndexMap::new();
    let others = [determine];
    assert_eq!(analyze(&flow, &Context::new(&p, &others, &[])), Vec::new());
}

#[test]
fn condition_after_a_validation_that_cannot_fail() {
    let flow = |policy: bool| {
        let mut first = validate("Validate");
        if policy {
            first = first.execution_policy("Ship-to US");
        }
        Flow::builder("Check")
            .steps(|s| {
                s.action(first)
                    .condition("Valid?", |y| y.action(assign("Assign")), |n| n)
            })
            .build()
            .unwrap()
    };
    let warnings = run(&flow(false), &IndexMap::new());
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, path(&["Valid?"]));
    assert_eq!(
        warnings[0].kind,
        WarningKind::ConditionAfterInfallibleAction {
            action: "Validate".to_owned(),
            kind: ActionKind::ValidateOrderHeader,
        }
    );
    assert_eq!(
        warnings[0].to_string(),
        "Valid?: the previous action 'Validate' (Validate Order Header without execution \
         policies) always succeeds, so the no path never runs; give it an execution policy or \
         remove the condition"
    );
    assert_eq!(run(&flow(true), &IndexMap::new()), Vec::new());
}

#[test]
fn condition_opening_a_branch_routes_on_the_action_before_the_element() {
    let lines = ActionStep::new("Validate lines", ActionKind::ValidateOrderLine);
    let flow = Flow::builder("Check")
        .steps(|s| {
            s.action(validate("Validate").execution_policy("Ship-to US"))
                .action(lines)
                .condition_merge("Outer", |y| y.condition_merge("Inner", |y| y, |n| n), |n| n)
                // After a merge a condition routes on the merge, which may fail.
                .condition("After merge", |y| y.action(assign("Assign")), |n| n)
        })
        .build()
        .unwrap();
    let warnings = run(&flow, &IndexMap::new());
    let paths: Vec<StepPath> = warnings.iter().map(|w| w.path.clone()).collect();
    assert_eq!(
        paths,
        vec![path(&["Outer"]), path(&["Outer", "yes", "Inner"])],
        "{warnings:#?}"
    );
}

#[test]
fn conditions_after_actions_that_can_fail_are_fine() {
    let flow = Flow::builder("Check")
        .steps(|s| {
            s.action(validate("Validate").execution_policy("Ship-to US"))
                .action(assign("Assign"))
                .condition("Assigned?", |y| y.action(send("Send")), |n| n)
        })
        .build()
        .unwrap();
    assert_eq!(run(&flow, &IndexMap::new()), Vec::new());
}

fn wait_for_shipped() -> Flow {
    Flow::builder("After ship")
        .steps(|s| {
            s.action(validate("Validate").execution_policy("Ship-to US"))
                .action(ActionStep::custom("Wait", "notify").input_event(EventKind::SHIPPED))
        })
        .build()
        .unwrap()
}

#[test]
fn waiting_on_an_event_nothing_raises() {
    let flow = wait_for_shipped();
    let warnings = run(&flow, &IndexMap::new());
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, path(&["Wait"]));
    assert_eq!(
        warnings[0].kind,
        WarningKind::EventNothingRaises {
            event: EventKind::SHIPPED
        }
    );
    assert_eq!(
        warnings[0].to_string(),
        "Wait: no action of this flow or the other flows raises 'Shipped', so it must come from \
         outside; make sure the host submits it and list it among the external events"
    );
}

#[test]
fn external_events_are_raised_from_outside() {
    let flow = wait_for_shipped();
    let p = IndexMap::new();
    let external = [EventKind::SHIPPED];
    assert_eq!(
        analyze(&flow, &Context::new(&p, &[], &external)),
        Vec::new()
    );
}

#[test]
fn events_raised_by_other_flows_and_custom_steps_count() {
    let raiser = Flow::builder("Raiser")
        .steps(|s| {
            s.action(ActionStep::custom("Notify", "notify").input_event(EventKind::INVOICED))
                .action(
                    ActionStep::new("Invoice", ActionKind::SendToInvoice)
                        .provider("Billing")
                        .on_failure(EventKind::new("Billing trouble")),
                )
        })
        .build()
        .unwrap();
    let flow = Flow::builder("Listener")
        .steps(|s| {
            s.action(
                ActionStep::custom("After notify", "log")
                    .input_event(EventKind::new("Notify has Succeeded"))
                    .input_event(EventKind::new("Billing trouble"))
                    .input_event(EventKind::SENT_TO_INVOICE),
            )
        })
        .build()
        .unwrap();
    let p = IndexMap::new();
    let others = [raiser.clone()];
    assert_eq!(analyze(&flow, &Context::new(&p, &others, &[])), Vec::new());
    // The raiser itself waits for "Invoiced", which nothing raises; entry events count too.
    let warnings = analyze(&raiser, &Context::new(&p, &[flow], &[]));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, path(&["Notify"]));
}

fn starter(name: &str, filter: Option<&str>) -> Flow {
    let mut first = validate(&format!("{name} validate")).execution_policy("Ship-to US");
    if let Some(f) = filter {
        first = first.filter(f);
    }
    Flow::builder(name)
        .steps(|s| s.action(first))
        .build()
        .unwrap()
}

fn order_type_is(name: &str, ty: &str) -> PolicyDocument {
    filter(name, Entity::Order, Condition::equals("order_type", ty))
}

#[test]
fn two_flows_starting_on_the_same_event() {
    let flow = starter("Sales", None);
    let others = [flow.clone(), starter("Subscriptions", None)];
    let p = IndexMap::new();
    let warnings = analyze(&flow, &Context::new(&p, &others, &[]));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].path, path(&["Sales validate"]));
    assert_eq!(
        warnings[0].kind,
        WarningKind::FlowsShareTrigger {
            flow: "Subscriptions".to_owned(),
            event: EventKind::NEW_ORDER,
            verdict: Verdict::Yes,
        }
    );
    assert_eq!(
        warnings[0].to_string(),
        "Sales validate: flow 'Subscriptions' also starts on 'New Order' and may take the same \
         records, so both run for one order; give their entry actions disjoint filters if only \
         one should"
    );
}

#[test]
fn disjoint_entry_filters_start_different_orders() {
    let p = policies([
        order_type_is("Sales orders", "sales_order"),
        order_type_is("Subscriptions", "subscription"),
    ]);
    let flow = starter("Sales", Some("Sales orders"));
    let others = [starter("Subscriptions", Some("Subscriptions"))];
    assert_eq!(analyze(&flow, &Context::new(&p, &others, &[])), Vec::new());
}

#[test]
fn code_entry_filters_cannot_tell() {
    let p = IndexMap::new();
    let flow = starter("Sales", Some("Code sales"));
    let others = [starter("Subscriptions", Some("Code subscriptions"))];
    let warnings = analyze(&flow, &Context::new(&p, &others, &[]));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(
        warnings[0].to_string(),
        "Sales validate: flow 'Subscriptions' also starts on 'New Order'; cannot tell whether \
         its entry filter and this flow's admit the same records, so both may run for one order"
    );
}

#[test]
fn flows_starting_on_different_events_do_not_share_a_trigger() {
    let flow = starter("Sales", None);
    let others = [wait_for_shipped_first()];
    let p = IndexMap::new();
    let external = [EventKind::SHIPPED];
    assert_eq!(
        analyze(&flow, &Context::new(&p, &others, &external)),
        Vec::new()
    );
}

fn wait_for_shipped_first() -> Flow {
    Flow::builder("Shipped")
        .steps(|s| {
            s.action(ActionStep::custom("Ship note", "notify").input_event(EventKind::SHIPPED))
        })
        .build()
        .unwrap()
}

#[test]
fn entry_actions_inside_elements_are_found() {
    let flow = Flow::builder("Split start")
        .steps(|s| {
            s.splitter("Start", |b| {
                b.branch("Sales", |s| {
                    s.action(validate("Sales entry").filter("Sales orders"))
                })
                .branch("Subs", |s| {
                    s.action(validate("Subs entry").filter("Subscriptions"))
                })
            })
        })
        .build()
        .unwrap();
    let p = policies([
        order_type_is("Sales orders", "sales_order"),
        order_type_is("Subscriptions", "subscription"),
    ]);
    let others = [starter("Other subs", Some("Subscriptions"))];
    let warnings = analyze(&flow, &Context::new(&p, &others, &[]));
    let shared = of(&warnings, |k| {
        matches!(k, WarningKind::FlowsShareTrigger { .. })
    });
    assert_eq!(shared.len(), 1, "{warnings:#?}");
    assert_eq!(shared[0].path, path(&["Start", "Subs", "Subs entry"]));
    // The splitter's own branches are disjoint and cover both order types.
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
}

/// `n` Condition-Merges nested in each other's `yes` paths around a Send to Fulfillment.
fn nest(s: SequenceBuilder, n: usize) -> SequenceBuilder {
    if n == 0 {
        return s.action(send("Deep send"));
    }
    s.condition_merge(format!("Level {n}"), |y| nest(y, n - 1), |n| n)
}

#[test]
fn deep_unvalidated_flows_do_not_panic() {
    let mut flow = Flow::builder("Deep")
        .steps(|s| s.action(validate("Validate")))
        .build()
        .unwrap();
    flow.steps = SequenceBuilder::default()
        .action(validate("Validate"))
        .into_steps();
    flow.steps
        .extend(nest(SequenceBuilder::default(), 500).into_steps());
    let p = IndexMap::new();
    let others = [flow.clone()];
    let warnings = analyze(&flow, &Context::new(&p, &others, &[]));
    // Every condition opening a `yes` path routes on the validation, down to the nesting
    // bound; the send is past it.
    assert!(
        warnings.len() <= Limits::default().max_nesting + 1,
        "{}",
        warnings.len()
    );
    assert_eq!(warnings[0].path, path(&["Level 500"]));
    assert!(
        warnings
            .iter()
            .all(|w| matches!(w.kind, WarningKind::ConditionAfterInfallibleAction { .. }))
    );
}

#[tokio::test]
async fn the_engine_analyzes_against_its_published_policies_and_flows() {
    let engine = orderflow::Engine::builder()
        .provider(orderflow::MemoryProvider::new("Seattle store 3PL"))
        .provider(orderflow::MemoryProvider::new("Chicago store 3PL"))
        .build()
        .await
        .unwrap();
    let policies = include_str!("../examples/reference-lab/policies.json");
    for policy in orderflow::rules::PolicyDocument::list_from_json(policies).unwrap() {
        let name = policy.name.clone();
        engine.create_policy(policy).await.unwrap();
        engine.publish_policy(&name).await.unwrap();
    }
    let flow = Flow::from_json(include_str!("../examples/reference-lab/flow.json")).unwrap();
    let warnings = engine.analyze(&flow, &[]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .to_string()
            .contains("none of Seattle store, Chicago store"),
        "{}",
        warnings[0]
    );
    // Published, the flow shares its trigger with a second copy of itself.
    engine.create_flow(flow.clone()).await.unwrap();
    engine.publish("Reference lab").await.unwrap();
    let mut copy = flow;
    copy.name = "Reference lab, again".into();
    let warnings = engine.analyze(&copy, &[]);
    assert!(
        warnings.iter().any(|w| w
            .to_string()
            .contains("flow 'Reference lab' also starts on 'New Order'")),
        "{warnings:?}"
    );
}
