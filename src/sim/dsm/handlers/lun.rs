//! `SYNO.Core.ISCSI.LUN`, including the snapshot methods.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{Ctx, HandlerResult, Reply, now};
use crate::array::synology::error::{
    LUN_BUSY, LUN_LIMIT, LUN_NAME_TAKEN, NO_SUCH_LUN, NO_SUCH_SNAPSHOT, NO_SUCH_TARGET,
    OUT_OF_SPACE, SNAPSHOT_DELETE_FAILED, SNAPSHOT_LIMIT,
};
use crate::sim::dsm::request::{Additional, Args};
use crate::sim::dsm::state::{
    DsmState, LUN_TYPES, Mapping, SimLun, SimSnapshot, is_thin_type, lock,
};

/// Missing parameter.
pub const MISSING: i64 = 114;
/// Malformed parameter or a value the docs rule out.
pub const INVALID: i64 = 120;

/// The `dev_attrib` names DSM knows, in its order.
pub const DEV_ATTRIBS: [&str; 7] = [
    "emulate_tpws",
    "emulate_caw",
    "emulate_3pc",
    "emulate_tpu",
    "emulate_fua_write",
    "emulate_sync_cache",
    "can_snapshot",
];

/// Dispatches one LUN method.
pub fn handle(ctx: &Ctx<'_>) -> HandlerResult {
    let args = Args::new(ctx.req, MISSING, INVALID);
    let mut state = lock(&ctx.shared.state);
    let s = &mut *state;
    match ctx.method {
        "list" => list(s, &args),
        "get" => get(s, &args),
        "create" => create(s, &args),
        "set" => set(s, &args),
        "delete" => delete(s, &args),
        "clone" => clone(s, &args),
        "map_target" => map_target(s, &args, true),
        "unmap_target" => map_target(s, &args, false),
        "list_snapshot" => list_snapshot(s, &args),
        "take_snapshot" => take_snapshot(s, &args),
        _ => delete_snapshot(s, &args),
    }
}

/// Names DSM accepts: letters, digits, `-`, `_` and `.`, 1 to 128 long.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn type_code(lun_type: &str) -> i64 {
    LUN_TYPES
        .iter()
        .find(|(n, _)| *n == lun_type)
        .map_or(0, |(_, c)| *c)
}

fn lun_json(s: &DsmState, lun: &SimLun, additional: &Additional) -> Value {
    let mapped = additional
        .wants("is_mapped")
        .then(|| !s.targets_of_lun(&lun.uuid).is_empty());
    lun_json_mapped(s, lun, additional, mapped)
}

/// The uuids of every mapped LUN: a list answers `is_mapped` from this, not
/// by scanning every target per LUN.
fn mapped_uuids(s: &DsmState) -> HashSet<&str> {
    s.targets
        .iter()
        .flat_map(|t| t.mapped.iter().map(|m| m.lun_uuid.as_str()))
        .collect()
}

fn lun_json_mapped(
    s: &DsmState,
    lun: &SimLun,
    additional: &Additional,
    mapped: Option<bool>,
) -> Value {
    let mut v = json!({
        "uuid": lun.uuid,
        "name": lun.name,
        "lun_id": lun.lun_id,
        "location": lun.location,
        "size": lun.size,
        "type": type_code(&lun.lun_type),
        "type_str": lun.lun_type,
        "description": lun.description,
        "block_size": 512,
        "create_from": "",
        "vpd_unit_sn": lun.uuid,
        "dev_attribs": lun.dev_attribs.iter()
            .map(|(n, e)| json!({"dev_attrib": n, "enable": e}))
            .collect::<Vec<_>>(),
    });
    let wants = |n: &str| additional.wants(n);
    if let Some(mapped) = mapped {
        v["is_mapped"] = json!(mapped);
    }
    if wants("allocated_size") {
        v["allocated_size"] = json!(lun.allocated_size);
    }
    if wants("status") {
        v["status"] = json!("normal");
    }
    if wants("is_action_locked") {
        v["is_action_locked"] = json!(false);
    }
    if wants("extent_size") {
        v["extent_size"] = json!(0);
    }
    if wants("flashcache_status") {
        v["flashcache_status"] = json!("no_cache");
    }
    if wants("family_config") {
        let parent = lun.parent_uuid.as_deref().and_then(|p| s.lun(p));
        v["family_config"] = json!({
            "parent_lun_name": parent.map_or("", |p| p.name.as_str()),
            "parent_lun_uuid": lun.parent_uuid.clone().unwrap_or_default(),
            "parent_snapshot_time": 0,
            "parent_snapshot_uuid": "",
        });
    }
    if wants("snapshot_info") {
        // In a LUN listing a snapshot's status is an object; in
        // list_snapshot it is a string. Both shapes come from the docs.
        v["snapshots"] = json!(
            s.snapshots_of(&lun.uuid)
                .iter()
                .map(|sn| {
                    let mut j = snapshot_json(sn);
                    j["status"] =
                        json!({"type": "Healthy", "progress": {"percent": -1, "step": "waiting"}});
                    j
                })
                .collect::<Vec<_>>()
        );
    }
    if let (Some(fields), Some(o)) = (s.tampered.get(&lun.uuid), v.as_object_mut()) {
        for (k, x) in fields {
            if x.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), x.clone());
            }
        }
    }
    v
}

fn snapshot_json(sn: &SimSnapshot) -> Value {
    json!({
        "uuid": sn.uuid,
        "snapshot_id": sn.snapshot_id,
        "name": sn.name,
        "description": sn.description,
        "create_time": sn.create_time,
        "snapshot_time": sn.create_time,
        "is_user_locked": sn.locked,
        "is_app_consistent": sn.app_consistent,
        "taken_by": sn.taken_by,
        "parent_uuid": sn.lun_uuid,
        "status": "Healthy",
        "type": 2,
    })
}

fn list(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let types = args.opt_string_list("types")?;
    let additional = args.additional()?;
    let location = args.opt_string("location")?;
    let mapped = additional.wants("is_mapped").then(|| mapped_uuids(s));
    let luns: Vec<Value> = s
        .luns
        .iter()
        .filter(|l| types.as_ref().is_none_or(|t| t.contains(&l.lun_type)))
        .filter(|l| location.as_ref().is_none_or(|loc| &l.location == loc))
        .map(|l| {
            let is_mapped = mapped.as_ref().map(|m| m.contains(l.uuid.as_str()));
            lun_json_mapped(s, l, &additional, is_mapped)
        })
        .collect();
    Ok(Reply::data(json!({ "luns": luns })))
}

fn get(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let uuid = args.non_empty("uuid")?;
    let additional = args.additional()?;
    let lun = s.lun(&uuid).ok_or(NO_SUCH_LUN)?;
    Ok(Reply::data(json!({ "lun": lun_json(s, lun, &additional) })))
}

/// Parses `dev_attribs` into (name, enable) pairs; unknown names are
/// refused.
fn parse_dev_attribs(args: &Args<'_>) -> Result<Option<Vec<(String, i64)>>, i64> {
    let Some(v) = args.opt_json("dev_attribs")? else {
        return Ok(None);
    };
    let Value::Array(items) = v else {
        return Err(INVALID);
    };
    let mut out = Vec::new();
    for item in items {
        let name = item
            .get("dev_attrib")
            .and_then(Value::as_str)
            .ok_or(INVALID)?;
        if !DEV_ATTRIBS.contains(&name) {
            return Err(INVALID);
        }
        let enable = match item.get("enable") {
            Some(Value::Number(n)) => n.as_i64().ok_or(INVALID)?,
            Some(Value::Bool(b)) => i64::from(*b),
            _ => return Err(INVALID),
        };
        if enable != 0 && enable != 1 {
            return Err(INVALID);
        }
        out.push((name.to_string(), enable));
    }
    Ok(Some(out))
}

fn default_dev_attribs(thin: bool) -> Vec<(String, i64)> {
    DEV_ATTRIBS
        .iter()
        .map(|n| {
            let on = match *n {
                "emulate_fua_write" | "emulate_sync_cache" => false,
                "can_snapshot" | "emulate_tpu" => thin,
                _ => true,
            };
            (n.to_string(), i64::from(on))
        })
        .collect()
}

fn apply_dev_attribs(
    current: &mut [(String, i64)],
    changes: &[(String, i64)],
    thin: bool,
) -> Result<(), i64> {
    for (name, enable) in changes {
        // The docs: can_snapshot is valid only for thin-provisioned LUNs.
        if name == "can_snapshot" && *enable == 1 && !thin {
            return Err(INVALID);
        }
        if let Some(slot) = current.iter_mut().find(|(n, _)| n == name) {
            slot.1 = *enable;
        }
    }
    Ok(())
}

fn check_space(s: &DsmState, location: &str, thin: bool, extra: u64) -> Result<(), i64> {
    let total = s
        .volumes
        .iter()
        .find(|v| v.path == location)
        .map_or(0, |v| v.total_bytes);
    // A thin LUN may not be larger than its volume; a thick one must fit in
    // what is free.
    let room = if thin { total } else { s.free_bytes(location) };
    if extra > room {
        return Err(OUT_OF_SPACE);
    }
    Ok(())
}

fn create(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let name = args.non_empty("name")?;
    let location = args.non_empty("location")?;
    let size = args.opt_u64("size")?.ok_or(MISSING)?;
    let lun_type = args.opt_string("type")?.unwrap_or_else(|| "BLUN".into());
    let description = args.opt_string("description")?.unwrap_or_default();
    let changes = parse_dev_attribs(args)?;
    if !valid_name(&name) || size == 0 {
        return Err(INVALID);
    }
    if !LUN_TYPES.iter().any(|(n, _)| *n == lun_type) {
        return Err(INVALID);
    }
    if !s.volumes.iter().any(|v| v.path == location) {
        return Err(INVALID);
    }
    if s.lun_by_name(&name).is_some() {
        return Err(LUN_NAME_TAKEN);
    }
    if s.luns.len() >= s.limits.max_luns {
        return Err(LUN_LIMIT);
    }
    let thin = is_thin_type(&lun_type);
    check_space(s, &location, thin, size)?;
    let mut dev_attribs = default_dev_attribs(thin);
    if let Some(changes) = changes {
        apply_dev_attribs(&mut dev_attribs, &changes, thin)?;
    }
    let lun = SimLun {
        uuid: uuid::Uuid::new_v4().to_string(),
        lun_id: s.next_lun_id,
        name,
        location,
        size,
        allocated_size: if thin { 0 } else { size },
        lun_type,
        description,
        dev_attribs,
        parent_uuid: None,
    };
    s.next_lun_id += 1;
    let reply = json!({"uuid": lun.uuid, "lun_id": lun.lun_id});
    s.luns.push(lun);
    Ok(Reply::data(reply))
}

fn set(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let uuid = args.non_empty("uuid")?;
    let new_name = args.opt_string("new_name")?;
    let new_size = args.opt_u64("new_size")?;
    let new_type = args.opt_string("new_type")?;
    let new_location = args.opt_string("new_location")?;
    let description = args.opt_string("description")?;
    let changes = parse_dev_attribs(args)?;
    let lun = s.lun(&uuid).ok_or(NO_SUCH_LUN)?.clone();
    if let Some(name) = &new_name {
        if !valid_name(name) {
            return Err(INVALID);
        }
        if s.luns.iter().any(|l| &l.name == name && l.uuid != uuid) {
            return Err(LUN_NAME_TAKEN);
        }
    }
    // Type and location cannot change in place on DSM.
    if new_type.as_ref().is_some_and(|t| t != &lun.lun_type)
        || new_location.as_ref().is_some_and(|l| l != &lun.location)
    {
        return Err(INVALID);
    }
    if let Some(size) = new_size {
        // DSM only grows LUNs.
        if size < lun.size {
            return Err(INVALID);
        }
        let extra = if lun.is_thin() { size } else { size - lun.size };
        check_space(s, &lun.location, lun.is_thin(), extra)?;
    }
    let mut dev_attribs = lun.dev_attribs.clone();
    if let Some(changes) = &changes {
        apply_dev_attribs(&mut dev_attribs, changes, lun.is_thin())?;
    }
    if let Some(l) = s.luns.iter_mut().find(|l| l.uuid == uuid) {
        if let Some(name) = new_name {
            l.name = name;
        }
        if let Some(size) = new_size {
            if !l.is_thin() {
                l.allocated_size = size;
            }
            l.size = size;
        }
        if let Some(d) = description {
            l.description = d;
        }
        l.dev_attribs = dev_attribs;
    }
    Ok(Reply::empty())
}

fn delete(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let mut uuids: Vec<String> = args.opt_string_list("uuids")?.unwrap_or_default();
    if let Some(one) = args.opt_string("uuid")?
        && !one.is_empty()
    {
        uuids.push(one);
    }
    if uuids.is_empty() {
        return Err(MISSING);
    }
    // All or nothing, like DSM: check every uuid first.
    for uuid in &uuids {
        if s.lun(uuid).is_none() {
            return Err(NO_SUCH_LUN);
        }
        if !s.targets_of_lun(uuid).is_empty() {
            return Err(LUN_BUSY);
        }
    }
    s.luns.retain(|l| !uuids.contains(&l.uuid));
    s.snapshots.retain(|sn| !uuids.contains(&sn.lun_uuid));
    Ok(Reply::empty())
}

fn clone(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let src = args.non_empty("src_lun_uuid")?;
    let dst_name = args.non_empty("dst_lun_name")?;
    let source = s.lun(&src).ok_or(NO_SUCH_LUN)?.clone();
    let dst_location = args
        .opt_string("dst_location")?
        .unwrap_or_else(|| source.location.clone());
    if !valid_name(&dst_name) || !s.volumes.iter().any(|v| v.path == dst_location) {
        return Err(INVALID);
    }
    if s.lun_by_name(&dst_name).is_some() {
        return Err(LUN_NAME_TAKEN);
    }
    if s.luns.len() >= s.limits.max_luns {
        return Err(LUN_LIMIT);
    }
    check_space(s, &dst_location, source.is_thin(), source.size)?;
    let lun = SimLun {
        uuid: uuid::Uuid::new_v4().to_string(),
        lun_id: s.next_lun_id,
        name: dst_name,
        location: dst_location,
        parent_uuid: Some(source.uuid.clone()),
        ..source
    };
    s.next_lun_id += 1;
    let reply = json!({"dst_lun_uuid": lun.uuid});
    s.luns.push(lun);
    Ok(Reply::data(reply))
}

fn map_target(s: &mut DsmState, args: &Args<'_>, map: bool) -> HandlerResult {
    let uuid = args.non_empty("uuid")?;
    let ids = args.opt_int_list("target_ids")?.ok_or(MISSING)?;
    if ids.is_empty() {
        return Err(MISSING);
    }
    if s.lun(&uuid).is_none() {
        return Err(NO_SUCH_LUN);
    }
    if ids.iter().any(|id| s.target(*id).is_none()) {
        return Err(NO_SUCH_TARGET);
    }
    for t in s.targets.iter_mut().filter(|t| ids.contains(&t.target_id)) {
        set_mapping(t, &uuid, map);
    }
    Ok(Reply::empty())
}

/// Adds or removes one mapping on a target (both sides read from it).
pub fn set_mapping(t: &mut crate::sim::dsm::state::SimTarget, lun_uuid: &str, map: bool) {
    let present = t.mapped.iter().any(|m| m.lun_uuid == lun_uuid);
    if map && !present {
        let next = t.mapped.iter().map(|m| m.mapping_index).max().unwrap_or(0) + 1;
        t.mapped.push(Mapping {
            lun_uuid: lun_uuid.to_string(),
            mapping_index: next,
        });
    } else if !map {
        t.mapped.retain(|m| m.lun_uuid != lun_uuid);
    }
}

fn list_snapshot(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let uuid = args.non_empty("src_lun_uuid")?;
    let additional = args.additional()?;
    if s.lun(&uuid).is_none() {
        return Err(NO_SUCH_LUN);
    }
    let snaps: Vec<Value> = s
        .snapshots_of(&uuid)
        .iter()
        .map(|sn| {
            let mut j = snapshot_json(sn);
            if additional.wants("locked_app_keys") {
                j["locked_app_keys"] = json!(sn.locked_app_keys);
            }
            if additional.wants("is_worm_locked") {
                j["is_worm_locked"] = json!(false);
            }
            j
        })
        .collect();
    Ok(Reply::data(
        json!({"snapshots": snaps, "total": snaps.len(), "count": snaps.len()}),
    ))
}

fn take_snapshot(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let uuid = args.non_empty("src_lun_uuid")?;
    let description = args.opt_string("description")?.unwrap_or_default();
    let locked = args.opt_bool("is_locked")?.unwrap_or(false);
    let app = args.opt_bool("is_app_consistent")?.unwrap_or(false);
    let taken_by = args
        .opt_string("taken_by")?
        .unwrap_or_else(|| "user".into());
    let name = args.opt_string("snapshot_name")?;
    let lun = s.lun(&uuid).ok_or(NO_SUCH_LUN)?;
    if lun.flag("can_snapshot") != Some(true) {
        return Err(INVALID);
    }
    let existing = s.snapshots_of(&uuid);
    if existing.len() >= s.limits.max_snapshots_per_lun {
        return Err(SNAPSHOT_LIMIT);
    }
    let snapshot_id = existing.iter().map(|x| x.snapshot_id).max().unwrap_or(0) + 1;
    let snap = SimSnapshot {
        uuid: uuid::Uuid::new_v4().to_string(),
        snapshot_id,
        lun_uuid: uuid,
        name: name.unwrap_or_else(|| format!("SnapShot-{snapshot_id}")),
        description,
        create_time: now(),
        locked,
        app_consistent: app,
        taken_by,
        locked_app_keys: Vec::new(),
    };
    let reply = json!({"snapshot_uuid": snap.uuid, "snapshot_id": snap.snapshot_id});
    s.snapshots.push(snap);
    Ok(Reply::data(reply))
}

fn delete_snapshot(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let mut uuids = args.opt_string_list("snapshot_uuids")?.unwrap_or_default();
    if let Some(one) = args.opt_string("snapshot_uuid")? {
        uuids.push(one);
    }
    if uuids.is_empty() {
        return Err(MISSING);
    }
    if uuids
        .iter()
        .any(|u| !s.snapshots.iter().any(|sn| &sn.uuid == u))
    {
        return Err(NO_SUCH_SNAPSHOT);
    }
    // A snapshot a package keeps (a replication's base) is not deleted; DSM
    // reports it per uuid inside a successful answer.
    let held: Vec<Value> = s
        .snapshots
        .iter()
        .filter(|sn| uuids.contains(&sn.uuid) && !sn.locked_app_keys.is_empty())
        .map(|sn| json!({ sn.uuid.clone(): SNAPSHOT_DELETE_FAILED }))
        .collect();
    s.snapshots
        .retain(|sn| !uuids.contains(&sn.uuid) || !sn.locked_app_keys.is_empty());
    // The wire capture's success answer is `{}`.
    Ok(Reply::data(if held.is_empty() {
        json!({})
    } else {
        Value::Array(held)
    }))
}
