//! Limits and expiry (ops.md §3): making room on insert, the active-expiry sweep, and the
//! `/evict` and `/trigger-expiration` passes.
//!
//! Expiry is lazy (any access to a dead item removes it, in `shard.rs`) plus a bounded sweep the
//! runtime calls from a low-priority task: [`Shard::expire_step`] walks a rotating cursor over the
//! ring "slab slots, then tombstones", so each call does at most `max_visits` units of work and a
//! full pass over `n` positions takes `ceil(n / max_visits)` calls. With 100 000 entries and, say,
//! 2 000 visits every 100 ms, every expired item is gone within 5 s of its deadline (ops.md §3.2).
//! The slab reuses vacant slots, so its length never exceeds the peak item count.

use super::shard::Shard;

/// Slots the expiry sweep visits when an insert first finds the shard over a limit (only if some
/// item has a deadline): expired items found there go before any live item is evicted.
const EVICT_SWEEP_VISITS: usize = 16;

impl Shard {
    /// Active expiry: visits at most `max_visits` positions of the ring "slab slots, then
    /// tombstones" from a rotating cursor, removing expired items and purging tombstones past the
    /// TTL. Returns the items expired. A full pass over `n` positions takes `ceil(n / max_visits)`
    /// calls (slab slots never exceed the peak item count).
    pub fn expire_step(&mut self, now_ms: u64, max_visits: usize) -> u64 {
        if self.with_deadline == 0 && self.tombstones.len() == 0 {
            return 0; // nothing can expire
        }
        let slots = self.slab.slots(); // removal vacates slots, never shrinks the slab
        let budget = max_visits.min(slots + self.tombstones.len());
        let mut expired = 0;
        for _ in 0..budget {
            let ring = slots + self.tombstones.len();
            if ring == 0 {
                break;
            }
            if self.cursor >= ring {
                self.cursor = 0;
            }
            if self.cursor < slots {
                let idx = self.cursor as u32;
                self.cursor += 1;
                if self.slab.get(idx).is_expired(now_ms) {
                    self.remove_item(idx);
                    expired += 1;
                }
            } else {
                let pos = self.cursor - slots;
                if self
                    .tombstones
                    .get(pos)
                    .is_purgeable(now_ms, self.tombstone_ttl_ms)
                {
                    // swap_remove moves an unvisited tombstone into `pos`: stay here.
                    self.tombstones.remove(pos);
                    self.tombstones_purged += 1;
                } else {
                    self.cursor += 1;
                }
            }
        }
        self.expirations += expired;
        expired
    }

    /// `POST /trigger-expiration`: removes every expired item now; returns the count.
    pub fn expire_all(&mut self, now_ms: u64) -> u64 {
        if self.with_deadline == 0 {
            return 0;
        }
        let mut expired = 0;
        for idx in 0..self.slab.slots() as u32 {
            if self.slab.get(idx).is_expired(now_ms) {
                self.remove_item(idx);
                expired += 1;
            }
        }
        self.expirations += expired;
        expired
    }

    /// `POST /evict`: [`Self::expire_all`], then evicts by policy until within the limits; returns
    /// the entries evicted (expired ones not counted).
    pub fn evict_to_limits(&mut self, now_ms: u64) -> u64 {
        self.expire_all(now_ms);
        self.make_room(now_ms, 0, 0)
    }

    fn over_limits(&self, add_items: u64, add_bytes: u64) -> bool {
        self.slab.live() as u64 + add_items > self.limits.max_items
            || self
                .limits
                .max_bytes
                .is_some_and(|max| self.bytes.saturating_add(add_bytes) > max)
    }

    /// Removes expired items, then policy victims, until `add_items` more items of `add_bytes`
    /// more bytes fit. Returns the live items evicted.
    pub(super) fn make_room(&mut self, now_ms: u64, add_items: u64, add_bytes: u64) -> u64 {
        let mut swept = false;
        let mut evicted = 0;
        while self.over_limits(add_items, add_bytes) {
            if !swept && self.with_deadline > 0 {
                swept = true;
                self.expire_step(now_ms, EVICT_SWEEP_VISITS);
                continue;
            }
            // Empty list: only the entry being written is left; it is stored over the limit.
            let Some(victim) = self.policy.victim(&mut self.slab) else {
                break;
            };
            let expired = self.slab.get(victim).is_expired(now_ms);
            self.remove_item(victim);
            if expired {
                self.expirations += 1;
            } else {
                self.evictions += 1;
                evicted += 1;
            }
        }
        evicted
    }
}
