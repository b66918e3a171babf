//! The client: configuration, controller selection (HA), dialect probe, and
//! the one request path every endpoint goes through (validation, bearer
//! token, error envelope, busy retry, no replay of ambiguous mutations).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::array::error::{ArrayError, ErrorClass};
use crate::array::transport::{Transport, TransportConfig};

use super::dialect::{Dialect, Endpoint, Method};
use super::error::{CODE_BUSY, NgxError};
use super::types::ClusterStatus;
use super::validate::{self, Rule};

/// How `PATCH lun/{id}` `size` is meant (`StorageArray.spec.ngxstorage.resizeMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResizeMode {
    /// Find out, safely: every grow first sends the increment (which can
    /// never overshoot on either kind of array), reads the LUN back, and
    /// sends the new total only when the array showed it reads `size` as a
    /// total. See [`NgxClient::resize_lun`].
    #[default]
    Auto,
    /// `size` is the new total, as the document reads.
    Absolute,
    /// `size` is the increment, as the SDK's newer versions send.
    Delta,
}

impl ResizeMode {
    /// The spec spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeMode::Auto => "Auto",
            ResizeMode::Absolute => "Absolute",
            ResizeMode::Delta => "Delta",
        }
    }
}

/// The most bytes of one answer the client reads. A bigger body (a broken
/// or hostile array, or a proxy's error page) is refused, not buffered.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Bounded backoff for 725 (busy) answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyRetry {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of one wait.
    pub max_backoff: Duration,
}

impl Default for BusyRetry {
    /// The SDK's: 6 attempts, 10 s doubling to 30 s.
    fn default() -> Self {
        BusyRetry {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl BusyRetry {
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The bearer token. Its Debug and Display never show it.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token read from the StorageArray's Secret.
    pub fn new(token: impl Into<String>) -> Self {
        Token(token.into())
    }

    fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Everything needed to talk to one array (one StorageArray).
#[derive(Clone, Debug)]
pub struct NgxConfig {
    /// `spec.endpoint`, for example `https://10.0.0.5` (no `/api/v2`).
    pub endpoint: String,
    /// `spec.secondaryEndpoint`: the other controller of an HA pair.
    pub secondary_endpoint: Option<String>,
    /// The bearer token, from `credentialsSecretRef` key `token`.
    pub token: Token,
    /// `spec.ngxstorage.owner`: the controller id mutations carry.
    pub owner: String,
    /// `spec.ngxstorage.resizeMode`.
    pub resize_mode: ResizeMode,
    /// TLS, timeout and concurrency limit.
    pub transport: TransportConfig,
    /// Backoff for busy (725) answers.
    pub busy_retry: BusyRetry,
    /// How long a Master choice holds before `status/cluster` is asked again.
    pub reselect_interval: Duration,
    /// Skip the probe and use this dialect.
    pub dialect: Option<Dialect>,
}

impl NgxConfig {
    /// A configuration with the defaults for everything but the essentials.
    pub fn new(endpoint: impl Into<String>, token: Token, owner: impl Into<String>) -> Self {
        NgxConfig {
            endpoint: endpoint.into(),
            secondary_endpoint: None,
            token,
            owner: owner.into(),
            resize_mode: ResizeMode::default(),
            transport: TransportConfig::default(),
            busy_retry: BusyRetry::default(),
            reselect_interval: Duration::from_secs(300),
            dialect: None,
        }
    }
}

#[derive(Debug)]
struct Selection {
    index: usize,
    chosen_at: Instant,
}

#[derive(Debug)]
struct Inner {
    config: NgxConfig,
    controllers: Vec<String>,
    transport: Transport,
    /// Set once: from the config, or by the probe at connect.
    dialect: OnceLock<Dialect>,
    selection: Mutex<Option<Selection>>,
    /// In `Auto` resize mode: how this array turned out to read `size`.
    learned_resize: std::sync::Mutex<Option<ResizeMode>>,
}

/// A client for one NGXStorage array (or HA pair). Cheap to clone; clones
/// share the connection pool, the concurrency limit and the Master choice,
/// so one instance per array serves every concurrent caller.
#[derive(Clone, Debug)]
pub struct NgxClient {
    inner: Arc<Inner>,
}

/// The outcome of one HTTP exchange, before retry decisions.
enum Attempt {
    Answer(Result<Value, NgxError>),
    /// The request never left: safe to resend on any controller.
    NotSent(String),
    /// The request may have reached the array.
    Lost(String),
}

fn api_call(endpoint: Endpoint, dialect: Dialect) -> String {
    let (m, p) = endpoint.route(dialect);
    format!("{} /{}", m.as_str(), p)
}

impl NgxClient {
    /// Connects: checks the configuration, picks the Master controller and
    /// detects the dialect (unless the config fixes it).
    pub async fn connect(config: NgxConfig) -> Result<Self, NgxError> {
        if !Rule::Owner.check_str(&config.owner) {
            return Err(NgxError::Config {
                field: "spec.ngxstorage.owner",
                problem: format!(
                    "must be {} (got {:?})",
                    Rule::Owner.describe(),
                    config.owner
                ),
            });
        }
        let mut controllers = vec![config.endpoint.trim_end_matches('/').to_string()];
        if let Some(second) = &config.secondary_endpoint {
            let second = second.trim_end_matches('/').to_string();
            if second == controllers[0] {
                return Err(NgxError::Config {
                    field: "spec.secondaryEndpoint",
                    problem: "must differ from spec.endpoint".into(),
                });
            }
            controllers.push(second);
        }
        for c in &controllers {
            if !(c.starts_with("https://") || c.starts_with("http://")) {
                return Err(NgxError::Config {
                    field: "spec.endpoint",
                    problem: format!("must be an https:// (or http://) URL (got {c:?})"),
                });
            }
        }
        let transport = Transport::new(&config.transport)?;
        let dialect = OnceLock::new();
        if let Some(d) = config.dialect {
            let _ = dialect.set(d);
        }
        let client = NgxClient {
            inner: Arc::new(Inner {
                dialect,
                config,
                controllers,
                transport,
                selection: Mutex::new(None),
                learned_resize: std::sync::Mutex::new(None),
            }),
        };
        client.current_controller().await?;
        if client.inner.dialect.get().is_none() {
            let dialect = client.probe_dialect().await?;
            let _ = client.inner.dialect.set(dialect);
        }
        Ok(client)
    }

    /// The dialect in use (to record in the StorageArray status).
    pub fn dialect(&self) -> Dialect {
        // Unset only during the probe, whose calls name their dialect.
        self.inner.dialect.get().copied().unwrap_or_default()
    }

    /// The configured owner.
    pub fn owner(&self) -> &str {
        &self.inner.config.owner
    }

    /// The configured resize mode.
    pub fn resize_mode(&self) -> ResizeMode {
        self.inner.config.resize_mode
    }

    /// How the array reads a resize `size`: the configured mode when it is
    /// `Absolute` or `Delta`; in `Auto`, what the last grow showed (`None`
    /// until a grow has). This is what `StorageArray.status.atArray.resizeMode`
    /// reports.
    pub fn effective_resize_mode(&self) -> Option<ResizeMode> {
        match self.inner.config.resize_mode {
            ResizeMode::Auto => *self
                .inner
                .learned_resize
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
            fixed => Some(fixed),
        }
    }

    /// Records what a grow showed about the array (`Auto` mode).
    pub(crate) fn learn_resize_mode(&self, mode: ResizeMode) {
        let mut learned = self
            .inner
            .learned_resize
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *learned != Some(mode) {
            tracing::info!(
                mode = mode.as_str(),
                "NGX array reads a LUN resize `size` this way"
            );
        }
        *learned = Some(mode);
    }

    /// The base URL of the controller currently chosen as Master, if any.
    pub async fn active_endpoint(&self) -> Option<String> {
        let selection = self.inner.selection.lock().await;
        selection
            .as_ref()
            .map(|s| self.inner.controllers[s.index].clone())
    }

    /// Asks the SDK's path first (the notes judge it more likely), then the
    /// document's.
    async fn probe_dialect(&self) -> Result<Dialect, NgxError> {
        let mut tried = Vec::new();
        for dialect in [Dialect::Sdk, Dialect::Document] {
            match self
                .call_as(dialect, Endpoint::TargetDetailList, None, &[], None)
                .await
            {
                Ok(Value::Array(_)) => return Ok(dialect),
                Ok(other) => tried.push(format!("{dialect}: not a list ({})", short(&other))),
                // An unserved path answers 404 (code-less, or a not-found
                // code) or 405.
                Err(e) if e.is_not_found() || matches!(e.http_status(), Some(404 | 405)) => {
                    tried.push(format!("{dialect}: {e}"));
                }
                Err(e) => return Err(e),
            }
        }
        Err(NgxError::UnknownDialect {
            detail: format!(
                "neither iSCSI target path family answered: {}",
                tried.join("; ")
            ),
        })
    }

    /// The controller to send to, re-asking `status/cluster` when no choice
    /// was made yet or the last one is older than the reselect interval.
    async fn current_controller(&self) -> Result<usize, NgxError> {
        let mut selection = self.inner.selection.lock().await;
        if let Some(s) = selection.as_ref()
            && s.chosen_at.elapsed() < self.inner.config.reselect_interval
        {
            return Ok(s.index);
        }
        let index = self.select_master().await?;
        *selection = Some(Selection {
            index,
            chosen_at: Instant::now(),
        });
        Ok(index)
    }

    async fn forget_controller(&self, index: usize) {
        let mut selection = self.inner.selection.lock().await;
        if selection.as_ref().is_some_and(|s| s.index == index) {
            *selection = None;
        }
    }

    /// One controller: use it. Two: the one that says Master; if only one
    /// answers, that one (its peer is down, so it is the survivor).
    async fn select_master(&self) -> Result<usize, NgxError> {
        let mut answers = Vec::new();
        let mut notes = Vec::new();
        for (index, base) in self.inner.controllers.iter().enumerate() {
            let attempt = self
                .exchange(
                    base,
                    self.dialect(),
                    Endpoint::StatusCluster,
                    None,
                    &[],
                    None,
                )
                .await;
            match attempt {
                Attempt::Answer(Ok(v)) => match ClusterStatus::decode(&v) {
                    Ok(status) => answers.push((index, status)),
                    Err(e) => notes.push(format!("{base}: {e}")),
                },
                Attempt::Answer(Err(e)) if e.class() == ErrorClass::Unauthorized => {
                    return Err(e);
                }
                Attempt::Answer(Err(e)) => notes.push(format!("{base}: {e}")),
                Attempt::NotSent(d) | Attempt::Lost(d) => notes.push(format!("{base}: {d}")),
            }
        }
        if self.inner.controllers.len() == 1
            && let Some((index, _)) = answers.first()
        {
            return Ok(*index);
        }
        if let Some((index, _)) = answers.iter().find(|(_, s)| s.is_master() && s.connected) {
            return Ok(*index);
        }
        if let Some((index, _)) = answers.iter().find(|(_, s)| s.is_master()) {
            return Ok(*index);
        }
        if answers.len() == 1 {
            return Ok(answers[0].0);
        }
        for (index, status) in &answers {
            notes.push(format!(
                "{}: status {:?}, connected {}",
                self.inner.controllers[*index], status.status, status.connected
            ));
        }
        Err(NgxError::NoController {
            detail: notes.join("; "),
        })
    }

    /// Sends one call in the detected dialect and returns the JSON answer.
    pub(crate) async fn call(
        &self,
        endpoint: Endpoint,
        id: Option<&str>,
        query: &[(String, String)],
        body: Option<Value>,
    ) -> Result<Value, NgxError> {
        self.call_as(self.dialect(), endpoint, id, query, body)
            .await
    }

    async fn call_as(
        &self,
        dialect: Dialect,
        endpoint: Endpoint,
        id: Option<&str>,
        query: &[(String, String)],
        body: Option<Value>,
    ) -> Result<Value, NgxError> {
        let call = api_call(endpoint, dialect);
        if let Some(id) = id {
            validate::check_path_id(endpoint, id).map_err(|violation| NgxError::Invalid {
                api_call: call.clone(),
                violation,
            })?;
        }
        if let Some(body) = &body {
            validate::check_body(endpoint, dialect, body).map_err(|violation| {
                NgxError::Invalid {
                    api_call: call.clone(),
                    violation,
                }
            })?;
        }
        validate::check_query(endpoint, dialect, query).map_err(|violation| NgxError::Invalid {
            api_call: call.clone(),
            violation,
        })?;

        let method = endpoint.method();
        let retry = self.inner.config.busy_retry;
        let max_attempts = retry.max_attempts.max(1);
        // Transport failures get their own small budget: one try per
        // controller plus one, so a failover can happen inside one call.
        let mut transport_budget = self.inner.controllers.len() + 1;
        let mut busy_attempt = 0u32;
        loop {
            let index = self.current_controller().await?;
            let base = &self.inner.controllers[index];
            match self
                .exchange(base, dialect, endpoint, id, query, body.as_ref())
                .await
            {
                Attempt::Answer(Err(e)) if e.vendor_code() == Some(CODE_BUSY) => {
                    busy_attempt += 1;
                    if busy_attempt >= max_attempts {
                        return Err(e);
                    }
                    let wait = retry.backoff(busy_attempt);
                    tracing::debug!(api_call = %call, attempt = busy_attempt, ?wait, "array busy (725); retrying");
                    tokio::time::sleep(wait).await;
                }
                Attempt::Answer(answer) => return answer,
                Attempt::NotSent(detail) => {
                    self.forget_controller(index).await;
                    transport_budget = transport_budget.saturating_sub(1);
                    if transport_budget == 0 {
                        return Err(NgxError::Unreachable {
                            api_call: call,
                            object: id.map(str::to_string),
                            detail,
                        });
                    }
                    tracing::debug!(api_call = %call, %detail, "connection failed before sending; choosing a controller again");
                }
                Attempt::Lost(detail) => {
                    self.forget_controller(index).await;
                    if !method.replay_safe() {
                        return Err(NgxError::Ambiguous {
                            api_call: call,
                            object: id.map(str::to_string),
                            detail,
                        });
                    }
                    transport_budget = transport_budget.saturating_sub(1);
                    if transport_budget == 0 {
                        return Err(NgxError::Unreachable {
                            api_call: call,
                            object: id.map(str::to_string),
                            detail,
                        });
                    }
                }
            }
        }
    }

    /// One HTTP request and the parse of its answer.
    async fn exchange(
        &self,
        base: &str,
        dialect: Dialect,
        endpoint: Endpoint,
        id: Option<&str>,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Attempt {
        let call = api_call(endpoint, dialect);
        let url = format!("{base}/api/v2/{}", endpoint.path_with(dialect, id));
        let http = self.inner.transport.http();
        let method = endpoint.method();
        let mut request = match method {
            Method::Get => http.get(&url),
            Method::Post => http.post(&url),
            Method::Put => http.put(&url),
            Method::Patch => http.patch(&url),
            Method::Delete => http.delete(&url),
        }
        .header(
            reqwest::header::AUTHORIZATION,
            self.inner.config.token.header(),
        )
        .header(reqwest::header::CONTENT_TYPE, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let _permit = match self.inner.transport.permit().await {
            Ok(p) => p,
            Err(e) => return Attempt::NotSent(format!("concurrency limiter closed: {e}")),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let detail = describe_transport_error(&e);
                return if e.is_connect() {
                    Attempt::NotSent(detail)
                } else {
                    Attempt::Lost(detail)
                };
            }
        };
        let status = response.status().as_u16();
        let bytes = match read_capped(response, MAX_BODY_BYTES).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Attempt::Answer(Err(NgxError::TooLarge {
                    api_call: call,
                    object: id.map(str::to_string),
                    http_status: status,
                    limit: MAX_BODY_BYTES,
                }));
            }
            Err(e) => return Attempt::Lost(describe_transport_error(&e)),
        };
        Attempt::Answer(parse_answer(&call, id, status, &bytes))
    }
}

/// Reads a body of at most `limit` bytes; `None` when it is longer (the
/// rest is not read: the connection is dropped with the response).
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// reqwest's message plus its source chain, without the URL's query (which
/// never holds the token anyway: the token travels only in a header).
fn describe_transport_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn short(v: &Value) -> String {
    v.to_string().chars().take(120).collect()
}

/// Parses an answer: the `{"code", "error"}` envelope whatever the status;
/// an empty or non-JSON body is an error even with 200.
pub(crate) fn parse_answer(
    call: &str,
    id: Option<&str>,
    status: u16,
    bytes: &[u8],
) -> Result<Value, NgxError> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        if status >= 400 {
            return Err(NgxError::Api {
                api_call: call.to_string(),
                object: id.map(str::to_string),
                http_status: status,
                code: None,
                message: format!("HTTP {status} with an empty body"),
            });
        }
        return Err(NgxError::BadResponse {
            api_call: call.to_string(),
            object: id.map(str::to_string),
            http_status: status,
            detail: "empty body".into(),
        });
    }
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let snippet: String = text.chars().take(120).collect();
            if status >= 400 {
                return Err(NgxError::Api {
                    api_call: call.to_string(),
                    object: id.map(str::to_string),
                    http_status: status,
                    code: None,
                    message: snippet,
                });
            }
            return Err(NgxError::BadResponse {
                api_call: call.to_string(),
                object: id.map(str::to_string),
                http_status: status,
                detail: format!("not JSON ({e}): {snippet}"),
            });
        }
    };
    let code = value.get("code").and_then(|c| {
        c.as_i64()
            .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let failed_flag = value.get("success").and_then(Value::as_bool) == Some(false);
    if status >= 400 || code.is_some_and(|c| c != 0) || failed_flag {
        let message = value
            .get("error")
            .or_else(|| value.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("HTTP {status}: {}", short(&value)));
        return Err(NgxError::Api {
            api_call: call.to_string(),
            object: id.map(str::to_string),
            http_status: status,
            code: code.filter(|c| *c != 0),
            message,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::array::error::{ArrayError, ErrorClass};

    #[test]
    fn envelopes_are_errors_whatever_the_status() {
        let e = parse_answer(
            "GET /lun/{id}",
            None,
            200,
            br#"{"code":725,"error":"busy"}"#,
        )
        .expect_err("busy");
        assert_eq!(e.class(), ErrorClass::Busy);
        assert_eq!(e.http_status(), Some(200));
        let e = parse_answer("GET /x", None, 200, b"").expect_err("empty");
        assert!(matches!(e, NgxError::BadResponse { .. }));
        let e = parse_answer("GET /x", None, 200, b"<html>").expect_err("html");
        assert!(matches!(e, NgxError::BadResponse { .. }));
        // A code-less 404 is a path the array does not serve, not a
        // confirmation that an object is gone.
        let e = parse_answer("GET /x", None, 404, b"").expect_err("404");
        assert_ne!(e.class(), ErrorClass::NotFound);
        assert_eq!(e.http_status(), Some(404));
        assert!(parse_answer("GET /x", None, 200, br#"{"success":true}"#).is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let r = BusyRetry {
            max_attempts: 6,
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(30),
        };
        assert_eq!(r.backoff(1), Duration::from_secs(10));
        assert_eq!(r.backoff(2), Duration::from_secs(20));
        assert_eq!(r.backoff(3), Duration::from_secs(30));
        assert_eq!(r.backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn the_token_is_redacted_in_debug() {
        let c = NgxConfig::new("https://x", Token::new("s3cr3t-token"), "A_A");
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
