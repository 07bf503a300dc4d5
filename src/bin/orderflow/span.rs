//! Where things are in a JSON file: a small parser that keeps the byte span of every value
//! and key, and the lookups that turn a validation problem's place (a flow's step path, a
//! policy's rule and field) into a span and a JSON path.
//!
//! `serde_json` gives a line and column for syntax errors only; a reference error (an
//! unknown policy, a duplicate step name) is found on the typed flow, which has forgotten
//! where its parts were written. The tool parses the text a second time here, only for
//! files that already parsed, so the spans always describe valid JSON.

use std::fmt::Write as _;
use std::ops::Range;

use orderflow::flow::{ProblemKind, StepPath};

/// How deep the span parser follows nested values; documents deeper than the crate's own
/// nesting limit were refused before they get here, so this only bounds the recursion.
const MAX_DEPTH: usize = 256;

/// A JSON value and where it is written.
#[derive(Debug)]
pub(crate) struct Node {
    /// The value's bytes, from its first to one past its last.
    pub(crate) span: Range<usize>,
    pub(crate) value: Value,
}

#[derive(Debug)]
pub(crate) enum Value {
    Object(Vec<Member>),
    Array(Vec<Node>),
    String(String),
    Other,
}

/// An object's member: its key and its value.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) key: String,
    pub(crate) node: Node,
}

/// One step into a JSON value, for a JSON path.
#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A place in a file: the bytes to underline and the JSON path of the value there
/// (RFC 9535's normalized path: `$['steps'][0]['action']['filter']`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) span: Range<usize>,
    pub(crate) json_path: Option<String>,
}

impl Node {
    fn get(&self, key: &str) -> Option<&Self> {
        self.member(key).map(|m| &m.node)
    }

    fn member(&self, key: &str) -> Option<&Member> {
        match &self.value {
            Value::Object(members) => members.iter().find(|m| m.key == key),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The smallest value that ends at byte `end`, and its path.
    pub(crate) fn ending_at(&self, end: usize) -> Option<Place> {
        let mut at = Vec::new();
        let found = self.ending_at_inner(end, &mut at)?;
        Some(Place {
            span: found,
            json_path: Some(json_path(&at)),
        })
    }

    fn ending_at_inner(&self, end: usize, at: &mut Vec<Segment>) -> Option<Range<usize>> {
        if !(self.span.start < end && end <= self.span.end) {
            return None;
        }
        let children: Vec<(Segment, &Self)> = match &self.value {
            Value::Object(members) => members
                .iter()
                .map(|m| (Segment::Key(m.key.clone()), &m.node))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (Segment::Index(i), n))
                .collect(),
            _ => Vec::new(),
        };
        for (segment, child) in children {
            at.push(segment);
            if let Some(found) = child.ending_at_inner(end, at) {
                return Some(found);
            }
            at.pop();
        }
        (self.span.end == end).then(|| self.span.clone())
    }
}

/// Parses JSON text into spans; `None` if it is not JSON (or nests past [`MAX_DEPTH`]).
pub(crate) fn parse(text: &str) -> Option<Node> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let node = p.value(0)?;
    p.skip_space();
    (p.at == p.bytes.len()).then_some(node)
}

struct Parser<'t> {
    text: &'t str,
    bytes: &'t [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        let start = self.at;
        let value =
            match *self.bytes.get(self.at)? {
                b'{' => {
                    self.at += 1;
                    let mut members = Vec::new();
                    self.skip_space();
                    if self.bytes.get(self.at) == Some(&b'}') {
                        self.at += 1;
                    } else {
                        loop {
                            self.skip_space();
                            let key = self.string()?;
                            self.skip_space();
                            self.expect(b':')?;
                            let node = self.value(depth + 1)?;
                            members.push(Member { key, node });
                            self.skip_space();
                            match *self.bytes.get(self.at)? {
                                b',' => self.at += 1,
                                b'}' => {
                                    self.at += 1;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                    Value::Object(members)
                }
                b'[' => {
                    self.at += 1;
                    let mut items = Vec::new();
                    self.skip_space();
                    if self.bytes.get(self.at) == Some(&b']') {
                        self.at += 1;
                    } else {
                        loop {
                            items.push(self.value(depth + 1)?);
                            self.skip_space();
                            match *self.bytes.get(self.at)? {
                                b',' => self.at += 1,
                                b']' => {
                                    self.at += 1;
                                    break;
                                }
                                _ => return None,
                            }
                        }
                    }
                    Value::Array(items)
                }
                b'"' => Value::String(self.string()?),
                _ => {
                    while self.bytes.get(self.at).is_some_and(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.')
                    }) {
                        self.at += 1;
                    }
                    if self.at == start {
                        return None;
                    }
                    Value::Other
                }
            };
        Some(Node {
            span: start..self.at,
            value,
        })
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    /// A string at the cursor, its escapes decoded.
    fn string(&mut self) -> Option<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let run = self.at;
            while self
                .bytes
                .get(self.at)
                .is_some_and(|b| *b != b'"' && *b != b'\\')
            {
                self.at += 1;
            }
            out.push_str(self.text.get(run..self.at)?);
            match *self.bytes.get(self.at)? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                _ => {
                    self.at += 1;
                    let escaped = *self.bytes.get(self.at)?;
                    self.at += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&first)
                                && self.bytes.get(self.at..self.at + 2) == Some(b"\\u")
                            {
                                self.at += 2;
                                let second = self.hex4()?;
                                let joined = 0x10000
                                    + ((first - 0xD800) << 10)
                                    + (second.wrapping_sub(0xDC00));
                                char::from_u32(joined).unwrap_or('\u{fffd}')
                            } else {
                                char::from_u32(first).unwrap_or('\u{fffd}')
                            };
                            out.push(c);
                        }
                        _ => return None,
                    }
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }
}

/// `$['steps'][0]['action']`: RFC 9535's normalized path.
fn json_path(at: &[Segment]) -> String {
    let mut out = String::from("$");
    for segment in at {
        match segment {
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Segment::Key(k) => {
                out.push_str("['");
                for c in k.chars() {
                    match c {
                        '\'' => out.push_str("\\'"),
                        '\\' => out.push_str("\\\\"),
                        c if (c as u32) < 0x20 => {
                            let _ = write!(out, "\\u{:04x}", c as u32);
                        }
                        c => out.push(c),
                    }
                }
                out.push_str("']");
            }
        }
    }
    out
}

/// A value found in a flow, and the path to it.
struct Found<'n> {
    node: &'n Node,
    at: Vec<Segment>,
}

impl Found<'_> {
    fn place(&self) -> Place {
        Place {
            span: self.node.span.clone(),
            json_path: Some(json_path(&self.at)),
        }
    }
}

/// The step a flow's step path names (the object inside `{"action": {...}}`), or the
/// flow's top-level object for the empty path; `None` if the path leads nowhere in the
/// text. `skip` passes over that many earlier steps of the same name (for duplicates).
fn step<'n>(root: &'n Node, path: &StepPath, mut skip: usize) -> Option<Found<'n>> {
    let mut here = Found {
        node: root,
        at: Vec::new(),
    };
    let mut segments = path.0.iter().peekable();
    let mut sequence = Found {
        node: root.get("steps")?,
        at: vec![Segment::Key("steps".into())],
    };
    while let Some(name) = segments.next() {
        let Value::Array(items) = &sequence.node.value else {
            return None;
        };
        let last = segments.peek().is_none();
        let (index, kind, inner) = items.iter().enumerate().find_map(|(i, item)| {
            let Value::Object(members) = &item.value else {
                return None;
            };
            let m = members.first()?;
            if m.node.get("name").and_then(Node::str) != Some(name) {
                return None;
            }
            if last && skip > 0 {
                skip -= 1;
                return None;
            }
            Some((i, m.key.clone(), &m.node))
        })?;
        let mut at = sequence.at.clone();
        at.extend([Segment::Index(index), Segment::Key(kind)]);
        here = Found { node: inner, at };
        let Some(branch) = segments.next() else {
            break;
        };
        let (container, key) = match inner.get("branches") {
            Some(branches) => (branches, vec!["branches".to_owned(), branch.clone()]),
            None => (inner, vec![branch.clone()]),
        };
        let node = container.get(branch)?;
        let mut at = here.at.clone();
        at.extend(key.into_iter().map(Segment::Key));
        sequence = Found { node, at };
    }
    Some(here)
}

/// A member of `object` by key, as a place.
fn field<'n>(object: &Found<'n>, key: &str) -> Option<Found<'n>> {
    let node = object.node.get(key)?;
    let mut at = object.at.clone();
    at.push(Segment::Key(key.to_owned()));
    Some(Found { node, at })
}

/// The string `name` among a step's own fields (not its nested steps): a filter, an
/// execution policy in its list, a provider, a custom action.
fn reference<'n>(step: &Found<'n>, name: &str) -> Option<Found<'n>> {
    let Value::Object(members) = &step.node.value else {
        return None;
    };
    for m in members {
        if matches!(m.key.as_str(), "name" | "branches" | "yes" | "no") {
            continue;
        }
        let mut at = step.at.clone();
        at.push(Segment::Key(m.key.clone()));
        match &m.node.value {
            Value::String(s) if s == name => return Some(Found { node: &m.node, at }),
            Value::Array(items) => {
                if let Some(i) = items.iter().position(|n| n.str() == Some(name)) {
                    at.push(Segment::Index(i));
                    return Some(Found {
                        node: &items[i],
                        at,
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// Where a flow validation problem is written: the referenced name for an unknown or
/// mismatched reference, the field at fault for settings, else the step's name.
/// `duplicates_before` counts the problems of the same duplicate name reported before this
/// one (the second step of a name is the first duplicate).
pub(crate) fn flow_problem(
    root: &Node,
    path: &StepPath,
    kind: &ProblemKind,
    duplicates_before: usize,
) -> Option<Place> {
    let skip = match kind {
        ProblemKind::DuplicateStepName(_) => duplicates_before + 1,
        _ => 0,
    };
    let first = step(root, path, skip)?;
    // A reference is looked for in every step of the path's name, since a duplicate name
    // makes the path ambiguous.
    let found = (0..MAX_DEPTH)
        .map_while(|skip| step(root, path, skip))
        .find_map(|step| target(&step, kind, path));
    found.or_else(|| field(&first, "name")).map(|f| f.place())
}

/// What a problem points at inside its step.
fn target<'n>(step: &Found<'n>, kind: &ProblemKind, path: &StepPath) -> Option<Found<'n>> {
    match kind {
        ProblemKind::UnknownPolicy(p) | ProblemKind::UnpublishedPolicy(p) => reference(step, p),
        ProblemKind::WrongPolicyType { policy, .. } => reference(step, policy),
        ProblemKind::UnknownProvider(p) => reference(step, p),
        ProblemKind::ProviderLacksRequest { provider, .. } => reference(step, provider),
        ProblemKind::UnknownCustomAction(a) => reference(step, a),
        ProblemKind::UnknownOrchestrationType(_) => field(step, "orchestration_type"),
        ProblemKind::ActionKindNotAllowed(_)
        | ProblemKind::CustomActionMismatch
        | ProblemKind::MissingProvider => field(step, "kind"),
        ProblemKind::InvalidRetry(_) => field(step, "retry"),
        ProblemKind::InvalidTimeout => field(step, "timeout_ms"),
        ProblemKind::EmptySplitter => field(step, "branches"),
        ProblemKind::EmptyFlow | ProblemKind::NoTrigger if path.0.is_empty() => {
            field(step, "steps")
        }
        _ => None,
    }
}

/// Where a step is named: for warnings about a step, and unknown names under
/// `--allow-unknown` (`name` is then the reference to find in the step).
pub(crate) fn flow_step(root: &Node, path: &StepPath, name: Option<&str>) -> Option<Place> {
    let step = step(root, path, 0)?;
    name.and_then(|n| reference(&step, n))
        .or_else(|| field(&step, "name"))
        .map(|f| f.place())
}

/// Where a policy problem is written: the policy (by name, in a file of one policy or a
/// list), its rule (by name, or `#<index>`), and the first row or Set Value on `field`.
pub(crate) fn policy_problem(
    root: &Node,
    policy: &str,
    rule: Option<&str>,
    field_name: Option<&str>,
) -> Option<Place> {
    let policy_node = match &root.value {
        Value::Array(items) => items.iter().enumerate().find_map(|(i, n)| {
            (n.get("name").and_then(Node::str) == Some(policy)).then(|| Found {
                node: n,
                at: vec![Segment::Index(i)],
            })
        }),
        _ => Some(Found {
            node: root,
            at: Vec::new(),
        }),
    }?;
    let rule_node = rule.and_then(|rule| {
        let rules = field(&policy_node, "rules")?;
        let Value::Array(items) = &rules.node.value else {
            return None;
        };
        let index = items
            .iter()
            .position(|n| n.get("name").and_then(Node::str) == Some(rule))
            .or_else(|| rule.strip_prefix('#')?.parse().ok())?;
        let mut at = rules.at.clone();
        at.push(Segment::Index(index));
        Some(Found {
            node: items.get(index)?,
            at,
        })
    });
    let field_node = rule_node
        .as_ref()
        .zip(field_name)
        .and_then(|(r, f)| find_field(r.node, f, r.at.clone()));
    field_node
        .or_else(|| rule_node.as_ref().and_then(|r| field(r, "name")))
        .or_else(|| field(&policy_node, "name"))
        .map(|f| f.place())
}

/// The first `"field": "<name>"` under `node`, depth first, as the field's value.
fn find_field<'n>(node: &'n Node, name: &str, at: Vec<Segment>) -> Option<Found<'n>> {
    match &node.value {
        Value::Object(members) => {
            if let Some(m) = members
                .iter()
                .find(|m| m.key == "field" && m.node.str() == Some(name))
            {
                let mut at = at;
                at.push(Segment::Key(m.key.clone()));
                return Some(Found { node: &m.node, at });
            }
            members.iter().find_map(|m| {
                let mut at = at.clone();
                at.push(Segment::Key(m.key.clone()));
                find_field(&m.node, name, at)
            })
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, n)| {
            let mut at = at.clone();
            at.push(Segment::Index(i));
            find_field(n, name, at)
        }),
        _ => None,
    }
}

/// The byte offset of `serde_json`'s line and column (1-based line; the column counts the
/// bytes before the position on its line).
pub(crate) fn offset(text: &str, line: usize, column: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (start + column).min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = r#"{
  "name": "F",
  "steps": [
    { "action": { "name": "A", "kind": "validate_order_header", "filter": "P\u00e9" } },
    { "splitter": { "name": "S", "branches": {
      "it's": [ { "action": { "name": "B", "kind": "custom", "execution_policies": ["X", "Y"] } } ]
    } } },
    { "action": { "name": "A", "kind": "custom" } }
  ]
}"#;

    fn path(segments: &[&str]) -> StepPath {
        StepPath(segments.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn finds_references_inside_branches_with_their_json_path() {
        let root = parse(FLOW).unwrap();
        let place = flow_problem(
            &root,
            &path(&["S", "it's", "B"]),
            &ProblemKind::UnknownPolicy("Y".into()),
            0,
        )
        .unwrap();
        assert_eq!(&FLOW[place.span.clone()], "\"Y\"");
        assert_eq!(
            place.json_path.unwrap(),
            "$['steps'][1]['splitter']['branches']['it\\'s'][0]['action']['execution_policies'][1]"
        );
        // An escaped name is compared decoded.
        let place = flow_problem(
            &root,
            &path(&["A"]),
            &ProblemKind::UnknownPolicy("Pé".into()),
            0,
        )
        .unwrap();
        assert_eq!(&FLOW[place.span], "\"P\\u00e9\"");
    }

    #[test]
    fn a_duplicate_points_at_the_second_step_of_the_name() {
        let root = parse(FLOW).unwrap();
        let place = flow_problem(
            &root,
            &path(&["A"]),
            &ProblemKind::DuplicateStepName("A".into()),
            0,
        )
        .unwrap();
        assert_eq!(
            place.json_path.as_deref(),
            Some("$['steps'][2]['action']['name']")
        );
    }

    #[test]
    fn the_value_ending_at_an_offset_and_serde_positions() {
        let root = parse(FLOW).unwrap();
        let end = FLOW.find("\"F\"").unwrap() + 3;
        let place = root.ending_at(end).unwrap();
        assert_eq!(place.json_path.as_deref(), Some("$['name']"));
        assert_eq!(offset("ab\ncd", 2, 1), 4);
        assert!(parse("{\"a\": [1,]}").is_none());
        assert!(parse(&"[".repeat(MAX_DEPTH + 2)).is_none());
    }
}
