//! `SYNO.Core.ISCSI.Target`: list, get, create, set, enable, disable, the
//! LUN mappings seen from the target side, and delete.

use serde::Deserialize;

use super::client::{CallKind, DsmClient};
use super::error::DsmError;
use super::listing::{self, Listing};
use super::params::Params;
use super::types::{flex_bool, flex_u64_opt};

/// The target API.
pub const API_TARGET: &str = "SYNO.Core.ISCSI.Target";

const ADDITIONAL: [&str; 4] = ["mapped_lun", "acls", "connected_sessions", "status"];

/// CHAP credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Chap {
    /// CHAP user name.
    pub user: String,
    /// CHAP secret (DSM wants 12 to 16 characters).
    pub password: String,
}

impl std::fmt::Debug for Chap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chap")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How initiators authenticate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TargetAuth {
    /// No CHAP (`auth_type=0`).
    #[default]
    None,
    /// One-way CHAP (`auth_type=1`).
    Chap(Chap),
    /// Mutual CHAP (`auth_type=2`): the initiator's and the target's.
    Mutual {
        /// What the initiator presents.
        initiator: Chap,
        /// What the target presents back.
        target: Chap,
    },
}

impl TargetAuth {
    fn add_to(&self, params: Params) -> Params {
        match self {
            TargetAuth::None => params.int("auth_type", 0),
            TargetAuth::Chap(c) => params
                .int("auth_type", 1)
                .raw("user", c.user.clone())
                .secret("password", c.password.clone()),
            TargetAuth::Mutual { initiator, target } => params
                .int("auth_type", 2)
                .raw("user", initiator.user.clone())
                .secret("password", initiator.password.clone())
                .raw("mutual_user", target.user.clone())
                .secret("mutual_password", target.password.clone()),
        }
    }
}

/// A LUN mapped to a target.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MappedLun {
    /// The LUN's uuid.
    pub lun_uuid: String,
    /// Its position (LUN number) in the target.
    #[serde(default)]
    pub mapping_index: Option<i64>,
}

/// A target as `list` and `get` report it. CHAP passwords in the answer are
/// deliberately not kept. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Target {
    /// Numeric id (the external id).
    pub target_id: i64,
    /// Target name.
    pub name: String,
    /// IQN.
    pub iqn: String,
    /// 0 none, 1 CHAP, 2 mutual CHAP.
    #[serde(default)]
    pub auth_type: i64,
    /// CHAP user, empty when none.
    #[serde(default)]
    pub user: String,
    /// Mutual CHAP user, empty when none.
    #[serde(default)]
    pub mutual_user: String,
    /// Session limit.
    #[serde(default)]
    pub max_sessions: Option<i64>,
    /// Enabled.
    #[serde(default = "yes", deserialize_with = "flex_bool")]
    pub is_enabled: bool,
    /// DSM's own default target.
    #[serde(default, deserialize_with = "flex_bool")]
    pub is_default_target: bool,
    /// Header digest.
    #[serde(default, deserialize_with = "flex_bool")]
    pub has_header_checksum: bool,
    /// Data digest.
    #[serde(default, deserialize_with = "flex_bool")]
    pub has_data_checksum: bool,
    /// Max receive segment.
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub max_recv_seg_bytes: Option<u64>,
    /// Max send segment.
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub max_send_seg_bytes: Option<u64>,
    /// Mapped LUNs (with `additional=mapped_lun`).
    #[serde(default)]
    pub mapped_luns: Vec<MappedLun>,
    /// Connected sessions (shape varies; kept as JSON).
    #[serde(default)]
    pub connected_sessions: Vec<serde_json::Value>,
    /// `online`, `offline`, ...
    #[serde(default)]
    pub status: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct TargetGet {
    target: Target,
}

#[derive(Deserialize)]
struct Created {
    target_id: i64,
}

/// What `create` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateTarget {
    /// Target name (unique on the DSM).
    pub name: String,
    /// IQN.
    pub iqn: String,
    /// Authentication.
    pub auth: TargetAuth,
    /// Session limit.
    pub max_sessions: Option<u32>,
}

/// Changes for `set`; only the fields given are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetTarget {
    /// New name.
    pub name: Option<String>,
    /// New IQN.
    pub iqn: Option<String>,
    /// New session limit.
    pub max_sessions: Option<u32>,
    /// New authentication.
    pub auth: Option<TargetAuth>,
    /// Header digest.
    pub has_header_checksum: Option<bool>,
    /// Data digest.
    pub has_data_checksum: Option<bool>,
    /// Max receive segment bytes.
    pub max_recv_seg_bytes: Option<u64>,
    /// Max send segment bytes.
    pub max_send_seg_bytes: Option<u64>,
}

/// The target operations of one client.
#[derive(Clone, Copy, Debug)]
pub struct TargetApi<'a> {
    client: &'a DsmClient,
}

impl DsmClient {
    /// The target API.
    pub fn targets(&self) -> TargetApi<'_> {
        TargetApi { client: self }
    }
}

impl TargetApi<'_> {
    /// Every target.
    pub async fn list(&self) -> Result<Vec<Target>, DsmError> {
        self.list_with(Params::new().json("additional", &ADDITIONAL), "all targets")
            .await
    }

    /// The targets that map the LUN `lun_uuid`.
    pub async fn list_for_lun(&self, lun_uuid: &str) -> Result<Vec<Target>, DsmError> {
        let params = Params::new()
            .json("additional", &ADDITIONAL)
            .quoted("lun_uuid", lun_uuid);
        self.list_with(params, &format!("targets of LUN {lun_uuid}"))
            .await
    }

    /// Every target, a malformed record reported on its own.
    pub async fn list_listing(&self) -> Result<Listing<Target>, DsmError> {
        self.listing_with(Params::new().json("additional", &ADDITIONAL), "all targets")
            .await
    }

    async fn list_with(&self, params: Params, subject: &str) -> Result<Vec<Target>, DsmError> {
        self.listing_with(params, subject).await?.into_strict()
    }

    async fn listing_with(
        &self,
        params: Params,
        subject: &str,
    ) -> Result<Listing<Target>, DsmError> {
        let data = self
            .client
            .call_raw(API_TARGET, "list", subject, params, CallKind::Read)
            .await?;
        listing::decode_each(
            &format!("{API_TARGET}.list"),
            subject,
            &data,
            "targets",
            "target_id",
        )
    }

    /// The target named `name`, if any.
    pub async fn find_by_name(&self, name: &str) -> Result<Option<Target>, DsmError> {
        Ok(self.list().await?.into_iter().find(|t| t.name == name))
    }

    /// One target by id.
    pub async fn get(&self, target_id: i64) -> Result<Target, DsmError> {
        let params = Params::new()
            .quoted("target_id", &target_id.to_string())
            .json("additional", &ADDITIONAL);
        let got: TargetGet = self
            .client
            .call(
                API_TARGET,
                "get",
                &format!("target {target_id}"),
                params,
                CallKind::Read,
            )
            .await?;
        Ok(got.target)
    }

    /// Creates a target and returns its id. A lost answer is followed by a
    /// look-up by name before the create is sent again.
    pub async fn create(&self, req: &CreateTarget) -> Result<i64, DsmError> {
        let subject = format!("target {:?}", req.name);
        let mut params = Params::new()
            .raw("name", req.name.clone())
            .raw("iqn", req.iqn.clone());
        params = req.auth.add_to(params);
        params = params.int_opt("max_sessions", req.max_sessions);
        let first: Result<Created, DsmError> = self
            .client
            .call(
                API_TARGET,
                "create",
                &subject,
                params.clone(),
                CallKind::Write,
            )
            .await;
        match first {
            Ok(c) => Ok(c.target_id),
            Err(err) if err.outcome_unknown() => {
                let Ok(found) = self.find_by_name(&req.name).await else {
                    return Err(err);
                };
                if let Some(t) = found {
                    return Ok(t.target_id);
                }
                let c: Created = self
                    .client
                    .call(API_TARGET, "create", &subject, params, CallKind::Write)
                    .await?;
                Ok(c.target_id)
            }
            Err(err) => Err(err),
        }
    }

    /// Changes a target.
    pub async fn set(&self, target_id: i64, req: &SetTarget) -> Result<(), DsmError> {
        let mut params = Params::new()
            .raw_opt("name", req.name.as_deref())
            .raw_opt("iqn", req.iqn.as_deref())
            .int_opt("max_sessions", req.max_sessions);
        if let Some(auth) = &req.auth {
            params = auth.add_to(params);
        }
        params = params
            .bool_opt("has_header_checksum", req.has_header_checksum)
            .bool_opt("has_data_checksum", req.has_data_checksum)
            .int_opt("max_recv_seg_bytes", req.max_recv_seg_bytes)
            .int_opt("max_send_seg_bytes", req.max_send_seg_bytes);
        self.write("set", target_id, params).await
    }

    /// Enables a target.
    pub async fn enable(&self, target_id: i64) -> Result<(), DsmError> {
        self.write("enable", target_id, Params::new()).await
    }

    /// Disables a target.
    pub async fn disable(&self, target_id: i64) -> Result<(), DsmError> {
        self.write("disable", target_id, Params::new()).await
    }

    /// Maps LUNs to the target, in the order given.
    pub async fn map_lun(&self, target_id: i64, lun_uuids: &[&str]) -> Result<(), DsmError> {
        self.write(
            "map_lun",
            target_id,
            Params::new().json("lun_uuids", lun_uuids),
        )
        .await
    }

    /// Unmaps LUNs from the target.
    pub async fn unmap_lun(&self, target_id: i64, lun_uuids: &[&str]) -> Result<(), DsmError> {
        self.write(
            "unmap_lun",
            target_id,
            Params::new().json("lun_uuids", lun_uuids),
        )
        .await
    }

    /// Deletes a target.
    pub async fn delete(&self, target_id: i64) -> Result<(), DsmError> {
        self.write("delete", target_id, Params::new()).await
    }

    async fn write(
        &self,
        method: &'static str,
        target_id: i64,
        extra: Params,
    ) -> Result<(), DsmError> {
        let mut params = Params::new().quoted("target_id", &target_id.to_string());
        for (k, v) in extra.pairs() {
            params = if extra_is_secret(k) {
                params.secret(k, v.clone())
            } else {
                params.raw(k, v.clone())
            };
        }
        self.client
            .call_value(
                API_TARGET,
                method,
                &format!("target {target_id}"),
                params,
                CallKind::Write,
            )
            .await
            .map(|_| ())
    }
}

fn extra_is_secret(key: &str) -> bool {
    matches!(key, "password" | "mutual_password")
}
