//! Every validation problem, the errors of bad documents, and the example flow files.

use orderflow::document::{Entity, Order, RecordMut};
use orderflow::flow::{
    ActionStep, ElementKind, Flow, ProblemKind, RetryPolicy, SequenceBuilder, Step, StepPath,
    ValidationError, validate, validate_with,
};
use orderflow::limits::Limits;
use orderflow::policy::{Check, Criticality, execution_fn, filter_fn};
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::{
    ActionKind, Engine, Error, ErrorKind, Event, EventKind, MemoryProvider, OrchestrationType,
    action_fn,
};
use std::time::Duration;

fn entry(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderHeader).input_event(EventKind::NEW_ORDER)
}

fn header(name: &str) -> ActionStep {
    ActionStep::new(name, ActionKind::ValidateOrderHeader)
}

fn problems(flow: Flow) -> ValidationError {
    validate(&flow).expect_err("the flow is invalid")
}

fn only(err: &ValidationError) -> (&StepPath, &ProblemKind) {
    assert_eq!(err.problems.len(), 1, "expected one problem: {err}");
    (&err.problems[0].path, &err.problems[0].kind)
}

fn flow(f: impl FnOnce(SequenceBuilder) -> SequenceBuilder) -> Flow {
    let mut built = Flow::from_json(r#"{"name":"F","steps":[]}"#).unwrap();
    built.steps = f(SequenceBuilder::default()).into_steps();
    built
}

fn path(parts: &[&str]) -> StepPath {
    StepPath(parts.iter().map(|s| (*s).to_owned()).collect())
}

#[test]
fn a_valid_flow_passes() {
    let f = flow(|s| s.action(entry("A")).action(header("B")));
    assert!(validate(&f).is_ok());
}

#[test]
fn condition_without_action_before_it() {
    let f = flow(|s| {
        s.splitter("S", |b| {
            b.branch("x", |s| s.condition("C", |y| y.action(entry("A")), |n| n))
        })
    });
    let err = problems(f);
    assert!(
        err.problems
            .iter()
            .any(|p| p.kind == ProblemKind::ConditionWithoutAction
                && p.path == path(&["S", "x", "C"]))
    );
}

#[test]
fn step_after_condition_or_splitter() {
    let f = flow(|s| {
        s.action(entry("A"))
            .condition("C", |y| y.action(header("Y")), |n| n)
            .action(header("After"))
    });
    let err = problems(f);
    let (p, k) = only(&err);
    assert_eq!(
        *k,
        ProblemKind::StepAfterBranchingElement(ElementKind::Condition)
    );
    assert_eq!(*p, path(&["After"]));

    let f = flow(|s| {
        s.action(entry("A"))
            .splitter("S", |b| {
                b.branch("x", |s| s.action(header("X").filter("p")))
            })
            .action(header("After"))
    });
    let err = problems(f);
    let (_, k) = only(&err);
    assert_eq!(
        *k,
        ProblemKind::StepAfterBranchingElement(ElementKind::Splitter)
    );
}

#[test]
fn merges_may_be_followed() {
    let f = flow(|s| {
        s.action(entry("A"))
            .condition_merge("C", |y| y.action(header("Y")), |n| n)
            .splitter_merge("S", |b| {
                b.branch("x", |s| s.action(header("X").filter("p")))
            })
            .action(header("After"))
    });
    assert!(validate(&f).is_ok());
}

#[test]
fn empty_splitter() {
    for merge in [false, true] {
        let f = flow(|s| {
            let s = s.action(entry("A"));
            if merge {
                s.splitter_merge("S", |b| b)
            } else {
                s.splitter("S", |b| b)
            }
        });
        let err = problems(f);
        let (p, k) = only(&err);
        assert_eq!(*k, ProblemKind::EmptySplitter);
        assert_eq!(*p, path(&["S"]));
    }
}

#[test]
fn duplicate_step_names_anywhere_in_the_tree() {
    let f = flow(|s| {
        s.action(entry("A")).splitter_merge("S", |b| {
            b.branch("x", |s| s.action(header("A").filter("p")))
        })
    });
    let err = problems(f);
    let (p, k) = only(&err);
    assert_eq!(*k, ProblemKind::DuplicateStepName("A".into()));
    assert_eq!(*p, path(&["S", "x", "A"]));
}

#[test]
fn unfiltered_branch_opening_action() {
    let f = flow(|s| {
        s.action(entry("A")).splitter("S", |b| {
            b.branch("x", |s| s.action(header("X").filter("p")))
                .branch("y", |s| s.action(header("Y")))
        })
    });
    let err = problems(f);
    let (p, k) = only(&err);
    assert_eq!(*k, ProblemKind::UnfilteredBranch("y".into()));
    assert_eq!(*p, path(&["S", "y", "Y"]));
}

#[test]
fn no_trigger_and_empty_flow_and_empty_names() {
    let err = problems(flow(|s| s.action(header("A"))));
    assert_eq!(*only(&err).1, ProblemKind::NoTrigger);

    let err = problems(flow(|s| s));
    assert_eq!(*only(&err).1, ProblemKind::EmptyFlow);

    let err = problems(flow(|s| s.action(entry(" "))));
    assert_eq!(*only(&err).1, ProblemKind::EmptyName);
}

#[test]
fn custom_action_mismatch_retry_and_timeout() {
    let mut custom = ActionStep::new("C", ActionKind::Custom);
    custom.input_events.push(EventKind::NEW_ORDER);
    let err = problems(flow(|s| s.action(custom)));
    assert_eq!(*only(&err).1, ProblemKind::CustomActionMismatch);

    let mut builtin = entry("B");
    builtin.custom_action = Some("x".into());
    let err = problems(flow(|s| s.action(builtin)));
    assert_eq!(*only(&err).1, ProblemKind::CustomActionMismatch);

    let err = problems(flow(|s| {
        s.action(entry("A").retry(RetryPolicy::new(0, Duration::from_millis(10))))
    }));
    assert!(matches!(only(&err).1, ProblemKind::InvalidRetry(_)));
    let err = problems(flow(|s| {
        s.action(
            entry("A").retry(RetryPolicy::new(2, Duration::from_millis(10)).with_jitter(f64::NAN)),
        )
    }));
    assert!(matches!(only(&err).1, ProblemKind::InvalidRetry(_)));
    let err = problems(flow(|s| {
        s.action(entry("A").timeout(Duration::from_millis(0)))
    }));
    assert_eq!(*only(&err).1, ProblemKind::InvalidTimeout);
}

/// The default nesting bound (`Limits::max_nesting`).
const MAX_NESTING: usize = 16;

#[test]
fn nesting_beyond_the_limit_is_rejected_without_overflow() {
    let mut steps = vec![Step::Action(header("leaf").filter("p"))];
    for i in 0..(MAX_NESTING * 4) {
        let inner = std::mem::take(&mut steps);
        let mut f = flow(|s| s.splitter_merge(format!("S{i}"), |b| b.branch("x", |s| s)));
        if let Step::SplitterMerge(sm) = &mut f.steps[0] {
            sm.branches.insert("x".into(), inner);
        }
        steps = f.steps;
    }
    let mut f = flow(|s| s.action(entry("A")));
    f.steps.extend(steps);
    let err = problems(f.clone());
    assert!(err.has(|k| *k == ProblemKind::TooDeep(MAX_NESTING)));
    // The bound is `Limits::max_nesting`: a flow past the default is refused there too, and
    // a lower bound is reported with its own value.
    let limit = f.check_limits(&Limits::default()).unwrap_err();
    assert_eq!((limit.limit, limit.max), ("max_nesting", MAX_NESTING));
    let err = validate_with(&f, &Limits::default().with_max_nesting(3)).unwrap_err();
    assert!(err.has(|k| *k == ProblemKind::TooDeep(3)));
    assert!(err.to_string().contains("max_nesting = 3"), "{err}");
}

#[test]
fn errors_name_flow_path_and_problem() {
    let f = flow(|s| {
        s.action(entry("A")).splitter("Split", |b| {
            b.branch("Seattle", |s| s.action(header("Send").provider("x")))
        })
    });
    let text = problems(f).to_string();
    assert!(text.contains("flow 'F'"), "{text}");
    assert!(text.contains("Split / Seattle / Send"), "{text}");
    assert!(text.contains("no filter policy"), "{text}");
}

/// Returns: validation and custom actions, conditions only.
#[derive(Debug)]
struct Returns;

impl OrchestrationType for Returns {
    fn name(&self) -> &str {
        "Returns"
    }
    fn allows_action(&self, kind: ActionKind) -> bool {
        matches!(kind, ActionKind::ValidateOrderHeader | ActionKind::Custom)
    }
    fn allows_element(&self, element: ElementKind) -> bool {
        element == ElementKind::Condition
    }
}

/// Offers only invoicing.
#[derive(Debug)]
struct Billing;

#[async_trait::async_trait]
impl Provider for Billing {
    fn name(&self) -> &str {
        "Billing"
    }
    fn offers(&self) -> &[RequestKind] {
        &[RequestKind::SendInvoice]
    }
    async fn call(&self, _: Request<'_>, _: &CallContext<'_>) -> Result<Reply, ProviderError> {
        Ok(Reply::Done)
    }
}

async fn engine() -> Engine {
    Engine::builder()
        .orchestration_type(Returns)
        .provider(Billing)
        .policy(filter_fn("Filter", Entity::Order, |_| true))
        .policy(execution_fn(
            "Exec",
            Entity::Order,
            Criticality::Critical,
            |_: RecordMut<'_>| Check::Passed,
        ))
        .action("known", action_fn(|_| Box::pin(async { Ok(()) })))
        .build()
        .await
        .unwrap()
}

async fn publish_problems(f: Flow) -> Vec<ProblemKind> {
    let engine = engine().await;
    let name = f.name.clone();
    engine.create_flow(f).await.unwrap();
    match engine.publish(&name).await {
        Err(Error::Validation(e)) => {
            assert_eq!(e.flow, name);
            e.problems.into_iter().map(|p| p.kind).collect()
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn publish_checks_references() {
    let f = flow(|s| {
        s.action(entry("A").filter("Nope").execution_policy("Missing"))
            .action(ActionStep::new("DOM", ActionKind::SendToDom).provider("Ghost"))
            .action(ActionStep::new("Ship", ActionKind::SendToFulfillment))
            .action(ActionStep::new("Invoice wrong", ActionKind::SendToDom).provider("Billing"))
            .action(ActionStep::custom("Custom", "unknown"))
            .action(
                header("Wrong types")
                    .filter("Exec")
                    .execution_policy("Filter"),
            )
    });
    let found = publish_problems(f).await;
    let expected = [
        ProblemKind::UnknownPolicy("Nope".into()),
        ProblemKind::UnknownPolicy("Missing".into()),
        ProblemKind::UnknownProvider("Ghost".into()),
        ProblemKind::MissingProvider,
        ProblemKind::ProviderLacksRequest {
            provider: "Billing".into(),
            request: RequestKind::DetermineFulfillment.to_string(),
        },
        ProblemKind::UnknownCustomAction("unknown".into()),
        ProblemKind::WrongPolicyType {
            policy: "Exec".into(),
            expected: orderflow::PolicyKind::Filter,
        },
        ProblemKind::WrongPolicyType {
            policy: "Filter".into(),
            expected: orderflow::PolicyKind::Execution,
        },
    ];
    for e in &expected {
        assert!(found.contains(e), "missing {e:?} in {found:?}");
    }
}

#[tokio::test]
async fn publish_checks_the_orchestration_type() {
    let mut f = flow(|s| {
        s.action(entry("A"))
            .action(ActionStep::new("DOM", ActionKind::SendToDom).provider("Billing"))
            .splitter_merge("S", |b| b.branch("x", |s| s))
    });
    f.orchestration_type = "Returns".into();
    let found = publish_problems(f).await;
    assert!(found.contains(&ProblemKind::ActionKindNotAllowed(ActionKind::SendToDom)));
    assert!(found.contains(&ProblemKind::ElementNotAllowed(ElementKind::SplitterMerge)));

    let mut f = flow(|s| s.action(entry("A")));
    f.orchestration_type = "Inventory".into();
    let found = publish_problems(f).await;
    assert_eq!(
        found,
        vec![ProblemKind::UnknownOrchestrationType("Inventory".into())]
    );
}

#[test]
fn bad_flow_documents_get_document_errors() {
    let cases = [
        ("unknown field", r#"{"name":"F","steps":[],"colour":"red"}"#),
        ("wrong type", r#"{"name":"F","steps":{}}"#),
        ("trailing garbage", r#"{"name":"F","steps":[]} xyz"#),
        ("missing name", r#"{"steps":[]}"#),
        (
            "unknown kind",
            r#"{"name":"F","steps":[{"action":{"name":"A","kind":"teleport"}}]}"#,
        ),
        (
            "unknown step",
            r#"{"name":"F","steps":[{"loop":{"name":"L"}}]}"#,
        ),
        ("bad version", r#"{"name":"F","version":"one","steps":[]}"#),
        ("empty document", ""),
        (
            "negative timeout",
            r#"{"name":"F","steps":[{"action":{"name":"A","kind":"custom","timeout_ms":-1}}]}"#,
        ),
        (
            "unknown action field",
            r#"{"name":"F","steps":[{"action":{"name":"A","kind":"custom","color":1}}]}"#,
        ),
    ];
    for (what, json) in cases {
        let err = Flow::from_json(json).expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Document, "{what}: {err}");
        // A position in the text, or (for the form of a step) a path into the document.
        let text = err.to_string();
        assert!(
            text.contains("line") || text.contains("at $."),
            "{what}: {err}"
        );
    }
}

#[test]
fn deeply_nested_documents_are_rejected_not_overflowed() {
    let mut json = String::from(r#"{"name":"F","steps":["#);
    for _ in 0..10_000 {
        json.push_str(r#"{"splitter_merge":{"name":"S","branches":{"x":["#);
    }
    let err = Flow::from_json(&json).expect_err("too deep");
    assert_eq!(err.kind(), ErrorKind::Document);
}

#[test]
fn the_example_flow_files_parse_and_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flows");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // `*.declarations.json` beside a flow declares its code policies for the CLI.
        if !name.ends_with(".json") || name.ends_with(".declarations.json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let flow = Flow::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        validate(&flow).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let round_trip = Flow::from_json(&flow.to_json()).unwrap();
        assert_eq!(round_trip, flow);
        seen += 1;
    }
    assert!(seen >= 2);
}

#[test]
fn the_json_sample_is_the_quickstart_flow() {
    let text = include_str!("../examples/flows/test-order-flow-sample.json");
    let from_json = Flow::from_json(text).unwrap();
    let validate = |name: &str, filter: &str| {
        ActionStep::new(name, ActionKind::ValidateOrderHeader)
            .input_event(EventKind::NEW_ORDER)
            .filter(filter)
            .execution_policy("Order header Validation Policy")
    };
    let built = Flow::builder("Test Order flow sample")
        .description("My first orchestration flow")
        .steps(|s| {
            s.splitter_merge("Validation split", |b| {
                b.branch("Order Source 1", |s| {
                    s.action(validate("Test validation 1", "Filter Policy – BigCommerce"))
                })
                .branch("Order Source 2", |s| {
                    s.action(validate("Test validation 2", "Filter Policy – Orderful"))
                })
            })
        })
        .build()
        .unwrap();
    assert_eq!(from_json, built);
}

#[tokio::test]
async fn the_retry_example_publishes_with_its_providers() {
    let engine = Engine::builder()
        .provider(MemoryProvider::new("Contoso DOM"))
        .provider(MemoryProvider::new("Contoso 3PL"))
        .provider(MemoryProvider::new("Contoso Billing"))
        .policy(execution_fn(
            "Ship-to US",
            Entity::Order,
            Criticality::Critical,
            |_| Check::Passed,
        ))
        .build()
        .await
        .unwrap();
    let flow = Flow::from_json(include_str!(
        "../examples/flows/fulfillment-with-retry.json"
    ))
    .unwrap();
    engine.create_flow(flow).await.unwrap();
    assert_eq!(
        engine.publish("Fulfillment with retries").await.unwrap(),
        semver::Version::new(2, 1, 0)
    );
}

#[tokio::test]
async fn bad_events_get_typed_errors() {
    let engine = engine().await;
    let empty = Event::new("", EventKind::NEW_ORDER, "SO-1").with_order(Order::new("SO-1"));
    assert_eq!(
        engine.submit(empty).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let mut mismatch = Event::new_order(Order::new("SO-1"));
    mismatch.order = "SO-2".into();
    assert_eq!(
        engine.submit(mismatch).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let blank_kind = Event::new("e", EventKind::new(" "), "SO-1");
    assert_eq!(
        engine.submit(blank_kind).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );

    let unknown = Event::new("e", EventKind::SHIPPED, "SO-404");
    let err = engine.submit(unknown).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("SO-404"));
}

#[tokio::test]
async fn registering_two_parts_under_one_name_is_an_error() {
    let err = Engine::builder()
        .provider(MemoryProvider::new("P"))
        .provider(MemoryProvider::new("P"))
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Configuration);
    assert!(err.to_string().contains("provider 'P'"));
}
