#!/usr/bin/env python3
"""The comparison harness behind scripts/bench/compare.sh (run that; it installs the peers and
builds the release binary first). Standard library only.

Runs ROUNDS rounds of: hypercache GET / PUT / pipelined GET (depth 16) / fixed-rate 90/10 mix /
two-core GET, Redis GET / SET, nginx fixed 100-byte body; then memory (1 M items) and idle CPU once.
Server on CPU 1, load generator on CPU 0. Prints one table of medians and the ratios ours/peer
(each ratio is computed within a round, then the median over rounds is taken), and with --write
replaces the block between the compare markers in PERFORMANCE.md.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVER = os.path.join(ROOT, "target", "release", "hypercache-server")
WRK = os.path.join(ROOT, "scripts", "wrk")
REPORT_LUA = os.path.join(ROOT, "scripts", "bench", "report.lua")
TICK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = "1", "0"
KEYS = 100_000
VALUE = 100
CONNS = 64
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"

args = None
workdir = None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Machine state


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_quiet(limit, max_wait):
    """Polls the 1-minute load every 30 s until it is below `limit`; gives up after `max_wait` s."""
    start = time.time()
    while True:
        la = load1()
        if la < limit:
            log(f"machine quiet: load {la:.2f} < {limit}")
            return {"load": la, "waited_s": round(time.time() - start), "gave_up": False}
        if time.time() - start >= max_wait:
            log(f"machine still busy after {max_wait} s (load {la:.2f}); measuring anyway")
            return {"load": la, "waited_s": round(time.time() - start), "gave_up": True}
        log(f"waiting for a quiet machine: load {la:.2f} >= {limit}")
        time.sleep(30)


def proc_cpu_s(pids):
    """utime + stime (all threads) of the given processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # fields 14, 15 of stat(5)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / TICK


def cpu_busy_s(cpu):
    """Busy time of one CPU (all but idle and iowait), in seconds."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v[:8]) - v[3] - v[4]) / TICK
    return 0.0


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def taskset(cpu, cmd):
    return ["taskset", "-c", cpu] + cmd


# ---------------------------------------------------------------------------------------------
# Servers


class Proc:
    """A server process we started (and only that one is stopped, by its pid)."""

    def __init__(self, name, cmd, env=None, pids=None):
        self.name = name
        self.log = open(os.path.join(workdir, f"{name}.log"), "ab")
        self.p = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=self.log,
                                  start_new_session=True)
        self.extra_pids = pids or (lambda _pid: [])

    def pids(self):
        return [self.p.pid] + self.extra_pids(self.p.pid)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def wait_http(port, path="/healthz", timeout=20, tls=False):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if tls:
                ctx = ssl.create_default_context(cafile=tls_cert()[0])
                c = http.client.HTTPSConnection("localhost", port, timeout=1, context=ctx)
            else:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on :{port}{path} within {timeout} s")


def tls_cert():
    """A self-signed P-256 certificate for localhost/127.0.0.1, shared by us and nginx."""
    cert, key = os.path.join(workdir, "tls.pem"), os.path.join(workdir, "tls.key")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
    return cert, key


def start_hypercache(cores=1, cpu_set=SERVER_CPU, name="hypercache", tls=False):
    api, mgmt, dist = free_port(), free_port(), free_port()
    env = dict(os.environ,
               HYPERCACHE_NODE_ID="bench",
               HYPERCACHE_API_ADDR=f"127.0.0.1:{api}",
               HYPERCACHE_MGMT_ADDR=f"127.0.0.1:{mgmt}",
               HYPERCACHE_DIST_ADDR=f"127.0.0.1:{dist}",
               HYPERCACHE_CORES=str(cores),
               HYPERCACHE_CPU_SET=cpu_set,
               HYPERCACHE_CAPACITY="2000000")
    env.pop("HYPERCACHE_AUTH_TOKEN", None)
    if tls:
        env["HYPERCACHE_API_TLS_CERT"], env["HYPERCACHE_API_TLS_KEY"] = tls_cert()
    p = Proc(name, [SERVER], env=env)
    wait_http(api, tls=tls)
    p.port, p.mgmt = api, mgmt
    return p


def preload_hypercache(port, tls=False):
    env = dict(os.environ, KEYS=str(KEYS), VALUE_SIZE=str(VALUE))
    url = f"http://127.0.0.1:{port}"
    if tls:
        env["CURL_CA_BUNDLE"] = tls_cert()[0]
        url = f"https://localhost:{port}"
    subprocess.run([os.path.join(WRK, "preload.sh"), url], env=env,
                   check=True, stdout=subprocess.DEVNULL)


def stats(mgmt):
    c = http.client.HTTPConnection("127.0.0.1", mgmt, timeout=5)
    c.request("GET", "/stats")
    return json.loads(c.getresponse().read())


def wait_until(ready, name, timeout=10):
    """Polls `ready()` every 100 ms until it holds; a server that never gets there is an error."""
    deadline = time.time() + timeout
    while not ready():
        if time.time() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.1)


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def start_redis():
    port = free_port()
    p = Proc("redis", taskset(SERVER_CPU, [
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
        "--dir", workdir, "--logfile", ""]))
    wait_until(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True,
                                      text=True).stdout.strip() == "PONG", "redis")
    p.port = port
    return p


def redis_load(port, n, key_fmt, value):
    """SETs n keys through redis-cli --pipe (RESP written to a file first)."""
    path = os.path.join(workdir, "redis-load.resp")
    v = value.encode()
    with open(path, "wb") as f:
        for i in range(n):
            k = (key_fmt % i).encode()
            f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
    with open(path, "rb") as f:
        subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f, check=True,
                       stdout=subprocess.DEVNULL)


def redis_info(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"], capture_output=True,
                         text=True, check=True).stdout
    return {k: v for k, v in (l.strip().split(":", 1) for l in out.splitlines() if ":" in l)}


def start_memcached():
    """memcached on the server CPU, one worker thread, room for the memory row's items."""
    port = free_port()
    p = Proc("memcached", taskset(SERVER_CPU, [
        "memcached", "-p", str(port), "-U", "0", "-l", "127.0.0.1", "-t", "1", "-m", "4096",
        "-c", "1024", "-u", "root"]))
    wait_until(lambda: accepts(port), "memcached")
    p.port = port
    return p


def memcached_load(port, n, key_fmt, value):
    """`set`s n keys with the text protocol (noreply), pipelined in 1 000-key writes."""
    v = value.encode()
    s = socket.create_connection(("127.0.0.1", port))
    for start in range(0, n, 1000):
        s.sendall(b"".join(b"set %s 0 0 %d noreply\r\n%s\r\n" % ((key_fmt % i).encode(), len(v), v)
                           for i in range(start, min(start + 1000, n))))
    s.sendall(b"get " + (key_fmt % (n - 1)).encode() + b"\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        buf += s.recv(65536)
    s.close()


def memcached_stats(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"stats\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        buf += s.recv(65536)
    s.close()
    return {l.split()[1]: l.split()[2] for l in buf.decode().splitlines() if l.startswith("STAT ")}


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path {dir}/nginx-body;
  proxy_temp_path {dir}/nginx-proxy;
  fastcgi_temp_path {dir}/nginx-fastcgi;
  uwsgi_temp_path {dir}/nginx-uwsgi;
  scgi_temp_path {dir}/nginx-scgi;
  server {{
    listen 127.0.0.1:{port}{ssl};
{ssl_conf}
    location / {{
      default_type application/octet-stream;
      return 200 "{body}";
    }}
  }}
}}
"""


def start_nginx(tls=False):
    port = free_port()
    conf = os.path.join(workdir, "nginx.conf")
    ssl_conf = ""
    if tls:
        cert, key = tls_cert()
        ssl_conf = (f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
                    "    ssl_protocols TLSv1.3;")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=workdir, port=port, body="x" * VALUE,
                                  ssl=" ssl" if tls else "", ssl_conf=ssl_conf))
    p = Proc("nginx", taskset(SERVER_CPU, ["nginx", "-c", conf, "-p", workdir]),
             pids=children)
    wait_http(port, "/", tls=tls)
    p.port = port
    return p


# ---------------------------------------------------------------------------------------------
# Load generators


def measured(server_pids, cmd, env=None):
    """Runs the load generator `cmd` (pinned to LOAD_CPU) and returns its stdout plus the CPU
    seconds of the server, of the generator and of everything else on the server's CPU."""
    srv0, cpu0, t0 = proc_cpu_s(server_pids), cpu_busy_s(SERVER_CPU), time.time()
    p = subprocess.Popen(taskset(LOAD_CPU, cmd), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    srv = proc_cpu_s(server_pids) - srv0
    cpu1 = cpu_busy_s(SERVER_CPU) - cpu0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}):\n{out}")
    return out, {"server_cpu_s": srv, "load_cpu_s": ru.ru_utime + ru.ru_stime,
                 "other_on_server_cpu_s": max(0.0, cpu1 - srv), "wall_s": wall}


def wrk(server_pids, port, script, scheme="http", **env):
    e = dict(os.environ, WRK_SCRIPT=os.path.join(WRK, script), KEYS=str(KEYS),
             VALUE_SIZE=str(VALUE), **env)
    e.pop("TOKEN", None)
    out, m = measured(server_pids, ["wrk", "-t1", f"-c{CONNS}", f"-d{args.duration}s",
                                    "-s", REPORT_LUA, f"{scheme}://127.0.0.1:{port}"], env=e)
    line = next((l for l in out.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no BENCH line:\n{out}")
    f = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    rps = f["requests"] / (f["duration_us"] / 1e6)
    return dict(m, rps=rps, requests=f["requests"], p50_us=f["p50"], p99_us=f["p99"],
                p999_us=f["p999"], non2xx=f["non2xx"], errors=f["errors"],
                per_cpu_s=f["requests"] / m["server_cpu_s"] if m["server_cpu_s"] else None)


def redis_bench(p, test, n, pipeline=1):
    out, m = measured(p.pids(), ["redis-benchmark", "-h", "127.0.0.1", "-p", str(p.port),
                                 "-c", str(CONNS), "-P", str(pipeline), "-d", str(VALUE), "-r", str(KEYS),
                                 "-n", str(n), "-t", test, "--precision", "3"])
    rps = float(re.search(r"throughput summary:\s+([\d.]+) requests per second", out).group(1))
    # "Latency by percentile distribution": first printed percentile at or above the target.
    dist = [(float(a), float(b)) for a, b in
            re.findall(r"^\s*([\d.]+)% <= ([\d.]+) milliseconds", out, re.M)]

    def pct(q):
        return round(next((ms for pc, ms in dist if pc >= q), dist[-1][1]) * 1000)

    return dict(m, rps=rps, requests=n, p50_us=pct(50), p99_us=pct(99), p999_us=pct(99.9),
                non2xx=0, errors=0, per_cpu_s=n / m["server_cpu_s"] if m["server_cpu_s"] else None)


def fixed_rate_bin():
    """benches/fixed_rate.rs, built by compare.sh (`cargo bench --no-run --bench fixed_rate`)."""
    if os.environ.get("FIXED_RATE_BIN"):
        return os.environ["FIXED_RATE_BIN"]
    deps = os.path.join(ROOT, "target", "release", "deps")
    cands = [os.path.join(deps, f) for f in os.listdir(deps) if re.fullmatch(r"fixed_rate-[0-9a-f]+", f)]
    cands = [c for c in cands if os.access(c, os.X_OK)]
    return max(cands, key=os.path.getmtime) if cands else None


def fixed_rate(server_pids, port, rate):
    """90 % GET / 10 % PUT at a fixed total rate over 64 connections, coordinated-omission
    corrected (benches/fixed_rate.rs, wrk2's model), generator pinned to LOAD_CPU."""
    out, m = measured(server_pids, [fixed_rate_bin(), "--addr", f"127.0.0.1:{port}",
                                    "--rate", str(int(rate)), "--duration", str(args.duration),
                                    "--conns", str(CONNS), "--keys", str(KEYS), "--put-pct", "10",
                                    "--value-size", str(VALUE)])
    line = next((l for l in out.splitlines() if l.startswith("FIXED ")), None)
    if line is None:
        raise RuntimeError(f"fixed_rate printed no FIXED line:\n{out}")
    f = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    return dict(m, target_rps=f["target_rps"], rps=f["rps"], requests=int(f["requests"]),
                non2xx=int(f["non2xx"]), errors=int(f["errors"]), p50_us=f["p50"],
                p99_us=f["p99"], p999_us=f["p999"], max_us=f["max"], behind_ms=f["behind_ms"],
                per_cpu_s=f["requests"] / m["server_cpu_s"] if m["server_cpu_s"] else None)


# ---------------------------------------------------------------------------------------------
# One round


def tls_round(n, r):
    """GET over TLS 1.3 with keep-alive: ours against nginx serving the fixed body with the same
    certificate (wrk negotiates TLS 1.3 with both)."""
    log(f"round {n}: hypercache over TLS, 1 data core on CPU {SERVER_CPU}")
    hc = start_hypercache(tls=True, name="hypercache-tls")
    try:
        preload_hypercache(hc.port, tls=True)
        r["hc_tls_get"] = wrk(hc.pids(), hc.port, "get.lua", scheme="https")
        log(f"  GET over TLS {r['hc_tls_get']['rps']:.0f} req/s")
    finally:
        hc.stop()
    log(f"round {n}: nginx over TLS")
    ng = start_nginx(tls=True)
    try:
        r["nginx_tls"] = wrk(ng.pids(), ng.port, "get.lua", scheme="https")
        log(f"  {r['nginx_tls']['rps']:.0f} req/s")
    finally:
        ng.stop()


def round_(n, state):
    r = {}
    if args.only_tls:
        hc = start_hypercache()
        try:
            preload_hypercache(hc.port)
            r["hc_get"] = wrk(hc.pids(), hc.port, "get.lua")
            log(f"round {n}: plaintext GET {r['hc_get']['rps']:.0f} req/s")
        finally:
            hc.stop()
        ng = start_nginx()
        try:
            r["nginx"] = wrk(ng.pids(), ng.port, "get.lua")
        finally:
            ng.stop()
        tls_round(n, r)
        return r
    log(f"round {n}: hypercache, 1 data core on CPU {SERVER_CPU}")
    hc = start_hypercache()
    try:
        preload_hypercache(hc.port)
        r["hc_get"] = wrk(hc.pids(), hc.port, "get.lua")
        log(f"  GET {r['hc_get']['rps']:.0f} req/s")
        r["hc_put"] = wrk(hc.pids(), hc.port, "put.lua")
        log(f"  PUT {r['hc_put']['rps']:.0f} req/s")
        r["hc_pipe"] = wrk(hc.pids(), hc.port, "pipeline.lua", DEPTH="16")
        for q in ("p50_us", "p99_us", "p999_us"):  # wrk times batches, not responses
            r["hc_pipe"][q] = None
        log(f"  pipelined GET x16 {r['hc_pipe']['rps']:.0f} req/s")
        if fixed_rate_bin():
            state["rate"] = r["hc_get"]["rps"] * 0.5
            r["hc_fixed"] = fixed_rate(hc.pids(), hc.port, state["rate"])
            log(f"  fixed-rate 90/10 at {state['rate']:.0f}/s: achieved {r['hc_fixed']['rps']:.0f}, "
                f"p99 {r['hc_fixed']['p99_us']:.0f} µs p99.9 {r['hc_fixed']['p999_us']:.0f} µs")
    finally:
        hc.stop()

    log(f"round {n}: hypercache, 2 data cores on CPUs 0,1 (wrk shares CPU {LOAD_CPU})")
    hc2 = start_hypercache(cores=2, cpu_set="0,1", name="hypercache-2core")
    try:
        preload_hypercache(hc2.port)
        s0 = stats(hc2.mgmt)
        r["hc2_get"] = wrk(hc2.pids(), hc2.port, "get.lua")
        s1 = stats(hc2.mgmt)
        r["hc2_get"]["core_hits"] = [b["hits"] - a["hits"] for a, b in zip(s0["cores"], s1["cores"])]
        log(f"  GET {r['hc2_get']['rps']:.0f} req/s, per core {r['hc2_get']['core_hits']}")
    finally:
        hc2.stop()

    log(f"round {n}: redis")
    rd = start_redis()
    try:
        redis_load(rd.port, KEYS, "key:%012d", "x" * VALUE)
        r["redis_get"] = redis_bench(rd, "get", state["redis_n"]["get"])
        r["redis_set"] = redis_bench(rd, "set", state["redis_n"]["set"])
        r["redis_pipe"] = redis_bench(rd, "get", state["redis_n"].get("pipe", 5 * state["redis_n"]["get"]),
                                      pipeline=16)
        for q in ("p50_us", "p99_us", "p999_us"):  # per batch, like wrk's pipelined figures
            r["redis_pipe"][q] = None
        for t in ("get", "set", "pipe"):  # aim the next round at the configured duration
            state["redis_n"][t] = int(r[f"redis_{t}"]["rps"] * args.duration)
        log(f"  GET {r['redis_get']['rps']:.0f} SET {r['redis_set']['rps']:.0f} "
            f"GET -P 16 {r['redis_pipe']['rps']:.0f} req/s")
    finally:
        rd.stop()

    log(f"round {n}: nginx")
    ng = start_nginx()
    try:
        r["nginx"] = wrk(ng.pids(), ng.port, "get.lua")
        log(f"  {r['nginx']['rps']:.0f} req/s")
        if "rate" in state:
            r["nginx_fixed"] = fixed_rate(ng.pids(), ng.port, state["rate"])
            log(f"  fixed-rate at {state['rate']:.0f}/s: p99 {r['nginx_fixed']['p99_us']:.0f} µs "
                f"p99.9 {r['nginx_fixed']['p999_us']:.0f} µs")
    finally:
        ng.stop()
    tls_round(n, r)
    return r


# ---------------------------------------------------------------------------------------------
# Memory and idle CPU (once)


def memory(items):
    """RSS growth per item minus key+value bytes for `items` items of 16-byte keys and 100-byte
    values, hypercache (1 core) and Redis (RSS and used_memory)."""
    out = {"items": items}
    kv = 16 + VALUE
    hc = start_hypercache(name="hypercache-mem")
    try:
        time.sleep(1)
        before = rss_kib(hc.pids())
        value = "x" * VALUE
        c = http.client.HTTPConnection("127.0.0.1", hc.port, timeout=30)
        batch = 1000
        for start in range(0, items, batch):
            body = json.dumps({"items": [{"key": "k%015d" % i, "value": value}
                                         for i in range(start, min(start + batch, items))]})
            c.request("POST", "/v1/cache/batch/put", body=body,
                      headers={"Content-Type": "application/json"})
            resp = c.getresponse()
            data = resp.read()
            if resp.status != 200 or b'"stored":false' in data:
                raise RuntimeError(f"batch put failed: {resp.status} {data[:200]!r}")
        time.sleep(1)
        after = rss_kib(hc.pids())
        st = stats(hc.mgmt)
        out["hc"] = {"rss_before_kib": before, "rss_after_kib": after, "items": st["items"],
                     "per_item_b": (after - before) * 1024 / items,
                     "overhead_b": (after - before) * 1024 / items - kv}
    finally:
        hc.stop()
    mc = start_memcached()
    try:
        time.sleep(1)
        before = rss_kib(mc.pids())
        memcached_load(mc.port, items, "k%015d", "x" * VALUE)
        time.sleep(1)
        after = rss_kib(mc.pids())
        held = int(memcached_stats(mc.port)["curr_items"])
        if held != items:
            raise RuntimeError(f"memcached holds {held} of {items} items")
        out["memcached"] = {"rss_overhead_b": (after - before) * 1024 / items - kv}
    finally:
        mc.stop()
    rd = start_redis()
    try:
        i0 = redis_info(rd.port)
        redis_load(rd.port, items, "k%015d", "x" * VALUE)
        i1 = redis_info(rd.port)
        um = (int(i1["used_memory"]) - int(i0["used_memory"])) / items
        rss = (int(i1["used_memory_rss"]) - int(i0["used_memory_rss"])) / items
        out["redis"] = {"used_memory_per_item_b": um, "used_memory_overhead_b": um - kv,
                        "rss_per_item_b": rss, "rss_overhead_b": rss - kv}
    finally:
        rd.stop()
    return out


def idle():
    out = {}
    for cores, cpu_set in ((1, SERVER_CPU), (2, "0,1")):
        hc = start_hypercache(cores=cores, cpu_set=cpu_set, name=f"hypercache-idle{cores}")
        try:
            time.sleep(10)
            c0, t0 = proc_cpu_s(hc.pids()), time.time()
            time.sleep(10)
            cpu = proc_cpu_s(hc.pids()) - c0
            out[f"{cores}core"] = {"cpu_s": cpu, "pct_per_core": 100 * cpu / (time.time() - t0) / cores}
        finally:
            hc.stop()
    return out


# ---------------------------------------------------------------------------------------------
# Report


ROWS = [  # key, label
    ("hc_get", "hypercache GET hit (1 core)"),
    ("hc_put", "hypercache PUT 100 B (1 core)"),
    ("hc_pipe", "hypercache GET, pipelined x16"),
    ("hc2_get", "hypercache GET, 2 cores (~1/2 cross-core) ¹"),
    ("hc_fixed", "hypercache 90/10 at 50 % of peak, fixed rate ²"),
    ("redis_get", "Redis GET (-P 1)"),
    ("redis_set", "Redis SET (-P 1)"),
    ("redis_pipe", "Redis GET, pipelined -P 16"),
    ("nginx", "nginx fixed 100 B body"),
    ("nginx_fixed", "nginx, same fixed rate and mix ²"),
    ("hc_tls_get", "hypercache GET over TLS 1.3 (keep-alive)"),
    ("nginx_tls", "nginx fixed 100 B body over TLS 1.3, same certificate"),
]


def med(rounds, key, field):
    vals = [r[key][field] for r in rounds if key in r and r[key].get(field) is not None]
    return statistics.median(vals) if vals else None


def ratio(rounds, num, den, field="per_cpu_s"):
    vals = [r[num][field] / r[den][field] for r in rounds
            if num in r and den in r and r[num].get(field) and r[den].get(field)]
    return statistics.median(vals) if vals else None


def fmt(v, d=0):
    if v is None:
        return "–"
    return f"{v:,.{d}f}"


def render(res):
    rounds = res["rounds"]
    n = len(rounds)
    lines = []
    m = res["machine"]
    lines.append(f"Run {res['date']} on {m['cpu']} ({m['cpus']} CPUs), {m['kernel']}; "
                 f"{n} round(s) of {args.duration} s per run, median shown. "
                 f"Load before: {res['quiet']['load']:.2f}"
                 + (" (gave up waiting for < 0.7)" if res['quiet']['gave_up'] else "") + ".")
    lines.append("")
    lines.append("| Run | req/s | server CPU s | req per server-CPU-s | p50 µs | p99 µs | p99.9 µs | other CPU s on server CPU ³ |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in ROWS:
        if not any(key in r for r in rounds):
            continue
        extra = ""
        if key in ("hc_fixed", "nginx_fixed"):
            extra = f" (target {fmt(med(rounds, key, 'target_rps'))}/s)"
        bad = sum(r[key].get("non2xx", 0) + r[key].get("errors", 0) for r in rounds if key in r)
        if bad:
            extra += f" ⚠ {bad:,} non-2xx/errors"
        lines.append(
            f"| {label}{extra} | {fmt(med(rounds, key, 'rps'))} | {fmt(med(rounds, key, 'server_cpu_s'), 2)} "
            f"| {fmt(med(rounds, key, 'per_cpu_s'))} | {fmt(med(rounds, key, 'p50_us'))} "
            f"| {fmt(med(rounds, key, 'p99_us'))} | {fmt(med(rounds, key, 'p999_us'))} "
            f"| {fmt(med(rounds, key, 'other_on_server_cpu_s'), 2)} |")
    lines.append("")
    lines.append("| Target | Ours / peer (median of per-round ratios) | Goal | Met |")
    lines.append("|---|---:|---|---|")

    def row(name, v, goal, ok, d=2, unit="×"):
        lines.append(f"| {name} | {fmt(v, d)}{unit if v is not None else ''} | {goal} | "
                     f"{'–' if v is None else ('yes' if ok(v) else 'no')} |")

    row("GET hit vs Redis GET, per server-CPU-s", ratio(rounds, "hc_get", "redis_get"),
        "≥ 1.2×", lambda v: v >= 1.2)
    row("GET hit vs nginx 100 B, per server-CPU-s", ratio(rounds, "hc_get", "nginx"),
        "≥ 0.9×", lambda v: v >= 0.9)
    row("GET over TLS 1.3 vs nginx over TLS 1.3, per server-CPU-s",
        ratio(rounds, "hc_tls_get", "nginx_tls"), "≥ 0.9×", lambda v: v >= 0.9)
    row("  TLS GET vs plaintext GET, per server-CPU-s", ratio(rounds, "hc_tls_get", "hc_get"),
        "", lambda v: True)
    row("PUT vs Redis SET, per server-CPU-s", ratio(rounds, "hc_put", "redis_set"),
        "≥ 1.1×", lambda v: v >= 1.1)
    row("Pipelined GET x16 vs Redis GET -P 16, per server-CPU-s",
        ratio(rounds, "hc_pipe", "redis_pipe"), "≥ 1.1×", lambda v: v >= 1.1)
    row("Pipelined GET x16 vs GET, req/s", ratio(rounds, "hc_pipe", "hc_get", "rps"),
        "≥ 3×", lambda v: v >= 3)
    row("  (same, per server-CPU-s)", ratio(rounds, "hc_pipe", "hc_get"), "", lambda v: True)
    row("2 cores, keys spread vs 1 core all-local, per server-CPU-s ¹",
        ratio(rounds, "hc2_get", "hc_get"), "≥ 0.85×", lambda v: v >= 0.85)
    p99, p999 = med(rounds, "hc_fixed", "p99_us"), med(rounds, "hc_fixed", "p999_us")
    row("Fixed-rate 90/10 at 50 % of peak: p99 ²", p99, "≤ 250 µs", lambda v: v <= 250, 0, " µs")
    row("Fixed-rate 90/10 at 50 % of peak: p99.9 ²", p999, "≤ 1 000 µs", lambda v: v <= 1000, 0, " µs")
    mem = res.get("memory")
    if mem:
        hc, rd = mem["hc"], mem["redis"]
        row(f"Memory, {mem['items']:,} items: RSS growth per item − key − value",
            hc["overhead_b"], "≤ 24 B (stretch 16 B)", lambda v: v <= 24, 1, " B")
        row("  Redis for the same data: used_memory growth per item − key − value",
            rd["used_memory_overhead_b"], "ours ≤ this", lambda v: hc["overhead_b"] <= v, 1, " B")
        if "memcached" in mem:
            row("  memcached for the same data: RSS growth per item − key − value",
                mem["memcached"]["rss_overhead_b"], "ours ≤ this",
                lambda v: hc["overhead_b"] <= v, 1, " B")
        lines.append(f"|   (Redis RSS growth per item − key − value: {fmt(rd['rss_overhead_b'], 1)} B; "
                     f"ours RSS {fmt(hc['rss_before_kib'] / 1024, 1)} → {fmt(hc['rss_after_kib'] / 1024, 1)} MiB) | | | |")
    for h in res.get("hit_ratio", []):
        row(f"Hit ratio at a fixed budget, {h['stream']}: ours − exact LRU ({h['ours']:.1f} % vs "
            f"{h['lru']:.1f} %)", h["ours"] - h["lru"], "≥ −1 point", lambda v: v >= -1, 2, " points")
    idle_ = res.get("idle")
    if idle_:
        for k, v in idle_.items():
            row(f"Idle node CPU, {k[0]} data core(s), per core", v["pct_per_core"], "≤ 1 %",
                lambda x: x <= 1, 2, " %")
    lines.append("")
    core_hits = [r["hc2_get"].get("core_hits") for r in rounds if "hc2_get" in r]
    lines.append(
        "¹ Same wrk run against `HYPERCACHE_CORES=2 HYPERCACHE_CPU_SET=0,1` (wrk shares CPU 0 with data "
        "core 0); a uniform key is owned by the other core about half the time. The 1-core node is the "
        "all-local reference; comparing per server-CPU-second cancels the CPU wrk takes from the "
        f"server. GETs per core (hits, last round): {core_hits[-1] if core_hits else '–'}. "
        "The hop itself: `cargo bench --bench cross_core`.")
    lines.append(
        "² `benches/fixed_rate.rs` on CPU 0: open-loop, coordinated-omission corrected (wrk2's model: "
        "64 connections, each on its own schedule, latency from the intended send time), 90 % GET / "
        "10 % PUT, uniform keys, rate = 50 % of the same round's GET req/s. The nginx row is the same "
        "load against nginx: the latency floor of this machine's loopback and scheduler. req per "
        "CPU-s here is at half load (fewer requests per wake-up), not comparable with the peak rows.")
    lines.append(
        "³ Busy time of the server's CPU not spent in the server (other jobs on this shared "
        "machine); large values mean a disturbed run.")
    return "\n".join(lines)


def write_md(text):
    path = os.path.join(ROOT, "PERFORMANCE.md")
    block = f"{BEGIN}\n{text}\n{END}"
    doc = open(path).read() if os.path.exists(path) else "# Performance\n\n"
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(doc)
    log(f"wrote the table into {path}")


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": f"Linux {platform.release()}"}


def main():
    global args, workdir
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per run")
    ap.add_argument("--write", action="store_true", help="write the table into PERFORMANCE.md")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-idle", action="store_true")
    ap.add_argument("--memory-items", type=int, default=1_000_000)
    ap.add_argument("--quiet-load", type=float, default=0.7)
    ap.add_argument("--quiet-wait", type=int, default=1200, help="max seconds to wait for it")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--only-tls", action="store_true",
                    help="only plaintext and TLS GET against nginx plaintext and TLS")
    args = ap.parse_args()
    if os.cpu_count() < 2:
        sys.exit("compare: needs at least 2 CPUs (server on CPU 1, load generator on CPU 0)")
    workdir = tempfile.mkdtemp(prefix="hc-bench-")
    res = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine()}
    res["quiet"] = wait_quiet(args.quiet_load, args.quiet_wait)
    state = {"redis_n": {"get": 100_000 * args.duration, "set": 100_000 * args.duration}}
    res["rounds"] = []
    for n in range(1, args.rounds + 1):
        r = round_(n, state)
        r["load_before"] = load1()
        res["rounds"].append(r)
    if not args.no_memory:
        log(f"memory: {args.memory_items:,} items of 16 B keys and {VALUE} B values")
        res["memory"] = memory(args.memory_items)
    if not args.no_memory and os.environ.get("HIT_RATIO_BIN"):
        log("hit ratio: benches/hit_ratio.rs (Zipf 0.9, 1.1, scan-mixed; ours vs exact LRU)")
        out = subprocess.run([os.environ["HIT_RATIO_BIN"]], capture_output=True, text=True).stdout
        res["hit_ratio"] = [
            {"stream": m.group(1).strip(), "ours": float(m.group(2)), "lru": float(m.group(3))}
            for m in re.finditer(r"^(.+?)\s+ours\s+([\d.]+) %\s+exact LRU\s+([\d.]+) %", out, re.M)]
    if not args.no_idle:
        log("idle CPU: 10 s settle + 10 s measure, 1 and 2 data cores")
        res["idle"] = idle()
    text = render(res)
    print(text)
    out = args.json or os.path.join(ROOT, "target", "bench", f"compare-{int(time.time())}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    log(f"raw results: {out}")
    if args.write:
        write_md(text)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
