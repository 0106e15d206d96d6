//! Expiry (ops.md §3.2): the active-expiry sweep and the `/evict` and `/trigger-expiration`
//! passes. Making room on insert is in `policy.rs`.
//!
//! Expiry is lazy (any access to a dead item removes it, in `shard.rs`) plus a bounded sweep the
//! runtime calls from a low-priority task: [`Shard::expire_step`] walks a rotating cursor over the
//! log (oldest segment to head, one visit per item, dead bytes included), then the tombstones, so
//! each call does at most `max_visits` units of work and a full pass over `n` positions takes
//! `ceil(n / max_visits)` calls. With 100 000 entries and, say, 2 000 visits every 100 ms, every
//! expired item is gone within 5 s of its deadline (ops.md §3.2). Items that expire together sit
//! together in the log (they were written together), so their segment is released as soon as
//! the last of them goes, without any copying.

use super::item;
use super::log::Log;
use super::shard::{Shard, Sweep};

impl Shard {
    /// Active expiry: visits at most `max_visits` positions of the ring "log items, then
    /// tombstones" from a rotating cursor, removing expired items and purging tombstones past the
    /// TTL. Returns the items expired. A full pass over `n` positions takes `ceil(n / max_visits)`
    /// calls.
    pub fn expire_step(&mut self, now_ms: u64, max_visits: usize) -> u64 {
        if self.with_deadline == 0 && self.tombstones.len() == 0 {
            return 0; // nothing can expire
        }
        let mut expired = 0;
        let mut visits = 0;
        // Phase changes since the last visit: three in a row (log end, tombstones, log) mean
        // there is nothing to visit.
        let mut idle_turns = 0;
        while visits < max_visits && idle_turns < 3 {
            match self.sweep {
                Sweep::Log(pos) => {
                    let Some((addr, at)) = self.log.seek(pos) else {
                        self.sweep = Sweep::Tombstones(0);
                        idle_turns += 1;
                        continue;
                    };
                    visits += 1;
                    idle_turns = 0;
                    let hdr = item::decode(self.log.data(addr));
                    self.sweep = Sweep::Log(Log::after(at, hdr.total()));
                    if hdr.live() && hdr.is_expired(now_ms) {
                        let slot = self.slot_of(addr);
                        self.remove_item(slot, addr, &hdr);
                        expired += 1;
                    }
                }
                Sweep::Tombstones(pos) => {
                    if pos >= self.tombstones.len() {
                        self.sweep = Sweep::Log(0);
                        idle_turns += 1;
                        continue;
                    }
                    visits += 1;
                    idle_turns = 0;
                    if self
                        .tombstones
                        .get(pos)
                        .is_purgeable(now_ms, self.tombstone_ttl_ms)
                    {
                        // swap_remove moves an unvisited tombstone into `pos`: stay here.
                        self.tombstones.remove(pos);
                        self.tombstones_purged += 1;
                    } else {
                        self.sweep = Sweep::Tombstones(pos + 1);
                    }
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
        let mut pos = 0;
        while let Some((addr, at)) = self.log.seek(pos) {
            let hdr = item::decode(self.log.data(addr));
            pos = Log::after(at, hdr.total());
            if hdr.live() && hdr.is_expired(now_ms) {
                let slot = self.slot_of(addr);
                self.remove_item(slot, addr, &hdr);
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
}
