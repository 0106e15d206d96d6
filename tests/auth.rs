//! The identity model over real sockets (security.md §5, §6, §8, §9; api.md §10.2–§10.4):
//! policy files that stop start-up, scopes on every route of both listeners, Basic, 401/403
//! shapes, `/v1/me`, the peer token, and SIGHUP.

mod common;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

const EXIT_WAIT: Duration = Duration::from_secs(10);
/// security.md §5's example hash; its password is `example-password` (cost 10).
const HASH: &str = "$2b$10$ZYKUJCQjt8kvZj9hNmSd2eVsx5yVZ4htCWEtOArbkMguHm8ozIkiS";

fn policy_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hc-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn policy() -> String {
    format!(
        "tokens:\n\
         \x20 - {{id: reader, token: tok-read, scopes: [read]}}\n\
         \x20 - {{id: writer, token: tok-write, scopes: [write]}}\n\
         \x20 - {{id: admin, token: tok-admin, scopes: [admin, read]}}\n\
         users:\n\
         \x20 - id: ops-alice\n    username: alice\n    password_bcrypt: \"{HASH}\"\n    scopes: [read, write]\n\
         allow_basic_without_tls: {}\n",
        "true"
    )
}

fn start_with_policy(text: &str, extra: &[(&str, &str)]) -> TestNode {
    let p = policy_file(&format!("p{}.yaml", fastrand::u64(..)), text);
    let path = p.to_string_lossy().into_owned();
    let mut env = vec![("HYPERCACHE_AUTH_CONFIG", path.as_str())];
    env.extend_from_slice(extra);
    TestNode::start(1, &env)
}

fn with(node: &TestNode, mgmt: bool, authz: Option<&str>) -> impl Fn(&str, &str) -> Response {
    let addr = if mgmt { node.mgmt() } else { node.api() };
    let authz = authz.map(str::to_string);
    move |m: &str, p: &str| {
        let c = Client::new(addr, None);
        let h: Vec<(&str, &str)> = authz
            .iter()
            .map(|a| ("Authorization", a.as_str()))
            .collect();
        let body: &[u8] = if mgmt { b"" } else { b"{\"keys\":[]}" };
        let body = matches!(m, "PUT" | "POST").then_some(body);
        c.request(m, p, &h, body)
    }
}

#[test]
fn bad_policy_files_stop_start_up_with_exit_2() {
    let cases: Vec<(String, String)> = vec![
        ("tokens: [\n".into(), "not valid YAML: ".into()),
        ("".into(), "the file is empty".into()),
        ("allow_anonymous: false\n".into(), "no tokens, users or cert_identities and allow_anonymous is false: every request would be refused".into()),
        (
            "cert_identities:\n  - {subject_cn: a, scopes: [read]}\n".into(),
            "cert_identities need client certificates: set HYPERCACHE_API_TLS_CLIENT_CA or HYPERCACHE_MGMT_TLS_CLIENT_CA".into(),
        ),
        (
            "tokens:\n  - {id: a, token: t, scopes: [root]}\n".into(),
            "tokens[0].scopes: unknown scope \"root\" (valid: read, write, admin)".into(),
        ),
    ];
    let mut failures = Vec::new();
    for (i, (text, detail)) in cases.iter().enumerate() {
        let p = policy_file(&format!("bad{i}.yaml"), text);
        let path = p.to_string_lossy().into_owned();
        let mut n = TestNode::spawn(1, &[("HYPERCACHE_AUTH_CONFIG", &path)]);
        let st = n.try_wait_exit(EXIT_WAIT);
        let want =
            format!("hypercache-server: invalid HYPERCACHE_AUTH_CONFIG=\"{path}\": {detail}");
        let log = n.stderr();
        if st.and_then(|s| s.code()) != Some(2) || !log.lines().any(|l| l.starts_with(&want)) {
            failures.push(format!(
                "{text:?}: exit {st:?}, want 2 and {want:?}; stderr: {log}"
            ));
        }
    }
    let mut n = TestNode::spawn(1, &[("HYPERCACHE_AUTH_CONFIG", "/nonexistent/p.yaml")]);
    assert_eq!(n.wait_exit(EXIT_WAIT).code(), Some(2));
    assert!(n.stderr().contains(
        "hypercache-server: cannot read HYPERCACHE_AUTH_CONFIG=\"/nonexistent/p.yaml\": no such file or directory"
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn scopes_on_every_route_of_both_listeners() {
    let node = start_with_policy(&policy(), &[("HYPERCACHE_AUTH_TOKEN", "peer-secret")]);
    assert!(
        node.start_line().contains(" auth=on "),
        "{}",
        node.start_line()
    );
    let reader = with(&node, false, Some("Bearer tok-read"));
    let writer = with(&node, false, Some("Bearer tok-write"));
    let anon = with(&node, false, None);

    let r = writer("PUT", "/v1/cache/k1");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(reader("GET", "/v1/cache/k1").status, 200);
    // write does not imply read, and read does not imply write.
    let f = writer("GET", "/v1/cache/k1");
    assert_eq!(
        assert_error(&f, 403, "FORBIDDEN"),
        "forbidden: requires scope read"
    );
    assert_eq!(f.header("www-authenticate"), None);
    let f = reader("PUT", "/v1/cache/k1");
    assert_eq!(
        assert_error(&f, 403, "FORBIDDEN"),
        "forbidden: requires scope write"
    );
    for (m, p, reader_ok) in [
        ("HEAD", "/v1/cache/k1", true),
        ("DELETE", "/v1/cache/k2", false),
        ("GET", "/v1/owners/k1", true),
        ("POST", "/v1/cache/batch/get", true),
        ("POST", "/v1/cache/batch/put", false),
        ("POST", "/v1/cache/batch/delete", false),
        ("GET", "/v1/me", true),
        ("GET", "/v1/me/can?capability=cache.read", true),
    ] {
        let (yes, no) = if reader_ok {
            (&reader, &writer)
        } else {
            (&writer, &reader)
        };
        let ok = yes(m, p);
        assert_ne!(ok.status, 403, "{m} {p}: {}", ok.describe());
        assert_ne!(ok.status, 401, "{m} {p}: {}", ok.describe());
        assert_eq!(no(m, p).status, 403, "{m} {p}");
    }
    // Exempt routes ignore credentials, even wrong ones.
    let junk = with(&node, false, Some("Bearer junk"));
    assert_eq!(junk("GET", "/healthz").status, 200);
    assert_eq!(junk("GET", "/v1/openapi.yaml").status, 200);
    // 401 before 404/405; an authenticated caller gets 404/405 whatever its scopes.
    for (m, p) in [
        ("GET", "/nope"),
        ("PATCH", "/v1/cache/k"),
        ("GET", "/v1/cache/k1"),
    ] {
        let r = anon(m, p);
        assert_eq!(
            assert_error(&r, 401, "UNAUTHORIZED"),
            "unauthorized",
            "{m} {p}"
        );
        // The policy has users, so Basic is offered too.
        assert_eq!(
            r.headers_all("www-authenticate"),
            ["Bearer", "Basic realm=\"hypercache\", charset=\"UTF-8\""]
        );
    }
    assert_eq!(writer("GET", "/nope").status, 404);
    assert_eq!(writer("PATCH", "/v1/cache/k").status, 405);
    // With the file, HYPERCACHE_AUTH_TOKEN is only the peer token.
    assert_eq!(
        with(&node, false, Some("Bearer peer-secret"))("GET", "/v1/me").status,
        401
    );
    let dist = Client::new(node.dist(), Some("peer-secret"));
    assert_eq!(dist.get("/health").status, 200);
    assert_eq!(
        Client::new(node.dist(), Some("tok-admin"))
            .get("/health")
            .status,
        401
    );

    // Management: GET/HEAD read, POST admin, /health exempt.
    let m_reader = with(&node, true, Some("Bearer tok-read"));
    let m_writer = with(&node, true, Some("Bearer tok-write"));
    let m_admin = with(&node, true, Some("Bearer tok-admin"));
    assert_eq!(with(&node, true, None)("GET", "/health").status, 200);
    assert_eq!(m_reader("GET", "/stats").status, 200);
    assert_eq!(m_writer("GET", "/config").status, 403);
    let f = m_reader("POST", "/trigger-expiration");
    assert_eq!(
        assert_error(&f, 403, "FORBIDDEN"),
        "forbidden: requires scope admin"
    );
    assert_eq!(m_admin("POST", "/trigger-expiration").status, 202);
    assert_eq!(with(&node, true, None)("GET", "/stats").status, 401);
    // /config shows the variable as given.
    let cfg: serde_json::Value = serde_json::from_str(&m_admin("GET", "/config").text()).unwrap();
    let shown = cfg["env"]["HYPERCACHE_AUTH_CONFIG"]
        .as_str()
        .unwrap_or_default();
    assert!(shown.ends_with(".yaml"), "{cfg}");
}

#[test]
fn me_reports_each_credential_kind() {
    let node = start_with_policy(&policy(), &[]);
    let me = |authz: &str| with(&node, false, Some(authz))("GET", "/v1/me").text();
    assert_eq!(
        me("Bearer tok-admin"),
        r#"{"id":"admin","scopes":["read","admin"],"capabilities":["cache.read","cache.admin"]}"#
    );
    let basic = format!("Basic {}", b64(b"alice:example-password"));
    assert_eq!(
        me(&basic),
        r#"{"id":"ops-alice","scopes":["read","write"],"capabilities":["cache.read","cache.write"]}"#
    );
    // The same field again is accepted again (the cache itself: auth::gate tests).
    assert_eq!(
        with(&node, false, Some(&basic))("GET", "/v1/me").status,
        200
    );
    let can = with(&node, false, Some(&basic))("GET", "/v1/me/can?capability=cache.admin");
    assert_eq!(
        can.text(),
        r#"{"capability":"cache.admin","allowed":false}"#
    );
    // Wrong password, unknown user, malformed field: 401, nothing tells which.
    for bad in [
        format!("Basic {}", b64(b"alice:wrong")),
        format!("Basic {}", b64(b"mallory:example-password")),
        format!("Basic {}", b64(b"alice")),
        "Basic !!!".to_string(),
        "Bearer tok-read, Bearer tok-admin".to_string(),
    ] {
        let r = with(&node, false, Some(&bad))("GET", "/v1/me");
        assert_eq!(
            assert_error(&r, 401, "UNAUTHORIZED"),
            "unauthorized",
            "{bad}"
        );
    }
    // Two Authorization fields: 401 even if each would match.
    let c = Client::new(node.api(), None);
    let r = c.request(
        "GET",
        "/v1/me",
        &[
            ("Authorization", "Bearer tok-read"),
            ("Authorization", "Bearer tok-read"),
        ],
        None,
    );
    assert_eq!(r.status, 401);
}

#[test]
fn basic_on_plaintext_is_refused_without_the_switch() {
    let text = policy().replace(
        "allow_basic_without_tls: true",
        "allow_basic_without_tls: false",
    );
    let node = start_with_policy(&text, &[]);
    assert!(node
        .stderr()
        .contains("users in HYPERCACHE_AUTH_CONFIG cannot log in"));
    let basic = format!("Basic {}", b64(b"alice:example-password"));
    let r = with(&node, false, Some(&basic))("GET", "/v1/me");
    assert_eq!(r.status, 401);
    assert!(node.wait_for_log(
        "basic credentials refused on a plaintext connection (listener=client); enable TLS or set allow_basic_without_tls",
        Duration::from_secs(5)
    ));
    assert_eq!(
        with(&node, false, Some("Bearer tok-read"))("GET", "/v1/me").status,
        200
    );
}

#[test]
fn anonymous_mode_and_sighup() {
    let node = start_with_policy("allow_anonymous: yes\n", &[]);
    assert!(node
        .stderr()
        .contains("allow_anonymous is true: requests without credentials get every scope"));
    assert!(node
        .stderr()
        .contains("the dist listener is open: set HYPERCACHE_AUTH_TOKEN (peer token) or HYPERCACHE_DIST_TLS_*"));
    let r = with(&node, false, None)("GET", "/v1/me");
    assert_eq!(
        r.text(),
        r#"{"id":"anonymous","scopes":["read","write","admin"],"capabilities":["cache.read","cache.write","cache.admin"]}"#
    );
    // A credential that matches nothing is 401, never anonymous.
    assert_eq!(
        with(&node, false, Some("Bearer nope"))("GET", "/v1/me").status,
        401
    );
    // SIGHUP never terminates (security.md §4).
    node.send_signal("HUP");
    assert!(node.wait_for_log(
        "SIGHUP received: no TLS listener to reload",
        Duration::from_secs(5)
    ));
    assert_eq!(with(&node, false, None)("GET", "/healthz").status, 200);
}
