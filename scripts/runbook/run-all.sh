#!/usr/bin/env bash
# Runs every runbook scenario (docs/operations.md, "Runbook"), one after another, and prints a
# summary. Exit 0 only if none failed (a scenario that cannot run here says SKIP and counts as
# passed; split-brain needs root).
#
# Usage: scripts/runbook/run-all.sh [SCENARIO...]      (default: all, in the order below)
# Environment: HYPERCACHE_BIN (default target/release/hypercache-server), RUNBOOK_DIR (logs,
# default target/runbook/<scenario>).
set -euo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
ALL=(startup-failures node-loss hint-queue-overflow memory-pressure replica-divergence
	rebalance-under-load drain-stuck split-brain rolling-upgrade)
if (($#)); then SCENARIOS=("$@"); else SCENARIOS=("${ALL[@]}"); fi
for s in "${SCENARIOS[@]}"; do
	[[ -x $DIR/$s.sh ]] || { echo "run-all: unknown scenario '$s' (known: ${ALL[*]})" >&2; exit 2; }
done

t_all=$SECONDS
summary=()
failed=()
for s in "${SCENARIOS[@]}"; do
	t0=$SECONDS
	out=$(mktemp)
	rc=0
	"$DIR/$s.sh" 2>&1 | tee "$out" || rc=$?
	if ((rc != 0)); then
		result=FAIL
		failed+=("$s")
	elif grep -q "^SKIP $s:" "$out"; then
		result=SKIP
	else
		result=PASS
	fi
	rm -f "$out"
	summary+=("$(printf '%-22s %-4s %4ss' "$s" "$result" "$((SECONDS - t0))")")
done
echo
echo "runbook scenarios:"
printf '  %s\n' "${summary[@]}"
echo "total $((SECONDS - t_all)) s; ${#failed[@]} failed"
((${#failed[@]} == 0)) || { echo "failed: ${failed[*]}" >&2; exit 1; }
