//! `orderflow`, the command-line tool: check flow and policy files, draw flows, try a flow
//! on an order without calling anything, and read an order's journey from a SQLite store.
//!
//! ```text
//! orderflow validate flow.json policies.json       # errors point at the place; exit 1
//! orderflow render flow.json --format mermaid      # or dot
//! orderflow simulate flow.json order.json --policies policies.json --expect completed
//! orderflow journey orders.db SO-1 --format text   # or mermaid, dot, json
//! ```
//!
//! Exit codes: 0 when everything checked is valid (warnings allowed unless `--strict`), 1
//! when a document is invalid (or a warning under `--strict`, or a dry run fails), 2 when
//! the command cannot run (a missing file, bad arguments, an unreadable store), 3 when a
//! simulated order's path did not end as `--expect` said (for a CI pipeline that asserts a
//! sample order's path; the report is printed either way).
//!
//! Every file is read through a bounded reader: no more than the limit for its kind
//! ([`Limits::max_document_bytes`] for flows and policies, [`Limits::max_order_bytes`] for
//! orders, 1 MiB each by default) plus one byte. A larger file, even one that never ends,
//! and a file that is not UTF-8 are invalid documents (exit 1), reported with the limit or
//! the byte offset of the first invalid byte.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use clap::{Parser, Subcommand, ValueEnum};
use indexmap::IndexMap;
use orderflow::document::{Order, OrderId};
use orderflow::execution::ExecutionStatus;
use orderflow::flow::analysis::{self, Context};
use orderflow::flow::{Flow, Step, StepNames};
use orderflow::journey::Journey;
use orderflow::limits::Limits;
use orderflow::provider::{CallContext, Provider, ProviderError, Reply, Request, RequestKind};
use orderflow::render;
use orderflow::rules::PolicyDocument;
use orderflow::store::{SqliteStore, Store};
use orderflow::{Engine, Error, EventKind};

#[derive(Debug, Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Check, draw and try order orchestration flows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check flow and policy files: syntax, structure, policy rules, and the references
    /// between them; print publish-time warnings.
    Validate {
        /// Flow and policy files (JSON; a policy file holds one policy or a list).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Events that come from outside (for the "nothing raises this event" warning).
        #[arg(long = "external-event", value_name = "EVENT")]
        external_events: Vec<String>,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Draw a flow as Mermaid or Graphviz DOT.
    Render {
        /// The flow file.
        flow: PathBuf,
        /// The output format.
        #[arg(long, value_enum, default_value_t = Diagram::Mermaid)]
        format: Diagram,
    },
    /// Run a flow on an order without calling any provider: the path, filter decisions,
    /// values set, and where the order would wait.
    Simulate {
        /// The flow file.
        flow: PathBuf,
        /// The order file (an order document as JSON).
        order: PathBuf,
        /// Policy files the flow uses.
        #[arg(long = "policies", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// The output format.
        #[arg(long, value_enum, default_value_t = Report::Text)]
        format: Report,
        /// How the order's path must end: exit 3 (after the report) when it ends otherwise.
        #[arg(long, value_enum, value_name = "END")]
        expect: Option<Expect>,
    },
    /// Show an order's journey from a SQLite store file, as text or drawn on its flow.
    Journey {
        /// The SQLite database file.
        store: PathBuf,
        /// The order id.
        order: String,
        /// The output format.
        #[arg(long, value_enum, default_value_t = JourneyFormat::Text)]
        format: JourneyFormat,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Diagram {
    Mermaid,
    Dot,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Report {
    Text,
    Json,
}

/// How a simulated order's path ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Expect {
    /// Every path ended.
    Completed,
    /// A path ended Failed.
    Failed,
    /// Every live path waits for an event.
    Waiting,
}

impl Expect {
    /// How a dry run's execution ended, if it started one.
    fn of(status: ExecutionStatus) -> Option<Self> {
        match status {
            ExecutionStatus::Completed => Some(Self::Completed),
            ExecutionStatus::Failed => Some(Self::Failed),
            ExecutionStatus::Waiting => Some(Self::Waiting),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JourneyFormat {
    Text,
    Mermaid,
    Dot,
    Json,
}

/// Why the tool stops: invalid input (exit 1), a command that cannot run (exit 2), or a
/// simulation that did not end as expected (exit 3).
#[derive(Debug)]
enum Failure {
    Invalid,
    Usage(String),
    Unexpected(String),
}

type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid) => ExitCode::from(1),
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Unexpected(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(3)
        }
    }
}

async fn run(command: Command) -> Outcome {
    match command {
        Command::Validate {
            files,
            external_events,
            strict,
        } => validate(&files, &external_events, strict).await,
        Command::Render { flow, format } => {
            let flow = read_flow(&flow)?;
            print!(
                "{}",
                match format {
                    Diagram::Mermaid => render::mermaid(&flow),
                    Diagram::Dot => render::dot(&flow),
                }
            );
            Ok(())
        }
        Command::Simulate {
            flow,
            order,
            policies,
            format,
            expect,
        } => simulate(&flow, &order, &policies, format, expect).await,
        Command::Journey {
            store,
            order,
            format,
        } => journey(&store, &order, format).await,
    }
}

/// What a file is read as, for its size limit.
#[derive(Debug, Clone, Copy)]
enum Input {
    /// A flow or policy file: [`Limits::max_document_bytes`].
    Document,
    /// An order file: [`Limits::max_order_bytes`].
    Order,
}

impl Input {
    /// The most bytes such a file may hold, and the limit's name.
    fn limit(self) -> (usize, &'static str) {
        let limits = Limits::default();
        match self {
            Self::Document => (limits.max_document_bytes, "max_document_bytes"),
            Self::Order => (limits.max_order_bytes, "max_order_bytes"),
        }
    }
}

/// Reads a file as text, through a reader that stops one byte past the limit: a file
/// that never ends (`/dev/zero`, a pipe) is refused after that many bytes, in memory of
/// that size. Too large or not UTF-8 is an invalid document (reported here); a file that
/// cannot be opened or read means the command cannot run.
fn read(path: &Path, input: Input) -> Result<String, Failure> {
    let (max, limit) = input.limit();
    let cannot = |e: std::io::Error| Failure::Usage(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > max {
        eprintln!(
            "{}: larger than {max} bytes (the {limit} limit); not read further",
            path.display()
        );
        return Err(Failure::Invalid);
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = String::from_utf8_lossy(&e.as_bytes()[..at]);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        // Line and column count characters; the byte offset is what a hex editor shows.
        eprintln!(
            "{}:{line}:{column}: not UTF-8: invalid byte 0x{:02x} at byte offset {at}",
            path.display(),
            e.as_bytes()[at]
        );
        Failure::Invalid
    })
}

/// Prints a document error as `file:line:column: message`, or with the file alone when
/// the problem is not at one place in the text; the position is printed once.
fn report(path: &Path, e: &Error) {
    match e {
        Error::Document {
            line: 0, message, ..
        } => eprintln!("{}: {message}", path.display()),
        Error::Document {
            line,
            column,
            message,
            ..
        } => eprintln!("{}:{line}:{column}: {message}", path.display()),
        Error::Validation(v) => {
            for p in &v.problems {
                eprintln!(
                    "{}: flow '{}', {}: {}",
                    path.display(),
                    v.flow,
                    p.path,
                    p.kind
                );
            }
        }
        Error::Policy(p) => {
            for problem in &p.problems {
                eprintln!("{}: policy '{}', {problem}", path.display(), p.policy);
            }
        }
        other => eprintln!("{}: {other}", path.display()),
    }
}

/// Prints a JSON error as `file:line:column: message`, the position once (`serde_json`
/// ends its message with ` at line L column C`).
fn report_json(path: &Path, e: &serde_json::Error) {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) if e.line() != 0 => {
            eprintln!("{}:{}:{}: {message}", path.display(), e.line(), e.column());
        }
        _ => eprintln!("{}: {text}", path.display()),
    }
}

fn read_flow(path: &Path) -> Result<Flow, Failure> {
    parse_flow(path, &read(path, Input::Document)?)
}

fn parse_flow(path: &Path, text: &str) -> Result<Flow, Failure> {
    Flow::from_json(text).map_err(|e| {
        report(path, &e);
        Failure::Invalid
    })
}

/// A policy file: one policy or a list.
fn read_policies(path: &Path) -> Result<Vec<PolicyDocument>, Failure> {
    parse_policies(path, &read(path, Input::Document)?)
}

fn parse_policies(path: &Path, text: &str) -> Result<Vec<PolicyDocument>, Failure> {
    let parsed = if text.trim_start().starts_with('[') {
        PolicyDocument::list_from_json(text)
    } else {
        PolicyDocument::from_json(text).map(|p| vec![p])
    };
    parsed.map_err(|e| {
        report(path, &e);
        Failure::Invalid
    })
}

/// What a file holds, judged by its top level.
enum Document {
    Flow(Box<Flow>),
    Policies(Vec<PolicyDocument>),
}

fn read_document(path: &Path) -> Result<Document, Failure> {
    let text = read(path, Input::Document)?;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            report_json(path, &e);
            return Err(Failure::Invalid);
        }
    };
    if value.get("steps").is_some() {
        parse_flow(path, &text).map(|f| Document::Flow(Box::new(f)))
    } else if value.is_array() || value.get("rules").is_some() {
        parse_policies(path, &text).map(Document::Policies)
    } else {
        eprintln!(
            "{}: neither a flow (no \"steps\") nor a policy (no \"rules\")",
            path.display()
        );
        Err(Failure::Invalid)
    }
}

/// A provider for the tool's engines: checks pass, and nothing is ever called.
#[derive(Debug)]
struct Placeholder(String);

#[async_trait]
impl Provider for Placeholder {
    fn name(&self) -> &str {
        &self.0
    }
    fn offers(&self) -> &[RequestKind] {
        &[
            RequestKind::DetermineFulfillment,
            RequestKind::SendFulfillmentOrder,
            RequestKind::SendToErp,
            RequestKind::SendInvoice,
            RequestKind::Custom,
        ]
    }
    async fn call(&self, _: Request<'_>, _: &CallContext<'_>) -> Result<Reply, ProviderError> {
        Err(ProviderError::rejected(
            "the command-line tool calls no provider",
        ))
    }
}

/// Provider and custom action names a flow refers to.
fn references(steps: &[Step], providers: &mut Vec<String>, actions: &mut Vec<String>) {
    let mut stack: Vec<&[Step]> = vec![steps];
    while let Some(steps) = stack.pop() {
        for step in steps {
            match step {
                Step::Action(a) => {
                    providers.extend(a.provider.clone());
                    actions.extend(a.custom_action.clone());
                }
                Step::Condition(c) | Step::ConditionMerge(c) => {
                    stack.push(&c.yes);
                    stack.push(&c.no);
                }
                Step::Splitter(s) | Step::SplitterMerge(s) => {
                    stack.extend(s.branches.values().map(Vec::as_slice));
                }
                _ => {}
            }
        }
    }
}

/// An engine that knows the given policies (published) and has a placeholder for every
/// provider and custom action the flows name, so publish-time checks judge the documents
/// alone.
async fn engine(flows: &[&Flow], policies: &[PolicyDocument]) -> Result<Engine, Failure> {
    let mut providers = Vec::new();
    let mut actions = Vec::new();
    for flow in flows {
        references(&flow.steps, &mut providers, &mut actions);
    }
    providers.sort();
    providers.dedup();
    actions.sort();
    actions.dedup();
    let mut builder = Engine::builder();
    for p in providers {
        builder = builder.provider(Placeholder(p));
    }
    for a in actions {
        builder = builder.action(a, orderflow::action_fn(|_cx| Box::pin(async { Ok(()) })));
    }
    let engine = builder
        .build()
        .await
        .map_err(|e| Failure::Usage(e.to_string()))?;
    for policy in policies {
        let name = policy.name.clone();
        engine
            .create_policy(policy.clone())
            .await
            .map_err(|e| Failure::Usage(e.to_string()))?;
        // Invalid policies are reported by `validate`; here they stay unpublished.
        let _ = engine.publish_policy(&name).await;
    }
    Ok(engine)
}

async fn validate(files: &[PathBuf], external: &[String], strict: bool) -> Outcome {
    let mut flows = Vec::new();
    let mut policies = Vec::new();
    let mut invalid = false;
    for path in files {
        match read_document(path) {
            Ok(Document::Flow(f)) => flows.push((path, *f)),
            Ok(Document::Policies(p)) => {
                for policy in &p {
                    if let Err(e) = policy.compile() {
                        report(path, &Error::Policy(e));
                        invalid = true;
                    }
                }
                policies.push((path, p));
            }
            Err(Failure::Invalid) => invalid = true,
            Err(usage) => return Err(usage),
        }
    }
    let all: Vec<PolicyDocument> = policies.iter().flat_map(|(_, p)| p.clone()).collect();
    let by_name: IndexMap<String, PolicyDocument> =
        all.iter().map(|p| (p.name.clone(), p.clone())).collect();
    let flow_refs: Vec<&Flow> = flows.iter().map(|(_, f)| f).collect();
    let engine = engine(&flow_refs, &all).await?;
    let external: Vec<EventKind> = external.iter().map(EventKind::new).collect();
    let mut warned = false;
    for (path, flow) in &flows {
        if let Err(e) = engine.create_flow(flow.clone()).await {
            report(path, &e);
            invalid = true;
            continue;
        }
        match engine.publish(&flow.name).await {
            Err(e) => {
                report(path, &e);
                invalid = true;
            }
            Ok(_) => {
                let others: Vec<Flow> = flows
                    .iter()
                    .filter(|(_, f)| f.name != flow.name)
                    .map(|(_, f)| f.clone())
                    .collect();
                let cx = Context::new(&by_name, &others, &external);
                for warning in analysis::analyze(flow, &cx) {
                    println!("{}: warning: {warning}", path.display());
                    warned = true;
                }
            }
        }
    }
    for (path, p) in &policies {
        if p.iter().all(|p| p.compile().is_ok()) {
            println!("{}: ok ({} policies)", path.display(), p.len());
        }
    }
    for (path, flow) in &flows {
        if engine
            .flow(&flow.name)
            .is_some_and(|f| f.last_published.is_some())
        {
            println!("{}: ok (flow '{}')", path.display(), flow.name);
        }
    }
    if invalid || (strict && warned) {
        Err(Failure::Invalid)
    } else {
        Ok(())
    }
}

async fn simulate(
    flow: &Path,
    order: &Path,
    policies: &[PathBuf],
    format: Report,
    expect: Option<Expect>,
) -> Outcome {
    let flow_doc = read_flow(flow)?;
    let order_doc: Order = serde_json::from_str(&read(order, Input::Order)?).map_err(|e| {
        report_json(order, &e);
        Failure::Invalid
    })?;
    let mut all = Vec::new();
    for p in policies {
        all.extend(read_policies(p)?);
    }
    let engine = engine(&[&flow_doc], &all).await?;
    let simulation = match engine.simulate(&flow_doc, &order_doc).await {
        Ok(s) => s,
        Err(e) => {
            report(flow, &e);
            return Err(Failure::Invalid);
        }
    };
    match format {
        Report::Text => print!("{simulation}"),
        Report::Json => println!(
            "{}",
            serde_json::to_string_pretty(&simulation).unwrap_or_default()
        ),
    }
    let Some(expected) = expect else {
        return Ok(());
    };
    let ended = simulation
        .journey
        .executions
        .first()
        .map(|e| (e.status, e.failure.clone()));
    match ended {
        Some((status, _)) if Expect::of(status) == Some(expected) => Ok(()),
        Some((status, failure)) => Err(Failure::Unexpected(format!(
            "order '{}' was expected to end {}, its path ended {status:?}{}",
            order_doc.id,
            format!("{expected:?}").to_lowercase(),
            failure.map(|why| format!(": {why}")).unwrap_or_default()
        ))),
        None => Err(Failure::Unexpected(format!(
            "order '{}' was expected to end {}, the flow did not start for it",
            order_doc.id,
            format!("{expected:?}").to_lowercase()
        ))),
    }
}

async fn journey(path: &Path, order: &str, format: JourneyFormat) -> Outcome {
    if !path.exists() {
        return Err(Failure::Usage(format!("{} does not exist", path.display())));
    }
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_read_only(path).map_err(|e| Failure::Usage(e.to_string()))?);
    let id = OrderId::from(order);
    let usage = |e: orderflow::store::StoreError| Failure::Usage(e.to_string());
    let Some(state) = store.load(&id).await.map_err(usage)? else {
        return Err(Failure::Usage(format!(
            "order '{order}' is not in {}",
            path.display()
        )));
    };
    let steps = store.journey(&id).await.map_err(usage)?;
    // Journey rows name steps by plan index: the flow versions' definitions name them.
    let mut names = std::collections::HashMap::new();
    for exec in state.executions() {
        let key = (exec.flow().to_owned(), exec.version().clone());
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(key) {
            let flow = store
                .flow_version(exec.flow(), exec.version())
                .await
                .map_err(usage)?;
            slot.insert(flow.map(|f| std::sync::Arc::new(StepNames::of(&f))));
        }
    }
    let journey = Journey::resolve(&state, &steps, |flow, version| {
        names
            .get(&(flow.to_owned(), version.clone()))
            .cloned()
            .flatten()
    });
    match format {
        JourneyFormat::Text => print!("{journey}"),
        JourneyFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&journey).unwrap_or_default()
        ),
        JourneyFormat::Mermaid | JourneyFormat::Dot => {
            let mut drawn = Vec::new();
            for e in &journey.executions {
                if drawn.contains(&(&e.flow, &e.version)) {
                    continue;
                }
                drawn.push((&e.flow, &e.version));
                let Some(flow) = store
                    .flow_version(&e.flow, &e.version)
                    .await
                    .map_err(usage)?
                else {
                    return Err(Failure::Usage(format!(
                        "flow '{}' v{} is not in {}",
                        e.flow,
                        e.version,
                        path.display()
                    )));
                };
                print!(
                    "{}",
                    match format {
                        JourneyFormat::Mermaid => render::journey_mermaid(&flow, &journey),
                        _ => render::journey_dot(&flow, &journey),
                    }
                );
            }
        }
    }
    Ok(())
}
