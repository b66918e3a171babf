//! The incremental claims index: what every watched object claims on its
//! array, kept up to date one watch event at a time.
//!
//! [`super::claims`] decides *who* holds an array object from a set of
//! claims; this index answers *which* claims to ask about without scanning
//! every object of a kind. It is pure (no I/O, no clock, no locks): the
//! cluster views feed it events (`apply` or `delete` of one object, and the
//! start and end of a relist) and query it, so it is tested event in, state
//! out.
//!
//! Costs, with `t` the terms of one object (its array, id, name and listed
//! Luns: a handful) and `m` the objects a query matches:
//! - [`ClaimsIndex::apply`] and [`ClaimsIndex::delete`]: O(t);
//! - [`ClaimsIndex::claims_on`] (by id or by name) and
//!   [`ClaimsIndex::listing`] (the targets listing a Lun): O(m log m), not
//!   O(objects of the kind);
//! - a relist ([`ClaimsIndex::relist_start`] .. [`ClaimsIndex::relist_done`]):
//!   O(objects of the kind), once per watch restart.
//!
//! Memory: each object's strings are kept once (in its [`Entry`]); the
//! postings hold a 64-bit hash of each term and a shared pointer to the
//! object, and every query checks the entry itself, so a hash collision can
//! never return a wrong claim.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use super::claims::Claim;

/// One object as the index keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The kind (`Lun`, `IscsiTarget`).
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.arrayRef.name`.
    pub array: String,
    /// What it claims on that array.
    pub claim: Claim,
    /// The Luns (of its namespace) it lists and still wants mapped: an
    /// IscsiTarget's `spec.luns` while it is not being deleted; empty for
    /// other kinds.
    pub lists: Vec<String>,
}

/// What a claims query asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimKey<'a> {
    /// The claims of this array id.
    Id(&'a str),
    /// The claims that want this array-side name.
    Name(&'a str),
}

/// An object: (kind, namespace, name), shared between the object map and
/// the postings.
type ObjectId = Arc<(&'static str, String, String)>;

/// What an object can be found by. Every term carries the kind and the
/// namespace, so two kinds or namespaces never meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Term<'a> {
    /// It references this array.
    Array(&'static str, &'a str, &'a str),
    /// It claims this id on this array.
    Id(&'static str, &'a str, &'a str, &'a str),
    /// It wants this name on this array.
    Name(&'static str, &'a str, &'a str, &'a str),
    /// It lists this Lun.
    Lists(&'static str, &'a str, &'a str),
}

impl Term<'_> {
    /// The posting key. Deterministic (fixed-key SipHash).
    fn key(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }

    /// True when `entry` has this term (the check behind every posting).
    fn holds(&self, entry: &Entry) -> bool {
        let on = |kind: &str, ns: &str, array: &str| {
            entry.kind == kind && entry.namespace == ns && entry.array == array
        };
        match *self {
            Term::Array(kind, ns, array) => on(kind, ns, array),
            Term::Id(kind, ns, array, id) => {
                on(kind, ns, array) && entry.claim.id.as_deref() == Some(id)
            }
            Term::Name(kind, ns, array, name) => on(kind, ns, array) && entry.claim.name == name,
            Term::Lists(kind, ns, lun) => {
                entry.kind == kind && entry.namespace == ns && entry.lists.iter().any(|l| l == lun)
            }
        }
    }
}

/// The posting keys of `entry`'s terms, without repeats.
fn keys(entry: &Entry) -> Vec<u64> {
    let (kind, ns, array) = (entry.kind, entry.namespace.as_str(), entry.array.as_str());
    let mut keys = vec![
        Term::Array(kind, ns, array).key(),
        Term::Name(kind, ns, array, &entry.claim.name).key(),
    ];
    if let Some(id) = &entry.claim.id {
        keys.push(Term::Id(kind, ns, array, id).key());
    }
    keys.extend(
        entry
            .lists
            .iter()
            .map(|lun| Term::Lists(kind, ns, lun).key()),
    );
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The objects filed under one posting key. Most keys (an id, a name) hold
/// one object: no set for those.
#[derive(Debug)]
enum Posting {
    One(ObjectId),
    Many(HashSet<ObjectId>),
}

impl Posting {
    fn insert(&mut self, id: ObjectId) {
        match self {
            Posting::One(one) if *one == id => {}
            Posting::One(one) => {
                *self = Posting::Many(HashSet::from([one.clone(), id]));
            }
            Posting::Many(set) => {
                set.insert(id);
            }
        }
    }

    /// Removes `id`; true when nothing is left.
    fn remove(&mut self, id: &ObjectId) -> bool {
        match self {
            Posting::One(one) => one == id,
            Posting::Many(set) => {
                set.remove(id);
                set.is_empty()
            }
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &ObjectId> + '_> {
        match self {
            Posting::One(one) => Box::new(std::iter::once(one)),
            Posting::Many(set) => Box::new(set.iter()),
        }
    }
}

/// One indexed object: its entry and the posting keys it is filed under.
#[derive(Debug)]
struct Indexed {
    entry: Entry,
    keys: Vec<u64>,
}

/// The index. See the module documentation for the costs.
#[derive(Debug, Default)]
pub struct ClaimsIndex {
    /// Boxed: a table of large inline values keeps up to twice their size
    /// in spare buckets.
    objects: HashMap<ObjectId, Box<Indexed>>,
    postings: HashMap<u64, Posting>,
    /// Per kind being relisted: the objects the relist has applied so far.
    relisting: HashMap<&'static str, HashSet<ObjectId>>,
}

impl ClaimsIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn unfile(&mut self, id: &ObjectId, keys: &[u64]) {
        for key in keys {
            if self.postings.get_mut(key).is_some_and(|p| p.remove(id)) {
                self.postings.remove(key);
            }
        }
    }

    /// An object was added or changed: it replaces what the index held for
    /// it (it may have moved to another array, or changed its id or name).
    pub fn apply(&mut self, entry: Entry) {
        let probe: ObjectId = Arc::new((entry.kind, entry.namespace.clone(), entry.name.clone()));
        // Reuse the shared id the postings already hold for this object.
        let id = match self.objects.get_key_value(&probe) {
            Some((id, _)) => id.clone(),
            None => probe,
        };
        if let Some(seen) = self.relisting.get_mut(entry.kind) {
            seen.insert(id.clone());
        }
        let keys = keys(&entry);
        if let Some(old) = self.objects.remove(&id) {
            self.unfile(&id, &old.keys);
        }
        for key in &keys {
            match self.postings.get_mut(key) {
                Some(posting) => posting.insert(id.clone()),
                None => {
                    self.postings.insert(*key, Posting::One(id.clone()));
                }
            }
        }
        self.objects.insert(id, Box::new(Indexed { entry, keys }));
    }

    /// An object is gone.
    pub fn delete(&mut self, kind: &'static str, namespace: &str, name: &str) {
        let id: ObjectId = Arc::new((kind, namespace.to_string(), name.to_string()));
        if let Some((id, old)) = self.objects.remove_entry(&id) {
            self.unfile(&id, &old.keys);
        }
    }

    /// A watch of `kind` restarted and lists everything again: objects it
    /// does not apply before [`ClaimsIndex::relist_done`] were deleted
    /// meanwhile.
    pub fn relist_start(&mut self, kind: &'static str) {
        self.relisting.insert(kind, HashSet::new());
    }

    /// The relist of `kind` is complete: drops the objects it did not list.
    /// Without a [`ClaimsIndex::relist_start`] first, nothing is dropped.
    pub fn relist_done(&mut self, kind: &'static str) {
        let Some(seen) = self.relisting.remove(kind) else {
            return;
        };
        let gone: Vec<ObjectId> = self
            .objects
            .keys()
            .filter(|id| id.0 == kind && !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.delete(id.0, &id.1, &id.2);
        }
    }

    /// The entries with `term`, in object-name order.
    fn matching(&self, term: Term<'_>) -> Vec<&Entry> {
        let mut found: Vec<&Entry> = self
            .postings
            .get(&term.key())
            .into_iter()
            .flat_map(Posting::iter)
            .filter_map(|id| self.objects.get(id))
            .map(|o| &o.entry)
            .filter(|e| term.holds(e))
            .collect();
        found.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        found
    }

    /// The claims of kind `kind` in `namespace` on `array` that hold the
    /// given id or want the given name, in object-name order.
    pub fn claims_on(
        &self,
        kind: &'static str,
        namespace: &str,
        array: &str,
        key: ClaimKey<'_>,
    ) -> Vec<Claim> {
        let term = match key {
            ClaimKey::Id(id) => Term::Id(kind, namespace, array, id),
            ClaimKey::Name(name) => Term::Name(kind, namespace, array, name),
        };
        self.matching(term)
            .into_iter()
            .map(|e| e.claim.clone())
            .collect()
    }

    /// Every claim of kind `kind` in `namespace` on `array`, in object-name
    /// order. O(claims of that array).
    pub fn claims(&self, kind: &'static str, namespace: &str, array: &str) -> Vec<Claim> {
        self.matching(Term::Array(kind, namespace, array))
            .into_iter()
            .map(|e| e.claim.clone())
            .collect()
    }

    /// Names of the objects of kind `kind` in `namespace` that reference
    /// `array`, sorted.
    pub fn referencing(&self, kind: &'static str, namespace: &str, array: &str) -> Vec<String> {
        self.matching(Term::Array(kind, namespace, array))
            .into_iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// Names of the objects of kind `kind` in `namespace` that list Lun
    /// `lun`, sorted.
    pub fn listing(&self, kind: &'static str, namespace: &str, lun: &str) -> Vec<String> {
        self.matching(Term::Lists(kind, namespace, lun))
            .into_iter()
            .map(|e| e.name.clone())
            .collect()
    }

    /// How many objects the index holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &'static str, ns: &str, name: &str, array: &str, id: Option<&str>) -> Entry {
        Entry {
            kind,
            namespace: ns.into(),
            name: name.into(),
            array: array.into(),
            claim: Claim {
                object: format!("{kind} {ns}/{name}"),
                uid: format!("uid-{ns}-{name}"),
                created: "2026-11-30T10:00:00Z".into(),
                id: id.map(str::to_string),
                name: name.into(),
            },
            lists: Vec::new(),
        }
    }

    fn target(ns: &str, name: &str, luns: &[&str]) -> Entry {
        Entry {
            lists: luns.iter().map(|l| l.to_string()).collect(),
            ..entry("IscsiTarget", ns, name, "dsm", None)
        }
    }

    fn objects(claims: Vec<Claim>) -> Vec<String> {
        claims.into_iter().map(|c| c.object).collect()
    }

    #[test]
    fn an_applied_object_is_found_by_its_id_and_its_name_on_its_array_only() {
        let mut index = ClaimsIndex::new();
        index.apply(entry("Lun", "ns", "db", "dsm", Some("lun-1")));
        index.apply(entry("Lun", "ns", "logs", "dsm", None));
        index.apply(entry("Lun", "other", "db", "dsm", Some("lun-1")));
        index.apply(entry("IscsiTarget", "ns", "db", "dsm", Some("lun-1")));
        index.apply(entry("Lun", "ns", "web", "nas", Some("lun-1")));

        assert_eq!(
            objects(index.claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-1"))),
            ["Lun ns/db"]
        );
        assert_eq!(
            objects(index.claims_on("Lun", "ns", "dsm", ClaimKey::Name("logs"))),
            ["Lun ns/logs"]
        );
        assert!(
            index
                .claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-2"))
                .is_empty()
        );
        assert_eq!(
            objects(index.claims("Lun", "ns", "dsm")),
            ["Lun ns/db", "Lun ns/logs"]
        );
        assert_eq!(index.referencing("Lun", "ns", "nas"), ["web"]);
        assert_eq!(index.len(), 5);
    }

    #[test]
    fn a_changed_object_leaves_its_old_id_name_and_array() {
        let mut index = ClaimsIndex::new();
        index.apply(entry("Lun", "ns", "db", "dsm", None));
        // The create succeeded: the object now claims an id.
        index.apply(entry("Lun", "ns", "db", "dsm", Some("lun-1")));
        assert_eq!(
            objects(index.claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-1"))),
            ["Lun ns/db"]
        );
        // A person moved it to another array (and it claims another id).
        index.apply(entry("Lun", "ns", "db", "nas", Some("lun-9")));
        assert!(
            index
                .claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-1"))
                .is_empty()
        );
        assert!(
            index
                .claims_on("Lun", "ns", "dsm", ClaimKey::Name("db"))
                .is_empty()
        );
        assert!(index.claims("Lun", "ns", "dsm").is_empty());
        assert_eq!(
            objects(index.claims_on("Lun", "ns", "nas", ClaimKey::Id("lun-9"))),
            ["Lun ns/db"]
        );
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_deleted_object_is_gone_from_every_query() {
        let mut index = ClaimsIndex::new();
        index.apply(entry("Lun", "ns", "db", "dsm", Some("lun-1")));
        index.apply(target("ns", "t1", &["db"]));
        index.delete("Lun", "ns", "db");
        index.delete("IscsiTarget", "ns", "t1");
        assert!(
            index
                .claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-1"))
                .is_empty()
        );
        assert!(index.listing("IscsiTarget", "ns", "db").is_empty());
        assert!(index.is_empty());
        // Deleting what is not there is a no-op.
        index.delete("Lun", "ns", "never");
        assert!(index.is_empty());
    }

    #[test]
    fn two_objects_claiming_one_id_are_both_returned() {
        let mut index = ClaimsIndex::new();
        index.apply(entry("Lun", "ns", "a", "dsm", Some("lun-1")));
        index.apply(entry("Lun", "ns", "b", "dsm", Some("lun-1")));
        assert_eq!(
            objects(index.claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-1"))),
            ["Lun ns/a", "Lun ns/b"]
        );
        index.delete("Lun", "ns", "a");
        assert_eq!(
            objects(index.claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-1"))),
            ["Lun ns/b"]
        );
    }

    #[test]
    fn targets_are_found_by_the_luns_they_list_in_their_namespace() {
        let mut index = ClaimsIndex::new();
        index.apply(target("ns", "t1", &["db", "logs"]));
        index.apply(target("ns", "t2", &["logs", "logs"]));
        index.apply(target("other", "t3", &["db"]));
        assert_eq!(index.listing("IscsiTarget", "ns", "db"), ["t1"]);
        assert_eq!(index.listing("IscsiTarget", "ns", "logs"), ["t1", "t2"]);
        // t1 drops "logs" from its spec; being deleted, t2 lists nothing.
        index.apply(target("ns", "t1", &["db"]));
        index.apply(target("ns", "t2", &[]));
        assert!(index.listing("IscsiTarget", "ns", "logs").is_empty());
        assert_eq!(index.listing("IscsiTarget", "other", "db"), ["t3"]);
    }

    #[test]
    fn a_relist_drops_what_was_deleted_while_the_watch_was_down() {
        let mut index = ClaimsIndex::new();
        index.apply(entry("Lun", "ns", "kept", "dsm", Some("lun-1")));
        index.apply(entry("Lun", "ns", "gone", "dsm", Some("lun-2")));
        index.apply(target("ns", "t1", &["kept"]));
        index.relist_start("Lun");
        index.apply(entry("Lun", "ns", "kept", "dsm", Some("lun-1")));
        index.apply(entry("Lun", "ns", "new", "dsm", None));
        // Before the relist completes, nothing is dropped.
        assert_eq!(index.len(), 4);
        index.relist_done("Lun");
        assert_eq!(
            objects(index.claims("Lun", "ns", "dsm")),
            ["Lun ns/kept", "Lun ns/new"]
        );
        assert!(
            index
                .claims_on("Lun", "ns", "dsm", ClaimKey::Id("lun-2"))
                .is_empty()
        );
        // Another kind is untouched by a Lun relist.
        assert_eq!(index.listing("IscsiTarget", "ns", "kept"), ["t1"]);
        // A second done without a start drops nothing.
        index.relist_done("Lun");
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn an_empty_relist_empties_the_kind() {
        let mut index = ClaimsIndex::new();
        index.apply(entry("Lun", "ns", "a", "dsm", None));
        index.relist_start("Lun");
        index.relist_done("Lun");
        assert!(index.is_empty());
    }
}
