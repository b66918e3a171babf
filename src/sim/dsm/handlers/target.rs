//! `SYNO.Core.ISCSI.Target`.

use serde_json::{Value, json};

use super::lun::{INVALID, MISSING, set_mapping, valid_name};
use super::{Ctx, HandlerResult, Reply};
use crate::array::synology::error::{NO_SUCH_LUN, NO_SUCH_TARGET, TARGET_LIMIT, TARGET_NAME_TAKEN};
use crate::sim::dsm::request::{Additional, Args};
use crate::sim::dsm::state::{DsmState, SimTarget, lock};

/// Dispatches one target method.
pub fn handle(ctx: &Ctx<'_>) -> HandlerResult {
    let args = Args::new(ctx.req, MISSING, INVALID);
    let mut state = lock(&ctx.shared.state);
    let s = &mut *state;
    match ctx.method {
        "list" => list(s, &args),
        "get" => get(s, &args),
        "create" => create(s, &args),
        "set" => set(s, &args),
        "enable" => enable(s, &args, true),
        "disable" => enable(s, &args, false),
        "map_lun" => map_lun(s, &args, true),
        "unmap_lun" => map_lun(s, &args, false),
        _ => delete(s, &args),
    }
}

fn target_json(t: &SimTarget, additional: &Additional) -> Value {
    let mut v = json!({
        "target_id": t.target_id,
        "name": t.name,
        "iqn": t.iqn,
        "auth_type": t.auth_type,
        "user": t.user,
        // DSM never returns CHAP secrets.
        "password": "",
        "mutual_user": t.mutual_user,
        "mutual_password": "",
        "max_sessions": t.max_sessions,
        "is_enabled": t.enabled,
        "is_default_target": false,
        "has_header_checksum": t.header_digest,
        "has_data_checksum": t.data_digest,
        "max_recv_seg_bytes": t.max_recv_seg_bytes,
        "max_send_seg_bytes": t.max_send_seg_bytes,
        "mapping_index": -1,
        "network_portals": [{"interface_name": "all", "ip": "", "port": 3260}],
    });
    if additional.wants("mapped_lun") {
        v["mapped_luns"] = json!(
            t.mapped
                .iter()
                .map(|m| json!({"lun_uuid": m.lun_uuid, "mapping_index": m.mapping_index}))
                .collect::<Vec<_>>()
        );
    }
    if additional.wants("connected_sessions") {
        v["connected_sessions"] = json!([]);
    }
    if additional.wants("acls") {
        v["acls"] = json!([]);
    }
    if additional.wants("status") {
        v["status"] = json!(if t.enabled { "online" } else { "offline" });
    }
    v
}

fn target_id(args: &Args<'_>) -> Result<i64, i64> {
    args.int("target_id")
}

fn list(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let additional = args.additional()?;
    let lun_uuid = args.opt_string("lun_uuid")?;
    let targets: Vec<Value> = s
        .targets
        .iter()
        .filter(|t| {
            lun_uuid
                .as_ref()
                .is_none_or(|u| t.mapped.iter().any(|m| &m.lun_uuid == u))
        })
        .map(|t| target_json(t, &additional))
        .collect();
    Ok(Reply::data(json!({ "targets": targets })))
}

fn get(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let id = target_id(args)?;
    let additional = args.additional()?;
    let t = s.target(id).ok_or(NO_SUCH_TARGET)?;
    Ok(Reply::data(
        json!({ "target": target_json(t, &additional) }),
    ))
}

/// IQNs as RFC 3720 has them: `iqn.YYYY-MM.reversed.domain[:suffix]`,
/// lower case, at most 223 bytes.
fn valid_iqn(iqn: &str) -> bool {
    let Some(rest) = iqn.strip_prefix("iqn.") else {
        return false;
    };
    let date_ok = rest.len() > 8
        && rest.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && rest.as_bytes()[4] == b'-'
        && rest.as_bytes()[5..7].iter().all(u8::is_ascii_digit)
        && rest.as_bytes()[7] == b'.';
    date_ok
        && iqn.len() <= 223
        && iqn
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | ':'))
}

/// CHAP secrets must be 12 to 16 characters on DSM.
fn valid_secret(s: &str) -> bool {
    (12..=16).contains(&s.chars().count())
}

struct Auth {
    auth_type: i64,
    user: String,
    password: String,
    mutual_user: String,
    mutual_password: String,
}

fn parse_auth(args: &Args<'_>) -> Result<Option<Auth>, i64> {
    let Some(auth_type) = args.opt_int("auth_type")? else {
        return Ok(None);
    };
    let user = args.opt_string("user")?.unwrap_or_default();
    let password = args.opt_string("password")?.unwrap_or_default();
    let mutual_user = args.opt_string("mutual_user")?.unwrap_or_default();
    let mutual_password = args.opt_string("mutual_password")?.unwrap_or_default();
    match auth_type {
        0 => Ok(Some(Auth {
            auth_type,
            user: String::new(),
            password: String::new(),
            mutual_user: String::new(),
            mutual_password: String::new(),
        })),
        1 | 2 => {
            if user.is_empty() || !valid_secret(&password) {
                return Err(INVALID);
            }
            if auth_type == 2 && (mutual_user.is_empty() || !valid_secret(&mutual_password)) {
                return Err(INVALID);
            }
            Ok(Some(Auth {
                auth_type,
                user,
                password,
                mutual_user: if auth_type == 2 {
                    mutual_user
                } else {
                    String::new()
                },
                mutual_password: if auth_type == 2 {
                    mutual_password
                } else {
                    String::new()
                },
            }))
        }
        _ => Err(INVALID),
    }
}

fn create(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let name = args.non_empty("name")?;
    let iqn = args.non_empty("iqn")?;
    let auth = parse_auth(args)?;
    let max_sessions = args.opt_int("max_sessions")?.unwrap_or(1);
    if !valid_name(&name) || !valid_iqn(&iqn) || max_sessions < 0 {
        return Err(INVALID);
    }
    if s.targets.iter().any(|t| t.name == name || t.iqn == iqn) {
        return Err(TARGET_NAME_TAKEN);
    }
    if s.targets.len() >= s.limits.max_targets {
        return Err(TARGET_LIMIT);
    }
    let auth = auth.unwrap_or(Auth {
        auth_type: 0,
        user: String::new(),
        password: String::new(),
        mutual_user: String::new(),
        mutual_password: String::new(),
    });
    let t = SimTarget {
        target_id: s.next_target_id,
        name,
        iqn,
        auth_type: auth.auth_type,
        user: auth.user,
        password: auth.password,
        mutual_user: auth.mutual_user,
        mutual_password: auth.mutual_password,
        max_sessions,
        enabled: true,
        header_digest: false,
        data_digest: false,
        max_recv_seg_bytes: 262144,
        max_send_seg_bytes: 262144,
        mapped: Vec::new(),
    };
    s.next_target_id += 1;
    let reply = json!({"target_id": t.target_id});
    s.targets.push(t);
    Ok(Reply::data(reply))
}

fn set(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let id = target_id(args)?;
    let name = args.opt_string("name")?;
    let iqn = args.opt_string("iqn")?;
    let max_sessions = args.opt_int("max_sessions")?;
    let auth = parse_auth(args)?;
    let header = args.opt_bool("has_header_checksum")?;
    let data = args.opt_bool("has_data_checksum")?;
    let recv = args.opt_int("max_recv_seg_bytes")?;
    let send = args.opt_int("max_send_seg_bytes")?;
    if s.target(id).is_none() {
        return Err(NO_SUCH_TARGET);
    }
    if name.as_ref().is_some_and(|n| !valid_name(n))
        || iqn.as_ref().is_some_and(|i| !valid_iqn(i))
        || max_sessions.is_some_and(|m| m < 0)
    {
        return Err(INVALID);
    }
    let clash = s.targets.iter().any(|t| {
        t.target_id != id
            && (name.as_ref().is_some_and(|n| &t.name == n)
                || iqn.as_ref().is_some_and(|i| &t.iqn == i))
    });
    if clash {
        return Err(TARGET_NAME_TAKEN);
    }
    if let Some(t) = s.targets.iter_mut().find(|t| t.target_id == id) {
        if let Some(n) = name {
            t.name = n;
        }
        if let Some(i) = iqn {
            t.iqn = i;
        }
        if let Some(m) = max_sessions {
            t.max_sessions = m;
        }
        if let Some(a) = auth {
            t.auth_type = a.auth_type;
            t.user = a.user;
            t.password = a.password;
            t.mutual_user = a.mutual_user;
            t.mutual_password = a.mutual_password;
        }
        if let Some(h) = header {
            t.header_digest = h;
        }
        if let Some(d) = data {
            t.data_digest = d;
        }
        if let Some(r) = recv {
            t.max_recv_seg_bytes = r;
        }
        if let Some(x) = send {
            t.max_send_seg_bytes = x;
        }
    }
    Ok(Reply::empty())
}

fn enable(s: &mut DsmState, args: &Args<'_>, on: bool) -> HandlerResult {
    let id = target_id(args)?;
    let t = s
        .targets
        .iter_mut()
        .find(|t| t.target_id == id)
        .ok_or(NO_SUCH_TARGET)?;
    t.enabled = on;
    Ok(Reply::empty())
}

fn map_lun(s: &mut DsmState, args: &Args<'_>, map: bool) -> HandlerResult {
    let id = target_id(args)?;
    let uuids = args.opt_string_list("lun_uuids")?.ok_or(MISSING)?;
    if uuids.is_empty() {
        return Err(MISSING);
    }
    if s.target(id).is_none() {
        return Err(NO_SUCH_TARGET);
    }
    if uuids.iter().any(|u| s.lun(u).is_none()) {
        return Err(NO_SUCH_LUN);
    }
    if let Some(t) = s.targets.iter_mut().find(|t| t.target_id == id) {
        for u in &uuids {
            set_mapping(t, u, map);
        }
    }
    Ok(Reply::empty())
}

fn delete(s: &mut DsmState, args: &Args<'_>) -> HandlerResult {
    let id = target_id(args)?;
    if s.target(id).is_none() {
        return Err(NO_SUCH_TARGET);
    }
    // Deleting a target removes its mappings with it; the LUNs stay.
    s.targets.retain(|t| t.target_id != id);
    Ok(Reply::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqn_rules() {
        assert!(valid_iqn("iqn.2000-01.com.synology:nas01.pvc-1"));
        assert!(!valid_iqn("iqn.2000-01.com.Synology:x"));
        assert!(!valid_iqn("eui.02004567A425678D"));
        assert!(!valid_iqn("iqn.20-01.com"));
    }
}
