//! LUN snapshots: `list_snapshot`, `take_snapshot` and `delete_snapshot` on
//! `SYNO.Core.ISCSI.LUN` (there is no separate snapshot API).

use serde::Deserialize;
use serde_json::Value;

use super::client::{CallKind, DsmClient};
use super::error::{DsmError, message_for};
use super::lun::API_LUN;
use super::params::Params;
use super::types::{SnapshotStatus, flex_bool, flex_u64_opt};

/// A LUN snapshot. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LunSnapshot {
    /// Snapshot uuid.
    pub uuid: String,
    /// The name DSM gave it (`SnapShot-N`).
    #[serde(default)]
    pub name: String,
    /// Numeric id.
    #[serde(default)]
    pub snapshot_id: Option<i64>,
    /// The LUN it belongs to.
    #[serde(default)]
    pub parent_uuid: String,
    /// Description (the operator marks its own snapshots here).
    #[serde(default)]
    pub description: String,
    /// Unix time it was taken.
    #[serde(default)]
    pub create_time: Option<i64>,
    /// Locked against rotation.
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_user_locked: bool,
    /// Application-consistent.
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_app_consistent: bool,
    /// Who took it (`user`, `system`, ...).
    #[serde(default)]
    pub taken_by: String,
    /// Status, a string or an object.
    #[serde(default)]
    pub status: Option<SnapshotStatus>,
    /// Size in bytes.
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub total_size: Option<u64>,
    /// Packages that keep the snapshot (a Snapshot Replication plan's key
    /// while it is a replication's base): it must not be deleted.
    #[serde(default)]
    pub locked_app_keys: Vec<String>,
    /// Locked by WORM (immutable).
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_worm_locked: bool,
}

#[derive(Deserialize)]
struct SnapshotList {
    #[serde(default)]
    snapshots: Vec<LunSnapshot>,
}

/// What `take_snapshot` needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TakeSnapshot {
    /// Description.
    pub description: String,
    /// Lock it against rotation.
    pub locked: bool,
    /// Ask for an application-consistent snapshot.
    pub app_consistent: bool,
}

/// What `take_snapshot` returns.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TakenSnapshot {
    /// The new snapshot's uuid.
    pub snapshot_uuid: String,
    /// Its numeric id.
    #[serde(default)]
    pub snapshot_id: Option<i64>,
}

/// The snapshot operations of one client.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotApi<'a> {
    client: &'a DsmClient,
}

impl DsmClient {
    /// The LUN snapshot API.
    pub fn snapshots(&self) -> SnapshotApi<'_> {
        SnapshotApi { client: self }
    }
}

impl SnapshotApi<'_> {
    /// The snapshots of one LUN.
    pub async fn list(&self, lun_uuid: &str) -> Result<Vec<LunSnapshot>, DsmError> {
        let params = Params::new()
            .raw("src_lun_uuid", lun_uuid)
            .json("additional", &["locked_app_keys", "is_worm_locked"]);
        let list: SnapshotList = self
            .client
            .call(
                API_LUN,
                "list_snapshot",
                &format!("snapshots of LUN {lun_uuid}"),
                params,
                CallKind::Read,
            )
            .await?;
        Ok(list.snapshots)
    }

    /// Takes a snapshot. A lost answer is not retried: snapshots have no
    /// caller-chosen name to look for, so the caller re-lists instead.
    pub async fn take(
        &self,
        lun_uuid: &str,
        req: &TakeSnapshot,
    ) -> Result<TakenSnapshot, DsmError> {
        let params = Params::new()
            .raw("taken_by", "user")
            .raw("src_lun_uuid", lun_uuid)
            .raw("description", req.description.clone())
            .bool("is_locked", req.locked)
            .bool("is_app_consistent", req.app_consistent);
        self.client
            .call(
                API_LUN,
                "take_snapshot",
                &format!("snapshot of LUN {lun_uuid}"),
                params,
                CallKind::Write,
            )
            .await
    }

    /// Deletes snapshots. DSM reports a per-snapshot failure inside a
    /// successful answer; that becomes an error here.
    pub async fn delete(&self, snapshot_uuids: &[&str]) -> Result<(), DsmError> {
        let subject = format!("snapshots {}", snapshot_uuids.join(", "));
        let params = Params::new().json("snapshot_uuids", snapshot_uuids);
        let data = self
            .client
            .call_value(
                API_LUN,
                "delete_snapshot",
                &subject,
                params,
                CallKind::Write,
            )
            .await?;
        if let Value::Array(items) = &data {
            for item in items {
                if let Some((uuid, code)) = item
                    .as_object()
                    .and_then(|o| o.iter().find_map(|(k, v)| v.as_i64().map(|c| (k, c))))
                {
                    return Err(DsmError::Api {
                        api_call: format!("{API_LUN}.delete_snapshot"),
                        subject: format!("snapshot {uuid}"),
                        code,
                        message: message_for(API_LUN, code),
                    });
                }
            }
        }
        Ok(())
    }
}
