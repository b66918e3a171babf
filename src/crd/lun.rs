//! `Lun`: a DSM iSCSI LUN or an NGX LUN volume.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{
    ARRAY_NAME_PATTERN, ArrayRef, CommonStatus, DeletionPolicy, LocalObjectRef, ManagementPolicy,
};

/// A block volume on an array, exported over iSCSI through an IscsiTarget.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "array-operator.io",
    version = "v1alpha1",
    kind = "Lun",
    namespaced,
    status = "LunStatus",
    shortname = "lun",
    category = "arrayop",
    printcolumn = r#"{"name":"ARRAY","type":"string","jsonPath":".spec.arrayRef.name"}"#,
    printcolumn = r#"{"name":"SIZE","type":"string","jsonPath":".spec.size"}"#,
    printcolumn = r#"{"name":"TYPE","type":"string","jsonPath":".status.atArray.type"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"SYNCED","type":"string","jsonPath":".status.conditions[?(@.type==\"Synced\")].status"}"#,
    printcolumn = r#"{"name":"EXTERNAL-ID","type":"string","jsonPath":".status.externalId"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    // metadata.name is the array-side name when spec.name is unset: it must
    // then fit what the arrays accept (DSM 128 characters; NGXStorage 30
    // letters, digits, `_` or `-`).
    validation = Rule::new("has(self.spec.name) || size(self.metadata.name) <= 128").message("metadata.name is the LUN's name on the array when spec.name is unset, and arrays accept at most 128 characters: set spec.name"),
    validation = Rule::new("!(has(self.spec.pool) || has(self.spec.ngxstorage)) || has(self.spec.name) || self.metadata.name.matches('^[a-z0-9-]{1,30}$')").message("metadata.name is the LUN's name on NGXStorage when spec.name is unset, and NGXStorage accepts 1-30 letters, digits, '_' or '-' (no dots): set spec.name")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.pool) || has(self.ngxstorage)) || !has(self.name) || self.name.matches('^[A-Za-z0-9_-]{1,30}$')").message("spec.name on NGXStorage (spec.pool or spec.ngxstorage set) must be 1-30 letters, digits, '_' or '-'").field_path(".name"),
    validation = Rule::new("quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0").message("spec.size may only grow: an array cannot shrink a LUN without losing data").field_path(".size"),
    validation = Rule::new("!has(oldSelf.location) || (has(self.location) && self.location == oldSelf.location)").message("spec.location is immutable once set").field_path(".location"),
    validation = Rule::new("!has(oldSelf.pool) || (has(self.pool) && self.pool == oldSelf.pool)").message("spec.pool is immutable once set").field_path(".pool"),
    validation = Rule::new("!(has(self.location) && has(self.pool))").message("set spec.location (Synology) or spec.pool (NGXStorage), not both").field_path(".pool"),
    validation = Rule::new("!(has(self.synology) && has(self.ngxstorage))").message("set spec.synology or spec.ngxstorage, not both: a Lun lives on one vendor's array").field_path(".ngxstorage"),
    validation = Rule::new("!has(self.synology) || !has(self.pool)").message("spec.synology goes with spec.location (Synology), not spec.pool").field_path(".synology"),
    validation = Rule::new("!has(self.ngxstorage) || !has(self.location)").message("spec.ngxstorage goes with spec.pool (NGXStorage), not spec.location").field_path(".ngxstorage"),
    validation = Rule::new("has(self.source) == has(oldSelf.source) && (!has(self.source) || self.source == oldSelf.source)").message("spec.source is create-time only: it cannot be added, changed or removed").field_path(".source"),
    validation = Rule::new("self.thinProvisioning == oldSelf.thinProvisioning").message("spec.thinProvisioning is immutable: the provisioning type is fixed at create").field_path(".thinProvisioning"),
    validation = Rule::new("quantity(self.size).isGreaterThan(quantity('0'))").message("spec.size must be greater than zero").field_path(".size"),
    validation = super::formats::size_member("size", "spec.size", false),
    validation = super::formats::whole_mib_member("size", false, "has(self.pool) || has(self.ngxstorage)", "spec.size on NGXStorage (spec.pool or spec.ngxstorage set)", "NGXStorage sizes LUNs in MiB"),
    validation = Rule::new("!(has(self.pool) || has(self.ngxstorage)) || !has(self.description) || self.description == ''").message("spec.description is not allowed on NGXStorage (spec.pool or spec.ngxstorage set): NGXStorage LUNs have no description").field_path(".description"),
    // DSM's thin types (BLUN, THIN, ADV) and thick ones (BLUN_THICK, FILE).
    validation = Rule::new("!has(self.synology) || !has(self.synology.type) || (self.synology.type in ['BLUN', 'THIN', 'ADV']) == self.thinProvisioning").message("spec.synology.type must agree with spec.thinProvisioning: BLUN, THIN and ADV are thin, BLUN_THICK and FILE are thick").field_path(".synology.type")
)]
pub struct LunSpec {
    /// The StorageArray this LUN lives on.
    pub array_ref: ArrayRef,
    /// Array-side name; defaults to metadata.name. NGXStorage accepts at most
    /// 30 letters, digits, `_` and `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ARRAY_NAME_PATTERN), length(min = 1, max = 128))]
    pub name: Option<String>,
    /// Size in bytes as a quantity (`10Gi`). May only grow. NGXStorage needs a
    /// whole number of MiB.
    #[schemars(schema_with = "super::shared::size_schema")]
    pub size: Quantity,
    /// Synology: the volume the LUN lives on (`/volume1`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = LOCATION_PATTERN), length(max = 32))]
    #[x_kube(validation = super::formats::pattern("spec.location", LOCATION_PATTERN, "a Synology volume path such as /volume1"))]
    pub location: Option<String>,
    /// NGXStorage: the pool the LUN lives in (1-20 letters or digits). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = POOL_PATTERN), length(max = 20))]
    #[x_kube(validation = super::formats::pattern("spec.pool", POOL_PATTERN, "an NGXStorage pool name: 1-20 letters or digits"))]
    pub pool: Option<String>,
    /// Thin (true) or thick (false) provisioning. On Synology thin creates
    /// `BLUN` and thick `BLUN_THICK` unless `synology.type` says otherwise.
    /// Immutable.
    #[serde(default = "default_true")]
    pub thin_provisioning: bool,
    /// Free text stored on the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub description: Option<String>,
    /// Synology-only LUN settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synology: Option<SynologyLunSettings>,
    /// NGXStorage-only LUN settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngxstorage: Option<NgxStorageLunSettings>,
    /// Create the LUN as a clone. Create-time only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<LunSource>,
    /// `Manage` (default) or `Observe` (never mutate; report drift).
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// `Delete` or `Retain` the array LUN when this object is deleted. Unset:
    /// Delete for LUNs the operator created, Retain for adopted ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Pattern of `spec.location`: a Synology volume path.
const LOCATION_PATTERN: &str = r"^/volume[0-9]+$";
/// Pattern of `spec.pool`: an NGXStorage pool name.
const POOL_PATTERN: &str = r"^[A-Za-z0-9]{1,20}$";

fn default_true() -> bool {
    true
}

/// Synology LUN types that can be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[allow(clippy::upper_case_acronyms)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum SynologyLunType {
    /// Block-level thin LUN (Btrfs).
    #[serde(rename = "BLUN")]
    Blun,
    /// Block-level thick LUN.
    #[serde(rename = "BLUN_THICK")]
    BlunThick,
    /// Legacy file-based LUN.
    #[serde(rename = "FILE")]
    File,
    /// Legacy thin LUN.
    #[serde(rename = "THIN")]
    Thin,
    /// Advanced LUN (ext4 volumes).
    #[serde(rename = "ADV")]
    Adv,
}

/// Synology-only LUN settings. Unset flags are left as DSM defaults them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SynologyLunSettings {
    /// LUN type; overrides the choice thinProvisioning makes. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.synology.type is immutable"))]
    pub lun_type: Option<SynologyLunType>,
    /// SCSI COMPARE AND WRITE (atomic test-and-set, for clustered filesystems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate_caw: Option<bool>,
    /// SCSI third-party copy (XCOPY offload).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "emulate3pc"
    )]
    pub emulate_3pc: Option<bool>,
    /// SCSI UNMAP (space reclamation on thin LUNs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate_tpu: Option<bool>,
    /// SCSI WRITE SAME with unmap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate_tpws: Option<bool>,
    /// Honour the FUA bit on writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate_fua_write: Option<bool>,
    /// Honour SYNCHRONIZE CACHE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulate_sync_cache: Option<bool>,
    /// Allow snapshots of this LUN (thin LUNs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_snapshot: Option<bool>,
}

/// NGX block sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum NgxBlockSize {
    /// 4 KiB.
    #[serde(rename = "4k")]
    K4,
    /// 8 KiB.
    #[serde(rename = "8k")]
    K8,
    /// 16 KiB.
    #[serde(rename = "16k")]
    K16,
    /// 32 KiB.
    #[serde(rename = "32k")]
    K32,
    /// 64 KiB.
    #[serde(rename = "64k")]
    K64,
    /// 128 KiB.
    #[serde(rename = "128k")]
    K128,
}

/// NGX I/O profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum NgxIoType {
    /// Small random I/O (databases, VMs).
    Transactional,
    /// Large streaming I/O (backup, media).
    Sequential,
}

/// NGXStorage-only LUN settings; unset values are left as the array defaults
/// them (blocksize auto, dedup and compression off, transactional, QoS 16).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NgxStorageLunSettings {
    /// Block size. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.ngxstorage.blocksize is immutable"))]
    pub blocksize: Option<NgxBlockSize>,
    /// Inline deduplication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplication: Option<bool>,
    /// Inline compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<bool>,
    /// I/O profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_type: Option<NgxIoType>,
    /// QoS priority: 4, 8, 16, 32, 64 or 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = [4, 8, 16, 32, 64, 128]))]
    pub qos_priority: Option<i32>,
}

/// Where a cloned LUN comes from. Exactly one field is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.lunRef) != has(self.snapshot)").message("spec.source needs exactly one of lunRef or snapshot"))]
pub struct LunSource {
    /// Clone another Lun of this namespace (same array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lun_ref: Option<LocalObjectRef>,
    /// NGXStorage: clone this snapshot id (1-40 hexadecimal characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{1,40}$"), length(max = 40))]
    pub snapshot: Option<String>,
}

/// What the operator observed of the LUN.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LunStatus {
    /// Conditions, observedGeneration and externalId.
    #[serde(flatten)]
    pub common: CommonStatus,
    /// The LUN as last observed on the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_array: Option<LunObserved>,
}

/// The LUN as last observed on the array.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LunObserved {
    /// Array-side name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Provisioned size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// Bytes actually allocated (thin LUNs grow into their size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<i64>,
    /// Array LUN type (`BLUN`, `BLUN_THICK`, `thin`, `full`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub lun_type: Option<String>,
    /// Synology volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// NGXStorage pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Targets (array-side ids) the LUN is mapped to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mapped_targets: Vec<String>,
    /// The array's own status word for the LUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
