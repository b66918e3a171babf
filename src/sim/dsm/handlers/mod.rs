//! Request dispatch: the API table (what `SYNO.API.Info` advertises and what
//! is accepted), session checks, fault injection, the call log, and the
//! per-area handlers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};

use super::request::DsmRequest;
use super::state::{Shared, SimSession, lock};
use crate::sim::faults::{FaultAction, RecordedCall};
use crate::sim::server::{drop_after, dropped_response};

pub mod auth;
pub mod dr;
pub mod lun;
pub mod system;
pub mod target;
pub mod vmm;

/// One API the simulator serves.
#[derive(Clone, Copy, Debug)]
pub struct ApiSpec {
    /// The API name.
    pub name: &'static str,
    /// The CGI path `SYNO.API.Info` advertises.
    pub path: &'static str,
    /// Lowest version.
    pub min_version: i64,
    /// Highest version.
    pub max_version: i64,
    /// Methods.
    pub methods: &'static [&'static str],
    /// Whether a session is required.
    pub needs_session: bool,
}

/// Every API the simulator serves.
pub const APIS: &[ApiSpec] = &[
    ApiSpec {
        name: "SYNO.API.Info",
        path: "query.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["query"],
        needs_session: false,
    },
    ApiSpec {
        name: "SYNO.API.Auth",
        path: "auth.cgi",
        min_version: 1,
        max_version: 7,
        methods: &["login", "logout"],
        needs_session: false,
    },
    ApiSpec {
        name: "SYNO.API.Auth.UIConfig",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["get"],
        needs_session: false,
    },
    // DSM 7 serves both on entry.cgi (DSM 6 had SYNO.DSM.Info on
    // dsm/info.cgi); synology-api asks SYNO.DSM.Info version 2.
    ApiSpec {
        name: "SYNO.DSM.Info",
        path: "entry.cgi",
        min_version: 1,
        max_version: 2,
        methods: &["getinfo"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Core.System",
        path: "entry.cgi",
        min_version: 1,
        max_version: 3,
        methods: &["info"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Core.ISCSI.LUN",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &[
            "list",
            "get",
            "create",
            "set",
            "delete",
            "clone",
            "map_target",
            "unmap_target",
            "list_snapshot",
            "take_snapshot",
            "delete_snapshot",
        ],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Core.ISCSI.Target",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &[
            "list",
            "get",
            "create",
            "set",
            "enable",
            "disable",
            "map_lun",
            "unmap_lun",
            "delete",
        ],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.DR.Plan",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["list", "sync"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Virtualization.API.Guest",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["list", "get", "create", "set", "delete"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Virtualization.API.Guest.Action",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["poweron", "poweroff", "shutdown"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Virtualization.API.Guest.Image",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["list"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Virtualization.API.Task.Info",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["list", "get", "clear"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Virtualization.API.Storage",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["list"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Virtualization.API.Network",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["list"],
        needs_session: true,
    },
    ApiSpec {
        name: "SYNO.Virtualization.API.Host",
        path: "entry.cgi",
        min_version: 1,
        max_version: 1,
        methods: &["list"],
        needs_session: true,
    },
];

/// A successful answer.
pub struct Reply {
    /// `data`; `None` sends `{"success": true}` alone.
    pub data: Option<Value>,
    /// A `Set-Cookie` value (login with `format=cookie`).
    pub set_cookie: Option<String>,
}

impl Reply {
    /// An answer with `data`.
    pub fn data(data: Value) -> Self {
        Reply {
            data: Some(data),
            set_cookie: None,
        }
    }

    /// An answer with an empty `data` object, as DSM sends for most writes.
    pub fn empty() -> Self {
        Reply::data(json!({}))
    }
}

/// What a handler returns: an answer, or a DSM error code.
pub type HandlerResult = Result<Reply, i64>;

/// The context a handler gets.
pub struct Ctx<'a> {
    /// Shared state.
    pub(crate) shared: &'a Shared,
    /// The request.
    pub req: &'a DsmRequest,
    /// The method.
    pub method: &'a str,
    /// The caller's sid, when the API needs a session.
    pub sid: Option<String>,
}

/// The router serving `/webapi/...`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/webapi/{*rest}", any(handle))
        .with_state(shared)
}

fn envelope_error(code: i64) -> Response {
    axum::Json(json!({"success": false, "error": {"code": code}})).into_response()
}

fn envelope_ok(reply: Reply) -> Response {
    let body = match reply.data {
        Some(data) => json!({"success": true, "data": data}),
        None => json!({"success": true}),
    };
    let mut resp = axum::Json(body).into_response();
    if let Some(cookie) = reply.set_cookie
        && let Ok(v) = header::HeaderValue::from_str(&cookie)
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn parse_request(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> DsmRequest {
    let rest = uri.path().trim_start_matches("/webapi/");
    let (cgi, path_api) = match rest.split_once('/') {
        Some((cgi, api)) if !api.is_empty() => (cgi.to_string(), Some(api.to_string())),
        _ => (rest.trim_end_matches('/').to_string(), None),
    };
    let mut params: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        params.extend(form_urlencoded::parse(body).into_owned());
    }
    let cookie_sid = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "id")
        .map(|(_, v)| v.to_string());
    let header_token = headers
        .get("x-syno-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    DsmRequest {
        http_method: method.as_str().to_string(),
        cgi,
        path_api,
        params,
        cookie_sid,
        header_token,
    }
}

/// Parameters whose values the call log masks.
const MASKED: [&str; 3] = ["passwd", "password", "mutual_password"];

fn record(shared: &Shared, op: &str, req: &DsmRequest) {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &req.params {
        let v = if MASKED.contains(&k.as_str()) {
            "<redacted>".to_string()
        } else {
            v.clone()
        };
        values.entry(k.clone()).or_default().push(v);
    }
    // A repeated key (how Python lists arrive) is kept as a JSON array of
    // its values.
    let params = values
        .into_iter()
        .map(|(k, mut v)| {
            let value = if v.len() == 1 {
                v.remove(0)
            } else {
                serde_json::to_string(&v).unwrap_or_default()
            };
            (k, value)
        })
        .collect();
    shared.calls.record(RecordedCall {
        operation: op.to_string(),
        http_method: req.http_method.clone(),
        params,
        body: None,
    });
}

/// Finds the caller's session: `_sid` first, then the `id` cookie (which
/// also needs the SynoToken, as DSM's CSRF protection does).
fn authenticate(shared: &Shared, req: &DsmRequest) -> Result<String, i64> {
    let sessions = lock(&shared.sessions);
    if let Some(sid) = req.get("_sid") {
        return if sessions.contains_key(sid) {
            Ok(sid.to_string())
        } else {
            Err(119)
        };
    }
    let Some(sid) = req.cookie_sid.as_deref() else {
        return Err(119);
    };
    let Some(session) = sessions.get(sid) else {
        return Err(119);
    };
    if let Some(expected) = &session.synotoken {
        let given = req.header_token.as_deref().or(req.get("SynoToken"));
        if given != Some(expected.as_str()) {
            return Err(119);
        }
    }
    Ok(sid.to_string())
}

fn caller_sid(req: &DsmRequest) -> Option<String> {
    req.get("_sid")
        .map(str::to_string)
        .or_else(|| req.cookie_sid.clone())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&shared);
    let req = parse_request(&method, &uri, &headers, &body);
    let api = req.api().unwrap_or("").to_string();
    let api_method = req.get("method").unwrap_or("").to_string();
    let op = format!("{api}.{api_method}");
    record(&shared, &op, &req);
    let decision = shared.faults.decide(&op);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }

    if api.is_empty() || api_method.is_empty() || req.get("version").is_none() {
        return envelope_error(101);
    }
    let installed = lock(&shared.state).has_api(&api);
    let Some(spec) = APIS.iter().find(|s| s.name == api && installed) else {
        return envelope_error(102);
    };
    // Every API answers on entry.cgi; the legacy CGIs only serve their own.
    if req.cgi != "entry.cgi" && req.cgi != spec.path {
        return envelope_error(102);
    }
    if !spec.methods.contains(&api_method.as_str()) {
        return envelope_error(103);
    }
    let version = req
        .get("version")
        .map(super::request::unquote)
        .and_then(|v| v.parse::<i64>().ok());
    match version {
        Some(v) if (spec.min_version..=spec.max_version).contains(&v) => {}
        _ => return envelope_error(104),
    }

    let mut drop_after_apply = false;
    // An "act, then fail" fault: the answer that replaces the real one.
    let mut fail_after_apply = None;
    match decision.action {
        Some(FaultAction::ErrorCode(code)) => return envelope_error(code),
        Some(FaultAction::ErrorCodeAfterApply(code)) => {
            fail_after_apply = Some(envelope_error(code));
        }
        Some(FaultAction::HttpStatusAfterApply(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            fail_after_apply = Some(status.into_response());
        }
        Some(FaultAction::HttpStatus(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return status.into_response();
        }
        Some(FaultAction::DropBeforeApply) => return dropped_response(),
        Some(FaultAction::DropAfterApply) => drop_after_apply = true,
        Some(FaultAction::ExpireSession) => {
            if let Some(sid) = caller_sid(&req) {
                lock(&shared.sessions).remove(&sid);
            }
            return envelope_error(119);
        }
        None => {}
    }

    let sid = if spec.needs_session {
        match authenticate(&shared, &req) {
            Ok(sid) => Some(sid),
            Err(code) => return envelope_error(code),
        }
    } else {
        None
    };
    let ctx = Ctx {
        shared: &shared,
        req: &req,
        method: &api_method,
        sid,
    };
    let result = match spec.name {
        "SYNO.API.Info" => auth::info(&ctx),
        "SYNO.API.Auth" => auth::auth(&ctx),
        "SYNO.API.Auth.UIConfig" => Ok(Reply::data(json!({"ui_config": {}}))),
        "SYNO.Core.ISCSI.LUN" => lun::handle(&ctx),
        "SYNO.Core.ISCSI.Target" => target::handle(&ctx),
        "SYNO.DR.Plan" => dr::handle(&ctx),
        "SYNO.DSM.Info" => system::dsm_info(&ctx),
        "SYNO.Core.System" => system::core_system_info(&ctx),
        _ => vmm::handle(&ctx, spec.name),
    };
    let resp = match result {
        Ok(reply) => envelope_ok(reply),
        Err(code) => envelope_error(code),
    };
    if drop_after_apply {
        drop_after(resp)
    } else if let Some(failure) = fail_after_apply {
        failure
    } else {
        resp
    }
}

/// Counts a request as in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Registers a new session and returns its sid and SynoToken.
pub(crate) fn new_session(shared: &Shared, session: SimSession) -> String {
    let sid = random_token(43);
    lock(&shared.sessions).insert(sid.clone(), session);
    sid
}

/// A random token of URL-safe characters.
pub(crate) fn random_token(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// The current unix time.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
