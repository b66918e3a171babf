//! The pure core of SnapshotSchedule (and of ReplicationPlan's cron
//! trigger): parsing a cron schedule in a time zone, which due time to act
//! on and how many were missed, which snapshots retention prunes, and the
//! mark by which the operator recognises its own snapshots. No I/O and no
//! clock: every function takes `now`.
//!
//! Cron and time zones are the `croner` and `chrono-tz` crates'. croner
//! handles daylight saving time as Vixie cron does: a fixed-time job whose
//! wall-clock time falls in a skipped hour runs once, just after the gap;
//! one in a repeated hour runs once, on the first pass.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// How many due times the missed-run count walks at most (a per-minute
/// schedule missed for a week); beyond it the count says "at least".
pub const MAX_COUNTED_RUNS: u64 = 10_080;

/// Why a schedule cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression is not a valid 5-field schedule.
    #[error(
        "{schedule:?} is not a valid 5-field cron schedule or @hourly/@daily/@weekly: {reason}"
    )]
    Cron {
        /// The expression.
        schedule: String,
        /// What the cron parser said.
        reason: String,
    },
    /// The time zone is not an IANA name.
    #[error("{0:?} is not an IANA time zone name (for example Europe/Istanbul)")]
    TimeZone(String),
    /// The schedule never fires (February 30th).
    #[error("{0:?} has no due time in the next year (a day that does not exist?)")]
    NeverDue(String),
}

/// A parsed schedule in its time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    cron: Cron,
    tz: Tz,
    text: String,
}

/// Parses `schedule` (5 fields, or `@hourly`, `@daily`, `@weekly`) read in
/// `time_zone`.
pub fn parse(schedule: &str, time_zone: &str) -> Result<CronSchedule, ScheduleError> {
    let text = schedule.trim();
    let cron_error = |reason: String| ScheduleError::Cron {
        schedule: schedule.to_string(),
        reason,
    };
    if text.starts_with('@') && !matches!(text, "@hourly" | "@daily" | "@weekly") {
        return Err(cron_error(
            "only @hourly, @daily and @weekly are accepted".into(),
        ));
    }
    if !text.starts_with('@') && text.split_whitespace().count() != 5 {
        return Err(cron_error("it needs exactly five fields".into()));
    }
    let cron = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| cron_error(e.to_string()))?;
    let tz: Tz = time_zone
        .parse()
        .map_err(|_| ScheduleError::TimeZone(time_zone.to_string()))?;
    let parsed = CronSchedule {
        cron,
        tz,
        text: text.to_string(),
    };
    // A pattern in range that never matches (31 2 30 2 *) is refused here
    // rather than never running without a word.
    let probe = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single();
    if probe.and_then(|p| parsed.next_after(p)).is_none() {
        return Err(ScheduleError::NeverDue(schedule.to_string()));
    }
    Ok(parsed)
}

impl CronSchedule {
    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The first due time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            // croner searches a year ahead at most.
            .filter(|d| *d > t)
    }

    /// The last due time at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
            .filter(|d| *d <= t)
    }

    /// The due times in `(after, upto]`, at most `limit` of them.
    pub fn due_between(
        &self,
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
        limit: u64,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut cursor = after;
        while (out.len() as u64) < limit {
            match self.next_after(cursor) {
                Some(t) if t <= upto => {
                    out.push(t);
                    cursor = t;
                }
                _ => break,
            }
        }
        out
    }

    /// The schedule as NGXStorage's native `cron_time` (numbers, `*`,
    /// `,` and `-` only; the shortcuts spelled out), when it can be written
    /// that way.
    pub fn native_cron(&self) -> Option<String> {
        let expanded = match self.text.as_str() {
            "@hourly" => "0 * * * *".to_string(),
            "@daily" => "0 0 * * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            other => other.to_string(),
        };
        let plain = expanded
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '*' | ',' | '-' | ' '));
        plain.then_some(expanded)
    }
}

/// What to do at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDecision {
    /// The due time to take snapshots for now (each selected LUN that has
    /// no snapshot of this schedule for it yet).
    pub take: Option<DateTime<Utc>>,
    /// The latest due time handled (taken, missed or skipped): the new
    /// `status.lastScheduleTime`.
    pub handled: Option<DateTime<Utc>>,
    /// Due times newly counted as missed.
    pub missed: u64,
    /// The next due time after `now`.
    pub next: Option<DateTime<Utc>>,
}

/// The inputs of [`decide`].
#[derive(Clone, Debug)]
pub struct RunState<'a> {
    /// `status.lastScheduleTime`: the latest due time already handled;
    /// `None` for a new schedule.
    pub last_handled: Option<DateTime<Utc>>,
    /// When the object was created: due times before it are not runs.
    pub created: DateTime<Utc>,
    /// Scheduled times of this schedule's own snapshots on the array (from
    /// their marks), over every LUN.
    pub taken: &'a BTreeSet<DateTime<Utc>>,
    /// `spec.startingDeadline`.
    pub deadline: Duration,
    /// `spec.suspend`.
    pub suspended: bool,
}

/// Which due time to act on at `now`, and how many were missed, in the way
/// of CronJob's `startingDeadlineSeconds`: only the latest due time is
/// ever taken late, and only within the deadline; every earlier due time
/// since the last one handled that has no snapshot is missed. Suspended
/// runs are skipped, not missed. What was already taken is read from the
/// array's marks, so a restart after the snapshot but before the status
/// write neither repeats the run nor counts it missed.
pub fn decide(schedule: &CronSchedule, state: &RunState<'_>, now: DateTime<Utc>) -> RunDecision {
    let next = schedule.next_after(now);
    let anchor = state
        .last_handled
        .unwrap_or(state.created)
        .max(state.created);
    let latest = schedule.latest_at_or_before(now).filter(|t| *t > anchor);
    let Some(latest) = latest else {
        return RunDecision {
            take: None,
            handled: state.last_handled,
            missed: 0,
            next,
        };
    };
    if state.suspended {
        return RunDecision {
            take: None,
            handled: Some(latest),
            missed: 0,
            next,
        };
    }
    let earlier = schedule.due_between(anchor, latest, MAX_COUNTED_RUNS);
    let mut missed = earlier
        .iter()
        .filter(|t| **t < latest && !state.taken.contains(t))
        .count() as u64;
    let late = now.signed_duration_since(latest);
    let in_time = late
        .to_std()
        .map(|late| late <= state.deadline)
        .unwrap_or(true);
    let take = if in_time {
        Some(latest)
    } else {
        if !state.taken.contains(&latest) {
            missed += 1;
        }
        None
    };
    RunDecision {
        take,
        handled: Some(latest),
        missed,
        next,
    }
}

/// One of this schedule's own snapshots, as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnSnapshot {
    /// The array's id.
    pub id: String,
    /// The due time it was taken for (from its mark).
    pub at: DateTime<Utc>,
    /// Locked on the array.
    pub locked: bool,
    /// What on the array still needs it (a clone, a replication), if
    /// anything.
    pub needed_by: Option<String>,
}

/// Retention limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionRule {
    /// Keep at most this many.
    pub max_count: Option<usize>,
    /// Prune those older than this.
    pub max_age: Option<Duration>,
    /// Prune locked ones too.
    pub prune_locked: bool,
}

/// Why a snapshot past retention is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The snapshot id.
    pub id: String,
    /// Why, as a phrase.
    pub why: String,
}

/// What retention decides for one LUN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruning {
    /// Ids to delete, oldest first.
    pub prune: Vec<String>,
    /// Past retention but kept (locked, still needed).
    pub kept: Vec<Kept>,
}

/// Which of one LUN's own snapshots retention prunes at `now`: those
/// beyond the `max_count` newest, and those older than `max_age`; never a
/// locked one (unless `prune_locked`), never one the array says is still
/// needed. Only the schedule's own snapshots are ever passed in.
pub fn retention(own: &[OwnSnapshot], rule: &RetentionRule, now: DateTime<Utc>) -> Pruning {
    let mut sorted: Vec<&OwnSnapshot> = own.iter().collect();
    sorted.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let mut out = Pruning::default();
    for (index, snap) in sorted.iter().enumerate() {
        let over_count = rule.max_count.is_some_and(|max| index >= max);
        let over_age = rule.max_age.is_some_and(|max| {
            now.signed_duration_since(snap.at)
                .to_std()
                .is_ok_and(|age| age > max)
        });
        if !(over_count || over_age) {
            continue;
        }
        if let Some(by) = &snap.needed_by {
            out.kept.push(Kept {
                id: snap.id.clone(),
                why: format!("still needed by {by}"),
            });
        } else if snap.locked && !rule.prune_locked {
            out.kept.push(Kept {
                id: snap.id.clone(),
                why: "locked (set spec.retention.pruneLocked to prune locked snapshots)".into(),
            });
        } else {
            out.prune.push(snap.id.clone());
        }
    }
    out.prune.reverse();
    out
}

/// The identity a schedule stamps on each snapshot it takes, and the due
/// time it took it for. The UID makes a copied schedule (same name, new
/// object) no owner of the original's snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    /// The schedule's namespace.
    pub namespace: String,
    /// The schedule's name.
    pub name: String,
    /// The schedule's UID.
    pub uid: String,
    /// The due time.
    pub at: DateTime<Utc>,
}

const DESCRIPTION_OPEN: &str = "[array-operator snapsched=";
const NAME_PREFIX: &str = "snapsched_";

impl Mark {
    /// True when the mark is `uid`'s.
    pub fn is_owned_by(&self, uid: &str) -> bool {
        !uid.is_empty() && self.uid == uid
    }

    /// A description carrying the mark after the user's text (DSM).
    pub fn describe(&self, user: Option<&str>) -> String {
        let mark = format!(
            "{DESCRIPTION_OPEN}{}/{} uid={} at={}]",
            self.namespace,
            self.name,
            self.uid,
            self.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        match user.map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => format!("{u} {mark}"),
            None => mark,
        }
    }

    /// The mark in a description, if it has one.
    pub fn from_description(description: &str) -> Option<Mark> {
        let start = description.rfind(DESCRIPTION_OPEN)?;
        let rest = description[start + DESCRIPTION_OPEN.len()..].strip_suffix(']')?;
        let mut parts = rest.split(' ');
        let (namespace, name) = parts.next()?.split_once('/')?;
        let uid = parts.next()?.strip_prefix("uid=")?;
        let at = parts.next()?.strip_prefix("at=")?;
        if parts.next().is_some() {
            return None;
        }
        Some(Mark {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid: uid.to_string(),
            at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        })
    }

    /// A snapshot name carrying the mark (NGXStorage names allow letters,
    /// digits, `_` and `-`; Kubernetes names have no `_`, so it separates):
    /// `snapsched_<namespace>_<name>_<uid>_<yyyymmddThhmmssZ>`, dots in the
    /// name written as `-`.
    pub fn snapshot_name(&self) -> String {
        format!(
            "{NAME_PREFIX}{}_{}_{}_{}",
            self.namespace.replace('.', "-"),
            self.name.replace('.', "-"),
            self.uid,
            self.at.format("%Y%m%dT%H%M%SZ")
        )
    }

    /// The mark in a snapshot name, if it has one. The namespace and name
    /// read back with dots as `-`; ownership is by UID.
    pub fn from_snapshot_name(name: &str) -> Option<Mark> {
        let rest = name.strip_prefix(NAME_PREFIX)?;
        let parts: Vec<&str> = rest.split('_').collect();
        let [namespace, obj, uid, at] = parts.as_slice() else {
            return None;
        };
        let at = chrono::NaiveDateTime::parse_from_str(at, "%Y%m%dT%H%M%SZ").ok()?;
        Some(Mark {
            namespace: namespace.to_string(),
            name: obj.to_string(),
            uid: uid.to_string(),
            at: Utc.from_utc_datetime(&at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid")
    }

    fn state(last: Option<DateTime<Utc>>, taken: &BTreeSet<DateTime<Utc>>) -> RunState<'_> {
        RunState {
            last_handled: last,
            created: utc(2026, 1, 1, 0, 0),
            taken,
            deadline: Duration::from_secs(3600),
            suspended: false,
        }
    }

    #[test]
    fn bad_schedules_are_refused_naming_the_field() {
        for bad in [
            "99 * * * *",
            "* 24 * * *",
            "@yearly",
            "* * * *",
            "0 0 * * * 2026",
        ] {
            let e = parse(bad, "UTC").expect_err(bad);
            assert!(matches!(e, ScheduleError::Cron { .. }), "{e}");
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert!(matches!(
            parse("31 2 30 2 *", "UTC"),
            Err(ScheduleError::NeverDue(_))
        ));
        assert!(matches!(
            parse("@daily", "Mars/Olympus"),
            Err(ScheduleError::TimeZone(_))
        ));
        for good in [
            "*/15 1-5 * * MON-FRI",
            "@hourly",
            "@daily",
            "@weekly",
            "0 0 ? * 7",
        ] {
            parse(good, "Europe/Istanbul").expect(good);
        }
    }

    /// Europe/Berlin springs forward on 2026-03-29 (02:00 → 03:00) and
    /// falls back on 2026-10-25 (03:00 → 02:00).
    #[test]
    fn a_skipped_hour_runs_once_and_a_repeated_hour_runs_once() {
        let s = parse("30 2 * * *", "Europe/Berlin").expect("parse");
        let spring = s.due_between(utc(2026, 3, 27, 12, 0), utc(2026, 3, 31, 0, 0), 100);
        // 28th 02:30 CET = 01:30Z; 29th: no 02:30, runs once just after the
        // gap (03:00 CEST = 01:00Z); 30th 02:30 CEST = 00:30Z.
        assert_eq!(
            spring,
            vec![
                utc(2026, 3, 28, 1, 30),
                utc(2026, 3, 29, 1, 0),
                utc(2026, 3, 30, 0, 30)
            ]
        );
        let autumn = s.due_between(utc(2026, 10, 24, 12, 0), utc(2026, 10, 26, 12, 0), 100);
        // 25th: 02:30 happens twice (00:30Z CEST and 01:30Z CET): once.
        assert_eq!(
            autumn,
            vec![utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
        );
        // An hourly job keeps one run per real hour across the repeat.
        let hourly = parse("0 * * * *", "Europe/Berlin").expect("parse");
        let runs = hourly.due_between(utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 3, 30), 100);
        let unique: BTreeSet<_> = runs.iter().collect();
        assert_eq!(unique.len(), runs.len(), "no instant twice: {runs:?}");
    }

    #[test]
    fn the_due_run_is_taken_once_and_a_late_one_only_within_the_deadline() {
        let s = parse("0 * * * *", "UTC").expect("parse");
        let none = BTreeSet::new();
        let d = decide(
            &s,
            &state(Some(utc(2026, 5, 1, 9, 0)), &none),
            utc(2026, 5, 1, 10, 0),
        );
        assert_eq!(d.take, Some(utc(2026, 5, 1, 10, 0)));
        assert_eq!(d.missed, 0);
        assert_eq!(d.next, Some(utc(2026, 5, 1, 11, 0)));
        // Handled already: nothing.
        let d = decide(
            &s,
            &state(Some(utc(2026, 5, 1, 10, 0)), &none),
            utc(2026, 5, 1, 10, 20),
        );
        assert_eq!(d.take, None);
        // Down from 10:30 to 14:20: 11, 12 and 13 missed, 14:00 taken late.
        let d = decide(
            &s,
            &state(Some(utc(2026, 5, 1, 10, 0)), &none),
            utc(2026, 5, 1, 14, 20),
        );
        assert_eq!((d.take, d.missed), (Some(utc(2026, 5, 1, 14, 0)), 3));
        // Past the deadline: 14:00 is missed too.
        let mut late = state(Some(utc(2026, 5, 1, 10, 0)), &none);
        late.deadline = Duration::from_secs(600);
        let d = decide(&s, &late, utc(2026, 5, 1, 14, 20));
        assert_eq!((d.take, d.missed), (None, 4));
        assert_eq!(d.handled, Some(utc(2026, 5, 1, 14, 0)));
    }

    #[test]
    fn a_restart_reads_what_was_taken_from_the_marks() {
        let s = parse("0 * * * *", "UTC").expect("parse");
        // Status says 10:00; the array holds 11:00 and 12:00 (the status
        // writes were lost). At 12:05 the 12:00 run is completed for the
        // LUNs that lack it (the engine checks per LUN), nothing is missed.
        let taken: BTreeSet<_> = [utc(2026, 5, 1, 11, 0), utc(2026, 5, 1, 12, 0)].into();
        let d = decide(
            &s,
            &state(Some(utc(2026, 5, 1, 10, 0)), &taken),
            utc(2026, 5, 1, 12, 5),
        );
        assert_eq!((d.take, d.missed), (Some(utc(2026, 5, 1, 12, 0)), 0));
    }

    #[test]
    fn suspended_runs_are_skipped_not_missed_and_new_schedules_start_after_creation() {
        let s = parse("0 * * * *", "UTC").expect("parse");
        let none = BTreeSet::new();
        let mut st = state(Some(utc(2026, 5, 1, 10, 0)), &none);
        st.suspended = true;
        let d = decide(&s, &st, utc(2026, 5, 1, 15, 0));
        assert_eq!((d.take, d.missed), (None, 0));
        assert_eq!(d.handled, Some(utc(2026, 5, 1, 15, 0)));
        let mut fresh = state(None, &none);
        fresh.created = utc(2026, 5, 1, 10, 30);
        let d = decide(&s, &fresh, utc(2026, 5, 1, 10, 45));
        assert_eq!((d.take, d.missed), (None, 0));
        assert_eq!(d.next, Some(utc(2026, 5, 1, 11, 0)));
    }

    fn own(id: &str, at: DateTime<Utc>) -> OwnSnapshot {
        OwnSnapshot {
            id: id.into(),
            at,
            locked: false,
            needed_by: None,
        }
    }

    #[test]
    fn retention_by_count_and_age_spares_locked_and_needed_ones() {
        let now = utc(2026, 5, 10, 0, 0);
        let snaps: Vec<OwnSnapshot> = (1..=6)
            .map(|d| own(&format!("s{d}"), utc(2026, 5, d, 0, 0)))
            .collect();
        let by_count = RetentionRule {
            max_count: Some(4),
            ..RetentionRule::default()
        };
        assert_eq!(retention(&snaps, &by_count, now).prune, vec!["s1", "s2"]);
        let by_age = RetentionRule {
            max_age: Some(Duration::from_secs(6 * 86_400)),
            ..RetentionRule::default()
        };
        assert_eq!(
            retention(&snaps, &by_age, now).prune,
            vec!["s1", "s2", "s3"]
        );
        let mut guarded = snaps.clone();
        guarded[0].locked = true;
        guarded[1].needed_by = Some("a clone".into());
        let p = retention(&guarded, &by_count, now);
        assert!(p.prune.is_empty(), "{p:?}");
        assert_eq!(p.kept.len(), 2);
        let unlocking = RetentionRule {
            prune_locked: true,
            ..by_count
        };
        assert_eq!(retention(&guarded, &unlocking, now).prune, vec!["s1"]);
    }

    #[test]
    fn marks_round_trip_and_a_copied_schedule_is_no_owner() {
        let m = Mark {
            namespace: "prod".into(),
            name: "db.nightly".into(),
            uid: "0b6e4b8e-7d2a-4f39-9a55-3c1f1d2b9e01".into(),
            at: utc(2026, 11, 30, 2, 30),
        };
        let d = m.describe(Some("nightly backup"));
        assert!(d.starts_with("nightly backup ["), "{d}");
        assert_eq!(Mark::from_description(&d), Some(m.clone()));
        assert_eq!(
            Mark::from_description("Snapshot taken by [Synology API]"),
            None
        );
        let n = m.snapshot_name();
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{n}"
        );
        let back = Mark::from_snapshot_name(&n).expect("parses");
        assert_eq!((back.uid.as_str(), back.at), (m.uid.as_str(), m.at));
        assert!(back.is_owned_by(&m.uid));
        assert!(!back.is_owned_by("another-uid"));
        assert!(!back.is_owned_by(""));
    }

    #[test]
    fn only_plain_schedules_fit_the_native_ngx_schedule() {
        let fits = |s: &str| parse(s, "UTC").expect(s).native_cron();
        assert_eq!(fits("@daily").as_deref(), Some("0 0 * * *"));
        assert_eq!(fits("45 23 * * 6").as_deref(), Some("45 23 * * 6"));
        assert_eq!(fits("*/15 * * * *"), None);
        assert_eq!(fits("0 0 * * MON"), None);
    }
}
