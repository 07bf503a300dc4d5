//! Declarative policies: rules as data, the way order-management teams write them.
//!
//! A [`PolicyDocument`] mirrors the condition builder of Dynamics 365 Intelligent Order
//! Management: a name, a type (filter or execution), a criticality, the entity it applies to,
//! and rules. A rule is a [`Condition`] — nested `and`/`or` groups of *(field, operator,
//! value)* rows, with `any_line`/`all_lines` to test the lines of an order or of a fulfillment
//! order — and, in execution policies only, [`SetValue`] actions.
//!
//! ```json
//! {
//!   "name": "Fulfillment source assignment",
//!   "type": "execution",
//!   "criticality": "information",
//!   "entity": "order_line",
//!   "rules": [
//!     { "name": "Large", "condition": { "field": "quantity", "operator": ">=", "value": 100 },
//!       "actions": [ { "field": "fulfillment_source", "value": "Seattle store" } ] },
//!     { "name": "Small", "condition": { "field": "quantity", "operator": "<", "value": 100 },
//!       "actions": [ { "field": "fulfillment_source", "value": "Chicago store" } ] }
//!   ]
//! }
//! ```
//!
//! # Semantics
//!
//! - **Execution policies** (DESIGN §3 rule 8) evaluate their rules in order on each record. A
//!   rule with actions sets its values when its condition holds (later rules see them); a rule
//!   without actions is a **check**, and the policy fails on the record when a check does not
//!   hold. Every rule runs, also after a failed check (so Set Value rules still apply); the
//!   failure reason is that of the first failed check: the rule's `message`, or
//!   `rule '<name>' does not hold`.
//! - **Filter policies** admit a record when every rule's condition holds. They have no
//!   actions.
//! - **Missing values**: a row on a field with no value is false, except `not_equals` and
//!   `not_in`, which hold (nothing equals a missing value). `contains_data` tests presence:
//!   text must be non-empty.
//! - **Text** compares exactly (case-sensitive); ordering operators compare text and ISO dates
//!   by their characters, numbers numerically.
//! - **Numbers** are exact decimals ([`Decimal`](crate::Decimal)): `quantity >= 0.3` holds
//!   for a line of exactly 0.3, and Set Value writes the value as written. A number in a
//!   policy document is read as the decimal of its text (up to 15 significant digits as a
//!   JSON number; any decimal as `{"decimal": "<digits>"}`); one too large for a decimal is
//!   refused when the document is read, so NaN and infinity cannot be compared or set.
//! - **Quantifiers**: `any_line` over no lines is false; `all_lines` over no lines is true.
//! - A rule with no `condition` always holds (useful for unconditional Set Value).
//!
//! # Fields
//!
//! Every well-known field of the documents has a stable name (the table is [`fields`]):
//! `ship_to.country`, `quantity`, `fulfillment_source`, … Custom attributes are
//! `custom.<name>`; their type is the type of the value they are compared with. Field types
//! ([`FieldType`]) decide what may be compared: numbers with numbers, text and lookups with
//! text; ordering operators are rejected on lookups (sources, countries, statuses) because
//! those have no order.
//!
//! # Compiling
//!
//! [`PolicyDocument::compile`] checks everything once — every problem, each naming the
//! policy, rule and field — and yields a [`RulePolicy`]: a [`RuleFilter`], which implements
//! [`FilterPolicy`](crate::policy::FilterPolicy), or a [`RuleExecution`], which implements
//! [`ExecutionPolicy`](crate::policy::ExecutionPolicy). Conditions nest at most
//! [`Limits::max_nesting`](crate::limits::Limits::max_nesting) deep. The
//! compiled form reads fields directly through accessors chosen at compile time: evaluation
//! never serializes a document and allocates nothing unless it sets a value that changes.
//!
//! ```
//! use orderflow::document::{Order, OrderLine, RecordMut};
//! use orderflow::policy::ExecutionPolicy;
//! use orderflow::rules::PolicyDocument;
//!
//! let policy = PolicyDocument::from_json(r#"{
//!     "name": "Quantity at least 5",
//!     "type": "execution",
//!     "entity": "order_line",
//!     "rules": [ { "name": "Minimum", "condition":
//!         { "field": "quantity", "operator": ">=", "value": 5 } } ]
//! }"#)?
//! .compile()?;
//!
//! let mut line = OrderLine::new("1", "Pen", 1);
//! let check = policy.as_execution().expect("an execution policy");
//! assert!(!check.execute(RecordMut::Line(&mut line)).passed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Engines take rule policies through a lifecycle: [`Engine::create_policy`],
//! [`Engine::publish_policy`] (a new version each time), and flows pin the versions they were
//! published with.
//!
//! [`Engine::create_policy`]: crate::Engine::create_policy
//! [`Engine::publish_policy`]: crate::Engine::publish_policy

pub(crate) mod compile;
mod compiled;
mod document;
mod field;
mod limits;
mod problem;
mod record;
mod row;

pub use compiled::{RuleExecution, RuleFilter, RulePolicy};
pub use document::{
    Condition, Operand, Operator, PolicyDocument, PolicyRecord, PolicyStatus, Row, Rule, SetValue,
};
pub use field::{FieldInfo, FieldType, fields};
pub use problem::{PolicyError, RuleProblem, RuleProblemKind};

/// Most rules one policy may hold (also the default of
/// [`Limits::max_rules`](crate::limits::Limits::max_rules), which can lower it).
pub const MAX_RULES: usize = 256;
/// Most rows and groups in one policy, all rules together.
pub const MAX_CONDITIONS: usize = 4_096;
/// Most values in one `in`/`not_in` list.
pub const MAX_LIST: usize = 1_024;
/// Longest text value, in bytes.
pub const MAX_TEXT: usize = 4_096;
/// Largest policy document [`PolicyDocument::from_json`] accepts by default, in bytes
/// ([`Limits::max_document_bytes`](crate::limits::Limits::max_document_bytes) sets it).
pub const MAX_POLICY_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    #[test]
    fn the_rule_cap_is_the_default_limit() {
        assert_eq!(crate::limits::Limits::default().max_rules, super::MAX_RULES);
    }
}
