//! Bounds on untrusted input: flow and policy documents from users and admin screens, events
//! from commerce sites and 3PLs.
//!
//! Every bound has a documented default ([`Limits::default`]) and is set per engine through
//! [`Config::limits`](crate::Config). Documents are checked in stages, each bounded by the
//! one before: the size of the text first (nothing larger is parsed), then the parser's
//! own nesting bound, then every string's length on the parsed JSON, and finally the
//! structure — steps, branches, element nesting, rules, condition depth — on the typed
//! document, without recursion. No check allocates in proportion to a number a document
//! states. A flow or policy built in code meets the same structural checks when an engine
//! takes it ([`Engine::create_flow`](crate::Engine::create_flow),
//! [`Engine::create_policy`](crate::Engine::create_policy)), and an event when it is
//! submitted.
//!
//! A [`LimitError`] names the limit, its value, what was found, and the place.
//!
//! ```
//! use orderflow::limits::Limits;
//! use orderflow::flow::Flow;
//!
//! let tight = Limits::default().with_max_document_bytes(64);
//! let json = r#"{ "name": "A flow whose document is longer than sixty-four bytes", "steps": [] }"#;
//! let err = Flow::from_json_with(json, &tight).unwrap_err();
//! assert_eq!(err.kind(), orderflow::ErrorKind::Limit);
//! assert!(err.to_string().contains("max_document_bytes"));
//! ```

use std::fmt;

use crate::event::Event;
use crate::flow::{Flow, Step, StepPath};
use crate::rules::{Condition, PolicyDocument};

/// The bounds. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest flow or policy document (or policy bundle), in bytes. Default: 1 MiB.
    pub max_document_bytes: usize,
    /// Longest string anywhere in a document or event (names, values, ids), in bytes.
    /// Default: 4,096.
    pub max_string_bytes: usize,
    /// Most steps in one flow, nested ones included. Default: 1,000.
    pub max_steps: usize,
    /// Most branches of one Splitter or Splitter-Merge. Default: 64.
    pub max_branches: usize,
    /// Deepest nesting of elements (a Condition or Splitter inside another). Default: 16.
    pub max_nesting: usize,
    /// Most rules in one policy. Default: 256, which is also the compiler's cap
    /// ([`MAX_RULES`](crate::rules::MAX_RULES)): this limit can lower it, not raise it.
    pub max_rules: usize,
    /// Deepest nesting of a rule's conditions, the row itself counted. Default: 16, also
    /// the compiler's cap ([`MAX_CONDITION_DEPTH`](crate::rules::MAX_CONDITION_DEPTH)).
    pub max_condition_depth: usize,
    /// Largest event payload, serialized (as written, for events parsed from JSON), in
    /// bytes. Default: 64 KiB.
    pub max_payload_bytes: usize,
    /// Largest order document an event brings, serialized, in bytes. Default: 1 MiB.
    pub max_order_bytes: usize,
    /// Largest event document [`Event::from_json`](crate::Event::from_json) parses, in
    /// bytes. Default: 2 MiB (an order document and a payload at their limits).
    pub max_event_bytes: usize,
    /// Most events on one order's timeline: a submitted event past it is refused with a
    /// [`LimitError`] naming this limit (a queued one becomes a dead letter), so one order
    /// cannot grow, and slow down, without bound. Events the order's own steps raise are
    /// bounded by the journey limit instead. Default: 10,000.
    pub max_timeline_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_document_bytes: 1 << 20,
            max_string_bytes: 4_096,
            max_steps: 1_000,
            max_branches: 64,
            max_nesting: 16,
            max_rules: crate::rules::MAX_RULES,
            max_condition_depth: crate::rules::MAX_CONDITION_DEPTH,
            max_payload_bytes: 64 << 10,
            max_order_bytes: 1 << 20,
            max_event_bytes: 2 << 20,
            max_timeline_events: 10_000,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident: $ty:ty;)*) => {
        impl Limits {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`max_document_bytes`](Self::max_document_bytes).
    with_max_document_bytes: max_document_bytes: usize;
    /// Sets [`max_string_bytes`](Self::max_string_bytes).
    with_max_string_bytes: max_string_bytes: usize;
    /// Sets [`max_steps`](Self::max_steps).
    with_max_steps: max_steps: usize;
    /// Sets [`max_branches`](Self::max_branches).
    with_max_branches: max_branches: usize;
    /// Sets [`max_nesting`](Self::max_nesting).
    with_max_nesting: max_nesting: usize;
    /// Sets [`max_rules`](Self::max_rules).
    with_max_rules: max_rules: usize;
    /// Sets [`max_condition_depth`](Self::max_condition_depth).
    with_max_condition_depth: max_condition_depth: usize;
    /// Sets [`max_payload_bytes`](Self::max_payload_bytes).
    with_max_payload_bytes: max_payload_bytes: usize;
    /// Sets [`max_order_bytes`](Self::max_order_bytes).
    with_max_order_bytes: max_order_bytes: usize;
    /// Sets [`max_event_bytes`](Self::max_event_bytes).
    with_max_event_bytes: max_event_bytes: usize;
    /// Sets [`max_timeline_events`](Self::max_timeline_events).
    with_max_timeline_events: max_timeline_events: usize;
}

/// Input past a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitError {
    /// What was checked ("flow", "policy", "event").
    pub what: &'static str,
    /// The limit, by its field name in [`Limits`].
    pub limit: &'static str,
    /// Its value.
    pub max: usize,
    /// What was found.
    pub found: usize,
    /// Where: a JSON path, a step path, or a rule.
    pub place: String,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} over the limit {} = {} at {}: found {}",
            self.what, self.limit, self.max, self.place, self.found
        )
    }
}

impl std::error::Error for LimitError {}

fn over(
    what: &'static str,
    limit: &'static str,
    max: usize,
    found: usize,
    place: String,
) -> LimitError {
    LimitError {
        what,
        limit,
        max,
        found,
        place,
    }
}

/// Every string (keys included) of parsed JSON, without recursion, in memory proportional
/// to the nesting depth (a place is written out only for an error).
pub(crate) fn check_strings(
    what: &'static str,
    value: &serde_json::Value,
    limits: &Limits,
) -> Result<(), LimitError> {
    use serde_json::Value;
    /// An open container: its remaining children.
    enum Frame<'v> {
        Array(std::iter::Enumerate<std::slice::Iter<'v, Value>>),
        Object(serde_json::map::Iter<'v>),
    }
    /// Where a value sits in its parent.
    enum Seg<'v> {
        Index(usize),
        Key(&'v str),
    }
    fn place(segs: &[Seg<'_>], last: Option<&Seg<'_>>) -> String {
        let mut p = "$".to_owned();
        for seg in segs.iter().chain(last) {
            match seg {
                Seg::Index(i) => p.push_str(&format!("[{i}]")),
                Seg::Key(k) => {
                    p.push('.');
                    p.push_str(shorten(k));
                }
            }
        }
        p
    }
    let long = |s: &str| s.len() > limits.max_string_bytes;
    let mut frames: Vec<Frame<'_>> = Vec::new();
    // The segment of each open container but the root.
    let mut segs: Vec<Seg<'_>> = Vec::new();
    let mut next: Option<(&Value, Option<Seg<'_>>)> = Some((value, None));
    loop {
        if let Some((v, seg)) = next.take() {
            match v {
                Value::String(s) if long(s) => {
                    return Err(over(
                        what,
                        "max_string_bytes",
                        limits.max_string_bytes,
                        s.len(),
                        place(&segs, seg.as_ref()),
                    ));
                }
                Value::Array(items) => {
                    segs.extend(seg);
                    frames.push(Frame::Array(items.iter().enumerate()));
                }
                Value::Object(map) => {
                    segs.extend(seg);
                    frames.push(Frame::Object(map.iter()));
                }
                _ => {}
            }
        }
        let Some(frame) = frames.last_mut() else {
            return Ok(());
        };
        let child = match frame {
            Frame::Array(items) => items.next().map(|(i, v)| (v, Seg::Index(i))),
            Frame::Object(entries) => match entries.next() {
                Some((k, _)) if long(k) => {
                    return Err(over(
                        what,
                        "max_string_bytes",
                        limits.max_string_bytes,
                        k.len(),
                        format!("a key of {}", place(&segs, None)),
                    ));
                }
                Some((k, v)) => Some((v, Seg::Key(k.as_str()))),
                None => None,
            },
        };
        match child {
            Some((v, seg)) => next = Some((v, Some(seg))),
            None => {
                frames.pop();
                if !frames.is_empty() {
                    segs.pop();
                }
            }
        }
    }
}

/// A key as it appears in a place: long keys are cut (their length is the error).
fn shorten(key: &str) -> &str {
    let mut end = key.len().min(64);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// Steps, branches and element nesting of a flow, without recursion.
pub fn check_flow(flow: &Flow, limits: &Limits) -> Result<(), LimitError> {
    let long = |s: &str| s.len() > limits.max_string_bytes;
    if long(&flow.name) {
        return Err(over(
            "flow",
            "max_string_bytes",
            limits.max_string_bytes,
            flow.name.len(),
            "the flow's name".into(),
        ));
    }
    let mut steps = 0usize;
    // (sequence, its place, element nesting)
    let mut stack: Vec<(&[Step], StepPath, usize)> = vec![(&flow.steps, StepPath::default(), 0)];
    while let Some((sequence, path, depth)) = stack.pop() {
        for step in sequence {
            steps += 1;
            let here = path.child(step.name());
            if steps > limits.max_steps {
                return Err(over(
                    "flow",
                    "max_steps",
                    limits.max_steps,
                    steps,
                    here.to_string(),
                ));
            }
            if long(step.name()) {
                return Err(over(
                    "flow",
                    "max_string_bytes",
                    limits.max_string_bytes,
                    step.name().len(),
                    path.to_string(),
                ));
            }
            let nested = depth + 1;
            // An element opens paths one level deeper than its own sequence.
            if !matches!(step, Step::Action(_)) && nested > limits.max_nesting {
                return Err(over(
                    "flow",
                    "max_nesting",
                    limits.max_nesting,
                    nested,
                    here.to_string(),
                ));
            }
            match step {
                Step::Condition(c) | Step::ConditionMerge(c) => {
                    stack.push((&c.no, here.child("no"), nested));
                    stack.push((&c.yes, here.child("yes"), nested));
                }
                Step::Splitter(s) | Step::SplitterMerge(s) => {
                    if s.branches.len() > limits.max_branches {
                        return Err(over(
                            "flow",
                            "max_branches",
                            limits.max_branches,
                            s.branches.len(),
                            here.to_string(),
                        ));
                    }
                    for (name, branch) in s.branches.iter().rev() {
                        if long(name) {
                            return Err(over(
                                "flow",
                                "max_string_bytes",
                                limits.max_string_bytes,
                                name.len(),
                                here.to_string(),
                            ));
                        }
                        stack.push((branch, here.child(name), nested));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Rules and condition depth of a policy, without recursion.
pub fn check_policy(policy: &PolicyDocument, limits: &Limits) -> Result<(), LimitError> {
    if policy.name.len() > limits.max_string_bytes {
        return Err(over(
            "policy",
            "max_string_bytes",
            limits.max_string_bytes,
            policy.name.len(),
            "the policy's name".into(),
        ));
    }
    if policy.rules.len() > limits.max_rules {
        return Err(over(
            "policy",
            "max_rules",
            limits.max_rules,
            policy.rules.len(),
            format!("policy '{}'", policy.name),
        ));
    }
    for rule in &policy.rules {
        let place = || format!("policy '{}', rule '{}'", policy.name, shorten(&rule.name));
        if rule.name.len() > limits.max_string_bytes {
            return Err(over(
                "policy",
                "max_string_bytes",
                limits.max_string_bytes,
                rule.name.len(),
                place(),
            ));
        }
        let mut stack: Vec<(&Condition, usize)> = rule.condition.iter().map(|c| (c, 1)).collect();
        while let Some((condition, depth)) = stack.pop() {
            if depth > limits.max_condition_depth {
                return Err(over(
                    "policy",
                    "max_condition_depth",
                    limits.max_condition_depth,
                    depth,
                    place(),
                ));
            }
            match condition {
                Condition::And(cs) | Condition::Or(cs) => {
                    stack.extend(cs.iter().map(|c| (c, depth + 1)));
                }
                Condition::AnyLine(c) | Condition::AllLines(c) => stack.push((c, depth + 1)),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Counts bytes written, to measure a serialized size without keeping it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn serialized_size(value: &impl serde::Serialize) -> usize {
    let mut counter = Counter(0);
    // Writing to a counter cannot fail; a value that does not serialize counts as nothing.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// An event's strings, payload and order document.
pub fn check_event(event: &Event, limits: &Limits) -> Result<(), LimitError> {
    let id = event.id.0.as_str();
    let place = || format!("event '{}'", shorten(id));
    for (s, what) in [
        (id, "id"),
        (event.kind.as_str(), "kind"),
        (event.order.as_str(), "order"),
    ] {
        if s.len() > limits.max_string_bytes {
            return Err(over(
                "event",
                "max_string_bytes",
                limits.max_string_bytes,
                s.len(),
                format!("{} ({what})", place()),
            ));
        }
    }
    if let Some(record) = &event.record {
        let long = match record {
            crate::document::RecordId::Order => 0,
            crate::document::RecordId::Line(l) => l.as_str().len(),
            crate::document::RecordId::FulfillmentOrder(f)
            | crate::document::RecordId::FulfillmentOrderLine(f, _) => f.as_str().len(),
        };
        if long > limits.max_string_bytes {
            return Err(over(
                "event",
                "max_string_bytes",
                limits.max_string_bytes,
                long,
                format!("{} (record)", place()),
            ));
        }
    }
    let payload = serialized_size(&event.payload);
    if payload > limits.max_payload_bytes {
        return Err(over(
            "event",
            "max_payload_bytes",
            limits.max_payload_bytes,
            payload,
            place(),
        ));
    }
    check_strings("event", &event.payload, limits).map_err(|mut e| {
        e.place = format!("{} payload {}", place(), e.place);
        e
    })?;
    if let Some(order) = &event.document {
        check_order("event", order, limits, place)?;
    }
    Ok(())
}

/// Checks an order document within `limits`: every string, then its size. `what` is the
/// kind of input that brings it ("event", "order update"); `place` names that input.
pub(crate) fn check_order(
    what: &'static str,
    order: &crate::document::Order,
    limits: &Limits,
    place: impl Fn() -> String,
) -> Result<(), LimitError> {
    if let Some(long) = order_strings(order)
        .map(str::len)
        .find(|n| *n > limits.max_string_bytes)
    {
        return Err(over(
            what,
            "max_string_bytes",
            limits.max_string_bytes,
            long,
            format!("{} (order document)", place()),
        ));
    }
    let size = serialized_size(order);
    if size > limits.max_order_bytes {
        return Err(over(
            what,
            "max_order_bytes",
            limits.max_order_bytes,
            size,
            place(),
        ));
    }
    Ok(())
}

/// Parses a document within the limits on its text: the size first, then strings (and
/// `shape`, a check of the document's form) on the parsed JSON, then the typed value (each
/// parse keeps its line and column in errors), and finally that every record was written
/// as a JSON object: serde would otherwise take a struct from an array, by position.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned + serde::Serialize>(
    what: &'static str,
    json: &str,
    limits: &Limits,
    max_bytes: (&'static str, usize),
    shape: impl FnOnce(&serde_json::Value) -> Result<(), crate::Error>,
) -> Result<T, crate::Error> {
    if json.len() > max_bytes.1 {
        return Err(over(
            what,
            max_bytes.0,
            max_bytes.1,
            json.len(),
            "the document".into(),
        )
        .into());
    }
    let located = |e: serde_json::Error| crate::Error::Document {
        what,
        line: e.line(),
        column: e.column(),
        message: crate::error::json_message(&e),
    };
    let unlocated = |message: String| crate::Error::Document {
        what,
        line: 0,
        column: 0,
        message,
    };
    let value: serde_json::Value = serde_json::from_str(json).map_err(located)?;
    shape(&value)?;
    check_strings(what, &value, limits)?;
    let typed: T = serde_json::from_str(json).map_err(located)?;
    let written = serde_json::to_value(&typed).map_err(|e| unlocated(e.to_string()))?;
    objects_where_records(&value, &written).map_err(unlocated)?;
    Ok(typed)
}

/// A document error without a position in the text (the message names the place).
fn document_error(what: &'static str, message: String) -> crate::Error {
    crate::Error::Document {
        what,
        line: 0,
        column: 0,
        message,
    }
}

/// An event's payload and order document as written in its text, measured without building
/// them, so an oversize one is turned away in time and memory independent of its content.
pub(crate) fn event_text(json: &str, limits: &Limits) -> Result<(), crate::Error> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Parts<'a> {
        #[serde(borrow, default)]
        id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        payload: Option<&'a RawValue>,
        #[serde(borrow, default)]
        document: Option<&'a RawValue>,
    }
    if json.len() > limits.max_event_bytes {
        return Err(over(
            "event",
            "max_event_bytes",
            limits.max_event_bytes,
            json.len(),
            "the document".into(),
        )
        .into());
    }
    // A text that is not an event object is left to the full parse to report.
    let Ok(parts) = serde_json::from_str::<Parts<'_>>(json) else {
        return Ok(());
    };
    let id = parts.id.map_or("", |r| r.get().trim_matches('"'));
    let place = || format!("event '{}'", shorten(id));
    if let Some(payload) = parts.payload {
        let size = payload.get().len();
        if size > limits.max_payload_bytes {
            return Err(over(
                "event",
                "max_payload_bytes",
                limits.max_payload_bytes,
                size,
                place(),
            )
            .into());
        }
    }
    if let Some(document) = parts.document {
        let size = document.get().len();
        if size > limits.max_order_bytes {
            return Err(over(
                "event",
                "max_order_bytes",
                limits.max_order_bytes,
                size,
                place(),
            )
            .into());
        }
    }
    Ok(())
}

/// An event's order document as written in its text, and where it starts: its numbers are
/// decimals and must read as written (the payload is the host's and may hold any number).
pub(crate) fn event_document_text(json: &str) -> Option<(&str, usize)> {
    #[derive(serde::Deserialize)]
    struct Parts<'a> {
        #[serde(borrow, default)]
        document: Option<&'a serde_json::value::RawValue>,
    }
    let document = serde_json::from_str::<Parts<'_>>(json)
        .ok()?
        .document?
        .get();
    // The raw value borrows from `json`: its start is an offset into it.
    let offset = (document.as_ptr() as usize).checked_sub(json.as_ptr() as usize)?;
    Some((document, offset))
}

/// Compares a document as read with its typed value written back: where the typed value is
/// an object the document must have one, not an array.
fn objects_where_records(
    read: &serde_json::Value,
    written: &serde_json::Value,
) -> Result<(), String> {
    use serde_json::Value;
    let mut stack = vec![(read, written, "$".to_owned())];
    while let Some((r, w, path)) = stack.pop() {
        match (r, w) {
            (Value::Array(_), Value::Object(_)) => {
                return Err(format!(
                    "expected an object at {path}, found an array (records are written as objects with named fields)"
                ));
            }
            (Value::Object(r), Value::Object(w)) => {
                for (k, rv) in r {
                    if let Some(wv) = w.get(k) {
                        stack.push((rv, wv, format!("{path}.{}", shorten(k))));
                    }
                }
            }
            (Value::Array(r), Value::Array(w)) => {
                for (i, (rv, wv)) in r.iter().zip(w).enumerate() {
                    stack.push((rv, wv, format!("{path}[{i}]")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The step kinds a flow document writes, one per step object.
const STEP_KINDS: [&str; 5] = [
    "action",
    "condition",
    "condition_merge",
    "splitter",
    "splitter_merge",
];

/// The form and size of a flow document on its parsed JSON, before the typed flow is
/// built: each step an object with exactly one step kind (so a mistake reads as itself
/// rather than as the parser's complaint at a comma), and the step, branch and nesting
/// limits, checked as the walk goes so it never holds more than the limits allow.
pub(crate) fn flow_shape(value: &serde_json::Value, limits: &Limits) -> Result<(), crate::Error> {
    use serde_json::Value;
    // (a sequence, its place, element nesting)
    let mut stack: Vec<(&Value, String, usize)> = Vec::new();
    if let Some(steps) = value.get("steps") {
        stack.push((steps, "$.steps".to_owned(), 0));
    }
    let mut count = 0usize;
    while let Some((sequence, path, depth)) = stack.pop() {
        let Value::Array(steps) = sequence else {
            continue;
        };
        for (i, step) in steps.iter().enumerate() {
            count += 1;
            if count > limits.max_steps {
                return Err(over(
                    "flow",
                    "max_steps",
                    limits.max_steps,
                    count,
                    format!("{path}[{i}]"),
                )
                .into());
            }
            let Value::Object(map) = step else {
                continue;
            };
            if map.len() != 1 || !map.keys().all(|k| STEP_KINDS.contains(&k.as_str())) {
                let keys: Vec<String> = map.keys().map(|k| format!("`{}`", shorten(k))).collect();
                return Err(document_error(
                    "flow",
                    format!(
                        "a step has exactly one of `action`, `condition`, `condition_merge`, `splitter`, `splitter_merge`; found {} at {path}[{i}]",
                        if keys.is_empty() {
                            "none".to_owned()
                        } else {
                            keys.join(", ")
                        }
                    ),
                ));
            }
            for (kind, body) in map {
                let nested = body.get("yes").is_some()
                    || body.get("no").is_some()
                    || body.get("branches").is_some();
                if !nested {
                    continue;
                }
                let at = format!("{path}[{i}].{kind}");
                if depth + 1 > limits.max_nesting {
                    return Err(
                        over("flow", "max_nesting", limits.max_nesting, depth + 1, at).into(),
                    );
                }
                for key in ["yes", "no"] {
                    if let Some(seq) = body.get(key) {
                        stack.push((seq, format!("{at}.{key}"), depth + 1));
                    }
                }
                if let Some(Value::Object(branches)) = body.get("branches") {
                    if branches.len() > limits.max_branches {
                        return Err(over(
                            "flow",
                            "max_branches",
                            limits.max_branches,
                            branches.len(),
                            at,
                        )
                        .into());
                    }
                    for (name, seq) in branches {
                        stack.push((seq, format!("{at}.branches.{}", shorten(name)), depth + 1));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Every string of an order document, without serializing it.
fn order_strings(order: &crate::document::Order) -> impl Iterator<Item = &str> {
    use crate::document::{Address, Attributes, Value};
    fn opt(s: &Option<String>) -> Option<&str> {
        s.as_deref()
    }
    fn address(a: &Address) -> impl Iterator<Item = &str> {
        [
            &a.name,
            &a.street,
            &a.city,
            &a.state,
            &a.postal_code,
            &a.country,
        ]
        .into_iter()
        .filter_map(opt)
    }
    fn custom(c: &Attributes) -> impl Iterator<Item = &str> {
        c.iter().flat_map(|(k, v)| {
            let text = match v {
                Value::Text(t) => Some(t.as_str()),
                _ => None,
            };
            std::iter::once(k.as_str()).chain(text)
        })
    }
    let header = [
        &order.order_number,
        &order.external_order_id,
        &order.order_source,
        &order.customer,
        &order.currency,
        &order.company,
        &order.fulfillment_strategy,
    ]
    .into_iter()
    .filter_map(opt)
    .chain([order.id.as_str()])
    .chain(order.status_reason.as_ref().map(|r| r.as_str()))
    .chain(address(&order.ship_to))
    .chain(address(&order.bill_to))
    .chain(custom(&order.custom));
    let lines = order.lines.iter().flat_map(|l| {
        [
            &l.unit,
            &l.fulfillment_source,
            &l.shipping_warehouse,
            &l.split_group,
            &l.requested_delivery_date,
        ]
        .into_iter()
        .filter_map(opt)
        .chain([l.id.as_str(), l.product.as_str()])
        .chain(l.status_reason.as_ref().map(|r| r.as_str()))
        .chain(custom(&l.custom))
    });
    let fos = order.fulfillment_orders.iter().flat_map(|f| {
        [f.id.as_str(), f.fulfillment_source.as_str()]
            .into_iter()
            .chain(f.status_reason.as_ref().map(|r| r.as_str()))
            .chain(custom(&f.custom))
            .chain(f.lines.iter().flat_map(|l| {
                [l.order_line.as_str(), l.product.as_str()]
                    .into_iter()
                    .chain(l.status_reason.as_ref().map(|r| r.as_str()))
                    .chain(custom(&l.custom))
            }))
    });
    header.chain(lines).chain(fos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Order;
    use crate::flow::{ActionStep, ConditionStep};
    use crate::orchestration::ActionKind;
    use crate::rules::Rule;

    fn action(name: &str) -> Step {
        Step::Action(ActionStep::new(name, ActionKind::ValidateOrderHeader))
    }

    /// A flow built in code with `depth` Conditions inside each other.
    fn nested(depth: usize) -> Flow {
        let mut inner = vec![action("leaf")];
        for d in 0..depth {
            inner = vec![
                action(&format!("before {d}")),
                Step::Condition(ConditionStep {
                    name: format!("c{d}"),
                    yes: inner,
                    no: Vec::new(),
                }),
            ];
        }
        let mut flow: Flow =
            serde_json::from_value(serde_json::json!({ "name": "Deep", "steps": [] })).unwrap();
        flow.steps = inner;
        flow
    }

    #[test]
    fn flows_built_in_code_meet_the_structural_limits() {
        let limits = Limits::default();
        check_flow(&nested(16), &limits).unwrap();
        let e = check_flow(&nested(17), &limits).unwrap_err();
        assert_eq!((e.limit, e.max, e.found), ("max_nesting", 16, 17));
        assert!(e.place.starts_with("c16 / yes / c15"), "{}", e.place);
        assert!(e.place.ends_with("/ c0"), "{}", e.place);

        let many = {
            let mut flow = nested(0);
            flow.steps = (0..1_001).map(|i| action(&format!("s{i}"))).collect();
            flow
        };
        let e = check_flow(&many, &limits).unwrap_err();
        assert_eq!((e.limit, e.found), ("max_steps", 1_001));
        check_flow(&many, &limits.with_max_steps(2_000)).unwrap();
    }

    #[test]
    fn policies_and_events_meet_their_limits() {
        let limits = Limits::default()
            .with_max_rules(2)
            .with_max_condition_depth(3);
        let mut policy = PolicyDocument::new(
            "P",
            crate::policy::PolicyKind::Filter,
            crate::document::Entity::Order,
        );
        let deep = Condition::And(vec![Condition::Or(vec![Condition::And(vec![
            Condition::has_data("currency"),
        ])])]);
        policy = policy.with_rule(Rule::check("deep", deep));
        let e = check_policy(&policy, &limits).unwrap_err();
        assert_eq!((e.limit, e.found), ("max_condition_depth", 4));
        assert_eq!(e.place, "policy 'P', rule 'deep'");

        let event = Event::new("e-1", crate::event::EventKind::SHIPPED, "SO-1")
            .with_payload(serde_json::json!({ "note": "x".repeat(70_000) }));
        let e = check_event(&event, &Limits::default()).unwrap_err();
        assert_eq!(e.limit, "max_payload_bytes");
        let event = Event::new_order(Order::new("SO-1"));
        check_event(&event, &Limits::default()).unwrap();
        let e = check_event(&event, &Limits::default().with_max_order_bytes(10)).unwrap_err();
        assert_eq!(e.limit, "max_order_bytes");
    }
}
