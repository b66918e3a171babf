//! What is an IscsiTarget's own in the lifecycle: its CHAP Secrets and the
//! Luns it lists (resolved to array ids), its diff, its readiness (every
//! listed Lun mapped) and its status.

use std::collections::BTreeMap;

use crate::array::backend::{BackendError, Created};
use crate::crd::IscsiTarget;
use crate::crd::iscsi_target::{IscsiTargetObserved, IscsiTargetStatus, MappedLun};
use crate::crd::shared::CommonStatus;
use crate::model::{Chap, ObservedTarget};
use crate::reconcile::target::{self as core, DesiredTarget, TargetOp};

use super::lifecycle::{self, Managed, OpEvent, Plan, Refusal, Unresolved};
use super::observation::{self, ArrayView};
use super::secrets;
use super::spec_error::InvalidSpec;
use super::{ArrayHandle, Cluster, ClusterError, event_reason};

/// The IQN a dry run gives a target whose IQN only the array's answer
/// could tell.
pub const PLANNED_IQN: &str = "(chosen by the array)";

/// The array-side name: `spec.name`, else `metadata.name`.
pub fn array_name(t: &IscsiTarget) -> String {
    super::array_side_name(t.spec.name.as_ref(), &t.metadata)
}

/// Everything the spec names outside itself, resolved.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    /// CHAP from its Secrets.
    pub chap: Option<Chap>,
    /// resourceVersions of the CHAP Secrets, joined.
    pub chap_version: Option<String>,
    /// Lun name → array id, for the Luns that exist on the array.
    pub lun_ids: Vec<(String, String)>,
    /// Luns listed but not on the array yet.
    pub waiting_for: Vec<String>,
}

impl Resolved {
    fn lun_name(&self, id: &str) -> Option<&str> {
        self.lun_ids
            .iter()
            .find(|(_, l)| l == id)
            .map(|(n, _)| n.as_str())
    }
}

/// The target the spec asks for on `array`, or the first rule it breaks
/// there (the vendor's rules are the adapter's).
pub fn desired(
    t: &IscsiTarget,
    array: &ArrayHandle,
    resolved: &Resolved,
) -> Result<DesiredTarget, InvalidSpec> {
    let spec = &t.spec;
    let mut settings = BTreeMap::new();
    if let Some(iqn) = &spec.iqn {
        settings.insert("iqn".to_string(), iqn.clone());
    }
    if let Some(m) = spec.max_sessions {
        settings.insert("maxSessions".to_string(), m.to_string());
    }
    if let Some(h) = spec.header_digest {
        settings.insert("headerDigest".to_string(), h.to_string());
    }
    if let Some(d) = spec.data_digest {
        settings.insert("dataDigest".to_string(), d.to_string());
    }
    let neutral = DesiredTarget {
        name: array_name(t),
        enabled: spec.enabled,
        settings,
        chap: resolved.chap.clone(),
        initiators: spec.initiators.clone(),
        luns: resolved.lun_ids.iter().map(|(_, id)| id.clone()).collect(),
    };
    array.backend.desired_target(spec, neutral)
}

impl IscsiTarget {
    /// True when a CHAP Secret changed since CHAP was last applied: the
    /// password is sent again (DSM never returns it, so the diff cannot see
    /// it). With no record yet (just created, adopted) the observed CHAP is
    /// taken as it is.
    fn chap_rotated(&self, resolved: &Resolved) -> bool {
        let applied = self
            .status
            .as_ref()
            .and_then(|s| s.chap_secret_version.as_ref());
        resolved.chap.is_some() && applied.is_some() && resolved.chap_version.as_ref() != applied
    }
}

impl Managed for IscsiTarget {
    const KIND: &'static str = "IscsiTarget";
    const NOUN: &'static str = "target";
    type Resolved = Resolved;
    type Desired = DesiredTarget;
    type Observed = ObservedTarget;
    type Op = TargetOp;
    type Status = IscsiTargetStatus;

    lifecycle::common_fields!();

    async fn resolve(&self, cluster: &impl Cluster, _: bool) -> Result<Resolved, Unresolved> {
        let ns = self.metadata.namespace.clone().unwrap_or_default();
        let mut resolved = Resolved::default();
        if let Some(chap) = &self.spec.chap {
            let mut versions = Vec::new();
            let field = "spec.chap.secretRef";
            let initiator =
                secrets::chap_credential(cluster, &ns, field, &chap.secret_ref, &mut versions)
                    .await?;
            let mutual = match &chap.mutual_secret_ref {
                Some(m) => {
                    let field = "spec.chap.mutualSecretRef";
                    Some(secrets::chap_credential(cluster, &ns, field, m, &mut versions).await?)
                }
                None => None,
            };
            resolved.chap = Some(Chap { initiator, mutual });
            resolved.chap_version = Some(versions.join("/"));
        }
        for name in &self.spec.luns {
            match cluster.lun_external_id(&ns, name).await {
                Ok(Some(id)) => resolved.lun_ids.push((name.clone(), id)),
                Ok(None) => resolved.waiting_for.push(name.clone()),
                Err(e) => return Err(Unresolved::Api(e)),
            }
        }
        Ok(resolved)
    }

    async fn desired(
        &self,
        resolved: &Resolved,
        array: &ArrayHandle,
    ) -> Result<DesiredTarget, Refusal> {
        let mut d = desired(self, array, resolved)?;
        array
            .backend
            .normalize_target(&mut d)
            .await
            .map_err(Refusal::Array)?;
        Ok(d)
    }

    fn find(view: &ArrayView, id: &str) -> Option<ObservedTarget> {
        view.target(id).cloned()
    }
    fn find_name(view: &ArrayView, name: &str) -> Option<String> {
        view.target_by_name(name).map(|t| t.id.clone())
    }
    fn malformed(view: &ArrayView) -> &[(Option<String>, BackendError)] {
        &view.malformed_targets
    }
    fn put(view: &mut ArrayView, id: &str, after: Option<&ObservedTarget>, op: Option<&TargetOp>) {
        observation::put_target_after(view, id, after, op);
    }

    async fn create(array: &ArrayHandle, desired: &DesiredTarget) -> Result<Created, BackendError> {
        array.backend.create_target(desired).await
    }
    async fn create_dry_run(
        array: &ArrayHandle,
        desired: &DesiredTarget,
        id: String,
    ) -> Result<Created, BackendError> {
        let mut created = array.backend.create_target_dry_run(desired, id).await?;
        if created.iqn.is_none() && !desired.settings.contains_key("iqn") {
            // The array derives the IQN by a rule no listed target showed
            // yet: a stand-in keeps the plan going (no spec asks for it, so
            // no diff compares it).
            created.iqn = Some(PLANNED_IQN.to_string());
        }
        Ok(created)
    }
    fn created(desired: &DesiredTarget, created: &Created) -> Option<ObservedTarget> {
        // An IQN neither the spec nor the adapter chose is the array's: a
        // list tells.
        let iqn = created.iqn.as_deref().unwrap_or_default();
        let mut ops = vec![TargetOp::Create(desired.clone())];
        ops.extend(Self::created_ops(created));
        core::apply_model(None, &ops, &created.id, iqn).filter(|t| !t.iqn.is_empty())
    }
    fn created_ops(created: &Created) -> Vec<TargetOp> {
        // LUNs the create bound (NGX) are mapped as a map would.
        if created.mapped_luns.is_empty() {
            Vec::new()
        } else {
            vec![TargetOp::Map {
                lun_ids: created.mapped_luns.clone(),
            }]
        }
    }
    fn create_fields(&self) -> Option<String> {
        self.spec
            .portal_group
            .as_ref()
            .map(|p| format!("spec.portalGroup {p:?}"))
    }
    fn created_note(d: &DesiredTarget) -> String {
        format!("created target {:?}", d.name)
    }
    fn diff(
        &self,
        desired: &DesiredTarget,
        observed: &ObservedTarget,
        resolved: &Resolved,
    ) -> Plan<TargetOp> {
        let plan = core::diff(desired, Some(observed), self.chap_rotated(resolved));
        Plan {
            ops: plan.ops,
            drift: plan.drift,
            waiting: None,
        }
    }
    async fn apply(array: &ArrayHandle, id: &str, op: &TargetOp) -> Result<(), BackendError> {
        match op {
            TargetOp::Delete { id } => array.backend.delete_target(id).await,
            other => array.backend.update_target(id, other).await,
        }
    }
    fn model(observed: ObservedTarget, op: &TargetOp) -> Option<ObservedTarget> {
        let id = observed.id.clone();
        core::apply_model(Some(observed), std::slice::from_ref(op), &id, "")
    }
    fn event(&self, op: &TargetOp, resolved: Option<&Resolved>) -> OpEvent {
        let reason = match op {
            TargetOp::Create(_) => Some(event_reason::CREATED),
            TargetOp::Map { .. } => Some(event_reason::MAPPED),
            TargetOp::Unmap { .. } => Some(event_reason::UNMAPPED),
            TargetOp::Delete { .. } => Some(event_reason::DELETED),
            // A new Secret is a change of what is asked for, not drift.
            TargetOp::SetChap(Some(_)) => resolved
                .filter(|r| self.chap_rotated(r))
                .map(|_| event_reason::UPDATED),
            _ => None,
        };
        let lun = |id: &str| match resolved.and_then(|r| r.lun_name(id)) {
            Some(n) => format!("Lun {n} ({id})"),
            None => format!("LUN {id}"),
        };
        OpEvent {
            reason,
            action: op.action(),
            note: op.describe(lun),
        }
    }
    fn delete_ops(&self, array: &ArrayHandle, observed: &ObservedTarget) -> Vec<TargetOp> {
        let ops = core::delete_ops(Some(observed));
        if array.backend.target_delete_drops_mappings() {
            // One call instead of one unmap per LUN first.
            ops.into_iter()
                .filter(|op| matches!(op, TargetOp::Delete { .. }))
                .collect()
        } else {
            ops
        }
    }

    fn waiting_for(&self, resolved: &Resolved) -> Option<String> {
        (!resolved.waiting_for.is_empty()).then(|| {
            format!(
                "spec.luns: waiting for Lun {} to be created on the array before mapping",
                resolved.waiting_for.join(", ")
            )
        })
    }
    async fn deletion_hold(&self, _: &impl Cluster) -> Result<Option<String>, ClusterError> {
        Ok(None)
    }

    fn keep_status(&self, common: CommonStatus) -> IscsiTargetStatus {
        let previous = self.status.clone().unwrap_or_default();
        IscsiTargetStatus { common, ..previous }
    }
    fn observed_status(
        &self,
        common: CommonStatus,
        observed: Option<&ObservedTarget>,
        resolved: &Resolved,
        applied: &[TargetOp],
    ) -> IscsiTargetStatus {
        let previous = self
            .status
            .as_ref()
            .and_then(|s| s.chap_secret_version.clone());
        let chap_secret_version = if resolved.chap.is_none() {
            None
        } else if applied.iter().any(|op| matches!(op, TargetOp::SetChap(_)))
            || (previous.is_none() && observed.is_some_and(|o| o.chap.is_some()))
        {
            // Applied now, or already on the array (created with it,
            // adopted, recovered).
            resolved.chap_version.clone()
        } else {
            previous
        };
        IscsiTargetStatus {
            common,
            at_array: observed.map(|o| IscsiTargetObserved {
                target_id: Some(o.id.clone()),
                iqn: Some(o.iqn.clone()),
                mapped_luns: o
                    .mapped_luns
                    .iter()
                    .enumerate()
                    .map(|(i, id)| MappedLun {
                        external_id: id.clone(),
                        lun: resolved.lun_name(id).map(str::to_string),
                        number: i32::try_from(i).ok(),
                    })
                    .collect(),
                mapped_lun_count: i32::try_from(o.mapped_luns.len()).unwrap_or(i32::MAX),
                connected_sessions: o.connected_sessions.and_then(|s| i32::try_from(s).ok()),
                status: o.status.clone(),
                auth_group_id: None,
            }),
            chap_secret_version,
        }
    }
}
