//! Micro-benchmarks of the HTTP hot path: request-head parsing (`http::parse::parse_head`) and
//! response-head writing (`http::response::write_head`), the two per-request costs every GET/PUT
//! pays before and after touching the store.
//!
//!   cargo bench --bench http            # prints ns/op per case, ~3 s
//!
//! `harness = false`: a plain program timing loops with `std::time::Instant` (no extra
//! dependencies). Each case runs a warm-up, then the best of 5 timed rounds is reported.

use std::hint::black_box;
use std::time::{Duration, Instant};

use hypercache::http::parse::{parse_head, Parsed};
use hypercache::http::response::{write_head, ConnHeader, Hv};

/// Runs `f` in rounds of `iters` and prints the best round's ns/op (the least disturbed one on a
/// shared machine).
fn bench(name: &str, iters: u64, mut f: impl FnMut(u64)) {
    for i in 0..iters / 10 {
        f(i);
    }
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for i in 0..iters {
            f(i);
        }
        best = best.min(t.elapsed());
    }
    println!(
        "{:<44} {:>9.1} ns/op",
        name,
        best.as_nanos() as f64 / iters as f64
    );
}

fn main() {
    // What wrk sends with scripts/wrk/get.lua and put.lua.
    let get = b"GET /v1/cache/key-12345 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n".to_vec();
    let put = b"PUT /v1/cache/key-12345 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n".to_vec();
    // A curl-like request with a token and an Accept header.
    let auth = b"GET /v1/cache/greeting?ttl=5m HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\nAuthorization: Bearer dev-token\r\n\r\n".to_vec();
    for (name, req) in [
        ("parse_head GET (wrk)", &get),
        ("parse_head PUT 100 B (wrk)", &put),
        ("parse_head GET curl + auth", &auth),
    ] {
        match parse_head(req) {
            Parsed::Complete(_) => {}
            other => panic!("{name}: {other:?}"),
        }
        bench(name, 2_000_000, |_| {
            let p = parse_head(black_box(req));
            black_box(matches!(p, Parsed::Complete(_)));
        });
    }
    // 16 pipelined GETs in one buffer: parse each head in turn, as the connection loop does.
    let mut pipe = Vec::new();
    for _ in 0..16 {
        pipe.extend_from_slice(&get);
    }
    bench(
        "parse_head x16 pipelined GET (per request)",
        200_000,
        |_| {
            let mut at = 0;
            while at < pipe.len() {
                match parse_head(black_box(&pipe[at..])) {
                    Parsed::Complete(h) => at += h.len,
                    _ => unreachable!(),
                }
            }
        },
    );
    // (the line above is per batch of 16; print per request too)
    {
        let iters = 200_000u64;
        let t = Instant::now();
        for _ in 0..iters {
            let mut at = 0;
            while at < pipe.len() {
                match parse_head(black_box(&pipe[at..])) {
                    Parsed::Complete(h) => at += h.len,
                    _ => unreachable!(),
                }
            }
        }
        println!(
            "{:<44} {:>9.1} ns/op",
            "  = per request of the batch",
            t.elapsed().as_nanos() as f64 / (iters * 16) as f64
        );
    }

    // Response heads: a GET hit (200, octets, 100-byte value) and a PUT's JSON reply head.
    let value = [b'x'; 100];
    let mut out = Vec::with_capacity(64 << 10);
    bench("write_head 200 + 100 B body (GET hit)", 2_000_000, |_| {
        out.clear();
        write_head(
            &mut out,
            200,
            Some("application/octet-stream"),
            &[],
            value.len(),
            ConnHeader::Default,
        );
        out.extend_from_slice(&value);
        black_box(&out);
    });
    bench("write_head 200 JSON + 2 extra headers", 2_000_000, |i| {
        out.clear();
        write_head(
            &mut out,
            200,
            Some("application/json; charset=utf-8"),
            &[
                ("X-Hypercache-Version", Hv::U(i)),
                ("X-Hypercache-Node", Hv::S("bench")),
            ],
            96,
            ConnHeader::Default,
        );
        black_box(&out);
    });
    bench("write_head 404 + Connection: close", 2_000_000, |_| {
        out.clear();
        write_head(
            &mut out,
            404,
            Some("application/json; charset=utf-8"),
            &[],
            48,
            ConnHeader::Close,
        );
        black_box(&out);
    });
}
