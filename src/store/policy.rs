//! Eviction and log cleaning: CLOCK over the log (second-chance FIFO).
//!
//! The log is already in insertion order, so the tail cursor (`log.rs`) is the clock hand: the
//! item under it is the oldest not yet looked at.
//! * A hit sets the item's reference bit (`shard.rs`); a write leaves it clear (a write is not a
//!   read).
//! * To evict, the hand takes the item under it: dead bytes are skipped, an expired item is
//!   removed as an expiration, a referenced item is copied to the head with its bit cleared (one
//!   more lap), and the first unreferenced live item is the victim. Each bit set by a hit is
//!   cleared at most once, so a victim costs O(1) amortised; [`MAX_MOVES`] bounds one search.
//! * Moving an item is a copy into the head segment and one index update: the index holds
//!   addresses, not the items.
//!
//! Both names of `HYPERCACHE_EVICTION` select this policy. `lru` is accepted because ops.md §3.1
//! requires it and because CLOCK is the classic LRU approximation: an item read since it was
//! written outlives one never read, and the victim is the oldest item not read since the hand
//! last passed it. The hit ratio against an exact LRU of the same budget is measured by
//! `benches/hit_ratio.rs` (PERFORMANCE.md). The difference from the old list-based LRU is what a
//! hit costs: one bit in the item it already read, instead of relinking three list nodes.
//!
//! Memory: with `HYPERCACHE_MAX_MEMORY` the log's written bytes, the index and the tombstones
//! together stay within the shard's byte budget. Before an append would cross it,
//! [`Shard::make_log_room`] runs the hand over the oldest segment until it is released. Without a
//! budget the hand compacts instead (moves every live item, evicts nothing) once dead bytes pass
//! a quarter of the log, so overwrites
//! with other sizes do not grow memory without bound.

use super::item::{self, REF};
use super::shard::Shard;

/// `HYPERCACHE_EVICTION`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    #[default]
    Lru,
    Clock,
}

impl Policy {
    /// The configuration spelling (`lru`, `clock`).
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Lru => "lru",
            Policy::Clock => "clock",
        }
    }

    /// Parses a configuration value (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<Policy> {
        if name.eq_ignore_ascii_case("lru") {
            Some(Policy::Lru)
        } else if name.eq_ignore_ascii_case("clock") {
            Some(Policy::Clock)
        } else {
            None
        }
    }
}

/// Referenced items one eviction may move before it takes the next item regardless: bounds the
/// work of one insert when nearly everything was read since the hand last passed.
const MAX_MOVES: usize = 64;

/// Slots the expiry sweep visits when an insert first finds the shard over a limit (only if some
/// item has a deadline): expired items found there go before any live item is evicted.
const EVICT_SWEEP_VISITS: usize = 16;

/// What the hand does with a live, unexpired item.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hand {
    /// Move referenced items, evict the first unreferenced one, then stop.
    EvictOne,
    /// Move referenced items, evict unreferenced ones, until the oldest segment is released.
    EvictSegment,
    /// Move every live item until the oldest segment is released.
    Compact,
}

impl Shard {
    fn over_limits(&self, add_items: u64, add_bytes: u64) -> bool {
        self.items as u64 + add_items > self.limits.max_items
            || self
                .limits
                .max_bytes
                .is_some_and(|max| self.bytes.saturating_add(add_bytes) > max)
    }

    /// Evicts until `add_items` more items of `add_bytes` more accounted bytes fit both limits
    /// (expired items first). Returns the number of live items evicted.
    pub(super) fn make_room(&mut self, now_ms: u64, add_items: u64, add_bytes: u64) -> u64 {
        let mut swept = false;
        let before = self.evictions;
        while self.over_limits(add_items, add_bytes) {
            if !swept && self.with_deadline > 0 {
                swept = true;
                self.expire_step(now_ms, EVICT_SWEEP_VISITS);
                continue;
            }
            if !self.hand(now_ms, Hand::EvictOne) {
                break;
            }
        }
        self.evictions - before
    }

    /// Keeps the log's written bytes within the byte budget (less the index and the
    /// tombstones) before `len` more bytes are appended (0: after a tombstone was added), and
    /// reclaims dead space when there is no budget. Written bytes, not segment capacity: the
    /// unused end of a segment is never touched, so it costs no RSS, and counting capacity
    /// would waste up to a segment per item size class under small caps.
    pub(super) fn make_log_room(&mut self, now_ms: u64, len: usize) {
        match self.limits.max_bytes {
            Some(max) => {
                let max = usize::try_from(max).unwrap_or(usize::MAX);
                while self.log.segments() > 1
                    && self.log.used() + len
                        > max.saturating_sub(self.index.bytes() + self.tombstones.bytes())
                {
                    self.hand(now_ms, Hand::EvictSegment);
                }
            }
            None => {
                let opens = len > 0 && !self.log.fits_head(len);
                if opens && self.log.segments() > 4 && self.log.dead() * 4 > self.log.used() {
                    self.hand(now_ms, Hand::Compact);
                }
            }
        }
    }

    /// Runs the hand in `mode`; false when there was nothing left to look at.
    fn hand(&mut self, now_ms: u64, mode: Hand) -> bool {
        let mut moves = 0;
        let first = self.log.tail_segment();
        loop {
            let Some(addr) = self.log.tail() else {
                return false;
            };
            // Released by the last kill or by `tail()` stepping past its end.
            if mode != Hand::EvictOne && self.log.tail_segment() != first {
                return true; // the oldest segment was released
            }
            let hdr = item::decode(self.log.data(addr));
            self.log.advance_tail(hdr.total());
            if !hdr.live() {
                continue;
            }
            let slot = self.slot_of(addr);
            if hdr.is_expired(now_ms) {
                self.remove_item(slot, addr, &hdr);
                self.expirations += 1;
                if mode == Hand::EvictOne {
                    return true;
                }
                continue;
            }
            let keep = match mode {
                Hand::Compact => true,
                Hand::EvictOne => hdr.flags & REF != 0 && moves < MAX_MOVES,
                Hand::EvictSegment => hdr.flags & REF != 0,
            };
            if keep {
                let to = self.log.relocate(addr, hdr.total(), mode != Hand::Compact);
                self.index.set(slot, to);
                moves += 1;
                continue;
            }
            self.remove_item(slot, addr, &hdr);
            self.evictions += 1;
            if mode == Hand::EvictOne {
                return true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Policy::from_name("LRU"), Some(Policy::Lru));
        assert_eq!(Policy::from_name("clock"), Some(Policy::Clock));
        assert_eq!(Policy::from_name("lfu"), None);
        assert_eq!(Policy::default().as_str(), "lru");
    }
}
