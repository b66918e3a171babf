//! `ReplicationPlan`: a DSM Snapshot Replication plan, adopted by id and
//! driven by the operator.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{ArrayRef, CRON_PATTERN, CommonStatus, ManagementPolicy, TIME_ZONE_PATTERN};

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
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9_.:-]+$"))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.planId is immutable: create another ReplicationPlan to drive another plan"))]
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
    /// 5-field cron expression or `@hourly`, `@daily`, `@weekly`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = CRON_PATTERN), length(min = 1, max = 128))]
    pub schedule: Option<String>,
    /// IANA time zone of the schedule; UTC when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIME_ZONE_PATTERN), length(min = 1, max = 64))]
    pub time_zone: Option<String>,
    /// Any token: changing it requests exactly one sync, acknowledged in
    /// status.lastManualSync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub manual: Option<String>,
}

/// What the operator observed of the plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicationPlanStatus {
    /// Conditions (including `Synchronizing`), observedGeneration, externalId.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// This site's role in the plan: `main` or `dr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The main site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_site: Option<String>,
    /// The DR site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dr_site: Option<String>,
    /// When the last sync finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// How long it took (`1m30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_duration: Option<String>,
    /// Bytes it transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_bytes: Option<i64>,
    /// `Success`, `Failed` or the array's own word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_result: Option<String>,
    /// When the next scheduled sync is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_sync_time: Option<Time>,
    /// Progress of the running sync, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syncing: Option<i32>,
    /// Successful syncs the array reports.
    #[serde(default)]
    pub success_count: i64,
    /// Failed syncs the array reports.
    #[serde(default)]
    pub failure_count: i64,
    /// The last `spec.trigger.manual` token a sync was requested for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_manual_sync: Option<String>,
}
