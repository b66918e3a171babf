//! What every controller shares.

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;

use super::arrays::ArrayRegistry;
use super::backoff::Backoff;
use super::cluster::KubeCluster;

/// The field manager of every status write (server-side apply).
pub const FIELD_MANAGER: &str = "array-operator";

/// Shared state of the controllers.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Connected arrays.
    pub arrays: ArrayRegistry,
    /// The engine's view of the cluster.
    pub cluster: KubeCluster,
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
        Context {
            arrays: ArrayRegistry::new(client.clone(), format!("array-operator-{instance}")),
            cluster: KubeCluster::new(client.clone()),
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
