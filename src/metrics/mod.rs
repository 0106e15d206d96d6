//! Per-core counters and latency histograms (STYLE.md habit 7).
//!
//! Each data core owns one [`CoreMetrics`] of plain `Cell`s: no atomics on the
//! data path. The control core collects a [`CoreSnapshot`] from every core by
//! message when `/stats` or `/metrics` is served and sums them.

pub mod dist;
pub mod prom;

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Route families of the client listener (ops.md §1.3), in `/stats` order.
pub const FAMILIES: [&str; 9] = [
    "get",
    "head",
    "put",
    "delete",
    "batch_get",
    "batch_put",
    "batch_delete",
    "owners",
    "other",
];
pub const F_GET: usize = 0;
pub const F_HEAD: usize = 1;
pub const F_PUT: usize = 2;
pub const F_DELETE: usize = 3;
pub const F_BATCH_GET: usize = 4;
pub const F_BATCH_PUT: usize = 5;
pub const F_BATCH_DELETE: usize = 6;
pub const F_OWNERS: usize = 7;
pub const F_OTHER: usize = 8;

/// Statuses counted per family; anything else lands in the last slot.
pub const STATUSES: [u16; 13] = [
    200, 202, 400, 401, 403, 404, 405, 413, 431, 500, 503, 100, 0,
];

fn status_slot(s: u16) -> usize {
    STATUSES[..STATUSES.len() - 1]
        .iter()
        .position(|&x| x == s)
        .unwrap_or(STATUSES.len() - 1)
}

pub fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 1 h, 3 significant digits: fixed size, recording never allocates.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// Counters of one data core. Owned by that core only.
pub struct CoreMetrics {
    pub hits: Cell<u64>,
    pub misses: Cell<u64>,
    pub sets: Cell<u64>,
    pub deletes: Cell<u64>,
    pub connections: Cell<u64>,
    pub rejected: Cell<u64>,
    pub cross_core: Cell<u64>,
    /// Writes coordinated on the single-node fast path (no control-core
    /// hop): they count as WriteAttempts and WriteAcks (ops.md §1.5).
    pub local_writes: Cell<u64>,
    latency: RefCell<Vec<Histogram<u64>>>,
    requests: RefCell<[[u64; STATUSES.len()]; FAMILIES.len()]>,
}

impl Default for CoreMetrics {
    fn default() -> Self {
        CoreMetrics {
            hits: Cell::new(0),
            misses: Cell::new(0),
            sets: Cell::new(0),
            deletes: Cell::new(0),
            connections: Cell::new(0),
            rejected: Cell::new(0),
            cross_core: Cell::new(0),
            local_writes: Cell::new(0),
            latency: RefCell::new((0..FAMILIES.len()).map(|_| new_histogram()).collect()),
            requests: RefCell::new([[0; STATUSES.len()]; FAMILIES.len()]),
        }
    }
}

pub fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get() + n);
}

impl CoreMetrics {
    pub fn observe(&self, family: usize, status: u16, elapsed: Duration) {
        let us = (elapsed.as_micros() as u64).max(1);
        let _ = self.latency.borrow_mut()[family].record(us.min(3_600_000_000));
        self.requests.borrow_mut()[family][status_slot(status)] += 1;
    }

    pub fn snapshot(&self) -> CoreSnapshot {
        CoreSnapshot {
            hits: self.hits.get(),
            misses: self.misses.get(),
            sets: self.sets.get(),
            deletes: self.deletes.get(),
            connections: self.connections.get(),
            rejected: self.rejected.get(),
            cross_core: self.cross_core.get(),
            local_writes: self.local_writes.get(),
            latency: self.latency.borrow().clone(),
            requests: *self.requests.borrow(),
            ..CoreSnapshot::default()
        }
    }
}

/// Everything the control core needs from one data core, by value.
#[derive(Debug, Clone)]
pub struct CoreSnapshot {
    pub core: usize,
    pub cpu: usize,
    pub items: u64,
    pub bytes: u64,
    pub capacity_items: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub tombstones: u64,
    pub tombstones_purged: u64,
    pub version_conflicts: u64,
    pub version_tie_breaks: u64,
    pub hits: u64,
    pub misses: u64,
    pub sets: u64,
    pub deletes: u64,
    pub connections: u64,
    pub rejected: u64,
    pub cross_core: u64,
    pub local_writes: u64,
    pub latency: Vec<Histogram<u64>>,
    pub requests: [[u64; STATUSES.len()]; FAMILIES.len()],
}

impl Default for CoreSnapshot {
    fn default() -> Self {
        CoreSnapshot {
            core: 0,
            cpu: 0,
            items: 0,
            bytes: 0,
            capacity_items: 0,
            evictions: 0,
            expirations: 0,
            tombstones: 0,
            tombstones_purged: 0,
            version_conflicts: 0,
            version_tie_breaks: 0,
            hits: 0,
            misses: 0,
            sets: 0,
            deletes: 0,
            connections: 0,
            rejected: 0,
            cross_core: 0,
            local_writes: 0,
            latency: (0..FAMILIES.len()).map(|_| new_histogram()).collect(),
            requests: [[0; STATUSES.len()]; FAMILIES.len()],
        }
    }
}

/// Sum of all cores' snapshots (node totals).
pub fn total(cores: &[CoreSnapshot]) -> CoreSnapshot {
    let mut t = CoreSnapshot::default();
    for c in cores {
        t.items += c.items;
        t.bytes += c.bytes;
        t.capacity_items += c.capacity_items;
        t.evictions += c.evictions;
        t.expirations += c.expirations;
        t.tombstones += c.tombstones;
        t.tombstones_purged += c.tombstones_purged;
        t.version_conflicts += c.version_conflicts;
        t.version_tie_breaks += c.version_tie_breaks;
        t.hits += c.hits;
        t.misses += c.misses;
        t.sets += c.sets;
        t.deletes += c.deletes;
        t.connections += c.connections;
        t.rejected += c.rejected;
        t.cross_core += c.cross_core;
        t.local_writes += c.local_writes;
        for (a, b) in t.latency.iter_mut().zip(&c.latency) {
            let _ = a.add(b);
        }
        for (a, b) in t.requests.iter_mut().zip(&c.requests) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
    t
}
