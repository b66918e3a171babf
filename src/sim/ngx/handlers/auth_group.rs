//! Auth group handlers.

use serde_json::{Value, json};

use crate::array::ngxstorage::dialect::{Dialect, Field};

use super::super::seed::DEFAULT_AUTH_GROUP_ID;
use super::super::state::{ArrayState, SimAuthGroup, SimInitiator};
use super::{ApiErr, EXISTS, GROUP_EXISTS, GROUP_NOT_FOUND, Req, new_id, obj, success};

fn render(g: &SimAuthGroup, d: Dialect, detailed: bool) -> Value {
    let mut fields = vec![
        (Field::GroupId, json!(g.id)),
        (Field::GroupName, json!(g.name)),
    ];
    if let Some(owner) = &g.owner {
        fields.push((Field::GroupOwner, json!(owner)));
        if detailed {
            fields.push((Field::ChapStatus, json!(u8::from(g.chap.is_some()))));
            let initiators: Vec<Value> = g
                .initiators
                .iter()
                .map(|i| {
                    Value::Object(obj(
                        d,
                        vec![
                            (Field::InitiatorId, json!(i.id)),
                            (Field::InitiatorIqn, json!(i.iqn)),
                            (Field::InitiatorAlias, json!(i.alias)),
                        ],
                    ))
                })
                .collect();
            fields.push((Field::Initiators, Value::Array(initiators)));
        }
        if let Some((user, pass)) = &g.chap {
            // The document's examples return the CHAP password in clear.
            fields.push((Field::Chap, json!({"username": user, "password": pass})));
        }
    }
    Value::Object(obj(d, fields))
}

fn lookup<'s>(s: &'s ArrayState, id: &str) -> Result<&'s SimAuthGroup, ApiErr> {
    s.auth_groups
        .get(id)
        .ok_or_else(|| ApiErr::not_found(GROUP_NOT_FOUND, format_args!("auth group {id}")))
}

fn editable<'s>(s: &'s mut ArrayState, id: &str) -> Result<&'s mut SimAuthGroup, ApiErr> {
    if id == DEFAULT_AUTH_GROUP_ID {
        return Err(ApiErr::invalid("the default auth group cannot be changed"));
    }
    s.auth_groups
        .get_mut(id)
        .ok_or_else(|| ApiErr::not_found(GROUP_NOT_FOUND, format_args!("auth group {id}")))
}

pub(crate) fn create(req: &Req<'_>) -> Result<Value, ApiErr> {
    let name = req.str("name").unwrap_or_default();
    let owner = req.owner();
    req.ctx.state.write(|s| {
        if s.auth_groups.values().any(|g| g.name == name) {
            return Err(ApiErr::exists(
                GROUP_EXISTS,
                format_args!("auth group {name}"),
            ));
        }
        let id = new_id();
        s.auth_groups.insert(
            id.clone(),
            SimAuthGroup {
                id: id.clone(),
                name,
                owner: Some(owner),
                chap: None,
                initiators: Vec::new(),
            },
        );
        Ok(json!({"id": id, "success": true}))
    })
}

pub(crate) fn delete(req: &Req<'_>) -> Result<Value, ApiErr> {
    let id = req.id();
    req.ctx.state.write(|s| {
        editable(s, id)?;
        if let Some(t) = s.targets.values().find(|t| t.auth_group_id == id) {
            return Err(ApiErr::attached(format!(
                "auth group {id} is used by target {}",
                t.name
            )));
        }
        s.auth_groups.remove(id);
        Ok(success())
    })
}

pub(crate) fn rename(req: &Req<'_>) -> Result<Value, ApiErr> {
    let id = req.id();
    let name = req.str("name").unwrap_or_default();
    req.ctx.state.write(|s| {
        if s.auth_groups.values().any(|g| g.name == name && g.id != id) {
            return Err(ApiErr::exists(
                GROUP_EXISTS,
                format_args!("auth group {name}"),
            ));
        }
        editable(s, id)?.name = name;
        Ok(success())
    })
}

pub(crate) fn set_chap(req: &Req<'_>) -> Result<Value, ApiErr> {
    let user = req.str("username").unwrap_or_default();
    let pass = req.str("password").unwrap_or_default();
    req.ctx.state.write(|s| {
        editable(s, req.id())?.chap = Some((user, pass));
        Ok(success())
    })
}

pub(crate) fn delete_chap(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.write(|s| {
        let g = editable(s, req.id())?;
        if g.chap.take().is_none() {
            return Err(ApiErr::not_found(GROUP_NOT_FOUND, "CHAP credentials"));
        }
        Ok(success())
    })
}

pub(crate) fn add_iqn(req: &Req<'_>) -> Result<Value, ApiErr> {
    let iqn = req.str("iqn").unwrap_or_default();
    let alias = req
        .str(Field::ReqIqnAlias.name(req.d()))
        .unwrap_or_default();
    req.ctx.state.write(|s| {
        let g = editable(s, req.id())?;
        if g.initiators.iter().any(|i| i.iqn == iqn) {
            return Err(ApiErr::exists(EXISTS, format_args!("initiator {iqn}")));
        }
        let id = new_id();
        g.initiators.push(SimInitiator {
            id: id.clone(),
            iqn,
            alias,
        });
        Ok(json!({"id": id, "success": true}))
    })
}

pub(crate) fn delete_iqn(req: &Req<'_>) -> Result<Value, ApiErr> {
    let id = req.id();
    req.ctx.state.write(|s| {
        for g in s.auth_groups.values_mut() {
            let before = g.initiators.len();
            g.initiators.retain(|i| i.id != id);
            if g.initiators.len() != before {
                return Ok(json!({}));
            }
        }
        Err(ApiErr::not_found(
            GROUP_NOT_FOUND,
            format_args!("initiator {id}"),
        ))
    })
}

pub(crate) fn detail(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx
        .state
        .read(|s| Ok(render(lookup(s, req.id())?, req.d(), true)))
}

pub(crate) fn detail_list(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.auth_groups
                .values()
                .map(|g| render(g, req.d(), true))
                .collect(),
        ))
    })
}

pub(crate) fn list(req: &Req<'_>) -> Result<Value, ApiErr> {
    req.ctx.state.read(|s| {
        Ok(Value::Array(
            s.auth_groups
                .values()
                .map(|g| render(g, req.d(), false))
                .collect(),
        ))
    })
}
