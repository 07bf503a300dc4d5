//! What lives in the host's code rather than in files: policies written in Rust, the
//! providers and custom actions the host registers, events that come from outside. Given on
//! the command line (`--policy NAME:filter|execution:ENTITY`, `--provider`,
//! `--custom-action`, `--external-event`) or in a declarations file (`--declarations`):
//!
//! ```json
//! {
//!   "policies": [
//!     { "name": "Filter Policy – BigCommerce", "type": "filter", "entity": "order" },
//!     { "name": "Order header Validation Policy", "type": "execution", "entity": "order" }
//!   ],
//!   "providers": ["Contoso 3PL"],
//!   "custom_actions": ["Reserve stock"],
//!   "external_events": ["Shipped"]
//! }
//! ```
//!
//! Every member is optional. Providers and custom actions are checked only when some are
//! declared: with none, every one a flow names is assumed to exist.

use std::path::Path;

use orderflow::document::Entity;
use orderflow::policy::PolicyKind;
use serde::Deserialize;

use crate::Failure;
use crate::diagnostic::{Diagnostic, Reporter};
use crate::input::{self, Input};

/// A policy that lives in code: its name, type and entity are all validation needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodePolicy {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: PolicyKind,
    pub(crate) entity: Entity,
}

/// Everything declared, from the command line and the declarations file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Declarations {
    #[serde(default)]
    pub(crate) policies: Vec<CodePolicy>,
    #[serde(default)]
    pub(crate) providers: Vec<String>,
    #[serde(default)]
    pub(crate) custom_actions: Vec<String>,
    #[serde(default)]
    pub(crate) external_events: Vec<String>,
}

impl Declarations {
    /// Adds a declarations file's contents; a file that does not parse is reported at its
    /// place.
    pub(crate) fn read(&mut self, path: &Path, out: &mut Reporter) -> Result<(), Failure> {
        let text = input::read(path, Input::Document, out)?;
        let file: Self = serde_json::from_str(&text).map_err(|e| {
            let root = crate::span::parse(&text);
            out.emit(
                Diagnostic::error("invalid-declarations", input::json_message(&e))
                    .in_file(path)
                    .at(input::syntax_place(
                        &text,
                        e.line(),
                        e.column(),
                        root.as_ref(),
                    ))
                    .help(
                        "a declarations file is a JSON object with \"policies\" \
                         ([{\"name\", \"type\", \"entity\"}]), \"providers\", \
                         \"custom_actions\" and \"external_events\" (lists of names)",
                    ),
            );
            Failure::Invalid
        })?;
        self.policies.extend(file.policies);
        self.providers.extend(file.providers);
        self.custom_actions.extend(file.custom_actions);
        self.external_events.extend(file.external_events);
        Ok(())
    }
}

/// Parses `--policy NAME:filter|execution:ENTITY`. The name may hold colons: the type and
/// entity are the last two parts.
pub(crate) fn parse_policy(spec: &str) -> Result<CodePolicy, String> {
    let mut parts = spec.rsplitn(3, ':');
    let (Some(entity), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected NAME:TYPE:ENTITY, e.g. 'Ship-to US:execution:order'".into());
    };
    if name.trim().is_empty() {
        return Err("the policy's name is empty".into());
    }
    let kind = match kind {
        "filter" => PolicyKind::Filter,
        "execution" => PolicyKind::Execution,
        other => {
            return Err(format!(
                "'{other}' is not a policy type: use filter or execution"
            ));
        }
    };
    let entity = match entity {
        "order" => Entity::Order,
        "order_line" => Entity::OrderLine,
        "fulfillment_order" => Entity::FulfillmentOrder,
        "fulfillment_order_line" => Entity::FulfillmentOrderLine,
        other => {
            return Err(format!(
                "'{other}' is not an entity: use order, order_line, fulfillment_order or \
                 fulfillment_order_line"
            ));
        }
    };
    Ok(CodePolicy {
        name: name.to_owned(),
        kind,
        entity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_declaration_splits_from_the_right() {
        let p = parse_policy("Ship: US:execution:order_line").unwrap();
        assert_eq!(p.name, "Ship: US");
        assert_eq!(p.kind, PolicyKind::Execution);
        assert_eq!(p.entity, Entity::OrderLine);
        assert!(
            parse_policy("P:filter")
                .unwrap_err()
                .contains("NAME:TYPE:ENTITY")
        );
        assert!(
            parse_policy("P:check:order")
                .unwrap_err()
                .contains("filter or execution")
        );
        assert!(
            parse_policy("P:filter:line")
                .unwrap_err()
                .contains("order_line")
        );
        assert!(parse_policy(":filter:order").unwrap_err().contains("empty"));
    }
}
