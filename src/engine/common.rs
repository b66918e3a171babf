//! What the reconcile of every kind shares: pause, the identity decision
//! and its messages, the crash-safety records around a create, array error
//! reporting, and the conditions.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};

use crate::array::backend::BackendError;
use crate::array::error::ErrorClass;
use crate::crd::shared::{
    ANNOTATION_CREATE_FAILED, ANNOTATION_CREATE_PENDING, ANNOTATION_CREATE_SUCCEEDED,
    ANNOTATION_EXTERNAL_NAME, ANNOTATION_PAUSED, CONDITION_SYNCED, CommonStatus, ready_reason,
    synced_reason,
};
use crate::reconcile::identity::Identity;

use super::conditions::{ConditionState, set_ready_and_synced};
use super::{
    ArrayHandle, Cluster, ClusterError, EngineEvent, ObjectKey, Progress, event_reason, timestamp,
};

/// A reconcile that ends early: the conditions to write and how it went.
#[derive(Clone, Debug)]
pub struct Stop {
    /// The `Ready` condition; `None` leaves it as it was.
    pub ready: Option<ConditionState>,
    /// The `Synced` condition.
    pub synced: ConditionState,
    /// How it went.
    pub progress: Progress,
    /// A Warning to publish with it.
    pub event: Option<EngineEvent>,
}

impl Stop {
    fn new(ready: Option<ConditionState>, synced: ConditionState, progress: Progress) -> Self {
        Stop {
            ready,
            synced,
            progress,
            event: None,
        }
    }

    /// The Kubernetes API failed.
    pub fn cluster(e: ClusterError) -> Self {
        Stop::new(
            None,
            ConditionState::no(synced_reason::RECONCILE_ERROR, e.to_string()),
            Progress::Failed,
        )
    }

    /// The pause annotation is set.
    pub fn paused() -> Self {
        Stop::new(
            None,
            ConditionState::no(
                synced_reason::PAUSED,
                format!("annotation {ANNOTATION_PAUSED} is \"true\": no array calls"),
            ),
            Progress::Converged,
        )
    }

    /// Deletion waits while the pause annotation is set.
    pub fn paused_deletion() -> Self {
        Stop {
            ready: Some(ConditionState::no(
                ready_reason::DELETING,
                "deletion waits for the pause annotation to be removed",
            )),
            ..Stop::paused()
        }
    }

    /// Deletion of a `noun` waits for its array to become reachable.
    pub fn no_array_for_deletion(noun: &str) -> Self {
        Stop::new(
            Some(ConditionState::no(
                ready_reason::DELETING,
                "the array is not reachable",
            )),
            ConditionState::no(
                synced_reason::ARRAY_UNREACHABLE,
                format!(
                    "the StorageArray is not ready, so the {noun} cannot be deleted; to leave it on the array instead, set spec.deletionPolicy: Retain"
                ),
            ),
            Progress::Failed,
        )
    }

    /// The spec cannot be applied on this array.
    pub fn invalid(invalid: &super::spec_error::InvalidSpec) -> Self {
        Stop::new(
            Some(ConditionState::no(
                ready_reason::UNAVAILABLE,
                "the spec cannot be applied",
            )),
            ConditionState::no(invalid.reason(), invalid.to_string()),
            Progress::Converged,
        )
    }

    /// The array refused a call or could not be reached; the Event carries
    /// the array's own text and code.
    pub fn array(e: &BackendError, action: &'static str, array: &ArrayHandle) -> Self {
        let (reason, progress) = error_reason(e);
        let text = format!("{action} on {}: {e}", array.key);
        let ready = (reason == synced_reason::ARRAY_UNREACHABLE).then(|| {
            ConditionState::no(
                ready_reason::UNAVAILABLE,
                format!("array {} cannot be reached", array.key),
            )
        });
        Stop {
            event: Some(EngineEvent::warning(
                event_reason::RECONCILE_ERROR,
                action,
                text.clone(),
            )),
            ..Stop::new(ready, ConditionState::no(reason, text), progress)
        }
    }
}

/// The `Synced` reason and the progress an array error means.
pub fn error_reason(e: &BackendError) -> (&'static str, Progress) {
    match e.class {
        ErrorClass::Unreachable
        | ErrorClass::Unauthorized
        | ErrorClass::SessionExpired
        | ErrorClass::Busy => (synced_reason::ARRAY_UNREACHABLE, Progress::Failed),
        ErrorClass::Unsupported => (synced_reason::UNSUPPORTED, Progress::Converged),
        ErrorClass::InvalidRequest if e.vendor_code.is_none() => {
            (synced_reason::INVALID_SPEC, Progress::Converged)
        }
        ErrorClass::AlreadyExists => (synced_reason::ALREADY_EXISTS, Progress::Failed),
        _ => (synced_reason::RECONCILE_ERROR, Progress::Failed),
    }
}

/// True when the pause annotation is `"true"`.
pub fn paused(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_PAUSED))
        .is_some_and(|v| v == "true")
}

/// True when the spec has not changed since the last successful reconcile,
/// so a difference on the array is drift rather than a spec change.
pub fn spec_unchanged(status: Option<&CommonStatus>, generation: Option<i64>) -> bool {
    let Some(status) = status else { return false };
    let synced = status
        .conditions
        .iter()
        .any(|c| c.type_ == CONDITION_SYNCED && c.status == "True");
    synced && status.observed_generation == generation
}

/// The conditions after this reconcile, from the previous ones.
pub fn conditions(
    previous: Option<&CommonStatus>,
    ready: Option<&ConditionState>,
    synced: &ConditionState,
    generation: Option<i64>,
) -> Vec<Condition> {
    let mut conditions = previous.map(|s| s.conditions.clone()).unwrap_or_default();
    set_ready_and_synced(&mut conditions, ready, synced, generation, &super::now());
    conditions
}

/// The common status after a reconcile that only sets conditions (the id
/// and what was observed stay as they were).
pub fn common_with(
    previous: Option<&CommonStatus>,
    ready: Option<&ConditionState>,
    synced: &ConditionState,
    generation: Option<i64>,
) -> CommonStatus {
    CommonStatus {
        observed_generation: generation,
        conditions: conditions(previous, ready, synced, generation),
        external_id: previous.and_then(|p| p.external_id.clone()),
    }
}

/// What identity says to do next.
pub enum Next {
    /// Work on the array object with this id.
    Use(String),
    /// Create it (`lost`: it existed and disappeared).
    Create {
        /// The object the operator created is gone from the array.
        lost: bool,
    },
    /// Stop here.
    Stop(Stop),
}

/// Acts on an identity decision for the array object `noun` (`LUN`,
/// `target`) named `name`: records a recovered create, refuses a clash, and
/// never creates under Observe.
pub async fn settle_identity(
    identity: Identity,
    noun: &str,
    name: &str,
    manage: bool,
    array: &ArrayHandle,
    object: &ObjectKey,
    cluster: &impl Cluster,
) -> Next {
    match identity {
        Identity::Existing { id, recovered } => {
            if recovered {
                // The create before a crash did happen: record it now.
                if let Err(e) = record_created(cluster, object, &id).await {
                    return Next::Stop(Stop::cluster(e));
                }
            }
            Next::Use(id)
        }
        Identity::AlreadyExists { existing_id } => Next::Stop(Stop::new(
            Some(ConditionState::no(ready_reason::UNAVAILABLE, "not adopted")),
            ConditionState::no(
                synced_reason::ALREADY_EXISTS,
                format!(
                    "a {noun} named {name:?} already exists on {} (id {existing_id}); it is not taken over silently: to adopt it, set annotation {ANNOTATION_EXTERNAL_NAME}: {existing_id}",
                    array.key
                ),
            ),
            Progress::Converged,
        )),
        Identity::AdoptedMissing { id } => Next::Stop(Stop::new(
            Some(ConditionState::no(
                ready_reason::UNAVAILABLE,
                format!("{noun} {id} is not on the array"),
            )),
            ConditionState::no(
                synced_reason::RECONCILE_ERROR,
                format!(
                    "annotation {ANNOTATION_EXTERNAL_NAME} names {noun} id {id}, which {} does not have; it is adopted, so it is not recreated",
                    array.key
                ),
            ),
            Progress::Failed,
        )),
        Identity::Create | Identity::Recreate { .. } if !manage => Next::Stop(Stop::new(
            Some(ConditionState::no(
                ready_reason::UNAVAILABLE,
                format!("no {noun} named {name:?} on {}", array.key),
            )),
            ConditionState::yes(
                synced_reason::RECONCILE_SUCCESS,
                "managementPolicy is Observe: the operator never creates",
            ),
            Progress::Converged,
        )),
        Identity::Create => Next::Create { lost: false },
        Identity::Recreate { .. } => Next::Create { lost: true },
    }
}

async fn annotate(
    cluster: &impl Cluster,
    object: &ObjectKey,
    pairs: &[(&str, String)],
) -> Result<(), ClusterError> {
    let annotations: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    cluster.annotate(object, annotations).await
}

/// Records that a create call is about to be made. Without this record a
/// crash could leak the array object, so no create happens if it fails.
pub async fn record_pending(
    cluster: &impl Cluster,
    object: &ObjectKey,
) -> Result<(), ClusterError> {
    annotate(cluster, object, &[(ANNOTATION_CREATE_PENDING, timestamp())]).await
}

/// Records a create that succeeded, with the id it made.
pub async fn record_created(
    cluster: &impl Cluster,
    object: &ObjectKey,
    id: &str,
) -> Result<(), ClusterError> {
    annotate(
        cluster,
        object,
        &[
            (ANNOTATION_EXTERNAL_NAME, id.to_string()),
            (ANNOTATION_CREATE_SUCCEEDED, timestamp()),
        ],
    )
    .await
}

/// Records a create the array refused (so the name is not taken as ours
/// later). Best effort: without it the next pass looks the name up, which
/// is safe too.
pub async fn record_failed(cluster: &impl Cluster, object: &ObjectKey) {
    let _ = annotate(cluster, object, &[(ANNOTATION_CREATE_FAILED, timestamp())]).await;
}
