//! Operator commands and process behaviour (issue 10): `--help`, `--version`, `check-config`,
//! JSON logs, and a restart that finds its port still held for a moment.

mod common;
use common::*;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Duration;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hypercache-server")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_lists_every_variable_with_default_and_form() {
    let o = run(&["--help"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let h = stdout(&o);
    for name in [
        "HYPERCACHE_NODE_ID",
        "HYPERCACHE_API_ADDR",
        "HYPERCACHE_SEEDS",
        "HYPERCACHE_LOG_FORMAT",
        "HYPERCACHE_DRAIN_GRACE",
        "HYPERCACHE_SHUTDOWN_TIMEOUT",
    ] {
        assert!(
            h.contains(&format!("  {name}\n")),
            "--help lacks {name}:\n{h}"
        );
    }
    // The accepted form printed by --help is the one a bad value's error names.
    let bad = run(&["check-config"], &[("HYPERCACHE_HEARTBEAT", "fast")]);
    let err = String::from_utf8_lossy(&bad.stderr);
    let form = err.split("expected ").nth(1).unwrap().trim();
    assert!(h.contains(&format!("accepted: {form}\n")), "{form}");
    assert!(h.contains("check-config") && h.contains("--version"));
}

#[test]
fn version_names_the_commit() {
    let o = run(&["--version"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let v = stdout(&o);
    assert!(
        v.starts_with(&format!(
            "hypercache-server {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{v}"
    );
}

#[test]
fn unknown_arguments_exit_2_with_the_commands() {
    let o = run(&["--port", "80"], &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.starts_with("hypercache-server: ") && e.contains("check-config"),
        "{e}"
    );
}

#[test]
fn check_config_validates_without_binding_and_redacts_secrets() {
    // The API port is taken: check-config must not care, since it binds nothing.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = run(
        &["check-config"],
        &[
            ("HYPERCACHE_API_ADDR", &addr),
            ("HYPERCACHE_AUTH_TOKEN", "s3cr3t-token"),
            ("HYPERCACHE_REPLICATION", "2"),
            ("HYPERCACHE_FOO", "1"),
        ],
    );
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains(&format!("HYPERCACHE_API_ADDR={addr}\n")),
        "{out}"
    );
    assert!(out.contains("HYPERCACHE_REPLICATION=2\n"));
    assert!(out.contains("HYPERCACHE_AUTH_TOKEN=<redacted>\n"));
    assert!(
        out.contains("HYPERCACHE_DRAIN_GRACE=5s\n"),
        "the effective default: {out}"
    );
    assert!(out.contains("unknown variable HYPERCACHE_FOO"));
    assert!(!out.contains("s3cr3t") && !String::from_utf8_lossy(&o.stderr).contains("s3cr3t"));

    let o = run(
        &["check-config"],
        &[
            ("HYPERCACHE_REPLICATION", "0"),
            ("HYPERCACHE_HEARTBEAT", "fast"),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("invalid HYPERCACHE_REPLICATION=\"0\""), "{e}");
    assert!(e.contains("invalid HYPERCACHE_HEARTBEAT=\"fast\""), "{e}");
    assert!(stdout(&o).is_empty());
}

#[test]
fn json_logs_are_one_object_per_line_with_the_event_fields() {
    let mut n = TestNode::start(
        1,
        &[
            ("HYPERCACHE_LOG_FORMAT", "json"),
            ("HYPERCACHE_DRAIN_GRACE", "0s"),
        ],
    );
    n.send_signal("TERM");
    assert_eq!(n.wait_exit(Duration::from_secs(10)).code(), Some(0));
    let log = n.stderr();
    let mut started = None;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for k in ["ts", "level", "node", "msg"] {
            assert!(v[k].is_string(), "{k} missing: {line}");
        }
        let ts = v["ts"].as_str().unwrap();
        let (secs, millis) = ts.split_at(19);
        assert!(is_rfc3339_z(&format!("{secs}Z")), "{line}");
        assert!(
            millis.len() == 5 && millis.ends_with('Z'),
            "RFC 3339 UTC with ms: {line}"
        );
        assert_eq!(v["node"], "test-node");
        if v["msg"]
            .as_str()
            .unwrap()
            .starts_with("hypercache-server started")
        {
            started = Some(v);
        }
    }
    let s = started.unwrap_or_else(|| panic!("no start line:\n{log}"));
    assert_eq!(s["level"], "INFO");
    assert_eq!(s["api"], n.api().to_string(), "the start line's fields");
    assert_eq!(s["cores"], 1);
    assert!(
        log.contains("\"msg\":\"shutdown step 7"),
        "shutdown steps logged too"
    );
}

/// A node restarted right after `kill -9` may find its old listener not yet released: it waits
/// for the port instead of failing with "address in use".
#[test]
fn a_port_still_held_at_start_is_waited_for() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut n = TestNode::spawn(1, &[("HYPERCACHE_API_ADDR", addr.as_str())]);
    assert!(
        n.wait_for_log("is in use; retrying", Duration::from_secs(5)),
        "no retry warning; stderr:\n{}",
        n.stderr()
    );
    drop(taken);
    n.wait_started(Duration::from_secs(10)).unwrap();
    assert_eq!(n.api().to_string(), addr);
    assert_eq!(n.api_client().get("/healthz").status, 200);
}
