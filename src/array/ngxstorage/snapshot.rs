//! Snapshot endpoints (create, delete, delete all, clone, restore, detail,
//! detail list, list) and the native snapshot schedule (detail, create,
//! delete).

use serde_json::{Value, json};

use super::client::NgxClient;
use super::dialect::{Endpoint, Field};
use super::error::NgxError;
use super::listing::{self, Listing};
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

    /// Deletes a snapshot. Already gone counts as success: a not-found
    /// code, or a code-less 404 when a fresh list no longer holds it.
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), NgxError> {
        match self
            .call(Endpoint::SnapshotDelete, Some(id), &[], None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.http_status() == Some(404) => {
                let still_there = self
                    .snapshots_detailed(None)
                    .await?
                    .iter()
                    .any(|x| x.id == id);
                if still_there { Err(e) } else { Ok(()) }
            }
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
        self.snapshot_listing(Endpoint::SnapshotDetailList, &query)
            .await?
            .into_strict()
    }

    /// LUN snapshots in detail, of one LUN or of all, a malformed record
    /// reported on its own.
    pub async fn snapshots_detailed_listing(
        &self,
        lun_id: Option<&str>,
    ) -> Result<Listing<Snapshot>, NgxError> {
        let key = Field::QuerySnapshotListVolume.name(self.dialect());
        let query: Vec<(String, String)> = lun_id
            .map(|l| (key.to_string(), l.to_string()))
            .into_iter()
            .collect();
        self.snapshot_listing(Endpoint::SnapshotDetailList, &query)
            .await
    }

    /// The document wraps LUN snapshots as `{"luns": [...], "shares":
    /// [...]}`; the SDK reads a plain array.
    async fn snapshot_listing(
        &self,
        endpoint: Endpoint,
        query: &[(String, String)],
    ) -> Result<Listing<Snapshot>, NgxError> {
        let v = self.call(endpoint, None, query, None).await?;
        let records = listing::items(self, endpoint, &v)?;
        Ok(listing::decode_each(
            self,
            endpoint,
            records,
            Field::SnapId,
            Snapshot::decode,
        ))
    }

    /// LUN snapshots, short form, of one LUN or of all.
    pub async fn snapshots(&self, lun_id: Option<&str>) -> Result<Vec<Snapshot>, NgxError> {
        let query: Vec<(String, String)> = lun_id
            .map(|l| ("vol_id".to_string(), l.to_string()))
            .into_iter()
            .collect();
        self.snapshot_listing(Endpoint::SnapshotList, &query)
            .await?
            .into_strict()
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
