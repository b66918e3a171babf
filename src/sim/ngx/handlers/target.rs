//! iSCSI target handlers.

use serde_json::{Value, json};

use crate::array::ngxstorage::dialect::{Dialect, Field};

use super::super::state::{ArrayState, SimMapping, SimTarget};
use super::{
    ApiErr, EXISTS, GROUP_NOT_FOUND, NOT_FOUND, Req, TARGET_EXISTS, TARGET_NOT_FOUND, new_id, obj,
    success,
};

fn mapped(s: &ArrayState, m: &SimMapping, d: Dialect) -> Value {
    let lun = s.luns().get(&m.vol_id);
    let mut o = obj(
        d,
        vec![
            (Field::MappedVolId, json!(m.vol_id)),
            // A string in both: the document's examples and the SDK's
            // ISCSITarget type (`number` string, types.go@2a0a706d).
            (Field::MappedNumber, json!(m.number.to_string())),
            (Field::MappedName, json!(lun.map(|l| l.name.clone()))),
        ],
    );
    if d == Dialect::Document {
        o.insert("lun_id".into(), json!(lun.map(|l| l.scsi_lunid.clone())));
        let pool = lun
            .and_then(|l| s.pools.get(&l.pool_id))
            .map(|p| p.name.clone());
        o.insert("pool_name".into(), json!(pool));
        o.insert("profile".into(), json!("-"));
    }
    Value::Object(o)
}

fn render(s: &ArrayState, t: &SimTarget, d: Dialect) -> Value {
    let mut o = obj(
        d,
        vec![
            (Field::TargetId, json!(t.id)),
            (Field::TargetName, json!(t.name)),
            (Field::TargetIqn, json!(t.iqn)),
            (Field::TargetPortalGroup, json!(t.portal_group_id)),
            (Field::TargetAuthGroup, json!(t.auth_group_id)),
            (Field::TargetOwner, json!(t.owner)),
            (
                Field::TargetLuns,
                Value::Array(t.luns.iter().map(|m| mapped(s, m, d)).collect()),
            ),
        ],
    );
    if d == Dialect::Document {
        let group = s.auth_groups.get(&t.auth_group_id).map(|g| g.name.clone());
        let portal = s
            .portal_groups
            .get(&t.portal_group_id)
            .map(|p| p.name.clone());
        o.insert("group_name".into(), json!(group));
        o.insert("portal_name".into(), json!(portal));
        o.insert(
            "iqn_name".into(),
            json!(t.iqn.split(':').next().unwrap_or_default()),
        );
    }
    let mut v = Value::Object(o);
    s.apply_tampering(&t.id, &mut v);
    v
}

fn lookup<'s>(s: &'s ArrayState, id: &str) -> Result<&'s SimTarget, ApiErr> {
    s.targets
        .get(id)
        .ok_or_else(|| ApiErr::not_found(TARGET_NOT_FOUND, format_args!("iSCSI target {id}")))
}

fn check_refs(
    s: &ArrayState,
    auth: Option<&str>,
    portal: Option<&str>,
    luns: &[String],
) -> Result<(), ApiErr> {
    if let Some(a) = auth
        && !s.auth_groups.contains_key(a)
    {
        return Err(ApiErr::not_found(
            GROUP_NOT_FOUND,
            format_args!("auth group {a}"),
        ));
    }
    if let Some(p) = portal
        && !s.portal_groups.contains_key(p)
    {
        return Err(ApiErr::not_found(
            NOT_FOUND,
            format_args!("portal group {p}"),
        ));
    }
    for l in luns {
        if !s.luns().contains_key(l) {
            return Err(ApiErr::not_found(NOT_FOUND, format_args!("LUN {l}")));
        }
    }
    Ok(())
}

/// Maps `luns` (not yet mapped) with the lowest free numbers; returns the
/// new mappings.
fn map_luns(t: &mut SimTarget, luns: &[String]) -> Vec<SimMapping> {
    let mut added = Vec::new();
    for l in luns {
        if t.luns.iter().any(|m| &m.vol_id == l) {
            continue;
        }
        let number = (0u32..)
            .find(|n| !t.luns.iter().any(|m| m.number == *n))
            .unwrap_or_default();
        let m = SimMapping {
            vol_id: l.clone(),
            number,
        };
        t.luns.push(m.clone());
        added.push(m);
    }
    added
}

pub(crate) fn create(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let name = req.str("name").unwrap_or_default();
    let auth = req.str("auth_group_id").unwrap_or_default();
    let portal = req.str("portal_group_id").unwrap_or_default();
    let luns = req.ids("lun_ids");
    let owner = req.owner();
    req.ctx.state.write(|s| {
        if s.targets.values().any(|t| t.name == name) {
            return Err(ApiErr::exists(
                TARGET_EXISTS,
                format_args!("iSCSI target {name}"),
            ));
        }
        check_refs(s, Some(&auth), Some(&portal), &luns)?;
        let mut t = SimTarget {
            id: new_id(),
            iqn: format!(
                "iqn.2015-03.com.ngxio.{}:{name}",
                s.service_tag.to_lowercase()
            ),
            name,
            portal_group_id: portal,
            auth_group_id: auth,
            owner,
            luns: Vec::new(),
        };
        let added = map_luns(&mut t, &luns);
        let rendered: Vec<Value> = added.iter().map(|m| mapped(s, m, d)).collect();
        let id = t.id.clone();
        s.targets.insert(id.clone(), t);
        Ok(json!({"id": id, "luns": rendered, "success": true}))
    })
}

pub(crate) fn delete(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.write(|s| {
        lookup(s, req.id())?;
        s.targets.remove(req.id());
        Ok(success())
    })
}

pub(crate) fn rename(req: &Req<'_>) -> Result<Value, ApiErr> {
    let name = req.str("name").unwrap_or_default();
    req.ctx.state.write(|s| {
        lookup(s, req.id())?;
        if s.targets
            .values()
            .any(|t| t.name == name && t.id != req.id())
        {
            return Err(ApiErr::exists(
                TARGET_EXISTS,
                format_args!("iSCSI target {name}"),
            ));
        }
        if let Some(t) = s.targets.get_mut(req.id()) {
            t.iqn = format!(
                "iqn.2015-03.com.ngxio.{}:{name}",
                s.service_tag.to_lowercase()
            );
            t.name = name;
        }
        Ok(success())
    })
}

pub(crate) fn set_portal_group(req: &Req<'_>) -> Result<Value, ApiErr> {
    let portal = req.str("portal_group_id").unwrap_or_default();
    req.ctx.state.write(|s| {
        lookup(s, req.id())?;
        check_refs(s, None, Some(&portal), &[])?;
        if let Some(t) = s.targets.get_mut(req.id()) {
            t.portal_group_id = portal;
        }
        Ok(success())
    })
}

pub(crate) fn set_auth_group(req: &Req<'_>) -> Result<Value, ApiErr> {
    let auth = req.str("auth_group_id").unwrap_or_default();
    req.ctx.state.write(|s| {
        lookup(s, req.id())?;
        check_refs(s, Some(&auth), None, &[])?;
        if let Some(t) = s.targets.get_mut(req.id()) {
            t.auth_group_id = auth;
        }
        Ok(success())
    })
}

pub(crate) fn add_luns(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let luns = req.ids("lun_ids");
    req.ctx.state.write(|s| {
        lookup(s, req.id())?;
        check_refs(s, None, None, &luns)?;
        let mut t = lookup(s, req.id())?.clone();
        let added = map_luns(&mut t, &luns);
        if added.is_empty() {
            return Err(ApiErr::exists(EXISTS, "LUN mapping"));
        }
        let rendered: Vec<Value> = added.iter().map(|m| mapped(s, m, d)).collect();
        s.targets.insert(t.id.clone(), t);
        Ok(json!({"luns": rendered, "success": true}))
    })
}

pub(crate) fn remove_luns(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    let luns = req.ids("lun_ids");
    req.ctx.state.write(|s| {
        let mut t = lookup(s, req.id())?.clone();
        let before = t.luns.len();
        t.luns.retain(|m| !luns.contains(&m.vol_id));
        if t.luns.len() == before {
            return Err(ApiErr::not_found(NOT_FOUND, "LUN mapping"));
        }
        let rendered: Vec<Value> = t.luns.iter().map(|m| mapped(s, m, d)).collect();
        s.targets.insert(t.id.clone(), t);
        Ok(json!({"luns": rendered, "success": true}))
    })
}

pub(crate) fn detail(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx
        .state
        .read(|s| Ok(render(s, lookup(s, req.id())?, req.d())))
}

pub(crate) fn detail_list(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.targets.values().map(|t| render(s, t, req.d())).collect(),
        ))
    })
}

pub(crate) fn list(req: &Req<'_>) -> Result<Value, ApiErr> {
    let d = req.d();
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.targets
                .values()
                .map(|t| {
                    Value::Object(obj(
                        d,
                        vec![
                            (Field::TargetName, json!(t.name)),
                            (Field::TargetId, json!(t.id)),
                            (Field::TargetOwner, json!(t.owner)),
                        ],
                    ))
                })
                .collect(),
        ))
    })
}
