//! `VirtualMachine`: a DSM Virtual Machine Manager guest.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{
    ARRAY_NAME_PATTERN, ArrayRef, CommonStatus, DURATION_PATTERN, DeletionPolicy, ManagementPolicy,
};

/// A guest in Synology Virtual Machine Manager: created from the spec, kept
/// running or stopped as runStrategy says, stopped before it is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "array-operator.io",
    version = "v1alpha1",
    kind = "VirtualMachine",
    namespaced,
    status = "VirtualMachineStatus",
    shortname = "avm",
    category = "arrayop",
    printcolumn = r#"{"name":"ARRAY","type":"string","jsonPath":".spec.arrayRef.name"}"#,
    printcolumn = r#"{"name":"STATUS","type":"string","jsonPath":".status.printableStatus"}"#,
    printcolumn = r#"{"name":"CPUS","type":"integer","jsonPath":".spec.cpus"}"#,
    printcolumn = r#"{"name":"MEMORY","type":"string","jsonPath":".spec.memory"}"#,
    printcolumn = r#"{"name":"HOST","type":"string","jsonPath":".status.atArray.host"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.disks == oldSelf.disks").message("spec.disks is create-time only: change disks in Virtual Machine Manager").field_path(".disks"),
    validation = Rule::new("self.nics == oldSelf.nics").message("spec.nics is create-time only: change NICs in Virtual Machine Manager").field_path(".nics"),
    validation = Rule::new("self.storage == oldSelf.storage").message("spec.storage is immutable: moving a guest is not supported").field_path(".storage"),
    validation = Rule::new("quantity(self.memory).compareTo(quantity('256Mi')) >= 0").message("spec.memory must be at least 256Mi").field_path(".memory"),
    validation = Rule::new("self.stopMode != 'PowerOff' || !has(self.stopTimeout)").message("spec.stopTimeout only applies to stopMode Shutdown").field_path(".stopTimeout"),
    validation = super::formats::size_member("memory", "spec.memory", false),
    validation = super::formats::whole_mib_member("memory", false, "", "spec.memory", "VMM takes sizes in MiB")
)]
pub struct VirtualMachineSpec {
    /// The StorageArray (Synology) that runs Virtual Machine Manager.
    pub array_ref: ArrayRef,
    /// Guest name in VMM; defaults to metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ARRAY_NAME_PATTERN), length(min = 1, max = 64))]
    pub name: Option<String>,
    /// VMM storage name the guest's disks live on. Immutable.
    #[schemars(length(min = 1, max = 128))]
    pub storage: String,
    /// VMM host name to run on; VMM chooses when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub host: Option<String>,
    /// Virtual CPUs.
    #[schemars(range(min = 1, max = 64))]
    pub cpus: i32,
    /// Memory as a quantity (`4Gi`); VMM takes whole MiB.
    #[schemars(schema_with = "super::shared::size_schema")]
    pub memory: Quantity,
    /// What VMM does with the guest when its host boots: `Never` (default:
    /// leave it off; DSM autorun 0), `LastState` (restore the state it had
    /// at shutdown; DSM 1) or `Always` (power it on; DSM 2). The names are
    /// not `On`/`Off`: kubectl and Helm read those as YAML 1.1 booleans.
    #[serde(default)]
    pub autorun: Autorun,
    /// Free text stored in VMM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub description: Option<String>,
    /// Disks, created with the guest. Create-time only.
    #[schemars(length(min = 1, max = 16))]
    pub disks: Vec<VmDisk>,
    /// Network interfaces, created with the guest. Create-time only.
    #[serde(default)]
    #[schemars(length(max = 8))]
    pub nics: Vec<VmNic>,
    /// `Always` keeps the guest running, `Halted` keeps it stopped, `Manual`
    /// leaves power to the admin.
    #[serde(default)]
    pub run_strategy: RunStrategy,
    /// How to stop the guest: `Shutdown` (ACPI, then power off after
    /// stopTimeout) or `PowerOff` (at once).
    #[serde(default)]
    pub stop_mode: StopMode,
    /// How long a Shutdown may take before the guest is powered off
    /// (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = super::formats::duration("spec.stopTimeout"))]
    pub stop_timeout: Option<String>,
    /// `Manage` (default) or `Observe` (never mutate; report drift).
    #[serde(default)]
    pub management_policy: ManagementPolicy,
    /// `Delete` (stop, then delete the guest) or `Retain` when this object
    /// is deleted. Unset: Delete for guests the operator created, Retain for
    /// adopted ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// VMM autorun setting: what VMM does with the guest when its host boots.
/// No value may be a YAML 1.1 boolean word (`On`, `Off`, `yes`, ...): a
/// manifest saying `autorun: On` would reach the apiserver as `true`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum Autorun {
    /// Leave the guest off (DSM autorun 0, "off").
    #[default]
    Never,
    /// Restore the power state the guest had when the host shut down (DSM
    /// autorun 1, "last state").
    LastState,
    /// Power the guest on (DSM autorun 2, "on").
    Always,
}

/// Desired power state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum RunStrategy {
    /// Keep running: power on whenever stopped.
    #[default]
    Always,
    /// Keep stopped.
    Halted,
    /// Never change the power state.
    Manual,
}

/// How a guest is stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum StopMode {
    /// ACPI shutdown, then power off after stopTimeout.
    #[default]
    Shutdown,
    /// Power off at once.
    PowerOff,
}

/// One disk: a new blank disk of `size`, or a copy of the VMM image `image`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.size) != has(self.image)").message("each disk needs exactly one of size or image"),
    validation = super::formats::size_member("size", "a disk's size (spec.disks[].size)", true),
    validation = super::formats::whole_mib_member("size", true, "", "a disk's size (spec.disks[].size)", "VMM takes sizes in MiB")
)]
pub struct VmDisk {
    /// Size of a new blank disk (`32Gi`); VMM takes whole MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::shared::optional_size_schema")]
    pub size: Option<Quantity>,
    /// Name of a VMM disk image to copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub image: Option<String>,
}

/// Pattern of a NIC's MAC address.
const MAC_PATTERN: &str = r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$";

/// One network interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmNic {
    /// VMM network name.
    #[schemars(length(min = 1, max = 128))]
    pub network: String,
    /// MAC address; VMM generates one when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(pattern = MAC_PATTERN),
        length(max = 17)
    )]
    #[x_kube(validation = super::formats::pattern("a NIC's mac (spec.nics[].mac)", MAC_PATTERN, "a MAC address of six hexadecimal pairs such as 02:11:32:aa:bb:cc"))]
    pub mac: Option<String>,
}

/// What the operator observed of the guest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineStatus {
    /// Conditions, observedGeneration and externalId (the guest id).
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `Provisioning`, `Stopped`, `Starting`, `Running`, `Stopping` or `Error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printable_status: Option<PrintableStatus>,
    /// The asynchronous create task while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<VmTask>,
    /// When the operator asked the guest's OS to shut down (RFC 3339):
    /// with stopMode Shutdown the guest is powered off once stopTimeout has
    /// passed since then. Cleared when the guest is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_requested_at: Option<String>,
    /// The guest as last observed in VMM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_array: Option<VirtualMachineObserved>,
}

/// A one-word summary of the guest for `kubectl get`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::crd::shared::drop_type_description)]
pub enum PrintableStatus {
    /// Being created.
    Provisioning,
    /// Powered off.
    Stopped,
    /// Booting.
    Starting,
    /// Running.
    Running,
    /// Shutting down.
    Stopping,
    /// VMM reports an error state.
    Error,
}

/// The VMM create task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmTask {
    /// VMM task id.
    pub task_id: String,
    /// Progress in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<i32>,
}

/// The guest as last observed in VMM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineObserved {
    /// VMM guest id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_id: Option<String>,
    /// VMM's power status word (`running`, `shutdown`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_state: Option<String>,
    /// Host the guest runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Virtual CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<i32>,
    /// Memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<i64>,
    /// Disks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<ObservedDisk>,
    /// Network interfaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nics: Vec<ObservedNic>,
}

/// A disk as VMM reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedDisk {
    /// VMM disk id.
    pub id: String,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// VMM's controller type number (VirtIO SCSI, SATA, IDE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<i64>,
}

/// A NIC as VMM reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedNic {
    /// VMM NIC id.
    pub id: String,
    /// Network name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// MAC address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}
