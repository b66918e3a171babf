//! One array object, one claimant: the index over every object of a kind
//! on one array that decides who may act on an array id. Pure: the engine
//! builds the claims from the watched objects and asks before any mutating
//! call.

use std::collections::BTreeMap;

use super::identity::CreateRecord;

/// What one Kubernetes object claims on its array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// `Kind namespace/name`, for messages.
    pub object: String,
    /// The object's UID.
    pub uid: String,
    /// Its creationTimestamp (RFC 3339; orders as a string), the tie-break
    /// between two recorded claims.
    pub created: String,
    /// The array id it claims, when it has one.
    pub id: Option<String>,
    /// The array-side name it wants.
    pub name: String,
}

/// The id an object claims: its own `external-name` (not one copied from
/// another object), else the id its status recorded.
pub fn claimed_id(
    annotations: &BTreeMap<String, String>,
    uid: &str,
    status_external_id: Option<&str>,
) -> Option<String> {
    let record = CreateRecord::from_annotations(annotations, uid);
    if record.copied_from.is_some() {
        // A copy has recorded nothing of its own yet (status is never
        // copied by apply): no claim.
        return None;
    }
    record
        .external_name
        .or_else(|| status_external_id.map(str::to_string))
        .filter(|s| !s.is_empty())
}

/// Another object that holds the array object `id` before `me` does, if
/// any. A recorded claim (`recorded`: `me` has the id in its external-name
/// or status) yields only to an older recorded claim; an unrecorded one (a
/// create in doubt found by name) yields to any other claim.
pub fn holder<'a>(claims: &'a [Claim], me: &Claim, id: &str, recorded: bool) -> Option<&'a Claim> {
    claims
        .iter()
        .filter(|c| c.uid != me.uid && c.id.as_deref() == Some(id))
        .filter(|c| {
            !recorded
                || (c.created.as_str(), c.uid.as_str()) < (me.created.as_str(), me.uid.as_str())
        })
        .min_by(|a, b| {
            (a.created.as_str(), a.uid.as_str()).cmp(&(b.created.as_str(), b.uid.as_str()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::identity::{pending_annotations, succeeded_annotations};

    fn claim(uid: &str, created: &str, id: Option<&str>) -> Claim {
        Claim {
            object: format!("Lun ns/{uid}"),
            uid: uid.into(),
            created: created.into(),
            id: id.map(str::to_string),
            name: uid.into(),
        }
    }

    #[test]
    fn the_older_recorded_claim_holds_the_id() {
        let a = claim("a", "2026-01-01T00:00:00Z", Some("x"));
        let b = claim("b", "2026-01-02T00:00:00Z", Some("x"));
        let all = vec![a.clone(), b.clone()];
        assert_eq!(holder(&all, &a, "x", true), None);
        assert_eq!(holder(&all, &b, "x", true), Some(&a));
        // Other ids do not matter.
        assert_eq!(holder(&all, &b, "y", true), None);
    }

    #[test]
    fn an_unrecorded_claim_yields_to_any_recorded_one() {
        let older = claim("a", "2026-01-01T00:00:00Z", None);
        let newer = claim("b", "2026-01-02T00:00:00Z", Some("x"));
        let all = vec![older.clone(), newer.clone()];
        assert_eq!(holder(&all, &older, "x", false), Some(&newer));
    }

    #[test]
    fn a_copied_external_name_is_not_a_claim_but_an_own_record_is() {
        let t1 = "2026-11-22T10:00:00.000000000Z";
        let original: BTreeMap<String, String> = pending_annotations("u1", t1, "a")
            .into_iter()
            .chain(succeeded_annotations("u1", t1, "id-1"))
            .collect();
        assert_eq!(claimed_id(&original, "u1", None).as_deref(), Some("id-1"));
        assert_eq!(claimed_id(&original, "u2", None), None);
        let adopted = BTreeMap::from([(
            crate::crd::shared::ANNOTATION_EXTERNAL_NAME.to_string(),
            "id-7".to_string(),
        )]);
        assert_eq!(claimed_id(&adopted, "u3", None).as_deref(), Some("id-7"));
        assert_eq!(
            claimed_id(&BTreeMap::new(), "u4", Some("id-8")).as_deref(),
            Some("id-8")
        );
    }
}
