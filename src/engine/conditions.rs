//! Building the conditions: `Ready` and `Synced`, and kstatus'
//! `Reconciling` (work in progress) and `Stalled` (needs a person). Each
//! carries the generation it was computed for, and keeps its
//! lastTransitionTime while its status does not change (what kstatus, Flux
//! and Argo CD read).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::crd::shared::{
    CONDITION_READY, CONDITION_RECONCILING, CONDITION_STALLED, CONDITION_SYNCED,
};

use super::Progress;

/// One condition as the engine decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionState {
    /// `True`, `False` or `Unknown`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human text.
    pub message: String,
}

impl ConditionState {
    /// A `True` condition.
    pub fn yes(reason: &'static str, message: impl Into<String>) -> Self {
        ConditionState {
            status: "True",
            reason,
            message: message.into(),
        }
    }

    /// A `False` condition.
    pub fn no(reason: &'static str, message: impl Into<String>) -> Self {
        ConditionState {
            status: "False",
            reason,
            message: message.into(),
        }
    }
}

/// Merges `new` for `type_` into `conditions`, keeping the previous
/// lastTransitionTime when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    new: &ConditionState,
    generation: Option<i64>,
    now: &Time,
) {
    let previous = conditions.iter().find(|c| c.type_ == type_);
    let transition = match previous {
        Some(p) if p.status == new.status => p.last_transition_time.clone(),
        _ => now.clone(),
    };
    let condition = Condition {
        type_: type_.to_string(),
        status: new.status.to_string(),
        reason: new.reason.to_string(),
        message: new.message.clone(),
        observed_generation: generation,
        last_transition_time: transition,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = condition,
        None => conditions.push(condition),
    }
}

/// Sets both conditions every managed kind carries.
pub fn set_ready_and_synced(
    conditions: &mut Vec<Condition>,
    ready: Option<&ConditionState>,
    synced: &ConditionState,
    generation: Option<i64>,
    now: &Time,
) {
    if let Some(ready) = ready {
        set_condition(conditions, CONDITION_READY, ready, generation, now);
    }
    set_condition(conditions, CONDITION_SYNCED, synced, generation, now);
}

/// Sets `Ready` (when given), `Synced`, and kstatus' `Reconciling` and
/// `Stalled` from how the reconcile went: `Stalled` is True when a person
/// must act (the Synced reason says why), `Reconciling` while the operator
/// is still working or retrying.
pub fn set_all(
    conditions: &mut Vec<Condition>,
    ready: Option<&ConditionState>,
    synced: &ConditionState,
    progress: Progress,
    generation: Option<i64>,
    now: &Time,
) {
    set_ready_and_synced(conditions, ready, synced, generation, now);
    let stalled = match progress {
        Progress::Stalled => ConditionState::yes(synced.reason, synced.message.clone()),
        _ => ConditionState::no("NotStalled", "no person is needed"),
    };
    let reconciling = match progress {
        Progress::Waiting | Progress::Failed => {
            let why = ready
                .filter(|r| r.status != "True")
                .map(|r| r.message.clone())
                .unwrap_or_else(|| synced.message.clone());
            ConditionState::yes(
                if progress == Progress::Failed {
                    "RetryingAfterError"
                } else {
                    "Progressing"
                },
                why,
            )
        }
        Progress::Converged | Progress::Stalled => {
            ConditionState::no("Reconciled", "the operator is not working on this object")
        }
    };
    set_condition(
        conditions,
        CONDITION_RECONCILING,
        &reconciling,
        generation,
        now,
    );
    set_condition(conditions, CONDITION_STALLED, &stalled, generation, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().expect("time"))
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let mut cs = Vec::new();
        let t1 = t("2026-11-22T10:00:00Z");
        let t2 = t("2026-11-22T10:05:00Z");
        set_condition(
            &mut cs,
            "Ready",
            &ConditionState::no("Creating", "a"),
            Some(1),
            &t1,
        );
        set_condition(
            &mut cs,
            "Ready",
            &ConditionState::no("Unavailable", "b"),
            Some(2),
            &t2,
        );
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].last_transition_time, t1);
        assert_eq!(cs[0].reason, "Unavailable");
        assert_eq!(cs[0].observed_generation, Some(2));
        set_condition(
            &mut cs,
            "Ready",
            &ConditionState::yes("Available", "c"),
            Some(2),
            &t2,
        );
        assert_eq!(cs[0].last_transition_time, t2);
        assert_eq!(cs[0].status, "True");
    }

    #[test]
    fn kstatus_conditions_follow_progress() {
        let now = t("2026-11-22T10:00:00Z");
        let status_of = |cs: &[Condition], ty: &str| {
            cs.iter()
                .find(|c| c.type_ == ty)
                .map(|c| (c.status.clone(), c.reason.clone()))
        };
        let mut cs = Vec::new();
        let synced = ConditionState::no("InvalidSpec", "spec.pool: no such pool");
        set_all(&mut cs, None, &synced, Progress::Stalled, Some(3), &now);
        assert_eq!(
            status_of(&cs, "Stalled"),
            Some(("True".into(), "InvalidSpec".into()))
        );
        assert_eq!(
            status_of(&cs, "Reconciling").map(|s| s.0),
            Some("False".into())
        );
        assert!(cs.iter().all(|c| c.observed_generation == Some(3)));
        let waiting = ConditionState::no("Creating", "waiting for Lun a");
        let ok = ConditionState::yes("ReconcileSuccess", "ok");
        set_all(
            &mut cs,
            Some(&waiting),
            &ok,
            Progress::Waiting,
            Some(4),
            &now,
        );
        assert_eq!(
            status_of(&cs, "Reconciling"),
            Some(("True".into(), "Progressing".into()))
        );
        assert_eq!(status_of(&cs, "Stalled").map(|s| s.0), Some("False".into()));
        let ready = ConditionState::yes("Available", "ok");
        set_all(
            &mut cs,
            Some(&ready),
            &ok,
            Progress::Converged,
            Some(4),
            &now,
        );
        assert_eq!(
            status_of(&cs, "Reconciling").map(|s| s.0),
            Some("False".into())
        );
        assert_eq!(status_of(&cs, "Ready").map(|s| s.0), Some("True".into()));
    }
}
