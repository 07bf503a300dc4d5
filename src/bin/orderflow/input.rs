//! Reading the files the tool is given: bounded reads, UTF-8, what a file holds (a flow or
//! policies), and the crate's errors turned into located diagnostics.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use orderflow::Error;
use orderflow::flow::{Flow, ProblemKind};
use orderflow::limits::Limits;
use orderflow::rules::PolicyDocument;

use crate::Failure;
use crate::diagnostic::{Diagnostic, Reporter};
use crate::span::{self, Node, Place};

/// What a file is read as, for its size limit.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Input {
    /// A flow, policy or declarations file: [`Limits::max_document_bytes`].
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
/// cannot be opened or read means the command cannot run. The text is kept for snippets.
pub(crate) fn read(path: &Path, input: Input, out: &mut Reporter) -> Result<String, Failure> {
    let (max, limit) = input.limit();
    let cannot = |e: std::io::Error| Failure::Usage(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > max {
        out.emit(
            Diagnostic::error(
                "too-large",
                format!("larger than {max} bytes (the {limit} limit); not read further"),
            )
            .in_file(path),
        );
        return Err(Failure::Invalid);
    }
    match String::from_utf8(bytes) {
        Ok(text) => {
            out.source(path, &text);
            Ok(text)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            // The snippet shows the text with U+FFFD for what is not UTF-8; the bytes
            // before the first bad one are the file's own, so `at` is a place in both.
            let shown = String::from_utf8_lossy(e.as_bytes()).into_owned();
            out.source(path, &shown);
            out.emit(
                Diagnostic::error(
                    "not-utf8",
                    format!("not UTF-8: invalid byte 0x{byte:02x} at byte offset {at}"),
                )
                .in_file(path)
                .at(Some(Place {
                    span: at..at + '\u{fffd}'.len_utf8(),
                    json_path: None,
                }))
                .label("shown as \u{fffd}")
                .help("save the file as UTF-8"),
            );
            Err(Failure::Invalid)
        }
    }
}

/// What a file holds, judged by its top level.
#[derive(Debug)]
pub(crate) enum Document {
    Flow(Box<Flow>),
    Policies(Vec<PolicyDocument>),
}

/// What a JSON document looks like: a flow has `steps`, a policy `rules` (a list is a list
/// of policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Flow,
    Policies,
    Neither,
}

fn shape(value: &serde_json::Value) -> Shape {
    if value.get("steps").is_some() {
        Shape::Flow
    } else if value.is_array() || value.get("rules").is_some() {
        Shape::Policies
    } else {
        Shape::Neither
    }
}

/// Reads a flow or policy file and says which it is; anything else is reported.
pub(crate) fn read_document(path: &Path, out: &mut Reporter) -> Result<Document, Failure> {
    let text = read(path, Input::Document, out)?;
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let place = syntax_place(&text, e.line(), e.column(), None);
            out.emit(
                Diagnostic::error("syntax", json_message(&e))
                    .in_file(path)
                    .at(place),
            );
            return Err(Failure::Invalid);
        }
    };
    match shape(&value) {
        Shape::Flow => parse_flow(path, &text, out).map(|f| Document::Flow(Box::new(f))),
        Shape::Policies => parse_policies(path, &text, out).map(Document::Policies),
        Shape::Neither => {
            out.emit(
                Diagnostic::error(
                    "unknown-document",
                    "neither a flow (no \"steps\") nor a policy (no \"rules\")",
                )
                .in_file(path),
            );
            Err(Failure::Invalid)
        }
    }
}

/// Reads a file that must be a flow: a policy file is refused with a sentence saying so.
pub(crate) fn read_flow(path: &Path, out: &mut Reporter) -> Result<Flow, Failure> {
    match read_document(path, out)? {
        Document::Flow(flow) => Ok(*flow),
        Document::Policies(_) => {
            out.emit(
                Diagnostic::error("not-a-flow", "this file holds policies, not a flow")
                    .in_file(path)
                    .help("give a flow file (one with \"steps\"); `orderflow validate` checks policy files"),
            );
            Err(Failure::Invalid)
        }
    }
}

/// Reads a file that must hold policies: a flow file is refused with a sentence saying so.
pub(crate) fn read_policies(
    path: &Path,
    out: &mut Reporter,
) -> Result<Vec<PolicyDocument>, Failure> {
    match read_document(path, out)? {
        Document::Policies(p) => Ok(p),
        Document::Flow(_) => {
            out.emit(
                Diagnostic::error("not-a-policy", "this file holds a flow, not policies")
                    .in_file(path)
                    .help("give policy files (one policy or a list, each with \"rules\")"),
            );
            Err(Failure::Invalid)
        }
    }
}

fn parse_flow(path: &Path, text: &str, out: &mut Reporter) -> Result<Flow, Failure> {
    Flow::from_json(text).map_err(|e| {
        report(path, text, &e, out);
        Failure::Invalid
    })
}

fn parse_policies(
    path: &Path,
    text: &str,
    out: &mut Reporter,
) -> Result<Vec<PolicyDocument>, Failure> {
    let parsed = if text.trim_start().starts_with('[') {
        PolicyDocument::list_from_json(text)
    } else {
        PolicyDocument::from_json(text).map(|p| vec![p])
    };
    parsed.map_err(|e| {
        report(path, text, &e, out);
        Failure::Invalid
    })
}

/// `serde_json`'s message without its ` at line L column C`: the place is printed once.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

/// The place of a parse error at `serde_json`'s line and column: the value that ends there
/// when the text is JSON (a value of the wrong type), else the character before the
/// position (where the parser stopped).
pub(crate) fn syntax_place(
    text: &str,
    line: usize,
    column: usize,
    root: Option<&Node>,
) -> Option<Place> {
    if line == 0 {
        return None;
    }
    let end = span::offset(text, line, column);
    if let Some(place) = root.and_then(|r| r.ending_at(end)) {
        return Some(place);
    }
    let start = if column > 0 {
        text[..end].char_indices().next_back().map_or(0, |(i, _)| i)
    } else {
        end
    };
    Some(Place {
        span: start..end,
        json_path: None,
    })
}

/// Reports a crate error about a file: each problem at its place in the text.
pub(crate) fn report(path: &Path, text: &str, e: &Error, out: &mut Reporter) {
    let root = span::parse(text);
    for d in diagnostics(path, text, root.as_ref(), e) {
        out.emit(d);
    }
}

/// A crate error about a file as diagnostics, each at its place when the text shows it.
pub(crate) fn diagnostics(
    path: &Path,
    text: &str,
    root: Option<&Node>,
    e: &Error,
) -> Vec<Diagnostic> {
    match e {
        Error::Document {
            line,
            column,
            message,
            ..
        } => {
            let code = if *line == 0 {
                "invalid-document"
            } else if root.is_some() {
                "invalid-value"
            } else {
                "syntax"
            };
            vec![
                Diagnostic::error(code, message.clone())
                    .in_file(path)
                    .at(syntax_place(text, *line, *column, root)),
            ]
        }
        Error::Validation(v) => {
            let mut duplicates: HashMap<&str, usize> = HashMap::new();
            v.problems
                .iter()
                .map(|p| {
                    let before = match &p.kind {
                        ProblemKind::DuplicateStepName(n) => {
                            let seen = duplicates.entry(n.as_str()).or_default();
                            *seen += 1;
                            *seen - 1
                        }
                        _ => 0,
                    };
                    let place = root.and_then(|r| span::flow_problem(r, &p.path, &p.kind, before));
                    crate::problems::flow_problem(&v.flow, &p.path, &p.kind, place).in_file(path)
                })
                .collect()
        }
        Error::Policy(p) => p
            .problems
            .iter()
            .map(|problem| {
                let place = root.and_then(|r| {
                    span::policy_problem(
                        r,
                        &p.policy,
                        problem.rule.as_deref(),
                        problem.field.as_deref(),
                    )
                });
                Diagnostic::error(
                    "invalid-policy",
                    format!("policy '{}': {problem}", p.policy),
                )
                .in_file(path)
                .at(place)
            })
            .collect(),
        Error::Limit(_) => vec![Diagnostic::error("limit", e.to_string()).in_file(path)],
        other => vec![Diagnostic::error("invalid-document", other.to_string()).in_file(path)],
    }
}
