#!/usr/bin/env bash
# Runbook scenario "split brain" (docs/operations.md#split-brain): three nodes, RF 3, each in its
# own network namespace (scripts/netns.sh, subnet 10.79.0.0/24, prefix hcrb); the client runs in a
# fourth namespace that reaches every node. node-3 is cut off from node-1 and node-2 (not from the
# client): each side declares the other dead and both keep acknowledging writes, so the same key
# holds different values on the two sides. After the heal the members refute, rejoin, and
# last-write-wins settles every key on the later write; the other side's acknowledged write is
# lost. Needs root (namespaces, nftables); skipped otherwise.
# shellcheck source=scripts/runbook/lib.sh
source "$(dirname "$0")/lib.sh"
rb_begin split-brain

[[ $(id -u) == 0 ]] || skip "needs root for network namespaces (run as root: sudo $0)"
for tool in ip nft; do
	if ! command -v "$tool" >/dev/null; then
		command -v apt-get >/dev/null || skip "needs $tool (iproute2, nftables)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null 2>&1 ||
			{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null 2>&1; } ||
			skip "cannot install iproute2 and nftables"
	fi
done

export HC_PREFIX=hcrb HC_SUBNET=10.79.0 HC_STATE=/tmp/netns-cluster-hcrb
NETNS=$RB_ROOT/scripts/netns.sh
CLIENT_HOST=4
"$NETNS" down >/dev/null 2>&1 || true # leftovers of an interrupted run
RB_CLEANUP+=("'$NETNS' down >/dev/null 2>&1")
"$NETNS" up 4 >/dev/null
RB_CLIENT=("$NETNS" exec "$CLIENT_HOST")

RB_ENV=(
	HYPERCACHE_HEARTBEAT=200ms HYPERCACHE_SUSPICION_MULT=3 HYPERCACHE_GOSSIP_INTERVAL=200ms
	HYPERCACHE_HINT_REPLAY=100ms HYPERCACHE_REBALANCE_INTERVAL=100ms
	HYPERCACHE_ANTI_ENTROPY_INTERVAL=500ms
)
# node-N in host N on the default ports, every other node as an id@ seed (as scripts/faults.sh)
start_ns_node() {
	local n=$1 j seeds=() off line deadline=$((SECONDS + 20))
	for j in 1 2 3; do ((j == n)) || seeds+=("node-$j@$HC_SUBNET.$j:7946"); done
	API[$n]=$HC_SUBNET.$n:8080 MGMT[$n]=$HC_SUBNET.$n:8081 DIST[$n]=$HC_SUBNET.$n:7946
	off=$(log_size "$n")
	PID[$n]=$("$NETNS" spawn "$n" "$OUT/node-$n.log" env -i PATH=/usr/bin:/bin \
		HYPERCACHE_NODE_ID="node-$n" HYPERCACHE_DIST_ADVERTISE="${DIST[$n]}" \
		HYPERCACHE_SEEDS="$(IFS=,; echo "${seeds[*]}")" HYPERCACHE_AUTH_TOKEN="$TOKEN" \
		HYPERCACHE_CORES=1 HYPERCACHE_CPU_SET="${CPUS[$(((n - 1) % ${#CPUS[@]}))]}" "${RB_ENV[@]}" "$BIN")
	until tail -c +"$((off + 1))" "$OUT/node-$n.log" | grep -q 'hypercache-server started'; do
		kill -0 "${PID[$n]}" 2>/dev/null || fail "node-$n exited during start-up"
		((SECONDS < deadline)) || fail "node-$n did not log its start line within 20 s"
		sleep 0.05
	done
}
for n in 1 2 3; do start_ns_node "$n"; done
wait_all_alive 15 1 2 3
hc put --api "${API[1]}" --token "$TOKEN" --prefix sb --count 100 >/dev/null || fail "initial writes failed"
ok "100 keys written"

rb_log "symptom: node-3 cut off from node-1 and node-2"
from1=$(log_size 1)
from3=$(log_size 3)
"$NETNS" partition 3 1
"$NETNS" partition 3 2
wait_log 1 'member node-3 alive -> suspect incarnation=[0-9]+' 10 "$from1"
wait_log 1 'member node-3 suspect -> dead incarnation=[0-9]+' 10 "$from1"
wait_log 1 'ring now has 2 members: node-1,node-2' 5 "$from1"
wait_log 3 'member node-1 alive -> suspect incarnation=[0-9]+' 10 "$from3"
wait_log 3 'member node-1 suspect -> dead incarnation=[0-9]+' 15 "$from3"
wait_log 3 'member node-2 suspect -> dead incarnation=[0-9]+' 15 "$from3"
wait_log 3 'ring now has 1 members: node-3' 5 "$from3"
for n in 1 2; do
	wait_metric "$n" hypercache_dist_members_alive "==" 2 5
	wait_metric "$n" hypercache_dist_members_dead "==" 1 5
done
wait_metric 3 hypercache_dist_members_alive "==" 1 5
wait_metric 3 hypercache_dist_members_dead "==" 2 5
wait_metric 3 hypercache_dist_indirect_probe_failure_total ">" 0 1
# the cut-off side's relays never answer at all: its local health multiplier rises
wait_metric 3 hypercache_dist_local_health ">=" 1 1
wait_metric 1 hypercache_dist_local_health "==" 0 1
# both sides acknowledge writes of the same key, minority first
res=$(api 3 PUT /v1/cache/sb-split --data-binary minority)
[[ $res == "200 "* ]] || fail "the write through node-3 (alone in its ring) answered: $res"
ok "PUT sb-split=minority through node-3: $res"
res=$(api 1 PUT /v1/cache/sb-split --data-binary majority)
[[ $res == "200 "* ]] || fail "the write through node-1 answered: $res"
ok "PUT sb-split=majority through node-1: $res"
[[ $(api 3 GET /v1/cache/sb-split) == "200 minority" ]] || fail "node-3 does not serve its own side's value"
[[ $(api 2 GET /v1/cache/sb-split) == "200 majority" ]] || fail "node-2 does not serve its own side's value"
ok "the two sides serve different values for sb-split"

rb_log "fix: heal the partition; members refute and rejoin, last-write-wins settles the key"
from1=$(log_size 1)
from3=$(log_size 3)
"$NETNS" heal 3 1
"$NETNS" heal 3 2
wait_all_alive 20 1 2 3
wait_log 3 'member node-3 refutes (suspect|dead) incarnation=[0-9]+: alive incarnation=[0-9]+' 5 "$from3"
wait_log 1 'member node-3 (suspect|dead) -> alive incarnation=[0-9]+' 5 "$from1"
wait_log 3 'member node-1 (suspect|dead) -> alive incarnation=[0-9]+' 5 "$from3"
wait_log 1 'ring now has 3 members: node-1,node-2,node-3' 5 "$from1"
wait_log 3 'ring now has 3 members: node-1,node-2,node-3' 5 "$from3"
for n in 1 2 3; do
	wait_metric "$n" hypercache_dist_members_alive "==" 3 10
	wait_metric "$n" hypercache_dist_members_dead "==" 0 10
done
wait_metric 3 hypercache_dist_local_health "==" 0 10
deadline=$((SECONDS + 15))
for n in 3 2 1; do
	until [[ $(api "$n" GET /v1/cache/sb-split) == "200 majority" ]]; do
		((SECONDS < deadline)) || fail "node-$n serves '$(api "$n" GET /v1/cache/sb-split)' for sb-split after the heal, expected the later write 'majority'"
		sleep 0.1
	done
done
ok "every node serves the later write (majority); the minority's acknowledged write is lost"
out=$(hc get --api "${API[3]}" --token "$TOKEN" --prefix sb --count 100)
[[ $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["found"])' "$out") == 100 ]] || fail "reads through node-3 after the heal: $out"
ok "the keys written before the split are intact: $out"
rb_pass
