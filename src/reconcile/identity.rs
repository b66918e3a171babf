//! Which array object a Kubernetes object stands for: adoption by
//! external-name, crash-safe create, and name clashes (PRODUCT.md section 3).
//!
//! The rules, in order:
//! 1. `external-name` set: that id is the object. If the array has it, it is
//!    the object; if not, an object the operator created is created again
//!    (it was removed out of band), and an adopted one is reported missing.
//! 2. No id, but `external-create-pending` newer than any
//!    `external-create-succeeded`/`-failed`: a create may have happened before
//!    a crash. An array object with the name is that create's result.
//! 3. No id: an array object with the name belongs to someone else
//!    (`AlreadyExists`); otherwise create it.

use std::collections::BTreeMap;

use crate::crd::shared::{
    ANNOTATION_CREATE_FAILED, ANNOTATION_CREATE_PENDING, ANNOTATION_CREATE_SUCCEEDED,
    ANNOTATION_EXTERNAL_NAME,
};

/// What the annotations say about earlier create calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateRecord {
    /// The id recorded in `external-name`.
    pub external_name: Option<String>,
    /// Timestamp of the last create call started.
    pub pending: Option<String>,
    /// Timestamp of the last create call that succeeded.
    pub succeeded: Option<String>,
    /// Timestamp of the last create call that failed.
    pub failed: Option<String>,
}

impl CreateRecord {
    /// Reads the record from an object's annotations.
    pub fn from_annotations(annotations: &BTreeMap<String, String>) -> Self {
        let get = |k: &str| annotations.get(k).filter(|v| !v.is_empty()).cloned();
        CreateRecord {
            external_name: get(ANNOTATION_EXTERNAL_NAME),
            pending: get(ANNOTATION_CREATE_PENDING),
            succeeded: get(ANNOTATION_CREATE_SUCCEEDED),
            failed: get(ANNOTATION_CREATE_FAILED),
        }
    }

    /// True when a create call was started and neither its success nor its
    /// failure was recorded: the operator stopped in between. Timestamps are
    /// RFC 3339 in UTC, so they order as strings.
    pub fn create_in_doubt(&self) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        let settled_after = |t: &Option<String>| t.as_ref().is_some_and(|t| t >= pending);
        !settled_after(&self.succeeded) && !settled_after(&self.failed)
    }

    /// True when the operator created the array object (rather than adopting
    /// it): it decides the default deletionPolicy.
    pub fn created_by_operator(&self) -> bool {
        self.succeeded.is_some()
    }
}

/// The array-side facts identity depends on, from the shared observation.
pub trait ArrayIndex {
    /// True when an object with this id exists.
    fn has_id(&self, id: &str) -> bool;
    /// The id of the object with this name, if any.
    fn id_by_name(&self, name: &str) -> Option<String>;
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The object is the array object with this id.
    Existing {
        /// The array-side id.
        id: String,
        /// True when it was found by name after an interrupted create, so the
        /// id still has to be recorded.
        recovered: bool,
    },
    /// No array object yet: create one.
    Create,
    /// The operator created the object, but it is gone from the array.
    /// Created again, and announced.
    Recreate {
        /// The id that disappeared.
        lost_id: String,
    },
    /// An adopted id that the array does not have.
    AdoptedMissing {
        /// The id named in `external-name`.
        id: String,
    },
    /// Another object of that name exists and was not adopted.
    AlreadyExists {
        /// Its id, for the message.
        existing_id: String,
    },
}

/// Decides which array object `name` stands for.
pub fn resolve(record: &CreateRecord, name: &str, array: &impl ArrayIndex) -> Identity {
    if let Some(id) = &record.external_name {
        if array.has_id(id) {
            return Identity::Existing {
                id: id.clone(),
                recovered: false,
            };
        }
        return if record.created_by_operator() {
            Identity::Recreate {
                lost_id: id.clone(),
            }
        } else {
            Identity::AdoptedMissing { id: id.clone() }
        };
    }
    match array.id_by_name(name) {
        Some(id) if record.create_in_doubt() => Identity::Existing {
            id,
            recovered: true,
        },
        Some(existing_id) => Identity::AlreadyExists { existing_id },
        None => Identity::Create,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Index(BTreeMap<String, String>);

    impl ArrayIndex for Index {
        fn has_id(&self, id: &str) -> bool {
            self.0.values().any(|v| v == id)
        }
        fn id_by_name(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn index(pairs: &[(&str, &str)]) -> Index {
        Index(
            pairs
                .iter()
                .map(|(n, i)| (n.to_string(), i.to_string()))
                .collect(),
        )
    }

    const T1: &str = "2026-11-22T10:00:00Z";
    const T2: &str = "2026-11-22T10:00:05Z";

    fn record(
        ext: Option<&str>,
        pending: Option<&str>,
        ok: Option<&str>,
        failed: Option<&str>,
    ) -> CreateRecord {
        CreateRecord {
            external_name: ext.map(str::to_string),
            pending: pending.map(str::to_string),
            succeeded: ok.map(str::to_string),
            failed: failed.map(str::to_string),
        }
    }

    #[test]
    fn a_new_object_with_a_free_name_is_created() {
        assert_eq!(
            resolve(&CreateRecord::default(), "a", &index(&[])),
            Identity::Create
        );
    }

    #[test]
    fn a_name_clash_without_external_name_is_never_taken_over() {
        let got = resolve(&CreateRecord::default(), "a", &index(&[("a", "id-1")]));
        assert_eq!(
            got,
            Identity::AlreadyExists {
                existing_id: "id-1".into()
            }
        );
        // A create that is known to have failed does not make the name ours.
        let failed = record(None, Some(T1), None, Some(T2));
        assert!(!failed.create_in_doubt());
        assert_eq!(
            resolve(&failed, "a", &index(&[("a", "id-1")])),
            Identity::AlreadyExists {
                existing_id: "id-1".into()
            }
        );
    }

    #[test]
    fn external_name_adopts_the_object_with_that_id() {
        let r = record(Some("id-9"), None, None, None);
        assert_eq!(
            resolve(&r, "whatever", &index(&[("other-name", "id-9")])),
            Identity::Existing {
                id: "id-9".into(),
                recovered: false
            }
        );
        assert!(!r.created_by_operator());
    }

    #[test]
    fn a_pending_create_is_recovered_by_name_instead_of_created_twice() {
        let r = record(None, Some(T2), None, None);
        assert!(r.create_in_doubt());
        assert_eq!(
            resolve(&r, "a", &index(&[("a", "id-1")])),
            Identity::Existing {
                id: "id-1".into(),
                recovered: true
            }
        );
        // The create never reached the array: create now.
        assert_eq!(resolve(&r, "a", &index(&[])), Identity::Create);
        // A later pending than the last success is in doubt again.
        let again = record(None, Some(T2), Some(T1), None);
        assert!(again.create_in_doubt());
    }

    #[test]
    fn a_lost_object_is_recreated_only_when_the_operator_created_it() {
        let ours = record(Some("id-1"), Some(T1), Some(T2), None);
        assert_eq!(
            resolve(&ours, "a", &index(&[])),
            Identity::Recreate {
                lost_id: "id-1".into()
            }
        );
        let adopted = record(Some("id-1"), None, None, None);
        assert_eq!(
            resolve(&adopted, "a", &index(&[])),
            Identity::AdoptedMissing { id: "id-1".into() }
        );
    }

    #[test]
    fn annotations_are_read_by_their_names_and_empty_values_ignored() {
        let mut a = BTreeMap::new();
        a.insert(ANNOTATION_EXTERNAL_NAME.to_string(), "id-3".to_string());
        a.insert(ANNOTATION_CREATE_PENDING.to_string(), String::new());
        let r = CreateRecord::from_annotations(&a);
        assert_eq!(r.external_name.as_deref(), Some("id-3"));
        assert_eq!(r.pending, None);
    }
}
