//! Identifiers of orders and their records.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Identifies an order (the sales order header); unique within a store.
///
/// Shared text: the engine copies an order's id into its indexes, locks, executions and
/// commits, and a copy is a reference count, not an allocation. Build one from text with
/// [`From`] (`OrderId::from("SO-1")`, `"SO-1".into()`); read it with
/// [`as_str`](Self::as_str) or [`Display`](fmt::Display).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(std::sync::Arc<str>);

impl OrderId {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for OrderId {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl From<String> for OrderId {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl From<OrderId> for String {
    fn from(id: OrderId) -> Self {
        id.0.as_ref().to_owned()
    }
}

impl std::borrow::Borrow<str> for OrderId {
    fn borrow(&self) -> &str {
        &self.0
    }
}
/// An order id as the engine's order calls take it ([`Engine::order`], [`Engine::journey`],
/// [`Engine::restore`], …): text (`"SO-1"`, a `&String`) or an [`OrderId`], by value or by
/// reference, so `engine.order("SO-1")` and `engine.order(&id)` both read.
///
/// An [`OrderId`] is lent as it is; text becomes an [`OrderId`] once per call (one small
/// allocation, on reads and administration only: [`Engine::submit`] takes the id inside its
/// [`Event`](crate::Event)). A host's own wrappers can take `impl AsOrderId` the same way.
///
/// `engine.order(&"SO-1".into())` names no type to convert to: write `engine.order("SO-1")`.
///
/// ```
/// use orderflow::document::{AsOrderId, OrderId};
///
/// fn show(order: impl AsOrderId) -> String {
///     order.as_order_id().to_string()
/// }
/// let id = OrderId::from("SO-1");
/// assert_eq!(show("SO-1"), "SO-1");
/// assert_eq!(show(&id), "SO-1");
/// assert_eq!(show(&String::from("SO-1")), "SO-1");
/// assert_eq!(show(id), "SO-1");
/// ```
///
/// [`Engine::order`]: crate::Engine::order
/// [`Engine::journey`]: crate::Engine::journey
/// [`Engine::restore`]: crate::Engine::restore
/// [`Engine::submit`]: crate::Engine::submit
pub trait AsOrderId {
    /// The id: borrowed when `self` is an [`OrderId`], built from the text otherwise.
    fn as_order_id(&self) -> Cow<'_, OrderId>;
}

impl AsOrderId for OrderId {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        Cow::Borrowed(self)
    }
}

impl AsOrderId for str {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        Cow::Owned(OrderId::from(self))
    }
}

impl AsOrderId for String {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        Cow::Owned(OrderId::from(self.as_str()))
    }
}

impl<T: AsOrderId + ?Sized> AsOrderId for &T {
    fn as_order_id(&self) -> Cow<'_, OrderId> {
        (**self).as_order_id()
    }
}

id_type!(
    /// Identifies a line within its order.
    LineId
);
id_type!(
    /// Identifies a fulfillment order within its order.
    FulfillmentOrderId
);
