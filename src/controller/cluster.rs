//! The engine's view of the cluster ([`crate::engine::Cluster`]) over the
//! Kubernetes API.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

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
/// not with a GET or LIST).
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    luns: Arc<OnceLock<Store<Lun>>>,
    targets: Arc<OnceLock<Store<IscsiTarget>>>,
}

impl KubeCluster {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        KubeCluster {
            client,
            luns: Arc::default(),
            targets: Arc::default(),
        }
    }

    /// Serves Luns from the Lun controller's store from now on.
    pub fn set_luns(&self, store: Store<Lun>) {
        let _ = self.luns.set(store);
    }

    /// Serves IscsiTargets from the IscsiTarget controller's store.
    pub fn set_targets(&self, store: Store<IscsiTarget>) {
        let _ = self.targets.set(store);
    }

    async fn all_luns(&self, namespace: &str) -> Result<Vec<Arc<Lun>>, ClusterError> {
        if let Some(store) = self.luns.get() {
            return Ok(store
                .state()
                .into_iter()
                .filter(|l| l.metadata.namespace.as_deref() == Some(namespace))
                .collect());
        }
        let api: Api<Lun> = Api::namespaced(self.client.clone(), namespace);
        let list = api.list(&Default::default()).await.map_err(api_error)?;
        Ok(list.items.into_iter().map(Arc::new).collect())
    }

    async fn all_targets(&self, namespace: &str) -> Result<Vec<Arc<IscsiTarget>>, ClusterError> {
        if let Some(store) = self.targets.get() {
            return Ok(store
                .state()
                .into_iter()
                .filter(|t| t.metadata.namespace.as_deref() == Some(namespace))
                .collect());
        }
        let api: Api<IscsiTarget> = Api::namespaced(self.client.clone(), namespace);
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
        if let Some(store) = self.luns.get() {
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
            .all_targets(namespace)
            .await?
            .into_iter()
            .filter(|t| {
                t.metadata.deletion_timestamp.is_none() && t.spec.luns.iter().any(|l| l == lun)
            })
            .filter_map(|t| t.metadata.name.clone())
            .collect())
    }

    async fn claims(
        &self,
        kind: &str,
        namespace: &str,
        array: &str,
    ) -> Result<Vec<Claim>, ClusterError> {
        Ok(match kind {
            "Lun" => self
                .all_luns(namespace)
                .await?
                .iter()
                .filter(|l| l.array_ref() == array)
                .map(|l| claim_of(l.as_ref()))
                .collect(),
            "IscsiTarget" => self
                .all_targets(namespace)
                .await?
                .iter()
                .filter(|t| t.array_ref() == array)
                .map(|t| claim_of(t.as_ref()))
                .collect(),
            _ => Vec::new(),
        })
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
