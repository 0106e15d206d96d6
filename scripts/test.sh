#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit + integration tests.
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
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	echo "== docker compose cluster (scripts/compose-test.sh)"
	scripts/compose-test.sh
else
	echo "== docker not available: skipping scripts/compose-test.sh"
fi
