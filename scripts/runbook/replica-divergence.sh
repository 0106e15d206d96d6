#!/usr/bin/env bash
# Runbook scenario "replica divergence" (docs/operations.md#replica-divergence): three nodes,
# RF 3, anti-entropy every second. (1) node-2 loses its copies (POST /clear, local only) while
# staying a member: its item count differs from its peers', reads through it are repaired
# (read repair), anti-entropy pulls and pushes the rest back. (2) node-3 stops answering
# (SIGSTOP) while still alive in its peers' views: their anti-entropy exchanges with it fail and
# say so in the log, until node-3 continues (SIGCONT). node-3 also runs with a tombstone TTL too
# short for the anti-entropy cycle, which the node reports at every membership change.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin replica-divergence

# T = 3 s keeps a stopped node alive in its peers' views for ~4.5 s (anti-entropy picks only
# alive peers; each node visits both peers every 2 intervals, so the worst case is ~3 s; with
# T = 2 s the stopped node turned suspect after 3 s, and in one suite run neither peer had
# started an exchange with it by then); suspicion 5 x T keeps it from being declared dead while
# it is stopped.
RB_ENV=(
	HYPERCACHE_HEARTBEAT=3s HYPERCACHE_SUSPICION_MULT=5 HYPERCACHE_GOSSIP_INTERVAL=200ms
	HYPERCACHE_ANTI_ENTROPY_INTERVAL=1s HYPERCACHE_REBALANCE_INTERVAL=100ms
)
start_node 1
start_node 2
start_node 3 HYPERCACHE_HINT_TTL=100ms HYPERCACHE_TOMBSTONE_TTL=800ms
wait_all_alive 15 1 2 3
wait_log 3 '\(ring members - 1\) x HYPERCACHE_ANTI_ENTROPY_INTERVAL = [^ ]+ exceeds HYPERCACHE_TOMBSTONE_TTL / 2 = [^ ]+: raise the tombstone TTL or shorten the interval, or deletes may reappear after a partition' 5
hc put --api "${API[1]}" --token "$TOKEN" --prefix rd --count 300 >/dev/null || fail "initial writes failed"
for n in 1 2 3; do wait_metric "$n" hypercache_items "==" 300 5; done

ae_moved() { # keys anti-entropy applied anywhere: pulled + pushed over every node
	local n s=0
	for n in 1 2 3; do
		s=$((s + $(metric "$n" hypercache_dist_merkle_keys_pulled_total) + $(metric "$n" hypercache_dist_merkle_keys_pushed_total)))
	done
	echo "$s"
}

rb_log "symptom 1: node-2 loses its copies; anti-entropy brings them back"
ae0=$(ae_moved)
out=$(mgmt 2 /clear -X POST)
[[ $out == '{"cleared":300}' ]] || fail "POST /clear on node-2 answered $out"
ok "node-2 POST /clear: $out"
wait_metric 2 hypercache_items "==" 300 10
deadline=$((SECONDS + 10))
until (($(ae_moved) - ae0 >= 300)); do
	((SECONDS < deadline)) || fail "anti-entropy moved $(($(ae_moved) - ae0)) keys, expected >= 300"
	sleep 0.1
done
ok "hypercache_dist_merkle_keys_pulled_total + _pushed_total grew by $(($(ae_moved) - ae0)) over the nodes"
for n in 1 2 3; do wait_metric "$n" hypercache_dist_merkle_syncs_total ">" 0 1; done

rb_log "symptom 1b: reads through the emptied node repair it"
for attempt in 1 2 3; do
	# one curl: the clear and ten reads within a few milliseconds, before the next exchange
	urls=()
	for i in $(seq 0 9); do urls+=(--next -s -o /dev/null -H "Authorization: Bearer $TOKEN" "http://${API[2]}/v1/cache/rd-$i"); done
	curl -s -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" "http://${MGMT[2]}/clear" "${urls[@]}"
	# repairs are applied in the background: poll for them a little
	repaired=0
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		(($(metric 2 hypercache_dist_read_repair_total) > 0)) && { repaired=1; break; }
		sleep 0.1
	done
	((repaired)) && break
	rb_log "anti-entropy refilled node-2 before the reads (attempt $attempt); again"
done
wait_metric 2 hypercache_dist_read_repair_total ">" 0 1
wait_metric 2 hypercache_dist_forward_get_total ">" 0 1
wait_metric 2 hypercache_items "==" 300 10
# converged: exchanges find equal roots again (clean ticks grow)
clean0=$(metric 1 hypercache_dist_auto_sync_clean_ticks_total)
wait_metric 1 hypercache_dist_auto_sync_clean_ticks_total ">" "$((clean0 + 1))" 5
wait_metric 1 hypercache_dist_auto_sync_loops_total ">" "$((clean0 + 1))" 1

rb_log "symptom 2: node-3 stops answering while its peers still hold it alive"
# shellcheck disable=SC2034 # read through ${!from} below
from1=$(log_size 1) from2=$(log_size 2)
signal_node 3 STOP
deadline=$((SECONDS + 12))
who=""
while [[ -z $who ]]; do
	for n in 1 2; do
		from=from$n
		tail -c +"$((${!from} + 1))" "$OUT/node-$n.log" | grep -qE 'anti-entropy with node-3 failed: ' && who=$n && break
	done
	[[ -n $who ]] && break
	((SECONDS < deadline)) || fail "neither node-1 nor node-2 logged 'anti-entropy with node-3 failed: ...' within 12 s"
	sleep 0.1
done
from=from$who
wait_log "$who" 'anti-entropy with node-3 failed: ' 1 "${!from}"
# the exchange waited for the 5 s peer request time-out; the next one starts an interval later
wait_metric "$who" hypercache_dist_last_auto_sync_seconds ">=" 4 1
err=$(mgmt "$who" /dist/metrics | python3 -c 'import json,sys; print(json.load(sys.stdin)["LastAutoSyncError"])')
[[ $err == "node-3: "* ]] || fail "node-$who /dist/metrics LastAutoSyncError is '$err', expected 'node-3: ...'"
ok "node-$who /dist/metrics LastAutoSyncError: $err"

rb_log "fix: node-3 continues (SIGCONT); exchanges with it complete again"
syncs0=$(($(metric 1 hypercache_dist_merkle_syncs_total) + $(metric 2 hypercache_dist_merkle_syncs_total)))
signal_node 3 CONT
wait_all_alive 15 1 2 3
s3=$(metric 3 hypercache_dist_merkle_syncs_total)
wait_metric 3 hypercache_dist_merkle_syncs_total ">" "$s3" 5
deadline=$((SECONDS + 10))
until (($(metric 1 hypercache_dist_merkle_syncs_total) + $(metric 2 hypercache_dist_merkle_syncs_total) > syncs0 + 4)); do
	((SECONDS < deadline)) || fail "merkle syncs on node-1 and node-2 did not grow after SIGCONT"
	sleep 0.1
done
ok "hypercache_dist_merkle_syncs_total grows again on node-1 and node-2"
wait_metric "$who" hypercache_dist_last_auto_sync_seconds "<" 1 5
err=$(mgmt "$who" /dist/metrics | python3 -c 'import json,sys; print(json.load(sys.stdin)["LastAutoSyncError"])')
[[ -z $err ]] || fail "node-$who /dist/metrics LastAutoSyncError still '$err' after exchanges succeeded"
ok "node-$who /dist/metrics LastAutoSyncError is empty again"
for n in 1 2 3; do wait_metric "$n" hypercache_items "==" 300 5; done
rb_pass
