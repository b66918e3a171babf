//! LUN handlers.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::array::ngxstorage::dialect::{Dialect, Field};
use crate::array::ngxstorage::size::SizeUnit;

use super::super::state::{ArrayState, SimLun};
use super::{ApiErr, EXISTS, NOT_FOUND, Req, bytes, hex, new_id, now, obj, success};

fn blocksize_bytes(b: &str) -> u64 {
    b.trim_end_matches('k')
        .parse::<u64>()
        .map(|k| k * 1024)
        .unwrap_or(16384)
}

fn on(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}

/// Size in bytes from `size` and `sing` (or the document example's
/// `size_letter`); the unit defaults to G.
fn requested_bytes(req: &Req<'_>) -> Option<u64> {
    let number = req.u64("size")?;
    let unit = req
        .str("sing")
        .or_else(|| req.str("size_letter"))
        .and_then(|l| SizeUnit::from_letter(&l))
        .unwrap_or(SizeUnit::G);
    Some(number.saturating_mul(unit.bytes()))
}

pub(crate) fn render(s: &ArrayState, l: &SimLun, d: Dialect) -> Value {
    let target = s.targets_of(&l.id).first().map(|t| t.name.clone());
    render_with(s, l, d, target)
}

/// The first target (in id order) of every mapped LUN: a list renders each
/// LUN's target from this, not by scanning every target per LUN.
fn first_targets(s: &ArrayState) -> HashMap<&str, &str> {
    let mut first = HashMap::new();
    for t in s.targets.values() {
        for m in &t.luns {
            first.entry(m.vol_id.as_str()).or_insert(t.name.as_str());
        }
    }
    first
}

fn render_with(s: &ArrayState, l: &SimLun, d: Dialect, target: Option<String>) -> Value {
    let pool = s
        .pools
        .get(&l.pool_id)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    // The document reads provisioning as `provision_type` thin/full; the
    // SDK's LUN type (types.go@2a0a706d) as `thin_provision` on/off.
    let provision = match d {
        Dialect::Document => json!(if l.thin { "thin" } else { "full" }),
        Dialect::Sdk => json!(on(l.thin)),
    };
    let mut o = obj(
        d,
        vec![
            (Field::LunId, json!(l.id)),
            (Field::LunName, json!(l.name)),
            (Field::LunSize, bytes(d, l.size_bytes)),
            (Field::LunUsed, bytes(d, l.used_bytes)),
            (Field::LunScsiId, json!(l.scsi_lunid)),
            (Field::LunPool, json!(pool)),
            (Field::LunProvision, provision),
            (Field::LunBlocksize, json!(l.blocksize_bytes.to_string())),
            (Field::LunDedup, json!(on(l.dedup))),
            (Field::LunCompress, json!(on(l.compress))),
            (Field::LunIoType, json!(l.io_type)),
            (Field::LunQos, json!(l.qos_priority)),
            (Field::LunOwner, json!(l.owner)),
            (Field::LunProtocols, json!({"iscsi": target, "fc": null})),
        ],
    );
    if d == Dialect::Sdk {
        o.insert(Field::LunCreated.name(d).into(), json!(l.created));
    }
    o.insert("flash_cache".into(), json!(on(l.flash_cache)));
    o.insert("dram_cache".into(), json!(on(l.dram_cache)));
    o.insert(
        "clone".into(),
        json!(l.clone_of.clone().unwrap_or_default()),
    );
    o.insert("compress_ratio".into(), json!("-"));
    o.insert("sizebysnapshots".into(), json!("0"));
    let mut v = Value::Object(o);
    s.apply_tampering(&l.id, &mut v);
    v
}

fn lookup<'s>(s: &'s ArrayState, id: &str) -> Result<&'s SimLun, ApiErr> {
    s.luns()
        .get(id)
        .ok_or_else(|| ApiErr::not_found(NOT_FOUND, format_args!("LUN {id}")))
}

pub(crate) fn create(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let pool_name = req.str("pool_name").unwrap_or_default();
    let name = req.str("name").unwrap_or_default();
    let size = requested_bytes(req).unwrap_or(0);
    let quantity = req.u64("quantity").unwrap_or(1);
    let flag = |k: &str, default: bool| req.str(k).map(|v| v == "on").unwrap_or(default);
    req.ctx.state.write(|s| {
        let pool = s
            .pool_by_name(&pool_name)
            .ok_or_else(|| ApiErr::not_found(NOT_FOUND, format_args!("pool {pool_name}")))?
            .clone();
        let names: Vec<String> = if quantity == 1 {
            vec![name.clone()]
        } else {
            (1..=quantity).map(|i| format!("{name}_{i}")).collect()
        };
        for n in &names {
            if s.lun_by_name(n).is_some() {
                return Err(ApiErr::exists(EXISTS, format_args!("LUN {n}")));
            }
        }
        let thin = flag("thin_provision", false);
        let reserve = if thin {
            0
        } else {
            size.saturating_mul(quantity)
        };
        // Thin LUNs reserve nothing: no need to sum the pool.
        if reserve > 0 && reserve > s.pool_free(&pool.id) {
            return Err(ApiErr::new(
                StatusCode::INSUFFICIENT_STORAGE,
                None,
                format!("pool {pool_name}: not enough free space for {reserve} bytes"),
            ));
        }
        let mut luns = Vec::new();
        for n in names {
            let lun = SimLun {
                id: new_id(),
                name: n,
                pool_id: pool.id.clone(),
                size_bytes: size,
                used_bytes: 4096,
                scsi_lunid: format!("589c00{}", hex(&rand::random::<[u8; 16]>())),
                thin,
                blocksize_bytes: req
                    .str("blocksize")
                    .map(|b| blocksize_bytes(&b))
                    .unwrap_or(16384),
                dedup: flag("deduplication", false),
                compress: flag("compression", false),
                io_type: req.str("io_type").unwrap_or_else(|| "transactional".into()),
                qos_priority: req.u64("qos_priority").unwrap_or(16),
                flash_cache: true,
                dram_cache: true,
                // LUN create carries no owner: the LUN follows its pool.
                owner: pool.owner.clone(),
                clone_of: None,
                created: now(),
            };
            let mut entry = obj(
                d,
                vec![
                    (Field::LunId, json!(lun.id)),
                    (Field::LunScsiId, json!(lun.scsi_lunid)),
                    (Field::LunUsed, bytes(d, lun.used_bytes)),
                ],
            );
            if d == Dialect::Sdk {
                entry.insert(Field::LunName.name(d).into(), json!(lun.name));
                entry.insert(Field::LunSize.name(d).into(), bytes(d, lun.size_bytes));
            }
            entry.insert("success".into(), json!("true"));
            luns.push(Value::Object(entry));
            s.put_lun(lun);
        }
        Ok(json!({"luns": luns, "success": true}))
    })
}

/// Deleting a LUN takes its snapshots with it, so a LUN whose snapshot
/// still has a live clone is refused with 534, the same rule the array
/// applies to deleting that snapshot itself; a clone pointing at nothing
/// cannot happen. Deleting a clone frees its source snapshot (`binded` 0)
/// once no other clone of it remains.
pub(crate) fn delete(req: &Req<'_>) -> Result<Value, ApiErr> {
    let id = req.id();
    req.ctx.state.write(|s| {
        let clone_of = lookup(s, id)?.clone_of.clone();
        if let Some(t) = s.targets_of(id).first() {
            return Err(ApiErr::attached(format!(
                "LUN {id} is attached to target {}",
                t.name
            )));
        }
        if let Some(snap) = s
            .snapshots
            .values()
            .find(|x| x.vol_id == id && s.has_clone_of(&x.id))
        {
            return Err(ApiErr::attached(format!(
                "LUN {id}: its snapshot {} has a clone bound to it",
                snap.name
            )));
        }
        s.snapshots.retain(|_, snap| snap.vol_id != id);
        s.schedules.remove(id);
        s.take_lun(id);
        if let Some(source) = clone_of
            && !s.has_clone_of(&source)
            && let Some(snap) = s.snapshots.get_mut(&source)
        {
            snap.binded = false;
        }
        Ok(success())
    })
}

pub(crate) fn modify(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let id = req.id();
    let requested = requested_bytes(req);
    req.ctx.state.write(|s| {
        let lun = lookup(s, id)?.clone();
        let mut updated = lun.clone();
        if let Some(bytes) = requested {
            // The document reads `size` as the new total; the SDK sends an
            // increment.
            let delta = s.resize_delta.unwrap_or(d.resize_is_delta());
            let new_size = if delta {
                lun.size_bytes.saturating_add(bytes)
            } else {
                bytes
            };
            if new_size < lun.size_bytes {
                return Err(ApiErr::invalid(format!(
                    "field `size`: a LUN can only grow ({} bytes now, {new_size} asked)",
                    lun.size_bytes
                )));
            }
            if !lun.thin && new_size - lun.size_bytes > s.pool_free(&lun.pool_id) {
                return Err(ApiErr::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    None,
                    "pool: not enough free space",
                ));
            }
            updated.size_bytes = new_size;
        }
        let flag = |k: &str| req.str(k).map(|v| v == "on");
        if let Some(v) = flag("deduplication") {
            updated.dedup = v;
        }
        if let Some(v) = flag("compression") {
            updated.compress = v;
        }
        if let Some(v) = flag("thin_provision") {
            updated.thin = v;
        }
        if let Some(v) = flag("flash_cache") {
            updated.flash_cache = v;
        }
        if let Some(v) = flag("dram_cache") {
            updated.dram_cache = v;
        }
        if let Some(v) = req.str("io_type") {
            updated.io_type = v;
        }
        if let Some(v) = req.u64("qos_priority") {
            updated.qos_priority = v;
        }
        let size = updated.size_bytes;
        s.put_lun(updated);
        Ok(json!({"success": true, "vol_size": size.to_string()}))
    })
}

pub(crate) fn detail(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx
        .state
        .read(|s| Ok(render(s, lookup(s, req.id())?, req.d())))
}

pub(crate) fn detail_list(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        let first = first_targets(s);
        Ok(Value::Array(
            s.luns()
                .values()
                .map(|l| {
                    let target = first.get(l.id.as_str()).map(|t| t.to_string());
                    render_with(s, l, req.d(), target)
                })
                .collect(),
        ))
    })
}

pub(crate) fn list(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.luns()
                .values()
                .map(|l| {
                    let pool = s
                        .pools
                        .get(&l.pool_id)
                        .map(|p| p.name.clone())
                        .unwrap_or_default();
                    Value::Object(obj(
                        d,
                        vec![
                            (Field::LunListName, json!(l.name)),
                            (Field::LunListPool, json!(pool)),
                            (Field::LunOwner, json!(l.owner)),
                            (Field::LunId, json!(l.id)),
                        ],
                    ))
                })
                .collect(),
        ))
    })
}
