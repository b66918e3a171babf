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
//! Costs, with `c` the claims of one array and `t` the terms of one object
//! (its array, id, name and listed Luns: a handful):
//! - [`ClaimsIndex::apply`] and [`ClaimsIndex::delete`]: O(t log c);
//! - [`ClaimsIndex::claims_on`] (by id or by name): O(matches), not O(c);
//! - [`ClaimsIndex::listing`] (the targets listing a Lun): O(matches);
//! - a relist ([`ClaimsIndex::relist_start`] .. [`ClaimsIndex::relist_done`]):
//!   O(objects of the kind), once per watch restart.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hash;

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

/// An object: (kind, namespace, name).
type ObjectId = (&'static str, String, String);

/// What an object can be found by. Every term carries the kind and the
/// namespace, so two kinds or namespaces never meet.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Term {
    /// It references this array.
    Array(&'static str, String, String),
    /// It claims this id on this array.
    Id(&'static str, String, String, String),
    /// It wants this name on this array.
    Name(&'static str, String, String, String),
    /// It lists this Lun.
    Lists(&'static str, String, String),
}

/// A forward map (object → its terms) and its inverse (term → objects), so
/// replacing one object's terms touches only those terms.
#[derive(Debug)]
struct Inverted<O, T> {
    forward: HashMap<O, Vec<T>>,
    reverse: HashMap<T, BTreeSet<O>>,
}

impl<O, T> Default for Inverted<O, T> {
    fn default() -> Self {
        Inverted {
            forward: HashMap::new(),
            reverse: HashMap::new(),
        }
    }
}

impl<O: Clone + Ord + Hash, T: Clone + Eq + Hash> Inverted<O, T> {
    fn remove(&mut self, object: &O) {
        for term in self.forward.remove(object).unwrap_or_default() {
            if let Some(set) = self.reverse.get_mut(&term) {
                set.remove(object);
                if set.is_empty() {
                    self.reverse.remove(&term);
                }
            }
        }
    }

    fn set(&mut self, object: O, terms: Vec<T>) {
        self.remove(&object);
        for term in &terms {
            self.reverse
                .entry(term.clone())
                .or_default()
                .insert(object.clone());
        }
        self.forward.insert(object, terms);
    }

    fn get(&self, term: &T) -> impl Iterator<Item = &O> {
        self.reverse.get(term).into_iter().flatten()
    }
}

/// The index. See the module documentation for the costs.
#[derive(Debug, Default)]
pub struct ClaimsIndex {
    claims: HashMap<ObjectId, Claim>,
    terms: Inverted<ObjectId, Term>,
    /// Per kind being relisted: the objects the relist has applied so far.
    relisting: HashMap<&'static str, HashSet<(String, String)>>,
}

impl ClaimsIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An object was added or changed: it replaces what the index held for
    /// it (it may have moved to another array, or changed its id or name).
    pub fn apply(&mut self, entry: Entry) {
        let id: ObjectId = (entry.kind, entry.namespace.clone(), entry.name.clone());
        if let Some(seen) = self.relisting.get_mut(entry.kind) {
            seen.insert((entry.namespace.clone(), entry.name.clone()));
        }
        let (kind, ns, array) = (entry.kind, &entry.namespace, &entry.array);
        let mut terms = vec![
            Term::Array(kind, ns.clone(), array.clone()),
            Term::Name(kind, ns.clone(), array.clone(), entry.claim.name.clone()),
        ];
        if let Some(claimed) = &entry.claim.id {
            terms.push(Term::Id(kind, ns.clone(), array.clone(), claimed.clone()));
        }
        let lists: BTreeSet<&String> = entry.lists.iter().collect();
        terms.extend(
            lists
                .into_iter()
                .map(|lun| Term::Lists(kind, ns.clone(), lun.clone())),
        );
        self.terms.set(id.clone(), terms);
        self.claims.insert(id, entry.claim);
    }

    /// An object is gone.
    pub fn delete(&mut self, kind: &'static str, namespace: &str, name: &str) {
        let id: ObjectId = (kind, namespace.to_string(), name.to_string());
        self.terms.remove(&id);
        self.claims.remove(&id);
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
            .claims
            .keys()
            .filter(|(k, ns, name)| *k == kind && !seen.contains(&(ns.clone(), name.clone())))
            .cloned()
            .collect();
        for (k, ns, name) in gone {
            self.delete(k, &ns, &name);
        }
    }

    fn claims_of<'a>(&'a self, ids: impl Iterator<Item = &'a ObjectId>) -> Vec<Claim> {
        ids.filter_map(|id| self.claims.get(id)).cloned().collect()
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
        let (ns, array) = (namespace.to_string(), array.to_string());
        let term = match key {
            ClaimKey::Id(id) => Term::Id(kind, ns, array, id.to_string()),
            ClaimKey::Name(name) => Term::Name(kind, ns, array, name.to_string()),
        };
        self.claims_of(self.terms.get(&term))
    }

    /// Every claim of kind `kind` in `namespace` on `array`, in object-name
    /// order. O(claims of that array).
    pub fn claims(&self, kind: &'static str, namespace: &str, array: &str) -> Vec<Claim> {
        self.claims_of(
            self.terms
                .get(&Term::Array(kind, namespace.to_string(), array.to_string())),
        )
    }

    /// Names of the objects of kind `kind` in `namespace` that reference
    /// `array`, sorted.
    pub fn referencing(&self, kind: &'static str, namespace: &str, array: &str) -> Vec<String> {
        self.terms
            .get(&Term::Array(kind, namespace.to_string(), array.to_string()))
            .map(|(_, _, name)| name.clone())
            .collect()
    }

    /// Names of the objects of kind `kind` in `namespace` that list Lun
    /// `lun`, sorted.
    pub fn listing(&self, kind: &'static str, namespace: &str, lun: &str) -> Vec<String> {
        self.terms
            .get(&Term::Lists(kind, namespace.to_string(), lun.to_string()))
            .map(|(_, _, name)| name.clone())
            .collect()
    }

    /// How many objects the index holds.
    pub fn len(&self) -> usize {
        self.claims.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
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
