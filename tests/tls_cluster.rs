//! Mutual TLS between peers (security.md §3): a 3-node cluster whose dist listeners and peer
//! client speak only mTLS forms, gossips and replicates; a node with another CA, and a node
//! without dist TLS, are kept out in both directions and say why.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::cluster::{get_raw, put_ok, TestCluster, TOKEN};
use common::tls::{tls_env, Ca, Eku, TempDir};
use common::{poll_until, TestNode};

const PLAINTEXT_REPLY: &str =
    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

fn write_pki(ca: &Ca, tag: &str) -> TempDir {
    let dir = TempDir::new(tag);
    let leaf = ca.leaf("peer", &["127.0.0.1", "localhost"], Eku::Both, 0x77);
    dir.write("ca.pem", ca.pem().as_bytes());
    dir.write("server.pem", leaf.cert_pem.as_bytes());
    dir.write("server.key", leaf.key_pem.as_bytes());
    dir
}

fn metric(node: &TestNode, prefix: &str) -> f64 {
    node.mgmt_client()
        .get("/metrics")
        .text()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(-1.0)
}

/// A node outside the cluster that seeds from node-1, with `env` on top.
fn stranger(c: &TestCluster, id: &str, env: &[(String, String)]) -> TestNode {
    let seeds = format!("node-1@127.0.0.1:{}", c.dist_addr(0).port());
    let mut all: Vec<(String, String)> = vec![
        ("HYPERCACHE_NODE_ID".into(), id.into()),
        ("HYPERCACHE_SEEDS".into(), seeds),
        ("HYPERCACHE_AUTH_TOKEN".into(), TOKEN.into()),
        ("HYPERCACHE_HEARTBEAT".into(), "200ms".into()),
        ("HYPERCACHE_GOSSIP_INTERVAL".into(), "200ms".into()),
        ("HYPERCACHE_DRAIN_GRACE".into(), "0s".into()),
    ];
    all.extend(env.iter().cloned());
    let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestNode::start(1, &refs)
}

#[test]
fn an_mtls_cluster_replicates_and_keeps_other_nodes_out() {
    let ca = Ca::new("cluster-ca");
    let dir = write_pki(&ca, "dist");
    let env = tls_env("DIST", &dir.0, Some("CA"));
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let c = TestCluster::start(3, &refs);
    for i in 0..3 {
        assert!(
            c.node(i).start_line().contains("dist_tls=mtls"),
            "{}",
            c.node(i).start_line()
        );
    }
    // Replication to every owner goes over the pooled mTLS peer client.
    put_ok(&c.api(0), "over-mtls", b"replicated");
    for i in 1..3 {
        assert_eq!(
            get_raw(&c.api(i), "over-mtls").as_deref(),
            Some(&b"replicated"[..])
        );
    }
    // Plaintext to a TLS dist listener gets the fixed 400 text.
    let mut s = TcpStream::connect(c.dist_addr(1)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /internal/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(String::from_utf8_lossy(&got), PLAINTEXT_REPLY);

    // A node whose certificate chains to another CA, and a node without dist TLS.
    let other = Ca::new("other-ca");
    let other_dir = write_pki(&other, "dist-other");
    let wrong_ca = stranger(&c, "node-x", &tls_env("DIST", &other_dir.0, Some("CA")));
    let plain = stranger(&c, "node-p", &[]);
    let n1 = c.node(0);
    assert!(
        poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
            metric(&wrong_ca, "hypercache_peer_tls_handshake_failures_total") >= 1.0
                && metric(
                    n1,
                    "hypercache_tls_handshake_failures_total{listener=\"dist\"}",
                ) >= 2.0
        }),
        "node-x: {}\nnode-1: {}",
        wrong_ca.stderr(),
        n1.stderr()
    );
    let port = c.dist_addr(0).port();
    assert!(wrong_ca.wait_for_log(
        &format!("tls handshake with peer node-1 at 127.0.0.1:{port} failed:"),
        Duration::from_secs(5)
    ));
    assert!(n1.wait_for_log(
        "tls handshake failed listener=dist remote=127.0.0.1:",
        Duration::from_secs(5)
    ));
    // Neither ever joins: their seed stays pending (health 503) and node-1 never lists them.
    for s in [&wrong_ca, &plain] {
        assert_eq!(s.mgmt_client().get("/health").status, 503, "{}", s.stderr());
    }
    let ids: Vec<String> = c.members(0).into_iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    // The cluster itself keeps working.
    put_ok(&c.api(1), "after-strangers", b"still");
    assert_eq!(
        get_raw(&c.api(2), "after-strangers").as_deref(),
        Some(&b"still"[..])
    );
}
