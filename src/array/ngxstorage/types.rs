//! Typed requests and responses.
//!
//! Responses are decoded from JSON through the field table in
//! [`super::dialect`], trying the detected dialect's spelling first and the
//! other one second, so an answer in either dialect decodes. Unknown extra
//! fields are ignored; numbers sent as strings (the document's byte counts)
//! and as numbers (the SDK's) are both accepted.

use std::collections::BTreeMap;

use serde_json::Value;

use super::dialect::{Dialect, Field};
use crate::model::SecretString;

/// A JSON object read through the field table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec<'a> {
    value: &'a Value,
    dialect: Dialect,
}

impl<'a> Rec<'a> {
    pub(crate) fn new(value: &'a Value, dialect: Dialect) -> Self {
        Rec { value, dialect }
    }

    pub(crate) fn get(&self, field: Field) -> Option<&'a Value> {
        field
            .candidates(self.dialect)
            .into_iter()
            .find_map(|name| self.value.get(name).filter(|v| !v.is_null()))
    }

    pub(crate) fn str(&self, field: Field) -> Option<String> {
        match self.get(field)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub(crate) fn u64(&self, field: Field) -> Option<u64> {
        as_u64(self.get(field)?)
    }

    /// The field's spellings, for error messages: `` `vol_id`/`id` ``.
    fn spelled(&self, field: Field) -> String {
        let [a, b] = field.candidates(self.dialect);
        if a == b {
            format!("`{a}`")
        } else {
            format!("`{a}`/`{b}`")
        }
    }

    pub(crate) fn need_str(&self, field: Field) -> Result<String, String> {
        match self.get(field) {
            None => Err(format!("missing field {}", self.spelled(field))),
            Some(v) => match self.str(field) {
                Some(s) if s.trim().is_empty() => {
                    Err(format!("field {} is empty", self.spelled(field)))
                }
                Some(s) => Ok(s),
                None => Err(format!(
                    "field {} is not a string or number (got {})",
                    self.spelled(field),
                    short(v)
                )),
            },
        }
    }

    pub(crate) fn need_u64(&self, field: Field) -> Result<u64, String> {
        match self.get(field) {
            None => Err(format!("missing field {}", self.spelled(field))),
            Some(v) => as_u64(v).ok_or_else(|| {
                format!(
                    "field {} is not a whole number (got {})",
                    self.spelled(field),
                    short(v)
                )
            }),
        }
    }

    /// A flag sent as a boolean, `on`/`off`, `true`/`false`, `yes`/`no`, or
    /// 1/0 as a number or a string.
    pub(crate) fn flag(&self, field: Field) -> Option<bool> {
        as_flag(self.get(field)?)
    }

    pub(crate) fn array(&self, field: Field) -> &'a [Value] {
        self.get(field)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

fn short(v: &Value) -> String {
    v.to_string().chars().take(60).collect()
}

/// A flag from a boolean, `on`/`off`, `true`/`false`, `yes`/`no`, or 1/0
/// (number or string).
pub(crate) fn as_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => Some(true),
            "off" | "false" | "no" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A number from a JSON number or a numeric string.
pub(crate) fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// What to create: the body of `POST lun/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LunCreate {
    /// Pool name (`pool_name`).
    pub pool: String,
    /// LUN name.
    pub name: String,
    /// Size in bytes; converted to `size` + `sing`.
    pub size_bytes: u64,
    /// Thin provisioning (`thin_provision` on/off).
    pub thin: bool,
    /// `blocksize` (4k ... 128k); the array's default when `None`.
    pub blocksize: Option<String>,
    /// `deduplication`.
    pub deduplication: Option<bool>,
    /// `compression`.
    pub compression: Option<bool>,
    /// `io_type` (transactional or sequential).
    pub io_type: Option<String>,
    /// `qos_priority` (4, 8, 16, 32, 64 or 128).
    pub qos_priority: Option<u32>,
}

/// Changes to a LUN other than its size: the body of `PATCH lun/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LunChanges {
    /// `deduplication`.
    pub deduplication: Option<bool>,
    /// `compression`.
    pub compression: Option<bool>,
    /// `thin_provision`.
    pub thin: Option<bool>,
    /// `io_type`.
    pub io_type: Option<String>,
    /// `qos_priority`.
    pub qos_priority: Option<u32>,
    /// `flash_cache`.
    pub flash_cache: Option<bool>,
    /// `dram_cache`.
    pub dram_cache: Option<bool>,
}

/// `on`/`off` for a flag.
pub(crate) fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// A LUN as the detail and detail-list endpoints describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lun {
    /// `vol_id` / `id`.
    pub id: String,
    /// `vol_name` / `name`.
    pub name: String,
    /// The pool it lives in.
    pub pool: Option<String>,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Bytes used.
    pub used_bytes: Option<u64>,
    /// `scsi_lunid` / `scsi_id`.
    pub scsi_lunid: Option<String>,
    /// Thin provisioned (`provision_type` thin).
    pub thin: Option<bool>,
    /// Block size as reported (bytes, for example `16384`).
    pub blocksize: Option<String>,
    /// `dedup` on/off.
    pub deduplication: Option<bool>,
    /// `compress` on/off.
    pub compression: Option<bool>,
    /// `io_type`.
    pub io_type: Option<String>,
    /// `qos_priority`.
    pub qos_priority: Option<u64>,
    /// `owner`.
    pub owner: Option<String>,
    /// The iSCSI target name it is mapped to (`protocols.iscsi`).
    pub iscsi_target: Option<String>,
}

/// Thin provisioning from the document's `provision_type` (`thin`/`full`)
/// or the SDK's `thin_provision` (on/off or a boolean).
fn thin(rec: &Rec<'_>) -> Option<bool> {
    let value = rec.get(Field::LunProvision)?;
    match value.as_str().map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if s == "thin" => Some(true),
        Some(s) if s == "full" || s == "thick" => Some(false),
        _ => as_flag(value),
    }
}

impl Lun {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(Lun {
            id: r.need_str(Field::LunId)?,
            name: r.need_str(Field::LunName)?,
            pool: r.str(Field::LunPool),
            size_bytes: r.need_u64(Field::LunSize)?,
            used_bytes: r.u64(Field::LunUsed),
            scsi_lunid: r.str(Field::LunScsiId),
            thin: thin(&r),
            blocksize: r.str(Field::LunBlocksize),
            deduplication: r.flag(Field::LunDedup),
            compression: r.flag(Field::LunCompress),
            io_type: r.str(Field::LunIoType),
            qos_priority: r.u64(Field::LunQos),
            owner: r.str(Field::LunOwner),
            iscsi_target: r
                .get(Field::LunProtocols)
                .and_then(|p| p.get("iscsi"))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        })
    }
}

/// A LUN as the short list (`GET lun/`) describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LunSummary {
    /// `vol_id` / `id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `pool`.
    pub pool: Option<String>,
    /// `owner`.
    pub owner: Option<String>,
}

impl LunSummary {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(LunSummary {
            id: r.need_str(Field::LunId)?,
            name: r
                .str(Field::LunListName)
                .or_else(|| r.str(Field::LunName))
                .ok_or("missing LUN `name`")?,
            pool: r.str(Field::LunListPool).or_else(|| r.str(Field::LunPool)),
            owner: r.str(Field::LunOwner),
        })
    }
}

/// What `POST lun/` returned for the LUN it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LunCreated {
    /// The new `vol_id`.
    pub id: String,
    /// Its `scsi_lunid`.
    pub scsi_lunid: Option<String>,
}

/// A LUN mapped to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedLun {
    /// The LUN's `vol_id`.
    pub vol_id: String,
    /// The LUN number on the target.
    pub number: Option<u32>,
    /// The LUN name.
    pub name: Option<String>,
}

impl MappedLun {
    fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(MappedLun {
            vol_id: r.need_str(Field::MappedVolId)?,
            number: r
                .u64(Field::MappedNumber)
                .and_then(|n| u32::try_from(n).ok()),
            name: r.str(Field::MappedName),
        })
    }

    pub(crate) fn decode_all(values: &[Value], d: Dialect) -> Result<Vec<Self>, String> {
        values.iter().map(|v| MappedLun::decode(v, d)).collect()
    }
}

/// An iSCSI target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `scsi_id` / `id`.
    pub id: String,
    /// `scsi_target_name` / `name`.
    pub name: String,
    /// `target_iqn`.
    pub iqn: Option<String>,
    /// `portal_id` / `portal_group_id`.
    pub portal_group_id: Option<String>,
    /// `group_id` / `auth_group_id`.
    pub auth_group_id: Option<String>,
    /// `owner`.
    pub owner: Option<String>,
    /// Mapped LUNs, in the array's order.
    pub luns: Vec<MappedLun>,
}

impl Target {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(Target {
            id: r.need_str(Field::TargetId)?,
            name: r.need_str(Field::TargetName)?,
            iqn: r.str(Field::TargetIqn),
            portal_group_id: r.str(Field::TargetPortalGroup),
            auth_group_id: r.str(Field::TargetAuthGroup),
            owner: r.str(Field::TargetOwner),
            luns: MappedLun::decode_all(r.array(Field::TargetLuns), d)?,
        })
    }
}

/// What `POST target/iscsi/` returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetCreated {
    /// The new target id.
    pub id: String,
    /// LUNs mapped at creation.
    pub luns: Vec<MappedLun>,
}

/// An initiator allowed by an auth group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initiator {
    /// The entry id (for delete).
    pub id: String,
    /// The IQN.
    pub iqn: String,
    /// `iqn_alias` / `alias`.
    pub alias: Option<String>,
}

/// An auth group. The CHAP password the array returns is kept only as a
/// redacted [`SecretString`], so the reconciler can tell a changed secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthGroup {
    /// `group_id` / `id`.
    pub id: String,
    /// `group_name` / `name`.
    pub name: String,
    /// `owner`.
    pub owner: Option<String>,
    /// CHAP user name, when CHAP is set.
    pub chap_username: Option<String>,
    /// CHAP secret, when the array returns it (the document's examples do).
    pub chap_password: Option<SecretString>,
    /// `chap_status` is 1.
    pub chap_enabled: bool,
    /// Allowed initiators.
    pub initiators: Vec<Initiator>,
}

impl AuthGroup {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        let chap = r.get(Field::Chap);
        let chap_username = chap
            .map(|c| Rec::new(c, d))
            .and_then(|c| c.str(Field::ChapUser));
        // Both dialects spell it `password`, as in the CHAP request body.
        let chap_password = chap
            .and_then(|c| c.get("password"))
            .and_then(Value::as_str)
            .map(SecretString::new);
        let initiators = r
            .array(Field::Initiators)
            .iter()
            .map(|i| {
                let i = Rec::new(i, d);
                Ok(Initiator {
                    id: i.need_str(Field::InitiatorId)?,
                    iqn: i.need_str(Field::InitiatorIqn)?,
                    alias: i.str(Field::InitiatorAlias),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(AuthGroup {
            id: r.need_str(Field::GroupId)?,
            name: r.need_str(Field::GroupName)?,
            owner: r.str(Field::GroupOwner),
            chap_enabled: r.flag(Field::ChapStatus) == Some(true),
            chap_username,
            chap_password,
            initiators,
        })
    }
}

/// A portal group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalGroup {
    /// `id`.
    pub id: String,
    /// `portal_name` / `name`.
    pub name: Option<String>,
    /// `owner`.
    pub owner: Option<String>,
    /// Listen addresses.
    pub listen_ips: Vec<String>,
}

impl PortalGroup {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(PortalGroup {
            id: r.need_str(Field::PortalId)?,
            name: r.str(Field::PortalName),
            owner: r.str(Field::PortalOwner),
            listen_ips: r
                .array(Field::PortalIps)
                .iter()
                .filter_map(|ip| match ip {
                    Value::String(s) => Some(s.clone()),
                    other => Rec::new(other, d).str(Field::PortalIp),
                })
                .collect(),
        })
    }
}

/// A snapshot of a LUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `snap_id` / `id`.
    pub id: String,
    /// `snap_name` / `name`.
    pub name: Option<String>,
    /// The LUN's id, when the array says.
    pub volume_id: Option<String>,
    /// The LUN's name.
    pub volume_name: Option<String>,
    /// Pool name.
    pub pool: Option<String>,
    /// Space it holds, bytes.
    pub reserved_bytes: Option<u64>,
    /// Creation time, Unix seconds.
    pub created: Option<u64>,
    /// Whether a clone is bound to it (`binded`).
    pub bound: Option<bool>,
}

impl Snapshot {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(Snapshot {
            id: r.need_str(Field::SnapId)?,
            name: r.str(Field::SnapName),
            volume_id: r.str(Field::SnapVolId),
            volume_name: r.str(Field::SnapVolName),
            pool: r.str(Field::SnapPool),
            reserved_bytes: r.u64(Field::SnapReserved),
            created: r.u64(Field::SnapCreated),
            bound: r.flag(Field::SnapBinded),
        })
    }
}

/// A LUN's native snapshot schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSchedule {
    /// The schedule id.
    pub id: Option<String>,
    /// The cron expression (`c_time`).
    pub cron: String,
    /// Snapshots kept (`keep_max`).
    pub keep_max: u64,
    /// The array's description (`h_read`).
    pub readable: Option<String>,
}

impl SnapshotSchedule {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(SnapshotSchedule {
            id: r.str(Field::ScheduleId),
            cron: r
                .str(Field::ScheduleCron)
                .or_else(|| {
                    v.get("cron_time")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .ok_or_else(|| format!("missing field {}", r.spelled(Field::ScheduleCron)))?,
            keep_max: r.need_u64(Field::ScheduleKeep)?,
            readable: r.str(Field::ScheduleReadable),
        })
    }
}

/// A pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// `pool_id` / `id`.
    pub id: String,
    /// `pool_name` / `name`.
    pub name: String,
    /// `owner`.
    pub owner: Option<String>,
    /// `status` (ONLINE, ...), on detail.
    pub status: Option<String>,
}

impl Pool {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(Pool {
            id: r.need_str(Field::PoolId)?,
            name: r.need_str(Field::PoolName)?,
            owner: r.str(Field::PoolOwner),
            status: r.str(Field::PoolStatus),
        })
    }
}

/// Capacity of one pool, from `pool/overview` or `status/capacity`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolCapacity {
    /// Pool name.
    pub pool: String,
    /// Total bytes.
    pub total_bytes: Option<u64>,
    /// Free bytes.
    pub free_bytes: Option<u64>,
    /// Allocated bytes.
    pub allocated_bytes: Option<u64>,
    /// Logically available bytes.
    pub logical_available_bytes: Option<u64>,
    /// Logically reserved bytes.
    pub logical_reserved_bytes: Option<u64>,
}

impl PoolCapacity {
    fn from_info(pool: String, info: &Value) -> Self {
        let n = |k: &str| info.get(k).and_then(as_u64);
        PoolCapacity {
            pool,
            total_bytes: n("total_size"),
            free_bytes: n("free_size"),
            allocated_bytes: n("allocated_size"),
            logical_available_bytes: n("logical_avail"),
            logical_reserved_bytes: n("logical_reserved"),
        }
    }

    /// Decodes `pool/overview`: the document's array of
    /// `{pool_name, capacity{...}}` or the SDK's single object.
    pub(crate) fn decode_overview(v: &Value) -> Result<Vec<Self>, String> {
        let one = |item: &Value| -> Result<Self, String> {
            let name = item
                .get("pool_name")
                .or_else(|| item.get("name"))
                .and_then(Value::as_str)
                .ok_or("pool overview entry without `pool_name`")?;
            let info = item.get("capacity").unwrap_or(item);
            Ok(PoolCapacity::from_info(name.to_string(), info))
        };
        match v {
            Value::Array(items) => items.iter().map(one).collect(),
            // One pool's entry.
            Value::Object(o) if o.contains_key("pool_name") || o.contains_key("name") => {
                Ok(vec![one(v)?])
            }
            // Entries keyed by pool name (the SDK decodes an object).
            Value::Object(o) => o
                .iter()
                .map(|(name, entry)| {
                    let info = entry.get("capacity").unwrap_or(entry);
                    Ok(PoolCapacity::from_info(name.clone(), info))
                })
                .collect(),
            _ => Err("pool overview is neither an array nor an object".into()),
        }
    }

    /// Decodes `status/capacity`: the document's `{pool: {info{...}}}` or
    /// the SDK's `[{name, logical{available, reserved}}]`.
    pub(crate) fn decode_status(v: &Value) -> Result<Vec<Self>, String> {
        match v {
            Value::Object(pools) => Ok(pools
                .iter()
                .map(|(name, p)| PoolCapacity::from_info(name.clone(), p.get("info").unwrap_or(p)))
                .collect()),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    let name = item
                        .get("name")
                        .or_else(|| item.get("pool_name"))
                        .and_then(Value::as_str)
                        .ok_or("capacity entry without `name`")?;
                    let logical = item.get("logical");
                    let n = |k: &str| logical.and_then(|l| l.get(k)).and_then(as_u64);
                    let mut cap = PoolCapacity::from_info(name.to_string(), item);
                    cap.logical_available_bytes = cap.logical_available_bytes.or(n("available"));
                    cap.logical_reserved_bytes = cap.logical_reserved_bytes.or(n("reserved"));
                    Ok(cap)
                })
                .collect(),
            _ => Err("status/capacity is neither an object nor an array".into()),
        }
    }
}

/// `status/system_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemInfo {
    /// Model (`product`).
    pub product: Option<String>,
    /// Software version (`app_version`).
    pub app_version: Option<String>,
    /// Serial (`service_tag`); the controller ids are `<tag>_A`/`_B`.
    pub service_tag: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
}

impl SystemInfo {
    pub(crate) fn decode(v: &Value) -> Self {
        let s = |k: &str| match v.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        SystemInfo {
            product: s("product"),
            app_version: s("app_version"),
            service_tag: s("service_tag"),
            os_version: s("os_version"),
        }
    }
}

/// `status/cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// `connected` is 1.
    pub connected: bool,
    /// `Master`, `Ready`, `Cluster`, ...
    pub status: String,
    /// Controller ids of the pair.
    pub peers: Vec<String>,
}

impl ClusterStatus {
    /// Whether this controller is the Master.
    pub fn is_master(&self) -> bool {
        self.status.eq_ignore_ascii_case("master")
    }

    pub(crate) fn decode(v: &Value) -> Result<Self, String> {
        Ok(ClusterStatus {
            connected: v.get("connected").and_then(as_u64) == Some(1),
            status: v
                .get("status")
                .and_then(Value::as_str)
                .ok_or("missing `status`")?
                .to_string(),
            peers: v
                .get("peers")
                .and_then(Value::as_array)
                .map(|peers| {
                    peers
                        .iter()
                        .filter_map(|p| p.get("id").and_then(Value::as_str).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// `status/license`.
#[derive(Clone, Debug, PartialEq)]
pub struct License {
    /// Valid from, Unix seconds.
    pub start_time: Option<u64>,
    /// Valid until, Unix seconds.
    pub expire_time: Option<u64>,
    /// Every other entry (feature flags and capacities), as sent.
    pub features: BTreeMap<String, Value>,
}

impl License {
    pub(crate) fn decode(v: &Value) -> Result<Self, String> {
        let object = v.as_object().ok_or("status/license is not an object")?;
        Ok(License {
            start_time: object.get("start_time").and_then(as_u64),
            expire_time: object.get("expire_time").and_then(as_u64),
            features: object
                .iter()
                .filter(|(k, _)| *k != "start_time" && *k != "expire_time")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// Whether a feature flag (for example `snapshot`, `clone`) is 1.
    pub fn has(&self, feature: &str) -> bool {
        self.features.get(feature).and_then(as_u64) == Some(1)
    }
}

/// A pool's status from `status/pools`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolHealth {
    /// Pool id.
    pub id: Option<String>,
    /// Pool name.
    pub name: String,
    /// `status`, for example ONLINE.
    pub status: Option<String>,
    /// Owning controller.
    pub owner: Option<String>,
}

impl PoolHealth {
    pub(crate) fn decode(v: &Value, d: Dialect) -> Result<Self, String> {
        let r = Rec::new(v, d);
        Ok(PoolHealth {
            id: r.str(Field::PoolId),
            name: r.need_str(Field::PoolName)?,
            status: r.str(Field::PoolStatus),
            owner: r.str(Field::PoolOwner),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lun_decodes_from_either_dialect() {
        let doc = json!({"vol_id": "ab", "vol_name": "x", "vol_size": "1073741824", "provision_type": "thin", "protocols": {"iscsi": "t1"}});
        let sdk = json!({"id": "ab", "name": "x", "size": 1073741824u64, "extra": [1]});
        for d in Dialect::ALL {
            let a = Lun::decode(&doc, d).expect("doc");
            let b = Lun::decode(&sdk, d).expect("sdk");
            assert_eq!((a.id.as_str(), a.size_bytes), ("ab", 1 << 30));
            assert_eq!((b.id.as_str(), b.size_bytes), ("ab", 1 << 30));
            assert_eq!(a.iscsi_target.as_deref(), Some("t1"));
            assert_eq!(a.thin, Some(true));
        }
    }

    #[test]
    fn capacity_decodes_both_shapes() {
        let doc = json!({"p1": {"info": {"total_size": "100", "logical_avail": "40"}}});
        let sdk = json!([{"name": "p1", "logical": {"available": 40, "reserved": 1}}]);
        let a = PoolCapacity::decode_status(&doc).expect("doc");
        let b = PoolCapacity::decode_status(&sdk).expect("sdk");
        assert_eq!(a[0].logical_available_bytes, Some(40));
        assert_eq!(b[0].logical_available_bytes, Some(40));
        assert_eq!(b[0].pool, "p1");
    }

    /// One record per row: (what, dialect of the client, JSON, expected).
    /// Rows come in three shapes for every field the client reads: the
    /// document's, the SDK's, and the SDK's own test fixtures.
    #[test]
    fn lun_records_decode_in_every_shape() {
        type Row = (
            &'static str,
            Value,
            (u64, Option<bool>, Option<bool>, Option<bool>),
        );
        let rows: Vec<Row> = vec![
            (
                "document: strings, provision_type",
                json!({"vol_id": "a1", "vol_name": "x", "vol_size": "1073741824", "vol_used": "4096",
                       "provision_type": "thin", "dedup": "on", "compress": "off"}),
                (1 << 30, Some(true), Some(true), Some(false)),
            ),
            (
                "document: numbers where it shows strings",
                json!({"vol_id": "a1", "vol_name": "x", "vol_size": 1073741824u64,
                       "provision_type": "full", "dedup": "off", "compress": "on"}),
                (1 << 30, Some(false), Some(false), Some(true)),
            ),
            (
                "sdk: numbers, thin_provision/deduplication/compression on/off",
                json!({"id": "a1", "name": "x", "size": 1073741824u64, "used": 0,
                       "thin_provision": "on", "deduplication": "off", "compression": "on", "created": 1788950470u64}),
                (1 << 30, Some(true), Some(false), Some(true)),
            ),
            (
                "sdk: strings and booleans (FlexBytes/FlexOnOff, types.go@2a0a706d)",
                json!({"id": "a1", "name": "x", "size": "1073741824", "thin_provision": false,
                       "deduplication": true, "compression": "off", "extra": {"nested": [1]}}),
                (1 << 30, Some(false), Some(true), Some(false)),
            ),
            (
                "sdk fixture: client_test.go@8158dc31 create answer luns[0]",
                json!({"id": "lun-1", "name": "vol1", "size": 0}),
                (0, None, None, None),
            ),
        ];
        for d in Dialect::ALL {
            for (what, record, (size, thin, dedup, compress)) in &rows {
                let l = Lun::decode(record, d).unwrap_or_else(|e| panic!("{what} ({d}): {e}"));
                assert_eq!(
                    (l.size_bytes, l.thin, l.deduplication, l.compression),
                    (*size, *thin, *dedup, *compress),
                    "{what} ({d})"
                );
            }
        }
    }

    #[test]
    fn a_missing_or_malformed_field_is_named() {
        for d in Dialect::ALL {
            let e = Lun::decode(&json!({"name": "x", "size": 1}), d).expect_err("no id");
            assert!(
                e.contains("missing field") && e.contains("`vol_id`") && e.contains("`id`"),
                "{e}"
            );
            let e = Lun::decode(&json!({"id": "a", "name": "x", "size": "big"}), d)
                .expect_err("bad size");
            assert!(
                e.contains("not a whole number") && e.contains("\"big\""),
                "{e}"
            );
            let e =
                Lun::decode(&json!({"id": "", "name": "x", "size": 1}), d).expect_err("empty id");
            assert!(e.contains("is empty"), "{e}");
            let e = Target::decode(
                &json!({"id": "t", "name": "n", "luns": [{"number": "1"}]}),
                d,
            )
            .expect_err("mapped LUN without id");
            assert!(e.contains("missing field"), "{e}");
        }
    }

    #[test]
    fn target_lun_numbers_decode_as_strings_or_numbers() {
        // client_test.go@8158dc31: "number":"6" (TestFCTargetGetRaw) and
        // "number":6 (TestFCTargetGetNumericLUNNumber); the document's
        // `lun_number` strings.
        let rows = [
            json!({"id": "t1", "name": "tgt-a", "owner": "o1", "luns": [{"id": "lun-1", "name": "v", "number": "6"}]}),
            json!({"id": "t1", "name": "tgt-a", "owner": "o1", "luns": [{"id": "lun-1", "name": "v", "number": 6}]}),
            json!({"scsi_id": "t1", "scsi_target_name": "tgt-a", "luns": [{"vol_id": "lun-1", "lun_number": "6"}]}),
        ];
        for d in Dialect::ALL {
            for r in &rows {
                let t = Target::decode(r, d).unwrap_or_else(|e| panic!("{r} ({d}): {e}"));
                assert_eq!((t.id.as_str(), t.luns[0].number), ("t1", Some(6)), "{r}");
                assert_eq!(t.luns[0].vol_id, "lun-1");
            }
        }
    }

    #[test]
    fn snapshots_decode_the_live_fixture_and_both_dialects() {
        // snapshot_test.go@7db4426a liveSnapshotShape, verbatim values.
        let live = json!({"binded":0,"created":"1788950470","id":"08282136ef7e8708ee8c29c3ee88cd820da2037e",
            "name":"probe-snap-tmp","path":"probe-snap-vol@probe-snap-tmp","pool_name":"openstackSSD1",
            "reserved":"57344","restore":1,"vol_size":"1073741824",
            "volume_id":"7176302add549ceaf03caef021707ca0e6021f89","volume_name":"probe-snap-vol","volume_type":"lun"});
        let doc = json!({"reserved": "57344", "pool_name": "nvme1", "binded": 0, "restore": 1, "snap_name": "x",
            "snap_id": "816479d3d58565ea7670d7c3dc9a25fb143e96e6", "vol_name": "x", "created": "1713251666"});
        let numeric = json!({"id": "s1", "name": "n", "reserved": 57344, "created": 1713251666u64, "binded": true});
        for d in Dialect::ALL {
            let s = Snapshot::decode(&live, d).expect("live");
            assert_eq!(s.volume_name.as_deref(), Some("probe-snap-vol"));
            assert_eq!(
                (s.reserved_bytes, s.created, s.bound),
                (Some(57344), Some(1788950470), Some(false))
            );
            let s = Snapshot::decode(&doc, d).expect("doc");
            assert_eq!(
                (s.name.as_deref(), s.volume_name.as_deref()),
                (Some("x"), Some("x"))
            );
            let s = Snapshot::decode(&numeric, d).expect("numbers");
            assert_eq!((s.reserved_bytes, s.bound), (Some(57344), Some(true)));
        }
    }

    #[test]
    fn auth_groups_decode_every_chap_status_form() {
        // authgroup_test.go@2a0a706d TestAuthGroupUnmarshalChapStatus rows.
        let rows = [
            (json!(1), true),
            (json!(0), false),
            (json!(true), true),
            (json!(false), false),
            (json!("1"), true),
        ];
        for d in Dialect::ALL {
            for (status, want) in &rows {
                let g = AuthGroup::decode(
                    &json!({"id": "ag-1", "name": "ag", "chap_status": status}),
                    d,
                )
                .expect("group");
                assert_eq!((g.id.as_str(), g.chap_enabled), ("ag-1", *want), "{status}");
            }
            let g = AuthGroup::decode(&json!({"group_id": "ag-1", "group_name": "ag"}), d)
                .expect("doc");
            assert!(!g.chap_enabled);
        }
    }

    #[test]
    fn schedules_and_pools_decode_both_spellings() {
        let doc = json!({"id": "1", "c_time": "45 23 * * 6", "keep_max": 3, "h_read": "x"});
        let sdk = json!({"id": "", "volume_id": "v", "interval": "45 23 * * 6", "retention": "3", "enabled": true, "next_run": ""});
        for d in Dialect::ALL {
            for r in [&doc, &sdk] {
                let s = SnapshotSchedule::decode(r, d).expect("schedule");
                assert_eq!((s.cron.as_str(), s.keep_max), ("45 23 * * 6", 3), "{r}");
            }
            // pool_test.go@7db4426a fixtures and the document's names.
            for r in [
                json!({"id":"p1","name":"test1","owner":"ctrl-b","blocksize":"16k"}),
                json!({"id":"p1","name":"test1","is_flash":1}),
                json!({"pool_id":"p1","pool_name":"test1","owner":"1"}),
            ] {
                let p = Pool::decode(&r, d).expect("pool");
                assert_eq!((p.id.as_str(), p.name.as_str()), ("p1", "test1"), "{r}");
            }
        }
        // The overview: the document's array, and the object the SDK decodes
        // (keyed by pool name, or one entry).
        let keyed = json!({"pool1": {"capacity": {"total_size": "100", "free_size": 40}}});
        let one = json!({"pool_name": "pool1", "capacity": {"total_size": 100}});
        let listed = json!([{"pool_name": "pool1", "capacity": {"total_size": "100"}}]);
        for v in [keyed, one, listed] {
            let caps = PoolCapacity::decode_overview(&v).expect("overview");
            assert_eq!(
                (caps[0].pool.as_str(), caps[0].total_bytes),
                ("pool1", Some(100)),
                "{v}"
            );
        }
    }
}
