//! LUN snapshots and native snapshot schedules on NGXStorage
//! (`snapshot/`, `snapshot/schedule/{vol_id}`). Snapshots have names but no
//! description, lock or consistency flag.

use crate::array::error::ErrorClass;
use crate::array::ngxstorage::types::Snapshot;

use super::super::BackendError;
use super::super::snapshot::{NativeSchedule, ObservedSnapshot, SnapshotFeatures, SnapshotRequest};
use super::{NgxBackend, vendor};

/// NGXStorage: a native schedule; names only.
pub const FEATURES: SnapshotFeatures = SnapshotFeatures {
    native_schedule: true,
    descriptions: false,
    locking: false,
    app_consistent: false,
};

fn observed(s: Snapshot) -> ObservedSnapshot {
    ObservedSnapshot {
        lun_id: s.volume_id.clone().unwrap_or_default(),
        name: s.name.clone().unwrap_or_default(),
        description: String::new(),
        created: s.created.and_then(|c| i64::try_from(c).ok()),
        locked: false,
        needed_by: s
            .bound
            .unwrap_or(false)
            .then(|| "a clone bound to it".to_string()),
        id: s.id,
    }
}

/// See [`super::super::Backend::list_snapshots`]: one detailed list of
/// every LUN snapshot, filtered here.
pub async fn list(
    b: &NgxBackend,
    lun_ids: &[String],
) -> Result<Vec<ObservedSnapshot>, BackendError> {
    if lun_ids.is_empty() {
        return Ok(Vec::new());
    }
    let all = b.client().snapshots_detailed(None).await.map_err(vendor)?;
    Ok(all
        .into_iter()
        .map(observed)
        .filter(|s| lun_ids.contains(&s.lun_id))
        .collect())
}

/// See [`super::super::Backend::take_snapshot`]. The name is unique per
/// LUN, so "already exists" means an earlier attempt whose answer was lost
/// made it: it is looked up, not taken again.
pub async fn take(
    b: &NgxBackend,
    lun_id: &str,
    request: &SnapshotRequest,
) -> Result<String, BackendError> {
    match b.client().create_snapshot(lun_id, &request.name).await {
        Ok(created) => Ok(created.id),
        Err(e) if crate::array::error::ArrayError::class(&e) == ErrorClass::AlreadyExists => {
            let listed = b
                .client()
                .snapshots_detailed(Some(lun_id))
                .await
                .map_err(vendor)?;
            listed
                .into_iter()
                .find(|s| s.name.as_deref() == Some(request.name.as_str()))
                .map(|s| s.id)
                .ok_or_else(|| vendor(e))
        }
        Err(e) => Err(vendor(e)),
    }
}

/// See [`super::super::Backend::delete_snapshot`].
pub async fn delete(b: &NgxBackend, id: &str) -> Result<(), BackendError> {
    b.client().delete_snapshot(id).await.map_err(vendor)
}

/// See [`super::super::Backend::native_schedule`].
pub async fn native_schedule(
    b: &NgxBackend,
    lun_id: &str,
) -> Result<Option<NativeSchedule>, BackendError> {
    let schedule = b.client().snapshot_schedule(lun_id).await.map_err(vendor)?;
    Ok(schedule.map(|s| NativeSchedule {
        cron: s.cron,
        keep_max: u32::try_from(s.keep_max).unwrap_or(u32::MAX),
    }))
}

/// See [`super::super::Backend::set_native_schedule`].
pub async fn set_native_schedule(
    b: &NgxBackend,
    lun_id: &str,
    schedule: &NativeSchedule,
) -> Result<(), BackendError> {
    b.client()
        .create_snapshot_schedule(lun_id, &schedule.cron, schedule.keep_max)
        .await
        .map(|_| ())
        .map_err(vendor)
}

/// See [`super::super::Backend::delete_native_schedule`].
pub async fn delete_native_schedule(b: &NgxBackend, lun_id: &str) -> Result<(), BackendError> {
    b.client()
        .delete_snapshot_schedule(lun_id)
        .await
        .map_err(vendor)
}
