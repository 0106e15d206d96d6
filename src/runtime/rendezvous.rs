//! Start-up rendezvous between cores without sleeping.
//!
//! While the cores join the mesh and publish their mesh ids, each executor waits for the
//! others. glommio 0.9 wakes a waiting executor from another thread only through paths that
//! have proven racy at start-up: shared-channel connects have no cross-thread wake-up at all,
//! and a start in a few hundred under load stalled for 12–40 s with every executor parked in
//! its io_uring wait and the main thread waiting for the ready signal (a lost wake-up). A
//! task that yields instead of sleeping keeps its executor out of `park` altogether: the run
//! loop polls the rings and the shared channels without blocking on every turn, so nothing
//! can be missed. The spin lasts only while the other cores start (milliseconds) and never
//! runs after start-up.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

/// Yields until `done()` holds, never parking the executor.
pub async fn spin_until(mut done: impl FnMut() -> bool) {
    while !done() {
        // Give the CPU to the cores being waited for: at start-up on a small machine they
        // may share it with this one, and a spin that never leaves the CPU delays them.
        std::thread::yield_now();
        futures_lite::future::yield_now().await;
    }
}

/// Runs `fut` while a sibling task yields, so the executor never parks before `fut` ends
/// (for futures such as glommio's mesh join that wait on other threads with no wake-up).
pub async fn without_parking<T>(fut: impl Future<Output = T>) -> T {
    let finished = Rc::new(Cell::new(false));
    let flag = finished.clone();
    glommio::spawn_local(async move { spin_until(|| flag.get()).await }).detach();
    let out = fut.await;
    finished.set(true);
    out
}
