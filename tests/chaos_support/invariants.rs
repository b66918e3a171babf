//! The ownership invariants, checked against the simulator's own state and
//! the fake cluster after the faults stop and the system settles:
//!
//! - **no duplicate**: one array object per Kubernetes object;
//! - **no orphan**: every array object the operator made belongs to a live
//!   object, or was kept by an explicit `deletionPolicy: Retain`;
//! - **no foreign write**: what the operator neither made nor was told to
//!   adopt is never changed or deleted (an adopted one may be changed, never
//!   deleted);
//! - **convergence**: every live object is Ready and Synced for its current
//!   generation (a copied manifest may instead stop at `Conflict`), and every
//!   deleted object is gone.

use std::collections::{BTreeMap, BTreeSet};

use array_operator::crd::shared::CommonStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::cluster::FakeCluster;
use super::driver::Kind;
use super::sims::Sim;

/// The four invariants, plus the log check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// One array object per Kubernetes object.
    NoDuplicate,
    /// Nothing the operator made is left without an owner.
    NoOrphan,
    /// Nothing foreign is changed or deleted.
    NoForeignWrite,
    /// Everything converges once the faults stop.
    Convergence,
    /// No secret in any log line.
    NoSecretInLogs,
}

/// One broken invariant.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// What was seen.
    pub detail: String,
}

/// An array object that existed before the operator started.
#[derive(Clone, Debug)]
pub struct Foreign {
    /// Its kind.
    pub kind: Kind,
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// How the simulator held it at the start.
    pub fingerprint: String,
}

/// What the test knows that the array and the cluster do not say.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    /// Objects made outside the operator before the run.
    pub foreign: Vec<Foreign>,
    /// Foreign ids a user deliberately adopted (an `external-name` pointed
    /// at them): they may be changed, never deleted.
    pub adopted: BTreeSet<String>,
    /// Array-side names of objects deleted under `deletionPolicy: Retain`.
    pub retained: BTreeSet<String>,
    /// Luns made from a copied manifest, and the Lun they were copied from.
    pub copies: BTreeMap<String, String>,
}

impl Ledger {
    fn is_foreign(&self, id: &str) -> bool {
        self.foreign.iter().any(|f| f.id == id)
    }
}

fn array_name(spec_name: Option<&String>, meta: &ObjectMeta) -> String {
    spec_name
        .or(meta.name.as_ref())
        .cloned()
        .unwrap_or_default()
}

struct Claim {
    kind: Kind,
    object: String,
    array_name: String,
    external_id: Option<String>,
    deleting: bool,
    generation: Option<i64>,
    common: Option<CommonStatus>,
}

fn claims(cluster: &FakeCluster) -> Vec<Claim> {
    let mut out = Vec::new();
    for l in cluster.luns() {
        out.push(Claim {
            kind: Kind::Lun,
            object: l.metadata.name.clone().unwrap_or_default(),
            array_name: array_name(l.spec.name.as_ref(), &l.metadata),
            external_id: l.status.as_ref().and_then(|s| s.common.external_id.clone()),
            deleting: l.metadata.deletion_timestamp.is_some(),
            generation: l.metadata.generation,
            common: l.status.map(|s| s.common),
        });
    }
    for t in cluster.targets() {
        out.push(Claim {
            kind: Kind::Target,
            object: t.metadata.name.clone().unwrap_or_default(),
            array_name: array_name(t.spec.name.as_ref(), &t.metadata),
            external_id: t.status.as_ref().and_then(|s| s.common.external_id.clone()),
            deleting: t.metadata.deletion_timestamp.is_some(),
            generation: t.metadata.generation,
            common: t.status.map(|s| s.common),
        });
    }
    out
}

fn condition(common: &CommonStatus, type_: &str) -> Option<(String, String, String)> {
    common
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Checks the four invariants; an empty list is a pass.
pub fn check(sim: &Sim, cluster: &FakeCluster, ledger: &Ledger) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut flag = |invariant, detail: String| v.push(Violation { invariant, detail });
    let claims = claims(cluster);
    let luns = sim.luns();
    let targets = sim.targets();
    let on_array: Vec<(Kind, String, String)> = luns
        .iter()
        .map(|l| (Kind::Lun, l.id.clone(), l.name.clone()))
        .chain(
            targets
                .iter()
                .map(|t| (Kind::Target, t.id.clone(), t.name.clone())),
        )
        .collect();

    // No duplicate: no two objects claim one array object, and no object
    // has two array objects under its name.
    let mut by_id: BTreeMap<(Kind, String), Vec<&str>> = BTreeMap::new();
    for c in &claims {
        if let Some(id) = &c.external_id {
            by_id
                .entry((c.kind, id.clone()))
                .or_default()
                .push(&c.object);
        }
    }
    for ((kind, id), objects) in &by_id {
        if objects.len() > 1 {
            flag(
                Invariant::NoDuplicate,
                format!("{kind:?} {objects:?} all record array id {id}"),
            );
        }
    }
    for c in claims.iter().filter(|c| !c.deleting) {
        let same_name: Vec<&String> = on_array
            .iter()
            .filter(|(k, id, n)| *k == c.kind && *n == c.array_name && !ledger.is_foreign(id))
            .map(|(_, id, _)| id)
            .collect();
        if same_name.len() > 1 {
            flag(
                Invariant::NoDuplicate,
                format!(
                    "{:?} {} ({:?}): {} array objects carry its name: {same_name:?}",
                    c.kind,
                    c.object,
                    c.array_name,
                    same_name.len()
                ),
            );
        }
    }

    // No orphan.
    let claimed: BTreeSet<(Kind, &str)> = claims
        .iter()
        .filter_map(|c| c.external_id.as_deref().map(|id| (c.kind, id)))
        .collect();
    for (kind, id, name) in &on_array {
        if ledger.is_foreign(id)
            || claimed.contains(&(*kind, id.as_str()))
            || ledger.retained.contains(name)
        {
            continue;
        }
        flag(
            Invariant::NoOrphan,
            format!("{kind:?} {name:?} (id {id}) belongs to no object"),
        );
    }
    for group in sim.own_auth_groups() {
        let tail = group.trim_start_matches("arrayop");
        let owner = targets.iter().any(|t| {
            let id: String = t.id.chars().filter(char::is_ascii_alphanumeric).collect();
            id.starts_with(tail)
        });
        if !owner {
            flag(
                Invariant::NoOrphan,
                format!("auth group {group:?} outlived its target"),
            );
        }
    }

    // No foreign write.
    for f in &ledger.foreign {
        let now = match f.kind {
            Kind::Lun => luns
                .iter()
                .find(|l| l.id == f.id)
                .map(|l| l.fingerprint.clone()),
            Kind::Target => targets
                .iter()
                .find(|t| t.id == f.id)
                .map(|t| t.fingerprint.clone()),
        };
        match now {
            None => flag(
                Invariant::NoForeignWrite,
                format!(
                    "foreign {:?} {:?} (id {}) was deleted",
                    f.kind, f.name, f.id
                ),
            ),
            Some(now) if now != f.fingerprint && !ledger.adopted.contains(&f.id) => flag(
                Invariant::NoForeignWrite,
                format!(
                    "foreign {:?} {:?} (id {}) was changed: was {}, is {now}",
                    f.kind, f.name, f.id, f.fingerprint
                ),
            ),
            Some(_) => {}
        }
    }

    // Convergence.
    for c in &claims {
        if c.deleting {
            flag(
                Invariant::Convergence,
                format!(
                    "{:?} {} is still being deleted: {:?}",
                    c.kind,
                    c.object,
                    c.common.as_ref().and_then(|s| condition(s, "Synced"))
                ),
            );
            continue;
        }
        let Some(common) = &c.common else {
            flag(
                Invariant::Convergence,
                format!("{:?} {} has no status", c.kind, c.object),
            );
            continue;
        };
        let ready = condition(common, "Ready");
        let synced = condition(common, "Synced");
        let ok = ready.as_ref().is_some_and(|r| r.0 == "True")
            && synced.as_ref().is_some_and(|s| s.0 == "True")
            && common.observed_generation == c.generation;
        let conflict_allowed = c.kind == Kind::Lun && ledger.copies.contains_key(&c.object);
        let conflict = synced
            .as_ref()
            .is_some_and(|s| s.0 == "False" && s.1 == "Conflict");
        let settled = ok || (conflict_allowed && conflict);
        if !settled {
            flag(
                Invariant::Convergence,
                format!(
                    "{:?} {} did not converge: Ready {ready:?}, Synced {synced:?}",
                    c.kind, c.object
                ),
            );
        }
    }
    v
}
