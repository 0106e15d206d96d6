#!/usr/bin/env bash
# Runbook scenario "drain that does not finish" (docs/operations.md#drain-stuck): three nodes,
# RF 3. node-2 stops answering (SIGSTOP) but stays a ring member (suspect, not dead). node-1 is
# drained: its hand-off needs every new owner's acknowledgement, so it cannot drop anything.
# SIGTERM with a client holding a request open then runs into both shutdown deadlines, and the
# node exits anyway. Fix: once node-2 answers again (SIGCONT), a drain of node-3 hands
# everything off and its shutdown finishes at once.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin drain-stuck

# S = 60 x 500 ms = 30 s: the stopped node-2 stays suspect, a ring member, for the whole run.
RB_ENV=(
	HYPERCACHE_HEARTBEAT=500ms HYPERCACHE_SUSPICION_MULT=60 HYPERCACHE_GOSSIP_INTERVAL=200ms
	HYPERCACHE_REBALANCE_INTERVAL=100ms HYPERCACHE_ANTI_ENTROPY_INTERVAL=1s
	HYPERCACHE_HINT_REPLAY=100ms HYPERCACHE_SHUTDOWN_TIMEOUT=4s
)
start_node 1
start_node 2
start_node 3
wait_all_alive 15 1 2 3
hc put --api "${API[1]}" --token "$TOKEN" --prefix ds --count 300 >/dev/null || fail "initial writes failed"
for n in 1 2 3; do wait_metric "$n" hypercache_items "==" 300 5; done

rb_log "symptom: node-2 stops answering; node-1 is drained"
signal_node 2 STOP
from1=$(log_size 1)
out=$(mgmt 1 /dist/drain -X POST)
[[ $out == '{"draining":true}' ]] || fail "POST /dist/drain answered $out"
ok "node-1 POST /dist/drain: $out"
wait_log 1 'drain started: writes now answer 503 DRAINING, /health answers 503' 2 "$from1"
wait_log 1 'member node-1 alive -> left incarnation=[0-9]+' 2 "$from1"
wait_metric 1 hypercache_draining "==" 1 1
wait_metric 1 hypercache_dist_drains_total "==" 1 1
[[ $(health 1) == 503 ]] || fail "node-1 /health answered $(health 1) while draining, expected 503"
ok "node-1 management /health answers 503"
res=$(api 1 PUT /v1/cache/late --data-binary x)
[[ $res == "503 "*DRAINING* ]] || fail "a write to the draining node answered: $res"
ok "PUT to node-1: $res"
wait_state 5 left node-1 3
# the hand-off push to the stopped node-2 times out after the 5 s peer request limit
wait_log 1 'batch to node-2 \(127\.0\.0\.1:[0-9]+\) failed: timed out' 10 "$from1"
wait_metric 1 hypercache_items "==" 300 1
wait_metric 1 hypercache_dist_rebalance_handoff_drops_total "==" 0 1

rb_log "symptom: SIGTERM with a client holding a request open"
rm -f "$OUT/held"
hc hold-body --api "${API[1]}" --token "$TOKEN" --ready-file "$OUT/held" &
HOLD=$!
RB_CLEANUP+=("kill $HOLD 2>/dev/null")
deadline=$((SECONDS + 5))
until [[ -e $OUT/held ]]; do ((SECONDS < deadline)) || fail "the holding client did not connect"; sleep 0.05; done
wait_metric 1 hypercache_connections 'listener="client"' ">=" 1 2
t0=$(date +%s%N)
signal_node 1 TERM
wait_exit 1 8 || fail "node-1 still running 8 s after SIGTERM (HYPERCACHE_SHUTDOWN_TIMEOUT=4s)"
ms=$((($(date +%s%N) - t0) / 1000000))
[[ ${EXIT_CODE[1]} == 0 ]] || fail "node-1 exited with ${EXIT_CODE[1]} after SIGTERM, expected 0"
((ms <= 5500)) || fail "node-1 took $ms ms to exit, more than HYPERCACHE_SHUTDOWN_TIMEOUT + 1 s"
ok "node-1 exited 0 after $ms ms, inside HYPERCACHE_SHUTDOWN_TIMEOUT + 1 s"
wait_log 1 'shutdown deadline share reached with [0-9]+ client connections open; closing them' 1 "$from1"
wait_log 1 'shutdown step 4: handing off entries to their owners' 1 "$from1"
wait_log 1 'shutdown deadline: hand-off not complete; the remaining owners keep the other copies' 1 "$from1"
wait_log 1 'shutdown step 7: exit 0 after ' 1 "$from1"

rb_log "fix: node-2 answers again (SIGCONT); a drain of node-3 now completes"
from3=$(log_size 3)
signal_node 2 CONT
wait_state 10 alive node-2 3
out=$(mgmt 3 /dist/drain -X POST)
[[ $out == '{"draining":true}' ]] || fail "POST /dist/drain on node-3 answered $out"
wait_metric 3 hypercache_dist_rebalance_handoff_drops_total "==" 300 15
wait_metric 3 hypercache_items "==" 0 1
wait_metric 3 hypercache_dist_rebalanced_keys_total ">=" 300 1
t0=$(date +%s%N)
stop_node 3 TERM 8
ms=$((($(date +%s%N) - t0) / 1000000))
[[ ${EXIT_CODE[3]} == 0 ]] || fail "node-3 exited with ${EXIT_CODE[3]}"
# HYPERCACHE_DRAIN_GRACE defaults to a quarter of the 4 s shutdown timeout: 1 s
((ms <= 3500)) || fail "node-3 took $ms ms to exit after its hand-off completed"
ok "node-3 exited 0 after $ms ms"
wait_log 3 'shutdown step 7: exit 0 after ' 1 "$from3"
no_log 3 'shutdown deadline' "$from3"
wait_metric 2 hypercache_items "==" 300 5
out=$(hc get --api "${API[2]}" --token "$TOKEN" --prefix ds --count 300)
[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["found"])' "$out") == 300 ]] ||
	fail "reads through node-2, the last node: $out"
ok "every key readable through node-2: $out"
rb_pass
