#!/usr/bin/env bash
# Runbook scenario "rolling upgrade" (docs/operations.md#rolling-upgrade): three nodes, RF 3,
# quorum writes and quorum reads, a bounded client load through every node (scripts/runbook/hc.py
# rolling: keep-alive connections, health-checked like a load balancer, honours Connection:
# close, retries a write answered 503 DRAINING on another node). Each node in turn: SIGTERM,
# wait for its exit, start it again with the same id and ports, wait until it is healthy, back
# in every member's view and caught up; then the next. Asserts: zero client-visible connection
# errors, zero failed reads (a read of an acknowledged write returns it or a newer one), every
# exit clean and within the deadline, no peer ever suspected a restarting node.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin rolling-upgrade

RB_ENV=(
	HYPERCACHE_HEARTBEAT=300ms HYPERCACHE_GOSSIP_INTERVAL=200ms HYPERCACHE_HINT_REPLAY=100ms
	HYPERCACHE_REBALANCE_INTERVAL=100ms HYPERCACHE_ANTI_ENTROPY_INTERVAL=1s
	HYPERCACHE_REPLICATION=3 HYPERCACHE_WRITE_CONSISTENCY=quorum HYPERCACHE_READ_CONSISTENCY=quorum
	HYPERCACHE_DRAIN_GRACE=1s HYPERCACHE_SHUTDOWN_TIMEOUT=10s
)
start_node 1
start_node 2
start_node 3
wait_all_alive 15 1 2 3
for n in 1 2 3; do wait_metric "$n" hypercache_build_info "==" 1 1; done

rb_log "client load through all three nodes"
rm -f "$OUT/stop"
hc rolling --nodes "node-1=${API[1]}=${MGMT[1]},node-2=${API[2]}=${MGMT[2]},node-3=${API[3]}=${MGMT[3]}" \
	--token "$TOKEN" --stop-file "$OUT/stop" --out "$OUT/client.log" --rate 150 >"$OUT/client.out" 2>&1 &
CLIENT=$!
RB_CLEANUP+=("kill $CLIENT 2>/dev/null")
deadline=$((SECONDS + 15))
until [[ -e $OUT/client.log.started ]]; do
	running "$CLIENT" || fail "the client exited early: $(cat "$OUT/client.out")"
	((SECONDS < deadline)) || fail "the client did not start"
	sleep 0.05
done
# let the client get going before the first restart
wait_metric 1 hypercache_dist_write_attempts_total ">=" 60 20

for n in 1 2 3; do
	rb_log "restart node-$n (SIGTERM, same id and ports)"
	peers=()
	for j in 1 2 3; do [[ $j == "$n" ]] || peers+=("$j"); done
	from=$(log_size "$n")
	from_p=$(log_size "${peers[0]}")
	t0=$(date +%s%N)
	stop_node "$n" TERM 15
	ms=$((($(date +%s%N) - t0) / 1000000))
	[[ ${EXIT_CODE[$n]} == 0 ]] || fail "node-$n exited with ${EXIT_CODE[$n]} after SIGTERM"
	ok "node-$n exited 0 after $ms ms"
	wait_log "$n" 'shutdown step 2: drain grace 1s' 1 "$from"
	wait_log "$n" 'shutdown step 7: exit 0 after ' 1 "$from"
	no_log "$n" 'shutdown deadline' "$from"
	wait_state 5 left "node-$n" "${peers[@]}"
	wait_log "${peers[0]}" "member node-$n alive -> left incarnation=[0-9]+" 1 "$from_p"
	from_p=$(log_size "${peers[0]}")
	start_node "$n"
	deadline=$((SECONDS + 10))
	until [[ $(health "$n") == 200 ]]; do
		((SECONDS < deadline)) || fail "node-$n /health not 200 within 10 s of its start"
		sleep 0.05
	done
	ok "node-$n /health answers 200"
	wait_all_alive 15 1 2 3
	wait_log "${peers[0]}" "member node-$n left -> alive incarnation=[0-9]+" 5 "$from_p"
	# caught up: the restarted node holds what its peers hold, no hints wait for it
	want=$(metric "${peers[0]}" hypercache_items)
	wait_metric "$n" hypercache_items ">=" "$want" 20
	for j in "${peers[@]}"; do wait_metric "$j" hypercache_dist_hinted_bytes "==" 0 10; done
done

rb_log "stop the load; check what the client saw"
touch "$OUT/stop"
rc=0
wait "$CLIENT" || rc=$?
ok "client: $(cat "$OUT/client.out")"
((rc == 0)) || fail "the client saw connection errors or failed reads (details in $OUT/client.log): $(cat "$OUT/client.out")"
for n in 1 2 3; do
	wait_metric "$n" hypercache_dist_nodes_suspect_total "==" 0 1
	wait_metric "$n" hypercache_dist_members_alive "==" 3 5
done
rb_pass
