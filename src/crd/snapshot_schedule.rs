//! `SnapshotSchedule`: periodic LUN snapshots with retention.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cron;
use super::shared::{
    ArrayRef, CRON_PATTERN, CommonStatus, DURATION_PATTERN, DeletionPolicy, ManagementPolicy,
    TIME_ZONE_PATTERN,
};

/// Takes snapshots of a set of LUNs on a cron schedule and prunes them by
/// count and age. On Synology the operator takes them itself and marks them
/// in the description, so it only ever prunes its own; on NGXStorage it
/// programs the array's native schedule when the spec can be expressed that
/// way, and otherwise runs like on Synology.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "array-operator.io",
    version = "v1alpha1",
    kind = "SnapshotSchedule",
    namespaced,
    status = "SnapshotScheduleStatus",
    shortname = "snapsched",
    category = "arrayop",
    printcolumn = r#"{"name":"SCHEDULE","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"LUNS","type":"integer","jsonPath":".status.lunCount"}"#,
    printcolumn = r#"{"name":"LAST","type":"date","jsonPath":".status.lastSnapshotTime"}"#,
    printcolumn = r#"{"name":"NEXT","type":"date","jsonPath":".status.nextSnapshotTime"}"#,
    printcolumn = r#"{"name":"SUSPENDED","type":"boolean","jsonPath":".spec.suspend"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.lunSelector) != has(self.luns)").message("set exactly one of spec.lunSelector or spec.luns").field_path(".luns"))]
pub struct SnapshotScheduleSpec {
    /// The StorageArray the LUNs live on.
    pub array_ref: ArrayRef,
    /// When to take snapshots: a 5-field cron expression (minute hour
    /// day-of-month month day-of-week) or `@hourly`, `@daily`, `@weekly`.
    #[schemars(regex(pattern = CRON_PATTERN), length(min = 1, max = 128))]
    #[x_kube(
        validation = super::formats::cron_shape("spec.schedule"),
        validation = cron::minute_rule(),
        validation = cron::hour_rule(),
        validation = cron::day_of_month_rule(),
        validation = cron::month_rule(),
        validation = cron::day_of_week_rule()
    )]
    pub schedule: String,
    /// IANA time zone the schedule is read in (`Europe/Istanbul`).
    #[serde(default = "default_time_zone")]
    #[schemars(regex(pattern = TIME_ZONE_PATTERN), length(min = 1, max = 64))]
    #[x_kube(validation = super::formats::time_zone("spec.timeZone"))]
    pub time_zone: String,
    /// Label selector over Lun objects in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lun_selector: Option<LabelSelector>,
    /// Names of Lun objects in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 256),
        inner(
            regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
            length(max = 253)
        )
    )]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub luns: Option<Vec<String>>,
    /// Which snapshots to keep.
    pub retention: Retention,
    /// Stop taking and pruning snapshots without deleting anything.
    #[serde(default)]
    pub suspend: bool,
    /// How late a missed run (operator down, array unreachable) may still
    /// be taken, as CronJob's `startingDeadlineSeconds` (default `1h`).
    /// Runs missed by more are counted in `status.missedRuns`, not taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = super::formats::duration("spec.startingDeadline"))]
    pub starting_deadline: Option<String>,
    /// Settings of each snapshot taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSettings>,
    /// `Manage` (default) or `Observe` (never take or prune; report only).
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// `Delete` removes the array's native schedule (NGXStorage) when this
    /// object is deleted; snapshots already taken are always kept. Unset:
    /// Delete for schedules the operator created, Retain for adopted ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// Retention: a snapshot is pruned when either limit is passed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.maxCount) || has(self.maxAge)").message("spec.retention needs maxCount, maxAge or both"))]
pub struct Retention {
    /// Keep at most this many snapshots per LUN, 1 to 512: NGXStorage native
    /// schedules keep at most 512, DSM at most 256 snapshots of a LUN, so a
    /// larger count could never be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 512))]
    pub max_count: Option<i32>,
    /// Prune snapshots older than this duration (`168h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = super::formats::duration("spec.retention.maxAge"))]
    pub max_age: Option<String>,
    /// Also prune this schedule's locked snapshots beyond retention. Off by
    /// default: a locked snapshot is kept until a person unlocks it.
    #[serde(default)]
    pub prune_locked: bool,
}

/// Settings of each snapshot taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSettings {
    /// Description stored with each snapshot (the operator adds its marker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub description: Option<String>,
    /// Lock snapshots against deletion by retention on the array side.
    #[serde(default)]
    pub locked: bool,
    /// Ask for application-consistent snapshots (Synology, when the
    /// initiator side supports it).
    #[serde(default)]
    pub app_consistent: bool,
}

/// What the operator observed and did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotScheduleStatus {
    /// Conditions, observedGeneration and externalId (NGX native schedule id).
    #[serde(flatten)]
    pub common: CommonStatus,
    /// When the last snapshot run happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_snapshot_time: Option<Time>,
    /// When the next run is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_snapshot_time: Option<Time>,
    /// The latest due time handled (taken, counted missed, or skipped while
    /// suspended): with the marks on the array's snapshots, what keeps a
    /// restart from taking a run twice or counting it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// Runs that were due but not taken (operator down, array unreachable).
    #[serde(default)]
    pub missed_runs: i64,
    /// How many LUNs the schedule covers (for the LUNS column).
    #[serde(default)]
    pub lun_count: i32,
    /// How the schedule runs: `Operator` (the operator takes and prunes the
    /// snapshots) or `Native` (the array's own schedule does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Why the schedule runs in that mode, as a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_reason: Option<String>,
    /// Per-LUN snapshot state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<LunSnapshots>,
}

/// Snapshot state of one LUN.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LunSnapshots {
    /// The Lun object.
    pub lun: String,
    /// The LUN's array-side id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lun_id: Option<String>,
    /// True when the operator programmed the array's native schedule on
    /// this LUN (NGXStorage): it removes it when the LUN leaves the
    /// selection or the schedule is deleted.
    #[serde(default)]
    pub native_schedule: bool,
    /// How many of this schedule's snapshots exist (Native mode: how many
    /// snapshots the LUN has).
    #[serde(default)]
    pub count: i32,
    /// Array-side id of the newest one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_id: Option<String>,
}
