//! Anti-entropy tree (cluster.md §10): 1024 leaves, leaf = wrapping sum of
//! the entry hashes that fall in it (order-independent, so per-core partial
//! sums add up), root = xxhash64 of the leaves as u64 big-endian.

use crate::base::hash::xxhash64;

pub const LEAVES: usize = 1024;

/// Leaf of a key: the top 10 bits of its xxhash64.
#[inline]
pub fn leaf_of(key_hash: u64) -> usize {
    (key_hash >> 54) as usize
}

/// `xxhash64(u32_be(len(key)) ++ key ++ u64_be(version) ++ u16_be(len(origin)) ++ origin ++ kind)`,
/// streamed into the hasher (no buffer per entry: a pair set hashes every key the node holds).
pub fn entry_hash(key: &[u8], version: u64, origin: &str, tombstone: bool) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    h.update(&(key.len() as u32).to_be_bytes());
    h.update(key);
    h.update(&version.to_be_bytes());
    h.update(&(origin.len() as u16).to_be_bytes());
    h.update(origin.as_bytes());
    h.update(&[u8::from(tombstone)]);
    h.digest()
}

pub fn root(leaves: &[u64; LEAVES]) -> u64 {
    let mut buf = Vec::with_capacity(LEAVES * 8);
    for l in leaves {
        buf.extend_from_slice(&l.to_be_bytes());
    }
    xxhash64(&buf, 0)
}

/// One entry of a pair set, as exchanged in digests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Digest {
    pub key: String,
    pub version: u64,
    pub origin: String,
    pub deleted: bool,
}

pub fn leaves_of(entries: &[Digest]) -> Box<[u64; LEAVES]> {
    let mut leaves = Box::new([0u64; LEAVES]);
    for d in entries {
        let l = leaf_of(xxhash64(d.key.as_bytes(), 0));
        leaves[l] = leaves[l].wrapping_add(entry_hash(
            d.key.as_bytes(),
            d.version,
            &d.origin,
            d.deleted,
        ));
    }
    leaves
}

/// How long a write stays out of anti-entropy: the exchange compares entries written before
/// `now - SETTLE_MS` (its `before`, sent to the peer). A younger entry is still on the write path
/// (acks, hints, the 5 s timeout) and usually present on one owner and not yet on the other:
/// under a write load, comparing it made every leaf differ and every exchange fetch the whole pair
/// set, pushing thousands of entries the peer was receiving anyway. It is compared at the next
/// exchange (docs/cluster.md, "Anti-entropy under writes").
pub const SETTLE_MS: u64 = 1_000;

/// The cut-off of a peer that sent none (the Go server, an older build): every entry takes part.
pub const NO_CUT_OFF: u64 = u64::MAX;

/// Whether an entry of `version` takes part in an exchange with cut-off `before` (Unix ms; the
/// HLC's wall-clock part of the version is compared, the same on both sides).
#[inline]
pub fn settled(version: u64, before: u64) -> bool {
    crate::store::Hlc::wall_ms(version) < before
}

/// A set of leaf indexes: the leaves an `/internal/ae/digests` request asks for, so a scan
/// materialises only the digests of those leaves instead of the whole pair set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafMask([u64; LEAVES / 64]);

impl LeafMask {
    pub const ALL: LeafMask = LeafMask([u64::MAX; LEAVES / 64]);

    /// The mask of `leaves`; indexes at or above [`LEAVES`] are ignored.
    pub fn of(leaves: impl IntoIterator<Item = usize>) -> LeafMask {
        let mut m = [0u64; LEAVES / 64];
        for l in leaves.into_iter().filter(|&l| l < LEAVES) {
            m[l / 64] |= 1 << (l % 64);
        }
        LeafMask(m)
    }

    #[inline]
    pub fn contains(&self, leaf: usize) -> bool {
        leaf < LEAVES && self.0[leaf / 64] & (1 << (leaf % 64)) != 0
    }
}

pub fn hex(v: u64) -> String {
    format!("{v:016x}")
}

/// One digest per key, the newest by (version, origin): a scan that yields between slices can
/// report a key twice (an item, then its tombstone; a tombstone moved by a purge), and a
/// duplicate would change its leaf's sum.
pub fn dedup_newest(d: &mut Vec<Digest>) {
    d.sort_unstable_by(|a, b| {
        a.key.cmp(&b.key).then_with(|| {
            if crate::store::entry::newer(a.version, &a.origin, b.version, &b.origin) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        })
    });
    d.dedup_by(|later, first| later.key == first.key);
}

/// The leaf sums of one core's share of a pair set, built during a scan without materialising
/// a [`Digest`] (two strings) per key: each key leaves a 32-byte stamp, origins are stored once.
/// A scan that yields between slices can report a key twice (see [`dedup_newest`]); `finish`
/// keeps the newest stamp per key hash, so a clean scan and one that saw a key twice give the
/// same sums. Two distinct keys with one 64-bit hash would count once: at most a spurious
/// difference in their leaf, and only with odds of about n²/2⁶⁵.
#[derive(Default)]
pub struct LeafSums {
    stamps: Vec<Stamp>,
    origins: Vec<String>,
}

struct Stamp {
    key_hash: u64,
    version: u64,
    entry: u64,
    origin: u32,
}

impl LeafSums {
    pub fn add(&mut self, key_hash: u64, key: &[u8], version: u64, origin: &str, deleted: bool) {
        // A cluster has a handful of origins and a scan meets them in runs: a short search.
        let o = match self.origins.iter().rposition(|x| x == origin) {
            Some(i) => i,
            None => {
                self.origins.push(origin.to_string());
                self.origins.len() - 1
            }
        };
        self.stamps.push(Stamp {
            key_hash,
            version,
            entry: entry_hash(key, version, origin, deleted),
            origin: o as u32,
        });
    }

    pub fn finish(mut self) -> Box<[u64; LEAVES]> {
        let origins = &self.origins;
        self.stamps.sort_unstable_by(|a, b| {
            a.key_hash.cmp(&b.key_hash).then_with(|| {
                crate::store::entry::lww_cmp(
                    (b.version, &origins[b.origin as usize]),
                    (a.version, &origins[a.origin as usize]),
                )
            })
        });
        self.stamps
            .dedup_by(|later, first| later.key_hash == first.key_hash);
        let mut leaves = Box::new([0u64; LEAVES]);
        for s in &self.stamps {
            let l = leaf_of(s.key_hash);
            leaves[l] = leaves[l].wrapping_add(s.entry);
        }
        leaves
    }
}

/// Adds one core's leaf sums into the node's (the sums are order-independent).
pub fn add_leaves(into: &mut [u64; LEAVES], part: &[u64; LEAVES]) {
    for (a, b) in into.iter_mut().zip(part) {
        *a = a.wrapping_add(*b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_seen_twice_counts_once_with_its_newest_stamp() {
        let d = |k: &str, v: u64, o: &str, deleted| Digest {
            key: k.into(),
            version: v,
            origin: o.into(),
            deleted,
        };
        let mut twice = vec![
            d("b", 5, "n1", false),
            d("a", 1, "n1", false),
            d("b", 7, "n2", true),
        ];
        dedup_newest(&mut twice);
        assert_eq!(twice, vec![d("a", 1, "n1", false), d("b", 7, "n2", true)]);
        let once = vec![d("a", 1, "n1", false), d("b", 7, "n2", true)];
        assert_eq!(
            leaves_of(&twice),
            leaves_of(&once),
            "same leaves as a clean scan"
        );
        let mut tie = vec![d("k", 3, "n2", false), d("k", 3, "n1", false)];
        dedup_newest(&mut tie);
        assert_eq!(
            tie[0].origin, "n1",
            "equal versions: the smaller origin wins"
        );
    }

    fn sums_of(d: &[Digest]) -> Box<[u64; LEAVES]> {
        let mut s = LeafSums::default();
        for x in d {
            let h = xxhash64(x.key.as_bytes(), 0);
            s.add(h, x.key.as_bytes(), x.version, &x.origin, x.deleted);
        }
        s.finish()
    }

    /// The scan's stamps give the leaves of the digests the contract defines, also when the scan
    /// saw a key twice (an item, then its newer tombstone, listed in either order).
    #[test]
    fn stamp_sums_are_the_digest_leaves_and_count_a_key_seen_twice_once() {
        let d = |k: &str, v: u64, o: &str, deleted| Digest {
            key: k.into(),
            version: v,
            origin: o.into(),
            deleted,
        };
        let clean: Vec<Digest> = (0..500)
            .map(|i| {
                d(
                    &format!("key-{i}"),
                    1000 + i,
                    ["n1", "n2", "n3"][i as usize % 3],
                    i % 7 == 0,
                )
            })
            .collect();
        assert_eq!(sums_of(&clean), leaves_of(&clean));
        let mut twice = clean.clone();
        twice.push(d("key-3", 900, "n1", false)); // an older copy of key-3, seen after it
        twice.insert(0, d("key-4", 1004, "n9", false)); // same version, larger origin: older
        assert_eq!(sums_of(&twice), leaves_of(&clean));
        let mut changed = clean.clone();
        changed[10].version += 1;
        assert_ne!(
            sums_of(&changed),
            leaves_of(&clean),
            "a newer write changes its leaf"
        );
        let mut a = [0u64; LEAVES];
        add_leaves(&mut a, &sums_of(&clean[..200]));
        add_leaves(&mut a, &sums_of(&clean[200..]));
        assert_eq!(a, *leaves_of(&clean), "per-core sums add up to the node's");
    }

    #[test]
    fn an_entry_settles_once_its_wall_time_is_before_the_cut_off() {
        let v = |ms: u64| ms << 16 | 7; // an HLC stamp at wall time ms, logical 7
        assert!(settled(v(999), 1000));
        assert!(!settled(v(1000), 1000), "written at the cut-off: not yet");
        assert!(!settled(v(5000), 1000));
        assert!(settled(v(5000), NO_CUT_OFF), "no cut-off: everything");
    }

    #[test]
    fn a_leaf_mask_holds_exactly_its_leaves() {
        let m = LeafMask::of([0, 63, 64, 927, LEAVES - 1, LEAVES + 5]);
        let held: Vec<usize> = (0..LEAVES + 10).filter(|&l| m.contains(l)).collect();
        assert_eq!(held, vec![0, 63, 64, 927, LEAVES - 1]);
        assert!((0..LEAVES).all(|l| LeafMask::ALL.contains(l)));
    }

    #[test]
    fn spec_vectors() {
        let d = Digest {
            key: "greeting".into(),
            version: 115614679040000000,
            origin: "node-1".into(),
            deleted: false,
        };
        assert_eq!(
            hex(entry_hash(b"greeting", d.version, "node-1", false)),
            "b00123f78570988c"
        );
        assert_eq!(leaf_of(xxhash64(b"greeting", 0)), 927);
        assert_eq!(hex(root(&leaves_of(&[d]))), "61d263a39da2c8f1");
        assert_eq!(hex(root(&[0; LEAVES])), "02b5073505a48fb4");
    }

    #[test]
    fn leaves_are_order_independent() {
        let mk = |k: &str, v| Digest {
            key: k.into(),
            version: v,
            origin: "n".into(),
            deleted: false,
        };
        let a = vec![mk("a", 1), mk("b", 2), mk("c", 3)];
        let mut b = a.clone();
        b.reverse();
        assert_eq!(leaves_of(&a), leaves_of(&b));
    }
}
