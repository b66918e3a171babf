//! SnapshotSchedule: the reconcile and the cleanup.
//!
//! A schedule owns no single array object, so it does not fit
//! [`super::lifecycle::Managed`] (identity, create records, one diff of one
//! object). It has its own small engine that reuses the shared pieces: the
//! stops of [`super::common`] and their conditions, kstatus conditions with
//! observedGeneration, [`ArrayHandle`], and the controller wrapper's
//! finalizer, status patch and backoff. Time comes from an injected
//! [`Clock`]; the decisions are the pure core's
//! ([`crate::reconcile::schedule`]).
//!
//! Two modes:
//! - **Operator** (DSM always; NGXStorage when the spec does not fit the
//!   native schedule): at each due time one snapshot per selected LUN,
//!   marked with the schedule's identity and the due time (DSM: in the
//!   description; NGX: in the name). What was taken is read back from the
//!   array's marks, so a restart neither repeats a run nor misses one it
//!   already took. Retention prunes only snapshots carrying this schedule's
//!   UID, never a locked one unless `retention.pruneLocked`, never one the
//!   array says is still needed.
//! - **Native** (NGXStorage, `cron_time` + `keep_max`, UTC, no `maxAge`):
//!   the array's per-LUN schedule is programmed, replaced when it differs,
//!   and removed when a LUN leaves the selection, the schedule is suspended
//!   or switches mode, or the object is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::core::{Selector, SelectorExt};

use crate::array::backend::snapshot::{NativeSchedule, ObservedSnapshot, SnapshotRequest};
use crate::crd::shared::{DeletionPolicy, ManagementPolicy, ready_reason, synced_reason};
use crate::crd::snapshot_schedule::LunSnapshots;
use crate::crd::{Lun, SnapshotSchedule, SnapshotScheduleStatus};
use crate::reconcile::schedule::{self, CronSchedule, Mark, OwnSnapshot, RetentionRule, RunState};

use super::clock::Clock;
use super::common::{Stop, common_with, paused, paused_generation};
use super::conditions::ConditionState;
use super::dry_run::DryRun;
use super::spec_error::InvalidSpec;
use super::{
    ArrayHandle, Cleanup, EngineEvent, Outcome, Progress, lun_external_id, parse_duration,
};

/// The kind.
pub const KIND: &str = "SnapshotSchedule";
/// `spec.startingDeadline` when unset (as CronJob's usual setting).
pub const DEFAULT_STARTING_DEADLINE: Duration = Duration::from_secs(3600);
/// `status.mode`: the operator takes and prunes the snapshots.
pub const MODE_OPERATOR: &str = "Operator";
/// `status.mode`: the array's native schedule does.
pub const MODE_NATIVE: &str = "Native";

/// Event reasons of a schedule.
pub mod schedule_event {
    /// A snapshot was taken.
    pub const SNAPSHOT_TAKEN: &str = "SnapshotTaken";
    /// A snapshot was pruned by retention.
    pub const SNAPSHOT_PRUNED: &str = "SnapshotPruned";
    /// Due runs were missed.
    pub const MISSED_RUN: &str = "MissedRun";
    /// A native schedule was programmed or replaced.
    pub const NATIVE_SCHEDULE_SET: &str = "NativeScheduleSet";
    /// A native schedule was removed.
    pub const NATIVE_SCHEDULE_REMOVED: &str = "NativeScheduleRemoved";
}

/// What a reconcile decided, and when the schedule next needs the engine.
#[derive(Clone, Debug)]
pub struct ScheduleOutcome {
    /// Status, Events, progress.
    pub outcome: Outcome<SnapshotScheduleStatus>,
    /// The next due time the operator itself must act on (Operator mode);
    /// the controller requeues for it.
    pub wake_at: Option<DateTime<Utc>>,
}

/// The spec, checked.
struct Checked {
    cron: CronSchedule,
    deadline: Duration,
    retention: RetentionRule,
    selector: Option<Selector>,
}

/// A selected LUN: the Lun object's name and the array's id.
#[derive(Clone, Debug)]
struct Selected {
    name: String,
    id: String,
}

fn to_time(t: DateTime<Utc>) -> Option<Time> {
    k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .ok()
        .map(Time)
}

fn from_time(t: &Time) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.0.as_second(), t.0.subsec_nanosecond().max(0) as u32)
        .single()
}

fn check(s: &SnapshotSchedule, array: &ArrayHandle) -> Result<Checked, InvalidSpec> {
    let spec = &s.spec;
    let cron = schedule::parse(&spec.schedule, &spec.time_zone).map_err(|e| {
        let field = match e {
            schedule::ScheduleError::TimeZone(_) => "spec.timeZone",
            _ => "spec.schedule",
        };
        InvalidSpec::new(field, e.to_string())
    })?;
    let deadline = match &spec.starting_deadline {
        None => DEFAULT_STARTING_DEADLINE,
        Some(text) => parse_duration(text).ok_or_else(|| {
            InvalidSpec::new(
                "spec.startingDeadline",
                format!("{text:?} is not a duration such as 30m or 1h"),
            )
        })?,
    };
    let max_age = match &spec.retention.max_age {
        None => None,
        Some(text) => Some(parse_duration(text).ok_or_else(|| {
            InvalidSpec::new(
                "spec.retention.maxAge",
                format!("{text:?} is not a duration such as 168h"),
            )
        })?),
    };
    let max_count = match spec.retention.max_count {
        None => None,
        Some(n) if n >= 1 => Some(n as usize),
        Some(_) => {
            return Err(InvalidSpec::new(
                "spec.retention.maxCount",
                "must be at least 1",
            ));
        }
    };
    if max_count.is_none() && max_age.is_none() {
        return Err(InvalidSpec::new(
            "spec.retention",
            "needs maxCount, maxAge or both",
        ));
    }
    let features = array.backend.snapshot_features();
    let settings = spec.snapshot.clone().unwrap_or_default();
    if settings.locked && !features.locking {
        return Err(InvalidSpec::unsupported(
            "spec.snapshot.locked",
            "this array's snapshots cannot be locked (NGXStorage has no snapshot lock)",
        ));
    }
    if settings.app_consistent && !features.app_consistent {
        return Err(InvalidSpec::unsupported(
            "spec.snapshot.appConsistent",
            "this array cannot take application-consistent snapshots (NGXStorage)",
        ));
    }
    if settings.description.is_some() && !features.descriptions {
        return Err(InvalidSpec::unsupported(
            "spec.snapshot.description",
            "this array's snapshots have no description (NGXStorage keeps a name only)",
        ));
    }
    let selector = match &spec.lun_selector {
        None => None,
        Some(ls) => Some(Selector::try_from(ls.clone()).map_err(|e| {
            InvalidSpec::new(
                "spec.lunSelector",
                format!("not a valid label selector: {e}"),
            )
        })?),
    };
    if spec.lun_selector.is_some() == spec.luns.is_some() {
        return Err(InvalidSpec::new(
            "spec.luns",
            "set exactly one of spec.lunSelector or spec.luns",
        ));
    }
    Ok(Checked {
        cron,
        deadline,
        retention: RetentionRule {
            max_count,
            max_age,
            prune_locked: spec.retention.prune_locked,
        },
        selector,
    })
}

/// The selected LUNs that exist on the array, and a sentence for each one
/// that does not yet.
fn select(
    s: &SnapshotSchedule,
    checked: &Checked,
    luns: &[Lun],
) -> Result<(Vec<Selected>, Vec<String>), InvalidSpec> {
    let ns = s.namespace().unwrap_or_default();
    let array = &s.spec.array_ref.name;
    let in_ns = |l: &&Lun| l.namespace().unwrap_or_default() == ns;
    let mut selected = Vec::new();
    let mut missing = Vec::new();
    let mut take = |lun: &Lun, missing: &mut Vec<String>| match lun_external_id(lun) {
        Some(id) => selected.push(Selected {
            name: lun.name_any(),
            id,
        }),
        None => missing.push(format!(
            "Lun {} is not created on the array yet",
            lun.name_any()
        )),
    };
    if let Some(names) = &s.spec.luns {
        let mut names: Vec<&String> = names.iter().collect();
        names.sort();
        names.dedup();
        for name in names {
            match luns.iter().filter(in_ns).find(|l| &l.name_any() == name) {
                None => missing.push(format!("Lun {name} does not exist")),
                Some(l) if &l.spec.array_ref.name != array => {
                    return Err(InvalidSpec::new(
                        "spec.luns",
                        format!(
                            "Lun {name} is on StorageArray {}, not on {array} (spec.arrayRef)",
                            l.spec.array_ref.name
                        ),
                    ));
                }
                Some(l) => take(l, &mut missing),
            }
        }
    } else if let Some(selector) = &checked.selector {
        let mut matching: Vec<&Lun> = luns
            .iter()
            .filter(in_ns)
            .filter(|l| &l.spec.array_ref.name == array)
            .filter(|l| selector.matches(l.labels()))
            .collect();
        matching.sort_by_key(|l| l.name_any());
        for l in matching {
            take(l, &mut missing);
        }
    }
    Ok((selected, missing))
}

/// Which mode the spec runs in on this array, and why.
fn mode_of(s: &SnapshotSchedule, checked: &Checked, array: &ArrayHandle) -> (bool, String) {
    let spec = &s.spec;
    if !array.backend.snapshot_features().native_schedule {
        return (
            false,
            "the array has no native schedule the API can program, so the operator takes and prunes the snapshots".into(),
        );
    }
    if spec.suspend {
        return (
            false,
            "spec.suspend is true: the array's native schedules are removed and nothing is taken or pruned".into(),
        );
    }
    if spec.retention.max_age.is_some() {
        return (
            false,
            "spec.retention.maxAge has no native equivalent (the array keeps a count only), so the operator takes and prunes the snapshots".into(),
        );
    }
    if checked.retention.max_count.is_none() {
        return (false, "spec.retention.maxCount is unset".into());
    }
    if spec.time_zone != "UTC" {
        return (
            false,
            format!(
                "spec.timeZone {} differs from the array's (its native schedule runs in UTC), so the operator takes and prunes the snapshots",
                spec.time_zone
            ),
        );
    }
    match checked.cron.native_cron() {
        None => (
            false,
            "spec.schedule uses steps or names, which the array's cron_time does not accept, so the operator takes and prunes the snapshots".into(),
        ),
        Some(cron) => (
            true,
            format!(
                "the spec fits the array's native schedule (cron_time {cron:?}, keep_max {})",
                checked.retention.max_count.unwrap_or(1)
            ),
        ),
    }
}

fn stopped(
    s: &SnapshotSchedule,
    stop: Stop,
    mut status: SnapshotScheduleStatus,
) -> ScheduleOutcome {
    status.common = common_with(
        s.status.as_ref().map(|st| &st.common),
        stop.ready.as_ref(),
        &stop.synced,
        stop.progress,
        s.metadata.generation,
    );
    ScheduleOutcome {
        outcome: Outcome {
            status,
            events: stop.event.into_iter().collect(),
            progress: stop.progress,
        },
        wake_at: None,
    }
}

fn finish(
    s: &SnapshotSchedule,
    mut status: SnapshotScheduleStatus,
    ready: ConditionState,
    synced: ConditionState,
    progress: Progress,
    events: Vec<EngineEvent>,
    wake_at: Option<DateTime<Utc>>,
) -> ScheduleOutcome {
    status.common = common_with(
        s.status.as_ref().map(|st| &st.common),
        Some(&ready),
        &synced,
        progress,
        s.metadata.generation,
    );
    ScheduleOutcome {
        outcome: Outcome {
            status,
            events,
            progress,
        },
        wake_at,
    }
}

/// Reconciles one schedule at `clock.now()`. `luns` are the Lun objects
/// of the schedule's namespace (the controller's watch-fed store).
pub async fn reconcile(
    s: &SnapshotSchedule,
    array: &ArrayHandle,
    luns: &[Lun],
    clock: &dyn Clock,
) -> ScheduleOutcome {
    let now = clock.now();
    let status = s.status.clone().unwrap_or_default();
    if paused(&s.metadata) {
        let mut out = stopped(s, Stop::paused(), status);
        out.outcome.status.common.observed_generation = paused_generation(
            s.status.as_ref().map(|st| &st.common),
            s.metadata.generation,
        );
        return out;
    }
    let checked = match check(s, array) {
        Ok(c) => c,
        Err(invalid) => return stopped(s, Stop::invalid(&invalid), status),
    };
    let (selected, missing) = match select(s, &checked, luns) {
        Ok(x) => x,
        Err(invalid) => return stopped(s, Stop::invalid(&invalid), status),
    };
    let (native, why) = mode_of(s, &checked, array);
    let mut status = status;
    status.mode = Some(if native { MODE_NATIVE } else { MODE_OPERATOR }.to_string());
    status.mode_reason = Some(why);
    status.lun_count = i32::try_from(selected.len()).unwrap_or(i32::MAX);
    if native {
        native_mode(s, &checked, &selected, &missing, array, now, status).await
    } else {
        operator_mode(s, &checked, &selected, &missing, array, now, status).await
    }
}

fn manage(s: &SnapshotSchedule) -> bool {
    s.spec.management_policy == ManagementPolicy::Manage
}

/// The mark of a listed snapshot, when it is this schedule's.
fn own_mark(snap: &ObservedSnapshot, uid: &str, descriptions: bool) -> Option<Mark> {
    let mark = if descriptions {
        Mark::from_description(&snap.description)
    } else {
        Mark::from_snapshot_name(&snap.name)
    };
    mark.filter(|m| m.is_owned_by(uid))
}

/// Removes the native schedules this object programmed on LUNs for which
/// `keep` is false; returns the entries still programmed.
async fn remove_native(
    s: &SnapshotSchedule,
    array: &ArrayHandle,
    keep: impl Fn(&LunSnapshots) -> bool,
    events: &mut Vec<EngineEvent>,
) -> Result<Vec<LunSnapshots>, Stop> {
    let mut still = Vec::new();
    for entry in s.status.iter().flat_map(|st| st.snapshots.iter()) {
        if !entry.native_schedule {
            continue;
        }
        let Some(id) = entry.lun_id.as_deref() else {
            continue;
        };
        if keep(entry) || !manage(s) {
            still.push(entry.clone());
            continue;
        }
        if array.dry_run.is_none()
            && let Err(e) = array.backend.delete_native_schedule(id).await
        {
            return Err(Stop::array(&e, "RemoveNativeSchedule", array));
        }
        written(
            events,
            array,
            EngineEvent::normal(
                schedule_event::NATIVE_SCHEDULE_REMOVED,
                "RemoveNativeSchedule",
                format!(
                    "removed the array's native snapshot schedule of Lun {} (LUN {id})",
                    entry.lun
                ),
            ),
        );
    }
    Ok(still)
}

/// The Event of a write that succeeded, or that a dry run recorded instead
/// of making.
fn written(events: &mut Vec<EngineEvent>, array: &ArrayHandle, event: EngineEvent) {
    if let Some(dry) = &array.dry_run {
        dry.record(event.reason, event.action, event.note.clone());
    }
    events.push(event);
}

/// The ids of the selected LUNs the array has: a LUN a dry run would
/// create has no snapshots to list.
fn listable(selected: &[Selected], array: &ArrayHandle) -> Vec<String> {
    selected
        .iter()
        .map(|l| l.id.clone())
        .filter(|id| array.dry_run.is_none() || !DryRun::is_planned(id))
        .collect()
}

fn waiting_sentence(missing: &[String]) -> String {
    format!("waiting for the selected Luns: {}", missing.join("; "))
}

#[allow(clippy::too_many_arguments)]
async fn operator_mode(
    s: &SnapshotSchedule,
    checked: &Checked,
    selected: &[Selected],
    missing: &[String],
    array: &ArrayHandle,
    now: DateTime<Utc>,
    mut status: SnapshotScheduleStatus,
) -> ScheduleOutcome {
    let mut events = Vec::new();
    // Leaving native mode (suspended, or a spec that no longer fits):
    // the native schedules this object programmed go first.
    if let Err(stop) = remove_native(s, array, |_| false, &mut events).await {
        return with_events(stopped(s, stop, status), events);
    }
    let features = array.backend.snapshot_features();
    let uid = s.uid().unwrap_or_default();
    let ids = listable(selected, array);
    let listed = match array.backend.list_snapshots(&ids).await {
        Ok(l) => l,
        Err(e) => {
            return with_events(
                stopped(s, Stop::array(&e, "ListSnapshots", array), status),
                events,
            );
        }
    };
    let mut own: BTreeMap<String, Vec<(ObservedSnapshot, Mark)>> = BTreeMap::new();
    for snap in listed {
        if let Some(mark) = own_mark(&snap, &uid, features.descriptions) {
            own.entry(snap.lun_id.clone())
                .or_default()
                .push((snap, mark));
        }
    }
    let taken: BTreeSet<DateTime<Utc>> = own.values().flatten().map(|(_, m)| m.at).collect();
    let created = s
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(from_time)
        .unwrap_or(now);
    let decision = schedule::decide(
        &checked.cron,
        &RunState {
            last_handled: status.last_schedule_time.as_ref().and_then(from_time),
            created,
            taken: &taken,
            deadline: checked.deadline,
            // A run with no LUN to snapshot is skipped, not missed: a LUN
            // that joins later starts at the next due time rather than
            // inheriting the runs before it.
            suspended: s.spec.suspend || selected.is_empty(),
        },
        now,
    );
    let mut failure: Option<Stop> = None;
    let settings = s.spec.snapshot.clone().unwrap_or_default();
    let mut observe_notes = Vec::new();
    if let Some(at) = decision.take {
        for lun in selected {
            let mine = own.entry(lun.id.clone()).or_default();
            if mine.iter().any(|(_, m)| m.at == at) {
                continue;
            }
            if !manage(s) {
                observe_notes.push(lun.name.clone());
                continue;
            }
            let mark = Mark {
                namespace: s.namespace().unwrap_or_default(),
                name: s.name_any(),
                uid: uid.clone(),
                at,
            };
            let request = SnapshotRequest {
                name: mark.snapshot_name(),
                description: mark.describe(settings.description.as_deref()),
                locked: settings.locked,
                app_consistent: settings.app_consistent,
            };
            let taken = match &array.dry_run {
                Some(dry) => Ok(dry.new_id()),
                None => array.backend.take_snapshot(&lun.id, &request).await,
            };
            match taken {
                Ok(id) => {
                    written(
                        &mut events,
                        array,
                        EngineEvent::normal(
                            schedule_event::SNAPSHOT_TAKEN,
                            "TakeSnapshot",
                            format!(
                                "took snapshot {id} of Lun {} for the run due at {}",
                                lun.name,
                                at.to_rfc3339()
                            ),
                        ),
                    );
                    mine.push((
                        ObservedSnapshot {
                            id,
                            lun_id: lun.id.clone(),
                            name: request.name,
                            description: request.description,
                            created: Some(now.timestamp()),
                            locked: settings.locked,
                            needed_by: None,
                        },
                        mark,
                    ));
                }
                Err(e) => {
                    failure.get_or_insert_with(|| {
                        naming(Stop::array(&e, "TakeSnapshot", array), &lun.name)
                    });
                }
            }
        }
    }
    // Retention: only the selected LUNs (a LUN that left the selection
    // keeps its snapshots), never while suspended, never under Observe.
    let mut kept_past_retention = 0usize;
    if !s.spec.suspend {
        for lun in selected {
            let Some(mine) = own.get_mut(&lun.id) else {
                continue;
            };
            let candidates: Vec<OwnSnapshot> = mine
                .iter()
                .map(|(snap, mark)| OwnSnapshot {
                    id: snap.id.clone(),
                    at: mark.at,
                    locked: snap.locked,
                    needed_by: snap.needed_by.clone(),
                })
                .collect();
            let pruning = schedule::retention(&candidates, &checked.retention, now);
            kept_past_retention += pruning.kept.len();
            if !manage(s) {
                continue;
            }
            for id in pruning.prune {
                let pruned = match &array.dry_run {
                    Some(_) => Ok(()),
                    None => array.backend.delete_snapshot(&id).await,
                };
                match pruned {
                    Ok(()) => {
                        let at = mine
                            .iter()
                            .find(|(snap, _)| snap.id == id)
                            .map(|(_, m)| m.at.to_rfc3339())
                            .unwrap_or_default();
                        mine.retain(|(snap, _)| snap.id != id);
                        written(
                            &mut events,
                            array,
                            EngineEvent::normal(
                                schedule_event::SNAPSHOT_PRUNED,
                                "PruneSnapshot",
                                format!(
                                    "pruned snapshot {id} of Lun {} (taken for {at}) by spec.retention",
                                    lun.name
                                ),
                            ),
                        );
                    }
                    Err(e) => {
                        failure.get_or_insert_with(|| {
                            naming(Stop::array(&e, "PruneSnapshot", array), &lun.name)
                        });
                    }
                }
            }
        }
    }
    status.snapshots = selected
        .iter()
        .map(|lun| {
            let mine = own.get(&lun.id).map(Vec::as_slice).unwrap_or_default();
            LunSnapshots {
                lun: lun.name.clone(),
                lun_id: Some(lun.id.clone()),
                native_schedule: false,
                count: i32::try_from(mine.len()).unwrap_or(i32::MAX),
                newest_id: mine
                    .iter()
                    .max_by_key(|(_, m)| m.at)
                    .map(|(snap, _)| snap.id.clone()),
            }
        })
        .collect();
    let newest = selected
        .iter()
        .filter_map(|l| own.get(&l.id))
        .flatten()
        .map(|(_, m)| m.at)
        .max();
    if let Some(newest) = newest {
        status.last_snapshot_time = to_time(newest);
    }
    status.next_snapshot_time = if s.spec.suspend {
        None
    } else {
        decision.next.and_then(to_time)
    };
    if let Some(stop) = failure {
        // The run is not recorded as handled: the next pass (after the
        // backoff) completes it for the LUNs that lack it, within the
        // deadline, and counts nothing twice.
        return with_events(stopped(s, stop, status), events);
    }
    if decision.missed > 0 {
        events.push(EngineEvent::warning(
            schedule_event::MISSED_RUN,
            "Schedule",
            format!(
                "{} run(s) due before {} were not taken (operator down or array unreachable, or later than spec.startingDeadline); counted in status.missedRuns",
                decision.missed,
                decision
                    .handled
                    .map(|h| h.to_rfc3339())
                    .unwrap_or_default()
            ),
        ));
    }
    status.missed_runs += i64::try_from(decision.missed).unwrap_or(i64::MAX);
    status.last_schedule_time = decision
        .handled
        .and_then(to_time)
        .or(status.last_schedule_time);
    let synced = if manage(s) {
        ConditionState::yes(
            synced_reason::RECONCILE_SUCCESS,
            "snapshots are taken and pruned on schedule",
        )
    } else if observe_notes.is_empty() {
        ConditionState::yes(
            synced_reason::RECONCILE_SUCCESS,
            "managementPolicy is Observe: the operator never takes or prunes snapshots",
        )
    } else {
        ConditionState::yes(
            synced_reason::RECONCILE_SUCCESS,
            format!(
                "managementPolicy is Observe: the due run was not taken for Lun(s) {}",
                observe_notes.join(", ")
            ),
        )
    };
    let wake_at = if s.spec.suspend { None } else { decision.next };
    if !missing.is_empty() {
        let ready = ConditionState::no(ready_reason::CREATING, waiting_sentence(missing));
        return finish(s, status, ready, synced, Progress::Waiting, events, wake_at);
    }
    let kept = if kept_past_retention > 0 {
        format!(
            "; {kept_past_retention} snapshot(s) past retention are kept because they are locked or still needed"
        )
    } else {
        String::new()
    };
    let ready = if s.spec.suspend {
        ConditionState::yes(
            ready_reason::AVAILABLE,
            "spec.suspend is true: no snapshot is taken or pruned",
        )
    } else {
        ConditionState::yes(
            ready_reason::AVAILABLE,
            format!(
                "snapshots of {} Lun(s) on schedule {:?} ({}){kept}",
                selected.len(),
                s.spec.schedule,
                s.spec.time_zone
            ),
        )
    };
    finish(
        s,
        status,
        ready,
        synced,
        Progress::Converged,
        events,
        wake_at,
    )
}

/// Names the Lun an array error is about, in the condition and the Event.
fn naming(mut stop: Stop, lun: &str) -> Stop {
    stop.synced.message = format!("Lun {lun}: {}", stop.synced.message);
    if let Some(e) = stop.event.as_mut() {
        e.note = format!("Lun {lun}: {}", e.note);
    }
    stop
}

fn with_events(mut out: ScheduleOutcome, mut events: Vec<EngineEvent>) -> ScheduleOutcome {
    events.append(&mut out.outcome.events);
    out.outcome.events = events;
    out
}

#[allow(clippy::too_many_arguments)]
async fn native_mode(
    s: &SnapshotSchedule,
    checked: &Checked,
    selected: &[Selected],
    missing: &[String],
    array: &ArrayHandle,
    now: DateTime<Utc>,
    mut status: SnapshotScheduleStatus,
) -> ScheduleOutcome {
    let mut events = Vec::new();
    let selected_ids: BTreeSet<&str> = selected.iter().map(|l| l.id.as_str()).collect();
    // A LUN that left the selection loses the native schedule this object
    // programmed on it; its snapshots stay.
    let still = match remove_native(
        s,
        array,
        |e| {
            e.lun_id
                .as_deref()
                .is_some_and(|id| selected_ids.contains(id))
        },
        &mut events,
    )
    .await
    {
        Ok(still) => still,
        Err(stop) => return with_events(stopped(s, stop, status), events),
    };
    let ours: BTreeSet<String> = still.iter().filter_map(|e| e.lun_id.clone()).collect();
    let desired = NativeSchedule {
        cron: checked.cron.native_cron().unwrap_or_default(),
        keep_max: checked
            .retention
            .max_count
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1),
    };
    let mut programmed: BTreeSet<String> = BTreeSet::new();
    let mut conflicts = Vec::new();
    let mut drifted = Vec::new();
    for lun in selected {
        let read = if array.dry_run.is_some() && DryRun::is_planned(&lun.id) {
            // A LUN the dry run would create has no schedule yet.
            Ok(None)
        } else {
            array.backend.native_schedule(&lun.id).await
        };
        let observed = match read {
            Ok(o) => o,
            Err(e) => {
                return with_events(
                    stopped(s, Stop::array(&e, "ReadNativeSchedule", array), status),
                    events,
                );
            }
        };
        let is_ours = ours.contains(&lun.id);
        let action = match &observed {
            Some(o) if *o == desired => {
                programmed.insert(lun.id.clone());
                continue;
            }
            Some(o) if !is_ours => {
                conflicts.push(format!(
                    "Lun {} already has a native snapshot schedule (cron_time {:?}, keep_max {}) that this object did not program",
                    lun.name, o.cron, o.keep_max
                ));
                continue;
            }
            Some(o) => {
                if !manage(s) {
                    drifted.push(lun.name.clone());
                    programmed.insert(lun.id.clone());
                    continue;
                }
                // The API has no update: delete, then create.
                if array.dry_run.is_none()
                    && let Err(e) = array.backend.delete_native_schedule(&lun.id).await
                {
                    return with_events(
                        stopped(s, Stop::array(&e, "ReplaceNativeSchedule", array), status),
                        events,
                    );
                }
                format!(
                    "replaced the native snapshot schedule of Lun {} (cron_time {:?}, keep_max {} → {:?}, {})",
                    lun.name, o.cron, o.keep_max, desired.cron, desired.keep_max
                )
            }
            None => {
                if !manage(s) {
                    drifted.push(lun.name.clone());
                    continue;
                }
                format!(
                    "programmed the native snapshot schedule of Lun {} (cron_time {:?}, keep_max {})",
                    lun.name, desired.cron, desired.keep_max
                )
            }
        };
        if array.dry_run.is_none()
            && let Err(e) = array.backend.set_native_schedule(&lun.id, &desired).await
        {
            return with_events(
                stopped(s, Stop::array(&e, "SetNativeSchedule", array), status),
                events,
            );
        }
        programmed.insert(lun.id.clone());
        written(
            &mut events,
            array,
            EngineEvent::normal(
                schedule_event::NATIVE_SCHEDULE_SET,
                "SetNativeSchedule",
                action,
            ),
        );
    }
    let ids = listable(selected, array);
    let listed = match array.backend.list_snapshots(&ids).await {
        Ok(l) => l,
        Err(e) => {
            return with_events(
                stopped(s, Stop::array(&e, "ListSnapshots", array), status),
                events,
            );
        }
    };
    status.snapshots = selected
        .iter()
        .map(|lun| {
            let of_lun: Vec<&ObservedSnapshot> =
                listed.iter().filter(|x| x.lun_id == lun.id).collect();
            LunSnapshots {
                lun: lun.name.clone(),
                lun_id: Some(lun.id.clone()),
                native_schedule: programmed.contains(&lun.id),
                count: i32::try_from(of_lun.len()).unwrap_or(i32::MAX),
                newest_id: of_lun
                    .iter()
                    .max_by_key(|x| x.created)
                    .map(|x| x.id.clone()),
            }
        })
        .collect();
    if let Some(newest) = listed
        .iter()
        .filter_map(|x| x.created)
        .max()
        .and_then(|c| Utc.timestamp_opt(c, 0).single())
    {
        status.last_snapshot_time = to_time(newest);
    }
    status.next_snapshot_time = checked.cron.next_after(now).and_then(to_time);
    if !conflicts.is_empty() {
        let stop_ready = ConditionState::no(ready_reason::UNAVAILABLE, conflicts.join("; "));
        let synced = ConditionState::no(
            synced_reason::CONFLICT,
            format!(
                "{}; a native schedule is not replaced silently: remove it on the array, or take that Lun out of this schedule",
                conflicts.join("; ")
            ),
        );
        return finish(
            s,
            status,
            stop_ready,
            synced,
            Progress::Stalled,
            events,
            None,
        );
    }
    let synced = if manage(s) {
        ConditionState::yes(
            synced_reason::RECONCILE_SUCCESS,
            "the array's native schedules match the spec",
        )
    } else {
        ConditionState::yes(
            synced_reason::RECONCILE_SUCCESS,
            "managementPolicy is Observe: the operator never programs the array",
        )
    };
    if !missing.is_empty() {
        let ready = ConditionState::no(ready_reason::CREATING, waiting_sentence(missing));
        return finish(s, status, ready, synced, Progress::Waiting, events, None);
    }
    let ready = if drifted.is_empty() {
        ConditionState::yes(
            ready_reason::AVAILABLE,
            format!(
                "the array's native schedule runs on {} Lun(s) (cron_time {:?}, keep_max {})",
                selected.len(),
                desired.cron,
                desired.keep_max
            ),
        )
    } else {
        ConditionState::no(
            ready_reason::DRIFTED,
            format!(
                "the native snapshot schedule of Lun(s) {} differs from the spec (managementPolicy is Observe)",
                drifted.join(", ")
            ),
        )
    };
    finish(s, status, ready, synced, Progress::Converged, events, None)
}

/// Deletion: snapshots already taken are always left in place; the native
/// schedules this object programmed are removed, unless
/// `deletionPolicy: Retain`.
pub async fn cleanup(
    s: &SnapshotSchedule,
    array: Option<&ArrayHandle>,
) -> Cleanup<SnapshotScheduleStatus> {
    let status = s.status.clone().unwrap_or_default();
    let programmed = status.snapshots.iter().any(|e| e.native_schedule);
    let retain = s.spec.deletion_policy == Some(DeletionPolicy::Retain);
    if !programmed || retain || !manage(s) {
        return Cleanup::Done { events: Vec::new() };
    }
    if paused(&s.metadata) {
        return Cleanup::Held(stopped(s, Stop::paused_deletion(), status).outcome);
    }
    let Some(array) = array else {
        return Cleanup::Held(
            stopped(
                s,
                Stop::no_array_for_deletion("native snapshot schedule"),
                status,
            )
            .outcome,
        );
    };
    let mut events = Vec::new();
    match remove_native(s, array, |_| false, &mut events).await {
        Ok(_) => Cleanup::Done { events },
        Err(stop) => Cleanup::Held(with_events(stopped(s, stop, status), events).outcome),
    }
}
