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
chart=charts/array-operator
full="$chart/ci/full-values.yaml"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Renders the chart (release $release, default array-operator) with the
# given flags into $work/$1.yaml, then validates
# every core object with kubernetes-validate --strict. ServiceMonitor and
# PrometheusRule are not core kinds: they are split out and only checked to
# parse, with the fields the Prometheus Operator needs.
render_and_validate() {
  local name=$1
  shift
  "$helm" lint --strict "$chart" --kube-version "$kube_version" "$@"
  "$helm" template "${release:-array-operator}" "$chart" --namespace array-operator \
    --kube-version "$kube_version" "$@" >"$work/$name.yaml"
  "$venv/bin/python" - "$work/$name.yaml" "$work/$name.core.yaml" <<'PY'
import sys, yaml
src, core = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
keep = []
for d in docs:
    if d["kind"] in ("ServiceMonitor", "PrometheusRule"):
        assert d["apiVersion"] == "monitoring.coreos.com/v1", d["apiVersion"]
        assert d["metadata"]["name"] and d["spec"], d["kind"]
        if d["kind"] == "PrometheusRule":
            for g in d["spec"]["groups"]:
                for r in g["rules"]:
                    assert r["alert"] and r["expr"] and r["labels"]["severity"], r
        else:
            assert d["spec"]["endpoints"][0]["port"] == "http-metrics", d["spec"]
    else:
        keep.append(d)
yaml.safe_dump_all(keep, open(core, "w"))
PY
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$kube_version" "$work/$name.core.yaml"
}

# Default values (CRDs are templates, so they are in the render).
render_and_validate default
test "$(grep -c '^kind: CustomResourceDefinition' "$work/default.yaml")" -eq 6
grep -q '^kind: ClusterRole$' "$work/default.yaml"
grep -q '^kind: PodDisruptionBudget' "$work/default.yaml"
if grep -Eq 'runAsUser|fsGroup' "$work/default.yaml"; then
  echo "error: the default render sets a UID (OpenShift's restricted SCC refuses it)" >&2
  exit 1
fi

# Everything on (ci/full-values.yaml): several watched namespaces,
# ServiceMonitor, PrometheusRule, PDB, custom security context, extra args,
# priorityClassName, CRDs without keep.
render_and_validate full -f "$full"
if grep -q '^kind: ClusterRole' "$work/full.yaml"; then
  echo "error: with watchNamespaces set the chart still renders a ClusterRole" >&2
  exit 1
fi
grep -q '^kind: ServiceMonitor' "$work/full.yaml"
grep -q '^kind: PrometheusRule' "$work/full.yaml"
grep -q 'value: "storage-apps,storage-db,storage-legacy"' "$work/full.yaml"
grep -q 'priorityClassName: "system-cluster-critical"' "$work/full.yaml"
if grep -q 'helm.sh/resource-policy' "$work/full.yaml"; then
  echo "error: crds.keep=false still renders helm.sh/resource-policy: keep" >&2
  exit 1
fi

# CRDs managed outside the release: none rendered.
render_and_validate no-crds --set crds.install=false
if grep -q '^kind: CustomResourceDefinition' "$work/no-crds.yaml"; then
  echo "error: crds.install=false still renders CRDs" >&2
  exit 1
fi

# A shard (arraySelector, docs/fleet.md): the selector is one argument and
# the release gets a Lease of its own.
release=aop-paris render_and_validate shard --set-string 'arraySelector=array-operator.io/shard in (a\,b)'
grep -q -- '--array-selector=array-operator.io/shard in (a,b)' "$work/shard.yaml"
grep -q -- '--lease-name=aop-paris-array-operator-leader' "$work/shard.yaml"

# Bad values fail at install time, each for its own reason: the schema
# (helm template and helm lint), and templates/validate.yaml's comparisons
# (helm template; helm lint reports a template's `fail` as INFO only).
template_only=("leaderElection.renewGraceSeconds=15")
bad_values=(
  "replicaCount=0"
  "logFormat=xml"
  "watchNamespaces={Apps_1}"
  "image.pullPolicy=Sometimes"
  "image.digest=latest"
  "noSuchValue=1"
  "securityContext.privileged=maybe"
  "podSecurityContext.runAsUser=-1"
  "podDisruptionBudget.maxUnavailable=0"
  "metrics.port=70000"
  "metrics.serviceMonitor.interval=often"
  "tolerations[0].operator=Maybe"
  "resources.requests.memory=lots"
)
for bad in "${bad_values[@]}" "${template_only[@]}"; do
  if "$helm" template array-operator "$chart" --kube-version "$kube_version" \
    --set "$bad" >/dev/null 2>"$work/bad.err"; then
    echo "error: helm template accepted the bad value $bad" >&2
    exit 1
  fi
  if [[ " ${template_only[*]} " != *" $bad "* ]] &&
    "$helm" lint --strict "$chart" --kube-version "$kube_version" --set "$bad" >/dev/null 2>&1; then
    echo "error: helm lint accepted the bad value $bad" >&2
    exit 1
  fi
  # The message names the value (its last path element) that is wrong.
  key=${bad%%=*}
  key=${key##*.}
  key=${key%%\[*}
  if ! grep -qi -- "$key" "$work/bad.err"; then
    echo "error: the failure for $bad does not name $key:" >&2
    cat "$work/bad.err" >&2
    exit 1
  fi
done
# A string where a boolean belongs (a YAML 1.1 "yes" quoted into a string).
if "$helm" template array-operator "$chart" --kube-version "$kube_version" \
  --set-string crds.install=yes >/dev/null 2>&1; then
  echo "error: helm template accepted crds.install=\"yes\"" >&2
  exit 1
fi

echo "== all checks passed"
