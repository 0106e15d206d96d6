#!/usr/bin/env python3
"""Bounded load generator of the fault suite: writes, deletes and reads over every coordinator,
recording a history for tests/faults/check.py.

* Each key belongs to exactly one thread, so the operations on a key are sequential (each starts
  after the previous one ended) and the checker can tell which write must survive.
* Every written value is unique ("<key>:w<n>"), so a value read back names the write it came from.
* Each thread rotates the coordinator on every operation (one keep-alive connection per coordinator
  per thread). A coordinator that failed is skipped for a short backoff, as a real client would, so
  an unreachable node costs one timeout per backoff instead of one per rotation.
* It stops by itself: after --duration seconds at the latest, or as soon as --stop-file exists.

History: one JSON object per line:
  {"op":"put"|"del"|"get","key","value","coord","t0","t1","outcome","status"}
  outcome: ok (2xx, or 404 for a get), fail (another HTTP status), timeout (no answer within
  --timeout: the request may still be applied later), connfail (TCP connect failed: not sent),
  error (connection broke: unknown outcome). For a get, value is what was read (null = 404).
"""

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_cluster_args(p)
    p.add_argument("--prefix", required=True, help="key prefix of this run (one per scenario)")
    p.add_argument("--threads", type=int, default=32)
    p.add_argument("--keys-per-thread", type=int, default=25)
    p.add_argument("--rate", type=float, default=700.0, help="target operations per second, all threads")
    p.add_argument("--mix", default="0.6,0.1,0.3", help="put,del,get fractions")
    p.add_argument("--timeout", type=float, default=2.0, help="per-request timeout (s)")
    p.add_argument("--backoff", type=float, default=2.0, help="skip a failed coordinator this long (s)")
    p.add_argument("--duration", type=float, default=120.0, help="hard upper bound on the run (s)")
    p.add_argument("--stop-file", help="stop as soon as this file exists")
    p.add_argument("--out", required=True, help="history file (JSON lines)")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    cl = common.cluster_from(a)
    mix = [float(x) for x in a.mix.split(",")]
    ids = cl.ids()
    stop = threading.Event()
    per_thread = a.rate / a.threads
    histories = [[] for _ in range(a.threads)]

    def worker(tid):
        rnd = random.Random(a.seed * 1000 + tid)
        keys = ["%s-t%d-k%d" % (a.prefix, tid, j) for j in range(a.keys_per_thread)]
        conns = {nid: common.Conn(cl.host(nid), common.API_PORT, timeout=a.timeout, connect_timeout=min(1.0, a.timeout))
                 for nid in ids}
        skip_until = {nid: 0.0 for nid in ids}
        hist = histories[tid]
        auth = cl.auth()
        seq = 0
        rot = tid % len(ids)
        nxt = time.monotonic() + rnd.random() / per_thread  # spread thread starts
        while not stop.is_set():
            # Pace: at most per_thread ops/s; a thread that fell behind (timeouts) catches up by at
            # most one second's worth of operations, never in an unbounded burst.
            t = time.monotonic()
            if nxt > t:
                stop.wait(nxt - t)
                if stop.is_set():
                    break
            nxt = max(nxt + 1.0 / per_thread, time.monotonic() - 1.0)
            # Next coordinator in rotation that is not backing off (or the one whose backoff ends
            # first if all are).
            wall = time.monotonic()
            coord = None
            for i in range(len(ids)):
                c = ids[(rot + i) % len(ids)]
                if skip_until[c] <= wall:
                    coord = c
                    rot = (rot + i + 1) % len(ids)
                    break
            if coord is None:
                coord = min(ids, key=lambda c: skip_until[c])
            key = rnd.choice(keys)
            r = rnd.random()
            op = "put" if r < mix[0] else ("del" if r < mix[0] + mix[1] else "get")
            value = None
            body = None
            path = "/v1/cache/" + key
            if op == "put":
                seq += 1
                value = "%s:w%d" % (key, seq)
                body = value.encode()
                method = "PUT"
            elif op == "del":
                method = "DELETE"
            else:
                method = "GET"
            rec = {"op": op, "key": key, "value": value, "coord": coord, "t0": time.time()}
            try:
                status, _, data = conns[coord].request(method, path, body=body, headers=auth)
                rec["status"] = status
                if 200 <= status < 300:
                    rec["outcome"] = "ok"
                    if op == "get":
                        rec["value"] = data.decode("utf-8", "replace")
                elif op == "get" and status == 404:
                    rec["outcome"] = "ok"
                    rec["value"] = None
                else:
                    rec["outcome"] = "fail"
                    try:
                        rec["code"] = json.loads(data).get("code")
                    except ValueError:
                        pass
            except common.ConnectError:
                rec["outcome"] = "connfail"
            except TimeoutError:
                rec["outcome"] = "timeout"
            except (OSError, http.client.HTTPException):
                rec["outcome"] = "error"
            rec["t1"] = time.time()
            if rec["outcome"] in ("timeout", "connfail", "error") or rec.get("status") == 503:
                skip_until[coord] = time.monotonic() + a.backoff
            hist.append(rec)
        for c in conns.values():
            c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.threads)]
    t_start = time.time()
    for t in threads:
        t.start()
    deadline = time.monotonic() + a.duration
    while time.monotonic() < deadline:
        if a.stop_file and os.path.exists(a.stop_file):
            break
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(a.timeout + 5)
    t_end = time.time()
    n = 0
    with open(a.out + ".tmp", "w") as f:
        f.write(json.dumps({"meta": {"t_start": t_start, "t_end": t_end, "prefix": a.prefix,
                                     "threads": a.threads, "keys": a.threads * a.keys_per_thread}}) + "\n")
        for h in histories:
            for rec in h:
                f.write(json.dumps(rec) + "\n")
                n += 1
    os.replace(a.out + ".tmp", a.out)
    dur = max(t_end - t_start, 1e-9)
    puts = sum(1 for h in histories for r in h if r["op"] == "put")
    acked = sum(1 for h in histories for r in h if r["op"] == "put" and r["outcome"] == "ok")
    print("load: %d ops in %.1fs (%.0f ops/s), %d writes (%.0f/s), %d acknowledged (%.0f/s)"
          % (n, dur, n / dur, puts, puts / dur, acked, acked / dur))


if __name__ == "__main__":
    main()
