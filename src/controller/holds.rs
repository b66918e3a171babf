//! Deletion order: a Flux prune or a namespace deletion removes everything at
//! once, and Luns and targets need their StorageArray and its Secrets to
//! clean up on the array. So:
//!
//! - a StorageArray carries [`IN_USE_FINALIZER`] for its whole life, and
//!   once deleted keeps it while any Lun, IscsiTarget, SnapshotSchedule,
//!   ReplicationPlan or VirtualMachine of its namespace still names it in
//!   `spec.arrayRef.name`;
//! - each Secret a StorageArray names (`spec.credentialsSecretRef`,
//!   `spec.tls.caSecretRef`) carries [`SECRET_FINALIZER`] while a
//!   StorageArray that names it exists, and loses it when the last one is
//!   released.
//!
//! Everything here is pure: the reconcile reads the reflector stores, asks
//! [`plan`] and sends the patches it returns. Finalizer patches are JSON
//! merge patches of `metadata.finalizers` carrying the object's
//! `resourceVersion`, so a concurrent change (another controller's
//! finalizer on a user's Secret) makes the patch fail with a conflict and
//! the next reconcile recomputes, instead of overwriting it.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::crd::{
    IscsiTarget, Lun, ReplicationPlan, SnapshotSchedule, StorageArray, VirtualMachine,
};

/// Held on a StorageArray while it exists and, once deleted, while objects
/// still reference it.
pub const IN_USE_FINALIZER: &str = "array-operator.io/in-use";

/// Held on a Secret while a StorageArray that names it exists.
pub const SECRET_FINALIZER: &str = "array-operator.io/storage-array-credentials";

/// A kind that names a StorageArray in `spec.arrayRef.name`.
pub trait ArrayReferrer: Resource<DynamicType = ()> + Clone {
    /// The kind, for messages.
    const KIND: &'static str;
    /// `spec.arrayRef.name`.
    fn array_name(&self) -> &str;
}

macro_rules! referrer {
    ($t:ty, $kind:literal) => {
        impl ArrayReferrer for $t {
            const KIND: &'static str = $kind;
            fn array_name(&self) -> &str {
                &self.spec.array_ref.name
            }
        }
    };
}
referrer!(Lun, "Lun");
referrer!(IscsiTarget, "IscsiTarget");
referrer!(SnapshotSchedule, "SnapshotSchedule");
referrer!(ReplicationPlan, "ReplicationPlan");
referrer!(VirtualMachine, "VirtualMachine");

/// `Kind/name` of each object in `objects` that references StorageArray
/// `namespace/array`, Terminating ones included (they need the array to
/// clean up).
pub fn referencing<K: ArrayReferrer>(
    objects: &[Arc<K>],
    namespace: &str,
    array: &str,
) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace) && o.array_name() == array)
        .map(|o| format!("{}/{}", K::KIND, o.name_any()))
        .collect()
}

/// The reflector stores the StorageArray controller reads.
#[derive(Clone)]
pub struct Stores {
    /// Luns.
    pub luns: Store<Lun>,
    /// IscsiTargets.
    pub targets: Store<IscsiTarget>,
    /// SnapshotSchedules.
    pub schedules: Store<SnapshotSchedule>,
    /// ReplicationPlans.
    pub plans: Store<ReplicationPlan>,
    /// VirtualMachines.
    pub machines: Store<VirtualMachine>,
    /// Secrets, metadata only.
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// The watches' first-list flags, by kind (`luns`, ...), which
    /// [`Stores::ready`] waits on: any number of reconciles can wait on them
    /// at once, where `Store::wait_until_ready` wakes only one. Empty: wait
    /// on the stores themselves (tests that fill them by hand).
    pub listed: Vec<(&'static str, super::listed::Listed)>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// Every object that references StorageArray `namespace/array`, sorted.
    pub fn referrers(&self, namespace: &str, array: &str) -> Vec<String> {
        let mut all = referencing(&self.luns.state(), namespace, array);
        all.extend(referencing(&self.targets.state(), namespace, array));
        all.extend(referencing(&self.schedules.state(), namespace, array));
        all.extend(referencing(&self.plans.state(), namespace, array));
        all.extend(referencing(&self.machines.state(), namespace, array));
        all.sort();
        all
    }

    /// The Secrets of `namespace` (metadata).
    pub fn secrets_in(&self, namespace: &str) -> Vec<Arc<PartialObjectMeta<Secret>>> {
        self.secrets
            .state()
            .into_iter()
            .filter(|s| s.namespace().as_deref() == Some(namespace))
            .collect()
    }

    /// Waits until every store has its first full list, so an empty store
    /// is never read as "nothing references this array". On timeout, the
    /// kinds still waiting (their CRD may be missing, or RBAC refuses the
    /// list).
    pub async fn ready(&self, timeout: std::time::Duration) -> Result<(), Vec<&'static str>> {
        if !self.listed.is_empty() {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut waiting = Vec::new();
            for (kind, listed) in &self.listed {
                if tokio::time::timeout_at(deadline, listed.wait())
                    .await
                    .is_err()
                {
                    waiting.push(*kind);
                }
            }
            return if waiting.is_empty() {
                Ok(())
            } else {
                Err(waiting)
            };
        }
        let waits = [
            ("luns", self.luns.wait_until_ready().boxed()),
            ("iscsitargets", self.targets.wait_until_ready().boxed()),
            (
                "snapshotschedules",
                self.schedules.wait_until_ready().boxed(),
            ),
            ("replicationplans", self.plans.wait_until_ready().boxed()),
            ("virtualmachines", self.machines.wait_until_ready().boxed()),
            ("secrets", self.secrets.wait_until_ready().boxed()),
        ];
        let deadline = tokio::time::Instant::now() + timeout;
        let mut waiting = Vec::new();
        for (kind, wait) in waits {
            if !matches!(tokio::time::timeout_at(deadline, wait).await, Ok(Ok(()))) {
                waiting.push(kind);
            }
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting)
        }
    }
}

/// The Secrets StorageArray `sa` names.
pub fn secret_names(sa: &StorageArray) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    names.insert(sa.spec.credentials_secret_ref.name.clone());
    if let Some(ca) = sa.spec.tls.as_ref().and_then(|t| t.ca_secret_ref.as_ref()) {
        names.insert(ca.name.clone());
    }
    names
}

fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

/// The merge patch that adds (`want`) or removes `finalizer` on an object
/// with metadata `meta`, keeping every other finalizer; `None` when nothing
/// changes, or when adding to an object already being deleted (the
/// apiserver refuses new finalizers then).
pub fn finalizer_patch(meta: &ObjectMeta, finalizer: &str, want: bool) -> Option<Value> {
    let has = has_finalizer(meta, finalizer);
    if has == want || (want && meta.deletion_timestamp.is_some()) {
        return None;
    }
    let mut list: Vec<String> = meta
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    if want {
        list.push(finalizer.to_string());
    }
    Some(json!({
        "metadata": {
            "finalizers": list,
            "resourceVersion": meta.resource_version,
        }
    }))
}

/// What one StorageArray reconcile must patch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HoldPlan {
    /// The patch of the StorageArray itself.
    pub array: Option<Value>,
    /// Patches of Secrets, by name.
    pub secrets: Vec<(String, Value)>,
    /// The objects a deleted StorageArray waits for.
    pub waiting_for: Vec<String>,
    /// The StorageArray is deleted and nothing references it: release its
    /// Secrets, log out, then drop its finalizer.
    pub releasing: bool,
}

/// True when StorageArray `sa` still holds its Secrets: it is not deleted,
/// or it is deleted but still held by [`IN_USE_FINALIZER`].
fn holds_secrets(sa: &StorageArray) -> bool {
    sa.metadata.deletion_timestamp.is_none() || has_finalizer(&sa.metadata, IN_USE_FINALIZER)
}

/// Plans the finalizer patches for StorageArray `sa`.
///
/// `arrays` are the StorageArrays of its namespace (from the controller's
/// store, `sa` included or not), `referrers` the objects that reference it,
/// `secrets` the Secrets of its namespace.
pub fn plan(
    sa: &StorageArray,
    arrays: &[Arc<StorageArray>],
    referrers: &[String],
    secrets: &[Arc<PartialObjectMeta<Secret>>],
) -> HoldPlan {
    let deleting = sa.metadata.deletion_timestamp.is_some();
    let releasing = deleting && referrers.is_empty();
    let namespace = sa.namespace();
    let uid = sa.metadata.uid.clone();
    // The Secrets some other StorageArray of the namespace still holds,
    // plus this one's unless it is being released.
    let mut wanted: BTreeSet<String> = arrays
        .iter()
        .filter(|a| a.namespace() == namespace && a.metadata.uid != uid)
        .filter(|a| holds_secrets(a))
        .flat_map(|a| secret_names(a))
        .collect();
    let own = secret_names(sa);
    if !releasing {
        wanted.extend(own.iter().cloned());
    }
    let mut secrets: Vec<(String, Value)> = secrets
        .iter()
        .filter(|s| own.contains(&s.name_any()) || has_finalizer(&s.metadata, SECRET_FINALIZER))
        .filter_map(|s| {
            let want = wanted.contains(&s.name_any());
            finalizer_patch(&s.metadata, SECRET_FINALIZER, want).map(|p| (s.name_any(), p))
        })
        .collect();
    // Store order is arbitrary; patches go out in name order.
    secrets.sort_by(|a, b| a.0.cmp(&b.0));
    HoldPlan {
        array: finalizer_patch(&sa.metadata, IN_USE_FINALIZER, !releasing),
        secrets,
        waiting_for: if deleting {
            referrers.to_vec()
        } else {
            Vec::new()
        },
        releasing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn meta(name: &str, finalizers: &[&str], deleting: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some("41".into()),
            finalizers: (!finalizers.is_empty())
                .then(|| finalizers.iter().map(|f| f.to_string()).collect()),
            deletion_timestamp: deleting
                .then(|| Time("2026-11-30T10:00:00Z".parse().expect("time"))),
            ..Default::default()
        }
    }

    fn array(
        name: &str,
        creds: &str,
        ca: Option<&str>,
        finalizers: &[&str],
        deleting: bool,
    ) -> Arc<StorageArray> {
        let mut spec = json!({"vendor": "Synology", "endpoint": "https://dsm:5001",
                              "credentialsSecretRef": {"name": creds}});
        if let Some(ca) = ca {
            spec["tls"] = json!({"caSecretRef": {"name": ca, "key": "ca.crt"}});
        }
        let mut sa = StorageArray::new(name, serde_json::from_value(spec).expect("spec"));
        sa.metadata = meta(name, finalizers, deleting);
        Arc::new(sa)
    }

    fn secret(name: &str, finalizers: &[&str]) -> Arc<PartialObjectMeta<Secret>> {
        Arc::new(PartialObjectMeta::<Secret> {
            metadata: meta(name, finalizers, false),
            ..Default::default()
        })
    }

    fn lun(name: &str, array: &str, ns: &str) -> Arc<Lun> {
        let spec = serde_json::from_value(json!({"arrayRef": {"name": array}, "size": "1Gi"}))
            .expect("spec");
        let mut l = Lun::new(name, spec);
        l.metadata.namespace = Some(ns.into());
        Arc::new(l)
    }

    fn finalizers_of(patch: &Value) -> Vec<String> {
        serde_json::from_value(patch["metadata"]["finalizers"].clone()).expect("list")
    }

    #[test]
    fn a_new_array_takes_its_finalizer_and_holds_both_secrets() {
        let sa = array("dsm", "creds", Some("ca"), &[], false);
        let secrets = [
            secret("creds", &[]),
            secret("ca", &["user.example/keep"]),
            secret("other", &[]),
        ];
        let p = plan(&sa, std::slice::from_ref(&sa), &[], &secrets);
        let a = p.array.expect("the StorageArray gets its finalizer");
        assert_eq!(finalizers_of(&a), [IN_USE_FINALIZER]);
        assert_eq!(a["metadata"]["resourceVersion"], "41");
        let names: Vec<&str> = p.secrets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ca", "creds"]);
        // A user's own finalizer on the Secret stays.
        assert_eq!(
            finalizers_of(&p.secrets[0].1),
            ["user.example/keep", SECRET_FINALIZER]
        );
        assert!(!p.releasing && p.waiting_for.is_empty());
    }

    #[test]
    fn a_held_array_that_is_in_place_emits_nothing() {
        let sa = array("dsm", "creds", None, &[IN_USE_FINALIZER], false);
        let secrets = [secret("creds", &[SECRET_FINALIZER])];
        assert_eq!(
            plan(&sa, std::slice::from_ref(&sa), &[], &secrets),
            HoldPlan::default()
        );
    }

    #[test]
    fn a_deleted_array_waits_while_anything_references_it() {
        let sa = array("dsm", "creds", None, &[IN_USE_FINALIZER], true);
        let secrets = [secret("creds", &[SECRET_FINALIZER])];
        let luns = [
            lun("db", "dsm", "ns"),
            lun("logs", "dsm", "other-ns"),
            lun("web", "nas", "ns"),
        ];
        let referrers = referencing(&luns, "ns", "dsm");
        assert_eq!(referrers, ["Lun/db"]);
        let p = plan(&sa, std::slice::from_ref(&sa), &referrers, &secrets);
        assert_eq!(p.array, None, "the finalizer stays");
        assert!(
            p.secrets.is_empty(),
            "the credentials stay for the Lun's cleanup"
        );
        assert_eq!(p.waiting_for, ["Lun/db"]);
        assert!(!p.releasing);
    }

    #[test]
    fn a_deleted_array_nothing_references_releases_its_secrets_and_itself() {
        let sa = array(
            "dsm",
            "creds",
            Some("ca"),
            &["other.example/x", IN_USE_FINALIZER],
            true,
        );
        let secrets = [
            secret("creds", &[SECRET_FINALIZER, "user.example/keep"]),
            secret("ca", &[SECRET_FINALIZER]),
        ];
        let p = plan(&sa, std::slice::from_ref(&sa), &[], &secrets);
        assert!(p.releasing);
        assert_eq!(
            finalizers_of(&p.array.expect("array patch")),
            ["other.example/x"]
        );
        assert_eq!(p.secrets.len(), 2);
        assert!(finalizers_of(&p.secrets[0].1).is_empty(), "ca");
        assert_eq!(
            finalizers_of(&p.secrets[1].1),
            ["user.example/keep"],
            "creds"
        );
    }

    #[test]
    fn a_secret_another_array_still_uses_is_kept() {
        let sa = array("dsm", "creds", None, &[IN_USE_FINALIZER], true);
        let other = array("dsm2", "creds", None, &[IN_USE_FINALIZER], false);
        let secrets = [secret("creds", &[SECRET_FINALIZER])];
        let p = plan(&sa, &[sa.clone(), other], &[], &secrets);
        assert!(p.releasing);
        assert!(p.secrets.is_empty());
    }

    #[test]
    fn a_secret_no_longer_named_is_released_when_the_spec_changes() {
        let sa = array("dsm", "new-creds", None, &[IN_USE_FINALIZER], false);
        let secrets = [
            secret("old-creds", &[SECRET_FINALIZER]),
            secret("new-creds", &[]),
        ];
        let p = plan(&sa, std::slice::from_ref(&sa), &[], &secrets);
        let got: Vec<(String, Vec<String>)> = p
            .secrets
            .iter()
            .map(|(n, v)| (n.clone(), finalizers_of(v)))
            .collect();
        assert_eq!(
            got,
            [
                ("new-creds".to_string(), vec![SECRET_FINALIZER.to_string()]),
                ("old-creds".to_string(), vec![])
            ]
        );
    }

    fn listed<K: Resource<DynamicType = ()> + Clone + 'static>() -> Store<K> {
        let (reader, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        reader
    }

    #[tokio::test]
    async fn stores_name_the_kinds_whose_first_list_has_not_come() {
        let (machines, _machines_writer) = kube::runtime::reflector::store();
        let stores = Stores {
            luns: listed(),
            targets: listed(),
            schedules: listed(),
            plans: listed(),
            machines,
            secrets: listed(),
            listed: Vec::new(),
        };
        assert_eq!(
            stores.ready(std::time::Duration::from_millis(50)).await,
            Err(vec!["virtualmachines"])
        );
        let ready = Stores {
            machines: listed(),
            ..stores
        };
        assert_eq!(
            ready.ready(std::time::Duration::from_millis(50)).await,
            Ok(())
        );
    }

    /// With the watches' flags, every concurrent waiter sees the lists
    /// (kube-runtime's store readiness wakes only one of them).
    #[tokio::test]
    async fn concurrent_waiters_all_see_the_first_lists_through_the_flags() {
        use crate::controller::listed::Listed;
        let flags: Vec<(&'static str, Listed)> = ["luns", "virtualmachines"]
            .into_iter()
            .map(|k| (k, Listed::new()))
            .collect();
        let (luns, _l) = kube::runtime::reflector::store();
        let (machines, _m) = kube::runtime::reflector::store();
        let stores = Stores {
            luns,
            targets: listed(),
            schedules: listed(),
            plans: listed(),
            machines,
            secrets: listed(),
            listed: flags.clone(),
        };
        flags[0].1.mark();
        assert_eq!(
            stores.ready(std::time::Duration::from_millis(50)).await,
            Err(vec!["virtualmachines"])
        );
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let stores = stores.clone();
                tokio::spawn(async move { stores.ready(std::time::Duration::from_secs(5)).await })
            })
            .collect();
        // Let every waiter start waiting before the list completes.
        tokio::task::yield_now().await;
        flags[1].1.mark();
        for waiter in waiters {
            assert_eq!(waiter.await.expect("task"), Ok(()));
        }
    }

    #[test]
    fn no_finalizer_is_added_to_an_object_being_deleted() {
        let sa = array("dsm", "creds", None, &[], true);
        let p = plan(&sa, std::slice::from_ref(&sa), &["Lun/db".to_string()], &[]);
        assert_eq!(p.array, None);
        assert_eq!(p.waiting_for, ["Lun/db"]);
    }
}
