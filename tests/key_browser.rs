//! api.md §10.1 on a 3-node cluster: the key browser merges every member's owned keys (each key
//! once, whatever the replication), and a member that does not answer is named in
//! `partial_nodes` while the others' keys are still listed.

mod common;
use common::cluster::*;
use serde_json::Value;

fn keys(v: &Value) -> Vec<String> {
    common::str_list(v, "keys")
}

#[test]
fn three_nodes_merge_and_a_dead_member_is_partial() {
    let mut c = TestCluster::start(3, &[("HYPERCACHE_REPLICATION", "2")]);
    let want: Vec<String> = (0..40).map(|i| format!("user:{i:03}")).collect();
    for (i, k) in want.iter().enumerate() {
        let r = c.api(i % 3).put(&format!("/v1/cache/{k}"), b"v");
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    assert_eq!(c.api(0).put("/v1/cache/other", b"v").status, 200);
    for i in 0..3 {
        let r = c.api(i).get("/v1/cache/keys?q=user:&limit=500");
        assert_eq!(r.status, 200, "{}", r.describe());
        let v = r.json();
        assert_eq!(keys(&v), want, "from {}: every key once, sorted", c.id(i));
        assert_eq!(v["total_matched"], 40);
        assert_eq!(v["node"], c.id(i));
        assert!(v.get("partial_nodes").is_none(), "{v}");
    }
    // cluster.md §1: every member's client API address, learnt through gossip (the test
    // nodes bind 127.0.0.1, which is routable, so it is their API_ADDR with the bound port).
    let all_known = || {
        (0..3).all(|i| {
            c.members(i)
                .iter()
                .all(|m| m.api_address == c.node(c.index_of(&m.id)).api().to_string())
        })
    };
    assert!(
        common::poll_until(
            std::time::Duration::from_secs(5),
            std::time::Duration::from_millis(20),
            all_known
        ),
        "APIAddress of every member: {:?}",
        c.members(0)
    );
    // Paging across the merged set.
    let v = c
        .api(1)
        .get("/v1/cache/keys?q=user:*&limit=15&cursor=30")
        .json();
    assert_eq!(keys(&v), want[30..].to_vec());
    assert_eq!(v["next_cursor"], "");

    // node-3 dies: until the others stop holding it alive, it is asked and fails.
    c.kill(2);
    let r = c.api(0).get("/v1/cache/keys?q=user:&limit=500");
    assert_eq!(r.status, 200, "{}", r.describe());
    let v = r.json();
    let still_alive = c.state_of(0, "node-3").as_deref() == Some("alive");
    if v.get("partial_nodes").is_some() || still_alive {
        assert_eq!(v["partial_nodes"], serde_json::json!(["node-3"]), "{v}");
    } else {
        eprintln!("node-3 was no longer alive in node-1's view: not asked");
    }
    // With RF 2 every key has another owner: all are still listed.
    assert_eq!(keys(&v), want, "the live owners still list every key");
}
