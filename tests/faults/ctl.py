#!/usr/bin/env python3
"""Small cluster probes for scripts/faults.sh, run inside the client namespace. Every wait polls
with a deadline (never a fixed sleep) and exits non-zero when the deadline passes.

  wait-ready [--deadline S] NODE...   GET /healthz on each node's client API until 200
  wait-members [--deadline S]         until every node's /cluster/members shows all nodes alive
  snapshot --out F --logs DIR         /dist/metrics of every node and the size of every log
  skew NODE                           how far NODE's wall clock is from ours, seen in versions
  logclock --log F --offset B         wait for the start line in F after byte B; print how far its
                                      timestamp (the server's wall clock) is from faults.sh's start
                                      marker before it (ours), in ms
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def wait_ready(cl, nodes, deadline_s):
    conns = {n: common.Conn(cl.host(n), common.API_PORT, timeout=1.0) for n in nodes}
    t0 = time.monotonic()
    pending = list(nodes)
    while pending:
        left = []
        for n in pending:
            try:
                status, _, _ = conns[n].request("GET", "/healthz")
                if status == 200:
                    continue
            except Exception:  # noqa: BLE001 - anything but a 200 means "not yet"
                conns[n].close()
            left.append(n)
        pending = left
        if pending and time.monotonic() - t0 > deadline_s:
            print("ctl: not healthy after %.0fs: %s" % (deadline_s, " ".join(pending)), file=sys.stderr)
            return 1
        if pending:
            time.sleep(0.05)
    print("ctl: healthy after %.2fs: %s" % (time.monotonic() - t0, " ".join(nodes)))
    return 0


def wait_members(cl, deadline_s):
    conns = common.mgmt_conns(cl)
    t0 = time.monotonic()
    while True:
        view = common.members_view(cl, conns)
        if common.all_alive(cl, view):
            print("ctl: all %d members alive on every node after %.2fs" % (cl.n, time.monotonic() - t0))
            return 0
        if time.monotonic() - t0 > deadline_s:
            print("ctl: members not all alive after %.0fs:" % deadline_s, file=sys.stderr)
            for nid, v in view.items():
                print("  %s sees %s" % (nid, "no answer" if v is None else
                                         " ".join("%s=%s" % kv for kv in sorted(v.items()))), file=sys.stderr)
            return 1
        time.sleep(0.1)


def snapshot(cl, out, logs):
    conns = common.mgmt_conns(cl)
    snap = {"t": time.time(), "metrics": {}, "log_offsets": {}}
    for nid in cl.ids():
        snap["metrics"][nid] = common.try_json(conns[nid], "/dist/metrics", cl.auth())
        path = os.path.join(logs, nid + ".log")
        snap["log_offsets"][nid] = os.path.getsize(path) if os.path.exists(path) else 0
    with open(out, "w") as f:
        json.dump(snap, f)
    return 0


def skew(cl, node):
    """PUT a probe key through NODE and read the stored version on its owners: version >> 16 is
    the coordinator's wall clock in ms, unless its HLC was already pulled ahead by versions it
    observed from peers (then the offset shrinks towards 0)."""
    api = common.Conn(cl.host(node), common.API_PORT)
    dist = common.dist_conns(cl)
    key = "skew-probe-%d" % int(time.time() * 1000)
    t0 = time.time()
    status, _, data = api.request("PUT", "/v1/cache/" + key, body=b"x", headers=cl.auth())
    t1 = time.time()
    if status != 200:
        print("ctl: skew probe PUT via %s -> %d %s" % (node, status, data[:200]), file=sys.stderr)
        return 1
    owners = json.loads(data)["owners"]
    for o in owners:
        r = common.try_json(dist[o], "/internal/get?key=" + key, cl.auth())
        if r and r.get("found"):
            v = int(r["item"]["version"])
            ms = v >> 16
            off = ms - (t0 + t1) / 2 * 1000
            print("ctl: write via %s: version %d, version>>16 is %+.0f ms from the client clock (origin %s)"
                  % (node, v, off, r["item"]["origin"]))
            return 0
    print("ctl: skew probe: no owner holds %s" % key, file=sys.stderr)
    return 1


def logclock(path, offset, deadline_s):
    """The start line's timestamp is the server's SystemTime when it logged it; faults.sh writes
    a marker line with our own time just before it spawns the server ("=== <time> faults.sh
    start"). The difference is the skew plus the start-up time (tens of ms), and does not depend
    on when this command gets to read the log (an earlier version used the time it saw the line
    and measured up to ~700 ms of waiting on top of the skew)."""
    import datetime

    def stamp(word):
        ts = datetime.datetime.strptime(word, "%Y-%m-%dT%H:%M:%S.%fZ")
        return ts.replace(tzinfo=datetime.timezone.utc).timestamp()

    t0 = time.monotonic()
    while time.monotonic() - t0 < deadline_s:
        with open(path, "rb") as f:
            f.seek(offset)
            marker = None
            for ln in f.read().decode("utf-8", "replace").splitlines():
                if ln.startswith("=== ") and "faults.sh start" in ln:
                    marker = stamp(ln.split()[1])
                if "hypercache-server started" in ln:
                    ref = marker if marker is not None else time.time()
                    print("%+.0f" % ((stamp(ln.split()[0]) - ref) * 1000))
                    return 0
        time.sleep(0.01)
    print("ctl: no start line in %s after %.0fs" % (path, deadline_s), file=sys.stderr)
    return 1


def main():
    p = argparse.ArgumentParser()
    common.add_cluster_args(p)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait-ready")
    w.add_argument("--deadline", type=float, default=30)
    w.add_argument("node", nargs="+")
    m = sub.add_parser("wait-members")
    m.add_argument("--deadline", type=float, default=30)
    s = sub.add_parser("snapshot")
    s.add_argument("--out", required=True)
    s.add_argument("--logs", required=True)
    k = sub.add_parser("skew")
    k.add_argument("node")
    c = sub.add_parser("logclock")
    c.add_argument("--log", required=True)
    c.add_argument("--offset", type=int, default=0)
    c.add_argument("--deadline", type=float, default=30)
    a = p.parse_args()
    if a.cmd == "logclock":
        return logclock(a.log, a.offset, a.deadline)
    cl = common.cluster_from(a)
    if a.cmd == "wait-ready":
        return wait_ready(cl, a.node, a.deadline)
    if a.cmd == "wait-members":
        return wait_members(cl, a.deadline)
    if a.cmd == "snapshot":
        return snapshot(cl, a.out, a.logs)
    return skew(cl, a.node)


if __name__ == "__main__":
    sys.exit(main())
