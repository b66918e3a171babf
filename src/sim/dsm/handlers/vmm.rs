//! Virtual Machine Manager: guests, power actions, tasks, and the storage,
//! network, host and image lists.

use serde_json::{Value, json};

use super::{Ctx, HandlerResult, Reply, random_token};
use crate::sim::dsm::request::{Additional, Args};
use crate::sim::dsm::state::{DsmState, Power, SimGuest, SimTask, SimVdisk, SimVnic, lock};

/// Bad parameter (VMM guide).
pub const BAD_PARAMETER: i64 = 401;
/// Name conflict.
pub const NAME_CONFLICT: i64 = 403;
/// The storage is invalid.
pub const STORAGE_INVALID: i64 = 700;
/// Not enough CPU threads to power on.
pub const NO_CPU: i64 = 902;
/// Not enough memory to power on.
pub const NO_MEMORY: i64 = 903;
/// The guest is running.
pub const ONLINE: i64 = 904;
/// The image was not found.
pub const IMAGE_NOT_FOUND: i64 = 906;
/// The guest is not running.
pub const OFFLINE: i64 = 907;
/// No such task.
pub const NO_TASK: i64 = 1000;

/// Dispatches one VMM method.
pub fn handle(ctx: &Ctx<'_>, api: &str) -> HandlerResult {
    let args = Args::new(ctx.req, BAD_PARAMETER, BAD_PARAMETER);
    let mut state = lock(&ctx.shared.state);
    let s = &mut *state;
    match (api, ctx.method) {
        ("SYNO.Virtualization.API.Guest", "list") => list(s, &args),
        ("SYNO.Virtualization.API.Guest", "get") => get(s, &args),
        ("SYNO.Virtualization.API.Guest", "create") => create(s, &args),
        ("SYNO.Virtualization.API.Guest", "set") => set(s, &args),
        ("SYNO.Virtualization.API.Guest", "delete") => delete(s, &args),
        ("SYNO.Virtualization.API.Guest.Action", action) => power(s, &args, action),
        ("SYNO.Virtualization.API.Task.Info", "get") => task_get(s, &args),
        ("SYNO.Virtualization.API.Task.Info", "list") => Ok(Reply::data(json!({
            "task_ids": s.tasks.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>()
        }))),
        ("SYNO.Virtualization.API.Task.Info", _) => task_clear(s, &args),
        ("SYNO.Virtualization.API.Storage", _) => Ok(Reply::data(json!({
            "storages": s.storages.iter().map(|st| {
                let host = s.hosts.first();
                json!({
                    "storage_id": st.storage_id, "storage_name": st.storage_name,
                    "volume_path": st.volume_path, "size": st.size, "used": st.used,
                    "status": "normal",
                    "host_id": host.map(|h| h.host_id.clone()),
                    "host_name": host.map(|h| h.host_name.clone()),
                })
            }).collect::<Vec<_>>()
        }))),
        ("SYNO.Virtualization.API.Network", _) => Ok(Reply::data(json!({
            "networks": s.networks.iter().map(|n| json!({
                "network_id": n.network_id, "network_name": n.network_name,
            })).collect::<Vec<_>>()
        }))),
        ("SYNO.Virtualization.API.Host", _) => Ok(Reply::data(json!({
            "hosts": s.hosts.iter().map(|h| {
                let (cpu, ram) = host_usage(s, &h.host_id);
                json!({
                    "host_id": h.host_id, "host_name": h.host_name, "status": "normal",
                    "total_cpu_core": h.total_cpu_core, "total_ram_size": h.total_ram_size,
                    "free_cpu_core": h.total_cpu_core - cpu,
                    "free_ram_size": h.total_ram_size - ram,
                })
            }).collect::<Vec<_>>()
        }))),
        _ => Ok(Reply::data(json!({
            "images": s.images.iter().map(|i| json!({
                "image_id": i.image_id, "image_name": i.image_name, "type": i.kind,
                "status": "avaliable",
                "storages": s.storages.iter().map(|st| json!({
                    "storage_id": st.storage_id, "storage_name": st.storage_name,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>()
        }))),
    }
}

fn host_usage(s: &DsmState, host_id: &str) -> (i64, i64) {
    s.guests
        .iter()
        .filter(|g| online(g.power) && g.host_id.as_deref() == Some(host_id))
        .fold((0, 0), |(c, r), g| (c + g.vcpu_num, r + g.vram_size))
}

fn guest_json(g: &SimGuest, additional: &Additional) -> Value {
    let mut v = json!({
        "guest_id": g.guest_id,
        "guest_name": g.guest_name,
        "status": g.power.as_str(),
        "autorun": g.autorun,
        "description": g.description,
        "vcpu_num": g.vcpu_num,
        "vram_size": g.vram_size,
        "storage_id": g.storage_id,
        "storage_name": g.storage_name,
    });
    if let Some(h) = &g.host_id {
        v["host_id"] = json!(h);
    }
    if additional.wants("vdisks") {
        v["vdisks"] = json!(
            g.vdisks
                .iter()
                .map(
                    |d| json!({"vdisk_id": d.vdisk_id, "vdisk_size": d.vdisk_size,
                    "controller": d.controller, "unmap": d.unmap})
                )
                .collect::<Vec<_>>()
        );
    }
    if additional.wants("vnics") {
        v["vnics"] = json!(
            g.vnics
                .iter()
                .map(|n| json!({"vnic_id": n.vnic_id, "mac": n.mac, "model": 1,
                    "network_id": n.network_id, "network_name": n.network_name}))
                .collect::<Vec<_>>()
        );
    }
    v
}

/// Finds a guest by `guest_id` or `guest_name` (at least one is required).
fn find_guest(s: &DsmState, args: &Args<'_>) -> Result<usize, i64> {
    let id = args.opt_string("guest_id")?;
    let name = args.opt_string("guest_name")?;
    if id.is_none() && name.is_none() {
        return Err(BAD_PARAMETER);
    }
    s.guests
        .iter()
        .position(|g| {
            id.as_ref().is_none_or(|i| &g.guest_id == i)
                && name.as_ref().is_none_or(|n| &g.guest_name == n)
        })
        .ok_or(BAD_PARAMETER)
}

/// One step of every power transition: each look at the guests is a
/// moment of simulated time.
fn advance_power(s: &mut DsmState) {
    for g in &mut s.guests {
        g.power = match g.power {
            Power::Booting(0 | 1) => Power::Running,
            Power::Booting(n) => Power::Booting(n - 1),
            Power::ShuttingDown(0 | 1) => {
                g.host_id = None;
                Power::Shutdown
            }
            Power::ShuttingDown(n) => Power::ShuttingDown(n - 1),
            p => p,
        };
    }
}

/// True while the guest holds a host (running, booting or shutting down):
/// VMM calls it online.
fn online(p: Power) -> bool {
    p != Power::Shutdown
}

fn list(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    advance_power(s);
    let additional = args.additional()?;
    let guests: Vec<Value> = s
        .guests
        .iter()
        .map(|g| guest_json(g, &additional))
        .collect();
    Ok(Reply::data(json!({ "guests": guests })))
}

fn get(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    advance_power(s);
    let idx = find_guest(s, args)?;
    // Without `additional` DSM still returns disks and NICs (see the guide's
    // example); with it, the names listed.
    let additional = match args.additional()? {
        Additional::Names(n) if n.is_empty() => Additional::All,
        other => other,
    };
    Ok(Reply::data(guest_json(&s.guests[idx], &additional)))
}

fn name_taken(s: &DsmState, name: &str) -> bool {
    s.guest_by_name(name).is_some()
        || s.tasks.iter().any(|t| {
            t.pending_guest
                .as_ref()
                .is_some_and(|g| g.guest_name == name)
        })
}

fn random_mac() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let b: [u8; 3] = rng.random();
    format!("02:11:32:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2])
}

fn create(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let name = args.non_empty("guest_name")?;
    let storage_name = args.opt_string("storage_name")?;
    let storage_id = args.opt_string("storage_id")?;
    let vcpu = args.opt_int("vcpu_num")?.unwrap_or(1);
    let vram = args.opt_int("vram_size")?.unwrap_or(1024);
    let autorun = args.opt_int("autorun")?.unwrap_or(0);
    let description = args.opt_string("description")?.unwrap_or_default();
    let vnics = args.opt_json("vnics")?.unwrap_or(json!([]));
    let vdisks = args.opt_json("vdisks")?.unwrap_or(json!([]));
    let isos = args.opt_string_list("iso_images")?.unwrap_or_default();
    let auto_clean = args.opt_bool("auto_clean_task")?.unwrap_or(true);
    if !(1..=64).contains(&vcpu) || vram < 256 || !(0..=2).contains(&autorun) {
        return Err(BAD_PARAMETER);
    }
    if storage_name.is_none() && storage_id.is_none() {
        return Err(BAD_PARAMETER);
    }
    let storage = s
        .storages
        .iter()
        .find(|st| {
            storage_id.as_ref().is_none_or(|i| &st.storage_id == i)
                && storage_name.as_ref().is_none_or(|n| &st.storage_name == n)
        })
        .ok_or(STORAGE_INVALID)?
        .clone();
    if name_taken(s, &name) {
        return Err(NAME_CONFLICT);
    }
    let (Value::Array(vnics), Value::Array(vdisks)) = (vnics, vdisks) else {
        return Err(BAD_PARAMETER);
    };
    let mut nics = Vec::new();
    for nic in &vnics {
        let id = nic.get("network_id").and_then(Value::as_str);
        let nname = nic.get("network_name").and_then(Value::as_str);
        if id.is_none() && nname.is_none() {
            return Err(BAD_PARAMETER);
        }
        let net = s
            .networks
            .iter()
            .find(|n| {
                id.is_none_or(|i| n.network_id == i) && nname.is_none_or(|x| n.network_name == x)
            })
            .ok_or(BAD_PARAMETER)?;
        nics.push(SimVnic {
            vnic_id: uuid::Uuid::new_v4().to_string(),
            mac: nic
                .get("mac")
                .and_then(Value::as_str)
                .map_or_else(random_mac, str::to_string),
            network_id: net.network_id.clone(),
            network_name: net.network_name.clone(),
        });
    }
    let mut disks = Vec::new();
    for d in &vdisks {
        let size = match d.get("create_type").and_then(Value::as_i64) {
            Some(0) => d
                .get("vdisk_size")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .ok_or(BAD_PARAMETER)?,
            Some(1) => {
                let iid = d.get("image_id").and_then(Value::as_str);
                let iname = d.get("image_name").and_then(Value::as_str);
                if iid.is_none() && iname.is_none() {
                    return Err(BAD_PARAMETER);
                }
                s.images
                    .iter()
                    .find(|i| {
                        i.kind == "disk"
                            && iid.is_none_or(|x| i.image_id == x)
                            && iname.is_none_or(|x| i.image_name == x)
                    })
                    .ok_or(IMAGE_NOT_FOUND)?
                    .size_mb
            }
            _ => return Err(BAD_PARAMETER),
        };
        disks.push(SimVdisk {
            vdisk_id: uuid::Uuid::new_v4().to_string(),
            vdisk_size: size,
            controller: d.get("controller").and_then(Value::as_i64).unwrap_or(1),
            unmap: d.get("unmap").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    for iso in &isos {
        if iso != "unmounted"
            && !s
                .images
                .iter()
                .any(|i| i.kind == "iso" && (&i.image_name == iso || &i.image_id == iso))
        {
            return Err(IMAGE_NOT_FOUND);
        }
    }
    let task_id = format!(
        "@administrators/virtualization_api_guest_create{}",
        random_token(16)
    );
    s.tasks.push(SimTask {
        task_id: task_id.clone(),
        progress: 0,
        pending_guest: Some(SimGuest {
            guest_id: uuid::Uuid::new_v4().to_string(),
            guest_name: name,
            power: Power::Shutdown,
            autorun,
            description,
            vcpu_num: vcpu,
            vram_size: vram,
            storage_id: storage.storage_id,
            storage_name: storage.storage_name,
            host_id: None,
            vdisks: disks,
            vnics: nics,
        }),
        guest_id: None,
        auto_clean_task: auto_clean,
    });
    Ok(Reply::data(json!({ "task_id": task_id })))
}

fn task_get(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    // The guide names it task_id; synology-api sends taskid. Accept both.
    let id = match args.opt_string("task_id")? {
        Some(id) => id,
        None => args.non_empty("taskid")?,
    };
    let step = s.task_step.max(1);
    let pos = s
        .tasks
        .iter()
        .position(|t| t.task_id == id)
        .ok_or(NO_TASK)?;
    let task = &mut s.tasks[pos];
    if !task.finished() {
        task.progress = (task.progress + step).min(100);
    }
    let mut created = None;
    if task.finished()
        && let Some(g) = task.pending_guest.take()
    {
        task.guest_id = Some(g.guest_id.clone());
        created = Some(g);
    }
    let reply = json!({
        "finish": task.finished(),
        "task_info": {
            "auto_clean_task": task.auto_clean_task,
            "guest_id": task.guest_id,
            "progress": task.progress,
            "status": if task.finished() { "finish" } else { "create" },
        }
    });
    if let Some(g) = created {
        s.guests.push(g);
    }
    Ok(Reply::data(reply))
}

fn task_clear(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let id = args.non_empty("task_id")?;
    let before = s.tasks.len();
    s.tasks.retain(|t| t.task_id != id);
    if s.tasks.len() == before {
        return Err(NO_TASK);
    }
    Ok(Reply::empty())
}

fn set(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let idx = find_guest(s, args)?;
    let new_name = args.opt_string("new_guest_name")?;
    let autorun = args.opt_int("autorun")?;
    let description = args.opt_string("description")?;
    let vcpu = args.opt_int("vcpu_num")?;
    let vram = args.opt_int("vram_size")?;
    if autorun.is_some_and(|a| !(0..=2).contains(&a))
        || vcpu.is_some_and(|c| !(1..=64).contains(&c))
        || vram.is_some_and(|r| r < 256)
        || new_name.as_ref().is_some_and(String::is_empty)
    {
        return Err(BAD_PARAMETER);
    }
    let id = s.guests[idx].guest_id.clone();
    if let Some(n) = &new_name
        && s.guests
            .iter()
            .any(|g| &g.guest_name == n && g.guest_id != id)
    {
        return Err(NAME_CONFLICT);
    }
    let g = &mut s.guests[idx];
    // CPU and memory change only while the guest is off.
    let hw_change = vcpu.is_some_and(|c| c != g.vcpu_num) || vram.is_some_and(|r| r != g.vram_size);
    if hw_change && online(g.power) {
        return Err(ONLINE);
    }
    if let Some(n) = new_name {
        g.guest_name = n;
    }
    if let Some(a) = autorun {
        g.autorun = a;
    }
    if let Some(d) = description {
        g.description = d;
    }
    if let Some(c) = vcpu {
        g.vcpu_num = c;
    }
    if let Some(r) = vram {
        g.vram_size = r;
    }
    Ok(Reply::empty())
}

fn delete(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let idx = find_guest(s, args)?;
    if online(s.guests[idx].power) {
        return Err(ONLINE);
    }
    s.guests.remove(idx);
    Ok(Reply::empty())
}

fn power(s: &mut DsmState, args: &Args<'_>, action: &str) -> HandlerResult {
    let idx = find_guest(s, args)?;
    let host_id = args.opt_string("host_id")?;
    let host_name = args.opt_string("host_name")?;
    match action {
        "poweron" => {
            if online(s.guests[idx].power) {
                return Err(ONLINE);
            }
            let host = s
                .hosts
                .iter()
                .find(|h| {
                    host_id.as_ref().is_none_or(|i| &h.host_id == i)
                        && host_name.as_ref().is_none_or(|n| &h.host_name == n)
                })
                .ok_or(BAD_PARAMETER)?
                .clone();
            let (cpu, ram) = host_usage(s, &host.host_id);
            let g = &s.guests[idx];
            if cpu + g.vcpu_num > host.total_cpu_core {
                return Err(NO_CPU);
            }
            if ram + g.vram_size > host.total_ram_size {
                return Err(NO_MEMORY);
            }
            let steps = s.power_steps;
            let g = &mut s.guests[idx];
            g.power = if steps == 0 {
                Power::Running
            } else {
                Power::Booting(steps)
            };
            g.host_id = Some(host.host_id);
        }
        "shutdown" => {
            let steps = s.power_steps;
            let g = &mut s.guests[idx];
            match g.power {
                Power::Shutdown => return Err(OFFLINE),
                // Already on its way down: VMM accepts the repeat.
                Power::ShuttingDown(_) => {}
                _ if steps == 0 => {
                    g.power = Power::Shutdown;
                    g.host_id = None;
                }
                _ => g.power = Power::ShuttingDown(steps),
            }
        }
        _ => {
            let g = &mut s.guests[idx];
            if g.power == Power::Shutdown {
                return Err(OFFLINE);
            }
            g.power = Power::Shutdown;
            g.host_id = None;
        }
    }
    Ok(Reply::empty())
}
