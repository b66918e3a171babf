//! Types, names and schema pieces every kind shares: references, policies,
//! conditions, the common status fields, and the annotation and finalizer
//! names of PRODUCT.md section 3.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every kind.
pub const GROUP: &str = "array-operator.io";
/// API version of every kind.
pub const VERSION: &str = "v1alpha1";
/// The category every kind is listed under (`kubectl get arrayop`).
pub const CATEGORY: &str = "arrayop";

/// Annotation holding the array-side id of the object; setting it by hand on a
/// new object is how an existing array object is adopted.
pub const ANNOTATION_EXTERNAL_NAME: &str = "array-operator.io/external-name";
/// Annotation written just before a create call (crash safety).
pub const ANNOTATION_CREATE_PENDING: &str = "array-operator.io/external-create-pending";
/// Annotation written just after a create call succeeded.
pub const ANNOTATION_CREATE_SUCCEEDED: &str = "array-operator.io/external-create-succeeded";
/// Annotation written when a create call failed.
pub const ANNOTATION_CREATE_FAILED: &str = "array-operator.io/external-create-failed";
/// Annotation that, set to `"true"`, stops every array call for the object.
pub const ANNOTATION_PAUSED: &str = "array-operator.io/paused";
/// Finalizer that holds deletion until the array object is cleaned up.
pub const FINALIZER: &str = "array-operator.io/cleanup";

/// Condition type: the array object exists and matches the spec.
pub const CONDITION_READY: &str = "Ready";
/// Condition type: the last reconcile reached the array and applied the spec.
pub const CONDITION_SYNCED: &str = "Synced";
/// kstatus' `Reconciling`: True while the operator works toward the spec.
pub const CONDITION_RECONCILING: &str = "Reconciling";
/// kstatus' `Stalled`: True when the operator cannot make progress without
/// a person (invalid spec, conflict, create in doubt, unsupported).
pub const CONDITION_STALLED: &str = "Stalled";
/// Condition type (ReplicationPlan): a sync is running.
pub const CONDITION_SYNCHRONIZING: &str = "Synchronizing";

/// Reasons of the `Ready` condition.
pub mod ready_reason {
    /// The array object exists and matches.
    pub const AVAILABLE: &str = "Available";
    /// The array object is being created.
    pub const CREATING: &str = "Creating";
    /// The array object is being deleted.
    pub const DELETING: &str = "Deleting";
    /// A field differs on the array and cannot be changed through the API.
    pub const DRIFTED: &str = "Drifted";
    /// The array object is missing or unusable.
    pub const UNAVAILABLE: &str = "Unavailable";
}

/// Reasons of the `Synced` condition.
pub mod synced_reason {
    /// The last reconcile succeeded.
    pub const RECONCILE_SUCCESS: &str = "ReconcileSuccess";
    /// The array refused a call; the message carries its code and text.
    pub const RECONCILE_ERROR: &str = "ReconcileError";
    /// The array could not be reached or authenticated.
    pub const ARRAY_UNREACHABLE: &str = "ArrayUnreachable";
    /// The spec breaks a rule the schema could not express.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// An array object of that name exists and was not adopted.
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    /// The array's vendor cannot serve this kind or field.
    pub const UNSUPPORTED: &str = "Unsupported";
    /// The pause annotation is set.
    pub const PAUSED: &str = "Paused";
    /// Another object claims the same array object (id or name).
    pub const CONFLICT: &str = "Conflict";
    /// A create may have happened and the operator cannot prove the object
    /// it finds is its own.
    pub const CREATE_IN_DOUBT: &str = "CreateInDoubt";
}

/// A StorageArray in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArrayRef {
    /// Name of the StorageArray, in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret, in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretKeyRef {
    /// Name of the Secret, in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret.
    #[serde(default = "default_ca_key")]
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

fn default_ca_key() -> String {
    "ca.crt".to_string()
}

/// Another object of the same kind family in this namespace (for example the
/// Lun a clone is made from).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocalObjectRef {
    /// Name of the object, in this object's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Whether the operator may change the array object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum ManagementPolicy {
    /// Create, correct drift and delete (per deletionPolicy).
    #[default]
    Manage,
    /// Only observe: never send a mutating call; report drift in status.
    Observe,
}

/// What happens to the array object when the Kubernetes object is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum DeletionPolicy {
    /// Delete the array object (unmapping it first where needed).
    Delete,
    /// Leave the array object in place.
    Retain,
}

/// The fields every managed kind's status carries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// The metadata.generation the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Current state: `Ready` (reasons Available, Creating, Deleting, Drifted,
    /// Unavailable) and `Synced` (ReconcileSuccess, ReconcileError,
    /// ArrayUnreachable, InvalidSpec, AlreadyExists, Unsupported, Paused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The array-side id of the object (DSM LUN uuid, target id, NGX vol_id,
    /// VMM guest id, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// Pattern of a size: a Kubernetes quantity in bytes, without a fraction or a
/// milli suffix (`10Gi`, `500G`, `1099511627776`).
pub const SIZE_PATTERN: &str = r"^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$";

/// Schema of a byte-size Quantity: a string, so the apiserver, CEL and the
/// operator all read the same text.
pub fn size_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "pattern": SIZE_PATTERN,
        "maxLength": 32,
    })
}

/// Same as [`size_schema`] for an optional size.
pub fn optional_size_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = size_schema(generator);
    s.insert("nullable".into(), serde_json::Value::Bool(true));
    s
}

/// Pattern of a Go-style duration such as `30s`, `5m` or `1h30m`.
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Pattern of a cron schedule: five fields or one of the named shortcuts.
pub const CRON_PATTERN: &str =
    r"^(@(hourly|daily|weekly)|[0-9A-Za-z*,/?#-]+( [0-9A-Za-z*,/?#-]+){4})$";

/// Pattern of an IANA time zone name (`UTC`, `Europe/Istanbul`, ...).
pub const TIME_ZONE_PATTERN: &str = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$";

/// Pattern of an iSCSI qualified name (RFC 3720 `iqn.` form) or an EUI-64.
pub const IQN_PATTERN: &str = r"^(iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.:_-]+)?|eui\.[0-9A-F]{16})$";

/// Pattern of an array-side object name: what both arrays accept between
/// them. Vendor limits beyond this (NGX: 30 characters, no dots) are checked
/// at reconcile and reported as `InvalidSpec`.
pub const ARRAY_NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$";

/// The bytes a size string stands for, or `None` when it is not a size.
pub fn size_bytes(size: &str) -> Option<u64> {
    let split = size
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(size.len());
    let (digits, suffix) = size.split_at(split);
    if digits.is_empty() {
        return None;
    }
    let number: u64 = digits.parse().ok()?;
    let multiplier: u64 = match suffix {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// Schema transform for enum types: drops the type's own description so the
/// field's doc comment is what `kubectl explain` shows. kube hoists the inner
/// schema of an `Option<Enum>` over the field's, description included.
pub fn drop_type_description(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("description");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_bytes_reads_binary_and_decimal_suffixes() {
        assert_eq!(size_bytes("10Gi"), Some(10 * (1 << 30)));
        assert_eq!(size_bytes("500G"), Some(500_000_000_000));
        assert_eq!(size_bytes("1048576"), Some(1 << 20));
        assert_eq!(size_bytes("1Ki"), Some(1024));
        assert_eq!(size_bytes("1k"), Some(1000));
    }

    #[test]
    fn size_bytes_refuses_what_is_not_a_byte_size() {
        for bad in ["", "Gi", "1.5Gi", "10gi", "10GiB", "-1", "20Ei"] {
            assert_eq!(size_bytes(bad), None, "{bad}");
        }
    }
}
