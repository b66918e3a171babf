//! Secret data, read once per change of the Secret, and only for the
//! Secrets something references.
//!
//! Why this shape and not a reflector of Secrets with their data:
//! - a watch of every Secret's data would keep every credential of the
//!   cluster (or namespace) in the operator's memory, and RBAC cannot
//!   narrow a list/watch to "the Secrets some StorageArray names" (a
//!   `resourceNames` rule does not restrict list/watch for names it does
//!   not know in advance);
//! - a label-selected watch would make users label their Secrets, and a
//!   Secret without the label would look missing;
//! - one field-selected watch per referenced Secret is one open watch per
//!   Secret.
//!
//! So the operator watches Secrets by **metadata only** (one watch, which
//! the StorageArray controller already runs to keep its deletion order:
//! names, resourceVersions, finalizers, no data), and keeps the data of a
//! Secret only once a StorageArray or an IscsiTarget asked for it (the
//! credentials, the CA bundle, a CHAP Secret). A cached Secret is read
//! again (one GET) only when the metadata watch shows a new
//! resourceVersion, and a Secret the watch does not have is missing
//! without a GET. Until the metadata watch has its first list (and in
//! tests that run no watch), every read is a GET, as before.
//!
//! RBAC: `get` on secrets (a read after a change), `list`/`watch` on
//! secrets (the metadata watch: the apiserver authorizes a metadata-only
//! list as a list), and `patch` (the credentials finalizer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::listed::Listed;

use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

type Key = (String, String);

/// Secrets' data by namespace and name, kept fresh by a metadata watch.
/// Cloning shares it.
#[derive(Clone)]
pub struct SecretCache {
    client: Client,
    metadata: Arc<OnceLock<(Store<PartialObjectMeta<Secret>>, Listed)>>,
    data: Arc<Mutex<HashMap<Key, Arc<Secret>>>>,
}

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the data.
        f.debug_struct("SecretCache").finish_non_exhaustive()
    }
}

/// What the metadata watch says about a Secret.
enum Known {
    /// No watch yet, or its first list is not done: ask the apiserver.
    Unknown,
    /// The watch does not have it: it does not exist.
    Missing,
    /// It exists with this resourceVersion.
    At(String),
}

impl SecretCache {
    /// An empty cache reading with `client`.
    pub fn new(client: Client) -> Self {
        SecretCache {
            client,
            metadata: Arc::default(),
            data: Arc::default(),
        }
    }

    /// Trusts this metadata store (a watch of Secrets, metadata only) once
    /// `listed` says its first list is done. The first call wins: there is
    /// one such watch per operator.
    pub fn set_metadata_store(&self, store: Store<PartialObjectMeta<Secret>>, listed: Listed) {
        let _ = self.metadata.set((store, listed));
    }

    fn known(&self, namespace: &str, name: &str) -> Known {
        let Some((store, listed)) = self.metadata.get() else {
            return Known::Unknown;
        };
        if !listed.is_listed() {
            return Known::Unknown;
        }
        match store.get(&ObjectRef::new(name).within(namespace)) {
            None => Known::Missing,
            Some(meta) => Known::At(meta.metadata.resource_version.clone().unwrap_or_default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<Secret>>> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The Secret `namespace/name`, or `None` when it does not exist.
    pub async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<Secret>>, kube::Error> {
        let key = (namespace.to_string(), name.to_string());
        let watched = match self.known(namespace, name) {
            Known::Missing => {
                self.lock().remove(&key);
                return Ok(None);
            }
            Known::At(version) => {
                if let Some(cached) = self.lock().get(&key)
                    && cached.metadata.resource_version.as_deref() == Some(version.as_str())
                {
                    return Ok(Some(cached.clone()));
                }
                true
            }
            Known::Unknown => false,
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api.get_opt(name).await?.map(Arc::new);
        let mut data = self.lock();
        match &secret {
            // Kept only while a watch can say when it changes.
            Some(s) if watched => {
                data.insert(key, s.clone());
            }
            _ => {
                data.remove(&key);
            }
        }
        Ok(secret)
    }

    /// How many Secrets' data the cache holds (the referenced ones).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when it holds no Secret's data.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
