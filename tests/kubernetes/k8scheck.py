#!/usr/bin/env python3
"""Checks of the rendered Kubernetes manifests (deploy/kubernetes), run by scripts/k8s-test.sh.

For every rendering (an overlay after `kubectl kustomize`):

  schema   every document validates against the Kubernetes JSON schemas (kubernetes-validate,
           strict: unknown fields are errors) of each version in --k8s-versions;
  config   for every pod of the StatefulSet, the container's environment is rebuilt as the
           kubelet would (the image's ENV from the Dockerfile, then the pod's env in order, with
           fieldRef / secretKeyRef replaced by stand-ins and $(VAR) expanded like the kubelet)
           and `hypercache-server check-config` must accept it (exit 0) and know every
           HYPERCACHE_* variable the manifest sets;
  ports    container ports, probes and Service ports agree with the effective
           HYPERCACHE_API_ADDR / MGMT_ADDR / DIST_ADDR; the advertised address, node id and
           seed list name the pods' stable DNS names on the dist port;
  pdb      maxUnavailable keeps a quorum of every key's owners for HYPERCACHE_REPLICATION;
  shutdown terminationGracePeriodSeconds covers preStop + HYPERCACHE_SHUTDOWN_TIMEOUT + 1 s + margin;
  security non-root (the Dockerfile's uid), read-only root, no privilege escalation, no
           capabilities, the Localhost seccomp profile that the repository ships, the token from a
           Secret and no Secret with a value in the repository;
  sizing   memory requests/limits cover HYPERCACHE_MAX_MEMORY and the other memory figures, and the
           CPU limit covers the executors.

`--self-test` then breaks the three-node rendering in memory in several ways and requires each
break to be reported, so that the checks are known to be able to fail.

The seccomp profile for Kubernetes is derived from deploy/seccomp-io_uring.json (Docker's
format): `--write-seccomp` regenerates it, and every run checks that it is up to date.

The checks themselves are in checks.py, the parsers in parse.py. Prints one line per check
("ok   - ..." / "FAIL - ...") and "k8s-test: P passed, F failed".
"""

import argparse
import copy
import json
import os
import sys

import yaml

from checks import Checker, Rendering, Report
from parse import docker_seccomp_to_oci, seccomp_json

SECCOMP_DOCKER = "deploy/seccomp-io_uring.json"
SECCOMP_K8S = "deploy/kubernetes/seccomp/hypercache-io_uring.json"
IO_URING_CALLS = ("io_uring_setup", "io_uring_enter", "io_uring_register")


# ---------------------------------------------------------------------------------------------
# Schema validation


def validate_schemas(rd, versions, report):
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    for v in versions:
        errors = []
        for d in rd.docs:
            what = f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}"
            try:
                kubernetes_validate.validate(d, v, strict=True)
            except ValidationError as e:
                path = ".".join(str(p) for p in e.path) or "(top)"
                errors.append(f"{what}: {path}: {e.message}")
            except Exception as e:  # unknown kind/version, schema not found
                errors.append(f"{what}: {type(e).__name__}: {e}")
        report.check(not errors, f"[{rd.name}] {len(rd.docs)} documents valid against the Kubernetes {v} schemas (strict)",
                     f"[{rd.name}] Kubernetes {v} schemas (strict): " + "; ".join(errors))


# ---------------------------------------------------------------------------------------------
# Self-test: each break must be caught


def mutations():
    def sts(docs):
        return next(d for d in docs if d["kind"] == "StatefulSet")

    def ctr(docs):
        return sts(docs)["spec"]["template"]["spec"]["containers"][0]

    def env(docs, name, value):
        e = ctr(docs)["env"]
        for x in e:
            if x["name"] == name:
                x.clear()
                x.update({"name": name, "value": value})
                return
        e.append({"name": name, "value": value})

    def kind(docs, k, name=None):
        return next(d for d in docs if d["kind"] == k and (name is None or d["metadata"]["name"] == name))

    return [
        ("an invalid value (HYPERCACHE_HEARTBEAT=fast)", "HYPERCACHE_HEARTBEAT",
         lambda d: env(d, "HYPERCACHE_HEARTBEAT", "fast")),
        ("a variable that does not exist (HYPERCACHE_TOKEN)", "HYPERCACHE_TOKEN",
         lambda d: env(d, "HYPERCACHE_TOKEN", "x")),
        ("a failed cross-check (DRAIN_GRACE >= SHUTDOWN_TIMEOUT)", "HYPERCACHE_DRAIN_GRACE",
         lambda d: env(d, "HYPERCACHE_DRAIN_GRACE", "40s")),
        ("a $(VAR) defined after its use", "unresolved",
         lambda d: ctr(d)["env"].sort(key=lambda e: e["name"] != "HYPERCACHE_DIST_ADVERTISE")),
        ("the API on another port than the container port", "the api listener is on port 9090",
         lambda d: env(d, "HYPERCACHE_API_ADDR", ":9090")),
        ("readiness on the client port", "readinessProbe",
         lambda d: ctr(d)["readinessProbe"]["httpGet"].update(port="client")),
        ("liveness on /health", "livenessProbe",
         lambda d: ctr(d)["livenessProbe"]["httpGet"].update(path="/health")),
        ("a Service targeting no listener", "which is no listener",
         lambda d: kind(d, "Service", "hypercache")["spec"]["ports"][0].update(targetPort=9999)),
        ("a seed missing", "no seed for",
         lambda d: env(d, "HYPERCACHE_SEEDS", ",".join(
             next(e["value"] for e in ctr(d)["env"] if e["name"] == "HYPERCACHE_SEEDS").split(",")[:-1]))),
        ("seeds on the client port", "not on the dist port",
         lambda d: env(d, "HYPERCACHE_SEEDS", next(
             e["value"] for e in ctr(d)["env"] if e["name"] == "HYPERCACHE_SEEDS").replace(":7946", ":8080"))),
        ("advertise without the pod name", "HYPERCACHE_DIST_ADVERTISE",
         lambda d: env(d, "HYPERCACHE_DIST_ADVERTISE", "hypercache.example:7946")),
        ("peers Service not publishing not-ready pods", "publishNotReadyAddresses",
         lambda d: kind(d, "Service", "hypercache-peers")["spec"].pop("publishNotReadyAddresses")),
        ("PDB maxUnavailable 2 with replication 3", "PDB lets 2",
         lambda d: kind(d, "PodDisruptionBudget")["spec"].update(maxUnavailable=2)),
        ("grace period shorter than the shutdown budget", "terminationGracePeriodSeconds is 30",
         lambda d: sts(d)["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30)),
        ("a writable root filesystem", "readOnlyRootFilesystem",
         lambda d: ctr(d)["securityContext"].update(readOnlyRootFilesystem=False)),
        ("the token as a literal", "HYPERCACHE_AUTH_TOKEN must be set from a Secret",
         lambda d: env(d, "HYPERCACHE_AUTH_TOKEN", "literal-token")),
        ("no byte cap", "HYPERCACHE_MAX_MEMORY is unset",
         lambda d: ctr(d)["env"].remove(next(e for e in ctr(d)["env"] if e["name"] == "HYPERCACHE_MAX_MEMORY"))),
        ("a memory limit below the sizing", "memory request",
         lambda d: ctr(d)["resources"].update(limits={"cpu": "3", "memory": "1Gi"}, requests={"cpu": "3", "memory": "1Gi"})),
        ("more executors than the CPU limit", "CPU limit",
         lambda d: ctr(d)["resources"]["limits"].update(cpu="2")),
        ("arguments to the binary", "takes no arguments",
         lambda d: ctr(d).update(args=["--port", "8080"])),
        ("service links on", "enableServiceLinks",
         lambda d: sts(d)["spec"]["template"]["spec"].pop("enableServiceLinks")),
    ]


def short(text, limit=160):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def self_test(checker_args, rd, report, versions):
    # The schema check: a misspelt field must be refused in strict mode.
    docs = copy.deepcopy(rd.docs)
    ctr = next(d for d in docs if d["kind"] == "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    ctr["securityContext"]["readOnlyRootFS"] = True
    inner = Report(quiet=True)
    validate_schemas(Rendering(rd.name, docs), versions[-1:], inner)
    report.check(inner.failed == 1 and "readOnlyRootFS" in inner.failures[0],
                 f"[self-test] a misspelt field is caught: {short(inner.failures[0]) if inner.failures else ''}",
                 "[self-test] a misspelt field (readOnlyRootFS) passed the strict schema check")
    for what, expect, mutate in mutations():
        docs = copy.deepcopy(rd.docs)
        try:
            mutate(docs)
        except (StopIteration, KeyError, ValueError) as e:
            report.fail(f"[self-test] could not apply '{what}': {type(e).__name__} {e}")
            continue
        inner = Report(quiet=True)
        Checker(*checker_args, inner).check(Rendering(rd.name, docs))
        caught = [f for f in inner.failures if expect in f]
        others = "; ".join(short(f) for f in inner.failures[:3]) or "none"
        report.check(bool(caught), f"[self-test] {what} is caught: {short(caught[0]) if caught else ''}",
                     f"[self-test] {what} was not reported (expected a failure naming {expect!r}; "
                     f"got: {others})")


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=".")
    ap.add_argument("--bin", default="target/release/hypercache-server", help="hypercache-server binary with check-config")
    ap.add_argument("--k8s-versions", default="1.29.0,1.35.0")
    ap.add_argument("--self-test", metavar="NAME", help="break the rendering NAME in several ways; each must be caught")
    ap.add_argument("--write-seccomp", action="store_true", help=f"regenerate {SECCOMP_K8S} and exit")
    ap.add_argument("renderings", nargs="*", metavar="NAME=FILE")
    a = ap.parse_args()
    root = os.path.abspath(a.root)

    docker = json.load(open(os.path.join(root, SECCOMP_DOCKER), encoding="utf-8"))
    want = seccomp_json(docker_seccomp_to_oci(docker))
    k8s_path = os.path.join(root, SECCOMP_K8S)
    if a.write_seccomp:
        os.makedirs(os.path.dirname(k8s_path), exist_ok=True)
        with open(k8s_path, "w", encoding="utf-8") as f:
            f.write(want)
        print(f"wrote {SECCOMP_K8S}")
        return 0

    report = Report()
    have = open(k8s_path, encoding="utf-8").read() if os.path.exists(k8s_path) else None
    report.check(have == want, f"{SECCOMP_K8S} is {SECCOMP_DOCKER} resolved for Kubernetes",
                 f"{SECCOMP_K8S} is missing or out of date with {SECCOMP_DOCKER}: "
                 f"run python3 tests/kubernetes/k8scheck.py --write-seccomp")
    prof = json.loads(want)
    allowed = {nm for rule in prof["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
               for nm in rule["names"]}
    report.check(all(s in allowed for s in IO_URING_CALLS), f"the profile allows {', '.join(IO_URING_CALLS)}",
                 f"the profile does not allow all of {IO_URING_CALLS} unconditionally")

    versions = [v.strip() for v in a.k8s_versions.split(",") if v.strip()]
    checker_args = (root, os.path.abspath(a.bin))
    rendered = {}
    for item in a.renderings:
        name, _, path = item.partition("=")
        with open(path, encoding="utf-8") as f:
            rd = Rendering(name, list(yaml.safe_load_all(f)))
        rendered[name] = rd
        validate_schemas(rd, versions, report)
        Checker(*checker_args, report).check(rd)
    if a.self_test:
        if a.self_test in rendered:
            self_test(checker_args, rendered[a.self_test], report, versions)
        else:
            report.fail(f"--self-test {a.self_test}: no such rendering")
    print(f"k8s-test: {report.passed} passed, {report.failed} failed", flush=True)
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
