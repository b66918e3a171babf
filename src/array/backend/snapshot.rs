//! LUN snapshots and native snapshot schedules, vendor-neutral: what
//! SnapshotSchedule needs from an array. The per-vendor halves are
//! `dsm/snapshot.rs` and `ngx/snapshot.rs`.

use super::{Backend, BackendError, dsm, ngx};

/// One LUN snapshot as the array lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedSnapshot {
    /// The array's id (DSM uuid, NGX snapshot id).
    pub id: String,
    /// The LUN it belongs to (array-side id).
    pub lun_id: String,
    /// Its name (DSM: `SnapShot-N`; NGX: the name it was taken with).
    pub name: String,
    /// Its description (DSM; empty on NGX, which has none).
    pub description: String,
    /// Unix seconds it was taken, when the array says.
    pub created: Option<i64>,
    /// Locked against deletion by rotation (DSM `is_user_locked`, or WORM).
    pub locked: bool,
    /// What on the array still needs it, if the array says so: a bound
    /// clone (NGX `binded`), a package such as a replication plan (DSM
    /// `locked_app_keys`).
    pub needed_by: Option<String>,
}

/// A snapshot to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// Name (NGX; DSM names snapshots itself).
    pub name: String,
    /// Description (DSM; NGX has none).
    pub description: String,
    /// Lock it (DSM).
    pub locked: bool,
    /// Application-consistent (DSM).
    pub app_consistent: bool,
}

/// A LUN's native snapshot schedule (NGXStorage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeSchedule {
    /// Five-field cron expression.
    pub cron: String,
    /// Snapshots the array keeps.
    pub keep_max: u32,
}

/// What a vendor can do for a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotFeatures {
    /// The array runs a per-LUN cron schedule of its own.
    pub native_schedule: bool,
    /// Snapshots carry a description (else the mark goes into the name).
    pub descriptions: bool,
    /// Snapshots can be locked.
    pub locking: bool,
    /// Application-consistent snapshots can be asked for.
    pub app_consistent: bool,
}

impl Backend {
    /// What this vendor can do for snapshots.
    pub fn snapshot_features(&self) -> SnapshotFeatures {
        match self {
            Backend::Synology(_) => dsm::snapshot::FEATURES,
            Backend::Ngx(_) => ngx::snapshot::FEATURES,
        }
    }

    /// The snapshots of the LUNs `lun_ids`, in as few calls as the API
    /// allows (NGX: one list; DSM: one list per LUN, it has no other).
    pub async fn list_snapshots(
        &self,
        lun_ids: &[String],
    ) -> Result<Vec<ObservedSnapshot>, BackendError> {
        match self {
            Backend::Synology(b) => dsm::snapshot::list(b, lun_ids).await,
            Backend::Ngx(b) => ngx::snapshot::list(b, lun_ids).await,
        }
    }

    /// Takes a snapshot of LUN `lun_id`; returns its id. Never resent after
    /// an ambiguous failure: the caller re-lists (the mark tells).
    pub async fn take_snapshot(
        &self,
        lun_id: &str,
        request: &SnapshotRequest,
    ) -> Result<String, BackendError> {
        match self {
            Backend::Synology(b) => dsm::snapshot::take(b, lun_id, request).await,
            Backend::Ngx(b) => ngx::snapshot::take(b, lun_id, request).await,
        }
    }

    /// Deletes a snapshot; already gone is success.
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), BackendError> {
        match self {
            Backend::Synology(b) => dsm::snapshot::delete(b, id).await,
            Backend::Ngx(b) => ngx::snapshot::delete(b, id).await,
        }
    }

    /// The native schedule of LUN `lun_id` (`None`: none set).
    pub async fn native_schedule(
        &self,
        lun_id: &str,
    ) -> Result<Option<NativeSchedule>, BackendError> {
        match self {
            Backend::Synology(_) => Err(dsm::snapshot::no_native_schedule()),
            Backend::Ngx(b) => ngx::snapshot::native_schedule(b, lun_id).await,
        }
    }

    /// Programs the native schedule of LUN `lun_id` (replacing one set).
    pub async fn set_native_schedule(
        &self,
        lun_id: &str,
        schedule: &NativeSchedule,
    ) -> Result<(), BackendError> {
        match self {
            Backend::Synology(_) => Err(dsm::snapshot::no_native_schedule()),
            Backend::Ngx(b) => ngx::snapshot::set_native_schedule(b, lun_id, schedule).await,
        }
    }

    /// Removes the native schedule of LUN `lun_id`; none set is success.
    pub async fn delete_native_schedule(&self, lun_id: &str) -> Result<(), BackendError> {
        match self {
            Backend::Synology(_) => Err(dsm::snapshot::no_native_schedule()),
            Backend::Ngx(b) => ngx::snapshot::delete_native_schedule(b, lun_id).await,
        }
    }
}
