//! Tests of the whole loader (`Config::from_vars`), part 1: defaults, one bad value per rule of
//! the table, message shapes, trimming, refusals and unknown variables. Part 2
//! (`tests_checks.rs`) covers the cross-checks, seeds, the CPU choice and the `env` view; the TLS,
//! OIDC and policy variables are in `tests_security.rs`.

use std::time::Duration;

use super::*;

pub(super) const CPUS4: &[usize] = &[0, 1, 2, 3];

pub(super) fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(super) fn load_on(pairs: &[(&str, &str)], cpus: &[usize]) -> Result<Config, Vec<ConfigError>> {
    Config::from_vars(&vars(pairs), cpus, Some("node-1"))
}

pub(super) fn ok(pairs: &[(&str, &str)]) -> Config {
    load_on(pairs, CPUS4).unwrap_or_else(|e| panic!("{pairs:?}: {e:?}"))
}

pub(super) fn errs(pairs: &[(&str, &str)]) -> Vec<String> {
    errs_on(pairs, CPUS4)
}

pub(super) fn errs_on(pairs: &[(&str, &str)], cpus: &[usize]) -> Vec<String> {
    let e = load_on(pairs, cpus).expect_err("expected a configuration error");
    assert!(e.iter().all(|e| e.exit_code == 2), "{e:?}");
    assert!(e
        .iter()
        .all(|e| e.message.starts_with("hypercache-server: ")));
    e.into_iter().map(|e| e.message).collect()
}

/// The single error of `pairs`, which must name every fragment.
pub(super) fn one_err(pairs: &[(&str, &str)], fragments: &[&str]) -> String {
    let e = errs(pairs);
    assert_eq!(e.len(), 1, "{pairs:?}: {e:#?}");
    for f in fragments {
        assert!(e[0].contains(f), "{pairs:?}: {:?} lacks {f:?}", e[0]);
    }
    e[0].clone()
}

#[test]
fn defaults() {
    let c = ok(&[]);
    assert_eq!(c.node_id, "node-1");
    assert_eq!(c.api_addr.text, ":8080");
    assert_eq!(c.api_addr.addr, "0.0.0.0:8080".parse().unwrap());
    assert_eq!(c.mgmt_addr.addr, "0.0.0.0:8081".parse().unwrap());
    assert_eq!(c.dist_addr.addr, "0.0.0.0:7946".parse().unwrap());
    assert_eq!(c.dist_advertise, None);
    assert!(c.seeds.is_empty());
    assert_eq!(
        (c.replication, c.capacity, c.max_memory),
        (3, 100_000, None)
    );
    assert_eq!(c.eviction, EvictionPolicy::Lru);
    assert_eq!(c.auth_token, None);
    assert_eq!(c.log_level, log::LevelFilter::Info);
    assert_eq!(c.heartbeat, Duration::from_secs(1));
    assert_eq!((c.indirect_probe_k, c.suspicion_mult), (2, 3));
    assert_eq!(c.gossip_interval, Duration::from_secs(1));
    assert_eq!(c.hint_ttl, Duration::from_secs(30));
    assert_eq!(c.hint_replay, Duration::from_millis(200));
    assert_eq!(
        (c.hint_max_per_node, c.hint_max_bytes),
        (100_000, 256 << 20)
    );
    assert_eq!(c.rebalance_interval, Duration::from_millis(250));
    assert_eq!(c.rebalance_batch, 128);
    assert_eq!(c.anti_entropy_interval, Duration::from_secs(30));
    assert_eq!(c.tombstone_ttl, Duration::from_secs(600));
    assert_eq!(c.write_consistency, Consistency::Quorum);
    assert_eq!(c.read_consistency, Consistency::One);
    assert_eq!(
        (c.max_body, c.max_batch, c.max_conns),
        (4 << 20, 1000, 10_000)
    );
    assert_eq!((c.cores, c.cpu_set.clone()), (3, vec![0, 1, 2, 3]));
    assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.drain_grace, Duration::from_secs(5));
    assert_eq!(c.log_format, LogFormat::Text);
    assert!(c.unknown_vars.is_empty());
}

#[test]
fn the_default_drain_grace_is_capped_by_a_short_shutdown_timeout() {
    let c = ok(&[("HYPERCACHE_SHUTDOWN_TIMEOUT", "4s")]);
    assert_eq!(c.drain_grace, Duration::from_secs(1));
    let c = ok(&[("HYPERCACHE_DRAIN_GRACE", "0s")]);
    assert_eq!(c.drain_grace, Duration::ZERO, "an explicit 0 is kept");
    let c = ok(&[("HYPERCACHE_LOG_FORMAT", "JSON")]);
    assert_eq!(c.log_format, LogFormat::Json);
    let e = errs(&[("HYPERCACHE_LOG_FORMAT", "yaml")]);
    assert!(
        e[0].contains("HYPERCACHE_LOG_FORMAT=\"yaml\": expected text or json"),
        "{e:?}"
    );
}

#[test]
fn the_contract_example_message_is_exact() {
    assert_eq!(
        errs(&[("HYPERCACHE_HEARTBEAT", "fast")]),
        ["hypercache-server: invalid HYPERCACHE_HEARTBEAT=\"fast\": expected a duration such as 500ms, 1s or 1m30s"]
    );
}

#[test]
fn every_bad_value_names_the_variable_the_value_and_the_form() {
    let long_id = "a".repeat(129);
    let table: &[(&str, &str, &str)] = &[
        ("NODE_ID", "bad id", "1-128 characters of A-Z a-z 0-9 . _ -"),
        ("NODE_ID", "node/1", "1-128 characters"),
        ("NODE_ID", "n\u{f6}de", "1-128 characters"),
        ("NODE_ID", long_id.as_str(), "1-128 characters"),
        ("API_ADDR", "8080", "host:port, [ipv6]:port or :port"),
        ("API_ADDR", ":65536", "such as :8080"),
        ("API_ADDR", "::1:80", "[ipv6]:port"),
        ("API_ADDR", "a b:80", "host:port"),
        ("MGMT_ADDR", "[::1]", "such as :8081"),
        ("DIST_ADDR", "localhost", "such as :7946"),
        (
            "DIST_ADVERTISE",
            ":7946",
            "host:port with a host other than 0.0.0.0 or ::",
        ),
        ("DIST_ADVERTISE", "0.0.0.0:7946", "port from 1 to 65535"),
        ("DIST_ADVERTISE", "[::]:7946", "such as 10.0.0.5:7946"),
        ("DIST_ADVERTISE", "hc-1:0", "host:port"),
        ("SEEDS", "hc-2", "comma list of id@host:port or host:port"),
        ("SEEDS", "n2@hc-2:1,bad id@h:1", "id@host:port"),
        ("SEEDS", "hc-2:0", "id@host:port"),
        ("REPLICATION", "0", "an integer >= 1"),
        ("REPLICATION", "+3", "an integer >= 1"),
        ("REPLICATION", "three", "an integer >= 1"),
        ("CAPACITY", "0", "an integer >= the number of data cores"),
        ("CAPACITY", "-5", "an integer >= the number of data cores"),
        ("MAX_MEMORY", "4 MiB", "a size such as 512MiB"),
        ("MAX_MEMORY", "1.5GiB", "a size"),
        ("MAX_MEMORY", "4mb", "KiB, MiB, GiB, TiB"),
        ("EVICTION", "lfu", "lru or clock"),
        (
            "LOG_LEVEL",
            "trace",
            "debug, info, warn (or warning) or error",
        ),
        ("LOG_LEVEL", "off", "debug, info, warn"),
        ("HEARTBEAT", "0", "at least 1ms"),
        ("HEARTBEAT", "500us", "at least 1ms"),
        ("HEARTBEAT", "-1s", "negative"),
        ("HEARTBEAT", "10", "a duration such as 500ms, 1s or 1m30s"),
        ("INDIRECT_PROBE_K", "-1", "an integer >= 0 (0 disables)"),
        ("SUSPICION_MULT", "0", "an integer >= 1"),
        ("SUSPICION_MULT", "4294967296", "an integer >= 1"),
        ("GOSSIP_INTERVAL", "0s", "a duration"),
        ("GOSSIP_INTERVAL", "1d", "a duration"),
        ("HINT_TTL", "-5s", "0 (disables) or a duration"),
        ("HINT_TTL", "500us", "0 or at least 1ms"),
        ("HINT_REPLAY", "1H", "a duration"),
        ("HINT_MAX_PER_NODE", "0", "an integer >= 1"),
        ("HINT_MAX_BYTES", "0", "a size >= 1"),
        ("HINT_MAX_BYTES", "1.5GiB", "a size >= 1"),
        ("REBALANCE_INTERVAL", "0", "a duration"),
        ("REBALANCE_BATCH", "0", "an integer >= 1"),
        (
            "ANTI_ENTROPY_INTERVAL",
            "100us",
            "0 (disables) or a duration",
        ),
        (
            "TOMBSTONE_TTL",
            "0",
            "a duration greater than HYPERCACHE_HINT_TTL",
        ),
        ("TOMBSTONE_TTL", "forever", "a duration greater than"),
        ("WRITE_CONSISTENCY", "majority", "one, quorum or all"),
        ("READ_CONSISTENCY", "any", "one, quorum or all"),
        ("MAX_BODY", "1023", "a size from 1KiB to 12MiB"),
        ("MAX_BODY", "13MiB", "a size from 1KiB to 12MiB"),
        ("MAX_BODY", "12582913", "a size from 1KiB to 12MiB"),
        ("MAX_BODY", "4mb", "a size from 1KiB to 12MiB"),
        ("MAX_BATCH", "0", "an integer >= 1"),
        (
            "MAX_CONNS",
            "many",
            "an integer >= the number of data cores",
        ),
        (
            "CORES",
            "0",
            "an integer from 1 to the number of usable CPUs",
        ),
        (
            "CPU_SET",
            "0-3,3",
            "a Linux cpu list such as 0-3,8,10-11 without duplicates",
        ),
        ("CPU_SET", "3-1", "usable CPUs: 0-3"),
        ("CPU_SET", "0-7", "usable CPUs: 0-3"),
        ("SHUTDOWN_TIMEOUT", "30", "a duration"),
        ("DRAIN_GRACE", "500us", "0 or a duration"),
    ];
    for &(short, value, form) in table {
        let name = format!("HYPERCACHE_{short}");
        let head = format!("hypercache-server: invalid {name}={}: ", go_quote(value));
        let msg = one_err(&[(&name, value)], &[form]);
        assert!(msg.starts_with(&head), "{msg:?} should start with {head:?}");
    }
}

#[test]
fn reasons_go_before_the_form() {
    let msg = one_err(&[("HYPERCACHE_CPU_SET", "2-7")], &[]);
    assert_eq!(
        msg,
        "hypercache-server: invalid HYPERCACHE_CPU_SET=\"2-7\": CPUs 4-7 are not in the process \
         affinity mask; expected a Linux cpu list such as 0-3,8,10-11 without duplicates, of \
         usable CPUs only (usable CPUs: 0-3)"
    );
    let msg = one_err(&[("HYPERCACHE_SEEDS", "n2@a:1,n2@b:1")], &["\"n2\""]);
    assert!(
        msg.starts_with("hypercache-server: invalid HYPERCACHE_SEEDS=\"n2@a:1,n2@b:1\": node id")
    );
}

#[test]
fn the_token_is_never_shown() {
    for bad in ["sec ret", "s\u{e9}cret", "se\tcret"] {
        let msg = one_err(
            &[("HYPERCACHE_AUTH_TOKEN", bad)],
            &[
                "HYPERCACHE_AUTH_TOKEN",
                "printable ASCII without spaces (0x21-0x7E)",
            ],
        );
        assert!(!msg.contains("cret"), "{msg}");
    }
    let c = ok(&[("HYPERCACHE_AUTH_TOKEN", " s3cr3t!~ ")]);
    assert_eq!(c.auth_token.as_deref(), Some("s3cr3t!~"));
    let env = c.env_view();
    assert!(env.contains(&("HYPERCACHE_AUTH_TOKEN", "<redacted>".to_string())));
    assert!(!format!("{env:?}{c:?}").contains("s3cr3t"));
}

#[test]
fn all_failures_are_reported_in_table_order() {
    let e = errs(&[
        ("HYPERCACHE_DRAIN_GRACE", "x"),
        ("HYPERCACHE_OIDC_ISSUER", "https://id"),
        ("HYPERCACHE_API_TLS_CERT", "/c.pem"),
        ("HYPERCACHE_HEARTBEAT", "fast"),
        ("HYPERCACHE_NODE_ID", "bad id"),
        ("HYPERCACHE_TOMBSTONE_TTL", "1s"),
    ]);
    let order: Vec<&str> = e
        .iter()
        .map(|m| m.split([' ', '=']).nth(2).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "HYPERCACHE_NODE_ID",
            "HYPERCACHE_HEARTBEAT",
            "HYPERCACHE_DRAIN_GRACE",
            "and",
            "set",
            "HYPERCACHE_TOMBSTONE_TTL"
        ],
        "{e:#?}"
    );
    assert!(e[3].starts_with("hypercache-server: HYPERCACHE_API_TLS_CERT and"));
    assert!(e[4].starts_with("hypercache-server: HYPERCACHE_OIDC_ISSUER set without"));
}

#[test]
fn values_are_trimmed_empty_is_unset_and_enums_ignore_case() {
    let c = ok(&[
        ("HYPERCACHE_HEARTBEAT", "  5s\n"),
        ("HYPERCACHE_NODE_ID", " \t "),
        ("HYPERCACHE_CAPACITY", ""),
        ("HYPERCACHE_EVICTION", "CLOCK"),
        ("HYPERCACHE_LOG_LEVEL", "Warning"),
        ("HYPERCACHE_WRITE_CONSISTENCY", "All"),
        ("HYPERCACHE_READ_CONSISTENCY", "QUORUM"),
        ("HYPERCACHE_MAX_MEMORY", "1GiB"),
        ("HYPERCACHE_MAX_BODY", "1KiB"),
        ("HYPERCACHE_HINT_TTL", "0"),
        ("HYPERCACHE_ANTI_ENTROPY_INTERVAL", "0s"),
        ("HYPERCACHE_INDIRECT_PROBE_K", "0"),
        ("HYPERCACHE_TOMBSTONE_TTL", "1ms"),
        ("HYPERCACHE_DRAIN_GRACE", "1.5s"),
        ("HYPERCACHE_API_ADDR", "127.0.0.1:0"),
        ("HYPERCACHE_MGMT_ADDR", "[::1]:9000"),
    ]);
    assert_eq!(c.heartbeat, Duration::from_secs(5));
    assert_eq!(c.node_id, "node-1");
    assert_eq!(c.capacity, 100_000);
    assert_eq!(c.eviction, EvictionPolicy::Clock);
    assert_eq!(c.log_level, log::LevelFilter::Warn);
    assert_eq!(
        (c.write_consistency, c.read_consistency),
        (Consistency::All, Consistency::Quorum)
    );
    assert_eq!((c.max_memory, c.max_body), (Some(1 << 30), 1024));
    assert_eq!(
        (c.hint_ttl, c.anti_entropy_interval),
        (Duration::ZERO, Duration::ZERO)
    );
    assert_eq!(c.indirect_probe_k, 0);
    assert_eq!(c.drain_grace, Duration::from_millis(1500));
    assert_eq!(c.api_addr.addr, "127.0.0.1:0".parse().unwrap());
    assert_eq!(c.mgmt_addr.addr, "[::1]:9000".parse().unwrap());
    for (level, want) in [
        ("DEBUG", log::LevelFilter::Debug),
        ("error", log::LevelFilter::Error),
    ] {
        assert_eq!(ok(&[("HYPERCACHE_LOG_LEVEL", level)]).log_level, want);
    }
}

#[test]
fn node_id_defaults() {
    let by_host = |h: Option<&str>| Config::from_vars(&[], CPUS4, h);
    assert_eq!(by_host(None).unwrap().node_id, "node");
    assert_eq!(by_host(Some("")).unwrap().node_id, "node");
    assert_eq!(
        by_host(Some("hc-1.example\n")).unwrap().node_id,
        "hc-1.example"
    );
    let e = by_host(Some("my host")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].message.contains("\"my host\"") && e[0].message.contains("set HYPERCACHE_NODE_ID")
    );
    let v = vars(&[("HYPERCACHE_NODE_ID", "n1")]);
    assert_eq!(
        Config::from_vars(&v, CPUS4, Some("my host"))
            .unwrap()
            .node_id,
        "n1"
    );
    assert_eq!(
        ok(&[("HYPERCACHE_NODE_ID", &"a".repeat(128))])
            .node_id
            .len(),
        128
    );
}

#[test]
fn unknown_variables_only_warn() {
    let c = ok(&[
        ("HYPERCACHE_TOKEN", "t"),
        ("HYPERCACHE_ENDPOINTS", "a,b"),
        ("HYPERCACHE_TOKEN", "u"),
        ("PATH", "/bin"),
        ("hypercache_node_id", "x"),
    ]);
    assert_eq!(c.unknown_vars, ["HYPERCACHE_ENDPOINTS", "HYPERCACHE_TOKEN"]);
    assert_eq!(c.node_id, "node-1");
}

#[test]
fn enum_names() {
    assert_eq!(EvictionPolicy::default().name(), "lru");
    assert_eq!(EvictionPolicy::Clock.name(), "clock");
    let names = [Consistency::One, Consistency::Quorum, Consistency::All].map(|c| c.name());
    assert_eq!(names, ["one", "quorum", "all"]);
    assert!(is_valid_node_id("A-z_0.9") && !is_valid_node_id("") && !is_valid_node_id("a@b"));
}

#[test]
fn the_advertised_api_address_follows_cluster_md_1() {
    let c = ok(&[("HYPERCACHE_API_ADVERTISE", "api.example:443")]);
    assert_eq!(c.advertised_api(8080, 7946), "api.example:443");
    let c = ok(&[("HYPERCACHE_API_ADDR", "127.0.0.1:0")]);
    assert_eq!(
        c.advertised_api(4242, 7946),
        "127.0.0.1:4242",
        "port 0: the bound port"
    );
    let c = ok(&[("HYPERCACHE_DIST_ADVERTISE", "hc-1:7946")]);
    assert_eq!(
        c.advertised_api(8080, 7946),
        "hc-1:8080",
        ":8080 takes the dist host"
    );
    let c = ok(&[]);
    assert_eq!(c.advertised_api(8080, 7946), "", "nothing routable");
    let e = errs(&[("HYPERCACHE_API_ADVERTISE", "0.0.0.0:80")]);
    assert!(e[0].contains("HYPERCACHE_API_ADVERTISE"), "{e:?}");
}
