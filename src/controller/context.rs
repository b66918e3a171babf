//! What every controller shares.

use std::sync::Mutex;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};

use crate::crd::StorageArray;
use crate::metrics::Metrics;

use super::arrays::ArrayRegistry;
use super::backoff::Backoff;
use super::cluster::KubeCluster;
use super::secrets::SecretCache;
use super::shard::{ArraySelector, Shard};

/// The field manager of every status write (server-side apply).
pub const FIELD_MANAGER: &str = "array-operator";

/// How long a reconcile waits for the StorageArray watch's first list
/// before it decides whether an array is this deployment's.
const ARRAYS_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of the controllers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Connected arrays.
    pub arrays: ArrayRegistry,
    /// The engine's view of the cluster.
    pub cluster: KubeCluster,
    /// Secrets' data, read once per change (see [`SecretCache`]).
    pub secrets: SecretCache,
    /// Every StorageArray (of the watched namespaces), filled by the
    /// StorageArray controller's watch: the array registry and the shard
    /// check read it instead of a GET per reconcile.
    pub storage_arrays: Store<StorageArray>,
    storage_arrays_writer: Mutex<Option<Writer<StorageArray>>>,
    /// Which StorageArrays this deployment serves (`--array-selector`).
    pub shard: Shard,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Per-object backoff.
    pub backoff: Backoff,
    /// Metrics.
    pub metrics: &'static Metrics,
    /// Only watch this namespace; `None` watches every namespace.
    pub watch_namespace: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// Builds the context. `instance` names this replica in Events and DSM
    /// session names.
    pub fn new(client: Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: "array-operator".into(),
            instance: Some(instance.to_string()),
        };
        let (storage_arrays, writer) = reflector::store::<StorageArray>();
        let secrets = SecretCache::new(client.clone());
        Context {
            arrays: ArrayRegistry::new(
                client.clone(),
                format!("array-operator-{instance}"),
                storage_arrays.clone(),
                secrets.clone(),
            ),
            cluster: KubeCluster::new(client.clone(), secrets.clone()),
            secrets,
            storage_arrays,
            storage_arrays_writer: Mutex::new(Some(writer)),
            shard: Shard::all(),
            recorder: Recorder::new(client.clone(), reporter),
            backoff: Backoff::default(),
            metrics: crate::metrics::global(),
            watch_namespace: None,
            client,
        }
    }

    /// Restricts the controllers to one namespace.
    pub fn watching(mut self, namespace: Option<String>) -> Self {
        self.watch_namespace = namespace;
        self
    }

    /// Restricts the controllers to the StorageArrays `selector` matches
    /// and the objects that reference them (`None`: every array).
    pub fn selecting(mut self, selector: Option<ArraySelector>) -> Self {
        self.shard = Shard::selecting(selector);
        self
    }

    /// The writer of [`Context::storage_arrays`], for the StorageArray
    /// controller's watch. Only the first caller gets it.
    pub fn take_storage_arrays_writer(&self) -> Option<Writer<StorageArray>> {
        self.storage_arrays_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Whether StorageArray `namespace/name` is this deployment's.
    /// Without a selector, always (no wait). With one, it waits for the
    /// StorageArray watch's first list, then matches the array's labels; a
    /// missing array is no deployment's. `None` while the watch has not
    /// listed: nothing is decided on a guess, the caller comes back later.
    pub async fn serves(&self, namespace: &str, name: &str) -> Option<bool> {
        if self.shard.selector().is_none() {
            return Some(true);
        }
        let ready =
            tokio::time::timeout(ARRAYS_READY_TIMEOUT, self.storage_arrays.wait_until_ready())
                .await;
        if !matches!(ready, Ok(Ok(()))) {
            tracing::warn!(
                array = %format!("{namespace}/{name}"),
                "the StorageArray watch has not listed yet: the objects of this array wait"
            );
            return None;
        }
        let array = self
            .storage_arrays
            .get(&ObjectRef::new(name).within(namespace));
        Some(self.shard.serves(array.as_deref()))
    }

    /// The API of `K` the controllers watch: one namespace or all.
    pub fn api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        match &self.watch_namespace {
            Some(ns) => kube::Api::namespaced(self.client.clone(), ns),
            None => kube::Api::all(self.client.clone()),
        }
    }
}
