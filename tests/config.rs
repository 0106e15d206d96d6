//! Configuration validation at start-up (ops.md §2, §4).

mod common;
use common::*;
use std::net::TcpListener;
use std::time::Duration;

const EXIT_WAIT: Duration = Duration::from_secs(10);

struct Bad {
    env: &'static [(&'static str, &'static str)],
    /// Every needle must appear on one `hypercache-server: ` line.
    needles: &'static [&'static str],
}

const BAD: &[Bad] = &[
    Bad {
        env: &[("HYPERCACHE_HEARTBEAT", "fast")],
        needles: &["HYPERCACHE_HEARTBEAT", "fast"],
    },
    Bad {
        env: &[("HYPERCACHE_HEARTBEAT", "500us")],
        needles: &["HYPERCACHE_HEARTBEAT"],
    },
    Bad {
        env: &[("HYPERCACHE_REPLICATION", "0")],
        needles: &["HYPERCACHE_REPLICATION"],
    },
    Bad {
        env: &[("HYPERCACHE_CAPACITY", "abc")],
        needles: &["HYPERCACHE_CAPACITY", "abc"],
    },
    Bad {
        env: &[("HYPERCACHE_MAX_BODY", "100")],
        needles: &["HYPERCACHE_MAX_BODY"],
    },
    Bad {
        env: &[("HYPERCACHE_MAX_BODY", "13MiB")],
        needles: &["HYPERCACHE_MAX_BODY"],
    },
    Bad {
        env: &[("HYPERCACHE_MAX_BODY", "4mb")],
        needles: &["HYPERCACHE_MAX_BODY"],
    },
    Bad {
        env: &[("HYPERCACHE_MAX_MEMORY", "4 MiB")],
        needles: &["HYPERCACHE_MAX_MEMORY"],
    },
    Bad {
        env: &[("HYPERCACHE_MAX_MEMORY", "1MiB")],
        needles: &["HYPERCACHE_MAX_MEMORY"],
    },
    Bad {
        env: &[("HYPERCACHE_EVICTION", "random")],
        needles: &["HYPERCACHE_EVICTION", "random"],
    },
    Bad {
        env: &[("HYPERCACHE_LOG_LEVEL", "loud")],
        needles: &["HYPERCACHE_LOG_LEVEL", "loud"],
    },
    Bad {
        env: &[("HYPERCACHE_WRITE_CONSISTENCY", "two")],
        needles: &["HYPERCACHE_WRITE_CONSISTENCY", "two"],
    },
    Bad {
        env: &[("HYPERCACHE_READ_CONSISTENCY", "most")],
        needles: &["HYPERCACHE_READ_CONSISTENCY"],
    },
    Bad {
        env: &[("HYPERCACHE_NODE_ID", "bad id")],
        needles: &["HYPERCACHE_NODE_ID"],
    },
    Bad {
        env: &[("HYPERCACHE_AUTH_TOKEN", "a b")],
        needles: &["HYPERCACHE_AUTH_TOKEN"],
    },
    Bad {
        env: &[("HYPERCACHE_CPU_SET", "0,0")],
        needles: &["HYPERCACHE_CPU_SET"],
    },
    Bad {
        env: &[("HYPERCACHE_CORES", "99")],
        needles: &["HYPERCACHE_CORES"],
    },
    Bad {
        env: &[("HYPERCACHE_CORES", "0")],
        needles: &["HYPERCACHE_CORES"],
    },
    Bad {
        env: &[("HYPERCACHE_SUSPICION_MULT", "0")],
        needles: &["HYPERCACHE_SUSPICION_MULT"],
    },
    Bad {
        env: &[("HYPERCACHE_MAX_BATCH", "0")],
        needles: &["HYPERCACHE_MAX_BATCH"],
    },
    Bad {
        env: &[("HYPERCACHE_SHUTDOWN_TIMEOUT", "0s")],
        needles: &["HYPERCACHE_SHUTDOWN_TIMEOUT"],
    },
    Bad {
        env: &[("HYPERCACHE_HINT_TTL", "-1s")],
        needles: &["HYPERCACHE_HINT_TTL"],
    },
    Bad {
        env: &[("HYPERCACHE_API_ADDR", "127.0.0.1:70000")],
        needles: &["HYPERCACHE_API_ADDR"],
    },
    Bad {
        env: &[("HYPERCACHE_MGMT_ADDR", "no-port")],
        needles: &["HYPERCACHE_MGMT_ADDR"],
    },
    Bad {
        env: &[("HYPERCACHE_DIST_ADVERTISE", "0.0.0.0:7946")],
        needles: &["HYPERCACHE_DIST_ADVERTISE"],
    },
    Bad {
        env: &[
            ("HYPERCACHE_TOMBSTONE_TTL", "10s"),
            ("HYPERCACHE_HINT_TTL", "30s"),
        ],
        needles: &["HYPERCACHE_TOMBSTONE_TTL"],
    },
    Bad {
        env: &[("HYPERCACHE_DRAIN_GRACE", "40s")],
        needles: &["HYPERCACHE_DRAIN_GRACE"],
    },
    Bad {
        env: &[("HYPERCACHE_CORES", "2"), ("HYPERCACHE_CAPACITY", "1")],
        needles: &["HYPERCACHE_CAPACITY"],
    },
    Bad {
        env: &[("HYPERCACHE_CORES", "2"), ("HYPERCACHE_MAX_CONNS", "1")],
        needles: &["HYPERCACHE_MAX_CONNS"],
    },
    Bad {
        env: &[("HYPERCACHE_API_TLS_CERT", "/tmp/cert.pem")],
        needles: &["HYPERCACHE_API_TLS_CERT and HYPERCACHE_API_TLS_KEY must both be set"],
    },
    Bad {
        env: &[("HYPERCACHE_OIDC_ISSUER", "https://issuer.example")],
        needles: &["HYPERCACHE_OIDC_ISSUER set without HYPERCACHE_OIDC_AUDIENCE"],
    },
    Bad {
        env: &[("HYPERCACHE_AUTH_CONFIG", "/nonexistent/auth.json")],
        needles: &["HYPERCACHE_AUTH_CONFIG"],
    },
    Bad {
        env: &[
            ("HYPERCACHE_SEEDS", "node-2@127.0.0.1:7946"),
            ("HYPERCACHE_DIST_ADDR", "0.0.0.0:0"),
        ],
        needles: &["HYPERCACHE_DIST_ADVERTISE"],
    },
];

/// Every bad value stops start-up with exit 2 and a `hypercache-server: ` line naming the
/// variable. All cases run; the failures are reported together.
#[test]
fn invalid_values_exit_2_naming_the_variable() {
    let mut failures = Vec::new();
    for case in BAD {
        let mut n = TestNode::spawn(1, case.env);
        let Some(st) = n.try_wait_exit(EXIT_WAIT) else {
            failures.push(format!("{:?}: still running after {EXIT_WAIT:?}", case.env));
            continue;
        };
        let log = n.stderr();
        if st.code() != Some(2) {
            failures.push(format!(
                "{:?}: exit {st:?}, want 2; stderr: {log}",
                case.env
            ));
            continue;
        }
        let line_ok = log.lines().any(|l| {
            l.starts_with("hypercache-server: ") && case.needles.iter().all(|x| l.contains(x))
        });
        if !line_ok {
            failures.push(format!(
                "{:?}: no `hypercache-server: ` line containing {:?}; stderr: {log}",
                case.env, case.needles
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        BAD.len(),
        failures.join("\n")
    );
}

#[test]
fn edge_values_are_accepted_and_normalised() {
    let n = TestNode::start(
        1,
        &[
            ("HYPERCACHE_LOG_LEVEL", "INFO"),
            ("HYPERCACHE_EVICTION", "LRU"),
            ("HYPERCACHE_WRITE_CONSISTENCY", "One"),
            ("HYPERCACHE_HEARTBEAT", " 1500ms "),
            ("HYPERCACHE_REPLICATION", ""),
            ("HYPERCACHE_MAX_BODY", "1KiB"),
            ("HYPERCACHE_MAX_MEMORY", "1GB"),
            ("HYPERCACHE_HINT_TTL", "0"),
            ("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "0s"),
            ("HYPERCACHE_INDIRECT_PROBE_K", "0"),
            ("HYPERCACHE_TOMBSTONE_TTL", "1h30m"),
            ("HYPERCACHE_TOKEN", "client-side-variable"),
        ],
    );
    let cfg = n.mgmt_client().get("/config").json();
    let env = &cfg["env"];
    for (k, v) in [
        ("HYPERCACHE_HEARTBEAT", "1.5s"),
        ("HYPERCACHE_REPLICATION", "3"),
        ("HYPERCACHE_MAX_BODY", "1024"),
        ("HYPERCACHE_MAX_MEMORY", "1000000000"),
        ("HYPERCACHE_HINT_TTL", "0s"),
        ("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "0s"),
        ("HYPERCACHE_TOMBSTONE_TTL", "1h30m0s"),
    ] {
        assert_eq!(env[k], v, "/config env {k}: {cfg}");
    }
    assert_eq!(cfg["maxCacheSize"], 1_000_000_000u64);
}

#[test]
fn unknown_variable_only_warns() {
    let n = TestNode::start(1, &[("HYPERCACHE_FOO", "bar")]);
    let warned = poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
        n.stderr()
            .lines()
            .any(|l| l.contains("HYPERCACHE_FOO") && l.to_ascii_lowercase().contains("warn"))
    });
    assert!(
        warned,
        "expected a warning naming HYPERCACHE_FOO; stderr:\n{}",
        n.stderr()
    );
    assert_eq!(n.api_client().get("/healthz").status, 200);
}

fn port_in_use(var: &str) {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut n = TestNode::spawn(1, &[(var, addr.as_str())]);
    let st = n.wait_exit(EXIT_WAIT);
    let log = n.stderr();
    assert_eq!(st.code(), Some(1), "bind failure exits 1; stderr:\n{log}");
    let port = taken.local_addr().unwrap().port().to_string();
    assert!(
        log.lines()
            .any(|l| l.starts_with("hypercache-server: ") && l.contains(var) && l.contains(&port)),
        "expected a line naming {var} and the address; stderr:\n{log}"
    );
}

#[test]
fn api_port_in_use_exits_1() {
    port_in_use("HYPERCACHE_API_ADDR");
}

#[test]
fn mgmt_port_in_use_exits_1() {
    port_in_use("HYPERCACHE_MGMT_ADDR");
}
