//! The Helm chart beyond RBAC (tests/chart_rbac.rs): the CRDs it installs
//! are the generated ones and follow `crds.install` / `crds.keep`; the
//! default pod runs non-root with no fixed UID (OpenShift's restricted SCC);
//! the PodDisruptionBudget follows the replicas; the PrometheusRule's
//! alerts use only metrics the operator exports. Renders with the helm of
//! `scripts/install-tools.sh` (`.ci/tools/helm`).

mod support;

use serde_json::Value;
use support::chart::{helm, of_kind, render};

#[test]
fn the_chart_installs_the_generated_crds_kept_on_uninstall_unless_told_otherwise() {
    let Some(helm) = helm() else { return };
    let generated: Vec<Value> = array_operator::crd::generate::all_crds()
        .into_iter()
        .map(|(_, crd)| serde_json::to_value(&crd).expect("CRD as JSON"))
        .collect();
    let docs = render(&helm, &[]);
    let crds = of_kind(&docs, "CustomResourceDefinition");
    assert_eq!(crds.len(), generated.len());
    for crd in crds {
        let name = &crd["metadata"]["name"];
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{name}"
        );
        assert_eq!(
            crd["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "Helm"
        );
        // Apart from the metadata the template adds, exactly what the code
        // generates.
        let mut bare = crd.clone();
        let meta = bare["metadata"].as_object_mut().expect("metadata");
        meta.remove("annotations");
        meta.remove("labels");
        let want = generated
            .iter()
            .find(|g| &g["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not generated"));
        assert_eq!(&bare, want, "{name}");
    }
    // keep=false: the same CRDs, removed with the release.
    let docs = render(&helm, &["--set", "crds.keep=false"]);
    let crds = of_kind(&docs, "CustomResourceDefinition");
    assert_eq!(crds.len(), generated.len());
    assert!(
        crds.iter()
            .all(|c| c["metadata"]["annotations"]["helm.sh/resource-policy"].is_null())
    );
    // install=false: CRDs are the cluster admin's (kubectl apply --server-side).
    let docs = render(&helm, &["--set", "crds.install=false"]);
    assert!(of_kind(&docs, "CustomResourceDefinition").is_empty());
    assert_eq!(of_kind(&docs, "Deployment").len(), 1);
}

#[test]
fn the_default_pod_is_restricted_without_a_fixed_uid_and_has_a_pdb() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &[]);
    let deployment = of_kind(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let psc = &pod["securityContext"];
    let csc = &container["securityContext"];
    // OpenShift's restricted SCC assigns the UID: none is set.
    for field in ["runAsUser", "runAsGroup", "fsGroup"] {
        assert!(psc[field].is_null(), "pod securityContext.{field} is set");
        assert!(
            csc[field].is_null(),
            "container securityContext.{field} is set"
        );
    }
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(csc["runAsNonRoot"], true);
    assert_eq!(csc["allowPrivilegeEscalation"], false);
    assert_eq!(csc["readOnlyRootFilesystem"], true);
    assert_eq!(csc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string"))
        .collect();
    assert!(args.contains(&"--lease-duration-secs=15"), "{args:?}");
    assert!(args.contains(&"--lease-grace-secs=5"), "{args:?}");
    // The flags the chart passes are flags `run` takes.
    let parsed = <array_operator::cli::Cli as clap::Parser>::try_parse_from(
        std::iter::once("array-operator").chain(args.iter().copied()),
    );
    assert!(parsed.is_ok(), "{args:?}: {parsed:?}");
    let pdb = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdb.len(), 1);
    assert_eq!(pdb[0]["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb[0]["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    // One replica: a PDB would only block node drains.
    let single = render(&helm, &["--set", "replicaCount=1"]);
    assert!(of_kind(&single, "PodDisruptionBudget").is_empty());
}

#[test]
fn the_alerts_use_only_metrics_the_operator_exports() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &["--set", "metrics.prometheusRule.enabled=true"]);
    let rule = of_kind(&docs, "PrometheusRule");
    assert_eq!(rule.len(), 1);
    // Put one series in every family the alerts read, then read the names
    // back from the operator's own exposition.
    let metrics = array_operator::metrics::global();
    metrics.reconcile_failed("Lun", "ReconcileError");
    metrics.event_published("Lun", "DriftCorrected");
    metrics.set_object_ready(
        &array_operator::metrics::ObjectLabels {
            kind: "Lun".into(),
            namespace: "apps".into(),
            name: "db".into(),
            reason: "Available".into(),
        },
        true,
    );
    let exposition = metrics.render();
    let exported: Vec<&str> = exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut alerts = Vec::new();
    for group in rule[0]["spec"]["groups"].as_array().expect("groups") {
        for r in group["rules"].as_array().expect("rules") {
            let expr = r["expr"].as_str().expect("expr");
            let used: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("array_operator_"))
                .collect();
            assert!(!used.is_empty(), "{expr}");
            for name in used {
                assert!(
                    exported.contains(&name),
                    "alert {} reads {name}, which the operator does not export",
                    r["alert"]
                );
            }
            alerts.push(r["alert"].as_str().expect("alert name").to_string());
        }
    }
    for want in [
        "ArrayOperatorArrayUnreachable",
        "ArrayOperatorObjectNotReady",
        "ArrayOperatorReconcileErrors",
        "ArrayOperatorDriftCorrected",
        "ArrayOperatorDriftObserved",
    ] {
        assert!(alerts.iter().any(|a| a == want), "{want} in {alerts:?}");
    }
}
