//! The cross-core hop: what a GET for a key owned by another data core pays on top of a local one.
//!
//! Two glommio executors pinned to CPU 0 and CPU 1 (`io_memory(64 KiB)`, as the server's), joined by
//! a pair of `shared_channel::new_bounded` channels. Core A sends a request carrying a 16-byte key;
//! core B answers with a freshly allocated 100-byte value (the server's reply owns a copy of the
//! value), which A frees. Measured:
//!
//! * **round trip, 1 in flight**: latency of one hop there and back (the peer parks between
//!   messages, so every message pays the cross-thread wake-up);
//! * **round trips, 64 in flight**: throughput with a window of 64 outstanding requests, as 64
//!   keep-alive connections spread over two cores would produce;
//! * **local baseline**: the same request/reply between two tasks of one executor over
//!   `local_channel`, i.e. what the hop costs beyond the extra task switches.
//!
//!   cargo bench --bench cross_core      # ~5 s; needs io_uring and 2 CPUs
//!
//! NOTE glommio 0.9's `connect()` has no cross-thread wake-up: while the channels connect, a 1 ms
//! timer ticker keeps each executor polling, or the connect may never complete.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::zip;
use glommio::channels::{local_channel, shared_channel};
use glommio::{LocalExecutorBuilder, Placement};

struct Req {
    id: u64,
    key: [u8; 16],
}
struct Rep {
    id: u64,
    value: Vec<u8>,
}

const ROUND_TRIPS_1: u64 = 100_000;
const ROUND_TRIPS_W: u64 = 1_000_000;
const WINDOW: u64 = 64;

fn answer(r: Req) -> Rep {
    let mut value = Vec::with_capacity(100);
    value.extend_from_slice(&r.key);
    value.resize(100, b'x');
    Rep { id: r.id, value }
}

/// Keeps the executor polling every millisecond until `done` reaches `target` (see the NOTE).
fn ticker(done: Arc<AtomicUsize>, target: usize) {
    glommio::spawn_local(async move {
        while done.load(Ordering::Acquire) < target {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
    })
    .detach();
}

fn cross_core(window: u64, n: u64) -> Duration {
    let (tx_ab, rx_ab) = shared_channel::new_bounded::<Req>(1024);
    let (tx_ba, rx_ba) = shared_channel::new_bounded::<Rep>(1024);
    let connected = Arc::new(AtomicUsize::new(0));
    let c2 = connected.clone();
    let b = LocalExecutorBuilder::new(Placement::Fixed(1))
        .name("bench-b")
        .io_memory(64 << 10)
        .spawn(move || async move {
            ticker(c2.clone(), 4);
            let (rx, tx) = zip(rx_ab.connect(), tx_ba.connect()).await;
            c2.fetch_add(2, Ordering::AcqRel);
            while let Some(r) = rx.recv().await {
                if tx.send(answer(r)).await.is_err() {
                    break;
                }
            }
        })
        .expect("executor B");
    let a = LocalExecutorBuilder::new(Placement::Fixed(0))
        .name("bench-a")
        .io_memory(64 << 10)
        .spawn(move || async move {
            ticker(connected.clone(), 4);
            let (tx, rx) = zip(tx_ab.connect(), rx_ba.connect()).await;
            connected.fetch_add(2, Ordering::AcqRel);
            while connected.load(Ordering::Acquire) < 4 {
                glommio::timer::sleep(Duration::from_millis(1)).await;
            }
            // Warm-up, then the timed run; `sent - received` never exceeds `window`.
            let mut elapsed = Duration::ZERO;
            for (round, count) in [(0, n / 10), (1, n)] {
                let t = Instant::now();
                let (mut sent, mut received) = (0u64, 0u64);
                while received < count {
                    while sent < count && sent - received < window {
                        let key = *b"key-000000000000";
                        assert!(tx.send(Req { id: sent, key }).await.is_ok(), "send");
                        sent += 1;
                    }
                    let rep = rx.recv().await.expect("reply");
                    assert_eq!(rep.value.len(), 100);
                    std::hint::black_box(rep.id);
                    received += 1;
                }
                if round == 1 {
                    elapsed = t.elapsed();
                }
            }
            drop(tx);
            elapsed
        })
        .expect("executor A");
    let elapsed = a.join().expect("join A");
    b.join().expect("join B");
    elapsed
}

/// Same request/reply between two tasks of one executor (pinned to CPU 1).
fn local(window: u64, n: u64) -> Duration {
    LocalExecutorBuilder::new(Placement::Fixed(1))
        .io_memory(64 << 10)
        .spawn(move || async move {
            let (tx_ab, rx_ab) = local_channel::new_bounded::<Req>(1024);
            let (tx_ba, rx_ba) = local_channel::new_bounded::<Rep>(1024);
            let stop = Rc::new(Cell::new(false));
            let s2 = stop.clone();
            let server = glommio::spawn_local(async move {
                while let Some(r) = rx_ab.recv().await {
                    if tx_ba.send(answer(r)).await.is_err() || s2.get() {
                        break;
                    }
                }
            });
            let mut elapsed = Duration::ZERO;
            for (round, count) in [(0, n / 10), (1, n)] {
                let t = Instant::now();
                let (mut sent, mut received) = (0u64, 0u64);
                while received < count {
                    while sent < count && sent - received < window {
                        let key = *b"key-000000000000";
                        assert!(tx_ab.send(Req { id: sent, key }).await.is_ok(), "send");
                        sent += 1;
                    }
                    let rep = rx_ba.recv().await.expect("reply");
                    std::hint::black_box(rep.id);
                    received += 1;
                }
                if round == 1 {
                    elapsed = t.elapsed();
                }
            }
            stop.set(true);
            drop(tx_ab);
            server.await;
            elapsed
        })
        .expect("executor")
        .join()
        .expect("join")
}

fn print(name: &str, d: Duration, n: u64) {
    let ns = d.as_nanos() as f64 / n as f64;
    println!("{:<44} {:>9.1} ns/op  ({:>5.2} M/s)", name, ns, 1e3 / ns);
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("cross_core: needs 2 CPUs, found {cpus}; skipped");
        return;
    }
    print(
        "local round trip, 1 in flight",
        local(1, ROUND_TRIPS_1),
        ROUND_TRIPS_1,
    );
    print(
        "cross-core round trip, 1 in flight",
        cross_core(1, ROUND_TRIPS_1),
        ROUND_TRIPS_1,
    );
    print(
        "local round trips, 64 in flight (per op)",
        local(WINDOW, ROUND_TRIPS_W),
        ROUND_TRIPS_W,
    );
    print(
        "cross-core round trips, 64 in flight (per op)",
        cross_core(WINDOW, ROUND_TRIPS_W),
        ROUND_TRIPS_W,
    );
}
