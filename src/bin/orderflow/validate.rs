//! `orderflow validate`: every file checked on its own and against the others, every flow
//! published on an engine of its own (so several versions of one flow are each checked),
//! with the policies and names declared to live in code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use orderflow::document::Entity;
use orderflow::flow::Flow;
use orderflow::flow::analysis::{self, Context};
use orderflow::rules::PolicyDocument;
use orderflow::{Error, EventKind};
use serde_json::json;

use crate::declarations::{CodePolicy, Declarations};
use crate::diagnostic::{Diagnostic, Reporter};
use crate::engine::{self, Known, RefKind};
use crate::input::{self, Document};
use crate::{Failure, Outcome, span};

/// What `validate` is asked to do.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) files: Vec<PathBuf>,
    pub(crate) declarations: Declarations,
    pub(crate) declaration_files: Vec<PathBuf>,
    pub(crate) allow_unknown: bool,
    pub(crate) strict: bool,
}

/// Where a policy name was first defined, for the duplicate's message.
fn origin(file: Option<&PathBuf>) -> String {
    file.map_or_else(
        || "first declared with --policy or in a declarations file".to_owned(),
        |f| format!("first defined in {}", f.display()),
    )
}

pub(crate) async fn validate(request: Request, out: &mut Reporter) -> Outcome {
    let Request {
        files,
        mut declarations,
        declaration_files,
        allow_unknown,
        strict,
    } = request;
    let mut invalid = false;
    for path in &declaration_files {
        match declarations.read(path, out) {
            Ok(()) => {}
            Err(Failure::Invalid) => invalid = true,
            Err(other) => return Err(other),
        }
    }
    let mut flows: Vec<(PathBuf, Flow)> = Vec::new();
    let mut policies: Vec<(PathBuf, Vec<PolicyDocument>)> = Vec::new();
    let mut checked = Vec::new();
    for path in &files {
        match input::read_document(path, out) {
            Ok(Document::Flow(f)) => flows.push((path.clone(), *f)),
            Ok(Document::Policies(p)) => policies.push((path.clone(), p)),
            Err(Failure::Invalid) => {
                invalid = true;
                checked.push(json!({"file": path.display().to_string(), "valid": false}));
            }
            Err(usage) => return Err(usage),
        }
    }

    // Policies: each compiles, and each name is defined once.
    let mut defined: HashMap<String, Option<PathBuf>> = declarations
        .policies
        .iter()
        .map(|p| (p.name.clone(), None))
        .collect();
    let mut documents = Vec::new();
    for (path, list) in &policies {
        let text = out.text(path).unwrap_or_default().to_owned();
        let root = span::parse(&text);
        let mut ok = true;
        for policy in list {
            if let Err(e) = policy.compile() {
                for d in input::diagnostics(path, &text, root.as_ref(), &Error::Policy(e)) {
                    out.emit(d);
                }
                ok = false;
            }
            if let Some(first) = defined.get(&policy.name) {
                let place = root
                    .as_ref()
                    .and_then(|r| span::policy_problem(r, &policy.name, None, None));
                out.emit(
                    Diagnostic::error(
                        "duplicate-policy",
                        format!("policy '{}' is defined twice", policy.name),
                    )
                    .in_file(path)
                    .at(place)
                    .note(origin(first.as_ref())),
                );
                ok = false;
                continue;
            }
            defined.insert(policy.name.clone(), Some(path.clone()));
            documents.push(policy.clone());
        }
        invalid |= !ok;
        report_ok(out, path, ok, &policy_count(list.len()));
        checked.push(json!({
            "file": path.display().to_string(),
            "kind": "policies",
            "policies": list.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            "valid": ok,
        }));
    }

    // Names the flows use that nothing defines: errors, or under --allow-unknown one
    // warning each and a stand-in.
    let mut code = declarations.policies.clone();
    let mut providers = declarations.providers.clone();
    let mut actions = declarations.custom_actions.clone();
    let checks_providers = !providers.is_empty();
    let checks_actions = !actions.is_empty();
    if allow_unknown {
        let mut assumed: IndexMap<(RefKind, String), (PathBuf, orderflow::flow::StepPath, usize)> =
            IndexMap::new();
        for (path, flow) in &flows {
            for r in engine::references(flow) {
                let known = match r.kind {
                    RefKind::Policy(_) => defined.contains_key(&r.name),
                    RefKind::Provider => !checks_providers || providers.contains(&r.name),
                    RefKind::CustomAction => !checks_actions || actions.contains(&r.name),
                };
                if !known {
                    assumed
                        .entry((r.kind, r.name))
                        .or_insert((path.clone(), r.path, 0))
                        .2 += 1;
                }
            }
        }
        for ((kind, name), (path, step, uses)) in assumed {
            let defined = if matches!(kind, RefKind::Policy(_)) {
                "defined"
            } else {
                "declared"
            };
            let (what, code_name) = match kind {
                RefKind::Policy(k) => {
                    code.push(CodePolicy {
                        name: name.clone(),
                        kind: k,
                        entity: Entity::Order,
                    });
                    ("policy", "unknown-policy")
                }
                RefKind::Provider => {
                    providers.push(name.clone());
                    ("provider", "unknown-provider")
                }
                RefKind::CustomAction => {
                    actions.push(name.clone());
                    ("custom action", "unknown-custom-action")
                }
            };
            let text = out.text(&path).unwrap_or_default().to_owned();
            let place = span::parse(&text).and_then(|r| span::flow_step(&r, &step, Some(&name)));
            let times = if uses == 1 {
                "once".to_owned()
            } else {
                format!("{uses} times")
            };
            out.emit(
                Diagnostic::warning(
                    code_name,
                    format!("{what} '{name}' is not {defined}; assumed to exist"),
                )
                .in_file(&path)
                .at(place)
                .label(format!("used {times} in the files given"))
                .note("--allow-unknown turns unknown names into warnings"),
            );
        }
    }

    let known = Known {
        documents: &documents,
        code: &code,
        providers: checks_providers.then_some(providers.as_slice()),
        custom_actions: checks_actions.then_some(actions.as_slice()),
    };
    let by_name: IndexMap<String, PolicyDocument> = documents
        .iter()
        .map(|p| (p.name.clone(), p.clone()))
        .collect();
    let external: Vec<EventKind> = declarations
        .external_events
        .iter()
        .map(EventKind::new)
        .collect();
    for (path, flow) in &flows {
        let ok = check_flow(path, flow, &flows, &known, &by_name, &external, out).await?;
        invalid |= !ok;
        report_ok(
            out,
            path,
            ok,
            &format!("flow '{}' version {}", flow.name, flow.version),
        );
        checked.push(json!({
            "file": path.display().to_string(),
            "kind": "flow",
            "flow": flow.name,
            "version": flow.version.to_string(),
            "valid": ok,
        }));
    }
    if out.is_json() {
        out.print_json(&checked);
    }
    if invalid || out.errors > 0 || (strict && out.warnings > 0) {
        Err(Failure::Invalid)
    } else {
        Ok(())
    }
}

fn policy_count(n: usize) -> String {
    if n == 1 {
        "1 policy".to_owned()
    } else {
        format!("{n} policies")
    }
}

/// `file: ok (…)` on standard output, for a file with no error.
fn report_ok(out: &Reporter, path: &Path, ok: bool, what: &str) {
    if ok && !out.is_json() {
        crate::output(format!("{}: ok ({what})\n", path.display()));
    }
}

/// Publishes one flow on an engine of its own and reports its problems and warnings;
/// whether it is valid.
async fn check_flow(
    path: &Path,
    flow: &Flow,
    all: &[(PathBuf, Flow)],
    known: &Known<'_>,
    policies: &IndexMap<String, PolicyDocument>,
    external: &[EventKind],
    out: &mut Reporter,
) -> Result<bool, Failure> {
    let engine = engine::engine(&[flow], known).await?;
    let text = out.text(path).unwrap_or_default().to_owned();
    let root = span::parse(&text);
    let published = match engine.create_flow(flow.clone()).await {
        Ok(_) => engine.publish(&flow.name).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = published {
        for d in input::diagnostics(path, &text, root.as_ref(), &e) {
            out.emit(d);
        }
        return Ok(false);
    }
    // The other flows, one version each (the last given).
    let mut others: IndexMap<&str, Flow> = IndexMap::new();
    for (_, f) in all.iter().filter(|(_, f)| f.name != flow.name) {
        others.insert(&f.name, f.clone());
    }
    let others: Vec<Flow> = others.into_values().collect();
    let cx = Context::new(policies, &others, external);
    for warning in analysis::analyze(flow, &cx) {
        let place = root
            .as_ref()
            .and_then(|r| span::flow_step(r, &warning.path, None));
        out.emit(crate::problems::warning(&flow.name, &warning, place).in_file(path));
    }
    Ok(true)
}
