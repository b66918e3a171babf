//! Virtual Machine Manager: guests (asynchronous create through a task),
//! power actions, tasks, and the storage, network, host and image lists.

use serde::{Deserialize, Serialize};

use super::client::{CallKind, DsmClient};
use super::error::DsmError;
use super::params::Params;
use super::types::{flex_bool, flex_u64_opt};

/// Guests.
pub const API_GUEST: &str = "SYNO.Virtualization.API.Guest";
/// Power actions.
pub const API_GUEST_ACTION: &str = "SYNO.Virtualization.API.Guest.Action";
/// Disk and ISO images.
pub const API_GUEST_IMAGE: &str = "SYNO.Virtualization.API.Guest.Image";
/// Non-blocking task results.
pub const API_TASK_INFO: &str = "SYNO.Virtualization.API.Task.Info";
/// VMM storages.
pub const API_STORAGE: &str = "SYNO.Virtualization.API.Storage";
/// The marker in the id of a guest-create task
/// (`@administrators/virtualization_api_guest_create5BB3...`).
pub const GUEST_CREATE_TASK_MARKER: &str = "virtualization_api_guest_create";
/// VMM network groups.
pub const API_NETWORK: &str = "SYNO.Virtualization.API.Network";
/// VMM hosts.
pub const API_HOST: &str = "SYNO.Virtualization.API.Host";

/// What a guest does when its host boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Autorun {
    /// Stay off (0).
    Off,
    /// Restore the last state (1).
    LastState,
    /// Power on (2).
    On,
}

impl Autorun {
    /// The wire number.
    pub fn as_int(self) -> i64 {
        match self {
            Autorun::Off => 0,
            Autorun::LastState => 1,
            Autorun::On => 2,
        }
    }
}

/// A guest's virtual disk.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Vdisk {
    /// Disk id.
    #[serde(default)]
    pub vdisk_id: String,
    /// Size in MB.
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub vdisk_size: Option<u64>,
    /// Controller type.
    #[serde(default)]
    pub controller: Option<i64>,
    /// UNMAP enabled.
    #[serde(default, deserialize_with = "flex_bool")]
    pub unmap: bool,
}

/// A guest's virtual NIC.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Vnic {
    /// NIC id.
    #[serde(default)]
    pub vnic_id: String,
    /// MAC address.
    #[serde(default)]
    pub mac: String,
    /// Network group id.
    #[serde(default)]
    pub network_id: String,
    /// Network group name.
    #[serde(default)]
    pub network_name: String,
}

/// A guest. Unknown fields are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Guest {
    /// Guest id (the external id).
    pub guest_id: String,
    /// Guest name.
    pub guest_name: String,
    /// `running`, `shutdown`, `booting`, ...
    #[serde(default)]
    pub status: String,
    /// 0 off, 1 last state, 2 on.
    #[serde(default)]
    pub autorun: Option<i64>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// vCPUs.
    #[serde(default)]
    pub vcpu_num: Option<i64>,
    /// Memory in MB.
    #[serde(default)]
    pub vram_size: Option<i64>,
    /// Storage id.
    #[serde(default)]
    pub storage_id: String,
    /// Storage name.
    #[serde(default)]
    pub storage_name: String,
    /// Host id, when running.
    #[serde(default)]
    pub host_id: Option<String>,
    /// Host name, when running.
    #[serde(default)]
    pub host_name: Option<String>,
    /// Disks.
    #[serde(default)]
    pub vdisks: Vec<Vdisk>,
    /// NICs.
    #[serde(default)]
    pub vnics: Vec<Vnic>,
}

#[derive(Deserialize)]
struct GuestList {
    #[serde(default)]
    guests: Vec<Guest>,
}

/// A disk for a new guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewVdisk {
    /// 0 empty disk, 1 clone of an image.
    pub create_type: i64,
    /// Size in MB (empty disks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vdisk_size: Option<u64>,
    /// Image to clone (create_type 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// Controller type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub controller: Option<i64>,
    /// UNMAP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmap: Option<bool>,
}

/// A NIC for a new guest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewVnic {
    /// Network group name.
    pub network_name: String,
    /// MAC address; DSM generates one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// What `create` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateGuest {
    /// Guest name.
    pub guest_name: String,
    /// VMM storage name.
    pub storage_name: String,
    /// vCPUs.
    pub vcpu_num: u32,
    /// Memory in MB.
    pub vram_size: u64,
    /// Autorun.
    pub autorun: Autorun,
    /// Description.
    pub description: String,
    /// NICs.
    pub vnics: Vec<NewVnic>,
    /// Disks.
    pub vdisks: Vec<NewVdisk>,
    /// ISO slots (`unmounted` or an image name); empty sends none.
    pub iso_images: Vec<String>,
    /// Let DSM drop the task record when it finishes.
    pub auto_clean_task: bool,
}

#[derive(Deserialize)]
struct TaskCreated {
    task_id: String,
}

/// How `create` ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestCreate {
    /// DSM started the task; poll it with [`VmmApi::task`].
    Started {
        /// The task id.
        task_id: String,
    },
}

/// Changes for `set`; only the fields given are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetGuest {
    /// New name.
    pub new_guest_name: Option<String>,
    /// Autorun.
    pub autorun: Option<Autorun>,
    /// Description.
    pub description: Option<String>,
    /// vCPUs.
    pub vcpu_num: Option<u32>,
    /// Memory in MB.
    pub vram_size: Option<u64>,
}

/// A task's result.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TaskInfo {
    /// Finished.
    #[serde(default, deserialize_with = "flex_bool")]
    pub finish: bool,
    /// Detail; its shape depends on the task.
    #[serde(default)]
    pub task_info: TaskDetail,
}

/// The detail of a guest-create task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct TaskDetail {
    /// The created guest, once finished.
    #[serde(default)]
    pub guest_id: Option<String>,
    /// Percent done.
    #[serde(default)]
    pub progress: Option<i64>,
    /// Status text (`create`, `finish`, `error`, ...).
    #[serde(default)]
    pub status: Option<String>,
}

/// A VMM storage.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Storage {
    /// Id.
    pub storage_id: String,
    /// Name.
    pub storage_name: String,
    /// Host.
    #[serde(default)]
    pub host_name: Option<String>,
    /// Volume path.
    #[serde(default)]
    pub volume_path: Option<String>,
    /// Capacity in bytes.
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub size: Option<u64>,
    /// Used bytes.
    #[serde(default, deserialize_with = "flex_u64_opt")]
    pub used: Option<u64>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
}

/// A VMM network group.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Network {
    /// Id.
    pub network_id: String,
    /// Name.
    pub network_name: String,
}

/// A VMM host.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Host {
    /// Id.
    pub host_id: String,
    /// Name.
    pub host_name: String,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
    /// Free cores.
    #[serde(default)]
    pub free_cpu_core: Option<i64>,
    /// Free memory in MB.
    #[serde(default)]
    pub free_ram_size: Option<i64>,
    /// Cores.
    #[serde(default)]
    pub total_cpu_core: Option<i64>,
    /// Memory in MB.
    #[serde(default)]
    pub total_ram_size: Option<i64>,
}

/// A disk or ISO image.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Image {
    /// Id.
    pub image_id: String,
    /// Name.
    pub image_name: String,
    /// `iso`, `disk`, ...
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Status (DSM spells it `avaliable`).
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Deserialize)]
struct TaskIds {
    #[serde(default)]
    task_ids: Vec<String>,
}

#[derive(Deserialize)]
struct Storages {
    #[serde(default)]
    storages: Vec<Storage>,
}

#[derive(Deserialize)]
struct Networks {
    #[serde(default)]
    networks: Vec<Network>,
}

#[derive(Deserialize)]
struct Hosts {
    #[serde(default)]
    hosts: Vec<Host>,
}

#[derive(Deserialize)]
struct Images {
    #[serde(default)]
    images: Vec<Image>,
}

/// The VMM operations of one client.
#[derive(Clone, Copy, Debug)]
pub struct VmmApi<'a> {
    client: &'a DsmClient,
}

impl DsmClient {
    /// The Virtual Machine Manager API.
    pub fn vmm(&self) -> VmmApi<'_> {
        VmmApi { client: self }
    }
}

impl VmmApi<'_> {
    /// Every guest, with disks and NICs.
    pub async fn list(&self) -> Result<Vec<Guest>, DsmError> {
        let params = Params::new().bool("additional", true);
        let list: GuestList = self
            .client
            .call(API_GUEST, "list", "all guests", params, CallKind::Read)
            .await?;
        Ok(list.guests)
    }

    /// The guest named `name`, if any.
    pub async fn find_by_name(&self, name: &str) -> Result<Option<Guest>, DsmError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|g| g.guest_name == name))
    }

    /// One guest by id.
    pub async fn get(&self, guest_id: &str) -> Result<Guest, DsmError> {
        let params = Params::new().raw("guest_id", guest_id);
        self.client
            .call(
                API_GUEST,
                "get",
                &format!("guest {guest_id}"),
                params,
                CallKind::Read,
            )
            .await
    }

    /// Starts creating a guest. Sent once: a lost answer is returned as the
    /// error (its outcome unknown) and never resent, because the guest only
    /// appears in the list when the task finishes, so a look-up by name
    /// right after cannot prove the first create made nothing. The caller
    /// settles it from a later list.
    pub async fn create(&self, req: &CreateGuest) -> Result<GuestCreate, DsmError> {
        let subject = format!("guest {:?}", req.guest_name);
        let mut params = Params::new()
            .raw("guest_name", req.guest_name.clone())
            .raw("storage_name", req.storage_name.clone())
            .int("vcpu_num", req.vcpu_num)
            .int("vram_size", req.vram_size)
            .int("autorun", req.autorun.as_int())
            .raw("description", req.description.clone())
            .json("vnics", &req.vnics)
            .json("vdisks", &req.vdisks);
        if !req.iso_images.is_empty() {
            params = params.json("iso_images", &req.iso_images);
        }
        params = params.bool("auto_clean_task", req.auto_clean_task);
        let created: TaskCreated = self
            .client
            .call(API_GUEST, "create", &subject, params, CallKind::Write)
            .await?;
        Ok(GuestCreate::Started {
            task_id: created.task_id,
        })
    }

    /// Changes a guest.
    pub async fn set(&self, guest_id: &str, req: &SetGuest) -> Result<(), DsmError> {
        let params = Params::new()
            .raw("guest_id", guest_id)
            .int_opt("autorun", req.autorun.map(Autorun::as_int))
            .raw_opt("description", req.description.as_deref())
            .raw_opt("new_guest_name", req.new_guest_name.as_deref())
            .int_opt("vcpu_num", req.vcpu_num)
            .int_opt("vram_size", req.vram_size);
        self.write(API_GUEST, "set", guest_id, params).await
    }

    /// Deletes a guest. DSM refuses while it runs.
    pub async fn delete(&self, guest_id: &str) -> Result<(), DsmError> {
        let params = Params::new().raw("guest_id", guest_id);
        self.write(API_GUEST, "delete", guest_id, params).await
    }

    /// Powers a guest on.
    pub async fn power_on(&self, guest_id: &str) -> Result<(), DsmError> {
        let params = Params::new().raw("guest_id", guest_id);
        self.write(API_GUEST_ACTION, "poweron", guest_id, params)
            .await
    }

    /// Powers a guest on on the named host (DSM picks one otherwise).
    pub async fn power_on_at(&self, guest_id: &str, host_name: &str) -> Result<(), DsmError> {
        let params = Params::new()
            .raw("guest_id", guest_id)
            .raw("host_name", host_name);
        self.write(API_GUEST_ACTION, "poweron", guest_id, params)
            .await
    }

    /// Cuts a guest's power.
    pub async fn power_off(&self, guest_id: &str) -> Result<(), DsmError> {
        let params = Params::new().raw("guest_id", guest_id);
        self.write(API_GUEST_ACTION, "poweroff", guest_id, params)
            .await
    }

    /// Asks a guest's OS to shut down.
    pub async fn shutdown(&self, guest_id: &str) -> Result<(), DsmError> {
        let params = Params::new().raw("guest_id", guest_id);
        self.write(API_GUEST_ACTION, "shutdown", guest_id, params)
            .await
    }

    /// A task's progress. synology-api sends the id as `taskid`, the VMM
    /// guide names it `task_id`; neither was confirmed on a DSM, and DSM
    /// ignores parameters it does not know, so both are sent.
    pub async fn task(&self, task_id: &str) -> Result<TaskInfo, DsmError> {
        let params = Params::new().raw("taskid", task_id).raw("task_id", task_id);
        self.client
            .call(
                API_TASK_INFO,
                "get",
                &format!("task {task_id}"),
                params,
                CallKind::Read,
            )
            .await
    }

    /// Every task id VMM keeps (running ones, and finished ones not yet
    /// cleared).
    pub async fn task_ids(&self) -> Result<Vec<String>, DsmError> {
        let t: TaskIds = self.list_of(API_TASK_INFO, "tasks").await?;
        Ok(t.task_ids)
    }

    /// Drops a finished task's record.
    pub async fn clear_task(&self, task_id: &str) -> Result<(), DsmError> {
        let params = Params::new().raw("task_id", task_id);
        self.client
            .call_value(
                API_TASK_INFO,
                "clear",
                &format!("task {task_id}"),
                params,
                CallKind::Write,
            )
            .await
            .map(|_| ())
    }

    /// VMM storages.
    pub async fn storages(&self) -> Result<Vec<Storage>, DsmError> {
        let s: Storages = self.list_of(API_STORAGE, "storages").await?;
        Ok(s.storages)
    }

    /// VMM network groups.
    pub async fn networks(&self) -> Result<Vec<Network>, DsmError> {
        let n: Networks = self.list_of(API_NETWORK, "networks").await?;
        Ok(n.networks)
    }

    /// VMM hosts.
    pub async fn hosts(&self) -> Result<Vec<Host>, DsmError> {
        let h: Hosts = self.list_of(API_HOST, "hosts").await?;
        Ok(h.hosts)
    }

    /// Disk and ISO images.
    pub async fn images(&self) -> Result<Vec<Image>, DsmError> {
        let i: Images = self.list_of(API_GUEST_IMAGE, "images").await?;
        Ok(i.images)
    }

    async fn list_of<T: serde::de::DeserializeOwned>(
        &self,
        api: &'static str,
        what: &str,
    ) -> Result<T, DsmError> {
        self.client
            .call(api, "list", what, Params::new(), CallKind::Read)
            .await
    }

    async fn write(
        &self,
        api: &'static str,
        method: &'static str,
        guest_id: &str,
        params: Params,
    ) -> Result<(), DsmError> {
        self.client
            .call_value(
                api,
                method,
                &format!("guest {guest_id}"),
                params,
                CallKind::Write,
            )
            .await
            .map(|_| ())
    }
}
