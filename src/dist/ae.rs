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

/// `xxhash64(u32_be(len(key)) ++ key ++ u64_be(version) ++ u16_be(len(origin)) ++ origin ++ kind)`.
pub fn entry_hash(key: &[u8], version: u64, origin: &str, tombstone: bool) -> u64 {
    let mut enc = Vec::with_capacity(key.len() + origin.len() + 15);
    enc.extend_from_slice(&(key.len() as u32).to_be_bytes());
    enc.extend_from_slice(key);
    enc.extend_from_slice(&version.to_be_bytes());
    enc.extend_from_slice(&(origin.len() as u16).to_be_bytes());
    enc.extend_from_slice(origin.as_bytes());
    enc.push(u8::from(tombstone));
    xxhash64(&enc, 0)
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
