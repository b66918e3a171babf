//! Every Kubernetes API call the operator makes, in one list: the chart's
//! Role/ClusterRole rules are checked against it (tests/chart_rbac.rs), so
//! a new call without a rule, or a rule without a call, fails the build.
//!
//! Verbs are the ones the apiserver authorizes: `get` (one object), `list`
//! and `watch` (reflectors and watchers), `create` (POST), `patch` (merge,
//! JSON and server-side apply patches). The operator never `update`s
//! (PUT), never `delete`s, and never writes `*/finalizers` subresources:
//! finalizers are patched on the object itself.

/// Where a rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// The watched objects: cluster-wide (ClusterRole), or the one
    /// `watchNamespace` (Role there) when the operator watches one
    /// namespace.
    Watched,
    /// The operator's own namespace (the Lease).
    Operator,
}

/// One group of calls on one resource set.
#[derive(Clone, Copy, Debug)]
pub struct ApiRule {
    /// API group (`""` is core).
    pub group: &'static str,
    /// Resources (subresources as `kind/sub`).
    pub resources: &'static [&'static str],
    /// Verbs.
    pub verbs: &'static [&'static str],
    /// Where.
    pub scope: Scope,
    /// True when the rule is restricted to the leader Lease by name
    /// (`resourceNames`; impossible for `create`, whose name the apiserver
    /// does not know when it authorizes).
    pub lease_name_only: bool,
    /// Which code makes these calls.
    pub callers: &'static str,
}

/// The six kinds.
const KINDS: &[&str] = &[
    "storagearrays",
    "luns",
    "iscsitargets",
    "snapshotschedules",
    "replicationplans",
    "virtualmachines",
];

/// Every call the operator makes.
pub const API_CALLS: &[ApiRule] = &[
    ApiRule {
        group: "array-operator.io",
        resources: KINDS,
        verbs: &["get", "list", "watch"],
        scope: Scope::Watched,
        lease_name_only: false,
        callers: "controllers and their reflectors (list/watch; every StorageArray is watched, whatever --array-selector says, for the deletion order); the array registry and the engine's cluster view (get, only until the watches have listed)",
    },
    ApiRule {
        group: "array-operator.io",
        resources: &[
            "storagearrays",
            "luns",
            "iscsitargets",
            "snapshotschedules",
            "replicationplans",
            "virtualmachines",
        ],
        verbs: &["patch"],
        scope: Scope::Watched,
        lease_name_only: false,
        callers: "finalizers (the cleanup finalizer on Luns, targets, snapshot schedules, replication plans and virtual machines, the in-use finalizer on StorageArrays) and the engine's annotations",
    },
    ApiRule {
        group: "array-operator.io",
        resources: &[
            "storagearrays/status",
            "luns/status",
            "iscsitargets/status",
            "snapshotschedules/status",
            "replicationplans/status",
            "virtualmachines/status",
        ],
        verbs: &["patch"],
        scope: Scope::Watched,
        lease_name_only: false,
        callers: "status, written by server-side apply",
    },
    ApiRule {
        group: "",
        resources: &["secrets"],
        verbs: &["get", "list", "watch", "patch"],
        scope: Scope::Watched,
        lease_name_only: false,
        callers: "credentials, CA and CHAP Secrets (get: once per change of a Secret something references, see controller::secrets); metadata-only watches that wake StorageArrays and targets and tell the Secret cache what changed (list/watch: no Secret's data is listed or kept unless referenced); the finalizer that keeps a StorageArray's Secrets until it is gone (patch)",
    },
    ApiRule {
        group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
        scope: Scope::Watched,
        lease_name_only: false,
        callers: "kube-runtime's Event recorder (create, and patch for a repeated Event's series)",
    },
    ApiRule {
        group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["get", "patch"],
        scope: Scope::Operator,
        lease_name_only: true,
        callers: "kube-lease-manager 0.13 (get, patch to acquire, renew and release) and the follower's poll (get)",
    },
    ApiRule {
        group: "coordination.k8s.io",
        resources: &["leases"],
        verbs: &["create"],
        scope: Scope::Operator,
        lease_name_only: false,
        callers: "kube-lease-manager 0.13 creates the Lease when it does not exist",
    },
];

/// One permission: `(scope, group, resource, verb, restricted to the Lease
/// name)`. The unit the chart test compares.
pub type Permission = (Scope, String, String, String, bool);

/// [`API_CALLS`] expanded to single permissions, sorted.
pub fn permissions() -> Vec<Permission> {
    let mut all: Vec<Permission> = API_CALLS
        .iter()
        .flat_map(|rule| {
            rule.resources.iter().flat_map(move |resource| {
                rule.verbs.iter().map(move |verb| {
                    (
                        rule.scope,
                        rule.group.to_string(),
                        resource.to_string(),
                        verb.to_string(),
                        rule.lease_name_only,
                    )
                })
            })
        })
        .collect();
    all.sort();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_update_no_delete_and_no_finalizers_subresource() {
        for (_, _, resource, verb, _) in permissions() {
            assert!(
                !matches!(
                    verb.as_str(),
                    "update" | "delete" | "deletecollection" | "*"
                ),
                "{resource}: {verb}"
            );
            assert!(!resource.ends_with("/finalizers"), "{resource}");
        }
    }

    #[test]
    fn only_lease_create_is_not_restricted_by_name() {
        let leases: Vec<_> = permissions()
            .into_iter()
            .filter(|p| p.2 == "leases")
            .map(|p| (p.3, p.4))
            .collect();
        assert_eq!(
            leases,
            [
                ("create".to_string(), false),
                ("get".to_string(), true),
                ("patch".to_string(), true)
            ]
        );
    }
}
