//! The engine's view of the cluster ([`crate::engine::Cluster`]) over the
//! Kubernetes API.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::array::types::SecretString;
use crate::crd::{IscsiTarget, Lun};
use crate::engine::{Cluster, ClusterError, ObjectKey, SecretData};

/// [`Cluster`] backed by a kube client.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
}

impl KubeCluster {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        KubeCluster { client }
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
        let api: Api<IscsiTarget> = Api::namespaced(self.client.clone(), namespace);
        let targets = api.list(&Default::default()).await.map_err(api_error)?;
        Ok(targets
            .items
            .into_iter()
            .filter(|t| {
                t.metadata.deletion_timestamp.is_none() && t.spec.luns.iter().any(|l| l == lun)
            })
            .filter_map(|t| t.metadata.name)
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
