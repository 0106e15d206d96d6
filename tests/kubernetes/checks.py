"""The checks of one rendering (an overlay after `kubectl kustomize`) against the configuration
contract; see k8scheck.py for the list. Each check reports through `Report` and never raises on a
bad manifest: a failure names what mismatched and what was expected."""

import base64
import math
import os
import re
import subprocess
from dataclasses import dataclass, field

from parse import (addr_host, addr_port, dockerfile_runtime, go_duration_seconds, kubelet_expand,
                   quantity, selects)

DUMMY_TOKEN = "k8s-test-stand-in-token-0123456789abcdef"
# RFC 5737 documentation address: a stand-in value only, never dialled.
DUMMY_IP = "192.0.2.10"
CHECK_CONFIG_TIMEOUT = 10
# Memory sizing (docs/kubernetes.md "Sizing"): an entry is accounted as key + value + 64 B and
# takes about key + value + 82 B (PERFORMANCE.md), so real/accounted <= 82/64 < 1.3.
ACCOUNTED_TO_REAL = 1.3
CONN_BUFFERS = 32 * 1024  # 16 KiB read + 16 KiB write buffer per client connection (src/service/conn.rs)
FIXED_FOOTPRINT = 64 * 1024 * 1024  # process, executors, io_uring memory, peer pools
GRACE_MARGIN = 2  # seconds beyond preStop + SHUTDOWN_TIMEOUT + 1 s
SECCOMP_DIR = "deploy/kubernetes/seccomp"
MIB = 2**20


class Report:
    """Counts and prints "ok   - ..." / "FAIL - ..." lines (quiet: counts only)."""

    def __init__(self, quiet=False):
        self.passed = 0
        self.failed = 0
        self.quiet = quiet
        self.failures = []

    def ok(self, msg):
        self.passed += 1
        if not self.quiet:
            print(f"ok   - {msg}", flush=True)

    def fail(self, msg):
        self.failed += 1
        self.failures.append(msg)
        if not self.quiet:
            print(f"FAIL - {msg}", flush=True)

    def check(self, cond, ok_msg, fail_msg):
        if cond:
            self.ok(ok_msg)
        else:
            self.fail(fail_msg)
        return cond


class Rendering:
    def __init__(self, name, docs):
        self.name = name
        self.docs = [d for d in docs if d]

    def of_kind(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]


@dataclass
class Target:
    """The StatefulSet under check and what the checks learn about it on the way."""
    rd: Rendering
    sts: dict
    c: dict  # the hypercache-server container
    effective: dict = field(default_factory=dict)  # check-config's NAME=value of the first accepted pod
    manifest: dict = field(default_factory=dict)  # that pod's env after $(VAR) expansion
    ports: dict = field(default_factory=dict)  # api / mgmt / dist -> port

    @property
    def n(self):
        return self.rd.name

    @property
    def spec(self):
        return self.sts["spec"]

    @property
    def pspec(self):
        return self.spec["template"]["spec"]

    @property
    def labels(self):
        return self.spec["template"]["metadata"].get("labels") or {}

    @property
    def name(self):
        return self.sts["metadata"]["name"]

    @property
    def namespace(self):
        return self.sts["metadata"].get("namespace", "default")

    @property
    def replicas(self):
        return self.spec.get("replicas", 1)

    @property
    def service_name(self):
        return self.spec.get("serviceName", "")

    def port_of(self, port):
        """A container port given by number or by name (None if the name is unknown)."""
        if isinstance(port, str) and not port.isdigit():
            return {p["name"]: p["containerPort"] for p in self.c.get("ports") or [] if p.get("name")}.get(port)
        return None if port is None else int(port)

    def pod_dns(self, pod):
        """Regex of <pod>.<service>.<namespace>.svc[.<cluster domain>]."""
        return (rf"{re.escape(pod)}\.{re.escape(self.service_name)}\.{re.escape(self.namespace)}"
                rf"\.svc(\.[A-Za-z0-9.-]+)?")

    def listeners(self):
        p = self.ports
        return f"API {p['api']}, mgmt {p['mgmt']}, dist {p['dist']}"


class Checker:
    def __init__(self, root, binary, report):
        self.bin = binary
        self.r = report
        self.image_env, self.image_user, self.entrypoint = dockerfile_runtime(os.path.join(root, "Dockerfile"))
        self.seccomp_dir = os.path.join(root, SECCOMP_DIR)

    def check(self, rd):
        t = self.target(rd)
        if t is None:
            return
        self.command(t)
        if not self.configs(t):
            return
        if not self.ports(t):
            return
        self.probes(t)
        self.services(t)
        self.seeds(t)
        self.pdb(t)
        self.shutdown(t)
        self.security(t)
        self.secrets(t)
        self.sizing(t)

    # -- what is checked ------------------------------------------------------------------------
    def target(self, rd):
        n, r = rd.name, self.r
        stss = rd.of_kind("StatefulSet")
        if not r.check(len(stss) == 1, f"[{n}] one StatefulSet", f"[{n}] expected one StatefulSet, found {len(stss)}"):
            return None
        cs = stss[0]["spec"]["template"]["spec"].get("containers") or []
        ours = [c for c in cs if re.search(r"(^|/)hypercache-server(:|@|$)", c.get("image", ""))]
        if not r.check(len(ours) == 1, f"[{n}] one hypercache-server container",
                       f"[{n}] expected exactly one container with image hypercache-server, found {len(ours)}"):
            return None
        return Target(rd, stss[0], ours[0])

    def command(self, t):
        c = t.c
        self.r.check(c.get("command") in (None, self.entrypoint) and not c.get("args"),
                     f"[{t.n}] container runs the image's entrypoint {self.entrypoint} without arguments",
                     f"[{t.n}] command {c.get('command')} / args {c.get('args')}: the binary is {self.entrypoint} "
                     f"(Dockerfile) and takes no arguments (configuration is environment only)")

    # -- configuration: check-config with each pod's environment ---------------------------------
    def pod_env(self, t, ordinal):
        """The container's environment as the kubelet builds it for pod <sts>-<ordinal>: the image's
        ENV, overridden by the pod's env in order, each value expanded from the entries before it."""
        pod = f"{t.name}-{ordinal}"
        c = t.c
        problems, mapping = [], {}
        if c.get("envFrom"):
            problems.append("envFrom is not supported by this check: list the variables in env")
        stand_in = {
            "metadata.name": pod, "metadata.namespace": t.namespace, "spec.nodeName": "node-a",
            "spec.serviceAccountName": "default", "status.podIP": DUMMY_IP, "status.hostIP": DUMMY_IP,
        }
        for e in c.get("env") or []:
            name, vf = e["name"], e.get("valueFrom")
            if not vf:
                mapping[name] = kubelet_expand(str(e.get("value", "")), mapping)
            elif "fieldRef" in vf:
                path = vf["fieldRef"]["fieldPath"]
                if path in stand_in:
                    mapping[name] = stand_in[path]
                else:
                    problems.append(f"{name}: no stand-in for fieldRef {path}")
            elif "secretKeyRef" in vf:
                ref = vf["secretKeyRef"]
                mapping[name] = DUMMY_TOKEN
                for s in t.rd.of_kind("Secret"):
                    if s["metadata"]["name"] == ref["name"] and ref["key"] in (s.get("data") or {}):
                        mapping[name] = base64.b64decode(s["data"][ref["key"]]).decode()
            elif "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cms = [m for m in t.rd.of_kind("ConfigMap") if m["metadata"]["name"] == ref["name"]]
                if cms and ref["key"] in (cms[0].get("data") or {}):
                    mapping[name] = cms[0]["data"][ref["key"]]
                else:
                    problems.append(f"{name}: ConfigMap {ref['name']} key {ref['key']} is not in the rendering")
            elif "resourceFieldRef" in vf:
                ref = vf["resourceFieldRef"]
                kind, what = ref["resource"].split(".", 1)
                q = ((c.get("resources") or {}).get(kind) or {}).get(what)
                if q is None:
                    problems.append(f"{name}: {ref['resource']} is not set")
                else:
                    mapping[name] = str(math.ceil(quantity(q) / quantity(ref.get("divisor", "1"))))
            else:
                problems.append(f"{name}: unsupported valueFrom {list(vf)}")
        env = dict(self.image_env)
        env.update(mapping)
        return env, mapping, problems

    def run_check_config(self, env):
        try:
            p = subprocess.run([self.bin, "check-config"], env=env, capture_output=True, text=True,
                               timeout=CHECK_CONFIG_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None, "", f"check-config did not exit within {CHECK_CONFIG_TIMEOUT} s"
        return p.returncode, p.stdout, p.stderr

    def configs(self, t):
        """check-config for every pod; returns whether one was accepted."""
        for ordinal in range(t.replicas):
            pod = f"{t.name}-{ordinal}"
            env, pod_vars, problems = self.pod_env(t, ordinal)
            for p in problems:
                self.r.fail(f"[{t.n}] {pod}: {p}")
            for k, v in pod_vars.items():
                if "$(" in v:
                    self.r.fail(f"[{t.n}] {pod}: {k}={v!r} keeps an unresolved $(...) reference "
                                f"(the variable must be defined earlier in env)")
            eff = self.config_of(t, pod, env)
            if eff is None:
                continue
            if not t.effective:
                t.effective, t.manifest = eff, pod_vars
            self.identity(t, pod, eff)
        if not t.effective:
            self.r.fail(f"[{t.n}] no pod configuration was accepted: the other checks need one")
        return bool(t.effective)

    def config_of(self, t, pod, env):
        """The effective configuration check-config prints for env, or None (reported)."""
        code, out, err = self.run_check_config(env)
        if code != 0:
            msg = " | ".join((err.strip() or out.strip() or "no output").splitlines()[:5])
            if "HYPERCACHE_CORES" in err:
                msg += (" (check-config compares HYPERCACHE_CORES with the CPUs of the machine it runs on; "
                        f"this one has {len(os.sched_getaffinity(0))})")
            self.r.fail(f"[{t.n}] {pod}: check-config exited {code}: {msg}")
            return None
        eff = dict(m.groups() for m in re.finditer(r"^(HYPERCACHE_[A-Z0-9_]+)=(.*)$", out, re.M))
        unknown = set(re.findall(r"unknown variable (HYPERCACHE_[A-Z0-9_]+)", out + err))
        names = sorted(k for k in env if k.startswith("HYPERCACHE_"))
        bad = sorted(unknown | {k for k in names if k not in eff})
        if bad:
            self.r.fail(f"[{t.n}] {pod}: variables that are not in the configuration table: {', '.join(bad)}")
            return None
        self.r.ok(f"[{t.n}] {pod}: check-config accepts the environment ({len(names)} HYPERCACHE_* variables)")
        return eff

    def identity(self, t, pod, eff):
        """Node id = pod name; advertised address = the pod's DNS name on the dist port."""
        n, r = t.n, self.r
        r.check(eff.get("HYPERCACHE_NODE_ID") == pod, f"[{n}] {pod}: node id is the pod name",
                f"[{n}] {pod}: HYPERCACHE_NODE_ID is {eff.get('HYPERCACHE_NODE_ID')!r}, want the pod name {pod!r}")
        adv = eff.get("HYPERCACHE_DIST_ADVERTISE", "")
        try:
            dist = addr_port(eff["HYPERCACHE_DIST_ADDR"])
            ok = re.fullmatch(t.pod_dns(pod), addr_host(adv)) is not None and addr_port(adv) == dist
        except (KeyError, ValueError):
            ok, dist = False, None
        r.check(ok, f"[{n}] {pod}: advertises its stable DNS name {adv}",
                f"[{n}] {pod}: HYPERCACHE_DIST_ADVERTISE is {adv!r}, want "
                f"{pod}.{t.service_name}.{t.namespace}.svc.<cluster domain>:{dist}")

    # -- ports, probes, Services -----------------------------------------------------------------
    def ports(self, t):
        n, r = t.n, self.r
        try:
            t.ports = {k: addr_port(t.effective[f"HYPERCACHE_{k.upper()}_ADDR"]) for k in ("api", "mgmt", "dist")}
        except (KeyError, ValueError) as e:
            r.fail(f"[{n}] listener addresses: {e}")
            return False
        cports = {p["containerPort"]: p for p in t.c.get("ports") or []}
        for k, p in t.ports.items():
            r.check(p != 0, f"[{n}] {k} listener on fixed port {p}",
                    f"[{n}] {k} listener on port 0: Kubernetes needs a fixed port")
            r.check(p in cports and cports[p].get("protocol", "TCP") == "TCP",
                    f"[{n}] containerPort {p} declared for the {k} listener",
                    f"[{n}] the {k} listener is on port {p} but the container declares ports {sorted(cports)}")
        extra = sorted(set(cports) - set(t.ports.values()))
        r.check(not extra, f"[{n}] no container port without a listener",
                f"[{n}] container ports {extra} match no listener ({t.listeners()})")
        return True

    def probes(self, t):
        for kind, path, want, what in (("readinessProbe", "/health", t.ports["mgmt"], "management"),
                                       ("livenessProbe", "/healthz", t.ports["api"], "client")):
            probe = t.c.get(kind) or {}
            hg = probe.get("httpGet") or {}
            got = t.port_of(hg.get("port"))
            ok = hg.get("path") == path and got == want and hg.get("scheme", "HTTP") == "HTTP"
            self.r.check(ok, f"[{t.n}] {kind}: GET {path} on the {what} port {want}",
                         f"[{t.n}] {kind} is {hg or probe or 'missing'} (port resolves to {got}); "
                         f"want httpGet {path} on the {what} listener's port {want}")

    def services(self, t):
        n, r = t.n, self.r
        services = [s for s in t.rd.of_kind("Service") if selects(s["spec"].get("selector"), t.labels)]

        def targets(s):
            return [(p["port"], t.port_of(p.get("targetPort", p["port"]))) for p in s["spec"].get("ports") or []]

        for s in services:
            for port, got in targets(s):
                r.check(got in t.ports.values(),
                        f"[{n}] Service {s['metadata']['name']} port {port} -> container port {got}",
                        f"[{n}] Service {s['metadata']['name']} port {port} targets container port {got}, "
                        f"which is no listener ({t.listeners()})")
        svc = t.service_name
        peers = [s for s in services if s["metadata"]["name"] == svc]
        if r.check(len(peers) == 1, f"[{n}] the StatefulSet's serviceName {svc} is a Service selecting its pods",
                   f"[{n}] spec.serviceName {svc!r} names no Service that selects the pods"):
            ps = peers[0]["spec"]
            r.check(ps.get("clusterIP") == "None", f"[{n}] {svc} is headless (pod DNS names)",
                    f"[{n}] {svc} must be headless (clusterIP: None) for per-pod DNS names")
            r.check(ps.get("publishNotReadyAddresses") is True,
                    f"[{n}] {svc} publishes not-ready pods (names resolve while starting and draining)",
                    f"[{n}] {svc} needs publishNotReadyAddresses: true, or a pod that is starting or "
                    f"draining (readiness 503) cannot be reached by its peers")
            dist = t.ports["dist"]
            r.check((dist, dist) in targets(peers[0]), f"[{n}] {svc} exposes the dist port {dist}",
                    f"[{n}] {svc} does not expose the dist port {dist} as port and target")
        client = [s for s in services if s["spec"].get("clusterIP") != "None"
                  and any(got == t.ports["api"] for _, got in targets(s))]
        r.check(bool(client), f"[{n}] a client Service reaches the API port {t.ports['api']}",
                f"[{n}] no non-headless Service targets the API port {t.ports['api']}")

    # -- seeds: exactly the StatefulSet's pods, on the dist port ----------------------------------
    def seeds(self, t):
        # The list as the manifest sets it (check-config prints it without the pod's own entry).
        seeds = [s.strip() for s in t.manifest.get("HYPERCACHE_SEEDS", "").split(",") if s.strip()]
        pods = [f"{t.name}-{i}" for i in range(t.replicas)]
        seen, problems = set(), []
        for s in seeds:
            sid, _, a = s.rpartition("@")
            try:
                host, port = addr_host(a), addr_port(a)
            except ValueError:
                problems.append(f"{s!r} is not [id@]host:port")
                continue
            pod = host.split(".", 1)[0]
            if pod not in pods or re.fullmatch(t.pod_dns(pod), host) is None:
                problems.append(f"{s!r} is not a pod of this StatefulSet "
                                f"(<{t.name}-N>.{t.service_name}.{t.namespace}.svc..., N < {t.replicas})")
                continue
            if port != t.ports["dist"]:
                problems.append(f"{s!r} is not on the dist port {t.ports['dist']}")
            if sid and sid != pod:
                problems.append(f"{s!r}: id {sid!r} is not the pod name {pod!r}")
            seen.add(pod)
        missing = [p for p in pods if p not in seen]
        if missing:
            problems.append(f"no seed for {', '.join(missing)} (replicas: {t.replicas})")
        self.r.check(not problems, f"[{t.n}] seeds are the {t.replicas} pods' DNS names on the dist port",
                     f"[{t.n}] HYPERCACHE_SEEDS: " + "; ".join(problems))

    # -- PDB: a quorum of every key's owners stays up ---------------------------------------------
    def pdb(self, t):
        n, r = t.n, self.r
        pdbs = [p for p in t.rd.of_kind("PodDisruptionBudget") if selects(p["spec"].get("selector"), t.labels)]
        if not r.check(len(pdbs) == 1, f"[{n}] one PodDisruptionBudget selects the pods",
                       f"[{n}] expected one PodDisruptionBudget selecting the pods, found {len(pdbs)}"):
            return
        ps = pdbs[0]["spec"]

        def count(v, round_up):
            if isinstance(v, str) and v.endswith("%"):
                x = t.replicas * int(v[:-1]) / 100
                return math.ceil(x) if round_up else math.floor(x)
            return int(v)

        if "maxUnavailable" in ps:
            down = count(ps["maxUnavailable"], True)
        elif "minAvailable" in ps:
            down = t.replicas - count(ps["minAvailable"], True)
        else:
            down = t.replicas
        rf = int(t.effective["HYPERCACHE_REPLICATION"])
        owners = min(rf, t.replicas)
        quorum = owners // 2 + 1
        allowed = owners - quorum
        r.check(down <= allowed and (down >= 1 or allowed == 0),
                f"[{n}] PDB lets {down} pod(s) down: {owners - down} of {owners} owners >= quorum {quorum} (RF {rf})",
                f"[{n}] PDB lets {down} of {t.replicas} pods down, but HYPERCACHE_REPLICATION={rf} gives {owners} "
                f"owners per key and a quorum of {quorum}: maxUnavailable must be "
                + (f"1..{allowed}" if allowed else "0"))

    # -- shutdown: the kubelet waits for the whole drain ------------------------------------------
    def shutdown(self, t):
        n, r = t.n, self.r
        shutdown = go_duration_seconds(t.effective["HYPERCACHE_SHUTDOWN_TIMEOUT"])
        grace = t.pspec.get("terminationGracePeriodSeconds", 30)
        pre = ((t.c.get("lifecycle") or {}).get("preStop")) or {}
        pre_s = None
        if "sleep" in pre:
            pre_s = float(pre["sleep"]["seconds"])
        elif "exec" in pre:
            cmd = " ".join(pre["exec"].get("command") or [])
            waits = re.findall(r"(?:^|[\s;&|/])(?:sleep|timeout(?:\s+-\S+)*)\s+(\d+(?:\.\d+)?)", cmd)
            pre_s = sum(float(x) for x in waits) if waits else None
        elif "httpGet" in pre:
            pre_s = 0.0
        if not r.check(pre_s is not None, f"[{n}] preStop hook present ({pre_s} s)",
                       f"[{n}] no preStop hook whose duration this check can read (exec sleep N, sleep action or httpGet)"):
            return
        need = math.ceil(pre_s + shutdown + 1 + GRACE_MARGIN)
        r.check(grace >= need,
                f"[{n}] terminationGracePeriodSeconds {grace} >= preStop {pre_s:g} + shutdown {shutdown:g} + 1 + {GRACE_MARGIN}",
                f"[{n}] terminationGracePeriodSeconds is {grace}, but preStop ({pre_s:g} s) + "
                f"HYPERCACHE_SHUTDOWN_TIMEOUT ({shutdown:g} s) + 1 s + {GRACE_MARGIN} s margin = {need}: "
                f"the kubelet would SIGKILL a drain that is still running")

    # -- security context ---------------------------------------------------------------------
    def security(self, t):
        n, r = t.n, self.r
        psc = t.pspec.get("securityContext") or {}
        csc = t.c.get("securityContext") or {}

        def eff(key):  # the container's setting wins over the pod's
            return csc[key] if key in csc else psc.get(key)

        r.check(eff("runAsNonRoot") is True, f"[{n}] runAsNonRoot", f"[{n}] runAsNonRoot is not true")
        uid = eff("runAsUser")
        img = (self.image_user or "").split(":")[0]
        r.check(uid is None or str(uid) == img, f"[{n}] runAsUser {uid} is the image's user {self.image_user}",
                f"[{n}] runAsUser {uid} differs from the Dockerfile's USER {self.image_user}")
        r.check(csc.get("readOnlyRootFilesystem") is True, f"[{n}] readOnlyRootFilesystem",
                f"[{n}] readOnlyRootFilesystem is not true")
        r.check(csc.get("allowPrivilegeEscalation") is False, f"[{n}] allowPrivilegeEscalation false",
                f"[{n}] allowPrivilegeEscalation is not false")
        caps = csc.get("capabilities") or {}
        r.check("ALL" in (caps.get("drop") or []) and not caps.get("add"), f"[{n}] every capability dropped",
                f"[{n}] capabilities must drop ALL and add none (got {caps})")
        r.check(not csc.get("privileged"), f"[{n}] not privileged", f"[{n}] privileged container")
        sp = eff("seccompProfile") or {}
        prof = sp.get("localhostProfile", "")
        shipped = sorted(f for f in os.listdir(self.seccomp_dir) if f.endswith(".json"))
        r.check(sp.get("type") == "Localhost" and os.path.basename(prof) in shipped,
                f"[{n}] seccomp profile Localhost {prof} (shipped in {SECCOMP_DIR}/)",
                f"[{n}] seccompProfile is {sp}; want type Localhost and a localhostProfile named like a file "
                f"in {SECCOMP_DIR}/ ({shipped})")
        r.check(t.pspec.get("automountServiceAccountToken") is False, f"[{n}] no service account token mounted",
                f"[{n}] automountServiceAccountToken should be false (the server never calls the API server)")
        # Service links: the kubelet would inject <SERVICE>_SERVICE_HOST etc. for every Service.
        clash = [s["metadata"]["name"] for s in t.rd.of_kind("Service")
                 if s["metadata"]["name"].upper().replace("-", "_").startswith("HYPERCACHE")
                 and s["spec"].get("clusterIP") != "None"]
        r.check(t.pspec.get("enableServiceLinks", True) is False or not clash,
                f"[{n}] no injected HYPERCACHE_* service variables (enableServiceLinks false)",
                f"[{n}] enableServiceLinks is on and Service(s) {clash} inject HYPERCACHE_*_SERVICE_HOST/PORT "
                f"variables, each logged as unknown at start: set enableServiceLinks: false")

    def secrets(self, t):
        """The token comes from a Secret; no Secret with a value is committed."""
        n, r = t.n, self.r
        tok = [e for e in t.c.get("env") or [] if e["name"] == "HYPERCACHE_AUTH_TOKEN"]
        ref = (tok[0].get("valueFrom") or {}).get("secretKeyRef") if tok else None
        r.check(bool(ref), f"[{n}] HYPERCACHE_AUTH_TOKEN comes from Secret {ref and ref.get('name')}",
                f"[{n}] HYPERCACHE_AUTH_TOKEN must be set from a Secret (valueFrom.secretKeyRef), not a literal")
        secrets = t.rd.of_kind("Secret")
        if n.startswith("example"):
            r.check(bool(ref) and any(s["metadata"]["name"] == ref["name"] and ref["key"] in (s.get("data") or {})
                                      for s in secrets),
                    f"[{n}] the generated Secret {ref and ref.get('name')} holds key {ref and ref.get('key')}",
                    f"[{n}] the secretKeyRef {ref} does not name the generated Secret and key")
        else:
            r.check(not secrets, f"[{n}] no Secret committed", f"[{n}] the rendering contains Secret(s) "
                    f"{[s['metadata']['name'] for s in secrets]}: never commit a token")

    # -- sizing -------------------------------------------------------------------------------
    def sizing(self, t):
        n, r, eff = t.n, self.r, t.effective
        res = t.c.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        if not r.check("memory" in lim and "memory" in req and "cpu" in req,
                       f"[{n}] memory request and limit, CPU request set",
                       f"[{n}] resources need requests.memory, limits.memory and requests.cpu (got {res})"):
            return
        mem_lim, mem_req = quantity(lim["memory"]), quantity(req["memory"])
        mm = eff.get("HYPERCACHE_MAX_MEMORY", "")
        if r.check(mm != "", f"[{n}] HYPERCACHE_MAX_MEMORY is set ({mm} bytes)",
                   f"[{n}] HYPERCACHE_MAX_MEMORY is unset: the cache would grow to the memory limit and be OOM-killed"):
            mm = int(mm)
            hints = int(eff["HYPERCACHE_HINT_MAX_BYTES"])
            conns = int(eff["HYPERCACHE_MAX_CONNS"])
            need = ACCOUNTED_TO_REAL * (mm + hints) + conns * CONN_BUFFERS + FIXED_FOOTPRINT
            r.check(mm < mem_lim and need <= mem_req <= mem_lim,
                    f"[{n}] memory {req['memory']}/{lim['memory']} >= {need / MIB:.0f} MiB "
                    f"(1.3 x (MAX_MEMORY + HINT_MAX_BYTES) + MAX_CONNS x 32 KiB + 64 MiB)",
                    f"[{n}] memory request {req['memory']} / limit {lim['memory']} must be >= {need / MIB:.0f} MiB = "
                    f"1.3 x (MAX_MEMORY {mm / MIB:.0f} MiB + HINT_MAX_BYTES {hints / MIB:.0f} MiB) + "
                    f"MAX_CONNS {conns} x 32 KiB + 64 MiB, with request <= limit")
        cores = int(eff["HYPERCACHE_CORES"])
        cpu_lim = quantity(lim["cpu"]) if "cpu" in lim else None
        r.check(cpu_lim is None or cpu_lim >= cores + 1,
                f"[{n}] CPU limit {lim.get('cpu')} covers {cores} data cores + the control core",
                f"[{n}] CPU limit {lim.get('cpu')} is below the {cores + 1} executors "
                f"(HYPERCACHE_CORES={cores} + control core): lower HYPERCACHE_CORES or raise the limit")
