//! Overlapping a batch's cache misses.
//!
//! A replica applies a `/internal/batch` of ~60 writes at a time, and each apply starts with
//! the LWW lookup: the key's index bucket, then the item it points to, two cache misses in a
//! row on a store larger than the caches (a profile of the RF 3 benchmark put 18 % of a
//! replica's samples in `find_item` and `item::decode`). Touching all the batch's buckets first,
//! then all their candidate items, lets those misses run in parallel; the applies that follow
//! find the lines in cache. A hint only: it changes no state, and a wrong guess costs one load.
//!
//! Measured where it matters, not in a tight loop: in paired RF 3 runs a replica's user time per
//! write fell from 1.82/1.73 µs to 1.60/1.53 µs (mean of five pairs, PERFORMANCE.md), while
//! `cargo bench --bench store` shows batches of 60 prefetched within noise of plain overwrites:
//! a loop that does nothing but apply lets the CPU overlap the misses of consecutive items on
//! its own, a replica's apply path between them does not.

use super::shard::Shard;

/// Starts loading the cache line holding `*p` (no effect on other targets).
#[inline(always)]
pub(super) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (p as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl Shard {
    /// Prefetches what the lookups of `hashes` will read: every home bucket, then the items
    /// their tags point at. Call it right before applying or reading the batch.
    pub fn prefetch(&self, hashes: impl Iterator<Item = u64> + Clone) {
        for h in hashes.clone() {
            self.index.prefetch_home(h);
        }
        for h in hashes {
            for addr in self.index.home_candidates(h) {
                prefetch(&self.log.data(addr)[0]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{h, item, shard, T0};
    use crate::store::Policy;

    /// The candidates a prefetch loads are where the lookups find the keys: the hint points at
    /// the right lines (a mix or tag that differed from the lookup's would load others, and
    /// nothing else would notice).
    #[test]
    fn candidates_are_where_the_lookups_find_the_items() {
        let mut s = shard(1 << 20, None, Policy::Lru);
        let keys: Vec<String> = (0..5_000).map(|i| format!("key-{i}")).collect();
        for k in &keys {
            s.apply(
                h(k.as_bytes()),
                k.as_bytes(),
                item(b"v", 1, "n1", 0),
                T0,
                false,
            );
        }
        let home = keys
            .iter()
            .filter(|k| {
                let hash = h(k.as_bytes());
                let (_, addr, _) = s.find_item(hash, k.as_bytes()).expect("stored");
                s.index.home_candidates(hash).any(|a| a == addr)
            })
            .count();
        // An item whose home bucket was full lives further on: about one in nine at a load
        // near 0.9 (4 422 of 5 000 here). Candidates computed unlike the lookup find ~none.
        assert!(
            home > 4_000,
            "only {home} of 5000 items are in their home bucket"
        );
        assert_eq!(s.index.home_candidates(h(b"absent")).count(), 0);
        s.prefetch(keys.iter().map(|k| h(k.as_bytes())));
    }
}
