//! An in-memory [`Cluster`]: the engine's view of a cluster without a
//! Kubernetes API. The full-flow tests, the benchmark and `plan` use it to
//! drive the engine against a simulator or a real array.
//!
//! Claims and "which targets list this Lun" come from the same incremental
//! [`SharedIndex`] the Kubernetes view keeps, updated by every put, remove
//! and annotation write, so the benchmark at 10,000 Luns is not quadratic.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::crd::{IscsiTarget, Lun, VirtualMachine};
use crate::reconcile::claims::Claim;
use crate::reconcile::claims_index::ClaimKey;

use super::index::SharedIndex;
use super::{Cluster, ClusterError, ObjectKey, SecretData};

type Key = (String, String);

#[derive(Debug, Default)]
struct State {
    luns: BTreeMap<Key, Lun>,
    targets: BTreeMap<Key, IscsiTarget>,
    vms: BTreeMap<Key, VirtualMachine>,
    secrets: BTreeMap<Key, SecretData>,
    annotate_calls: usize,
    fail_annotate: bool,
}

/// Objects held in memory. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct MemoryCluster {
    state: Arc<Mutex<State>>,
    index: SharedIndex,
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
        let mut state = self.lock();
        self.index.put(&lun);
        state.luns.insert(obj_key(&lun), lun);
    }

    /// Stores an IscsiTarget.
    pub fn put_target(&self, target: IscsiTarget) {
        let mut state = self.lock();
        self.index.put(&target);
        state.targets.insert(obj_key(&target), target);
    }

    /// Stores a VirtualMachine.
    pub fn put_vm(&self, vm: VirtualMachine) {
        let mut state = self.lock();
        self.index.put(&vm);
        state.vms.insert(obj_key(&vm), vm);
    }

    /// Removes a VirtualMachine.
    pub fn remove_vm(&self, namespace: &str, name: &str) {
        let mut state = self.lock();
        self.index.remove::<VirtualMachine>(namespace, name);
        state.vms.remove(&key(namespace, name));
    }

    /// The stored VirtualMachine.
    pub fn vm(&self, namespace: &str, name: &str) -> Option<VirtualMachine> {
        self.lock().vms.get(&key(namespace, name)).cloned()
    }

    /// Stores a Secret.
    pub fn put_secret(&self, namespace: &str, name: &str, data: SecretData) {
        self.lock().secrets.insert(key(namespace, name), data);
    }

    /// Removes a Lun.
    pub fn remove_lun(&self, namespace: &str, name: &str) {
        let mut state = self.lock();
        self.index.remove::<Lun>(namespace, name);
        state.luns.remove(&key(namespace, name));
    }

    /// Removes an IscsiTarget.
    pub fn remove_target(&self, namespace: &str, name: &str) {
        let mut state = self.lock();
        self.index.remove::<IscsiTarget>(namespace, name);
        state.targets.remove(&key(namespace, name));
    }

    /// The stored Lun.
    pub fn lun(&self, namespace: &str, name: &str) -> Option<Lun> {
        self.lock().luns.get(&key(namespace, name)).cloned()
    }

    /// Every stored Lun, by namespace and name.
    pub fn luns(&self) -> Vec<Lun> {
        self.lock().luns.values().cloned().collect()
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
        Ok(self.index.targets_listing(namespace, lun))
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SecretData>, ClusterError> {
        Ok(self.lock().secrets.get(&key(namespace, name)).cloned())
    }

    async fn claims_on<K: super::lifecycle::Managed>(
        &self,
        namespace: &str,
        array: &str,
        key: ClaimKey<'_>,
    ) -> Result<Vec<Claim>, ClusterError> {
        Ok(self.index.claims_on::<K>(namespace, array, key))
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
        // The annotations change the object's claim: index it again.
        match object.kind {
            "Lun" => state.luns.get_mut(&k).map(|o| {
                o.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .extend(annotations);
                self.index.put(o);
            }),
            "IscsiTarget" => state.targets.get_mut(&k).map(|o| {
                o.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .extend(annotations);
                self.index.put(o);
            }),
            "VirtualMachine" => state.vms.get_mut(&k).map(|o| {
                o.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .extend(annotations);
                self.index.put(o);
            }),
            _ => None,
        }
        .ok_or_else(|| ClusterError(format!("{object} not found")))
    }
}
