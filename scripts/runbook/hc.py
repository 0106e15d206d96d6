#!/usr/bin/env python3
"""Client side of the runbook scripts (python3 standard library only).

    hc.py put      --api H:P --token T --prefix P --count N [--size B] [--batch K] [--allow-fail]
    hc.py get      --api H:P --token T --prefix P --count N [--size B] [--batch K]
    hc.py load     --apis H:P,... --token T --stop-file F [--rate R]
    hc.py hold-body --api H:P --token T --ready-file F
    hc.py rolling  --nodes id=api=mgmt,... --token T --stop-file F --out F [--rate R]

put / get go through the batch endpoints (K keys per request, default 500) and print one JSON
line of counts; `get` also checks each value it finds against what `put` wrote. `load` is a
mixed read/write load (single keys) that stops when the stop file appears and prints its counts;
it exits 1 if any request failed. `hold-body` sends the head of a batch get that announces a
body it never sends and keeps the connection open (a slow client holding a request open during
shutdown). `rolling` is the client of the rolling-upgrade scenario, described at its function.
"""
import argparse
import base64
import http.client
import json
import os
import random
import socket
import sys
import threading
import time


def value_of(prefix, i, size):
    head = f"{prefix}-{i}:"
    return (head + "x" * max(0, size - len(head))).encode()


def conn_to(addr, timeout=10.0):
    host, port = addr.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def post_json(addr, token, path, body):
    c = conn_to(addr, 30.0)
    try:
        c.request("POST", path, json.dumps(body), {"Authorization": f"Bearer {token}",
                                                   "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        return r.status, data
    finally:
        c.close()


def cmd_put(a):
    stored = failed = 0
    codes = {}
    for lo in range(0, a.count, a.batch):
        items = [{"key": f"{a.prefix}-{i}", "value": value_of(a.prefix, i, a.size).decode()}
                 for i in range(lo, min(a.count, lo + a.batch))]
        status, data = post_json(a.api, a.token, "/v1/cache/batch/put", {"items": items})
        if status != 200:
            failed += len(items)
            codes[str(status)] = codes.get(str(status), 0) + len(items)
            continue
        for r in json.loads(data)["results"]:
            if r.get("stored"):
                stored += 1
            else:
                failed += 1
                codes[r.get("code", "?")] = codes.get(r.get("code", "?"), 0) + 1
    print(json.dumps({"stored": stored, "failed": failed, "codes": codes}))
    return 0 if failed == 0 or a.allow_fail else 1


def cmd_get(a):
    found = missing = errors = wrong = 0
    for lo in range(0, a.count, a.batch):
        keys = [f"{a.prefix}-{i}" for i in range(lo, min(a.count, lo + a.batch))]
        status, data = post_json(a.api, a.token, "/v1/cache/batch/get", {"keys": keys})
        if status != 200:
            errors += len(keys)
            continue
        for r in json.loads(data)["results"]:
            if r.get("error"):
                errors += 1
            elif r.get("found"):
                found += 1
                i = int(r["key"].rsplit("-", 1)[1])
                if base64.b64decode(r["value"]) != value_of(a.prefix, i, a.size):
                    wrong += 1
            else:
                missing += 1
    print(json.dumps({"found": found, "missing": missing, "errors": errors, "wrong": wrong}))
    return 0 if errors == 0 and wrong == 0 else 1


def cmd_load(a):
    """Single-key PUT and GET over keep-alive connections to every node until the stop file
    appears; each thread owns its keys, so a GET must find what the thread last stored."""
    apis = a.apis.split(",")
    lock = threading.Lock()
    counts = {"put": 0, "get": 0, "errors": 0}
    first_error = []
    stop = threading.Event()

    def worker(t):
        rnd = random.Random(t)
        conns = {}
        last = {}
        period = 8.0 / a.rate  # 8 threads share the rate
        nxt = time.monotonic()
        while not stop.is_set():
            nxt += period
            api = rnd.choice(apis)
            k = rnd.randrange(200)
            key = f"load-{t}-{k}"
            try:
                c = conns.get(api) or conn_to(api)
                conns[api] = c
                if k in last and rnd.random() < 0.5:
                    c.request("GET", f"/v1/cache/{key}", headers={"Authorization": f"Bearer {a.token}"})
                    r = c.getresponse()
                    body = r.read()
                    ok = r.status == 200 and body == last[k]
                    op = "get"
                else:
                    v = f"{t}-{k}-{time.monotonic_ns()}".encode()
                    c.request("PUT", f"/v1/cache/{key}", v, {"Authorization": f"Bearer {a.token}"})
                    r = c.getresponse()
                    r.read()
                    ok = r.status == 200
                    if ok:
                        last[k] = v
                    op = "put"
                if r.will_close:
                    c.close()
                    conns.pop(api, None)
                with lock:
                    counts[op] += 1
                    if not ok:
                        counts["errors"] += 1
                        first_error.append(f"{op} {key} via {api}: {r.status}")
            except (OSError, http.client.HTTPException) as e:
                conns.pop(api, None)
                with lock:
                    counts["errors"] += 1
                    first_error.append(f"{key} via {api}: {e!r}")
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(8)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + a.max_seconds
    while not os.path.exists(a.stop_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for th in threads:
        th.join(15)
    counts["first_errors"] = first_error[:5]
    print(json.dumps(counts))
    return 0 if counts["errors"] == 0 else 1


def cmd_hold_body(a):
    host, port = a.api.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    # a read (served while draining) whose announced body never comes
    s.sendall((f"POST /v1/cache/batch/get HTTP/1.1\r\nHost: {a.api}\r\n"
               f"Authorization: Bearer {a.token}\r\nContent-Length: 100\r\n\r\n").encode())
    open(a.ready_file, "w").close()
    s.settimeout(None)
    try:
        while s.recv(4096):  # until the server closes the connection
            pass
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- rolling upgrade client
class Node:
    def __init__(self, spec):
        self.id, self.api, self.mgmt = spec.split("=")
        self.healthy = False
        self.epoch = 0  # +1 each time /health stops answering 200


def cmd_rolling(a):
    """A client behind a load balancer, during a rolling restart.

    * A poller asks every node's management /health every 50 ms; a node is used only while its
      last answer was 200. When a node stops answering 200, its epoch moves on and every idle
      keep-alive connection to it is discarded before reuse (what a load balancer does when a
      backend fails its health check).
    * Workers keep one keep-alive connection per node; a response with `Connection: close`
      closes it and the next request reconnects.
    * A write answered 503 DRAINING is sent again to another healthy node (not an error).
    * Each worker owns its keys (one writer per key) and remembers, per key, the sequence number
      of its last acknowledged write and of its last attempt. A read must return a value whose
      sequence number lies between the two; 404, 5xx or an older value is a failed read.
    * Client-visible connection errors: reset, broken pipe, unexpected EOF, time-out, and a
      refused connection to a node believed healthy.
    At the end every acknowledged key is read once more through every node.
    """
    nodes = [Node(s) for s in a.nodes.split(",")]
    auth = {"Authorization": f"Bearer {a.token}"}
    lock = threading.Lock()
    stop = threading.Event()
    c = {"writes_acked": 0, "writes_unacked": 0, "reads_ok": 0, "failed_reads": 0,
         "conn_errors": 0, "draining_retries": 0, "connection_close_seen": 0,
         "health_transitions": 0}
    problems = []
    log = open(a.out, "w")

    def note(kind, msg):
        with lock:
            c[kind] += 1
            problems.append(f"{kind}: {msg}")
            log.write(f"{time.time():.3f} {kind}: {msg}\n")
            log.flush()

    def poller():
        while not stop.is_set():
            for n in nodes:
                ok = False
                try:
                    h = conn_to(n.mgmt, 0.5)
                    h.request("GET", "/health")
                    r = h.getresponse()
                    r.read()
                    ok = r.status == 200
                    h.close()
                except (OSError, http.client.HTTPException):
                    pass
                with lock:
                    if n.healthy and not ok:
                        n.epoch += 1
                    if n.healthy != ok:
                        c["health_transitions"] += 1
                        log.write(f"{time.time():.3f} health {n.id} {'up' if ok else 'down'}\n")
                    n.healthy = ok
            stop.wait(0.05)

    def healthy(exclude=()):
        with lock:
            return [n for n in nodes if n.healthy and n.id not in exclude]

    class Conn:
        def __init__(self):
            self.pool = {}  # node id -> (HTTPConnection, epoch)

        def request(self, node, method, path, body=None):
            """(status, body, headers) or None after a connection error (already counted)."""
            with lock:
                epoch, believed = node.epoch, node.healthy
            hc, e = self.pool.get(node.id, (None, None))
            if hc is not None and e != epoch:
                hc.close()
                hc = None
            fresh = hc is None
            if fresh:
                hc = conn_to(node.api, 10.0)
            self.pool[node.id] = (hc, epoch)
            try:
                hc.request(method, path, body, auth)
                r = hc.getresponse()
                data = r.read()
            except ConnectionRefusedError as ex:
                self.pool.pop(node.id, None)
                hc.close()
                if believed:
                    note("conn_errors", f"{method} {path} to {node.id}: refused while believed healthy ({ex})")
                return None
            except (OSError, http.client.HTTPException) as ex:
                self.pool.pop(node.id, None)
                hc.close()
                what = "new" if fresh else "reused"
                note("conn_errors", f"{method} {path} to {node.id} on a {what} connection: {ex!r}")
                return None
            if r.will_close:
                with lock:
                    c["connection_close_seen"] += 1
                hc.close()
                self.pool.pop(node.id, None)
            return r.status, data, r.headers

    acked = {}     # key -> seq of the last acknowledged write
    attempted = {}  # key -> seq of the last write attempt
    seq = [0]

    def worker(t):
        rnd = random.Random(1000 + t)
        cn = Conn()
        keys = [f"ru-{t}-{k}" for k in range(a.keys)]
        period = a.threads / a.rate
        nxt = time.monotonic()
        while not stop.is_set():
            nxt += period
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            targets = healthy()
            if not targets:
                continue
            key = rnd.choice(keys)
            if key in acked and rnd.random() < 0.5:
                node = rnd.choice(targets)
                lo, hi = acked[key], attempted[key]
                res = cn.request(node, "GET", f"/v1/cache/{key}")
                if res is None:
                    continue
                status, data, _ = res
                if status != 200:
                    note("failed_reads", f"GET {key} via {node.id}: {status} {data[:120]!r} (acked seq {lo})")
                    continue
                got = int(data.split(b":")[0])
                if lo <= got <= hi:
                    with lock:
                        c["reads_ok"] += 1
                else:
                    note("failed_reads", f"GET {key} via {node.id}: seq {got}, expected {lo}..{hi}")
                continue
            with lock:
                seq[0] += 1
                s = seq[0]
            attempted[key] = s
            tried = []
            while True:
                cand = healthy(tried)
                if not cand:
                    with lock:
                        c["writes_unacked"] += 1
                    break
                node = rnd.choice(cand)
                tried.append(node.id)
                res = cn.request(node, "PUT", f"/v1/cache/{key}", f"{s}:{node.id}".encode())
                if res is None:
                    with lock:
                        c["writes_unacked"] += 1
                    break
                status, data, _ = res
                if status == 200:
                    acked[key] = s
                    with lock:
                        c["writes_acked"] += 1
                    break
                if status == 503 and b"DRAINING" in data:
                    with lock:
                        c["draining_retries"] += 1
                    continue  # another node
                with lock:
                    c["writes_unacked"] += 1
                    log.write(f"{time.time():.3f} write {key} via {node.id}: {status} {data[:120]!r}\n")
                break

    pt = threading.Thread(target=poller, daemon=True)
    pt.start()
    t0 = time.monotonic()
    while not healthy() and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(a.threads)]
    for w in workers:
        w.start()
    open(a.out + ".started", "w").close()
    deadline = time.monotonic() + a.max_seconds
    while not os.path.exists(a.stop_file) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for w in workers:
        w.join(20)
    # Final check: every acknowledged key through every node, on fresh connections.
    final_bad = 0
    for n in nodes:
        cn = Conn()
        for key, lo in sorted(acked.items()):
            res = cn.request(n, "GET", f"/v1/cache/{key}")
            if res is None:
                final_bad += 1
                continue
            status, data, _ = res
            if status != 200 or not (lo <= int(data.split(b":")[0]) <= attempted[key]):
                final_bad += 1
                note("failed_reads", f"final GET {key} via {n.id}: {status} {data[:60]!r} (acked seq {lo})")
    c["keys_checked_at_end"] = len(acked)
    c["seconds"] = round(time.monotonic() - t0, 1)
    c["first_problems"] = problems[:8]
    log.close()
    print(json.dumps(c))
    return 0 if c["conn_errors"] == 0 and c["failed_reads"] == 0 and c["writes_acked"] > 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("put", "get"):
        s = sub.add_parser(name)
        s.add_argument("--api", required=True)
        s.add_argument("--token", required=True)
        s.add_argument("--prefix", required=True)
        s.add_argument("--count", type=int, required=True)
        s.add_argument("--size", type=int, default=32)
        s.add_argument("--batch", type=int, default=500, help="keys per request")
        s.add_argument("--allow-fail", action="store_true")
    s = sub.add_parser("load")
    s.add_argument("--apis", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--stop-file", required=True)
    s.add_argument("--rate", type=float, default=200.0)
    s.add_argument("--max-seconds", type=float, default=120.0)
    s = sub.add_parser("hold-body")
    s.add_argument("--api", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--ready-file", required=True)
    s = sub.add_parser("rolling")
    s.add_argument("--nodes", required=True, help="id=api=mgmt,...")
    s.add_argument("--token", required=True)
    s.add_argument("--stop-file", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--rate", type=float, default=150.0)
    s.add_argument("--threads", type=int, default=4)
    s.add_argument("--keys", type=int, default=50, help="keys per thread")
    s.add_argument("--max-seconds", type=float, default=150.0)
    a = p.parse_args()
    return {"put": cmd_put, "get": cmd_get, "load": cmd_load, "hold-body": cmd_hold_body,
            "rolling": cmd_rolling}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
