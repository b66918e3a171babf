//! ReplicationPlan: adopt a DSM Snapshot Replication plan by id, start its
//! syncs on a schedule or on a manual token, and report it.
//!
//! Like SnapshotSchedule, a plan is not created or deleted by the operator,
//! so it does not fit [`super::lifecycle::Managed`]; this small engine
//! reuses the shared stops and conditions, [`ArrayHandle`] and the
//! injected [`Clock`]. The decisions are the pure core's
//! ([`crate::reconcile::replication`]), fed only by what the array lists
//! and what status says, so a restart at any point neither repeats a sync
//! nor forgets one.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::array::backend::replication::{ObservedPlan, SyncRequest, SyncRun};
use crate::crd::ReplicationPlan;
use crate::crd::replication_plan::{
    PendingManualSync, PlanSite, ReplicationPlanStatus, SyncingStatus,
};
use crate::crd::shared::{CONDITION_SYNCHRONIZING, ManagementPolicy, ready_reason, synced_reason};
use crate::reconcile::replication::{
    self as decide, ManualState, ManualStep, PlanFacts, ScheduleState, Waiting,
};
use crate::reconcile::schedule::{self, CronSchedule};

use super::clock::Clock;
use super::common::{Stop, common_with, paused, paused_generation};
use super::conditions::{ConditionState, set_condition};
use super::spec_error::InvalidSpec;
use super::{ArrayHandle, Cleanup, EngineEvent, Outcome, Progress};

/// The kind.
pub const KIND: &str = "ReplicationPlan";
/// How late a scheduled due time may still start a sync.
pub const STARTING_DEADLINE: Duration = Duration::from_secs(3600);
/// How often a running sync's progress is read.
pub const SYNC_POLL: Duration = Duration::from_secs(15);
/// Description of a sync's snapshot when `spec.description` is unset.
pub const DEFAULT_DESCRIPTION: &str = "Snapshot taken by array-operator";

/// Event reasons of a plan.
pub mod plan_event {
    /// A sync was started.
    pub const SYNC_STARTED: &str = "SyncStarted";
    /// A sync finished.
    pub const SYNC_FINISHED: &str = "SyncFinished";
    /// A sync failed.
    pub const SYNC_FAILED: &str = "SyncFailed";
    /// Due times started no sync.
    pub const MISSED_INTERVAL: &str = "MissedInterval";
    /// A manual token was acknowledged by a sync that had already started.
    pub const MANUAL_SYNC_ACKNOWLEDGED: &str = "ManualSyncAcknowledged";
    /// The operator stopped driving the plan (object deleted).
    pub const RELEASED: &str = "Released";
}

/// Reasons of the `Synchronizing` condition.
pub mod synchronizing_reason {
    /// A sync runs.
    pub const SYNC_IN_PROGRESS: &str = "SyncInProgress";
    /// Waiting for the next due time.
    pub const WAITING_FOR_SCHEDULE: &str = "WaitingForSchedule";
    /// Waiting for a new manual token.
    pub const WAITING_FOR_MANUAL: &str = "WaitingForManual";
    /// The last sync failed, DSM refuses syncs, or the plan cannot be read.
    pub const ERROR: &str = "Error";
}

/// What a reconcile decided, and when the plan next needs the engine.
#[derive(Clone, Debug)]
pub struct PlanOutcome {
    /// Status, Events, progress.
    pub outcome: Outcome<ReplicationPlanStatus>,
    /// When to come back at the latest (a due time, a running sync's next
    /// progress read, or now after recording a manual request).
    pub wake_at: Option<DateTime<Utc>>,
}

enum Trigger {
    Schedule(Box<CronSchedule>),
    Manual(String),
}

fn to_time(t: DateTime<Utc>) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .ok()
        .map(Time)
}

fn unix_time(secs: i64) -> Option<Time> {
    Utc.timestamp_opt(secs, 0).single().and_then(to_time)
}

fn from_time(t: &Time) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .single()
}

/// `90` → `1m30s`.
pub fn format_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn check(p: &ReplicationPlan) -> Result<Trigger, InvalidSpec> {
    let t = &p.spec.trigger;
    match (&t.schedule, &t.manual) {
        (Some(cron), None) => {
            let tz = t.time_zone.as_deref().unwrap_or("UTC");
            schedule::parse(cron, tz)
                .map(|c| Trigger::Schedule(Box::new(c)))
                .map_err(|e| {
                    let field = match e {
                        schedule::ScheduleError::TimeZone(_) => "spec.trigger.timeZone",
                        _ => "spec.trigger.schedule",
                    };
                    InvalidSpec::new(field, e.to_string())
                })
        }
        (None, Some(token)) => {
            if t.time_zone.is_some() {
                return Err(InvalidSpec::new(
                    "spec.trigger.timeZone",
                    "only goes with spec.trigger.schedule",
                ));
            }
            if token.is_empty() {
                return Err(InvalidSpec::new("spec.trigger.manual", "must not be empty"));
            }
            Ok(Trigger::Manual(token.clone()))
        }
        _ => Err(InvalidSpec::new(
            "spec.trigger",
            "needs exactly one of schedule or manual",
        )),
    }
}

fn synchronizing_error(message: String) -> ConditionState {
    ConditionState::no(synchronizing_reason::ERROR, message)
}

fn stopped(p: &ReplicationPlan, stop: Stop, mut status: ReplicationPlanStatus) -> PlanOutcome {
    status.common = common_with(
        p.status.as_ref().map(|st| &st.common),
        stop.ready.as_ref(),
        &stop.synced,
        stop.progress,
        p.metadata.generation,
    );
    set_condition(
        &mut status.common.conditions,
        CONDITION_SYNCHRONIZING,
        &synchronizing_error(stop.synced.message.clone()),
        p.metadata.generation,
        &super::now(),
    );
    PlanOutcome {
        outcome: Outcome {
            status,
            events: stop.event.into_iter().collect(),
            progress: stop.progress,
        },
        wake_at: None,
    }
}

fn site(s: &Option<crate::array::backend::replication::PlanSiteInfo>) -> Option<PlanSite> {
    s.as_ref().map(|s| PlanSite {
        hostname: s.hostname.clone(),
        status: s.status.clone(),
    })
}

/// Copies what the array says of the plan into status.
fn report(status: &mut ReplicationPlanStatus, plan: &ObservedPlan) {
    status.common.external_id = Some(plan.id.clone());
    status.role = plan.role.clone();
    status.main_site = site(&plan.main_site);
    status.dr_site = site(&plan.dr_site);
    status.success_count = plan.success_count;
    status.failure_count = plan.failure_count;
    if let Some(last) = plan.last_finished() {
        status.last_sync_time = last.finish.and_then(unix_time);
        status.last_sync_duration = last.elapsed.map(format_duration);
        status.last_sync_bytes = last.bytes.and_then(|b| i64::try_from(b).ok());
        status.last_sync_result = Some(if last.success { "Success" } else { "Failed" }.into());
    }
    status.syncing = plan.syncing.as_ref().map(syncing_status);
}

fn syncing_status(run: &SyncRun) -> SyncingStatus {
    SyncingStatus {
        progress: run.progress,
        started_at: run.begin.and_then(unix_time),
    }
}

/// Events for syncs that ended since the last status write.
fn ended_events(previous: Option<&ReplicationPlanStatus>, plan: &ObservedPlan) -> Vec<EngineEvent> {
    let Some(prev) = previous.filter(|p| p.common.external_id.as_deref() == Some(&plan.id)) else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let duration = plan
        .last_finished()
        .and_then(|r| r.elapsed)
        .map(format_duration)
        .unwrap_or_else(|| "an unknown time".into());
    if plan.success_count > prev.success_count {
        events.push(EngineEvent::normal(
            plan_event::SYNC_FINISHED,
            "Sync",
            format!(
                "a sync of DSM plan {} finished in {duration} ({} successful so far)",
                plan.id, plan.success_count
            ),
        ));
    }
    if plan.failure_count > prev.failure_count {
        let code = plan.last_error_code.map_or_else(
            || "no error code".to_string(),
            |c| format!("DSM error code {c}"),
        );
        events.push(EngineEvent::warning(
            plan_event::SYNC_FAILED,
            "Sync",
            format!(
                "a sync of DSM plan {} failed ({code}; {} failed so far)",
                plan.id, plan.failure_count
            ),
        ));
    }
    events
}

fn facts(plan: &ObservedPlan) -> PlanFacts {
    PlanFacts {
        syncing: plan.syncing.is_some(),
        can_sync: plan.can_sync,
        started: plan.started(),
        run_begins: plan
            .recent
            .iter()
            .chain(plan.syncing.iter())
            .filter_map(|r| r.begin)
            .collect(),
    }
}

fn waiting_condition(
    w: &Waiting,
    plan: &ObservedPlan,
    manage: bool,
    manual: bool,
) -> ConditionState {
    let observe = if manage {
        ""
    } else {
        " (managementPolicy Observe: the operator starts no sync)"
    };
    match w {
        Waiting::SyncInProgress => ConditionState::yes(
            synchronizing_reason::SYNC_IN_PROGRESS,
            in_progress_message(plan),
        ),
        Waiting::CannotSync => synchronizing_error(format!(
            "DSM does not allow a sync of plan {} now (can_do.can_sync is false); the operator waits",
            plan.id
        )),
        Waiting::Suspended => ConditionState::no(
            if manual {
                synchronizing_reason::WAITING_FOR_MANUAL
            } else {
                synchronizing_reason::WAITING_FOR_SCHEDULE
            },
            format!(
                "spec.suspend is true: no sync of plan {} is started{observe}",
                plan.id
            ),
        ),
        Waiting::ForSchedule(next) => ConditionState::no(
            synchronizing_reason::WAITING_FOR_SCHEDULE,
            match next {
                Some(t) => format!(
                    "the next sync of plan {} is due at {}{observe}",
                    plan.id,
                    t.to_rfc3339()
                ),
                None => format!(
                    "spec.trigger.schedule has no further due time for plan {}",
                    plan.id
                ),
            },
        ),
        Waiting::ForManual => ConditionState::no(
            synchronizing_reason::WAITING_FOR_MANUAL,
            format!(
                "change spec.trigger.manual to request a sync of plan {}{observe}",
                plan.id
            ),
        ),
    }
}

fn in_progress_message(plan: &ObservedPlan) -> String {
    match plan.syncing.as_ref().and_then(|r| r.progress) {
        Some(n) => format!("plan {} is syncing ({n}% done)", plan.id),
        None => format!("plan {} is syncing", plan.id),
    }
}

/// Starts one sync of `plan` and pushes its Event (`what`: why, after
/// "started a sync of DSM plan N "). Under a dry run the call is recorded
/// with that Event instead of sent.
async fn start_sync(
    array: &ArrayHandle,
    plan: &crate::array::backend::replication::ObservedPlan,
    request: &SyncRequest,
    what: String,
    events: &mut Vec<EngineEvent>,
) -> Result<(), crate::array::backend::BackendError> {
    if array.dry_run.is_none() {
        array.backend.sync_plan(plan, request).await?;
    }
    let event = EngineEvent::normal(
        plan_event::SYNC_STARTED,
        "Sync",
        format!("started a sync of DSM plan {} {what}", plan.id),
    );
    if let Some(dry) = &array.dry_run {
        dry.record(event.reason, event.action, event.note.clone());
    }
    events.push(event);
    Ok(())
}

/// The outcome of a sync call that failed, with the Events so far. The
/// next pass decides again, and finds the sync if the call did start it.
fn sync_failed(
    p: &ReplicationPlan,
    e: &crate::array::backend::BackendError,
    array: &ArrayHandle,
    status: ReplicationPlanStatus,
    mut events: Vec<EngineEvent>,
) -> PlanOutcome {
    let mut out = stopped(p, Stop::array(e, "Sync", array), status);
    events.append(&mut out.outcome.events);
    out.outcome.events = events;
    out
}

/// Reconciles one plan at `clock.now()`.
pub async fn reconcile(p: &ReplicationPlan, array: &ArrayHandle, clock: &dyn Clock) -> PlanOutcome {
    let now = clock.now();
    let mut status = p.status.clone().unwrap_or_default();
    if paused(&p.metadata) {
        let mut out = stopped(p, Stop::paused(), status);
        out.outcome.status.common.observed_generation = paused_generation(
            p.status.as_ref().map(|st| &st.common),
            p.metadata.generation,
        );
        return out;
    }
    let trigger = match check(p) {
        Ok(t) => t,
        Err(invalid) => return stopped(p, Stop::invalid(&invalid), status),
    };
    if !array.backend.has_replication_plans() {
        // No call at all: the vendor has no plans to list.
        let e = crate::array::backend::replication::no_plans();
        return stopped(p, Stop::array(&e, "ListPlans", array), status);
    }
    let plans = match array.backend.list_plans().await {
        Ok(l) => l,
        Err(e) => return stopped(p, Stop::array(&e, "ListPlans", array), status),
    };
    let id = &p.spec.plan_id;
    let Some(plan) = plans.into_iter().find(|x| &x.id == id) else {
        let text = format!(
            "DSM plan {id} (spec.planId) does not exist on array {}: plans are created in DSM Snapshot Replication, and the operator only adopts them",
            array.key
        );
        let stop = Stop {
            ready: Some(ConditionState::no(ready_reason::UNAVAILABLE, text.clone())),
            // A plan id the array does not know is the spec's fault, as a
            // VMM storage name it does not know is: InvalidSpec.
            synced: ConditionState::no(synced_reason::INVALID_SPEC, text.clone()),
            progress: Progress::Stalled,
            event: Some(EngineEvent::warning(
                crate::engine::event_reason::RECONCILE_ERROR,
                "ListPlans",
                text,
            )),
        };
        return stopped(p, stop, status);
    };
    let mut events = ended_events(p.status.as_ref(), &plan);
    report(&mut status, &plan);
    let ns = p.namespace().unwrap_or_default();
    let name = p.name_any();
    if let Some(secs) = plan.last_finished().and_then(|r| r.elapsed) {
        crate::metrics::global().replication_synced(&ns, &name, secs as f64);
    }
    let manage = p.spec.management_policy == ManagementPolicy::Manage;
    let facts = facts(&plan);
    let request = SyncRequest {
        description: p
            .spec
            .description
            .clone()
            .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string()),
        lock_snapshot: p.spec.lock_snapshot,
    };
    let mut wake_at = None;
    let mut started = false;
    let waiting: Option<Waiting>;
    match trigger {
        Trigger::Schedule(cron) => {
            let created = p
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(from_time)
                .unwrap_or(now);
            let step = decide::decide_scheduled(
                &cron,
                &ScheduleState {
                    last_handled: status.last_schedule_time.as_ref().and_then(from_time),
                    created,
                    deadline: STARTING_DEADLINE,
                    suspended: p.spec.suspend,
                },
                &facts,
                now,
            );
            status.next_sync_time = step.next.and_then(to_time);
            wake_at = step.next;
            if let Some(at) = step.start
                && manage
            {
                let what = format!("for the due time {}", at.to_rfc3339());
                if let Err(e) = start_sync(array, &plan, &request, what, &mut events).await {
                    // lastScheduleTime stays.
                    return sync_failed(p, &e, array, status, events);
                }
                started = true;
            }
            status.last_schedule_time = step.handled.and_then(to_time);
            if step.missed > 0 {
                status.missed_intervals += step.missed as i64;
                crate::metrics::global().replication_missed(&ns, &name, step.missed);
                events.push(EngineEvent::warning(
                    plan_event::MISSED_INTERVAL,
                    "Sync",
                    format!(
                        "{} due time(s) of spec.trigger.schedule started no sync of DSM plan {} (a sync was running, DSM refused, or the operator was down past the {}-minute deadline)",
                        step.missed,
                        plan.id,
                        STARTING_DEADLINE.as_secs() / 60
                    ),
                ));
            }
            // Under Observe a due time is handled without a call: the
            // condition still tells when the next one is.
            waiting = step.waiting.or(Some(Waiting::ForSchedule(step.next)));
        }
        Trigger::Manual(token) => {
            status.next_sync_time = plan.next_trigger.and_then(unix_time);
            let pending = status
                .pending_manual_sync
                .as_ref()
                .map(|x| (x.token.as_str(), x.started_before));
            let step = decide::decide_manual(
                &ManualState {
                    token: Some(&token),
                    acknowledged: status.last_manual_sync.as_deref(),
                    pending,
                    suspended: p.spec.suspend,
                },
                &facts,
            );
            waiting = match step {
                ManualStep::Idle => Some(Waiting::ForManual),
                ManualStep::Wait(w) => Some(w),
                ManualStep::Intend {
                    token,
                    started_before,
                } if manage => {
                    status.pending_manual_sync = Some(PendingManualSync {
                        token,
                        started_before,
                    });
                    // Come back at once: the sync call follows the write.
                    wake_at = Some(now);
                    Some(Waiting::ForManual)
                }
                ManualStep::Intend { .. } | ManualStep::Sync(_) if !manage => {
                    Some(Waiting::ForManual)
                }
                ManualStep::Intend { .. } => Some(Waiting::ForManual),
                ManualStep::Sync(token) => {
                    let what = format!("for spec.trigger.manual {token:?}");
                    if let Err(e) = start_sync(array, &plan, &request, what, &mut events).await {
                        return sync_failed(p, &e, array, status, events);
                    }
                    started = true;
                    status.last_manual_sync = Some(token);
                    status.pending_manual_sync = None;
                    None
                }
                ManualStep::Acknowledge(token) => {
                    events.push(EngineEvent::normal(
                        plan_event::MANUAL_SYNC_ACKNOWLEDGED,
                        "Sync",
                        format!(
                            "a sync of DSM plan {} started after spec.trigger.manual {token:?} was requested; acknowledged without another sync call",
                            plan.id
                        ),
                    ));
                    status.last_manual_sync = Some(token);
                    status.pending_manual_sync = None;
                    None
                }
            };
        }
    }
    let synchronizing = if started {
        if status.syncing.is_none() {
            status.syncing = Some(SyncingStatus {
                progress: Some(0),
                started_at: to_time(now),
            });
        }
        ConditionState::yes(
            synchronizing_reason::SYNC_IN_PROGRESS,
            format!("plan {} is syncing (started by the operator)", plan.id),
        )
    } else if plan.syncing.is_some() {
        ConditionState::yes(
            synchronizing_reason::SYNC_IN_PROGRESS,
            in_progress_message(&plan),
        )
    } else if plan.last_finished().is_some_and(|r| !r.success) {
        synchronizing_error(format!(
            "the last sync of DSM plan {} failed ({})",
            plan.id,
            plan.last_error_code.map_or_else(
                || "no error code".to_string(),
                |c| format!("DSM error code {c}")
            )
        ))
    } else {
        let w = waiting.unwrap_or(Waiting::ForManual);
        waiting_condition(&w, &plan, manage, p.spec.trigger.manual.is_some())
    };
    if started || plan.syncing.is_some() {
        let poll = now + chrono::Duration::from_std(SYNC_POLL).unwrap_or(chrono::Duration::zero());
        wake_at = Some(wake_at.map_or(poll, |w| w.min(poll)));
    }
    let ready = ConditionState::yes(
        ready_reason::AVAILABLE,
        format!("DSM plan {} is adopted", plan.id),
    );
    let synced = ConditionState::yes(
        synced_reason::RECONCILE_SUCCESS,
        if manage {
            format!("DSM plan {} is driven as the spec says", plan.id)
        } else {
            format!(
                "DSM plan {} is observed (managementPolicy Observe)",
                plan.id
            )
        },
    );
    status.common = common_with(
        p.status.as_ref().map(|st| &st.common),
        Some(&ready),
        &synced,
        Progress::Converged,
        p.metadata.generation,
    );
    status.common.external_id = Some(plan.id.clone());
    set_condition(
        &mut status.common.conditions,
        CONDITION_SYNCHRONIZING,
        &synchronizing,
        p.metadata.generation,
        &super::now(),
    );
    PlanOutcome {
        outcome: Outcome {
            status,
            events,
            progress: Progress::Converged,
        },
        wake_at,
    }
}

/// Deleting a ReplicationPlan only stops driving the DSM plan: the DSM API
/// has no call to delete one, and the plan is the admin's. No array call.
pub fn cleanup(p: &ReplicationPlan) -> Cleanup<ReplicationPlanStatus> {
    Cleanup::Done {
        events: vec![EngineEvent::normal(
            plan_event::RELEASED,
            "Release",
            format!(
                "stopped driving DSM plan {}; the plan stays on the array",
                p.spec.plan_id
            ),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_kubectl_prints_them() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(37), "37s");
        assert_eq!(format_duration(90), "1m30s");
        assert_eq!(format_duration(3 * 3600 + 5), "3h0m5s");
        assert_eq!(format_duration(-4), "0s");
    }
}
