//! Byte-level HTTP/1.1 behaviour of the client listener (api.md §9), over raw sockets.

mod common;
use common::*;
use std::time::{Duration, Instant};

const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One core and a 1 KiB body cap, so size limits are cheap to hit.
fn node() -> TestNode {
    TestNode::start(1, &[("HYPERCACHE_MAX_BODY", "1KiB")])
}

/// Sends `req` on a fresh connection and expects exactly one error response with
/// `Connection: close`, after which the server closes.
fn expect_error_close(node: &TestNode, req: &[u8], status: u16, code: &str) -> Response {
    let mut c = Conn::open(node.api());
    c.try_send(req);
    let r = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("no response to {:?}: {e}", lossy(req)));
    assert_error(&r, status, code);
    assert!(
        r.has_close(),
        "must carry Connection: close: {} (request {:?})",
        r.describe(),
        lossy(req)
    );
    assert_date_and_length(&r, false);
    assert!(
        c.is_closed(CLOSE_WAIT),
        "connection must close after {status} to {:?}",
        lossy(req)
    );
    r
}

fn put_value(node: &TestNode, key: &str, value: &[u8]) {
    let r = node.api_client().put(&format!("/v1/cache/{key}"), value);
    assert_eq!(r.status, 200, "{}", r.describe());
}

fn get_status(node: &TestNode, key: &str) -> u16 {
    node.api_client().get(&format!("/v1/cache/{key}")).status
}

#[test]
fn keep_alive_is_default_in_http11() {
    let n = node();
    let mut c = Conn::open(n.api());
    for _ in 0..3 {
        let r = c.request("GET", "/healthz", &[], None);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok");
        assert!(!r.has_close(), "{}", r.describe());
    }
}

#[test]
fn http10_closes_after_response() {
    let n = node();
    let mut c = Conn::open(n.api());
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"ok");
    assert!(
        r.has_close(),
        "a response before closing carries Connection: close: {}",
        r.describe()
    );
    assert!(c.is_closed(CLOSE_WAIT));
}

#[test]
fn http10_keep_alive_is_kept_and_echoed() {
    let n = node();
    let mut c = Conn::open(n.api());
    for _ in 0..2 {
        c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"ok");
        assert!(r.connection_has("keep-alive"), "{}", r.describe());
        assert!(!r.has_close());
    }
}

#[test]
fn pipelined_16_gets_answered_in_order() {
    let n = node();
    for i in 0..16 {
        put_value(
            &n,
            &format!("p-{i}"),
            format!("value-{i}-{}", "x".repeat(i * 7)).as_bytes(),
        );
    }
    let mut req = Vec::new();
    for i in 0..16 {
        req.extend(build_request("GET", &format!("/v1/cache/p-{i}"), &[], None));
    }
    let mut c = Conn::open(n.api());
    c.send(&req);
    for i in 0..16 {
        let r = c.read_response();
        assert_eq!(r.status, 200, "response {i}: {}", r.describe());
        assert_eq!(
            r.text(),
            format!("value-{i}-{}", "x".repeat(i * 7)),
            "response {i} out of order"
        );
    }
    assert!(c.buf.is_empty(), "no extra bytes");
}

#[test]
fn pipelined_put_then_get() {
    let n = node();
    let mut req = build_request("PUT", "/v1/cache/pp", &[], Some(b"abc"));
    req.extend(build_request("GET", "/v1/cache/pp", &[], None));
    req.extend(build_request("DELETE", "/v1/cache/pp", &[], None));
    req.extend(build_request("GET", "/v1/cache/pp", &[], None));
    let mut c = Conn::open(n.api());
    c.send(&req);
    let put = c.read_response();
    assert_eq!(put.status, 200, "{}", put.describe());
    assert_eq!(put.json()["bytes"], 3);
    let get = c.read_response();
    assert_eq!(
        (get.status, get.body.as_slice()),
        (200, &b"abc"[..]),
        "{}",
        get.describe()
    );
    assert_eq!(c.read_response().status, 200);
    assert_error(&c.read_response(), 404, "NOT_FOUND");
}

/// Sum over cores of a per-core counter on the management `/metrics`.
fn counter_sum(n: &TestNode, name: &str) -> u64 {
    let text = n.mgmt_client().get("/metrics").text();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Keys `prefix-<i>` until `n` of them belong to each of two cores.
fn keys_on_both_cores(prefix: &str, n: usize) -> Vec<String> {
    use hypercache::base::hash::xxhash64;
    let mut per = [0usize; 2];
    let mut keys = Vec::new();
    for i in 0.. {
        if per.iter().all(|&c| c >= n) {
            break;
        }
        let k = format!("{prefix}-{i}");
        let core = hypercache::runtime::shard_for(xxhash64(k.as_bytes(), 0), 2);
        if per[core] < n {
            per[core] += 1;
            keys.push(k);
        }
    }
    keys
}

/// Two data cores: a pipeline of GETs is answered in order with the right values (hits and a
/// miss), the keys of the other core cost one mesh message for the whole pipeline instead of one
/// per request, and a write inside a pipeline is seen by the GETs after it (the read-ahead stops
/// at the write).
#[test]
fn pipelined_gets_on_two_cores_share_one_hop_and_see_earlier_writes() {
    let n = TestNode::start(2, &[]);
    let keys = keys_on_both_cores("pl", 12);
    for k in &keys {
        put_value(&n, k, format!("v-{k}").as_bytes());
    }
    let mut c = Conn::open(n.api());
    // A connection reads ahead once one of its GETs has been admitted.
    let r = c.request("GET", &format!("/v1/cache/{}", keys[0]), &[], None);
    assert_eq!(r.status, 200, "{}", r.describe());
    let before = counter_sum(&n, "hypercache_cross_core_messages_total");
    let mut req = Vec::new();
    for k in &keys {
        req.extend(build_request("GET", &format!("/v1/cache/{k}"), &[], None));
    }
    req.extend(build_request("GET", "/v1/cache/pl-missing", &[], None));
    c.send(&req);
    for k in &keys {
        let r = c.read_response();
        assert_eq!(r.status, 200, "{k}: {}", r.describe());
        assert_eq!(
            r.text(),
            format!("v-{k}"),
            "{k}: out of order or wrong value"
        );
    }
    assert_error(&c.read_response(), 404, "NOT_FOUND");
    let hops = counter_sum(&n, "hypercache_cross_core_messages_total") - before;
    // 12 of the 24 keys live on the core that did not accept the connection: one message
    // carries them all (a second read of a split segment may add one more).
    assert!(
        (1..=2).contains(&hops),
        "{hops} cross-core messages for one pipeline of 12 keys of the other core"
    );

    // Writes inside a pipeline: every GET after a PUT or DELETE sees it, on both cores.
    let mut req = Vec::new();
    for k in &keys[..6] {
        req.extend(build_request("GET", &format!("/v1/cache/{k}"), &[], None));
        req.extend(build_request(
            "PUT",
            &format!("/v1/cache/{k}"),
            &[],
            Some(b"new"),
        ));
        req.extend(build_request("GET", &format!("/v1/cache/{k}"), &[], None));
        req.extend(build_request(
            "DELETE",
            &format!("/v1/cache/{k}"),
            &[],
            None,
        ));
        req.extend(build_request("GET", &format!("/v1/cache/{k}"), &[], None));
    }
    c.send(&req);
    for k in &keys[..6] {
        let r = c.read_response();
        assert_eq!(
            (r.status, r.text()),
            (200, format!("v-{k}")),
            "{k}: before the write"
        );
        assert_eq!(c.read_response().status, 200, "{k}: PUT");
        let r = c.read_response();
        assert_eq!(
            (r.status, r.text()),
            (200, "new".to_string()),
            "{k}: after the PUT"
        );
        assert_eq!(c.read_response().status, 200, "{k}: DELETE");
        assert_error(&c.read_response(), 404, "NOT_FOUND");
    }
    assert!(c.buf.is_empty(), "no extra bytes");
}

/// With a token required, a pipeline of GETs without a credential is refused request by request
/// and makes the store do nothing (no lookup crosses the mesh); once a GET with the token has
/// passed on the connection, the next pipeline is looked up one message per core.
#[test]
fn unauthenticated_pipelines_are_not_read_ahead() {
    let n = TestNode::start(2, &[("HYPERCACHE_AUTH_TOKEN", "t0k")]);
    let keys = keys_on_both_cores("ua", 8);
    let auth = [("Authorization", "Bearer t0k")];
    let client = Client::new(n.api(), Some("t0k"));
    for k in &keys {
        let r = client.put(&format!("/v1/cache/{k}"), b"v");
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    let pipeline = |headers: &[(&str, &str)]| {
        let mut req = Vec::new();
        for k in &keys {
            req.extend(build_request(
                "GET",
                &format!("/v1/cache/{k}"),
                headers,
                None,
            ));
        }
        req
    };
    let mut c = Conn::open(n.api());
    let before = counter_sum(&n, "hypercache_cross_core_messages_total");
    c.send(&pipeline(&[]));
    for _ in &keys {
        assert_error(&c.read_response(), 401, "UNAUTHORIZED");
    }
    assert_eq!(
        counter_sum(&n, "hypercache_cross_core_messages_total") - before,
        0,
        "refused requests made the store look keys up"
    );
    let r = c.request("GET", &format!("/v1/cache/{}", keys[0]), &auth, None);
    assert_eq!(r.status, 200, "{}", r.describe());
    let before = counter_sum(&n, "hypercache_cross_core_messages_total");
    c.send(&pipeline(&auth));
    for k in &keys {
        let r = c.read_response();
        assert_eq!((r.status, r.text()), (200, "v".to_string()), "{k}");
    }
    let hops = counter_sum(&n, "hypercache_cross_core_messages_total") - before;
    assert!(
        (1..=2).contains(&hops),
        "{hops} messages for 8 keys of the other core"
    );
}

/// Open client connections per core, from the management `/metrics`.
fn client_connections(n: &TestNode, cores: usize) -> Vec<u64> {
    let text = n.mgmt_client().get("/metrics").text();
    (0..cores)
        .map(|c| {
            let prefix = format!("hypercache_connections{{listener=\"client\",core=\"{c}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str())?.parse().ok())
                .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
        })
        .collect()
}

/// Two data cores: 40 connections end up 20/20 whichever core the kernel's SO_REUSEPORT hash
/// picked for each (left to the hash, an even split happens one time in eight), every one of them
/// serves requests, and closing them brings both counts back to zero.
#[test]
fn connections_are_spread_evenly_over_cores() {
    let n = TestNode::start(2, &[]);
    put_value(&n, "spread", b"here");
    let mut conns = Vec::new();
    for i in 0..40 {
        let mut c = Conn::open(n.api());
        let r = c.request("GET", "/v1/cache/spread", &[], None);
        assert_eq!(
            (r.status, r.text()),
            (200, "here".to_string()),
            "connection {i}"
        );
        conns.push(c);
    }
    let per = client_connections(&n, 2);
    assert_eq!(per.iter().sum::<u64>(), 40, "{per:?}");
    assert!(per[0].abs_diff(per[1]) <= 1, "40 connections split {per:?}");
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c.request("GET", "/v1/cache/spread", &[], None);
        assert_eq!(r.status, 200, "connection {i}, second request");
    }
    drop(conns);
    assert!(
        poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
            client_connections(&n, 2) == [0, 0]
        }),
        "{:?} still open after every client closed",
        client_connections(&n, 2)
    );
}

#[test]
fn half_close_after_pipelined_requests_still_answered() {
    let n = node();
    put_value(&n, "hc", b"half");
    let mut req = build_request("GET", "/healthz", &[], None);
    req.extend(build_request("GET", "/v1/cache/hc", &[], None));
    req.extend(build_request("GET", "/nope", &[], None));
    let mut c = Conn::open(n.api());
    c.send(&req);
    c.shutdown_write();
    let bytes = c.read_to_end(CLOSE_WAIT);
    assert!(
        c.eof,
        "server must close after answering a half-closed connection"
    );
    let rs = parse_pipelined(&bytes);
    let got: Vec<(u16, String)> = rs.iter().map(|r| (r.status, r.text())).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].0, got[0].1.as_str()), (200, "ok"));
    assert_eq!((got[1].0, got[1].1.as_str()), (200, "half"));
    assert_error(&rs[2], 404, "NOT_FOUND");
}

#[test]
fn connection_close_is_honoured_and_carried() {
    let n = node();
    let mut c = Conn::open(n.api());
    // The second pipelined request comes after `Connection: close` and must not be answered.
    let mut req = build_request("GET", "/healthz", &[("Connection", "close")], None);
    req.extend(build_request("GET", "/healthz", &[], None));
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert!(r.has_close(), "{}", r.describe());
    assert!(
        c.is_closed(CLOSE_WAIT),
        "no response after Connection: close"
    );
}

#[test]
fn date_and_content_length_on_every_response() {
    let n = node();
    let cl = n.api_client();
    let cases: Vec<(&str, &str, Option<&[u8]>)> = vec![
        ("GET", "/healthz", None),
        ("HEAD", "/healthz", None),
        ("GET", "/nope", None),
        ("POST", "/healthz", None),
        ("PUT", "/v1/cache/dl", Some(b"v")),
        ("GET", "/v1/cache/dl", None),
        ("HEAD", "/v1/cache/dl", None),
        ("GET", "/v1/cache/%zz", None),
        ("POST", "/v1/cache/batch/get", Some(b"{\"keys\":[\"dl\"]}")),
        ("POST", "/v1/cache/batch/get", Some(b"not json")),
        ("DELETE", "/v1/cache/dl", None),
        ("GET", "/v1/cache/dl", None),
        ("GET", "/v1/openapi.yaml", None),
        ("GET", "/v1/owners/dl", None),
    ];
    for (m, p, b) in cases {
        let r = cl.request(m, p, &[], b);
        assert_date_and_length(&r, m == "HEAD");
        if r.status >= 400 && m != "HEAD" {
            let code = r.json()["code"].as_str().map(str::to_string);
            assert!(
                code.is_some(),
                "{m} {p}: 4xx body must be an error JSON: {}",
                r.describe()
            );
            assert_error(&r, r.status, &code.unwrap());
        }
    }
}

#[test]
fn chunked_put_is_stored_byte_exact() {
    let n = node();
    let value: Vec<u8> = (0..=255u8).collect();
    let mut req =
        b"PUT /v1/cache/chunky HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n".to_vec();
    req.extend(b"10;ext=1\r\n");
    req.extend(&value[..16]);
    req.extend(b"\r\nF0;name=\"quoted value\"\r\n");
    req.extend(&value[16..]);
    req.extend(b"\r\n0;last\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n");
    let mut c = Conn::open(n.api());
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["bytes"], 256);
    // Same connection is still usable, and the value is exact.
    let g = c.request("GET", "/v1/cache/chunky", &[], None);
    assert_eq!(g.status, 200);
    assert_eq!(g.body, value);
}

#[test]
fn content_length_and_transfer_encoding_is_400_and_close() {
    let n = node();
    expect_error_close(
        &n,
        b"PUT /v1/cache/smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
    assert_eq!(get_status(&n, "smuggle"), 404, "nothing stored");
}

#[test]
fn duplicate_equal_content_length_is_400() {
    let n = node();
    expect_error_close(
        &n,
        b"PUT /v1/cache/dup HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
    assert_eq!(get_status(&n, "dup"), 404);
}

fn bad_content_length(values: &[&str]) {
    let n = node();
    for v in values {
        let req = format!("PUT /v1/cache/badcl HTTP/1.1\r\nHost: t\r\nContent-Length: {v}\r\n\r\n");
        expect_error_close(&n, req.as_bytes(), 400, "BAD_REQUEST");
    }
    assert_eq!(get_status(&n, "badcl"), 404);
}

#[test]
fn content_length_non_digits_is_400() {
    bad_content_length(&["12a", "0x10", "+3", "3, 3", "1.0", "three"]);
}

#[test]
fn content_length_of_20_digits_is_400() {
    bad_content_length(&["00000000000000000001", "99999999999999999999"]);
}

#[test]
fn content_length_negative_is_400() {
    bad_content_length(&["-1", "-0"]);
}

#[test]
fn content_length_of_19_digits_is_accepted() {
    let n = node();
    let mut c = Conn::open(n.api());
    c.send(b"PUT /v1/cache/cl19 HTTP/1.1\r\nHost: t\r\nContent-Length: 0000000000000000005\r\n\r\nhello");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["bytes"], 5);
}

fn bad_transfer_encoding(te_lines: &[&str]) {
    let n = node();
    for te in te_lines {
        let req = format!("PUT /v1/cache/badte HTTP/1.1\r\nHost: t\r\n{te}\r\n\r\n");
        expect_error_close(&n, req.as_bytes(), 400, "BAD_REQUEST");
    }
    assert_eq!(get_status(&n, "badte"), 404);
}

#[test]
fn transfer_encoding_gzip_is_400() {
    bad_transfer_encoding(&[
        "Transfer-Encoding: gzip",
        "Transfer-Encoding: gzip, chunked",
    ]);
}

#[test]
fn transfer_encoding_chunked_chunked_is_400() {
    bad_transfer_encoding(&[
        "Transfer-Encoding: chunked, chunked",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    ]);
}

#[test]
fn transfer_encoding_identity_is_400() {
    bad_transfer_encoding(&["Transfer-Encoding: identity"]);
}

#[test]
fn transfer_encoding_in_http10_is_400() {
    let n = node();
    expect_error_close(
        &n,
        b"PUT /v1/cache/te10 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
    assert_eq!(get_status(&n, "te10"), 404);
}

#[test]
fn malformed_chunk_size_is_400() {
    let n = node();
    for size_line in ["zz", "", "-5", "+5", "5 5"] {
        let req = format!("PUT /v1/cache/badchunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{size_line}\r\nhello\r\n0\r\n\r\n");
        expect_error_close(&n, req.as_bytes(), 400, "BAD_REQUEST");
    }
    assert_eq!(get_status(&n, "badchunk"), 404);
}

#[test]
fn malformed_chunk_terminator_is_400() {
    let n = node();
    expect_error_close(
        &n,
        b"PUT /v1/cache/badterm HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
    assert_eq!(get_status(&n, "badterm"), 404);
}

#[test]
fn content_encoding_gzip_is_400_identity_is_fine() {
    let n = node();
    expect_error_close(
        &n,
        b"PUT /v1/cache/ce HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
    assert_eq!(get_status(&n, "ce"), 404);
    let mut c = Conn::open(n.api());
    let r = c.request(
        "PUT",
        "/v1/cache/ce",
        &[("Content-Encoding", "identity")],
        Some(b"abcd"),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn head_over_8k_is_431() {
    let n = node();
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8300)
    );
    let r = expect_error_close(&n, req.as_bytes(), 431, "HEADERS_TOO_LARGE");
    assert_eq!(
        assert_error(&r, 431, "HEADERS_TOO_LARGE"),
        "request header fields too large"
    );
    // A long URL counts too.
    let req = format!(
        "GET /v1/cache/{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "k".repeat(8300)
    );
    expect_error_close(&n, req.as_bytes(), 431, "HEADERS_TOO_LARGE");
    // Just under the limit is fine.
    let mut c = Conn::open(n.api());
    let r = c.request("GET", "/healthz", &[("X-Big", &"a".repeat(7900))], None);
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn sixty_five_header_fields_is_431_sixty_four_is_fine() {
    let n = node();
    let mut req = String::from("GET /healthz HTTP/1.1\r\nHost: t\r\n");
    for i in 0..63 {
        req.push_str(&format!("X-H-{i}: v\r\n"));
    }
    let mut c = Conn::open(n.api());
    c.send(format!("{req}\r\n").as_bytes());
    let r = c.read_response();
    assert_eq!(r.status, 200, "64 fields are allowed: {}", r.describe());
    req.push_str("X-H-63: v\r\n\r\n");
    expect_error_close(&n, req.as_bytes(), 431, "HEADERS_TOO_LARGE");
}

#[test]
fn missing_host_in_http11_is_400() {
    let n = node();
    expect_error_close(&n, b"GET /healthz HTTP/1.1\r\n\r\n", 400, "BAD_REQUEST");
}

#[test]
fn duplicate_host_is_400() {
    let n = node();
    expect_error_close(
        &n,
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
}

#[test]
fn bad_method_token_is_400() {
    let n = node();
    expect_error_close(
        &n,
        b"GE(T /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
    expect_error_close(
        &n,
        b"G\x01T /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
}

#[test]
fn unknown_http_version_is_400() {
    let n = node();
    for v in ["HTTP/1.2", "HTTX/1.1", "HTTP/1.1x"] {
        let req = format!("GET /healthz {v}\r\nHost: t\r\n\r\n");
        expect_error_close(&n, req.as_bytes(), 400, "BAD_REQUEST");
    }
}

#[test]
fn whitespace_before_colon_is_400() {
    let n = node();
    expect_error_close(
        &n,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Foo : bar\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
}

#[test]
fn obsolete_line_folding_is_400() {
    let n = node();
    expect_error_close(
        &n,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Foo: bar\r\n baz\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
}

#[test]
fn control_characters_are_400() {
    let n = node();
    expect_error_close(
        &n,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Foo: a\x01b\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
    expect_error_close(
        &n,
        b"GET /v1/cache/a\x01b HTTP/1.1\r\nHost: t\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
}

#[test]
fn absolute_form_target_uses_path_and_query() {
    let n = node();
    let mut c = Conn::open(n.api());
    c.send(b"GET http://example.com/healthz HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let r = c.read_response();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "{}",
        r.describe()
    );
    c.send(b"PUT http://example.com:8080/v1/cache/absk?ttl=5m HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabs");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["key"], "absk");
    assert_eq!(
        r.json()["ttl_ms"],
        300000,
        "the query of an absolute-form target is used"
    );
    let g = c.request("GET", "/v1/cache/absk", &[], None);
    assert_eq!(g.body, b"abs");
}

#[test]
fn asterisk_or_garbage_target_is_400() {
    let n = node();
    for target in ["*", "healthz", "?x=1", "ftp//x"] {
        let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        expect_error_close(&n, req.as_bytes(), 400, "BAD_REQUEST");
    }
}

#[test]
fn declared_length_over_max_body_is_413_without_reading_the_body() {
    let n = node();
    // Headers only: the answer must not wait for the 1025 announced bytes.
    let t = Instant::now();
    let r = expect_error_close(
        &n,
        b"PUT /v1/cache/big HTTP/1.1\r\nHost: t\r\nContent-Length: 1025\r\n\r\n",
        413,
        "TOO_LARGE",
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(assert_error(&r, 413, "TOO_LARGE"), "request body too large");
    expect_error_close(
        &n,
        b"POST /v1/cache/batch/put HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n",
        413,
        "TOO_LARGE",
    );
    assert_eq!(get_status(&n, "big"), 404);
    // Exactly MAX_BODY is accepted.
    let r = n.api_client().put("/v1/cache/big", &[7u8; 1024]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["bytes"], 1024);
}

#[test]
fn chunked_body_growing_past_max_body_is_413() {
    let n = node();
    let mut req =
        b"PUT /v1/cache/bigchunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..2 {
        req.extend(b"258\r\n"); // 600 bytes
        req.extend([b'z'; 600]);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    expect_error_close(&n, &req, 413, "TOO_LARGE");
    assert_eq!(get_status(&n, "bigchunk"), 404, "nothing stored");
    // Chunked, exactly MAX_BODY in total: accepted.
    let mut req =
        b"PUT /v1/cache/bigchunk HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..2 {
        req.extend(b"200\r\n");
        req.extend([b'z'; 512]);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    let mut c = Conn::open(n.api());
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["bytes"], 1024);
}

#[test]
fn expect_100_continue_valid_gets_interim_then_200() {
    let n = node();
    let mut c = Conn::open(n.api());
    c.send(b"PUT /v1/cache/exp100 HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert!(
        c.read_until(Instant::now() + Duration::from_secs(5), |b| find(
            b,
            b"\r\n\r\n"
        )
        .is_some()),
        "no 100 Continue before the body was sent; got {:?}",
        lossy(&c.buf)
    );
    assert!(
        c.buf.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "got {:?}",
        lossy(&c.buf)
    );
    let interim = c.read_response();
    assert_eq!(interim.status, 100);
    c.send(b"hello");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["bytes"], 5);
    let g = c.request("GET", "/v1/cache/exp100", &[], None);
    assert_eq!(g.body, b"hello");
}

#[test]
fn expect_100_continue_client_not_waiting_is_served() {
    let n = node();
    let mut c = Conn::open(n.api());
    c.send(b"PUT /v1/cache/expnw HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello");
    let mut r = c.read_response();
    if r.status == 100 {
        r = c.read_response();
    }
    assert_eq!(r.status, 200, "{}", r.describe());
    // Other Expect values are ignored.
    let r = c.request(
        "PUT",
        "/v1/cache/expnw2",
        &[("Expect", "something-else")],
        Some(b"x"),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
}

fn expect_refused(node: &TestNode, req: &[u8], status: u16, code: &str) {
    let mut c = Conn::open(node.api());
    c.send(req);
    let r = c
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("no final response without the body: {e}"));
    assert_ne!(
        r.status,
        100,
        "no 100 Continue when a pre-body check fails ({:?})",
        lossy(req)
    );
    assert_error(&r, status, code);
    assert!(r.has_close(), "{}", r.describe());
    assert!(
        c.is_closed(CLOSE_WAIT),
        "closes without waiting for the body"
    );
}

#[test]
fn expect_100_continue_with_bad_key_or_ttl_is_refused() {
    let n = node();
    expect_refused(&n, b"PUT /v1/cache/%zz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400, "BAD_REQUEST");
    expect_refused(&n, b"PUT /v1/cache/k?ttl=abc HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", 400, "BAD_REQUEST");
    expect_refused(
        &n,
        b"PUT /nope HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        404,
        "NOT_FOUND",
    );
    expect_refused(
        &n,
        b"POST /healthz HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        405,
        "METHOD_NOT_ALLOWED",
    );
}

#[test]
fn expect_100_continue_over_size_is_refused() {
    let n = node();
    expect_refused(&n, b"PUT /v1/cache/k HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n", 413, "TOO_LARGE");
}

#[test]
fn expect_100_continue_without_auth_is_refused() {
    let n = TestNode::start(1, &[("HYPERCACHE_AUTH_TOKEN", "framing-token")]);
    expect_refused(
        &n,
        b"PUT /v1/cache/k HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
        401,
        "UNAUTHORIZED",
    );
}

#[test]
fn body_on_get_is_read_and_ignored() {
    let n = node();
    let mut c = Conn::open(n.api());
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    for _ in 0..2 {
        let r = c.read_response();
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "{}",
            r.describe()
        );
    }
    put_value(&n, "delbody", b"x");
    let r = c.request("DELETE", "/v1/cache/delbody", &[], Some(b"ignored body"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = c.request("GET", "/healthz", &[], None);
    assert_eq!(r.status, 200);
}

#[test]
fn binary_garbage_gets_400_not_a_dropped_connection() {
    let n = node();
    expect_error_close(
        &n,
        b"\x00\x01\x02\xff\xfe\x16\x03\x01 garbage\r\n\r\n",
        400,
        "BAD_REQUEST",
    );
}

#[test]
fn unknown_path_is_404_json_and_keeps_the_connection() {
    let n = node();
    let mut c = Conn::open(n.api());
    for p in [
        "/nope",
        "/health",
        "/V1/cache/x",
        "/v1/%63ache/x",
        "/v1/cache/a/b",
        "/v1/owners/k/",
    ] {
        let r = c.request("GET", p, &[], None);
        assert_eq!(assert_error(&r, 404, "NOT_FOUND"), "not found", "{p}");
        assert!(!r.has_close());
    }
}

#[test]
fn wrong_method_is_405_with_allow() {
    let n = node();
    let cl = n.api_client();
    let kv = "GET, HEAD, PUT, DELETE";
    for (m, p, allow) in [
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/v1/openapi.yaml", "GET, HEAD"),
        ("PATCH", "/v1/cache/k", kv),
        ("POST", "/v1/cache/k", kv),
        ("POST", "/v1/cache/keys", kv),
        ("GET", "/v1/cache/batch/get", "POST"),
        ("PUT", "/v1/cache/batch/put", "POST"),
        ("DELETE", "/v1/cache/batch/delete", "POST"),
        ("POST", "/v1/owners/k", "GET, HEAD"),
    ] {
        let r = cl.request(m, p, &[], None);
        assert_eq!(
            assert_error(&r, 405, "METHOD_NOT_ALLOWED"),
            "method not allowed",
            "{m} {p}"
        );
        assert_eq!(r.header("allow"), Some(allow), "{m} {p}: {}", r.describe());
    }
}

#[test]
fn head_has_no_body_but_the_get_content_length() {
    let n = node();
    let value = b"0123456789012345678901234567890123456";
    put_value(&n, "headk", value);
    let mut c = Conn::open(n.api());
    let mut req = build_request("HEAD", "/v1/cache/headk", &[], None);
    req.extend(build_request("HEAD", "/healthz", &[], None));
    req.extend(build_request("HEAD", "/nope", &[], None));
    req.extend(build_request("GET", "/v1/cache/headk", &[], None));
    c.send(&req);
    let h = c.read_head_response();
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("37"));
    assert_date_and_length(&h, true);
    let h = c.read_head_response();
    assert_eq!((h.status, h.header("content-length")), (200, Some("2")));
    let h = c.read_head_response();
    assert_eq!(h.status, 404);
    // If any HEAD response had carried a body, this parse would see it instead of the GET.
    let g = c.read_response();
    assert_eq!(
        (g.status, g.body.as_slice()),
        (200, &value[..]),
        "{}",
        g.describe()
    );
    assert!(c.buf.is_empty());
}

#[test]
fn header_names_are_case_insensitive() {
    let n = node();
    let mut c = Conn::open(n.api());
    c.send(b"PUT /v1/cache/case HTTP/1.1\r\nhOST: t\r\ncOnTeNt-LeNgTh: 3\r\n\r\nabc");
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["bytes"], 3);
}
