//! The key index: a hash table of 8-byte slots in 64-byte buckets, sized in steps of 1.25×
//! rather than 2×, so it costs 8.9-11.1 bytes per item at any size.
//!
//! ```text
//! bucket (one cache line): [ slot | slot | slot | slot | slot | slot | slot | slot ]
//! slot: bit 63 (slot 0 only): some item whose probe passed this bucket lives further on
//!       bits 44..63: 19-bit tag from the key's hash
//!       bits 0..44:  log address + 1 (0 = empty)
//! ```
//!
//! A key's home bucket comes from the high half of its mixed hash, scaled to the bucket count
//! (no power-of-two size needed); the tag comes from low bits, so a probe compares a key only
//! when 19 more bits of hash agree. An insert into a full bucket flags it and tries the next
//! one; a lookup stops at the first bucket without the flag. Flags are only cleared by a
//! rebuild, which happens on growth (load above 0.9) or when flagged buckets pile up from
//! churn. The table keeps no hashes: a rebuild asks the caller for each item's hash (the
//! shard re-hashes the key in the log), which is why an item costs 8 bytes here and not 16.
//! hashbrown would cost 9 bytes per slot at a load between 7/16 and 7/8 (it doubles), i.e. up
//! to 20 bytes per item.

use super::log::Addr;
use super::prefetch::prefetch;

const OVF: u64 = 1 << 63;
const TAG_SHIFT: u32 = 44;
const TAG_MASK: u64 = (1 << 19) - 1;
const ADDR_MASK: u64 = (1 << TAG_SHIFT) - 1;
const SLOTS: usize = 8;
const MIN_BUCKETS: usize = 8;

#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket([u64; SLOTS]);

const EMPTY: Bucket = Bucket([0; SLOTS]);

/// Where a key's slot is, for [`Index::set`] and [`Index::remove`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot(u32, u8);

pub(super) struct Index {
    buckets: Vec<Bucket>,
    len: usize,
    flagged: usize,
    /// Inserts since the last rebuild: a rebuild against piled-up flags waits for as many
    /// inserts as there are buckets, so it costs O(1) amortised whatever the natural flag level.
    inserts: usize,
}

/// Re-mixes the caller's hash before it reaches the table.
///
/// The caller picks the shard from the same hash (ops.md §7.1), so within one shard some bits are
/// constant (low bits for `hash % cores`). The murmur3 finaliser spreads every input bit over the
/// whole word, so both the bucket (high half) and the tag (low bits) vary.
#[inline]
pub(super) fn mix(hash: u64) -> u64 {
    let mut h = hash ^ (hash >> 33);
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The occupied slots of a bucket whose tag is `tag`, with their addresses: the candidates a
/// lookup compares keys against (and a prefetch loads).
#[inline]
fn tagged(bucket: &[u64; SLOTS], tag: u64) -> impl Iterator<Item = (usize, Addr)> + '_ {
    bucket.iter().enumerate().filter_map(move |(s, &w)| {
        let w = w & !OVF;
        (w != 0 && (w >> TAG_SHIFT) == tag).then(|| (s, (w & ADDR_MASK) - 1))
    })
}

impl Index {
    pub(super) fn new() -> Index {
        Index {
            buckets: Vec::new(),
            len: 0,
            flagged: 0,
            inserts: 0,
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes the table holds.
    pub(super) fn bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    #[inline]
    fn home(&self, m: u64) -> usize {
        (((m >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    /// The slot whose address satisfies `is_key`, among those tagged like `hash`.
    #[inline]
    pub(super) fn find(
        &self,
        hash: u64,
        mut is_key: impl FnMut(Addr) -> bool,
    ) -> Option<(Slot, Addr)> {
        if self.buckets.is_empty() {
            return None;
        }
        let m = mix(hash);
        let tag = m & TAG_MASK;
        let n = self.buckets.len();
        let mut b = self.home(m);
        for _ in 0..n {
            let bucket = &self.buckets[b].0;
            for (s, addr) in tagged(bucket, tag) {
                if is_key(addr) {
                    return Some((Slot(b as u32, s as u8), addr));
                }
            }
            if bucket[0] & OVF == 0 {
                return None;
            }
            b = if b + 1 == n { 0 } else { b + 1 };
        }
        None
    }

    /// Asks the CPU to start loading `hash`'s home bucket: a batch issues this for every key
    /// before the first lookup, so the cache misses overlap instead of queueing one per item.
    #[inline]
    pub(super) fn prefetch_home(&self, hash: u64) {
        if !self.buckets.is_empty() {
            prefetch(&self.buckets[self.home(mix(hash))]);
        }
    }

    /// The addresses in `hash`'s home bucket whose tag matches: the items a lookup will read
    /// first (to start loading them too). Reads only the one bucket.
    #[inline]
    pub(super) fn home_candidates(&self, hash: u64) -> impl Iterator<Item = Addr> + '_ {
        let m = mix(hash);
        let bucket = (!self.buckets.is_empty()).then(|| &self.buckets[self.home(m)].0);
        bucket
            .into_iter()
            .flat_map(move |b| tagged(b, m & TAG_MASK).map(|(_, addr)| addr))
    }

    /// Points a found slot at a new address (an item that moved or was rewritten elsewhere).
    #[inline]
    pub(super) fn set(&mut self, slot: Slot, addr: Addr) {
        let w = &mut self.buckets[slot.0 as usize].0[slot.1 as usize];
        *w = (*w & !ADDR_MASK) | (addr + 1);
    }

    pub(super) fn remove(&mut self, slot: Slot) {
        let w = &mut self.buckets[slot.0 as usize].0[slot.1 as usize];
        *w &= OVF;
        self.len -= 1;
    }

    /// Adds a key known to be absent. `hash_of` gives the hash of the item at an address; a
    /// rebuild calls it once per item.
    pub(super) fn insert(&mut self, hash: u64, addr: Addr, hash_of: impl Fn(Addr) -> u64) {
        debug_assert!(addr < ADDR_MASK);
        let n = self.buckets.len();
        if (self.len + 1) * 10 > n * SLOTS * 9 {
            let want = ((self.len + 1) * 10 / (9 * SLOTS) * 5 / 4).max(MIN_BUCKETS);
            self.rebuild(want, &hash_of);
        } else if self.flagged * 4 > n * 3 && self.inserts > n {
            self.rebuild(n, &hash_of);
        }
        self.inserts += 1;
        self.place(hash, addr);
        self.len += 1;
    }

    fn place(&mut self, hash: u64, addr: Addr) {
        let m = mix(hash);
        let word = ((m & TAG_MASK) << TAG_SHIFT) | (addr + 1);
        let n = self.buckets.len();
        let mut b = self.home(m);
        loop {
            let bucket = &mut self.buckets[b].0;
            if let Some(s) = bucket.iter().position(|&w| w & !OVF == 0) {
                bucket[s] |= word;
                return;
            }
            if bucket[0] & OVF == 0 {
                bucket[0] |= OVF;
                self.flagged += 1;
            }
            b = if b + 1 == n { 0 } else { b + 1 };
        }
    }

    fn rebuild(&mut self, buckets: usize, hash_of: &impl Fn(Addr) -> u64) {
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; buckets]);
        self.flagged = 0;
        self.inserts = 0;
        for bucket in &old {
            for &w in &bucket.0 {
                let w = w & !OVF;
                if w != 0 {
                    let addr = (w & ADDR_MASK) - 1;
                    self.place(hash_of(addr), addr);
                }
            }
        }
    }

    /// Drops every slot and the memory.
    pub(super) fn clear(&mut self) {
        *self = Index::new();
    }

    /// Every address held (origin re-mapping, tests).
    pub(super) fn addrs(&self) -> impl Iterator<Item = Addr> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.0.iter())
            .filter_map(|&w| {
                let w = w & !OVF;
                (w != 0).then(|| (w & ADDR_MASK) - 1)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses double as hashes here: `hash_of` is the identity.
    fn id(a: Addr) -> u64 {
        a.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn finds_what_it_holds_through_growth_and_churn() {
        let mut ix = Index::new();
        for a in 0..50_000u64 {
            ix.insert(id(a), a, id);
        }
        assert_eq!(ix.len(), 50_000);
        for a in 0..50_000u64 {
            assert_eq!(ix.find(id(a), |x| x == a).map(|f| f.1), Some(a));
        }
        assert!(ix.find(id(60_000), |x| x == 60_000).is_none());
        // Churn: remove and insert at a constant size; flagged buckets get rebuilt away.
        for round in 0..10u64 {
            for a in 0..50_000u64 {
                let old = round * 50_000 + a;
                let (slot, _) = ix.find(id(old), |x| x == old).unwrap();
                ix.remove(slot);
                let new = old + 50_000;
                ix.insert(id(new), new, id);
            }
        }
        assert_eq!(ix.len(), 50_000);
        assert_eq!(ix.addrs().count(), 50_000);
        for a in 500_000..550_000u64 {
            assert!(ix.find(id(a), |x| x == a).is_some());
        }
        // Memory per item stays near 8 / load.
        let per = ix.bytes() as f64 / ix.len() as f64;
        assert!(per < 11.2, "{per} bytes per item");
    }

    #[test]
    fn equal_hashes_are_told_apart_by_the_key() {
        let mut ix = Index::new();
        for a in 0..100u64 {
            ix.insert(42, a, |_| 42);
        }
        for a in 0..100u64 {
            assert_eq!(ix.find(42, |x| x == a).map(|f| f.1), Some(a));
        }
        let (slot, _) = ix.find(42, |x| x == 7).unwrap();
        ix.set(slot, 1000);
        assert!(ix.find(42, |x| x == 7).is_none());
        assert!(ix.find(42, |x| x == 1000).is_some());
    }
}
