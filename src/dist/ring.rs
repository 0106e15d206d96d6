//! The consistent-hash ring (cluster.md §3): which members own a key.
//!
//! A `Ring` is an immutable snapshot. The control core builds a new one on every membership change
//! and hands it to the data cores, so lookups never lock and never allocate: owners are returned as
//! small member indices into a caller-owned buffer, and ids are resolved only when a response needs
//! them. Placement must match the Go server exactly (same vnode hashes, same walk), so `/v1/owners`
//! agrees across implementations.

use crate::base::hash::xxhash64;

/// Virtual nodes per member (the Go server's `virtualNodesPerNode`).
pub const VNODES: usize = 64;

/// An immutable placement snapshot for one set of ring members and one replication factor.
#[derive(Debug, Clone)]
pub struct Ring {
    /// Ring member ids, deduplicated and sorted byte-wise; indices into this are member indices.
    members: Vec<String>,
    /// `(vnode hash, member index)` sorted by hash, then by id bytes. Because `members` is sorted,
    /// ordering ties by index is the same as ordering them by id bytes.
    vnodes: Vec<(u64, u32)>,
    /// Configured RF; lookups return `min(replication, members)` owners.
    replication: usize,
    /// Cached: it is compared on every anti-entropy exchange and the inputs never change.
    fingerprint: u64,
}

impl Ring {
    /// Builds the ring of `members` (ring member ids, i.e. alive and suspect members) with the
    /// configured replication factor. Duplicates are ignored; input order does not matter.
    pub fn new(members: &[String], replication: usize) -> Ring {
        let mut ids: Vec<String> = members.to_vec();
        ids.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        ids.dedup();
        // Member indices are u32 to keep owner buffers and vnode entries small; a cluster anywhere
        // near 2^32 members is not a thing this server supports.
        assert!(u32::try_from(ids.len()).is_ok(), "too many ring members");

        let mut vnodes = Vec::with_capacity(ids.len() * VNODES);
        let mut buf = Vec::new();
        for (idx, id) in ids.iter().enumerate() {
            // vnode hash = xxhash64(id bytes ++ [i]); reuse one buffer for all 64 of them.
            buf.clear();
            buf.extend_from_slice(id.as_bytes());
            buf.push(0);
            let last = buf.len() - 1;
            for i in 0..VNODES {
                buf[last] = i as u8;
                vnodes.push((xxhash64(&buf, 0), idx as u32));
            }
        }
        // Tuple order is (hash, index) = (hash, id bytes) since `ids` is sorted.
        vnodes.sort_unstable();

        let fingerprint = fingerprint_of(&ids, replication);
        Ring {
            members: ids,
            vnodes,
            replication,
            fingerprint,
        }
    }

    /// Writes the owners of the key whose hash is `key_hash` into `out` as member indices, primary
    /// first: `min(replication, members)` entries, none for an empty ring. `out` is cleared first;
    /// nothing is allocated when it already has that much capacity.
    pub fn owners_into(&self, key_hash: u64, out: &mut Vec<u32>) {
        out.clear();
        let want = self.replication.min(self.members.len());
        if want == 0 {
            return;
        }
        // First vnode with hash >= key_hash, wrapping to 0 past the end.
        let start = self.vnodes.partition_point(|&(h, _)| h < key_hash);
        let n = self.vnodes.len();
        // Every member has vnodes, so one full turn always collects `want` distinct members.
        for step in 0..n {
            let (_, idx) = self.vnodes[(start + step) % n];
            // `out` holds at most RF entries, so a linear scan beats any set.
            if !out.contains(&idx) {
                out.push(idx);
                if out.len() == want {
                    break;
                }
            }
        }
    }

    /// The id of member `idx` (an index produced by `owners_into`). Panics if out of range.
    pub fn member(&self, idx: u32) -> &str {
        &self.members[idx as usize]
    }

    /// Ring member ids, deduplicated and sorted byte-wise.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// Every vnode as `(hash, member id)` in ring order (hash ascending), as `/cluster/ring` lists
    /// them.
    pub fn vnodes(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        self.vnodes
            .iter()
            .map(move |&(h, idx)| (h, self.members[idx as usize].as_str()))
    }

    /// Number of ring members (not vnodes: that is `len() * VNODES`).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the ring has no members; every key then has no owners.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The configured replication factor (may exceed `len()`).
    pub fn replication(&self) -> usize {
        self.replication
    }

    /// xxhash64 of `"<RF>\n"` followed by each member id and `"\n"`, in byte order (cluster.md §3).
    /// Two nodes only compare Merkle trees when their fingerprints match.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// Computes the ring fingerprint of sorted, deduplicated `ids` with replication `rf`.
fn fingerprint_of(ids: &[String], rf: usize) -> u64 {
    let mut text = format!("{rf}\n").into_bytes();
    for id in ids {
        text.extend_from_slice(id.as_bytes());
        text.push(b'\n');
    }
    xxhash64(&text, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn owners(ring: &Ring, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        ring.owners_into(xxhash64(key.as_bytes(), 0), &mut out);
        out.iter().map(|&i| ring.member(i).to_string()).collect()
    }

    fn three() -> Ring {
        Ring::new(&ids(&["node-1", "node-2", "node-3"]), 3)
    }

    #[test]
    fn ring_vectors() {
        let ring = three();
        let v: Vec<String> = ring
            .vnodes()
            .map(|(h, id)| format!("{h:016x}:{id}"))
            .collect();
        assert_eq!(v.len(), 192);
        assert_eq!(v[0], "0018e9cedb208d91:node-2");
        assert_eq!(v[1], "0143c40282ba13b8:node-3");
        assert_eq!(v[2], "0351d19f2253b285:node-3");
        assert_eq!(v[191], "fefcaeb5416ac83e:node-1");
        assert!(ring
            .vnodes()
            .zip(ring.vnodes().skip(1))
            .all(|(a, b)| a.0 <= b.0));
    }

    #[test]
    fn owners_table() {
        let r3 = three();
        assert_eq!(owners(&r3, "greeting"), ["node-1", "node-3", "node-2"]);
        assert_eq!(owners(&r3, "hello"), ["node-3", "node-1", "node-2"]);
        assert_eq!(owners(&r3, "user:42"), ["node-2", "node-3", "node-1"]);
        let r5 = Ring::new(&ids(&["node-1", "node-2", "node-3", "node-4", "node-5"]), 3);
        assert_eq!(owners(&r5, "greeting"), ["node-5", "node-4", "node-1"]);
        assert_eq!(owners(&r5, "hello"), ["node-3", "node-5", "node-1"]);
        assert_eq!(owners(&r5, "user:42"), ["node-2", "node-4", "node-3"]);
    }

    #[test]
    fn fingerprint_example() {
        assert_eq!(three().fingerprint(), 0xac58_6a68_5ade_fbc0);
        // Input order and duplicates do not matter; RF does.
        let shuffled = Ring::new(&ids(&["node-3", "node-1", "node-2", "node-1"]), 3);
        assert_eq!(shuffled.fingerprint(), 0xac58_6a68_5ade_fbc0);
        let rf2 = Ring::new(&ids(&["node-1", "node-2", "node-3"]), 2);
        assert_ne!(rf2.fingerprint(), 0xac58_6a68_5ade_fbc0);
    }

    #[test]
    fn dedupe_and_sorting() {
        let ring = Ring::new(&ids(&["b", "a", "B", "a"]), 3);
        assert_eq!(ring.members(), ["B", "a", "b"]);
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.vnodes().count(), 3 * VNODES);
    }

    #[test]
    fn rf_capped_at_member_count() {
        let ring = Ring::new(&ids(&["node-1", "node-2"]), 3);
        assert_eq!(ring.replication(), 3);
        let got = owners(&ring, "greeting");
        assert_eq!(got.len(), 2);
        assert_ne!(got[0], got[1]);
        let one = Ring::new(&ids(&["solo"]), 5);
        assert_eq!(owners(&one, "anything"), ["solo"]);
    }

    #[test]
    fn rf_below_members_is_a_prefix() {
        // Fewer replicas must give the same primary and order, just shorter.
        let r1 = Ring::new(&ids(&["node-1", "node-2", "node-3"]), 1);
        assert_eq!(owners(&r1, "hello"), ["node-3"]);
        let r2 = Ring::new(&ids(&["node-1", "node-2", "node-3"]), 2);
        assert_eq!(owners(&r2, "user:42"), ["node-2", "node-3"]);
    }

    #[test]
    fn empty_ring_has_no_owners() {
        let ring = Ring::new(&[], 3);
        assert!(ring.is_empty());
        assert_eq!(ring.len(), 0);
        assert_eq!(ring.vnodes().count(), 0);
        let mut out = vec![7];
        ring.owners_into(12345, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn wraps_past_the_last_vnode() {
        // A hash above every vnode starts at index 0 (node-2 in the 3-node ring).
        let ring = three();
        let mut out = Vec::new();
        ring.owners_into(u64::MAX, &mut out);
        assert_eq!(ring.member(out[0]), "node-2");
        ring.owners_into(0, &mut out);
        assert_eq!(ring.member(out[0]), "node-2");
    }

    #[test]
    fn owners_into_reuses_capacity() {
        let ring = three();
        let mut out = Vec::with_capacity(3);
        let ptr = out.as_ptr();
        for k in 0..1000u64 {
            ring.owners_into(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), &mut out);
            assert_eq!(out.len(), 3);
        }
        assert_eq!(out.as_ptr(), ptr);
    }
}
