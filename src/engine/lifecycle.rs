//! The one lifecycle every managed kind shares, in the shape of
//! crossplane-runtime's managed reconciler: pause, references, the desired
//! state checked against the vendor's rules, identity and the ownership
//! protocol, the crash-safe create, the diff and its apply, conditions,
//! Events, and cleanup are written here once. A kind supplies only what is
//! its own through [`Managed`]; the vendor adapter behind
//! [`crate::array::backend::Backend`] supplies the external client.
//!
//! Ownership invariants this file keeps under any crash or fault:
//! - no duplicate: a create is recorded `pending` before the call, and a
//!   pending record is settled (found by name, or proven absent on a list
//!   made after the call) before any further create;
//! - no orphan: a create in doubt counts as the operator's for deletion,
//!   and deletion settles the doubt before deciding;
//! - no foreign write: nothing is changed or deleted unless this object
//!   created it, recovered it from its own pending record, or a user named
//!   it in `external-name`, and no other object holds the same array id;
//! - convergence: every stop is retried (with backoff) or waits for a
//!   person, and says which.

use std::collections::BTreeMap;
use std::future::Future;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::array::backend::{BackendError, CreateTask, Created};
use crate::array::error::ErrorClass;
use crate::crd::shared::{
    CommonStatus, DeletionPolicy, ManagementPolicy, ready_reason, synced_reason,
};
use crate::reconcile::Drift;
use crate::reconcile::claims::{self, Claim};
use crate::reconcile::claims_index::ClaimKey;
use crate::reconcile::identity::{self, ArrayIndex, CreateRecord, Identity};

use super::common::{Stop, conditions, paused, paused_generation, spec_unchanged};
use super::conditions::ConditionState;
use super::dry_run::DryRun;
use super::observation::ArrayView;
use super::spec_error::InvalidSpec;
use super::{
    ArrayHandle, Cleanup, Cluster, ClusterError, EngineEvent, ObjectKey, Outcome, Progress,
    effective_deletion_policy, event_reason, timestamp,
};

/// A diff's result: the calls that make the array match, in order, and
/// every difference found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan<Op> {
    /// Calls, in order.
    pub ops: Vec<Op>,
    /// Every difference (correctable or not).
    pub drift: Vec<Drift>,
    /// What the array object is doing that the next pass must see the end
    /// of (a guest booting or shutting down), as a sentence: the object is
    /// then not Ready and is looked at again soon.
    pub waiting: Option<String>,
}

/// Why the references of a spec could not be resolved.
#[derive(Debug)]
pub enum Unresolved {
    /// The spec names something that can never work as written.
    Invalid(InvalidSpec),
    /// Waiting for another object (named in the message) to exist.
    Waiting(String),
    /// The Kubernetes API failed.
    Api(ClusterError),
}

/// Why the desired state could not be made.
#[derive(Debug)]
pub enum Refusal {
    /// The spec breaks a rule of the array's vendor.
    Invalid(InvalidSpec),
    /// The array failed while resolving a name the spec uses.
    Array(BackendError),
}

impl From<InvalidSpec> for Refusal {
    fn from(i: InvalidSpec) -> Self {
        Refusal::Invalid(i)
    }
}

/// What one Event says about one operation.
#[derive(Clone, Debug)]
pub struct OpEvent {
    /// Event reason (`Updated`, `Mapped`, ...); `None`: the drift reason.
    pub reason: Option<&'static str>,
    /// The action (`Resize`, `Map`, ...).
    pub action: &'static str,
    /// What was done, for a person.
    pub note: String,
}

/// What a kind supplies to the lifecycle. Every method is about this kind
/// only; nothing here is about a vendor.
pub trait Managed:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The kind (`Lun`).
    const KIND: &'static str;
    /// The array object's noun in messages (`LUN`).
    const NOUN: &'static str;
    /// What the spec's references resolve to.
    type Resolved: Send + Sync;
    /// The array object the spec asks for.
    type Desired: Clone + Send + Sync;
    /// The array object as observed.
    type Observed: Clone + Send + Sync;
    /// One call's worth of change.
    type Op: Clone + Send + Sync;
    /// The status the controller writes.
    type Status: Send + Sync;

    /// `spec.arrayRef.name`.
    fn array_ref(&self) -> &str;
    /// The array-side name.
    fn array_name(&self) -> String;
    /// `spec.managementPolicy`.
    fn management_policy(&self) -> ManagementPolicy;
    /// `spec.deletionPolicy`.
    fn deletion_policy(&self) -> Option<DeletionPolicy>;
    /// The common part of the current status.
    fn common_status(&self) -> Option<&CommonStatus>;

    /// Resolves what the spec names outside itself. `creating`: the object
    /// has no array id yet (create-only references matter).
    fn resolve(
        &self,
        cluster: &impl Cluster,
        creating: bool,
    ) -> impl Future<Output = Result<Self::Resolved, Unresolved>> + Send;

    /// The desired array object, checked against the vendor's rules by the
    /// array's adapter: nothing is written (annotations included) when this
    /// refuses.
    fn desired(
        &self,
        resolved: &Self::Resolved,
        array: &ArrayHandle,
    ) -> impl Future<Output = Result<Self::Desired, Refusal>> + Send;

    /// The object with this id in the view.
    fn find(view: &ArrayView, id: &str) -> Option<Self::Observed>;
    /// The id of the object with this name in the view.
    fn find_name(view: &ArrayView, name: &str) -> Option<String>;
    /// The records of this kind the array listed but that could not be
    /// read (id where known, and why).
    fn malformed(view: &ArrayView) -> &[(Option<String>, BackendError)];
    /// Puts (or removes) the object `id` in the view after a write of ours.
    fn put(view: &mut ArrayView, id: &str, after: Option<&Self::Observed>, op: Option<&Self::Op>);

    /// Creates it on the array.
    fn create(
        array: &ArrayHandle,
        desired: &Self::Desired,
    ) -> impl Future<Output = Result<Created, BackendError>> + Send;
    /// What [`Managed::create`] would answer, without a call that changes
    /// the array (`plan`'s dry run): the refusals the adapter makes before
    /// its first call, and otherwise a complete create of the made-up `id`.
    /// Reads are allowed. A complete create of `id` by default.
    fn create_dry_run(
        _array: &ArrayHandle,
        _desired: &Self::Desired,
        id: String,
    ) -> impl Future<Output = Result<Created, BackendError>> + Send {
        std::future::ready(Ok(Created::complete(id)))
    }
    /// What a create that fully succeeded made, as the diff assumes; `None`
    /// when the array chose something (an IQN) only a list can tell.
    fn created(desired: &Self::Desired, created: &Created) -> Option<Self::Observed>;
    /// The create-time fields that name something on the array (a pool,
    /// a volume), with their values: named in the condition when the array
    /// refuses a create.
    fn create_fields(&self) -> Option<String>;
    /// What a create made, for its Event (`created LUN "db" (10 GiB, ...)`).
    fn created_note(desired: &Self::Desired) -> String;
    /// The changes the create call made beyond the object itself (an NGX
    /// target create binds its LUNs), for their own Events. None by default.
    fn created_ops(_created: &Created) -> Vec<Self::Op> {
        Vec::new()
    }
    /// The diff.
    fn diff(
        &self,
        desired: &Self::Desired,
        observed: &Self::Observed,
        resolved: &Self::Resolved,
    ) -> Plan<Self::Op>;
    /// Applies one operation to the array object `id`.
    fn apply(
        array: &ArrayHandle,
        id: &str,
        op: &Self::Op,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
    /// The object after `op`, as the diff assumes the call behaves.
    fn model(observed: Self::Observed, op: &Self::Op) -> Option<Self::Observed>;
    /// The Event of one operation.
    fn event(&self, op: &Self::Op, resolved: Option<&Self::Resolved>) -> OpEvent;
    /// The calls that remove the object (unmaps the vendor needs first,
    /// then the delete). When the object is still there after them, as
    /// [`Managed::model`] says (a guest asked to shut down), deletion waits
    /// and the next pass plans again.
    fn delete_ops(&self, array: &ArrayHandle, observed: &Self::Observed) -> Vec<Self::Op>;
    /// Tells the array's view what this kind needs listed (guests), before
    /// any view is read: a view without them would take the object for
    /// gone. Nothing by default (LUNs and targets are always listed).
    fn observe_with(_array: &ArrayHandle) {}
    /// Why deletion waits on the array object itself, when
    /// [`Managed::delete_ops`] left it in place.
    fn deletion_waits(&self, _observed: &Self::Observed) -> String {
        format!(
            "deletion waits for the {} to be ready to delete",
            Self::NOUN
        )
    }
    /// The status while deletion waits on the array object. `applied`: the
    /// calls this pass made. Keeps the kind's fields by default.
    fn deleting_status(
        &self,
        common: CommonStatus,
        _observed: Option<&Self::Observed>,
        _applied: &[Self::Op],
    ) -> Self::Status {
        self.keep_status(common)
    }

    /// The status with the create still running on the array as `task`
    /// (`None` when none runs). Unchanged by default: only kinds whose
    /// creates run as array tasks (a VMM guest) show one.
    fn task_status(status: Self::Status, _task: Option<&CreateTask>) -> Self::Status {
        status
    }

    /// What the object still waits for although its array object matches
    /// (a target's Luns not created yet), as a sentence.
    fn waiting_for(&self, resolved: &Self::Resolved) -> Option<String>;
    /// Why deletion must wait (a target still lists this Lun).
    fn deletion_hold(
        &self,
        cluster: &impl Cluster,
    ) -> impl Future<Output = Result<Option<String>, ClusterError>> + Send;

    /// The status with new conditions and id, keeping the kind's own fields
    /// as they were.
    fn keep_status(&self, common: CommonStatus) -> Self::Status;
    /// The status after a pass that observed (and perhaps changed) the
    /// array object. `applied`: the operations that succeeded.
    fn observed_status(
        &self,
        common: CommonStatus,
        observed: Option<&Self::Observed>,
        resolved: &Self::Resolved,
        applied: &[Self::Op],
    ) -> Self::Status;
}

/// The [`Managed`] accessors every kind spells the same way: its spec's
/// `arrayRef`, `name`, `managementPolicy` and `deletionPolicy`, and the
/// common part of its status.
macro_rules! common_fields {
    () => {
        fn array_ref(&self) -> &str {
            &self.spec.array_ref.name
        }
        fn array_name(&self) -> String {
            $crate::engine::array_side_name(self.spec.name.as_ref(), &self.metadata)
        }
        fn management_policy(&self) -> $crate::crd::shared::ManagementPolicy {
            self.spec.management_policy
        }
        fn deletion_policy(&self) -> Option<$crate::crd::shared::DeletionPolicy> {
            self.spec.deletion_policy
        }
        fn common_status(&self) -> Option<&$crate::crd::shared::CommonStatus> {
            self.status.as_ref().map(|s| &s.common)
        }
    };
}
pub(crate) use common_fields;

/// The UID the ownership records are bound to (the object key where the
/// object has none, as in some in-memory tests).
pub fn uid_of(meta: &ObjectMeta) -> String {
    meta.uid
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            format!(
                "{}/{}",
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default()
            )
        })
}

/// The object's own claim, for the claims index.
pub fn claim_of<K: Managed>(obj: &K) -> Claim {
    let meta = obj.meta();
    let uid = uid_of(meta);
    Claim {
        object: ObjectKey::of(K::KIND, meta).to_string(),
        id: claims::claimed_id(
            meta.annotations.as_ref().unwrap_or(&BTreeMap::new()),
            &uid,
            obj.common_status().and_then(|s| s.external_id.as_deref()),
        ),
        name: obj.array_name(),
        created: meta
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        uid,
    }
}

struct Index<'a, K>(&'a ArrayView, std::marker::PhantomData<K>);

impl<K: Managed> ArrayIndex for Index<'_, K> {
    fn has_id(&self, id: &str) -> bool {
        K::find(self.0, id).is_some()
    }
    fn id_by_name(&self, name: &str) -> Option<String> {
        K::find_name(self.0, name)
    }
}

fn record_of(meta: &ObjectMeta) -> CreateRecord {
    CreateRecord::from_annotations(
        meta.annotations.as_ref().unwrap_or(&BTreeMap::new()),
        &uid_of(meta),
    )
}

/// Accumulates what one reconcile decides.
struct Run<'a, K: Managed> {
    obj: &'a K,
    events: Vec<EngineEvent>,
    external_id: Option<String>,
    /// This object's create still running on the array, as last seen.
    task: Option<CreateTask>,
    /// The `status.observedGeneration` to report: the object's generation,
    /// or the last reconciled one while paused.
    observed_generation: Option<i64>,
}

impl<'a, K: Managed> Run<'a, K> {
    fn new(obj: &'a K) -> Self {
        Run {
            obj,
            events: Vec::new(),
            external_id: obj.common_status().and_then(|s| s.external_id.clone()),
            task: None,
            observed_generation: obj.meta().generation,
        }
    }

    fn common(
        &self,
        ready: Option<&ConditionState>,
        synced: &ConditionState,
        progress: Progress,
    ) -> CommonStatus {
        let generation = self.obj.meta().generation;
        CommonStatus {
            observed_generation: self.observed_generation,
            conditions: conditions(
                self.obj.common_status(),
                ready,
                synced,
                progress,
                generation,
            ),
            external_id: self.external_id.clone(),
        }
    }

    fn stop(mut self, stop: Stop) -> Outcome<K::Status> {
        self.events.extend(stop.event.clone());
        let common = self.common(stop.ready.as_ref(), &stop.synced, stop.progress);
        Outcome {
            status: K::task_status(self.obj.keep_status(common), self.task.as_ref()),
            events: merge_events(self.events),
            progress: stop.progress,
        }
    }
}

/// One Event per reason and action, naming everything it covers: the
/// Event recorder folds Events of one reason into a series that keeps only
/// the first note, so five mappings must be one Event that names five Luns.
pub fn merge_events(events: Vec<EngineEvent>) -> Vec<EngineEvent> {
    let mut merged: Vec<EngineEvent> = Vec::new();
    for e in events {
        match merged
            .iter_mut()
            .find(|m| m.reason == e.reason && m.action == e.action && m.type_ == e.type_)
        {
            Some(m) if m.note != e.note => {
                m.note.push_str("; ");
                m.note.push_str(&e.note);
            }
            Some(_) => {}
            None => merged.push(e),
        }
    }
    merged
}

async fn annotate(
    cluster: &impl Cluster,
    key: &ObjectKey,
    a: BTreeMap<String, String>,
) -> Result<(), Stop> {
    cluster.annotate(key, a).await.map_err(Stop::cluster)
}

/// The claims of kind `K` on `obj`'s array that hold the id or want the
/// name `key` names (a lookup in the claims index, not a scan).
async fn claims_on<K: Managed>(
    cluster: &impl Cluster,
    obj: &K,
    key: ClaimKey<'_>,
) -> Result<Vec<Claim>, Stop> {
    let namespace = obj.meta().namespace.as_deref().unwrap_or_default();
    cluster
        .claims_on::<K>(namespace, obj.array_ref(), key)
        .await
        .map_err(Stop::cluster)
}

/// True when the array refused before acting, so a create that got this
/// answer made nothing.
fn refused_before_acting(e: &BackendError) -> bool {
    matches!(
        e.class,
        ErrorClass::InvalidRequest
            | ErrorClass::AlreadyExists
            | ErrorClass::NotFound
            | ErrorClass::InUse
            | ErrorClass::Busy
            | ErrorClass::Unauthorized
            | ErrorClass::SessionExpired
            | ErrorClass::LimitReached
            | ErrorClass::Unsupported
    )
}

/// Reconciles one object (not being deleted) against its array.
pub async fn reconcile<K: Managed>(
    obj: &K,
    array: &ArrayHandle,
    cluster: &impl Cluster,
) -> Outcome<K::Status> {
    let mut run = Run::new(obj);
    if paused(obj.meta()) {
        run.observed_generation = paused_generation(obj.common_status(), obj.meta().generation);
        return run.stop(Stop::paused());
    }
    let key = ObjectKey::of(K::KIND, obj.meta());
    let uid = uid_of(obj.meta());
    let mut record = record_of(obj.meta());
    let creating = record.external_name.is_none() && run.external_id.is_none();
    let resolved = match obj.resolve(cluster, creating).await {
        Ok(r) => r,
        Err(Unresolved::Invalid(i)) => return run.stop(Stop::invalid(&i)),
        Err(Unresolved::Waiting(why)) => return run.stop(Stop::waiting(why)),
        Err(Unresolved::Api(e)) => return run.stop(Stop::cluster(e)),
    };
    let desired = match obj.desired(&resolved, array).await {
        Ok(d) => d,
        Err(Refusal::Invalid(i)) => return run.stop(Stop::invalid(&i)),
        Err(Refusal::Array(e)) => return run.stop(Stop::array(&e, "Observe", array)),
    };
    K::observe_with(array);
    // A create in doubt is settled only from a list made after it: the
    // cached view may predate the create.
    let since = if record.create_in_doubt() {
        Some(std::time::Instant::now())
    } else {
        std::time::Instant::now().checked_sub(array.resync)
    };
    let view = match array.cache.view_since(&array.backend, since).await {
        Ok(v) => v,
        Err(e) => return run.stop(Stop::array(&e, "Observe", array)),
    };
    let name = obj.array_name();
    let me = claim_of(obj);
    let manage = obj.management_policy() == ManagementPolicy::Manage;

    // A record the array listed but that could not be read fails its own
    // object alone; one without a readable id might be anyone's, so no
    // create (or settling of one) is decided past it.
    let malformed = K::malformed(&view);
    if let Some((_, e)) = malformed
        .iter()
        .find(|(id, _)| id.is_some() && *id == me.id)
    {
        return run.stop(Stop::array(e, "Observe", array));
    }
    // This object's own create still runs on the array as a task: wait for
    // its end (the object is recorded then), showing its progress.
    if record.create_in_doubt()
        && let Some(task) = record.pending.as_ref().and_then(|p| p.task.as_deref())
        && let Some(running) = view.create_tasks.iter().find(|t| t.id == task)
    {
        run.task = Some(running.clone());
        // Listed again next pass, to see the task's end.
        array.cache.invalidate();
        return run.stop(Stop::create_running(K::NOUN, &name, running));
    }
    let unreadable = malformed.iter().find(|(id, _)| id.is_none());
    let mut identity = identity::resolve(
        &record,
        &name,
        &Index::<K>(&view, Default::default()),
        chrono::Utc::now(),
    );
    if identity == Identity::NotCreated && unreadable.is_none() {
        // The create in doubt made nothing (a list made after it has no
        // object of the name): settle that before deciding again.
        let at = timestamp();
        if let Err(stop) = annotate(cluster, &key, identity::failed_annotations(&uid, &at)).await {
            return run.stop(stop);
        }
        record.failed = identity::Stamp::parse(&at);
        identity = identity::resolve(
            &record,
            &name,
            &Index::<K>(&view, Default::default()),
            chrono::Utc::now(),
        );
    }
    if let (Some((_, e)), Identity::NotCreated | Identity::Create | Identity::Recreate { .. }) =
        (unreadable, &identity)
    {
        let mut stop = Stop::array(e, "Observe", array);
        stop.synced.message.push_str(&format!(
            "; no {} is created while a record the array lists cannot be read, since it may be this one",
            K::NOUN
        ));
        // Listed again next pass: the record may read by then.
        array.cache.invalidate();
        return run.stop(stop);
    }
    if let Identity::Existing {
        id,
        recovered: true,
    } = &identity
        && let Some(ext) = record.external_name.clone()
        && ext != *id
        && record
            .succeeded
            .as_ref()
            .is_none_or(|s| s.id.as_deref() != Some(ext.as_str()))
    {
        // A user pointed external-name elsewhere while this create was in
        // doubt: the create's object is recorded (never taken for someone
        // else's later) and left to the user; external-name is the object.
        let at = timestamp();
        if let Err(stop) = annotate(cluster, &key, identity::succeeded_stamp(&uid, &at, id)).await {
            return run.stop(stop);
        }
        run.events.push(EngineEvent::warning(
            event_reason::RECONCILE_ERROR,
            "Create",
            format!(
                "{} {id} on {}, made by a create whose answer was lost, is left on the array: annotation {} names {ext}, set after that create",
                K::NOUN,
                array.key,
                crate::crd::shared::ANNOTATION_EXTERNAL_NAME
            ),
        ));
        record.succeeded = identity::Stamp::parse(&at);
        identity = identity::resolve(
            &record,
            &name,
            &Index::<K>(&view, Default::default()),
            chrono::Utc::now(),
        );
    }
    let mut fresh_create = None;
    let id = match identity {
        Identity::Existing { id, recovered } => {
            let others = match claims_on(cluster, obj, ClaimKey::Id(&id)).await {
                Ok(c) => c,
                Err(stop) => return run.stop(stop),
            };
            if let Some(other) = claims::holder(&others, &me, &id, !recovered) {
                return run.stop(if recovered {
                    Stop::in_doubt(K::NOUN, &name, &id, &other.object)
                } else {
                    Stop::conflict(K::NOUN, &id, &other.object)
                });
            }
            if recovered {
                let at = timestamp();
                if let Err(stop) = annotate(
                    cluster,
                    &key,
                    identity::succeeded_annotations(&uid, &at, &id),
                )
                .await
                {
                    return run.stop(stop);
                }
                run.events.push(EngineEvent::normal(
                    event_reason::CREATED,
                    "Create",
                    format!(
                        "recorded {} {name:?} (id {id}) on {}, made by a create whose answer was lost",
                        K::NOUN,
                        array.key
                    ),
                ));
            }
            id
        }
        Identity::AlreadyExists { existing_id } => {
            let others = match claims_on(cluster, obj, ClaimKey::Id(&existing_id)).await {
                Ok(c) => c,
                Err(stop) => return run.stop(stop),
            };
            return run.stop(
                match others
                    .iter()
                    .find(|c| c.uid != me.uid && c.id.as_deref() == Some(existing_id.as_str()))
                {
                    Some(other) => Stop::conflict(K::NOUN, &existing_id, &other.object),
                    None => Stop::already_exists(
                        K::NOUN,
                        &name,
                        &existing_id,
                        array,
                        record.copied_external_name.as_deref(),
                    ),
                },
            );
        }
        Identity::Unprovable { id, pending_at } => {
            return run.stop(Stop::unprovable(K::NOUN, &name, &id, &pending_at));
        }
        Identity::AdoptedMissing { id } => {
            return run.stop(Stop::adopted_missing(K::NOUN, &id, array));
        }
        Identity::NotCreated => {
            return run.stop(Stop::waiting("the create in doubt is being settled".into()));
        }
        Identity::Create | Identity::Recreate { .. } if !manage => {
            return run.stop(Stop::observe_absent(K::NOUN, &name, array));
        }
        Identity::Create | Identity::Recreate { .. } => {
            let others = match claims_on(cluster, obj, ClaimKey::Name(&name)).await {
                Ok(c) => c,
                Err(stop) => return run.stop(stop),
            };
            if let Some(other) = others
                .iter()
                .filter(|c| c.uid != me.uid && c.name == name)
                .find(|c| {
                    c.id.is_some()
                        || (c.created.as_str(), c.uid.as_str())
                            < (me.created.as_str(), me.uid.as_str())
                })
            {
                return run.stop(Stop::name_conflict(K::NOUN, &name, &other.object));
            }
            let lost = matches!(identity, Identity::Recreate { .. });
            match create::<K>(obj, &desired, &resolved, array, cluster, lost, &mut run).await {
                Ok((id, fresh)) => {
                    fresh_create = Some(fresh);
                    id
                }
                Err(stop) => return run.stop(stop),
            }
        }
    };
    run.external_id = Some(id.clone());

    let view = match fresh_create {
        // The array chose something the model cannot know: learn it from a
        // list made after the create (shared with concurrent creates).
        Some(Some(since)) => match array.cache.view_since(&array.backend, Some(since)).await {
            Ok(v) => v,
            Err(e) => return run.stop(Stop::array(&e, "Observe", array)),
        },
        _ => array.cache.peek().unwrap_or(view),
    };
    let Some(observed) = K::find(&view, &id) else {
        if let Some(dry) = array.dry_run.as_ref().filter(|_| DryRun::is_planned(&id)) {
            // The array chooses part of what it creates (a guest's disk
            // ids): the calls after the create depend on its answer, and
            // the shared view keeps what the dry run planned so far.
            dry.note(format!(
                "the calls after the create are decided from what the array answers (the {} it chooses)",
                K::NOUN
            ));
            return run.stop(Stop::creating(K::NOUN));
        }
        array.cache.invalidate();
        return run.stop(Stop::creating(K::NOUN));
    };
    let plan = obj.diff(&desired, &observed, &resolved);
    if let Some(dry) = &array.dry_run {
        dry.drift(&plan.drift);
    }
    let drift_reason = if spec_unchanged(obj.common_status(), obj.meta().generation) {
        event_reason::DRIFT_CORRECTED
    } else {
        event_reason::UPDATED
    };
    let mut current = Some(observed);
    let mut applied = Vec::new();
    if manage {
        for op in &plan.ops {
            let Some(before) = current.clone() else { break };
            let result = match &array.dry_run {
                Some(dry) => {
                    let event = obj.event(op, Some(&resolved));
                    dry.record(
                        event.reason.unwrap_or(drift_reason),
                        event.action,
                        event.note,
                    );
                    Ok(())
                }
                None => K::apply(array, &id, op).await,
            };
            if let Err(e) = result {
                if matches!(
                    e.class,
                    ErrorClass::NotFound
                        | ErrorClass::AlreadyExists
                        | ErrorClass::Unreachable
                        | ErrorClass::Other
                ) {
                    array.cache.invalidate();
                }
                let event = obj.event(op, Some(&resolved));
                let mut stop = Stop::array(&e, event.action, array);
                run.events.extend(stop.event.take());
                let common = run.common(stop.ready.as_ref(), &stop.synced, stop.progress);
                return Outcome {
                    status: obj.observed_status(common, current.as_ref(), &resolved, &applied),
                    events: merge_events(run.events),
                    progress: stop.progress,
                };
            }
            current = K::model(before, op);
            let after = current.clone();
            array
                .cache
                .write_through(|v| K::put(v, &id, after.as_ref(), Some(op)));
            let event = obj.event(op, Some(&resolved));
            run.events.push(EngineEvent::normal(
                event.reason.unwrap_or(drift_reason),
                event.action,
                event.note,
            ));
            applied.push(op.clone());
        }
    }

    let uncorrectable: Vec<String> = plan
        .drift
        .iter()
        .filter(|d| !d.correctable)
        .map(|d| d.to_string())
        .collect();
    let pending: Vec<String> = if manage {
        Vec::new()
    } else {
        plan.drift
            .iter()
            .filter(|d| d.correctable)
            .map(|d| d.to_string())
            .collect()
    };
    // A call that started a transition (a power-on) leaves the object
    // waiting for its end: ask the diff about the object as modelled.
    let waiting = if applied.is_empty() {
        plan.waiting.clone()
    } else {
        current
            .as_ref()
            .and_then(|c| obj.diff(&desired, c, &resolved).waiting)
    }
    .or_else(|| obj.waiting_for(&resolved));
    if (waiting.is_some() && !applied.is_empty()) || plan.waiting.is_some() {
        // The array object is in a transition the model only guesses the
        // end of (a guest booting): the next pass must list it again.
        array.cache.invalidate();
    }
    let (ready, synced, progress) = if !uncorrectable.is_empty() || !pending.is_empty() {
        let mut parts = uncorrectable;
        if !pending.is_empty() {
            parts.push(format!(
                "not corrected (managementPolicy Observe): {}",
                pending.join("; ")
            ));
        }
        (
            ConditionState::no(ready_reason::DRIFTED, parts.join("; ")),
            ConditionState::yes(
                synced_reason::RECONCILE_SUCCESS,
                "the array was observed and the spec applied",
            ),
            Progress::Converged,
        )
    } else if let Some(why) = waiting {
        (
            ConditionState::no(ready_reason::CREATING, why.clone()),
            ConditionState::yes(
                synced_reason::RECONCILE_SUCCESS,
                "the array was observed and what can be applied was applied",
            ),
            Progress::Waiting,
        )
    } else {
        (
            ConditionState::yes(
                ready_reason::AVAILABLE,
                format!("{} {id} on {} matches the spec", K::NOUN, array.key),
            ),
            ConditionState::yes(
                synced_reason::RECONCILE_SUCCESS,
                "the array was observed and the spec applied",
            ),
            Progress::Converged,
        )
    };
    let common = run.common(Some(&ready), &synced, progress);
    Outcome {
        status: obj.observed_status(common, current.as_ref(), &resolved, &applied),
        events: merge_events(run.events),
        progress,
    }
}

/// The crash-safe create: record pending, create, record the result. On
/// success returns the id and, when the view must learn what the array
/// chose, the instant a list must be newer than.
async fn create<K: Managed>(
    obj: &K,
    desired: &K::Desired,
    resolved: &K::Resolved,
    array: &ArrayHandle,
    cluster: &impl Cluster,
    lost: bool,
    run: &mut Run<'_, K>,
) -> Result<(String, Option<std::time::Instant>), Stop> {
    let key = ObjectKey::of(K::KIND, obj.meta());
    let uid = uid_of(obj.meta());
    let name = obj.array_name();
    let key = &key;
    let uid = uid.as_str();
    let name = name.as_str();
    let hint = obj.create_fields();
    let mut pending = identity::pending_annotations(uid, &timestamp(), name);
    let pending_stamp = pending
        .get(crate::crd::shared::ANNOTATION_CREATE_PENDING)
        .and_then(|v| identity::Stamp::parse(v));
    if record_of(obj.meta()).copied_external_name.is_some() {
        // An external-name copied from another object must not turn into
        // this object's claim once it has records of its own: clear it in
        // the same write (an empty value is no claim).
        pending.insert(
            crate::crd::shared::ANNOTATION_EXTERNAL_NAME.to_string(),
            String::new(),
        );
    }
    annotate(cluster, key, pending).await?;
    let attempt = match &array.dry_run {
        Some(dry) => {
            let planned = K::create_dry_run(array, desired, dry.new_id()).await;
            if planned.is_ok() {
                dry.record(event_reason::CREATED, "Create", K::created_note(desired));
            }
            planned
        }
        None => K::create(array, desired).await,
    };
    let created = match attempt {
        Ok(c) => c,
        Err(e) if refused_before_acting(&e) => {
            // Nothing was made; best effort: without the record the next
            // pass finds no object of the name and settles it the same way.
            let _ = cluster
                .annotate(key, identity::failed_annotations(uid, &timestamp()))
                .await;
            if e.class == ErrorClass::AlreadyExists {
                array.cache.invalidate();
            }
            let mut stop = Stop::array(&e, "Create", array);
            if let Some(fields) = hint {
                stop.synced.message.push_str(&format!(
                    "; the array refused the create: check {fields} (it must name something the array has)"
                ));
            }
            return Err(stop);
        }
        Err(e) => {
            // In doubt: the pending record stays, and the next pass settles
            // it from a fresh list.
            array.cache.invalidate();
            return Err(Stop::array(&e, "Create", array).in_doubt_note());
        }
    };
    if let Some(task) = created.running {
        // Accepted, not finished: the create stays in doubt, and its record
        // names the task so the next passes wait for it (and show it).
        array.cache.invalidate();
        let stop = Stop::create_running(K::NOUN, name, &task);
        run.task = Some(task);
        if let (Some(stamp), Some(task)) = (&pending_stamp, &run.task) {
            annotate(
                cluster,
                key,
                identity::pending_task_annotations(stamp, &task.id),
            )
            .await?;
        }
        return Err(stop);
    }
    // A list that must show what the array chose has to start after the
    // create returned.
    let returned = std::time::Instant::now();
    let id = created.id.clone();
    let model = if created.incomplete.is_none() {
        K::created(desired, &created)
    } else {
        None
    };
    match (&model, &created.incomplete) {
        (Some(m), _) => array.cache.write_through(|v| K::put(v, &id, Some(m), None)),
        // Cut part way: what the array holds is unknown until a list.
        (None, Some(_)) => array.cache.invalidate(),
        // The array chose something: the list after `returned` tells.
        (None, None) => {}
    }
    run.events.push(EngineEvent::normal(
        event_reason::CREATED,
        "Create",
        format!(
            "{} (id {id}) on {}{}",
            K::created_note(desired),
            array.key,
            if lost {
                "; the one it replaces had disappeared from the array"
            } else {
                ""
            }
        ),
    ));
    for op in K::created_ops(&created) {
        let event = obj.event(&op, Some(resolved));
        if let Some(dry) = &array.dry_run {
            dry.record(
                event.reason.unwrap_or(event_reason::UPDATED),
                event.action,
                event.note.clone(),
            );
        }
        run.events.push(EngineEvent::normal(
            event.reason.unwrap_or(event_reason::UPDATED),
            event.action,
            event.note,
        ));
    }
    if let Err(e) = cluster
        .annotate(key, identity::succeeded_annotations(uid, &timestamp(), &id))
        .await
    {
        // The object exists and the pending record finds it next pass.
        run.external_id = Some(id);
        return Err(Stop::cluster(e));
    }
    run.external_id = Some(id.clone());
    if let Some(e) = created.incomplete {
        // A multi-step create cut part way: the object is ours and recorded;
        // the next pass observes it and completes the remaining steps.
        return Err(Stop::array(&e, "Create", array));
    }
    Ok((id, model.is_none().then_some(returned)))
}

/// Cleans up one object being deleted: per deletionPolicy, removes its
/// array object (settling a create in doubt first), or leaves it.
pub async fn cleanup<K: Managed>(
    obj: &K,
    array: Option<&ArrayHandle>,
    cluster: &impl Cluster,
) -> Cleanup<K::Status> {
    let record = record_of(obj.meta());
    let policy = if obj.management_policy() == ManagementPolicy::Observe {
        DeletionPolicy::Retain
    } else {
        effective_deletion_policy(obj.deletion_policy(), record.created_by_operator())
    };
    let recorded = record.external_name.clone().or_else(|| {
        obj.common_status()
            .and_then(|s| s.external_id.clone())
            .filter(|_| record.copied_from.is_none())
    });
    let in_doubt = record.create_in_doubt();
    if policy == DeletionPolicy::Retain || (recorded.is_none() && !in_doubt) {
        return Cleanup::Done { events: Vec::new() };
    }
    let run = Run::new(obj);
    if paused(obj.meta()) {
        return Cleanup::Held(run.stop(Stop::paused_deletion()));
    }
    match obj.deletion_hold(cluster).await {
        Ok(Some(why)) => return Cleanup::Held(run.stop(Stop::held(why))),
        Ok(None) => {}
        Err(e) => return Cleanup::Held(run.stop(Stop::cluster(e))),
    }
    let Some(array) = array else {
        return Cleanup::Held(run.stop(Stop::no_array_for_deletion(K::NOUN)));
    };
    K::observe_with(array);
    // "Already gone" must be the array's word: a view that does not have
    // the object is refreshed before it is believed.
    let since = if in_doubt {
        Some(std::time::Instant::now())
    } else {
        std::time::Instant::now().checked_sub(array.resync)
    };
    let mut view = match array.cache.view_since(&array.backend, since).await {
        Ok(v) => v,
        Err(e) => return Cleanup::Held(run.stop(Stop::array(&e, "Observe", array))),
    };
    let provable = record.pending.as_ref().is_none_or(|p| {
        chrono::DateTime::parse_from_rfc3339(&p.at)
            .is_ok_and(|at| chrono::Utc::now().signed_duration_since(at) <= identity::DOUBT_WINDOW)
    });
    let doubt_name = record
        .pending
        .as_ref()
        .and_then(|p| p.name.clone())
        .unwrap_or_else(|| obj.array_name());
    // "Gone" is never concluded past a record the array lists but the
    // operator cannot read.
    if let Some((_, e)) = K::malformed(&view)
        .iter()
        .find(|(id, _)| id.is_none() || (id.is_some() && *id == recorded))
    {
        // The next pass lists again: the record may read by then (a guest
        // create task that ended), and a cached view would hold the
        // deletion until the resync.
        array.cache.invalidate();
        return Cleanup::Held(run.stop(Stop::array(e, "Observe", array)));
    }
    let find = |view: &ArrayView| -> Option<K::Observed> {
        if in_doubt && !provable {
            // Too old to prove: whatever carries the name now is left alone.
            None
        } else if in_doubt {
            // Settle the doubt first: what carries the name is this create's.
            K::find_name(view, &doubt_name).and_then(|id| K::find(view, &id))
        } else {
            recorded.as_deref().and_then(|id| K::find(view, id))
        }
    };
    let mut observed = find(&view);
    if observed.is_none() {
        view = match array
            .cache
            .view_since(&array.backend, Some(std::time::Instant::now()))
            .await
        {
            Ok(v) => v,
            Err(e) => return Cleanup::Held(run.stop(Stop::array(&e, "Observe", array))),
        };
        observed = find(&view);
    }
    let Some(observed) = observed else {
        return Cleanup::Done { events: Vec::new() };
    };
    let id = match recorded.as_deref().filter(|_| !in_doubt) {
        Some(id) => id.to_string(),
        None => match K::find_name(&view, &doubt_name) {
            Some(id) => id,
            None => return Cleanup::Done { events: Vec::new() },
        },
    };
    // Never delete what another object holds.
    let others = match claims_on(cluster, obj, ClaimKey::Id(&id)).await {
        Ok(c) => c,
        Err(stop) => return Cleanup::Held(run.stop(stop)),
    };
    let me = claim_of(obj);
    if let Some(other) = others
        .iter()
        .find(|c| c.uid != me.uid && c.id.as_deref() == Some(id.as_str()))
    {
        return Cleanup::Done {
            events: vec![EngineEvent::warning(
                event_reason::RECONCILE_ERROR,
                "Delete",
                format!(
                    "{} {id} on {} was left in place: {} also claims it",
                    K::NOUN,
                    array.key,
                    other.object
                ),
            )],
        };
    }
    let mut events = Vec::new();
    let mut observed = observed;
    // A not-found answer is believed only after a fresh list: re-observe and
    // re-plan, a bounded number of times.
    for _ in 0..3 {
        let mut current = Some(observed.clone());
        let mut refreshed = false;
        let mut applied = Vec::new();
        for op in obj.delete_ops(array, &observed) {
            let result = match &array.dry_run {
                Some(dry) => {
                    let event = obj.event(&op, None);
                    dry.record(
                        event.reason.unwrap_or(event_reason::DELETED),
                        event.action,
                        format!("{} on {}", event.note, array.key),
                    );
                    Ok(())
                }
                None => K::apply(array, &id, &op).await,
            };
            if let Err(e) = result {
                array.cache.invalidate();
                if e.class == ErrorClass::NotFound {
                    refreshed = true;
                    break;
                }
                let event = obj.event(&op, None);
                let mut stop = Stop::array(&e, event.action, array);
                stop.ready = Some(ConditionState::no(
                    ready_reason::DELETING,
                    format!("deleting the {} from the array", K::NOUN),
                ));
                stop.synced.message.push_str(&format!(
                    "; the {} is kept until this succeeds (to leave it on the array instead, set spec.deletionPolicy: Retain)",
                    K::NOUN
                ));
                let mut run = Run::new(obj);
                run.events = events;
                return Cleanup::Held(run.stop(stop));
            }
            current = current.and_then(|c| K::model(c, &op));
            let after = current.clone();
            array
                .cache
                .write_through(|v| K::put(v, &id, after.as_ref(), Some(&op)));
            let event = obj.event(&op, None);
            events.push(EngineEvent::normal(
                event.reason.unwrap_or(event_reason::DELETED),
                event.action,
                format!("{} on {}", event.note, array.key),
            ));
            applied.push(op);
        }
        if let (false, Some(still)) = (refreshed, current.as_ref()) {
            // The object is still there (a guest asked to shut down):
            // deletion waits, and the next pass plans again from a list
            // (the view holds only the model's guess of the transition).
            array.cache.invalidate();
            let stop = Stop::held(obj.deletion_waits(still));
            let mut run = Run::new(obj);
            run.events = events;
            let common = run.common(stop.ready.as_ref(), &stop.synced, stop.progress);
            return Cleanup::Held(Outcome {
                status: obj.deleting_status(common, current.as_ref(), &applied),
                events: merge_events(run.events),
                progress: stop.progress,
            });
        }
        if !refreshed {
            return Cleanup::Done {
                events: merge_events(events),
            };
        }
        let view = match array
            .cache
            .view_since(&array.backend, Some(std::time::Instant::now()))
            .await
        {
            Ok(v) => v,
            Err(e) => return Cleanup::Held(Run::new(obj).stop(Stop::array(&e, "Observe", array))),
        };
        match K::find(&view, &id) {
            Some(o) => observed = o,
            None => {
                return Cleanup::Done {
                    events: merge_events(events),
                };
            }
        }
    }
    Cleanup::Held(Run::new(obj).stop(Stop::array(
        &BackendError::invalid(
            "delete",
            format!(
                "the array answers not-found for {} {id} but still lists it",
                K::NOUN
            ),
        ),
        "Delete",
        array,
    )))
}
