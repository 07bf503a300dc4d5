//! What a host needs to build an engine, publish flows, submit events and plug in its own
//! providers and stores, in one import.
//!
//! ```
//! use orderflow::prelude::*;
//! ```
//!
//! brings the engine and its configuration, the documents and events, flows and their
//! action steps, the policy helpers, the provider and store traits with the types their
//! methods take and return, [`async_trait`](macro@async_trait) (the attribute the async traits are written
//! with), [`Version`] (flow versions, from `semver`), [`Decimal`], [`Timestamp`] and
//! [`Duration`]. A host implementing [`Provider`] or [`Store`] needs no direct dependency on
//! `async-trait` or `semver`; the crate also re-exports them whole
//! ([`orderflow::async_trait`](macro@crate::async_trait), [`orderflow::semver`](mod@crate::semver)).
//!
//! The prelude's [`Result`] is the crate's, whose error type defaults to [`Error`]; it takes
//! another error type as its second parameter like the standard one, so
//! `Result<(), Box<dyn std::error::Error>>` still means what it says.
//!
//! The names a store implementation needs beyond the trait itself (`Commit`, `StoreError`,
//! …) stay in [`store`](crate::store), and the testkit in `testing` (feature `testing`).
//!
//! # A provider with nothing but the prelude
//!
//! ```
//! use orderflow::prelude::*;
//!
//! /// A 3PL that accepts every fulfillment order and refuses nothing else.
//! #[derive(Debug)]
//! struct Warehouse;
//!
//! #[async_trait]
//! impl Provider for Warehouse {
//!     fn name(&self) -> &str {
//!         "Contoso 3PL"
//!     }
//!     fn offers(&self) -> &[RequestKind] {
//!         &[RequestKind::SendFulfillmentOrder]
//!     }
//!     async fn call(
//!         &self,
//!         request: Request<'_>,
//!         cx: &CallContext<'_>,
//!     ) -> Result<Reply, ProviderError> {
//!         match request {
//!             // A real 3PL gets `cx.idempotency_key` as its request id.
//!             Request::SendFulfillmentOrder { .. } if !cx.idempotency_key.is_empty() => {
//!                 Ok(Reply::Done)
//!             }
//!             other => Err(ProviderError::rejected(format!("unexpected {:?}", other.kind()))),
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::builder()
//!     .store(MemoryStore::new())
//!     .provider(Warehouse)
//!     .config(Config::default().with_timeout(Duration::from_secs(5)))
//!     .build()
//!     .await?;
//! let flow = Flow::builder("Ship")
//!     .version(Version::new(1, 0, 0))
//!     .steps(|s| {
//!         s.action(
//!             ActionStep::new("Source", ActionKind::AssignFulfillmentSource)
//!                 .input_event(EventKind::NEW_ORDER),
//!         )
//!         .action(ActionStep::new("Ship", ActionKind::SendToFulfillment).provider("Contoso 3PL"))
//!     })
//!     .build()?;
//! engine.create_flow(flow).await?;
//! engine.publish("Ship").await?;
//!
//! let order = Order::new("SO-1").with_line(
//!     OrderLine::new("1", "Surface Pen", Decimal::new(25, 1)).with_fulfillment_source("Seattle"),
//! );
//! engine.submit(Event::new_order(order)).await?;
//! let journey = engine.journey("SO-1").await?;
//! assert_eq!(journey.outcome("Ship"), Some(Outcome::Succeeded));
//! # Ok(())
//! # }
//! ```

pub use std::time::Duration;

pub use async_trait::async_trait;
pub use semver::Version;

pub use crate::action::{Action, ActionContext, ActionError, Sourcing, action_fn};
pub use crate::clock::{Clock, ManualClock, Timestamp};
pub use crate::document::{
    AsOrderId, Decimal, Entity, FulfillmentOrder, Order, OrderId, OrderLine, RecordMut, RecordRef,
    StatusReason,
};
pub use crate::engine::{Config, Engine, Receipt};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::event::{Event, EventKind};
pub use crate::flow::{ActionStep, Flow, FlowStatus, RetryPolicy};
pub use crate::journey::{Journey, Outcome};
pub use crate::orchestration::ActionKind;
pub use crate::policy::{
    Check, Criticality, ExecutionPolicy, FilterPolicy, Policy, execution_fn, filter_fn,
};
pub use crate::provider::{
    Allocation, CallContext, FulfillmentPlan, MemoryProvider, PlannedLine, Provider, ProviderError,
    ProviderErrorKind, Reply, Request, RequestKind,
};
pub use crate::rules::PolicyDocument;
pub use crate::store::{MemoryStore, Store};
