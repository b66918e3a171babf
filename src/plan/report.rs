//! What a plan found: per array, whether it answered; per object, the calls
//! the operator would make, the fields that differ, or why it would refuse.
//!
//! The JSON form (`plan -o json`) is this module's types as serde writes
//! them, with `"version": 1`; fields are only ever added. Shape:
//!
//! ```text
//! { "version": 1, "exitCode": 0|1|2,
//!   "summary": { "objects", "changes", "inSync", "refused", "waiting" },
//!   "ignored": ["Namespace storage", ...],
//!   "arrays":  [ { "namespace", "name", "vendor", "endpoint", "simulated",
//!                  "reachable", "version"?, "error"? } ],
//!   "objects": [ { "kind", "namespace", "name", "array", "verdict",
//!                  "calls":   [ { "action", "reason", "note" } ],
//!                  "changes": [ { "field", "from", "to", "correctable" } ],
//!                  "reason"?, "message"?, "notes": [..] } ] }
//! ```
//!
//! `verdict` is `InSync`, `Changes`, `Drifted` (differences the operator
//! only reports: `managementPolicy: Observe`, or a field no call can
//! change), `Waiting`, `Paused` or `Refused`; `reason` and `message` are
//! the `Synced` condition the controller would write, or for a manifest
//! the CRD schema refuses (the apiserver would answer 422 and store
//! nothing), reason [`SCHEMA_INVALID`] and the apiserver's failures joined
//! with `"; "`. Such an object may be a StorageArray (`array` is then its
//! own name); it is never planned and no array is called for it.

use serde::Serialize;

/// The version of the JSON shape.
pub const JSON_VERSION: u32 = 1;

/// The reason of a refusal by the CRD schema (OpenAPI or CEL rule): the
/// apiserver would refuse the manifest on create, so the operator would
/// never see it. Plan only; no controller writes it.
pub const SCHEMA_INVALID: &str = "SchemaInvalid";

/// One call the operator would make.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Call {
    /// `Create`, `Resize`, `Map`, `Sync`, ...
    pub action: String,
    /// The Event reason it would publish (`Created`, `Updated`, ...).
    pub reason: String,
    /// What it does, as its Event would say it.
    pub note: String,
}

/// One field that differs, as the diff found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The spec field (`spec.size`).
    pub field: String,
    /// What the array has.
    pub from: String,
    /// What the spec asks for.
    pub to: String,
    /// False when no call can change it (the object is reported Drifted).
    pub correctable: bool,
}

/// What the operator would do with one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// The array matches: no call.
    InSync,
    /// Calls would be made.
    Changes,
    /// The array differs, and the operator would only report it.
    Drifted,
    /// Waiting for something that changes by itself (another object).
    Waiting,
    /// Paused by annotation: no call.
    Paused,
    /// The operator would refuse (invalid spec, conflict, unsupported, an
    /// array error or an unreachable array), or the apiserver would refuse
    /// the manifest ([`SCHEMA_INVALID`]).
    Refused,
}

/// One object's plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectPlan {
    /// The kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.arrayRef.name` (a StorageArray's own name for itself).
    pub array: String,
    /// What the operator would do.
    pub verdict: Verdict,
    /// The calls, in order.
    pub calls: Vec<Call>,
    /// The fields that differ.
    pub changes: Vec<Change>,
    /// The `Synced` reason when it is not `ReconcileSuccess`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The condition message the controller would write: the refusal, the
    /// wait, or what the object is when in sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the plan cannot tell in advance.
    pub notes: Vec<String>,
}

impl ObjectPlan {
    /// `Kind namespace/name`.
    pub fn key(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One StorageArray: whether it answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrayReport {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `Synology` or `NGXStorage`.
    pub vendor: String,
    /// `spec.endpoint` (the manifest's, also under `--simulate`).
    pub endpoint: String,
    /// Served by an embedded simulator (`--simulate`).
    pub simulated: bool,
    /// The array answered.
    pub reachable: bool,
    /// What it said it runs, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it could not be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts by verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Objects planned (StorageArrays excluded, but for one the schema
    /// refuses).
    pub objects: usize,
    /// With calls (or reported drift).
    pub changes: usize,
    /// In sync (or paused).
    pub in_sync: usize,
    /// Refused.
    pub refused: usize,
    /// Waiting.
    pub waiting: usize,
}

/// The whole plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReport {
    /// [`JSON_VERSION`].
    pub version: u32,
    /// 0 no changes, 2 changes, 1 a refusal or an unreachable array.
    pub exit_code: u8,
    /// Counts.
    pub summary: Summary,
    /// Objects of other kinds in the input, left alone.
    pub ignored: Vec<String>,
    /// The StorageArrays.
    pub arrays: Vec<ArrayReport>,
    /// The objects, in the order the operator would make them.
    pub objects: Vec<ObjectPlan>,
}

impl PlanReport {
    /// A report of these arrays and objects, with its summary and exit
    /// code.
    pub fn new(arrays: Vec<ArrayReport>, objects: Vec<ObjectPlan>, ignored: Vec<String>) -> Self {
        let mut summary = Summary {
            objects: objects.len(),
            ..Summary::default()
        };
        for o in &objects {
            match o.verdict {
                Verdict::Changes | Verdict::Drifted => summary.changes += 1,
                Verdict::InSync | Verdict::Paused => summary.in_sync += 1,
                Verdict::Refused => summary.refused += 1,
                Verdict::Waiting => summary.waiting += 1,
            }
        }
        let unreachable = arrays.iter().any(|a| !a.reachable);
        let waiting_changes = objects
            .iter()
            .any(|o| o.verdict == Verdict::Waiting && !o.calls.is_empty());
        let exit_code = if summary.refused > 0 || unreachable {
            1
        } else if summary.changes > 0 || waiting_changes {
            2
        } else {
            0
        };
        PlanReport {
            version: JSON_VERSION,
            exit_code,
            summary,
            ignored,
            arrays,
            objects,
        }
    }

    /// The object `kind namespace/name`.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<&ObjectPlan> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.namespace == namespace && o.name == name)
    }

    /// The refused objects, each with the message the controller would
    /// write.
    pub fn refusals(&self) -> impl Iterator<Item = &ObjectPlan> {
        self.objects
            .iter()
            .filter(|o| o.verdict == Verdict::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(verdict: Verdict, calls: usize) -> ObjectPlan {
        ObjectPlan {
            kind: "Lun".into(),
            namespace: "default".into(),
            name: "a".into(),
            array: "x".into(),
            verdict,
            calls: (0..calls)
                .map(|_| Call {
                    action: "Create".into(),
                    reason: "Created".into(),
                    note: "n".into(),
                })
                .collect(),
            changes: Vec::new(),
            reason: None,
            message: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn exit_codes_follow_the_worst_verdict() {
        let cases = [
            (vec![object(Verdict::InSync, 0)], 0),
            (vec![object(Verdict::Paused, 0)], 0),
            (vec![object(Verdict::Waiting, 0)], 0),
            (vec![object(Verdict::Waiting, 1)], 2),
            (
                vec![object(Verdict::InSync, 0), object(Verdict::Changes, 1)],
                2,
            ),
            (vec![object(Verdict::Drifted, 0)], 2),
            (
                vec![object(Verdict::Changes, 1), object(Verdict::Refused, 0)],
                1,
            ),
        ];
        for (objects, code) in cases {
            let verdicts: Vec<Verdict> = objects.iter().map(|o| o.verdict).collect();
            assert_eq!(
                PlanReport::new(Vec::new(), objects, Vec::new()).exit_code,
                code,
                "{verdicts:?}"
            );
        }
    }
}
