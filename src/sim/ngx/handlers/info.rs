//! Pool, portal group and status handlers.

use serde_json::{Value, json};

use crate::array::ngxstorage::dialect::{Dialect, Field};

use super::super::state::{ArrayState, SimPool, SimPortalGroup};
use super::{ApiErr, NOT_FOUND, Req, bytes, obj};

fn render_pool(p: &SimPool, d: Dialect, detailed: bool) -> Value {
    let mut fields = vec![
        (Field::PoolId, json!(p.id)),
        (Field::PoolName, json!(p.name)),
        (Field::PoolOwner, json!(p.owner)),
    ];
    if detailed {
        fields.push((Field::PoolStatus, json!("ONLINE")));
    }
    let mut o = obj(d, fields);
    if d == Dialect::Sdk {
        o.insert("is_flash".into(), json!(u8::from(p.is_flash)));
        o.insert("blocksize".into(), json!("16384"));
    }
    if detailed {
        o.insert("raidtype".into(), json!("raid5"));
        o.insert("encryption".into(), json!(0));
        o.insert(
            "integrity".into(),
            json!({"can_start": 1, "can_stop": 0, "info": "No info"}),
        );
    }
    Value::Object(o)
}

fn capacity(s: &ArrayState, p: &SimPool, d: Dialect) -> Value {
    let allocated = s.pool_allocated(&p.id);
    let free = s.pool_free(&p.id);
    json!({
        "total_size": bytes(d, p.total_bytes),
        "free_size": bytes(d, free),
        "allocated_size": bytes(d, allocated),
        "logical_avail": bytes(d, free),
        "logical_reserved": bytes(d, allocated),
        "compress_ratio": "1.00",
        "dedup_ratio": "1.00x",
    })
}

pub(crate) fn pools(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.pools
                .values()
                .map(|p| render_pool(p, req.d(), false))
                .collect(),
        ))
    })
}

pub(crate) fn pool(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        s.pools
            .get(req.id())
            .map(|p| render_pool(p, req.d(), true))
            .ok_or_else(|| ApiErr::not_found(NOT_FOUND, format_args!("pool {}", req.id())))
    })
}

pub(crate) fn pool_overview(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.pools
                .values()
                .map(|p| {
                    json!({
                        "pool_name": p.name,
                        "owner": p.owner,
                        "is_flash": u8::from(p.is_flash),
                        "raidtype": "raid5",
                        "capacity": capacity(s, p, d),
                    })
                })
                .collect(),
        ))
    })
}

fn render_portal(p: &SimPortalGroup, d: Dialect) -> Value {
    let ips: Vec<Value> = p
        .listen_ips
        .iter()
        .map(|ip| Value::Object(obj(d, vec![(Field::PortalIp, json!(ip))])))
        .collect();
    Value::Object(obj(
        d,
        vec![
            (Field::PortalId, json!(p.id)),
            (Field::PortalName, json!(p.name)),
            (Field::PortalOwner, json!(p.owner)),
            (Field::PortalIps, Value::Array(ips)),
        ],
    ))
}

pub(crate) fn portal_groups(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.portal_groups
                .values()
                .map(|p| render_portal(p, req.d()))
                .collect(),
        ))
    })
}

pub(crate) fn portal_group(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        s.portal_groups
            .get(req.id())
            .map(|p| render_portal(p, req.d()))
            .ok_or_else(|| ApiErr::not_found(NOT_FOUND, format_args!("portal group {}", req.id())))
    })
}

pub(crate) fn system_info(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(json!({
            "product": "H2000G2",
            "app_version": "2.4.1",
            "os_version": "13.2",
            "service_tag": s.service_tag,
            "controller_type": "2",
            "luns": s.luns.len(),
            "used_lun": s.luns.len(),
            "maxlun": "64",
            "maxsnap": "2048",
            "snapshot_count": s.snapshots.len().to_string(),
        }))
    })
}

pub(crate) fn capacity_status(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    req.ctx.state.read(|s| match d {
        Dialect::Document => Ok(Value::Object(
            s.pools
                .values()
                .map(|p| {
                    (
                        p.name.clone(),
                        json!({"info": capacity(s, p, d), "protocol_usage": {"iscsi": s.pool_allocated(&p.id).to_string(), "replica": "0", "shares": "0"}}),
                    )
                })
                .collect(),
        )),
        Dialect::Sdk => Ok(Value::Array(
            s.pools
                .values()
                .map(|p| {
                    let free = s.pool_free(&p.id);
                    json!({
                        "name": p.name,
                        "total_size": p.total_bytes,
                        "free_size": free,
                        "logical": {"available": free, "reserved": s.pool_allocated(&p.id)},
                    })
                })
                .collect(),
        )),
    })
}

pub(crate) fn status_pools(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.pools
                .values()
                .map(|p| render_pool(p, req.d(), true))
                .collect(),
        ))
    })
}

pub(crate) fn cluster(req: &Req<'_>) -> Result<Value, ApiErr> {
    let status = req
        .ctx
        .cluster_status
        .lock()
        .map(|s| s.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    let owners = req.ctx.state.read(|s| s.owners());
    Ok(json!({
        "connected": 1,
        "interconnects": {"ethernet": 1, "hbactive": 0, "hbdrive": 0, "serial": 1},
        "peers": [{"id": owners[0]}, {"id": owners[1]}],
        "status": status,
    }))
}

pub(crate) fn license(_req: &Req<'_>) -> Result<Value, ApiErr> {
    Ok(json!({
        "autosnapshot": 1,
        "clone": 1,
        "datareduce": 1,
        "encryption": 1,
        "expire_time": 1786924800u64,
        "flashcache": 1,
        "replication": 1,
        "snapshot": 1,
        "start_time": 1692230400u64,
    }))
}
