//! OIDC bearer tokens against a small identity provider run by the test (discovery and JWKS
//! over HTTPS on loopback, certificate from a test CA the server trusts via SSL_CERT_FILE):
//! valid tokens, each refusal of security.md §7, key rotation with its rate limit, and the
//! start-up failures.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use common::tls::{Ca, Eku, TempDir};
use common::{now_unix_ms, poll_until, TestNode};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

struct SigningKey {
    kid: String,
    enc: EncodingKey,
    jwk: Value,
}

fn es256(kid: &str) -> SigningKey {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    SigningKey {
        kid: kid.into(),
        enc: EncodingKey::from_ec_der(&kp.serialize_der()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
                    "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}),
    }
}

/// Discovery and JWKS over HTTPS; the key set can be replaced; JWKS fetches are counted.
struct Idp {
    port: u16,
    issuer: String,
    jwks: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    ca_file: String,
    _dir: TempDir,
}

impl Idp {
    fn start(keys: &[&SigningKey], claimed_issuer: Option<&str>) -> Idp {
        let ca = Ca::new("idp-ca");
        let leaf = ca.leaf("localhost", &["localhost", "127.0.0.1"], Eku::Server, 5);
        let dir = TempDir::new("idp");
        let ca_file = dir.write("ca.pem", ca.pem().as_bytes());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("https://localhost:{port}/realms/main");
        let jwks = Arc::new(Mutex::new(jwks_of(keys)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let discovery = json!({
            "issuer": claimed_issuer.unwrap_or(&issuer),
            "jwks_uri": format!("{issuer}/jwks"),
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        })
        .to_string();
        let config = {
            use rustls::pki_types::pem::PemObject;
            let chain =
                vec![
                    rustls::pki_types::CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes())
                        .unwrap(),
                ];
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .unwrap(),
            )
        };
        let (j, f) = (jwks.clone(), fetches.clone());
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut line = String::new();
                let mut r = BufReader::new(&mut tls);
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = if path == "/realms/main/.well-known/openid-configuration" {
                    (200, discovery.clone())
                } else if path == "/realms/main/jwks" {
                    f.fetch_add(1, Ordering::SeqCst);
                    (200, j.lock().unwrap().clone())
                } else {
                    (404, "{}".to_string())
                };
                let _ = write!(
                    tls,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        Idp {
            port,
            issuer,
            jwks,
            fetches,
            ca_file,
            _dir: dir,
        }
    }

    fn set_keys(&self, keys: &[&SigningKey]) {
        *self.jwks.lock().unwrap() = jwks_of(keys);
    }

    fn env(&self, audience: &str) -> Vec<(String, String)> {
        vec![
            ("HYPERCACHE_OIDC_ISSUER".into(), self.issuer.clone()),
            ("HYPERCACHE_OIDC_AUDIENCE".into(), audience.into()),
            ("SSL_CERT_FILE".into(), self.ca_file.clone()),
        ]
    }
}

fn jwks_of(keys: &[&SigningKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn now() -> f64 {
    now_unix_ms() as f64 / 1000.0
}

fn token(k: &SigningKey, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(k.kid.clone());
    encode(&h, claims, &k.enc).unwrap()
}

fn claims(issuer: &str) -> Value {
    json!({"iss": issuer, "aud": ["hypercache"], "sub": "svc-reporting", "exp": now() + 600.0,
           "iat": now(), "scope": "openid read"})
}

fn start(env: &[(String, String)]) -> TestNode {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestNode::start(1, &refs)
}

fn me(n: &TestNode, bearer: Option<&str>) -> (u16, Value) {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let r = n.api_anon().get_with("/v1/me", &h);
    let v = if r.status == 200 {
        r.json()
    } else {
        Value::Null
    };
    (r.status, v)
}

#[test]
fn jwts_from_the_issuer_authenticate_and_everything_else_is_refused() {
    let k1 = es256("k1");
    let idp = Idp::start(&[&k1], None);
    let node = start(&idp.env("hypercache"));
    assert!(node.start_line().contains("auth=on") && node.start_line().ends_with("oidc=on"));
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        1,
        "one key fetch at start"
    );

    let good = token(&k1, &claims(&idp.issuer));
    let (st, v) = me(&node, Some(&good));
    assert_eq!(st, 200);
    assert_eq!(v["id"], "svc-reporting");
    assert_eq!(v["scopes"], json!(["read"]));
    // read only: a write is 403, not 401.
    let auth = format!("Bearer {good}");
    let r = node.api_anon().request(
        "PUT",
        "/v1/cache/k",
        &[("Authorization", auth.as_str())],
        Some(b"v"),
    );
    assert_eq!(r.status, 403, "{}", r.describe());
    // No credentials: OIDC alone is not open mode.
    assert_eq!(me(&node, None).0, 401);

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&idp.issuer);
        f(&mut c);
        token(&k1, &c)
    };
    let refused = [
        ("expired", with(&|c| c["exp"] = json!(now() - 5.0))),
        ("wrong aud", with(&|c| c["aud"] = json!("someone-else"))),
        (
            "wrong iss",
            with(&|c| c["iss"] = json!("https://evil.example/realms/main")),
        ),
        ("nbf far ahead", with(&|c| c["nbf"] = json!(now() + 3600.0))),
        ("no identity", with(&|c| c["sub"] = json!(""))),
    ];
    for (what, t) in &refused {
        assert_eq!(me(&node, Some(t)).0, 401, "{what}");
    }
    // alg none, and HS256 keyed with the public JWK.
    let parts: Vec<&str> = good.split('.').collect();
    let none = format!("{}.{}.", b64(br#"{"alg":"none","kid":"k1"}"#), parts[1]);
    assert_eq!(me(&node, Some(&none)).0, 401);
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims(&idp.issuer),
        &EncodingKey::from_secret(k1.jwk.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(me(&node, Some(&hs)).0, 401);
    // None of these refusals fetched keys (known kid, or not a usable alg).
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // Rotation: the IdP now signs with k2 only. A k2 token right away is refused without a
    // fetch (the start-up fetch was less than 10 s ago) ...
    let k2 = es256("k2");
    idp.set_keys(&[&k2]);
    let rotated = token(&k2, &claims(&idp.issuer));
    assert_eq!(me(&node, Some(&rotated)).0, 401);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1, "rate limited");
    // ... and once 10 s have passed the next one triggers one fetch and is accepted.
    assert!(poll_until(
        Duration::from_secs(20),
        Duration::from_millis(500),
        || { me(&node, Some(&rotated)).0 == 200 }
    ));
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
    // k1 was dropped by the IdP: its tokens stop working (and fetch nothing more).
    let old = token(&k1, &claims(&idp.issuer));
    assert_eq!(me(&node, Some(&old)).0, 401);
    let m = node.mgmt_anon().get("/metrics");
    assert_eq!(m.status, 401, "metrics need credentials too");
    let admin = {
        let mut c = claims(&idp.issuer);
        c["scope"] = json!(["read", "admin"]);
        token(&k2, &c)
    };
    let auth = format!("Bearer {admin}");
    let m = node
        .mgmt_anon()
        .get_with("/metrics", &[("Authorization", auth.as_str())])
        .text();
    assert!(
        m.contains("hypercache_oidc_key_fetches_total{result=\"ok\"} 2\n"),
        "{m}"
    );
    assert!(
        m.contains("hypercache_oidc_key_fetches_total{result=\"error\"} 0\n"),
        "{m}"
    );
    assert!(m.contains("hypercache_oidc_keys 1\n"), "{m}");
}

#[test]
fn an_unreachable_or_inconsistent_idp_stops_start_up_with_exit_1() {
    // Nothing listens on the issuer's port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("https://localhost:{port}/realms/main");
    let env = [
        ("HYPERCACHE_OIDC_ISSUER", issuer.as_str()),
        ("HYPERCACHE_OIDC_AUDIENCE", "hypercache"),
    ];
    let mut n = TestNode::spawn(1, &env);
    assert_eq!(n.wait_exit(Duration::from_secs(20)).code(), Some(1));
    let want = format!(
        "hypercache-server: OIDC discovery failed for HYPERCACHE_OIDC_ISSUER=\"{issuer}\": GET {issuer}/.well-known/openid-configuration: "
    );
    assert!(
        n.stderr().lines().any(|l| l.starts_with(&want)),
        "{}",
        n.stderr()
    );

    // The discovery document names another issuer.
    let k = es256("k");
    let idp = Idp::start(&[&k], Some("https://other.example/"));
    let env = idp.env("hypercache");
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut n = TestNode::spawn(1, &refs);
    assert_eq!(n.wait_exit(Duration::from_secs(20)).code(), Some(1));
    let want = format!(
        "hypercache-server: OIDC discovery failed for HYPERCACHE_OIDC_ISSUER=\"{}\": issuer mismatch: the discovery document says \"https://other.example/\"",
        idp.issuer
    );
    assert!(n.stderr().lines().any(|l| l == want), "{}", n.stderr());

    // A key set without a usable signing key.
    let idp = Idp::start(&[&k], None);
    idp.set_keys(&[]);
    let env = idp.env("hypercache");
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut n = TestNode::spawn(1, &refs);
    assert_eq!(n.wait_exit(Duration::from_secs(20)).code(), Some(1));
    let want = format!(
        "hypercache-server: OIDC key fetch failed for HYPERCACHE_OIDC_ISSUER=\"{0}\": GET {0}/jwks: no usable signing key",
        idp.issuer
    );
    assert!(n.stderr().lines().any(|l| l == want), "{}", n.stderr());
    // Without the test CA the IdP's certificate is not trusted.
    let env: Vec<(String, String)> = idp
        .env("hypercache")
        .into_iter()
        .filter(|(k, _)| k != "SSL_CERT_FILE")
        .collect();
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut n = TestNode::spawn(1, &refs);
    assert_eq!(n.wait_exit(Duration::from_secs(20)).code(), Some(1));
    assert!(
        n.stderr().contains("OIDC discovery failed"),
        "{}",
        n.stderr()
    );
    let _ = idp.port;
}
