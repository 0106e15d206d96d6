//! TLS and mutual TLS on the client and management listeners, over real sockets
//! (security.md §2, §4, §6, §10): handshakes, refusals, identities, start-up errors and
//! SIGHUP rotation. Dist mTLS between peers is `tls_cluster.rs`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::tls::{connect, request, roundtrip, Ca, ClientOpts, Eku, TempDir};
use common::{poll_until, TestNode};

const PLAINTEXT_REPLY: &str =
    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

struct Pki {
    ca: Ca,
    dir: TempDir,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let ca = Ca::new("hc-test-ca");
        let server = ca.leaf(
            "localhost",
            &["localhost", "127.0.0.1"],
            Eku::Server,
            0x1001,
        );
        let dir = TempDir::new(tag);
        dir.write("ca.pem", ca.pem().as_bytes());
        dir.write("server.pem", server.cert_pem.as_bytes());
        dir.write("server.key", server.key_pem.as_bytes());
        Pki { ca, dir }
    }
    fn opts(&self) -> ClientOpts {
        ClientOpts {
            ca_pem: self.ca.pem(),
            ..Default::default()
        }
    }
    fn env(&self, prefix: &str, client_ca: bool) -> Vec<(String, String)> {
        common::tls::tls_env(prefix, &self.dir.0, client_ca.then_some("CLIENT_CA"))
    }
}

fn start(env: &[(String, String)]) -> TestNode {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestNode::start(1, &refs)
}

/// Raw bytes to a port; what came back before the server closed.
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// A ClientHello offering only TLS 1.0-1.1 (no supported_versions extension).
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut hs = vec![0x01, 0x00, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

fn metric_line(n: &TestNode, prefix: &str) -> Option<f64> {
    let text = n.mgmt_client().get("/metrics").text();
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn client_listener_serves_tls_and_refuses_what_is_not_tls() {
    let pki = Pki::new("client");
    let node = start(&pki.env("API", false));
    assert!(
        node.start_line()
            .ends_with("api_tls=tls mgmt_tls=off dist_tls=off oidc=off"),
        "{}",
        node.start_line()
    );
    let api = node.api();

    // TLS 1.3 with keep-alive: two requests on one connection.
    let mut c = connect(api, &pki.opts()).expect("handshake");
    assert_eq!(
        c.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    let r = roundtrip(&mut c, "PUT", "/v1/cache/tls-key", &[], Some(b"over tls")).unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = roundtrip(&mut c, "GET", "/v1/cache/tls-key", &[], None).unwrap();
    assert_eq!(r.body, b"over tls");
    // TLS 1.2 works too.
    let o12 = ClientOpts {
        tls12_only: true,
        ..pki.opts()
    };
    let r = request(api, &o12, "GET", "/v1/cache/tls-key", &[], None).unwrap();
    assert_eq!(r.body, b"over tls");
    // ALPN: http/1.1 among others is served, h2 alone fails, none is served.
    let with = ClientOpts {
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ..pki.opts()
    };
    let c = connect(api, &with).expect("ALPN with http/1.1");
    assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let h2 = ClientOpts {
        alpn: vec![b"h2".to_vec()],
        ..pki.opts()
    };
    let Err(e) = connect(api, &h2) else {
        panic!("h2-only ALPN must fail");
    };
    assert!(e.contains("NoApplicationProtocol"), "{e}");
    // A client that does not trust the server's CA refuses it.
    let other = Ca::new("other-ca");
    let wrong = ClientOpts {
        ca_pem: other.pem(),
        ..Default::default()
    };
    assert!(connect(api, &wrong).is_err());

    // Plaintext HTTP gets the exact 400 text; other bytes get nothing.
    let before = metric_line(
        &node,
        "hypercache_tls_handshake_failures_total{listener=\"client\"}",
    )
    .expect("client handshake failure series");
    let got = raw(api, b"GET /v1/cache/tls-key HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(String::from_utf8_lossy(&got), PLAINTEXT_REPLY);
    let got = raw(api, b"OPTIONS * HTTP/1.1\r\n\r\n");
    assert_eq!(String::from_utf8_lossy(&got), PLAINTEXT_REPLY);
    assert!(raw(api, b"\x00\x01hello there\r\n").is_empty());
    // TLS 1.1 only: a protocol_version alert (70), no ServerHello.
    let got = raw(api, &tls11_client_hello());
    assert!(got.len() >= 7, "{got:?}");
    assert_eq!(got[0], 0x15, "an alert record, not a ServerHello: {got:?}");
    assert_eq!(got[6], 70, "protocol_version: {got:?}");
    assert!(poll_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || {
            metric_line(
                &node,
                "hypercache_tls_handshake_failures_total{listener=\"client\"}",
            )
            .is_some_and(|v| v >= before + 4.0)
        }
    ));
    assert!(node.wait_for_log(
        "tls handshake failed listener=client remote=127.0.0.1:",
        Duration::from_secs(5)
    ));
    // The management listener is plaintext here: no series for it.
    let m = node.mgmt_client().get("/metrics").text();
    assert!(
        !m.contains("hypercache_tls_handshake_failures_total{listener=\"mgmt\"}"),
        "{m}"
    );
    assert!(m.contains("hypercache_tls_cert_expiry_timestamp_seconds{listener=\"client\"}"));
    assert!(!m.contains("hypercache_peer_tls_handshake_failures_total"));
}

#[test]
fn mgmt_mtls_requires_a_certificate_of_the_client_ca() {
    let pki = Pki::new("mgmt");
    let node = start(&pki.env("MGMT", true));
    assert!(node.start_line().contains("api_tls=off mgmt_tls=mtls"));
    let mgmt = node.mgmt();
    // No certificate: refused (TLS 1.3 reports it at the first read).
    let e = request(mgmt, &pki.opts(), "GET", "/health", &[], None);
    assert!(e.is_err(), "{:?}", e.map(|r| r.status));
    // A certificate of another CA: refused.
    let other = Ca::new("other-ca");
    let stranger = ClientOpts {
        cert: Some(other.leaf("mallory", &[], Eku::Client, 7)),
        ..pki.opts()
    };
    assert!(request(mgmt, &stranger, "GET", "/health", &[], None).is_err());
    // A certificate of the CA whose extended key usage lacks clientAuth: refused.
    let server_only = ClientOpts {
        cert: Some(pki.ca.leaf("ops", &[], Eku::Server, 8)),
        ..pki.opts()
    };
    assert!(request(mgmt, &server_only, "GET", "/health", &[], None).is_err());
    // Without an extended key usage, or with clientAuth: served.
    for eku in [Eku::None, Eku::Client] {
        let good = ClientOpts {
            cert: Some(pki.ca.leaf("ops", &[], eku, 9)),
            ..pki.opts()
        };
        let r = request(mgmt, &good, "GET", "/health", &[], None).unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    let good = ClientOpts {
        cert: Some(pki.ca.leaf("ops", &[], Eku::Client, 10)),
        ..pki.opts()
    };
    let m = request(mgmt, &good, "GET", "/metrics", &[], None).unwrap();
    let text = String::from_utf8_lossy(&m.body).into_owned();
    let fails: f64 = text
        .lines()
        .find(|l| l.starts_with("hypercache_tls_handshake_failures_total{listener=\"mgmt\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("mgmt series");
    assert!(fails >= 3.0, "{fails}");
    // The client listener still speaks plaintext.
    assert_eq!(node.api_client().get("/healthz").status, 200);
}

#[test]
fn certificate_identities_basic_and_me_over_mtls() {
    let pki = Pki::new("ids");
    let hash = bcrypt::hash("pw-of-bob", 4).unwrap();
    let policy = format!(
        "tokens:\n  - id: app\n    token: app-token\n    scopes: [read, write]\n\
         users:\n  - id: ops-bob\n    username: bob\n    password_bcrypt: \"{hash}\"\n    scopes: [read, admin]\n\
         cert_identities:\n  - subject_cn: app.internal\n    scopes: [read]\n"
    );
    let path = pki.dir.write("policy.yaml", policy.as_bytes());
    let mut env = pki.env("API", true);
    env.push(("HYPERCACHE_AUTH_CONFIG".into(), path));
    let node = start(&env);
    let api = node.api();
    let with_cert = |cn: &str, serial: u64| ClientOpts {
        cert: Some(pki.ca.leaf(cn, &[], Eku::Client, serial)),
        ..pki.opts()
    };
    // The certificate's CN is the identity, with its entry's scopes.
    let me = request(
        api,
        &with_cert("app.internal", 20),
        "GET",
        "/v1/me",
        &[],
        None,
    )
    .unwrap();
    assert_eq!(me.status, 200, "{}", me.describe());
    let v = me.json();
    assert_eq!(v["id"], "app.internal");
    assert_eq!(v["scopes"], serde_json::json!(["read"]));
    let put = request(
        api,
        &with_cert("app.internal", 21),
        "PUT",
        "/v1/cache/k",
        &[],
        Some(b"v"),
    )
    .unwrap();
    assert_eq!(put.status, 403, "{}", put.describe());
    // A verified certificate whose CN has no entry authenticates nobody.
    let r = request(api, &with_cert("nobody", 22), "GET", "/v1/me", &[], None).unwrap();
    assert_eq!(r.status, 401);
    // A token wins over the certificate (resolution order, §6).
    let r = request(
        api,
        &with_cert("app.internal", 23),
        "GET",
        "/v1/me",
        &[("Authorization", "Bearer app-token")],
        None,
    )
    .unwrap();
    assert_eq!(r.json()["id"], "app");
    // Basic is accepted on a TLS connection; the identity is the user's id.
    let basic = format!("Basic {}", common::b64(b"bob:pw-of-bob"));
    let r = request(
        api,
        &with_cert("nobody", 24),
        "GET",
        "/v1/me",
        &[("Authorization", basic.as_str())],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["id"], "ops-bob");
    assert_eq!(r.json()["scopes"], serde_json::json!(["read", "admin"]));
}

/// Spawns with `env` and returns (exit code, stderr) of a start-up that must fail.
fn fails(env: &[(String, String)]) -> (i32, String) {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut n = TestNode::spawn(1, &refs);
    let st = n.wait_exit(Duration::from_secs(20));
    (st.code().unwrap_or(-1), n.stderr())
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[test]
fn bad_tls_settings_stop_start_up_with_the_contract_line() {
    let pki = Pki::new("errors");
    let d = &pki.dir;
    let cert = d.path("server.pem");
    let key = d.path("server.key");
    let ca = d.path("ca.pem");
    let garbage = d.write(
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let empty = d.write("empty.pem", b"# nothing here\n");
    let other = pki.ca.leaf("other", &["localhost"], Eku::Server, 3);
    let other_key = d.write("other.key", other.key_pem.as_bytes());
    let encrypted = d.write(
        "enc.key",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let missing = d.path("missing.pem");
    let peer = pki.ca.leaf("peer", &["127.0.0.1"], Eku::Both, 4);
    let peer_cert = d.write("peer.pem", peer.cert_pem.as_bytes());
    let peer_key = d.write("peer.key", peer.key_pem.as_bytes());
    let cases: Vec<(Vec<(String, String)>, String)> = vec![
        (
            vec![kv("HYPERCACHE_API_TLS_CERT", &cert)],
            "hypercache-server: HYPERCACHE_API_TLS_CERT and HYPERCACHE_API_TLS_KEY must both be set".into(),
        ),
        (
            vec![kv("HYPERCACHE_MGMT_TLS_KEY", &key)],
            "hypercache-server: HYPERCACHE_MGMT_TLS_CERT and HYPERCACHE_MGMT_TLS_KEY must both be set".into(),
        ),
        (
            vec![kv("HYPERCACHE_API_TLS_CLIENT_CA", &ca)],
            "hypercache-server: HYPERCACHE_API_TLS_CLIENT_CA needs HYPERCACHE_API_TLS_CERT and HYPERCACHE_API_TLS_KEY".into(),
        ),
        (
            vec![kv("HYPERCACHE_API_TLS_CERT", &missing), kv("HYPERCACHE_API_TLS_KEY", &key)],
            format!("hypercache-server: cannot read HYPERCACHE_API_TLS_CERT=\"{missing}\": no such file or directory"),
        ),
        (
            vec![kv("HYPERCACHE_API_TLS_CERT", &garbage), kv("HYPERCACHE_API_TLS_KEY", &key)],
            format!("hypercache-server: invalid HYPERCACHE_API_TLS_CERT=\"{garbage}\": no PEM certificate found"),
        ),
        (
            vec![kv("HYPERCACHE_MGMT_TLS_CERT", &empty), kv("HYPERCACHE_MGMT_TLS_KEY", &key)],
            format!("hypercache-server: invalid HYPERCACHE_MGMT_TLS_CERT=\"{empty}\": no PEM certificate found"),
        ),
        (
            vec![kv("HYPERCACHE_API_TLS_CERT", &cert), kv("HYPERCACHE_API_TLS_KEY", &cert)],
            format!("hypercache-server: invalid HYPERCACHE_API_TLS_KEY=\"{cert}\": no PEM private key found (PKCS#8, PKCS#1 or SEC1)"),
        ),
        (
            vec![kv("HYPERCACHE_API_TLS_CERT", &cert), kv("HYPERCACHE_API_TLS_KEY", &encrypted)],
            format!("hypercache-server: invalid HYPERCACHE_API_TLS_KEY=\"{encrypted}\": no PEM private key found (PKCS#8, PKCS#1 or SEC1)"),
        ),
        (
            vec![kv("HYPERCACHE_API_TLS_CERT", &cert), kv("HYPERCACHE_API_TLS_KEY", &other_key)],
            format!("hypercache-server: HYPERCACHE_API_TLS_KEY=\"{other_key}\" does not match the certificate in HYPERCACHE_API_TLS_CERT=\"{cert}\""),
        ),
        (
            vec![
                kv("HYPERCACHE_API_TLS_CERT", &cert),
                kv("HYPERCACHE_API_TLS_KEY", &key),
                kv("HYPERCACHE_API_TLS_CLIENT_CA", &empty),
            ],
            format!("hypercache-server: invalid HYPERCACHE_API_TLS_CLIENT_CA=\"{empty}\": no PEM certificate found"),
        ),
        (
            vec![kv("HYPERCACHE_DIST_TLS_KEY", &key)],
            "hypercache-server: HYPERCACHE_DIST_TLS_CERT, HYPERCACHE_DIST_TLS_KEY and HYPERCACHE_DIST_TLS_CA must all be set (missing: HYPERCACHE_DIST_TLS_CERT, HYPERCACHE_DIST_TLS_CA)".into(),
        ),
        (
            vec![
                kv("HYPERCACHE_DIST_TLS_CERT", &cert),
                kv("HYPERCACHE_DIST_TLS_KEY", &key),
                kv("HYPERCACHE_DIST_TLS_CA", &ca),
            ],
            format!("hypercache-server: invalid HYPERCACHE_DIST_TLS_CERT=\"{cert}\": the certificate's extended key usage must include serverAuth and clientAuth (it serves and dials peers)"),
        ),
        (
            vec![
                kv("HYPERCACHE_DIST_TLS_CERT", &peer_cert),
                kv("HYPERCACHE_DIST_TLS_KEY", &peer_key),
                kv("HYPERCACHE_DIST_TLS_CA", &missing),
            ],
            format!("hypercache-server: cannot read HYPERCACHE_DIST_TLS_CA=\"{missing}\": no such file or directory"),
        ),
    ];
    for (env, line) in cases {
        let (code, err) = fails(&env);
        assert_eq!(code, 2, "{env:?}: {err}");
        assert!(
            err.lines().any(|l| l == line),
            "{env:?}\nwant: {line}\ngot: {err}"
        );
    }
    // check-config validates the files the same way and prints the paths.
    let out = std::process::Command::new(common::BIN)
        .arg("check-config")
        .env_clear()
        .env("HYPERCACHE_CORES", "1")
        .env("HYPERCACHE_API_TLS_CERT", &cert)
        .env("HYPERCACHE_API_TLS_KEY", &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("HYPERCACHE_API_TLS_CERT={cert}\n")),
        "{text}"
    );
}

#[test]
fn sighup_rotates_the_certificate_and_keeps_connections() {
    let pki = Pki::new("reload");
    let node = start(&pki.env("API", false));
    let api = node.api();
    let mut old = connect(api, &pki.opts()).unwrap();
    assert_eq!(common::tls::presented_serial(&old), vec![0x10, 0x01]);
    let r = roundtrip(&mut old, "PUT", "/v1/cache/r", &[], Some(b"1")).unwrap();
    assert_eq!(r.status, 200);

    // Rotate: a new leaf with serial 0x2002.
    let next = pki.ca.leaf(
        "localhost",
        &["localhost", "127.0.0.1"],
        Eku::Server,
        0x2002,
    );
    pki.dir.write("server.pem", next.cert_pem.as_bytes());
    pki.dir.write("server.key", next.key_pem.as_bytes());
    node.send_signal("HUP");
    assert!(
        node.wait_for_log(
            "tls reloaded listener=client serial=2002 not_after=",
            Duration::from_secs(5)
        ),
        "{}",
        node.stderr()
    );
    let fresh = connect(api, &pki.opts()).unwrap();
    assert_eq!(common::tls::presented_serial(&fresh), vec![0x20, 0x02]);
    // The connection from before the reload keeps working.
    let r = roundtrip(&mut old, "GET", "/v1/cache/r", &[], None).unwrap();
    assert_eq!(r.body, b"1");

    // A broken certificate file: the reload fails and the previous material stays.
    let cert_path = pki.dir.write("server.pem", b"not a certificate\n");
    node.send_signal("HUP");
    let line = format!(
        "tls reload failed listener=client file={cert_path}: no PEM certificate found; keeping the previous certificate"
    );
    assert!(
        node.wait_for_log(&line, Duration::from_secs(5)),
        "{}",
        node.stderr()
    );
    let still = connect(api, &pki.opts()).unwrap();
    assert_eq!(common::tls::presented_serial(&still), vec![0x20, 0x02]);
    // A key that does not match the new certificate also keeps the old pair.
    let third = pki
        .ca
        .leaf("localhost", &["localhost"], Eku::Server, 0x3003);
    pki.dir.write("server.pem", third.cert_pem.as_bytes());
    node.send_signal("HUP");
    assert!(node.wait_for_log("does not match the certificate in", Duration::from_secs(5)));
    let still = connect(api, &pki.opts()).unwrap();
    assert_eq!(common::tls::presented_serial(&still), vec![0x20, 0x02]);

    let m = node.mgmt_client().get("/metrics").text();
    assert!(
        m.contains("hypercache_tls_reloads_total{listener=\"client\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("hypercache_tls_reload_failures_total{listener=\"client\"} 2\n"),
        "{m}"
    );
    let exp: i64 = m
        .lines()
        .find_map(|l| {
            l.strip_prefix("hypercache_tls_cert_expiry_timestamp_seconds{listener=\"client\"} ")
        })
        .and_then(|v| v.parse().ok())
        .expect("expiry gauge");
    let now = (common::now_unix_ms() / 1000) as i64;
    assert!(
        exp > now,
        "the rotated leaf is valid in the future: {exp} vs {now}"
    );
    // An expired leaf is loaded, as at start, with a warning naming the variable.
    let old_leaf = pki
        .ca
        .expired_leaf("localhost", &["localhost", "127.0.0.1"], 0x4004);
    let cert_path = pki.dir.write("server.pem", old_leaf.cert_pem.as_bytes());
    pki.dir.write("server.key", old_leaf.key_pem.as_bytes());
    node.send_signal("HUP");
    let warn = format!(
        "HYPERCACHE_API_TLS_CERT=\"{cert_path}\" has expired: not_after=2020-12-31T00:00:00Z"
    );
    assert!(
        node.wait_for_log(&warn, Duration::from_secs(5)),
        "{}",
        node.stderr()
    );
    assert!(node
        .stderr()
        .contains("tls reloaded listener=client serial=4004 not_after=2020-12-31T00:00:00Z"));
    // SIGHUP never terminates the process.
    assert_eq!(node.mgmt_client().get("/health").status, 200);
}
