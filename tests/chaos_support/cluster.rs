//! A fake Kubernetes API for the ownership and chaos tests: Luns, IscsiTargets
//! and Secrets with what the apiserver keeps and the engine's ownership rules
//! depend on: UIDs (a copied manifest gets a new UID but keeps the
//! annotations), generation and resourceVersion, deletionTimestamp and
//! finalizers (an object being deleted stays until its finalizer is removed),
//! status written back, and annotation writes that can fail (refused, or
//! applied with the answer lost).
//!
//! It implements `engine::Cluster`; when that trait grows, this is the one
//! implementation to extend.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use array_operator::crd::iscsi_target::{IscsiTargetSpec, IscsiTargetStatus};
use array_operator::crd::lun::{LunSpec, LunStatus};
use array_operator::crd::shared::FINALIZER;
use array_operator::crd::{IscsiTarget, Lun};
use array_operator::engine::{Cluster, ClusterError, ObjectKey, SecretData};
use array_operator::model::SecretString;
use array_operator::reconcile::claims_index::ClaimKey;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Key = (String, String);

/// What happens to one annotation write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnnotateFault {
    /// The apiserver refuses it: nothing is written.
    Refuse,
    /// It is written, but the answer is lost: the caller sees an error.
    ApplyThenFail,
}

/// Decides the fate of an annotation write from the object and what is written.
pub type AnnotateRule =
    Box<dyn FnMut(&ObjectKey, &BTreeMap<String, String>) -> Option<AnnotateFault> + Send>;

#[derive(Default)]
struct State {
    luns: BTreeMap<Key, Lun>,
    targets: BTreeMap<Key, IscsiTarget>,
    secrets: BTreeMap<Key, SecretData>,
    next_uid: u64,
    next_rv: u64,
    annotate_calls: usize,
    annotate_failures: usize,
    rule: Option<AnnotateRule>,
}

/// The fake cluster. Cloning shares it.
#[derive(Clone, Default)]
pub struct FakeCluster {
    state: Arc<Mutex<State>>,
}

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

fn bump(state: &mut State, meta: &mut ObjectMeta) {
    state.next_rv += 1;
    meta.resource_version = Some(state.next_rv.to_string());
}

fn new_meta(state: &mut State, ns: &str, name: &str) -> ObjectMeta {
    state.next_uid += 1;
    state.next_rv += 1;
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(ns.to_string()),
        uid: Some(format!("uid-{:04}", state.next_uid)),
        generation: Some(1),
        resource_version: Some(state.next_rv.to_string()),
        ..ObjectMeta::default()
    }
}

fn deletion_time() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Marks an object deleted: gone at once without finalizers, else it gets
/// a deletionTimestamp and stays. Returns true when it is gone.
fn mark_deleted(state: &mut State, meta: &mut ObjectMeta) -> bool {
    if meta.finalizers.as_ref().is_none_or(|f| f.is_empty()) {
        return true;
    }
    if meta.deletion_timestamp.is_none() {
        meta.deletion_timestamp = Some(deletion_time());
        bump(state, meta);
    }
    false
}

/// Removes the operator's finalizer. Returns true when the object is gone.
fn drop_finalizer(state: &mut State, meta: &mut ObjectMeta) -> bool {
    if let Some(f) = meta.finalizers.as_mut() {
        let before = f.len();
        f.retain(|x| x != FINALIZER);
        if f.len() != before {
            bump(state, meta);
        }
    }
    meta.deletion_timestamp.is_some() && meta.finalizers.as_ref().is_none_or(|f| f.is_empty())
}

fn add_finalizer(state: &mut State, meta: &mut ObjectMeta) {
    let f = meta.finalizers.get_or_insert_with(Vec::new);
    if !f.iter().any(|x| x == FINALIZER) {
        f.push(FINALIZER.to_string());
        bump(state, meta);
    }
}

impl FakeCluster {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `kubectl apply` of a Lun: created with a new UID, or its spec
    /// replaced (a new generation when it changed). Returns the UID.
    pub fn apply_lun(&self, ns: &str, name: &str, spec: LunSpec) -> String {
        let mut s = self.lock();
        let k = key(ns, name);
        let mut lun = match s.luns.remove(&k) {
            Some(l) => l,
            None => {
                let meta = new_meta(&mut s, ns, name);
                let mut l = Lun::new(name, spec.clone());
                l.metadata = meta;
                l.metadata.generation = Some(0);
                l
            }
        };
        if lun.metadata.generation == Some(0) || lun.spec != spec {
            lun.metadata.generation = Some(lun.metadata.generation.unwrap_or(0) + 1);
            lun.spec = spec;
            bump(&mut s, &mut lun.metadata);
        }
        let uid = lun.metadata.uid.clone().unwrap_or_default();
        s.luns.insert(k, lun);
        uid
    }

    /// `kubectl apply` of an IscsiTarget. Returns the UID.
    pub fn apply_target(&self, ns: &str, name: &str, spec: IscsiTargetSpec) -> String {
        let mut s = self.lock();
        let k = key(ns, name);
        let mut t = match s.targets.remove(&k) {
            Some(t) => t,
            None => {
                let meta = new_meta(&mut s, ns, name);
                let mut t = IscsiTarget::new(name, spec.clone());
                t.metadata = meta;
                t.metadata.generation = Some(0);
                t
            }
        };
        if t.metadata.generation == Some(0) || t.spec != spec {
            t.metadata.generation = Some(t.metadata.generation.unwrap_or(0) + 1);
            t.spec = spec;
            bump(&mut s, &mut t.metadata);
        }
        let uid = t.metadata.uid.clone().unwrap_or_default();
        s.targets.insert(k, t);
        uid
    }

    /// `kubectl get lun FROM -o yaml`, edited to name `to` and passed
    /// through `edit`, then `kubectl create`: the annotations and the spec
    /// are copied, the UID, status and deletion state are new. Returns the
    /// new UID, or `None` when `from` does not exist or `to` does.
    pub fn copy_lun(
        &self,
        ns: &str,
        from: &str,
        to: &str,
        edit: impl FnOnce(&mut LunSpec),
    ) -> Option<String> {
        let mut s = self.lock();
        if s.luns.contains_key(&key(ns, to)) {
            return None;
        }
        let source = s.luns.get(&key(ns, from))?.clone();
        let mut meta = new_meta(&mut s, ns, to);
        meta.annotations = source.metadata.annotations.clone();
        meta.labels = source.metadata.labels.clone();
        let mut spec = source.spec.clone();
        edit(&mut spec);
        let mut copy = Lun::new(to, spec);
        copy.metadata = meta;
        let uid = copy.metadata.uid.clone().unwrap_or_default();
        s.luns.insert(key(ns, to), copy);
        Some(uid)
    }

    /// A user's `kubectl annotate` (an empty value removes the annotation).
    pub fn user_annotate_lun(&self, ns: &str, name: &str, k: &str, v: &str) -> bool {
        let mut s = self.lock();
        let Some(mut lun) = s.luns.remove(&key(ns, name)) else {
            return false;
        };
        let a = lun.metadata.annotations.get_or_insert_with(BTreeMap::new);
        if v.is_empty() {
            a.remove(k);
        } else {
            a.insert(k.to_string(), v.to_string());
        }
        bump(&mut s, &mut lun.metadata);
        s.luns.insert(key(ns, name), lun);
        true
    }

    /// `kubectl delete lun`: a deletionTimestamp while the finalizer is on.
    pub fn delete_lun(&self, ns: &str, name: &str) {
        let mut s = self.lock();
        let k = key(ns, name);
        let Some(mut lun) = s.luns.remove(&k) else {
            return;
        };
        if !mark_deleted(&mut s, &mut lun.metadata) {
            s.luns.insert(k, lun);
        }
    }

    /// `kubectl delete iscsitarget`.
    pub fn delete_target(&self, ns: &str, name: &str) {
        let mut s = self.lock();
        let k = key(ns, name);
        let Some(mut t) = s.targets.remove(&k) else {
            return;
        };
        if !mark_deleted(&mut s, &mut t.metadata) {
            s.targets.insert(k, t);
        }
    }

    /// Adds the operator's finalizer to the Lun with this UID.
    pub fn add_lun_finalizer(&self, ns: &str, name: &str, uid: &str) {
        let mut s = self.lock();
        let k = key(ns, name);
        if let Some(mut lun) = s.luns.remove(&k) {
            if lun.metadata.uid.as_deref() == Some(uid) {
                add_finalizer(&mut s, &mut lun.metadata);
            }
            s.luns.insert(k, lun);
        }
    }

    /// Adds the operator's finalizer to the IscsiTarget with this UID.
    pub fn add_target_finalizer(&self, ns: &str, name: &str, uid: &str) {
        let mut s = self.lock();
        let k = key(ns, name);
        if let Some(mut t) = s.targets.remove(&k) {
            if t.metadata.uid.as_deref() == Some(uid) {
                add_finalizer(&mut s, &mut t.metadata);
            }
            s.targets.insert(k, t);
        }
    }

    /// Removes the operator's finalizer from the Lun with this UID; a Lun
    /// being deleted is then gone.
    pub fn remove_lun_finalizer(&self, ns: &str, name: &str, uid: &str) {
        let mut s = self.lock();
        let k = key(ns, name);
        if let Some(mut lun) = s.luns.remove(&k) {
            let gone = lun.metadata.uid.as_deref() == Some(uid)
                && drop_finalizer(&mut s, &mut lun.metadata);
            if !gone {
                s.luns.insert(k, lun);
            }
        }
    }

    /// Removes the operator's finalizer from the IscsiTarget with this UID.
    pub fn remove_target_finalizer(&self, ns: &str, name: &str, uid: &str) {
        let mut s = self.lock();
        let k = key(ns, name);
        if let Some(mut t) = s.targets.remove(&k) {
            let gone =
                t.metadata.uid.as_deref() == Some(uid) && drop_finalizer(&mut s, &mut t.metadata);
            if !gone {
                s.targets.insert(k, t);
            }
        }
    }

    /// Writes a Lun's status (the status subresource), if the object with
    /// this UID still exists. An unchanged status is not a change.
    pub fn write_lun_status(&self, ns: &str, name: &str, uid: &str, status: LunStatus) {
        let mut s = self.lock();
        let k = key(ns, name);
        if let Some(mut lun) = s.luns.remove(&k) {
            if lun.metadata.uid.as_deref() == Some(uid) && lun.status.as_ref() != Some(&status) {
                lun.status = Some(status);
                bump(&mut s, &mut lun.metadata);
            }
            s.luns.insert(k, lun);
        }
    }

    /// Writes an IscsiTarget's status.
    pub fn write_target_status(&self, ns: &str, name: &str, uid: &str, status: IscsiTargetStatus) {
        let mut s = self.lock();
        let k = key(ns, name);
        if let Some(mut t) = s.targets.remove(&k) {
            if t.metadata.uid.as_deref() == Some(uid) && t.status.as_ref() != Some(&status) {
                t.status = Some(status);
                bump(&mut s, &mut t.metadata);
            }
            s.targets.insert(k, t);
        }
    }

    /// Stores a Secret with a `username` and a `password`.
    pub fn put_chap_secret(&self, ns: &str, name: &str, user: &str, password: &str, rv: &str) {
        let mut data = BTreeMap::new();
        data.insert("username".to_string(), SecretString::new(user));
        data.insert("password".to_string(), SecretString::new(password));
        self.lock().secrets.insert(
            key(ns, name),
            SecretData {
                data,
                resource_version: rv.to_string(),
            },
        );
    }

    /// The Lun, as stored.
    pub fn lun(&self, ns: &str, name: &str) -> Option<Lun> {
        self.lock().luns.get(&key(ns, name)).cloned()
    }

    /// The IscsiTarget, as stored.
    pub fn target(&self, ns: &str, name: &str) -> Option<IscsiTarget> {
        self.lock().targets.get(&key(ns, name)).cloned()
    }

    /// Every Lun.
    pub fn luns(&self) -> Vec<Lun> {
        self.lock().luns.values().cloned().collect()
    }

    /// Every IscsiTarget.
    pub fn targets(&self) -> Vec<IscsiTarget> {
        self.lock().targets.values().cloned().collect()
    }

    /// Sets the rule annotation writes go through (`None`: all succeed).
    pub fn set_annotate_rule(&self, rule: Option<AnnotateRule>) {
        self.lock().rule = rule;
    }

    /// Makes annotation writes that set `annotation` fail the next `times`
    /// times, as `fault` says.
    pub fn fail_annotation(&self, annotation: &'static str, times: usize, fault: AnnotateFault) {
        let mut left = times;
        self.set_annotate_rule(Some(Box::new(move |_, a| {
            if left > 0 && a.contains_key(annotation) {
                left -= 1;
                Some(fault)
            } else {
                None
            }
        })));
    }

    /// Makes a seeded share (in thousandths) of annotation writes fail, half
    /// refused and half applied with the answer lost.
    pub fn fail_annotations_randomly(&self, seed: u64, per_mille: u32) {
        let mut rng = StdRng::seed_from_u64(seed);
        self.set_annotate_rule(Some(Box::new(move |_, _| {
            if rng.random_range(0..1000) >= per_mille {
                return None;
            }
            Some(if rng.random_bool(0.5) {
                AnnotateFault::Refuse
            } else {
                AnnotateFault::ApplyThenFail
            })
        })));
    }

    /// Annotation writes made (including failed ones).
    pub fn annotate_calls(&self) -> usize {
        self.lock().annotate_calls
    }

    /// Annotation writes that failed.
    pub fn annotate_failures(&self) -> usize {
        self.lock().annotate_failures
    }
}

impl Cluster for FakeCluster {
    async fn lun_external_id(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, ClusterError> {
        Ok(self
            .lock()
            .luns
            .get(&key(namespace, name))
            .and_then(array_operator::engine::lun_external_id))
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

    async fn claims_on<K: array_operator::engine::lifecycle::Managed>(
        &self,
        namespace: &str,
        array: &str,
        key: ClaimKey<'_>,
    ) -> Result<Vec<array_operator::reconcile::claims::Claim>, ClusterError> {
        use array_operator::engine::lifecycle::claim_of;
        use std::any::Any;
        let s = self.lock();
        // Every stored object that is a `K`: the fake scans (its clusters
        // are small) where the real views look the key up in their index.
        let objects = s
            .luns
            .values()
            .map(|l| l as &dyn Any)
            .chain(s.targets.values().map(|t| t as &dyn Any));
        Ok(objects
            .filter_map(|o| o.downcast_ref::<K>())
            .filter(|o| o.meta().namespace.as_deref() == Some(namespace) && o.array_ref() == array)
            .map(claim_of)
            .filter(|c| match key {
                ClaimKey::Id(id) => c.id.as_deref() == Some(id),
                ClaimKey::Name(name) => c.name == name,
            })
            .collect())
    }

    async fn annotate(
        &self,
        object: &ObjectKey,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), ClusterError> {
        let mut guard = self.lock();
        let s = &mut *guard;
        s.annotate_calls += 1;
        let fault = s.rule.as_mut().and_then(|r| r(object, &annotations));
        if fault == Some(AnnotateFault::Refuse) {
            s.annotate_failures += 1;
            return Err(ClusterError(format!(
                "{object}: the apiserver refused the write (injected)"
            )));
        }
        let k = key(&object.namespace, &object.name);
        let mut meta = match object.kind {
            "Lun" => s.luns.get(&k).map(|o| o.metadata.clone()),
            "IscsiTarget" => s.targets.get(&k).map(|o| o.metadata.clone()),
            _ => None,
        }
        .ok_or_else(|| ClusterError(format!("{object} not found")))?;
        let a = meta.annotations.get_or_insert_with(BTreeMap::new);
        let before = a.clone();
        a.extend(annotations);
        if *a != before {
            bump(s, &mut meta);
        }
        match object.kind {
            "Lun" => {
                if let Some(o) = s.luns.get_mut(&k) {
                    o.metadata = meta;
                }
            }
            _ => {
                if let Some(o) = s.targets.get_mut(&k) {
                    o.metadata = meta;
                }
            }
        }
        if fault == Some(AnnotateFault::ApplyThenFail) {
            s.annotate_failures += 1;
            return Err(ClusterError(format!(
                "{object}: the answer to the write was lost (injected)"
            )));
        }
        Ok(())
    }
}
