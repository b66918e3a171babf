//! The engine's dry run, for `array-operator plan`: under it, every call
//! that would change an array is recorded instead of sent, and the engine
//! goes on with its model of the call (the same model it applies to its
//! shared view after a real success). Reads still reach the array, so the
//! plan is decided by the one lifecycle and the one diff the controllers
//! run, against what the array holds now.
//!
//! The lifecycle ([`super::lifecycle`]) and the SnapshotSchedule and
//! ReplicationPlan engines consult [`super::ArrayHandle::dry_run`] at each
//! call site that writes.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::reconcile::Drift;

/// The prefix of the ids a dry run makes up for objects it would create:
/// no array hands out such an id, so a made-up id never names a real one.
pub const PLANNED_ID_PREFIX: &str = "planned-";

/// One call the operator would make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedCall {
    /// The Event reason a success would publish (`Created`, `Mapped`, ...).
    pub reason: &'static str,
    /// The action (`Create`, `Resize`, `Map`, ...).
    pub action: &'static str,
    /// What the call does, as its Event would say it.
    pub note: String,
}

#[derive(Debug, Default)]
struct Recorded {
    calls: Vec<PlannedCall>,
    drift: Vec<Drift>,
    notes: Vec<String>,
    next_id: u64,
}

/// The recorder of one dry run. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct DryRun {
    recorded: Arc<Mutex<Recorded>>,
}

/// What a dry run recorded since it was last drained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// The calls, in order.
    pub calls: Vec<PlannedCall>,
    /// Every difference the diffs found, correctable or not.
    pub drift: Vec<Drift>,
    /// What the plan cannot tell in advance (the calls that depend on an
    /// array's answer to a create), as sentences.
    pub notes: Vec<String>,
}

impl DryRun {
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one call instead of making it.
    pub fn record(&self, reason: &'static str, action: &'static str, note: impl Into<String>) {
        self.lock().calls.push(PlannedCall {
            reason,
            action,
            note: note.into(),
        });
    }

    /// Records what a diff found.
    pub fn drift(&self, drift: &[Drift]) {
        self.lock().drift.extend_from_slice(drift);
    }

    /// Records something the plan cannot decide in advance.
    pub fn note(&self, note: impl Into<String>) {
        self.lock().notes.push(note.into());
    }

    /// A made-up id for an object the dry run would create (the first is
    /// `planned-1`; the order of the run decides them, so a run over the
    /// same input gives the same ids).
    pub fn new_id(&self) -> String {
        let mut r = self.lock();
        r.next_id += 1;
        format!("{PLANNED_ID_PREFIX}{}", r.next_id)
    }

    /// True for an id [`DryRun::new_id`] made up: the array has no such
    /// object, so nothing is read about it.
    pub fn is_planned(id: &str) -> bool {
        id.starts_with(PLANNED_ID_PREFIX)
    }

    /// What was recorded since the last drain (the planner drains after
    /// each object).
    pub fn drain(&self) -> Drained {
        let mut r = self.lock();
        Drained {
            calls: std::mem::take(&mut r.calls),
            drift: std::mem::take(&mut r.drift),
            notes: std::mem::take(&mut r.notes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_made_up_in_order_and_recognised() {
        let d = DryRun::default();
        assert_eq!(d.new_id(), "planned-1");
        assert_eq!(d.new_id(), "planned-2");
        assert!(DryRun::is_planned("planned-2"));
        assert!(!DryRun::is_planned("5"));
    }

    #[test]
    fn a_drain_returns_what_was_recorded_once() {
        let d = DryRun::default();
        d.record("Updated", "Resize", "grew the LUN");
        d.note("later");
        let first = d.drain();
        assert_eq!(first.calls.len(), 1);
        assert_eq!(first.calls[0].action, "Resize");
        assert_eq!(first.notes, vec!["later".to_string()]);
        assert_eq!(d.drain(), Drained::default());
    }
}
