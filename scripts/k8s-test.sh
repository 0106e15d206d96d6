#!/usr/bin/env bash
# Test of the Kubernetes manifests in deploy/kubernetes (no cluster needed):
#
#   1. `kubectl kustomize` renders the base, every overlay and examples/with-secret (the latter in
#      a copy of the tree, with a stand-in token file);
#   2. every rendered document validates against the Kubernetes JSON schemas, strict
#      (kubernetes-validate; versions in K8S_VERSIONS);
#   3. what the manifests set agrees with the configuration contract: for every pod, the real
#      `hypercache-server check-config` accepts the container's environment (image ENV + the pod's
#      env, fieldRef/secretKeyRef replaced by stand-ins, $(VAR) expanded as the kubelet does) and
#      knows every HYPERCACHE_* variable; ports, probes, Services, seeds and advertise address agree
#      with the effective listener addresses; the PDB keeps a quorum of owners for
#      HYPERCACHE_REPLICATION; terminationGracePeriodSeconds covers preStop + shutdown timeout;
#      security context, Secret use, seccomp profile and memory/CPU sizing
#      (tests/kubernetes/k8scheck.py has the details);
#   4. a self-test breaks the three-node rendering in ~20 ways and requires each to be reported.
#
# Usage: scripts/k8s-test.sh        (from anywhere; about 10 s after the installs)
# Environment: HYPERCACHE_BIN (default target/release/hypercache-server, relative to the
# repository root), K8S_VERSIONS (default 1.29.0,1.35.0).
# Installs when missing: kubectl (Debian package kubernetes-client, with apt-get; needs root) and
# the PyPI packages kubernetes-validate and PyYAML (with pip).
# The last line is "k8s-test: P passed, F failed"; the exit status is 0 only if F is 0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BIN=${HYPERCACHE_BIN:-target/release/hypercache-server}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
K8S_VERSIONS=${K8S_VERSIONS:-1.29.0,1.35.0}
KDIR=deploy/kubernetes

die() {
	echo "k8s-test: FAIL: $*" >&2
	echo "k8s-test: 0 passed, 1 failed"
	exit 1
}
step() { echo "== $*"; }

# ---- tools ---------------------------------------------------------------------------------
if ! command -v kubectl >/dev/null 2>&1; then
	step "installing kubectl (Debian kubernetes-client)"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
fi
# The kustomizations use `resources` directories and `patches` (kustomize >= v4, kubectl >= 1.21).
kver=$(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: v\{0,1\}\([0-9]*\).*/\1/p')
[[ -n $kver && $kver -ge 4 ]] ||
	die "kubectl $(command -v kubectl) embeds kustomize '${kver:-unknown}'; these manifests need kustomize >= v4 (kubectl >= 1.21)"
command -v python3 >/dev/null || die "python3 is needed"
pip_install() {
	PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check "$@" >/dev/null
}
python3 -c 'import yaml' 2>/dev/null || { step "installing PyYAML (pip)"; pip_install PyYAML; }
python3 -c 'import kubernetes_validate' 2>/dev/null ||
	{ step "installing kubernetes-validate (pip)"; pip_install kubernetes-validate; }

# ---- the binary must have check-config -------------------------------------------------------
[[ -x $BIN ]] || die "no server binary at $BIN: cargo build --release --bin hypercache-server, or set HYPERCACHE_BIN"
# A binary without check-config would ignore the argument and start serving: ask it first with
# ephemeral loopback listeners and a time limit, so that such a binary binds nothing reachable.
probe=$(env -i HYPERCACHE_API_ADDR=127.0.0.1:0 HYPERCACHE_MGMT_ADDR=127.0.0.1:0 \
	HYPERCACHE_DIST_ADDR=127.0.0.1:0 HYPERCACHE_SHUTDOWN_TIMEOUT=1s \
	timeout -k 2 5 "$BIN" check-config 2>&1) && rc=0 || rc=$?
[[ $rc == 0 && $probe == *"HYPERCACHE_API_ADDR=127.0.0.1:0"* ]] ||
	die "$BIN check-config did not validate an empty environment (exit $rc): a binary with check-config is needed"

# ---- render --------------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/k8s-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
renderings=()
render() { # name dir
	if ! kubectl kustomize "$2" >"$TMP/$1.yaml" 2>"$TMP/$1.err"; then
		cat "$TMP/$1.err" >&2
		die "kubectl kustomize $2 failed"
	fi
	if [[ -s $TMP/$1.err ]]; then
		cat "$TMP/$1.err" >&2
		die "kubectl kustomize $2 printed warnings"
	fi
	renderings+=("$1=$TMP/$1.yaml")
	echo "   $2"
}
step "kubectl kustomize (kustomize v$kver)"
render base "$KDIR/base"
for o in "$KDIR"/overlays/*/; do
	o=${o%/}
	render "${o##*/}" "$o"
done
# The example reads a token file that is never committed: render a copy with a stand-in.
mkdir -p "$TMP/tree"
cp -r "$KDIR" "$TMP/tree/"
printf 'k8s-test-stand-in-token-0123456789abcdef\n' >"$TMP/tree/kubernetes/examples/with-secret/auth-token"
render example-with-secret "$TMP/tree/kubernetes/examples/with-secret"

# ---- check ---------------------------------------------------------------------------------
step "schemas ($K8S_VERSIONS), configuration contract, self-test"
export PYTHONDONTWRITEBYTECODE=1
exec python3 tests/kubernetes/k8scheck.py --root "$ROOT" --bin "$BIN" --k8s-versions "$K8S_VERSIONS" \
	--self-test three-node "${renderings[@]}"
