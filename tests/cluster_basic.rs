//! Multi-node behaviour with every node up (cluster.md §3, §4, §6, §7, §13; api.md §5, §6).

mod common;
use common::cluster::*;
use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// cluster.md §3 owner vectors (RF 3).
const VECTORS_3: [(&str, [&str; 3]); 3] = [
    ("greeting", ["node-1", "node-3", "node-2"]),
    ("hello", ["node-3", "node-1", "node-2"]),
    ("user:42", ["node-2", "node-3", "node-1"]),
];
const VECTORS_5: [(&str, [&str; 3]); 3] = [
    ("greeting", ["node-5", "node-4", "node-1"]),
    ("hello", ["node-3", "node-5", "node-1"]),
    ("user:42", ["node-2", "node-4", "node-3"]),
];

fn value_for(i: usize) -> Vec<u8> {
    // every byte value, plus a per-key marker, so any re-encoding shows
    let mut v: Vec<u8> = (0..=255u8).collect();
    v.extend_from_slice(format!("#{i}\r\n\0end").as_bytes());
    v
}

/// Placement, single-key and batch round trips through every node.
fn exercise(c: &TestCluster, vectors: &[(&str, [&str; 3])]) {
    let n = c.len();
    // --- placement (invariant 1) ---
    for i in 0..n {
        assert_eq!(c.ring(i).0, 64 * n as u64, "ring count on {}", c.id(i));
    }
    for (key, want) in vectors {
        for i in 0..n {
            assert_eq!(
                c.owners(i, key),
                want.to_vec(),
                "owners of {key} on {}",
                c.id(i)
            );
        }
    }
    for k in 0..20 {
        let key = format!("placement-{k}");
        let o0 = c.owners(0, &key);
        assert_eq!(o0.len(), 3, "{key}: {o0:?}");
        for i in 1..n {
            assert_eq!(
                c.owners(i, &key),
                o0,
                "owners of {key} differ on {}",
                c.id(i)
            );
        }
    }

    // --- single keys: write via node i, read from every node ---
    let mut keys = Vec::new();
    for i in 0..n {
        let key = format!("rw-{i}");
        let val = value_for(i);
        let body = put_ok(&c.api(i), &key, &val);
        assert_eq!(body["stored"], true, "{body}");
        assert_eq!(body["bytes"], val.len() as u64, "{body}");
        assert_eq!(body["node"], c.id(i), "{body}");
        assert_eq!(strs(&body["owners"]), c.owners(i, &key), "{body}");
        keys.push((key, val, c.id(i).to_string()));
    }
    // an empty value, via the last node
    put_ok(&c.api(n - 1), "rw-empty", b"");
    keys.push(("rw-empty".into(), Vec::new(), c.id(n - 1).to_string()));

    for (key, val, origin) in &keys {
        let mut version = None;
        for j in 0..n {
            let got = get_raw(&c.api(j), key)
                .unwrap_or_else(|| panic!("{key} missing on {} right after a 200 PUT", c.id(j)));
            assert!(
                got == *val,
                "{key} via {}: bytes differ ({} vs {} bytes)",
                c.id(j),
                got.len(),
                val.len()
            );
            let env =
                get_env(&c.api(j), key).unwrap_or_else(|| panic!("{key} json 404 on {}", c.id(j)));
            assert_eq!(env["key"], key.as_str(), "{env}");
            assert_eq!(env["value_encoding"], "base64", "{env}");
            assert_eq!(
                b64d(env["value"].as_str().unwrap()),
                *val,
                "{key} envelope on {}",
                c.id(j)
            );
            assert_eq!(env["origin"], origin.as_str(), "{env}");
            assert_eq!(env["node"], c.id(j), "{env}");
            assert_eq!(strs(&env["owners"]), c.owners(0, key), "{env}");
            let v = env["version"].as_u64().expect("version u64");
            match version {
                None => version = Some(v),
                Some(p) => assert_eq!(p, v, "{key}: version differs on {}", c.id(j)),
            }
        }
    }

    // --- cross-node delete ---
    for (i, (key, _, _)) in keys.iter().enumerate() {
        let via = (i + 1) % n;
        let r = c.api(via).delete(&format!("/v1/cache/{}", pct(key)));
        assert_eq!(
            r.status,
            200,
            "DELETE {key} via {}: {}",
            c.id(via),
            r.describe()
        );
        let v = r.json();
        assert_eq!(v["deleted"], true, "{v}");
    }
    c.wait(
        Duration::from_secs(3),
        "deleted keys 404 on every node",
        || {
            keys.iter()
                .all(|(k, _, _)| (0..n).all(|j| get_raw(&c.api(j), k).is_none()))
        },
    );
    for j in 0..n {
        let r = c.api(j).get(&format!("/v1/cache/{}", pct(&keys[0].0)));
        let t = assert_error(&r, 404, "NOT_FOUND");
        assert_eq!(t, "key not found");
    }

    // --- batches across owners ---
    let bkeys: Vec<String> = (0..12).map(|k| format!("batch-{k}")).collect();
    let primaries: BTreeSet<String> = bkeys.iter().map(|k| c.owners(0, k)[0].clone()).collect();
    assert!(
        primaries.len() > 1,
        "batch keys should span owners: {primaries:?}"
    );
    let items: Vec<Value> = bkeys
        .iter()
        .enumerate()
        .map(|(k, key)| json!({"key": key, "value": b64(&value_for(100 + k)), "value_encoding": "base64"}))
        .collect();
    let r = c
        .api(0)
        .post_json("/v1/cache/batch/put", &json!({ "items": items }));
    assert_eq!(r.status, 200, "{}", r.describe());
    let v = r.json();
    let res = v["results"].as_array().expect("results");
    assert_eq!(res.len(), bkeys.len(), "{v}");
    for (k, it) in res.iter().enumerate() {
        assert_eq!(it["key"], bkeys[k].as_str(), "{v}");
        assert_eq!(it["stored"], true, "{it}");
        assert_eq!(strs(&it["owners"]), c.owners(0, &bkeys[k]), "{it}");
    }
    for j in 0..n {
        let r = c
            .api(j)
            .post_json("/v1/cache/batch/get", &json!({ "keys": bkeys }));
        assert_eq!(r.status, 200, "{}", r.describe());
        let v = r.json();
        let res = v["results"].as_array().expect("results");
        assert_eq!(res.len(), bkeys.len());
        for (k, it) in res.iter().enumerate() {
            assert_eq!(it["key"], bkeys[k].as_str(), "{v}");
            assert_eq!(
                it["found"],
                true,
                "batch get {} on {}: {it}",
                bkeys[k],
                c.id(j)
            );
            assert_eq!(
                b64d(it["value"].as_str().unwrap()),
                value_for(100 + k),
                "{it}"
            );
            assert_eq!(it["origin"], c.id(0), "{it}");
        }
    }
    let r = c
        .api(n - 1)
        .post_json("/v1/cache/batch/delete", &json!({ "keys": bkeys }));
    assert_eq!(r.status, 200, "{}", r.describe());
    let v = r.json();
    for it in v["results"].as_array().expect("results") {
        assert_eq!(it["deleted"], true, "{it}");
    }
    c.wait(
        Duration::from_secs(3),
        "batch-deleted keys gone on every node",
        || {
            (0..n).all(|j| {
                let r = c
                    .api(j)
                    .post_json("/v1/cache/batch/get", &json!({ "keys": bkeys }));
                r.status == 200
                    && r.json()["results"].as_array().is_some_and(|a| {
                        a.len() == bkeys.len() && a.iter().all(|it| it["found"] == false)
                    })
            })
        },
    );
}

#[test]
fn three_nodes_placement_and_round_trips() {
    let c = TestCluster::start(3, &[]);
    // cluster.md §3: ring of node-1..node-3
    let (count, vn) = c.ring(0);
    assert_eq!(count, 192);
    assert_eq!(
        &vn[..3],
        [
            "0018e9cedb208d91:node-2",
            "0143c40282ba13b8:node-3",
            "0351d19f2253b285:node-3"
        ]
    );
    assert_eq!(vn.last().unwrap(), "fefcaeb5416ac83e:node-1");
    for i in 1..3 {
        assert_eq!(c.ring(i).1, vn, "ring differs on {}", c.id(i));
    }
    exercise(&c, &VECTORS_3);
}

#[test]
fn five_nodes_placement_and_round_trips() {
    let c = TestCluster::start(5, &[]);
    exercise(&c, &VECTORS_5);
}

/// Invariant 2: a 200 quorum PUT means at least W=2 of the 3 owners hold that version; the third
/// follows shortly.
#[test]
fn quorum_put_is_held_by_owners() {
    let c = TestCluster::start(3, &[]);
    for k in 0..6 {
        let key = format!("rep-{k}");
        let val = format!("value-{k}").into_bytes();
        let via = k % 3;
        put_ok(&c.api(via), &key, &val);
        let owners = c.owners(0, &key);
        let held: Vec<Option<(u64, String, Vec<u8>)>> =
            owners.iter().map(|o| c.held(c.index_of(o), &key)).collect();
        let holding: Vec<&(u64, String, Vec<u8>)> =
            held.iter().flatten().filter(|h| h.2 == val).collect();
        assert!(
            holding.len() >= 2,
            "{key}: fewer than 2 owners hold it right after the 200: {held:?}"
        );
        let ver = holding[0].0;
        for h in &holding {
            assert_eq!(h.0, ver, "{key}: owners disagree on version: {held:?}");
            assert_eq!(
                h.1,
                c.id(via),
                "{key}: origin must be the coordinator: {held:?}"
            );
        }
        assert_eq!(
            head_version(&c.api(via), &key),
            Some(ver),
            "{key}: X-Cache-Version"
        );
        c.wait(
            Duration::from_secs(2),
            &format!("{key} on all 3 owners"),
            || {
                owners.iter().all(|o| {
                    c.held(c.index_of(o), &key)
                        .is_some_and(|h| h.0 == ver && h.2 == val)
                })
            },
        );
    }
}

/// A key whose owners (per node 0) exclude some node: (key, owners, non-owner index).
fn key_with_non_owner(
    c: &TestCluster,
    prefix: &str,
    non_owner: Option<usize>,
) -> (String, Vec<String>, usize) {
    for k in 0..1000 {
        let key = format!("{prefix}-{k}");
        let owners = c.owners(0, &key);
        for x in 0..c.len() {
            if non_owner.is_some_and(|n| n != x) {
                continue;
            }
            if !owners.iter().any(|o| o == c.id(x)) {
                return (key, owners, x);
            }
        }
    }
    panic!("no key with a non-owner found");
}

/// Invariants 4 and 5: sequential writes through different coordinators, even within one
/// millisecond and through a non-owner, end as the later value everywhere; X-Cache-Version
/// strictly increases.
#[test]
fn sequential_writes_through_different_coordinators() {
    let c = TestCluster::start(4, &[]);
    let (key, owners, b) = key_with_non_owner(&c, "seq", None);
    let a = c.index_of(&owners[1]);
    let path = format!("/v1/cache/{}", pct(&key));
    let ca = c.api(a);
    let cb = c.api(b);
    let mut conn_a = Conn::open(ca.addr);
    let mut conn_b = Conn::open(cb.addr);
    let mut last_version = 0u64;
    for round in 0..15 {
        let v1 = format!("a-{round}");
        let v2 = format!("b-{round}");
        // back to back on open keep-alive connections: both within about a millisecond
        let r1 = ca.send_on(&mut conn_a, "PUT", &path, &[], Some(v1.as_bytes()));
        let r2 = cb.send_on(&mut conn_b, "PUT", &path, &[], Some(v2.as_bytes()));
        assert_eq!(r1.status, 200, "PUT via A: {}", r1.describe());
        assert_eq!(r2.status, 200, "PUT via B: {}", r2.describe());
        // with R = one an owner not yet reached by B's write may briefly serve A's (api.md §1);
        // B's write must end as the value on every node (invariant 4)
        let what = format!(
            "round {round}: B's write (A={}, B={} non-owner) served by every node",
            c.id(a),
            c.id(b)
        );
        c.wait(Duration::from_secs(2), &what, || {
            (0..c.len()).all(|j| get_raw(&c.api(j), &key).as_deref() == Some(v2.as_bytes()))
        });
        let ver = head_version(&c.api(b), &key).unwrap();
        assert!(
            ver > last_version,
            "round {round}: X-Cache-Version {ver} not above {last_version}"
        );
        last_version = ver;
        // every owner ends with B's write
        c.wait(Duration::from_secs(2), "B's write on every owner", || {
            owners.iter().all(|o| {
                c.held(c.index_of(o), &key)
                    .is_some_and(|h| h.2 == v2.as_bytes() && h.0 == ver && h.1 == c.id(b))
            })
        });
    }
    // successive writes through every node in turn: strictly increasing versions
    for round in 0..12 {
        let via = round % c.len();
        let val = format!("turn-{round}");
        put_ok(&c.api(via), &key, val.as_bytes());
        c.wait(
            Duration::from_secs(2),
            &format!("write {round} served by every node"),
            || (0..c.len()).all(|j| get_raw(&c.api(j), &key).as_deref() == Some(val.as_bytes())),
        );
        let vers: Vec<u64> = (0..c.len())
            .map(|j| head_version(&c.api(j), &key).unwrap())
            .collect();
        assert!(
            vers.iter().all(|v| *v == vers[0]),
            "write {round}: X-Cache-Version differs: {vers:?}"
        );
        let ver = vers[0];
        assert!(
            ver > last_version,
            "write {round} via {}: version {ver} not above {last_version}",
            c.id(via)
        );
        last_version = ver;
    }
}

fn internal_set(
    c: &TestCluster,
    i: usize,
    key: &str,
    val: &[u8],
    version: u64,
    origin: &str,
) -> Value {
    let body = json!({"key": key, "value": b64(val), "expiration_ms": 0,
                      "version": version, "origin": origin, "replicate": false});
    let r = c.dist(i).post_json("/internal/set", &body);
    assert_eq!(
        r.status,
        200,
        "/internal/set on {}: {}",
        c.id(i),
        r.describe()
    );
    r.json()
}

/// Invariant 3: an older (version, origin) never replaces a newer one, on any path.
#[test]
fn older_version_never_overwrites_newer() {
    let c = TestCluster::start(3, &[]);
    let key = "lww-older";
    put_ok(&c.api(0), key, b"newer");
    c.wait(Duration::from_secs(2), "write on all owners", || {
        (0..3).all(|i| c.held(i, key).is_some())
    });
    let (ver, origin, _) = c.held(0, key).unwrap();
    for i in 0..3 {
        assert_eq!(
            c.held(i, key).map(|h| (h.0, h.1)),
            Some((ver, origin.clone()))
        );
        let before = c.metric(i, "VersionConflicts");
        // /internal/set with version - 1 (and a smaller origin, which must not matter)
        let r = internal_set(&c, i, key, b"older", ver - 1, "a");
        assert_eq!(
            r["version"].as_u64(),
            Some(ver),
            "set response on {}: {r}",
            c.id(i)
        );
        assert_eq!(r["origin"], origin.as_str(), "{r}");
        // /internal/batch, every reason
        for reason in ["write", "hint", "rebalance", "ae", "repair"] {
            let body = json!({"reason": reason, "items": [
                {"key": key, "value": b64(b"older-batch"), "expiration_ms": 0, "version": ver - 1, "origin": "a"},
                {"key": key, "deleted": true, "version": ver - 1, "origin": "a", "deleted_at": now_unix_ms()}
            ]});
            let r = c.dist(i).post_json("/internal/batch", &body);
            assert_eq!(r.status, 200, "{}", r.describe());
            let v = r.json();
            for it in v["results"].as_array().expect("results") {
                assert_eq!(
                    it["status"],
                    "ignored",
                    "reason {reason} on {}: {v}",
                    c.id(i)
                );
                assert_eq!(it["version"].as_u64(), Some(ver), "{v}");
                assert_eq!(it["origin"], origin.as_str(), "{v}");
            }
        }
        // /internal/del with an older version
        let r = c.dist(i).request(
            "DELETE",
            &format!(
                "/internal/del?key={key}&version={}&origin=a&deleted_at={}",
                ver - 1,
                now_unix_ms()
            ),
            &[],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        let v = r.json();
        assert_eq!(v["version"].as_u64(), Some(ver), "del response: {v}");
        assert_eq!(
            c.held(i, key).map(|h| (h.0, h.1, h.2)),
            Some((ver, origin.clone(), b"newer".to_vec()))
        );
        assert!(
            c.metric(i, "VersionConflicts") > before,
            "VersionConflicts on {}",
            c.id(i)
        );
    }
    for j in 0..3 {
        assert_eq!(
            get_raw(&c.api(j), key).as_deref(),
            Some(&b"newer"[..]),
            "on {}",
            c.id(j)
        );
        assert_eq!(head_version(&c.api(j), key), Some(ver));
    }
}

/// Invariant 3, tie-break: equal versions resolve to the smaller origin on every node whatever
/// the arrival order.
#[test]
fn equal_version_smaller_origin_wins() {
    let c = TestCluster::start(3, &[]);
    let key = "lww-tie";
    let ver = (now_unix_ms() << 16) + 7;
    // orders per owner: larger origin first on node-1 and node-3, smaller first on node-2
    let small = ("node-1", b"from-small".as_slice());
    let large = ("node-2", b"from-large".as_slice());
    for i in 0..3 {
        let order = if i == 1 {
            [small, large]
        } else {
            [large, small]
        };
        let before = c.metric(i, "VersionTieBreaks");
        let r1 = internal_set(&c, i, key, order[0].1, ver, order[0].0);
        assert!(r1.get("version").is_none(), "first set must apply: {r1}");
        let r2 = internal_set(&c, i, key, order[1].1, ver, order[1].0);
        if order[1].0 == "node-2" {
            assert_eq!(r2["version"].as_u64(), Some(ver), "loser answer: {r2}");
            assert_eq!(r2["origin"], "node-1", "loser answer: {r2}");
            assert!(
                c.metric(i, "VersionTieBreaks") > before,
                "VersionTieBreaks on {}",
                c.id(i)
            );
        } else {
            assert!(
                r2.get("version").is_none(),
                "smaller origin must apply: {r2}"
            );
        }
        assert_eq!(
            c.held(i, key),
            Some((ver, "node-1".to_string(), small.1.to_vec())),
            "held on {}",
            c.id(i)
        );
    }
    for j in 0..3 {
        assert_eq!(
            get_raw(&c.api(j), key).as_deref(),
            Some(small.1),
            "on {}",
            c.id(j)
        );
        let r = c.api(j).head(&format!("/v1/cache/{key}"));
        assert_eq!(
            r.header("x-cache-origin"),
            Some("node-1"),
            "{}",
            r.describe()
        );
    }
}

/// Invariant 9: a stale copy planted on a non-owner is never served by its client API.
#[test]
fn non_owner_never_serves_its_stale_copy() {
    let c = TestCluster::start(4, &[]);
    let (key, owners, x) = key_with_non_owner(&c, "stale", None);
    put_ok(&c.api(c.index_of(&owners[0])), &key, b"fresh");
    c.wait(Duration::from_secs(2), "write on all owners", || {
        owners.iter().all(|o| c.held(c.index_of(o), &key).is_some())
    });
    let (ver, origin, _) = c.held(c.index_of(&owners[0]), &key).unwrap();
    internal_set(&c, x, &key, b"stale", ver - 1, &origin);
    for _ in 0..5 {
        assert_eq!(
            get_raw(&c.api(x), &key).as_deref(),
            Some(&b"fresh"[..]),
            "non-owner {}",
            c.id(x)
        );
        let env = get_env(&c.api(x), &key).unwrap();
        assert_eq!(env["version"].as_u64(), Some(ver), "{env}");
        let r = c
            .api(x)
            .post_json("/v1/cache/batch/get", &json!({"keys": [key]}));
        let v = r.json();
        assert_eq!(
            b64d(v["results"][0]["value"].as_str().unwrap()),
            b"fresh",
            "{v}"
        );
    }
    // A planted /internal/set replicates nowhere and a stable ring runs no rebalance scan, so
    // the owners must still hold their own version (nothing to wait for).
    for o in &owners {
        assert_eq!(
            c.held(c.index_of(o), &key).map(|h| h.0),
            Some(ver),
            "owner {o}"
        );
    }
    assert_eq!(get_raw(&c.api(x), &key).as_deref(), Some(&b"fresh"[..]));
}

/// /dist/metrics counters for the write and read paths (cluster.md §14).
#[test]
fn dist_metrics_counters_move() {
    let c = TestCluster::start(4, &[]);
    let (key, owners, x) = key_with_non_owner(&c, "metrics", None);
    let a = c.index_of(&owners[0]);
    let m = |i: usize, f: &str| c.metric(i, f);

    // write coordinated by an owner
    let (wa, wk, fs) = (
        m(a, "WriteAttempts"),
        m(a, "WriteAcks"),
        m(a, "ReplicaFanoutSet"),
    );
    put_ok(&c.api(a), &key, b"one");
    assert_eq!(
        m(a, "WriteAttempts"),
        wa + 1,
        "WriteAttempts on owner coordinator"
    );
    assert!(m(a, "WriteAcks") >= wk + 2, "WriteAcks >= W after the 200");
    assert!(
        m(a, "ReplicaFanoutSet") >= fs + 2,
        "ReplicaFanoutSet +2 (two remote owners)"
    );
    c.wait(Duration::from_secs(2), "WriteAcks +3", || {
        m(a, "WriteAcks") >= wk + 3
    });

    // write coordinated by a non-owner
    let (wa, fs, fw) = (
        m(x, "WriteAttempts"),
        m(x, "ReplicaFanoutSet"),
        m(x, "ForwardSet"),
    );
    put_ok(&c.api(x), &key, b"two");
    assert_eq!(m(x, "WriteAttempts"), wa + 1);
    assert_eq!(
        m(x, "ForwardSet"),
        fw + 1,
        "ForwardSet on a non-owner coordinator"
    );
    assert!(
        m(x, "ReplicaFanoutSet") >= fs + 3,
        "ReplicaFanoutSet +3 from a non-owner"
    );

    c.wait(
        Duration::from_secs(2),
        "second write on every owner",
        || {
            owners
                .iter()
                .all(|o| c.held(c.index_of(o), &key).is_some_and(|h| h.2 == b"two"))
        },
    );
    // read via the non-owner
    let fg = m(x, "ForwardGet");
    assert_eq!(get_raw(&c.api(x), &key).as_deref(), Some(&b"two"[..]));
    assert!(m(x, "ForwardGet") > fg, "ForwardGet on a non-owner read");

    // delete via the non-owner
    let (wa, fr, fo) = (
        m(x, "WriteAttempts"),
        m(x, "ReplicaFanoutRemove"),
        m(x, "ForwardRemove"),
    );
    let r = c.api(x).delete(&format!("/v1/cache/{}", pct(&key)));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        m(x, "WriteAttempts"),
        wa + 1,
        "a delete counts as a write attempt"
    );
    assert_eq!(m(x, "ForwardRemove"), fo + 1);
    assert!(m(x, "ReplicaFanoutRemove") >= fr + 3);
}

fn assert_unauthorized(r: &Response, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.describe());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer"),
        "{what}: {}",
        r.describe()
    );
    let v: Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("{what}: {}", r.describe()));
    assert_eq!(
        v,
        json!({"error":"unauthorized","code":"UNAUTHORIZED"}),
        "{what}"
    );
}

/// Invariant 17: no token → 401 and nothing changes; garbage bodies → 4xx; the node keeps
/// serving.
#[test]
fn dist_input_safety() {
    let c = TestCluster::start(3, &[]);
    put_ok(&c.api(0), "safe", b"kept");
    c.wait(Duration::from_secs(2), "write on all owners", || {
        (0..3).all(|i| c.held(i, "safe").is_some())
    });
    let held0 = c.held(1, "safe");
    let members_before: Vec<(String, String)> =
        c.members(1).into_iter().map(|m| (m.id, m.state)).collect();

    let evil_gossip = json!([{"id": "node-3", "address": "127.0.0.1:1", "state": "dead", "incarnation": u64::MAX / 2},
                             {"id": "node-1", "address": "127.0.0.1:1", "state": "left", "incarnation": u64::MAX / 2}]);
    let set_body = json!({"key": "intruder", "value": b64(b"x"), "expiration_ms": 0,
                          "version": u64::MAX / 2, "origin": "evil"});
    let batch_body = json!({"reason": "write", "items": [{"key": "safe", "value": b64(b"evil"),
                            "expiration_ms": 0, "version": u64::MAX / 2, "origin": "evil"}]});
    let del_target = format!(
        "/internal/del?key=safe&version={}&origin=evil&deleted_at={}",
        u64::MAX / 2,
        now_unix_ms()
    );
    let reqs: Vec<(&str, String, Option<Vec<u8>>)> = vec![
        ("GET", "/health".into(), None),
        ("GET", "/internal/get?key=safe".into(), None),
        (
            "POST",
            "/internal/set".into(),
            Some(set_body.to_string().into_bytes()),
        ),
        (
            "POST",
            "/internal/batch".into(),
            Some(batch_body.to_string().into_bytes()),
        ),
        (
            "POST",
            "/internal/batch/get".into(),
            Some(br#"{"keys":["safe"]}"#.to_vec()),
        ),
        (
            "POST",
            "/internal/gossip".into(),
            Some(evil_gossip.to_string().into_bytes()),
        ),
        ("DELETE", del_target.clone(), None),
        ("POST", "/dist/drain".into(), Some(Vec::new())),
        ("GET", "/internal/merkle".into(), None),
        ("GET", "/no/such/route".into(), None),
    ];
    for token in [None, Some("wrong-token"), Some("test-tokenX")] {
        for (m, t, body) in &reqs {
            let r = try_req(
                c.dist_addr(1),
                token,
                m,
                t,
                &[("Content-Type", "application/json")],
                body.as_deref(),
            )
            .unwrap_or_else(|e| panic!("{m} {t}: {e}"));
            assert_unauthorized(&r, &format!("{m} {t} with token {token:?}"));
        }
    }
    // nothing changed
    assert_eq!(
        c.held(1, "safe"),
        held0,
        "unauthenticated writes must change nothing"
    );
    assert_eq!(c.internal_get(1, "intruder")["found"], false);
    assert_eq!(
        c.metric(1, "Drains"),
        0,
        "unauthenticated drain must not drain"
    );
    let r = c.mgmt(1).get("/health");
    assert_eq!(r.status, 200, "{}", r.describe());
    let members_now: Vec<(String, String)> =
        c.members(1).into_iter().map(|m| (m.id, m.state)).collect();
    assert_eq!(
        members_now, members_before,
        "unauthenticated gossip must change nothing"
    );

    // garbage and truncated bodies with the token
    let valid_set = json!({"key": "g", "value": b64(b"v"), "expiration_ms": 0, "version": 5, "origin": "node-1"}).to_string();
    let mut garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"not json".to_vec(),
        b"null".to_vec(),
        b"[1,2".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        b"{\"items\":".to_vec(),
        b"{\"keys\":[\"a\"".to_vec(),
        valid_set.as_bytes()[..valid_set.len() / 2].to_vec(),
        br#"[{"id":"node-2","address":"127.0.0.1:1","state":"dead","incarnation":"#.to_vec(),
    ];
    // deterministic pseudo-random bytes
    let rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    for len in [1usize, 7, 64, 500] {
        garbage.push((0..len).map(|_| rng.u8(..)).collect());
    }
    let set_specific: Vec<Vec<u8>> = vec![
        br#"{"key":"g","value":"!!not base64!!","expiration_ms":0,"version":5,"origin":"node-1"}"#
            .to_vec(),
        br#"{"key":"g","value":"dg==","expiration_ms":-1,"version":5,"origin":"node-1"}"#.to_vec(),
        br#"{"key":"g-missing-version","value":"dg==","expiration_ms":0,"origin":"node-1"}"#
            .to_vec(),
        br#"{"key":"","value":"dg==","expiration_ms":0,"version":5,"origin":"node-1"}"#.to_vec(),
        br#"{"value":"dg==","expiration_ms":0,"version":5,"origin":"node-1"}"#.to_vec(),
        br#"{"key":"g","value":"dg==","expiration_ms":0,"version":-5,"origin":"node-1"}"#.to_vec(),
    ];
    let mut bad: Vec<String> = Vec::new();
    let routes = [
        "/internal/set",
        "/internal/batch",
        "/internal/batch/get",
        "/internal/gossip",
    ];
    for route in routes {
        let mut bodies = garbage.clone();
        if route == "/internal/set" {
            bodies.extend(set_specific.iter().cloned());
        }
        if route == "/internal/batch" {
            bodies.push(br#"{"reason":"write"}"#.to_vec());
        }
        for body in &bodies {
            // JSON array/object bodies the route accepts as valid are not garbage for it
            let r = try_req(
                c.dist_addr(1),
                Some(TOKEN),
                "POST",
                route,
                &[("Content-Type", "application/json")],
                Some(body),
            )
            .unwrap_or_else(|e| panic!("POST {route} {:?}: {e}", lossy(body)));
            if !(400..500).contains(&r.status) {
                bad.push(format!(
                    "POST {route} body {:?}: want 4xx, got {}",
                    lossy(body),
                    r.describe()
                ));
            }
        }
        // a body cut short on the wire (Content-Length larger than what is sent, then EOF)
        let mut conn = Conn::open(c.dist_addr(1));
        conn.send(
            format!(
                "POST {route} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"key\":"
            )
            .as_bytes(),
        );
        conn.shutdown_write();
        let out = conn.read_to_end(Duration::from_secs(5));
        if !out.is_empty() {
            let head = String::from_utf8_lossy(&out);
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if !(400..500).contains(&status) {
                bad.push(format!("truncated POST {route}: {head}"));
            }
        }
    }
    // Authenticated but malformed stamps: a bad origin used to be taken as "unversioned" (a
    // delete versioned afresh here, beating every write), and a version far in the future
    // would win every later write of the key. Each is a 400 (batch: item `invalid`).
    let now = now_unix_ms();
    let far = (now + 2 * 3_600_000) << 16;
    let stamps: Vec<(&str, String, Option<Vec<u8>>)> = vec![
        (
            "DELETE",
            format!("/internal/del?key=safe&version=5&origin=%ZZ&deleted_at={now}"),
            None,
        ),
        (
            "DELETE",
            format!("/internal/del?key=safe&version=5&origin=%FF&deleted_at={now}"),
            None,
        ),
        (
            "DELETE",
            format!("/internal/del?key=safe&version=5&origin=no%20spaces&deleted_at={now}"),
            None,
        ),
        (
            "DELETE",
            format!("/internal/del?key=safe&version={far}&origin=node-1&deleted_at={now}"),
            None,
        ),
        (
            "DELETE",
            format!(
                "/internal/del?key=safe&version={}&origin=node-1&deleted_at={now}",
                u64::MAX
            ),
            None,
        ),
        (
            "POST",
            "/internal/set".into(),
            Some(
                json!({"key": "safe", "value": b64(b"evil"),
            "expiration_ms": 0, "version": far, "origin": "node-1"})
                .to_string()
                .into_bytes(),
            ),
        ),
        (
            "POST",
            "/internal/set".into(),
            Some(
                json!({"key": "safe", "value": b64(b"evil"),
            "expiration_ms": 0, "version": 5, "origin": "bad origin"})
                .to_string()
                .into_bytes(),
            ),
        ),
    ];
    for (m, t, body) in &stamps {
        let r = try_req(
            c.dist_addr(1),
            Some(TOKEN),
            m,
            t,
            &[("Content-Type", "application/json")],
            body.as_deref(),
        )
        .unwrap_or_else(|e| panic!("{m} {t}: {e}"));
        if r.status != 400 {
            bad.push(format!("{m} {t}: want 400, got {}", r.describe()));
        }
    }
    let batch = json!({"reason": "write", "items": [
        {"key": "safe", "deleted": true, "version": 5, "origin": "bad origin", "deleted_at": now},
        {"key": "safe", "value": b64(b"evil"), "expiration_ms": 0, "version": far, "origin": "node-1"}]});
    let r = try_req(
        c.dist_addr(1),
        Some(TOKEN),
        "POST",
        "/internal/batch",
        &[("Content-Type", "application/json")],
        Some(batch.to_string().as_bytes()),
    )
    .expect("batch");
    let statuses: Vec<Value> = r.json()["results"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|x| x["status"].clone())
        .collect();
    if statuses != vec![json!("invalid"), json!("invalid")] {
        bad.push(format!(
            "batch with bad stamps: want both invalid, got {}",
            r.describe()
        ));
    }
    // nothing changed, and the node (and cluster) keeps serving
    if c.internal_get(1, "g")["found"] != false {
        bad.push(format!("garbage stored key g: {}", c.internal_get(1, "g")));
    }
    assert_eq!(c.held(1, "safe"), held0);
    let r = c.dist(1).get("/health");
    assert_eq!(r.status, 200, "{}", r.describe());
    for i in 0..3 {
        assert!(
            c.members(i).iter().all(|m| m.state == "alive"),
            "members on {}: {:?}",
            c.id(i),
            c.members(i)
        );
    }
    put_ok(&c.api(1), "after-garbage", b"ok");
    for j in 0..3 {
        assert_eq!(
            get_raw(&c.api(j), "after-garbage").as_deref(),
            Some(&b"ok"[..])
        );
        assert_eq!(get_raw(&c.api(j), "safe").as_deref(), Some(&b"kept"[..]));
    }
    assert!(
        bad.is_empty(),
        "dist input safety violations:\n{}",
        bad.join("\n")
    );
}
