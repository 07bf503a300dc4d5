//! A graph as standalone SVG: a layout of its blocks, shapes, edges and a legend.
//!
//! The layout follows the flow's structure rather than a general graph layout: a sequence is
//! a column of blocks centred on one axis, and a Condition or Splitter puts each of its paths
//! in a column of its own, side by side under it, with the merge (if any) centred under them.
//! Columns never share space, so nodes cannot overlap and edges cannot cross; an edge into a
//! path runs down from the element to a rail, across to the path's column and down into it,
//! and back the same way into the merge. Text widths are estimated from the characters
//! (there is no font to measure at render time), generously, and long lines are wrapped.

use std::fmt::Write as _;

use super::graph::{Block, Graph, Overlay, Shape, Status};
use super::label::{LINE, Style, fit, label, text_size, width, wrap, xml};
use crate::flow::Flow;
use crate::journey::Journey;

/// The fonts the drawing asks for: metric-compatible families found on most systems.
const FONT: &str = "'Liberation Sans', Arial, Helvetica, sans-serif";
const PAD_X: f64 = 12.0;
const PAD_Y: f64 = 8.0;
/// Vertical space between two blocks of a sequence.
const GAP_Y: f64 = 34.0;
/// Horizontal space between two path columns.
const GAP_X: f64 = 28.0;
/// From an element's bottom to its paths' tops: the rail, then the branch label.
const FORK_TOP: f64 = 50.0;
const RAIL: f64 = 14.0;
/// From the paths' bottoms to the merge's top.
const FORK_BOTTOM: f64 = 34.0;
const MARGIN: f64 = 24.0;
/// The widest a branch label is drawn; a longer one is cut short (its tooltip has it all).
const BRANCH: f64 = 220.0;

/// A node's outline size for its text.
fn shape_size(shape: Shape, (tw, th): (f64, f64)) -> (f64, f64) {
    match shape {
        Shape::Start | Shape::End => ((tw + 44.0).max(90.0), th + 16.0),
        Shape::Action => ((tw + 2.0 * PAD_X).max(120.0), th + 2.0 * PAD_Y),
        Shape::Condition => {
            // The text's box fits inside the diamond when (tw/2)/a + (th/2)/b <= 1.
            let b = th / 2.0 + 24.0;
            let a = (tw / 2.0) * b / (b - th / 2.0) + 10.0;
            (2.0 * a, 2.0 * b)
        }
        Shape::Splitter => {
            let h = th + 2.0 * PAD_Y;
            (tw + 2.0 * PAD_X + 0.7 * h, h)
        }
        Shape::Merge => {
            let h = th + 2.0 * PAD_Y;
            (tw + 2.0 * PAD_X + 0.9 * h, h)
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn cx(&self) -> f64 {
        self.x + self.w / 2.0
    }

    fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

/// Where everything goes.
#[derive(Debug)]
struct Layout<'g> {
    graph: &'g Graph,
    /// Each node's outline size.
    sizes: Vec<(f64, f64)>,
    /// Each block's size, by its first node (a node's own, a fork's element).
    blocks: Vec<(f64, f64)>,
    boxes: Vec<Rect>,
    routes: Vec<Vec<(f64, f64)>>,
    /// Where each edge's label is centred.
    labels: Vec<Option<(f64, f64)>>,
}

impl<'g> Layout<'g> {
    fn new(graph: &'g Graph, sizes: Vec<(f64, f64)>) -> Self {
        let n = graph.nodes.len();
        let mut layout = Self {
            graph,
            sizes,
            blocks: vec![(0.0, 0.0); n],
            boxes: vec![Rect::default(); n],
            routes: vec![Vec::new(); graph.edges.len()],
            labels: vec![None; graph.edges.len()],
        };
        for block in &graph.blocks {
            layout.measure(block);
        }
        layout
    }

    fn key(block: &Block) -> usize {
        match block {
            Block::Node(n) => *n,
            Block::Fork { element, .. } => *element,
        }
    }

    /// The size of a sequence of measured blocks.
    fn sequence(&self, blocks: &[Block]) -> (f64, f64) {
        let w = blocks
            .iter()
            .map(|b| self.blocks[Self::key(b)].0)
            .fold(0.0, f64::max);
        let h: f64 = blocks.iter().map(|b| self.blocks[Self::key(b)].1).sum();
        (w, h + GAP_Y * blocks.len().saturating_sub(1) as f64)
    }

    /// The width of each path column of a fork whose blocks are measured.
    fn columns(&self, branches: &[super::graph::Branch]) -> Vec<f64> {
        branches
            .iter()
            .map(|br| {
                let label = self.graph.edges[br.entry]
                    .label
                    .as_deref()
                    .map_or(0.0, |l| {
                        width(&fit(l, Style::Detail, BRANCH), Style::Detail) + 16.0
                    });
                self.sequence(&br.blocks).0.max(label).max(40.0)
            })
            .collect()
    }

    fn measure(&mut self, block: &Block) {
        let size = match block {
            Block::Node(n) => self.sizes[*n],
            Block::Fork {
                element,
                branches,
                merge,
            } => {
                for br in branches {
                    for b in &br.blocks {
                        self.measure(b);
                    }
                }
                let columns = self.columns(branches);
                let span =
                    columns.iter().sum::<f64>() + GAP_X * columns.len().saturating_sub(1) as f64;
                let deepest = branches
                    .iter()
                    .map(|br| self.sequence(&br.blocks).1)
                    .fold(0.0, f64::max);
                let (ew, eh) = self.sizes[*element];
                let (mw, mh) = merge.map_or((0.0, 0.0), |m| self.sizes[m]);
                let below = if merge.is_some() {
                    FORK_BOTTOM + mh
                } else {
                    0.0
                };
                (span.max(ew).max(mw), eh + FORK_TOP + deepest + below)
            }
        };
        self.blocks[Self::key(block)] = size;
    }

    fn place_sequence(&mut self, blocks: &[Block], cx: f64, mut y: f64) {
        for block in blocks {
            self.place(block, cx, y);
            y += self.blocks[Self::key(block)].1 + GAP_Y;
        }
    }

    fn put(&mut self, node: usize, cx: f64, y: f64) -> Rect {
        let (w, h) = self.sizes[node];
        self.boxes[node] = Rect {
            x: cx - w / 2.0,
            y,
            w,
            h,
        };
        self.boxes[node]
    }

    fn place(&mut self, block: &Block, cx: f64, y: f64) {
        let (element, branches, merge) = match block {
            Block::Node(n) => {
                self.put(*n, cx, y);
                return;
            }
            Block::Fork {
                element,
                branches,
                merge,
            } => (*element, branches, *merge),
        };
        let el = self.put(element, cx, y);
        let top = el.bottom() + FORK_TOP;
        let rail = el.bottom() + RAIL;
        let columns = self.columns(branches);
        let span = columns.iter().sum::<f64>() + GAP_X * columns.len().saturating_sub(1) as f64;
        let deepest = branches
            .iter()
            .map(|br| self.sequence(&br.blocks).1)
            .fold(0.0, f64::max);
        let merge_top = top + deepest + FORK_BOTTOM;
        let join = merge_top - RAIL;
        if let Some(m) = merge {
            self.put(m, cx, merge_top);
        }
        let mut left = cx - span / 2.0;
        for (br, column) in branches.iter().zip(columns) {
            let bx = left + column / 2.0;
            left += column + GAP_X;
            self.place_sequence(&br.blocks, bx, top);
            self.labels[br.entry] = Some((bx, el.bottom() + RAIL + 18.0));
            let mut route = vec![(cx, el.bottom()), (cx, rail), (bx, rail)];
            if br.blocks.is_empty() {
                route.extend([(bx, join), (cx, join), (cx, merge_top)]);
            } else {
                route.push((bx, top));
            }
            self.routes[br.entry] = route;
            for &exit in br.exits.iter().filter(|e| **e != br.entry) {
                let from = self.boxes[self.graph.edges[exit].from];
                self.routes[exit] = vec![
                    (from.cx(), from.bottom()),
                    (from.cx(), join),
                    (cx, join),
                    (cx, merge_top),
                ];
            }
        }
    }

    /// Routes the edges no fork routed: straight down between blocks of a sequence.
    fn route_rest(&mut self) {
        for (i, edge) in self.graph.edges.iter().enumerate() {
            if !self.routes[i].is_empty() {
                continue;
            }
            let (from, to) = (self.boxes[edge.from], self.boxes[edge.to]);
            let (fx, fy, tx, ty) = (from.cx(), from.bottom(), to.cx(), to.y);
            self.routes[i] = if (fx - tx).abs() < 0.5 {
                vec![(fx, fy), (tx, ty)]
            } else {
                let mid = (fy + ty) / 2.0;
                vec![(fx, fy), (fx, mid), (tx, mid), (tx, ty)]
            };
        }
    }
}

fn num(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// The outline of a node of `shape` in `r`.
fn outline(shape: Shape, r: Rect) -> String {
    let (x, y, w, h) = (r.x, r.y, r.w, r.h);
    let points = |pts: &[(f64, f64)]| -> String {
        let p: Vec<String> = pts
            .iter()
            .map(|(a, b)| format!("{},{}", num(*a), num(*b)))
            .collect();
        format!("<polygon points=\"{}\"", p.join(" "))
    };
    match shape {
        Shape::Start | Shape::End | Shape::Action => {
            let rx = if shape == Shape::Action { 8.0 } else { h / 2.0 };
            format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"{}\"",
                num(x),
                num(y),
                num(w),
                num(h),
                num(rx)
            )
        }
        Shape::Condition => points(&[
            (x + w / 2.0, y),
            (x + w, y + h / 2.0),
            (x + w / 2.0, y + h),
            (x, y + h / 2.0),
        ]),
        Shape::Splitter => {
            let inset = 0.35 * h;
            points(&[
                (x + inset, y),
                (x + w - inset, y),
                (x + w, y + h / 2.0),
                (x + w - inset, y + h),
                (x + inset, y + h),
                (x, y + h / 2.0),
            ])
        }
        Shape::Merge => {
            let inset = 0.45 * h;
            points(&[
                (x, y),
                (x + w, y),
                (x + w - inset, y + h),
                (x + inset, y + h),
            ])
        }
    }
}

fn shape_class(shape: Shape) -> &'static str {
    match shape {
        Shape::Start => "start",
        Shape::End => "end",
        Shape::Action => "action",
        Shape::Condition => "condition",
        Shape::Splitter => "splitter",
        Shape::Merge => "merge",
    }
}

/// Fill, stroke, text and note colours of a node.
fn palette(shape: Shape, status: Option<Status>) -> [&'static str; 4] {
    match status {
        Some(Status::Unreached) => ["#ffffff", "#ced4da", "#868e96", "#adb5bd"],
        Some(s) => {
            let (fill, stroke, font) = s.colors();
            [fill, stroke, font, stroke]
        }
        None => match shape {
            Shape::Start => ["#e6fcf5", "#0ca678", "#212529", "#495057"],
            Shape::End => ["#f1f3f5", "#343a40", "#212529", "#495057"],
            Shape::Action => ["#f8f9fa", "#495057", "#212529", "#495057"],
            Shape::Condition => ["#fff9db", "#e67700", "#212529", "#495057"],
            Shape::Splitter | Shape::Merge => ["#f3f0ff", "#6741d9", "#212529", "#495057"],
        },
    }
}

/// Writes `lines` centred on `cx`, their block centred on `cy`.
/// `colors`: the name's, the details', the note's.
fn text_block(out: &mut String, lines: &[(String, Style)], cx: f64, cy: f64, colors: [&str; 3]) {
    let top = cy - lines.len() as f64 * LINE / 2.0;
    out.push_str("<text text-anchor=\"middle\">");
    for (i, (line, style)) in lines.iter().enumerate() {
        let fill = match style {
            Style::Note => colors[2],
            Style::Detail => colors[1],
            _ => colors[0],
        };
        let weight = if style.bold() {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tspan x=\"{}\" y=\"{}\" font-size=\"{}\" fill=\"{fill}\"{weight}>{}</tspan>",
            num(cx),
            num(top + i as f64 * LINE + LINE * 0.75),
            style.size(),
            xml(line)
        );
    }
    out.push_str("</text>");
}

/// The SVG document of a graph, with a journey's overlay and its legend when given.
pub(super) fn render(graph: &Graph, flow: &Flow, overlay: Option<(&Overlay, &Journey)>) -> String {
    let labels: Vec<Vec<(String, Style)>> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let note = overlay.and_then(|(o, _)| o.notes[i].as_deref());
            label(&n.lines, note)
        })
        .collect();
    let sizes = graph
        .nodes
        .iter()
        .zip(&labels)
        .map(|(n, l)| shape_size(n.shape, text_size(l)))
        .collect();
    let mut layout = Layout::new(graph, sizes);

    let mut title_text = format!("{} v{}", flow.name, flow.version);
    if let Some((_, journey)) = overlay {
        let _ = write!(title_text, " · order {}", journey.order);
    }
    let title = wrap(&title_text, Style::Title, 640.0);
    let title_h = title.len() as f64 * 20.0 + 14.0;
    let legend = overlay.map(|_| Legend::new());

    let (body_w, body_h) = layout.sequence(&graph.blocks);
    let title_w = title
        .iter()
        .map(|l| width(l, Style::Title))
        .fold(0.0, f64::max);
    let legend_w = legend.as_ref().map_or(0.0, |l| l.width);
    let inner = body_w.max(title_w).max(legend_w);
    let cx = MARGIN + inner / 2.0;
    let top = MARGIN + title_h;
    layout.place_sequence(&graph.blocks, cx, top);
    layout.route_rest();
    let legend_y = top + body_h + 28.0;
    let total_w = inner + 2.0 * MARGIN;
    let total_h = legend_y + legend.as_ref().map_or(0.0, |_| Legend::HEIGHT + 8.0) + MARGIN - 10.0;

    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-family=\"{FONT}\" class=\"orderflow-diagram\" role=\"img\">",
        w = num(total_w),
        h = num(total_h),
    );
    let _ = write!(out, "<title>{}</title>", xml(&title_text));
    out.push_str("<defs>");
    for (id, color) in [
        ("of-arrow", "#495057"),
        ("of-arrow-taken", "#2b8a3e"),
        ("of-arrow-idle", "#adb5bd"),
    ] {
        let size = if id == "of-arrow-taken" { 12 } else { 9 };
        let _ = write!(
            out,
            "<marker id=\"{id}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
             markerUnits=\"userSpaceOnUse\" markerWidth=\"{size}\" markerHeight=\"{size}\" \
             orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"{color}\"/></marker>"
        );
    }
    out.push_str("</defs>");
    let _ = write!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/><g class=\"title\">"
    );
    for (i, line) in title.iter().enumerate() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"16\" font-weight=\"bold\" fill=\"#212529\">{}</text>",
            num(MARGIN),
            num(MARGIN + 14.0 + i as f64 * 20.0),
            xml(line)
        );
    }
    out.push_str("</g>");

    // Edges: the ones not taken first, so a taken edge is drawn over a shared stretch.
    out.push_str("<g class=\"edges\" fill=\"none\">");
    let taken = |i: usize| overlay.is_some_and(|(o, _)| o.taken[i]);
    let order: Vec<usize> = (0..graph.edges.len())
        .filter(|i| !taken(*i))
        .chain((0..graph.edges.len()).filter(|i| taken(*i)))
        .collect();
    for i in order {
        let edge = &graph.edges[i];
        let (class, stroke, width, marker) = match overlay.map(|_| taken(i)) {
            None => ("edge", "#495057", "1.5", "of-arrow"),
            Some(true) => ("edge taken", "#2b8a3e", "3.5", "of-arrow-taken"),
            Some(false) => ("edge", "#adb5bd", "1.5", "of-arrow-idle"),
        };
        let points: Vec<String> = layout.routes[i]
            .iter()
            .map(|(x, y)| format!("{},{}", num(*x), num(*y)))
            .collect();
        let _ = write!(
            out,
            "<g class=\"{class}\" data-from=\"{}\" data-to=\"{}\"><polyline points=\"{}\" \
             stroke=\"{stroke}\" stroke-width=\"{width}\" stroke-linejoin=\"round\" \
             marker-end=\"url(#{marker})\"/></g>",
            graph.nodes[edge.from].id,
            graph.nodes[edge.to].id,
            points.join(" ")
        );
    }
    out.push_str("</g><g class=\"edge-labels\">");
    for (i, edge) in graph.edges.iter().enumerate() {
        if let (Some(text), Some((x, y))) = (&edge.label, layout.labels[i]) {
            let fill = if taken(i) { "#1b4d26" } else { "#495057" };
            let _ = write!(
                out,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11.5\" \
                 font-style=\"italic\" fill=\"{fill}\" stroke=\"#ffffff\" stroke-width=\"4\" \
                 paint-order=\"stroke\"><title>{}</title>{}</text>",
                num(x),
                num(y),
                xml(text),
                xml(&fit(text, Style::Detail, BRANCH))
            );
        }
    }
    out.push_str("</g><g class=\"nodes\">");
    for (i, node) in graph.nodes.iter().enumerate() {
        let status = overlay.map(|(o, _)| o.status[i]);
        let r = layout.boxes[i];
        let [fill, stroke, font, note] = palette(node.shape, status);
        let _ = write!(
            out,
            "<g id=\"{}\" class=\"node {}",
            node.id,
            shape_class(node.shape)
        );
        if let Some(s) = status {
            let _ = write!(out, " {}", s.class());
        }
        out.push('"');
        if let Some((name, _)) = &node.step {
            let _ = write!(out, " data-step=\"{}\"", xml(name));
        }
        out.push('>');
        let mut tip = node.lines.join("\n");
        if let Some(n) = overlay.and_then(|(o, _)| o.notes[i].as_deref()) {
            let _ = write!(tip, "\n{n}");
        }
        let _ = write!(out, "<title>{}</title>", xml(&tip));
        let stroke_w = match (node.shape, status) {
            (Shape::End, _) => "3",
            (_, Some(Status::Succeeded | Status::Failed | Status::Waiting)) => "2.5",
            _ => "1.5",
        };
        let dash = if status == Some(Status::Skipped) {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "{} fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{stroke_w}\"{dash}/>",
            outline(node.shape, r)
        );
        let detail = if status == Some(Status::Unreached) {
            note
        } else {
            "#495057"
        };
        text_block(
            &mut out,
            &labels[i],
            r.cx(),
            r.y + r.h / 2.0,
            [font, detail, note],
        );
        out.push_str("</g>");
    }
    out.push_str("</g>");
    if let Some(legend) = legend {
        legend.draw(&mut out, MARGIN, legend_y);
    }
    out.push_str("</svg>\n");
    out
}

/// The key to a journey's colours.
#[derive(Debug)]
struct Legend {
    width: f64,
}

impl Legend {
    const HEIGHT: f64 = 20.0;
    const PATH: &'static str = "Path taken";

    fn entries() -> impl Iterator<Item = (Status, f64)> {
        Status::ALL
            .into_iter()
            .map(|s| (s, 22.0 + width(s.label(), Style::Legend) + 18.0))
    }

    fn new() -> Self {
        let swatches: f64 = Self::entries().map(|(_, w)| w).sum();
        Self {
            width: swatches + 36.0 + width(Self::PATH, Style::Legend),
        }
    }

    fn draw(&self, out: &mut String, x: f64, y: f64) {
        out.push_str("<g class=\"legend\" font-size=\"11.5\" fill=\"#343a40\">");
        let mut left = x;
        for (status, w) in Self::entries() {
            let (fill, stroke, _) = status.colors();
            let dash = if status == Status::Skipped {
                " stroke-dasharray=\"3 2\""
            } else {
                ""
            };
            let _ = write!(
                out,
                "<g class=\"legend-{}\"><rect x=\"{}\" y=\"{}\" width=\"16\" height=\"14\" rx=\"3\" \
                 fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.5\"{dash}/>\
                 <text x=\"{}\" y=\"{}\">{}</text></g>",
                status.class(),
                num(left),
                num(y + 2.0),
                num(left + 22.0),
                num(y + 13.0),
                status.label()
            );
            left += w;
        }
        let _ = write!(
            out,
            "<g class=\"legend-taken\"><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" \
             stroke=\"#2b8a3e\" stroke-width=\"3.5\"/><text x=\"{}\" y=\"{}\">{}</text></g></g>",
            num(left),
            num(y + 9.0),
            num(left + 28.0),
            num(y + 9.0),
            num(left + 34.0),
            num(y + 13.0),
            Self::PATH
        );
    }
}
