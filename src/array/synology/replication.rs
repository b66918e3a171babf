//! `SYNO.DR.Plan` (Snapshot Replication): list plans and trigger a sync.
//! Plans are created in DSM; the operator only reads and drives them.

use serde::Deserialize;

use super::client::{CallKind, DsmClient};
use super::error::DsmError;
use super::params::Params;
use super::types::{NumOrText, flex_bool, flex_bool_opt, flex_u64_opt};

/// The replication plan API.
pub const API_DR_PLAN: &str = "SYNO.DR.Plan";

const ADDITIONAL: [&str; 10] = [
    "sync_policy",
    "sync_report",
    "main_site_info",
    "dr_site_info",
    "can_do",
    "op_info",
    "last_op_info",
    "topology",
    "testfailover_info",
    "retention_lock_report",
];

/// A replication plan. The docs show `role`, `target_type` and statuses both
/// as numbers and as strings, so those are [`NumOrText`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Plan {
    /// Plan id.
    pub plan_id: String,
    /// `mainsite` / `drsite`, or 1 / 2.
    #[serde(default)]
    pub role: Option<NumOrText>,
    /// `role` as text when DSM sends both.
    #[serde(default)]
    pub role_str: Option<String>,
    /// What is replicated (share name or LUN uuid).
    #[serde(default)]
    pub target_id: Option<String>,
    /// `lun` / `share`, or a number.
    #[serde(default)]
    pub target_type: Option<NumOrText>,
    /// Current operation status.
    #[serde(default)]
    pub op_status: Option<NumOrText>,
    /// Main site node id.
    #[serde(default)]
    pub main_site: Option<String>,
    /// DR site node id.
    #[serde(default)]
    pub dr_site: Option<String>,
    /// The `additional` blocks asked for.
    #[serde(default)]
    pub additional: PlanAdditional,
}

impl Plan {
    /// The role as text: `mainsite`, `drsite`, or the number DSM sent.
    pub fn role_text(&self) -> Option<String> {
        self.role_str
            .clone()
            .or_else(|| self.role.as_ref().map(NumOrText::as_text))
    }
}

/// The `additional` blocks of a plan that the operator reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct PlanAdditional {
    /// Schedule and encryption.
    #[serde(default)]
    pub sync_policy: Option<SyncPolicy>,
    /// Past runs.
    #[serde(default)]
    pub sync_report: Option<SyncReport>,
    /// The last operation.
    #[serde(default)]
    pub last_op_info: Option<LastOpInfo>,
    /// The main site.
    #[serde(default)]
    pub main_site_info: Option<SiteInfo>,
    /// The DR site.
    #[serde(default)]
    pub dr_site_info: Option<SiteInfo>,
    /// What DSM allows on the plan now.
    #[serde(default)]
    pub can_do: Option<CanDo>,
    /// The operation running now (syncing, restoring, ...).
    #[serde(default)]
    pub op_info: Option<OpInfo>,
}

/// The `can_do` block: the actions DSM allows on the plan now.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct CanDo {
    /// A sync may be started.
    #[serde(default, deserialize_with = "flex_bool_opt")]
    pub can_sync: Option<bool>,
}

/// The `op_info` block: the operation running now.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct OpInfo {
    /// Operation status (1: none).
    #[serde(default)]
    pub op_status: Option<NumOrText>,
    /// Its progress.
    #[serde(default)]
    pub op_progress: Option<OpProgress>,
}

/// Progress of an operation.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct OpProgress {
    /// Percent done; -1 when nothing runs.
    #[serde(default)]
    pub percentage: Option<i64>,
}

/// A plan's sync policy.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SyncPolicy {
    /// Whether the data is sent encrypted (sync must repeat it).
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_send_encrypted: bool,
    /// Schedule mode (`schedule`, or a number).
    #[serde(default)]
    pub mode: Option<NumOrText>,
    /// Unix time of the next scheduled sync.
    #[serde(default)]
    pub next_trigger_time: Option<i64>,
}

/// History of a plan's syncs.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SyncReport {
    /// Successful syncs.
    #[serde(default)]
    pub success_sync_count: Option<i64>,
    /// Failed syncs.
    #[serde(default)]
    pub fail_sync_count: Option<i64>,
    /// Recent runs, oldest first.
    #[serde(default)]
    pub recent_records: Vec<SyncRecord>,
    /// The run in progress, if any.
    #[serde(default)]
    pub syncing_record: Option<SyncRecord>,
}

/// One sync run.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SyncRecord {
    /// Start (unix time).
    #[serde(default)]
    pub begin_time: Option<i64>,
    /// End (unix time).
    #[serde(default)]
    pub finish_time: Option<i64>,
    /// Seconds taken.
    #[serde(default)]
    pub elapsed_time: Option<i64>,
    /// Bytes sent.
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub sync_size_byte: Option<u64>,
    /// Finished.
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_done: bool,
    /// Succeeded.
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_success: bool,
    /// The snapshot it sent.
    #[serde(default)]
    pub snapshot_version: Option<String>,
    /// Bytes to send in all (with `sync_size_byte`, the progress of a
    /// running sync).
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub total_size_byte: Option<u64>,
}

/// The last operation on a plan.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct LastOpInfo {
    /// Error code, 0 on success.
    #[serde(default)]
    pub err_code: Option<i64>,
    /// Succeeded.
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_success: bool,
    /// Operation status.
    #[serde(default)]
    pub op_status: Option<NumOrText>,
    /// When (unix time).
    #[serde(default)]
    pub update_time: Option<i64>,
}

/// One site of a plan.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SiteInfo {
    /// Host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Node id.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Replicated object name there.
    #[serde(default)]
    pub target_name: Option<String>,
    /// The site's status (a number in the docs).
    #[serde(default)]
    pub status: Option<NumOrText>,
}

#[derive(Deserialize)]
struct PlanList {
    #[serde(default)]
    plans: Vec<Plan>,
}

/// Options of a manual sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// Description of the snapshot the sync takes.
    pub description: String,
    /// Lock that snapshot against rotation.
    pub lock_snapshot: bool,
    /// Repeat the plan's `is_send_encrypted` (read it from the plan first).
    pub send_encrypted: Option<bool>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            description: "Snapshot taken by array-operator".into(),
            lock_snapshot: true,
            send_encrypted: None,
        }
    }
}

/// The replication operations of one client.
#[derive(Clone, Copy, Debug)]
pub struct ReplicationApi<'a> {
    client: &'a DsmClient,
}

impl DsmClient {
    /// The Snapshot Replication plan API.
    pub fn replication(&self) -> ReplicationApi<'_> {
        ReplicationApi { client: self }
    }
}

impl ReplicationApi<'_> {
    /// Every plan, with all `additional` blocks.
    pub async fn list(&self) -> Result<Vec<Plan>, DsmError> {
        let params = Params::new().json("additional", &ADDITIONAL);
        let list: PlanList = self
            .client
            .call(API_DR_PLAN, "list", "all plans", params, CallKind::Read)
            .await?;
        Ok(list.plans)
    }

    /// Starts a sync of `plan_id` without waiting for it (`nowait=true`).
    pub async fn sync(&self, plan_id: &str, opts: &SyncOptions) -> Result<(), DsmError> {
        let params = Params::new()
            .bool("nowait", true)
            .bool("auto_remove", true)
            .raw("plan_id", plan_id)
            .bool("is_snapshot_locked", opts.lock_snapshot)
            .bool_opt("is_send_encrypted", opts.send_encrypted)
            .raw("sync_description", opts.description.clone());
        self.client
            .call_value(
                API_DR_PLAN,
                "sync",
                &format!("plan {plan_id}"),
                params,
                CallKind::Write,
            )
            .await
            .map(|_| ())
    }
}
