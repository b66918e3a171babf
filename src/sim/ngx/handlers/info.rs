//! Pool, portal group and status handlers.

use serde_json::{Value, json};

use crate::array::ngxstorage::dialect::{Dialect, Field};

use super::super::state::{ArrayState, SimPool, SimPortalGroup};
use super::{ApiErr, NOT_FOUND, Req, bytes, new_id, obj, success};

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

/// `GET pool/list`: every pool as the detail endpoint describes it.
pub(crate) fn pool_detail_list(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.pools
                .values()
                .map(|p| render_pool(p, req.d(), true))
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

/// `GET pool/overview`: the document's array of pool entries; the SDK
/// decodes an object (`Pools.Overview`, pool.go@7db4426a), so an
/// sdk-dialect array answers the same entries keyed by pool name.
pub(crate) fn pool_overview(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    req.ctx.state.read(|s| {
        let entries = s.pools.values().map(|p| {
            (
                p.name.clone(),
                json!({
                    "pool_name": p.name,
                    "owner": p.owner,
                    "is_flash": u8::from(p.is_flash),
                    "raidtype": "raid5",
                    "capacity": capacity(s, p, d),
                }),
            )
        });
        Ok(match d {
            Dialect::Document => Value::Array(entries.map(|(_, v)| v).collect()),
            Dialect::Sdk => Value::Object(entries.collect()),
        })
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

/// `POST portal_group` (SDK only): `{name, owner}`.
pub(crate) fn create_portal_group(req: &Req<'_>) -> Result<Value, ApiErr> {
    let name = req.str("name").unwrap_or_default();
    let owner = req.owner();
    req.ctx.state.write(|s| {
        if s.portal_groups.values().any(|p| p.name == name) {
            return Err(ApiErr::exists(
                super::EXISTS,
                format_args!("portal group {name}"),
            ));
        }
        let id = new_id();
        s.portal_groups.insert(
            id.clone(),
            SimPortalGroup {
                id: id.clone(),
                name,
                owner,
                listen_ips: Vec::new(),
            },
        );
        Ok(json!({"id": id, "success": true}))
    })
}

/// `DELETE portal_group/{id}` (SDK only); refused (534) while a target uses it.
pub(crate) fn delete_portal_group(req: &Req<'_>) -> Result<Value, ApiErr> {
    let id = req.id();
    req.ctx.state.write(|s| {
        if !s.portal_groups.contains_key(id) {
            return Err(ApiErr::not_found(
                NOT_FOUND,
                format_args!("portal group {id}"),
            ));
        }
        if let Some(t) = s.targets.values().find(|t| t.portal_group_id == id) {
            return Err(ApiErr::attached(format!(
                "portal group {id} is used by target {}",
                t.name
            )));
        }
        s.portal_groups.remove(id);
        Ok(success())
    })
}

/// `GET status/services`, as the document's example.
pub(crate) fn services() -> Value {
    json!({
        "callhome": 1, "cifs": 1, "mail_alert": 1, "nfs": 1, "ntp": 1,
        "remote_help": 0, "replication": 1, "s3": 1, "san": 1, "snmp": 1,
        "snmp_trap": 0, "syslog": 1,
    })
}

/// `GET status/cpu`: the document's six fields.
pub(crate) fn cpu() -> Value {
    json!({
        "average_utilization": 1,
        "current_utilization": 0,
        "cpu_idle": "100",
        "load_1_min": "0.38",
        "load_5_min": "0.45",
        "load_15_min": "0.41",
    })
}

/// `GET status/enclosures`: one enclosure, owned by controller A.
pub(crate) fn enclosures(req: &Req<'_>) -> Result<Value, ApiErr> {
    let serial = req.ctx.state.read(|s| s.service_tag.clone());
    Ok(json!([{"model": "NVMEX11", "no": 1, "owner": "0", "serial": serial}]))
}

/// `GET status/overloaded_volumes`: none are overloaded. The document
/// wraps the list with `last_check_time`; the SDK decodes a bare array
/// (status.go@7db4426a).
pub(crate) fn overloaded_volumes(req: &Req<'_>) -> Value {
    match req.d() {
        Dialect::Document => {
            json!({"last_check_time": super::now(), "overloaded_volumes": []})
        }
        Dialect::Sdk => json!([]),
    }
}

pub(crate) fn system_info(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(json!({
            "product": "H2000G2",
            "app_version": "2.4.1",
            "os_version": "13.2",
            "service_tag": s.service_tag,
            "controller_type": "2",
            "luns": s.luns().len(),
            "used_lun": s.luns().len(),
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
