#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests, the served OpenAPI document
# (schemathesis), the Kubernetes manifests,
# the Prometheus rules and dashboard against a real Prometheus (as root or with promtool), the
# fault suite (as root) and the compose cluster (with Docker).
# Usage: scripts/test.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
# Benches (harness = false) are built by clippy above and run by scripts/bench/compare.sh.
cargo test --lib --bins --tests -- --test-threads="${TEST_THREADS:-4}"
# The scripts below drive the release binary (HYPERCACHE_BIN, default target/release/...).
echo "== release binary"
cargo build --release --bin hypercache-server
echo "== OpenAPI document against a live node (scripts/openapi-test.sh, schemathesis)"
scripts/openapi-test.sh
echo "== operator commands and Kubernetes manifests (scripts/k8s-test.sh)"
scripts/k8s-test.sh
if [[ ${OBSERVABILITY:-1} != 0 ]] && { [[ $(id -u) == 0 ]] || command -v promtool >/dev/null; }; then
	echo "== Prometheus rules and Grafana dashboard against a live cluster (scripts/observability-test.sh)"
	scripts/observability-test.sh
else
	echo "== not root and no promtool, or OBSERVABILITY=0: skipping scripts/observability-test.sh"
fi
echo "== runbook scenarios (scripts/runbook/run-all.sh; split brain and io_uring-refused need root)"
scripts/runbook/run-all.sh
# The fault suite needs root (network namespaces); FAULTS=0 skips it.
if [[ ${FAULTS:-1} != 0 && $(id -u) == 0 ]]; then
	echo "== fault suite (scripts/faults.sh)"
	scripts/faults.sh
else
	echo "== not root or FAULTS=0: skipping scripts/faults.sh"
fi
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	echo "== docker compose cluster (scripts/compose-test.sh)"
	scripts/compose-test.sh
else
	echo "== docker not available: skipping scripts/compose-test.sh"
fi
