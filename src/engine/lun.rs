//! What is a Lun's own in the lifecycle: its clone source, its desired LUN
//! (the vendor's rules come from the adapter), its diff and its status.

use crate::array::backend::{BackendError, Created};
use crate::crd::Lun;
use crate::crd::lun::{LunObserved, LunStatus};
use crate::crd::shared::{CommonStatus, size_bytes};
use crate::model::{ObservedLun, Placement};
use crate::reconcile::lun::{self as core, CloneSource, DesiredLun, LunOp};

use super::lifecycle::{self, Managed, OpEvent, Plan, Refusal, Unresolved};
use super::observation::{self, ArrayView};
use super::spec_error::InvalidSpec;
use super::{ArrayHandle, Cluster, ClusterError, event_reason};

/// The array-side name: `spec.name`, else `metadata.name`.
pub fn array_name(lun: &Lun) -> String {
    super::array_side_name(lun.spec.name.as_ref(), &lun.metadata)
}

/// The LUN the spec asks for on `array`, or the first rule it breaks there
/// (the vendor's rules are the adapter's). `source` only matters at create.
pub fn desired(
    lun: &Lun,
    array: &ArrayHandle,
    source: Option<CloneSource>,
) -> Result<DesiredLun, InvalidSpec> {
    let size = size_bytes(&lun.spec.size.0).ok_or_else(|| {
        InvalidSpec::new(
            "spec.size",
            format!("{:?} is not a byte quantity", lun.spec.size.0),
        )
    })?;
    let name_field = if lun.spec.name.is_some() {
        "spec.name"
    } else {
        "metadata.name"
    };
    array
        .backend
        .desired_lun(&lun.spec, array_name(lun), name_field, size, source)
}

fn observed_status(o: &ObservedLun) -> LunObserved {
    let (location, pool) = match &o.placement {
        Some(Placement::Volume(v)) => (Some(v.clone()), None),
        Some(Placement::Pool(p)) => (None, Some(p.clone())),
        None => (None, None),
    };
    LunObserved {
        name: Some(o.name.clone()),
        size_bytes: i64::try_from(o.size_bytes).ok(),
        allocated_bytes: o.allocated_bytes.and_then(|b| i64::try_from(b).ok()),
        lun_type: o.lun_type.clone(),
        location,
        pool,
        mapped_targets: o.mapped_targets.clone(),
        status: o.status.clone(),
    }
}

impl Managed for Lun {
    const KIND: &'static str = "Lun";
    const NOUN: &'static str = "LUN";
    type Resolved = Option<CloneSource>;
    type Desired = DesiredLun;
    type Observed = ObservedLun;
    type Op = LunOp;
    type Status = LunStatus;

    lifecycle::common_fields!();

    async fn resolve(
        &self,
        cluster: &impl Cluster,
        creating: bool,
    ) -> Result<Option<CloneSource>, Unresolved> {
        // The clone source only matters at create.
        let Some(source) = self.spec.source.as_ref().filter(|_| creating) else {
            return Ok(None);
        };
        match (&source.lun_ref, &source.snapshot) {
            (Some(r), _) => {
                let ns = self.metadata.namespace.as_deref().unwrap_or_default();
                match cluster.lun_external_id(ns, &r.name).await {
                    Ok(Some(id)) => Ok(Some(CloneSource::Lun(id))),
                    Ok(None) => Err(Unresolved::Waiting(format!(
                        "spec.source.lunRef: waiting for Lun {} to be created on the array",
                        r.name
                    ))),
                    Err(e) => Err(Unresolved::Api(e)),
                }
            }
            (None, Some(snap)) => Ok(Some(CloneSource::Snapshot(snap.clone()))),
            (None, None) => Ok(None),
        }
    }

    async fn desired(
        &self,
        resolved: &Option<CloneSource>,
        array: &ArrayHandle,
    ) -> Result<DesiredLun, Refusal> {
        Ok(desired(self, array, resolved.clone())?)
    }

    fn find(view: &ArrayView, id: &str) -> Option<ObservedLun> {
        view.lun(id).cloned()
    }
    fn find_name(view: &ArrayView, name: &str) -> Option<String> {
        view.lun_by_name(name).map(|l| l.id.clone())
    }
    fn malformed(view: &ArrayView) -> &[(Option<String>, BackendError)] {
        &view.malformed_luns
    }
    fn put(view: &mut ArrayView, id: &str, after: Option<&ObservedLun>, op: Option<&LunOp>) {
        observation::put_lun_after(view, id, after, op);
    }

    async fn create(array: &ArrayHandle, desired: &DesiredLun) -> Result<Created, BackendError> {
        array.backend.create_lun(desired).await
    }
    fn created(desired: &DesiredLun, created: &Created) -> Option<ObservedLun> {
        core::apply_model(None, &[LunOp::Create(desired.clone())], &created.id)
    }
    fn create_fields(&self) -> Option<String> {
        match (&self.spec.location, &self.spec.pool) {
            (Some(l), _) => Some(format!("spec.location {l:?}")),
            (None, Some(p)) => Some(format!("spec.pool {p:?}")),
            (None, None) => None,
        }
    }
    fn created_note(d: &DesiredLun) -> String {
        let verb = if d.source.is_some() {
            "cloned"
        } else {
            "created"
        };
        format!(
            "{verb} LUN {:?} ({} bytes, {})",
            d.name, d.size_bytes, d.placement
        )
    }
    fn diff(
        &self,
        desired: &DesiredLun,
        observed: &ObservedLun,
        _: &Option<CloneSource>,
    ) -> Plan<LunOp> {
        let plan = core::diff(desired, Some(observed));
        Plan {
            ops: plan.ops,
            drift: plan.drift,
            waiting: None,
        }
    }
    async fn apply(array: &ArrayHandle, id: &str, op: &LunOp) -> Result<(), BackendError> {
        match op {
            LunOp::Create(_) => Err(BackendError::invalid(
                "create",
                "the LUN disappeared between its create and the diff",
            )),
            LunOp::Delete { id } => array.backend.delete_lun(id).await,
            other => array.backend.update_lun(id, other).await,
        }
    }
    fn model(observed: ObservedLun, op: &LunOp) -> Option<ObservedLun> {
        let id = observed.id.clone();
        core::apply_model(Some(observed), std::slice::from_ref(op), &id)
    }
    fn event(&self, op: &LunOp, _: Option<&Option<CloneSource>>) -> OpEvent {
        let reason = match op {
            LunOp::Create(_) => Some(event_reason::CREATED),
            LunOp::Unmap { .. } => Some(event_reason::UNMAPPED),
            LunOp::Delete { .. } => Some(event_reason::DELETED),
            _ => None,
        };
        OpEvent {
            reason,
            action: op.action(),
            note: op.describe(),
        }
    }
    fn delete_ops(&self, _: &ArrayHandle, observed: &ObservedLun) -> Vec<LunOp> {
        core::delete_ops(Some(observed))
    }

    fn waiting_for(&self, _: &Option<CloneSource>) -> Option<String> {
        None
    }
    async fn deletion_hold(&self, cluster: &impl Cluster) -> Result<Option<String>, ClusterError> {
        let ns = self.metadata.namespace.as_deref().unwrap_or_default();
        let name = self.metadata.name.as_deref().unwrap_or_default();
        let holders = cluster.targets_listing_lun(ns, name).await?;
        Ok((!holders.is_empty()).then(|| {
            format!(
                "held: IscsiTarget {} still lists this Lun in spec.luns; remove it there first",
                holders.join(", ")
            )
        }))
    }

    fn keep_status(&self, common: CommonStatus) -> LunStatus {
        LunStatus {
            common,
            at_array: self.status.as_ref().and_then(|s| s.at_array.clone()),
        }
    }
    fn observed_status(
        &self,
        common: CommonStatus,
        observed: Option<&ObservedLun>,
        _: &Option<CloneSource>,
        _: &[LunOp],
    ) -> LunStatus {
        LunStatus {
            common,
            at_array: observed.map(observed_status),
        }
    }
}
