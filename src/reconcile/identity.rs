//! Which array object a Kubernetes object stands for: the ownership
//! protocol (PRODUCT.md section 3; issue 9).
//!
//! The operator keeps its create records in annotations, each bound to the
//! object's UID, so that annotations copied with a manifest (a
//! `kubectl get -o yaml` pasted under a new name) are not a claim:
//! - `external-create-pending: "<time> uid=<uid>"`: a create call is about
//!   to be made;
//! - `external-create-succeeded: "<time> uid=<uid> id=<id>"`: it made `<id>`;
//! - `external-create-failed: "<time> uid=<uid>"`: it made nothing.
//!
//! The rules, in order:
//! 1. **In doubt first.** A pending record of this object newer than its
//!    last settled one means a create may have happened. An array object
//!    with the name is that create's result; no such object on a list made
//!    after the create means it did not happen. Either way the doubt is
//!    settled now, before anything else (a recreate included).
//! 2. **external-name.** The id it names is the object, unless the
//!    annotations were copied from another object (a record bound to
//!    another UID and none to this one): then it is not a claim at all. A
//!    missing id is created again only if this object created it (its
//!    succeeded record names that very id); an adopted one is reported.
//! 3. **The name.** An array object with the name belongs to someone else
//!    (`AlreadyExists`) unless rule 1 proved it ours; otherwise create.
//!
//! Who else claims the same array object is the claims index's business
//! ([`super::claims`]), checked before any mutating call.

use std::collections::BTreeMap;

use crate::crd::shared::{
    ANNOTATION_CREATE_FAILED, ANNOTATION_CREATE_PENDING, ANNOTATION_CREATE_SUCCEEDED,
    ANNOTATION_EXTERNAL_NAME,
};

/// One operator-written create record: when, by which object, and (for a
/// success) which id it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// RFC 3339 UTC time with nine fractional digits (orders as a string).
    pub at: String,
    /// UID of the object that wrote it; `None` for records written before
    /// UIDs were recorded (taken as this object's own).
    pub uid: Option<String>,
    /// The id a successful create made.
    pub id: Option<String>,
    /// The array-side name a create was about to use: a create in doubt is
    /// looked for under this name, not under a spec.name changed since.
    pub name: Option<String>,
    /// The array's task that runs a create accepted but not finished (a
    /// VMM guest create): the object waits for it, and shows its progress.
    pub task: Option<String>,
}

impl Stamp {
    /// Parses `"<time>[ uid=<uid>][ id=<id>][ name=<name>][ task=<task>]"`.
    pub fn parse(value: &str) -> Option<Stamp> {
        let mut parts = value.split_whitespace();
        let at = parts.next()?.to_string();
        let mut stamp = Stamp {
            at,
            uid: None,
            id: None,
            name: None,
            task: None,
        };
        for part in parts {
            if let Some(uid) = part.strip_prefix("uid=") {
                stamp.uid = Some(uid.to_string());
            } else if let Some(id) = part.strip_prefix("id=") {
                stamp.id = Some(id.to_string());
            } else if let Some(name) = part.strip_prefix("name=") {
                stamp.name = Some(name.to_string());
            } else if let Some(task) = part.strip_prefix("task=") {
                stamp.task = Some(task.to_string());
            }
        }
        Some(stamp)
    }

    /// The annotation value.
    pub fn render(&self) -> String {
        let mut s = self.at.clone();
        if let Some(uid) = &self.uid {
            s.push_str(" uid=");
            s.push_str(uid);
        }
        if let Some(id) = &self.id {
            s.push_str(" id=");
            s.push_str(id);
        }
        if let Some(name) = &self.name {
            s.push_str(" name=");
            s.push_str(name);
        }
        if let Some(task) = &self.task {
            s.push_str(" task=");
            s.push_str(task);
        }
        s
    }

    fn is_of(&self, uid: &str) -> bool {
        self.uid.as_deref().is_none_or(|u| u == uid)
    }
}

/// What the annotations say about earlier create calls, as seen by the
/// object with UID `uid`: records of other UIDs are set aside.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateRecord {
    /// The id in `external-name`, when it is this object's claim (not
    /// copied from another object).
    pub external_name: Option<String>,
    /// This object's last create call started.
    pub pending: Option<Stamp>,
    /// This object's last create call that succeeded.
    pub succeeded: Option<Stamp>,
    /// This object's last create call that made nothing.
    pub failed: Option<Stamp>,
    /// The records were written for another object (a copied manifest).
    pub copied_from: Option<String>,
    /// The external-name set aside because it was copied.
    pub copied_external_name: Option<String>,
}

impl CreateRecord {
    /// Reads the record of the object with UID `uid` from its annotations.
    pub fn from_annotations(annotations: &BTreeMap<String, String>, uid: &str) -> Self {
        let get = |k: &str| {
            annotations
                .get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let stamp = |k: &str| get(k).and_then(Stamp::parse);
        let stamps = [
            stamp(ANNOTATION_CREATE_PENDING),
            stamp(ANNOTATION_CREATE_SUCCEEDED),
            stamp(ANNOTATION_CREATE_FAILED),
        ];
        let foreign = stamps
            .iter()
            .flatten()
            .find(|s| !s.is_of(uid))
            .and_then(|s| s.uid.clone());
        let own = |s: Option<Stamp>| s.filter(|s| s.is_of(uid));
        let [pending, succeeded, failed] = stamps;
        let foreign_success = succeeded.clone().filter(|s| !s.is_of(uid));
        let pending = own(pending);
        let succeeded = own(succeeded);
        let failed = own(failed);
        let has_own = pending.is_some() || succeeded.is_some() || failed.is_some();
        let external_name = get(ANNOTATION_EXTERNAL_NAME).map(str::to_string);
        // A copied manifest carries another object's records: an
        // external-name that another object's create recorded is that
        // object's, not a claim, even after the copy starts a create of
        // its own; with only another object's records and none of its own,
        // nothing it carries is a claim.
        let recorded_elsewhere = match (&external_name, &foreign_success) {
            (Some(ext), Some(fs)) => fs.id.as_ref().is_none_or(|id| id == ext),
            _ => false,
        };
        let copied = recorded_elsewhere || (foreign.is_some() && !has_own);
        CreateRecord {
            external_name: if copied { None } else { external_name.clone() },
            pending,
            succeeded,
            failed,
            copied_external_name: if copied { external_name } else { None },
            copied_from: if copied {
                foreign_success.and_then(|s| s.uid).or(foreign)
            } else {
                None
            },
        }
    }

    /// True when a create call was started and neither its success nor its
    /// failure was recorded: the operator stopped (or lost the answer) in
    /// between.
    pub fn create_in_doubt(&self) -> bool {
        let Some(pending) = &self.pending else {
            return false;
        };
        let settled_after = |s: &Option<Stamp>| s.as_ref().is_some_and(|s| s.at >= pending.at);
        !settled_after(&self.succeeded) && !settled_after(&self.failed)
    }

    /// True when this object created the array object it now names (rather
    /// than adopting it): it decides the default deletionPolicy. A create in
    /// doubt counts, so that a lost record never turns into a leak.
    pub fn created_by_operator(&self) -> bool {
        if self.create_in_doubt() {
            return true;
        }
        match (&self.succeeded, &self.external_name) {
            (Some(s), Some(ext)) => s.id.as_ref().is_none_or(|id| id == ext),
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// The array-side facts identity depends on, from the shared observation.
pub trait ArrayIndex {
    /// True when an object with this id exists.
    fn has_id(&self, id: &str) -> bool;
    /// The id of the object with this name, if any.
    fn id_by_name(&self, name: &str) -> Option<String>;
}

/// How long after its pending record a create's result may be found by
/// name and taken as that create's. A create call answers within seconds
/// and the next pass follows within minutes; an object of the name found
/// later than this may as well be someone else's, so it is not taken
/// without a person's word.
pub const DOUBT_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The object is the array object with this id.
    Existing {
        /// The array-side id.
        id: String,
        /// True when it was found by name after a create in doubt, so the
        /// id still has to be recorded.
        recovered: bool,
    },
    /// A create in doubt did not happen (no object of the name on a list
    /// made after it): record that, then decide again.
    NotCreated,
    /// A create in doubt is older than [`DOUBT_WINDOW`] and an object of the
    /// name exists: it cannot be proven to be that create's result.
    Unprovable {
        /// The id of the object found.
        id: String,
        /// When the create was recorded.
        pending_at: String,
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

/// Decides which array object `name` stands for at time `now`. `array`
/// must have been listed after the last create call this process made for
/// the object (the engine drops its view after an ambiguous create).
pub fn resolve(
    record: &CreateRecord,
    name: &str,
    array: &impl ArrayIndex,
    now: chrono::DateTime<chrono::Utc>,
) -> Identity {
    if let Some(pending) = record.pending.as_ref().filter(|_| record.create_in_doubt()) {
        let recent = chrono::DateTime::parse_from_rfc3339(&pending.at)
            .is_ok_and(|at| now.signed_duration_since(at) <= DOUBT_WINDOW);
        let name = pending.name.as_deref().unwrap_or(name);
        return match array.id_by_name(name) {
            Some(id) if recent => Identity::Existing {
                id,
                recovered: true,
            },
            Some(id) => Identity::Unprovable {
                id,
                pending_at: pending.at.clone(),
            },
            None => Identity::NotCreated,
        };
    }
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
        Some(existing_id) => Identity::AlreadyExists { existing_id },
        None => Identity::Create,
    }
}

/// The annotations that record a create call about to be made under the
/// array-side name `name`.
pub fn pending_annotations(uid: &str, at: &str, name: &str) -> BTreeMap<String, String> {
    let stamp = Stamp {
        at: at.to_string(),
        uid: Some(uid.to_string()),
        id: None,
        name: Some(name.to_string()),
        task: None,
    };
    BTreeMap::from([(ANNOTATION_CREATE_PENDING.to_string(), stamp.render())])
}

/// The pending record of a create whose call returned while the array
/// still runs it as `task`: the same record, naming the task.
pub fn pending_task_annotations(pending: &Stamp, task: &str) -> BTreeMap<String, String> {
    let stamp = Stamp {
        task: Some(task.to_string()),
        ..pending.clone()
    };
    BTreeMap::from([(ANNOTATION_CREATE_PENDING.to_string(), stamp.render())])
}

/// The annotations that record a create that made `id`.
pub fn succeeded_annotations(uid: &str, at: &str, id: &str) -> BTreeMap<String, String> {
    let stamp = Stamp {
        at: at.to_string(),
        uid: Some(uid.to_string()),
        id: Some(id.to_string()),
        name: None,
        task: None,
    };
    BTreeMap::from([
        (ANNOTATION_EXTERNAL_NAME.to_string(), id.to_string()),
        (ANNOTATION_CREATE_SUCCEEDED.to_string(), stamp.render()),
    ])
}

/// The record of a create that made `id`, without claiming it in
/// `external-name`: for a create in doubt settled after the user pointed
/// `external-name` elsewhere.
pub fn succeeded_stamp(uid: &str, at: &str, id: &str) -> BTreeMap<String, String> {
    let mut a = succeeded_annotations(uid, at, id);
    a.remove(ANNOTATION_EXTERNAL_NAME);
    a
}

/// The annotations that record a create that made nothing.
pub fn failed_annotations(uid: &str, at: &str) -> BTreeMap<String, String> {
    let stamp = Stamp {
        at: at.to_string(),
        uid: Some(uid.to_string()),
        id: None,
        name: None,
        task: None,
    };
    BTreeMap::from([(ANNOTATION_CREATE_FAILED.to_string(), stamp.render())])
}

#[cfg(test)]
mod tests {
    use super::*;

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

    const UID: &str = "uid-a";

    fn now() -> chrono::DateTime<chrono::Utc> {
        "2026-11-22T10:01:00Z".parse().expect("time")
    }
    const T1: &str = "2026-11-22T10:00:00.000000000Z";
    const T2: &str = "2026-11-22T10:00:05.000000000Z";

    fn annotations(pairs: &[BTreeMap<String, String>]) -> BTreeMap<String, String> {
        pairs.iter().flat_map(|m| m.clone()).collect()
    }

    fn with_ext(mut a: BTreeMap<String, String>, id: &str) -> BTreeMap<String, String> {
        a.insert(ANNOTATION_EXTERNAL_NAME.into(), id.into());
        a
    }

    #[test]
    fn a_new_object_with_a_free_name_is_created() {
        assert_eq!(
            resolve(&CreateRecord::default(), "a", &index(&[]), now()),
            Identity::Create
        );
    }

    #[test]
    fn a_name_clash_without_external_name_is_never_taken_over() {
        let got = resolve(
            &CreateRecord::default(),
            "a",
            &index(&[("a", "id-1")]),
            now(),
        );
        assert_eq!(
            got,
            Identity::AlreadyExists {
                existing_id: "id-1".into()
            }
        );
        let a = annotations(&[
            pending_annotations(UID, T1, "a"),
            failed_annotations(UID, T2),
        ]);
        let failed = CreateRecord::from_annotations(&a, UID);
        assert!(!failed.create_in_doubt());
        assert_eq!(
            resolve(&failed, "a", &index(&[("a", "id-1")]), now()),
            Identity::AlreadyExists {
                existing_id: "id-1".into()
            }
        );
    }

    #[test]
    fn external_name_alone_adopts_and_defaults_to_retain() {
        let a = with_ext(BTreeMap::new(), "id-9");
        let r = CreateRecord::from_annotations(&a, UID);
        assert_eq!(
            resolve(&r, "whatever", &index(&[("other-name", "id-9")]), now()),
            Identity::Existing {
                id: "id-9".into(),
                recovered: false
            }
        );
        assert!(!r.created_by_operator());
    }

    #[test]
    fn a_create_in_doubt_is_settled_before_anything_else() {
        let a = annotations(&[pending_annotations(UID, T2, "a")]);
        let r = CreateRecord::from_annotations(&a, UID);
        assert!(r.create_in_doubt());
        assert!(r.created_by_operator(), "a lost record must not leak");
        assert_eq!(
            resolve(&r, "a", &index(&[("a", "id-1")]), now()),
            Identity::Existing {
                id: "id-1".into(),
                recovered: true
            }
        );
        assert_eq!(resolve(&r, "a", &index(&[]), now()), Identity::NotCreated);
        // A recreate in doubt is settled the same way, not recreated again.
        let a = annotations(&[
            succeeded_annotations(UID, T1, "id-old"),
            pending_annotations(UID, T2, "a"),
        ]);
        let r = CreateRecord::from_annotations(&a, UID);
        assert_eq!(
            resolve(&r, "a", &index(&[("a", "id-new")]), now()),
            Identity::Existing {
                id: "id-new".into(),
                recovered: true
            }
        );
        assert_eq!(resolve(&r, "a", &index(&[]), now()), Identity::NotCreated);
    }

    #[test]
    fn a_lost_object_is_recreated_only_when_the_operator_created_that_id() {
        let ours = CreateRecord::from_annotations(
            &annotations(&[
                pending_annotations(UID, T1, "a"),
                succeeded_annotations(UID, T2, "id-1"),
            ]),
            UID,
        );
        assert_eq!(
            resolve(&ours, "a", &index(&[]), now()),
            Identity::Recreate {
                lost_id: "id-1".into()
            }
        );
        let adopted = CreateRecord::from_annotations(&with_ext(BTreeMap::new(), "id-1"), UID);
        assert_eq!(
            resolve(&adopted, "a", &index(&[]), now()),
            Identity::AdoptedMissing { id: "id-1".into() }
        );
    }

    #[test]
    fn a_repointed_external_name_is_adopted_not_owned() {
        let mut a = annotations(&[
            pending_annotations(UID, T1, "a"),
            succeeded_annotations(UID, T2, "id-1"),
        ]);
        a.insert(ANNOTATION_EXTERNAL_NAME.into(), "id-foreign".into());
        let r = CreateRecord::from_annotations(&a, UID);
        assert_eq!(r.external_name.as_deref(), Some("id-foreign"));
        assert!(
            !r.created_by_operator(),
            "deleting must not default to Delete"
        );
        assert_eq!(
            resolve(&r, "a", &index(&[]), now()),
            Identity::AdoptedMissing {
                id: "id-foreign".into()
            }
        );
    }

    #[test]
    fn copied_annotations_are_not_a_claim() {
        let original = annotations(&[
            pending_annotations("uid-original", T1, "a"),
            succeeded_annotations("uid-original", T2, "id-1"),
        ]);
        let copy = CreateRecord::from_annotations(&original, "uid-copy");
        assert_eq!(copy.external_name, None);
        assert_eq!(copy.copied_external_name.as_deref(), Some("id-1"));
        assert_eq!(copy.copied_from.as_deref(), Some("uid-original"));
        assert!(!copy.create_in_doubt());
        assert!(!copy.created_by_operator());
        // Under a new name it gets a LUN of its own; under the same name it
        // clashes instead of taking the original's.
        assert_eq!(
            resolve(&copy, "copy", &index(&[("orig", "id-1")]), now()),
            Identity::Create
        );
        assert_eq!(
            resolve(&copy, "orig", &index(&[("orig", "id-1")]), now()),
            Identity::AlreadyExists {
                existing_id: "id-1".into()
            }
        );
        // The original still owns it.
        let orig = CreateRecord::from_annotations(&original, "uid-original");
        assert_eq!(orig.external_name.as_deref(), Some("id-1"));
        assert!(orig.created_by_operator());
    }

    #[test]
    fn stamps_round_trip_and_legacy_records_count_as_own() {
        let s = Stamp {
            at: T1.into(),
            uid: Some("u".into()),
            id: Some("x-1".into()),
            name: Some("db".into()),
            task: Some("@users/virtualization_api_guest_create5BB3389D".into()),
        };
        assert_eq!(Stamp::parse(&s.render()), Some(s.clone()));
        let pending = pending_task_annotations(&s, "@users/t2");
        let again = Stamp::parse(&pending[ANNOTATION_CREATE_PENDING]).expect("parses");
        assert_eq!(again.task.as_deref(), Some("@users/t2"));
        assert_eq!((again.at, again.name), (s.at, s.name));
        let mut a = BTreeMap::new();
        a.insert(ANNOTATION_CREATE_PENDING.to_string(), T1.to_string());
        let r = CreateRecord::from_annotations(&a, UID);
        assert!(r.create_in_doubt());
        a.insert(ANNOTATION_EXTERNAL_NAME.to_string(), String::new());
        assert_eq!(CreateRecord::from_annotations(&a, UID).external_name, None);
    }

    #[test]
    fn an_old_pending_never_adopts_a_same_named_object() {
        let a = annotations(&[pending_annotations(UID, T2, "a")]);
        let r = CreateRecord::from_annotations(&a, UID);
        let later = now() + DOUBT_WINDOW + chrono::Duration::minutes(1);
        assert_eq!(
            resolve(&r, "a", &index(&[("a", "id-1")]), later),
            Identity::Unprovable {
                id: "id-1".into(),
                pending_at: T2.into()
            }
        );
        // Nothing of the name: the create did not happen, however old.
        assert_eq!(resolve(&r, "a", &index(&[]), later), Identity::NotCreated);
    }

    #[test]
    fn a_create_in_doubt_is_looked_for_under_the_name_it_used() {
        let a = annotations(&[pending_annotations(UID, T2, "old")]);
        let r = CreateRecord::from_annotations(&a, UID);
        // spec.name changed to a foreign LUN's name since: not taken.
        assert_eq!(
            resolve(&r, "foreign", &index(&[("foreign", "id-f")]), now()),
            Identity::NotCreated
        );
        assert_eq!(
            resolve(&r, "foreign", &index(&[("old", "id-1")]), now()),
            Identity::Existing {
                id: "id-1".into(),
                recovered: true
            }
        );
    }

    #[test]
    fn a_copy_that_starts_its_own_create_still_does_not_claim_the_copied_id() {
        let mut a = annotations(&[
            pending_annotations("uid-original", T1, "orig"),
            succeeded_annotations("uid-original", T1, "id-1"),
        ]);
        a.extend(pending_annotations("uid-copy", T2, "copy"));
        let copy = CreateRecord::from_annotations(&a, "uid-copy");
        assert_eq!(copy.external_name, None);
        assert!(copy.create_in_doubt());
        assert_eq!(
            resolve(&copy, "copy", &index(&[("orig", "id-1")]), now()),
            Identity::NotCreated
        );
    }
}
