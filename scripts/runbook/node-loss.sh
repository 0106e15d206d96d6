#!/usr/bin/env bash
# Runbook scenario "node loss" (docs/operations.md#node-loss): three nodes, RF 3. node-3 is
# killed with SIGKILL while writes go on: peers suspect it, declare it dead, drop it from the
# ring and queue hints for it. Then node-2 dies too, before the survivors noticed: writes fail
# with 503 QUORUM_FAILED until node-2 is declared dead. Both come back (same ids and ports); the
# hints are replayed, rebalance refills the empty nodes, every key is readable everywhere.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin node-loss

# T = 300 ms, S = 4T: a killed node is suspect within ~2T and dead within 2T + S + G = 2 s.
RB_ENV=(
	HYPERCACHE_HEARTBEAT=300ms HYPERCACHE_SUSPICION_MULT=4 HYPERCACHE_GOSSIP_INTERVAL=200ms
	HYPERCACHE_HINT_REPLAY=100ms HYPERCACHE_HINT_TTL=60s HYPERCACHE_REBALANCE_INTERVAL=100ms
	HYPERCACHE_ANTI_ENTROPY_INTERVAL=1s HYPERCACHE_SHUTDOWN_TIMEOUT=5s
)
start_node 1
start_node 2
start_node 3
wait_all_alive 15 1 2 3
hc put --api "${API[1]}" --token "$TOKEN" --prefix before --count 200 >/dev/null || fail "initial writes failed"
ok "200 keys written through node-1"

rb_log "symptom: kill -9 node-3 and keep writing"
from1=$(log_size 1)
stop_node 3 KILL
out=$(hc put --api "${API[1]}" --token "$TOKEN" --prefix during --count 100) || fail "writes with one owner down failed: $out"
ok "100 writes acknowledged by a quorum while node-3 is down: $out"
wait_metric 1 hypercache_dist_hinted_queued_total ">=" 100 5
wait_metric 1 hypercache_dist_hinted_bytes ">" 0 5
wait_log 1 '(batch|write) to node-3 \(127\.0\.0\.1:[0-9]+\) failed: ' 5 "$from1"
wait_metric 1 hypercache_dist_heartbeat_failure_total ">" 0 10
wait_log 1 'member node-3 alive -> suspect incarnation=[0-9]+' 10 "$from1"
wait_metric 1 hypercache_dist_nodes_suspect_total ">=" 1 10
wait_log 1 'member node-3 suspect -> dead incarnation=[0-9]+' 10 "$from1"
wait_log 1 'ring now has 2 members: node-1,node-2' 5 "$from1"
for n in 1 2; do
	wait_metric "$n" hypercache_dist_nodes_dead_total ">=" 1 10
	wait_metric "$n" hypercache_dist_nodes_removed_total ">=" 1 10
	wait_metric "$n" hypercache_dist_members_dead "==" 1 10
	wait_metric "$n" hypercache_dist_members_alive "==" 2 10
done
out=$(hc get --api "${API[2]}" --token "$TOKEN" --prefix before --count 200)
[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["found"])' "$out") == 200 ]] ||
	fail "reads with node-3 dead: $out"
ok "every key still readable through node-2: $out"

rb_log "second failure: kill -9 node-2 before the survivors notice"
stop_node 2 KILL
res=$(api 1 PUT /v1/cache/quorum-probe --data-binary x)
[[ $res == "503 "*QUORUM_FAILED* ]] || fail "a write with 1 of 2 owners up answered: $res (expected 503 QUORUM_FAILED)"
ok "PUT through node-1 with node-2 down: $res"
wait_metric 1 hypercache_dist_write_quorum_failures_total ">=" 1 5
wait_log 1 'member node-2 suspect -> dead incarnation=[0-9]+' 10 "$from1"
wait_log 1 'ring now has 1 members: node-1' 5 "$from1"

rb_log "fix: restart node-2 and node-3 with the same ids and ports"
from1=$(log_size 1)
start_node 2
start_node 3
wait_all_alive 15 1 2 3
wait_log 1 'member node-3 dead -> alive incarnation=[0-9]+' 10 "$from1"
wait_log 1 'ring now has 3 members: node-1,node-2,node-3' 10 "$from1"
wait_metric 1 hypercache_dist_members_alive "==" 3 10
wait_metric 1 hypercache_dist_members_dead "==" 0 10
wait_metric 1 hypercache_dist_hinted_replayed_total ">=" 100 15
wait_metric 1 hypercache_dist_hinted_bytes "==" 0 15
wait_metric 1 hypercache_dist_rebalanced_keys_total ">" 0 15
for n in 2 3; do wait_metric "$n" hypercache_items ">=" 300 20; done
out=$(hc get --api "${API[3]}" --token "$TOKEN" --prefix during --count 100)
[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["found"])' "$out") == 100 ]] ||
	fail "reads through node-3 after the restart: $out"
ok "keys written while node-3 was down are readable through it: $out"
rb_pass
