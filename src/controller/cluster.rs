//! The engine's view of the cluster ([`crate::engine::Cluster`]) over the
//! Kubernetes API, served from the controllers' watches: no GET or LIST per
//! reconcile once they run.
//!
//! - Objects of each managed kind: the controller's reflector store
//!   ([`KubeCluster::set_store`]), so a Lun's array id is a map lookup.
//! - Claims and "which targets list this Lun": the incremental
//!   [`SharedIndex`], which each controller's watch stream feeds one event
//!   at a time ([`KubeCluster::observe`]); a query touches only the claims
//!   it asks about.
//! - Secrets: the [`SecretCache`] (data read once per change).
//!
//! Until a kind's watch has delivered its first full list (and in tests
//! that run no watch), the same questions are answered with a GET or LIST,
//! as before.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;

use crate::crd::{IscsiTarget, Lun, VirtualMachine};
use crate::engine::index::SharedIndex;
use crate::engine::lifecycle::{Managed, claim_of};
use crate::engine::{Cluster, ClusterError, ObjectKey, SecretData};
use crate::model::SecretString;
use crate::reconcile::claims::Claim;
use crate::reconcile::claims_index::ClaimKey;

use super::secrets::SecretCache;

/// [`Cluster`] backed by a kube client and, once the controllers run, by
/// their watch-fed stores and the claims index. Stores are kept per kind in
/// a type map, so a new kind registers its store and adds no field here.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    stores: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
    index: SharedIndex,
    /// The kinds whose watch has fed the index a full list.
    indexed: Arc<Mutex<HashSet<&'static str>>>,
    secrets: SecretCache,
}

impl KubeCluster {
    /// Wraps a client; Secrets are read through `secrets`.
    pub fn new(client: Client, secrets: SecretCache) -> Self {
        KubeCluster {
            client,
            stores: Arc::default(),
            index: SharedIndex::default(),
            indexed: Arc::default(),
            secrets,
        }
    }

    /// Serves objects of kind `K` from this controller store from now on.
    pub fn set_store<K: Managed>(&self, store: Store<K>) {
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(TypeId::of::<K>(), Box::new(store));
    }

    fn store<K: Managed>(&self) -> Option<Store<K>> {
        self.stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&TypeId::of::<K>())
            .and_then(|b| b.downcast_ref::<Store<K>>())
            .cloned()
    }

    /// Feeds one watch event of kind `K` to the claims index: O(the
    /// object). A relist (`Init` .. `InitDone`) drops what it did not list.
    pub fn observe<K: Managed>(&self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => self.index.put(o),
            watcher::Event::Delete(o) => {
                let meta = o.meta();
                self.index.remove::<K>(
                    meta.namespace.as_deref().unwrap_or_default(),
                    meta.name.as_deref().unwrap_or_default(),
                );
            }
            watcher::Event::Init => self.index.lock().relist_start(K::KIND),
            watcher::Event::InitDone => {
                self.index.lock().relist_done(K::KIND);
                self.indexed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(K::KIND);
            }
        }
    }

    fn is_indexed<K: Managed>(&self) -> bool {
        self.indexed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(K::KIND)
    }

    /// Names of the objects of kind `K` in `namespace` whose
    /// `spec.arrayRef` names `array` (from the index: what the watch has
    /// seen so far).
    pub fn referencing<K: Managed>(&self, namespace: &str, array: &str) -> Vec<String> {
        self.index.lock().referencing(K::KIND, namespace, array)
    }

    /// Names of the IscsiTargets of `namespace` (not being deleted) that
    /// list Lun `lun`, from the index: what wakes them when it changes.
    pub fn targets_listing(&self, namespace: &str, lun: &str) -> Vec<String> {
        self.index.targets_listing(namespace, lun)
    }

    /// Every object of kind `K` in `namespace`, with one LIST: only before
    /// the kind's watch has listed (tests without a watch).
    async fn list<K: Managed>(&self, namespace: &str) -> Result<Vec<K>, ClusterError> {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let list = api.list(&Default::default()).await.map_err(api_error)?;
        Ok(list.items)
    }
}

fn api_error(e: kube::Error) -> ClusterError {
    ClusterError(e.to_string())
}

impl Cluster for KubeCluster {
    async fn lun_external_id(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, ClusterError> {
        if let Some(store) = self.store::<Lun>() {
            let key = ObjectRef::<Lun>::new(name).within(namespace);
            return Ok(store
                .get(&key)
                .as_deref()
                .and_then(crate::engine::lun_external_id));
        }
        let api: Api<Lun> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .get_opt(name)
            .await
            .map_err(api_error)?
            .as_ref()
            .and_then(crate::engine::lun_external_id))
    }

    async fn targets_listing_lun(
        &self,
        namespace: &str,
        lun: &str,
    ) -> Result<Vec<String>, ClusterError> {
        if self.is_indexed::<IscsiTarget>() {
            return Ok(self.index.targets_listing(namespace, lun));
        }
        Ok(self
            .list::<IscsiTarget>(namespace)
            .await?
            .into_iter()
            .filter(|t| {
                t.metadata.deletion_timestamp.is_none() && t.spec.luns.iter().any(|l| l == lun)
            })
            .filter_map(|t| t.metadata.name)
            .collect())
    }

    async fn claims_on<K: Managed>(
        &self,
        namespace: &str,
        array: &str,
        key: ClaimKey<'_>,
    ) -> Result<Vec<Claim>, ClusterError> {
        if self.is_indexed::<K>() {
            return Ok(self.index.claims_on::<K>(namespace, array, key));
        }
        Ok(self
            .list::<K>(namespace)
            .await?
            .iter()
            .filter(|o| o.array_ref() == array)
            .map(claim_of)
            .filter(|c| match key {
                ClaimKey::Id(id) => c.id.as_deref() == Some(id),
                ClaimKey::Name(name) => c.name == name,
            })
            .collect())
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ClusterError> {
        let Some(secret) = self.secrets.get(namespace, name).await.map_err(api_error)? else {
            return Ok(None);
        };
        let data = secret
            .data
            .iter()
            .flatten()
            .filter_map(|(k, v)| {
                let text = std::str::from_utf8(&v.0).ok()?;
                Some((
                    k.clone(),
                    SecretString::new(text.trim_end_matches(['\n', '\r'])),
                ))
            })
            .collect();
        Ok(Some(SecretData {
            data,
            resource_version: secret.metadata.resource_version.clone().unwrap_or_default(),
        }))
    }

    async fn annotate(
        &self,
        object: &ObjectKey,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        // A merge patch of metadata only: the operator never writes spec.
        let patch = Patch::Merge(json!({"metadata": {"annotations": annotations}}));
        let params = PatchParams::default();
        match object.kind {
            "Lun" => Api::<Lun>::namespaced(self.client.clone(), &object.namespace)
                .patch(&object.name, &params, &patch)
                .await
                .map(|_| ())
                .map_err(api_error),
            "IscsiTarget" => Api::<IscsiTarget>::namespaced(self.client.clone(), &object.namespace)
                .patch(&object.name, &params, &patch)
                .await
                .map(|_| ())
                .map_err(api_error),
            "VirtualMachine" => {
                Api::<VirtualMachine>::namespaced(self.client.clone(), &object.namespace)
                    .patch(&object.name, &params, &patch)
                    .await
                    .map(|_| ())
                    .map_err(api_error)
            }
            other => Err(ClusterError(format!(
                "annotations of kind {other} are not written by the operator"
            ))),
        }
    }
}
