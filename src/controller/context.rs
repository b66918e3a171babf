//! What every controller shares.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::watcher;

use crate::crd::StorageArray;
use crate::metrics::Metrics;

use super::arrays::ArrayRegistry;
use super::backoff::Backoff;
use super::cluster::KubeCluster;
use super::listed::Listed;
use super::secrets::SecretCache;
use super::shard::{ArraySelector, Shard};

/// The field manager of every status write (server-side apply).
pub const FIELD_MANAGER: &str = "array-operator";

/// How long a reconcile waits for the StorageArray watch's first list
/// before it decides whether an array is this deployment's.
const ARRAYS_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The channels of the controllers that follow StorageArray changes.
type Subscribers = Arc<Mutex<Vec<mpsc::UnboundedSender<StorageArray>>>>;

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
    /// Set once the StorageArray watch has listed ([`Listed`], not
    /// `Store::wait_until_ready`, which wakes one waiter only).
    pub storage_arrays_listed: Listed,
    storage_arrays_writer: Mutex<Option<Writer<StorageArray>>>,
    storage_array_subscribers: Subscribers,
    /// Which StorageArrays this deployment serves (`--array-selector`).
    pub shard: Shard,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Per-object backoff.
    pub backoff: Backoff,
    /// Metrics.
    pub metrics: &'static Metrics,
    /// Only watch this namespace; `None` watches every namespace. Several
    /// watched namespaces are several contexts (`operator::run_with_client`).
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
        let storage_arrays_listed = Listed::new();
        let secrets = SecretCache::new(client.clone());
        Context {
            arrays: ArrayRegistry::new(
                client.clone(),
                format!("array-operator-{instance}"),
                storage_arrays.clone(),
                storage_arrays_listed.clone(),
                secrets.clone(),
            ),
            cluster: KubeCluster::new(client.clone(), secrets.clone()),
            secrets,
            storage_arrays,
            storage_arrays_listed,
            storage_arrays_writer: Mutex::new(Some(writer)),
            storage_array_subscribers: Subscribers::default(),
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

    /// The StorageArrays the StorageArray watch applies from now on, each
    /// sent after [`Context::storage_arrays`] holds it: so a reconcile it
    /// triggers sees the array as the event shows it (a second watch could
    /// run ahead of the store and find the array's old labels).
    pub fn storage_array_changes(&self) -> mpsc::UnboundedReceiver<StorageArray> {
        let (tx, rx) = mpsc::unbounded();
        self.storage_array_subscribers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(tx);
        rx
    }

    /// For `.inspect` after the StorageArray reflector: sends each applied
    /// StorageArray to [`Context::storage_array_changes`]' receivers
    /// (forgetting those that are gone).
    pub fn storage_array_publisher(
        &self,
    ) -> impl Fn(&Result<watcher::Event<StorageArray>, watcher::Error>) + Send + Sync + 'static
    {
        let subscribers = self.storage_array_subscribers.clone();
        move |event| {
            if let Ok(watcher::Event::Apply(sa) | watcher::Event::InitApply(sa)) = event {
                subscribers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|tx| tx.unbounded_send(sa.clone()).is_ok());
            }
        }
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
            tokio::time::timeout(ARRAYS_READY_TIMEOUT, self.storage_arrays_listed.wait()).await;
        if ready.is_err() {
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
