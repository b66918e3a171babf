//! Snapshot endpoints (create, delete, delete all, clone, restore, detail,
//! detail list, list) and the native snapshot schedule (detail, create,
//! delete).

use serde_json::{Value, json};

use super::client::NgxClient;
use super::dialect::{Endpoint, Field};
use super::error::NgxError;
use super::lun::decode_err;
use super::types::{Rec, Snapshot, SnapshotSchedule};

/// What `POST snapshot/` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotCreated {
    /// The new snapshot id.
    pub id: String,
    /// `snap_vol` (`lun@snap`), when sent.
    pub snap_vol: Option<String>,
}

impl NgxClient {
    /// Takes a snapshot of a LUN.
    pub async fn create_snapshot(
        &self,
        lun_id: &str,
        name: &str,
    ) -> Result<SnapshotCreated, NgxError> {
        let body = json!({"name": name, "volume_id": lun_id});
        let v = self
            .call(Endpoint::SnapshotCreate, None, &[], Some(body))
            .await?;
        let r = Rec::new(&v, self.dialect());
        Ok(SnapshotCreated {
            id: r
                .need_str(Field::SnapId)
                .map_err(|e| decode_err(Endpoint::SnapshotCreate, self, e))?,
            snap_vol: v
                .get("snap_vol")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }

    /// Deletes a snapshot. Already gone counts as success.
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::SnapshotDelete, Some(id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes every snapshot of a LUN; returns the array's warning, if any.
    pub async fn delete_all_snapshots(&self, lun_id: &str) -> Result<Option<String>, NgxError> {
        let v = self
            .call(Endpoint::SnapshotDeleteAll, Some(lun_id), &[], None)
            .await?;
        Ok(v.get("warning")
            .and_then(Value::as_str)
            .filter(|w| !w.is_empty())
            .map(str::to_string))
    }

    /// Clones a snapshot into a new LUN; returns the new LUN's id.
    pub async fn clone_snapshot(&self, id: &str, name: &str) -> Result<String, NgxError> {
        let v = self
            .call(
                Endpoint::SnapshotClone,
                Some(id),
                &[],
                Some(json!({"name": name})),
            )
            .await?;
        Rec::new(&v, self.dialect())
            .need_str(Field::CloneVolId)
            .map_err(|e| decode_err(Endpoint::SnapshotClone, self, e))
    }

    /// Rolls the LUN back to the snapshot.
    pub async fn restore_snapshot(&self, id: &str) -> Result<(), NgxError> {
        self.call(Endpoint::SnapshotRestore, Some(id), &[], None)
            .await
            .map(|_| ())
    }

    /// One snapshot in detail.
    pub async fn snapshot(&self, id: &str) -> Result<Snapshot, NgxError> {
        let v = self
            .call(Endpoint::SnapshotDetail, Some(id), &[], None)
            .await?;
        Snapshot::decode(&v, self.dialect())
            .map_err(|e| decode_err(Endpoint::SnapshotDetail, self, e))
    }

    /// LUN snapshots in detail, of one LUN or of all.
    pub async fn snapshots_detailed(
        &self,
        lun_id: Option<&str>,
    ) -> Result<Vec<Snapshot>, NgxError> {
        let key = Field::QuerySnapshotListVolume.name(self.dialect());
        let query: Vec<(String, String)> = lun_id
            .map(|l| (key.to_string(), l.to_string()))
            .into_iter()
            .collect();
        let v = self
            .call(Endpoint::SnapshotDetailList, None, &query, None)
            .await?;
        Snapshot::decode_list(&v, self.dialect())
            .map_err(|e| decode_err(Endpoint::SnapshotDetailList, self, e))
    }

    /// LUN snapshots, short form, of one LUN or of all.
    pub async fn snapshots(&self, lun_id: Option<&str>) -> Result<Vec<Snapshot>, NgxError> {
        let query: Vec<(String, String)> = lun_id
            .map(|l| ("vol_id".to_string(), l.to_string()))
            .into_iter()
            .collect();
        let v = self
            .call(Endpoint::SnapshotList, None, &query, None)
            .await?;
        Snapshot::decode_list(&v, self.dialect())
            .map_err(|e| decode_err(Endpoint::SnapshotList, self, e))
    }

    /// The LUN's native schedule; `None` when it has none.
    pub async fn snapshot_schedule(
        &self,
        lun_id: &str,
    ) -> Result<Option<SnapshotSchedule>, NgxError> {
        match self
            .call(Endpoint::ScheduleDetail, Some(lun_id), &[], None)
            .await
        {
            Ok(v) if v.as_object().is_some_and(|o| o.is_empty()) => Ok(None),
            Ok(v) => SnapshotSchedule::decode(&v, self.dialect())
                .map(Some)
                .map_err(|e| decode_err(Endpoint::ScheduleDetail, self, e)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Programs the LUN's native schedule; returns the array's description
    /// of it (`h_read`).
    pub async fn create_snapshot_schedule(
        &self,
        lun_id: &str,
        cron: &str,
        keep_max: u32,
    ) -> Result<Option<String>, NgxError> {
        let body = json!({"cron_time": cron, "keep_max": keep_max});
        let v = self
            .call(Endpoint::ScheduleCreate, Some(lun_id), &[], Some(body))
            .await?;
        Ok(Rec::new(&v, self.dialect()).str(Field::ScheduleReadable))
    }

    /// Removes the LUN's native schedule. None set counts as success.
    pub async fn delete_snapshot_schedule(&self, lun_id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::ScheduleDelete, Some(lun_id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }
}
