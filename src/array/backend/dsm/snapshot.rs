//! LUN snapshots on DSM: `SYNO.Core.ISCSI.LUN` `list_snapshot`,
//! `take_snapshot`, `delete_snapshot`. DSM has no per-LUN schedule the
//! API can program, so schedules always run operator-driven here.

use crate::array::error::{ArrayError, ErrorClass};
use crate::array::synology::lun::API_LUN;
use crate::array::synology::snapshot::{LunSnapshot, TakeSnapshot};

use super::super::BackendError;
use super::super::snapshot::{ObservedSnapshot, SnapshotFeatures, SnapshotRequest};
use super::DsmBackend;

/// DSM: descriptions, locks and application-consistent snapshots; no
/// native schedule.
pub const FEATURES: SnapshotFeatures = SnapshotFeatures {
    native_schedule: false,
    descriptions: true,
    locking: true,
    app_consistent: true,
};

fn observed(lun_id: &str, s: LunSnapshot) -> ObservedSnapshot {
    let needed_by = (!s.locked_app_keys.is_empty())
        .then(|| format!("DSM package(s) {}", s.locked_app_keys.join(", ")));
    ObservedSnapshot {
        id: s.uuid,
        lun_id: if s.parent_uuid.is_empty() {
            lun_id.to_string()
        } else {
            s.parent_uuid
        },
        name: s.name,
        description: s.description,
        created: s.create_time,
        locked: s.is_user_locked || s.is_worm_locked,
        needed_by,
    }
}

/// See [`super::super::Backend::list_snapshots`]: one `list_snapshot` per
/// LUN (DSM lists the snapshots of one LUN at a time).
pub async fn list(
    b: &DsmBackend,
    lun_ids: &[String],
) -> Result<Vec<ObservedSnapshot>, BackendError> {
    let mut out = Vec::new();
    for lun in lun_ids {
        let snaps = b
            .client()
            .snapshots()
            .list(lun)
            .await
            .map_err(|e| BackendError::from_vendor(&e))?;
        out.extend(snaps.into_iter().map(|s| observed(lun, s)));
    }
    Ok(out)
}

/// See [`super::super::Backend::take_snapshot`].
pub async fn take(
    b: &DsmBackend,
    lun_id: &str,
    request: &SnapshotRequest,
) -> Result<String, BackendError> {
    let req = TakeSnapshot {
        description: request.description.clone(),
        locked: request.locked,
        app_consistent: request.app_consistent,
    };
    b.client()
        .snapshots()
        .take(lun_id, &req)
        .await
        .map(|t| t.snapshot_uuid)
        .map_err(|e| BackendError::from_vendor(&e))
}

/// See [`super::super::Backend::delete_snapshot`].
pub async fn delete(b: &DsmBackend, id: &str) -> Result<(), BackendError> {
    match b.client().snapshots().delete(&[id]).await {
        Err(e) if e.class() == ErrorClass::NotFound => Ok(()),
        other => other.map_err(|e| BackendError::from_vendor(&e)),
    }
}

/// The error of a native-schedule call on DSM (the engine never makes one:
/// [`FEATURES`] says there is none).
pub fn no_native_schedule() -> BackendError {
    BackendError::unsupported(
        format!("{API_LUN}.snapshot_schedule"),
        "Synology DSM has no per-LUN snapshot schedule the API can program",
    )
}
