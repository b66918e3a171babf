//! The StorageArray controller: connects, authenticates, and reports what
//! the array says about itself; when it cannot, the conditions say why in
//! the array's own words, and whether a person must act.
//!
//! Conditions follow kstatus (what Flux and `kubectl wait` read):
//! - `Ready`: connected and authenticated;
//! - `Reconciling=True` while connecting, and while retrying a failure
//!   that retrying may cure (an unreachable array);
//! - `Stalled=True` when a person must act: a missing Secret or key, an
//!   unusable endpoint or CA bundle, refused credentials;
//! - `TLSVerified=False` while `spec.tls.insecureSkipVerify` is set.
//!
//! It also keeps the deletion order ([`super::holds`]): the StorageArray
//! outlives the objects that reference it, and its Secrets outlive it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};

use crate::array::backend::ArrayInfo;
use crate::crd::shared::{
    CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED, CommonStatus, ready_reason,
};
use crate::crd::storage_array::{
    PoolCapacity, StorageArray, StorageArrayObserved, StorageArrayStatus,
};
use crate::crd::{IscsiTarget, Lun, ReplicationPlan, SnapshotSchedule, VirtualMachine};
use crate::engine::conditions::{ConditionState, set_condition};
use crate::engine::{self};

use super::arrays::ArrayAccessError;
use super::context::Context;
use super::holds::{self, ArrayReferrer, Stores};
use super::listed::Listed;
use super::managed::{ControllerError, backoff_after_error, object_key, patch_status, slim};
use super::readiness;

/// Whether the array's certificate is verified.
pub const CONDITION_TLS_VERIFIED: &str = "TLSVerified";

/// Reasons of the StorageArray conditions (the `Stalled` reasons come from
/// [`ArrayAccessError::stalled_reason`]).
pub mod reason {
    /// A new generation is being connected.
    pub const CONNECTING: &str = "Connecting";
    /// The array could not be reached; the operator retries.
    pub const ARRAY_UNREACHABLE: &str = "ArrayUnreachable";
    /// The Kubernetes API failed; the operator retries.
    pub const KUBERNETES_API: &str = "KubernetesApiError";
    /// `Reconciling=False`: the operator is not working on it (connected,
    /// or waiting for a person). The managed kinds use the same word.
    pub const RECONCILED: &str = "Reconciled";
    /// `Stalled=False`: nothing needs a person. The managed kinds use the
    /// same word.
    pub const NOT_STALLED: &str = "NotStalled";
    /// The StorageArray is deleted and waits for the objects that reference it.
    pub const WAITING_FOR_REFERRERS: &str = "WaitingForReferrers";
    /// `spec.tls.insecureSkipVerify` is true.
    pub const INSECURE_SKIP_VERIFY: &str = "InsecureSkipVerify";
    /// The certificate is verified.
    pub const VERIFIED: &str = "CertificateVerified";
}

/// How long a reconcile waits for the reflector stores' first list.
const STORES_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// What the StorageArray controller shares: the common context and the
/// reflector stores it reads instead of listing.
pub struct ArrayContext {
    /// The common context.
    pub ctx: Arc<Context>,
    /// The objects that may reference a StorageArray, and Secrets.
    pub stores: Stores,
    /// The StorageArrays.
    pub arrays: Store<StorageArray>,
}

impl std::fmt::Debug for ArrayContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrayContext").finish_non_exhaustive()
    }
}

/// The status for a successful observation.
pub fn observed(info: &ArrayInfo) -> StorageArrayObserved {
    StorageArrayObserved {
        model: info.model.clone(),
        version: info.version.clone(),
        serial: info.serial.clone(),
        dialect: info.dialect.clone(),
        active_endpoint: info.active_endpoint.clone(),
        resize_mode: info.resize_mode.clone(),
        pools: info
            .pools
            .iter()
            .map(|(name, total, free)| PoolCapacity {
                name: name.clone(),
                total_bytes: total.and_then(|b| i64::try_from(b).ok()),
                free_bytes: free.and_then(|b| i64::try_from(b).ok()),
            })
            .collect(),
    }
}

fn insecure(sa: &StorageArray) -> bool {
    sa.spec.tls.as_ref().is_some_and(|t| t.insecure_skip_verify)
}

fn condition<'a>(
    status: &'a Option<StorageArrayStatus>,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status
        .as_ref()?
        .common
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

/// The result of one reconcile: the status to write and the Events to
/// publish. Pure, so tests check it without an apiserver.
pub struct Report {
    /// The new status.
    pub status: StorageArrayStatus,
    /// Events, each published once per transition.
    pub events: Vec<Event>,
}

impl std::fmt::Debug for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Report")
            .field("status", &self.status)
            .field(
                "events",
                &self.events.iter().map(|e| &e.reason).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn warning(reason: &str, note: String, action: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    }
}

/// The status (and Events) for what connecting to the array gave.
/// `waiting_for` lists the objects a deleted StorageArray waits for.
pub fn report(
    sa: &StorageArray,
    access: &Result<ArrayInfo, ArrayAccessError>,
    waiting_for: &[String],
) -> Report {
    let previous = sa.status.clone().unwrap_or_default();
    let generation = sa.metadata.generation;
    let now = engine::now();
    let mut conditions = previous.common.conditions.clone();
    let mut events = Vec::new();
    let mut set = |type_: &str, state: ConditionState| {
        set_condition(&mut conditions, type_, &state, generation, &now);
    };
    let at_array = match access {
        Ok(info) => {
            let text = format!(
                "connected and authenticated{}{}",
                info.model
                    .as_ref()
                    .map(|m| format!("; model {m}"))
                    .unwrap_or_default(),
                info.version
                    .as_ref()
                    .map(|v| format!(", version {v}"))
                    .unwrap_or_default()
            );
            set(
                CONDITION_READY,
                ConditionState::yes(ready_reason::AVAILABLE, text),
            );
            set(
                CONDITION_RECONCILING,
                ConditionState::no(reason::RECONCILED, "the array is connected"),
            );
            set(
                CONDITION_STALLED,
                ConditionState::no(reason::NOT_STALLED, "no person is needed"),
            );
            Some(observed(info))
        }
        Err(e) => {
            let message = e.to_string();
            let failure = match (e.stalled_reason(), e) {
                (Some(r), _) => r,
                (None, ArrayAccessError::Api(_)) => reason::KUBERNETES_API,
                (None, _) => reason::ARRAY_UNREACHABLE,
            };
            let was = condition(&sa.status, CONDITION_READY);
            let transition = !was.is_some_and(|c| c.status == "False" && c.reason == failure);
            if transition {
                events.push(warning(failure, message.clone(), "Connect"));
            }
            set(
                CONDITION_READY,
                ConditionState::no(failure, message.clone()),
            );
            match e.stalled_reason() {
                Some(r) => {
                    set(CONDITION_STALLED, ConditionState::yes(r, message.clone()));
                    set(
                        CONDITION_RECONCILING,
                        ConditionState::no(
                            reason::RECONCILED,
                            "the operator waits for the spec or its Secrets to change",
                        ),
                    );
                }
                None => {
                    set(
                        CONDITION_RECONCILING,
                        ConditionState::yes(failure, message.clone()),
                    );
                    set(
                        CONDITION_STALLED,
                        ConditionState::no(
                            reason::NOT_STALLED,
                            "no person is needed: the operator retries with backoff",
                        ),
                    );
                }
            }
            None
        }
    };
    if insecure(sa) {
        let was = condition(&sa.status, CONDITION_TLS_VERIFIED);
        if was.is_none_or(|c| c.status != "False") {
            events.push(warning(
                reason::INSECURE_SKIP_VERIFY,
                format!(
                    "StorageArray {}: spec.tls.insecureSkipVerify is true: the array's certificate is not verified, so anyone on the network path can impersonate the array and receive its credentials",
                    object_key(sa).trim_start_matches("StorageArray/")
                ),
                "Connect",
            ));
        }
        set(
            CONDITION_TLS_VERIFIED,
            ConditionState::no(
                reason::INSECURE_SKIP_VERIFY,
                "spec.tls.insecureSkipVerify is true: the array's certificate is not verified; set spec.tls.caSecretRef instead",
            ),
        );
    } else {
        set(
            CONDITION_TLS_VERIFIED,
            ConditionState::yes(
                reason::VERIFIED,
                if sa
                    .spec
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.ca_secret_ref.is_some())
                {
                    "the array's certificate is verified against spec.tls.caSecretRef"
                } else {
                    "the array's certificate is verified against the public roots"
                },
            ),
        );
    }
    if !waiting_for.is_empty() {
        const SHOWN: usize = 10;
        let mut names = waiting_for
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if waiting_for.len() > SHOWN {
            names.push_str(&format!(" and {} more", waiting_for.len() - SHOWN));
        }
        set(
            CONDITION_RECONCILING,
            ConditionState::yes(
                reason::WAITING_FOR_REFERRERS,
                format!("deletion waits until no object references this StorageArray: {names}"),
            ),
        );
    }
    Report {
        status: StorageArrayStatus {
            common: CommonStatus {
                observed_generation: generation,
                conditions,
                external_id: None,
            },
            at_array: at_array.or(previous.at_array),
        },
        events,
    }
}

/// The status to write before connecting to a new generation:
/// `Reconciling=True`, everything else as it was. `None` when the status
/// already describes this generation.
pub fn connecting(sa: &StorageArray) -> Option<StorageArrayStatus> {
    let previous = sa.status.clone().unwrap_or_default();
    if previous.common.observed_generation == sa.metadata.generation
        && condition(&sa.status, CONDITION_READY).is_some()
    {
        return None;
    }
    let mut conditions = previous.common.conditions.clone();
    set_condition(
        &mut conditions,
        CONDITION_RECONCILING,
        &ConditionState::yes(
            reason::CONNECTING,
            format!("connecting to {}", sa.spec.endpoint),
        ),
        sa.metadata.generation,
        &engine::now(),
    );
    Some(StorageArrayStatus {
        common: CommonStatus {
            observed_generation: previous.common.observed_generation,
            conditions,
            external_id: None,
        },
        at_array: previous.at_array,
    })
}

/// Applies the finalizer patches of [`holds::plan`]: the StorageArray's own
/// first when it takes it, last when it is released.
async fn apply_holds(
    actx: &ArrayContext,
    sa: &StorageArray,
    plan: &holds::HoldPlan,
) -> Result<(), kube::Error> {
    let ns = sa.namespace().unwrap_or_default();
    let name = sa.name_any();
    let arrays: Api<StorageArray> = Api::namespaced(actx.ctx.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(actx.ctx.client.clone(), &ns);
    let params = PatchParams::default();
    if !plan.releasing
        && let Some(p) = &plan.array
    {
        arrays
            .patch_metadata(&name, &params, &Patch::Merge(p))
            .await?;
    }
    for (secret, p) in &plan.secrets {
        secrets
            .patch_metadata(secret, &params, &Patch::Merge(p))
            .await?;
    }
    if plan.releasing {
        // Log out while the credentials are still there.
        actx.ctx.arrays.forget(&ns, &name).await;
        if let Some(p) = &plan.array {
            arrays
                .patch_metadata(&name, &params, &Patch::Merge(p))
                .await?;
        }
    }
    Ok(())
}

/// Reconciles one StorageArray: keep the deletion order, connect, observe,
/// write the conditions and `atArray`.
pub async fn reconcile(
    sa: Arc<StorageArray>,
    actx: Arc<ArrayContext>,
) -> Result<Action, ControllerError> {
    let ctx = &actx.ctx;
    let started = Instant::now();
    let ns = sa.namespace().unwrap_or_default();
    let name = sa.name_any();
    let key = object_key(sa.as_ref());
    if !ctx.shard.serves(Some(&sa)) {
        // Another deployment's array (`--array-selector`), or one whose
        // labels just moved it there: no write of any kind. Only this
        // deployment's own session goes, so the array is not logged in
        // twice; finalizers and array objects stay for the new shard.
        ctx.arrays.forget(&ns, &name).await;
        tracing::debug!(object = %key, "not selected by --array-selector: left alone");
        return Ok(Action::await_change());
    }
    if let Err(waiting) = actx.stores.ready(STORES_READY_TIMEOUT).await {
        // Never read an empty store as "nothing references this array".
        tracing::warn!(
            object = %key,
            kinds = %waiting.join(", "),
            "waiting for the first list of these kinds (is their CRD installed, does RBAC allow list and watch?)"
        );
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let referrers = actx.stores.referrers(&ns, &name);
    let arrays: Vec<Arc<StorageArray>> = actx
        .arrays
        .state()
        .into_iter()
        .filter(|a| a.namespace().as_deref() == Some(ns.as_str()))
        .collect();
    let plan = holds::plan(&sa, &arrays, &referrers, &actx.stores.secrets_in(&ns));
    apply_holds(&actx, &sa, &plan).await?;
    if plan.releasing {
        tracing::info!(object = %key, "released: nothing references it any more");
        return Ok(Action::await_change());
    }

    let api: Api<StorageArray> = Api::namespaced(ctx.client.clone(), &ns);
    if let Some(status) = connecting(&sa) {
        patch_status(&api, sa.as_ref(), &status).await?;
    }
    let access = match ctx.arrays.handle(&ns, &name).await {
        Err(e) => Err(e),
        Ok(handle) => match handle.backend.info().await {
            Ok(info) => Ok((info, handle.resync)),
            Err(error) => {
                ctx.arrays.evict(&ns, &name, &error).await;
                Err(ArrayAccessError::Connect {
                    array: format!("{ns}/{name}"),
                    error,
                })
            }
        },
    };
    let (result, action) = match access {
        Ok((info, resync)) => {
            ctx.backoff.succeeded(&key);
            (Ok(info), Action::requeue(resync))
        }
        Err(e) => {
            let label = e.stalled_reason().unwrap_or(if e.unreachable() {
                reason::ARRAY_UNREACHABLE
            } else {
                reason::KUBERNETES_API
            });
            ctx.metrics.reconcile_failed("StorageArray", label);
            (Err(e), Action::requeue(ctx.backoff.failed(&key)))
        }
    };
    let report = report(&sa, &result, &plan.waiting_for);
    patch_status(&api, sa.as_ref(), &report.status).await?;
    let reference = sa.object_ref(&());
    for event in &report.events {
        ctx.metrics.event_published("StorageArray", &event.reason);
        if let Err(err) = ctx.recorder.publish(event, &reference).await {
            tracing::warn!(object = %key, error = %err, "publishing an Event failed");
        }
    }
    ctx.metrics.reconciled("StorageArray", started.elapsed());
    Ok(action)
}

fn error_policy(sa: Arc<StorageArray>, error: &ControllerError, actx: Arc<ArrayContext>) -> Action {
    backoff_after_error(&actx.ctx, sa.as_ref(), error)
}

/// The StorageArray a referencing object names.
pub fn array_of<K: ArrayReferrer>(obj: &K) -> Option<ObjectRef<StorageArray>> {
    let ns = obj.namespace()?;
    Some(ObjectRef::new(obj.array_name()).within(&ns))
}

/// The StorageArrays (in `namespace`) that name Secret `secret`.
pub fn arrays_using_secret(
    arrays: &[Arc<StorageArray>],
    namespace: &str,
    secret: &str,
) -> Vec<ObjectRef<StorageArray>> {
    arrays
        .iter()
        .filter(|a| a.namespace().as_deref() == Some(namespace))
        .filter(|a| holds::secret_names(a).contains(secret))
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

/// A reflector over `api` and the stream of objects it touched (deleted ones
/// included), for `watches_stream`. `listed` is set once the store has its
/// first full list; `on_event` sees every event (the readiness gauge).
fn reflected<K>(
    api: Api<K>,
    listed: Listed,
    on_event: impl Fn(&Result<watcher::Event<K>, watcher::Error>) + Send + 'static,
) -> (
    Store<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(slim::<K>)
        .reflect(writer)
        .inspect(move |event| {
            listed.on_event(event);
            on_event(event);
        })
        .touched_objects();
    (reader, stream)
}

/// Runs the StorageArray controller until `shutdown` resolves. It wakes for
/// its own changes, for any change of an object that references a
/// StorageArray (so a deleted one is released when the last goes away), and
/// for changes of the Secrets it names (metadata only).
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    // The context's StorageArray store (which the array registry and the
    // shard check read) is filled by this controller's watch. Every array
    // is watched, selected or not: the deletion order needs them all.
    let trigger = watcher(
        ctx.api::<StorageArray>(),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .modify(slim::<StorageArray>);
    let listed = ctx.storage_arrays_listed.clone();
    let publish = ctx.storage_array_publisher();
    let ready_gauge = readiness::gauge("StorageArray", ctx.metrics);
    let controller = match ctx.take_storage_arrays_writer() {
        Some(writer) => Controller::for_stream(
            trigger
                .reflect(writer)
                .inspect(move |event| {
                    listed.on_event(event);
                    publish(event);
                    ready_gauge(event);
                })
                .applied_objects(),
            ctx.storage_arrays.clone(),
        ),
        None => {
            tracing::warn!("the StorageArray store is already fed: this controller keeps its own");
            let (reader, writer) = reflector::store();
            Controller::for_stream(trigger.reflect(writer).applied_objects(), reader)
        }
    };
    let listed: Vec<(&'static str, Listed)> = [
        "luns",
        "iscsitargets",
        "snapshotschedules",
        "replicationplans",
        "virtualmachines",
        "secrets",
    ]
    .into_iter()
    .map(|kind| (kind, Listed::new()))
    .collect();
    let flag = |i: usize| listed[i].1.clone();
    // This controller watches every kind, so it also feeds the per-object
    // readiness gauge (`array_operator_object_ready`) for all of them.
    let metrics = ctx.metrics;
    let (luns, lun_events) = reflected(ctx.api::<Lun>(), flag(0), readiness::gauge("Lun", metrics));
    let (targets, target_events) = reflected(
        ctx.api::<IscsiTarget>(),
        flag(1),
        readiness::gauge("IscsiTarget", metrics),
    );
    let (schedules, schedule_events) = reflected(
        ctx.api::<SnapshotSchedule>(),
        flag(2),
        readiness::gauge("SnapshotSchedule", metrics),
    );
    let (plans, plan_events) = reflected(
        ctx.api::<ReplicationPlan>(),
        flag(3),
        readiness::gauge("ReplicationPlan", metrics),
    );
    let (machines, machine_events) = reflected(
        ctx.api::<VirtualMachine>(),
        flag(4),
        readiness::gauge("VirtualMachine", metrics),
    );
    // Secrets by metadata only: an Api of PartialObjectMeta asks for
    // metadata, so no Secret's data is kept in memory.
    let secrets_listed = flag(5);
    let (secrets, secret_events) = reflected(
        ctx.api::<PartialObjectMeta<Secret>>(),
        secrets_listed.clone(),
        |_| {},
    );
    // The same metadata watch tells the Secret cache when a Secret changed.
    ctx.secrets
        .set_metadata_store(secrets.clone(), secrets_listed);
    let by_secret = controller.store();
    let deleting = controller.store();
    let actx = Arc::new(ArrayContext {
        arrays: controller.store(),
        stores: Stores {
            luns,
            targets,
            schedules,
            plans,
            machines,
            secrets,
            listed,
        },
        ctx,
    });
    // A referrer's change matters only to a StorageArray being deleted
    // (it waits for the last one): waking a live array on every Lun status
    // write would cost an array call each.
    let wake = move |r: Option<ObjectRef<StorageArray>>| {
        r.filter(|r| {
            deleting
                .get(r)
                .is_some_and(|sa| sa.metadata.deletion_timestamp.is_some())
        })
    };
    let (w1, w2, w3, w4, w5) = (wake.clone(), wake.clone(), wake.clone(), wake.clone(), wake);
    controller
        .watches_stream(lun_events, move |o| w1(array_of(&o)))
        .watches_stream(target_events, move |o| w2(array_of(&o)))
        .watches_stream(schedule_events, move |o| w3(array_of(&o)))
        .watches_stream(plan_events, move |o| w4(array_of(&o)))
        .watches_stream(machine_events, move |o| w5(array_of(&o)))
        .watches_stream(secret_events, move |secret| {
            arrays_using_secret(
                &by_secret.state(),
                &secret.namespace().unwrap_or_default(),
                &secret.name_any(),
            )
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, actx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "StorageArray reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::backend::BackendError;
    use crate::array::error::ErrorClass;
    use serde_json::json;

    fn array(tls: serde_json::Value) -> StorageArray {
        let mut spec = json!({"vendor": "Synology", "endpoint": "https://dsm.example:5001",
                              "credentialsSecretRef": {"name": "creds"}});
        if !tls.is_null() {
            spec["tls"] = tls;
        }
        let mut sa = StorageArray::new("dsm", serde_json::from_value(spec).expect("spec"));
        sa.metadata.namespace = Some("ns".into());
        sa.metadata.generation = Some(3);
        sa
    }

    fn info() -> ArrayInfo {
        ArrayInfo {
            model: Some("DS923+".into()),
            version: Some("7.2".into()),
            ..ArrayInfo::default()
        }
    }

    fn unreachable() -> ArrayAccessError {
        ArrayAccessError::Connect {
            array: "ns/dsm".into(),
            error: BackendError {
                class: ErrorClass::Unreachable,
                vendor_code: None,
                api_call: "SYNO.API.Auth.login".into(),
                message: "SYNO.API.Auth.login (account \"admin\"): the DSM could not be reached or the connection broke: connection refused".into(),
            },
        }
    }

    fn refused() -> ArrayAccessError {
        ArrayAccessError::Connect {
            array: "ns/dsm".into(),
            error: BackendError {
                class: ErrorClass::Unauthorized,
                vendor_code: Some(400),
                api_call: "SYNO.API.Auth.login".into(),
                message: "SYNO.API.Auth.login (account \"admin\"): DSM error 400: No such account or incorrect password".into(),
            },
        }
    }

    fn get<'a>(
        status: &'a StorageArrayStatus,
        type_: &str,
    ) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        status
            .common
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} condition"))
    }

    fn with_status(mut sa: StorageArray, status: StorageArrayStatus) -> StorageArray {
        sa.status = Some(status);
        sa
    }

    #[test]
    fn connected_is_ready_not_reconciling_not_stalled_with_the_generation() {
        let r = report(&array(json!(null)), &Ok(info()), &[]);
        for (t, s) in [
            (CONDITION_READY, "True"),
            (CONDITION_RECONCILING, "False"),
            (CONDITION_STALLED, "False"),
            (CONDITION_TLS_VERIFIED, "True"),
        ] {
            let c = get(&r.status, t);
            assert_eq!(c.status, s, "{t}");
            assert_eq!(c.observed_generation, Some(3), "{t}");
        }
        assert_eq!(r.status.common.observed_generation, Some(3));
        assert!(r.events.is_empty());
    }

    #[test]
    fn an_unreachable_array_is_reconciling_and_warns_once() {
        let sa = array(json!(null));
        let first = report(&sa, &Err(unreachable()), &[]);
        assert_eq!(
            get(&first.status, CONDITION_READY).reason,
            "ArrayUnreachable"
        );
        assert_eq!(get(&first.status, CONDITION_RECONCILING).status, "True");
        assert_eq!(get(&first.status, CONDITION_STALLED).status, "False");
        let reasons: Vec<&str> = first.events.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons, ["ArrayUnreachable"]);
        assert!(matches!(first.events[0].type_, EventType::Warning));
        // The retry, waiting out the backoff: same message, no new Event.
        let sa = with_status(sa, first.status.clone());
        let backing_off = ArrayAccessError::BackingOff {
            array: "ns/dsm".into(),
            wait_secs: 9,
            last: Box::new(unreachable()),
        };
        let second = report(&sa, &Err(backing_off), &[]);
        assert!(second.events.is_empty(), "{:?}", second.events.len());
        assert_eq!(
            get(&second.status, CONDITION_READY).message,
            get(&first.status, CONDITION_READY).message
        );
        assert_eq!(
            get(&second.status, CONDITION_READY).last_transition_time,
            get(&first.status, CONDITION_READY).last_transition_time
        );
    }

    #[test]
    fn refused_credentials_and_missing_secrets_are_stalled() {
        let missing = ArrayAccessError::Secret {
            array: "ns/dsm".into(),
            field: "spec.credentialsSecretRef",
            problem: "Secret \"creds\" does not exist".into(),
        };
        let bad_url = crate::controller::arrays::check_endpoint(
            "ns/dsm",
            "spec.endpoint",
            "https://dsm example",
        )
        .expect_err("invalid");
        for (e, reason) in [
            (refused(), "CredentialsRefused"),
            (missing, "CredentialsMissing"),
            (bad_url, "InvalidSpec"),
        ] {
            let r = report(&array(json!(null)), &Err(e.clone()), &[]);
            let stalled = get(&r.status, CONDITION_STALLED);
            assert_eq!(
                (stalled.status.as_str(), stalled.reason.as_str()),
                ("True", reason)
            );
            assert_eq!(stalled.message, e.to_string());
            assert_eq!(get(&r.status, CONDITION_RECONCILING).status, "False");
            assert_eq!(get(&r.status, CONDITION_READY).status, "False");
        }
    }

    #[test]
    fn insecure_skip_verify_warns_once_and_sets_a_condition() {
        let sa = array(json!({"insecureSkipVerify": true}));
        let first = report(&sa, &Ok(info()), &[]);
        let tls = get(&first.status, CONDITION_TLS_VERIFIED);
        assert_eq!(
            (tls.status.as_str(), tls.reason.as_str()),
            ("False", "InsecureSkipVerify")
        );
        assert_eq!(first.events.len(), 1);
        assert_eq!(first.events[0].reason, "InsecureSkipVerify");
        assert!(
            first.events[0]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("spec.tls.insecureSkipVerify")),
        );
        let again = report(&with_status(sa, first.status.clone()), &Ok(info()), &[]);
        assert!(again.events.is_empty());
    }

    #[test]
    fn a_deleted_array_says_what_it_waits_for() {
        let r = report(
            &array(json!(null)),
            &Ok(info()),
            &["IscsiTarget/t1".to_string(), "Lun/db".to_string()],
        );
        let c = get(&r.status, CONDITION_RECONCILING);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "WaitingForReferrers")
        );
        assert!(
            c.message.ends_with("IscsiTarget/t1, Lun/db"),
            "{}",
            c.message
        );
    }

    #[test]
    fn a_new_generation_is_reconciling_before_the_connect() {
        let sa = array(json!(null));
        let s = connecting(&sa).expect("a first connect");
        assert_eq!(get(&s, CONDITION_RECONCILING).status, "True");
        assert_eq!(get(&s, CONDITION_RECONCILING).reason, "Connecting");
        let done = report(&sa, &Ok(info()), &[]).status;
        assert!(connecting(&with_status(sa, done)).is_none());
    }

    #[test]
    fn mappers_name_the_array_of_a_referrer_and_the_arrays_of_a_secret() {
        let lun: Lun = serde_json::from_value(json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "Lun",
            "metadata": {"name": "db", "namespace": "ns"},
            "spec": {"arrayRef": {"name": "dsm"}, "size": "1Gi"}
        }))
        .expect("lun");
        let r = array_of(&lun).expect("ref");
        assert_eq!(
            (r.name.as_str(), r.namespace.as_deref()),
            ("dsm", Some("ns"))
        );
        let mut other = array(json!({"caSecretRef": {"name": "ca", "key": "ca.crt"}}));
        other.metadata.name = Some("dsm2".into());
        let all = vec![Arc::new(array(json!(null))), Arc::new(other)];
        let names = |s: &str| -> Vec<String> {
            arrays_using_secret(&all, "ns", s)
                .into_iter()
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(names("creds"), ["dsm", "dsm2"]);
        assert_eq!(names("ca"), ["dsm2"]);
        assert!(arrays_using_secret(&all, "other", "creds").is_empty());
    }
}
