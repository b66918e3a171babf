//! The engine's view of the cluster ([`crate::engine::Cluster`]) over the
//! Kubernetes API.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use serde_json::json;

use crate::crd::{IscsiTarget, Lun};
use crate::engine::lifecycle::{Managed, claim_of};
use crate::engine::{Cluster, ClusterError, ObjectKey, SecretData};
use crate::model::SecretString;
use crate::reconcile::claims::Claim;

/// [`Cluster`] backed by a kube client and, once the controllers run, by
/// their watch-fed stores (so a reconcile reads other objects from memory,
/// not with a GET or LIST). Stores are kept per kind in a type map, so a new
/// kind registers its store and adds no field here.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    stores: Arc<Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl KubeCluster {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        KubeCluster {
            client,
            stores: Arc::default(),
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

    /// Every object of kind `K` in `namespace`: from the store when the
    /// controllers run, else with one LIST (tests without a watch).
    async fn all<K: Managed>(&self, namespace: &str) -> Result<Vec<Arc<K>>, ClusterError> {
        if let Some(store) = self.store::<K>() {
            return Ok(store
                .state()
                .into_iter()
                .filter(|o| o.meta().namespace.as_deref() == Some(namespace))
                .collect());
        }
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let list = api.list(&Default::default()).await.map_err(api_error)?;
        Ok(list.items.into_iter().map(Arc::new).collect())
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
        Ok(self
            .all::<IscsiTarget>(namespace)
            .await?
            .into_iter()
            .filter(|t| {
                t.metadata.deletion_timestamp.is_none() && t.spec.luns.iter().any(|l| l == lun)
            })
            .filter_map(|t| t.metadata.name.clone())
            .collect())
    }

    async fn claims<K: Managed>(
        &self,
        namespace: &str,
        array: &str,
    ) -> Result<Vec<Claim>, ClusterError> {
        Ok(self
            .all::<K>(namespace)
            .await?
            .iter()
            .filter(|o| o.array_ref() == array)
            .map(|o| claim_of(o.as_ref()))
            .collect())
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ClusterError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let Some(secret) = api.get_opt(name).await.map_err(api_error)? else {
            return Ok(None);
        };
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| {
                let text = String::from_utf8(v.0).ok()?;
                Some((k, SecretString::new(text.trim_end_matches(['\n', '\r']))))
            })
            .collect();
        Ok(Some(SecretData {
            data,
            resource_version: secret.metadata.resource_version.unwrap_or_default(),
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
            other => Err(ClusterError(format!(
                "annotations of kind {other} are not written by the operator"
            ))),
        }
    }
}
