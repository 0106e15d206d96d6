"""Parsers for the Kubernetes checks: Go durations, Kubernetes quantities, listen addresses, the
kubelet's $(VAR) expansion, the Dockerfile's runtime stage, label selectors, and the conversion of
Docker's seccomp profile to the OCI format that containerd and CRI-O read for Localhost profiles."""

import json
import re
import shlex


def go_duration_seconds(text):
    """Go duration (`30s`, `1m30s`, `1.5h`, `0s`) to seconds."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    text = text.strip()
    if text in ("0", "0s"):
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def quantity(text):
    """Kubernetes resource quantity (`1792Mi`, `3`, `500m`, `1G`) to a float (bytes or cores)."""
    text = str(text).strip()
    m = re.fullmatch(r"([0-9.]+(?:[eE][-+]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?", text)
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    mult = {
        None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    }[m.group(2)]
    return float(m.group(1)) * mult


def addr_port(text):
    """Port of `host:port`, `[v6]:port` or `:port`."""
    m = re.fullmatch(r"(?:\[[^\]]*\]|[^:\[\]]*):(\d+)", text.strip())
    if not m:
        raise ValueError(f"not host:port: {text!r}")
    return int(m.group(1))


def addr_host(text):
    text = text.strip()
    host = text.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


def kubelet_expand(value, mapping):
    """$(VAR) expansion as the kubelet does it (k8s.io/kubernetes third_party/forked/golang/expansion):
    `$$` is an escaped `$`, `$(NAME)` with NAME in mapping is replaced, anything else is kept."""
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "$" and i + 1 < len(value):
            n = value[i + 1]
            if n == "$":
                out.append("$")
                i += 2
                continue
            if n == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2:end]
                    if name in mapping:
                        out.append(mapping[name])
                    else:
                        out.append(value[i:end + 1])
                    i = end + 1
                    continue
        out.append(c)
        i += 1
    return "".join(out)


def dockerfile_runtime(path):
    """ENV, USER and ENTRYPOINT of the Dockerfile's last stage."""
    lines = open(path, encoding="utf-8").read().splitlines()
    joined, cur = [], ""
    for line in lines:
        if line.lstrip().startswith("#") and not cur:
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        joined.append(cur + line)
        cur = ""
    stage = []
    for line in joined:
        if re.match(r"\s*FROM\s", line, re.I):
            stage = []
        stage.append(line)
    env, user, entrypoint = {}, None, None
    for line in stage:
        m = re.match(r"\s*(ENV|USER|ENTRYPOINT)\s+(.*)$", line, re.I)
        if not m:
            continue
        kw, rest = m.group(1).upper(), m.group(2).strip()
        if kw == "ENV":
            for tok in shlex.split(rest):
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    env[k] = v
        elif kw == "USER":
            user = rest
        else:
            entrypoint = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return env, user, entrypoint


def docker_seccomp_to_oci(docker):
    """The Docker-format profile as containerd/CRI-O read a Localhost profile (the OCI
    runtime-spec format), resolved for this deployment: every capability dropped, an x86-64 or
    arm64 node, Linux >= 5.8. Docker's conditional fields (`includes`, `excludes`, `archMap`) are
    not part of that format, so rules are kept or dropped here instead:
      - a rule that needs a capability (`includes.caps`) is dropped (the pod holds none);
      - a rule for other architectures only (`includes.arches`) is dropped;
      - a rule that needs a newer kernel than 5.8 (`includes.minKernel`) is dropped;
      - a rule excluded only for capabilities or other architectures (`excludes`) is kept.
    `architectures` is left out: the filter then covers the node's native architecture."""
    ours = {"amd64", "x86", "x32", "arm64", "arm"}

    def kernel(v):
        return tuple(int(x) for x in v.split("."))

    out = {"defaultAction": docker["defaultAction"]}
    if "defaultErrnoRet" in docker:
        out["defaultErrnoRet"] = docker["defaultErrnoRet"]
    rules = []
    for rule in docker["syscalls"]:
        inc = rule.get("includes") or {}
        exc = rule.get("excludes") or {}
        if inc.get("caps"):
            continue
        if inc.get("arches") and not ours.intersection(inc["arches"]):
            continue
        if inc.get("minKernel") and kernel(inc["minKernel"]) > (5, 8):
            continue
        if exc.get("arches") and ours.issubset(exc["arches"]):
            continue
        r = {"names": rule["names"], "action": rule["action"]}
        for k in ("args", "errnoRet"):
            if rule.get(k) is not None:
                r[k] = rule[k]
        rules.append(r)
    out["syscalls"] = rules
    return out


def seccomp_json(profile):
    return json.dumps(profile, indent=2) + "\n"


def selects(selector, labels):
    """Does a label selector ({key: value} or {matchLabels: ...}) select these labels?"""
    if not selector:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        if selector.get("matchExpressions"):
            raise ValueError("matchExpressions are not supported by this check")
        selector = selector.get("matchLabels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
