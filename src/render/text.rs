//! Mermaid and Graphviz DOT text of a graph.

use std::fmt::Write as _;

use super::graph::{Graph, Overlay, Shape, Status};
use crate::flow::Flow;

impl Graph {
    pub(super) fn mermaid(&self, overlay: Option<&Overlay>) -> String {
        let mut out = String::from("flowchart TD\n");
        for (i, node) in self.nodes.iter().enumerate() {
            let mut lines: Vec<String> = node.lines.iter().map(|l| mermaid_text(l)).collect();
            if let Some(note) = overlay.and_then(|o| o.notes[i].as_deref()) {
                lines.push(mermaid_text(note));
            }
            let label = lines.join("<br>");
            let (open, close) = match node.shape {
                Shape::Start | Shape::End => ("([\"", "\"])"),
                Shape::Action => ("[\"", "\"]"),
                Shape::Condition => ("{\"", "\"}"),
                Shape::Splitter => ("{{\"", "\"}}"),
                Shape::Merge => ("[\\\"", "\"/]"),
            };
            let _ = writeln!(out, "    {}{open}{label}{close}", node.id);
        }
        for (i, edge) in self.edges.iter().enumerate() {
            let arrow = if overlay.is_some_and(|o| o.taken[i]) {
                "==>"
            } else {
                "-->"
            };
            let label = edge
                .label
                .as_deref()
                .map(|l| format!("|\"{}\"|", mermaid_text(l)))
                .unwrap_or_default();
            let (from, to) = (&self.nodes[edge.from].id, &self.nodes[edge.to].id);
            let _ = writeln!(out, "    {from} {arrow}{label} {to}");
        }
        if let Some(o) = overlay {
            for status in Status::ALL {
                let _ = writeln!(out, "    classDef {} {}", status.class(), status.css());
            }
            for status in Status::ALL {
                let ids: Vec<&str> = self
                    .nodes
                    .iter()
                    .zip(&o.status)
                    .filter(|(_, s)| **s == status)
                    .map(|(n, _)| n.id.as_str())
                    .collect();
                if !ids.is_empty() {
                    let _ = writeln!(out, "    class {} {}", ids.join(","), status.class());
                }
            }
            let taken: Vec<String> = (0..self.edges.len())
                .filter(|i| o.taken[*i])
                .map(|i| i.to_string())
                .collect();
            if !taken.is_empty() {
                let _ = writeln!(
                    out,
                    "    linkStyle {} stroke:#2b8a3e,stroke-width:3px",
                    taken.join(",")
                );
            }
        }
        out
    }

    pub(super) fn dot(&self, flow: &Flow, overlay: Option<&Overlay>) -> String {
        let title = format!("{} v{}", flow.name, flow.version);
        let mut out = format!("digraph \"{}\" {{\n", dot_text(&flow.name));
        out.push_str("    rankdir=TB;\n");
        let _ = writeln!(out, "    label=\"{}\";", dot_text(&title));
        out.push_str("    labelloc=t;\n");
        out.push_str("    fontname=\"Helvetica\";\n");
        out.push_str("    node [fontname=\"Helvetica\", fontsize=11];\n");
        out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
        for (i, node) in self.nodes.iter().enumerate() {
            let mut lines: Vec<String> = node.lines.iter().map(|l| dot_text(l)).collect();
            if let Some(note) = overlay.and_then(|o| o.notes[i].as_deref()) {
                lines.push(dot_text(note));
            }
            let (shape, mut style) = match node.shape {
                Shape::Start | Shape::End => ("oval", vec![]),
                Shape::Action => ("box", vec!["rounded"]),
                Shape::Condition => ("diamond", vec![]),
                Shape::Splitter => ("hexagon", vec![]),
                Shape::Merge => ("invtrapezium", vec![]),
            };
            let mut attrs = format!("label=\"{}\", shape={shape}", lines.join("\\n"));
            if let Some(status) = overlay.map(|o| o.status[i]) {
                let (fill, stroke, font) = status.colors();
                if status != Status::Unreached {
                    style.push("filled");
                }
                if status == Status::Skipped {
                    style.push("dashed");
                }
                let _ = write!(
                    attrs,
                    ", fillcolor=\"{fill}\", color=\"{stroke}\", fontcolor=\"{font}\""
                );
            }
            if !style.is_empty() {
                let _ = write!(attrs, ", style=\"{}\"", style.join(","));
            }
            let _ = writeln!(out, "    {} [{attrs}];", node.id);
        }
        for (i, edge) in self.edges.iter().enumerate() {
            let mut attrs = Vec::new();
            if let Some(label) = &edge.label {
                attrs.push(format!("label=\"{}\"", dot_text(label)));
            }
            match overlay.map(|o| o.taken[i]) {
                Some(true) => attrs.push("color=\"#2b8a3e\", penwidth=3".into()),
                Some(false) => attrs.push("color=\"#adb5bd\"".into()),
                None => {}
            }
            let (from, to) = (&self.nodes[edge.from].id, &self.nodes[edge.to].id);
            if attrs.is_empty() {
                let _ = writeln!(out, "    {from} -> {to};");
            } else {
                let _ = writeln!(out, "    {from} -> {to} [{}];", attrs.join(", "));
            }
        }
        out.push_str("}\n");
        out
    }
}

/// Text safe inside a Mermaid `"…"` label: everything that could end the string, open an
/// entity or markdown string, or become HTML is written as a `#…;` entity.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '\\' => out.push_str("#92;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '`' => out.push_str("#96;"),
            '|' => out.push_str("#124;"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("<br>");
                }
            }
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text safe inside a DOT `"…"` string, with newlines as `\n`.
fn dot_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
