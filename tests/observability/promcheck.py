#!/usr/bin/env python3
"""Helpers of scripts/observability-test.sh (standard library only).

Subcommands:
  dashboard-rules DASH OUT       check the Grafana dashboard's structure and write every target
                                 expression, Grafana variables replaced by stand-ins, as a
                                 recording rule file (JSON is YAML) for promtool and Prometheus
  test-config SAMPLE OUT TOKEN_FILE [TARGETS RULE_FILE...]
                                 the sample prometheus.yml with the token file replaced and, when
                                 TARGETS (comma list) is given, 1 s intervals, those targets and
                                 those rule files: the real scrape job, made fast
  families METRICS               metric names a /metrics text exposes (histograms: _bucket,
                                 _sum, _count too)
  check RULES_JSON METRICS DASH TESTS
                                 lint the alerts of /api/v1/rules (and that TESTS has a firing
                                 case for each) and check that every metric name used by a rule
                                 or by the dashboard exists in METRICS
  unhealthy RULES_JSON [SINCE]   rules not evaluated since SINCE (epoch seconds) or evaluated
                                 with an error
  empty-panels DASH_RULES QUERY_JSON
                                 dashboard panels none of whose expressions returns a series
  fast-rule RULES_JSON ALERT FOR OUT
                                 a copy of ALERT with a shorter `for` and the label test="fast"
  alert-state ALERTS_JSON ALERT INSTANCE [fast|real]
                                 state (pending / firing / none) of ALERT for INSTANCE
  scalar QUERY_JSON              the value of an instant query answer, or "" when empty
"""
import json
import re
import sys

ALERT_ANCHORS = {
    "node-loss", "split-brain", "hint-queue-overflow", "rebalance-under-load",
    "replica-divergence", "memory-pressure", "drain-stuck", "tls-certificates",
}
SEVERITIES = {"critical", "warning", "info"}
PROMETHEUS_OWN = {"up"}
DURATION_VARS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
                 "__range_s": "3600", "__interval_ms": "60000"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan"}


def die(msg):
    print(f"promcheck: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------- PromQL names

def metric_names(expr):
    """Metric names selected by a PromQL expression (a lexical scan, enough for the
    selectors, functions and operators of PromQL; rejects {__name__=...} selectors)."""
    if "__name__" in expr:
        die(f"selector by __name__ is not checked, write the metric name: {expr}")
    q = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    q = re.sub(r"\{[^}]*\}", " ", q)           # label matchers
    q = re.sub(r"\[[^\]]*\]", " ", q)          # ranges and subqueries
    q = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", q)
    q = re.sub(r"\boffset\s+-?\w+", " ", q)
    names = set()
    for m in re.finditer(r"(?<![\w:.])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:])(?!\s*\()", q):
        if m.group(1).lower() not in KEYWORDS:
            names.add(m.group(1))
    return names


def families(text):
    """Names a Prometheus text exposition offers."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(None, 3)
            names.add(name)
            if kind.strip() == "histogram":
                names |= {name + "_bucket", name + "_sum", name + "_count"}
            elif kind.strip() == "summary":
                names |= {name + "_sum", name + "_count"}
        elif line and not line.startswith("#"):
            names.add(re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line).group(0))
    return names


# --------------------------------------------------------------------------- dashboard

def substitute(expr):
    def var(m):
        name = m.group(1) or m.group(2)
        return DURATION_VARS.get(name, ".+")
    out = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", var, expr)
    return out


def dashboard_targets(dash):
    """(panel id, panel title, refId, expr) of every query, with structural checks."""
    if not isinstance(dash.get("panels"), list) or not dash["panels"]:
        die("dashboard has no panels")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds_var = [n for n, v in variables.items() if v.get("type") == "datasource"]
    inputs = [i for i in dash.get("__inputs", []) if i.get("pluginId") == "prometheus"]
    if not ds_var and not inputs:
        die("dashboard has neither a datasource variable nor a Prometheus __inputs entry")
    ds_refs = {f"${{{n}}}" for n in ds_var} | {f"${n}" for n in ds_var} | \
        {f"${{{i['name']}}}" for i in inputs}
    seen_ids, out = set(), []
    panels = []
    for p in dash["panels"]:
        panels.append(p)
        panels.extend(p.get("panels", []))
    for p in panels:
        pid = p.get("id")
        if pid in seen_ids:
            die(f"duplicate panel id {pid}")
        seen_ids.add(pid)
        if "gridPos" not in p:
            die(f"panel {pid} {p.get('title')!r} has no gridPos")
        if p.get("type") == "row":
            continue
        uid = (p.get("datasource") or {}).get("uid")
        if uid not in ds_refs:
            die(f"panel {pid} {p.get('title')!r} uses datasource {uid!r}, not one of {sorted(ds_refs)}")
        if not p.get("targets"):
            die(f"panel {pid} {p.get('title')!r} has no targets")
        for t in p["targets"]:
            if not t.get("expr", "").strip():
                die(f"panel {pid} {p.get('title')!r} target {t.get('refId')} has no expr")
            out.append((pid, p.get("title"), t.get("refId"), t["expr"]))
    for name, v in variables.items():
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            out.append((f"var:{name}", name, "", q))
    return out


def variable_metric(q):
    """label_values(metric{...}, label) or a plain PromQL variable query."""
    m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*,\s*\w+\s*\)\s*", q)
    if m:
        return m.group(1)
    m = re.fullmatch(r"\s*(label_names|metrics)\(.*\)\s*", q)
    if m:
        die(f"variable query {q!r} is not checked")
    m = re.fullmatch(r"\s*query_result\((.*)\)\s*", q)
    return m.group(1) if m else q


def cmd_dashboard_rules(dash_path, out_path):
    dash = load(dash_path)
    rules = []
    for pid, title, ref, expr in dashboard_targets(dash):
        if str(pid).startswith("var:"):
            expr = variable_metric(expr)
            record = f"dashboard:variable_{title}"
        else:
            record = f"dashboard:panel_{pid}_{ref}"
        e = substitute(expr)
        if "$" in e:
            die(f"unreplaced Grafana variable in {record}: {e}")
        rules.append({"record": record, "expr": e})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=1)
    print(len(rules))


# --------------------------------------------------------------------------- config

def cmd_test_config(sample, out, token_file, targets=None, *rule_files):
    text = open(sample, encoding="utf-8").read()

    def sub(pattern, repl, count_ok=(1,)):
        nonlocal text
        text, n = re.subn(pattern, repl, text, flags=re.M)
        if n not in count_ok:
            die(f"{sample}: expected one match of {pattern!r}, found {n}: did its layout change?")

    sub(r"^(\s*credentials_file:).*$", rf"\1 {token_file}")
    if targets:
        sub(r"^(\s*scrape_interval:).*$", r"\1 1s")
        sub(r"^(\s*scrape_timeout:).*$", r"\1 1s")
        sub(r"^(\s*evaluation_interval:).*$", r"\1 1s")
        # The rule_files list and the static targets list: replace their items.
        sub(r"^(rule_files:\n)(?:[ \t]+- .*\n)+",
            lambda m: m.group(1) + "".join(f"  - {r}\n" for r in rule_files))
        sub(r"^([ \t]*- targets:\n)((?:[ \t]+- .*\n)+)",
            lambda m: m.group(1) + "".join(
                re.match(r"\s*", m.group(2)).group(0) + f"- {t}\n" for t in targets.split(",")))
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)


# --------------------------------------------------------------------------- rules

def all_rules(rules_json):
    data = load(rules_json)
    if data.get("status") != "success":
        die(f"/api/v1/rules: {data}")
    for g in data["data"]["groups"]:
        for r in g["rules"]:
            yield g, r


def cmd_check(rules_json, metrics_path, dash_path, tests_path):
    exposed = families(open(metrics_path, encoding="utf-8").read())
    tests = open(tests_path, encoding="utf-8").read()
    recorded = {r["name"] for _, r in all_rules(rules_json) if r["type"] == "recording"}
    problems, used, alerts = [], {}, 0
    for g, r in all_rules(rules_json):
        where = f"rule {r['name']} ({g['file']})"
        for n in metric_names(r["query"]):
            used.setdefault(n, set()).add(where)
        if r["type"] != "alerting" or g["name"].startswith("hypercache-test"):
            continue
        alerts += 1
        # promtool does not require a test per alert: at least one evaluation that expects it
        # to fire (the non-firing series sit beside it, see the test file's comments).
        if not re.search(rf"alertname: {re.escape(r['name'])}\n\s*exp_alerts:\n\s*- exp_labels:", tests):
            problems.append(f"{where}: no test in {tests_path} where it fires")
        if r.get("duration", 0) <= 0:
            problems.append(f"{where}: no `for:`")
        sev = r.get("labels", {}).get("severity")
        if sev not in SEVERITIES:
            problems.append(f"{where}: severity {sev!r} not in {sorted(SEVERITIES)}")
        ann = r.get("annotations", {})
        for k in ("summary", "description", "runbook_url"):
            if not ann.get(k, "").strip():
                problems.append(f"{where}: no {k} annotation")
        m = re.fullmatch(r"docs/operations\.md#([a-z0-9-]+)", ann.get("runbook_url", ""))
        if not m or m.group(1) not in ALERT_ANCHORS:
            problems.append(f"{where}: runbook_url {ann.get('runbook_url')!r} is not "
                            f"docs/operations.md#<one of {sorted(ALERT_ANCHORS)}>")
    # Grafana variable queries are not PromQL rules when label_values() is used: check the
    # metric inside them too (dashboard-rules loaded them as rules as well).
    for pid, title, ref, expr in dashboard_targets(load(dash_path)):
        if str(pid).startswith("var:"):
            src, user = variable_metric(expr), f"dashboard variable ${title}"
        else:
            src, user = expr, f"dashboard panel {pid} {title!r} {ref}"
        for n in metric_names(substitute(src)):
            used.setdefault(n, set()).add(user)
    missing = sorted(n for n in used if n not in exposed | recorded | PROMETHEUS_OWN)
    for n in missing:
        problems.append(f"metric {n} does not exist in /metrics; used by: "
                        + "; ".join(sorted(used[n])))
    if problems:
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        sys.exit(1)
    ours = sorted(n for n in used if n not in recorded)
    print(f"{alerts} alerts linted; {len(ours)} metric names used, all exist: {' '.join(ours)}")


def epoch(ts):
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds."""
    import datetime
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", ts)
    if not m:
        die(f"cannot read time {ts!r}")
    base = datetime.datetime.fromisoformat(m.group(1) + m.group(3).replace("Z", "+00:00"))
    return base.timestamp() + float("0." + (m.group(2) or "0"))


def cmd_unhealthy(rules_json, since="0"):
    bad = []
    for g, r in all_rules(rules_json):
        if r.get("health") != "ok":
            bad.append(f"{g['name']}/{r['name']}: health={r.get('health')} {r.get('lastError', '')}")
        elif epoch(r["lastEvaluation"]) < float(since):
            bad.append(f"{g['name']}/{r['name']}: not evaluated since the cluster formed")
    print("\n".join(bad))


def cmd_empty_panels(dash_rules, query_json):
    """Panels none of whose recording rules (dashboard:panel_<id>_<ref>) has a series."""
    with_data = {r["metric"]["__name__"] for r in load(query_json)["data"]["result"]}
    panels = {}
    for r in load(dash_rules)["groups"][0]["rules"]:
        m = re.fullmatch(r"dashboard:panel_(\d+)_\w+", r["record"])
        if m:
            panels.setdefault(m.group(1), []).append(r)
    for pid, rules in sorted(panels.items(), key=lambda kv: int(kv[0])):
        if not any(r["record"] in with_data for r in rules):
            print(f"panel {pid}: no data from " + " | ".join(r["expr"] for r in rules))


def cmd_fast_rule(rules_json, alert, duration, out):
    for g, r in all_rules(rules_json):
        if r["type"] == "alerting" and r["name"] == alert and not g["name"].startswith("hypercache-test"):
            labels = dict(r.get("labels", {}), test="fast")
            rule = {"alert": alert, "expr": r["query"], "for": duration, "labels": labels,
                    "annotations": r.get("annotations", {})}
            with open(out, "w", encoding="utf-8") as f:
                json.dump({"groups": [{"name": "hypercache-test-fast", "rules": [rule]}]}, f, indent=1)
            print(r["query"])
            return
    die(f"alert {alert} not loaded")


def cmd_alert_state(alerts_json, alert, instance, which="fast"):
    data = load(alerts_json)
    states = set()
    for a in data["data"]["alerts"]:
        lb = a["labels"]
        if lb.get("alertname") == alert and lb.get("instance") == instance and \
                (lb.get("test") == "fast") == (which == "fast"):
            states.add(a["state"])
    print(",".join(sorted(states)) or "none")


def cmd_scalar(query_json):
    data = load(query_json)
    res = data.get("data", {}).get("result", [])
    print(res[0]["value"][1] if res else "")


def main(argv):
    cmds = {"dashboard-rules": cmd_dashboard_rules, "test-config": cmd_test_config,
            "check": cmd_check, "unhealthy": cmd_unhealthy, "fast-rule": cmd_fast_rule,
            "alert-state": cmd_alert_state, "scalar": cmd_scalar,
            "empty-panels": cmd_empty_panels,
            "families": lambda p: print("\n".join(sorted(families(open(p).read()))))}
    if len(argv) < 2 or argv[1] not in cmds:
        die(__doc__)
    cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    main(sys.argv)
