//! LUNs: observation, create (or clone from a snapshot), grow, settings,
//! unmap.
//!
//! Settings are keyed by spec path, values in spec spelling:
//! `ngxstorage.blocksize` (`4k`..`128k`, fixed at create),
//! `ngxstorage.deduplication` and `ngxstorage.compression` (`true`/`false`),
//! `ngxstorage.ioType` (`transactional`/`sequential`) and
//! `ngxstorage.qosPriority` (`4`..`128`, decimal).

use std::collections::BTreeMap;

use crate::array::ngxstorage::size::to_api_size;
use crate::array::ngxstorage::validate::Rule;
use crate::array::ngxstorage::{Lun, LunChanges, LunCreate, NgxClient, Target};
use crate::model::{LunSettings, ObservedLun, Placement};
use crate::reconcile::lun::{CloneSource, DesiredLun, LunOp};

use super::{misrouted, vendor};
use crate::array::backend::BackendError;

/// `ngxstorage.blocksize`.
pub const BLOCKSIZE: &str = "ngxstorage.blocksize";
/// `ngxstorage.deduplication`.
pub const DEDUPLICATION: &str = "ngxstorage.deduplication";
/// `ngxstorage.compression`.
pub const COMPRESSION: &str = "ngxstorage.compression";
/// `ngxstorage.ioType`.
pub const IO_TYPE: &str = "ngxstorage.ioType";
/// `ngxstorage.qosPriority`.
pub const QOS_PRIORITY: &str = "ngxstorage.qosPriority";
/// Every LUN settings key this adapter reads and writes.
pub const SETTING_KEYS: [&str; 5] = [BLOCKSIZE, DEDUPLICATION, COMPRESSION, IO_TYPE, QOS_PRIORITY];

const CREATE_CALL: &str = "POST /lun/";
const MODIFY_CALL: &str = "PATCH /lun/{id}";

/// The block size in spec spelling: the array reports bytes (`16384`);
/// anything already in `16k` form is kept (lowercased).
fn blocksize_text(reported: &str) -> String {
    match reported.trim().parse::<u64>() {
        Ok(bytes) if bytes >= 1024 && bytes.is_multiple_of(1024) => format!("{}k", bytes / 1024),
        _ => reported.trim().to_ascii_lowercase(),
    }
}

/// The settings the array reports, in spec spelling.
fn settings_of(l: &Lun) -> LunSettings {
    let mut s = BTreeMap::new();
    if let Some(b) = &l.blocksize {
        s.insert(BLOCKSIZE.to_string(), blocksize_text(b));
    }
    if let Some(d) = l.deduplication {
        s.insert(DEDUPLICATION.to_string(), d.to_string());
    }
    if let Some(c) = l.compression {
        s.insert(COMPRESSION.to_string(), c.to_string());
    }
    if let Some(t) = &l.io_type {
        s.insert(IO_TYPE.to_string(), t.clone());
    }
    if let Some(q) = l.qos_priority {
        s.insert(QOS_PRIORITY.to_string(), q.to_string());
    }
    s
}

/// LUN id → the ids of the targets mapping it, built once per listing so
/// that observing every LUN costs one pass over the mappings, not one pass
/// over every target per LUN (quadratic at 10,000 LUNs).
pub(crate) type TargetsByLun = std::collections::HashMap<String, Vec<String>>;

/// The [`TargetsByLun`] of a target listing.
pub(crate) fn targets_by_lun(targets: &[Target]) -> TargetsByLun {
    let mut by_lun = TargetsByLun::new();
    for t in targets {
        for m in &t.luns {
            by_lun
                .entry(m.vol_id.clone())
                .or_default()
                .push(t.id.clone());
        }
    }
    by_lun
}

/// One LUN in the vendor-neutral view; `targets` indexes the same
/// observation's target list (for `mapped_targets`).
pub(crate) fn observe(l: Lun, targets: &TargetsByLun) -> ObservedLun {
    let mapped_targets = targets.get(&l.id).cloned().unwrap_or_default();
    ObservedLun {
        settings: settings_of(&l),
        lun_type: l.thin.map(|t| if t { "thin" } else { "full" }.to_string()),
        placement: l.pool.clone().map(Placement::Pool),
        thin: l.thin,
        size_bytes: l.size_bytes,
        allocated_bytes: l.used_bytes,
        description: None,
        mapped_targets,
        status: None,
        id: l.id,
        name: l.name,
    }
}

/// Every LUN: the detailed LUN list and the detailed target list, two calls
/// whatever the number of LUNs.
pub(crate) async fn list(client: &NgxClient) -> Result<Vec<ObservedLun>, BackendError> {
    let luns = client.luns_detailed().await.map_err(vendor)?;
    let targets = client.targets_detailed().await.map_err(vendor)?;
    let by_lun = targets_by_lun(&targets);
    Ok(luns.into_iter().map(|l| observe(l, &by_lun)).collect())
}

fn parse_bool(call: &str, key: &str, value: &str) -> Result<bool, BackendError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(BackendError::invalid(
            call,
            format!("spec.{key}: must be true or false (got {other:?})"),
        )),
    }
}

fn parse_io_type(call: &str, value: &str) -> Result<String, BackendError> {
    if Rule::IoType.check_str(value) {
        Ok(value.to_string())
    } else {
        Err(BackendError::invalid(
            call,
            format!(
                "spec.{IO_TYPE}: must be {} (got {value:?})",
                Rule::IoType.describe()
            ),
        ))
    }
}

fn parse_qos(call: &str, value: &str) -> Result<u32, BackendError> {
    match value.trim().parse::<u32>() {
        Ok(q) if [4, 8, 16, 32, 64, 128].contains(&q) => Ok(q),
        _ => Err(BackendError::invalid(
            call,
            format!(
                "spec.{QOS_PRIORITY}: must be {} (got {value:?})",
                Rule::QosPriority.describe()
            ),
        )),
    }
}

fn unknown_key(call: &str, key: &str) -> BackendError {
    BackendError::invalid(
        call,
        format!(
            "spec.{key}: not an NGXStorage LUN setting (known: {})",
            SETTING_KEYS.join(", ")
        ),
    )
}

/// Checks a size before any call: whole MiB, not zero.
fn check_size(call: &str, bytes: u64, what: &str) -> Result<(), BackendError> {
    to_api_size(bytes, what)
        .map(|_| ())
        .map_err(|e| BackendError::invalid(call, format!("spec.size: {e}")))
}

/// Creates the LUN (or clones a snapshot into it); returns its `vol_id`.
pub(crate) async fn create(client: &NgxClient, d: &DesiredLun) -> Result<String, BackendError> {
    let pool = match &d.placement {
        Placement::Pool(p) => p.clone(),
        Placement::Volume(v) => {
            return Err(BackendError::invalid(
                CREATE_CALL,
                format!(
                    "spec.pool: an NGXStorage LUN lives in a pool; a Synology volume ({v}) cannot hold it"
                ),
            ));
        }
    };
    let what = format!("Lun {}", d.name);
    check_size(CREATE_CALL, d.size_bytes, &what)?;
    if d.description.as_deref().is_some_and(|t| !t.is_empty()) {
        return Err(BackendError::unsupported(
            CREATE_CALL,
            "spec.description: NGXStorage LUNs have no description",
        ));
    }
    let mut spec = LunCreate {
        pool,
        name: d.name.clone(),
        size_bytes: d.size_bytes,
        thin: d.thin,
        blocksize: None,
        deduplication: None,
        compression: None,
        io_type: None,
        qos_priority: None,
    };
    for (key, value) in &d.settings {
        match key.as_str() {
            BLOCKSIZE => {
                if !Rule::Blocksize.check_str(value) {
                    return Err(BackendError::invalid(
                        CREATE_CALL,
                        format!(
                            "spec.{BLOCKSIZE}: must be {} (got {value:?})",
                            Rule::Blocksize.describe()
                        ),
                    ));
                }
                spec.blocksize = Some(value.clone());
            }
            DEDUPLICATION => spec.deduplication = Some(parse_bool(CREATE_CALL, key, value)?),
            COMPRESSION => spec.compression = Some(parse_bool(CREATE_CALL, key, value)?),
            IO_TYPE => spec.io_type = Some(parse_io_type(CREATE_CALL, value)?),
            QOS_PRIORITY => spec.qos_priority = Some(parse_qos(CREATE_CALL, value)?),
            other => return Err(unknown_key(CREATE_CALL, other)),
        }
    }
    match &d.source {
        None => client.create_lun(&spec).await.map(|c| c.id).map_err(vendor),
        // A clone takes the snapshot's size, pool and settings; the next
        // diff grows it or changes its settings where the spec differs.
        Some(CloneSource::Snapshot(snap)) => {
            client.clone_snapshot(snap, &d.name).await.map_err(vendor)
        }
        Some(CloneSource::Lun(_)) => Err(BackendError::unsupported(
            "POST /snapshot/clone/{id}",
            "spec.source: NGXStorage clones from a snapshot only, not directly from a LUN; name a snapshot",
        )),
    }
}

/// Turns changed settings into one modify body; refuses what cannot change.
fn changes(settings: &LunSettings) -> Result<LunChanges, BackendError> {
    let mut c = LunChanges::default();
    for (key, value) in settings {
        match key.as_str() {
            BLOCKSIZE => {
                return Err(BackendError::unsupported(
                    MODIFY_CALL,
                    format!("spec.{BLOCKSIZE}: fixed at create on NGXStorage"),
                ));
            }
            DEDUPLICATION => c.deduplication = Some(parse_bool(MODIFY_CALL, key, value)?),
            COMPRESSION => c.compression = Some(parse_bool(MODIFY_CALL, key, value)?),
            IO_TYPE => c.io_type = Some(parse_io_type(MODIFY_CALL, value)?),
            QOS_PRIORITY => c.qos_priority = Some(parse_qos(MODIFY_CALL, value)?),
            other => return Err(unknown_key(MODIFY_CALL, other)),
        }
    }
    Ok(c)
}

/// Applies one LUN operation other than create and delete.
pub(crate) async fn update(client: &NgxClient, id: &str, op: &LunOp) -> Result<(), BackendError> {
    match op {
        LunOp::Grow { to_bytes, .. } => {
            check_size(MODIFY_CALL, *to_bytes, &format!("Lun {id} resize"))?;
            // The client reads the LUN first (nothing is sent when the size
            // is already reached) and verifies the size afterwards.
            client
                .resize_lun(id, *to_bytes)
                .await
                .map(|_| ())
                .map_err(vendor)
        }
        LunOp::SetSettings(settings) => {
            let c = changes(settings)?;
            if c == LunChanges::default() {
                return Ok(());
            }
            client.modify_lun(id, &c).await.map_err(vendor)
        }
        LunOp::Rename { .. } => Err(BackendError::unsupported(
            MODIFY_CALL,
            "spec.name: the NGXStorage API cannot rename a LUN",
        )),
        LunOp::SetDescription(_) => Err(BackendError::unsupported(
            MODIFY_CALL,
            "spec.description: NGXStorage LUNs have no description",
        )),
        LunOp::Unmap { target_id } => client
            .remove_target_luns(target_id, std::slice::from_ref(&id.to_string()))
            .await
            .map_err(vendor),
        LunOp::Create(_) => Err(misrouted("update_lun", "a LUN create")),
        LunOp::Delete { .. } => Err(misrouted("update_lun", "a LUN delete")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocksize_reads_in_spec_spelling() {
        assert_eq!(blocksize_text("16384"), "16k");
        assert_eq!(blocksize_text("131072"), "128k");
        assert_eq!(blocksize_text("64K"), "64k");
    }

    #[test]
    fn settings_parse_and_refuse() {
        let mut s = LunSettings::new();
        s.insert(COMPRESSION.into(), "true".into());
        s.insert(QOS_PRIORITY.into(), "32".into());
        let c = changes(&s).expect("valid");
        assert_eq!((c.compression, c.qos_priority), (Some(true), Some(32)));
        s.insert(QOS_PRIORITY.into(), "33".into());
        let e = changes(&s).expect_err("bad qos");
        assert!(e.message.contains("spec.ngxstorage.qosPriority"), "{e}");
        let mut s = LunSettings::new();
        s.insert(BLOCKSIZE.into(), "8k".into());
        assert!(changes(&s).is_err());
    }
}
