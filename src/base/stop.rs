//! A core-local, one-shot stop signal (listener close, shutdown).
//!
//! Built on glommio's semaphore: closing it wakes every waiter at once, and a
//! closed semaphore answers new waiters immediately, so there is no window in
//! which a task can start waiting after the signal and miss it.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use glommio::sync::Semaphore;

#[derive(Clone)]
pub struct StopSignal(Rc<Inner>);

struct Inner {
    fired: Cell<bool>,
    sem: Semaphore,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl StopSignal {
    pub fn new() -> Self {
        StopSignal(Rc::new(Inner {
            fired: Cell::new(false),
            sem: Semaphore::new(0),
        }))
    }

    pub fn is_set(&self) -> bool {
        self.0.fired.get()
    }

    pub fn fire(&self) {
        if !self.0.fired.replace(true) {
            self.0.sem.close();
        }
    }

    /// Resolves once the signal has fired.
    pub async fn wait(&self) {
        if self.is_set() {
            return;
        }
        // Never signalled with units: returns only (with Err) once closed.
        let _ = self.0.sem.acquire(1).await;
    }

    /// Runs `fut` unless the signal fires first (then None).
    pub async fn race<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        futures_lite::future::or(async { Some(fut.await) }, async {
            self.wait().await;
            None
        })
        .await
    }
}
