//! `orderflow journey`: an order's journey read from a SQLite file or a PostgreSQL schema,
//! read-only, as text, JSON or drawn on its flow.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use clap::ValueEnum;
use orderflow::document::OrderId;
use orderflow::flow::{Flow, StepNames};
use orderflow::journey::Journey;
use orderflow::render;
use orderflow::store::{PostgresConfig, PostgresStore, SqliteStore, Store, StoreError};

use crate::{Failure, Outcome};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum JourneyFormat {
    /// Each execution and step with its times, and the order's events.
    Text,
    /// The journey drawn on its flow, as Mermaid.
    Mermaid,
    /// The journey drawn on its flow, as Graphviz DOT.
    Dot,
    /// The journey as JSON.
    Json,
    /// The journey drawn on its flow, as a standalone SVG picture.
    Svg,
    /// One self-contained HTML page: the flow with the path, the timeline, each step's
    /// records, attempts and findings, and the order's fields as they are now.
    Html,
}

/// Where the journey is read from.
#[derive(Debug)]
pub(crate) enum Source {
    /// A SQLite store file, opened read-only.
    Sqlite(PathBuf),
    /// A PostgreSQL server's URL and the schema of the store's tables.
    Postgres { url: String, schema: String },
}

impl Source {
    /// Where, for messages (a PostgreSQL URL with its password hidden).
    fn describe(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres { url, schema } => format!(
                "{} (schema \"{schema}\")",
                orderflow::redact::connection_string(url)
            ),
        }
    }

    /// Why the store cannot be read; PostgreSQL's errors name the server and schema
    /// themselves.
    fn cannot(&self, e: &StoreError) -> Failure {
        match self {
            Self::Sqlite(path) => Failure::Usage(format!("cannot read {}: {e}", path.display())),
            Self::Postgres { .. } => Failure::Usage(format!("cannot read the store: {e}")),
        }
    }

    /// Opens the store for reading: SQLite read-only; PostgreSQL with migrations off (the
    /// schema is checked, never created or changed) on one connection.
    async fn open(&self) -> Result<Arc<dyn Store>, Failure> {
        let cannot = |e: StoreError| self.cannot(&e);
        match self {
            Self::Sqlite(path) => {
                if !path.exists() {
                    return Err(Failure::Usage(format!("{} does not exist", path.display())));
                }
                Ok(Arc::new(SqliteStore::open_read_only(path).map_err(cannot)?))
            }
            Self::Postgres { url, schema } => {
                let config = PostgresConfig::new(url.as_str())
                    .with_schema(schema.as_str())
                    .with_migrate(false)
                    .with_read_only(true)
                    .with_max_connections(1);
                Ok(Arc::new(
                    PostgresStore::connect_with(config).await.map_err(cannot)?,
                ))
            }
        }
    }
}

pub(crate) async fn journey(
    source: &Source,
    order: &str,
    format: JourneyFormat,
    chosen: Option<&str>,
) -> Outcome {
    let store = source.open().await?;
    let usage = |e: StoreError| source.cannot(&e);
    let id = OrderId::from(order);
    let Some(state) = store.load(&id).await.map_err(usage)? else {
        return Err(Failure::Usage(format!(
            "order '{order}' is not in {}",
            source.describe()
        )));
    };
    let steps = store.journey(&id).await.map_err(usage)?;
    // Journey rows name steps by plan index: the flow versions' definitions name them.
    let mut flows: HashMap<(String, semver::Version), Option<Flow>> = HashMap::new();
    for exec in state.executions() {
        let key = (exec.flow().to_owned(), exec.version().clone());
        if let std::collections::hash_map::Entry::Vacant(slot) = flows.entry(key) {
            let flow = store
                .flow_version(exec.flow(), exec.version())
                .await
                .map_err(usage)?;
            slot.insert(flow);
        }
    }
    let names: HashMap<_, _> = flows
        .iter()
        .map(|(k, f)| (k.clone(), f.as_ref().map(|f| Arc::new(StepNames::of(f)))))
        .collect();
    let journey = Journey::resolve(&state, &steps, |flow, version| {
        names
            .get(&(flow.to_owned(), version.clone()))
            .cloned()
            .flatten()
    });
    match format {
        JourneyFormat::Text => crate::output(&journey),
        JourneyFormat::Json => crate::output(format!(
            "{}\n",
            serde_json::to_string_pretty(&journey).unwrap_or_default()
        )),
        JourneyFormat::Mermaid | JourneyFormat::Dot => {
            for flow in drawn_flows(&journey, &flows, source)? {
                if chosen.is_some_and(|name| name != flow.name) {
                    continue;
                }
                crate::output(match format {
                    JourneyFormat::Mermaid => render::journey_mermaid(flow, &journey),
                    _ => render::journey_dot(flow, &journey),
                });
            }
        }
        JourneyFormat::Svg | JourneyFormat::Html => {
            let flow = one_flow(drawn_flows(&journey, &flows, source)?, chosen, order)?;
            crate::output(match format {
                JourneyFormat::Svg => render::journey_svg(flow, &journey),
                _ => {
                    render::journey_html(&render::Report::new(flow, &journey).after(state.order()))
                }
            });
        }
    }
    Ok(())
}

/// The flow an SVG or HTML file draws: the one the order went through, or the one chosen
/// with `--flow` when it went through several.
fn one_flow<'f>(
    drawn: Vec<&'f Flow>,
    chosen: Option<&str>,
    order: &str,
) -> Result<&'f Flow, Failure> {
    let names = || {
        drawn
            .iter()
            .map(|f| format!("'{}'", f.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (chosen, drawn.as_slice()) {
        (Some(name), _) => drawn
            .iter()
            .find(|f| f.name == name)
            .copied()
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "order '{order}' did not go through flow '{name}'; its flows: {}",
                    names()
                ))
            }),
        (None, [flow]) => Ok(flow),
        (None, []) => Err(Failure::Usage(format!(
            "order '{order}' has not gone through any flow: there is nothing to draw"
        ))),
        (None, _) => Err(Failure::Usage(format!(
            "order '{order}' went through {}: choose the one to draw with --flow NAME",
            names()
        ))),
    }
}

/// The flow of each of the journey's executions, once each, in the journey's order.
fn drawn_flows<'f>(
    journey: &Journey,
    flows: &'f HashMap<(String, semver::Version), Option<Flow>>,
    source: &Source,
) -> Result<Vec<&'f Flow>, Failure> {
    let mut drawn: Vec<&Flow> = Vec::new();
    for e in &journey.executions {
        let Some(flow) = flows
            .get(&(e.flow.clone(), e.version.clone()))
            .and_then(Option::as_ref)
        else {
            return Err(Failure::Usage(format!(
                "flow '{}' version {} is not in {}",
                e.flow,
                e.version,
                source.describe()
            )));
        };
        if !drawn.iter().any(|f| std::ptr::eq(*f, flow)) {
            drawn.push(flow);
        }
    }
    Ok(drawn)
}
