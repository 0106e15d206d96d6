//! Membership changes: crash, restart, join, graceful leave, drain, quorum loss
//! (cluster.md §1, §2, §6, §11, §13 invariants 2, 11, 12, 13, 16).

mod common;
use common::cluster::*;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// 2T + S + G with the harness timers (cluster.md §13 invariant 11).
fn dead_bound() -> Duration {
    Duration::from_millis(2 * T_MS + SUSPICION_MULT * T_MS + G_MS)
}

fn all_keys_readable(c: &TestCluster, keys: &[(String, Vec<u8>)]) {
    for &j in &c.running() {
        for (k, v) in keys {
            assert_eq!(
                get_raw(&c.api(j), k).as_deref(),
                Some(v.as_slice()),
                "{k} via {}",
                c.id(j)
            );
        }
    }
}

/// kill -9 one of five: quorum writes keep succeeding, every key stays readable, the node is
/// `dead` and out of every ring within 2T+S+G (+ margin); a restart rejoins with a higher
/// incarnation.
#[test]
fn kill9_one_of_five_then_restart() {
    let mut c = TestCluster::start(5, &[]);
    let victim = 2; // node-3
    let vid = c.id(victim).to_string();
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for k in 0..20 {
        let key = format!("before-{k}");
        let val = format!("v-{k}").into_bytes();
        put_ok(&c.api(k % 5), &key, &val);
        keys.push((key, val));
    }
    assert!(
        keys.iter()
            .filter(|(k, _)| c.owners(0, k).contains(&vid))
            .count()
            > 3,
        "some keys must be owned by the victim"
    );
    let inc_before = c.member(0, &vid).unwrap().incarnation;
    put_ok(&c.api(victim), "mono", b"before-restart");
    let ver_before = head_version(&c.api(0), "mono").unwrap();

    let t_kill = Instant::now();
    c.kill(victim);
    let survivors = c.running();

    // writes keep succeeding at once (W = 2 of 3 owners)
    for k in 0..20 {
        let key = format!("after-{k}");
        let val = format!("w-{k}").into_bytes();
        put_ok(&c.api(survivors[k % 4]), &key, &val);
        keys.push((key, val));
    }
    all_keys_readable(&c, &keys);

    // dead on every survivor and out of every ring
    let bound = dead_bound() + Duration::from_millis(1800);
    c.wait(
        bound.saturating_sub(t_kill.elapsed()),
        "victim dead and out of every ring",
        || {
            survivors
                .iter()
                .all(|&i| c.state_of(i, &vid).as_deref() == Some("dead") && c.ring(i).0 == 4 * 64)
        },
    );
    eprintln!(
        "victim dead everywhere after {:?} (bound {:?} + margin)",
        t_kill.elapsed(),
        dead_bound()
    );
    for &i in &survivors {
        assert!(!c.ring_ids(i).contains(&vid), "ring of {}", c.id(i));
        assert!(!c.owners(i, "greeting").contains(&vid));
    }
    for k in 0..10 {
        let key = format!("dead-{k}");
        let val = format!("d-{k}").into_bytes();
        put_ok(&c.api(survivors[k % 4]), &key, &val);
        keys.push((key, val));
    }
    all_keys_readable(&c, &keys);

    // restart: alive everywhere with a higher incarnation
    c.restart(victim);
    c.wait(
        Duration::from_secs(5),
        "restarted node alive everywhere",
        || {
            c.running().iter().all(|&i| {
                c.try_members(i)
                    .is_ok_and(|ms| ms.len() == 5 && ms.iter().all(|m| m.state == "alive"))
                    && c.ring(i).0 == 5 * 64
            })
        },
    );
    for &i in &c.running() {
        let m = c.member(i, &vid).unwrap();
        assert!(
            m.incarnation > inc_before,
            "incarnation on {}: {} !> {inc_before}",
            c.id(i),
            m.incarnation
        );
    }
    all_keys_readable(&c, &keys);

    // invariant 5: versions keep increasing through a restarted coordinator
    put_ok(&c.api(victim), "mono", b"after-restart");
    c.wait(
        Duration::from_secs(2),
        "the post-restart write served everywhere",
        || {
            c.running()
                .iter()
                .all(|&i| get_raw(&c.api(i), "mono").as_deref() == Some(&b"after-restart"[..]))
        },
    );
    let ver_after = head_version(&c.api(0), "mono").unwrap();
    assert!(
        ver_after > ver_before,
        "X-Cache-Version after restart {ver_after} !> {ver_before}"
    );
}

/// A node seeded with one member only appears alive on every node within 5G (+ margin); a bare
/// `host:port` seed resolves to the peer's real id.
#[test]
fn join_via_gossip_and_bare_seed() {
    let mut c = TestCluster::start(3, &[]);
    let bound = Duration::from_millis(5 * G_MS) + Duration::from_millis(1000);

    let seed = c.seed_of(0);
    let n4 = c.add_node("node-4", &seed);
    let t = Instant::now();
    c.wait(
        bound,
        "node-4 alive on every node and node-4 sees everyone",
        || {
            (0..4).all(|i| {
                c.try_members(i)
                    .is_ok_and(|ms| ms.len() == 4 && ms.iter().all(|m| m.state == "alive"))
                    && c.ring(i).0 == 4 * 64
            })
        },
    );
    eprintln!("node-4 known everywhere after {:?}", t.elapsed());
    assert_eq!(c.id(n4), "node-4");

    // bare seed: the dist address of node-2, no id
    let bare = format!("127.0.0.1:{}", c.slots[1].dist_port);
    let n5 = c.add_node("node-5", &bare);
    let t = Instant::now();
    c.wait(
        bound,
        "node-5 alive on every node, bare seed resolved",
        || {
            (0..5).all(|i| {
                c.try_members(i)
                    .is_ok_and(|ms| ms.len() == 5 && ms.iter().all(|m| m.state == "alive"))
                    && c.ring(i).0 == 5 * 64
            })
        },
    );
    eprintln!("node-5 known everywhere after {:?}", t.elapsed());
    let ms = c.members(n5);
    let ids: Vec<&str> = ms.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        ["node-1", "node-2", "node-3", "node-4", "node-5"],
        "{ms:?}"
    );
    let n2 = ms.iter().find(|m| m.id == "node-2").unwrap();
    assert_eq!(n2.address, bare, "the bare seed is node-2: {ms:?}");
    // the rings agree: §3 vectors for node-1..node-5
    for i in 0..5 {
        assert_eq!(
            c.owners(i, "greeting"),
            ["node-5", "node-4", "node-1"],
            "on {}",
            c.id(i)
        );
        assert_eq!(
            c.owners(i, "hello"),
            ["node-3", "node-5", "node-1"],
            "on {}",
            c.id(i)
        );
        assert_eq!(
            c.owners(i, "user:42"),
            ["node-2", "node-4", "node-3"],
            "on {}",
            c.id(i)
        );
    }
    // and data flows through the newcomers
    put_ok(&c.api(n5), "joined", b"yes");
    for i in 0..5 {
        assert_eq!(
            get_raw(&c.api(i), "joined").as_deref(),
            Some(&b"yes"[..]),
            "on {}",
            c.id(i)
        );
    }
}

/// SIGTERM: the node is `left` and out of every peer's ring within 1 s, peers never suspected
/// it, and it exits 0.
#[test]
fn graceful_stop_is_left_without_suspicion() {
    let mut c = TestCluster::start(4, &[]);
    let leaver = 3; // node-4
    let lid = c.id(leaver).to_string();
    put_ok(&c.api(0), "kept-after-leave", b"v");
    let peers = [0usize, 1, 2];
    let suspects: Vec<u64> = peers.iter().map(|&i| c.metric(i, "NodesSuspect")).collect();

    let t = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(c.node(leaver).pid() as libc::pid_t, libc::SIGTERM) };
    c.wait(
        Duration::from_millis(1500),
        "leaver left and out of every peer ring",
        || {
            peers
                .iter()
                .all(|&i| c.state_of(i, &lid).as_deref() == Some("left") && c.ring(i).0 == 3 * 64)
        },
    );
    eprintln!("left everywhere after {:?}", t.elapsed());
    let st = c.node_mut(leaver).wait_exit(Duration::from_secs(8));
    assert_eq!(st.code(), Some(0), "graceful exit status");
    c.slots[leaver].node = None;

    // a few probe/suspicion periods later: still left, never suspected
    std::thread::sleep(dead_bound());
    for (k, &i) in peers.iter().enumerate() {
        assert_eq!(
            c.state_of(i, &lid).as_deref(),
            Some("left"),
            "on {}",
            c.id(i)
        );
        let ns = c.metric(i, "NodesSuspect");
        if ns != suspects[k] {
            let log = c.node(i).stderr();
            let lines: Vec<&str> = log.lines().filter(|l| l.contains("suspect")).collect();
            panic!(
                "NodesSuspect grew on {} ({} -> {ns}); suspect log lines:\n{}",
                c.id(i),
                suspects[k],
                lines.join("\n")
            );
        }
        assert_eq!(
            get_raw(&c.api(i), "kept-after-leave").as_deref(),
            Some(&b"v"[..])
        );
    }
}

/// POST /dist/drain: writes 503 DRAINING, reads still served, excluded from owners everywhere
/// within about 1 s (invariant 16).
#[test]
fn drain_refuses_writes_serves_reads_and_leaves_owners() {
    let mut c = TestCluster::start(4, &[]);
    let x = 1; // node-2
    let xid = c.id(x).to_string();
    let keys: Vec<(String, Vec<u8>)> = (0..12)
        .map(|k| (format!("drain-{k}"), format!("val-{k}").into_bytes()))
        .collect();
    for (k, v) in &keys {
        put_ok(&c.api(0), k, v);
    }
    assert!(keys.iter().any(|(k, _)| c.owners(0, k).contains(&xid)));

    let t = Instant::now();
    let r = c.mgmt(x).post("/dist/drain", b"");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json(), json!({"draining": true}));

    // writes refused at once
    let r = c.api(x).put("/v1/cache/drain-new", b"x");
    let text = assert_error(&r, 503, "DRAINING");
    assert_eq!(text, "node is draining; redirect to a peer");
    let r = c.api(x).delete("/v1/cache/drain-0");
    assert_error(&r, 503, "DRAINING");
    let r = c.api(x).post_json(
        "/v1/cache/batch/put",
        &json!({"items": [{"key": "drain-b", "value": "x"}]}),
    );
    assert_error(&r, 503, "DRAINING");
    let r = c
        .api(x)
        .post_json("/v1/cache/batch/delete", &json!({"keys": ["drain-0"]}));
    assert_error(&r, 503, "DRAINING");
    let r = c.mgmt(x).get("/health");
    assert_eq!(r.status, 503, "{}", r.describe());

    // excluded from owners on every other node within ~1 s
    let others = [0usize, 2, 3];
    c.wait(
        Duration::from_millis(1500),
        "drained node out of every peer's owners",
        || {
            others.iter().all(|&i| {
                c.state_of(i, &xid).as_deref() == Some("left")
                    && !c.ring_ids(i).contains(&xid)
                    && keys.iter().all(|(k, _)| !c.owners(i, k).contains(&xid))
            })
        },
    );
    eprintln!("drained node out of owners after {:?}", t.elapsed());
    for &i in &others {
        assert_eq!(c.ring(i).0, 3 * 64, "ring on {}", c.id(i));
    }

    // reads keep working through the draining node, old and new keys
    put_ok(&c.api(0), "after-drain", b"new");
    let mut all = keys.clone();
    all.push(("after-drain".into(), b"new".to_vec()));
    for (k, v) in &all {
        assert_eq!(
            get_raw(&c.api(x), k).as_deref(),
            Some(v.as_slice()),
            "{k} via draining node"
        );
    }
    let r = c.api(x).put("/v1/cache/drain-new", b"x");
    assert_error(&r, 503, "DRAINING");
    assert_eq!(c.metric(x, "Drains"), 1);
    // the rest of the cluster serves everything
    c.wait(
        Duration::from_secs(5),
        "all keys readable on the other nodes",
        || {
            others.iter().all(|&i| {
                all.iter()
                    .all(|(k, v)| get_raw(&c.api(i), k).as_deref() == Some(v.as_slice()))
            })
        },
    );
    // SIGTERM after the drain: exits 0 (hand-off done) and every key stays readable
    let st = c.stop(x);
    assert_eq!(st.code(), Some(0), "exit after drain");
    for &i in &others {
        assert_eq!(
            c.state_of(i, &xid).as_deref(),
            Some("left"),
            "on {}",
            c.id(i)
        );
        for (k, v) in &all {
            assert_eq!(
                get_raw(&c.api(i), k).as_deref(),
                Some(v.as_slice()),
                "{k} via {} after exit",
                c.id(i)
            );
        }
    }
}

/// Two of three owners down: PUT and DELETE answer 503 QUORUM_FAILED with the api.md §8 text.
#[test]
fn quorum_failure_with_two_of_three_down() {
    // long suspicion so the dead nodes stay ring members (n stays 3) for the whole test
    let mut c = TestCluster::start(
        3,
        &[
            ("HYPERCACHE_HEARTBEAT", "1s"),
            ("HYPERCACHE_SUSPICION_MULT", "20"),
        ],
    );
    put_ok(&c.api(0), "qf-old", b"old");
    put_ok(&c.api(0), "qf-read", b"readable");
    let before = c.metric(0, "WriteQuorumFailures");
    c.kill(1);
    c.kill(2);
    assert_eq!(
        c.ring(0).0,
        3 * 64,
        "the killed nodes are still ring members"
    );

    let r = c.api(0).put("/v1/cache/qf-key", b"v");
    let text = assert_error(&r, 503, "QUORUM_FAILED");
    assert_eq!(
        text,
        "write consistency not achieved: 1 of 2 required owner acks"
    );

    let r = c.api(0).delete("/v1/cache/qf-old");
    let text = assert_error(&r, 503, "QUORUM_FAILED");
    assert_eq!(
        text,
        "write consistency not achieved: 1 of 2 required owner acks"
    );

    let r = c.api(0).post_json(
        "/v1/cache/batch/put",
        &json!({"items": [{"key": "qf-b", "value": "x"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let v = r.json();
    let it = &v["results"][0];
    assert_eq!(it["stored"], false, "{v}");
    assert_eq!(it["code"], "QUORUM_FAILED", "{v}");
    assert_eq!(strs(&it["owners"]).len(), 3, "{v}");

    assert!(c.metric(0, "WriteQuorumFailures") >= before + 3);
    // reads of a key the survivor holds keep working
    assert_eq!(
        get_raw(&c.api(0), "qf-read").as_deref(),
        Some(&b"readable"[..])
    );
}

/// Invariant 12 (second half): a restarted node holds its keys again within 5 s plus the time
/// to move them (rebalance or catch-up), without any read going through it.
#[test]
fn restarted_node_holds_its_keys_again() {
    let mut c = TestCluster::start(4, &[]);
    let victim = 3; // node-4
    let vid = c.id(victim).to_string();
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for k in 0..30 {
        let key = format!("hold-{k}");
        let val = format!("h-{k}").into_bytes();
        put_ok(&c.api(k % 3), &key, &val);
        keys.push((key, val));
    }
    c.kill(victim);
    c.wait(
        dead_bound() + Duration::from_millis(1800),
        "victim dead everywhere",
        || (0..3).all(|i| c.state_of(i, &vid).as_deref() == Some("dead")),
    );
    // written while it is dead
    for k in 0..10 {
        let key = format!("hold-dead-{k}");
        let val = format!("hd-{k}").into_bytes();
        put_ok(&c.api(k % 3), &key, &val);
        keys.push((key, val));
    }
    c.restart(victim);
    c.wait(
        Duration::from_secs(3),
        "restarted node alive everywhere",
        || (0..4).all(|i| c.ring(i).0 == 4 * 64),
    );
    let mine: Vec<&(String, Vec<u8>)> = keys
        .iter()
        .filter(|(k, _)| c.owners(0, k).contains(&vid))
        .collect();
    assert!(mine.len() > 5, "victim owns some keys");
    let t = Instant::now();
    c.wait(
        Duration::from_secs(6),
        "restarted node holds its keys again (no reads through it)",
        || {
            mine.iter()
                .all(|(k, v)| c.held(victim, k).is_some_and(|h| h.2 == *v))
        },
    );
    eprintln!(
        "restarted node holds its {} keys after {:?}",
        mine.len(),
        t.elapsed()
    );
}

/// Invariants 13/14: writes that answered QUORUM_FAILED converge to every owner once the owners
/// return (hints within HINT_REPLAY + 2T + 3G + 1 s).
#[test]
fn quorum_failed_writes_converge_when_owners_return() {
    let mut c = TestCluster::start(
        3,
        &[
            ("HYPERCACHE_HEARTBEAT", "1s"),
            ("HYPERCACHE_SUSPICION_MULT", "20"),
        ],
    );
    put_ok(&c.api(0), "qf-old", b"old");
    c.kill(1);
    c.kill(2);
    let r = c.api(0).put("/v1/cache/qf-key", b"v");
    assert_error(&r, 503, "QUORUM_FAILED");
    let r = c.api(0).delete("/v1/cache/qf-old");
    assert_error(&r, 503, "QUORUM_FAILED");
    c.restart(1);
    c.restart(2);
    let t = Instant::now();
    // T = 1 s here; + 1 s for the restarts
    let bound = Duration::from_millis(200 + 2 * 1000 + 3 * G_MS + 1000 + 1000);
    c.wait(bound, "partial writes converge to every owner", || {
        (0..3).all(|i| {
            c.held(i, "qf-key").is_some_and(|h| h.2 == b"v")
                && c.internal_get(i, "qf-old").get("tombstone").is_some()
        })
    });
    eprintln!("partial writes converged after {:?}", t.elapsed());
    for i in 0..3 {
        assert_eq!(
            get_raw(&c.api(i), "qf-old"),
            None,
            "deleted key on {}",
            c.id(i)
        );
    }
}

/// A node whose seeds have not answered is not ready: management `/health` answers 503
/// `{"status":"joining"}` (its ring is only its seed list, so a read through it could miss a key
/// the real owners hold), and 200 once the join exchange answered.
#[test]
fn health_is_joining_until_a_seed_answered() {
    // A seed that accepts connections and never answers, so no other test can take its port.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let seed = format!("127.0.0.1:{port}");
    let a = TestNode::start(
        1,
        &[
            ("HYPERCACHE_NODE_ID", "node-a"),
            ("HYPERCACHE_SEEDS", seed.as_str()),
            ("HYPERCACHE_GOSSIP_INTERVAL", "50ms"),
        ],
    );
    let r = a.mgmt_client().get("/health");
    assert_eq!(r.status, 503, "{}", r.describe());
    assert_eq!(r.json(), json!({"status":"joining"}));
    assert_eq!(
        a.api_client().get("/healthz").status,
        200,
        "liveness is not readiness"
    );
    let dist = format!("127.0.0.1:{port}");
    let a_dist = a.dist().to_string();
    drop(silent); // node-b's bind retry covers the moment between

    let _b = TestNode::start(
        1,
        &[
            ("HYPERCACHE_NODE_ID", "node-b"),
            ("HYPERCACHE_DIST_ADDR", dist.as_str()),
            ("HYPERCACHE_SEEDS", a_dist.as_str()),
        ],
    );
    assert!(
        poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
            a.mgmt_client().get("/health").status == 200
        }),
        "ready once the seed answered"
    );
}
