//! The reconcile every managed kind shares: a thin wrapper around the engine
//! inside kube-runtime's finalizer helper, with the status written by
//! server-side apply and the engine's Events published.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType as KubeEventType};
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;

use crate::crd::shared::{
    ANNOTATION_EXTERNAL_NAME, ANNOTATION_PAUSED, CONDITION_SYNCED, FINALIZER, ready_reason,
    synced_reason,
};
use crate::engine::common::common_with;
use crate::engine::conditions::ConditionState;
use crate::engine::lifecycle::{self, Managed};
use crate::engine::{Cleanup, EngineEvent, EventType, Progress};

use super::arrays::ArrayAccessError;
use super::context::{Context, FIELD_MANAGER};

/// How soon a reconcile that waits for another object comes back.
pub const WAITING_REQUEUE: Duration = Duration::from_secs(10);

/// Why a reconcile did not finish; the error policy backs off.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// Deletion is held (the status says why).
    #[error("deletion held: {0}")]
    Held(String),
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

/// A kind the controllers manage: the engine's [`Managed`] (which already
/// carries what a kube-runtime Controller needs) with a status the
/// server-side apply patch can serialize.
pub trait ManagedKind: Managed<Status: Serialize> {}

impl<K: Managed<Status: Serialize>> ManagedKind for K {}

/// What of an object wakes its controller: what a person changes (the
/// generation, that is the spec; deletion; the pause and external-name
/// annotations) and the finalizers (the finalizer helper waits for its own
/// write to come back). The operator's status and create-record writes
/// change none of it, so they never trigger a reconcile and a failing
/// object keeps its backoff.
pub fn wake_hash<K: Resource>(obj: &K) -> Option<u64> {
    Some(wake_hash_of(obj.meta()))
}

/// [`wake_hash`] of an object's metadata.
pub fn wake_hash_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
    use std::hash::{Hash, Hasher};
    let annotation = |k: &str| meta.annotations.as_ref().and_then(|a| a.get(k)).cloned();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        meta.generation,
        meta.deletion_timestamp.is_some(),
        &meta.finalizers,
        annotation(ANNOTATION_PAUSED),
        annotation(ANNOTATION_EXTERNAL_NAME),
    )
        .hash(&mut h);
    h.finish()
}

/// The annotation `kubectl apply` (client-side) keeps: a copy of the whole
/// applied manifest.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// What the watch caches drop from every object: `managedFields` (one entry
/// per field manager, often larger than the spec) and kubectl's
/// last-applied copy of the manifest. Nothing in the operator reads them,
/// and it never writes an object back whole (only merge patches of named
/// fields and server-side apply of status), so nothing is lost; at 10,000
/// Luns they are most of a cached object.
pub fn slim<K: Resource>(obj: &mut K) {
    let meta = obj.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The trigger stream of a managed kind's Controller: a watcher whose
/// every event also updates the claims index of `cluster` (one object per
/// event), reflected into `writer` (the store the engine and mappers read),
/// filtered by [`wake_hash`].
pub fn trigger_stream<K: ManagedKind>(
    api: Api<K>,
    writer: kube::runtime::reflector::store::Writer<K>,
    cluster: super::cluster::KubeCluster,
) -> impl futures::Stream<Item = Result<K, kube::runtime::watcher::Error>> + Send + 'static {
    use futures::StreamExt;
    use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(slim::<K>)
        .inspect(move |event| {
            if let Ok(event) = event {
                cluster.observe(event);
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(wake_hash::<K>, PredicateConfig::default())
}

/// What of a StorageArray decides which deployment serves it and whether
/// its objects can proceed: its identity (it appeared, or was recreated)
/// and its labels (`--array-selector`). Its status writes change neither.
pub fn array_wake_hash(sa: &crate::crd::StorageArray) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&sa.metadata.uid, &sa.metadata.labels).hash(&mut h);
    Some(h.finish())
}

/// StorageArrays that appeared or whose labels changed: the trigger that
/// wakes the objects of an array that just joined this deployment (or
/// just got created after them), instead of leaving them to their backoff.
/// Fed by the StorageArray controller's own watch, after its store (which
/// the shard check reads) applied the change.
pub fn array_wakes(
    ctx: &Context,
) -> impl futures::Stream<Item = Result<crate::crd::StorageArray, kube::runtime::watcher::Error>>
+ Send
+ 'static {
    use futures::StreamExt;
    use kube::runtime::{PredicateConfig, WatchStreamExt};
    ctx.storage_array_changes()
        .map(Ok)
        .predicate_filter(array_wake_hash, PredicateConfig::default())
}

/// The objects of kind `K` that reference StorageArray `sa` (from the
/// claims index), for [`array_wakes`].
pub fn referencing<K: ManagedKind>(
    ctx: &Context,
    sa: &crate::crd::StorageArray,
) -> Vec<kube::runtime::reflector::ObjectRef<K>> {
    let ns = sa.namespace().unwrap_or_default();
    ctx.cluster
        .referencing::<K>(&ns, &sa.name_any())
        .into_iter()
        .map(|name| kube::runtime::reflector::ObjectRef::new(&name).within(&ns))
        .collect()
}

/// `Kind/namespace/name`: the key of an object's backoff and of its
/// once-per-outage Warning.
pub fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// Writes the status with server-side apply under the operator's field
/// manager (it owns `.status`, never `.spec`). Every controller's status
/// write goes through here.
pub async fn patch_status<K, S>(api: &Api<K>, obj: &K, status: &S) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// Publishes engine Events on `obj`; a failure to publish is logged, not
/// fatal (Events are best effort in Kubernetes too).
pub async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    events: &[EngineEvent],
) {
    let reference = obj.object_ref(&());
    for e in events {
        let event = Event {
            type_: match e.type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: e.reason.to_string(),
            note: Some(e.note.chars().take(1000).collect()),
            action: e.action.to_string(),
            secondary: None,
        };
        ctx.metrics.event_published(&K::kind(&()), e.reason);
        if let Err(err) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(object = %reference.name.clone().unwrap_or_default(), error = %err, "publishing an Event failed");
        }
    }
}

fn synced_reason_of<S: Serialize>(status: &S) -> Option<String> {
    let v = serde_json::to_value(status).ok()?;
    v["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Synced")
        .and_then(|c| c["reason"].as_str())
        .map(str::to_string)
}

/// What an object says while its StorageArray's client cannot be had
/// (unreachable, missing, refused credentials): the same conditions,
/// Event and backoff for every kind, whatever its status type.
pub struct ArrayUnavailable {
    /// `Synced` reason: `ArrayUnreachable`, or `ReconcileError` for a
    /// StorageArray that is there but unusable.
    pub reason: &'static str,
    /// The access error's stable sentence.
    pub text: String,
    /// The conditions to write (`Ready=False`, `Synced=False`).
    pub common: crate::crd::shared::CommonStatus,
    /// True when the Synced reason changes: the Warning is published once
    /// per outage, not once per retry.
    pub announce: bool,
}

impl ArrayUnavailable {
    /// Decides it from the access error and the object's last conditions.
    pub fn of(
        e: &ArrayAccessError,
        previous: Option<&crate::crd::shared::CommonStatus>,
        generation: Option<i64>,
    ) -> Self {
        let unreachable = matches!(
            e,
            ArrayAccessError::Connect { .. }
                | ArrayAccessError::BackingOff { .. }
                | ArrayAccessError::NotFound(_)
        );
        let reason = if unreachable {
            synced_reason::ARRAY_UNREACHABLE
        } else {
            synced_reason::RECONCILE_ERROR
        };
        let text = e.to_string();
        let was = previous.and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.type_ == CONDITION_SYNCED)
                .map(|c| c.reason.clone())
        });
        let common = common_with(
            previous,
            Some(&ConditionState::no(
                ready_reason::UNAVAILABLE,
                "the array cannot be reached",
            )),
            &ConditionState::no(reason, text.clone()),
            Progress::Failed,
            generation,
        );
        ArrayUnavailable {
            reason,
            announce: was.as_deref() != Some(reason),
            text,
            common,
        }
    }

    /// After the status write: the Warning (once per outage), the metric,
    /// and the backoff requeue.
    pub async fn report<K: Resource<DynamicType = ()>>(
        self,
        ctx: &Context,
        obj: &K,
        kind: &str,
        backoff_key: &str,
    ) -> Action {
        if self.announce {
            publish(
                ctx,
                obj,
                &[EngineEvent::warning(self.reason, "Connect", self.text)],
            )
            .await;
        }
        ctx.metrics.reconcile_failed(kind, self.reason);
        Action::requeue(ctx.backoff.failed(backoff_key))
    }
}

async fn apply<K: ManagedKind>(
    obj: Arc<K>,
    ctx: &Context,
    api: &Api<K>,
) -> Result<Action, ControllerError> {
    let key = object_key(obj.as_ref());
    let ns = obj.namespace().unwrap_or_default();
    let handle = match ctx.arrays.handle(&ns, obj.array_ref()).await {
        Ok(h) => h,
        Err(e) => {
            let down = ArrayUnavailable::of(&e, obj.common_status(), obj.meta().generation);
            patch_status(api, obj.as_ref(), &obj.keep_status(down.common.clone())).await?;
            return Ok(down.report(ctx, obj.as_ref(), K::KIND, &key).await);
        }
    };
    let outcome = lifecycle::reconcile(obj.as_ref(), &handle, &ctx.cluster).await;
    patch_status(api, obj.as_ref(), &outcome.status).await?;
    publish(ctx, obj.as_ref(), &outcome.events).await;
    Ok(match outcome.progress {
        Progress::Converged => {
            ctx.backoff.succeeded(&key);
            Action::requeue(handle.resync)
        }
        Progress::Waiting => Action::requeue(WAITING_REQUEUE),
        Progress::Failed | Progress::Stalled => {
            let reason = synced_reason_of(&outcome.status).unwrap_or_else(|| "Unknown".into());
            ctx.metrics.reconcile_failed(K::KIND, &reason);
            Action::requeue(ctx.backoff.failed(&key))
        }
    })
}

async fn cleanup<K: ManagedKind>(
    obj: Arc<K>,
    ctx: &Context,
    api: &Api<K>,
) -> Result<Action, ControllerError> {
    let ns = obj.namespace().unwrap_or_default();
    let handle = ctx.arrays.handle(&ns, obj.array_ref()).await.ok();
    match lifecycle::cleanup(obj.as_ref(), handle.as_deref(), &ctx.cluster).await {
        Cleanup::Done { events } => {
            publish(ctx, obj.as_ref(), &events).await;
            Ok(Action::await_change())
        }
        Cleanup::Held(outcome) => {
            patch_status(api, obj.as_ref(), &outcome.status).await?;
            publish(ctx, obj.as_ref(), &outcome.events).await;
            let why = synced_reason_of(&outcome.status).unwrap_or_default();
            Err(ControllerError::Held(why))
        }
    }
}

/// How soon an object comes back while the StorageArray watch has not
/// listed (so its shard is not known yet).
pub const SHARD_UNKNOWN_REQUEUE: Duration = Duration::from_secs(5);

/// The reconcile function a kube-runtime Controller runs for `K`.
pub async fn reconcile<K: ManagedKind>(
    obj: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let started = Instant::now();
    let ns = obj.namespace().unwrap_or_default();
    // `--array-selector`: the object of another deployment's array is not
    // touched at all (no finalizer, status, annotation or Event). When its
    // array joins this deployment, the StorageArray watch wakes it.
    match ctx.serves(&ns, obj.array_ref()).await {
        Some(true) => {}
        Some(false) => return Ok(Action::await_change()),
        None => return Ok(Action::requeue(SHARD_UNKNOWN_REQUEUE)),
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply::<K>(o, &ctx, &api).await,
            FinalizerEvent::Cleanup(o) => cleanup::<K>(o, &ctx, &api).await,
        }
    })
    .await;
    ctx.metrics.reconciled(K::KIND, started.elapsed());
    result.map_err(|e| ControllerError::Finalizer(e.to_string()))
}

/// The error policy: exponential backoff per object.
pub fn error_policy<K: ManagedKind>(
    obj: Arc<K>,
    error: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    backoff_after_error(&ctx, obj.as_ref(), error)
}

/// What every controller's error policy does: log the error and requeue
/// the object after its next exponential backoff.
pub fn backoff_after_error<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    obj: &K,
    error: &ControllerError,
) -> Action {
    let key = object_key(obj);
    tracing::warn!(object = %key, error = %error, "reconcile failed");
    Action::requeue(ctx.backoff.failed(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::shared::{ANNOTATION_CREATE_FAILED, ANNOTATION_CREATE_PENDING};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::collections::BTreeMap;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            name: Some("db".into()),
            namespace: Some("ns".into()),
            generation: Some(3),
            resource_version: Some("100".into()),
            finalizers: Some(vec![FINALIZER.into()]),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_CREATE_PENDING.to_string(),
                "2026-11-30T10:00:00.000000000Z uid=u".to_string(),
            )])),
            ..ObjectMeta::default()
        }
    }

    fn with_annotation(mut m: ObjectMeta, k: &str, v: &str) -> ObjectMeta {
        m.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        m
    }

    /// Issue 8/9: the operator's own writes (a new resourceVersion, the
    /// create records on every failed attempt) must not wake the controller,
    /// or a failing object loops past its backoff.
    #[test]
    fn the_operators_own_writes_do_not_wake_the_controller() {
        let base = wake_hash_of(&meta());
        let mut m = meta();
        m.resource_version = Some("101".into());
        assert_eq!(wake_hash_of(&m), base, "a status write");
        let m = with_annotation(
            meta(),
            ANNOTATION_CREATE_PENDING,
            "2026-11-30T10:00:05.000000000Z uid=u",
        );
        assert_eq!(wake_hash_of(&m), base, "a new pending record");
        let m = with_annotation(
            meta(),
            ANNOTATION_CREATE_FAILED,
            "2026-11-30T10:00:06.000000000Z uid=u",
        );
        assert_eq!(wake_hash_of(&m), base, "a failed record");
    }

    #[test]
    fn the_caches_drop_managed_fields_and_the_last_applied_copy_only() {
        let mut lun: crate::crd::Lun = serde_json::from_value(json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
            "metadata": {
                "name": "db", "namespace": "ns", "finalizers": [FINALIZER],
                "annotations": {
                    LAST_APPLIED: "{\"apiVersion\":\"array-operator.io/v1alpha1\"}",
                    ANNOTATION_PAUSED: "true",
                    ANNOTATION_CREATE_PENDING: "2026-11-30T10:00:00.000000000Z uid=u"
                },
                "managedFields": [{"manager": "kubectl", "operation": "Apply",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]
            },
            "spec": {"arrayRef": {"name": "dsm"}, "size": "1Gi"}
        }))
        .expect("lun");
        let before = wake_hash(&lun);
        slim(&mut lun);
        assert!(lun.metadata.managed_fields.is_none());
        let annotations = lun.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations.keys().map(String::as_str).collect::<Vec<_>>(),
            [ANNOTATION_CREATE_PENDING, ANNOTATION_PAUSED]
        );
        assert_eq!(lun.metadata.finalizers, Some(vec![FINALIZER.to_string()]));
        assert_eq!(wake_hash(&lun), before, "nothing the controller wakes on");
    }

    #[test]
    fn what_a_person_changes_wakes_the_controller() {
        let base = wake_hash_of(&meta());
        let mut m = meta();
        m.generation = Some(4);
        assert_ne!(wake_hash_of(&m), base, "a spec change");
        let m = with_annotation(meta(), ANNOTATION_PAUSED, "true");
        assert_ne!(wake_hash_of(&m), base, "pause");
        let m = with_annotation(meta(), ANNOTATION_EXTERNAL_NAME, "id-1");
        assert_ne!(wake_hash_of(&m), base, "adoption");
        let mut m = meta();
        m.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
        assert_ne!(wake_hash_of(&m), base, "deletion");
        let mut m = meta();
        m.finalizers = None;
        assert_ne!(
            wake_hash_of(&m),
            base,
            "the finalizer helper waits for its own finalizer write"
        );
    }

    #[test]
    fn an_unavailable_array_is_announced_once_per_outage_and_names_its_kind_of_failure() {
        let gone = ArrayAccessError::NotFound("apps/dsm".into());
        let first = ArrayUnavailable::of(&gone, None, Some(3));
        assert_eq!(first.reason, synced_reason::ARRAY_UNREACHABLE);
        assert!(first.announce, "the first failure is announced");
        assert_eq!(first.common.observed_generation, Some(3));
        let synced = first
            .common
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_SYNCED)
            .expect("Synced");
        assert_eq!(
            (synced.status.as_str(), synced.message.as_str()),
            ("False", first.text.as_str())
        );
        // The same outage again: conditions kept, no second Warning.
        let again = ArrayUnavailable::of(&gone, Some(&first.common), Some(3));
        assert!(!again.announce);
        // A StorageArray that is there but unusable is a reconcile error,
        // announced as a change of reason.
        let secret = ArrayAccessError::Secret {
            array: "apps/dsm".into(),
            field: "spec.credentialsSecretRef",
            problem: "Secret dsm-creds does not exist".into(),
        };
        let other = ArrayUnavailable::of(&secret, Some(&again.common), Some(3));
        assert_eq!(other.reason, synced_reason::RECONCILE_ERROR);
        assert!(other.announce);
    }
}
