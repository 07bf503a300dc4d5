//! Orchestration types: which action kinds and elements a flow may use.
//!
//! Every flow names its type. [`OrderOrchestration`] ships: the eight action kinds of
//! Intelligent Order Management's order orchestration and all four elements. A host adds its
//! own types (inventory, returns) by implementing [`OrchestrationType`] and registering it
//! with the engine.
//!
//! # Contract
//!
//! The engine asks the type at publish, once per action and element; a flow using something
//! the type refuses does not publish. Answers must not change for the life of the engine.
//!
//! ```
//! use orderflow::flow::ElementKind;
//! use orderflow::orchestration::{ActionKind, OrchestrationType};
//!
//! /// Returns: validation and custom actions, no splitting.
//! #[derive(Debug)]
//! struct Returns;
//!
//! impl OrchestrationType for Returns {
//!     fn name(&self) -> &str {
//!         "Returns"
//!     }
//!     fn allows_action(&self, kind: ActionKind) -> bool {
//!         matches!(kind, ActionKind::ValidateOrderHeader | ActionKind::Custom)
//!     }
//!     fn allows_element(&self, element: ElementKind) -> bool {
//!         matches!(element, ElementKind::Condition | ElementKind::ConditionMerge)
//!     }
//! }
//! assert!(!Returns.allows_action(ActionKind::SendToDom));
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::provider::RequestKind;

/// The name of the orchestration type every flow gets unless it names another.
pub const ORDER_ORCHESTRATION: &str = "Order orchestration";

/// The four flow elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    /// Yes/no paths that do not merge.
    Condition,
    /// Yes/no paths that merge again.
    ConditionMerge,
    /// Named branches that do not merge.
    Splitter,
    /// Named branches that merge again.
    SplitterMerge,
}

impl fmt::Display for ElementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Condition => "Condition",
            Self::ConditionMerge => "Condition-Merge",
            Self::Splitter => "Splitter",
            Self::SplitterMerge => "Splitter-Merge",
        })
    }
}

/// What an action step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionKind {
    /// Runs execution policies on the order header; sets "Order Validation Success" or
    /// "Order Validation Failed".
    ValidateOrderHeader,
    /// Runs execution policies on each line; a failing line fails the order's validation.
    ValidateOrderLine,
    /// Sends the order to the fulfillment determination (DOM) provider, which returns a
    /// fulfillment plan; fulfillment orders are created from it, one per source, each with
    /// an id the order does not have yet. Fulfillment orders already on the order are left
    /// as they are.
    SendToDom,
    /// Execution policies set each line's fulfillment source; one fulfillment order is
    /// created per source, as for [`SendToDom`](Self::SendToDom).
    AssignFulfillmentSource,
    /// Sends each active fulfillment order the step took to the step's fulfillment provider,
    /// once per step: a durable retry or a reprocess sends only what the provider did not
    /// take ([`ActionContext::called_before`](crate::ActionContext::called_before)); another
    /// step sends to its own provider whatever a status reason says. A run that sends
    /// nothing says why on its journey entry.
    SendToFulfillment,
    /// Sends the order to the ERP (finance and operations), which determines fulfillment.
    #[serde(rename = "send_to_fulfillment_erp")]
    SendToFulfillmentErp,
    /// Sends the order to the billing provider.
    SendToInvoice,
    /// A host action registered by name.
    Custom,
}

impl ActionKind {
    /// Every built-in kind, in the order the designer lists them.
    pub const ALL: [Self; 8] = [
        Self::ValidateOrderHeader,
        Self::ValidateOrderLine,
        Self::SendToDom,
        Self::AssignFulfillmentSource,
        Self::SendToFulfillment,
        Self::SendToFulfillmentErp,
        Self::SendToInvoice,
        Self::Custom,
    ];

    /// The provider request this kind sends, if it calls a provider by itself.
    pub fn request(self) -> Option<RequestKind> {
        match self {
            Self::SendToDom => Some(RequestKind::DetermineFulfillment),
            Self::SendToFulfillment => Some(RequestKind::SendFulfillmentOrder),
            Self::SendToFulfillmentErp => Some(RequestKind::SendToErp),
            Self::SendToInvoice => Some(RequestKind::SendInvoice),
            _ => None,
        }
    }

    /// The event raised when a step of this kind succeeds (`None` for custom steps, which
    /// raise `<step name> has Succeeded`).
    pub fn succeeded_event(self) -> Option<EventKind> {
        Some(match self {
            Self::ValidateOrderHeader => EventKind::ORDER_HEADER_VALIDATION_SUCCEEDED,
            Self::ValidateOrderLine => EventKind::ORDER_LINES_VALIDATION_SUCCEEDED,
            Self::SendToDom => EventKind::SENT_TO_FULFILLMENT_DETERMINATION,
            Self::AssignFulfillmentSource => EventKind::FULFILLMENT_SOURCE_ASSIGNED,
            Self::SendToFulfillment => EventKind::SENT_TO_FULFILLMENT,
            Self::SendToFulfillmentErp => EventKind::SENT_TO_ERP,
            Self::SendToInvoice => EventKind::SENT_TO_INVOICE,
            Self::Custom => return None,
        })
    }

    /// The event raised when a step of this kind fails (`None` for custom steps, which raise
    /// `<step name> has Failed`).
    pub fn failed_event(self) -> Option<EventKind> {
        Some(match self {
            Self::ValidateOrderHeader => EventKind::ORDER_HEADER_VALIDATION_FAILED,
            Self::ValidateOrderLine => EventKind::ORDER_LINES_VALIDATION_FAILED,
            Self::SendToDom => EventKind::SEND_TO_FULFILLMENT_DETERMINATION_FAILED,
            Self::AssignFulfillmentSource => EventKind::FULFILLMENT_SOURCE_ASSIGNMENT_FAILED,
            Self::SendToFulfillment => EventKind::SEND_TO_FULFILLMENT_FAILED,
            Self::SendToFulfillmentErp => EventKind::SEND_TO_ERP_FAILED,
            Self::SendToInvoice => EventKind::SEND_TO_INVOICE_FAILED,
            Self::Custom => return None,
        })
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ValidateOrderHeader => "Validate Order Header",
            Self::ValidateOrderLine => "Validate Order Line",
            Self::SendToDom => "Send to DOM",
            Self::AssignFulfillmentSource => "Assign Fulfillment Source",
            Self::SendToFulfillment => "Send to Fulfillment",
            Self::SendToFulfillmentErp => "Send to Fulfillment – ERP",
            Self::SendToInvoice => "Send to Invoice",
            Self::Custom => "Custom",
        })
    }
}

/// Decides which action kinds and elements flows of a type may use.
///
/// See the [module docs](self) for the contract and an implementation.
pub trait OrchestrationType: Send + Sync + fmt::Debug + 'static {
    /// The name flows use in `orchestration_type`.
    fn name(&self) -> &str;
    /// Whether flows of this type may use actions of `kind`.
    fn allows_action(&self, kind: ActionKind) -> bool;
    /// Whether flows of this type may use `element`.
    fn allows_element(&self, element: ElementKind) -> bool;
}

impl<T: OrchestrationType + ?Sized> OrchestrationType for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn allows_action(&self, kind: ActionKind) -> bool {
        (**self).allows_action(kind)
    }
    fn allows_element(&self, element: ElementKind) -> bool {
        (**self).allows_element(element)
    }
}

impl<T: OrchestrationType + ?Sized> OrchestrationType for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn allows_action(&self, kind: ActionKind) -> bool {
        (**self).allows_action(kind)
    }
    fn allows_element(&self, element: ElementKind) -> bool {
        (**self).allows_element(element)
    }
}

/// "Order orchestration": order capture to fulfillment and billing. Allows every built-in
/// action kind and every element.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderOrchestration;

impl OrchestrationType for OrderOrchestration {
    fn name(&self) -> &str {
        ORDER_ORCHESTRATION
    }
    fn allows_action(&self, kind: ActionKind) -> bool {
        ActionKind::ALL.contains(&kind)
    }
    fn allows_element(&self, _element: ElementKind) -> bool {
        true
    }
}

const _: Option<&dyn OrchestrationType> = None;
