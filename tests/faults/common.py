"""Shared helpers of the fault suite (scripts/faults.sh): node addresses, a tiny keep-alive HTTP
client, and the views of the cluster the checker needs. Python 3 standard library only.

Everything here runs inside the client network namespace created by scripts/netns.sh, so the only
addresses ever contacted are the test hosts 10.77.0.1..N (the subnet comes from the command line).
"""

import http.client
import json
import socket
import struct
import time

API_PORT = 8080
MGMT_PORT = 8081
DIST_PORT = 7946


class Cluster:
    """The five (or N) server hosts: node-i lives at SUBNET.i."""

    def __init__(self, subnet, n, token):
        self.subnet = subnet
        self.n = n
        self.token = token

    def ids(self):
        return ["node-%d" % i for i in range(1, self.n + 1)]

    def host(self, node_id):
        return "%s.%s" % (self.subnet, node_id.split("-")[1])

    def auth(self):
        return {"Authorization": "Bearer " + self.token}


def add_cluster_args(p):
    p.add_argument("--subnet", default="10.77.0")
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--token", required=True)


def cluster_from(args):
    if not args.subnet.startswith("10.77."):
        # The test hosts live in 10.77.x only; refuse anything else so a typo can never aim
        # traffic at a real network.
        raise SystemExit("refusing subnet %s: the fault suite only talks to 10.77.x test hosts" % args.subnet)
    return Cluster(args.subnet, args.nodes, args.token)


class Conn:
    """One keep-alive HTTP/1.1 connection to host:port, reopened after any failure.

    connect_timeout bounds the TCP handshake, timeout every later read. On a failure the socket is
    closed with SO_LINGER 0 (an RST): data the kernel still holds for an unreachable peer is dropped
    instead of being retransmitted for minutes and delivered after a heal.
    """

    def __init__(self, host, port, timeout=2.0, connect_timeout=1.0):
        self.host, self.port = host, port
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self.c = None

    def close(self, abort=False):
        if self.c is not None:
            if abort and self.c.sock is not None:
                try:
                    self.c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            try:
                self.c.close()
            except OSError:
                pass
            self.c = None

    def connect(self):
        """Opens the connection if needed. Raises ConnectError when the handshake fails (the request
        was then certainly not sent)."""
        if self.c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
            try:
                c.connect()
            except OSError as e:
                c.close()
                raise ConnectError(str(e) or type(e).__name__) from e
            c.sock.settimeout(self.timeout)
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.c = c

    def request(self, method, path, body=None, headers=None):
        """-> (status, headers dict (lowercase names), body bytes). Raises ConnectError,
        TimeoutError, or another OSError / http.client.HTTPException (outcome unknown)."""
        self.connect()
        try:
            self.c.request(method, path, body=body, headers=headers or {})
            r = self.c.getresponse()
            data = r.read()
        except BaseException:
            self.close(abort=True)
            raise
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return r.status, hdrs, data


class ConnectError(Exception):
    pass


def get_json(conn, path, headers, method="GET", body=None):
    """A JSON request that must succeed with 200 -> decoded body, else raises RuntimeError."""
    hdr = dict(headers)
    if body is not None:
        body = json.dumps(body).encode()
        hdr["Content-Type"] = "application/json"
    status, _, data = conn.request(method, path, body=body, headers=hdr)
    if status != 200:
        raise RuntimeError("%s %s:%d%s -> %d %s" % (method, conn.host, conn.port, path, status, data[:200]))
    return json.loads(data)


def try_json(conn, path, headers, method="GET", body=None):
    """As get_json, but any failure gives None (used while polling)."""
    try:
        return get_json(conn, path, headers, method, body)
    except (OSError, ConnectError, http.client.HTTPException, RuntimeError, ValueError):
        return None


def members_view(cl, conns):
    """node id -> {member id: state} as that node's /cluster/members says, or None if it did not
    answer."""
    out = {}
    for nid in cl.ids():
        m = try_json(conns[nid], "/cluster/members", cl.auth())
        out[nid] = None if m is None else {e["ID"]: e["State"] for e in m.get("members", [])}
    return out


def all_alive(cl, view):
    want = set(cl.ids())
    return all(v is not None and set(v) >= want and all(v[i] == "alive" for i in want) for v in view.values())


def mgmt_conns(cl, timeout=2.0):
    return {nid: Conn(cl.host(nid), MGMT_PORT, timeout=timeout) for nid in cl.ids()}


def dist_conns(cl, timeout=5.0):
    return {nid: Conn(cl.host(nid), DIST_PORT, timeout=timeout) for nid in cl.ids()}


def api_conns(cl, timeout=2.0):
    return {nid: Conn(cl.host(nid), API_PORT, timeout=timeout) for nid in cl.ids()}


def entry_of(result):
    """A /internal/get or /internal/batch/get result -> comparable tuple:
    ("item", version, origin, value bytes), ("tomb", version, origin, None) or ("absent", ...)."""
    import base64

    if result.get("found") and result.get("item"):
        it = result["item"]
        return ("item", int(it["version"]), it["origin"], base64.b64decode(it["value"]).decode("utf-8", "replace"))
    t = result.get("tombstone")
    if t:
        return ("tomb", int(t["version"]), t["origin"], None)
    return ("absent", 0, "", None)


def now():
    return time.time()
