//! The claims index as the [`super::Cluster`] implementations share it:
//! [`ClaimsIndex`] behind a lock, fed with typed objects. The in-memory
//! cluster feeds it from its puts and removes, the Kubernetes one from the
//! controllers' watch streams; both answer the engine's claims and "which
//! targets list this Lun" questions from it without scanning.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::crd::IscsiTarget;
use crate::reconcile::claims::Claim;
use crate::reconcile::claims_index::{ClaimKey, ClaimsIndex, Entry};

use super::lifecycle::{Managed, claim_of};

/// What the index keeps of `obj`: its array, its claim and, for an
/// IscsiTarget that is not being deleted, the Luns it lists.
pub fn index_entry<K: Managed>(obj: &K) -> Entry {
    let meta = obj.meta();
    // The one kind-specific term: a target's Luns, which a Lun's deletion
    // waits for. Downcast rather than a trait method, so kinds that list
    // nothing say nothing.
    let lists = (obj as &dyn Any)
        .downcast_ref::<IscsiTarget>()
        .filter(|t| t.metadata.deletion_timestamp.is_none())
        .map(|t| t.spec.luns.clone())
        .unwrap_or_default();
    Entry {
        kind: K::KIND,
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        array: obj.array_ref().to_string(),
        claim: claim_of(obj),
        lists,
    }
}

/// A [`ClaimsIndex`] shared between clones (the cluster views are cloned
/// into every reconcile).
#[derive(Clone, Debug, Default)]
pub struct SharedIndex {
    inner: Arc<Mutex<ClaimsIndex>>,
}

impl SharedIndex {
    /// The index, for a batch of updates or queries.
    pub fn lock(&self) -> MutexGuard<'_, ClaimsIndex> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `obj` was added or changed.
    pub fn put<K: Managed>(&self, obj: &K) {
        let entry = index_entry(obj);
        self.lock().apply(entry);
    }

    /// The object `namespace/name` of kind `K` is gone.
    pub fn remove<K: Managed>(&self, namespace: &str, name: &str) {
        self.lock().delete(K::KIND, namespace, name);
    }

    /// [`ClaimsIndex::claims_on`] for kind `K`.
    pub fn claims_on<K: Managed>(
        &self,
        namespace: &str,
        array: &str,
        key: ClaimKey<'_>,
    ) -> Vec<Claim> {
        self.lock().claims_on(K::KIND, namespace, array, key)
    }

    /// The IscsiTargets of `namespace` (not being deleted) that list Lun
    /// `lun`.
    pub fn targets_listing(&self, namespace: &str, lun: &str) -> Vec<String> {
        self.lock()
            .listing(<IscsiTarget as Managed>::KIND, namespace, lun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Lun;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn target(name: &str, luns: &[&str], deleting: bool) -> IscsiTarget {
        let spec = serde_json::from_value(serde_json::json!({
            "arrayRef": {"name": "dsm"}, "luns": luns
        }))
        .expect("spec");
        let mut t = IscsiTarget::new(name, spec);
        t.metadata.namespace = Some("ns".into());
        t.metadata.uid = Some(format!("uid-{name}"));
        if deleting {
            t.metadata.deletion_timestamp =
                Some(Time("2026-11-30T10:00:00Z".parse().expect("time")));
        }
        t
    }

    #[test]
    fn a_target_being_deleted_lists_nothing_but_still_claims() {
        let index = SharedIndex::default();
        index.put(&target("t1", &["db"], false));
        index.put(&target("t2", &["db"], true));
        assert_eq!(index.targets_listing("ns", "db"), ["t1"]);
        let claims = index.claims_on::<IscsiTarget>("ns", "dsm", ClaimKey::Name("t2"));
        assert_eq!(claims.len(), 1, "a Terminating target keeps its claim");
        index.remove::<IscsiTarget>("ns", "t1");
        assert!(index.targets_listing("ns", "db").is_empty());
    }

    #[test]
    fn a_lun_is_indexed_under_its_kind_and_array() {
        let spec = serde_json::from_value(serde_json::json!({
            "arrayRef": {"name": "dsm"}, "size": "1Gi"
        }))
        .expect("spec");
        let mut lun = Lun::new("db", spec);
        lun.metadata.namespace = Some("ns".into());
        let entry = index_entry(&lun);
        assert_eq!(
            (entry.kind, entry.array.as_str(), entry.lists.len()),
            ("Lun", "dsm", 0)
        );
        let index = SharedIndex::default();
        index.put(&lun);
        assert_eq!(
            index
                .claims_on::<Lun>("ns", "dsm", ClaimKey::Name("db"))
                .len(),
            1
        );
        assert!(
            index
                .claims_on::<IscsiTarget>("ns", "dsm", ClaimKey::Name("db"))
                .is_empty()
        );
    }
}
