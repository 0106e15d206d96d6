#!/usr/bin/env bash
# Runbook scenario "memory pressure and eviction storms" (docs/operations.md#memory-pressure):
# two nodes (both owners of every key) with a 64 KiB byte cap. 400 values of 500 bytes do not
# fit: every write evicts, the bytes gauge sits at the cap, reads of older keys miss. The fix is
# a larger cap, applied by a rolling restart; afterwards the same writes evict nothing and every
# read hits.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin memory-pressure

RB_ENV=(
	HYPERCACHE_HEARTBEAT=300ms HYPERCACHE_GOSSIP_INTERVAL=200ms HYPERCACHE_REBALANCE_INTERVAL=100ms
	HYPERCACHE_ANTI_ENTROPY_INTERVAL=1s HYPERCACHE_SHUTDOWN_TIMEOUT=5s HYPERCACHE_MAX_BODY=32KiB
)
SMALL=(HYPERCACHE_MAX_MEMORY=64KiB)
BIG=(HYPERCACHE_MAX_MEMORY=4MiB)
start_node 1 "${SMALL[@]}"
start_node 2 "${SMALL[@]}"
wait_all_alive 15 1 2

rb_log "symptom: 400 x 500-byte values into a 64 KiB cap"
hc put --api "${API[1]}" --token "$TOKEN" --prefix mp --count 400 --size 500 --batch 40 >/dev/null || fail "writes failed"
ok "400 writes acknowledged"
for n in 1 2; do
	wait_metric "$n" hypercache_max_memory_bytes "==" 65536 1
	wait_metric "$n" hypercache_capacity_items "==" 100000 1
	wait_metric "$n" hypercache_evictions_total ">=" 250 5
	wait_metric "$n" hypercache_bytes ">=" $((65536 * 9 / 10)) 1
	wait_metric "$n" hypercache_bytes "<=" 65536 1
done
out=$(hc get --api "${API[1]}" --token "$TOKEN" --prefix mp --count 400 --size 500 --batch 40)
ok "reading every key back through node-1: $out"
wait_metric 1 hypercache_misses_total ">=" 250 5
mgmt 1 /stats | grep -q '"evictions":[1-9]' || fail "/stats of node-1 shows no evictions"
ok "node-1 /stats counts the evictions too"

rb_log "fix: rolling restart with HYPERCACHE_MAX_MEMORY=4MiB"
for n in 1 2; do
	from=$(log_size "$n")
	stop_node "$n" TERM 15
	start_node "$n" "${BIG[@]}"
	wait_log "$n" 'hypercache-server started .* max_memory=4194304 ' 1 "$from"
	wait_all_alive 15 1 2
done
hc put --api "${API[1]}" --token "$TOKEN" --prefix mp --count 400 --size 500 --batch 40 >/dev/null || fail "writes after the fix failed"
out=$(hc get --api "${API[1]}" --token "$TOKEN" --prefix mp --count 400 --size 500 --batch 40)
[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["found"])' "$out") == 400 ]] ||
	fail "reads after the fix: $out"
ok "every key readable after the fix: $out"
for n in 1 2; do
	wait_metric "$n" hypercache_max_memory_bytes "==" 4194304 1
	wait_metric "$n" hypercache_evictions_total "==" 0 1
	wait_metric "$n" hypercache_items "==" 400 10
done
wait_metric 1 hypercache_misses_total "==" 0 1
wait_metric 1 hypercache_hits_total ">=" 400 1
rb_pass
