//! The planner: connects to each StorageArray, loads the objects into an
//! in-memory cluster, and runs the controllers' own engine on each object,
//! in the order the operator would make them, under a dry run
//! ([`crate::engine::dry_run`]): the calls that would change an array are
//! recorded, never sent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use kube::Resource;
use serde::Serialize;

use crate::array::backend::{Backend, BackendConfig};
use crate::controller::arrays::ArrayAccessError;
use crate::controller::managed::ArrayUnavailable;
use crate::crd::ReplicationPlan;
use crate::crd::shared::{CONDITION_READY, CONDITION_SYNCED, ready_reason, synced_reason};
use crate::engine::clock::SystemClock;
use crate::engine::dry_run::{Drained, DryRun};
use crate::engine::memory::MemoryCluster;
use crate::engine::{
    ArrayHandle, ObservationCache, Progress, SecretData, lifecycle, replication_plan,
    snapshot_schedule,
};
use crate::model::SecretString;

use super::input::Manifests;
use super::report::{ArrayReport, Call, Change, ObjectPlan, PlanReport, SCHEMA_INVALID, Verdict};

/// How many passes a ReplicationPlan gets when a pass asks to come back at
/// once (a manual sync is recorded in status first, then started).
const REPLICATION_PASSES: usize = 3;

/// One StorageArray's configuration, or why it has none.
pub type ArrayConfig = Result<(BackendConfig, Duration), ArrayAccessError>;

/// The objects of `m` in the order the operator makes them: Luns (clone
/// sources before their clones), IscsiTargets, SnapshotSchedules,
/// ReplicationPlans, VirtualMachines; by namespace and name within a kind.
pub fn ordered(m: &Manifests) -> Vec<ObjectRef> {
    let key = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        )
    };
    let mut out = Vec::new();
    // Luns: a clone after the Lun it clones (a source outside the input, or
    // a cycle, leaves the rest in name order at the end).
    let mut luns: Vec<(String, String, Option<String>)> = m
        .luns
        .iter()
        .map(|l| {
            let (ns, name) = key(&l.metadata);
            let source = l
                .spec
                .source
                .as_ref()
                .and_then(|s| s.lun_ref.as_ref())
                .map(|r| r.name.clone());
            (ns, name, source)
        })
        .collect();
    luns.sort();
    let mut placed: BTreeSet<(String, String)> = BTreeSet::new();
    let present: BTreeSet<(String, String)> = luns
        .iter()
        .map(|(ns, n, _)| (ns.clone(), n.clone()))
        .collect();
    while placed.len() < luns.len() {
        let before = placed.len();
        for (ns, name, source) in &luns {
            let k = (ns.clone(), name.clone());
            if placed.contains(&k) {
                continue;
            }
            let ready = source.as_ref().is_none_or(|s| {
                let sk = (ns.clone(), s.clone());
                !present.contains(&sk) || placed.contains(&sk)
            });
            if ready {
                placed.insert(k.clone());
                out.push(ObjectRef::new("Lun", &k.0, &k.1));
            }
        }
        if placed.len() == before {
            for (ns, name, _) in &luns {
                let k = (ns.clone(), name.clone());
                if placed.insert(k.clone()) {
                    out.push(ObjectRef::new("Lun", &k.0, &k.1));
                }
            }
        }
    }
    let mut add = |kind: &'static str, mut keys: Vec<(String, String)>| {
        keys.sort();
        out.extend(
            keys.into_iter()
                .map(|(ns, n)| ObjectRef::new(kind, &ns, &n)),
        );
    };
    add(
        "IscsiTarget",
        m.targets.iter().map(|o| key(&o.metadata)).collect(),
    );
    add(
        "SnapshotSchedule",
        m.schedules.iter().map(|o| key(&o.metadata)).collect(),
    );
    add(
        "ReplicationPlan",
        m.replication_plans
            .iter()
            .map(|o| key(&o.metadata))
            .collect(),
    );
    add(
        "VirtualMachine",
        m.vms.iter().map(|o| key(&o.metadata)).collect(),
    );
    out
}

/// One object of the input, by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The kind.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    fn new(kind: &'static str, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// The in-memory cluster holding the input's objects and Secrets, as the
/// engine reads them.
pub fn cluster_of(m: &Manifests) -> MemoryCluster {
    let cluster = MemoryCluster::default();
    for l in &m.luns {
        cluster.put_lun(l.clone());
    }
    for t in &m.targets {
        cluster.put_target(t.clone());
    }
    for v in &m.vms {
        cluster.put_vm(v.clone());
    }
    for ((ns, name), secret) in &m.secrets {
        let data = secret
            .data
            .iter()
            .flatten()
            .filter_map(|(k, v)| {
                String::from_utf8(v.0.clone())
                    .ok()
                    .map(|text| (k.clone(), SecretString::new(text)))
            })
            .collect();
        cluster.put_secret(
            ns,
            name,
            SecretData {
                data,
                resource_version: "1".into(),
            },
        );
    }
    cluster
}

/// A connected array, or why it is not.
pub struct Connected {
    /// `namespace/name` → the handle (its `dry_run` set) or the error.
    pub handles: BTreeMap<String, Result<ArrayHandle, ArrayAccessError>>,
    /// One report per StorageArray.
    pub reports: Vec<ArrayReport>,
}

/// Connects to every StorageArray of `m` with its configuration; each
/// handle records into `dry_run`. `simulated` marks the reports.
pub async fn connect(
    m: &Manifests,
    configs: BTreeMap<String, ArrayConfig>,
    dry_run: &DryRun,
    simulated: bool,
) -> Connected {
    let mut handles = BTreeMap::new();
    let mut reports = Vec::new();
    let mut arrays: Vec<_> = m.storage_arrays.iter().collect();
    arrays.sort_by_key(|a| (a.metadata.namespace.clone(), a.metadata.name.clone()));
    for sa in arrays {
        let ns = sa.metadata.namespace.clone().unwrap_or_default();
        let name = sa.metadata.name.clone().unwrap_or_default();
        let key = format!("{ns}/{name}");
        let mut report = ArrayReport {
            namespace: ns,
            name,
            vendor: match sa.spec.vendor {
                crate::crd::storage_array::Vendor::Synology => "Synology",
                crate::crd::storage_array::Vendor::NgxStorage => "NGXStorage",
            }
            .to_string(),
            endpoint: sa.spec.endpoint.clone(),
            simulated,
            reachable: false,
            version: None,
            error: None,
        };
        let handle = match configs.get(&key) {
            None => Err(ArrayAccessError::NotFound(key.clone())),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok((config, resync))) => match Backend::connect(config.clone()).await {
                Ok(backend) => match backend.info().await {
                    Ok(info) => {
                        report.version = info.version.or(info.model);
                        Ok(ArrayHandle {
                            key: key.clone(),
                            backend,
                            cache: ObservationCache::default(),
                            resync: *resync,
                            dry_run: Some(dry_run.clone()),
                        })
                    }
                    Err(error) => {
                        backend.close().await;
                        Err(ArrayAccessError::Connect {
                            array: key.clone(),
                            error,
                        })
                    }
                },
                Err(error) => Err(ArrayAccessError::Connect {
                    array: key.clone(),
                    error,
                }),
            },
        };
        match &handle {
            Ok(_) => report.reachable = true,
            Err(e) => report.error = Some(e.to_string()),
        }
        reports.push(report);
        handles.insert(key, handle);
    }
    Connected { handles, reports }
}

/// Runs the plan of every object of `m` on the connected arrays, and logs
/// out of them.
pub async fn plan_objects(m: &Manifests, connected: Connected, dry_run: &DryRun) -> PlanReport {
    let cluster = cluster_of(m);
    let mut objects = Vec::new();
    for r in ordered(m) {
        objects.push(plan_one(m, &r, &connected.handles, &cluster, dry_run).await);
    }
    objects.extend(schema_refusals(m));
    // Each refused manifest among the objects of its kind; the sort is
    // stable, so the order within a kind (clones after their sources) holds.
    objects.sort_by_key(|o| kind_rank(&o.kind));
    for h in connected.handles.values().flatten() {
        h.backend.close().await;
    }
    PlanReport::new(connected.reports, objects, m.ignored.clone())
}

/// The position of a kind in the order the operator makes objects
/// (StorageArrays first: a refused one is reported among the objects).
fn kind_rank(kind: &str) -> usize {
    [
        "StorageArray",
        "Lun",
        "IscsiTarget",
        "SnapshotSchedule",
        "ReplicationPlan",
        "VirtualMachine",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap_or(usize::MAX)
}

/// The objects the CRD schema refuses ([`Manifests::invalid`]), refused
/// with [`SCHEMA_INVALID`] and the apiserver's failures as the message:
/// in a cluster they would never be stored, so no controller and no array
/// sees them. By namespace and name within a kind.
pub fn schema_refusals(m: &Manifests) -> Vec<ObjectPlan> {
    let mut invalid: Vec<_> = m.invalid.iter().collect();
    invalid.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    invalid
        .into_iter()
        .map(|o| ObjectPlan {
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            array: o.array.clone(),
            verdict: Verdict::Refused,
            calls: Vec::new(),
            changes: Vec::new(),
            reason: Some(SCHEMA_INVALID.to_string()),
            message: Some(o.failures.join("; ")),
            notes: Vec::new(),
        })
        .collect()
}

fn find<'a, K: Resource>(list: &'a [K], r: &ObjectRef) -> Option<&'a K> {
    list.iter().find(|o| {
        o.meta().namespace.as_deref() == Some(r.namespace.as_str())
            && o.meta().name.as_deref() == Some(r.name.as_str())
    })
}

async fn plan_one(
    m: &Manifests,
    r: &ObjectRef,
    handles: &BTreeMap<String, Result<ArrayHandle, ArrayAccessError>>,
    cluster: &MemoryCluster,
    dry_run: &DryRun,
) -> ObjectPlan {
    let array_ref = match r.kind {
        "Lun" => find(&m.luns, r).map(|o| o.spec.array_ref.name.clone()),
        "IscsiTarget" => find(&m.targets, r).map(|o| o.spec.array_ref.name.clone()),
        "SnapshotSchedule" => find(&m.schedules, r).map(|o| o.spec.array_ref.name.clone()),
        "ReplicationPlan" => find(&m.replication_plans, r).map(|o| o.spec.array_ref.name.clone()),
        _ => find(&m.vms, r).map(|o| o.spec.array_ref.name.clone()),
    }
    .unwrap_or_default();
    let plan = ObjectPlan {
        kind: r.kind.to_string(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        array: array_ref.clone(),
        verdict: Verdict::InSync,
        calls: Vec::new(),
        changes: Vec::new(),
        reason: None,
        message: None,
        notes: Vec::new(),
    };
    let key = format!("{}/{array_ref}", r.namespace);
    let handle = match handles.get(&key) {
        Some(Ok(h)) => h,
        Some(Err(e)) => return refused_for_array(plan, e),
        None => return refused_for_array(plan, &ArrayAccessError::NotFound(key)),
    };
    // Anything recorded before belongs to no object.
    dry_run.drain();
    let (status, progress) = match r.kind {
        "Lun" => {
            let Some(obj) = cluster.lun(&r.namespace, &r.name) else {
                return plan;
            };
            let out = lifecycle::reconcile(&obj, handle, cluster).await;
            let mut stored = cluster.lun(&r.namespace, &r.name).unwrap_or(obj);
            stored.status = Some(out.status.clone());
            cluster.put_lun(stored);
            (json(&out.status), out.progress)
        }
        "IscsiTarget" => {
            let Some(obj) = cluster.target(&r.namespace, &r.name) else {
                return plan;
            };
            let out = lifecycle::reconcile(&obj, handle, cluster).await;
            let mut stored = cluster.target(&r.namespace, &r.name).unwrap_or(obj);
            stored.status = Some(out.status.clone());
            cluster.put_target(stored);
            (json(&out.status), out.progress)
        }
        "VirtualMachine" => {
            let Some(obj) = cluster.vm(&r.namespace, &r.name) else {
                return plan;
            };
            let out = lifecycle::reconcile(&obj, handle, cluster).await;
            let mut stored = cluster.vm(&r.namespace, &r.name).unwrap_or(obj);
            stored.status = Some(out.status.clone());
            cluster.put_vm(stored);
            (json(&out.status), out.progress)
        }
        "SnapshotSchedule" => {
            let Some(obj) = find(&m.schedules, r) else {
                return plan;
            };
            let out =
                snapshot_schedule::reconcile(obj, handle, &cluster.luns(), &SystemClock).await;
            (json(&out.outcome.status), out.outcome.progress)
        }
        _ => {
            let Some(obj) = find(&m.replication_plans, r) else {
                return plan;
            };
            let mut obj: ReplicationPlan = obj.clone();
            let mut last = None;
            for _ in 0..REPLICATION_PASSES {
                let out = replication_plan::reconcile(&obj, handle, &SystemClock).await;
                let again = out.wake_at.is_some_and(|w| w <= Utc::now());
                obj.status = Some(out.outcome.status.clone());
                last = Some(out);
                if !again {
                    break;
                }
            }
            match last {
                Some(out) => (json(&out.outcome.status), out.outcome.progress),
                None => return plan,
            }
        }
    };
    judge(with_recorded(plan, dry_run.drain()), &status, progress)
}

/// The plan with what the dry run recorded for it.
fn with_recorded(mut plan: ObjectPlan, drained: Drained) -> ObjectPlan {
    plan.calls = drained
        .calls
        .into_iter()
        .map(|c| Call {
            action: c.action.to_string(),
            reason: c.reason.to_string(),
            note: c.note,
        })
        .collect();
    plan.changes = drained
        .drift
        .into_iter()
        .map(|d| Change {
            field: d.field,
            from: d.observed,
            to: d.desired,
            correctable: d.correctable,
        })
        .collect();
    plan.notes = drained.notes;
    plan
}

fn json(status: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_default()
}

/// The condition `type_` of a status (conditions sit at the top of every
/// kind's status).
fn condition(status: &serde_json::Value, type_: &str) -> Option<(String, String, String)> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(type_))
        .map(|c| {
            let s = |k: &str| {
                c.get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            (s("status"), s("reason"), s("message"))
        })
}

fn judge(mut plan: ObjectPlan, status: &serde_json::Value, progress: Progress) -> ObjectPlan {
    let synced = condition(status, CONDITION_SYNCED);
    let ready = condition(status, CONDITION_READY);
    let synced_reason = synced.as_ref().map(|s| s.1.as_str()).unwrap_or_default();
    if synced_reason == synced_reason::PAUSED {
        plan.verdict = Verdict::Paused;
        plan.reason = Some(synced_reason.to_string());
        plan.message = synced.map(|s| s.2);
        return plan;
    }
    match progress {
        Progress::Stalled | Progress::Failed => {
            plan.verdict = Verdict::Refused;
            if let Some((_, reason, message)) = synced.filter(|s| s.0 == "False") {
                plan.reason = Some(reason);
                plan.message = Some(message);
            } else if let Some((_, reason, message)) = ready {
                plan.reason = Some(reason);
                plan.message = Some(message);
            }
        }
        _ if !plan.calls.is_empty() => {
            plan.verdict = Verdict::Changes;
            if progress == Progress::Waiting {
                plan.message = ready.map(|r| r.2);
            }
        }
        Progress::Waiting => {
            plan.verdict = Verdict::Waiting;
            plan.message = ready.map(|r| r.2);
        }
        Progress::Converged => {
            let drifted = ready
                .as_ref()
                .is_some_and(|r| r.0 == "False" && r.1 == ready_reason::DRIFTED);
            plan.verdict = if drifted {
                Verdict::Drifted
            } else {
                Verdict::InSync
            };
            plan.message = ready.map(|r| r.2);
        }
    }
    plan
}

fn refused_for_array(mut plan: ObjectPlan, e: &ArrayAccessError) -> ObjectPlan {
    let down = ArrayUnavailable::of(e, None, Some(1));
    plan.verdict = Verdict::Refused;
    plan.reason = Some(down.reason.to_string());
    plan.message = Some(down.text);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lun(name: &str, source: Option<&str>) -> String {
        let source = source
            .map(|s| format!(", source: {{lunRef: {{name: {s}}}}}"))
            .unwrap_or_default();
        format!(
            "apiVersion: array-operator.io/v1alpha1\nkind: Lun\nmetadata: {{name: {name}}}\nspec: {{arrayRef: {{name: x}}, size: 1Gi{source}}}\n---\n"
        )
    }

    #[test]
    fn clones_come_after_their_sources_whatever_their_names() {
        let text = [
            lun("a-clone-of-clone", Some("b-clone")),
            lun("b-clone", Some("c-source")),
            lun("c-source", None),
            lun("d-plain", None),
            "apiVersion: array-operator.io/v1alpha1\nkind: IscsiTarget\nmetadata: {name: t}\nspec: {arrayRef: {name: x}, luns: [a-clone-of-clone]}\n".to_string(),
        ]
        .concat();
        let m = super::super::input::parse(&text).expect("parses");
        let order: Vec<String> = ordered(&m)
            .into_iter()
            .map(|r| format!("{} {}", r.kind, r.name))
            .collect();
        assert_eq!(
            order,
            [
                "Lun c-source",
                "Lun d-plain",
                "Lun b-clone",
                "Lun a-clone-of-clone",
                "IscsiTarget t"
            ]
        );
    }
}
