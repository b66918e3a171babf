//! The reconcile engine: for one object, observe its array (through the
//! shared [`observation::ObservationCache`]), decide its identity, diff the
//! spec against the array with the pure core ([`crate::reconcile`]), apply
//! the operations through the vendor [`Backend`], and say what the status,
//! the Events and the next reconcile should be.
//!
//! The engine does not talk to the Kubernetes API itself: what it needs from
//! the cluster (other objects' ids, Secrets, annotation writes) goes through
//! the [`Cluster`] trait, so the same code runs under the controllers, in the
//! full-flow tests against the simulators, and in the benchmark.

pub mod clock;
pub mod common;
pub mod conditions;
pub mod dry_run;
pub mod index;
pub mod iscsi_target;
pub mod lifecycle;
pub mod lun;
pub mod memory;
pub mod observation;
pub mod replication_plan;
pub mod secrets;
pub mod snapshot_schedule;
pub mod spec_error;
pub mod virtual_machine;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::array::backend::Backend;
use crate::crd::storage_array::Vendor;
use crate::model::SecretString;

pub use observation::{ArrayView, ObservationCache};

/// One connected array as the engine uses it.
#[derive(Clone, Debug)]
pub struct ArrayHandle {
    /// `namespace/name` of the StorageArray, for messages.
    pub key: String,
    /// The vendor client.
    pub backend: Backend,
    /// The shared observation.
    pub cache: ObservationCache,
    /// `spec.resyncInterval`: the view's maximum age and the requeue period.
    pub resync: Duration,
    /// `plan`'s dry run: when set, calls that would change the array are
    /// recorded here instead of sent (see [`dry_run`]). `None` for the
    /// controllers.
    pub dry_run: Option<dry_run::DryRun>,
}

impl ArrayHandle {
    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        self.backend.vendor()
    }
}

/// Which object an annotation write is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The kind (`Lun`, `IscsiTarget`, ...).
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object of `kind`.
    pub fn of(
        kind: &'static str,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> Self {
        ObjectKey {
            kind,
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// The array-side name of an object: its `spec.name`, else `metadata.name`.
pub fn array_side_name(
    spec_name: Option<&String>,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> String {
    spec_name
        .or(meta.name.as_ref())
        .cloned()
        .unwrap_or_default()
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A Secret's data, with its resourceVersion (which is not secret).
#[derive(Clone, Debug, Default)]
pub struct SecretData {
    /// Key → value.
    pub data: BTreeMap<String, SecretString>,
    /// The Secret's resourceVersion.
    pub resource_version: String,
}

/// A failure talking to the Kubernetes API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Kubernetes API: {0}")]
pub struct ClusterError(pub String);

/// What the engine needs from the cluster.
pub trait Cluster: Send + Sync {
    /// The array-side id of the Lun `name` in `namespace` (its
    /// `status.externalId`, else its external-name annotation); `Ok(None)`
    /// when it exists but is not created yet, `Err` when the API failed.
    /// A Lun that does not exist at all is `Ok(None)` too.
    fn lun_external_id(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, ClusterError>> + Send;

    /// Names of the IscsiTargets in `namespace` whose `spec.luns` lists `lun`.
    fn targets_listing_lun(
        &self,
        namespace: &str,
        lun: &str,
    ) -> impl Future<Output = Result<Vec<String>, ClusterError>> + Send;

    /// A Secret in `namespace`, or `None` when it does not exist.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<SecretData>, ClusterError>> + Send;

    /// The claims of kind `K` in `namespace` on `array` (objects whose
    /// `spec.arrayRef` names it) that hold the array id or want the
    /// array-side name `key` names: the claims index of the ownership
    /// protocol (one array object, one claimant). A lookup, not a scan:
    /// implementations keep a [`crate::reconcile::claims_index::ClaimsIndex`].
    /// Generic, so a new kind adds no arm here.
    fn claims_on<K: lifecycle::Managed>(
        &self,
        namespace: &str,
        array: &str,
        key: crate::reconcile::claims_index::ClaimKey<'_>,
    ) -> impl Future<Output = Result<Vec<crate::reconcile::claims::Claim>, ClusterError>> + Send;

    /// Merges annotations into an object's metadata. Must be durable before
    /// it returns: crash safety depends on it.
    fn annotate(
        &self,
        object: &ObjectKey,
        annotations: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;
}

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Something happened as intended.
    Normal,
    /// Something went wrong or needs a human.
    Warning,
}

/// An Event to publish on the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineEvent {
    /// Normal or Warning.
    pub type_: EventType,
    /// `Created`, `Updated`, `Mapped`, `Unmapped`, `Deleted`,
    /// `DriftCorrected` or `ReconcileError`.
    pub reason: &'static str,
    /// What the operator did (`Create`, `Resize`, ...).
    pub action: &'static str,
    /// Human text; carries the array's own error text and code on errors.
    pub note: String,
}

impl EngineEvent {
    /// A Normal event.
    pub fn normal(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        EngineEvent {
            type_: EventType::Normal,
            reason,
            action,
            note: note.into(),
        }
    }

    /// A Warning event.
    pub fn warning(reason: &'static str, action: &'static str, note: impl Into<String>) -> Self {
        EngineEvent {
            type_: EventType::Warning,
            reason,
            action,
            note: note.into(),
        }
    }
}

/// Event reasons (PRODUCT.md section 3).
pub mod event_reason {
    /// An array object was created.
    pub const CREATED: &str = "Created";
    /// An array object was changed to follow a spec change.
    pub const UPDATED: &str = "Updated";
    /// A LUN was mapped to a target.
    pub const MAPPED: &str = "Mapped";
    /// A LUN was unmapped from a target.
    pub const UNMAPPED: &str = "Unmapped";
    /// An array object was deleted.
    pub const DELETED: &str = "Deleted";
    /// An out-of-band change on the array was undone.
    pub const DRIFT_CORRECTED: &str = "DriftCorrected";
    /// The array refused a call, or the spec cannot be applied.
    pub const RECONCILE_ERROR: &str = "ReconcileError";
}

/// How the reconcile went, for the controller's requeue and backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Converged (or nothing to do): come back after the resync interval.
    Converged,
    /// Waiting for something that will change by itself (a referenced object
    /// being created): come back soon.
    Waiting,
    /// Failed: come back with exponential backoff.
    Failed,
    /// Cannot go on without a person (invalid spec, conflict, create in
    /// doubt, unsupported): kstatus `Stalled`; come back with backoff in
    /// case the cause went away.
    Stalled,
}

/// What a reconcile decided.
#[derive(Clone, Debug)]
pub struct Outcome<S> {
    /// The status to write.
    pub status: S,
    /// Events to publish.
    pub events: Vec<EngineEvent>,
    /// How it went.
    pub progress: Progress,
}

/// What a cleanup decided.
#[derive(Clone, Debug)]
pub enum Cleanup<S> {
    /// The array side is clean (or retained): remove the finalizer.
    Done {
        /// Events to publish.
        events: Vec<EngineEvent>,
    },
    /// Not yet: keep the finalizer, write this status, come back.
    Held(Outcome<S>),
}

/// The current time as a Kubernetes timestamp.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// An RFC 3339 UTC timestamp for the create annotations, always with nine
/// fractional digits so that timestamps order as strings.
pub fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Parses a Go-style duration (`30s`, `5m`, `1h30m`, `250ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    text.parse::<kube::core::Duration>()
        .ok()
        .filter(|d| !d.is_negative())
        .map(Duration::from)
}

/// The array-side id a Lun object records: `status.externalId`, else its
/// external-name annotation.
pub fn lun_external_id(lun: &crate::crd::Lun) -> Option<String> {
    let from_status = lun
        .status
        .as_ref()
        .and_then(|s| s.common.external_id.clone());
    let from_annotation = lun
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::crd::shared::ANNOTATION_EXTERNAL_NAME).cloned());
    from_status.or(from_annotation).filter(|s| !s.is_empty())
}

/// The default deletion policy: Delete for objects the operator created,
/// Retain for adopted ones.
pub fn effective_deletion_policy(
    spec: Option<crate::crd::shared::DeletionPolicy>,
    created_by_operator: bool,
) -> crate::crd::shared::DeletionPolicy {
    use crate::crd::shared::DeletionPolicy;
    spec.unwrap_or(if created_by_operator {
        DeletionPolicy::Delete
    } else {
        DeletionPolicy::Retain
    })
}
