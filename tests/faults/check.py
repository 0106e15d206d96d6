#!/usr/bin/env python3
"""History checker of the fault suite. Run after a scenario, once its faults are healed and its
load (tests/faults/load.py) has stopped. Exit 1 on any violation, naming the keys.

1. Every node rejoined: each node's /cluster/members shows every node alive; all rings equal.
2. Convergence: every owner of every key (owners from GET /v1/owners/{key}) holds the same
   (kind, version, origin, value), polled with /internal/batch/get and bounded by cluster.md §13
   invariant 7: 3G + (members - 1) x I + 5 s from the end of the load. The final state is then read
   once more with GET /internal/get on every owner.
3. Per key, with A its last acknowledged write or delete (operations on a key are sequential):
   * the final state is A's (its value; absent for a delete), or that of a non-acknowledged write or
     delete that may be ordered after A: one that did not end before A started; a timed-out request
     counts as never ended (the server may still run it). Otherwise the key is "lost" (A a write) or
     "resurrected" (A a delete). A key with no acknowledged operation may hold any value sent to it,
     or none.
   * no value that no client wrote for that key, in the final state or in any read.
4. Failure detection: `member X <state> -> dead` lines logged during the scenario only between nodes
   whose link the scenario cut (--cut); with --no-dead none at all and NodesDead unchanged.
5. No crash: no panic in any log; HTTP statuses only 2xx, 404 (reads) and 503.

With --measure the lost/resurrected keys are counted and printed but are not violations (the
partition + clock skew measurement).
"""

import argparse
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

INF = float("inf")
DEAD_RE = re.compile(r"node=(\S+) member (\S+) (\w+) -> dead\b")
SUSPECT_RE = re.compile(r"node=(\S+) member (\S+) (\w+) -> suspect\b")


def load_history(path):
    meta, ops = None, []
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "meta" in r:
                meta = r["meta"]
            else:
                ops.append(r)
    return meta, ops


def parse_cut(spec, n):
    """"3-*,4-5" -> set of frozenset node-id pairs whose links were cut."""
    pairs = set()
    for part in filter(None, (spec or "").split(",")):
        a, b = part.split("-")
        bs = range(1, n + 1) if b == "*" else [int(b)]
        for j in bs:
            if int(a) != j:
                pairs.add(frozenset(("node-%s" % a, "node-%d" % j)))
    return pairs


def end_of(op):
    # A request that timed out may still be executed (and versioned) later by the server.
    return INF if op["outcome"] == "timeout" else op["t1"]


def state_of(op):
    return ("item", op["value"]) if op["op"] == "put" else ("absent", None)


def final_state(entry):
    kind, _, _, value = entry
    return ("item", value) if kind == "item" else ("absent", None)


def judge_key(key, ops, entry):
    """-> (verdict, detail): verdict in ok | lost | resurrected | foreign."""
    muts = [o for o in ops if o["op"] in ("put", "del") and o["outcome"] != "connfail"]
    written = {o["value"]: o for o in muts if o["op"] == "put"}
    fin = final_state(entry)
    if fin[0] == "item" and fin[1] not in written:
        return "foreign", "holds %r, which no client wrote for %s" % (fin[1], key)
    acked = [o for o in muts if o["outcome"] == "ok"]
    if not acked:
        return "ok", None
    last = max(acked, key=lambda o: o["t0"])
    allowed = [last] + [o for o in muts if o["outcome"] != "ok" and end_of(o) > last["t0"]]
    if any(state_of(o) == fin for o in allowed):
        return "ok", None
    verdict = "resurrected" if last["op"] == "del" else "lost"
    if fin[0] == "item":
        w = written[fin[1]]
        how = "the earlier write %r (%s via %s, ended %.3fs before the acknowledged %s started)" % (
            w["value"], w["outcome"], w["coord"], last["t0"] - w["t1"], last["op"])
    else:
        how = "nothing (absent or tombstone)"
    desc = "%s %r" % (last["op"], last["value"]) if last["op"] == "put" else "delete"
    return verdict, "last acknowledged op: %s via %s at t0=%.3f; owners hold %s" % (desc, last["coord"], last["t0"], how)


def poll_converged(cl, owners, bound_s, t_ref, grace_s):
    """Poll until every key's owners agree. -> (agreed: bool, seconds since t_ref, entries
    {key: {owner: entry}} of the last poll)."""
    dist = common.dist_conns(cl)
    by_owner = defaultdict(list)
    for k, os_ in owners.items():
        for o in os_:
            by_owner[o].append(k)
    deadline = t_ref + bound_s + grace_s
    while True:
        entries = defaultdict(dict)
        ok = True
        for o, keys in by_owner.items():
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                r = common.try_json(dist[o], "/internal/batch/get", cl.auth(), "POST", {"keys": chunk})
                if r is None:
                    ok = False
                    continue
                for res in r["results"]:
                    entries[res["key"]][o] = common.entry_of(res)
        if ok and all(len(set(entries[k].values())) == 1 and len(entries[k]) == len(owners[k]) for k in owners):
            return True, time.time() - t_ref, entries
        if time.time() > deadline:
            return False, time.time() - t_ref, entries
        time.sleep(0.2)


def log_lines_since(logs, offsets, nid):
    path = os.path.join(logs, nid + ".log")
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        f.seek(offsets.get(nid, 0))
        return f.read().decode("utf-8", "replace").splitlines()


def tail(logs, nid, n=25):
    path = os.path.join(logs, nid + ".log")
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return
    print("---- last %d lines of %s" % (n, path))
    for ln in lines[-n:]:
        print("  " + ln)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_cluster_args(p)
    p.add_argument("--scenario", required=True)
    p.add_argument("--history", required=True)
    p.add_argument("--before", required=True, help="ctl.py snapshot taken before the faults")
    p.add_argument("--logs", required=True)
    p.add_argument("--cut", default="", help="node pairs whose link was cut: '3-*' or '1-2,1-3'")
    p.add_argument("--no-dead", action="store_true", help="no dead verdict at all, NodesDead unchanged")
    p.add_argument("--measure", action="store_true", help="count lost/resurrected keys, do not fail on them")
    p.add_argument("--gossip-ms", type=float, required=True)
    p.add_argument("--ae-ms", type=float, required=True)
    p.add_argument("--t-heal", type=float, default=0.0, help="when the last fault was healed (Unix s)")
    p.add_argument("--out", required=True, help="result JSON")
    a = p.parse_args()
    cl = common.cluster_from(a)
    meta, ops = load_history(a.history)
    with open(a.before) as f:
        before = json.load(f)
    viol = []          # (kind, text)
    rel_nodes = set()  # whose log tails to print on failure
    res = {"scenario": a.scenario}

    # ---- load statistics
    dur = max(meta["t_end"] - meta["t_start"], 1e-9)
    cnt = Counter((o["op"], o["outcome"]) for o in ops)
    puts = sum(v for (op, _), v in cnt.items() if op == "put")
    res.update(duration_s=round(dur, 1), ops=len(ops), puts=puts, puts_acked=cnt[("put", "ok")],
               dels=sum(v for (op, _), v in cnt.items() if op == "del"), dels_acked=cnt[("del", "ok")],
               gets=sum(v for (op, _), v in cnt.items() if op == "get"), gets_ok=cnt[("get", "ok")],
               writes_per_s=round(puts / dur), acked_writes_per_s=round(cnt[("put", "ok")] / dur),
               outcomes=dict(Counter(o["outcome"] if o["outcome"] != "fail" else "fail-%s-%s" % (o.get("status"), o.get("code"))
                                     for o in ops)))
    bad_status = Counter((o["op"], o["status"]) for o in ops if o["outcome"] == "fail" and o.get("status") != 503)
    if bad_status:
        viol.append(("status", "unexpected HTTP statuses: %s" % dict(bad_status)))

    # ---- 1. every node rejoined, rings equal
    mg = common.mgmt_conns(cl)
    t0 = time.monotonic()
    while True:
        view = common.members_view(cl, mg)
        if common.all_alive(cl, view):
            break
        if time.monotonic() - t0 > 30:
            for nid, v in view.items():
                viol.append(("rejoin", "%s sees %s" % (nid, "no answer" if v is None else
                                                       " ".join("%s=%s" % kv for kv in sorted(v.items())))))
                rel_nodes.add(nid)
            break
        time.sleep(0.1)
    res["rejoin_s"] = round(time.monotonic() - t0, 2)
    rings = {}
    t0 = time.monotonic()
    while True:
        rings = {nid: common.try_json(mg[nid], "/cluster/ring", cl.auth()) for nid in cl.ids()}
        rs = {json.dumps(r, sort_keys=True) for r in rings.values()}
        if len(rs) == 1 and None not in rings.values():
            break
        if time.monotonic() - t0 > 10:
            viol.append(("ring", "rings differ: %s" % {n: (r or {}).get("count") for n, r in rings.items()}))
            break
        time.sleep(0.1)

    # ---- 2. owners and convergence
    by_key = defaultdict(list)
    for o in ops:
        by_key[o["key"]].append(o)
    keys = sorted(by_key)
    api = common.api_conns(cl, timeout=5.0)
    owners = {}
    ids = cl.ids()
    for i, k in enumerate(keys):
        r = None
        for j in range(len(ids)):
            r = common.try_json(api[ids[(i + j) % len(ids)]], "/v1/owners/" + k, cl.auth())
            if r:
                break
        owners[k] = r["owners"] if r else []
        if not owners[k]:
            viol.append(("owners", "no owners for %s" % k))
    bound = 3 * a.gossip_ms / 1000 + (cl.n - 1) * a.ae_ms / 1000 + 5
    t_ref = max(meta["t_end"], a.t_heal)
    agreed, conv_s, entries = poll_converged(cl, {k: v for k, v in owners.items() if v}, bound, t_ref, 45)
    res.update(convergence_s=round(conv_s, 2), convergence_bound_s=round(bound, 1))
    if not agreed:
        bad = [k for k in owners if len(set(entries[k].values())) != 1]
        viol.append(("converge", "owners still disagree %.1fs after the load stopped (bound %.1fs) on %d keys: %s"
                     % (conv_s, bound, len(bad), " ".join(bad[:10]))))
        for k in bad[:3]:
            rel_nodes.update(owners[k])
    elif conv_s > bound:
        viol.append(("converge", "owners agreed only %.1fs after the load stopped (bound %.1fs)" % (conv_s, bound)))

    # Final state, once more with the single-key route, from every owner.
    dist = common.dist_conns(cl)
    final = {}
    disagree = []
    for k in keys:
        got = {}
        for o in owners[k]:
            r = common.try_json(dist[o], "/internal/get?key=" + k, cl.auth())
            got[o] = common.entry_of(r) if r else ("unreachable", 0, "", None)
        if len(set(got.values())) != 1:
            disagree.append((k, got))
        final[k] = got[owners[k][0]] if owners[k] else ("absent", 0, "", None)
    for k, got in disagree[:10]:
        viol.append(("agree", "%s: owners differ: %s" % (k, got)))
        rel_nodes.update(got)
    res["owners_disagree"] = len(disagree)

    # ---- 3. per-key verdicts and reads
    verdicts = Counter()
    bad_keys = defaultdict(list)
    for k in keys:
        v, detail = judge_key(k, by_key[k], final[k])
        verdicts[v] += 1
        if v != "ok":
            bad_keys[v].append((k, detail))
    reads_bad = []
    for k in keys:
        put_t0 = {o["value"]: o["t0"] for o in by_key[k] if o["op"] == "put" and o["outcome"] != "connfail"}
        for o in by_key[k]:
            if o["op"] == "get" and o["outcome"] == "ok" and o["value"] is not None:
                if o["value"] not in put_t0:
                    reads_bad.append("%s: read %r via %s, which no client wrote" % (k, o["value"], o["coord"]))
                elif put_t0[o["value"]] > o["t1"]:
                    reads_bad.append("%s: read %r via %s before it was written" % (k, o["value"], o["coord"]))
    res.update(keys=len(keys), lost=verdicts["lost"], resurrected=verdicts["resurrected"],
               foreign=verdicts["foreign"], bad_reads=len(reads_bad))
    for k, d in bad_keys["foreign"]:
        viol.append(("foreign", "%s: %s" % (k, d)))
    for r in reads_bad[:20]:
        viol.append(("read", r))
    if a.measure:
        # Who coordinated the acknowledged write that lost, and who won: partition + skew numbers.
        lost_by = Counter()
        for kind in ("lost", "resurrected"):
            for k, _ in bad_keys[kind]:
                acked = [o for o in by_key[k] if o["op"] in ("put", "del") and o["outcome"] == "ok"]
                lost_by[max(acked, key=lambda o: o["t0"])["coord"]] += 1
        res["lost_by_coordinator"] = dict(lost_by)
        res["lost_examples"] = [d for kind in ("lost", "resurrected") for _, d in bad_keys[kind][:3]]
    else:
        for kind in ("lost", "resurrected"):
            for k, d in bad_keys[kind][:20]:
                viol.append((kind, "%s: %s" % (k, d)))
                rel_nodes.update(owners[k])
            if len(bad_keys[kind]) > 20:
                viol.append((kind, "... and %d more %s keys" % (len(bad_keys[kind]) - 20, kind)))

    # ---- 4. failure detection and 5. crashes, from the logs written during the scenario
    cut = parse_cut(a.cut, cl.n)
    dead_lines, bad_dead, suspects = [], [], 0
    for nid in ids:
        for ln in log_lines_since(a.logs, before["log_offsets"], nid):
            m = DEAD_RE.search(ln)
            if m:
                dead_lines.append(ln)
                obs, subj = m.group(1), m.group(2)
                if a.no_dead or frozenset((obs, subj)) not in cut:
                    bad_dead.append(ln)
                    rel_nodes.update((obs, subj))
            if SUSPECT_RE.search(ln):
                suspects += 1
            if "hypercache-server: panic on thread" in ln or "panicked at" in ln:
                viol.append(("crash", "%s: %s" % (nid, ln)))
                rel_nodes.add(nid)
    res.update(dead_verdicts=len(dead_lines), dead_verdicts_unexpected=len(bad_dead), suspect_transitions=suspects)
    for ln in bad_dead[:10]:
        viol.append(("dead", "unexpected dead verdict: " + ln))
    after = {nid: common.try_json(mg[nid], "/dist/metrics", cl.auth()) for nid in ids}
    deltas = Counter()
    for nid in ids:
        b, af = (before["metrics"] or {}).get(nid), after.get(nid)
        if not b or not af:
            continue
        for f in ("NodesDead", "NodesSuspect", "HintedQueued", "HintedReplayed", "MerkleKeysPulled",
                  "MerkleKeysPushed", "RebalancedKeys", "WriteQuorumFailures", "VersionConflicts", "ReadRepair"):
            d = af.get(f, 0) - b.get(f, 0)
            if d >= 0:  # a restarted node starts its counters at 0: skip it
                deltas[f] += d
    res["metric_deltas"] = dict(deltas)
    if a.no_dead and deltas["NodesDead"]:
        viol.append(("dead", "NodesDead grew by %d during the scenario" % deltas["NodesDead"]))

    # ---- report
    res["violations"] = [" ".join(v) for v in viol]
    res["pass"] = not viol
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("== %s: %s" % (a.scenario, "PASS" if not viol else "FAIL (%d violations)" % len(viol)))
    print("   load: %.1fs, %d ops, %d writes (%d/s), %d acknowledged (%d/s), %d deletes (%d acked), %d reads"
          % (dur, len(ops), puts, res["writes_per_s"], res["puts_acked"], res["acked_writes_per_s"],
             res["dels"], res["dels_acked"], res["gets"]))
    print("   outcomes: %s" % " ".join("%s=%d" % kv for kv in sorted(res["outcomes"].items())))
    print("   keys %d: lost %d, resurrected %d, foreign values %d, bad reads %d, owners disagreeing %d"
          % (len(keys), res["lost"], res["resurrected"], res["foreign"], res["bad_reads"], res["owners_disagree"]))
    print("   rejoined after %.1fs; converged %.1fs after the load stopped (bound %.1fs)"
          % (res["rejoin_s"], res["convergence_s"], bound))
    print("   dead verdicts %d (unexpected %d), suspect transitions %d; metric deltas: %s"
          % (len(dead_lines), len(bad_dead), suspects, " ".join("%s=%d" % kv for kv in sorted(deltas.items()))))
    if a.measure:
        print("   MEASURED: %d acknowledged writes/deletes lost to an earlier write after the heal "
              "(lost %d, resurrected %d; by coordinator of the lost op: %s)"
              % (res["lost"] + res["resurrected"], res["lost"], res["resurrected"], res["lost_by_coordinator"]))
        for d in res["lost_examples"]:
            print("     e.g. " + d)
    for v in res["violations"]:
        print("   VIOLATION " + v)
    if viol:
        for nid in sorted(rel_nodes)[:5]:
            tail(a.logs, nid)
    return 0 if not viol else 1


if __name__ == "__main__":
    sys.exit(main())
