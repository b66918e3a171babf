//! Reconcile and clean up one IscsiTarget: its settings, CHAP, allowed
//! initiators and LUN mappings.

use std::collections::BTreeMap;

use crate::array::error::ErrorClass;
use crate::array::types::{Chap, ChapCredential, ObservedTarget};
use crate::crd::IscsiTarget;
use crate::crd::iscsi_target::{IscsiTargetObserved, IscsiTargetStatus, MappedLun};
use crate::crd::shared::{
    ANNOTATION_CREATE_FAILED, ANNOTATION_CREATE_PENDING, ANNOTATION_CREATE_SUCCEEDED,
    ANNOTATION_EXTERNAL_NAME, ANNOTATION_PAUSED, CommonStatus, DeletionPolicy, ManagementPolicy,
    SecretRef, ready_reason, synced_reason,
};
use crate::crd::storage_array::Vendor;
use crate::reconcile::identity::{self, CreateRecord, Identity};
use crate::reconcile::target::{self as core, DesiredTarget, TargetOp};

use super::conditions::{ConditionState, set_ready_and_synced};
use super::lun::error_reason;
use super::observation::{ArrayView, put_target};
use super::spec_error::InvalidSpec;
use super::{
    ArrayHandle, Cleanup, Cluster, EngineEvent, ObjectKey, Outcome, Progress,
    effective_deletion_policy, event_reason, timestamp,
};

fn key(t: &IscsiTarget) -> ObjectKey {
    ObjectKey {
        kind: "IscsiTarget",
        namespace: t.metadata.namespace.clone().unwrap_or_default(),
        name: t.metadata.name.clone().unwrap_or_default(),
    }
}

fn annotations(t: &IscsiTarget) -> BTreeMap<String, String> {
    t.metadata.annotations.clone().unwrap_or_default()
}

/// The array-side name: `spec.name`, else `metadata.name`.
pub fn array_name(t: &IscsiTarget) -> String {
    t.spec
        .name
        .clone()
        .or_else(|| t.metadata.name.clone())
        .unwrap_or_default()
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
    Api(String),
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
        Err(e) => return Err(Unresolved::Api(e.to_string())),
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
            Err(e) => return Err(Unresolved::Api(e.to_string())),
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
        let mut conditions = self
            .target
            .status
            .as_ref()
            .map(|s| s.common.conditions.clone())
            .unwrap_or_default();
        set_ready_and_synced(
            &mut conditions,
            ready.as_ref(),
            &synced,
            generation,
            &super::now(),
        );
        Outcome {
            status: IscsiTargetStatus {
                common: CommonStatus {
                    observed_generation: generation,
                    conditions,
                    external_id: self.external_id,
                },
                at_array: self.at_array,
                chap_secret_version: self.chap_version,
            },
            events: self.events,
            progress,
        }
    }

    fn array_error(
        mut self,
        e: &crate::array::backend::BackendError,
        action: &'static str,
        array: &ArrayHandle,
    ) -> Outcome<IscsiTargetStatus> {
        let (reason, progress) = error_reason(e);
        let text = format!("{action} on {}: {e}", array.key);
        self.events.push(EngineEvent::warning(
            event_reason::RECONCILE_ERROR,
            action,
            text.clone(),
        ));
        let ready = (reason == synced_reason::ARRAY_UNREACHABLE).then(|| {
            ConditionState::no(
                ready_reason::UNAVAILABLE,
                format!("array {} cannot be reached", array.key),
            )
        });
        self.finish(ready, ConditionState::no(reason, text), progress)
    }
}

fn paused(t: &IscsiTarget) -> bool {
    annotations(t)
        .get(ANNOTATION_PAUSED)
        .is_some_and(|v| v == "true")
}

fn spec_unchanged(t: &IscsiTarget) -> bool {
    let Some(status) = &t.status else {
        return false;
    };
    let synced = status
        .common
        .conditions
        .iter()
        .any(|c| c.type_ == crate::crd::shared::CONDITION_SYNCED && c.status == "True");
    synced && status.common.observed_generation == t.metadata.generation
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
    if paused(target) {
        return run.finish(
            None,
            ConditionState::no(
                synced_reason::PAUSED,
                format!("annotation {ANNOTATION_PAUSED} is \"true\": no array calls"),
            ),
            Progress::Converged,
        );
    }
    let obj = key(target);
    let resolved = match resolve(target, cluster).await {
        Ok(r) => r,
        Err(Unresolved::Invalid(i)) => {
            return run.finish(
                Some(ConditionState::no(
                    ready_reason::UNAVAILABLE,
                    "the spec cannot be applied",
                )),
                ConditionState::no(i.reason(), i.to_string()),
                Progress::Converged,
            );
        }
        Err(Unresolved::Waiting(why)) => {
            return run.finish(
                Some(ConditionState::no(ready_reason::UNAVAILABLE, why.clone())),
                ConditionState::no(synced_reason::RECONCILE_ERROR, why),
                Progress::Waiting,
            );
        }
        Err(Unresolved::Api(e)) => {
            return run.finish(
                None,
                ConditionState::no(synced_reason::RECONCILE_ERROR, e),
                Progress::Failed,
            );
        }
    };
    let mut desired_spec = match desired(target, array.vendor(), &resolved) {
        Ok(d) => d,
        Err(invalid) => {
            return run.finish(
                Some(ConditionState::no(
                    ready_reason::UNAVAILABLE,
                    "the spec cannot be applied",
                )),
                ConditionState::no(invalid.reason(), invalid.to_string()),
                Progress::Converged,
            );
        }
    };
    if let Err(e) = array.backend.normalize_target(&mut desired_spec).await {
        return run.array_error(&e, "Observe", array);
    }
    let view = match array.cache.view(&array.backend, array.resync).await {
        Ok(v) => v,
        Err(e) => return run.array_error(&e, "Observe", array),
    };
    let record = CreateRecord::from_annotations(&annotations(target));
    let manage = target.spec.management_policy == ManagementPolicy::Manage;
    let identity = identity::resolve(&record, &desired_spec.name, &view.target_index());
    let names = &resolved.lun_ids;

    let mut list_after = None;
    let id = match identity {
        Identity::Existing { id, recovered } => {
            if recovered {
                let mut a = BTreeMap::new();
                a.insert(ANNOTATION_EXTERNAL_NAME.to_string(), id.clone());
                a.insert(ANNOTATION_CREATE_SUCCEEDED.to_string(), timestamp());
                if let Err(e) = cluster.annotate(&obj, a).await {
                    return run.finish(
                        None,
                        ConditionState::no(synced_reason::RECONCILE_ERROR, e.to_string()),
                        Progress::Failed,
                    );
                }
            }
            id
        }
        Identity::AlreadyExists { existing_id } => {
            return run.finish(
                Some(ConditionState::no(ready_reason::UNAVAILABLE, "not adopted")),
                ConditionState::no(
                    synced_reason::ALREADY_EXISTS,
                    format!(
                        "a target named {:?} already exists on {} (id {existing_id}); it is not taken over silently: to adopt it, set annotation {ANNOTATION_EXTERNAL_NAME}: {existing_id}",
                        desired_spec.name, array.key
                    ),
                ),
                Progress::Converged,
            );
        }
        Identity::AdoptedMissing { id } => {
            return run.finish(
                Some(ConditionState::no(ready_reason::UNAVAILABLE, format!("target {id} is not on the array"))),
                ConditionState::no(
                    synced_reason::RECONCILE_ERROR,
                    format!("annotation {ANNOTATION_EXTERNAL_NAME} names target id {id}, which {} does not have; it is adopted, so it is not recreated", array.key),
                ),
                Progress::Failed,
            );
        }
        Identity::Create | Identity::Recreate { .. } if !manage => {
            return run.finish(
                Some(ConditionState::no(
                    ready_reason::UNAVAILABLE,
                    format!("no target named {:?} on {}", desired_spec.name, array.key),
                )),
                ConditionState::yes(
                    synced_reason::RECONCILE_SUCCESS,
                    "managementPolicy is Observe: the operator never creates",
                ),
                Progress::Converged,
            );
        }
        Identity::Create | Identity::Recreate { .. } => {
            let mut pending = BTreeMap::new();
            pending.insert(ANNOTATION_CREATE_PENDING.to_string(), timestamp());
            if let Err(e) = cluster.annotate(&obj, pending).await {
                return run.finish(
                    None,
                    ConditionState::no(synced_reason::RECONCILE_ERROR, e.to_string()),
                    Progress::Failed,
                );
            }
            match array.backend.create_target(&desired_spec).await {
                Ok(id) => {
                    let created =
                        core::apply_model(None, &[TargetOp::Create(desired_spec.clone())], &id, "");
                    let generated_iqn = created.as_ref().map(|c| c.iqn.is_empty()).unwrap_or(false);
                    if generated_iqn {
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
                    let mut done = BTreeMap::new();
                    done.insert(ANNOTATION_EXTERNAL_NAME.to_string(), id.clone());
                    done.insert(ANNOTATION_CREATE_SUCCEEDED.to_string(), timestamp());
                    if let Err(e) = cluster.annotate(&obj, done).await {
                        run.external_id = Some(id);
                        return run.finish(
                            None,
                            ConditionState::no(synced_reason::RECONCILE_ERROR, e.to_string()),
                            Progress::Failed,
                        );
                    }
                    id
                }
                Err(e) => {
                    if e.class == ErrorClass::Unreachable {
                        array.cache.invalidate();
                    } else {
                        let mut failed = BTreeMap::new();
                        failed.insert(ANNOTATION_CREATE_FAILED.to_string(), timestamp());
                        let _ = cluster.annotate(&obj, failed).await;
                    }
                    return run.array_error(&e, "Create", array);
                }
            }
        }
    };
    run.external_id = Some(id.clone());

    let view = match list_after {
        Some(since) => match array.cache.view_since(&array.backend, Some(since)).await {
            Ok(v) => v,
            Err(e) => return run.array_error(&e, "Observe", array),
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
    let drift_reason = if spec_unchanged(target) {
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
                return run.array_error(&e, action(op), array);
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
    if paused(target) {
        return Cleanup::Held(run.finish(
            Some(ConditionState::no(
                ready_reason::DELETING,
                "deletion waits for the pause annotation to be removed",
            )),
            ConditionState::no(
                synced_reason::PAUSED,
                format!("annotation {ANNOTATION_PAUSED} is \"true\": no array calls"),
            ),
            Progress::Converged,
        ));
    }
    let Some(array) = array else {
        return Cleanup::Held(run.finish(
            Some(ConditionState::no(ready_reason::DELETING, "the array is not reachable")),
            ConditionState::no(
                synced_reason::ARRAY_UNREACHABLE,
                "the StorageArray is not ready, so the target cannot be deleted; to leave it on the array instead, set spec.deletionPolicy: Retain",
            ),
            Progress::Failed,
        ));
    };
    let view = match array.cache.view(&array.backend, array.resync).await {
        Ok(v) => v,
        Err(e) => return Cleanup::Held(run.array_error(&e, "Observe", array)),
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
            run.events = events;
            let text = format!(
                "{e}; the target is kept until this succeeds (to leave it on the array instead, set spec.deletionPolicy: Retain)"
            );
            let (reason, progress) = error_reason(&e);
            run.events.push(EngineEvent::warning(
                event_reason::RECONCILE_ERROR,
                action(&op),
                text.clone(),
            ));
            return Cleanup::Held(run.finish(
                Some(ConditionState::no(
                    ready_reason::DELETING,
                    "deleting the target from the array",
                )),
                ConditionState::no(reason, text),
                progress,
            ));
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
