//! The ways a reconcile stops early, each with its conditions and
//! message: pause, references, identity and ownership stops, array errors.
//! Messages are stable sentences naming the object, the field or call, and
//! the array's own code and text.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};

use crate::array::backend::{BackendError, CreateTask};
use crate::array::error::ErrorClass;
use crate::crd::shared::{
    ANNOTATION_CREATE_PENDING, ANNOTATION_EXTERNAL_NAME, ANNOTATION_PAUSED, CONDITION_SYNCED,
    CommonStatus, ready_reason, synced_reason,
};

use super::conditions::{ConditionState, set_all};
use super::{ArrayHandle, ClusterError, EngineEvent, Progress, event_reason};

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
            Progress::Stalled,
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

impl Stop {
    /// Waiting for another object (named in `why`) or for the array.
    pub fn waiting(why: String) -> Self {
        Stop::new(
            Some(ConditionState::no(ready_reason::CREATING, why.clone())),
            ConditionState::no(synced_reason::RECONCILE_ERROR, why),
            Progress::Waiting,
        )
    }

    /// Deletion waits for something a person or another object must do.
    pub fn held(why: String) -> Self {
        Stop::new(
            Some(ConditionState::no(ready_reason::DELETING, why)),
            ConditionState::yes(
                synced_reason::RECONCILE_SUCCESS,
                "deletion waits for the objects named in the Ready condition",
            ),
            Progress::Waiting,
        )
    }

    /// A create succeeded but its object is not in the view yet.
    pub fn creating(noun: &str) -> Self {
        Stop::new(
            Some(ConditionState::no(
                ready_reason::CREATING,
                format!("the {noun} is being created"),
            )),
            ConditionState::no(
                synced_reason::RECONCILE_ERROR,
                format!("the created {noun} is not listed by the array yet"),
            ),
            Progress::Waiting,
        )
    }

    /// A create the array accepted still runs as a task of its own: the
    /// object waits for the task's end, and is recorded then.
    pub fn create_running(noun: &str, name: &str, task: &CreateTask) -> Self {
        let progress = task.progress.map_or_else(
            || "no progress reported yet".to_string(),
            |p| format!("{p}% done"),
        );
        let mut why = format!(
            "the {noun} {name:?} is being created by array task {} ({progress}); it is recorded once the task ends",
            task.id
        );
        if let Some(unread) = &task.unread {
            why.push_str(&format!("; the last poll of the task failed: {unread}"));
        }
        Stop::new(
            Some(ConditionState::no(ready_reason::CREATING, why)),
            ConditionState::yes(
                synced_reason::RECONCILE_SUCCESS,
                format!("the {noun} create was sent and the array runs it"),
            ),
            Progress::Waiting,
        )
    }

    /// Another object holds the array object `id`.
    pub fn conflict(noun: &str, id: &str, other: &str) -> Self {
        Stop::new(
            Some(ConditionState::no(ready_reason::UNAVAILABLE, "not owned")),
            ConditionState::no(
                synced_reason::CONFLICT,
                format!(
                    "{noun} {id} is already claimed by {other}; one array object has one owner, so this object sends no call to it (point annotation {ANNOTATION_EXTERNAL_NAME} or spec.name elsewhere, or delete one of the two)"
                ),
            ),
            Progress::Stalled,
        )
    }

    /// Another object will create (or has) the array name `name`.
    pub fn name_conflict(noun: &str, name: &str, other: &str) -> Self {
        Stop::new(
            Some(ConditionState::no(ready_reason::UNAVAILABLE, "not created")),
            ConditionState::no(
                synced_reason::CONFLICT,
                format!(
                    "the {noun} name {name:?} is already claimed by {other} on the same array; set a different spec.name"
                ),
            ),
            Progress::Stalled,
        )
    }

    /// A create in doubt found an object of its name that another object
    /// holds: the operator cannot prove which is whose.
    pub fn in_doubt(noun: &str, name: &str, id: &str, other: &str) -> Self {
        Stop::new(
            Some(ConditionState::no(
                ready_reason::UNAVAILABLE,
                "create in doubt",
            )),
            ConditionState::no(
                synced_reason::CREATE_IN_DOUBT,
                format!(
                    "a create of {noun} {name:?} may have happened, and the array's {noun} of that name (id {id}) is claimed by {other}; check which object it belongs to, then remove annotation {ANNOTATION_CREATE_PENDING} from this object"
                ),
            ),
            Progress::Stalled,
        )
    }

    /// A create in doubt is too old for the object of its name to be
    /// proven its result.
    pub fn unprovable(noun: &str, name: &str, id: &str, pending_at: &str) -> Self {
        Stop::new(
            Some(ConditionState::no(
                ready_reason::UNAVAILABLE,
                "create in doubt",
            )),
            ConditionState::no(
                synced_reason::CREATE_IN_DOUBT,
                format!(
                    "a create of {noun} {name:?} recorded at {pending_at} may have happened, and the array has a {noun} of that name (id {id}), but too long after to prove it is that create's; check it: to adopt it set annotation {ANNOTATION_EXTERNAL_NAME}: {id}, otherwise remove annotation {ANNOTATION_CREATE_PENDING} and set a different spec.name"
                ),
            ),
            Progress::Stalled,
        )
    }

    /// An array object of the name exists and was not adopted.
    pub fn already_exists(
        noun: &str,
        name: &str,
        existing_id: &str,
        array: &ArrayHandle,
        copied_external_name: Option<&str>,
    ) -> Self {
        let copied = copied_external_name
            .map(|c| {
                format!(
                    "; the annotation {ANNOTATION_EXTERNAL_NAME}: {c} on this object was recorded for another object (a copied manifest) and is not a claim"
                )
            })
            .unwrap_or_default();
        Stop::new(
            Some(ConditionState::no(ready_reason::UNAVAILABLE, "not adopted")),
            ConditionState::no(
                synced_reason::ALREADY_EXISTS,
                format!(
                    "a {noun} named {name:?} already exists on {} (id {existing_id}); it is not taken over silently: to adopt it, set annotation {ANNOTATION_EXTERNAL_NAME}: {existing_id}{copied}",
                    array.key
                ),
            ),
            Progress::Stalled,
        )
    }

    /// `external-name` names an id the array does not have.
    pub fn adopted_missing(noun: &str, id: &str, array: &ArrayHandle) -> Self {
        Stop::new(
            Some(ConditionState::no(
                ready_reason::UNAVAILABLE,
                format!("{noun} {id} is not on the array"),
            )),
            ConditionState::no(
                synced_reason::RECONCILE_ERROR,
                format!(
                    "annotation {ANNOTATION_EXTERNAL_NAME} names {noun} id {id}, which {} does not have; it was adopted, not created by the operator, so it is not recreated",
                    array.key
                ),
            ),
            Progress::Stalled,
        )
    }

    /// Observe never creates.
    pub fn observe_absent(noun: &str, name: &str, array: &ArrayHandle) -> Self {
        Stop::new(
            Some(ConditionState::no(
                ready_reason::UNAVAILABLE,
                format!("no {noun} named {name:?} on {}", array.key),
            )),
            ConditionState::yes(
                synced_reason::RECONCILE_SUCCESS,
                "managementPolicy is Observe: the operator never creates",
            ),
            Progress::Converged,
        )
    }

    /// Adds to an array error's message that the create is in doubt.
    pub fn in_doubt_note(mut self) -> Self {
        self.synced.message.push_str(
            "; the create may have happened, so the next pass looks for it before creating again",
        );
        self
    }
}

/// The `Synced` reason and the progress an array error means.
pub fn error_reason(e: &BackendError) -> (&'static str, Progress) {
    match e.class {
        ErrorClass::Unreachable
        | ErrorClass::Unauthorized
        | ErrorClass::SessionExpired
        | ErrorClass::Busy => (synced_reason::ARRAY_UNREACHABLE, Progress::Failed),
        ErrorClass::Unsupported => (synced_reason::UNSUPPORTED, Progress::Stalled),
        ErrorClass::InvalidRequest if e.vendor_code.is_none() => {
            (synced_reason::INVALID_SPEC, Progress::Stalled)
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

/// The conditions after this reconcile, from the previous ones: `Ready`,
/// `Synced`, and kstatus' `Reconciling` and `Stalled`.
pub fn conditions(
    previous: Option<&CommonStatus>,
    ready: Option<&ConditionState>,
    synced: &ConditionState,
    progress: Progress,
    generation: Option<i64>,
) -> Vec<Condition> {
    let mut conditions = previous.map(|s| s.conditions.clone()).unwrap_or_default();
    set_all(
        &mut conditions,
        ready,
        synced,
        progress,
        generation,
        &super::now(),
    );
    conditions
}

/// The common status after a reconcile that only sets conditions (the id
/// and what was observed stay as they were).
pub fn common_with(
    previous: Option<&CommonStatus>,
    ready: Option<&ConditionState>,
    synced: &ConditionState,
    progress: Progress,
    generation: Option<i64>,
) -> CommonStatus {
    CommonStatus {
        observed_generation: generation,
        conditions: conditions(previous, ready, synced, progress, generation),
        external_id: previous.and_then(|p| p.external_id.clone()),
    }
}
