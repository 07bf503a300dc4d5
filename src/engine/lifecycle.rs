//! The lifecycle of flows and rule policies: create, edit, publish, pause, resume and stop,
//! each decided on the catalog as the store has it now.

use std::sync::{Arc, PoisonError};

use indexmap::IndexMap;
use semver::Version;

use super::Engine;
use super::catalog::CatalogProblem;
use super::plan;
use crate::error::{Error, Result};
use crate::event::EventKind;
use crate::flow::{Flow, FlowStatus};
use crate::rules::{PolicyDocument, PolicyRecord, PolicyStatus};

impl Engine {
    /// Every flow definition, in creation order.
    pub fn flows(&self) -> Vec<Flow> {
        self.inner.read_catalog().flows.values().cloned().collect()
    }

    /// A flow definition by name.
    pub fn flow(&self, name: &str) -> Option<Flow> {
        self.inner.read_catalog().flows.get(name).cloned()
    }

    /// Creates an unpublished flow. Its structure is checked at publish, so a draft may be
    /// incomplete; its name must be new and not empty.
    pub async fn create_flow(&self, mut flow: Flow) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        if flow.name.trim().is_empty() {
            return Err(Error::Validation(crate::flow::ValidationError {
                flow: flow.name,
                problems: vec![crate::flow::Problem {
                    path: crate::flow::StepPath::default(),
                    kind: crate::flow::ProblemKind::EmptyName,
                }],
            }));
        }
        flow.check_limits(&self.inner.config.limits)?;
        if self.inner.read_catalog().flows.contains_key(&flow.name) {
            return Err(Error::FlowExists(flow.name));
        }
        flow.created_on = Some(self.inner.clock.now());
        flow.status = FlowStatus::Unpublished;
        flow.last_published = None;
        flow.policy_versions = IndexMap::new();
        self.inner.store.save_flow(&flow, false).await?;
        self.inner
            .write_catalog()
            .flows
            .insert(flow.name.clone(), flow);
        Ok(())
    }

    /// Replaces an unpublished flow's definition (steps, description, type, version).
    /// A published or paused flow must be stopped first.
    pub async fn update_flow(&self, flow: Flow) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        flow.check_limits(&self.inner.config.limits)?;
        let current = self.current(&flow.name)?;
        if current.status != FlowStatus::Unpublished {
            return Err(Error::FlowStatus {
                flow: flow.name,
                status: current.status,
                operation: "edit",
            });
        }
        let updated = Flow {
            created_on: current.created_on,
            status: FlowStatus::Unpublished,
            last_published: current.last_published,
            policy_versions: IndexMap::new(),
            ..flow
        };
        self.inner.store.save_flow(&updated, false).await?;
        self.inner
            .write_catalog()
            .flows
            .insert(updated.name.clone(), updated);
        Ok(())
    }

    fn current(&self, name: &str) -> Result<Flow> {
        self.flow(name)
            .ok_or_else(|| Error::UnknownFlow(name.to_owned()))
    }

    /// Validates an unpublished flow and freezes it at its version, which must be greater
    /// than the last published one. New executions start on this version; running ones stay
    /// on theirs.
    pub async fn publish(&self, name: &str) -> Result<Version> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        let mut flow = self.current(name)?;
        if flow.status != FlowStatus::Unpublished {
            return Err(Error::FlowStatus {
                flow: flow.name,
                status: flow.status,
                operation: "publish",
            });
        }
        if let Some(last) = &flow.last_published {
            if flow.version <= *last {
                return Err(Error::VersionNotGreater {
                    flow: flow.name,
                    version: flow.version,
                    last: last.clone(),
                });
            }
        }
        flow.status = FlowStatus::Published;
        flow.last_published = Some(flow.version.clone());
        let mut pins = IndexMap::new();
        let plan = {
            let catalog = self.inner.read_catalog();
            let mut resolve = |name: &str| catalog.resolve_latest(name, &mut pins);
            plan::compile(
                &flow,
                &self.inner.registry,
                &mut resolve,
                &self.inner.config,
            )?
        };
        flow.policy_versions = pins;
        self.inner.store.save_flow(&flow, true).await?;
        let version = flow.version.clone();
        let mut catalog = self.inner.write_catalog();
        catalog
            .plans
            .insert((flow.name.clone(), version.clone()), Arc::new(plan));
        catalog.flows.insert(flow.name.clone(), flow);
        catalog.reroute();
        Ok(version)
    }

    async fn set_status(
        &self,
        name: &str,
        from: &[FlowStatus],
        to: FlowStatus,
        operation: &'static str,
    ) -> Result<FlowStatus> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        let mut flow = self.current(name)?;
        if !from.contains(&flow.status) {
            return Err(Error::FlowStatus {
                flow: flow.name,
                status: flow.status,
                operation,
            });
        }
        let was = flow.status;
        flow.status = to;
        if was == FlowStatus::Paused {
            // Recorded before the change is saved: if this call is dropped past the save,
            // the background workers still run what queued while the flow was paused.
            self.inner.request_recovery();
        }
        self.inner.store.save_flow(&flow, false).await?;
        let mut catalog = self.inner.write_catalog();
        catalog.flows.insert(flow.name.clone(), flow);
        catalog.reroute();
        Ok(was)
    }

    /// Runs what waited on a flow that is no longer paused: on a shared store, every live
    /// order is made ready for whichever instance claims it; otherwise this instance runs
    /// them.
    pub(super) async fn after_unpause(&self) -> Result<()> {
        match &self.inner.shared {
            Some(shared) => {
                for order in self.inner.store.live_orders().await? {
                    shared.wake(&order).await?;
                }
            }
            None => {
                self.recover().await?;
            }
        }
        Ok(())
    }

    /// Stops a published or paused flow: it starts no new executions; running ones (paused
    /// ones included) finish on their pinned version. The flow becomes editable.
    pub async fn stop(&self, name: &str) -> Result<()> {
        // The status it had is read under the same lock as the change: a pause racing
        // this stop is either refused or seen here.
        let was = self
            .set_status(
                name,
                &[FlowStatus::Published, FlowStatus::Paused],
                FlowStatus::Unpublished,
                "stop",
            )
            .await?;
        if was == FlowStatus::Paused {
            self.after_unpause().await?;
        }
        Ok(())
    }

    /// Pauses a published flow: none of its executions moves, and events that would start
    /// or advance them queue until [`resume`](Self::resume).
    pub async fn pause(&self, name: &str) -> Result<()> {
        self.set_status(name, &[FlowStatus::Published], FlowStatus::Paused, "pause")
            .await
            .map(drop)
    }

    /// Resumes a paused flow and runs what queued while it was paused (on a shared store:
    /// makes those orders ready for the workers of every instance).
    pub async fn resume(&self, name: &str) -> Result<()> {
        self.set_status(name, &[FlowStatus::Paused], FlowStatus::Published, "resume")
            .await?;
        self.after_unpause().await
    }

    /// The rule policies, in creation order.
    pub fn policies(&self) -> Vec<PolicyRecord> {
        self.inner
            .read_catalog()
            .policies
            .values()
            .cloned()
            .collect()
    }

    /// The rule policy with this name.
    pub fn policy(&self, name: &str) -> Option<PolicyRecord> {
        self.inner.read_catalog().policies.get(name).cloned()
    }

    /// A published version of a rule policy, as it was published.
    pub async fn policy_version(&self, name: &str, version: u32) -> Result<Option<PolicyDocument>> {
        Ok(self.inner.store.policy_version(name, version).await?)
    }

    /// Creates an unpublished rule policy. Its rules are checked at publish, so a draft may
    /// be incomplete; its name must be new (among rule policies and policies registered in
    /// code) and not empty.
    pub async fn create_policy(&self, document: PolicyDocument) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        if document.name.trim().is_empty() {
            return Err(Error::Policy(crate::rules::PolicyError {
                policy: document.name,
                problems: vec![crate::rules::RuleProblem {
                    rule: None,
                    field: None,
                    kind: crate::rules::RuleProblemKind::EmptyName,
                }],
            }));
        }
        document.check_limits(&self.inner.config.limits)?;
        if self.inner.registry.policies.contains_key(&document.name)
            || self
                .inner
                .read_catalog()
                .policies
                .contains_key(&document.name)
        {
            return Err(Error::PolicyExists(document.name));
        }
        let record = PolicyRecord::new(document, Some(self.inner.clock.now()));
        self.inner.store.save_policy(&record, false).await?;
        self.inner
            .write_catalog()
            .policies
            .insert(record.name().to_owned(), record);
        Ok(())
    }

    /// Replaces a rule policy's draft. Published versions never change: flows keep the
    /// versions they were published with, and the draft is used once it is published.
    pub async fn update_policy(&self, document: PolicyDocument) -> Result<()> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        document.check_limits(&self.inner.config.limits)?;
        let Some(mut record) = self.policy(&document.name) else {
            return Err(Error::UnknownPolicy(document.name));
        };
        record.document = document;
        record.status = PolicyStatus::Unpublished;
        self.inner.store.save_policy(&record, false).await?;
        self.inner
            .write_catalog()
            .policies
            .insert(record.name().to_owned(), record);
        Ok(())
    }

    /// Checks and compiles a rule policy's draft and publishes it as a new version (1, 2,
    /// …), which flows published from now on use. Fails with [`Error::Policy`] naming
    /// every problem, or [`Error::NothingToPublish`] when the draft is already published.
    pub async fn publish_policy(&self, name: &str) -> Result<u32> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        // Changes made through other instances first: each operation decides on the
        // catalog as it is now.
        self.inner.sync_catalog().await?;
        let Some(mut record) = self.policy(name) else {
            return Err(Error::UnknownPolicy(name.to_owned()));
        };
        if record.status == PolicyStatus::Published {
            return Err(Error::NothingToPublish(name.to_owned()));
        }
        let version = record.last_published.map_or(1, |v| v + 1);
        let compiled = Arc::new(crate::rules::compile::compile(
            &record.document,
            Some(version),
            &self.inner.config.limits,
        )?);
        record.status = PolicyStatus::Published;
        record.last_published = Some(version);
        self.inner.store.save_policy(&record, true).await?;
        let mut catalog = self.inner.write_catalog();
        catalog
            .policy_versions
            .insert((name.to_owned(), version), compiled.clone());
        catalog.latest.insert(name.to_owned(), compiled);
        catalog.policies.insert(name.to_owned(), record);
        Ok(version)
    }

    /// Publish-time analysis beyond validity: warnings a user can read about `flow`
    /// (branches that may overlap or leave records unrouted, Send to Fulfillment without
    /// fulfillment determination, Conditions that cannot take `no`, waits on events nothing
    /// raises, published flows that start on the same event), judged against this engine's
    /// published rule policies and published flows. `external_events` are events the host
    /// submits itself. Warnings never stop a publish; see [`crate::flow::analysis`].
    pub fn analyze(
        &self,
        flow: &Flow,
        external_events: &[EventKind],
    ) -> Vec<crate::flow::analysis::Warning> {
        let catalog = self.inner.read_catalog();
        let policies: IndexMap<String, PolicyDocument> = catalog
            .latest
            .iter()
            .map(|(name, p)| (name.clone(), p.document().clone()))
            .collect();
        let flows: Vec<Flow> = catalog
            .flows
            .values()
            .filter(|f| f.name != flow.name && f.status != FlowStatus::Unpublished)
            .cloned()
            .collect();
        drop(catalog);
        let cx = crate::flow::analysis::Context::new(&policies, &flows, external_events)
            .with_limits(&self.inner.config.limits);
        crate::flow::analysis::analyze(flow, &cx)
    }

    /// What this engine found in the store's catalog and cannot use: flows or policies
    /// whose stored rows cannot be read back, and published flow versions that cannot run
    /// here (a provider or action they name is not registered). The engine starts and
    /// runs everything else; events that would start a flow that cannot run are refused,
    /// and orders running one are set aside.
    pub fn catalog_problems(&self) -> Vec<CatalogProblem> {
        self.inner
            .problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
