//! The Go-shaped Merkle summary of `GET /internal/merkle` (cluster.md §12.3):
//! entries (key, version) of every live item and tombstone, sorted by key
//! bytes, cut into chunks of 128; leaf = SHA-256 of the chunk's
//! `key ++ u64_be(version)` concatenation; parents = SHA-256(left ++ right)
//! level by level, an odd last node carried up unchanged.

use super::sha256::sha256;

pub const CHUNK: usize = 128;

/// Returns (root, leaves); both empty/None for an empty store.
/// Sorts `entries` by key and keeps one per key, the highest version: the data cores' scans
/// yield between slices and can report a key twice (an item, then its tombstone).
pub fn build(entries: &mut Vec<(Vec<u8>, u64)>) -> (Option<[u8; 32]>, Vec<[u8; 32]>) {
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    entries.dedup_by(|later, first| later.0 == first.0);
    let leaves: Vec<[u8; 32]> = entries
        .chunks(CHUNK)
        .map(|chunk| {
            let mut buf = Vec::new();
            for (k, v) in chunk {
                buf.extend_from_slice(k);
                buf.extend_from_slice(&v.to_be_bytes());
            }
            sha256(&buf)
        })
        .collect();
    if leaves.is_empty() {
        return (None, leaves);
    }
    let mut level = leaves.clone();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => {
                    let mut buf = [0u8; 64];
                    buf[..32].copy_from_slice(l);
                    buf[32..].copy_from_slice(r);
                    sha256(&buf)
                }
                [one] => *one,
                _ => unreachable!(),
            })
            .collect();
    }
    (Some(level[0]), leaves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn spec_vector() {
        let (root, leaves) = build(&mut vec![(b"greeting".to_vec(), 7)]);
        let b64 = |h: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(h);
        assert_eq!(
            b64(&leaves[0]),
            "M/Vc5KQ4Q2cOPBvpZbVA8CUj/QKuXNO2wRq6TP9XDZQ="
        );
        assert_eq!(
            root.map(|r| b64(&r)).as_deref(),
            Some("M/Vc5KQ4Q2cOPBvpZbVA8CUj/QKuXNO2wRq6TP9XDZQ=")
        );
        assert_eq!(build(&mut vec![]), (None, vec![]));
    }

    #[test]
    fn odd_node_is_carried_up() {
        let mut e: Vec<(Vec<u8>, u64)> = (0..300u32)
            .map(|i| (format!("k{i:05}").into_bytes(), 1))
            .collect();
        let (root, leaves) = build(&mut e);
        assert_eq!(leaves.len(), 3);
        let mut buf = [0u8; 64];
        buf[..32].copy_from_slice(&leaves[0]);
        buf[32..].copy_from_slice(&leaves[1]);
        let p01 = sha256(&buf);
        buf[..32].copy_from_slice(&p01);
        buf[32..].copy_from_slice(&leaves[2]);
        assert_eq!(root, Some(sha256(&buf)));
    }
}
