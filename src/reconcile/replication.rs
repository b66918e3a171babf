//! The pure core of ReplicationPlan: whether a sync starts now. The
//! schedule half reuses [`super::schedule`] (due times, deadline, missed
//! runs); the manual half is a two-step request that survives a restart
//! between the sync call and the status write, because it is decided from
//! the array's counts and the status alone, never from memory:
//!
//! 1. a changed token is first recorded in status as pending, with the
//!    number of syncs the plan had started (`started_before`);
//! 2. the next pass calls sync and acknowledges the token in the same
//!    status write. If that write is lost, the plan's started count is
//!    above `started_before`, so the token is acknowledged without a
//!    second call. A sync that is started after the request by anyone
//!    (DSM's own schedule included) satisfies it.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::schedule::{self, CronSchedule, RunState};

/// What the decision needs of the plan, as the array listed it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanFacts {
    /// A sync is running.
    pub syncing: bool,
    /// DSM allows a sync (`can_do.can_sync`).
    pub can_sync: bool,
    /// Syncs started so far (successes, failures, a running one).
    pub started: i64,
    /// Unix start times of the runs the array lists (running included).
    pub run_begins: Vec<i64>,
}

/// Why no sync starts now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// A sync is running; nothing starts until it ends.
    SyncInProgress,
    /// DSM says the plan cannot sync now.
    CannotSync,
    /// `spec.suspend`.
    Suspended,
    /// The next due time of the schedule.
    ForSchedule(Option<DateTime<Utc>>),
    /// Nothing until the manual token changes.
    ForManual,
}

/// What to do about a manual token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManualStep {
    /// No request outstanding.
    Idle,
    /// Record the request in status (no array call), then come back.
    Intend {
        /// The token.
        token: String,
        /// The plan's started count now.
        started_before: i64,
    },
    /// Call sync for the token recorded as pending, then acknowledge it.
    Sync(String),
    /// A sync started since the request was recorded: acknowledge the
    /// token without a call.
    Acknowledge(String),
    /// A request is outstanding but cannot start now.
    Wait(Waiting),
}

/// The manual token and what status says of it.
#[derive(Clone, Copy, Debug)]
pub struct ManualState<'a> {
    /// `spec.trigger.manual`.
    pub token: Option<&'a str>,
    /// `status.lastManualSync`.
    pub acknowledged: Option<&'a str>,
    /// `status.pendingManualSync`: token and started count.
    pub pending: Option<(&'a str, i64)>,
    /// `spec.suspend`.
    pub suspended: bool,
}

/// Decides the manual step (see the module notes).
pub fn decide_manual(state: &ManualState<'_>, plan: &PlanFacts) -> ManualStep {
    let Some(token) = state.token else {
        return ManualStep::Idle;
    };
    if state.acknowledged == Some(token) {
        return ManualStep::Idle;
    }
    let pending = state.pending.filter(|(t, _)| *t == token);
    if let Some((_, before)) = pending
        && plan.started > before
    {
        return ManualStep::Acknowledge(token.to_string());
    }
    if state.suspended {
        return ManualStep::Wait(Waiting::Suspended);
    }
    if plan.syncing {
        return ManualStep::Wait(Waiting::SyncInProgress);
    }
    if !plan.can_sync {
        return ManualStep::Wait(Waiting::CannotSync);
    }
    match pending {
        Some(_) => ManualStep::Sync(token.to_string()),
        None => ManualStep::Intend {
            token: token.to_string(),
            started_before: plan.started,
        },
    }
}

/// The schedule inputs that are not the plan's.
#[derive(Clone, Debug)]
pub struct ScheduleState {
    /// `status.lastScheduleTime`.
    pub last_handled: Option<DateTime<Utc>>,
    /// When the object was created.
    pub created: DateTime<Utc>,
    /// How late a due time may still start.
    pub deadline: Duration,
    /// `spec.suspend`.
    pub suspended: bool,
}

/// What the schedule decided at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledStep {
    /// The due time to start a sync for now.
    pub start: Option<DateTime<Utc>>,
    /// The new `status.lastScheduleTime`.
    pub handled: Option<DateTime<Utc>>,
    /// Due times newly counted missed.
    pub missed: u64,
    /// The next due time after `now`.
    pub next: Option<DateTime<Utc>>,
    /// Why nothing starts, when nothing does.
    pub waiting: Option<Waiting>,
}

/// The due times the plan's runs stand for: each run counts for the latest
/// due time at or before its start, so a sync started for a due time (by
/// the operator before a restart, or by anyone) is not started again.
pub fn covered(schedule: &CronSchedule, run_begins: &[i64]) -> BTreeSet<DateTime<Utc>> {
    run_begins
        .iter()
        .filter_map(|b| Utc.timestamp_opt(*b, 0).single())
        .filter_map(|b| schedule.latest_at_or_before(b))
        .collect()
}

/// Decides the scheduled step at `now`. A due time whose sync cannot start
/// (one is running, or DSM refuses) is waited for while it is within the
/// deadline, and counted missed once it is not (a later due time
/// replaces it, as CronJob's `startingDeadlineSeconds` does).
pub fn decide_scheduled(
    cron: &CronSchedule,
    state: &ScheduleState,
    plan: &PlanFacts,
    now: DateTime<Utc>,
) -> ScheduledStep {
    let taken = covered(cron, &plan.run_begins);
    let d = schedule::decide(
        cron,
        &RunState {
            last_handled: state.last_handled,
            created: state.created,
            taken: &taken,
            deadline: state.deadline,
            suspended: state.suspended,
        },
        now,
    );
    let done = |waiting| ScheduledStep {
        start: None,
        handled: d.handled,
        missed: d.missed,
        next: d.next,
        waiting,
    };
    let Some(at) = d.take else {
        let why = if state.suspended {
            Waiting::Suspended
        } else {
            Waiting::ForSchedule(d.next)
        };
        return done(Some(why));
    };
    if taken.contains(&at) {
        return done(Some(Waiting::ForSchedule(d.next)));
    }
    let blocked = if plan.syncing {
        Some(Waiting::SyncInProgress)
    } else if !plan.can_sync {
        Some(Waiting::CannotSync)
    } else {
        None
    };
    match blocked {
        // Wait within the deadline: `at` is not handled yet, so the next
        // pass decides again (and counts it missed once late); the due
        // times before it are missed now.
        Some(why) => ScheduledStep {
            start: None,
            handled: if d.missed > 0 {
                cron.latest_at_or_before(at - chrono::Duration::seconds(1))
                    .max(state.last_handled)
            } else {
                state.last_handled
            },
            missed: d.missed,
            next: d.next,
            waiting: Some(why),
        },
        None => ScheduledStep {
            start: Some(at),
            handled: d.handled,
            missed: d.missed,
            next: d.next,
            waiting: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, h, m, 0)
            .single()
            .expect("time")
    }

    fn idle_plan(started: i64) -> PlanFacts {
        PlanFacts {
            syncing: false,
            can_sync: true,
            started,
            run_begins: Vec::new(),
        }
    }

    fn manual<'a>(
        token: Option<&'a str>,
        ack: Option<&'a str>,
        pending: Option<(&'a str, i64)>,
    ) -> ManualState<'a> {
        ManualState {
            token,
            acknowledged: ack,
            pending,
            suspended: false,
        }
    }

    #[test]
    fn a_new_token_is_first_recorded_then_synced_once() {
        let plan = idle_plan(4);
        assert_eq!(
            decide_manual(&manual(Some("a"), None, None), &plan),
            ManualStep::Intend {
                token: "a".into(),
                started_before: 4
            }
        );
        assert_eq!(
            decide_manual(&manual(Some("a"), None, Some(("a", 4))), &plan),
            ManualStep::Sync("a".into())
        );
        // The status write after the call was lost: the count tells.
        let after = PlanFacts {
            syncing: true,
            ..idle_plan(5)
        };
        assert_eq!(
            decide_manual(&manual(Some("a"), None, Some(("a", 4))), &after),
            ManualStep::Acknowledge("a".into())
        );
        assert_eq!(
            decide_manual(&manual(Some("a"), Some("a"), None), &after),
            ManualStep::Idle
        );
    }

    #[test]
    fn a_token_changed_again_before_its_sync_is_recorded_anew() {
        assert_eq!(
            decide_manual(&manual(Some("b"), Some("a"), Some(("a", 4))), &idle_plan(4)),
            ManualStep::Intend {
                token: "b".into(),
                started_before: 4
            }
        );
    }

    #[test]
    fn no_manual_sync_while_one_runs_or_dsm_refuses_or_suspended() {
        let running = PlanFacts {
            syncing: true,
            ..idle_plan(3)
        };
        assert_eq!(
            decide_manual(&manual(Some("a"), None, None), &running),
            ManualStep::Wait(Waiting::SyncInProgress)
        );
        let refused = PlanFacts {
            can_sync: false,
            ..idle_plan(3)
        };
        assert_eq!(
            decide_manual(&manual(Some("a"), None, Some(("a", 3))), &refused),
            ManualStep::Wait(Waiting::CannotSync)
        );
        let mut suspended = manual(Some("a"), None, None);
        suspended.suspended = true;
        assert_eq!(
            decide_manual(&suspended, &idle_plan(3)),
            ManualStep::Wait(Waiting::Suspended)
        );
        assert_eq!(
            decide_manual(&manual(None, None, None), &idle_plan(3)),
            ManualStep::Idle
        );
    }

    fn hourly() -> CronSchedule {
        schedule::parse("0 * * * *", "UTC").expect("cron")
    }

    fn state(last: Option<DateTime<Utc>>) -> ScheduleState {
        ScheduleState {
            last_handled: last,
            created: at(8, 30),
            deadline: Duration::from_secs(600),
            suspended: false,
        }
    }

    #[test]
    fn a_due_time_starts_one_sync() {
        let step = decide_scheduled(&hourly(), &state(None), &idle_plan(0), at(9, 0));
        assert_eq!(step.start, Some(at(9, 0)));
        assert_eq!(step.handled, Some(at(9, 0)));
        assert_eq!(step.missed, 0);
        assert_eq!(step.next, Some(at(10, 0)));
        // Handled: nothing more until 10:00.
        let again = decide_scheduled(&hourly(), &state(Some(at(9, 0))), &idle_plan(1), at(9, 5));
        assert_eq!(again.start, None);
        assert_eq!(again.waiting, Some(Waiting::ForSchedule(Some(at(10, 0)))));
    }

    #[test]
    fn a_sync_already_started_for_the_due_time_is_not_started_again() {
        // Crash after the call, before lastScheduleTime was written.
        let plan = PlanFacts {
            syncing: true,
            run_begins: vec![at(9, 0).timestamp() + 2],
            ..idle_plan(1)
        };
        let step = decide_scheduled(&hourly(), &state(None), &plan, at(9, 1));
        assert_eq!(step.start, None);
        assert_eq!(step.handled, Some(at(9, 0)));
        assert_eq!(step.missed, 0);
    }

    #[test]
    fn a_running_sync_delays_the_due_time_then_it_is_missed_past_the_deadline() {
        let running = PlanFacts {
            syncing: true,
            run_begins: vec![at(8, 50).timestamp()],
            ..idle_plan(1)
        };
        let waiting = decide_scheduled(&hourly(), &state(None), &running, at(9, 2));
        assert_eq!(waiting.start, None);
        assert_eq!(waiting.handled, None);
        assert_eq!(waiting.missed, 0);
        assert_eq!(waiting.waiting, Some(Waiting::SyncInProgress));
        // It ended within the deadline: the due time starts late.
        let ended = PlanFacts {
            syncing: false,
            ..running.clone()
        };
        let late = decide_scheduled(&hourly(), &state(None), &ended, at(9, 5));
        assert_eq!(late.start, Some(at(9, 0)));
        // Still running past the deadline: counted missed, once.
        let missed = decide_scheduled(&hourly(), &state(None), &running, at(9, 20));
        assert_eq!(missed.start, None);
        assert_eq!(missed.handled, Some(at(9, 0)));
        assert_eq!(missed.missed, 1);
        let after = decide_scheduled(&hourly(), &state(Some(at(9, 0))), &running, at(9, 30));
        assert_eq!(after.missed, 0);
        // Still running at 11:05: 10:00 is missed at once, 11:00 waits.
        let later = decide_scheduled(&hourly(), &state(Some(at(9, 0))), &running, at(11, 5));
        assert_eq!(later.missed, 1);
        assert_eq!(later.handled, Some(at(10, 0)));
        assert_eq!(later.start, None);
        let again = decide_scheduled(&hourly(), &state(Some(at(10, 0))), &running, at(11, 6));
        assert_eq!(again.missed, 0);
    }

    #[test]
    fn dsm_refusing_a_sync_is_waited_for_like_a_running_one() {
        let refused = PlanFacts {
            can_sync: false,
            ..idle_plan(0)
        };
        let step = decide_scheduled(&hourly(), &state(None), &refused, at(9, 1));
        assert_eq!(step.start, None);
        assert_eq!(step.waiting, Some(Waiting::CannotSync));
    }

    #[test]
    fn intervals_missed_while_down_are_counted_and_suspension_skips() {
        // Down from 9:00 to 12:03: 9, 10 and 11 missed, 12 starts.
        let step = decide_scheduled(&hourly(), &state(Some(at(8, 0))), &idle_plan(0), at(12, 3));
        assert_eq!(step.start, Some(at(12, 0)));
        assert_eq!(step.missed, 3);
        let mut suspended = state(Some(at(8, 0)));
        suspended.suspended = true;
        let step = decide_scheduled(&hourly(), &suspended, &idle_plan(0), at(12, 3));
        assert_eq!(step.start, None);
        assert_eq!(step.missed, 0);
        assert_eq!(step.handled, Some(at(12, 0)));
        assert_eq!(step.waiting, Some(Waiting::Suspended));
    }
}
