#!/usr/bin/env bash
# The simulator's scale figures (docs/cluster.md, "scale_report"): how many gossip rounds a join, a
# crash and a leave take to reach every member, idle messages and bytes per member, ring balance.
#
#   scripts/bench/sim_scale.sh              # 100, 300 and 1 000 members (~8 min, ~5 GB of RAM at 1 000)
#   scripts/bench/sim_scale.sh 1000         # one size
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 300 1000)
cargo test --release --test sim --no-run --quiet
for n in "${sizes[@]}"; do
	start=$(date +%s)
	SIM_NODES=$n cargo test --release --quiet --test sim -- --nocapture --exact scale_report 2>&1 |
		sed -n '/nodes (gossip/,/max\/min/p'
	echo "  (simulated in $(($(date +%s) - start)) s)"
done
