//! The management listener (ops.md §1).

mod common;
use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const NODE: &str = "test-node";
const JSON_CT: &str = "application/json; charset=utf-8";

fn get_json(c: &Client, path: &str) -> Value {
    let r = c.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.describe());
    assert_eq!(r.header("content-type"), Some(JSON_CT), "GET {path}");
    r.json()
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not an unsigned integer in {v}"))
}

const FAMILIES: [&str; 9] = [
    "get",
    "head",
    "put",
    "delete",
    "batch_get",
    "batch_put",
    "batch_delete",
    "owners",
    "other",
];
const COUNTERS: [&str; 8] = [
    "items",
    "bytes",
    "hits",
    "misses",
    "sets",
    "deletes",
    "evictions",
    "expirations",
];

fn check_stats_shape(v: &Value, cores: usize) {
    assert_eq!(v["node"], NODE);
    for f in ["uptime_s"].iter().chain(COUNTERS.iter()) {
        u(v, f);
    }
    assert!(v["draining"].is_boolean(), "{v}");
    assert!(v["capacity"]["items"].is_u64(), "{v}");
    assert!(
        v["capacity"]["max_memory_bytes"].is_null() || v["capacity"]["max_memory_bytes"].is_u64()
    );
    assert!(
        v["eviction_policy"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    let cs = v["cores"]
        .as_array()
        .unwrap_or_else(|| panic!("cores not an array: {v}"));
    assert_eq!(cs.len(), cores, "one entry per data core");
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(u(c, "core"), i as u64, "cores in core order");
        for f in ["cpu", "capacity_items", "connections"]
            .iter()
            .chain(COUNTERS.iter())
        {
            u(c, f);
        }
    }
    let lat = &v["latency_us"];
    for fam in FAMILIES {
        let h = &lat[fam];
        for f in ["count", "p50", "p90", "p99", "p999", "max"] {
            u(h, f);
        }
        if u(h, "count") > 0 {
            let q: Vec<u64> = ["p50", "p90", "p99", "p999", "max"]
                .iter()
                .map(|f| u(h, f))
                .collect();
            assert!(
                q.windows(2).all(|w| w[0] <= w[1]),
                "{fam} percentiles not monotonic: {h}"
            );
        }
    }
}

fn check_totals_are_core_sums(v: &Value) {
    for f in COUNTERS {
        let sum: u64 = v["cores"].as_array().unwrap().iter().map(|c| u(c, f)).sum();
        assert_eq!(u(v, f), sum, "node {f} != sum over cores: {v}");
    }
}

#[test]
fn health_is_ok_then_503_after_drain() {
    let n = TestNode::start(1, &[]);
    let m = n.mgmt_client();
    let r = m.get("/health");
    assert_eq!(
        (r.status, r.header("content-type"), r.body.as_slice()),
        (200, Some("text/plain; charset=utf-8"), &b"ok"[..])
    );
    assert_eq!(m.head("/health").status, 200);
    for _ in 0..2 {
        let r = m.post("/dist/drain", b"");
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.json(), json!({"draining":true}));
    }
    let r = m.get("/health");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("content-type"), Some(JSON_CT));
    assert_eq!(r.json(), json!({"status":"draining"}));
    assert_eq!(get_json(&m, "/stats")["draining"], true);
}

#[test]
fn stats_shape_and_counters_move() {
    let n = TestNode::start(2, &[]);
    let (m, c) = (n.mgmt_client(), n.api_client());
    let s0 = get_json(&m, "/stats");
    check_stats_shape(&s0, 2);
    check_totals_are_core_sums(&s0);
    assert_eq!(s0["draining"], false);
    assert_eq!(
        s0["capacity"],
        json!({"items":100000,"max_memory_bytes":null})
    );
    let cap: u64 = s0["cores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| u(c, "capacity_items"))
        .sum();
    assert_eq!(cap, 100_000);

    for i in 0..10 {
        assert_eq!(
            c.put(&format!("/v1/cache/s-{i}"), b"0123456789").status,
            200
        );
    }
    for i in 0..10 {
        assert_eq!(c.get(&format!("/v1/cache/s-{i}")).status, 200);
    }
    for i in 0..5 {
        assert_eq!(c.get(&format!("/v1/cache/miss-{i}")).status, 404);
    }
    assert_eq!(c.head("/v1/cache/s-0").status, 200);
    assert_eq!(c.head("/v1/cache/miss-x").status, 404);
    assert_eq!(
        c.post_json(
            "/v1/cache/batch/get",
            &json!({"keys":["s-1","s-2","miss-y"]})
        )
        .status,
        200
    );
    assert_eq!(c.delete("/v1/cache/s-8").status, 200);
    assert_eq!(c.delete("/v1/cache/s-9").status, 200);
    let r = c.post_json(
        "/v1/cache/batch/put",
        &json!({"items":[{"key":"bp-0","value":"a"},{"key":"bp-1","value":"b"}]}),
    );
    assert_eq!(r.status, 200);
    let r = c.post_json("/v1/cache/batch/delete", &json!({"keys":["bp-1"]}));
    assert_eq!(r.status, 200);
    assert_eq!(c.get("/v1/owners/s-0").status, 200);

    let s = get_json(&m, "/stats");
    check_stats_shape(&s, 2);
    check_totals_are_core_sums(&s);
    let d = |f: &str| u(&s, f) - u(&s0, f);
    assert_eq!(d("sets"), 12, "sets: 10 PUT + 2 batch items");
    assert_eq!(d("hits"), 13, "hits: 10 GET + 1 HEAD + 2 batch items");
    assert_eq!(d("misses"), 7, "misses: 5 GET + 1 HEAD + 1 batch item");
    assert_eq!(d("deletes"), 3, "deletes: 2 DELETE + 1 batch item");
    assert_eq!(u(&s, "items"), 9);
    assert!(
        u(&s, "bytes") > 9 * 10,
        "bytes count keys, values and overhead"
    );
    let lat = |fam: &str| u(&s["latency_us"][fam], "count");
    assert!(lat("get") >= 15 && lat("put") >= 10 && lat("head") >= 2 && lat("delete") >= 2);
    assert!(
        lat("batch_get") >= 1
            && lat("batch_put") >= 1
            && lat("batch_delete") >= 1
            && lat("owners") >= 1
    );
    let cfg = get_json(&m, "/config");
    assert_eq!(
        cfg["allocation"], s["bytes"],
        "/config allocation = /stats bytes"
    );
}

#[test]
fn stats_capacity_split_and_memory_cap() {
    let n = TestNode::start(
        2,
        &[
            ("HYPERCACHE_CAPACITY", "1001"),
            ("HYPERCACHE_MAX_MEMORY", "64MiB"),
            ("HYPERCACHE_EVICTION", "lru"),
        ],
    );
    let s = get_json(&n.mgmt_client(), "/stats");
    check_stats_shape(&s, 2);
    assert_eq!(
        s["capacity"],
        json!({"items":1001,"max_memory_bytes":67108864u64})
    );
    assert_eq!(s["eviction_policy"], "lru");
    assert_eq!(u(&s["cores"][0], "capacity_items"), 501);
    assert_eq!(u(&s["cores"][1], "capacity_items"), 500);
}

const ENV_VARS: [&str; 36] = [
    "HYPERCACHE_NODE_ID",
    "HYPERCACHE_API_ADDR",
    "HYPERCACHE_MGMT_ADDR",
    "HYPERCACHE_DIST_ADDR",
    "HYPERCACHE_DIST_ADVERTISE",
    "HYPERCACHE_SEEDS",
    "HYPERCACHE_REPLICATION",
    "HYPERCACHE_CAPACITY",
    "HYPERCACHE_MAX_MEMORY",
    "HYPERCACHE_EVICTION",
    "HYPERCACHE_AUTH_TOKEN",
    "HYPERCACHE_AUTH_CONFIG",
    "HYPERCACHE_API_ADVERTISE",
    "HYPERCACHE_LOG_LEVEL",
    "HYPERCACHE_LOG_FORMAT",
    "HYPERCACHE_HEARTBEAT",
    "HYPERCACHE_INDIRECT_PROBE_K",
    "HYPERCACHE_SUSPICION_MULT",
    "HYPERCACHE_GOSSIP_INTERVAL",
    "HYPERCACHE_HINT_TTL",
    "HYPERCACHE_HINT_REPLAY",
    "HYPERCACHE_HINT_MAX_PER_NODE",
    "HYPERCACHE_HINT_MAX_BYTES",
    "HYPERCACHE_REBALANCE_INTERVAL",
    "HYPERCACHE_REBALANCE_BATCH",
    "HYPERCACHE_ANTI_ENTROPY_INTERVAL",
    "HYPERCACHE_TOMBSTONE_TTL",
    "HYPERCACHE_WRITE_CONSISTENCY",
    "HYPERCACHE_READ_CONSISTENCY",
    "HYPERCACHE_MAX_BODY",
    "HYPERCACHE_MAX_BATCH",
    "HYPERCACHE_MAX_CONNS",
    "HYPERCACHE_CORES",
    "HYPERCACHE_CPU_SET",
    "HYPERCACHE_SHUTDOWN_TIMEOUT",
    "HYPERCACHE_DRAIN_GRACE",
];

const SECRET: &str = "tok-SECRET-9f3a";

#[test]
fn config_lists_every_variable_and_redacts_the_token() {
    let n = TestNode::start(
        2,
        &[
            ("HYPERCACHE_AUTH_TOKEN", SECRET),
            ("HYPERCACHE_EVICTION", "lru"),
            ("HYPERCACHE_MAX_MEMORY", "64MiB"),
            ("HYPERCACHE_HINT_TTL", "90s"),
            ("HYPERCACHE_HEARTBEAT", " 1500ms "),
        ],
    );
    let m = n.mgmt_client();
    let r = m.get("/config");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(!r.text().contains(SECRET), "token leaked in /config");
    let v = r.json();
    assert_eq!(v["capacity"], 100000);
    assert!(v["allocation"].is_u64());
    assert_eq!(v["maxCacheSize"], 67108864u64);
    assert_eq!(v["evictionInterval"], "0s");
    let ei = v["expirationInterval"]
        .as_str()
        .unwrap_or_else(|| panic!("expirationInterval: {v}"));
    assert!(ei.ends_with('s') && ei != "0s", "expirationInterval {ei:?}");
    assert_eq!(v["evictionAlgorithm"], "lru");
    assert_eq!(v["replication"], 3);
    assert_eq!(v["virtualNodesPerNode"], 64);
    assert_eq!(v["node"], NODE);
    assert_eq!(v["cores"], 2);
    let env = v["env"]
        .as_object()
        .unwrap_or_else(|| panic!("env object missing: {v}"));
    for k in ENV_VARS {
        assert!(
            env.get(k).is_some_and(Value::is_string),
            "env lacks {k} as a string: {v}"
        );
    }
    let want = [
        ("HYPERCACHE_NODE_ID", "test-node"),
        ("HYPERCACHE_AUTH_TOKEN", "<redacted>"),
        ("HYPERCACHE_SEEDS", ""),
        ("HYPERCACHE_REPLICATION", "3"),
        ("HYPERCACHE_CAPACITY", "100000"),
        ("HYPERCACHE_MAX_MEMORY", "67108864"),
        ("HYPERCACHE_EVICTION", "lru"),
        ("HYPERCACHE_LOG_LEVEL", "info"),
        ("HYPERCACHE_HEARTBEAT", "1.5s"),
        ("HYPERCACHE_INDIRECT_PROBE_K", "2"),
        ("HYPERCACHE_SUSPICION_MULT", "3"),
        ("HYPERCACHE_GOSSIP_INTERVAL", "1s"),
        ("HYPERCACHE_HINT_TTL", "1m30s"),
        ("HYPERCACHE_HINT_REPLAY", "200ms"),
        ("HYPERCACHE_HINT_MAX_PER_NODE", "100000"),
        ("HYPERCACHE_HINT_MAX_BYTES", "268435456"),
        ("HYPERCACHE_REBALANCE_INTERVAL", "250ms"),
        ("HYPERCACHE_REBALANCE_BATCH", "128"),
        ("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "30s"),
        ("HYPERCACHE_TOMBSTONE_TTL", "10m0s"),
        ("HYPERCACHE_WRITE_CONSISTENCY", "quorum"),
        ("HYPERCACHE_READ_CONSISTENCY", "one"),
        ("HYPERCACHE_MAX_BODY", "4194304"),
        ("HYPERCACHE_MAX_BATCH", "1000"),
        ("HYPERCACHE_MAX_CONNS", "10000"),
        ("HYPERCACHE_CORES", "2"),
        ("HYPERCACHE_SHUTDOWN_TIMEOUT", "30s"),
        ("HYPERCACHE_DRAIN_GRACE", "5s"),
        ("HYPERCACHE_LOG_FORMAT", "text"),
    ];
    for (k, val) in want {
        assert_eq!(env[k], val, "/config env {k}");
    }
    assert!(
        !env["HYPERCACHE_CPU_SET"].as_str().unwrap().is_empty(),
        "CPU_SET as computed"
    );
    // The token never appears in any response or log.
    assert_eq!(n.api_client().put("/v1/cache/k", b"v").status, 200);
    for p in [
        "/stats",
        "/dist/metrics",
        "/cluster/members",
        "/cluster/ring",
        "/cluster/heartbeat",
        "/metrics",
        "/dist/owners?key=k",
        "/nope",
    ] {
        let r = m.get(p);
        assert!(!r.text().contains(SECRET), "token leaked in {p}");
    }
    assert!(!n.stderr().contains(SECRET), "token leaked in the log");
}

const DIST_COUNTERS: &[&str] = &[
    "ForwardGet",
    "ForwardSet",
    "ForwardRemove",
    "ReplicaFanoutSet",
    "ReplicaFanoutRemove",
    "ReadRepair",
    "ReadRepairBatched",
    "ReadRepairCoalesced",
    "ReplicaGetMiss",
    "ReadPrimaryPromote",
    "HeartbeatSuccess",
    "HeartbeatFailure",
    "IndirectProbeSuccess",
    "IndirectProbeFailure",
    "IndirectProbeRefuted",
    "NodesSuspect",
    "NodesDead",
    "NodesRemoved",
    "Drains",
    "VersionConflicts",
    "VersionTieBreaks",
    "WriteAttempts",
    "WriteAcks",
    "WriteQuorumFailures",
    "WriteApplyRefused",
    "WriteForwardPromotion",
    "HintedQueued",
    "HintedReplayed",
    "HintedExpired",
    "HintedDropped",
    "HintedGlobalDropped",
    "MigrationHintQueued",
    "MigrationHintReplayed",
    "MigrationHintExpired",
    "MigrationHintDropped",
    "MerkleSyncs",
    "MerkleKeysPulled",
    "AutoSyncLoops",
    "AutoSyncCleanTicks",
    "ChaosDrops",
    "ChaosLatencies",
    "TombstonesPurged",
    "RebalancedKeys",
    "RebalanceBatches",
    "RebalanceThrottle",
    "RebalancedPrimary",
    "RebalancedReplicaDiff",
    "RebalanceReplicaDiffThrottle",
    "RebalanceHandoffDrops",
    "MerkleKeysPushed",
    "NodesSuspect",
    "NodesDead",
    "Drains",
    "ForwardGet",
];
const DIST_GAUGES: &[&str] = &[
    "HintedBytes",
    "MigrationHintLastAgeNanos",
    "MerkleBuildNanos",
    "MerkleDiffNanos",
    "MerkleFetchNanos",
    "LastAutoSyncNanos",
    "AutoSyncBackoffFactor",
    "TombstonesActive",
    "RebalanceLastNanos",
    "MembershipVersion",
    "MembersAlive",
    "MembersSuspect",
    "MembersDead",
    "MembersLeft",
    "LocalHealth",
];
const DIST_ALWAYS_ZERO: &[&str] = &[
    "ReadRepairBatched",
    "ReadRepairCoalesced",
    "ReplicaGetMiss",
    "WriteApplyRefused",
    "WriteForwardPromotion",
    "MigrationHintQueued",
    "MigrationHintReplayed",
    "MigrationHintExpired",
    "MigrationHintDropped",
    "AutoSyncBackoffFactor",
    "ChaosDrops",
    "ChaosLatencies",
    "RebalancedPrimary",
    "RebalancedReplicaDiff",
];

#[test]
fn dist_metrics_has_every_field() {
    let n = TestNode::start(1, &[]);
    let m = n.mgmt_client();
    let v0 = get_json(&m, "/dist/metrics");
    for f in DIST_COUNTERS.iter().chain(DIST_GAUGES.iter()) {
        u(&v0, f);
    }
    assert!(
        v0["LastAutoSyncError"].is_string(),
        "LastAutoSyncError must be a string: {v0}"
    );
    for f in DIST_ALWAYS_ZERO.iter() {
        assert_eq!(u(&v0, f), 0, "{f} has no counterpart and stays 0");
    }
    assert_eq!(u(&v0, "MembersAlive"), 1, "self counts as alive");
    assert_eq!(
        (
            u(&v0, "MembersSuspect"),
            u(&v0, "MembersDead"),
            u(&v0, "MembersLeft")
        ),
        (0, 0, 0)
    );
    assert_eq!(u(&v0, "Drains"), 0);

    let c = n.api_client();
    assert_eq!(c.put("/v1/cache/dm", b"v").status, 200);
    let v1 = get_json(&m, "/dist/metrics");
    assert_eq!(
        u(&v1, "WriteAttempts"),
        u(&v0, "WriteAttempts") + 1,
        "one write coordinated here"
    );
    assert_eq!(
        u(&v1, "WriteAcks"),
        u(&v0, "WriteAcks") + 1,
        "the local owner acknowledged"
    );
    assert_eq!(u(&v1, "ForwardSet"), 0, "the node owns every key");
    assert_eq!(c.delete("/v1/cache/dm").status, 200);
    let v2 = get_json(&m, "/dist/metrics");
    assert!(
        u(&v2, "TombstonesActive") >= 1,
        "a delete leaves a tombstone"
    );
    assert_eq!(m.post("/dist/drain", b"").status, 200);
    assert_eq!(u(&get_json(&m, "/dist/metrics"), "Drains"), 1);
}

#[test]
fn dist_owners_route() {
    let n = TestNode::start(1, &[]);
    let m = n.mgmt_client();
    assert_eq!(
        get_json(&m, "/dist/owners?key=greeting"),
        json!({"key":"greeting","owners":[NODE]})
    );
    assert_eq!(
        get_json(&m, "/dist/owners?key=a+b")["key"],
        "a b",
        "form decoding: + is a space"
    );
    assert_eq!(get_json(&m, "/dist/owners?key=a%2Bb")["key"], "a+b");
    assert_eq!(
        get_json(&m, "/dist/owners?x=1&key=caf%C3%A9")["key"],
        "café"
    );
    for p in ["/dist/owners", "/dist/owners?key=", "/dist/owners?other=1"] {
        assert_eq!(
            assert_error(&m.get(p), 400, "BAD_REQUEST"),
            "missing cache key",
            "{p}"
        );
    }
    assert_error(&m.get("/dist/owners?key=%FF"), 400, "BAD_REQUEST");
    let r = m.get(&format!("/dist/owners?key={}", "k".repeat(1025)));
    assert!(assert_error(&r, 400, "BAD_REQUEST").starts_with("key too long"));
}

#[test]
fn cluster_members_ring_and_heartbeat() {
    let n = TestNode::start(1, &[]);
    let m = n.mgmt_client();
    let v = get_json(&m, "/cluster/members");
    assert_eq!(v["replication"], 3);
    assert_eq!(v["virtualNodes"], 64);
    let members = v["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{v}");
    let me = &members[0];
    assert_eq!(me["ID"], NODE);
    assert_eq!(
        me["Address"],
        n.dist().to_string(),
        "advertised = DIST_ADDR with the bound port"
    );
    assert_eq!(me["State"], "alive");
    assert!(me["Incarnation"].is_u64());

    let ring = get_json(&m, "/cluster/ring");
    assert_eq!(ring["count"], 64);
    let vn: Vec<&str> = ring["vnodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(vn.len(), 64);
    for e in &vn {
        let (hash, id) = e.split_once(':').unwrap_or_else(|| panic!("vnode {e}"));
        assert!(
            hash.len() == 16
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "vnode {e}"
        );
        assert_eq!(id, NODE);
    }
    assert!(
        vn.windows(2).all(|w| w[0] < w[1]),
        "vnodes sorted by hash ascending"
    );

    let hb = get_json(&m, "/cluster/heartbeat");
    let keys: BTreeSet<&str> = hb.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "heartbeatSuccess",
            "heartbeatFailure",
            "nodesRemoved",
            "readPrimaryPromote"
        ])
    );
    let dm = get_json(&m, "/dist/metrics");
    for (h, d) in [
        ("heartbeatSuccess", "HeartbeatSuccess"),
        ("heartbeatFailure", "HeartbeatFailure"),
        ("nodesRemoved", "NodesRemoved"),
        ("readPrimaryPromote", "ReadPrimaryPromote"),
    ] {
        assert_eq!(u(&hb, h), u(&dm, d), "{h}");
    }
}

// ---------- /metrics ----------

struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: String,
}

/// Family name -> (HELP lines, TYPE lines, type).
type Families = BTreeMap<String, (usize, usize, String)>;

fn parse_prometheus(text: &str) -> (Families, Vec<Sample>) {
    let mut fams: BTreeMap<String, (usize, usize, String)> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            fams.entry(name).or_insert((0, 0, String::new())).0 += 1;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let name = it.next().unwrap().to_string();
            let ty = it.next().unwrap_or("").to_string();
            let e = fams.entry(name).or_insert((0, 0, String::new()));
            e.1 += 1;
            e.2 = ty;
        } else if line.starts_with('#') {
            continue;
        } else {
            let (head, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {line:?}"));
            let (name, labels) = match head.split_once('{') {
                Some((n, l)) => (
                    n.to_string(),
                    l.strip_suffix('}')
                        .unwrap_or_else(|| panic!("bad labels {line:?}")),
                ),
                None => (head.to_string(), ""),
            };
            let mut lm = BTreeMap::new();
            for kv in labels.split("\",").filter(|s| !s.is_empty()) {
                let (k, v) = kv
                    .split_once("=\"")
                    .unwrap_or_else(|| panic!("bad label {kv:?} in {line:?}"));
                lm.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
            samples.push(Sample {
                name,
                labels: lm,
                value: value.to_string(),
            });
        }
    }
    (fams, samples)
}

fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

#[test]
fn prometheus_metrics_are_well_formed() {
    let n = TestNode::start(2, &[]);
    let c = n.api_client();
    for i in 0..6 {
        assert_eq!(c.put(&format!("/v1/cache/pm-{i}"), b"v").status, 200);
        assert_eq!(c.get(&format!("/v1/cache/pm-{i}")).status, 200);
    }
    let m = n.mgmt_client();
    let r = m.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    let (fams, samples) = parse_prometheus(&text);
    for (name, (help, ty_count, ty)) in &fams {
        assert_eq!(
            (*help, *ty_count),
            (1, 1),
            "{name}: one HELP and one TYPE line"
        );
        assert!(
            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty.as_str()),
            "{name}: type {ty}"
        );
        if ty == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} must end in _total"
            );
        }
        assert!(name.starts_with("hypercache_"), "{name}");
    }
    for s in &samples {
        let fam = if fams.contains_key(&s.name) {
            s.name.clone()
        } else {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suf| s.name.strip_suffix(suf));
            let base = base
                .unwrap_or_else(|| panic!("sample {} has no family", s.name))
                .to_string();
            assert_eq!(
                fams.get(&base).map(|f| f.2.as_str()),
                Some("histogram"),
                "sample {}",
                s.name
            );
            base
        };
        assert!(fams.contains_key(&fam));
        let ok =
            s.value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&s.value.as_str());
        assert!(ok, "sample {} value {:?}", s.name, s.value);
    }
    let want = [
        ("hypercache_build_info", "gauge"),
        ("hypercache_uptime_seconds", "gauge"),
        ("hypercache_draining", "gauge"),
        ("hypercache_items", "gauge"),
        ("hypercache_bytes", "gauge"),
        ("hypercache_capacity_items", "gauge"),
        ("hypercache_max_memory_bytes", "gauge"),
        ("hypercache_hits_total", "counter"),
        ("hypercache_misses_total", "counter"),
        ("hypercache_sets_total", "counter"),
        ("hypercache_deletes_total", "counter"),
        ("hypercache_evictions_total", "counter"),
        ("hypercache_expirations_total", "counter"),
        ("hypercache_connections", "gauge"),
        ("hypercache_connections_rejected_total", "counter"),
        ("hypercache_http_requests_total", "counter"),
        ("hypercache_http_request_duration_seconds", "histogram"),
        ("hypercache_cross_core_messages_total", "counter"),
        ("hypercache_peer_requests_total", "counter"),
        ("hypercache_dist_forward_get_total", "counter"),
        ("hypercache_dist_hinted_bytes", "gauge"),
        ("hypercache_dist_rebalance_last_seconds", "gauge"),
    ];
    for (name, ty) in want {
        assert_eq!(
            fams.get(name).map(|f| f.2.as_str()),
            Some(ty),
            "family {name} ({ty}) missing"
        );
    }
    // Every numeric /dist/metrics field is exported under the documented name.
    for f in DIST_COUNTERS.iter() {
        let name = format!("hypercache_dist_{}_total", snake(f));
        assert_eq!(
            fams.get(&name).map(|f| f.2.as_str()),
            Some("counter"),
            "{name}"
        );
    }
    for f in DIST_GAUGES.iter() {
        let s = snake(f);
        let name = match s.strip_suffix("_nanos") {
            Some(b) => format!("hypercache_dist_{b}_seconds"),
            None => format!("hypercache_dist_{s}"),
        };
        assert_eq!(
            fams.get(&name).map(|f| f.2.as_str()),
            Some("gauge"),
            "{name}"
        );
    }
    assert!(
        !text.contains("last_auto_sync_error"),
        "LastAutoSyncError is not exported"
    );

    let bi: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "hypercache_build_info")
        .collect();
    assert_eq!(bi.len(), 1);
    assert!(bi[0].labels.contains_key("version") && bi[0].value == "1");
    let val = |name: &str| -> f64 {
        samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value.parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!(val("hypercache_sets_total"), 6.0);
    assert_eq!(val("hypercache_hits_total"), 6.0);
    assert_eq!(val("hypercache_items"), 6.0);
    assert_eq!(val("hypercache_draining"), 0.0);
    let cores: BTreeSet<&str> = samples
        .iter()
        .filter(|s| s.name == "hypercache_items")
        .filter_map(|s| s.labels.get("core").map(String::as_str))
        .collect();
    assert_eq!(cores, BTreeSet::from(["0", "1"]));
    let les: BTreeSet<String> = samples
        .iter()
        .filter(|s| s.name == "hypercache_http_request_duration_seconds_bucket")
        .filter_map(|s| s.labels.get("le").cloned())
        .collect();
    let mut les: Vec<f64> = les
        .iter()
        .map(|l| {
            if l == "+Inf" {
                f64::INFINITY
            } else {
                l.parse().unwrap()
            }
        })
        .collect();
    les.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let want_le = [
        0.00005,
        0.0001,
        0.00025,
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        f64::INFINITY,
    ];
    assert_eq!(les, want_le.to_vec(), "histogram buckets");

    assert_eq!(m.post("/dist/drain", b"").status, 200);
    let (_, samples) = parse_prometheus(&m.get("/metrics").text());
    let d: f64 = samples
        .iter()
        .filter(|s| s.name == "hypercache_draining")
        .map(|s| s.value.parse::<f64>().unwrap())
        .sum();
    assert_eq!(d, 1.0);
}

// ---------- /cluster/events ----------

#[test]
fn cluster_events_stream() {
    let n = TestNode::start(1, &[]);
    let mut conn = Conn::open(n.mgmt());
    conn.send(b"GET /cluster/events HTTP/1.1\r\nHost: t\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    assert!(
        conn.read_until(deadline, |b| find(b, b"\r\n\r\n").is_some()),
        "no response head: {:?}",
        lossy(&conn.buf)
    );
    let head_end = find(&conn.buf, b"\r\n\r\n").unwrap() + 4;
    let (head, _) = parse_response(&conn.buf[..head_end], true, false)
        .unwrap()
        .unwrap();
    assert_eq!(head.status, 200, "{}", head.describe());
    assert!(
        head.header("content-type")
            .unwrap_or("")
            .starts_with("text/event-stream"),
        "{}",
        head.describe()
    );
    assert_eq!(head.header("cache-control"), Some("no-cache"));
    assert_eq!(head.header("x-accel-buffering"), Some("no"));
    assert_eq!(
        head.header("transfer-encoding")
            .map(str::to_ascii_lowercase),
        Some("chunked".into())
    );
    assert!(head.header("content-length").is_none());
    let body_text = |buf: &[u8]| {
        String::from_utf8_lossy(&decode_chunks(&buf[head_end..]).unwrap().0).into_owned()
    };
    // Snapshots first, then one live heartbeat per second.
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = conn.read_until(deadline, |b| {
        body_text(b).matches("event: heartbeat\n").count() >= 2
    });
    let text = body_text(&conn.buf);
    assert!(
        got,
        "expected snapshots and a live heartbeat within 5 s, got {text:?}"
    );
    assert!(text.starts_with("retry: 5000\n\n"), "{text:?}");
    let events: Vec<&str> = text["retry: 5000\n\n".len()..]
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .collect();
    assert!(
        events[0].starts_with("event: members\n"),
        "first snapshot is members: {text:?}"
    );
    assert!(
        events[1].starts_with("event: heartbeat\n"),
        "second snapshot is heartbeat: {text:?}"
    );
    for e in events.iter().take_while(|e| e.ends_with('}')) {
        let lines: Vec<&str> = e.split('\n').collect();
        assert_eq!(
            lines.len(),
            2,
            "event = one event line and one data line: {e:?}"
        );
        let data: Value =
            serde_json::from_str(lines[1].strip_prefix("data: ").expect("data line")).unwrap();
        if lines[0] == "event: members" {
            assert_eq!(data["members"][0]["ID"], NODE);
            assert_eq!(data["virtualNodes"], 64);
        } else {
            assert_eq!(lines[0], "event: heartbeat");
            assert!(
                data["heartbeatSuccess"].is_u64() && data["readPrimaryPromote"].is_u64(),
                "{data}"
            );
        }
    }
    assert!(!text.lines().any(|l| l.starts_with("id:")), "no id: lines");
}

// ---------- control actions ----------

#[test]
fn evict_expire_and_clear() {
    let n = TestNode::start(2, &[]);
    let (m, c) = (n.mgmt_client(), n.api_client());
    let r = m.post("/evict", b"");
    assert_eq!(r.status, 202, "{}", r.describe());
    assert_eq!(r.json(), json!({"evicted":0}));

    for i in 0..5 {
        assert_eq!(
            c.put(&format!("/v1/cache/te-{i}?ttl=500ms"), b"v").status,
            200
        );
    }
    let written = Instant::now();
    assert_eq!(u(&get_json(&m, "/stats"), "items"), 5);
    std::thread::sleep(
        (written + Duration::from_millis(600)).saturating_duration_since(Instant::now()),
    );
    let r = m.post("/trigger-expiration", b"");
    assert_eq!(r.status, 202, "{}", r.describe());
    let expired = u(&r.json(), "expired");
    assert!(expired <= 5, "{}", r.describe());
    let s = get_json(&m, "/stats");
    assert_eq!(
        u(&s, "items"),
        0,
        "no expired entry survives trigger-expiration"
    );
    assert_eq!(
        u(&s, "expirations"),
        5,
        "each expired entry counted once (active task or trigger)"
    );
    let r = m.post("/trigger-expiration", b"");
    assert_eq!(r.json(), json!({"expired":0}));

    for i in 0..7 {
        assert_eq!(c.put(&format!("/v1/cache/cl-{i}"), b"v").status, 200);
    }
    let r = m.post("/clear", b"ignored body");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json(), json!({"cleared":7}));
    for i in 0..7 {
        assert_eq!(c.get(&format!("/v1/cache/cl-{i}")).status, 404);
    }
    assert_eq!(u(&get_json(&m, "/stats"), "items"), 0);
}

#[test]
fn wrong_method_unknown_path_and_keep_alive() {
    let n = TestNode::start(1, &[]);
    let m = n.mgmt_client();
    for p in [
        "/stats",
        "/config",
        "/health",
        "/metrics",
        "/cluster/members",
    ] {
        let r = m.post(p, b"");
        assert_eq!(
            assert_error(&r, 405, "METHOD_NOT_ALLOWED"),
            "method not allowed",
            "POST {p}"
        );
        let allow = r
            .header("allow")
            .unwrap_or_else(|| panic!("no Allow for {p}"));
        let toks: BTreeSet<&str> = allow.split(',').map(str::trim).collect();
        assert!(
            toks.contains("GET") && toks.contains("HEAD"),
            "Allow {allow:?} for {p}"
        );
    }
    for p in ["/evict", "/clear", "/trigger-expiration", "/dist/drain"] {
        let r = m.get(p);
        assert_error(&r, 405, "METHOD_NOT_ALLOWED");
        assert_eq!(r.header("allow"), Some("POST"), "{p}");
    }
    assert_eq!(assert_error(&m.get("/nope"), 404, "NOT_FOUND"), "not found");
    assert_error(&m.get("/v1/cache/x"), 404, "NOT_FOUND");
    let h = m.head("/stats");
    assert_eq!((h.status, h.body.len()), (200, 0));
    assert!(h.header("content-length").is_some_and(|l| l != "0"));
    // Same HTTP layer: pipelined requests answered in order on one connection.
    let mut conn = Conn::open(n.mgmt());
    let mut req = build_request("GET", "/health", &[], None);
    req.extend(build_request("GET", "/nope", &[], None));
    req.extend(build_request("GET", "/dist/owners?key=x", &[], None));
    conn.send(&req);
    assert_eq!(conn.read_response().body, b"ok");
    assert_eq!(conn.read_response().status, 404);
    assert_eq!(conn.read_response().json()["key"], "x");
}

#[test]
fn management_auth() {
    let n = TestNode::start(1, &[("HYPERCACHE_AUTH_TOKEN", "mgmt-token")]);
    assert!(n.start_line().contains("auth=on"), "{}", n.start_line());
    let (anon, m) = (n.mgmt_anon(), n.mgmt_client());
    for (meth, p) in [
        ("GET", "/stats"),
        ("GET", "/config"),
        ("GET", "/metrics"),
        ("GET", "/nope"),
        ("POST", "/clear"),
        ("POST", "/dist/drain"),
        ("GET", "/cluster/events"),
    ] {
        let r = anon.request(meth, p, &[], None);
        assert_eq!(
            assert_error(&r, 401, "UNAUTHORIZED"),
            "unauthorized",
            "{meth} {p}"
        );
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    let r = anon.get_with("/stats", &[("Authorization", "Bearer wrong")]);
    assert_error(&r, 401, "UNAUTHORIZED");
    let r = anon.get("/health");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(anon.head("/health").status, 200);
    assert_eq!(m.get("/stats").status, 200);
    assert_eq!(assert_error(&m.get("/nope"), 404, "NOT_FOUND"), "not found");
    assert_eq!(m.post("/clear", b"").json(), json!({"cleared":0}));
    assert_eq!(
        get_json(&m, "/stats")["draining"],
        false,
        "unauthenticated drain had no effect"
    );
}
