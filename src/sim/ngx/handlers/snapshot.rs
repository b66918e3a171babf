//! Snapshot and snapshot schedule handlers.

use serde_json::{Value, json};

use crate::array::ngxstorage::dialect::{Dialect, Field};

use super::super::state::{ArrayState, SimLun, SimSchedule, SimSnapshot};
use super::{ApiErr, EXISTS, NOT_FOUND, Req, SNAPSHOT_EXISTS, hex, new_id, now, obj, success};

fn render(s: &ArrayState, snap: &SimSnapshot, d: Dialect) -> Value {
    let lun = s.luns().get(&snap.vol_id);
    let pool = lun
        .and_then(|l| s.pools.get(&l.pool_id))
        .map(|p| p.name.clone());
    let mut o = obj(
        d,
        vec![
            (Field::SnapId, json!(snap.id)),
            (Field::SnapName, json!(snap.name)),
            (Field::SnapVolId, json!(snap.vol_id)),
            (Field::SnapVolName, json!(lun.map(|l| l.name.clone()))),
            (Field::SnapPool, json!(pool)),
            // A string in both: the document's examples and the SDK's
            // Snapshot type (`reserved` string, types.go@2a0a706d).
            (Field::SnapReserved, json!(snap.reserved.to_string())),
            (Field::SnapCreated, json!(snap.created.to_string())),
            (Field::SnapBinded, json!(u8::from(snap.binded))),
        ],
    );
    match d {
        Dialect::Document => {
            o.insert("restore".into(), json!(1));
        }
        Dialect::Sdk => {
            let name = lun.map(|l| l.name.clone()).unwrap_or_default();
            // The SDK fixture's live shape (snapshot_test.go@7db4426a):
            // `path` is `<lun>@<snap>`, plus `volume_type` and `vol_size`.
            o.insert("path".into(), json!(format!("{name}@{}", snap.name)));
            o.insert("volume_type".into(), json!("lun"));
            o.insert("vol_size".into(), json!(snap.size_bytes.to_string()));
            o.insert("restore".into(), json!(1));
        }
    }
    let mut v = Value::Object(o);
    s.apply_tampering(&snap.id, &mut v);
    v
}

/// The document wraps lists as `{luns, shares}`; the SDK reads arrays.
fn wrap(d: Dialect, items: Vec<Value>) -> Value {
    match d {
        Dialect::Document => json!({"luns": items, "shares": []}),
        Dialect::Sdk => Value::Array(items),
    }
}

fn lookup<'s>(s: &'s ArrayState, id: &str) -> Result<&'s SimSnapshot, ApiErr> {
    s.snapshots
        .get(id)
        .ok_or_else(|| ApiErr::not_found(NOT_FOUND, format_args!("snapshot {id}")))
}

fn lun<'s>(s: &'s ArrayState, id: &str) -> Result<&'s SimLun, ApiErr> {
    s.luns()
        .get(id)
        .ok_or_else(|| ApiErr::not_found(NOT_FOUND, format_args!("LUN {id}")))
}

pub(crate) fn create(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let name = req.str("name").unwrap_or_default();
    let vol = req.str("volume_id").unwrap_or_default();
    req.ctx.state.write(|s| {
        let l = lun(s, &vol)?.clone();
        if s.snapshots
            .values()
            .any(|x| x.vol_id == vol && x.name == name)
        {
            return Err(ApiErr::exists(
                SNAPSHOT_EXISTS,
                format_args!("snapshot {name}"),
            ));
        }
        let snap = SimSnapshot {
            id: new_id(),
            name: name.clone(),
            vol_id: vol,
            size_bytes: l.size_bytes,
            created: now(),
            reserved: 57344,
            binded: false,
        };
        let mut o = match render(s, &snap, d) {
            Value::Object(o) => o,
            _ => serde_json::Map::new(),
        };
        o.insert("snap_vol".into(), json!(format!("{}@{name}", l.name)));
        s.snapshots.insert(snap.id.clone(), snap);
        Ok(Value::Object(o))
    })
}

pub(crate) fn delete(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.write(|s| {
        let snap = lookup(s, req.id())?;
        if snap.binded {
            return Err(ApiErr::attached(format!(
                "snapshot {} has a clone bound to it",
                snap.name
            )));
        }
        s.snapshots.remove(req.id());
        Ok(success())
    })
}

pub(crate) fn delete_all(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.write(|s| {
        lun(s, req.id())?;
        s.snapshots.retain(|_, x| x.vol_id != req.id() || x.binded);
        let kept = s
            .snapshots
            .values()
            .filter(|x| x.vol_id == req.id())
            .count();
        let warning = if kept > 0 {
            format!("{kept} snapshot(s) with a bound clone were kept")
        } else {
            String::new()
        };
        Ok(json!({"success": true, "warning": warning}))
    })
}

pub(crate) fn clone(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let name = req.str("name").unwrap_or_default();
    req.ctx.state.write(|s| {
        let snap = lookup(s, req.id())?.clone();
        let source = lun(s, &snap.vol_id)?.clone();
        if s.lun_by_name(&name).is_some() {
            return Err(ApiErr::exists(EXISTS, format_args!("LUN {name}")));
        }
        let id = new_id();
        s.put_lun(SimLun {
            id: id.clone(),
            name,
            size_bytes: snap.size_bytes,
            used_bytes: 4096,
            scsi_lunid: format!("589c00{}", hex(&rand::random::<[u8; 16]>())),
            thin: true,
            clone_of: Some(snap.id.clone()),
            created: now(),
            ..source
        });
        if let Some(x) = s.snapshots.get_mut(&snap.id) {
            x.binded = true;
        }
        Ok(Value::Object(obj(d, vec![(Field::CloneVolId, json!(id))]))).map(|mut v| {
            v["success"] = json!(true);
            v
        })
    })
}

pub(crate) fn restore(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.write(|s| {
        let snap = lookup(s, req.id())?.clone();
        if !s.edit_lun(&snap.vol_id, |l| l.size_bytes = snap.size_bytes) {
            return Err(ApiErr::not_found(
                NOT_FOUND,
                format_args!("LUN {}", snap.vol_id),
            ));
        }
        Ok(success())
    })
}

pub(crate) fn detail(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx
        .state
        .read(|s| Ok(render(s, lookup(s, req.id())?, req.d())))
}

fn volume_filter(req: &Req<'_>, key: &str) -> Option<String> {
    req.query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

pub(crate) fn detail_list(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let filter = volume_filter(req, Field::QuerySnapshotListVolume.name(d));
    req.ctx.state.read(|s| {
        let items = s
            .snapshots
            .values()
            .filter(|x| filter.as_ref().is_none_or(|f| &x.vol_id == f))
            .map(|x| render(s, x, d))
            .collect();
        Ok(wrap(d, items))
    })
}

pub(crate) fn list(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let filter = volume_filter(req, "vol_id");
    req.ctx.state.read(|s| {
        let items = s
            .snapshots
            .values()
            .filter(|x| filter.as_ref().is_none_or(|f| &x.vol_id == f))
            .map(|x| {
                let mut o = obj(
                    d,
                    vec![
                        (Field::SnapId, json!(x.id)),
                        (Field::SnapName, json!(x.name)),
                        (Field::SnapVolId, json!(x.vol_id)),
                    ],
                );
                let lun = s.luns().get(&x.vol_id);
                o.insert(
                    Field::SnapVolName.name(d).into(),
                    json!(lun.map(|l| l.name.clone())),
                );
                Value::Object(o)
            })
            .collect();
        Ok(wrap(d, items))
    })
}

/// A rough English reading of a cron expression, like the array's `h_read`.
fn readable(cron: &str) -> String {
    let f: Vec<&str> = cron.split_whitespace().collect();
    match f.as_slice() {
        [m, h, dom, mon, dow] => format!(
            "at minute {m} past hour {h}, day-of-month {dom}, month {mon}, day-of-week {dow}"
        ),
        _ => cron.to_string(),
    }
}

/// A schedule as the served dialect writes it: the document's `c_time`,
/// `keep_max` (a number) and `h_read`; the SDK's SnapshotSchedule type
/// (types.go@2a0a706d): `interval`, `retention` (a string), `enabled` (a
/// boolean), `volume_id`, `volume_name`, `next_run`.
fn render_schedule(s: &ArrayState, sch: &SimSchedule, d: Dialect) -> Value {
    let keep = match d {
        Dialect::Document => json!(sch.keep_max),
        Dialect::Sdk => json!(sch.keep_max.to_string()),
    };
    let mut o = obj(
        d,
        vec![
            (Field::ScheduleId, json!(sch.id)),
            (Field::ScheduleCron, json!(sch.cron)),
            (Field::ScheduleKeep, keep),
            (Field::ScheduleReadable, json!(readable(&sch.cron))),
            (Field::ScheduleVolId, json!(sch.vol_id)),
        ],
    );
    o.insert("owner".into(), json!(sch.owner));
    match d {
        Dialect::Document => {
            o.insert("vol_type".into(), json!("lun"));
        }
        Dialect::Sdk => {
            let name = s.luns().get(&sch.vol_id).map(|l| l.name.clone());
            o.insert("volume_name".into(), json!(name.unwrap_or_default()));
            o.insert(Field::ScheduleEnabled.name(d).into(), json!(sch.enabled));
            o.insert("next_run".into(), json!(""));
        }
    }
    Value::Object(o)
}

pub(crate) fn schedule(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    req.ctx.state.read(|s| {
        lun(s, req.id())?;
        let sch = s.schedules.get(req.id()).ok_or_else(|| {
            ApiErr::not_found(
                NOT_FOUND,
                format_args!("snapshot schedule of LUN {}", req.id()),
            )
        })?;
        Ok(render_schedule(s, sch, d))
    })
}

/// Creating a schedule where one exists replaces it. The document's body
/// is `{cron_time, keep_max}`; an sdk-dialect array also takes the SDK's
/// `{interval, retention, enabled, ...}` (snapshot.go@7db4426a), `interval`
/// holding the same five-field cron expression.
pub(crate) fn create_schedule(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let cron = req
        .str("cron_time")
        .or_else(|| req.str("interval"))
        .unwrap_or_default();
    let keep_max = req
        .num("keep_max")
        .or_else(|| req.num("retention"))
        .unwrap_or(1);
    let enabled = req
        .body
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    req.ctx.state.write(|s| {
        let owner = lun(s, req.id())?.owner.clone();
        let sch = SimSchedule {
            id: new_id(),
            vol_id: req.id().to_string(),
            cron: cron.clone(),
            keep_max,
            enabled,
            owner,
        };
        let mut answer = match d {
            Dialect::Document => json!({"h_read": readable(&cron)}),
            Dialect::Sdk => render_schedule(s, &sch, d),
        };
        answer["success"] = json!(true);
        s.schedules.insert(req.id().to_string(), sch);
        Ok(answer)
    })
}

pub(crate) fn delete_schedule(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.write(|s| {
        lun(s, req.id())?;
        s.schedules.remove(req.id()).ok_or_else(|| {
            ApiErr::not_found(
                NOT_FOUND,
                format_args!("snapshot schedule of LUN {}", req.id()),
            )
        })?;
        Ok(json!({}))
    })
}
