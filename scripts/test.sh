#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests, the fault suite (as root)
# and the compose cluster (with Docker).
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
# The fault suite needs root (network namespaces); FAULTS=0 skips it.
if [[ ${FAULTS:-1} != 0 && $(id -u) == 0 ]]; then
	echo "== fault suite (scripts/faults.sh)"
	cargo build --release --bin hypercache-server
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
