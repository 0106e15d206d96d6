#!/usr/bin/env bash
# Copied from shared/tools/netns.sh (the project's shared tooling) so that CI, which runs on a
# clean clone where ../shared may be absent, has it; keep the two in sync.
# netns.sh — N test hosts in private network namespaces, joined by a bridge that
# lives in its own "switch" namespace, plus fault injection. The only change to the
# root network namespace is a blackhole route for the test subnet while the cluster
# is up, so that a client started there by mistake cannot send traffic off this
# machine (the test subnet is not local to the root namespace).
#
#   up N                 create hosts ${P}1..${P}N (P=hc) at 10.77.0.1..N/24
#   exec I CMD...        run CMD inside host I (foreground)
#   spawn I LOG CMD...   run CMD inside host I in the background, print its PID
#   partition I J        drop all frames between host I and host J (both ways)
#   heal I J             undo partition I J
#   isolate I            drop all frames to/from host I
#   rejoin I             undo isolate I
#   loss I PCT           drop PCT% (integer 0-100) of frames leaving host I; 0 = off
#   delay I MS [JIT]     hold packets arriving at host I MS (+-JIT) ms: every RTT
#                        to/from host I grows by MS; 0 = off
#   status               show hosts, addresses, fault rules, delay helpers
#   down                 kill everything started in the hosts, delete all namespaces
#
# Run every client inside a host (exec/spawn): the hosts are reachable only from
# each other. From the root namespace the subnet is blackholed.
# Needs root and: apt-get install -y iproute2 nftables iptables
# Environment: HC_PREFIX (default hc), HC_SUBNET (default 10.77.0),
#              HC_STATE (default /tmp/netns-cluster-$HC_PREFIX).
# Partitions/isolation/loss are nftables rules in the switch namespace (bridge
# family, forward hook): silent drops, as on a real network. Delay: this kernel has
# no sch_netem, so `delay` queues host I's ingress with `iptables -t raw -j NFQUEUE
# --queue-bypass` and a small stdlib-Python helper inside host I holds each packet
# for MS ms. If the kernel has netem, `delay` uses netem on host I's switch port.
set -euo pipefail

P=${HC_PREFIX:-hc}
SUBNET=${HC_SUBNET:-10.77.0}
SW="${P}sw"
STATE=${HC_STATE:-/tmp/netns-cluster-$P}
TABLE=hcfault
CHAIN=xfer
PY=$(command -v python3 || true)

die() { echo "netns-cluster: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "missing $1 (apt-get install -y $2)"; }
need ip iproute2; need nft nftables

host_ns() { echo "${P}$1"; }
port() { echo "v${P}$1"; }           # switch-side veth of host I
count() { cat "$STATE/n" 2>/dev/null || echo 0; }
check_host() {
  [[ "${1:-}" =~ ^[0-9]+$ ]] || die "host index must be a number: '${1:-}'"
  (( $1 >= 1 && $1 <= $(count) )) || die "no host $1 (cluster has $(count) hosts; run up N)"
}
swnft() { ip netns exec "$SW" nft "$@"; }
# delete every rule in the fault chain whose comment equals $1
del_rules() {
  local tag=$1 h
  for h in $(swnft -a list chain bridge "$TABLE" "$CHAIN" | awk -v t="\"$tag\"" '$0 ~ "comment " t {print $NF}'); do
    swnft delete rule bridge "$TABLE" "$CHAIN" handle "$h"
  done
}
has_rule() { swnft list chain bridge "$TABLE" "$CHAIN" | grep -q "comment \"$1\""; }
has_netem() { ip netns exec "$SW" tc qdisc add dev lo root netem delay 1ms 2>/dev/null && ip netns exec "$SW" tc qdisc del dev lo root; }

write_helper() {
  cat > "$STATE/nfq-delay.py" <<'PYEOF'
import heapq, os, random, select, signal, socket, struct, sys, time
# Hold packets queued by iptables NFQUEUE for DELAY ms, then accept (netem stand-in).
def attr(t, p):
    n = 4 + len(p); return struct.pack("=HH", n, t) + p + b"\0" * ((4 - n % 4) % 4)
def msg(mtype, q, attrs, seq=0, flags=0):
    body = struct.pack("=BBH", 0, 0, socket.htons(q)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (3 << 8) | mtype, 1 | flags, seq, 0) + body
q, delay = int(sys.argv[1]), float(sys.argv[2]) / 1e3
jit = float(sys.argv[3]) / 1e3 if len(sys.argv) > 3 else 0.0
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20); s.bind((0, 0))
s.send(msg(2, q, [attr(1, struct.pack("!BBH", 1, 0, 0))], 1, 4))                   # BIND, NLM_F_ACK
ack = s.recv(4096)
if struct.unpack_from("=H", ack, 4)[0] == 2 and struct.unpack_from("=i", ack, 16)[0]:
    sys.exit("nfq-delay: cannot bind queue %d: errno %d" % (q, -struct.unpack_from("=i", ack, 16)[0]))
s.send(msg(2, q, [attr(2, struct.pack("!IB", 0, 1) + b"\0" * 3),                   # COPY_META
                  attr(3, struct.pack("!I", 16384))], 2))                          # QUEUE_MAXLEN
stop = []
for sig in (signal.SIGTERM, signal.SIGINT): signal.signal(sig, lambda *_: stop.append(1))
heap, n = [], 0
accept = lambda pid: s.send(msg(1, q, [attr(2, struct.pack("!II", 1, pid))]))       # NF_ACCEPT
while not stop:
    now = time.monotonic()
    while heap and heap[0][0] <= now: accept(heapq.heappop(heap)[2])
    try: r = select.select([s], [], [], max(0.0, heap[0][0] - now) if heap else 0.5)[0]
    except InterruptedError: continue
    if not r: continue
    d, off = s.recv(1 << 16), 0
    while off + 16 <= len(d):
        ln, mt = struct.unpack_from("=IH", d, off)
        if ln < 16: break
        if mt == 2 and struct.unpack_from("=i", d, off + 16)[0]:
            sys.stderr.write("nfq-delay: netlink error %d\n" % struct.unpack_from("=i", d, off + 16)[0])
        elif mt == (3 << 8):
            a = off + 20
            while a + 4 <= off + ln:
                al, at = struct.unpack_from("=HH", d, a)
                if al < 4: break
                if at & 0x7FFF == 1:                                               # PACKET_HDR
                    n += 1
                    dl = delay + (random.uniform(-jit, jit) if jit else 0.0)
                    heapq.heappush(heap, (time.monotonic() + max(0.0, dl), n, struct.unpack_from("!I", d, a + 4)[0]))
                    break
                a += (al + 3) & ~3
        off += (ln + 3) & ~3
for _, _, pid in heap: accept(pid)
s.send(msg(2, q, [attr(1, struct.pack("!BBH", 2, 0, 0))]))                          # UNBIND
PYEOF
}

stop_delay() {
  local i=$1 ns; ns=$(host_ns "$i")
  if [[ -f "$STATE/delay-$i.pid" ]]; then
    local pid t; pid=$(cat "$STATE/delay-$i.pid")
    kill "$pid" 2>/dev/null || true
    # wait until it has released the queue, or the next helper cannot bind it
    for (( t = 0; t < 60; t++ )); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$STATE/delay-$i.pid"
  fi
  while ip netns exec "$ns" iptables -t raw -C PREROUTING -i eth0 -m comment --comment hc-delay \
        -j NFQUEUE --queue-num 0 --queue-bypass 2>/dev/null; do
    ip netns exec "$ns" iptables -t raw -D PREROUTING -i eth0 -m comment --comment hc-delay \
        -j NFQUEUE --queue-num 0 --queue-bypass
  done
  ip netns exec "$SW" tc qdisc del dev "$(port "$i")" root 2>/dev/null || true
}

cmd_up() {
  local n=${1:-}
  [[ "$n" =~ ^[0-9]+$ ]] && (( n >= 1 && n <= 250 )) || die "usage: up N (1..250)"
  ip netns list | grep -qw "^$SW" && die "cluster '$P' already up; run: $0 down"
  mkdir -p "$STATE"; echo "$n" > "$STATE/n"
  ip route replace blackhole "$SUBNET.0/24"
  ip netns add "$SW"
  ip netns exec "$SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  swnft add table bridge "$TABLE"
  swnft add chain bridge "$TABLE" "$CHAIN" '{ type filter hook forward priority 0; policy accept; }'
  local i ns
  for (( i = 1; i <= n; i++ )); do
    ns=$(host_ns "$i")
    ip netns add "$ns"
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    # both veth ends are born inside our namespaces: never visible in the root ns
    ip -n "$SW" link add "$(port "$i")" type veth peer name eth0 netns "$ns"
    ip -n "$SW" link set "$(port "$i")" master br0 up
    ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
  echo "up: $n hosts $(host_ns 1)..$(host_ns "$n") at $SUBNET.1..$SUBNET.$n/24 (switch ns $SW)"
}

cmd_down() {
  local ns pid i
  if [[ -d "$STATE" ]]; then
    for f in "$STATE"/delay-*.pid; do [[ -f "$f" ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  fi
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${P}([0-9]+|sw)$" || true); do
    # terminate what runs inside (only processes living in our namespaces)
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    for i in 1 2 3 4 5 6 7 8 9 10; do [[ -z "$(ip netns pids "$ns" 2>/dev/null)" ]] && break; sleep 0.2; done
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  done
  rm -rf "$STATE"
  ip route del blackhole "$SUBNET.0/24" 2>/dev/null || true
  echo "down: cluster '$P' removed"
}

cmd_partition() {
  check_host "$1"; check_host "$2"; [[ "$1" != "$2" ]] || die "partition needs two different hosts"
  local a b
  for a in "$1 $2" "$2 $1"; do
    set -- $a
    has_rule "part-$1-$2" || swnft add rule bridge "$TABLE" "$CHAIN" \
      iifname "$(port "$1")" oifname "$(port "$2")" drop comment "\"part-$1-$2\""
  done
}
cmd_heal() { check_host "$1"; check_host "$2"; del_rules "part-$1-$2"; del_rules "part-$2-$1"; }

cmd_isolate() {
  check_host "$1"
  has_rule "iso-$1" && return 0
  swnft add rule bridge "$TABLE" "$CHAIN" iifname "$(port "$1")" drop comment "\"iso-$1\""
  swnft add rule bridge "$TABLE" "$CHAIN" oifname "$(port "$1")" drop comment "\"iso-$1\""
}
cmd_rejoin() { check_host "$1"; del_rules "iso-$1"; }

cmd_loss() {
  check_host "$1"; local pct=${2:-}
  [[ "$pct" =~ ^[0-9]+$ ]] && (( pct <= 100 )) || die "usage: loss I PCT (integer 0..100)"
  del_rules "loss-$1"
  (( pct == 0 )) && return 0
  swnft add rule bridge "$TABLE" "$CHAIN" iifname "$(port "$1")" \
    numgen random mod 100 '<' "$pct" drop comment "\"loss-$1\""
}

cmd_delay() {
  check_host "$1"; local i=$1 ms=${2:-} jit=${3:-0} ns
  [[ "$ms" =~ ^[0-9]+$ && "$jit" =~ ^[0-9]+$ ]] || die "usage: delay I MS [JITTER_MS]"
  ns=$(host_ns "$i")
  stop_delay "$i"
  (( ms == 0 )) && return 0
  if has_netem; then
    # switch port egress = frames delivered to host I
    ip netns exec "$SW" tc qdisc add dev "$(port "$i")" root netem delay "${ms}ms" "${jit}ms"; return 0
  fi
  need iptables iptables; [[ -n "$PY" ]] || die "delay needs python3 (no netem in this kernel)"
  [[ -f "$STATE/nfq-delay.py" ]] || write_helper
  ip netns exec "$ns" setsid "$PY" "$STATE/nfq-delay.py" 0 "$ms" "$jit" \
    </dev/null >>"$STATE/delay-$i.log" 2>&1 &
  echo $! > "$STATE/delay-$i.pid"
  sleep 0.3   # let it bind the queue; --queue-bypass lets packets pass until it does
  kill -0 "$(cat "$STATE/delay-$i.pid")" 2>/dev/null || die "delay helper failed: $(tail -1 "$STATE/delay-$i.log")"
  # Queue on host I's *ingress* (raw PREROUTING, after ip_rcv has orphaned the skb).
  # Queueing in the sender's OUTPUT chain instead collapses TCP throughput: the held
  # skbs still count against the sender's TCP Small Queues budget.
  ip netns exec "$ns" iptables -t raw -A PREROUTING -i eth0 -m comment --comment hc-delay \
    -j NFQUEUE --queue-num 0 --queue-bypass
}

cmd_exec() { check_host "$1"; local ns; ns=$(host_ns "$1"); shift; exec ip netns exec "$ns" "$@"; }
cmd_spawn() {
  check_host "$1"; local ns log=${2:?usage: spawn I LOG CMD...}; ns=$(host_ns "$1"); shift 2
  ip netns exec "$ns" setsid "$@" </dev/null >>"$log" 2>&1 &
  echo $!
}

cmd_status() {
  local n i ns; n=$(count)
  (( n > 0 )) || { echo "cluster '$P' is down"; return 0; }
  for (( i = 1; i <= n; i++ )); do
    ns=$(host_ns "$i")
    printf '%-6s %-14s pids:%s%s\n' "$ns" "$(ip -n "$ns" -4 -br addr show dev eth0 | awk '{print $3}')" \
      "$(ip netns pids "$ns" | tr '\n' ' ')" \
      "$([[ -f "$STATE/delay-$i.pid" ]] && echo " delay-helper:$(cat "$STATE/delay-$i.pid")")"
  done
  swnft list chain bridge "$TABLE" "$CHAIN" | grep comment || echo "(no fault rules)"
}

sub=${1:-}; shift || true
case "$sub" in
  up) cmd_up "$@" ;;          down) cmd_down ;;
  exec) cmd_exec "$@" ;;      spawn) cmd_spawn "$@" ;;
  partition) cmd_partition "$@" ;;  heal) cmd_heal "$@" ;;
  isolate) cmd_isolate "$@" ;;      rejoin) cmd_rejoin "$@" ;;
  loss) cmd_loss "$@" ;;      delay) cmd_delay "$@" ;;
  status) cmd_status ;;
  *) awk 'NR>1 && /^#/ {sub(/^# ?/, ""); print; next} NR>1 {exit}' "$0"; exit 2 ;;
esac
