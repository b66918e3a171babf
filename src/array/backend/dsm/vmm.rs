//! Virtual Machine Manager guests on DSM (`SYNO.Virtualization.API.*`), in
//! the vendor-neutral terms of [`crate::reconcile::virtual_machine`].
//!
//! Choices the VMM API forces:
//! - `Guest.list` with `additional` is the one batched observation (disks
//!   and NICs included).
//! - `Guest.create` only starts a task; the guest is listed once the task
//!   finishes, and `Task.Info` names it. The create is sent once.
//! - VMM has no "no such guest" code (an unknown id is 401, bad parameter),
//!   so a delete refused with 401 is settled by a list: absent means gone.
//! - Power calls are idempotent here: powering on a running guest (904) or
//!   stopping a stopped one (907) is success, so a retry after a lost
//!   answer does not fail.

use crate::array::error::{ArrayError, ErrorClass};
use crate::array::synology::vmm::{
    API_GUEST_ACTION, Autorun as DsmAutorun, CreateGuest, GUEST_CREATE_TASK_MARKER, Guest,
    GuestCreate, NewVdisk, NewVnic, SetGuest,
};
use crate::array::synology::{DsmClient, DsmError};
use crate::crd::virtual_machine::Autorun;
use crate::reconcile::invalid::InvalidSpec;
use crate::reconcile::virtual_machine::{
    DesiredDisk, DesiredGuest, GuestDisk, GuestNic, GuestOp, ObservedGuest,
};

use super::super::{BackendError, CreateTask, GuestTask};

/// VMM: the guest is running (online).
const ONLINE: i64 = 904;
/// VMM: the guest is not running (offline).
const OFFLINE: i64 = 907;
/// VMM: bad parameter (also an unknown guest id).
const BAD_PARAMETER: i64 = 401;

fn vendor(e: DsmError) -> BackendError {
    BackendError::from_vendor(&e)
}

fn autorun_of(n: Option<i64>) -> Option<Autorun> {
    match n? {
        0 => Some(Autorun::Never),
        1 => Some(Autorun::LastState),
        2 => Some(Autorun::Always),
        _ => None,
    }
}

fn dsm_autorun(a: Autorun) -> DsmAutorun {
    match a {
        Autorun::Never => DsmAutorun::Off,
        Autorun::LastState => DsmAutorun::LastState,
        Autorun::Always => DsmAutorun::On,
    }
}

/// A listed guest in vendor-neutral form.
pub fn observed(g: Guest) -> ObservedGuest {
    ObservedGuest {
        id: g.guest_id,
        name: g.guest_name,
        status: g.status,
        host: g.host_name.filter(|h| !h.is_empty()),
        cpus: g.vcpu_num.and_then(|c| u32::try_from(c).ok()),
        memory_mib: g.vram_size.and_then(|m| u64::try_from(m).ok()),
        autorun: autorun_of(g.autorun),
        description: g.description,
        storage: g.storage_name,
        disks: g
            .vdisks
            .into_iter()
            .map(|d| GuestDisk {
                id: d.vdisk_id,
                size_mib: d.vdisk_size,
                controller: d.controller,
            })
            .collect(),
        nics: g
            .vnics
            .into_iter()
            .map(|n| GuestNic {
                id: n.vnic_id,
                mac: n.mac.to_ascii_lowercase(),
                network: n.network_name,
            })
            .collect(),
    }
}

/// Every guest: one `Guest.list`, plus one `Host.list` when a running
/// guest names its host by id only (the guide documents no host field on
/// guests; DSM and the simulator send `host_id`), so status shows the name
/// a spec's `host` uses.
pub async fn list(client: &DsmClient) -> Result<Vec<ObservedGuest>, BackendError> {
    let mut guests = client.vmm().list().await.map_err(vendor)?;
    if guests
        .iter()
        .any(|g| g.host_name.is_none() && g.host_id.is_some())
    {
        let hosts = client.vmm().hosts().await.map_err(vendor)?;
        for g in &mut guests {
            if g.host_name.is_none()
                && let Some(id) = &g.host_id
            {
                g.host_name = Some(
                    hosts
                        .iter()
                        .find(|h| &h.host_id == id)
                        .map_or_else(|| id.clone(), |h| h.host_name.clone()),
                );
            }
        }
    }
    Ok(guests.into_iter().map(observed).collect())
}

/// Checks the names a create uses against VMM's Storage, Network, Image and
/// (when the spec names one) Host lists: the first unknown name as an
/// InvalidSpec naming its field, before any write. One list call per kind
/// of name the spec uses.
pub async fn check_names(
    client: &DsmClient,
    desired: &DesiredGuest,
    host: Option<&str>,
) -> Result<Option<InvalidSpec>, BackendError> {
    let vmm = client.vmm();
    let storages = vmm.storages().await.map_err(vendor)?;
    if !storages.iter().any(|s| s.storage_name == desired.storage) {
        return Ok(Some(InvalidSpec::new(
            "spec.storage",
            format!(
                "VMM has no storage named {:?} (it has: {})",
                desired.storage,
                names(storages.iter().map(|s| s.storage_name.as_str()))
            ),
        )));
    }
    if !desired.nics.is_empty() {
        let networks = vmm.networks().await.map_err(vendor)?;
        for (i, nic) in desired.nics.iter().enumerate() {
            if !networks.iter().any(|n| n.network_name == nic.network) {
                return Ok(Some(InvalidSpec::new(
                    format!("spec.nics[{i}].network"),
                    format!(
                        "VMM has no network named {:?} (it has: {})",
                        nic.network,
                        names(networks.iter().map(|n| n.network_name.as_str()))
                    ),
                )));
            }
        }
    }
    if desired
        .disks
        .iter()
        .any(|d| matches!(d, DesiredDisk::Image { .. }))
    {
        let images = vmm.images().await.map_err(vendor)?;
        for (i, disk) in desired.disks.iter().enumerate() {
            if let DesiredDisk::Image { name } = disk
                && !images
                    .iter()
                    .any(|im| &im.image_name == name && im.kind.as_deref() != Some("iso"))
            {
                return Ok(Some(InvalidSpec::new(
                    format!("spec.disks[{i}].image"),
                    format!("VMM has no disk image named {name:?}"),
                )));
            }
        }
    }
    if let Some(host) = host {
        let hosts = vmm.hosts().await.map_err(vendor)?;
        if !hosts.iter().any(|h| h.host_name == host) {
            return Ok(Some(InvalidSpec::new(
                "spec.host",
                format!(
                    "VMM has no host named {host:?} (it has: {})",
                    names(hosts.iter().map(|h| h.host_name.as_str()))
                ),
            )));
        }
    }
    Ok(None)
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = it.map(|n| format!("{n:?}")).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

/// Starts `Guest.create`; returns the task id. Sent once.
pub async fn create(client: &DsmClient, d: &DesiredGuest) -> Result<String, BackendError> {
    let req = CreateGuest {
        guest_name: d.name.clone(),
        storage_name: d.storage.clone(),
        vcpu_num: d.cpus,
        vram_size: d.memory_mib,
        autorun: dsm_autorun(d.autorun),
        description: d.description.clone(),
        vnics: d
            .nics
            .iter()
            .map(|n| NewVnic {
                network_name: n.network.clone(),
                mac: n.mac.clone(),
            })
            .collect(),
        vdisks: d
            .disks
            .iter()
            .map(|disk| match disk {
                DesiredDisk::Blank { size_mib } => NewVdisk {
                    create_type: 0,
                    vdisk_size: Some(*size_mib),
                    image_name: None,
                    controller: None,
                    unmap: None,
                },
                DesiredDisk::Image { name } => NewVdisk {
                    create_type: 1,
                    vdisk_size: None,
                    image_name: Some(name.clone()),
                    controller: None,
                    unmap: None,
                },
            })
            .collect(),
        iso_images: Vec::new(),
        // The operator polls the task to learn the guest id: DSM must keep
        // the record until then.
        auto_clean_task: false,
    };
    let GuestCreate::Started { task_id } = client.vmm().create(&req).await.map_err(vendor)?;
    Ok(task_id)
}

/// One `Task.Info` poll.
pub async fn task(client: &DsmClient, task_id: &str) -> Result<GuestTask, BackendError> {
    let info = client.vmm().task(task_id).await.map_err(vendor)?;
    let failed = info
        .task_info
        .status
        .as_deref()
        .is_some_and(|s| s == "error" || s == "failed");
    Ok(GuestTask {
        finished: info.finish,
        failed,
        progress: info
            .task_info
            .progress
            .and_then(|p| i32::try_from(p.clamp(0, 100)).ok()),
        guest_id: info.task_info.guest_id.filter(|g| !g.is_empty()),
    })
}

/// The guest-create tasks still running: one `Task.Info list`, then one
/// `get` per guest-create task it names (finished ones are cleared as they
/// are found, so the list stays short). While one runs, a guest may exist
/// that no list shows yet, so no create may be settled as "made nothing".
pub async fn creates_in_flight(client: &DsmClient) -> Result<Vec<CreateTask>, BackendError> {
    let vmm = client.vmm();
    let ids = vmm.task_ids().await.map_err(vendor)?;
    let mut running = Vec::new();
    for id in ids.iter().filter(|i| i.contains(GUEST_CREATE_TASK_MARKER)) {
        match vmm.task(id).await {
            Ok(t) if t.finish => {
                // Best effort: a record left behind is read again next time.
                let _ = vmm.clear_task(id).await;
            }
            Ok(t) => running.push(CreateTask {
                id: id.clone(),
                progress: t
                    .task_info
                    .progress
                    .and_then(|p| i32::try_from(p.clamp(0, 100)).ok()),
                unread: None,
            }),
            // Gone between the list and the get: it finished and was cleared.
            Err(e) if e.class() == ErrorClass::NotFound => {}
            Err(e) => return Err(vendor(e)),
        }
    }
    Ok(running)
}

/// Applies one non-create operation to guest `id`.
pub async fn apply(client: &DsmClient, id: &str, op: &GuestOp) -> Result<(), BackendError> {
    let vmm = client.vmm();
    let code_is = |r: &Result<(), DsmError>, code: i64| matches!(r, Err(e) if e.vendor_code() == Some(code) && e.api_call().starts_with(API_GUEST_ACTION));
    match op {
        GuestOp::Create(_) => Err(BackendError::invalid(
            "SYNO.Virtualization.API.Guest.create",
            "a guest is created through create_guest, not as an update",
        )),
        GuestOp::Set(s) => vmm
            .set(
                id,
                &SetGuest {
                    new_guest_name: s.name.clone(),
                    autorun: s.autorun.map(dsm_autorun),
                    description: s.description.clone(),
                    vcpu_num: s.cpus,
                    vram_size: s.memory_mib,
                },
            )
            .await
            .map_err(vendor),
        GuestOp::PowerOn { host } => {
            let r = match host {
                Some(h) => vmm.power_on_at(id, h).await,
                None => vmm.power_on(id).await,
            };
            if code_is(&r, ONLINE) {
                return Ok(());
            }
            r.map_err(vendor)
        }
        GuestOp::Shutdown | GuestOp::PowerOff => {
            let r = if *op == GuestOp::Shutdown {
                vmm.shutdown(id).await
            } else {
                vmm.power_off(id).await
            };
            if code_is(&r, OFFLINE) {
                return Ok(());
            }
            r.map_err(vendor)
        }
        GuestOp::Delete => delete(client, id).await,
    }
}

/// Deletes guest `id`; already gone is success (proven by a list, since VMM
/// answers an unknown id with "bad parameter", and a not-found code may be
/// about something else, such as a task).
pub async fn delete(client: &DsmClient, id: &str) -> Result<(), BackendError> {
    match client.vmm().delete(id).await {
        Ok(()) => Ok(()),
        Err(e) if e.vendor_code() == Some(BAD_PARAMETER) || e.class() == ErrorClass::NotFound => {
            let listed = client.vmm().list().await.map_err(vendor)?;
            if listed.iter().any(|g| g.guest_id == id) {
                Err(vendor(e))
            } else {
                tracing::debug!(api_call = %e.api_call(), "guest already gone; nothing to do");
                Ok(())
            }
        }
        Err(e) => Err(vendor(e)),
    }
}
