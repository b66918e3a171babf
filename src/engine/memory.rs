//! An in-memory [`Cluster`]: the engine's view of a cluster without a
//! Kubernetes API. The full-flow tests, the benchmark and `plan` use it to
//! drive the engine against a simulator or a real array.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::crd::{IscsiTarget, Lun};

use super::{Cluster, ClusterError, ObjectKey, SecretData};

type Key = (String, String);

#[derive(Debug, Default)]
struct State {
    luns: BTreeMap<Key, Lun>,
    targets: BTreeMap<Key, IscsiTarget>,
    secrets: BTreeMap<Key, SecretData>,
    annotate_calls: usize,
    fail_annotate: bool,
}

/// Objects held in memory. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct MemoryCluster {
    state: Arc<Mutex<State>>,
}

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

fn obj_key<K: kube::Resource>(o: &K) -> Key {
    let m = o.meta();
    key(
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
    )
}

impl MemoryCluster {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores (creates or replaces) a Lun, as `kubectl apply` would.
    pub fn put_lun(&self, lun: Lun) {
        self.lock().luns.insert(obj_key(&lun), lun);
    }

    /// Stores an IscsiTarget.
    pub fn put_target(&self, target: IscsiTarget) {
        self.lock().targets.insert(obj_key(&target), target);
    }

    /// Stores a Secret.
    pub fn put_secret(&self, namespace: &str, name: &str, data: SecretData) {
        self.lock().secrets.insert(key(namespace, name), data);
    }

    /// Removes a Lun.
    pub fn remove_lun(&self, namespace: &str, name: &str) {
        self.lock().luns.remove(&key(namespace, name));
    }

    /// Removes an IscsiTarget.
    pub fn remove_target(&self, namespace: &str, name: &str) {
        self.lock().targets.remove(&key(namespace, name));
    }

    /// The stored Lun.
    pub fn lun(&self, namespace: &str, name: &str) -> Option<Lun> {
        self.lock().luns.get(&key(namespace, name)).cloned()
    }

    /// The stored IscsiTarget.
    pub fn target(&self, namespace: &str, name: &str) -> Option<IscsiTarget> {
        self.lock().targets.get(&key(namespace, name)).cloned()
    }

    /// How many annotation writes were made.
    pub fn annotate_calls(&self) -> usize {
        self.lock().annotate_calls
    }

    /// Makes every annotation write fail (an apiserver outage).
    pub fn fail_annotations(&self, fail: bool) {
        self.lock().fail_annotate = fail;
    }
}

impl Cluster for MemoryCluster {
    async fn lun_external_id(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, ClusterError> {
        let state = self.lock();
        Ok(state
            .luns
            .get(&key(namespace, name))
            .and_then(super::lun_external_id))
    }

    async fn targets_listing_lun(
        &self,
        namespace: &str,
        lun: &str,
    ) -> Result<Vec<String>, ClusterError> {
        Ok(self
            .lock()
            .targets
            .iter()
            .filter(|((ns, _), t)| ns == namespace && t.spec.luns.iter().any(|l| l == lun))
            .map(|((_, name), _)| name.clone())
            .collect())
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ClusterError> {
        Ok(self.lock().secrets.get(&key(namespace, name)).cloned())
    }

    async fn claims<K: super::lifecycle::Managed>(
        &self,
        namespace: &str,
        array: &str,
    ) -> Result<Vec<crate::reconcile::claims::Claim>, ClusterError> {
        use super::lifecycle::claim_of;
        use std::any::Any;
        let state = self.lock();
        // Every stored object that is a `K`: no list of kinds to keep.
        let objects = state
            .luns
            .values()
            .map(|l| l as &dyn Any)
            .chain(state.targets.values().map(|t| t as &dyn Any));
        Ok(objects
            .filter_map(|o| o.downcast_ref::<K>())
            .filter(|o| o.meta().namespace.as_deref() == Some(namespace) && o.array_ref() == array)
            .map(claim_of)
            .collect())
    }

    async fn annotate(
        &self,
        object: &ObjectKey,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        let mut state = self.lock();
        if state.fail_annotate {
            return Err(ClusterError(
                "the apiserver is unavailable (injected)".into(),
            ));
        }
        state.annotate_calls += 1;
        let k = key(&object.namespace, &object.name);
        let meta = match object.kind {
            "Lun" => state.luns.get_mut(&k).map(|o| &mut o.metadata),
            "IscsiTarget" => state.targets.get_mut(&k).map(|o| &mut o.metadata),
            _ => None,
        };
        let Some(meta) = meta else {
            return Err(ClusterError(format!("{object} not found")));
        };
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(annotations);
        Ok(())
    }
}
