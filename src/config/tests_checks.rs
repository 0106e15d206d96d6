//! Tests of the whole loader, part 2: the cross-checks of ops.md §2.5, seeds, the CPU choice
//! of §7.1, the advertised address and `/config`'s `env` view.

use super::tests::{errs_on, load_on, ok, one_err, CPUS4};

#[test]
fn tombstone_ttl_must_exceed_hint_ttl() {
    one_err(
        &[("HYPERCACHE_TOMBSTONE_TTL", "30s")],
        &[
            "invalid HYPERCACHE_TOMBSTONE_TTL=\"30s\"",
            "greater than HYPERCACHE_HINT_TTL=\"30s\" (default)",
        ],
    );
    one_err(
        &[("HYPERCACHE_HINT_TTL", "1h")],
        &[
            "HYPERCACHE_TOMBSTONE_TTL=\"10m0s\" (default)",
            "HYPERCACHE_HINT_TTL=\"1h\"",
        ],
    );
    ok(&[("HYPERCACHE_TOMBSTONE_TTL", "31s")]);
    ok(&[
        ("HYPERCACHE_HINT_TTL", "0"),
        ("HYPERCACHE_TOMBSTONE_TTL", "1ms"),
    ]);
    // A failed input skips the rule instead of reporting a confusing second error.
    one_err(
        &[
            ("HYPERCACHE_HINT_TTL", "x"),
            ("HYPERCACHE_TOMBSTONE_TTL", "1s"),
        ],
        &["HINT_TTL"],
    );
}

#[test]
fn drain_grace_must_be_below_shutdown_timeout() {
    one_err(
        &[("HYPERCACHE_DRAIN_GRACE", "30s")],
        &[
            "invalid HYPERCACHE_DRAIN_GRACE=\"30s\"",
            "below HYPERCACHE_SHUTDOWN_TIMEOUT=\"30s\" (default)",
        ],
    );
    one_err(
        &[
            ("HYPERCACHE_SHUTDOWN_TIMEOUT", "1s"),
            ("HYPERCACHE_DRAIN_GRACE", "2s"),
        ],
        &["\"1s\""],
    );
    ok(&[("HYPERCACHE_DRAIN_GRACE", "29.999s")]);
}

#[test]
fn capacity_and_max_conns_cover_every_core() {
    // 4 CPUs: 3 data cores.
    one_err(
        &[("HYPERCACHE_CAPACITY", "2")],
        &[
            "invalid HYPERCACHE_CAPACITY=\"2\"",
            "number of data cores (3)",
        ],
    );
    one_err(
        &[("HYPERCACHE_MAX_CONNS", "2")],
        &["invalid HYPERCACHE_MAX_CONNS=\"2\"", "(3)"],
    );
    ok(&[("HYPERCACHE_CAPACITY", "3"), ("HYPERCACHE_MAX_CONNS", "3")]);
    ok(&[("HYPERCACHE_CAPACITY", "1"), ("HYPERCACHE_CORES", "1")]);
    one_err(
        &[("HYPERCACHE_CAPACITY", "3"), ("HYPERCACHE_CORES", "4")],
        &["(4)"],
    );
}

#[test]
fn max_memory_holds_two_bodies_per_core() {
    // 3 cores x 2 x 4 MiB = 24 MiB.
    ok(&[("HYPERCACHE_MAX_MEMORY", "24MiB")]);
    one_err(
        &[("HYPERCACHE_MAX_MEMORY", "25165823")],
        &[
            "invalid HYPERCACHE_MAX_MEMORY=\"25165823\"",
            "3 x 2 x 4194304 = 25165824 bytes",
        ],
    );
    one_err(
        &[("HYPERCACHE_MAX_MEMORY", "0")],
        &["HYPERCACHE_MAX_MEMORY"],
    );
    ok(&[
        ("HYPERCACHE_MAX_MEMORY", "6KiB"),
        ("HYPERCACHE_MAX_BODY", "1KiB"),
    ]);
    ok(&[
        ("HYPERCACHE_MAX_BODY", "12MiB"),
        ("HYPERCACHE_MAX_MEMORY", "72MiB"),
    ]);
}

#[test]
fn cores_cannot_exceed_usable_cpus() {
    one_err(
        &[("HYPERCACHE_CORES", "5")],
        &[
            "invalid HYPERCACHE_CORES=\"5\"",
            "usable CPUs (4)",
            "usable CPUs: 0-3",
        ],
    );
    one_err(
        &[("HYPERCACHE_CORES", "3"), ("HYPERCACHE_CPU_SET", "0,1")],
        &["HYPERCACHE_CORES", "usable CPUs (HYPERCACHE_CPU_SET): 0,1"],
    );
    // The rules that depend on the core count wait for a valid one.
    one_err(
        &[("HYPERCACHE_CORES", "9"), ("HYPERCACHE_CAPACITY", "2")],
        &["CORES"],
    );
}

#[test]
fn cpu_choice() {
    let pick = |cpus: &[usize], pairs: &[(&str, &str)]| {
        let c = load_on(pairs, cpus).unwrap();
        (c.cores, c.data_cpus().to_vec(), c.control_cpu())
    };
    assert_eq!(pick(&[0], &[]), (1, vec![0], 0));
    assert_eq!(pick(&[0, 1], &[]), (2, vec![0, 1], 1));
    assert_eq!(pick(&[0, 1, 2], &[]), (2, vec![0, 1], 2));
    assert_eq!(pick(&[3, 1, 2, 0], &[]), (3, vec![0, 1, 2], 3));
    assert_eq!(
        pick(&[0, 2, 4, 6, 8, 10], &[]),
        (5, vec![0, 2, 4, 6, 8], 10)
    );
    assert_eq!(pick(CPUS4, &[("HYPERCACHE_CORES", "1")]), (1, vec![0], 1));
    assert_eq!(
        pick(CPUS4, &[("HYPERCACHE_CORES", "4")]),
        (4, vec![0, 1, 2, 3], 3)
    );
    let set = [("HYPERCACHE_CPU_SET", "6,1-3")];
    assert_eq!(pick(&[0, 1, 2, 3, 4, 5, 6, 7], &set), (3, vec![1, 2, 3], 6));
    // An unknown mask (empty) trusts CPU_SET, or falls back to CPU 0.
    assert_eq!(
        pick(&[], &[("HYPERCACHE_CPU_SET", "8-9")]),
        (2, vec![8, 9], 9)
    );
    assert_eq!(pick(&[], &[]), (1, vec![0], 0));
    let e = errs_on(&[("HYPERCACHE_CPU_SET", "4")], &[0, 1]);
    assert!(
        e[0].contains("HYPERCACHE_CPU_SET") && e[0].contains("usable CPUs: 0,1"),
        "{e:?}"
    );
}

#[test]
fn seeds_in_the_config() {
    let c = ok(&[
        ("HYPERCACHE_DIST_ADVERTISE", "hc-1:7946"),
        (
            "HYPERCACHE_SEEDS",
            " node-1@hc-1:7946, node-2@hc-2:7946 ,,hc-3:7946,hc-2:7946,hc-1:7946,",
        ),
    ]);
    let got: Vec<String> = c.seeds.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, ["node-2@hc-2:7946", "hc-3:7946"]);
    assert_eq!(c.seeds[0].id.as_deref(), Some("node-2"));
    assert_eq!(c.seeds[1].id, None);
    // Only entries for this node: nothing to contact, so the default DIST_ADDR is acceptable.
    assert!(ok(&[("HYPERCACHE_SEEDS", "node-1@hc-1:7946")])
        .seeds
        .is_empty());
    one_err(
        &[("HYPERCACHE_SEEDS", "hc-2:7946,oops")],
        &["HYPERCACHE_SEEDS", "\"oops\""],
    );
}

#[test]
fn seeds_need_a_routable_advertised_address() {
    let seeds = ("HYPERCACHE_SEEDS", "node-2@hc-2:7946");
    let msg = one_err(
        &[seeds],
        &["HYPERCACHE_DIST_ADVERTISE", "10.0.0.5:7946", "\":7946\""],
    );
    assert!(msg.starts_with("hypercache-server: "));
    one_err(
        &[seeds, ("HYPERCACHE_DIST_ADDR", "0.0.0.0:7000")],
        &["10.0.0.5:7000"],
    );
    one_err(
        &[seeds, ("HYPERCACHE_DIST_ADDR", "[::]:0")],
        &["HYPERCACHE_DIST_ADVERTISE"],
    );
    let c = ok(&[seeds, ("HYPERCACHE_DIST_ADDR", "127.0.0.1:0")]);
    assert_eq!(c.advertised_addr(41236).unwrap(), "127.0.0.1:41236");
    let e = c.advertised_addr(0).unwrap_err();
    assert_eq!(e.exit_code, 2);
    assert!(e.message.contains("HYPERCACHE_DIST_ADVERTISE") && e.message.contains("10.0.0.5:7946"));
    let c = ok(&[seeds, ("HYPERCACHE_DIST_ADVERTISE", "[::1]:7000")]);
    assert_eq!(c.advertised_addr(7946).unwrap(), "[::1]:7000");
    let c = ok(&[seeds, ("HYPERCACHE_DIST_ADDR", "localhost:7946")]);
    assert_eq!(c.advertised_addr(7946).unwrap(), "localhost:7946");
}

#[test]
fn without_seeds_an_unroutable_address_is_allowed() {
    let c = ok(&[]);
    assert_eq!(c.advertised_addr(7946).unwrap(), ":7946");
    assert!(!c.advertised_host_port(7946).is_routable());
    let c = ok(&[("HYPERCACHE_DIST_ADDR", "0.0.0.0:0")]);
    assert_eq!(c.advertised_addr(5000).unwrap(), "0.0.0.0:5000");
}

#[test]
fn env_view_lists_every_variable_with_effective_values() {
    let c = ok(&[
        ("HYPERCACHE_SEEDS", "node-2@hc-2:7946, hc-3:7946"),
        ("HYPERCACHE_DIST_ADDR", "localhost:0"),
        ("HYPERCACHE_LOG_LEVEL", "WARNING"),
        ("HYPERCACHE_MAX_BODY", "1MiB"),
        ("HYPERCACHE_TOMBSTONE_TTL", "1.5h"),
        ("HYPERCACHE_CPU_SET", "0,1"),
    ])
    .clone();
    let env = c.env_view();
    let names: Vec<&str> = env.iter().map(|(n, _)| *n).collect();
    let table: Vec<&str> = super::table::TABLE.iter().map(|r| r.name).collect();
    assert_eq!(names, table);
    let get = |n: &str| env.iter().find(|(k, _)| *k == n).unwrap().1.clone();
    let want = [
        ("NODE_ID", "node-1"),
        ("API_ADDR", ":8080"),
        ("DIST_ADDR", "localhost:0"),
        ("DIST_ADVERTISE", ""),
        ("SEEDS", "node-2@hc-2:7946,hc-3:7946"),
        ("MAX_MEMORY", ""),
        ("EVICTION", "lru"),
        ("AUTH_TOKEN", ""),
        ("AUTH_CONFIG", ""),
        ("LOG_LEVEL", "warn"),
        ("HEARTBEAT", "1s"),
        ("HINT_TTL", "30s"),
        ("HINT_REPLAY", "200ms"),
        ("HINT_MAX_BYTES", "268435456"),
        ("REBALANCE_INTERVAL", "250ms"),
        ("TOMBSTONE_TTL", "1h30m0s"),
        ("WRITE_CONSISTENCY", "quorum"),
        ("READ_CONSISTENCY", "one"),
        ("MAX_BODY", "1048576"),
        ("CORES", "2"),
        ("CPU_SET", "0,1"),
        ("SHUTDOWN_TIMEOUT", "30s"),
        ("DRAIN_GRACE", "5s"),
    ];
    for (short, value) in want {
        assert_eq!(get(&format!("HYPERCACHE_{short}")), value, "{short}");
    }
    let c = ok(&[
        ("HYPERCACHE_DIST_ADVERTISE", "hc-1:7946"),
        ("HYPERCACHE_MAX_MEMORY", "1GB"),
    ]);
    let env = c.env_view();
    assert!(env.contains(&("HYPERCACHE_DIST_ADVERTISE", "hc-1:7946".to_string())));
    assert!(env.contains(&("HYPERCACHE_MAX_MEMORY", "1000000000".to_string())));
    assert!(env.contains(&("HYPERCACHE_CPU_SET", "0-3".to_string())));
}
