//! The chart as `helm template` renders it, with the helm that
//! `scripts/install-tools.sh` puts in `.ci/tools` (tests/chart.rs,
//! tests/chart_rbac.rs).

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// The release namespace the renders use.
pub const RELEASE_NS: &str = "array-operator";

/// The helm binary, or `None` (with a note) where it is not installed;
/// CI (`ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1`) requires it.
pub fn helm() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/tools/helm");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("ARRAY_OPERATOR_REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
        "{} is missing: run scripts/install-tools.sh",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (run scripts/install-tools.sh)",
        path.display()
    );
    None
}

/// The documents of `helm template aop charts/array-operator` for
/// Kubernetes 1.33 in [`RELEASE_NS`], with `args` added.
pub fn render(helm: &PathBuf, args: &[&str]) -> Vec<Value> {
    let out = Command::new(helm)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "template",
            "aop",
            "charts/array-operator",
            "--namespace",
            RELEASE_NS,
            "--kube-version",
            "1.33.0",
        ])
        .args(args)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The rendered documents of one kind.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}
