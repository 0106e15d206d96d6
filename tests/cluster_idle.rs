//! An idle cluster is quiet (issue 7 item 7; the Go server fixed four regressions of this kind):
//! once a five-node cluster has formed and its writes have reached every owner, a minute of no
//! client traffic moves no data (no rebalance, anti-entropy, hint or repair transfers), bumps no
//! incarnation and changes no membership state, although anti-entropy keeps comparing trees.

mod common;
use common::cluster::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Counters that only move when data or membership changes.
const QUIET: &[&str] = &[
    "WriteAttempts",
    "WriteAcks",
    "ReplicaFanoutSet",
    "ReplicaFanoutRemove",
    "ForwardSet",
    "ForwardRemove",
    "RebalancedKeys",
    "RebalanceBatches",
    "RebalanceHandoffDrops",
    "MerkleKeysPulled",
    "MerkleKeysPushed",
    "HintedQueued",
    "HintedReplayed",
    "ReadRepair",
    "NodesSuspect",
    "NodesDead",
    "NodesRemoved",
    "MembershipVersion",
];

/// Per node: its id, the QUIET counters and every member's incarnation as it sees them.
type Snapshot = Vec<(String, Vec<u64>, Vec<(String, u64)>)>;

fn snapshot(c: &TestCluster) -> Snapshot {
    (0..c.len())
        .map(|i| {
            let m: Value = c.metrics(i);
            let counters = QUIET
                .iter()
                .map(|f| m[*f].as_u64().unwrap_or_else(|| panic!("{f} missing: {m}")))
                .collect();
            let mut inc: Vec<(String, u64)> = c
                .members(i)
                .into_iter()
                .map(|m| (m.id, m.incarnation))
                .collect();
            inc.sort();
            (c.id(i).to_string(), counters, inc)
        })
        .collect()
}

#[test]
fn idle_cluster_moves_nothing_for_a_minute() {
    // Anti-entropy every second so that the minute covers many full passes over every peer.
    let c = TestCluster::start(5, &[("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "1s")]);
    let mut keys = Vec::new();
    for k in 0..100 {
        let key = format!("idle-{k}");
        put_ok(&c.api(k % 5), &key, format!("v{k}").as_bytes());
        keys.push(key);
    }
    for key in keys.iter().step_by(10) {
        let r = c.api(1).delete(&format!("/v1/cache/{key}"));
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    // Settled: every owner of every key holds the same version.
    c.wait(
        Duration::from_secs(20),
        "every owner holds every write",
        || {
            keys.iter().all(|key| {
                let owners = c.owners(0, key);
                let held: Vec<_> = owners
                    .iter()
                    .map(|o| c.held(c.index_of(o), key).map(|h| h.0))
                    .collect();
                let live = !keys.iter().step_by(10).any(|d| d == key);
                held.windows(2).all(|w| w[0] == w[1]) && (!live || held[0].is_some())
            })
        },
    );
    let aes: Vec<u64> = (0..5).map(|i| c.metric(i, "AutoSyncLoops")).collect();
    let before = snapshot(&c);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(1)); // the observation window, not a wait
        let now = snapshot(&c);
        for (b, n) in before.iter().zip(&now) {
            for (f, (x, y)) in QUIET.iter().zip(b.1.iter().zip(&n.1)) {
                assert_eq!(
                    x,
                    y,
                    "{}: {f} moved from {x} to {y} after {:?} idle",
                    b.0,
                    t0.elapsed()
                );
            }
            assert_eq!(b.2, n.2, "{}: incarnations changed while idle", b.0);
        }
    }
    // Anti-entropy did run the whole time (the quiet is not a stopped loop).
    for (i, a) in aes.iter().enumerate() {
        let after = c.metric(i, "AutoSyncLoops");
        assert!(
            after >= a + 30,
            "{}: AutoSyncLoops {a} -> {after} in 60 s",
            c.id(i)
        );
    }
}
