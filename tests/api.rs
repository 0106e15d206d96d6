//! The client REST API of one node (api.md), as one suite run against 1 and 2 data cores, so
//! that requests reaching a core that does not own the key exercise the cross-core hop.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "api-suite-token";
const NODE: &str = "test-node";

#[test]
fn api_one_core() {
    suite(1);
}

#[test]
fn api_two_cores() {
    suite(2);
}

/// Runs every check against a fresh node; a failing check is reported and the others still
/// run, so one run lists every deviation.
fn suite(cores: usize) {
    type Check = fn(&Client);
    let checks: &[(&str, Check)] = &[
        ("raw_values_are_byte_exact", raw_values_are_byte_exact),
        ("many_keys_across_cores", many_keys_across_cores),
        ("envelope_fields", envelope_fields),
        ("head_metadata", head_metadata),
        ("delete_is_idempotent", delete_is_idempotent),
        ("key_decoding", key_decoding),
        ("key_errors", key_errors),
        ("ttl_grammar", ttl_grammar),
        ("versions_increase", versions_increase),
        ("batch_examples", batch_examples),
        ("batch_errors", batch_errors),
        ("batch_many_keys_in_order", batch_many_keys_in_order),
        ("owners_route", owners_route),
        ("healthz_and_openapi", healthz_and_openapi),
        ("key_browser", key_browser),
        ("ttl_expiry", ttl_expiry),
    ];
    let mut failed = Vec::new();
    let mut node = TestNode::start(cores, &[]);
    let c = node.api_client();
    for (name, f) in checks {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&c))).is_err() {
            failed.push(name.to_string());
            if let Some(st) = node.try_wait_exit(Duration::ZERO) {
                let log = node.stderr();
                failed.push(format!("server died ({st:?}); stderr:\n{log}"));
                break;
            }
        }
    }
    drop(node);

    let node = TestNode::start(
        cores,
        &[
            ("HYPERCACHE_AUTH_TOKEN", TOKEN),
            ("HYPERCACHE_MAX_BATCH", "3"),
        ],
    );
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| auth(&node))).is_err() {
        failed.push("auth".to_string());
    }
    let c = node.api_client();
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch_limit(&c))).is_err() {
        failed.push("batch_limit".to_string());
    }
    assert!(
        failed.is_empty(),
        "failed checks with {cores} core(s): {failed:?} (details above)"
    );
}

// ---------- helpers ----------

fn put_ok(c: &Client, target: &str, body: &[u8]) -> Value {
    let r = c.put(target, body);
    assert_eq!(r.status, 200, "PUT {target}: {}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    r.json()
}

fn envelope(c: &Client, target: &str) -> Response {
    c.get_with(target, &[("Accept", "application/json")])
}

fn envelope_ok(c: &Client, target: &str) -> Value {
    let r = envelope(c, target);
    assert_eq!(r.status, 200, "GET {target} (json): {}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    r.json()
}

fn get_body(c: &Client, target: &str) -> Vec<u8> {
    let r = c.get(target);
    assert_eq!(r.status, 200, "GET {target}: {}", r.describe());
    r.body
}

fn assert_missing(c: &Client, target: &str) {
    let r = c.get(target);
    assert_eq!(
        assert_error(&r, 404, "NOT_FOUND"),
        "key not found",
        "GET {target}"
    );
}

fn batch(c: &Client, op: &str, body: &Value) -> Value {
    let r = c.post_json(&format!("/v1/cache/batch/{op}"), body);
    assert_eq!(r.status, 200, "batch/{op} {body}: {}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v = r.json();
    assert_eq!(v["node"], NODE);
    assert!(v["results"].is_array(), "results never null: {v}");
    v
}

fn version_of(v: &Value) -> u64 {
    v["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("version not a u64: {v}"))
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = keys.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// `version`, `origin` and `last_updated` agree with cluster.md §4.
fn check_version_fields(v: &Value) {
    let ver = version_of(v);
    assert_eq!(v["origin"], NODE);
    assert_eq!(
        v["last_updated"],
        rfc3339((ver >> 16) / 1000),
        "last_updated = version>>16: {v}"
    );
    let ms = ver >> 16;
    let now = now_unix_ms();
    assert!(
        ms <= now + 2000 && ms + 600_000 >= now,
        "version time {ms} far from now {now}"
    );
}

// ---------- single-key operations ----------

fn raw_values_are_byte_exact(c: &Client) {
    let value: Vec<u8> = (0..=255u8).chain([0x00, 0xFF, b'\r', b'\n', 0]).collect();
    let r = c.put("/v1/cache/bin", &value);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.json(),
        json!({"key":"bin","stored":true,"bytes":value.len(),"node":NODE,"owners":[NODE]})
    );
    assert_field_order(&r.text(), &["key", "stored", "bytes", "node", "owners"]);
    let g = c.get("/v1/cache/bin");
    assert_eq!(g.status, 200);
    assert_eq!(g.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        g.header("content-length"),
        Some(value.len().to_string().as_str())
    );
    assert_eq!(g.body, value);

    // Empty value, with Content-Length: 0 and with no body headers at all.
    assert_eq!(put_ok(c, "/v1/cache/empty", b"")["bytes"], 0);
    let g = c.get("/v1/cache/empty");
    assert_eq!(
        (g.status, g.header("content-length"), g.body.len()),
        (200, Some("0"), 0)
    );
    let r = c.request("PUT", "/v1/cache/nobody", &[], None);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["bytes"], 0);
    assert_eq!(get_body(c, "/v1/cache/nobody"), b"");
    let e = envelope_ok(c, "/v1/cache/empty");
    assert_eq!(e["value"], "");

    // Request Content-Type is ignored: the bytes are stored as sent.
    let r = c.request(
        "PUT",
        "/v1/cache/ctype",
        &[("Content-Type", "application/json")],
        Some(b"not json"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(get_body(c, "/v1/cache/ctype"), b"not json");
}

fn many_keys_across_cores(c: &Client) {
    let n = 64;
    for i in 0..n {
        put_ok(
            c,
            &format!("/v1/cache/mk-{i}"),
            format!("value-{i}").as_bytes(),
        );
    }
    // One keep-alive connection lands on one core, so about half of these hop to the other.
    let mut conn = Conn::open(c.addr);
    for i in 0..n {
        let r = c.send_on(&mut conn, "GET", &format!("/v1/cache/mk-{i}"), &[], None);
        assert_eq!((r.status, r.text()), (200, format!("value-{i}")), "mk-{i}");
    }
    for i in (0..n).step_by(3) {
        let r = c.send_on(
            &mut conn,
            "PUT",
            &format!("/v1/cache/mk-{i}"),
            &[],
            Some(format!("new-{i}").as_bytes()),
        );
        assert_eq!(r.status, 200);
        let h = c.send_on(&mut conn, "HEAD", &format!("/v1/cache/mk-{i}"), &[], None);
        assert_eq!(
            h.header("content-length"),
            Some(format!("new-{i}").len().to_string().as_str())
        );
    }
    for i in 0..n {
        let want = if i % 3 == 0 {
            format!("new-{i}")
        } else {
            format!("value-{i}")
        };
        assert_eq!(get_body(c, &format!("/v1/cache/mk-{i}")), want.as_bytes());
    }
}

fn envelope_fields(c: &Client) {
    let before = now_unix_ms();
    let r = c.put("/v1/cache/greeting?ttl=5m", b"world");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.json(),
        json!({"key":"greeting","stored":true,"ttl_ms":300000,"bytes":5,"node":NODE,"owners":[NODE]})
    );
    assert_field_order(
        &r.text(),
        &["key", "stored", "ttl_ms", "bytes", "node", "owners"],
    );
    let after = now_unix_ms();

    let g = envelope(c, "/v1/cache/greeting");
    assert_eq!(g.status, 200, "{}", g.describe());
    assert_eq!(
        g.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v = g.json();
    assert_eq!(
        keys_of(&v),
        sorted(&[
            "key",
            "value",
            "value_encoding",
            "ttl_ms",
            "expires_at",
            "version",
            "origin",
            "last_updated",
            "node",
            "owners"
        ])
    );
    assert_field_order(
        &g.text(),
        &[
            "key",
            "value",
            "value_encoding",
            "ttl_ms",
            "expires_at",
            "version",
            "origin",
            "last_updated",
            "node",
            "owners",
        ],
    );
    assert_eq!(v["key"], "greeting");
    assert_eq!(v["value"], "d29ybGQ=");
    assert_eq!(v["value_encoding"], "base64");
    assert_eq!(v["node"], NODE);
    assert_eq!(v["owners"], json!([NODE]));
    let ttl = v["ttl_ms"].as_u64().unwrap();
    assert!(
        ttl <= 300_000 && ttl + (now_unix_ms() - before) + 50 >= 300_000,
        "ttl_ms {ttl}"
    );
    check_version_fields(&v);
    let exp = v["expires_at"].as_str().unwrap();
    assert!(is_rfc3339_z(exp), "{exp}");
    let ok = (before / 1000 + 299..=after / 1000 + 301).any(|s| rfc3339(s) == exp);
    assert!(ok, "expires_at {exp} is not write time + 5m");

    // Accept matching: substring, case-insensitive, any of several fields; */* means raw.
    let r = c.get_with(
        "/v1/cache/greeting",
        &[("Accept", "text/html, APPLICATION/JSON;q=0.1")],
    );
    assert_eq!(r.json()["value"], "d29ybGQ=");
    let r = c.get_with(
        "/v1/cache/greeting",
        &[("Accept", "text/plain"), ("Accept", "application/json")],
    );
    assert_eq!(r.json()["value"], "d29ybGQ=");
    let r = c.get_with("/v1/cache/greeting", &[("Accept", "*/*")]);
    assert_eq!(
        (r.header("content-type"), r.body.as_slice()),
        (Some("application/octet-stream"), &b"world"[..])
    );

    // Without a TTL there is no ttl_ms / expires_at; binary values round-trip through base64.
    put_ok(c, "/v1/cache/plain", &[0x00, 0xFF, 0x10]);
    let v = envelope_ok(c, "/v1/cache/plain");
    assert_eq!(
        keys_of(&v),
        sorted(&[
            "key",
            "value",
            "value_encoding",
            "version",
            "origin",
            "last_updated",
            "node",
            "owners"
        ])
    );
    assert_eq!(v["value"], b64(&[0x00, 0xFF, 0x10]));
}

fn head_metadata(c: &Client) {
    put_ok(c, "/v1/cache/headkey?ttl=5m", b"12345678");
    let e = envelope_ok(c, "/v1/cache/headkey");
    for accept in [None, Some("application/json")] {
        let hdrs: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let h = c.request("HEAD", "/v1/cache/headkey", &hdrs, None);
        assert_eq!(h.status, 200, "{}", h.describe());
        assert!(h.body.is_empty());
        assert_eq!(
            h.header("content-type"),
            Some("application/octet-stream"),
            "HEAD ignores Accept"
        );
        assert_eq!(h.header("content-length"), Some("8"));
        assert_eq!(
            h.header("x-cache-version"),
            Some(version_of(&e).to_string().as_str())
        );
        assert_eq!(h.header("x-cache-origin"), Some(NODE));
        assert_eq!(h.header("x-cache-last-updated"), e["last_updated"].as_str());
        let ttl: u64 = h
            .header("x-cache-ttl-ms")
            .expect("X-Cache-Ttl-Ms")
            .parse()
            .unwrap();
        assert!((1..=300_000).contains(&ttl));
        assert_eq!(h.header("x-cache-expires-at"), e["expires_at"].as_str());
        assert_eq!(h.header("x-cache-owners"), Some(NODE));
        assert_eq!(h.header("x-cache-node"), Some(NODE));
    }
    put_ok(c, "/v1/cache/headnottl", b"x");
    let h = c.head("/v1/cache/headnottl");
    assert_eq!(h.status, 200);
    assert!(
        h.header("x-cache-ttl-ms").is_none() && h.header("x-cache-expires-at").is_none(),
        "{}",
        h.describe()
    );
    assert!(h.header("x-cache-version").is_some() && h.header("x-cache-last-updated").is_some());
    let h = c.head("/v1/cache/never-written");
    assert_eq!(h.status, 404);
    assert!(h.body.is_empty());
}

fn delete_is_idempotent(c: &Client) {
    put_ok(c, "/v1/cache/del-me", b"bye");
    let before = version_of(&envelope_ok(c, "/v1/cache/del-me"));
    let r = c.delete("/v1/cache/del-me");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.json(),
        json!({"key":"del-me","deleted":true,"node":NODE,"owners":[NODE]})
    );
    assert_field_order(&r.text(), &["key", "deleted", "node", "owners"]);
    assert_missing(c, "/v1/cache/del-me");
    let r = envelope(c, "/v1/cache/del-me");
    assert_eq!(assert_error(&r, 404, "NOT_FOUND"), "key not found");
    let h = c.head("/v1/cache/del-me");
    assert_eq!((h.status, h.body.len()), (404, 0));
    for _ in 0..2 {
        let r = c.delete("/v1/cache/del-me");
        assert_eq!(
            r.json(),
            json!({"key":"del-me","deleted":true,"node":NODE,"owners":[NODE]})
        );
    }
    let r = c.delete("/v1/cache/never-existed");
    assert_eq!((r.status, r.json()["deleted"].clone()), (200, json!(true)));
    put_ok(c, "/v1/cache/del-me", b"back");
    let v = envelope_ok(c, "/v1/cache/del-me");
    assert!(
        version_of(&v) > before,
        "a write after a delete gets a newer version"
    );
    assert_eq!(get_body(c, "/v1/cache/del-me"), b"back");
}

// ---------- keys (api.md §2) ----------

fn key_decoding(c: &Client) {
    let cases = [
        ("user%3A42", "user:42"),
        ("a%2Fb", "a/b"),
        ("caf%C3%A9", "café"),
        ("a+b", "a+b"),
        ("%6Beys", "keys"),
        ("%20%20", "  "),
        ("Case", "Case"),
        ("case", "case"),
        ("batch", "batch"),
    ];
    for (seg, key) in cases {
        let v = put_ok(
            c,
            &format!("/v1/cache/{seg}"),
            format!("v:{key}").as_bytes(),
        );
        assert_eq!(v["key"], key, "/v1/cache/{seg}");
    }
    // Stored under the decoded key: batch keys are not percent-decoded.
    let keys: Vec<&str> = cases.iter().map(|(_, k)| *k).collect();
    let v = batch(c, "get", &json!({ "keys": keys }));
    for (i, key) in keys.iter().enumerate() {
        let item = &v["results"][i];
        assert_eq!(item["key"], *key);
        assert_eq!(item["found"], true, "{item}");
        assert_eq!(item["value"], b64(format!("v:{key}").as_bytes()), "{key}");
    }
    assert_eq!(
        get_body(c, "/v1/cache/caf%c3%a9"),
        "v:café".as_bytes(),
        "lowercase hex decodes the same"
    );
    assert_eq!(
        get_body(c, "/v1/cache/café"),
        "v:café".as_bytes(),
        "raw bytes >= 0x80 stand for themselves"
    );
    assert_eq!(get_body(c, "/v1/cache/Case"), b"v:Case");
    assert_eq!(
        get_body(c, "/v1/cache/case"),
        b"v:case",
        "keys are case-sensitive"
    );
    assert_eq!(c.get("/v1/owners/a%2Fb").json()["key"], "a/b");

    // The key named `keys`: raw GET path is the key browser, everything else reaches the key.
    assert_eq!(get_body(c, "/v1/cache/%6Beys"), b"v:keys");
    let v = put_ok(c, "/v1/cache/keys", b"via-raw");
    assert_eq!(v["key"], "keys");
    assert_eq!(get_body(c, "/v1/cache/%6Beys"), b"via-raw");
    let r = c.delete("/v1/cache/keys");
    assert_eq!((r.status, r.json()["key"].clone()), (200, json!("keys")));
    assert_missing(c, "/v1/cache/%6Beys");

    // A 1024-byte key is fine.
    let long = "k".repeat(1024);
    put_ok(c, &format!("/v1/cache/{long}"), b"long");
    assert_eq!(get_body(c, &format!("/v1/cache/{long}")), b"long");
}

fn key_errors(c: &Client) {
    let cases: Vec<(String, &str)> = vec![
        ("%FF".into(), "invalid key: not valid UTF-8"),
        ("%C3%28".into(), "invalid key: not valid UTF-8"),
        ("%zz".into(), "invalid key: bad percent-encoding"),
        ("abc%4".into(), "invalid key: bad percent-encoding"),
        ("%".into(), "invalid key: bad percent-encoding"),
        ("".into(), "missing key"),
    ];
    for (seg, msg) in &cases {
        for m in ["GET", "PUT", "DELETE"] {
            let body: Option<&[u8]> = (m == "PUT").then_some(b"x");
            let r = c.request(m, &format!("/v1/cache/{seg}"), &[], body);
            assert_eq!(
                assert_error(&r, 400, "BAD_REQUEST"),
                *msg,
                "{m} /v1/cache/{seg}"
            );
        }
        let h = c.head(&format!("/v1/cache/{seg}"));
        assert_eq!((h.status, h.body.len()), (400, 0), "HEAD /v1/cache/{seg}");
        let r = c.get(&format!("/v1/owners/{seg}"));
        assert_eq!(
            assert_error(&r, 400, "BAD_REQUEST"),
            *msg,
            "GET /v1/owners/{seg}"
        );
    }
    for seg in ["k".repeat(1025), "%41".repeat(1025), "%C3%A9".repeat(513)] {
        let r = c.put(&format!("/v1/cache/{seg}"), b"x");
        let e = assert_error(&r, 400, "BAD_REQUEST");
        assert!(e.starts_with("key too long"), "{e}");
        let r = c.get(&format!("/v1/cache/{seg}"));
        assert!(assert_error(&r, 400, "BAD_REQUEST").starts_with("key too long"));
    }
    // One segment too many is no route at all; fixed segments are not decoded.
    for p in [
        "/v1/cache/a/b",
        "/v1/%63ache/x",
        "/v1/cache//x",
        "/V1/cache/x",
    ] {
        for m in ["GET", "PUT"] {
            let r = c.request(m, p, &[], (m == "PUT").then_some(b"x"));
            assert_eq!(assert_error(&r, 404, "NOT_FOUND"), "not found", "{m} {p}");
        }
    }
}

// ---------- TTL (api.md §3) ----------

fn ttl_grammar(c: &Client) {
    let valid: &[(&str, Option<u64>)] = &[
        ("30s", Some(30_000)),
        ("5m", Some(300_000)),
        ("2h30m", Some(9_000_000)),
        ("1.5h", Some(5_400_000)),
        (".5s", Some(500)),
        ("500ms", Some(500)),
        ("1500ms", Some(1500)),
        ("250us", Some(1)),
        ("500us", Some(1)),
        ("1ns", Some(1)),
        ("250%C2%B5s", Some(1)),
        ("250%CE%BCs", Some(1)),
        ("1.0001s", Some(1001)),
        ("1h1m1s1ms", Some(3_661_001)),
        ("%2B10s", Some(10_000)),
        ("1%2E5s", Some(1500)),
        ("0", None),
        ("0s", None),
        ("-0", None),
        ("0.0h", None),
        ("", None),
    ];
    for (ttl, want) in valid {
        let v = put_ok(c, &format!("/v1/cache/ttl-valid?ttl={ttl}"), b"v");
        assert_eq!(
            v.get("ttl_ms").and_then(Value::as_u64),
            *want,
            "ttl={ttl}: {v}"
        );
        if want.is_some_and(|ms| ms < 1000) {
            continue; // may already have expired
        }
        let e = envelope_ok(c, "/v1/cache/ttl-valid");
        assert_eq!(e.get("ttl_ms").is_some(), want.is_some(), "ttl={ttl}: {e}");
        assert_eq!(
            e.get("expires_at").is_some(),
            want.is_some(),
            "ttl={ttl}: {e}"
        );
    }
    let v = put_ok(c, "/v1/cache/ttl-valid", b"v");
    assert!(v.get("ttl_ms").is_none());

    let invalid: &[(&str, &str)] = &[
        ("abc", r#"invalid ttl: time: invalid duration "abc""#),
        ("10", r#"invalid ttl: time: missing unit in duration "10""#),
        (
            "1d",
            r#"invalid ttl: time: unknown unit "d" in duration "1d""#,
        ),
        (
            "1H",
            r#"invalid ttl: time: unknown unit "H" in duration "1H""#,
        ),
        (
            "5+m",
            r#"invalid ttl: time: unknown unit " m" in duration "5 m""#,
        ),
        (
            "5%20m",
            r#"invalid ttl: time: unknown unit " m" in duration "5 m""#,
        ),
        (
            "1h-5m",
            r#"invalid ttl: time: unknown unit "h-" in duration "1h-5m""#,
        ),
        (
            "9999999999h",
            r#"invalid ttl: time: invalid duration "9999999999h""#,
        ),
        (".", r#"invalid ttl: time: invalid duration ".""#),
        ("%2B", r#"invalid ttl: time: invalid duration "+""#),
        ("-5s", r#"invalid ttl: negative duration "-5s""#),
        ("-1.5h", r#"invalid ttl: negative duration "-1.5h""#),
    ];
    for (ttl, msg) in invalid {
        let r = c.put(&format!("/v1/cache/ttl-bad?ttl={ttl}"), b"v");
        assert_eq!(assert_error(&r, 400, "BAD_REQUEST"), *msg, "ttl={ttl}");
    }
    assert_missing(c, "/v1/cache/ttl-bad");

    // Only the first `ttl` counts; other parameters are ignored; the key is checked first.
    assert_eq!(
        put_ok(c, "/v1/cache/ttl-q?ttl=10s&ttl=abc", b"v")["ttl_ms"],
        10_000
    );
    assert_eq!(
        put_ok(c, "/v1/cache/ttl-q?foo=1&ttl=2s", b"v")["ttl_ms"],
        2000
    );
    assert!(put_ok(c, "/v1/cache/ttl-q?ttlx=abc", b"v")
        .get("ttl_ms")
        .is_none());
    assert_error(
        &c.put("/v1/cache/ttl-q?ttl=abc&ttl=10s", b"v"),
        400,
        "BAD_REQUEST",
    );
    let r = c.put("/v1/cache/%zz?ttl=abc", b"v");
    assert_eq!(
        assert_error(&r, 400, "BAD_REQUEST"),
        "invalid key: bad percent-encoding"
    );
}

fn ttl_expiry(c: &Client) {
    let t0 = Instant::now();
    assert_eq!(
        put_ok(c, "/v1/cache/exp-a?ttl=1500ms", b"a")["ttl_ms"],
        1500
    );
    let t1 = Instant::now();
    let v = batch(
        c,
        "put",
        &json!({"items":[{"key":"exp-b","value":"b","ttl_ms":1500}]}),
    );
    assert_eq!(v["results"][0]["stored"], true);
    let t2 = Instant::now();
    // A PUT without ttl removes the expiry; a PUT with ttl replaces it.
    put_ok(c, "/v1/cache/exp-c?ttl=1500ms", b"c1");
    let v = put_ok(c, "/v1/cache/exp-c", b"c2");
    assert!(v.get("ttl_ms").is_none(), "{v}");
    assert!(envelope_ok(c, "/v1/cache/exp-c").get("ttl_ms").is_none());
    assert!(c.head("/v1/cache/exp-c").header("x-cache-ttl-ms").is_none());
    put_ok(c, "/v1/cache/exp-d?ttl=1500ms", b"d1");
    assert_eq!(
        put_ok(c, "/v1/cache/exp-d?ttl=1h", b"d2")["ttl_ms"],
        3_600_000
    );

    // Reads never extend the TTL (invariant 8): read until the remaining time has shrunk below
    // 500 ms, checking on every read that it never grows, stays within what the time elapsed
    // since the PUT allows, and that the key is live before its deadline.
    let mut last = u64::MAX;
    let shrunk = poll_until(Duration::from_secs(5), Duration::from_millis(25), || {
        let sent = Instant::now();
        let r = envelope(c, "/v1/cache/exp-a");
        let got = Instant::now();
        if r.status != 200 {
            assert!(
                got >= t0 + Duration::from_millis(1500),
                "exp-a expired early: {}",
                r.describe()
            );
            panic!("exp-a expired before its remaining ttl_ms was seen below 500");
        }
        let ttl = r.json()["ttl_ms"].as_u64().unwrap();
        // The server's deadline and clock are wall-clock milliseconds, ours a monotonic clock:
        // 20 ms of slack either side for the two to disagree, far below what the test measures.
        let hi = 1500u64.saturating_sub((sent - t1).as_millis() as u64) + 20;
        let lo = 1500u64.saturating_sub((got - t0).as_millis() as u64 + 20);
        assert!(
            ttl >= 1 && ttl <= hi && ttl >= lo,
            "ttl_ms {ttl} outside [{lo},{hi}]"
        );
        assert!(ttl <= last, "ttl_ms grew between reads: {last} -> {ttl}");
        last = ttl;
        ttl < 500
    });
    assert!(shrunk, "ttl_ms of exp-a never fell below 500 ms");
    // Poll until expired; never served after the deadline, 404 on GET, HEAD and batch get.
    for (key, put_sent, put_done) in [("exp-a", t0, t1), ("exp-b", t1, t2)] {
        let deadline = put_done + Duration::from_millis(1500);
        let expired = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
            let sent = Instant::now();
            let r = c.get(&format!("/v1/cache/{key}"));
            let got = Instant::now();
            if r.status == 200 {
                assert!(
                    sent <= deadline + Duration::from_millis(20),
                    "{key} served after its deadline"
                );
                return false;
            }
            assert_eq!(assert_error(&r, 404, "NOT_FOUND"), "key not found");
            assert!(
                got >= put_sent + Duration::from_millis(1500),
                "{key} expired before its TTL"
            );
            true
        });
        assert!(expired, "{key} never expired");
        let h = c.head(&format!("/v1/cache/{key}"));
        assert_eq!((h.status, h.body.len()), (404, 0));
    }
    let v = batch(c, "get", &json!({"keys":["exp-a","exp-b"]}));
    assert_eq!(
        v["results"],
        json!([{"key":"exp-a","found":false},{"key":"exp-b","found":false}])
    );
    assert_eq!(get_body(c, "/v1/cache/exp-c"), b"c2");
    assert_eq!(get_body(c, "/v1/cache/exp-d"), b"d2");
}

fn versions_increase(c: &Client) {
    put_ok(c, "/v1/cache/ver", b"a");
    let v1 = envelope_ok(c, "/v1/cache/ver");
    check_version_fields(&v1);
    put_ok(c, "/v1/cache/ver", b"b");
    let v2 = envelope_ok(c, "/v1/cache/ver");
    check_version_fields(&v2);
    assert!(version_of(&v2) > version_of(&v1));
    assert_eq!(
        c.head("/v1/cache/ver").header("x-cache-version"),
        Some(version_of(&v2).to_string().as_str())
    );
    batch(c, "put", &json!({"items":[{"key":"ver","value":"c"}]}));
    let v3 = envelope_ok(c, "/v1/cache/ver");
    assert!(version_of(&v3) > version_of(&v2));
    let g = batch(c, "get", &json!({"keys":["ver"]}));
    assert_eq!(version_of(&g["results"][0]), version_of(&v3));
    assert_eq!(g["results"][0]["last_updated"], v3["last_updated"]);
}

// ---------- batch (api.md §6) ----------

fn batch_examples(c: &Client) {
    let v = batch(
        c,
        "put",
        &json!({"items":[
            {"key":"greet-en","value":"hello","ttl_ms":60000},
            {"key":"greet-bin","value":"AP8=","value_encoding":"base64"},
            {"key":"","value":"x"}]}),
    );
    assert_eq!(
        v,
        json!({"results":[
            {"key":"greet-en","stored":true,"bytes":5,"owners":[NODE]},
            {"key":"greet-bin","stored":true,"bytes":2,"owners":[NODE]},
            {"key":"","stored":false,"error":"missing key","code":"BAD_REQUEST"}],"node":NODE})
    );
    assert_eq!(get_body(c, "/v1/cache/greet-bin"), [0x00, 0xFF]);
    assert_eq!(get_body(c, "/v1/cache/greet-en"), b"hello");

    let v = batch(c, "get", &json!({"keys":["greet-en","missing"]}));
    let hit = &v["results"][0];
    assert_eq!(
        keys_of(hit),
        sorted(&[
            "key",
            "found",
            "value",
            "value_encoding",
            "ttl_ms",
            "expires_at",
            "version",
            "origin",
            "last_updated",
            "owners"
        ])
    );
    assert_eq!(
        (hit["key"].clone(), hit["found"].clone()),
        (json!("greet-en"), json!(true))
    );
    assert_eq!(
        (hit["value"].clone(), hit["value_encoding"].clone()),
        (json!("aGVsbG8="), json!("base64"))
    );
    let ttl = hit["ttl_ms"].as_u64().unwrap();
    assert!((50_000..=60_000).contains(&ttl), "{ttl}");
    assert!(is_rfc3339_z(hit["expires_at"].as_str().unwrap()));
    check_version_fields(hit);
    assert_eq!(hit["owners"], json!([NODE]));
    assert_eq!(v["results"][1], json!({"key":"missing","found":false}));
    assert_eq!(v["results"].as_array().unwrap().len(), 2);

    let v = batch(c, "delete", &json!({"keys":["greet-en","greet-bin"]}));
    assert_eq!(
        v,
        json!({"results":[
            {"key":"greet-en","deleted":true,"owners":[NODE]},
            {"key":"greet-bin","deleted":true,"owners":[NODE]}],"node":NODE})
    );
    let v = batch(c, "get", &json!({"keys":["greet-en","greet-bin"]}));
    assert_eq!(
        v["results"],
        json!([{"key":"greet-en","found":false},{"key":"greet-bin","found":false}])
    );
}

fn batch_errors(c: &Client) {
    // Whole-body errors: nothing is applied.
    let bad_bodies: &[(&str, &str)] = &[
        ("get", "{"),
        ("get", ""),
        ("get", "[]"),
        ("get", "\"keys\""),
        ("get", r#"{"keys":"a"}"#),
        ("get", r#"{"keys":[1]}"#),
        ("get", r#"{"keys":["\ud800"]}"#),
        ("delete", r#"{"keys":{"a":1}}"#),
        ("put", r#"{"items":"x"}"#),
        // An item that is an array: serde alone would fill the item's fields from it.
        (
            "put",
            r#"{"items":[{"key":"applied-not","value":"x"},["applied-not","y"]]}"#,
        ),
        (
            "put",
            r#"{"items":[{"key":"applied-not","value":"x"},{"key":"k2","value":5}]}"#,
        ),
        (
            "put",
            r#"{"items":[{"key":"applied-not","value":"x"},{"key":"k2","value":"v","ttl_ms":1.5}]}"#,
        ),
        (
            "put",
            r#"{"items":[{"key":"applied-not","value":"x"},{"key":"k2","value":"v","ttl_ms":"5"}]}"#,
        ),
        (
            "put",
            r#"{"items":[{"key":"applied-not","value":"x"},{"key":7,"value":"v"}]}"#,
        ),
    ];
    // Every body is tried; the mismatches are asserted at the end of this check.
    let mut wrong = Vec::new();
    for (op, body) in bad_bodies {
        let r = c.post(&format!("/v1/cache/batch/{op}"), body.as_bytes());
        let ok = r.status == 400
            && r.header("content-type") == Some("application/json; charset=utf-8")
            && r.json()["code"] == "BAD_REQUEST"
            && r.json()["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("invalid JSON: "));
        if !ok {
            wrong.push(format!("batch/{op} {body}: {}", r.describe()));
        }
    }
    assert_missing(c, "/v1/cache/applied-not");

    // Missing or null arrays count as empty; unknown fields are ignored.
    for (op, body) in [
        ("get", json!({})),
        ("get", json!({"keys":null})),
        ("put", json!({"items":null})),
        ("put", json!({})),
        ("delete", json!({"keys":null})),
        ("delete", json!({"extra":1})),
    ] {
        assert_eq!(
            batch(c, op, &body),
            json!({"results":[],"node":NODE}),
            "batch/{op} {body}"
        );
    }
    assert_eq!(
        batch(c, "get", &json!({"keys":["nope"],"extra":[1,2]}))["results"],
        json!([{"key":"nope","found":false}])
    );

    // Per-item errors never fail the batch.
    let long = "k".repeat(1025);
    let v = batch(
        c,
        "put",
        &json!({"items":[
            {"key":long,"value":"x"},
            {"key":"b64-bad","value":"!!!","value_encoding":"base64"},
            {"key":"neg-ttl","value":"x","ttl_ms":-5},
            {"key":"b64-crlf","value":"AAEC\r\nAwQF","value_encoding":"base64"},
            {"key":"no-value"},
            {"key":"plain-enc","value":"QUJD","value_encoding":"plain"},
            {"key":"dup","value":"first"},
            {"key":"dup","value":"second"}]}),
    );
    let rs = v["results"].as_array().unwrap();
    assert_eq!(rs.len(), 8);
    assert_eq!(
        (
            rs[0]["key"].as_str(),
            rs[0]["stored"].clone(),
            rs[0]["code"].clone()
        ),
        (Some(long.as_str()), json!(false), json!("BAD_REQUEST"))
    );
    assert!(
        rs[0]["error"].as_str().unwrap().starts_with("key too long"),
        "{}",
        rs[0]
    );
    assert!(
        rs[0].get("owners").is_none(),
        "no owners on validation errors: {}",
        rs[0]
    );
    assert_eq!(
        (rs[1]["stored"].clone(), rs[1]["code"].clone()),
        (json!(false), json!("BAD_REQUEST"))
    );
    assert!(
        rs[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid base64 value: "),
        "{}",
        rs[1]
    );
    assert!(rs[1].get("owners").is_none());
    assert_eq!(
        rs[2],
        json!({"key":"neg-ttl","stored":false,"error":"invalid ttl_ms: must be >= 0","code":"BAD_REQUEST"})
    );
    assert_eq!(
        rs[3],
        json!({"key":"b64-crlf","stored":true,"bytes":6,"owners":[NODE]})
    );
    assert_eq!(
        rs[4],
        json!({"key":"no-value","stored":true,"bytes":0,"owners":[NODE]})
    );
    assert_eq!(
        rs[5],
        json!({"key":"plain-enc","stored":true,"bytes":4,"owners":[NODE]})
    );
    assert_eq!(rs[6]["stored"], true);
    assert_eq!(rs[7]["stored"], true);
    assert_eq!(get_body(c, "/v1/cache/b64-crlf"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(get_body(c, "/v1/cache/no-value"), b"");
    assert_eq!(get_body(c, "/v1/cache/plain-enc"), b"QUJD");
    assert_eq!(
        get_body(c, "/v1/cache/dup"),
        b"second",
        "duplicates apply in order"
    );
    assert_missing(c, "/v1/cache/b64-bad");
    assert_missing(c, "/v1/cache/neg-ttl");

    let v = batch(c, "get", &json!({"keys":["", long, "dup"]}));
    assert_eq!(
        v["results"][0],
        json!({"key":"","found":false,"error":"missing key","code":"BAD_REQUEST"})
    );
    assert_eq!(
        (
            v["results"][1]["found"].clone(),
            v["results"][1]["code"].clone()
        ),
        (json!(false), json!("BAD_REQUEST"))
    );
    assert!(v["results"][1]["error"]
        .as_str()
        .unwrap()
        .starts_with("key too long"));
    assert_eq!(v["results"][2]["value"], b64(b"second"));
    let v = batch(c, "delete", &json!({"keys":["", "dup"]}));
    assert_eq!(
        v["results"][0],
        json!({"key":"","deleted":false,"error":"missing key","code":"BAD_REQUEST"})
    );
    assert_eq!(
        v["results"][1],
        json!({"key":"dup","deleted":true,"owners":[NODE]})
    );
    assert_missing(c, "/v1/cache/dup");

    // Batch keys are JSON strings as is, not percent-decoded.
    put_ok(c, "/v1/cache/pct%2541", b"pct");
    let v = batch(c, "get", &json!({"keys":["pct%41", "pctA"]}));
    assert_eq!(v["results"][0]["value"], b64(b"pct"));
    assert_eq!(v["results"][1]["found"], false);

    // A batch put TTL is absolute, like ?ttl=.
    batch(
        c,
        "put",
        &json!({"items":[{"key":"bttl","value":"x","ttl_ms":60000}]}),
    );
    let ttl = envelope_ok(c, "/v1/cache/bttl")["ttl_ms"].as_u64().unwrap();
    assert!((55_000..=60_000).contains(&ttl), "{ttl}");
    // JSON Schema's integer (the OpenAPI document's type) includes a zero fraction.
    let r = c.post(
        "/v1/cache/batch/put",
        br#"{"items":[{"key":"bttl-f","value":"x","ttl_ms":60000.0},{"key":"bttl-g","value":"x","ttl_ms":-2050901135358869.0}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    // A large whole number parses exactly (it is an item error for being negative, not a 400).
    assert!(
        r.text().contains("invalid ttl_ms: must be >= 0"),
        "{}",
        r.describe()
    );
    let ttl = envelope_ok(c, "/v1/cache/bttl-f")["ttl_ms"]
        .as_u64()
        .unwrap();
    assert!((55_000..=60_000).contains(&ttl), "{ttl}");
    assert!(
        wrong.is_empty(),
        "bodies not answered 400 invalid JSON:\n{}",
        wrong.join("\n")
    );
}

fn batch_many_keys_in_order(c: &Client) {
    let n = 100;
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"key": format!("bk-{i}"), "value": format!("bv-{i}")}))
        .collect();
    let v = batch(c, "put", &json!({ "items": items }));
    for i in 0..n {
        assert_eq!(
            v["results"][i],
            json!({"key":format!("bk-{i}"),"stored":true,"bytes":format!("bv-{i}").len(),"owners":[NODE]})
        );
    }
    let keys: Vec<String> = (0..n)
        .rev()
        .map(|i| format!("bk-{i}"))
        .chain(["bk-missing".to_string()])
        .collect();
    let v = batch(c, "get", &json!({ "keys": keys }));
    let rs = v["results"].as_array().unwrap();
    assert_eq!(rs.len(), n + 1);
    for (j, key) in keys.iter().enumerate().take(n) {
        let i: usize = key[3..].parse().unwrap();
        assert_eq!(rs[j]["key"], key.as_str(), "results in input order");
        assert_eq!(rs[j]["value"], b64(format!("bv-{i}").as_bytes()));
    }
    assert_eq!(rs[n], json!({"key":"bk-missing","found":false}));
    for i in (0..n).step_by(7) {
        assert_eq!(
            get_body(c, &format!("/v1/cache/bk-{i}")),
            format!("bv-{i}").as_bytes()
        );
    }
    let dels: Vec<String> = (0..n)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("bk-{i}"))
        .collect();
    let v = batch(c, "delete", &json!({ "keys": dels }));
    assert!(v["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["deleted"] == true));
    let v = batch(
        c,
        "get",
        &json!({"keys": (0..n).map(|i| format!("bk-{i}")).collect::<Vec<_>>()}),
    );
    for i in 0..n {
        assert_eq!(v["results"][i]["found"], i % 2 == 1, "bk-{i}");
    }
}

fn batch_limit(c: &Client) {
    let r = c.post_json("/v1/cache/batch/get", &json!({"keys":["a","b","c","d"]}));
    assert!(assert_error(&r, 400, "BAD_REQUEST").starts_with("too many items"));
    assert_eq!(
        batch(c, "get", &json!({"keys":["a","b","c"]}))["results"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let items4 = json!({"items":[{"key":"lim-0","value":"0"},{"key":"lim-1"},{"key":"lim-2"},{"key":"lim-3"}]});
    let r = c.post_json("/v1/cache/batch/put", &items4);
    assert!(assert_error(&r, 400, "BAD_REQUEST").starts_with("too many items"));
    assert_missing(c, "/v1/cache/lim-0");
    batch(
        c,
        "put",
        &json!({"items":[{"key":"lim-0","value":"0"},{"key":"lim-1"},{"key":"lim-2"}]}),
    );
    let r = c.post_json(
        "/v1/cache/batch/delete",
        &json!({"keys":["lim-0","lim-1","lim-2","lim-3"]}),
    );
    assert!(assert_error(&r, 400, "BAD_REQUEST").starts_with("too many items"));
    assert_eq!(get_body(c, "/v1/cache/lim-0"), b"0", "nothing deleted");
}

// ---------- other routes ----------

fn owners_route(c: &Client) {
    for m in ["GET", "HEAD"] {
        let r = c.request(m, "/v1/owners/greeting-never-written", &[], None);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        if m == "GET" {
            assert_eq!(
                r.json(),
                json!({"key":"greeting-never-written","owners":[NODE],"node":NODE})
            );
            assert_field_order(&r.text(), &["key", "owners", "node"]);
        } else {
            assert!(r.body.is_empty());
        }
    }
    assert_eq!(c.get("/v1/owners/caf%C3%A9").json()["key"], "café");
}

fn healthz_and_openapi(c: &Client) {
    let r = c.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.body, b"ok");
    let h = c.head("/healthz");
    assert_eq!(
        (h.status, h.header("content-length"), h.body.len()),
        (200, Some("2"), 0)
    );

    let r = c.get("/v1/openapi.yaml");
    assert_eq!(r.status, 200, "{}", r.describe());
    let ct = r.header("content-type").unwrap_or("");
    assert!(ct.starts_with("application/yaml"), "content-type {ct}");
    let text = r.text();
    assert!(
        text.contains("openapi:") && text.contains("3.1"),
        "not an OpenAPI 3.1 document"
    );
    for p in [
        "/healthz",
        "/v1/openapi.yaml",
        "/v1/cache/{key}",
        "/v1/cache/batch/get",
        "/v1/cache/batch/put",
        "/v1/cache/batch/delete",
        "/v1/owners/{key}",
    ] {
        assert!(text.contains(p), "openapi lacks path {p}");
    }
    for code in [
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "TOO_LARGE",
        "HEADERS_TOO_LARGE",
        "INTERNAL",
        "DRAINING",
        "QUORUM_FAILED",
        "NO_OWNERS",
    ] {
        assert!(text.contains(code), "openapi lacks error code {code}");
    }
    assert_eq!(
        c.get("/v1/openapi.yaml").body,
        r.body,
        "same bytes every time"
    );
    let h = c.head("/v1/openapi.yaml");
    assert_eq!(
        (h.status, h.header("content-length")),
        (200, Some(r.body.len().to_string().as_str()))
    );
}

/// api.md §10.1 on one node: prefix, glob, paging, clamps, the exact 400s, HEAD, and deleted or
/// expired keys never listed.
fn key_browser(c: &Client) {
    for i in 0..12 {
        assert_eq!(c.put(&format!("/v1/cache/kb-{i:02}"), b"v").status, 200);
    }
    assert_eq!(c.put("/v1/cache/kb-gone", b"v").status, 200);
    assert_eq!(c.delete("/v1/cache/kb-gone").status, 200);
    assert_eq!(c.put("/v1/cache/kb-exp?ttl=50ms", b"v").status, 200);
    assert!(poll_until(
        Duration::from_secs(3),
        Duration::from_millis(20),
        || c.get("/v1/cache/kb-exp").status == 404
    ));
    let browse = |q: &str| {
        let r = c.get(&format!("/v1/cache/keys?{q}"));
        assert_eq!(r.status, 200, "{q}: {}", r.describe());
        r.json()
    };
    let keys = |v: &Value| str_list(v, "keys");
    let want = |from: usize, to: usize| -> Vec<String> {
        (from..to).map(|i| format!("kb-{i:02}")).collect()
    };
    let v = browse("q=kb-&limit=5");
    assert_eq!(keys(&v), want(0, 5));
    assert_eq!(v["next_cursor"], "5");
    assert_eq!(
        v["total_matched"], 12,
        "deleted and expired keys are not listed: {v}"
    );
    assert_eq!(v["truncated"], false);
    assert!(v["node"].as_str().is_some_and(|n| !n.is_empty()));
    assert!(v.get("partial_nodes").is_none(), "{v}");
    assert_field_order(
        &c.get("/v1/cache/keys?q=kb-&limit=5").text(),
        &["keys", "next_cursor", "total_matched", "truncated", "node"],
    );
    let v = browse("q=kb-&limit=5&cursor=5");
    assert_eq!(
        (keys(&v), v["next_cursor"].clone()),
        (want(5, 10), json!("10"))
    );
    let v = browse("q=kb-&limit=5&cursor=10");
    assert_eq!(
        (keys(&v), v["next_cursor"].clone()),
        (want(10, 12), json!(""))
    );
    let v = browse("q=kb-0%3F");
    assert_eq!(keys(&v), want(0, 10), "glob kb-0?");
    let v = browse("q=kb-*&limit=9999&max=3");
    assert_eq!(keys(&v), want(0, 3), "the max smallest");
    assert_eq!(
        (v["total_matched"].clone(), v["truncated"].clone()),
        (json!(3), json!(true))
    );
    let v = browse("q=kb-&cursor=400");
    assert!(
        keys(&v).is_empty() && v["next_cursor"] == "",
        "past the end: {v}"
    );
    for (q, msg) in [
        ("q=%5Bkb", "invalid glob pattern"),
        (
            "cursor=-1",
            "invalid cursor: must be a non-negative integer",
        ),
        ("limit=0", "invalid limit: must be a positive integer"),
        ("max=abc", "invalid max: must be a positive integer"),
    ] {
        let r = c.get(&format!("/v1/cache/keys?{q}"));
        assert_eq!(assert_error(&r, 400, "BAD_REQUEST"), msg, "{q}");
    }
    let g = c.get("/v1/cache/keys?q=kb-");
    let h = c.head("/v1/cache/keys?q=kb-");
    assert_eq!((h.status, h.body.len()), (200, 0), "HEAD /v1/cache/keys");
    assert_eq!(
        h.header("content-length"),
        Some(g.body.len().to_string().as_str())
    );
    me_routes(c);
}

/// api.md §10.2/§10.3: `default` with only HYPERCACHE_AUTH_TOKEN, `anonymous` in open mode.
fn me_routes(c: &Client) {
    let r = c.get("/v1/me");
    assert_eq!(r.status, 200, "{}", r.describe());
    let id = if c.token.is_some() {
        "default"
    } else {
        "anonymous"
    };
    assert_eq!(
        r.text(),
        format!(
            r#"{{"id":"{id}","scopes":["read","write","admin"],"capabilities":["cache.read","cache.write","cache.admin"]}}"#
        )
    );
    let r = c.get("/v1/me/can?capability=cache.admin");
    assert_eq!(r.text(), r#"{"capability":"cache.admin","allowed":true}"#);
    for (q, msg) in [
        ("", "missing 'capability' query parameter"),
        ("?capability=", "missing 'capability' query parameter"),
        ("?capability=cache.root", "unknown capability 'cache.root'"),
    ] {
        let r = c.get(&format!("/v1/me/can{q}"));
        assert_eq!(assert_error(&r, 400, "BAD_REQUEST"), msg, "{q}");
    }
    let h = c.head("/v1/me");
    assert_eq!((h.status, h.body.len()), (200, 0));
    let r = c.request("POST", "/v1/me", &[], Some(b""));
    assert_eq!(r.status, 405);
}

// ---------- auth (api.md §1.1) ----------

fn auth(node: &TestNode) {
    let anon = node.api_anon();
    let c = node.api_client();
    let check_401 = |r: &Response, what: &str| {
        assert_eq!(
            assert_error(r, 401, "UNAUTHORIZED"),
            "unauthorized",
            "{what}"
        );
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer"),
            "{what}: {}",
            r.describe()
        );
    };
    for (m, p) in [
        ("GET", "/v1/cache/k"),
        ("PUT", "/v1/cache/k"),
        ("DELETE", "/v1/cache/k"),
        ("POST", "/v1/cache/batch/get"),
        ("POST", "/v1/cache/batch/put"),
        ("GET", "/v1/owners/k"),
        ("GET", "/v1/cache/keys"),
        ("GET", "/v1/me"),
        ("GET", "/nope"),
        ("GET", "/health"),
        ("GET", "/v1/cache/%zz"),
        ("PATCH", "/v1/cache/k"),
    ] {
        let body: Option<&[u8]> = (m == "PUT" || m == "POST").then_some(b"{}");
        check_401(
            &anon.request(m, p, &[], body),
            &format!("{m} {p} without token"),
        );
    }
    let h = anon.head("/v1/cache/k");
    assert_eq!(
        (h.status, h.header("www-authenticate"), h.body.len()),
        (401, Some("Bearer"), 0)
    );
    let bad = [
        "Bearer wrong".to_string(),
        format!("bearer {TOKEN}"),
        format!("BEARER {TOKEN}"),
        format!("Bearer  {TOKEN}"),
        format!("Bearer {TOKEN}x"),
        format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]),
        TOKEN.to_string(),
        "Bearer".to_string(),
        format!("Basic {TOKEN}"),
    ];
    for value in &bad {
        let r = anon.get_with("/v1/cache/k", &[("Authorization", value)]);
        check_401(&r, &format!("Authorization: {value}"));
    }
    let good = format!("Bearer {TOKEN}");
    let r = anon.get_with(
        "/v1/owners/k",
        &[("Authorization", &good), ("Authorization", &good)],
    );
    check_401(&r, "two Authorization headers");

    // Exempt routes.
    let r = anon.get("/healthz");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(anon.head("/healthz").status, 200);
    assert_eq!(anon.get("/v1/openapi.yaml").status, 200);
    assert_eq!(anon.head("/v1/openapi.yaml").status, 200);

    // With the token everything works as usual.
    put_ok(&c, "/v1/cache/authed", b"secret-value");
    assert_eq!(get_body(&c, "/v1/cache/authed"), b"secret-value");
    assert_eq!(c.get("/v1/owners/authed").json()["owners"], json!([NODE]));
    assert_eq!(assert_error(&c.get("/nope"), 404, "NOT_FOUND"), "not found");
    assert_eq!(
        assert_error(&c.get("/health"), 404, "NOT_FOUND"),
        "not found"
    );
    assert_eq!(c.delete("/v1/cache/authed").status, 200);
}

#[test]
fn rfc3339_helper_matches_the_spec_example() {
    // cluster.md §4: wall 1764140000000 ms is 2025-11-26T06:53:20Z.
    assert_eq!(
        rfc3339((115_614_679_040_000_000u64 >> 16) / 1000),
        "2025-11-26T06:53:20Z"
    );
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}
