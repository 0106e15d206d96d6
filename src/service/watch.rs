//! Read deadlines for every connection of a core, enforced by one sweeper.
//!
//! Arming a glommio timer on every socket read (its per-read timeout) and
//! racing every idle read against the stop signal showed up in the profile
//! of the GET path. Instead each connection records the deadline of the read
//! it is waiting on (a `Cell` write), and one task per core wakes every
//! 250 ms, shuts down the sockets whose deadline passed (their pending read
//! then ends) and, once the listener stops, the idle ones.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::base::stop::StopSignal;

const SWEEP: Duration = Duration::from_millis(250);

thread_local! {
    /// A coarse clock for the 10 s / 60 s deadlines, refreshed by the sweeper:
    /// reading the real clock several times per request showed up at ~5 % of
    /// the GET path on this VM.
    static COARSE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Now, to within one sweep period (250 ms).
#[inline]
pub fn coarse_now() -> Instant {
    COARSE.with(|c| match c.get() {
        Some(t) => t,
        None => {
            let t = Instant::now();
            c.set(Some(t));
            t
        }
    })
}

struct Slot {
    fd: RawFd,
    /// Deadline of the read in progress, if any.
    deadline: Cell<Option<Instant>>,
    /// Between requests (nothing buffered, nothing owed).
    idle: Cell<bool>,
}

#[derive(Default)]
pub struct Watch {
    slots: RefCell<Vec<Option<Rc<Slot>>>>,
    free: RefCell<Vec<usize>>,
}

/// A connection's registration; unregisters on drop.
pub struct Guard {
    watch: Rc<Watch>,
    id: usize,
    slot: Rc<Slot>,
}

impl Guard {
    /// A read starts that may wait until `deadline`; `idle` when it is the
    /// wait for the next request.
    #[inline]
    pub fn reading(&self, deadline: Instant, idle: bool) {
        self.slot.deadline.set(Some(deadline));
        self.slot.idle.set(idle);
    }

    #[inline]
    pub fn done(&self) {
        self.slot.deadline.set(None);
        self.slot.idle.set(false);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.watch.slots.borrow_mut()[self.id] = None;
        self.watch.free.borrow_mut().push(self.id);
    }
}

fn shut(fd: RawFd) {
    // SAFETY: the fd belongs to a live connection (its guard is registered);
    // shutdown only ends its I/O, the owner still closes it.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

impl Watch {
    pub fn register(self: &Rc<Self>, fd: RawFd) -> Guard {
        let slot = Rc::new(Slot {
            fd,
            deadline: Cell::new(None),
            idle: Cell::new(false),
        });
        let id = match self.free.borrow_mut().pop() {
            Some(id) => {
                self.slots.borrow_mut()[id] = Some(slot.clone());
                id
            }
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Some(slot.clone()));
                slots.len() - 1
            }
        };
        Guard {
            watch: self.clone(),
            id,
            slot,
        }
    }

    fn sweep(&self, now: Instant, stopping: bool) {
        for slot in self.slots.borrow().iter().flatten() {
            let expired = slot.deadline.get().is_some_and(|d| now >= d);
            if expired || (stopping && slot.idle.get()) {
                slot.deadline.set(None);
                shut(slot.fd);
            }
        }
    }

    /// Runs until the process ends; after `stop` fires, idle connections are
    /// closed at once and then at every sweep.
    pub async fn sweeper(self: Rc<Self>, stop: StopSignal) {
        loop {
            let stopped = stop.race(glommio::timer::sleep(SWEEP)).await.is_none();
            let now = Instant::now();
            COARSE.with(|c| c.set(Some(now)));
            crate::http::response::refresh_date();
            // Deadlines were set from the coarse clock, up to one period
            // early; the sweep uses the real one.
            self.sweep(now, stopped || stop.is_set());
            if stopped {
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
