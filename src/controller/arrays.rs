//! The registry of connected arrays: one [`ArrayHandle`] (one client, one
//! session, one observation) per StorageArray, shared by every controller.
//!
//! A handle is rebuilt when its StorageArray spec or Secrets change. A
//! failed connect is remembered, and the next attempt waits out an
//! exponential backoff, so a hundred Luns on an unreachable array do not
//! turn into a hundred logins.
//!
//! Nothing here reads the API per reconcile: the StorageArray comes from
//! the StorageArray watch's store and its Secrets from the
//! [`SecretCache`] (read again only when they change). Before the watch's
//! first list (and in tests without one), each is a GET, as it was.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use tokio::sync::Mutex;

use crate::array::backend::{Backend, BackendConfig, BackendError, Credentials};
use crate::array::error::ErrorClass;
use crate::array::transport::TransportConfig;
use crate::crd::storage_array::{StorageArray, Vendor};
use crate::engine::{ArrayHandle, ObservationCache, parse_duration};
use crate::model::SecretString;

use super::listed::Listed;
use super::secrets::SecretCache;

/// Why an array handle cannot be had. Every message is a stable sentence
/// (no countdown, no Rust debug text) naming the StorageArray, the field or
/// call, and the array's own code and text: it goes into conditions as is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArrayAccessError {
    /// The StorageArray named by `spec.arrayRef` does not exist.
    #[error("spec.arrayRef: StorageArray {0} does not exist")]
    NotFound(String),
    /// A Secret or key the StorageArray names is missing.
    #[error("StorageArray {array}: {field}: {problem}")]
    Secret {
        /// The StorageArray.
        array: String,
        /// The spec field naming the Secret.
        field: &'static str,
        /// What is wrong (never the value).
        problem: String,
    },
    /// A spec field the operator cannot use (the schema could not say it).
    #[error("StorageArray {array}: {field} {problem}")]
    InvalidSpec {
        /// The StorageArray.
        array: String,
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        problem: String,
    },
    /// The array refused or could not be reached.
    #[error("StorageArray {array}: {}", array_text(.error))]
    Connect {
        /// The StorageArray.
        array: String,
        /// The array's error.
        error: BackendError,
    },
    /// Waiting out the backoff after a failed connect. Reads as the last
    /// failure, so a condition does not change while the operator waits.
    #[error("{last}")]
    BackingOff {
        /// The StorageArray.
        array: String,
        /// Seconds left (for logs; never in the message).
        wait_secs: u64,
        /// The last failure.
        last: Box<ArrayAccessError>,
    },
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Api(String),
}

/// The array's own text for a failed call: the vendor message names the
/// call, code and text; the call is added only when the message lacks it,
/// and an unnamed call adds no empty segment.
fn array_text(e: &BackendError) -> String {
    if e.api_call.is_empty() || e.message.starts_with(&e.api_call) {
        e.message.clone()
    } else {
        format!("{}: {}", e.api_call, e.message)
    }
}

/// What a person must do about a failure, when the operator cannot fix it
/// by retrying: the kstatus `Stalled` reason. `None` for failures that
/// retrying may cure (unreachable, busy, a Kubernetes API error).
impl ArrayAccessError {
    /// The `Stalled` reason, or `None` when retrying may help.
    pub fn stalled_reason(&self) -> Option<&'static str> {
        match self {
            ArrayAccessError::NotFound(_) => Some("ArrayNotFound"),
            ArrayAccessError::Secret { .. } => Some("CredentialsMissing"),
            ArrayAccessError::InvalidSpec { .. } => Some("InvalidSpec"),
            ArrayAccessError::Connect { error, .. } => match error.class {
                ErrorClass::Unauthorized => Some("CredentialsRefused"),
                ErrorClass::InvalidRequest | ErrorClass::Unsupported => Some("InvalidSpec"),
                _ => None,
            },
            ArrayAccessError::BackingOff { last, .. } => last.stalled_reason(),
            ArrayAccessError::Api(_) => None,
        }
    }

    /// True when the array itself could not be reached (not a refusal).
    pub fn unreachable(&self) -> bool {
        match self {
            ArrayAccessError::Connect { error, .. } => matches!(
                error.class,
                ErrorClass::Unreachable
                    | ErrorClass::Busy
                    | ErrorClass::SessionExpired
                    | ErrorClass::Other
            ),
            ArrayAccessError::BackingOff { last, .. } => last.unreachable(),
            _ => false,
        }
    }
}

/// Checks `spec.endpoint`-like fields: an absolute https URL with a host
/// (what the schema's pattern says, checked again because a URL the
/// pattern lets through can still fail to parse).
pub fn check_endpoint(
    array: &str,
    field: &'static str,
    value: &str,
) -> Result<(), ArrayAccessError> {
    let invalid = |problem: String| ArrayAccessError::InvalidSpec {
        array: array.to_string(),
        field,
        problem,
    };
    let url =
        reqwest::Url::parse(value).map_err(|e| invalid(format!("is not a valid URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(invalid(format!(
            "must start with https://, not {}://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("is not a valid URL: it names no host".into()));
    }
    Ok(())
}

/// Checks that a CA bundle is PEM with at least one certificate, with a
/// message a person can act on (the PEM parser's own errors are debug text).
pub fn check_ca_bundle(
    array: &str,
    secret: &str,
    key: &str,
    pem: &str,
) -> Result<(), ArrayAccessError> {
    let invalid = |problem: &str| ArrayAccessError::Secret {
        array: array.to_string(),
        field: "spec.tls.caSecretRef",
        problem: format!("key {key:?} of Secret {secret:?} {problem}"),
    };
    let mut reader = std::io::BufReader::new(pem.as_bytes());
    let mut certificates = 0;
    for item in rustls_pemfile::read_all(&mut reader) {
        match item {
            Ok(rustls_pemfile::Item::X509Certificate(_)) => certificates += 1,
            Ok(_) => {}
            Err(_) => {
                return Err(invalid(
                    "is not a PEM certificate bundle: a block is not valid base64",
                ));
            }
        }
    }
    if certificates == 0 {
        return Err(invalid("holds no PEM CERTIFICATE block"));
    }
    Ok(())
}

struct Connected {
    fingerprint: String,
    handle: Arc<ArrayHandle>,
}

struct Failed {
    fingerprint: String,
    at: Instant,
    attempts: u32,
    error: ArrayAccessError,
}

#[derive(Default)]
struct Slot {
    connected: Option<Connected>,
    failed: Option<Failed>,
}

/// Every connected array, by `namespace/name`.
pub struct ArrayRegistry {
    client: Client,
    session_name: String,
    storage_arrays: Store<StorageArray>,
    storage_arrays_listed: Listed,
    secrets: SecretCache,
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
}

impl std::fmt::Debug for ArrayRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArrayRegistry").finish_non_exhaustive()
    }
}

/// Backoff after `attempts` failed connects: 5 s doubling, at most 5 min.
pub fn connect_backoff(attempts: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

fn secret_value(secret: &Secret, key: &str) -> Option<SecretString> {
    let bytes = secret.data.as_ref()?.get(key)?;
    let text = String::from_utf8(bytes.0.clone()).ok()?;
    // Secrets made from files often end in a newline that is not part of it.
    let text = text.trim_end_matches(['\n', '\r']).to_string();
    (!text.is_empty()).then(|| SecretString::new(text))
}

/// The backend configuration of StorageArray `sa` (`key` is its
/// `namespace/name`, for messages) from its credentials Secret and, when
/// `spec.tls.caSecretRef` names one, its CA Secret; and its resync
/// interval. Shared by the controllers and `plan`, which reads the same
/// Secrets from manifests.
pub fn backend_config(
    sa: &StorageArray,
    key: &str,
    creds: &Secret,
    ca: Option<&Secret>,
    session_name: &str,
) -> Result<(BackendConfig, Duration), ArrayAccessError> {
    let key = key.to_string();
    let spec = &sa.spec;
    check_endpoint(&key, "spec.endpoint", &spec.endpoint)?;
    if let Some(secondary) = &spec.secondary_endpoint {
        check_endpoint(&key, "spec.secondaryEndpoint", secondary)?;
    }
    let missing = |k: &str| ArrayAccessError::Secret {
        array: key.clone(),
        field: "spec.credentialsSecretRef",
        problem: format!(
            "Secret {:?} has no key {k:?}",
            spec.credentials_secret_ref.name
        ),
    };
    let credentials = match spec.vendor {
        Vendor::Synology => Credentials::UserPassword {
            username: secret_value(creds, "username")
                .ok_or_else(|| missing("username"))?
                .expose()
                .to_string(),
            password: secret_value(creds, "password").ok_or_else(|| missing("password"))?,
        },
        Vendor::NgxStorage => {
            Credentials::Token(secret_value(creds, "token").ok_or_else(|| missing("token"))?)
        }
    };
    let tls = spec.tls.clone().unwrap_or_default();
    let ca_bundle_pem = match (&tls.ca_secret_ref, ca) {
        (Some(r), Some(ca)) => {
            let pem = secret_value(ca, &r.key).ok_or_else(|| ArrayAccessError::Secret {
                array: key.clone(),
                field: "spec.tls.caSecretRef",
                problem: format!("Secret {:?} has no key {:?}", r.name, r.key),
            })?;
            check_ca_bundle(&key, &r.name, &r.key, pem.expose())?;
            Some(pem.expose().to_string())
        }
        (Some(r), None) => {
            return Err(ArrayAccessError::Secret {
                array: key.clone(),
                field: "spec.tls.caSecretRef",
                problem: format!("Secret {:?} does not exist", r.name),
            });
        }
        (None, _) => None,
    };
    let request_timeout = parse_duration(&spec.request_timeout).unwrap_or(Duration::from_secs(30));
    let resync = parse_duration(&spec.resync_interval).unwrap_or(Duration::from_secs(300));
    let config = BackendConfig {
        vendor: spec.vendor,
        endpoint: spec.endpoint.clone(),
        secondary_endpoint: spec.secondary_endpoint.clone(),
        credentials,
        transport: TransportConfig {
            ca_bundle_pem,
            insecure_skip_verify: tls.insecure_skip_verify,
            request_timeout,
            max_concurrent_requests: usize::try_from(spec.max_concurrent_requests.max(1))
                .unwrap_or(4),
        },
        ngx_owner: spec.ngxstorage.as_ref().map(|n| n.owner.clone()),
        resize_mode: spec
            .ngxstorage
            .as_ref()
            .map(|n| n.resize_mode)
            .unwrap_or_default(),
        session_name: session_name.to_string(),
    };
    Ok((config, resync))
}

impl ArrayRegistry {
    /// An empty registry. `session_name` names the DSM sessions of this
    /// operator install; `storage_arrays` is the StorageArray watch's store
    /// (trusted once `storage_arrays_listed`) and `secrets` the Secret cache
    /// it reads instead of the API.
    pub fn new(
        client: Client,
        session_name: impl Into<String>,
        storage_arrays: Store<StorageArray>,
        storage_arrays_listed: Listed,
        secrets: SecretCache,
    ) -> Self {
        ArrayRegistry {
            client,
            session_name: session_name.into(),
            storage_arrays,
            storage_arrays_listed,
            secrets,
            slots: Mutex::new(HashMap::new()),
        }
    }

    async fn slot(&self, key: &str) -> Arc<Mutex<Slot>> {
        self.slots
            .lock()
            .await
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    async fn secret(
        &self,
        ns: &str,
        name: &str,
        array: &str,
        field: &'static str,
    ) -> Result<Arc<Secret>, ArrayAccessError> {
        match self.secrets.get(ns, name).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(ArrayAccessError::Secret {
                array: array.to_string(),
                field,
                problem: format!("Secret {name:?} does not exist"),
            }),
            Err(e) => Err(ArrayAccessError::Api(e.to_string())),
        }
    }

    /// StorageArray `ns/name`: from the watch's store once it has listed,
    /// else with a GET.
    async fn storage_array(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<Option<Arc<StorageArray>>, kube::Error> {
        if self.storage_arrays_listed.is_listed() {
            return Ok(self.storage_arrays.get(&ObjectRef::new(name).within(ns)));
        }
        let arrays: Api<StorageArray> = Api::namespaced(self.client.clone(), ns);
        Ok(arrays.get_opt(name).await?.map(Arc::new))
    }

    /// Reads the StorageArray and its Secrets into a backend configuration,
    /// with a fingerprint that changes whenever any of them does.
    async fn config(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(BackendConfig, String, Duration), ArrayAccessError> {
        let key = format!("{ns}/{name}");
        let sa = match self.storage_array(ns, name).await {
            Ok(Some(sa)) => sa,
            Ok(None) => return Err(ArrayAccessError::NotFound(key)),
            Err(e) => return Err(ArrayAccessError::Api(e.to_string())),
        };
        let spec = &sa.spec;
        // The endpoint is judged before any Secret is read, so a bad URL is
        // the message even when a Secret is missing too.
        check_endpoint(&key, "spec.endpoint", &spec.endpoint)?;
        let creds = self
            .secret(
                ns,
                &spec.credentials_secret_ref.name,
                &key,
                "spec.credentialsSecretRef",
            )
            .await?;
        let mut fingerprint = format!(
            "{}/{}/{}",
            sa.metadata.uid.clone().unwrap_or_default(),
            sa.metadata.generation.unwrap_or_default(),
            creds.metadata.resource_version.clone().unwrap_or_default()
        );
        let ca = match spec.tls.as_ref().and_then(|t| t.ca_secret_ref.as_ref()) {
            Some(r) => {
                let ca = self
                    .secret(ns, &r.name, &key, "spec.tls.caSecretRef")
                    .await?;
                fingerprint.push('/');
                fingerprint.push_str(&ca.metadata.resource_version.clone().unwrap_or_default());
                Some(ca)
            }
            None => None,
        };
        let (config, resync) =
            backend_config(&sa, &key, &creds, ca.as_deref(), &self.session_name)?;
        Ok((config, fingerprint, resync))
    }

    /// The handle of StorageArray `ns/name`, connecting (or reconnecting
    /// after a spec or Secret change) when needed.
    pub async fn handle(&self, ns: &str, name: &str) -> Result<Arc<ArrayHandle>, ArrayAccessError> {
        let key = format!("{ns}/{name}");
        // Read the spec and Secrets before taking the slot, so reconciles of
        // one array only queue behind each other while a connect runs.
        let (config, fingerprint, resync) = self.config(ns, name).await?;
        let slot = self.slot(&key).await;
        let mut slot = slot.lock().await;
        if let Some(c) = &slot.connected
            && c.fingerprint == fingerprint
        {
            return Ok(c.handle.clone());
        }
        if let Some(f) = &slot.failed
            && f.fingerprint == fingerprint
        {
            let wait = connect_backoff(f.attempts);
            let elapsed = f.at.elapsed();
            if elapsed < wait {
                return Err(ArrayAccessError::BackingOff {
                    array: key,
                    wait_secs: (wait - elapsed).as_secs().max(1),
                    last: Box::new(f.error.clone()),
                });
            }
        }
        if let Some(old) = slot.connected.take() {
            old.handle.backend.close().await;
        }
        match Backend::connect(config).await {
            Ok(backend) => {
                let handle = Arc::new(ArrayHandle {
                    key: key.clone(),
                    backend,
                    cache: ObservationCache::default(),
                    resync,
                    dry_run: None,
                });
                slot.connected = Some(Connected {
                    fingerprint,
                    handle: handle.clone(),
                });
                slot.failed = None;
                Ok(handle)
            }
            Err(error) => {
                let attempts = match &slot.failed {
                    Some(f) if f.fingerprint == fingerprint => f.attempts + 1,
                    _ => 1,
                };
                let err = ArrayAccessError::Connect { array: key, error };
                slot.failed = Some(Failed {
                    fingerprint,
                    at: Instant::now(),
                    attempts,
                    error: err.clone(),
                });
                Err(err)
            }
        }
    }

    /// Drops a handle whose session stopped working, so the next caller
    /// reconnects (after the backoff).
    pub async fn evict(&self, ns: &str, name: &str, error: &BackendError) {
        let key = format!("{ns}/{name}");
        let slot = self.slot(&key).await;
        let mut slot = slot.lock().await;
        if let Some(c) = slot.connected.take() {
            let attempts = slot.failed.as_ref().map(|f| f.attempts + 1).unwrap_or(1);
            slot.failed = Some(Failed {
                fingerprint: c.fingerprint,
                at: Instant::now(),
                attempts,
                error: ArrayAccessError::Connect {
                    array: key,
                    error: error.clone(),
                },
            });
        }
    }

    /// Logs out of StorageArray `ns/name` and forgets it (the StorageArray
    /// is being released).
    pub async fn forget(&self, ns: &str, name: &str) {
        let key = format!("{ns}/{name}");
        let slot = self.slots.lock().await.remove(&key);
        if let Some(slot) = slot
            && let Some(c) = slot.lock().await.connected.take()
        {
            c.handle.backend.close().await;
        }
    }

    /// Logs out of every array (graceful shutdown).
    pub async fn close_all(&self) {
        let slots: Vec<_> = self.slots.lock().await.values().cloned().collect();
        for slot in slots {
            if let Some(c) = slot.lock().await.connected.take() {
                c.handle.backend.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_error(api_call: &str, message: &str) -> ArrayAccessError {
        ArrayAccessError::Connect {
            array: "examples/dsm1".into(),
            error: BackendError {
                class: ErrorClass::InvalidRequest,
                vendor_code: None,
                api_call: api_call.into(),
                message: message.into(),
            },
        }
    }

    #[test]
    fn messages_have_one_prefix_no_empty_segment_and_no_countdown() {
        let setup = connect_error(
            "",
            "DSM client setup: TLS configuration: no usable certificate",
        );
        assert_eq!(
            setup.to_string(),
            "StorageArray examples/dsm1: DSM client setup: TLS configuration: no usable certificate"
        );
        let named = connect_error(
            "SYNO.API.Auth.login",
            "SYNO.API.Auth.login (account \"admin\"): DSM error 400: No such account or incorrect password",
        );
        assert_eq!(
            named.to_string(),
            "StorageArray examples/dsm1: SYNO.API.Auth.login (account \"admin\"): DSM error 400: No such account or incorrect password"
        );
        let bare = connect_error("GET /api/v2/status", "array error 7: busy");
        assert_eq!(
            bare.to_string(),
            "StorageArray examples/dsm1: GET /api/v2/status: array error 7: busy"
        );
        let waiting = |secs| ArrayAccessError::BackingOff {
            array: "examples/dsm1".into(),
            wait_secs: secs,
            last: Box::new(named.clone()),
        };
        assert_eq!(waiting(9).to_string(), named.to_string());
        assert_eq!(waiting(9).to_string(), waiting(3).to_string());
        for e in [setup, named.clone(), bare, waiting(9)] {
            let text = e.to_string();
            assert_eq!(text.matches("StorageArray").count(), 1, "{text}");
            assert!(!text.contains(": :") && !text.contains("::"), "{text}");
        }
    }

    #[test]
    fn a_bad_endpoint_is_named_in_words() {
        let e = check_endpoint("examples/dsm1", "spec.endpoint", "https://dsm:99999")
            .expect_err("a port out of range");
        assert_eq!(
            e.to_string(),
            "StorageArray examples/dsm1: spec.endpoint is not a valid URL: invalid port number"
        );
        assert_eq!(e.stalled_reason(), Some("InvalidSpec"));
        let e =
            check_endpoint("examples/dsm1", "spec.endpoint", "ftp://dsm:21").expect_err("scheme");
        assert_eq!(
            e.to_string(),
            "StorageArray examples/dsm1: spec.endpoint must start with https://, not ftp://"
        );
        check_endpoint(
            "examples/dsm1",
            "spec.endpoint",
            "https://dsm.example:5001/webapi",
        )
        .expect("valid");
    }

    #[test]
    fn a_ca_bundle_that_is_not_pem_is_named_in_words_not_debug_text() {
        let garbled = "-----BEGIN CERTIFICATE-----\nMII(((notbase64\n-----END CERTIFICATE-----\n";
        let e = check_ca_bundle("examples/dsm1", "ca", "ca.crt", garbled).expect_err("garbled");
        let text = e.to_string();
        assert_eq!(
            text,
            "StorageArray examples/dsm1: spec.tls.caSecretRef: key \"ca.crt\" of Secret \"ca\" is not a PEM certificate bundle: a block is not valid base64"
        );
        assert!(!text.contains("InvalidCharacter"), "{text}");
        let e = check_ca_bundle("examples/dsm1", "ca", "ca.crt", "hello").expect_err("empty");
        assert!(
            e.to_string().ends_with("holds no PEM CERTIFICATE block"),
            "{e}"
        );
        assert_eq!(e.stalled_reason(), Some("CredentialsMissing"));
    }

    #[test]
    fn connect_backoff_doubles_from_five_seconds_to_five_minutes() {
        let got: Vec<u64> = (1..=9).map(|a| connect_backoff(a).as_secs()).collect();
        assert_eq!(got, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn secret_values_lose_a_trailing_newline_and_empty_is_missing() {
        let mut s = Secret::default();
        let mut data = std::collections::BTreeMap::new();
        data.insert(
            "password".to_string(),
            k8s_openapi::ByteString(b"hunter2-long\n".to_vec()),
        );
        data.insert("empty".to_string(), k8s_openapi::ByteString(Vec::new()));
        s.data = Some(data);
        assert_eq!(
            secret_value(&s, "password")
                .map(|v| v.expose().to_string())
                .as_deref(),
            Some("hunter2-long")
        );
        assert!(secret_value(&s, "empty").is_none());
        assert!(secret_value(&s, "absent").is_none());
    }
}
