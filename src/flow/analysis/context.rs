//! What the analysis knows besides the flow itself.

use indexmap::IndexMap;

use crate::event::EventKind;
use crate::flow::Flow;
use crate::limits::Limits;
use crate::rules::PolicyDocument;

/// What the analysis knows besides the flow itself.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Rule policies by name (code-registered policies are opaque: analysis says "cannot
    /// tell").
    pub policies: &'a IndexMap<String, PolicyDocument>,
    /// The other published flows, for the "two flows start on the same event" check. A flow
    /// of the analyzed flow's name is skipped.
    pub flows: &'a [Flow],
    /// Event kinds the host says come from outside (e.g. "Shipped").
    pub external_events: &'a [EventKind],
    /// How deep the analysis looks into elements and conditions: an engine's
    /// [`Limits::max_nesting`], the default one unless [`with_limits`](Self::with_limits)
    /// says otherwise.
    pub max_nesting: usize,
}

impl<'a> Context<'a> {
    /// A context of rule policies, other flows and events the host submits.
    pub fn new(
        policies: &'a IndexMap<String, PolicyDocument>,
        flows: &'a [Flow],
        external_events: &'a [EventKind],
    ) -> Self {
        Self {
            policies,
            flows,
            external_events,
            max_nesting: Limits::default().max_nesting,
        }
    }

    /// Looks as deep as `limits` let a document nest.
    pub fn with_limits(mut self, limits: &Limits) -> Self {
        self.max_nesting = limits.max_nesting;
        self
    }
}
