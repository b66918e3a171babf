//! The registry of connected arrays: one [`ArrayHandle`] (one client, one
//! session, one observation) per StorageArray, shared by every controller.
//!
//! A handle is rebuilt when its StorageArray spec or Secrets change. A
//! failed connect is remembered, and the next attempt waits out an
//! exponential backoff, so a hundred Luns on an unreachable array do not
//! turn into a hundred logins.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tokio::sync::Mutex;

use crate::array::backend::{Backend, BackendConfig, BackendError, Credentials};
use crate::array::transport::TransportConfig;
use crate::crd::storage_array::{ResizeMode, StorageArray, Vendor};
use crate::engine::{ArrayHandle, ObservationCache, parse_duration};
use crate::model::SecretString;

/// Why an array handle cannot be had.
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
    /// The array refused or could not be reached.
    #[error("StorageArray {array}: {error}")]
    Connect {
        /// The StorageArray.
        array: String,
        /// The array's error.
        error: BackendError,
    },
    /// Waiting out the backoff after a failed connect.
    #[error("StorageArray {array}: not retrying for {wait_secs}s after: {last}")]
    BackingOff {
        /// The StorageArray.
        array: String,
        /// Seconds left.
        wait_secs: u64,
        /// The last failure.
        last: String,
    },
    /// The Kubernetes API failed.
    #[error("Kubernetes API: {0}")]
    Api(String),
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

impl ArrayRegistry {
    /// An empty registry. `session_name` names the DSM sessions of this
    /// operator install.
    pub fn new(client: Client, session_name: impl Into<String>) -> Self {
        ArrayRegistry {
            client,
            session_name: session_name.into(),
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
    ) -> Result<Secret, ArrayAccessError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        match api.get_opt(name).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(ArrayAccessError::Secret {
                array: array.to_string(),
                field,
                problem: format!("Secret {name:?} does not exist"),
            }),
            Err(e) => Err(ArrayAccessError::Api(e.to_string())),
        }
    }

    /// Reads the StorageArray and its Secrets into a backend configuration,
    /// with a fingerprint that changes whenever any of them does.
    async fn config(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(BackendConfig, String, Duration), ArrayAccessError> {
        let key = format!("{ns}/{name}");
        let arrays: Api<StorageArray> = Api::namespaced(self.client.clone(), ns);
        let sa = match arrays.get_opt(name).await {
            Ok(Some(sa)) => sa,
            Ok(None) => return Err(ArrayAccessError::NotFound(key)),
            Err(e) => return Err(ArrayAccessError::Api(e.to_string())),
        };
        let spec = &sa.spec;
        let creds = self
            .secret(
                ns,
                &spec.credentials_secret_ref.name,
                &key,
                "spec.credentialsSecretRef",
            )
            .await?;
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
                username: secret_value(&creds, "username")
                    .ok_or_else(|| missing("username"))?
                    .expose()
                    .to_string(),
                password: secret_value(&creds, "password").ok_or_else(|| missing("password"))?,
            },
            Vendor::NgxStorage => {
                Credentials::Token(secret_value(&creds, "token").ok_or_else(|| missing("token"))?)
            }
        };
        let mut fingerprint = format!(
            "{}/{}/{}",
            sa.metadata.uid.clone().unwrap_or_default(),
            sa.metadata.generation.unwrap_or_default(),
            creds.metadata.resource_version.clone().unwrap_or_default()
        );
        let tls = spec.tls.clone().unwrap_or_default();
        let ca_bundle_pem = match &tls.ca_secret_ref {
            Some(r) => {
                let ca = self
                    .secret(ns, &r.name, &key, "spec.tls.caSecretRef")
                    .await?;
                fingerprint.push('/');
                fingerprint.push_str(&ca.metadata.resource_version.clone().unwrap_or_default());
                let pem = secret_value(&ca, &r.key).ok_or_else(|| ArrayAccessError::Secret {
                    array: key.clone(),
                    field: "spec.tls.caSecretRef",
                    problem: format!("Secret {:?} has no key {:?}", r.name, r.key),
                })?;
                Some(pem.expose().to_string())
            }
            None => None,
        };
        let request_timeout =
            parse_duration(&spec.request_timeout).unwrap_or(Duration::from_secs(30));
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
                .unwrap_or(ResizeMode::Absolute),
            session_name: self.session_name.clone(),
        };
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
                    last: f.error.to_string(),
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
