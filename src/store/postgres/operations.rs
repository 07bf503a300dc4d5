//! The [`Store`] operations of [`PostgresStore`].

use async_trait::async_trait;
use semver::Version;
use tokio_postgres::types::ToSql;

use super::{PostgresStore, lock};
use crate::clock::Timestamp;
use crate::document::OrderId;
use crate::execution::OrderState;
use crate::flow::Flow;
use crate::journey::StepRow;
use crate::rules::{PolicyDocument, PolicyRecord};
use crate::store::shared::{Lease, lease_lost};
use crate::store::{
    ChangeSet, SetAside, Store, StoreError, StoreErrorKind, Unreadable, wake_key, wake_time,
};

#[async_trait]
impl Store for PostgresStore {
    async fn flows(&self) -> Result<Vec<Flow>, StoreError> {
        self.read_json("reading flows", &self.sql.flows, &[]).await
    }

    async fn save_flow(&self, flow: &Flow, frozen: bool) -> Result<(), StoreError> {
        let json = self.encode("flow", &flow.name, flow)?;
        let version = flow.version.to_string();
        let frozen = frozen.then_some((
            self.sql.freeze_flow.as_str(),
            &version as &(dyn ToSql + Sync),
            json.as_str(),
        ));
        self.save(
            "saving a flow",
            &self.sql.save_flow,
            &flow.name,
            &json,
            frozen,
        )
        .await
    }

    async fn flow_version(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<Flow>, StoreError> {
        self.read_one(
            "reading a flow version",
            &self.sql.flow_version,
            &[&name, &version.to_string()],
        )
        .await
    }

    async fn policies(&self) -> Result<Vec<PolicyRecord>, StoreError> {
        self.read_json("reading policies", &self.sql.policies, &[])
            .await
    }

    async fn save_policy(&self, record: &PolicyRecord, published: bool) -> Result<(), StoreError> {
        let name = record.name();
        let published = if published {
            let Some(version) = record.last_published else {
                return Err(StoreError::new(
                    StoreErrorKind::Refused,
                    format!("policy '{name}' is saved as published without a version"),
                ));
            };
            let document = self.encode("policy", name, &record.document)?;
            Some((i64::from(version), document))
        } else {
            None
        };
        let json = self.encode("policy", name, record)?;
        let frozen = published.as_ref().map(|(version, document)| {
            (
                self.sql.freeze_policy.as_str(),
                version as &(dyn ToSql + Sync),
                document.as_str(),
            )
        });
        self.save(
            "saving a policy",
            &self.sql.save_policy,
            name,
            &json,
            frozen,
        )
        .await
    }

    async fn policy_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<Option<PolicyDocument>, StoreError> {
        self.read_one(
            "reading a policy version",
            &self.sql.policy_version,
            &[&name, &i64::from(version)],
        )
        .await
    }

    async fn load(&self, order: &OrderId) -> Result<Option<OrderState>, StoreError> {
        let rows = self
            .query("loading an order", &self.sql.load, &[&order.as_str()])
            .await?;
        rows.first().map(|row| self.decode_order(row)).transpose()
    }

    async fn commit(&self, change: ChangeSet) -> Result<(), StoreError> {
        let what = "committing an order";
        if change.expected.is_none() && change.document.is_none() {
            return Err(StoreError::new(
                StoreErrorKind::Refused,
                format!(
                    "order {} is new, and the commit creating it carries no document",
                    change.order
                ),
            ));
        }
        let encoded = self.encode_change(&change)?;
        let id = change.order.as_str();
        let fence = lock(&self.leases).get(&change.order).copied();
        let expected = change.expected.map(|e| e as i64);
        let mut params = encoded.params();
        if let Some(expected) = &expected {
            params.push(expected);
        }
        if let Some(fence) = &fence {
            params.push(fence);
        }
        let sql = match (expected.is_some(), fence.is_some()) {
            (false, false) => &self.sql.create,
            (true, false) => &self.sql.update,
            (false, true) => &self.sql.create_fenced,
            (true, true) => &self.sql.update_fenced,
        };
        let rows = self.query(what, sql, &params).await?;
        let count = |i: usize| -> Result<i64, StoreError> {
            rows.first()
                .map_or(Ok(0), |row| row.try_get(i))
                .map_err(|e| self.corrupt(what, e))
        };
        if let Some(fence) = fence {
            if count(1)? == 0 {
                lock(&self.leases).remove(&change.order);
                lock(&self.prefetched).remove(&change.order);
                return Err(lease_lost(&Lease::new(change.order.clone(), fence as u64)));
            }
        }
        if count(0)? > 0 {
            return Ok(());
        }
        let stored = self
            .query(what, &self.sql.revision, &[&id])
            .await?
            .first()
            .map(|row| row.try_get::<_, i64>(0))
            .transpose()
            .map_err(|e| self.corrupt(what, e))?;
        Err(StoreError::conflict(
            id,
            stored.map(|r| r as u64),
            change.expected,
        ))
    }

    async fn journey(&self, order: &OrderId) -> Result<Vec<StepRow>, StoreError> {
        let rows = self
            .query("reading a journey", &self.sql.journey, &[&order.as_str()])
            .await?;
        rows.first()
            .map_or(Ok(Vec::new()), |row| self.decode_journey(row))
    }

    async fn live_orders(&self) -> Result<Vec<OrderId>, StoreError> {
        self.read_ids("listing live orders", &self.sql.live, &[])
            .await
    }

    async fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<OrderId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_ids(
            "listing due orders",
            &self.sql.due,
            &[&wake_key(now), &limit],
        )
        .await
    }

    /// One statement through the `completed_at` index, with the orders' executions and
    /// journal rows; PostgreSQL's autovacuum reclaims
    /// the space of the deleted rows for new ones.
    async fn purge(
        &self,
        completed_before: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrderId>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_ids(
            "purging completed orders",
            &self.sql.purge,
            &[&wake_key(completed_before), &limit],
        )
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let what = "reading the next timer";
        let rows = self.query(what, &self.sql.next_due, &[]).await?;
        let key: Option<i64> = match rows.first() {
            Some(row) => row.try_get(0).map_err(|e| self.corrupt(what, e))?,
            None => None,
        };
        Ok(key.map(wake_time))
    }

    async fn catalog_revision(&self) -> Result<u64, StoreError> {
        let what = "reading the catalog revision";
        let rows = self.query(what, &self.sql.catalog_revision, &[]).await?;
        let revision: i64 = rows
            .first()
            .ok_or_else(|| {
                StoreError::new(
                    StoreErrorKind::Corrupt,
                    format!("PostgreSQL {}: the catalog table has no row", self.target),
                )
            })?
            .try_get(0)
            .map_err(|e| self.corrupt(what, e))?;
        Ok(revision as u64)
    }

    async fn read_flows(&self) -> Result<(Vec<Flow>, Vec<Unreadable>), StoreError> {
        self.read_catalog("reading flows", &self.sql.flow_rows)
            .await
    }

    async fn read_policies(&self) -> Result<(Vec<PolicyRecord>, Vec<Unreadable>), StoreError> {
        self.read_catalog("reading policies", &self.sql.policy_rows)
            .await
    }

    async fn set_aside(&self, order: &OrderId, reason: &str) -> Result<(), StoreError> {
        self.query(
            "setting an order aside",
            &self.sql.set_aside,
            &[&order.as_str(), &reason],
        )
        .await?;
        Ok(())
    }

    async fn set_aside_orders(&self) -> Result<Vec<SetAside>, StoreError> {
        let what = "listing orders set aside";
        self.query(what, &self.sql.aside, &[])
            .await?
            .iter()
            .map(|row| {
                let order: &str = row.try_get(0).map_err(|e| self.corrupt(what, e))?;
                let reason: String = row.try_get(1).map_err(|e| self.corrupt(what, e))?;
                Ok(SetAside::new(OrderId::from(order), reason))
            })
            .collect()
    }

    async fn restore(&self, order: &OrderId) -> Result<bool, StoreError> {
        let what = "restoring an order set aside";
        let rows = self
            .query(
                what,
                &self.sql.restore,
                &[&order.as_str(), &wake_key(Timestamp(0)), &self.channel()],
            )
            .await?;
        let n: i64 = rows
            .first()
            .map_or(Ok(0), |row| row.try_get(0))
            .map_err(|e| self.corrupt(what, e))?;
        Ok(n > 0)
    }
}
