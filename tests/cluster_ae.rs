//! Anti-entropy (cluster.md §10): owners that missed a write or a delete
//! converge through the Merkle exchange, with no client traffic and no hints.

mod common;

use std::time::Duration;

use base64::Engine;
use common::cluster::TestCluster;
use serde_json::json;

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

/// Plants an entry on one node only, as a replica message would.
fn plant(c: &TestCluster, i: usize, key: &str, value: &[u8], version: u64) {
    let body = json!({"key": key, "value": b64(value), "expiration_ms": 0,
                      "version": version, "origin": "node-1", "replicate": false});
    let r = c.dist(i).post_json("/internal/set", &body);
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn owners_converge_without_client_traffic() {
    let c = TestCluster::start(3, &[("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "300ms")]);
    // RF 3 on 3 nodes: every node owns every key. Plant keys on node-1 only.
    let base = 117_000_000_000_000_000u64;
    for k in 0..20 {
        plant(
            &c,
            0,
            &format!("ae-{k}"),
            format!("v{k}").as_bytes(),
            base + k,
        );
    }
    // A newer tombstone on node-3 only, for a key every node holds as an item.
    for i in 0..3 {
        plant(&c, i, "ae-deleted", b"old", base);
    }
    let r = c.dist(2).request(
        "DELETE",
        &format!(
            "/internal/del?key=ae-deleted&version={}&origin=node-3&deleted_at={}",
            base + 100,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    c.wait(
        Duration::from_secs(10),
        "every owner holds the planted keys",
        || {
            (0..3).all(|i| {
                (0..20).all(|k| {
                    c.held(i, &format!("ae-{k}"))
                        .is_some_and(|h| h.0 == base + k)
                })
            })
        },
    );
    c.wait(
        Duration::from_secs(10),
        "the tombstone reached every owner",
        || {
            (0..3).all(|i| {
                c.internal_get(i, "ae-deleted")["tombstone"]["version"].as_u64() == Some(base + 100)
            })
        },
    );
    let synced: u64 = (0..3).map(|i| c.metric(i, "MerkleSyncs")).sum();
    let moved: u64 = (0..3)
        .map(|i| c.metric(i, "MerkleKeysPulled") + c.metric(i, "MerkleKeysPushed"))
        .sum();
    assert!(synced > 0, "MerkleSyncs stayed 0");
    assert!(moved >= 40, "keys pulled + pushed: {moved}");
}

#[test]
fn leaves_route_answers_equal_and_ring_mismatch() {
    let c = TestCluster::start(2, &[("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "0")]);
    let r = c
        .dist(0)
        .get("/internal/ae/leaves?peer=node-2&ring=0000000000000000&root=0000000000000000");
    assert_eq!(r.status, 409, "{}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["code"], "RING_MISMATCH");
    let fp = v["ring"].as_str().unwrap().to_string();
    // Empty pair set: the empty tree's root (cluster.md §10 vector).
    let r = c.dist(0).get(&format!(
        "/internal/ae/leaves?peer=node-2&ring={fp}&root=02b5073505a48fb4"
    ));
    assert_eq!(r.status, 200, "{}", r.describe());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["equal"], true, "{v}");
    let r = c.dist(0).get("/internal/ae/leaves?peer=node-2");
    assert_eq!(r.status, 400);
    let r = c.dist(0).post_json(
        "/internal/ae/digests",
        &json!({"peer": "node-2", "ring": fp, "leaves": (0..65).collect::<Vec<u32>>()}),
    );
    assert_eq!(r.status, 400);
}

/// A Go sender's `replicate:true` write (unversioned): the receiver versions
/// it, applies it and coordinates the other owners (cluster.md §12.3).
#[test]
fn go_sender_replicate_true_reaches_every_owner() {
    let c = TestCluster::start(3, &[("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "0")]);
    let body = json!({"key": "go-write", "value": b64(b"from-go"), "expiration_ms": 0,
                      "version": 0, "origin": "", "replicate": true});
    let r = c.dist(1).post_json("/internal/set", &body);
    assert_eq!(r.status, 200, "{}", r.describe());
    c.wait(
        Duration::from_secs(3),
        "every owner holds the Go write",
        || {
            (0..3).all(|i| {
                c.held(i, "go-write")
                    .is_some_and(|h| h.1 == "node-2" && h.2 == b"from-go")
            })
        },
    );
}

/// An exchange compares only entries written before its cut-off (`before`, docs/cluster.md
/// "Anti-entropy under writes"): a write still on its way to the other owners does not make the
/// trees differ, an older difference does, and a caller that sends no cut-off (a Go peer) gets
/// every entry compared.
#[test]
fn entries_younger_than_the_cut_off_stay_out_of_the_exchange() {
    let c = TestCluster::start(2, &[("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "0")]);
    let fp = {
        let r = c
            .dist(0)
            .get("/internal/ae/leaves?peer=node-2&ring=0000000000000000&root=0");
        r.json()["ring"].as_str().unwrap().to_string()
    };
    let empty = "02b5073505a48fb4";
    let wall_ms: u64 = 1_790_000_000_000; // planted at this wall time (its HLC stamp below)
    plant(&c, 0, "young", b"v", wall_ms << 16);
    let leaves = |before: Option<u64>| {
        let cut = before.map(|b| format!("&before={b}")).unwrap_or_default();
        let r = c.dist(0).get(&format!(
            "/internal/ae/leaves?peer=node-2&ring={fp}&root={empty}{cut}"
        ));
        assert_eq!(r.status, 200, "{}", r.describe());
        r.json()["equal"].as_bool().unwrap()
    };
    assert!(leaves(Some(wall_ms)), "written at the cut-off: left out");
    assert!(
        !leaves(Some(wall_ms + 1)),
        "written before the cut-off: compared"
    );
    assert!(!leaves(None), "no cut-off: compared");
    let digests = |before: u64| {
        let leaf = (xxhash_rust::xxh64::xxh64(b"young", 0) >> 54) as u32;
        let r = c.dist(0).post_json(
            "/internal/ae/digests",
            &json!({"peer": "node-2", "ring": fp, "leaves": [leaf], "before": before}),
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        r.json()["entries"].as_array().unwrap().len()
    };
    assert_eq!(digests(wall_ms), 0);
    assert_eq!(digests(wall_ms + 1), 1);
    let r = c.dist(0).get(&format!(
        "/internal/ae/leaves?peer=node-2&ring={fp}&root={empty}&before=soon"
    ));
    assert_eq!(r.status, 400, "{}", r.describe());
}
