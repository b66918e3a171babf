//! Request handling: routing through the shared path table, the bearer
//! check, fault injection, the call log, validation through the shared
//! tables, and the per-area handlers.

mod auth_group;
mod info;
mod lun;
mod snapshot;
mod target;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::array::ngxstorage::dialect::{Dialect, Endpoint, Field};
use crate::array::ngxstorage::validate;
use crate::sim::faults::{CallLog, FaultAction, Faults, RecordedCall};
use crate::sim::server::{drop_after, dropped_response};

use super::state::SimState;

/// Not found: LUN, snapshot, pool, portal group, schedule.
pub const NOT_FOUND: i64 = 5011;
/// Not found: iSCSI target.
pub const TARGET_NOT_FOUND: i64 = 521;
/// Not found: auth group, initiator, CHAP.
pub const GROUP_NOT_FOUND: i64 = 611;
/// Already exists: LUN name, mapping, initiator.
pub const EXISTS: i64 = 710;
/// Already exists: snapshot name on the LUN.
pub const SNAPSHOT_EXISTS: i64 = 522;
/// Already exists: auth group name.
pub const GROUP_EXISTS: i64 = 519;
/// Already exists: target name.
pub const TARGET_EXISTS: i64 = 525;
/// Attached: the object is in use.
pub const ATTACHED: i64 = 534;
/// Unauthorized.
pub const UNAUTHORIZED: i64 = 5000;

/// What one simulator instance needs per request.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Dialect served.
    pub dialect: Dialect,
    /// Accepted bearer token.
    pub token: Arc<str>,
    /// The array state (shared with a peer and across restarts).
    pub state: SimState,
    /// Fault plan.
    pub faults: Faults,
    /// Call log.
    pub calls: CallLog,
    /// What `status/cluster` says about this controller (`Master`, `Ready`).
    pub cluster_status: Arc<Mutex<String>>,
    /// Requests being handled now, and the most seen at once.
    pub in_flight: Arc<InFlight>,
}

/// A gauge of concurrent requests, so tests can check a client's
/// concurrency limit without timing anything.
#[derive(Debug, Default)]
pub struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    /// The most requests handled at the same time so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    fn enter(self: &Arc<Self>) -> InFlightGuard {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An error answer: `{"code": n, "error": "..."}` with an HTTP status.
#[derive(Debug)]
pub struct ApiErr {
    status: StatusCode,
    code: Option<i64>,
    message: String,
}

impl ApiErr {
    pub(crate) fn new(status: StatusCode, code: Option<i64>, message: impl Into<String>) -> Self {
        ApiErr {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn not_found(code: i64, what: impl std::fmt::Display) -> Self {
        ApiErr::new(
            StatusCode::NOT_FOUND,
            Some(code),
            format!("{what} not found"),
        )
    }
    pub(crate) fn exists(code: i64, what: impl std::fmt::Display) -> Self {
        ApiErr::new(
            StatusCode::CONFLICT,
            Some(code),
            format!("{what} already exists"),
        )
    }
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ApiErr::new(StatusCode::BAD_REQUEST, None, message)
    }
    pub(crate) fn attached(message: impl Into<String>) -> Self {
        ApiErr::new(StatusCode::CONFLICT, Some(ATTACHED), message)
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        if let Some(code) = self.code {
            body.insert("code".into(), json!(code));
        }
        body.insert("error".into(), json!(self.message));
        (self.status, axum::Json(Value::Object(body))).into_response()
    }
}

/// The request as a handler sees it.
pub(crate) struct Req<'a> {
    pub ctx: &'a Ctx,
    pub id: Option<&'a str>,
    pub query: &'a [(String, String)],
    pub body: &'a Value,
}

impl Req<'_> {
    pub(crate) fn id(&self) -> &str {
        self.id.unwrap_or_default()
    }
    pub(crate) fn d(&self) -> Dialect {
        self.ctx.dialect
    }
    pub(crate) fn str(&self, key: &str) -> Option<String> {
        self.body
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    }
    pub(crate) fn u64(&self, key: &str) -> Option<u64> {
        self.body.get(key).and_then(Value::as_u64)
    }
    /// A number sent as a number or as a numeric string.
    pub(crate) fn num(&self, key: &str) -> Option<u64> {
        let v = self.body.get(key)?;
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }
    pub(crate) fn owner(&self) -> String {
        self.str("owner")
            .unwrap_or_else(|| self.ctx.state.read(|s| s.owners()[0].clone()))
    }
    pub(crate) fn ids(&self, key: &str) -> Vec<String> {
        self.body
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A JSON object keyed by field-table names in the served dialect.
pub(crate) fn obj(d: Dialect, fields: Vec<(Field, Value)>) -> Map<String, Value> {
    fields
        .into_iter()
        .map(|(f, v)| (f.name(d).to_string(), v))
        .collect()
}

/// A fresh 40-hex id.
pub(crate) fn new_id() -> String {
    hex(&rand::random::<[u8; 20]>())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A number as the served dialect writes byte counts: the document as
/// strings, the SDK as numbers.
pub(crate) fn bytes(d: Dialect, n: u64) -> Value {
    match d {
        Dialect::Document => json!(n.to_string()),
        Dialect::Sdk => json!(n),
    }
}

pub(crate) fn success() -> Value {
    json!({"success": true})
}

/// The single handler behind every path.
pub async fn dispatch(
    State(ctx): State<Ctx>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let body_json: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let path = uri.path();
    let matched = path
        .strip_prefix("/api/v2/")
        .and_then(|rest| Endpoint::match_path(ctx.dialect, method.as_str(), rest));
    let operation = match &matched {
        Some((endpoint, _)) => endpoint.op_key(ctx.dialect),
        None => format!("{} {path}", method.as_str()),
    };
    ctx.calls.record(RecordedCall {
        operation: operation.clone(),
        http_method: method.as_str().to_string(),
        params: query.iter().cloned().collect::<BTreeMap<_, _>>(),
        body: body_json.clone(),
    });

    let authorized = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| t == &*ctx.token);
    if !authorized {
        return ApiErr::new(
            StatusCode::UNAUTHORIZED,
            Some(UNAUTHORIZED),
            "Unauthorized: missing or invalid bearer token",
        )
        .into_response();
    }
    let Some((endpoint, id)) = matched else {
        // A code-less 404, as an unknown path gets from a web server.
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no such endpoint: {} {path}", method.as_str())})),
        )
            .into_response();
    };

    let _in_flight = ctx.in_flight.enter();
    let decision = ctx.faults.decide(&operation);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    let mut drop_after_apply = false;
    // An "act, then fail" fault: the answer that replaces the real one.
    let mut fail_after_apply = None;
    match decision.action {
        Some(FaultAction::ErrorCode(code)) => {
            // Deliberately HTTP 200: the client must read the envelope
            // whatever the status.
            return (
                StatusCode::OK,
                axum::Json(json!({"code": code, "error": format!("simulated error {code}")})),
            )
                .into_response();
        }
        Some(FaultAction::HttpStatus(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return status.into_response();
        }
        Some(FaultAction::DropBeforeApply) => return dropped_response(),
        Some(FaultAction::DropAfterApply) => drop_after_apply = true,
        Some(FaultAction::ErrorCodeAfterApply(code)) => {
            fail_after_apply = Some(
                (
                    StatusCode::OK,
                    axum::Json(json!({"code": code, "error": format!("simulated error {code}")})),
                )
                    .into_response(),
            );
        }
        Some(FaultAction::HttpStatusAfterApply(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            fail_after_apply = Some(status.into_response());
        }
        Some(FaultAction::ExpireSession) => {
            return ApiErr::new(
                StatusCode::UNAUTHORIZED,
                Some(UNAUTHORIZED),
                "Unauthorized: token expired",
            )
            .into_response();
        }
        None => {}
    }

    let result = if !body.is_empty() && body_json.is_none() {
        Err(ApiErr::invalid("body: not valid JSON"))
    } else {
        let body_value = body_json.unwrap_or(Value::Null);
        check(&ctx, endpoint, id.as_deref(), &query, &body_value).and_then(|()| {
            handle(
                endpoint,
                &Req {
                    ctx: &ctx,
                    id: id.as_deref(),
                    query: &query,
                    body: &body_value,
                },
            )
        })
    };
    let response = match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    };
    if drop_after_apply {
        drop_after(response)
    } else if let Some(failure) = fail_after_apply {
        failure
    } else {
        response
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let decoded = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match decoded {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The document's tables, then the owner check.
fn check(
    ctx: &Ctx,
    endpoint: Endpoint,
    id: Option<&str>,
    query: &[(String, String)],
    body: &Value,
) -> Result<(), ApiErr> {
    if let Some(id) = id {
        validate::check_path_id(endpoint, id).map_err(|v| ApiErr::invalid(v.to_string()))?;
    }
    validate::check_query(endpoint, ctx.dialect, query)
        .map_err(|v| ApiErr::invalid(v.to_string()))?;
    let has_table = !validate::body_spec(endpoint, ctx.dialect).is_empty();
    if has_table {
        validate::check_body(endpoint, ctx.dialect, body)
            .map_err(|v| ApiErr::invalid(v.to_string()))?;
    }
    if let Some(owner) = body.get("owner").and_then(Value::as_str) {
        let owners = ctx.state.read(|s| s.owners());
        if !owners.iter().any(|o| o == owner) {
            return Err(ApiErr::invalid(format!(
                "field `owner`: {owner:?} is not a controller of this array ({} or {})",
                owners[0], owners[1]
            )));
        }
    }
    Ok(())
}

fn handle(endpoint: Endpoint, req: &Req<'_>) -> Result<Value, ApiErr> {
    use Endpoint as E;
    match endpoint {
        E::LunCreate => lun::create(req),
        E::LunDelete => lun::delete(req),
        E::LunModify => lun::modify(req),
        E::LunDetail => lun::detail(req),
        E::LunDetailList => lun::detail_list(req),
        E::LunList => lun::list(req),
        E::TargetCreate => target::create(req),
        E::TargetDelete => target::delete(req),
        E::TargetRename => target::rename(req),
        E::TargetPortalGroup => target::set_portal_group(req),
        E::TargetAuthGroup => target::set_auth_group(req),
        E::TargetAddLun => target::add_luns(req),
        E::TargetRemoveLun => target::remove_luns(req),
        E::TargetDetail => target::detail(req),
        E::TargetDetailList => target::detail_list(req),
        E::TargetList => target::list(req),
        E::AuthGroupCreate => auth_group::create(req),
        E::AuthGroupDelete => auth_group::delete(req),
        E::AuthGroupRename => auth_group::rename(req),
        E::AuthGroupAddChap => auth_group::set_chap(req),
        E::AuthGroupDeleteChap => auth_group::delete_chap(req),
        E::AuthGroupAddIqn => auth_group::add_iqn(req),
        E::AuthGroupDeleteIqn => auth_group::delete_iqn(req),
        E::AuthGroupDetail => auth_group::detail(req),
        E::AuthGroupDetailList => auth_group::detail_list(req),
        E::AuthGroupList => auth_group::list(req),
        E::PortalGroupList | E::PortalGroupDetailList => info::portal_groups(req),
        E::PortalGroupDetail => info::portal_group(req),
        E::PortalGroupCreate => info::create_portal_group(req),
        E::PortalGroupDelete => info::delete_portal_group(req),
        E::SnapshotCreate => snapshot::create(req),
        E::SnapshotDelete => snapshot::delete(req),
        E::SnapshotDeleteAll => snapshot::delete_all(req),
        E::SnapshotClone => snapshot::clone(req),
        E::SnapshotRestore => snapshot::restore(req),
        E::SnapshotDetail => snapshot::detail(req),
        E::SnapshotDetailList => snapshot::detail_list(req),
        E::SnapshotList => snapshot::list(req),
        E::ScheduleDetail => snapshot::schedule(req),
        E::ScheduleCreate => snapshot::create_schedule(req),
        E::ScheduleDelete => snapshot::delete_schedule(req),
        E::PoolList => info::pools(req),
        E::PoolDetailList => info::pool_detail_list(req),
        E::PoolDetail => info::pool(req),
        E::PoolOverview => info::pool_overview(req),
        E::StatusSystemInfo => info::system_info(req),
        E::StatusCapacity => info::capacity_status(req),
        E::StatusPools => info::status_pools(req),
        E::StatusCluster => info::cluster(req),
        E::StatusLicense => info::license(req),
        E::StatusServices => Ok(info::services()),
        E::StatusIops | E::StatusBandwidth => Ok(json!({"read": 0, "write": 0, "total": 0})),
        E::StatusCache => Ok(json!({})),
        E::StatusCpu => Ok(info::cpu()),
        E::StatusEnclosures => info::enclosures(req),
        E::StatusOverloadedVolumes => Ok(info::overloaded_volumes(req)),
    }
}
