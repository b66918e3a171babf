//! The one table of NGXStorage paths and field names, per dialect.
//!
//! Two sources disagree about the REST API v2: the vendor's document
//! (`ngxstorage-rest-api-v2.4.1.txt`, [`Dialect::Document`]) and the vendor's
//! public Go SDK ([`Dialect::Sdk`]). No real array is reachable to settle it,
//! so the client speaks both and the simulator serves either. Every path and
//! every field name that differs lives here, and only here: both the client
//! and the simulator read this module, so a correction is a one-line change.

use std::fmt;

/// Which description of the API an array follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// The 2.4.1 document: `iscsi_target/...` paths, `vol_id`/`group_id`
    /// field names, absolute resize.
    #[default]
    Document,
    /// The Go SDK: `target/iscsi/...` paths, `id`/`name` field names,
    /// additive (delta) resize.
    Sdk,
}

impl Dialect {
    /// Both dialects, document first.
    pub const ALL: [Dialect; 2] = [Dialect::Document, Dialect::Sdk];

    /// The lowercase name used on the command line and in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Document => "document",
            Dialect::Sdk => "sdk",
        }
    }

    /// Whether a LUN modify `size` is the new total (`false`) or an
    /// increment (`true`) on an array of this dialect.
    pub fn resize_is_delta(self) -> bool {
        matches!(self, Dialect::Sdk)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "document" => Ok(Dialect::Document),
            "sdk" => Ok(Dialect::Sdk),
            other => Err(format!("unknown dialect `{other}` (document or sdk)")),
        }
    }
}

/// HTTP method of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

impl Method {
    /// The method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Whether resending after an ambiguous transport failure cannot create a
    /// second object. POST, PUT and PATCH are never replayed.
    pub fn replay_safe(self) -> bool {
        matches!(self, Method::Get | Method::Delete)
    }
}

/// Every operation the client uses. Paths come from [`Endpoint::path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names say it; the paths are in the table below
pub enum Endpoint {
    LunCreate,
    LunDelete,
    LunModify,
    LunDetail,
    LunDetailList,
    LunList,
    TargetCreate,
    TargetDelete,
    TargetRename,
    TargetPortalGroup,
    TargetAuthGroup,
    TargetAddLun,
    TargetRemoveLun,
    TargetDetail,
    TargetDetailList,
    TargetList,
    AuthGroupCreate,
    AuthGroupDelete,
    AuthGroupRename,
    AuthGroupAddChap,
    AuthGroupDeleteChap,
    AuthGroupAddIqn,
    AuthGroupDeleteIqn,
    AuthGroupDetail,
    AuthGroupDetailList,
    AuthGroupList,
    PortalGroupList,
    PortalGroupDetailList,
    PortalGroupDetail,
    PortalGroupCreate,
    PortalGroupDelete,
    SnapshotCreate,
    SnapshotDelete,
    SnapshotDeleteAll,
    SnapshotClone,
    SnapshotRestore,
    SnapshotDetail,
    SnapshotDetailList,
    SnapshotList,
    ScheduleDetail,
    ScheduleCreate,
    ScheduleDelete,
    PoolList,
    PoolDetailList,
    PoolDetail,
    PoolOverview,
    StatusSystemInfo,
    StatusCapacity,
    StatusPools,
    StatusCluster,
    StatusLicense,
    StatusServices,
    StatusIops,
    StatusBandwidth,
    StatusCache,
    StatusCpu,
    StatusEnclosures,
    StatusOverloadedVolumes,
}

impl Endpoint {
    /// Every endpoint, in an order where a literal path segment is listed
    /// before a `{id}` that could also match it (`lun/list` before `lun/{id}`).
    pub const ALL: [Endpoint; 58] = [
        Endpoint::LunCreate,
        Endpoint::LunDetailList,
        Endpoint::LunList,
        Endpoint::LunDelete,
        Endpoint::LunModify,
        Endpoint::LunDetail,
        Endpoint::TargetCreate,
        Endpoint::TargetDetailList,
        Endpoint::TargetList,
        Endpoint::TargetPortalGroup,
        Endpoint::TargetAuthGroup,
        Endpoint::TargetAddLun,
        Endpoint::TargetRemoveLun,
        Endpoint::TargetDelete,
        Endpoint::TargetRename,
        Endpoint::TargetDetail,
        Endpoint::AuthGroupCreate,
        Endpoint::AuthGroupDetailList,
        Endpoint::AuthGroupList,
        Endpoint::AuthGroupAddChap,
        Endpoint::AuthGroupDeleteChap,
        Endpoint::AuthGroupAddIqn,
        Endpoint::AuthGroupDeleteIqn,
        Endpoint::AuthGroupDelete,
        Endpoint::AuthGroupRename,
        Endpoint::AuthGroupDetail,
        Endpoint::PortalGroupList,
        Endpoint::PortalGroupDetailList,
        Endpoint::PortalGroupDetail,
        Endpoint::PortalGroupCreate,
        Endpoint::PortalGroupDelete,
        Endpoint::SnapshotCreate,
        Endpoint::SnapshotDetailList,
        Endpoint::SnapshotList,
        Endpoint::SnapshotDeleteAll,
        Endpoint::SnapshotClone,
        Endpoint::SnapshotRestore,
        Endpoint::ScheduleDetail,
        Endpoint::ScheduleCreate,
        Endpoint::ScheduleDelete,
        Endpoint::SnapshotDelete,
        Endpoint::SnapshotDetail,
        Endpoint::PoolList,
        Endpoint::PoolDetailList,
        Endpoint::PoolOverview,
        Endpoint::PoolDetail,
        Endpoint::StatusSystemInfo,
        Endpoint::StatusCapacity,
        Endpoint::StatusPools,
        Endpoint::StatusCluster,
        Endpoint::StatusLicense,
        Endpoint::StatusServices,
        Endpoint::StatusIops,
        Endpoint::StatusBandwidth,
        Endpoint::StatusCache,
        Endpoint::StatusCpu,
        Endpoint::StatusEnclosures,
        Endpoint::StatusOverloadedVolumes,
    ];

    /// Method and path template (under `/api/v2/`, `{id}` for the path
    /// parameter) on an array of `dialect`.
    ///
    /// THE PATH TABLE. Sources: DOC = the 2.4.1 document, SDK = the Go SDK,
    /// as compared in `ngxstorage-client-notes.md` section 1.
    pub fn route(self, dialect: Dialect) -> (Method, &'static str) {
        use Dialect::{Document as D, Sdk as S};
        use Endpoint as E;
        use Method::*;
        match (self, dialect) {
            // SDK adds a trailing slash only to POST lun/.
            (E::LunCreate, _) => (Post, "lun/"),
            (E::LunDelete, _) => (Delete, "lun/{id}"),
            (E::LunModify, _) => (Patch, "lun/{id}"),
            (E::LunDetail, _) => (Get, "lun/{id}"),
            (E::LunDetailList, _) => (Get, "lun/list"),
            (E::LunList, D) => (Get, "lun/"),
            (E::LunList, S) => (Get, "lun"),
            // DOC's own create URL is target/iscsi/ although the rest of its
            // target section says iscsi_target/.
            (E::TargetCreate, D) => (Post, "target/iscsi/"),
            (E::TargetCreate, S) => (Post, "target/iscsi"),
            (E::TargetDelete, D) => (Delete, "iscsi_target/{id}"),
            (E::TargetDelete, S) => (Delete, "target/iscsi/{id}"),
            (E::TargetRename, D) => (Patch, "iscsi_target/{id}"),
            (E::TargetRename, S) => (Patch, "target/iscsi/{id}"),
            (E::TargetPortalGroup, D) => (Patch, "iscsi_target/portal_group/{id}"),
            (E::TargetPortalGroup, S) => (Patch, "target/iscsi/portal_group/{id}"),
            (E::TargetAuthGroup, D) => (Patch, "iscsi_target/auth_group/{id}"),
            (E::TargetAuthGroup, S) => (Patch, "target/iscsi/auth_group/{id}"),
            (E::TargetAddLun, D) => (Put, "iscsi_target/lun/{id}/"),
            (E::TargetAddLun, S) => (Put, "target/iscsi/lun/{id}"),
            (E::TargetRemoveLun, D) => (Patch, "iscsi_target/lun/{id}"),
            (E::TargetRemoveLun, S) => (Patch, "target/iscsi/lun/{id}"),
            (E::TargetDetail, D) => (Get, "iscsi_target/{id}"),
            (E::TargetDetail, S) => (Get, "target/iscsi/{id}"),
            (E::TargetDetailList, D) => (Get, "iscsi_target/list"),
            (E::TargetDetailList, S) => (Get, "target/iscsi/list"),
            (E::TargetList, D) => (Get, "iscsi_target/"),
            (E::TargetList, S) => (Get, "target/iscsi"),
            (E::AuthGroupCreate, D) => (Post, "auth_group/"),
            (E::AuthGroupCreate, S) => (Post, "auth_group"),
            (E::AuthGroupDelete, _) => (Delete, "auth_group/{id}"),
            (E::AuthGroupRename, _) => (Patch, "auth_group/{id}"),
            (E::AuthGroupAddChap, _) => (Patch, "auth_group/chap/{id}"),
            (E::AuthGroupDeleteChap, _) => (Delete, "auth_group/chap/{id}"),
            (E::AuthGroupAddIqn, _) => (Patch, "auth_group/iqn/{id}"),
            (E::AuthGroupDeleteIqn, D) => (Delete, "auth_group/iqn/{id}/"),
            (E::AuthGroupDeleteIqn, S) => (Delete, "auth_group/iqn/{id}"),
            (E::AuthGroupDetail, _) => (Get, "auth_group/{id}"),
            (E::AuthGroupDetailList, _) => (Get, "auth_group/list"),
            (E::AuthGroupList, D) => (Get, "auth_group/"),
            (E::AuthGroupList, S) => (Get, "auth_group"),
            (E::PortalGroupList, _) => (Get, "portal_group"),
            (E::PortalGroupDetailList, _) => (Get, "portal_group/list"),
            (E::PortalGroupDetail, _) => (Get, "portal_group/{id}"),
            // Only the SDK creates and deletes portal groups; see `served`.
            (E::PortalGroupCreate, _) => (Post, "portal_group"),
            (E::PortalGroupDelete, _) => (Delete, "portal_group/{id}"),
            (E::SnapshotCreate, D) => (Post, "snapshot/"),
            (E::SnapshotCreate, S) => (Post, "snapshot"),
            (E::SnapshotDelete, _) => (Delete, "snapshot/{id}"),
            (E::SnapshotDeleteAll, _) => (Delete, "snapshot/all/{id}"),
            (E::SnapshotClone, _) => (Post, "snapshot/clone/{id}"),
            (E::SnapshotRestore, _) => (Post, "snapshot/restore/{id}"),
            (E::SnapshotDetail, _) => (Get, "snapshot/{id}"),
            (E::SnapshotDetailList, _) => (Get, "snapshot/list"),
            (E::SnapshotList, _) => (Get, "snapshot"),
            (E::ScheduleDetail, _) => (Get, "snapshot/schedule/{id}"),
            (E::ScheduleCreate, _) => (Post, "snapshot/schedule/{id}"),
            (E::ScheduleDelete, _) => (Delete, "snapshot/schedule/{id}"),
            (E::PoolList, _) => (Get, "pool"),
            (E::PoolDetailList, _) => (Get, "pool/list"),
            (E::PoolDetail, D) => (Get, "pool/{id}/"),
            (E::PoolDetail, S) => (Get, "pool/{id}"),
            (E::PoolOverview, _) => (Get, "pool/overview"),
            (E::StatusSystemInfo, D) => (Get, "status/system_info"),
            (E::StatusSystemInfo, S) => (Get, "info/system"),
            (E::StatusCapacity, _) => (Get, "status/capacity"),
            (E::StatusPools, _) => (Get, "status/pools"),
            (E::StatusCluster, _) => (Get, "status/cluster"),
            (E::StatusLicense, _) => (Get, "status/license"),
            (E::StatusServices, _) => (Get, "status/services"),
            (E::StatusIops, _) => (Get, "status/iops"),
            (E::StatusBandwidth, _) => (Get, "status/bandwidth"),
            (E::StatusCache, _) => (Get, "status/cache"),
            (E::StatusCpu, _) => (Get, "status/cpu"),
            (E::StatusEnclosures, _) => (Get, "status/enclosures"),
            (E::StatusOverloadedVolumes, _) => (Get, "status/overloaded_volumes"),
        }
    }

    /// Whether an array of `dialect` serves the endpoint at all. The
    /// document lists portal groups read-only; only the SDK creates and
    /// deletes them, so a document-dialect array answers those as an
    /// unknown path.
    pub fn served(self, dialect: Dialect) -> bool {
        !matches!(
            (self, dialect),
            (
                Endpoint::PortalGroupCreate | Endpoint::PortalGroupDelete,
                Dialect::Document
            )
        )
    }

    /// The HTTP method (the same in both dialects).
    pub fn method(self) -> Method {
        self.route(Dialect::Document).0
    }

    /// The path template on an array of `dialect`.
    pub fn path(self, dialect: Dialect) -> &'static str {
        self.route(dialect).1
    }

    /// The path with `{id}` replaced.
    pub fn path_with(self, dialect: Dialect, id: Option<&str>) -> String {
        let template = self.path(dialect);
        match id {
            Some(id) => template.replace("{id}", id),
            None => template.to_string(),
        }
    }

    /// Whether the path takes an `{id}`.
    pub fn takes_id(self) -> bool {
        self.path(Dialect::Document).contains("{id}")
    }

    /// The operation key the simulator records and fault rules match on,
    /// for example `POST /lun/` or `PATCH /iscsi_target/lun/{id}`.
    pub fn op_key(self, dialect: Dialect) -> String {
        let (method, path) = self.route(dialect);
        format!("{} /{}", method.as_str(), path)
    }

    /// Finds the endpoint a request addresses on an array of `dialect`, and
    /// the `{id}` it carries. A trailing slash is not significant, because
    /// the two sources disagree about slashes.
    pub fn match_path(
        dialect: Dialect,
        method: &str,
        path: &str,
    ) -> Option<(Endpoint, Option<String>)> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        for endpoint in Endpoint::ALL {
            let (m, template) = endpoint.route(dialect);
            if m.as_str() != method || !endpoint.served(dialect) {
                continue;
            }
            let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut id = None;
            let matched = parts.iter().zip(&segments).all(|(p, s)| {
                if *p == "{id}" {
                    id = Some((*s).to_string());
                    !s.is_empty()
                } else {
                    p == s
                }
            });
            if matched {
                return Some((endpoint, id));
            }
        }
        None
    }
}

/// A field name that the two dialects spell differently (or that is listed
/// here so that every name the client reads has one home).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the names say it; the spellings are in the table below
pub enum Field {
    // LUN records (detail, detail list, create response).
    LunId,
    LunName,
    LunSize,
    LunUsed,
    LunScsiId,
    LunPool,
    LunProvision,
    LunBlocksize,
    LunDedup,
    LunCompress,
    LunIoType,
    LunQos,
    LunOwner,
    LunProtocols,
    LunCreated,
    // LUN list (minimal).
    LunListName,
    LunListPool,
    // Targets.
    TargetId,
    TargetName,
    TargetIqn,
    TargetPortalGroup,
    TargetAuthGroup,
    TargetOwner,
    TargetLuns,
    MappedVolId,
    MappedNumber,
    MappedName,
    CreatedId,
    // Auth groups.
    GroupId,
    GroupName,
    GroupOwner,
    ChapStatus,
    Chap,
    ChapUser,
    Initiators,
    InitiatorId,
    InitiatorIqn,
    InitiatorAlias,
    // Portal groups.
    PortalId,
    PortalName,
    PortalOwner,
    PortalIps,
    PortalIp,
    // Snapshots.
    SnapId,
    SnapName,
    SnapVolId,
    SnapVolName,
    SnapPool,
    SnapReserved,
    SnapCreated,
    SnapBinded,
    CloneVolId,
    // Snapshot schedules.
    ScheduleId,
    ScheduleCron,
    ScheduleKeep,
    ScheduleReadable,
    ScheduleVolId,
    ScheduleEnabled,
    // Pools.
    PoolId,
    PoolName,
    PoolOwner,
    PoolStatus,
    // Request bodies and query parameters that differ.
    ReqIqnAlias,
    QuerySnapshotListVolume,
}

impl Field {
    /// THE FIELD TABLE: (document spelling, SDK spelling).
    pub fn names(self) -> (&'static str, &'static str) {
        use Field::*;
        match self {
            LunId => ("vol_id", "id"),
            LunName => ("vol_name", "name"),
            LunSize => ("vol_size", "size"),
            LunUsed => ("vol_used", "used"),
            LunScsiId => ("scsi_lunid", "scsi_id"),
            LunPool => ("pool_name", "pool_name"),
            // The SDK's LUN type (types.go@2a0a706d) reads `thin_provision`,
            // `deduplication` and `compression` as on/off (or booleans).
            LunProvision => ("provision_type", "thin_provision"),
            LunBlocksize => ("blocksize", "blocksize"),
            LunDedup => ("dedup", "deduplication"),
            LunCompress => ("compress", "compression"),
            LunIoType => ("io_type", "io_type"),
            LunQos => ("qos_priority", "qos_priority"),
            LunOwner => ("owner", "owner"),
            LunProtocols => ("protocols", "protocols"),
            LunCreated => ("created", "created"),
            LunListName => ("name", "name"),
            LunListPool => ("pool", "pool"),
            TargetId => ("scsi_id", "id"),
            TargetName => ("scsi_target_name", "name"),
            TargetIqn => ("target_iqn", "target_iqn"),
            TargetPortalGroup => ("portal_id", "portal_group_id"),
            TargetAuthGroup => ("group_id", "auth_group_id"),
            TargetOwner => ("owner", "owner"),
            TargetLuns => ("luns", "luns"),
            MappedVolId => ("vol_id", "id"),
            MappedNumber => ("lun_number", "number"),
            MappedName => ("lun_name", "name"),
            CreatedId => ("id", "id"),
            GroupId => ("group_id", "id"),
            GroupName => ("group_name", "name"),
            GroupOwner => ("owner", "owner"),
            ChapStatus => ("chap_status", "chap_status"),
            Chap => ("chap", "chap"),
            ChapUser => ("username", "username"),
            Initiators => ("initiator", "initiator"),
            InitiatorId => ("id", "id"),
            InitiatorIqn => ("iqn", "iqn"),
            InitiatorAlias => ("iqn_alias", "alias"),
            PortalId => ("id", "id"),
            PortalName => ("portal_name", "name"),
            PortalOwner => ("owner", "owner"),
            PortalIps => ("listen_ips", "listen_ips"),
            PortalIp => ("ip_address", "ip_address"),
            SnapId => ("snap_id", "id"),
            SnapName => ("snap_name", "name"),
            SnapVolId => ("vol_id", "volume_id"),
            SnapVolName => ("vol_name", "volume_name"),
            SnapPool => ("pool_name", "pool_name"),
            SnapReserved => ("reserved", "reserved"),
            SnapCreated => ("created", "created"),
            SnapBinded => ("binded", "binded"),
            CloneVolId => ("vol_id", "volume_id"),
            ScheduleId => ("id", "id"),
            ScheduleCron => ("c_time", "interval"),
            ScheduleKeep => ("keep_max", "retention"),
            ScheduleReadable => ("h_read", "h_read"),
            ScheduleVolId => ("vol_id", "volume_id"),
            ScheduleEnabled => ("enabled", "enabled"),
            PoolId => ("pool_id", "id"),
            PoolName => ("pool_name", "name"),
            PoolOwner => ("owner", "owner"),
            PoolStatus => ("status", "status"),
            ReqIqnAlias => ("iqn_alias", "alias"),
            QuerySnapshotListVolume => ("vol_id", "volume_id"),
        }
    }

    /// The spelling an array of `dialect` uses.
    pub fn name(self, dialect: Dialect) -> &'static str {
        let (doc, sdk) = self.names();
        match dialect {
            Dialect::Document => doc,
            Dialect::Sdk => sdk,
        }
    }

    /// The spellings to try when decoding: the detected dialect's first, so
    /// an SDK `id` is not mistaken for a document field of the same name.
    pub fn candidates(self, dialect: Dialect) -> [&'static str; 2] {
        let (doc, sdk) = self.names();
        match dialect {
            Dialect::Document => [doc, sdk],
            Dialect::Sdk => [sdk, doc],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_matches_itself_and_nothing_shadows_it() {
        for dialect in Dialect::ALL {
            for endpoint in Endpoint::ALL.into_iter().filter(|e| e.served(dialect)) {
                let path = endpoint.path_with(dialect, Some("abc123"));
                let (found, id) = Endpoint::match_path(dialect, endpoint.method().as_str(), &path)
                    .unwrap_or_else(|| panic!("{endpoint:?} {dialect} {path}"));
                assert_eq!(found, endpoint, "{dialect} {path}");
                assert_eq!(id.is_some(), endpoint.takes_id());
            }
        }
    }

    #[test]
    fn the_probe_paths_belong_to_one_dialect_each() {
        let sdk = Endpoint::TargetDetailList.path(Dialect::Sdk);
        let doc = Endpoint::TargetDetailList.path(Dialect::Document);
        assert!(Endpoint::match_path(Dialect::Document, "GET", sdk).is_none());
        assert!(Endpoint::match_path(Dialect::Sdk, "GET", doc).is_none());
    }
}
