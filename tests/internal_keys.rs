//! `GET /internal/keys` (cluster.md §12.3): live owned keys matching a
//! prefix or glob, paged by an opaque cursor across the data cores.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::client::Client;
use common::*;

fn page(d: &Client, q: &str) -> (Vec<String>, String, bool) {
    let r = d.get(q);
    assert_eq!(r.status, 200, "{}", r.describe());
    let v = r.json();
    let keys = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let next = v["next_cursor"].as_str().unwrap().to_string();
    let truncated = v["truncated"].as_bool().unwrap();
    assert_eq!(truncated, !next.is_empty(), "{v}");
    (keys, next, truncated)
}

#[test]
fn pages_prefix_glob_and_errors() {
    let n = TestNode::start(2, &[]);
    let c = n.api_client();
    for i in 0..25 {
        assert_eq!(c.put(&format!("/v1/cache/kb-{i}"), b"v").status, 200);
    }
    for i in 0..5 {
        assert_eq!(c.put(&format!("/v1/cache/other-{i}"), b"v").status, 200);
    }
    assert_eq!(c.put("/v1/cache/kb-expiring?ttl=100ms", b"v").status, 200);
    let d = Client::new(n.dist(), None);
    // Let the short TTL pass: expired keys are never listed.
    assert!(poll_until(
        Duration::from_secs(3),
        Duration::from_millis(50),
        || { c.get("/v1/cache/kb-expiring").status == 404 }
    ));
    let mut seen = BTreeSet::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (keys, next, _) = page(&d, &format!("/internal/keys?q=kb-&limit=7&cursor={cursor}"));
        assert!(keys.len() <= 7);
        for k in keys {
            assert!(seen.insert(k.clone()), "{k} listed twice");
        }
        pages += 1;
        assert!(pages < 20, "cursor does not advance");
        if next.is_empty() {
            break;
        }
        cursor = next;
    }
    let want: BTreeSet<String> = (0..25).map(|i| format!("kb-{i}")).collect();
    assert_eq!(seen, want);
    let (keys, _, truncated) = page(&d, "/internal/keys?q=kb-1*");
    assert!(!truncated);
    assert_eq!(keys.len(), 11, "{keys:?}");
    let (all, _, _) = page(&d, "/internal/keys");
    assert_eq!(all.len(), 30);
    assert_eq!(d.get("/internal/keys?q=kb-[").status, 400);
    assert_eq!(d.get("/internal/keys?cursor=zz").status, 400);
    assert_eq!(d.get("/internal/keys?limit=-1").status, 400);
}
