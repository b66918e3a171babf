//! Reconcile and clean up one Lun.

use std::collections::BTreeMap;

use crate::array::error::ErrorClass;
use crate::array::types::{ObservedLun, Placement};
use crate::crd::Lun;
use crate::crd::lun::{LunObserved, LunStatus};
use crate::crd::shared::{
    CommonStatus, DeletionPolicy, ManagementPolicy, ready_reason, size_bytes, synced_reason,
};
use crate::crd::storage_array::Vendor;
use crate::reconcile::identity::{self, CreateRecord};
use crate::reconcile::lun::{self as core, CloneSource, DesiredLun, LunOp, LunPlan};

use super::common::{
    Next, Stop, conditions, paused, record_created, record_failed, record_pending, settle_identity,
    spec_unchanged,
};
use super::conditions::ConditionState;
use super::observation::put_lun;
use super::spec_error::InvalidSpec;
use super::{
    ArrayHandle, Cleanup, Cluster, EngineEvent, ObjectKey, Outcome, Progress,
    effective_deletion_policy, event_reason,
};

/// NGXStorage accepts LUN names of 1-30 letters, digits, `_` and `-`.
const NGX_NAME_MAX: usize = 30;

fn key(lun: &Lun) -> ObjectKey {
    ObjectKey::of("Lun", &lun.metadata)
}

fn annotations(lun: &Lun) -> BTreeMap<String, String> {
    lun.metadata.annotations.clone().unwrap_or_default()
}

/// The array-side name: `spec.name`, else `metadata.name`.
pub fn array_name(lun: &Lun) -> String {
    super::array_side_name(lun.spec.name.as_ref(), &lun.metadata)
}

fn flag(settings: &mut BTreeMap<String, String>, key: &str, value: Option<bool>) {
    if let Some(v) = value {
        settings.insert(key.to_string(), v.to_string());
    }
}

fn serde_word<T: serde::Serialize>(value: &T) -> String {
    // The spec spelling of an enum is its serde form.
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The LUN the spec asks for on an array of `vendor`, or the first rule the
/// spec breaks there. `source` is only resolved (and only matters) at create.
pub fn desired(
    lun: &Lun,
    vendor: Vendor,
    source: Option<CloneSource>,
) -> Result<DesiredLun, InvalidSpec> {
    let spec = &lun.spec;
    let name = array_name(lun);
    let name_field = if spec.name.is_some() {
        "spec.name"
    } else {
        "metadata.name"
    };
    let size = size_bytes(&spec.size.0).ok_or_else(|| {
        InvalidSpec::new(
            "spec.size",
            format!("{:?} is not a byte quantity", spec.size.0),
        )
    })?;
    let mut settings = BTreeMap::new();
    let placement = match vendor {
        Vendor::Synology => {
            if spec.pool.is_some() {
                return Err(InvalidSpec::new(
                    "spec.pool",
                    "is for NGXStorage arrays; a Synology LUN is placed with spec.location",
                ));
            }
            if spec.ngxstorage.is_some() {
                return Err(InvalidSpec::new(
                    "spec.ngxstorage",
                    "is for NGXStorage arrays; this Lun's array is Synology",
                ));
            }
            let location = spec.location.clone().ok_or_else(|| {
                InvalidSpec::new(
                    "spec.location",
                    "is required on a Synology array (the volume, for example /volume1)",
                )
            })?;
            if let Some(s) = &spec.synology {
                if let Some(t) = &s.lun_type {
                    settings.insert("synology.type".to_string(), serde_word(t));
                }
                flag(&mut settings, "synology.emulateCaw", s.emulate_caw);
                flag(&mut settings, "synology.emulate3pc", s.emulate_3pc);
                flag(&mut settings, "synology.emulateTpu", s.emulate_tpu);
                flag(&mut settings, "synology.emulateTpws", s.emulate_tpws);
                flag(
                    &mut settings,
                    "synology.emulateFuaWrite",
                    s.emulate_fua_write,
                );
                flag(
                    &mut settings,
                    "synology.emulateSyncCache",
                    s.emulate_sync_cache,
                );
                flag(&mut settings, "synology.canSnapshot", s.can_snapshot);
            }
            Placement::Volume(location)
        }
        Vendor::NgxStorage => {
            if spec.location.is_some() {
                return Err(InvalidSpec::new(
                    "spec.location",
                    "is for Synology arrays; an NGXStorage LUN is placed with spec.pool",
                ));
            }
            if spec.synology.is_some() {
                return Err(InvalidSpec::new(
                    "spec.synology",
                    "is for Synology arrays; this Lun's array is NGXStorage",
                ));
            }
            let pool = spec.pool.clone().ok_or_else(|| {
                InvalidSpec::new("spec.pool", "is required on an NGXStorage array")
            })?;
            if name.len() > NGX_NAME_MAX
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(InvalidSpec::new(
                    name_field,
                    format!(
                        "{name:?}: NGXStorage LUN names are 1-{NGX_NAME_MAX} letters, digits, '_' or '-' (set spec.name)"
                    ),
                ));
            }
            if size % (1 << 20) != 0 {
                return Err(InvalidSpec::new(
                    "spec.size",
                    format!(
                        "{} bytes is not a whole number of MiB, which NGXStorage requires",
                        size
                    ),
                ));
            }
            if let Some(n) = &spec.ngxstorage {
                if let Some(b) = &n.blocksize {
                    settings.insert("ngxstorage.blocksize".to_string(), serde_word(b));
                }
                flag(&mut settings, "ngxstorage.deduplication", n.deduplication);
                flag(&mut settings, "ngxstorage.compression", n.compression);
                if let Some(io) = &n.io_type {
                    settings.insert("ngxstorage.ioType".to_string(), serde_word(io));
                }
                if let Some(q) = n.qos_priority {
                    settings.insert("ngxstorage.qosPriority".to_string(), q.to_string());
                }
            }
            Placement::Pool(pool)
        }
    };
    if matches!(source, Some(CloneSource::Snapshot(_))) && vendor == Vendor::Synology {
        return Err(InvalidSpec::new(
            "spec.source.snapshot",
            "clones an NGXStorage snapshot; on Synology clone a Lun with spec.source.lunRef",
        ));
    }
    Ok(DesiredLun {
        name,
        size_bytes: size,
        placement,
        thin: spec.thin_provisioning,
        description: spec.description.clone(),
        settings,
        source,
    })
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

/// Accumulates what one reconcile decides.
struct Run<'a> {
    lun: &'a Lun,
    events: Vec<EngineEvent>,
    external_id: Option<String>,
    at_array: Option<LunObserved>,
}

impl<'a> Run<'a> {
    fn new(lun: &'a Lun) -> Self {
        let previous = lun.status.as_ref();
        Run {
            lun,
            events: Vec::new(),
            external_id: previous.and_then(|s| s.common.external_id.clone()),
            at_array: previous.and_then(|s| s.at_array.clone()),
        }
    }

    fn finish(
        self,
        ready: Option<ConditionState>,
        synced: ConditionState,
        progress: Progress,
    ) -> Outcome<LunStatus> {
        let generation = self.lun.metadata.generation;
        let previous = self.lun.status.as_ref().map(|s| &s.common);
        Outcome {
            status: LunStatus {
                common: CommonStatus {
                    observed_generation: generation,
                    conditions: conditions(previous, ready.as_ref(), &synced, generation),
                    external_id: self.external_id,
                },
                at_array: self.at_array,
            },
            events: self.events,
            progress,
        }
    }

    fn stop(mut self, stop: Stop) -> Outcome<LunStatus> {
        self.events.extend(stop.event);
        self.finish(stop.ready, stop.synced, stop.progress)
    }
}

fn describe(op: &LunOp) -> String {
    match op {
        LunOp::Create(d) => format!(
            "created LUN {} ({} bytes, {})",
            d.name, d.size_bytes, d.placement
        ),
        LunOp::Rename { to } => format!("renamed the LUN to {to}"),
        LunOp::Grow {
            from_bytes,
            to_bytes,
        } => format!("grew the LUN from {from_bytes} to {to_bytes} bytes"),
        LunOp::SetDescription(_) => "set the LUN description".to_string(),
        LunOp::SetSettings(s) => format!(
            "set {}",
            s.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        LunOp::Unmap { target_id } => format!("unmapped the LUN from target {target_id}"),
        LunOp::Delete { id } => format!("deleted LUN {id}"),
    }
}

fn action(op: &LunOp) -> &'static str {
    match op {
        LunOp::Create(_) => "Create",
        LunOp::Rename { .. } => "Rename",
        LunOp::Grow { .. } => "Resize",
        LunOp::SetDescription(_) | LunOp::SetSettings(_) => "Update",
        LunOp::Unmap { .. } => "Unmap",
        LunOp::Delete { .. } => "Delete",
    }
}

/// Reconciles one Lun (not being deleted) against its array.
pub async fn reconcile(
    lun: &Lun,
    array: &ArrayHandle,
    cluster: &impl Cluster,
) -> Outcome<LunStatus> {
    let mut run = Run::new(lun);
    if paused(&lun.metadata) {
        return run.stop(Stop::paused());
    }
    let obj = key(lun);
    let desired_spec = match desired(lun, array.vendor(), None) {
        Ok(d) => d,
        Err(invalid) => return run.stop(Stop::invalid(&invalid)),
    };
    let view = match array.cache.view(&array.backend, array.resync).await {
        Ok(v) => v,
        Err(e) => return run.stop(Stop::array(&e, "Observe", array)),
    };
    let record = CreateRecord::from_annotations(&annotations(lun));
    let manage = lun.spec.management_policy == ManagementPolicy::Manage;
    let identity = identity::resolve(&record, &desired_spec.name, &view.lun_index());
    let id = match settle_identity(
        identity,
        "LUN",
        &desired_spec.name,
        manage,
        array,
        &obj,
        cluster,
    )
    .await
    {
        Next::Use(id) => id,
        Next::Stop(stop) => return run.stop(stop),
        Next::Create { lost } => match create(lun, array, cluster, &obj, lost, &mut run).await {
            Ok(id) => id,
            Err(stop) => return run.stop(stop),
        },
    };
    run.external_id = Some(id.clone());

    let view = array.cache.peek().unwrap_or(view);
    let observed = view.lun(&id).cloned();
    let plan: LunPlan = core::diff(&desired_spec, observed.as_ref());
    let drift_event_reason = if spec_unchanged(
        lun.status.as_ref().map(|s| &s.common),
        lun.metadata.generation,
    ) {
        event_reason::DRIFT_CORRECTED
    } else {
        event_reason::UPDATED
    };
    let mut current = observed;
    if manage {
        for op in &plan.ops {
            if let LunOp::Create(_) = op {
                // The LUN vanished between create and diff; the next pass recreates it.
                array.cache.invalidate();
                return run.finish(
                    Some(ConditionState::no(
                        ready_reason::CREATING,
                        "the LUN is being created",
                    )),
                    ConditionState::no(
                        synced_reason::RECONCILE_ERROR,
                        "the created LUN is not visible yet",
                    ),
                    Progress::Waiting,
                );
            }
            if let Err(e) = array.backend.update_lun(&id, op).await {
                if matches!(
                    e.class,
                    ErrorClass::NotFound | ErrorClass::AlreadyExists | ErrorClass::Unreachable
                ) {
                    array.cache.invalidate();
                }
                run.at_array = current.as_ref().map(observed_status);
                return run.stop(Stop::array(&e, action(op), array));
            }
            current = core::apply_model(current, std::slice::from_ref(op), &id);
            let after = current.clone();
            array.cache.write_through(|v| put_lun(v, &id, after));
            run.events.push(EngineEvent::normal(
                drift_event_reason,
                action(op),
                describe(op),
            ));
        }
    }
    run.at_array = current.as_ref().map(observed_status);

    let uncorrectable: Vec<String> = plan.uncorrectable().map(|d| d.to_string()).collect();
    let pending: Vec<String> = if manage {
        Vec::new()
    } else {
        plan.drift
            .iter()
            .filter(|d| d.correctable)
            .map(|d| d.to_string())
            .collect()
    };
    let ready = if !uncorrectable.is_empty() || !pending.is_empty() {
        let mut parts = uncorrectable;
        if !pending.is_empty() {
            parts.push(format!(
                "not corrected (managementPolicy Observe): {}",
                pending.join("; ")
            ));
        }
        ConditionState::no(ready_reason::DRIFTED, parts.join("; "))
    } else {
        ConditionState::yes(
            ready_reason::AVAILABLE,
            format!("LUN {id} on {} matches the spec", array.key),
        )
    };
    run.finish(
        Some(ready),
        ConditionState::yes(
            synced_reason::RECONCILE_SUCCESS,
            "the array was observed and the spec applied",
        ),
        Progress::Converged,
    )
}

/// The crash-safe create: record pending, create, record the result.
async fn create(
    lun: &Lun,
    array: &ArrayHandle,
    cluster: &impl Cluster,
    obj: &ObjectKey,
    lost: bool,
    run: &mut Run<'_>,
) -> Result<String, Stop> {
    // The clone source only matters now, at create.
    let source = match &lun.spec.source {
        None => None,
        Some(s) => match (&s.lun_ref, &s.snapshot) {
            (Some(r), _) => match cluster.lun_external_id(&obj.namespace, &r.name).await {
                Ok(Some(id)) => Some(CloneSource::Lun(id)),
                Ok(None) => {
                    return Err(Stop {
                        ready: Some(ConditionState::no(
                            ready_reason::CREATING,
                            "waiting for the clone source",
                        )),
                        synced: ConditionState::no(
                            synced_reason::RECONCILE_ERROR,
                            format!(
                                "spec.source.lunRef: Lun {:?} is not on the array yet",
                                r.name
                            ),
                        ),
                        progress: Progress::Waiting,
                        event: None,
                    });
                }
                Err(e) => return Err(Stop::cluster(e)),
            },
            (None, Some(snap)) => Some(CloneSource::Snapshot(snap.clone())),
            (None, None) => None,
        },
    };
    let with_source = desired(lun, array.vendor(), source).map_err(|i| Stop::invalid(&i))?;
    record_pending(cluster, obj).await.map_err(Stop::cluster)?;
    match array.backend.create_lun(&with_source).await {
        Ok(id) => {
            let created = core::apply_model(None, &[LunOp::Create(with_source.clone())], &id);
            array.cache.write_through(|v| put_lun(v, &id, created));
            let verb = if with_source.source.is_some() {
                "cloned"
            } else {
                "created"
            };
            let note = format!(
                "{verb} LUN {:?} (id {id}, {} bytes, {}) on {}{}",
                with_source.name,
                with_source.size_bytes,
                with_source.placement,
                array.key,
                if lost {
                    "; the LUN it replaces had disappeared from the array"
                } else {
                    ""
                }
            );
            run.events
                .push(EngineEvent::normal(event_reason::CREATED, "Create", note));
            if let Err(e) = record_created(cluster, obj, &id).await {
                // The LUN exists; the pending mark makes the next pass find it by name.
                run.external_id = Some(id);
                return Err(Stop::cluster(e));
            }
            Ok(id)
        }
        Err(e) => {
            if e.class == ErrorClass::Unreachable {
                // Ambiguous: the create may have happened. Leave pending in
                // place so the next pass looks the name up instead of
                // creating again.
                array.cache.invalidate();
            } else {
                record_failed(cluster, obj).await;
                if e.class == ErrorClass::AlreadyExists {
                    array.cache.invalidate();
                }
            }
            Err(Stop::array(&e, "Create", array))
        }
    }
}

/// Cleans up one Lun being deleted: per deletionPolicy, unmaps it from every
/// target and deletes it, or leaves it. Held while an IscsiTarget still
/// lists it.
pub async fn cleanup(
    lun: &Lun,
    array: Option<&ArrayHandle>,
    cluster: &impl Cluster,
) -> Cleanup<LunStatus> {
    let record = CreateRecord::from_annotations(&annotations(lun));
    let policy = if lun.spec.management_policy == ManagementPolicy::Observe {
        DeletionPolicy::Retain
    } else {
        effective_deletion_policy(lun.spec.deletion_policy, record.created_by_operator())
    };
    let id = record.external_name.clone().or_else(|| {
        lun.status
            .as_ref()
            .and_then(|s| s.common.external_id.clone())
    });
    if policy == DeletionPolicy::Retain || (id.is_none() && !record.create_in_doubt()) {
        return Cleanup::Done { events: Vec::new() };
    }
    let run = Run::new(lun);
    if paused(&lun.metadata) {
        return Cleanup::Held(run.stop(Stop::paused_deletion()));
    }
    let obj = key(lun);
    match cluster.targets_listing_lun(&obj.namespace, &obj.name).await {
        Ok(holders) if !holders.is_empty() => {
            return Cleanup::Held(run.finish(
                Some(ConditionState::no(
                    ready_reason::DELETING,
                    format!(
                        "held: IscsiTarget {} still lists this Lun in spec.luns; remove it there first",
                        holders.join(", ")
                    ),
                )),
                ConditionState::yes(synced_reason::RECONCILE_SUCCESS, "waiting for the targets to release the LUN"),
                Progress::Waiting,
            ));
        }
        Ok(_) => {}
        Err(e) => return Cleanup::Held(run.stop(Stop::cluster(e))),
    }
    let Some(array) = array else {
        return Cleanup::Held(run.stop(Stop::no_array_for_deletion("LUN")));
    };
    let view = match array.cache.view(&array.backend, array.resync).await {
        Ok(v) => v,
        Err(e) => return Cleanup::Held(run.stop(Stop::array(&e, "Observe", array))),
    };
    let observed = match &id {
        Some(id) => view.lun(id).cloned(),
        // A create in doubt: whatever carries the name is ours.
        None => view.lun_by_name(&array_name(lun)).cloned(),
    };
    let mut events = Vec::new();
    for op in &core::delete_ops(observed.as_ref()) {
        let result = match (op, &observed) {
            (LunOp::Delete { id }, _) => array.backend.delete_lun(id).await,
            (LunOp::Unmap { .. }, Some(o)) => array.backend.update_lun(&o.id, op).await,
            _ => Ok(()),
        };
        if let Err(e) = result
            && e.class != ErrorClass::NotFound
        {
            array.cache.invalidate();
            let mut stop = Stop::array(&e, action(op), array);
            stop.ready = Some(ConditionState::no(
                ready_reason::DELETING,
                "deleting the LUN from the array",
            ));
            stop.synced.message.push_str(
                "; the LUN is kept until this succeeds (to leave it on the array instead, set spec.deletionPolicy: Retain)",
            );
            let mut run = run;
            run.events = events;
            return Cleanup::Held(run.stop(stop));
        }
        let reason = match op {
            LunOp::Unmap { .. } => event_reason::UNMAPPED,
            _ => event_reason::DELETED,
        };
        events.push(EngineEvent::normal(
            reason,
            action(op),
            format!("{} on {}", describe(op), array.key),
        ));
    }
    if let Some(o) = &observed {
        let gone_id = o.id.clone();
        array.cache.write_through(|v| {
            put_lun(v, &gone_id, None);
            for t in v.targets.iter_mut() {
                t.mapped_luns.retain(|l| *l != gone_id);
            }
        });
    }
    Cleanup::Done { events }
}
