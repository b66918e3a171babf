//! `SYNO.API.Info` and `SYNO.API.Auth` (plain login over HTTPS; the
//! encrypted RSA/Noise login of `secure=False` clients is not simulated).

use serde_json::{Map, Value, json};

use super::{APIS, Ctx, HandlerResult, Reply, new_session, random_token};
use crate::sim::dsm::state::{SimSession, lock};

/// `SYNO.API.Info.query`: `query=all`, or a comma-separated list of names
/// or prefixes (`SYNO.Core.` matches every Core API).
pub fn info(ctx: &Ctx<'_>) -> HandlerResult {
    let query = ctx.req.get("query").unwrap_or("all");
    let wanted: Vec<&str> = query.split(',').map(str::trim).collect();
    let mut out = Map::new();
    let state = lock(&ctx.shared.state);
    for spec in APIS.iter().filter(|s| state.has_api(s.name)) {
        let hit = wanted
            .iter()
            .any(|w| *w == "all" || *w == spec.name || (!w.is_empty() && spec.name.starts_with(w)));
        if hit {
            out.insert(
                spec.name.to_string(),
                json!({
                    "path": spec.path,
                    "minVersion": spec.min_version,
                    "maxVersion": spec.max_version,
                    "requestFormat": "JSON",
                }),
            );
        }
    }
    Ok(Reply::data(Value::Object(out)))
}

/// `SYNO.API.Auth.login` / `logout`.
pub fn auth(ctx: &Ctx<'_>) -> HandlerResult {
    match ctx.method {
        "login" => login(ctx),
        _ => logout(ctx),
    }
}

fn login(ctx: &Ctx<'_>) -> HandlerResult {
    let req = ctx.req;
    let version = req.get("version").unwrap_or("");
    // DSM's plain login exists in versions 3 (DSM 6 clients, synology-csi),
    // 6 and 7; the others answer "version not supported".
    if !matches!(version, "3" | "6" | "7") {
        return Err(104);
    }
    let account = req.get("account").unwrap_or("");
    let passwd = req.get("passwd").unwrap_or("");
    let creds = &ctx.shared.credentials;
    if account.is_empty() || account != creds.username || passwd != creds.password {
        return Err(400);
    }
    let format = req.get("format").unwrap_or("cookie");
    if format != "sid" && format != "cookie" {
        return Err(101);
    }
    let wants_token = req.get("enable_syno_token") == Some("yes");
    let synotoken = wants_token.then(|| random_token(11));
    let sid = new_session(
        ctx.shared,
        SimSession {
            account: account.to_string(),
            synotoken: synotoken.clone(),
            session_name: req.get("session").unwrap_or("").to_string(),
        },
    );
    let mut data = json!({"sid": sid, "is_portal_port": false});
    if let Some(token) = &synotoken {
        data["synotoken"] = json!(token);
    }
    let set_cookie = (format == "cookie").then(|| format!("id={sid}; path=/; HttpOnly"));
    Ok(Reply {
        data: Some(data),
        set_cookie,
    })
}

fn logout(ctx: &Ctx<'_>) -> HandlerResult {
    // synology-api sends neither `_sid` nor the cookie; DSM cannot tell which
    // session to end and answers success, so does the simulator.
    let sid = ctx
        .req
        .get("_sid")
        .map(str::to_string)
        .or_else(|| ctx.req.cookie_sid.clone());
    if let Some(sid) = sid {
        lock(&ctx.shared.sessions).remove(&sid);
    }
    Ok(Reply {
        data: None,
        set_cookie: None,
    })
}
