#!/usr/bin/env bash
# The project's test command (README quick start, and what CI runs):
# formatting, lints, every Rust test (CRD drift check included), then the
# generated CRDs and the rendered chart validated against Kubernetes 1.33.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/install-tools.sh

venv="$root/.ci/.venv"
helm="$root/.ci/tools/helm"
kube_version=1.33.0

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
# The DSM conformance test drives the published Python client; here it must
# run, not skip.
export ARRAY_OPERATOR_PYTHON="$venv/bin/python"
export ARRAY_OPERATOR_REQUIRE_CONFORMANCE=1
cargo test --locked --all-targets
if [ -z "${ARRAY_OPERATOR_E2E_KUBECONFIG:-}" ]; then
  echo "note: ARRAY_OPERATOR_E2E_KUBECONFIG is not set: the end-to-end tests against a real apiserver were skipped"
fi

echo "== kubernetes-validate --strict crds/"
"$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" crds/*.yaml

echo "== helm lint / template"
"$helm" lint --strict charts/array-operator --kube-version "$kube_version"
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
"$helm" template array-operator charts/array-operator --namespace array-operator \
  --include-crds --kube-version "$kube_version" >"$rendered"
"$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" "$rendered"
# One watched namespace: a Role and RoleBinding there instead of the
# ClusterRole (tests/chart_rbac.rs checks the rules themselves).
"$helm" lint --strict charts/array-operator --kube-version "$kube_version" --set watchNamespace=apps
"$helm" template array-operator charts/array-operator --namespace array-operator \
  --kube-version "$kube_version" --set watchNamespace=apps >"$rendered"
"$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" "$rendered"
if grep -q '^kind: ClusterRole' "$rendered"; then
  echo "error: with watchNamespace set the chart still renders a ClusterRole" >&2
  exit 1
fi
# A shard (arraySelector, docs/fleet.md): the selector is one argument and
# the release gets a Lease of its own.
"$helm" lint --strict charts/array-operator --kube-version "$kube_version" \
  --set-string 'arraySelector=array-operator.io/shard in (a\,b)'
"$helm" template aop-paris charts/array-operator --namespace array-operator \
  --kube-version "$kube_version" --set-string 'arraySelector=array-operator.io/shard in (a\,b)' >"$rendered"
"$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" "$rendered"
grep -q -- '--array-selector=array-operator.io/shard in (a,b)' "$rendered"
grep -q -- '--lease-name=aop-paris-array-operator-leader' "$rendered"
# The optional ServiceMonitor renders too (its CRD is not in core, so it is
# only rendered, not validated).
"$helm" template array-operator charts/array-operator --namespace array-operator \
  --kube-version "$kube_version" --set metrics.serviceMonitor.enabled=true \
  | grep -q '^kind: ServiceMonitor'

echo "== all checks passed"
