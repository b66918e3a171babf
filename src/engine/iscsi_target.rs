//! Reconcile and clean up one IscsiTarget: its settings, CHAP, allowed
//! initiators and LUN mappings.

use std::collections::BTreeMap;

use crate::array::error::ErrorClass;
use crate::array::types::{Chap, ChapCredential, ObservedTarget};
use crate::crd::IscsiTarget;
use crate::crd::iscsi_target::{IscsiTargetObserved, IscsiTargetStatus, MappedLun};
use crate::crd::shared::{
    CommonStatus, DeletionPolicy, ManagementPolicy, SecretRef, ready_reason, synced_reason,
};
use crate::crd::storage_array::Vendor;
use crate::reconcile::identity::{self, CreateRecord};
use crate::reconcile::target::{self as core, DesiredTarget, TargetOp};

use super::common::{
    Next, Stop, conditions, paused, record_created, record_failed, record_pending, settle_identity,
    spec_unchanged,
};
use super::conditions::ConditionState;
use super::observation::{ArrayView, put_target};
use super::spec_error::InvalidSpec;
use super::{
    ArrayHandle, Cleanup, Cluster, EngineEvent, ObjectKey, Outcome, Progress,
    effective_deletion_policy, event_reason,
};

fn key(t: &IscsiTarget) -> ObjectKey {
    ObjectKey::of("IscsiTarget", &t.metadata)
}

fn annotations(t: &IscsiTarget) -> BTreeMap<String, String> {
    t.metadata.annotations.clone().unwrap_or_default()
}

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

/// Why resolving failed.
enum Unresolved {
    Invalid(InvalidSpec),
    Waiting(String),
    Api(super::ClusterError),
}

async fn credential(
    cluster: &impl Cluster,
    namespace: &str,
    field: &str,
    secret: &SecretRef,
    versions: &mut Vec<String>,
) -> Result<ChapCredential, Unresolved> {
    let data = match cluster.secret(namespace, &secret.name).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(Unresolved::Waiting(format!(
                "{field}: Secret {:?} does not exist",
                secret.name
            )));
        }
        Err(e) => return Err(Unresolved::Api(e)),
    };
    let get = |k: &str| {
        data.data
            .get(k)
            .filter(|v| !v.expose().is_empty())
            .cloned()
            .ok_or_else(|| {
                Unresolved::Invalid(InvalidSpec::new(
                    field,
                    format!("Secret {:?} has no key {k:?}", secret.name),
                ))
            })
    };
    let username = get("username")?.expose().to_string();
    let password = get("password")?;
    versions.push(data.resource_version.clone());
    Ok(ChapCredential { username, password })
}

async fn resolve(t: &IscsiTarget, cluster: &impl Cluster) -> Result<Resolved, Unresolved> {
    let ns = t.metadata.namespace.clone().unwrap_or_default();
    let mut resolved = Resolved::default();
    if let Some(chap) = &t.spec.chap {
        let mut versions = Vec::new();
        let initiator = credential(
            cluster,
            &ns,
            "spec.chap.secretRef",
            &chap.secret_ref,
            &mut versions,
        )
        .await?;
        let mutual = match &chap.mutual_secret_ref {
            Some(m) => {
                Some(credential(cluster, &ns, "spec.chap.mutualSecretRef", m, &mut versions).await?)
            }
            None => None,
        };
        resolved.chap = Some(Chap { initiator, mutual });
        resolved.chap_version = Some(versions.join("/"));
    }
    for name in &t.spec.luns {
        match cluster.lun_external_id(&ns, name).await {
            Ok(Some(id)) => resolved.lun_ids.push((name.clone(), id)),
            Ok(None) => resolved.waiting_for.push(name.clone()),
            Err(e) => return Err(Unresolved::Api(e)),
        }
    }
    Ok(resolved)
}

/// The target the spec asks for on an array of `vendor`.
pub fn desired(
    t: &IscsiTarget,
    vendor: Vendor,
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
    match vendor {
        Vendor::Synology => {
            if spec.portal_group.is_some() {
                return Err(InvalidSpec::new(
                    "spec.portalGroup",
                    "is for NGXStorage arrays; this target's array is Synology",
                ));
            }
            if !spec.initiators.is_empty() {
                return Err(InvalidSpec::unsupported(
                    "spec.initiators",
                    "Synology targets take allowed initiators through host groups, which the DSM API used here does not offer; remove the list or use CHAP",
                ));
            }
            if let Some(v) = spec.max_recv_seg_bytes {
                settings.insert("maxRecvSegBytes".to_string(), v.to_string());
            }
            if let Some(v) = spec.max_send_seg_bytes {
                settings.insert("maxSendSegBytes".to_string(), v.to_string());
            }
        }
        Vendor::NgxStorage => {
            if spec.max_recv_seg_bytes.is_some() || spec.max_send_seg_bytes.is_some() {
                return Err(InvalidSpec::new(
                    "spec.maxRecvSegBytes",
                    "maxRecvSegBytes and maxSendSegBytes are for Synology arrays; this target's array is NGXStorage",
                ));
            }
            if let Some(pg) = &spec.portal_group {
                settings.insert("portalGroup".to_string(), pg.clone());
            }
        }
    }
    Ok(DesiredTarget {
        name: array_name(t),
        enabled: spec.enabled,
        settings,
        chap: resolved.chap.clone(),
        initiators: spec.initiators.clone(),
        luns: resolved.lun_ids.iter().map(|(_, id)| id.clone()).collect(),
    })
}

fn observed_status(o: &ObservedTarget, names: &[(String, String)]) -> IscsiTargetObserved {
    IscsiTargetObserved {
        target_id: Some(o.id.clone()),
        iqn: Some(o.iqn.clone()),
        mapped_luns: o
            .mapped_luns
            .iter()
            .enumerate()
            .map(|(i, id)| MappedLun {
                external_id: id.clone(),
                lun: names
                    .iter()
                    .find(|(_, lid)| lid == id)
                    .map(|(n, _)| n.clone()),
                number: i32::try_from(i).ok(),
            })
            .collect(),
        mapped_lun_count: i32::try_from(o.mapped_luns.len()).unwrap_or(i32::MAX),
        connected_sessions: o.connected_sessions.and_then(|s| i32::try_from(s).ok()),
        status: o.status.clone(),
        auth_group_id: None,
    }
}

struct Run<'a> {
    target: &'a IscsiTarget,
    events: Vec<EngineEvent>,
    external_id: Option<String>,
    at_array: Option<IscsiTargetObserved>,
    chap_version: Option<String>,
}

impl<'a> Run<'a> {
    fn new(target: &'a IscsiTarget) -> Self {
        let previous = target.status.as_ref();
        Run {
            target,
            events: Vec::new(),
            external_id: previous.and_then(|s| s.common.external_id.clone()),
            at_array: previous.and_then(|s| s.at_array.clone()),
            chap_version: previous.and_then(|s| s.chap_secret_version.clone()),
        }
    }

    fn finish(
        self,
        ready: Option<ConditionState>,
        synced: ConditionState,
        progress: Progress,
    ) -> Outcome<IscsiTargetStatus> {
        let generation = self.target.metadata.generation;
        let previous = self.target.status.as_ref().map(|s| &s.common);
        Outcome {
            status: IscsiTargetStatus {
                common: CommonStatus {
                    observed_generation: generation,
                    conditions: conditions(previous, ready.as_ref(), &synced, generation),
                    external_id: self.external_id,
                },
                at_array: self.at_array,
                chap_secret_version: self.chap_version,
            },
            events: self.events,
            progress,
        }
    }

    fn stop(mut self, stop: Stop) -> Outcome<IscsiTargetStatus> {
        self.events.extend(stop.event);
        self.finish(stop.ready, stop.synced, stop.progress)
    }
}

fn action(op: &TargetOp) -> &'static str {
    match op {
        TargetOp::Create(_) => "Create",
        TargetOp::Rename { .. } => "Rename",
        TargetOp::SetSettings(_) | TargetOp::SetInitiators(_) => "Update",
        TargetOp::SetChap(_) => "SetChap",
        TargetOp::Enable => "Enable",
        TargetOp::Disable => "Disable",
        TargetOp::Unmap { .. } => "Unmap",
        TargetOp::Map { .. } => "Map",
        TargetOp::Delete { .. } => "Delete",
    }
}

fn describe(op: &TargetOp, names: &[(String, String)]) -> String {
    let lun = |id: &str| {
        names
            .iter()
            .find(|(_, l)| l == id)
            .map(|(n, _)| format!("Lun {n} ({id})"))
            .unwrap_or_else(|| format!("LUN {id}"))
    };
    match op {
        TargetOp::Create(d) => format!("created target {:?}", d.name),
        TargetOp::Rename { to } => format!("renamed the target to {to}"),
        TargetOp::SetSettings(s) => format!(
            "set {}",
            s.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // User names only: CHAP secrets never reach an Event.
        TargetOp::SetChap(Some(c)) => format!(
            "set CHAP (user {}{})",
            c.initiator.username,
            c.mutual
                .as_ref()
                .map(|m| format!(", mutual user {}", m.username))
                .unwrap_or_default()
        ),
        TargetOp::SetChap(None) => "turned CHAP off".to_string(),
        TargetOp::SetInitiators(i) => format!("set the allowed initiators to [{}]", i.join(", ")),
        TargetOp::Enable => "enabled the target".to_string(),
        TargetOp::Disable => "disabled the target".to_string(),
        TargetOp::Unmap { lun_id } => format!("unmapped {}", lun(lun_id)),
        TargetOp::Map { lun_id } => format!("mapped {}", lun(lun_id)),
        TargetOp::Delete { id } => format!("deleted target {id}"),
    }
}

/// Applies a target op to the shared view: the target itself, and the
/// LUN side of a mapping.
fn write_through(
    array: &ArrayHandle,
    target_id: &str,
    current: &Option<ObservedTarget>,
    op: &TargetOp,
) {
    let after = current.clone();
    array.cache.write_through(|v: &mut ArrayView| {
        put_target(v, target_id, after);
        match op {
            TargetOp::Map { lun_id } => {
                if let Some(l) = v.luns.iter_mut().find(|l| l.id == *lun_id)
                    && !l.mapped_targets.iter().any(|t| t == target_id)
                {
                    l.mapped_targets.push(target_id.to_string());
                }
            }
            TargetOp::Unmap { lun_id } => {
                if let Some(l) = v.luns.iter_mut().find(|l| l.id == *lun_id) {
                    l.mapped_targets.retain(|t| t != target_id);
                }
            }
            _ => {}
        }
    });
}

/// Reconciles one IscsiTarget (not being deleted) against its array.
pub async fn reconcile(
    target: &IscsiTarget,
    array: &ArrayHandle,
    cluster: &impl Cluster,
) -> Outcome<IscsiTargetStatus> {
    let mut run = Run::new(target);
    if paused(&target.metadata) {
        return run.stop(Stop::paused());
    }
    let obj = key(target);
    let resolved = match resolve(target, cluster).await {
        Ok(r) => r,
        Err(Unresolved::Invalid(i)) => return run.stop(Stop::invalid(&i)),
        Err(Unresolved::Waiting(why)) => {
            return run.finish(
                Some(ConditionState::no(ready_reason::UNAVAILABLE, why.clone())),
                ConditionState::no(synced_reason::RECONCILE_ERROR, why),
                Progress::Waiting,
            );
        }
        Err(Unresolved::Api(e)) => return run.stop(Stop::cluster(e)),
    };
    let mut desired_spec = match desired(target, array.vendor(), &resolved) {
        Ok(d) => d,
        Err(invalid) => return run.stop(Stop::invalid(&invalid)),
    };
    if let Err(e) = array.backend.normalize_target(&mut desired_spec).await {
        return run.stop(Stop::array(&e, "Observe", array));
    }
    let view = match array.cache.view(&array.backend, array.resync).await {
        Ok(v) => v,
        Err(e) => return run.stop(Stop::array(&e, "Observe", array)),
    };
    let record = CreateRecord::from_annotations(&annotations(target));
    let manage = target.spec.management_policy == ManagementPolicy::Manage;
    let identity = identity::resolve(&record, &desired_spec.name, &view.target_index());
    let names = &resolved.lun_ids;

    let mut list_after = None;
    let id = match settle_identity(
        identity,
        "target",
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
        Next::Create { .. } => {
            if let Err(e) = record_pending(cluster, &obj).await {
                return run.stop(Stop::cluster(e));
            }
            match array.backend.create_target(&desired_spec).await {
                Ok(id) => {
                    let created =
                        core::apply_model(None, &[TargetOp::Create(desired_spec.clone())], &id, "");
                    if created.as_ref().is_some_and(|c| c.iqn.is_empty()) {
                        // The array chose the IQN: learn it from a list made
                        // after the create (shared with concurrent creates).
                        list_after = Some(std::time::Instant::now());
                    } else {
                        array.cache.write_through(|v| put_target(v, &id, created));
                    }
                    run.events.push(EngineEvent::normal(
                        event_reason::CREATED,
                        "Create",
                        format!(
                            "created target {:?} (id {id}) on {}",
                            desired_spec.name, array.key
                        ),
                    ));
                    run.chap_version = resolved.chap_version.clone();
                    if let Err(e) = record_created(cluster, &obj, &id).await {
                        run.external_id = Some(id);
                        return run.stop(Stop::cluster(e));
                    }
                    id
                }
                Err(e) => {
                    if e.class == ErrorClass::Unreachable {
                        array.cache.invalidate();
                    } else {
                        record_failed(cluster, &obj).await;
                    }
                    return run.stop(Stop::array(&e, "Create", array));
                }
            }
        }
    };
    run.external_id = Some(id.clone());

    let view = match list_after {
        Some(since) => match array.cache.view_since(&array.backend, Some(since)).await {
            Ok(v) => v,
            Err(e) => return run.stop(Stop::array(&e, "Observe", array)),
        },
        None => array.cache.peek().unwrap_or(view),
    };
    let observed = view.target(&id).cloned();
    let Some(observed) = observed else {
        array.cache.invalidate();
        return run.finish(
            Some(ConditionState::no(
                ready_reason::CREATING,
                "the target is being created",
            )),
            ConditionState::no(
                synced_reason::RECONCILE_ERROR,
                "the created target is not visible yet",
            ),
            Progress::Waiting,
        );
    };
    let chap_rotated = resolved.chap.is_some() && resolved.chap_version != run.chap_version;
    let plan = core::diff(&desired_spec, Some(&observed), chap_rotated);
    let drift_reason = if spec_unchanged(
        target.status.as_ref().map(|s| &s.common),
        target.metadata.generation,
    ) {
        event_reason::DRIFT_CORRECTED
    } else {
        event_reason::UPDATED
    };
    let mut current = Some(observed);
    if manage {
        for op in &plan.ops {
            if let Err(e) = array.backend.update_target(&id, op).await {
                if matches!(
                    e.class,
                    ErrorClass::NotFound | ErrorClass::AlreadyExists | ErrorClass::Unreachable
                ) {
                    array.cache.invalidate();
                }
                run.at_array = current.as_ref().map(|c| observed_status(c, names));
                return run.stop(Stop::array(&e, action(op), array));
            }
            current = core::apply_model(current, std::slice::from_ref(op), &id, "");
            write_through(array, &id, &current, op);
            let reason = match op {
                TargetOp::Map { .. } => event_reason::MAPPED,
                TargetOp::Unmap { .. } => event_reason::UNMAPPED,
                // A new Secret is a change of what is asked for, not drift.
                TargetOp::SetChap(_) if chap_rotated => event_reason::UPDATED,
                _ => drift_reason,
            };
            run.events
                .push(EngineEvent::normal(reason, action(op), describe(op, names)));
            if let TargetOp::SetChap(_) = op {
                run.chap_version = resolved.chap_version.clone();
            }
        }
        if resolved.chap.is_none() {
            run.chap_version = None;
        } else if plan.ops.is_empty() && run.chap_version.is_none() {
            // CHAP already matched (adopted or recovered): remember the version.
            run.chap_version = resolved.chap_version.clone();
        }
    }
    run.at_array = current.as_ref().map(|c| observed_status(c, names));

    let pending: Vec<String> = if manage {
        Vec::new()
    } else {
        plan.drift.iter().map(|d| d.to_string()).collect()
    };
    let ready = if !pending.is_empty() {
        ConditionState::no(
            ready_reason::DRIFTED,
            format!(
                "not corrected (managementPolicy Observe): {}",
                pending.join("; ")
            ),
        )
    } else {
        ConditionState::yes(
            ready_reason::AVAILABLE,
            format!("target {id} on {} matches the spec", array.key),
        )
    };
    if !resolved.waiting_for.is_empty() {
        let why = format!(
            "spec.luns: waiting for Lun {} to be created on the array",
            resolved.waiting_for.join(", ")
        );
        return run.finish(
            Some(ready),
            ConditionState::no(synced_reason::RECONCILE_ERROR, why),
            Progress::Waiting,
        );
    }
    run.finish(
        Some(ready),
        ConditionState::yes(
            synced_reason::RECONCILE_SUCCESS,
            "the array was observed and the spec applied",
        ),
        Progress::Converged,
    )
}

/// Cleans up one IscsiTarget being deleted: per deletionPolicy, unmaps every
/// LUN and deletes it, or leaves it.
pub async fn cleanup(
    target: &IscsiTarget,
    array: Option<&ArrayHandle>,
) -> Cleanup<IscsiTargetStatus> {
    let record = CreateRecord::from_annotations(&annotations(target));
    let policy = if target.spec.management_policy == ManagementPolicy::Observe {
        DeletionPolicy::Retain
    } else {
        effective_deletion_policy(target.spec.deletion_policy, record.created_by_operator())
    };
    let id = record.external_name.clone().or_else(|| {
        target
            .status
            .as_ref()
            .and_then(|s| s.common.external_id.clone())
    });
    if policy == DeletionPolicy::Retain || (id.is_none() && !record.create_in_doubt()) {
        return Cleanup::Done { events: Vec::new() };
    }
    let mut run = Run::new(target);
    if paused(&target.metadata) {
        return Cleanup::Held(run.stop(Stop::paused_deletion()));
    }
    let Some(array) = array else {
        return Cleanup::Held(run.stop(Stop::no_array_for_deletion("target")));
    };
    let view = match array.cache.view(&array.backend, array.resync).await {
        Ok(v) => v,
        Err(e) => return Cleanup::Held(run.stop(Stop::array(&e, "Observe", array))),
    };
    let observed = match &id {
        Some(id) => view.target(id).cloned(),
        None => view.target_by_name(&array_name(target)).cloned(),
    };
    let mut events = Vec::new();
    let mut current = observed.clone();
    for op in core::delete_ops(observed.as_ref()) {
        let Some(tid) = current.as_ref().map(|c| c.id.clone()) else {
            break;
        };
        let result = match &op {
            TargetOp::Delete { id } => array.backend.delete_target(id).await,
            other => array.backend.update_target(&tid, other).await,
        };
        if let Err(e) = result
            && e.class != ErrorClass::NotFound
        {
            array.cache.invalidate();
            let mut stop = Stop::array(&e, action(&op), array);
            stop.ready = Some(ConditionState::no(
                ready_reason::DELETING,
                "deleting the target from the array",
            ));
            stop.synced.message.push_str(
                "; the target is kept until this succeeds (to leave it on the array instead, set spec.deletionPolicy: Retain)",
            );
            run.events = events;
            return Cleanup::Held(run.stop(stop));
        }
        current = core::apply_model(current, std::slice::from_ref(&op), &tid, "");
        write_through(array, &tid, &current, &op);
        let reason = match op {
            TargetOp::Unmap { .. } => event_reason::UNMAPPED,
            _ => event_reason::DELETED,
        };
        events.push(EngineEvent::normal(
            reason,
            action(&op),
            format!("{} on {}", describe(&op, &[]), array.key),
        ));
    }
    Cleanup::Done { events }
}
