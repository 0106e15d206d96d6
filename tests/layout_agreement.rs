//! The two local five-node layouts must describe the same cluster:
//! `docker-compose.cluster.yml` (containers) and `scripts/cluster.sh` (processes on 127.0.0.1).
//!
//! Same node ids, token, replication, cores and variables; each node seeds every other node by
//! `id@addr`; host ports 808N (client API) and 908N (management) in both. The compose file is read
//! textually (no YAML crate): it is kept simple and regular on purpose, every service written out in
//! full. `scripts/cluster.sh env N` prints the environment the script gives node N.
//! Also checks the seccomp profile the compose file ships (ops.md 7.4).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const NODES: usize = 5;
const TOKEN: &str = "dev-token";
const REPLICATION: &str = "3";
/// Variables that may legitimately differ in presence between the two layouts.
const ONLY_ONE_SIDE: &[&str] = &["HYPERCACHE_CPU_SET", "HYPERCACHE_LOG_LEVEL"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, Default)]
struct Service {
    image: String,
    env: BTreeMap<String, String>,
    ports: Vec<(u16, u16)>,
    networks: Vec<String>,
    security_opt: Vec<String>,
    memlock: BTreeMap<String, String>,
    stop_grace_period: String,
}

#[derive(Debug, Default)]
struct Compose {
    services: BTreeMap<String, Service>,
    /// Top-level `networks:` entries: key -> `name:` value.
    networks: BTreeMap<String, String>,
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(s);
    s.to_string()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Parses the subset of YAML the compose file uses: two-space indentation, `key: value` maps and
/// `- item` lists, comments on their own lines.
fn parse_compose(text: &str) -> Compose {
    let mut c = Compose::default();
    let mut top = String::new(); // services / networks
    let mut svc: Option<String> = None;
    let mut section = String::new(); // a service's 4-space key
    let mut sub = String::new(); // a 6-space key inside a section (ulimits.memlock)
    let mut net: Option<String> = None;
    for (no, raw) in text.lines().enumerate() {
        assert!(
            !raw.contains('\t'),
            "line {}: tabs are not allowed in YAML",
            no + 1
        );
        let line = raw.trim_end();
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        assert!(
            !t.contains(": &")
                && !t.starts_with("- &")
                && !t.starts_with("<<")
                && !t.contains(": *"),
            "line {}: keep docker-compose.cluster.yml free of YAML anchors and merges: {line}",
            no + 1
        );
        let (k, v) = match t.split_once(':') {
            Some((k, v)) if !t.starts_with("- ") => (k.trim().to_string(), v.trim().to_string()),
            _ => (String::new(), String::new()),
        };
        match indent(line) {
            0 => {
                top = k;
                svc = None;
                net = None;
            }
            2 if top == "services" => {
                assert!(
                    v.is_empty(),
                    "line {}: service header expected: {line}",
                    no + 1
                );
                c.services.insert(k.clone(), Service::default());
                svc = Some(k);
                section.clear();
            }
            2 if top == "networks" => {
                c.networks.insert(k.clone(), String::new());
                net = Some(k);
            }
            4 if top == "networks" && k == "name" => {
                c.networks.insert(net.clone().unwrap(), unquote(&v));
            }
            4 if top == "networks" => {}
            4 if top == "services" => {
                let s = c.services.get_mut(svc.as_ref().unwrap()).unwrap();
                section = k.clone();
                sub.clear();
                match k.as_str() {
                    "image" => s.image = unquote(&v),
                    "stop_grace_period" => s.stop_grace_period = unquote(&v),
                    _ => {}
                }
            }
            n if n >= 6 && top == "services" => {
                let s = c.services.get_mut(svc.as_ref().unwrap()).unwrap();
                let item = t.strip_prefix("- ").map(unquote);
                match (section.as_str(), item) {
                    ("environment", None) if n == 6 => {
                        assert!(
                            s.env.insert(k.clone(), unquote(&v)).is_none(),
                            "line {}: {k} twice",
                            no + 1
                        );
                    }
                    ("environment", Some(_)) => {
                        panic!("line {}: write environment as a map, not a list", no + 1)
                    }
                    ("ports", Some(p)) => {
                        let (h, ctr) = p.split_once(':').expect("ports as \"HOST:CONTAINER\"");
                        s.ports.push((h.parse().unwrap(), ctr.parse().unwrap()));
                    }
                    ("networks", Some(n)) => s.networks.push(n),
                    ("security_opt", Some(o)) => s.security_opt.push(o),
                    ("ulimits", None) if n == 6 => sub = k.clone(),
                    ("ulimits", None) if n == 8 && sub == "memlock" => {
                        s.memlock.insert(k.clone(), unquote(&v));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    c
}

/// `scripts/cluster.sh env N`, run without any HYPERCACHE_* of ours leaking in.
fn cluster_sh_env(n: usize) -> BTreeMap<String, String> {
    let out = Command::new("bash")
        .arg(root().join("scripts/cluster.sh"))
        .args(["env", &n.to_string()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("run bash scripts/cluster.sh");
    assert!(
        out.status.success(),
        "scripts/cluster.sh env {n}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=VALUE");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

fn seeds(v: &str) -> Vec<(String, String)> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (id, addr) = s
                .split_once('@')
                .unwrap_or_else(|| panic!("seed {s:?} is not id@addr"));
            (id.to_string(), addr.to_string())
        })
        .collect()
}

fn load() -> (Compose, Vec<BTreeMap<String, String>>) {
    let text = std::fs::read_to_string(root().join("docker-compose.cluster.yml"))
        .expect("read docker-compose.cluster.yml");
    let compose = parse_compose(&text);
    let local = (1..=NODES).map(cluster_sh_env).collect();
    (compose, local)
}

#[test]
fn five_nodes_with_the_same_ids() {
    let (compose, local) = load();
    let names: Vec<_> = compose.services.keys().cloned().collect();
    let want: Vec<_> = (1..=NODES).map(|n| format!("hypercache-{n}")).collect();
    assert_eq!(names, want, "compose services");
    for n in 1..=NODES {
        let s = &compose.services[&format!("hypercache-{n}")];
        let id = format!("node-{n}");
        assert_eq!(
            s.env.get("HYPERCACHE_NODE_ID"),
            Some(&id),
            "compose hypercache-{n}"
        );
        assert_eq!(
            local[n - 1].get("HYPERCACHE_NODE_ID"),
            Some(&id),
            "cluster.sh node {n}"
        );
    }
    let out = Command::new("bash")
        .arg(root().join("scripts/cluster.sh"))
        .args(["env", &(NODES + 1).to_string()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "cluster.sh knows a node {}",
        NODES + 1
    );
}

#[test]
fn same_token_replication_cores_and_variables() {
    let (compose, local) = load();
    for n in 1..=NODES {
        let c = &compose.services[&format!("hypercache-{n}")].env;
        let l = &local[n - 1];
        for (k, want) in [
            ("HYPERCACHE_AUTH_TOKEN", TOKEN),
            ("HYPERCACHE_REPLICATION", REPLICATION),
        ] {
            assert_eq!(
                c.get(k).map(String::as_str),
                Some(want),
                "compose hypercache-{n} {k}"
            );
            assert_eq!(
                l.get(k).map(String::as_str),
                Some(want),
                "cluster.sh node-{n} {k}"
            );
        }
        assert_eq!(
            c.get("HYPERCACHE_CORES"),
            l.get("HYPERCACHE_CORES"),
            "node-{n} HYPERCACHE_CORES"
        );
        let ck: BTreeSet<_> = c
            .keys()
            .filter(|k| !ONLY_ONE_SIDE.contains(&k.as_str()))
            .collect();
        let lk: BTreeSet<_> = l
            .keys()
            .filter(|k| !ONLY_ONE_SIDE.contains(&k.as_str()))
            .collect();
        assert_eq!(
            ck, lk,
            "node-{n}: variables set by compose vs by cluster.sh"
        );
        // Everything that is neither an address nor a seed list must be equal.
        for k in ck {
            if !k.ends_with("_ADDR") && !k.ends_with("_ADVERTISE") && k != "HYPERCACHE_SEEDS" {
                assert_eq!(c[k], l[k], "node-{n} {k}");
            }
        }
    }
}

#[test]
fn every_node_seeds_the_other_four() {
    let (compose, local) = load();
    for n in 1..=NODES {
        let others: Vec<usize> = (1..=NODES).filter(|&j| j != n).collect();
        let c = &compose.services[&format!("hypercache-{n}")].env;
        let want: Vec<_> = others
            .iter()
            .map(|j| (format!("node-{j}"), format!("hypercache-{j}:7946")))
            .collect();
        assert_eq!(
            seeds(&c["HYPERCACHE_SEEDS"]),
            want,
            "compose hypercache-{n} seeds"
        );
        assert_eq!(
            c["HYPERCACHE_DIST_ADVERTISE"],
            format!("hypercache-{n}:7946")
        );
        assert_eq!(port_of(&c["HYPERCACHE_DIST_ADDR"]), 7946);

        let l = &local[n - 1];
        let want: Vec<_> = others
            .iter()
            .map(|j| (format!("node-{j}"), format!("127.0.0.1:794{j}")))
            .collect();
        assert_eq!(
            seeds(&l["HYPERCACHE_SEEDS"]),
            want,
            "cluster.sh node-{n} seeds"
        );
        assert_eq!(l["HYPERCACHE_DIST_ADDR"], format!("127.0.0.1:794{n}"));
        assert_eq!(l["HYPERCACHE_DIST_ADVERTISE"], l["HYPERCACHE_DIST_ADDR"]);
        // A seed's address is the advertised address of the node with that id, in both layouts.
        for (id, addr) in seeds(&l["HYPERCACHE_SEEDS"]) {
            let j: usize = id.strip_prefix("node-").unwrap().parse().unwrap();
            assert_eq!(
                addr,
                local[j - 1]["HYPERCACHE_DIST_ADVERTISE"],
                "cluster.sh seed {id}"
            );
        }
        for (id, addr) in seeds(&c["HYPERCACHE_SEEDS"]) {
            let peer = compose
                .services
                .values()
                .find(|s| s.env["HYPERCACHE_NODE_ID"] == id)
                .unwrap_or_else(|| panic!("compose seed {id} is no service"));
            assert_eq!(
                addr, peer.env["HYPERCACHE_DIST_ADVERTISE"],
                "compose seed {id}"
            );
        }
    }
}

#[test]
fn same_host_ports() {
    let (compose, local) = load();
    for n in 1..=NODES {
        let s = &compose.services[&format!("hypercache-{n}")];
        let l = &local[n - 1];
        let (api, mgmt) = (
            port_of(&s.env["HYPERCACHE_API_ADDR"]),
            port_of(&s.env["HYPERCACHE_MGMT_ADDR"]),
        );
        assert_eq!(
            (api, mgmt),
            (8080, 8081),
            "compose hypercache-{n} container ports"
        );
        let host_of = |ctr: u16| s.ports.iter().find(|p| p.1 == ctr).map(|p| p.0);
        assert_eq!(
            host_of(api),
            Some(8080 + n as u16),
            "compose hypercache-{n}: host port of the client API"
        );
        assert_eq!(
            host_of(mgmt),
            Some(9080 + n as u16),
            "compose hypercache-{n}: host port of management"
        );
        assert_eq!(
            s.ports.len(),
            2,
            "compose hypercache-{n} publishes only the two HTTP ports"
        );
        assert_eq!(l["HYPERCACHE_API_ADDR"], format!("127.0.0.1:{}", 8080 + n));
        assert_eq!(l["HYPERCACHE_MGMT_ADDR"], format!("127.0.0.1:{}", 9080 + n));
    }
}

#[test]
fn compose_runtime_settings() {
    let (compose, _) = load();
    assert_eq!(
        compose
            .networks
            .get("hypercache-cluster")
            .map(String::as_str),
        Some("hypercache-cluster"),
        "one network named hypercache-cluster"
    );
    for (name, s) in &compose.services {
        assert_eq!(s.image, "hypercache-server:local", "{name} image");
        assert_eq!(s.networks, ["hypercache-cluster"], "{name} networks");
        assert_eq!(
            s.security_opt,
            ["seccomp=./deploy/seccomp-io_uring.json"],
            "{name} security_opt"
        );
        for k in ["soft", "hard"] {
            let v = s
                .memlock
                .get(k)
                .unwrap_or_else(|| panic!("{name}: ulimits.memlock.{k}"));
            assert!(
                v == "-1" || v == "${HYPERCACHE_MEMLOCK:--1}",
                "{name} memlock {k} = {v}"
            );
        }
        assert!(!s.stop_grace_period.is_empty(), "{name}: stop_grace_period");
    }
}

#[test]
fn seccomp_profile_allows_io_uring() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/seccomp-io_uring.json");
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        p["defaultAction"], "SCMP_ACT_ERRNO",
        "a filter, not unconfined"
    );
    let unconditional: BTreeSet<&str> = p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["action"] == "SCMP_ACT_ALLOW"
                && r.get("args").is_none()
                && r.get("includes").is_none()
                && r.get("excludes").is_none()
        })
        .flat_map(|r| {
            r["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
        })
        .collect();
    for sc in [
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "read",
        "mmap",
    ] {
        assert!(unconditional.contains(sc), "{sc} is not allowed");
    }
    // Still Docker's default profile: privileged calls stay behind capabilities.
    for sc in ["mount", "unshare", "bpf", "kexec_load", "reboot"] {
        assert!(
            !unconditional.contains(sc),
            "{sc} is allowed unconditionally"
        );
    }
}
