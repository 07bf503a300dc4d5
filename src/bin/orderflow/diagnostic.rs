//! Diagnostics as rustc prints them: a title with a code, the file, line and column once,
//! the line of source with a caret under the place, and notes; on standard error, in colour
//! on a terminal. `validate --format json` prints the same diagnostics as one JSON document
//! instead (its shape: [`Diagnostic::to_json`]).

use std::collections::HashMap;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use clap::ValueEnum;
use serde_json::json;

use crate::span::Place;

/// When diagnostics are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    /// On a terminal, unless `NO_COLOR` is set (or `CLICOLOR_FORCE` asks for colour).
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }
}

/// A line after a diagnostic's snippet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aside {
    /// `note:` — context, such as the step concerned.
    Note,
    /// `help:` — what to do about it.
    Help,
}

impl Aside {
    fn name(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Help => "help",
        }
    }
}

/// One thing the tool has to say about a file.
#[derive(Debug, Clone)]
pub(crate) struct Diagnostic {
    pub(crate) severity: Severity,
    /// A stable name for the kind of problem (`syntax`, `unknown-policy`, …).
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) file: Option<PathBuf>,
    /// Where in the file, if the problem is at one place.
    pub(crate) place: Option<Place>,
    /// The text under the caret.
    pub(crate) label: Option<String>,
    /// Lines after the snippet: `help: …`, `note: …`.
    pub(crate) notes: Vec<(Aside, String)>,
}

impl Diagnostic {
    pub(crate) fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            file: None,
            place: None,
            label: None,
            notes: Vec::new(),
        }
    }

    pub(crate) fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    pub(crate) fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_owned());
        self
    }

    pub(crate) fn at(mut self, place: Option<Place>) -> Self {
        self.place = place;
        self
    }

    pub(crate) fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.notes.push((Aside::Help, help.into()));
        self
    }

    pub(crate) fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push((Aside::Note, note.into()));
        self
    }

    /// The diagnostic for tools (`validate --format json`):
    ///
    /// ```json
    /// { "severity": "error", "code": "unknown-policy",
    ///   "message": "policy 'X' is not defined", "file": "flow.json",
    ///   "line": 12, "column": 27, "span": { "start": 301, "end": 304 },
    ///   "json_path": "$['steps'][0]['action']['filter']",
    ///   "label": "…", "notes": ["help: …"] }
    /// ```
    ///
    /// `line` and `column` are 1-based, the column counted in characters; `span` is the
    /// byte range in the file (end exclusive). `file`, `line`, `column`, `span`,
    /// `json_path` and `label` are `null` when the problem is not at one place.
    fn to_json(&self, sources: &HashMap<PathBuf, String>) -> serde_json::Value {
        let source = self.file.as_ref().and_then(|f| sources.get(f));
        let (line, column) = match (&self.place, source) {
            (Some(place), Some(text)) => {
                let (l, c) = line_column(text, place.span.start);
                (json!(l), json!(c))
            }
            _ => (json!(null), json!(null)),
        };
        json!({
            "severity": self.severity.name(),
            "code": self.code,
            "message": self.message,
            "file": self.file.as_ref().map(|f| f.display().to_string()),
            "line": line,
            "column": column,
            "span": self.place.as_ref().map(|p| json!({"start": p.span.start, "end": p.span.end})),
            "json_path": self.place.as_ref().and_then(|p| p.json_path.clone()),
            "label": self.label,
            "notes": self.notes.iter().map(|(s, n)| format!("{}: {n}", s.name())).collect::<Vec<_>>(),
        })
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where diagnostics go: rendered to standard error as they come, or gathered for one JSON
/// document at the end.
#[derive(Debug)]
pub(crate) struct Reporter {
    color: Color,
    json: bool,
    /// The text of every file read, for snippets.
    sources: HashMap<PathBuf, String>,
    gathered: Vec<Diagnostic>,
    pub(crate) errors: usize,
    pub(crate) warnings: usize,
}

impl Reporter {
    pub(crate) fn new(color: Color, json: bool) -> Self {
        Self {
            color,
            json,
            sources: HashMap::new(),
            gathered: Vec::new(),
            errors: 0,
            warnings: 0,
        }
    }

    /// Keeps a file's text for the snippets of its diagnostics.
    pub(crate) fn source(&mut self, file: &Path, text: &str) {
        self.sources.insert(file.to_owned(), text.to_owned());
    }

    /// Whether diagnostics are gathered for one JSON document.
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// The text of a file read before.
    pub(crate) fn text(&self, file: &Path) -> Option<&str> {
        self.sources.get(file).map(String::as_str)
    }

    pub(crate) fn emit(&mut self, diagnostic: Diagnostic) {
        match diagnostic.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
        }
        if self.json {
            self.gathered.push(diagnostic);
            return;
        }
        self.print(&diagnostic);
    }

    /// Prints a diagnostic on standard error even under `--format json`: why a command
    /// could not run, when there is no JSON document to put it in.
    pub(crate) fn print(&self, diagnostic: &Diagnostic) {
        let text = self.render(diagnostic);
        let choice = match self.color {
            Color::Auto => anstream::ColorChoice::Auto,
            Color::Always => anstream::ColorChoice::Always,
            Color::Never => anstream::ColorChoice::Never,
        };
        let mut err = anstream::AutoStream::new(std::io::stderr().lock(), choice);
        // A blank line after each, as rustc leaves.
        let _ = writeln!(err, "{text}\n");
    }

    /// The diagnostic as rustc would print it, with ANSI styles (the stream removes them
    /// where colour is off).
    fn render(&self, d: &Diagnostic) -> String {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let file = d.file.as_ref().map(|f| f.display().to_string());
        let source = d.file.as_ref().and_then(|f| self.sources.get(f));
        let group = match (&d.place, source, &file) {
            (Some(place), Some(text), Some(file)) => {
                let span = widen(text, place.span.clone());
                let mut annotation = AnnotationKind::Primary.span(span);
                if let Some(label) = &d.label {
                    annotation = annotation.label(label.as_str());
                }
                level.primary_title(d.message.as_str()).id(d.code).element(
                    Snippet::source(text.as_str())
                        .path(file.as_str())
                        .annotation(annotation),
                )
            }
            // Not at one place: the file opens the message, as `file: message`.
            (_, _, Some(file)) => Group::with_title(with_code(
                level.primary_title(format!("{file}: {}", d.message)),
                d.code,
            )),
            _ => Group::with_title(with_code(level.primary_title(d.message.as_str()), d.code)),
        };
        let group = d.notes.iter().fold(group, |g, (aside, note)| {
            let level = match aside {
                Aside::Help => Level::HELP,
                Aside::Note => Level::NOTE,
            };
            g.element(level.message(note.as_str()))
        });
        Renderer::styled().render(&[group])
    }

    /// Prints the gathered diagnostics and what was checked as one JSON document on
    /// standard output (`validate --format json`).
    pub(crate) fn print_json(&self, checked: &[serde_json::Value]) {
        let document = json!({
            "valid": self.errors == 0,
            "errors": self.errors,
            "warnings": self.warnings,
            "diagnostics": self.gathered.iter().map(|d| d.to_json(&self.sources)).collect::<Vec<_>>(),
            "files": checked,
        });
        crate::output(format!(
            "{}\n",
            serde_json::to_string_pretty(&document).unwrap_or_default()
        ));
    }
}

/// A title with its code in brackets (`error[syntax]`), or plain when it has none.
fn with_code<'a>(
    title: annotate_snippets::Title<'a>,
    code: &'a str,
) -> annotate_snippets::Title<'a> {
    if code.is_empty() {
        title
    } else {
        title.id(code)
    }
}

/// A span on whole characters, and at least one character wide where the text has one (a
/// caret at the end of the file stays empty).
fn widen(text: &str, span: Range<usize>) -> Range<usize> {
    let mut start = span.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.end.clamp(start, text.len());
    if end == start {
        end = text[start..]
            .chars()
            .next()
            .map_or(start, |c| start + c.len_utf8());
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}
