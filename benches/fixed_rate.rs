//! Fixed-rate (open-loop) HTTP load generator with coordinated-omission correction, used by
//! `scripts/bench/compare.sh` for the "latency at 50 % of peak" row. It is a bench program so it
//! builds with the project and needs no new dependency (libc epoll + hdrhistogram, both already
//! dependencies).
//!
//!   cargo bench --bench fixed_rate -- --addr 127.0.0.1:8080 --rate 50000 --duration 10
//!
//! Without `--addr` it prints a note and exits 0, so a plain `cargo bench` still passes.
//!
//! Model (as wrk2): `--conns` keep-alive connections, each with its own schedule of
//! `rate / conns` requests per second (random phase per connection), at most one request in flight
//! per connection (no pipelining). A request is *intended* at its scheduled time; if the previous
//! response on that connection is late, the next request leaves late, and its latency is still
//! measured from the intended time, so a stall counts for every request it delayed.
//! Requests: `--put-pct` % PUT of `--value-size` bytes, the rest GET, on `/v1/cache/key-<n>` with n
//! uniform over `--keys` (run scripts/wrk/preload.sh first). The event loop busy-polls epoll on
//! one thread: pin it to its own CPU (taskset) and it has ~1 µs resolution.
//!
//! Output, one line (latencies in µs):
//!   FIXED target_rps=.. rps=.. requests=.. non2xx=.. errors=.. p50=.. p90=.. p99=.. p999=.. max=.. behind_ms=..
//! `behind_ms` is the largest delay between a request's intended and actual send time: a slow
//! response on that connection, or the generator itself falling behind (then its CPU is the limit).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

struct Conn {
    s: TcpStream,
    busy: bool,
    next_at: Instant,
    intended: Instant,
    buf: Vec<u8>,
}

struct Args {
    addr: Option<String>,
    rate: f64,
    duration: f64,
    conns: usize,
    keys: u64,
    put_pct: u64,
    value_size: usize,
}

fn args() -> Args {
    let mut a = Args {
        addr: None,
        rate: 10_000.0,
        duration: 10.0,
        conns: 64,
        keys: 100_000,
        put_pct: 10,
        value_size: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = Some(v()),
            "--rate" => a.rate = v().parse().expect("--rate"),
            "--duration" => a.duration = v().parse().expect("--duration"),
            "--conns" => a.conns = v().parse().expect("--conns"),
            "--keys" => a.keys = v().parse().expect("--keys"),
            "--put-pct" => a.put_pct = v().parse().expect("--put-pct"),
            "--value-size" => a.value_size = v().parse().expect("--value-size"),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn find(h: &[u8], needle: &[u8]) -> Option<usize> {
    h.windows(needle.len()).position(|w| w == needle)
}

/// Length of the complete response at the front of `b` and its status, if complete.
fn response(b: &[u8]) -> Option<(usize, u16)> {
    let end = find(b, b"\r\n\r\n")? + 4;
    let head = &b[..end];
    let status = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
    let mut len = 0usize;
    for line in head.split(|&c| c == b'\n') {
        if line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:") {
            len = std::str::from_utf8(&line[15..]).ok()?.trim().parse().ok()?;
        }
    }
    (b.len() >= end + len).then_some((end + len, status))
}

fn main() {
    let a = args();
    let Some(addr) = a.addr.clone() else {
        println!("fixed_rate: load generator for scripts/bench/compare.sh; pass --addr HOST:PORT --rate N (skipped)");
        return;
    };
    let interval = Duration::from_secs_f64(a.conns as f64 / a.rate);
    let body = vec![b'x'; a.value_size];
    let rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d ^ std::process::id() as u64);
    let ep = unsafe { libc::epoll_create1(0) };
    assert!(ep >= 0, "epoll_create1");
    let start = Instant::now() + Duration::from_millis(50);
    let mut conns: Vec<Conn> = (0..a.conns)
        .map(|i| {
            let s = TcpStream::connect(&addr).expect("connect");
            s.set_nodelay(true).unwrap();
            s.set_nonblocking(true).unwrap();
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            let rc = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) };
            assert_eq!(rc, 0, "epoll_ctl");
            // Random phase so the connections' schedules interleave evenly.
            let phase = interval.mul_f64((rng.u64(..1 << 20) as f64) / (1u64 << 20) as f64);
            Conn {
                s,
                busy: false,
                next_at: start + phase,
                intended: start,
                buf: Vec::with_capacity(4096),
            }
        })
        .collect();
    let end = start + Duration::from_secs_f64(a.duration);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let (mut non2xx, mut errors, mut done) = (0u64, 0u64, 0u64);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; a.conns];
    let mut req = Vec::with_capacity(256 + a.value_size);
    let mut rbuf = [0u8; 16384];
    let mut behind = Duration::ZERO;
    while Instant::now() < start {}
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        for c in conns.iter_mut() {
            if !c.busy && c.next_at <= now && c.next_at < end {
                behind = behind.max(now - c.next_at);
                req.clear();
                let key = rng.u64(..a.keys);
                if rng.u64(..100) < a.put_pct {
                    let _ = write!(
                        req,
                        "PUT /v1/cache/key-{key} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    req.extend_from_slice(&body);
                } else {
                    let _ = write!(
                        req,
                        "GET /v1/cache/key-{key} HTTP/1.1\r\nHost: {addr}\r\n\r\n"
                    );
                }
                let mut off = 0;
                while off < req.len() {
                    match c.s.write(&req[off..]) {
                        Ok(n) => off += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("write: {e}"),
                    }
                }
                c.busy = true;
                c.intended = c.next_at;
                c.next_at += interval;
            }
        }
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, 0) };
        if n <= 0 {
            continue;
        }
        let now = Instant::now();
        for ev in &events[..n as usize] {
            let c = &mut conns[ev.u64 as usize];
            loop {
                match c.s.read(&mut rbuf) {
                    Ok(0) => panic!("server closed a connection"),
                    Ok(k) => c.buf.extend_from_slice(&rbuf[..k]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
            if let Some((len, status)) = response(&c.buf) {
                c.buf.drain(..len);
                if c.busy {
                    c.busy = false;
                    let ns = (now - c.intended).as_nanos() as u64;
                    hist.record(ns.max(1)).ok();
                    done += 1;
                    if !(200..300).contains(&status) {
                        non2xx += 1;
                    }
                } else {
                    errors += 1;
                }
            }
        }
    }
    // Responses still outstanding at the end are counted at their current age.
    let now = Instant::now();
    for c in conns.iter().filter(|c| c.busy) {
        hist.record((now - c.intended).as_nanos() as u64).ok();
    }
    let elapsed = (now - start).as_secs_f64();
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "FIXED target_rps={:.0} rps={:.0} requests={} non2xx={} errors={} p50={:.0} p90={:.0} p99={:.0} p999={:.0} max={:.0} behind_ms={:.1}",
        a.rate,
        done as f64 / elapsed,
        done,
        non2xx,
        errors,
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0,
        behind.as_secs_f64() * 1000.0,
    );
}
