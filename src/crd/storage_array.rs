//! `StorageArray`: the connection to one array.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::formats::{self, HTTPS_URL_PATTERN};
use super::shared::{CommonStatus, DURATION_PATTERN, SecretKeyRef, SecretRef};

/// A connection to one storage array: where it is, which vendor's API it
/// speaks, and the Secret holding its credentials.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "array-operator.io",
    version = "v1alpha1",
    kind = "StorageArray",
    namespaced,
    status = "StorageArrayStatus",
    shortname = "sarr",
    category = "arrayop",
    printcolumn = r#"{"name":"VENDOR","type":"string","jsonPath":".spec.vendor"}"#,
    printcolumn = r#"{"name":"ENDPOINT","type":"string","jsonPath":".spec.endpoint"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"VERSION","type":"string","jsonPath":".status.atArray.version"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.vendor == 'NGXStorage' || !has(self.ngxstorage)").message("spec.ngxstorage is only allowed when spec.vendor is NGXStorage").field_path(".ngxstorage"),
    validation = Rule::new("self.vendor != 'NGXStorage' || has(self.ngxstorage)").message("spec.ngxstorage.owner is required when spec.vendor is NGXStorage (NGX mutations name the owning controller)").field_path(".ngxstorage"),
    validation = Rule::new("self.vendor == 'NGXStorage' || !has(self.secondaryEndpoint)").message("spec.secondaryEndpoint is only allowed when spec.vendor is NGXStorage (HA pairs)").field_path(".secondaryEndpoint"),
    validation = Rule::new("self.vendor == oldSelf.vendor").message("spec.vendor is immutable").field_path(".vendor")
)]
pub struct StorageArraySpec {
    /// Which API the array speaks.
    pub vendor: Vendor,
    /// HTTPS URL of the array's API, for example `https://dsm.example.com:5001`.
    #[schemars(regex(pattern = HTTPS_URL_PATTERN), length(max = 2048))]
    #[x_kube(validation = formats::https_url("spec.endpoint"))]
    pub endpoint: String,
    /// Secret with the array credentials: keys `username` and `password` for
    /// Synology, key `token` for NGXStorage.
    pub credentials_secret_ref: SecretRef,
    /// How to verify the array's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    /// HTTPS URL of the second controller of an NGXStorage HA pair; the
    /// operator talks to whichever controller is Master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = HTTPS_URL_PATTERN), length(max = 2048))]
    #[x_kube(validation = formats::https_url("spec.secondaryEndpoint"))]
    pub secondary_endpoint: Option<String>,
    /// NGXStorage-only settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngxstorage: Option<NgxStorageArraySettings>,
    /// At most this many requests in flight to the array at once.
    #[serde(default = "default_max_concurrent_requests")]
    #[schemars(range(min = 1, max = 64))]
    pub max_concurrent_requests: i32,
    /// Upper bound on one array request, as a duration (`30s`).
    #[serde(default = "default_request_timeout")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = formats::duration("spec.requestTimeout"))]
    pub request_timeout: String,
    /// Every object on this array is re-observed at least this often (`5m`);
    /// drift is found at the latest one interval after it happened.
    #[serde(default = "default_resync_interval")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = formats::duration("spec.resyncInterval"))]
    pub resync_interval: String,
}

/// Pattern of `spec.ngxstorage.owner`: an NGX controller id.
const OWNER_PATTERN: &str = r"^[A-Za-z0-9]+_[AB]$";

fn default_max_concurrent_requests() -> i32 {
    4
}
fn default_request_timeout() -> String {
    "30s".into()
}
fn default_resync_interval() -> String {
    "5m".into()
}

/// The array vendors the operator speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum Vendor {
    /// Synology DSM WebAPI (LUN, target, snapshots, Snapshot Replication, VMM).
    Synology,
    /// NGXStorage REST API v2 (LUN, target, native snapshot schedules).
    #[serde(rename = "NGXStorage")]
    NgxStorage,
}

/// Certificate verification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSettings {
    /// Secret key holding a PEM bundle of the CAs to trust instead of the
    /// public roots (key defaults to `ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeyRef>,
    /// Accept any certificate. Only for lab arrays: it allows a
    /// man-in-the-middle to read the array credentials.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// NGXStorage-only connection settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NgxStorageArraySettings {
    /// The controller id NGX mutations must name, for example `RSA3Q866_A`.
    #[schemars(regex(pattern = OWNER_PATTERN), length(min = 3, max = 64))]
    #[x_kube(validation = formats::pattern("spec.ngxstorage.owner", OWNER_PATTERN, "an NGXStorage controller id: letters and digits, then _A or _B (RSA3Q866_A)"))]
    pub owner: String,
    /// How a LUN resize is sent: `Auto` (the default: find out safely, see
    /// below), `Absolute` (the new size, as the REST document reads) or
    /// `Delta` (the increment, as newer vendor SDKs send). The size is read
    /// back after every resize. `Auto` sends the increment first, which can
    /// never leave a LUN larger than its spec on either kind of array, and
    /// sends the new size only when the LUN read back shows the array took
    /// the increment as a size; what it learned is shown in
    /// `status.atArray.resizeMode`.
    #[serde(default)]
    pub resize_mode: ResizeMode,
}

/// How an NGX resize request is expressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum ResizeMode {
    /// Send the increment first, read back, and send the new total only
    /// when the array showed it reads `size` as a total.
    #[default]
    Auto,
    /// `size` is the new total size.
    Absolute,
    /// `size` is the increment.
    Delta,
}

/// What the operator observed of the array.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageArrayStatus {
    /// Conditions, observedGeneration (externalId is unused here).
    #[serde(flatten)]
    pub common: CommonStatus,
    /// What the array reported about itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_array: Option<StorageArrayObserved>,
}

/// What the array reported about itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageArrayObserved {
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Firmware / DSM version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Serial number, when the API offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The API dialect detected at connect (NGXStorage: `document` or `sdk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// The endpoint in use (NGXStorage HA: the Master controller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_endpoint: Option<String>,
    /// How the array reads a LUN resize `size` (NGXStorage: `Absolute` or
    /// `Delta`): the configured `spec.ngxstorage.resizeMode`, or with
    /// `Auto` what the last grow showed; unset until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_mode: Option<String>,
    /// Capacity per pool or volume, where the API offers it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolCapacity>,
}

/// Capacity of one pool (NGX) or volume (DSM).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolCapacity {
    /// Pool or volume name.
    pub name: String,
    /// Total bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<i64>,
    /// Free bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_bytes: Option<i64>,
}
