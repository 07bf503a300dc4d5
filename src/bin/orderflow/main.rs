//! `orderflow`, the command-line tool: check flow and policy files, draw flows, try a flow
//! on an order without calling anything, and read an order's journey from a SQLite or
//! PostgreSQL store.
//!
//! ```text
//! orderflow validate flow.json policies.json       # errors point at the place; exit 1
//! orderflow validate flow.json --policy 'Ship-to US:execution:order'
//! orderflow render flow.json --format mermaid      # or dot, svg
//! orderflow simulate flow.json order.json --policies policies.json --expect completed
//! orderflow journey orders.db SO-1 --format text   # or json, mermaid, dot, svg, html
//! orderflow journey --postgres postgres://… SO-1   # or ORDERFLOW_PG_URL
//! orderflow completions bash                       # zsh, fish, powershell, elvish
//! orderflow man > orderflow.1
//! ```
//!
//! Exit codes: 0 when everything checked is valid (warnings allowed unless `--strict`), 1
//! when a document is invalid (or a warning under `--strict`, or a dry run fails), 2 when
//! the command cannot run (a missing file, bad arguments, an unreadable store), 3 when a
//! simulated order's path did not end as `--expect` said (for a CI pipeline that asserts a
//! sample order's path; the report is printed either way).
//!
//! Diagnostics go to standard error, as rustc prints them (`annotate-snippets`): the
//! problem's code, the file, line and column once, and the line with a caret under the
//! place, in colour on a terminal (`--color`, `NO_COLOR`). `validate --format json` prints
//! them as one JSON document on standard output instead.
//!
//! Every file is read through a bounded reader: no more than the limit for its kind
//! ([`Limits::max_document_bytes`] for flows, policies and declarations,
//! [`Limits::max_order_bytes`] for orders, 1 MiB each by default) plus one byte. A larger
//! file, even one that never ends, and a file that is not UTF-8 are invalid documents
//! (exit 1), reported with the limit or the byte offset of the first invalid byte.
//!
//! [`Limits::max_document_bytes`]: orderflow::limits::Limits::max_document_bytes
//! [`Limits::max_order_bytes`]: orderflow::limits::Limits::max_order_bytes

mod declarations;
mod diagnostic;
mod engine;
mod input;
mod journey;
mod problems;
mod simulate;
mod span;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use orderflow::render;

use crate::declarations::{CodePolicy, Declarations};
use crate::diagnostic::{Color, Diagnostic, Reporter};
use crate::journey::{JourneyFormat, Source};
use crate::simulate::Expect;

#[derive(Debug, Parser)]
#[command(
    name = "orderflow",
    version,
    about = "Check, draw and try order orchestration flows",
    after_help = "Exit codes: 0 valid, 1 invalid document (or a warning under --strict), \
                  2 the command cannot run, 3 a simulated order ended otherwise than --expect"
)]
struct Cli {
    /// When to colour diagnostics: auto (on a terminal, unless NO_COLOR is set), always,
    /// never.
    #[arg(long, value_enum, global = true, default_value_t = Color::Auto, value_name = "WHEN")]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check flow and policy files: syntax, structure, policy rules, and the references
    /// between them; print publish-time warnings.
    Validate {
        /// Flow and policy files (JSON; a policy file holds one policy or a list). Several
        /// versions of one flow are each checked on their own.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// A policy that lives in code, as NAME:TYPE:ENTITY (TYPE: filter or execution;
        /// ENTITY: order, order_line, fulfillment_order, fulfillment_order_line).
        #[arg(long = "policy", value_name = "NAME:TYPE:ENTITY", value_parser = declarations::parse_policy)]
        policies: Vec<CodePolicy>,
        /// A provider the host registers. With none declared, every provider a flow names
        /// is assumed to exist.
        #[arg(long = "provider", value_name = "NAME")]
        providers: Vec<String>,
        /// A custom action the host registers. With none declared, every custom action a
        /// flow names is assumed to exist.
        #[arg(long = "custom-action", value_name = "NAME")]
        custom_actions: Vec<String>,
        /// A JSON file of what lives in code: {"policies": [{"name", "type", "entity"}],
        /// "providers": [...], "custom_actions": [...], "external_events": [...]}.
        #[arg(long = "declarations", value_name = "FILE")]
        declarations: Vec<PathBuf>,
        /// An event that comes from outside, so no "nothing raises this event" warning.
        #[arg(long = "external-event", value_name = "EVENT")]
        external_events: Vec<String>,
        /// Report each name nothing defines (policy, provider, custom action) as one
        /// warning, and check the rest as if it existed.
        #[arg(long)]
        allow_unknown: bool,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
        /// How to print diagnostics: text on standard error, or one JSON document on
        /// standard output.
        #[arg(long, value_enum, default_value_t = Report::Text)]
        format: Report,
    },
    /// Draw a flow as Mermaid, Graphviz DOT or SVG.
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
    /// Show an order's journey from a SQLite store file or a PostgreSQL store (read-only):
    /// as text or JSON, drawn on its flow (Mermaid, DOT, SVG), or as one HTML report.
    #[command(
        override_usage = "orderflow journey [OPTIONS] <STORE.db> <ORDER>\n       \
                          orderflow journey [OPTIONS] --postgres <URL> <ORDER>"
    )]
    Journey {
        /// The SQLite database file, then the order id; with --postgres, the order id alone.
        #[arg(required = true, num_args = 1..=2, value_name = "STORE.db ORDER")]
        args: Vec<String>,
        /// A PostgreSQL store's URL (a file given before the order id takes precedence over
        /// the environment variable).
        #[arg(
            long,
            env = "ORDERFLOW_PG_URL",
            value_name = "URL",
            hide_env_values = true
        )]
        postgres: Option<String>,
        /// The PostgreSQL schema holding the store's tables.
        #[arg(long, default_value = "orderflow", value_name = "NAME")]
        schema: String,
        /// The flow to draw the journey on (svg, html), when the order went through several.
        #[arg(long, value_name = "NAME")]
        flow: Option<String>,
        /// The output format.
        #[arg(long, value_enum, default_value_t = JourneyFormat::Text)]
        format: JourneyFormat,
    },
    /// Print a completion script for a shell (source it, or install it where the shell
    /// looks for completions).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `orderflow man > orderflow.1`.
    Man,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Diagram {
    /// Mermaid `flowchart`, for Markdown viewers.
    Mermaid,
    /// Graphviz DOT.
    Dot,
    /// A standalone SVG picture, for any browser.
    Svg,
}

/// Text for people or JSON for tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Report {
    Text,
    Json,
}

/// Why the tool stops: invalid input (exit 1, already reported), a command that cannot run
/// (exit 2), or a simulation that did not end as expected (exit 3).
#[derive(Debug)]
enum Failure {
    Invalid,
    Usage(String),
    Unexpected(String),
}

type Outcome = Result<(), Failure>;

/// Writes a command's output to standard output. A reader that goes away (`| head`) ends
/// the output quietly, as for any Unix tool, instead of a panic.
fn output(text: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let written = write!(stdout, "{text}").and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(2);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = matches!(
        cli.command,
        Command::Validate {
            format: Report::Json,
            ..
        }
    );
    let mut out = Reporter::new(cli.color, json);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.emit(Diagnostic::error(
                "cannot-run",
                format!("cannot start: {e}"),
            ));
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command, &mut out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Invalid) => ExitCode::from(1),
        // Not about a place in a document: `error: …`, as rustc says what stops it.
        Err(Failure::Usage(message)) => {
            out.print(&Diagnostic::error("", message));
            ExitCode::from(2)
        }
        Err(Failure::Unexpected(message)) => {
            out.print(&Diagnostic::error("", message));
            ExitCode::from(3)
        }
    }
}

async fn run(command: Command, out: &mut Reporter) -> Outcome {
    match command {
        Command::Validate {
            files,
            policies,
            providers,
            custom_actions,
            declarations,
            external_events,
            allow_unknown,
            strict,
            format: _,
        } => {
            let request = validate::Request {
                files,
                declarations: Declarations {
                    policies,
                    providers,
                    custom_actions,
                    external_events,
                },
                declaration_files: declarations,
                allow_unknown,
                strict,
            };
            validate::validate(request, out).await
        }
        Command::Render { flow, format } => {
            let flow = input::read_flow(&flow, out)?;
            output(match format {
                Diagram::Mermaid => render::mermaid(&flow),
                Diagram::Dot => render::dot(&flow),
                Diagram::Svg => render::svg(&flow),
            });
            Ok(())
        }
        Command::Simulate {
            flow,
            order,
            policies,
            format,
            expect,
        } => simulate::simulate(&flow, &order, &policies, format, expect, out).await,
        Command::Journey {
            args,
            postgres,
            schema,
            flow,
            format,
        } => {
            let (source, order) = match (args.as_slice(), postgres) {
                ([store, order], _) => (Source::Sqlite(store.into()), order),
                ([order], Some(url)) => (Source::Postgres { url, schema }, order),
                _ => {
                    return Err(Failure::Usage(
                        "give the SQLite store file and the order id, or --postgres URL \
                         (or ORDERFLOW_PG_URL) and the order id"
                            .into(),
                    ));
                }
            };
            journey::journey(&source, order, format, flow.as_deref()).await
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "orderflow", &mut script);
            output(String::from_utf8_lossy(&script));
            Ok(())
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Failure::Usage(format!("cannot write the man page: {e}")))?;
            output(String::from_utf8_lossy(&page));
            Ok(())
        }
    }
}
