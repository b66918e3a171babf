//! `SYNO.Core.ISCSI.LUN`: list, get, create, set, delete, clone and the
//! target mappings seen from the LUN side.

use serde::{Deserialize, Serialize};

use super::client::{CallKind, DsmClient};
use super::error::DsmError;
use super::listing::{self, Listing};
use super::params::Params;
use super::types::{SnapshotStatus, flex_bool_opt, flex_u64, flex_u64_opt};

/// The LUN API.
pub const API_LUN: &str = "SYNO.Core.ISCSI.LUN";

/// Every LUN type `list` asks for (the default set of synology-api).
pub const ALL_LUN_TYPES: [&str; 12] = [
    "ADV",
    "CINDER",
    "FILE",
    "CINDER_BLUN",
    "CINDER_BLUN_THICK",
    "BLOCK",
    "BLUN_THICK",
    "BLUN_SINK",
    "BLUN",
    "THIN",
    "SINK",
    "BLUN_THICK_SINK",
];

const LIST_ADDITIONAL: [&str; 9] = [
    "status",
    "is_action_locked",
    "allow_bkpobj",
    "allocated_size",
    "snapshot_info",
    "extent_size",
    "family_config",
    "flashcache_status",
    "is_mapped",
];

const GET_ADDITIONAL: [&str; 12] = [
    "status",
    "is_action_locked",
    "allocated_size",
    "is_bound",
    "extent_size",
    "flashcache_status",
    "family_config",
    "import_status",
    "sync_progress",
    "is_mapped",
    "is_vhost_mapped",
    "whitelist",
];

/// A LUN type as DSM names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LunType {
    /// Thin-provisioned block LUN on Btrfs (what `thinProvisioning: true` makes).
    Blun,
    /// Thick block LUN on Btrfs.
    BlunThick,
    /// Thin LUN (the legacy name).
    Thin,
    /// Advanced (file-based) LUN.
    Adv,
    /// File LUN.
    File,
    /// Any other type name.
    Other(String),
}

impl LunType {
    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            LunType::Blun => "BLUN",
            LunType::BlunThick => "BLUN_THICK",
            LunType::Thin => "THIN",
            LunType::Adv => "ADV",
            LunType::File => "FILE",
            LunType::Other(s) => s,
        }
    }
}

/// The `emulate_*` / `can_snapshot` flags. Only the ones set are sent, as one
/// `dev_attribs` JSON array in synology-api's fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DevAttribs {
    /// Thin-provisioning WRITE SAME.
    pub emulate_tpws: Option<bool>,
    /// COMPARE AND WRITE.
    pub emulate_caw: Option<bool>,
    /// Third-party copy (XCOPY).
    pub emulate_3pc: Option<bool>,
    /// UNMAP.
    pub emulate_tpu: Option<bool>,
    /// FUA on writes.
    pub emulate_fua_write: Option<bool>,
    /// SYNCHRONIZE CACHE.
    pub emulate_sync_cache: Option<bool>,
    /// Snapshots allowed (thin types only).
    pub can_snapshot: Option<bool>,
}

/// One element of `dev_attribs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevAttrib {
    /// The flag name, for example `emulate_caw`.
    pub dev_attrib: String,
    /// 1 when on.
    pub enable: i64,
}

impl DevAttribs {
    /// The wire form; `None` when no flag is set.
    pub fn to_wire(&self) -> Option<Vec<DevAttrib>> {
        let all = [
            ("emulate_tpws", self.emulate_tpws),
            ("emulate_caw", self.emulate_caw),
            ("emulate_3pc", self.emulate_3pc),
            ("emulate_tpu", self.emulate_tpu),
            ("emulate_fua_write", self.emulate_fua_write),
            ("emulate_sync_cache", self.emulate_sync_cache),
            ("can_snapshot", self.can_snapshot),
        ];
        let list: Vec<DevAttrib> = all
            .iter()
            .filter_map(|(name, v)| {
                v.map(|on| DevAttrib {
                    dev_attrib: (*name).to_string(),
                    enable: i64::from(on),
                })
            })
            .collect();
        (!list.is_empty()).then_some(list)
    }

    /// Reads the flags back from a LUN's `dev_attribs`.
    pub fn from_wire(list: &[DevAttrib]) -> Self {
        let get = |name: &str| {
            list.iter()
                .find(|a| a.dev_attrib == name)
                .map(|a| a.enable != 0)
        };
        DevAttribs {
            emulate_tpws: get("emulate_tpws"),
            emulate_caw: get("emulate_caw"),
            emulate_3pc: get("emulate_3pc"),
            emulate_tpu: get("emulate_tpu"),
            emulate_fua_write: get("emulate_fua_write"),
            emulate_sync_cache: get("emulate_sync_cache"),
            can_snapshot: get("can_snapshot"),
        }
    }
}

/// A LUN as `list` and `get` report it. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Lun {
    /// The LUN uuid (the external id).
    pub uuid: String,
    /// The LUN name.
    pub name: String,
    /// The numeric id.
    #[serde(default)]
    pub lun_id: Option<i64>,
    /// Volume path, for example `/volume1`.
    #[serde(default)]
    pub location: String,
    /// Size in bytes.
    #[serde(deserialize_with = "flex_u64")]
    pub size: u64,
    /// Bytes actually allocated (thin LUNs start at 0).
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub allocated_size: Option<u64>,
    /// The type name, for example `BLUN`.
    #[serde(default)]
    pub type_str: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// `normal`, `creating`, ...
    #[serde(default)]
    pub status: Option<serde_json::Value>,
    /// Whether any target maps it.
    #[serde(default, deserialize_with = "flex_bool_opt")]
    pub is_mapped: Option<bool>,
    /// The emulation flags.
    #[serde(default)]
    pub dev_attribs: Vec<DevAttrib>,
    /// Snapshots, when listed with `snapshot_info`.
    #[serde(default)]
    pub snapshots: Vec<LunSnapshotBrief>,
}

impl Lun {
    /// The status as text (`normal`, ...), whatever its shape.
    pub fn status_text(&self) -> Option<String> {
        match &self.status {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(v) => v.get("type").and_then(|t| t.as_str()).map(str::to_string),
            None => None,
        }
    }

    /// The emulation flags as a struct.
    pub fn flags(&self) -> DevAttribs {
        DevAttribs::from_wire(&self.dev_attribs)
    }
}

/// A snapshot inside a LUN listing (its `status` is an object there).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LunSnapshotBrief {
    /// Snapshot uuid.
    pub uuid: String,
    /// Snapshot name.
    #[serde(default)]
    pub name: String,
    /// Status in either shape.
    #[serde(default)]
    pub status: Option<SnapshotStatus>,
}

#[derive(Deserialize)]
struct LunGet {
    lun: Lun,
}

/// What `create` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateLun {
    /// LUN name (unique on the DSM).
    pub name: String,
    /// LUN type.
    pub lun_type: LunType,
    /// Volume path.
    pub location: String,
    /// Size in bytes.
    pub size: u64,
    /// Description.
    pub description: Option<String>,
    /// Emulation flags.
    pub dev_attribs: DevAttribs,
}

/// What `create` and `clone` return.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CreatedLun {
    /// The new LUN's uuid.
    pub uuid: String,
    /// Its numeric id, when the DSM says.
    #[serde(default)]
    pub lun_id: Option<i64>,
}

/// Changes for `set`; only the fields given are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetLun {
    /// New name.
    pub new_name: Option<String>,
    /// New size in bytes (DSM only grows LUNs).
    pub new_size: Option<u64>,
    /// New description.
    pub description: Option<String>,
    /// Emulation flags to change.
    pub dev_attribs: DevAttribs,
}

#[derive(Deserialize)]
struct Cloned {
    dst_lun_uuid: String,
}

/// The LUN operations of one client.
#[derive(Clone, Copy, Debug)]
pub struct LunApi<'a> {
    client: &'a DsmClient,
}

impl DsmClient {
    /// The LUN API.
    pub fn luns(&self) -> LunApi<'_> {
        LunApi { client: self }
    }
}

impl LunApi<'_> {
    /// Every LUN of every type; fails on a malformed record (see
    /// [`LunApi::list_listing`] for the partial view).
    pub async fn list(&self) -> Result<Vec<Lun>, DsmError> {
        self.list_listing().await?.into_strict()
    }

    /// Every LUN of every type, a malformed record reported on its own.
    pub async fn list_listing(&self) -> Result<Listing<Lun>, DsmError> {
        let params = Params::new()
            .json("types", &ALL_LUN_TYPES)
            .json("additional", &LIST_ADDITIONAL);
        let data = self
            .client
            .call_raw(API_LUN, "list", "all LUNs", params, CallKind::Read)
            .await?;
        listing::decode_each(
            &format!("{API_LUN}.list"),
            "all LUNs",
            &data,
            "luns",
            "uuid",
        )
    }

    /// The LUN named `name`, if any.
    pub async fn find_by_name(&self, name: &str) -> Result<Option<Lun>, DsmError> {
        Ok(self.list().await?.into_iter().find(|l| l.name == name))
    }

    /// One LUN by uuid.
    pub async fn get(&self, uuid: &str) -> Result<Lun, DsmError> {
        let params = Params::new()
            .quoted("uuid", uuid)
            .json("additional", &GET_ADDITIONAL);
        let got: LunGet = self
            .client
            .call(
                API_LUN,
                "get",
                &format!("LUN {uuid}"),
                params,
                CallKind::Read,
            )
            .await?;
        Ok(got.lun)
    }

    /// Creates a LUN. If the answer is lost, looks the LUN up by name before
    /// anything is sent again, and sends the create once more only when it
    /// is not there.
    pub async fn create(&self, req: &CreateLun) -> Result<CreatedLun, DsmError> {
        let subject = format!("LUN {:?}", req.name);
        let mut params = Params::new()
            .raw("name", req.name.clone())
            .raw("type", req.lun_type.as_str())
            .raw("location", req.location.clone())
            .int("size", req.size);
        if let Some(attribs) = req.dev_attribs.to_wire() {
            params = params.json("dev_attribs", &attribs);
        }
        params = params.raw_opt("description", req.description.as_deref());
        let first = self
            .client
            .call(API_LUN, "create", &subject, params.clone(), CallKind::Write)
            .await;
        match first {
            Err(err) if err.outcome_unknown() => {
                // If the look-up fails too, the outcome stays unknown: report
                // the create's own error, never the look-up's.
                let Ok(found) = self.find_by_name(&req.name).await else {
                    return Err(err);
                };
                if let Some(lun) = found {
                    tracing::info!(lun = %req.name, "LUN create answer was lost, but the LUN exists");
                    return Ok(CreatedLun {
                        uuid: lun.uuid,
                        lun_id: lun.lun_id,
                    });
                }
                self.client
                    .call(API_LUN, "create", &subject, params, CallKind::Write)
                    .await
            }
            other => other,
        }
    }

    /// Changes a LUN.
    pub async fn set(&self, uuid: &str, req: &SetLun) -> Result<(), DsmError> {
        let mut params = Params::new()
            .quoted("uuid", uuid)
            .raw_opt("new_name", req.new_name.as_deref())
            .int_opt("new_size", req.new_size)
            .raw_opt("description", req.description.as_deref());
        if let Some(attribs) = req.dev_attribs.to_wire() {
            params = params.json("dev_attribs", &attribs);
        }
        self.write("set", &format!("LUN {uuid}"), params).await
    }

    /// Deletes a LUN. DSM refuses while a target still maps it.
    pub async fn delete(&self, uuid: &str) -> Result<(), DsmError> {
        let params = Params::new().quoted("uuid", "").json("uuids", &[uuid]);
        self.write("delete", &format!("LUN {uuid}"), params).await
    }

    /// Clones `src_uuid` into a new LUN `dst_name` on `dst_location`. Like
    /// `create`, a lost answer is followed by a look-up by name.
    pub async fn clone_lun(
        &self,
        src_uuid: &str,
        dst_name: &str,
        dst_location: &str,
    ) -> Result<CreatedLun, DsmError> {
        let subject = format!("clone of LUN {src_uuid} as {dst_name:?}");
        let params = Params::new()
            .quoted("src_lun_uuid", src_uuid)
            .raw("dst_lun_name", dst_name)
            .raw("dst_location", dst_location);
        let first: Result<Cloned, DsmError> = self
            .client
            .call(API_LUN, "clone", &subject, params.clone(), CallKind::Write)
            .await;
        let cloned = match first {
            Err(err) if err.outcome_unknown() => {
                let Ok(found) = self.find_by_name(dst_name).await else {
                    return Err(err);
                };
                if let Some(lun) = found {
                    return Ok(CreatedLun {
                        uuid: lun.uuid,
                        lun_id: lun.lun_id,
                    });
                }
                self.client
                    .call::<Cloned>(API_LUN, "clone", &subject, params, CallKind::Write)
                    .await?
            }
            other => other?,
        };
        Ok(CreatedLun {
            uuid: cloned.dst_lun_uuid,
            lun_id: None,
        })
    }

    /// Maps the LUN to targets.
    pub async fn map_target(&self, uuid: &str, target_ids: &[i64]) -> Result<(), DsmError> {
        let params = Params::new()
            .quoted("uuid", uuid)
            .json("target_ids", target_ids);
        self.write("map_target", &format!("LUN {uuid}"), params)
            .await
    }

    /// Unmaps the LUN from targets.
    pub async fn unmap_target(&self, uuid: &str, target_ids: &[i64]) -> Result<(), DsmError> {
        let params = Params::new()
            .quoted("uuid", uuid)
            .json("target_ids", target_ids);
        self.write("unmap_target", &format!("LUN {uuid}"), params)
            .await
    }

    async fn write(
        &self,
        method: &'static str,
        subject: &str,
        params: Params,
    ) -> Result<(), DsmError> {
        self.client
            .call_value(API_LUN, method, subject, params, CallKind::Write)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_attribs_keep_synology_api_order_and_skip_unset() {
        let flags = DevAttribs {
            can_snapshot: Some(true),
            emulate_tpws: Some(false),
            ..Default::default()
        };
        let wire = flags.to_wire().expect("some");
        assert_eq!(wire[0].dev_attrib, "emulate_tpws");
        assert_eq!(wire[0].enable, 0);
        assert_eq!(wire[1].dev_attrib, "can_snapshot");
        assert_eq!(DevAttribs::from_wire(&wire), flags);
        assert_eq!(DevAttribs::default().to_wire(), None);
    }

    #[test]
    fn lun_tolerates_extra_fields_and_string_sizes() {
        let lun: Lun = serde_json::from_value(serde_json::json!({
            "uuid": "u", "name": "n", "size": "1024", "extra": {"x": 1},
            "is_mapped": 1, "snapshots": [{"uuid": "s", "status": {"type": "Healthy"}}]
        }))
        .expect("decode");
        assert_eq!(lun.size, 1024);
        assert_eq!(lun.is_mapped, Some(true));
        assert_eq!(
            lun.snapshots[0].status.as_ref().map(|s| s.kind()),
            Some("Healthy")
        );
    }
}
