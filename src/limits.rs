//! Bounds on untrusted input: flow and policy documents from users and admin screens, events
//! from commerce sites and 3PLs.
//!
//! Every bound has a documented default ([`Limits::default`]) and is set per engine through
//! [`Config::limits`](crate::Config). Documents are checked in stages, each bounded by the
//! one before: the size of the text first (nothing larger is parsed), then the parser's
//! own nesting bound, then every string's length on the parsed JSON, and finally the
//! structure — steps, branches, nesting, rules — on the typed document, without recursion.
//! No check allocates in proportion to a number a document states. A flow or policy built
//! in code meets the same structural checks when an engine takes it
//! ([`Engine::create_flow`](crate::Engine::create_flow),
//! [`Engine::create_policy`](crate::Engine::create_policy)), and an event when it is
//! submitted.
//!
//! This module holds the bounds and their error; each document checks itself beside its
//! type: [`Flow::check_limits`](crate::flow::Flow::check_limits),
//! [`PolicyDocument::check_limits`](crate::rules::PolicyDocument::check_limits),
//! [`Event::check_limits`](crate::Event::check_limits).
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
    /// Deepest nesting in a flow or policy document, the one bound on every walk of a
    /// document's tree. In a flow: elements inside elements (a Condition or Splitter at the
    /// top of the flow is level 1, one in its branch level 2). In a policy: a rule's
    /// conditions, the row itself counted (a row alone is level 1, a row inside one
    /// `and`/`or`/`any_line`/`all_lines` level 2). Default: 16.
    ///
    /// Parsing refuses a document past it ([`LimitError`]); validation
    /// ([`flow::validate_with`](crate::flow::validate_with)), analysis and the rule compiler
    /// ([`PolicyDocument::compile_with`](crate::rules::PolicyDocument::compile_with)) never
    /// look deeper, so a document built in code past it is a problem they report, not a
    /// deep recursion. A document parsed from JSON is also held by the parser's own bound
    /// (128 nested arrays and objects), whatever this value.
    pub max_nesting: usize,
    /// Most rules in one policy. Default: 256, which is also the compiler's cap
    /// ([`MAX_RULES`](crate::rules::MAX_RULES)): this limit can lower it, not raise it.
    pub max_rules: usize,
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
            max_rules: 256,
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

impl LimitError {
    /// `what` (a flow, a policy, an event) past `limit` (of value `max`) at `place`.
    pub(crate) fn new(
        what: &'static str,
        limit: &'static str,
        max: usize,
        found: usize,
        place: String,
    ) -> Self {
        Self {
            what,
            limit,
            max,
            found,
            place,
        }
    }
}
