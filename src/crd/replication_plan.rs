//! `ReplicationPlan`: a DSM Snapshot Replication plan, adopted by id and
//! driven by the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cron;
use super::shared::{ArrayRef, CRON_PATTERN, CommonStatus, ManagementPolicy, TIME_ZONE_PATTERN};

/// Pattern of `spec.planId`: a DSM Snapshot Replication plan id.
const PLAN_ID_PATTERN: &str = r"^[A-Za-z0-9_.:-]+$";

/// Drives an existing DSM Snapshot Replication plan: triggers syncs on a
/// schedule or on request and reports the plan's state. Plans are created
/// in DSM; deleting this object never deletes the plan (the DSM API offers
/// no call for it), so there is no deletionPolicy.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "array-operator.io",
    version = "v1alpha1",
    kind = "ReplicationPlan",
    namespaced,
    status = "ReplicationPlanStatus",
    shortname = "rplan",
    category = "arrayop",
    printcolumn = r#"{"name":"PLAN","type":"string","jsonPath":".spec.planId"}"#,
    printcolumn = r#"{"name":"ROLE","type":"string","jsonPath":".status.role"}"#,
    printcolumn = r#"{"name":"LAST-SYNC","type":"date","jsonPath":".status.lastSyncTime"}"#,
    printcolumn = r#"{"name":"RESULT","type":"string","jsonPath":".status.lastSyncResult"}"#,
    printcolumn = r#"{"name":"NEXT","type":"date","jsonPath":".status.nextSyncTime"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationPlanSpec {
    /// The StorageArray (Synology) the plan is defined on.
    pub array_ref: ArrayRef,
    /// The DSM plan id to adopt. Immutable.
    #[schemars(length(min = 1, max = 128), regex(pattern = PLAN_ID_PATTERN))]
    #[x_kube(
        validation = Rule::new("self == oldSelf").message("spec.planId is immutable: create another ReplicationPlan to drive another plan"),
        validation = super::formats::pattern("spec.planId", PLAN_ID_PATTERN, "a DSM plan id: letters, digits, '_', '.', ':' or '-'")
    )]
    pub plan_id: String,
    /// When to sync.
    pub trigger: ReplicationTrigger,
    /// Lock the snapshot each sync takes.
    #[serde(default)]
    pub lock_snapshot: bool,
    /// Description stored with each sync's snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub description: Option<String>,
    /// Stop triggering syncs.
    #[serde(default)]
    pub suspend: bool,
    /// `Manage` (default) triggers syncs; `Observe` only reports.
    #[serde(default)]
    pub management_policy: ManagementPolicy,
}

/// When to sync: exactly one of `schedule` or `manual`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.schedule) != has(self.manual)").message("spec.trigger needs exactly one of schedule or manual"),
    validation = Rule::new("!has(self.timeZone) || has(self.schedule)").message("spec.trigger.timeZone only goes with spec.trigger.schedule").field_path(".timeZone")
)]
pub struct ReplicationTrigger {
    /// 5-field cron expression (minute hour day-of-month month
    /// day-of-week) or `@hourly`, `@daily`, `@weekly`; each due time starts
    /// one sync unless one is already running (then it is counted missed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CRON_PATTERN), length(min = 1, max = 128))]
    #[x_kube(
        validation = super::formats::cron_shape("spec.trigger.schedule"),
        validation = cron::minute_rule(),
        validation = cron::hour_rule(),
        validation = cron::day_of_month_rule(),
        validation = cron::month_rule(),
        validation = cron::day_of_week_rule()
    )]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIME_ZONE_PATTERN), length(min = 1, max = 64))]
    #[x_kube(validation = super::formats::time_zone("spec.trigger.timeZone"))]
    pub time_zone: Option<String>,
    /// Any token: changing it requests exactly one sync, acknowledged in
    /// status.lastManualSync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub manual: Option<String>,
}

/// One site of a plan, as DSM lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanSite {
    /// The site's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The site's status as DSM reports it (a DSM status code, as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The sync DSM is running now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncingStatus {
    /// Progress in percent, when DSM reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<i32>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
}

/// A manual sync the operator decided to request, written before the sync
/// call so that a restart between the call and the status write can tell
/// from the array's counts whether the sync started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingManualSync {
    /// The `spec.trigger.manual` token the sync is for.
    pub token: String,
    /// Syncs the plan had started when the request was decided (successes,
    /// failures and a running one): any more means the sync started.
    pub started_before: i64,
}

/// What the operator observed of the plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationPlanStatus {
    /// Conditions (Ready, Synced, Synchronizing), observedGeneration,
    /// externalId (the plan id once the plan was found).
    #[serde(flatten)]
    pub common: CommonStatus,
    /// This site's role in the plan: `mainsite` or `drsite` (DSM's words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The main site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_site: Option<PlanSite>,
    /// The DR site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_site: Option<PlanSite>,
    /// When the last finished sync finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// How long it took (`1m30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_duration: Option<String>,
    /// Bytes it transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_bytes: Option<i64>,
    /// `Success` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_result: Option<String>,
    /// When the next sync is due: the schedule's next due time, else the
    /// plan's own next trigger time in DSM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<Time>,
    /// The sync running now; absent when none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syncing: Option<SyncingStatus>,
    /// Successful syncs the array reports.
    #[serde(default)]
    pub success_count: i64,
    /// Failed syncs the array reports.
    #[serde(default)]
    pub failure_count: i64,
    /// The last `spec.trigger.manual` token a sync was started for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_manual_sync: Option<String>,
    /// A manual sync decided but not yet acknowledged (see
    /// [`PendingManualSync`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_manual_sync: Option<PendingManualSync>,
    /// The latest schedule due time handled (synced, missed or skipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// Schedule due times that started no sync (one was running, DSM said
    /// the plan cannot sync, or the operator was down past the deadline).
    #[serde(default)]
    pub missed_intervals: i64,
}
