//! The DSM WebAPI client: API discovery, the shared login, and the call
//! pipeline (session-expiry recovery, read retries, no blind resend of writes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{Mutex, OnceCell};

use super::error::{DsmError, message_for};
use super::params::Params;
use super::session::{Credentials, LoginCounter, SessionState, Sid, session_name_for};
use crate::array::transport::{Transport, TransportConfig};

/// The API that lists every other API and where it lives.
pub const API_INFO: &str = "SYNO.API.Info";
/// The login API.
pub const API_AUTH: &str = "SYNO.API.Auth";

/// How to reach and log in to one DSM.
#[derive(Clone, Debug)]
pub struct DsmConfig {
    /// `https://host:port` (no trailing `/webapi`).
    pub base_url: String,
    /// The account the operator logs in with.
    pub credentials: Credentials,
    /// TLS trust, timeouts and the per-array concurrency limit.
    pub transport: TransportConfig,
    /// The DSM session name; unique per operator install (see
    /// [`session_name_for`]).
    pub session_name: String,
    /// How many times a read is tried in all when the transport fails.
    pub read_attempts: u32,
    /// Backoff before the first read retry; doubled for each further one.
    pub retry_backoff: Duration,
}

impl DsmConfig {
    /// A configuration with the defaults: 3 read attempts, 200 ms backoff,
    /// and a session name derived from `install_id`.
    pub fn new(
        base_url: impl Into<String>,
        credentials: Credentials,
        transport: TransportConfig,
        install_id: &str,
    ) -> Self {
        DsmConfig {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            credentials,
            transport,
            session_name: session_name_for(install_id),
            read_attempts: 3,
            retry_backoff: Duration::from_millis(200),
        }
    }
}

/// Whether a call changes the array. Only reads are resent after a transport
/// failure; a write that failed in flight may have been applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// Observes only; safe to resend.
    Read,
    /// Changes the array; never resent after an unknown outcome.
    Write,
}

/// Where one API lives and which versions it speaks, from `SYNO.API.Info`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ApiEntry {
    /// The CGI path under `/webapi/`, for example `entry.cgi`.
    pub path: String,
    /// Lowest version offered.
    #[serde(rename = "minVersion")]
    pub min_version: u32,
    /// Highest version offered.
    #[serde(rename = "maxVersion")]
    pub max_version: u32,
}

/// The version of each API whose parameters this client implements. The
/// client sends `min(this, maxVersion)`; every data API here is version 1 on
/// DSM 7.2. Login uses version 6, the first with `format=sid` plus SynoToken.
fn preferred_version(api: &str) -> u32 {
    if api == API_AUTH { 6 } else { 1 }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    success: bool,
    /// Kept as raw text: list answers are split into records later without
    /// a tree of the whole answer.
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: i64,
}

enum SendError {
    Transport(String),
    Http(u16),
    Decode(String),
    TooLarge,
}

/// The most bytes of one answer the client reads. A bigger body (a broken
/// or hostile DSM, or a proxy's error page) is refused, not buffered.
pub const MAX_BODY_BYTES: usize = 16 << 20;

#[derive(Debug, Deserialize)]
struct LoginData {
    sid: String,
}

/// A DSM WebAPI client for one array. Cheap to clone; every clone shares the
/// login, the API table and the concurrency limit.
#[derive(Clone, Debug)]
pub struct DsmClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DsmConfig,
    transport: Transport,
    apis: OnceCell<HashMap<String, ApiEntry>>,
    session: Mutex<SessionState>,
    logins: LoginCounter,
}

impl DsmClient {
    /// Builds a client. Nothing is sent until the first call.
    pub fn new(config: DsmConfig) -> Result<Self, DsmError> {
        let transport = Transport::new(&config.transport)?;
        Ok(DsmClient {
            inner: Arc::new(Inner {
                config,
                transport,
                apis: OnceCell::new(),
                session: Mutex::new(SessionState::default()),
                logins: LoginCounter::default(),
            }),
        })
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.inner.config.base_url
    }

    /// How many logins this client has made.
    pub fn login_count(&self) -> u64 {
        self.inner.logins.get()
    }

    /// The API table from `SYNO.API.Info`, fetched once per client.
    pub async fn api_table(&self) -> Result<&HashMap<String, ApiEntry>, DsmError> {
        self.inner
            .apis
            .get_or_try_init(|| async { self.query_api_info().await })
            .await
    }

    async fn query_api_info(&self) -> Result<HashMap<String, ApiEntry>, DsmError> {
        let api_call = format!("{API_INFO}.query");
        let form = [
            ("api", API_INFO.to_string()),
            ("version", "1".to_string()),
            ("method", "query".to_string()),
            ("query", "all".to_string()),
        ];
        let data = self
            .send_with_retries(&api_call, "API table", "query.cgi", &form, CallKind::Read)
            .await?;
        serde_json::from_str(data.get()).map_err(|e| DsmError::Decode {
            api_call,
            subject: "API table".into(),
            detail: e.to_string(),
        })
    }

    async fn resolve(&self, api: &str, api_call: &str) -> Result<(String, u32), DsmError> {
        let table = self.api_table().await?;
        let entry = table.get(api).ok_or_else(|| DsmError::Unsupported {
            api_call: api_call.to_string(),
            detail: format!("{api} is not in SYNO.API.Info (is the package installed?)"),
        })?;
        let version = preferred_version(api).min(entry.max_version);
        if version < entry.min_version {
            return Err(DsmError::Unsupported {
                api_call: api_call.to_string(),
                detail: format!(
                    "{api} offers versions {}..{}, this client speaks {}",
                    entry.min_version,
                    entry.max_version,
                    preferred_version(api)
                ),
            });
        }
        Ok((entry.path.clone(), version))
    }

    /// The current sid and its generation, logging in first when there is
    /// none. Concurrent callers share one login.
    async fn sid(&self) -> Result<(Sid, u64), DsmError> {
        let mut state = self.inner.session.lock().await;
        if let Some(sid) = &state.sid {
            return Ok((sid.clone(), state.generation));
        }
        let sid = self.login().await?;
        state.sid = Some(sid.clone());
        state.generation += 1;
        Ok((sid, state.generation))
    }

    /// Drops the sid of `stale_generation` and logs in again, unless another
    /// caller already replaced it.
    async fn relogin(&self, stale_generation: u64) -> Result<(), DsmError> {
        let mut state = self.inner.session.lock().await;
        if state.generation != stale_generation && state.sid.is_some() {
            return Ok(());
        }
        state.sid = None;
        let sid = self.login().await?;
        state.sid = Some(sid);
        state.generation += 1;
        Ok(())
    }

    async fn login(&self) -> Result<Sid, DsmError> {
        let api_call = format!("{API_AUTH}.login");
        let (path, version) = self.resolve(API_AUTH, &api_call).await?;
        let cfg = &self.inner.config;
        let form = [
            ("api", API_AUTH.to_string()),
            ("version", version.to_string()),
            ("method", "login".to_string()),
            ("account", cfg.credentials.username.clone()),
            ("passwd", cfg.credentials.password.clone()),
            ("session", cfg.session_name.clone()),
            ("format", "sid".to_string()),
        ];
        let subject = format!("account {:?}", cfg.credentials.username);
        let data = self
            .send_with_retries(&api_call, &subject, &path, &form, CallKind::Read)
            .await?;
        self.inner.logins.bump();
        tracing::debug!(api_call = %api_call, "logged in to DSM");
        let login: LoginData = serde_json::from_str(data.get()).map_err(|e| DsmError::Decode {
            api_call,
            subject,
            detail: e.to_string(),
        })?;
        Ok(Sid::new(login.sid))
    }

    /// Logs in now unless a session is open, so refused credentials show at
    /// connect time instead of on the first call.
    pub async fn login_now(&self) -> Result<(), DsmError> {
        self.sid().await.map(|_| ())
    }

    /// Ends the session, if there is one. Called on shutdown.
    pub async fn logout(&self) -> Result<(), DsmError> {
        let mut state = self.inner.session.lock().await;
        let Some(sid) = state.sid.take() else {
            return Ok(());
        };
        let api_call = format!("{API_AUTH}.logout");
        let (path, version) = self.resolve(API_AUTH, &api_call).await?;
        let form = [
            ("api", API_AUTH.to_string()),
            ("version", version.to_string()),
            ("method", "logout".to_string()),
            ("session", self.inner.config.session_name.clone()),
            ("_sid", sid.expose().to_string()),
        ];
        self.send_with_retries(&api_call, "session", &path, &form, CallKind::Write)
            .await
            .map(|_| ())
    }

    /// Calls `api.method` and decodes `data` into `T`.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        api: &'static str,
        method: &'static str,
        subject: &str,
        params: Params,
        kind: CallKind,
    ) -> Result<T, DsmError> {
        let data = self.call_raw(api, method, subject, params, kind).await?;
        serde_json::from_str(data.get()).map_err(|e| DsmError::Decode {
            api_call: format!("{api}.{method}"),
            subject: subject.to_string(),
            detail: e.to_string(),
        })
    }

    /// Calls `api.method` and returns `data` as JSON (`{}` when absent).
    pub(crate) async fn call_value(
        &self,
        api: &'static str,
        method: &'static str,
        subject: &str,
        params: Params,
        kind: CallKind,
    ) -> Result<Value, DsmError> {
        let data = self.call_raw(api, method, subject, params, kind).await?;
        serde_json::from_str(data.get()).map_err(|e| DsmError::Decode {
            api_call: format!("{api}.{method}"),
            subject: subject.to_string(),
            detail: e.to_string(),
        })
    }

    /// Calls `api.method` and returns `data` as raw JSON text (`{}` when
    /// absent), for answers decoded piece by piece.
    pub(crate) async fn call_raw(
        &self,
        api: &'static str,
        method: &'static str,
        subject: &str,
        params: Params,
        kind: CallKind,
    ) -> Result<Box<RawValue>, DsmError> {
        let api_call = format!("{api}.{method}");
        let (path, version) = self.resolve(api, &api_call).await?;
        // Parameters are never logged: some carry CHAP secrets.
        tracing::debug!(api_call = %api_call, subject, ?kind, "DSM call");
        let mut relogged = false;
        loop {
            let (sid, generation) = self.sid().await?;
            let mut form: Vec<(&str, String)> = vec![
                ("api", api.to_string()),
                ("version", version.to_string()),
                ("method", method.to_string()),
            ];
            form.extend(params.pairs().iter().map(|(k, v)| (*k, v.clone())));
            form.push(("_sid", sid.expose().to_string()));
            match self
                .send_with_retries(&api_call, subject, &path, &form, kind)
                .await
            {
                Err(err) if err.is_session_error() && !relogged => {
                    // DSM refuses a call with an expired session before it
                    // acts, so even a write is safe to send again.
                    tracing::info!(api_call = %api_call, code = ?err.code(), "DSM session expired; logging in again");
                    relogged = true;
                    self.relogin(generation).await?;
                }
                other => return other,
            }
        }
    }

    /// Sends one request; retries reads (never writes) after transport
    /// failures and 5xx answers, with exponential backoff.
    async fn send_with_retries(
        &self,
        api_call: &str,
        subject: &str,
        path: &str,
        form: &[(&str, String)],
        kind: CallKind,
    ) -> Result<Box<RawValue>, DsmError> {
        let cfg = &self.inner.config;
        let attempts = match kind {
            CallKind::Read => cfg.read_attempts.max(1),
            CallKind::Write => 1,
        };
        let mut backoff = cfg.retry_backoff;
        let mut attempt = 1;
        loop {
            let failure = match self.send(path, form).await {
                Ok(env) if env.success => {
                    return match env.data {
                        Some(data) => Ok(data),
                        None => {
                            RawValue::from_string("{}".to_string()).map_err(|e| DsmError::Decode {
                                api_call: api_call.to_string(),
                                subject: subject.to_string(),
                                detail: e.to_string(),
                            })
                        }
                    };
                }
                Ok(env) => {
                    let code = env.error.map(|e| e.code).unwrap_or(100);
                    let api = api_call.rsplit_once('.').map_or(api_call, |(a, _)| a);
                    return Err(DsmError::Api {
                        api_call: api_call.to_string(),
                        subject: subject.to_string(),
                        code,
                        message: message_for(api, code),
                    });
                }
                Err(SendError::TooLarge) => {
                    return Err(DsmError::TooLarge {
                        api_call: api_call.to_string(),
                        subject: subject.to_string(),
                        limit: MAX_BODY_BYTES,
                    });
                }
                Err(SendError::Decode(detail)) => {
                    return Err(DsmError::Decode {
                        api_call: api_call.to_string(),
                        subject: subject.to_string(),
                        detail,
                    });
                }
                Err(f) => f,
            };
            if attempt >= attempts {
                let outcome_unknown = kind == CallKind::Write;
                return Err(match failure {
                    SendError::Http(status) => DsmError::HttpStatus {
                        api_call: api_call.to_string(),
                        subject: subject.to_string(),
                        status,
                        outcome_unknown,
                    },
                    SendError::TooLarge => DsmError::TooLarge {
                        api_call: api_call.to_string(),
                        subject: subject.to_string(),
                        limit: MAX_BODY_BYTES,
                    },
                    SendError::Transport(detail) | SendError::Decode(detail) => {
                        DsmError::Transport {
                            api_call: api_call.to_string(),
                            subject: subject.to_string(),
                            detail,
                            outcome_unknown,
                        }
                    }
                });
            }
            tracing::debug!(api_call = %api_call, attempt, "DSM read failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn send(&self, path: &str, form: &[(&str, String)]) -> Result<Envelope, SendError> {
        let transport = &self.inner.transport;
        let _permit = transport
            .permit()
            .await
            .map_err(|e| SendError::Transport(e.to_string()))?;
        let url = format!("{}/webapi/{}", self.inner.config.base_url, path);
        // POST keeps the sid and CHAP secrets out of URLs (and out of any
        // access log between here and the DSM).
        let resp = transport
            .http()
            .post(url)
            .form(form)
            .send()
            .await
            .map_err(|e| SendError::Transport(error_chain(&e.without_url())))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(SendError::Http(status.as_u16()));
        }
        let body = read_capped(resp, MAX_BODY_BYTES)
            .await
            .map_err(|e| SendError::Transport(error_chain(&e.without_url())))?
            .ok_or(SendError::TooLarge)?;
        serde_json::from_slice(&body).map_err(|e| SendError::Decode(e.to_string()))
    }
}

/// Reads a body of at most `limit` bytes; `None` when it is longer (the
/// rest is not read: the connection is dropped with the response).
async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// An error and its sources on one line, so a TLS refusal names its reason
/// (for example `CaUsedAsEndEntity`).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&format!("{s:?}"));
        source = s.source();
    }
    text
}
