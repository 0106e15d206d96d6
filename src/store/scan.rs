//! Bounded scan steps over a shard, for the scans the runtime runs in slices that yield
//! (`/internal/keys`, `/internal/merkle`, anti-entropy digests, rebalance): a step visits at most
//! `budget` positions and returns where the next step resumes, so no scan holds the core for
//! longer than one step, and a paged scan resumes in O(1) rather than skipping from the start.
//!
//! What a scan that yields between steps guarantees, given that writes run between steps: every
//! item or tombstone present for the whole scan is visited at least once; one inserted or removed
//! meanwhile may or may not be.
//! * Items are visited in log order, oldest segment first, and a position is the segment's
//!   sequence number and an offset, so segments released between steps are simply skipped. The
//!   eviction hand and log cleaning move items only to the head, i.e. ahead of the scan: a moved
//!   item may be visited twice, never missed.
//! * Tombstones are a dense `Vec` with `swap_remove`, so the walk goes downward: a removal moves
//!   the last tombstone (already visited) into the hole, and an insertion appends behind the walk.
//!   A moved tombstone may be visited twice, never missed.

use super::item;
use super::log::Log;
use super::shard::Shard;
use super::types::Item;

/// Where a scan resumes; `Done` after the last position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    At(usize),
    Done,
}

impl Shard {
    /// Visits the live, unexpired items at log positions from `from` (0 = the start), at most
    /// `budget` positions (dead ones included): `f(hash, key, item)` returns false to stop before
    /// that item, which is then where the scan resumes. No side effects on the shard.
    pub fn scan_items_step(
        &self,
        from: usize,
        budget: usize,
        now_ms: u64,
        mut f: impl FnMut(u64, &[u8], Item<'_>) -> bool,
    ) -> Resume {
        let mut pos = self.log.align(from as u64);
        for _ in 0..budget {
            let Some((addr, at)) = self.log.seek(pos) else {
                return Resume::Done;
            };
            let hdr = item::decode(self.log.data(addr));
            pos = Log::after(at, hdr.total());
            if !hdr.live() || hdr.is_expired(now_ms) {
                continue;
            }
            let key = &self.log.data(addr)[hdr.key_at..hdr.value_at()];
            if !f((self.hasher)(key), key, self.item(addr, &hdr)) {
                return Resume::At(at as usize);
            }
        }
        match self.log.seek(pos) {
            None => Resume::Done,
            Some(_) => Resume::At(pos as usize),
        }
    }

    /// Visits up to `budget` tombstones not yet past their TTL, walking positions downward from
    /// just below `below` (start with `usize::MAX`): `f(hash, key, version, origin, deleted_at_ms)`.
    pub fn scan_tombstones_step(
        &self,
        below: usize,
        budget: usize,
        now_ms: u64,
        mut f: impl FnMut(u64, &[u8], u64, &str, u64),
    ) -> Resume {
        let top = below.min(self.tombstones.len());
        let bottom = top.saturating_sub(budget);
        for pos in (bottom..top).rev() {
            let t = self.tombstones.get(pos);
            if !t.is_purgeable(now_ms, self.tombstone_ttl_ms) {
                f(
                    t.hash,
                    t.key(),
                    t.version,
                    self.origins.name(t.origin),
                    t.deleted_at_ms,
                );
            }
        }
        if bottom == 0 {
            Resume::Done
        } else {
            Resume::At(bottom)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Incoming, Policy, ShardLimits};

    const NOW: u64 = 1_700_000_000_000;

    fn shard() -> Shard {
        let limits = ShardLimits {
            max_items: 10_000,
            max_bytes: None,
        };
        Shard::new(limits, Policy::Lru, 600_000)
    }

    fn put(s: &mut Shard, k: &str, version: u64) {
        let h = crate::base::hash::xxhash64(k.as_bytes(), 0);
        let e = Incoming::Item {
            value: b"v",
            version,
            origin: "n1",
            expires_at_ms: 0,
        };
        s.apply(h, k.as_bytes(), e, NOW, false);
    }

    fn del(s: &mut Shard, k: &str, version: u64) {
        let h = crate::base::hash::xxhash64(k.as_bytes(), 0);
        let e = Incoming::Tombstone {
            version,
            origin: "n1",
            deleted_at_ms: NOW,
        };
        s.apply(h, k.as_bytes(), e, NOW, false);
    }

    fn all_items_in_steps(
        s: &mut Shard,
        budget: usize,
        between: impl Fn(&mut Shard, usize),
    ) -> Vec<String> {
        let mut seen = Vec::new();
        let mut at = 0;
        let mut step = 0;
        loop {
            let r = s.scan_items_step(at, budget, NOW, |_, k, _| {
                seen.push(String::from_utf8(k.to_vec()).unwrap());
                true
            });
            between(s, step);
            step += 1;
            match r {
                Resume::At(n) => at = n,
                Resume::Done => return seen,
            }
        }
    }

    #[test]
    fn items_present_throughout_are_seen_once_despite_writes_between_steps() {
        let mut s = shard();
        for i in 0..500 {
            put(&mut s, &format!("k{i}"), 10);
        }
        // Between steps: delete some keys not yet visited and insert new ones (slot reuse).
        let seen = all_items_in_steps(&mut s, 37, |s, step| {
            if step < 5 {
                for j in 0..10 {
                    del(s, &format!("k{}", 400 + step * 10 + j), 20);
                    put(s, &format!("new{step}-{j}"), 20);
                }
            }
        });
        let mut uniq = seen.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), seen.len(), "no item twice");
        for i in 0..400 {
            assert!(
                seen.contains(&format!("k{i}")),
                "k{i} present throughout was missed"
            );
        }
        for i in 450..500 {
            assert!(seen.contains(&format!("k{i}")), "k{i}");
        }
    }

    #[test]
    fn a_stopped_scan_resumes_at_the_refused_item() {
        let mut s = shard();
        for i in 0..10 {
            put(&mut s, &format!("k{i}"), 10);
        }
        let mut first = Vec::new();
        let r = s.scan_items_step(0, 100, NOW, |_, k, _| {
            if first.len() == 4 {
                return false;
            }
            first.push(k.to_vec());
            true
        });
        let Resume::At(at) = r else {
            panic!("stopped early")
        };
        let mut rest = Vec::new();
        assert_eq!(
            s.scan_items_step(at, 100, NOW, |_, k, _| {
                rest.push(k.to_vec());
                true
            }),
            Resume::Done
        );
        assert_eq!(first.len() + rest.len(), 10);
        assert!(first.iter().all(|k| !rest.contains(k)));
    }

    /// A cursor is a number a peer sends back: a stale one (from before `/clear`) or a made-up
    /// one must never make the shard decode from inside an item (a panic or a fake key).
    #[test]
    fn stale_and_made_up_cursors_resume_at_item_boundaries() {
        let mut s = shard();
        for i in 0..2000 {
            put(&mut s, &format!("k{i}"), 10);
        }
        let keys = |s: &Shard, from: usize| {
            let mut out = Vec::new();
            s.scan_items_step(from, usize::MAX, NOW, |_, k, _| {
                out.push(String::from_utf8(k.to_vec()).expect("a real key"));
                true
            });
            out
        };
        let all = keys(&s, 0);
        assert_eq!(all.len(), 2000);
        for from in [
            1usize,
            5,
            13,
            777,
            4095,
            (1 << 24) - 1,
            1 << 24,
            (1 << 24) + 3,
            usize::MAX,
        ] {
            // What a made-up cursor yields is the listing from the first item at or after it:
            // real keys, in order, no fragment of a value read as a key.
            let got = keys(&s, from);
            assert_eq!(got[..], all[all.len() - got.len()..], "cursor {from}");
        }
        // A cursor from before /clear skips what was written since rather than misreading it.
        let mut at = 0;
        let r = s.scan_items_step(0, 700, NOW, |_, _, _| true);
        if let Resume::At(n) = r {
            at = n;
        }
        s.clear();
        for i in 0..2000 {
            put(&mut s, &format!("new{i}"), 10);
        }
        assert!(keys(&s, at).iter().all(|k| k.starts_with("new")));
    }

    #[test]
    fn tombstones_are_never_missed_when_others_are_purged_between_steps() {
        let mut s = shard();
        for i in 0..100 {
            del(&mut s, &format!("t{i}"), 10);
        }
        let mut seen = Vec::new();
        let mut below = usize::MAX;
        let mut step = 0;
        loop {
            let r = s.scan_tombstones_step(below, 7, NOW, |_, k, _, _, _| {
                seen.push(String::from_utf8(k.to_vec()).unwrap())
            });
            // Removing a tombstone (a newer write) swaps the last one into its place.
            if step < 5 {
                put(&mut s, &format!("t{}", step * 3), 20);
            }
            step += 1;
            match r {
                Resume::At(n) => below = n,
                Resume::Done => break,
            }
        }
        for i in 15..100 {
            assert!(seen.contains(&format!("t{i}")), "t{i} missed");
        }
    }
}
