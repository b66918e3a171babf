//! The chart's RBAC grants exactly the calls the code makes
//! (`array_operator::controller::rbac::API_CALLS`), no more and no less, for
//! both scopes: cluster-wide (ClusterRole) and one watched namespace (a Role
//! there, and no cluster-wide rule at all). Renders the chart with the helm
//! that `scripts/install-tools.sh` puts in `.ci/tools`.

use std::collections::BTreeSet;

mod support;

use array_operator::controller::rbac::{Permission, Scope, permissions};
use serde_json::Value;
use support::chart::{RELEASE_NS, helm, of_kind};

/// The chart rendered with `--set` for each of `set`.
fn render(helm: &std::path::Path, set: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = set.iter().flat_map(|s| ["--set", *s]).collect();
    support::chart::render(&helm.to_path_buf(), &args)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The `--lease-name` the Deployment passes.
fn lease_name(docs: &[Value]) -> String {
    let deployment = of_kind(docs, "Deployment")[0];
    strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"])
        .into_iter()
        .find_map(|a| a.strip_prefix("--lease-name=").map(str::to_string))
        .expect("the Deployment passes --lease-name")
}

/// Every permission a role grants, as `rbac::Permission`s.
fn granted(role: &Value, scope: Scope, lease: &str) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        let names = strings(&rule["resourceNames"]);
        let by_name = match names.as_slice() {
            [] => false,
            [n] if n == lease => true,
            other => panic!("unexpected resourceNames {other:?}"),
        };
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    out.insert((scope, group.clone(), resource.clone(), verb, by_name));
                }
            }
        }
    }
    out
}

fn expected() -> BTreeSet<Permission> {
    permissions().into_iter().collect()
}

fn assert_bound(docs: &[Value], binding_kind: &str, role: &Value) {
    let name = role["metadata"]["name"].as_str().expect("name");
    let binding = of_kind(docs, binding_kind)
        .into_iter()
        // Per-namespace Roles share a name: the binding is the one beside
        // the role.
        .find(|b| {
            b["roleRef"]["name"] == name
                && b["metadata"]["namespace"] == role["metadata"]["namespace"]
        })
        .unwrap_or_else(|| panic!("no {binding_kind} for {name}"));
    assert_eq!(binding["roleRef"]["kind"], role["kind"]);
    assert_eq!(
        binding["metadata"]["namespace"], role["metadata"]["namespace"],
        "{name}"
    );
    let subjects = binding["subjects"].as_array().expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["namespace"], RELEASE_NS);
}

fn leader_role(docs: &[Value]) -> &Value {
    of_kind(docs, "Role")
        .into_iter()
        .find(|r| {
            r["metadata"]["namespace"] == RELEASE_NS
                && r["rules"][0]["apiGroups"][0] == "coordination.k8s.io"
        })
        .expect("the leader-election Role")
}

#[test]
fn cluster_scope_grants_exactly_what_the_code_calls() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &[]);
    let lease = lease_name(&docs);
    let cluster_roles = of_kind(&docs, "ClusterRole");
    assert_eq!(cluster_roles.len(), 1);
    let roles = of_kind(&docs, "Role");
    assert_eq!(roles.len(), 1, "only the leader-election Role");
    let mut got = granted(cluster_roles[0], Scope::Watched, &lease);
    got.extend(granted(leader_role(&docs), Scope::Operator, &lease));
    assert_eq!(got, expected());
    assert_bound(&docs, "ClusterRoleBinding", cluster_roles[0]);
    assert_bound(&docs, "RoleBinding", leader_role(&docs));
}

#[test]
fn a_watched_namespace_gets_a_role_there_and_nothing_cluster_wide() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &["watchNamespace=apps"]);
    let lease = lease_name(&docs);
    assert!(of_kind(&docs, "ClusterRole").is_empty());
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());
    let watched: Vec<&Value> = of_kind(&docs, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["namespace"] == "apps")
        .collect();
    assert_eq!(watched.len(), 1, "one Role in the watched namespace");
    let mut got = granted(watched[0], Scope::Watched, &lease);
    got.extend(granted(leader_role(&docs), Scope::Operator, &lease));
    assert_eq!(got, expected());
    assert_bound(&docs, "RoleBinding", watched[0]);
    assert_bound(&docs, "RoleBinding", leader_role(&docs));
    // The operator is told which namespace it may watch.
    let deployment = of_kind(&docs, "Deployment")[0];
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env");
    assert!(
        env.iter()
            .any(|e| e["name"] == "ARRAY_OPERATOR_WATCH_NAMESPACE" && e["value"] == "apps"),
        "{env:?}"
    );
}

#[test]
fn several_watched_namespaces_get_a_role_each_and_nothing_cluster_wide() {
    let Some(helm) = helm() else { return };
    // The list, plus the deprecated single value, which is added to it.
    let docs = render(
        &helm,
        &["watchNamespaces={apps,db}", "watchNamespace=legacy"],
    );
    let lease = lease_name(&docs);
    assert!(of_kind(&docs, "ClusterRole").is_empty());
    assert!(of_kind(&docs, "ClusterRoleBinding").is_empty());
    for ns in ["apps", "db", "legacy"] {
        let watched: Vec<&Value> = of_kind(&docs, "Role")
            .into_iter()
            .filter(|r| r["metadata"]["namespace"] == ns)
            .collect();
        assert_eq!(watched.len(), 1, "one Role in {ns}");
        let mut got = granted(watched[0], Scope::Watched, &lease);
        got.extend(granted(leader_role(&docs), Scope::Operator, &lease));
        assert_eq!(got, expected(), "{ns}");
        assert_bound(&docs, "RoleBinding", watched[0]);
    }
    // Three watched namespaces and the leader-election Role.
    assert_eq!(of_kind(&docs, "Role").len(), 4);
    let deployment = of_kind(&docs, "Deployment")[0];
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .expect("env");
    let watch = env
        .iter()
        .find(|e| e["name"] == "ARRAY_OPERATOR_WATCH_NAMESPACE")
        .expect("the watch variable");
    // What `run` makes of the value (the variable splits as the flag does)
    // is what the Roles cover.
    let value = watch["value"].as_str().expect("a string");
    let cli = <array_operator::cli::Cli as clap::Parser>::try_parse_from([
        "array-operator".to_string(),
        "run".to_string(),
        format!("--watch-namespace={value}"),
    ])
    .expect("run accepts the value");
    let array_operator::cli::Command::Run(args) = cli.command else {
        panic!("not run");
    };
    assert_eq!(
        array_operator::operator::watch_namespaces(&args.watch_namespace),
        ["apps", "db", "legacy"]
    );
}

#[test]
fn a_watch_namespace_that_is_not_a_namespace_name_is_refused() {
    let Some(helm) = helm() else { return };
    let out = std::process::Command::new(&helm)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "template",
            "aop",
            "charts/array-operator",
            "--set",
            "watchNamespace=Apps_1",
        ])
        .output()
        .expect("run helm");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("watchNamespace"), "{stderr}");
}

/// A shard release (`arraySelector`) passes the selector as one argument
/// (spaces and parentheses intact) and gets a Lease of its own, which its
/// RBAC names; the same grants as any release.
#[test]
fn an_array_selector_becomes_the_flag_and_the_shard_gets_its_own_lease() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &["arraySelector=array-operator.io/shard in (a\\,b)"]);
    let deployment = of_kind(&docs, "Deployment")[0];
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(
        args.contains(&"--array-selector=array-operator.io/shard in (a,b)".to_string()),
        "{args:?}"
    );
    let lease = lease_name(&docs);
    assert_eq!(lease, "aop-array-operator-leader");
    let mut got = granted(of_kind(&docs, "ClusterRole")[0], Scope::Watched, &lease);
    got.extend(granted(leader_role(&docs), Scope::Operator, &lease));
    assert_eq!(got, expected());
    // The selector it passes is one the operator accepts.
    array_operator::controller::shard::ArraySelector::parse("array-operator.io/shard in (a,b)")
        .expect("valid");
    // Without a selector there is no flag and the Lease keeps its name.
    let plain = render(&helm, &[]);
    assert_eq!(lease_name(&plain), "array-operator-leader");
    let deployment = of_kind(&plain, "Deployment")[0];
    let args = strings(&deployment["spec"]["template"]["spec"]["containers"][0]["args"]);
    assert!(
        !args.iter().any(|a| a.starts_with("--array-selector")),
        "{args:?}"
    );
}
