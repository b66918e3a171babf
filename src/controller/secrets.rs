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
//! without a GET. Reads of one Secret take turns, so reconciles starting
//! together make one GET. A read waits (at most 10 s) for the metadata
//! watch's first list; without that watch (tests that run none), every
//! read is a GET, as before.
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

/// How long a read waits for the Secret metadata watch's first list (once
/// the controllers run it) before it reads without the cache.
const METADATA_LIST_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Secrets' data by namespace and name, kept fresh by a metadata watch.
/// Cloning shares it.
#[derive(Clone)]
pub struct SecretCache {
    client: Client,
    metadata: Arc<OnceLock<(Store<PartialObjectMeta<Secret>>, Listed)>>,
    data: Arc<Mutex<HashMap<Key, Arc<Secret>>>>,
    /// One read per Secret at a time: the thousand reconciles of one
    /// array's objects that start together make one GET, not a thousand.
    reading: Arc<Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>>,
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
            reading: Arc::default(),
        }
    }

    /// Trusts this metadata store (a watch of Secrets, metadata only) once
    /// `listed` says its first list is done. The first call wins: there is
    /// one such watch per operator.
    pub fn set_metadata_store(&self, store: Store<PartialObjectMeta<Secret>>, listed: Listed) {
        let _ = self.metadata.set((store, listed));
    }

    async fn known(&self, namespace: &str, name: &str) -> Known {
        let Some((store, listed)) = self.metadata.get() else {
            return Known::Unknown;
        };
        if !listed.is_listed()
            && tokio::time::timeout(METADATA_LIST_WAIT, listed.wait())
                .await
                .is_err()
        {
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
        let turn = self
            .reading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        let watched = match self.known(namespace, name).await {
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A client whose apiserver answers every GET with Secret `creds` at
    /// resourceVersion `version`, counting the GETs.
    fn client(version: Arc<Mutex<String>>, gets: Arc<AtomicUsize>) -> Client {
        let service = tower::service_fn(move |req: Request<Body>| {
            let version = version.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let gets = gets.clone();
            async move {
                assert_eq!(req.method(), http::Method::GET);
                assert_eq!(req.uri().path(), "/api/v1/namespaces/ns/secrets/creds");
                gets.fetch_add(1, Ordering::SeqCst);
                let body = serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": "creds", "namespace": "ns", "resourceVersion": version},
                    "data": {"password": "c2VjcmV0"}
                });
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .body(Body::from(serde_json::to_vec(&body).expect("json")))
                        .expect("response"),
                )
            }
        });
        Client::new(service, "default")
    }

    fn meta(version: &str) -> PartialObjectMeta<Secret> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "ns", "resourceVersion": version}
        }))
        .expect("metadata")
    }

    #[tokio::test]
    async fn a_secret_is_read_once_per_change_and_a_missing_one_not_at_all() {
        let version = Arc::new(Mutex::new("1".to_string()));
        let gets = Arc::new(AtomicUsize::new(0));
        let cache = SecretCache::new(client(version.clone(), gets.clone()));
        // Without a metadata watch: every read is a GET, nothing is kept.
        cache.get("ns", "creds").await.expect("read");
        cache.get("ns", "creds").await.expect("read");
        assert_eq!((gets.load(Ordering::SeqCst), cache.len()), (2, 0));

        let (store, mut writer) = reflector::store();
        let listed = Listed::new();
        cache.set_metadata_store(store, listed.clone());
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(meta("1")));
        writer.apply_watcher_event(&Event::InitDone);
        listed.mark();
        // Concurrent reads of one Secret make one GET; later ones none.
        let reads = (0..5).map(|_| cache.get("ns", "creds"));
        for secret in futures::future::join_all(reads).await {
            assert!(secret.expect("read").is_some());
        }
        assert_eq!((gets.load(Ordering::SeqCst), cache.len()), (3, 1));
        // The Secret changes: one more GET.
        *version.lock().unwrap_or_else(|p| p.into_inner()) = "2".into();
        writer.apply_watcher_event(&Event::Apply(meta("2")));
        let secret = cache
            .get("ns", "creds")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(secret.metadata.resource_version.as_deref(), Some("2"));
        cache.get("ns", "creds").await.expect("read");
        assert_eq!(gets.load(Ordering::SeqCst), 4);
        // Deleted (and a Secret nobody has): missing without a GET.
        writer.apply_watcher_event(&Event::Delete(meta("2")));
        assert!(cache.get("ns", "creds").await.expect("read").is_none());
        assert!(cache.get("ns", "other").await.expect("read").is_none());
        assert_eq!((gets.load(Ordering::SeqCst), cache.len()), (4, 0));
    }
}
