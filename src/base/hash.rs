//! XXH64, the hash behind ring placement (cluster.md §3).
//!
//! The Go server places keys with `cespare/xxhash` (XXH64, seed 0); `/v1/owners` must agree with
//! it bit for bit. `xxhash-rust` is a maintained implementation of the reference algorithm that
//! does not allocate (one-shot over a slice), so it is used on the hot path: each request key is
//! hashed once and the hash is reused for the data-core shard. The vectors below (cluster.md §3
//! and the C reference around every branch boundary) prove the crate matches the contract.

/// XXH64 of `data` with `seed` (seed 0 for keys and ring points).
#[inline]
pub fn xxhash64(data: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh64::xxh64(data, seed)
}

#[cfg(test)]
mod tests {
    use super::xxhash64;

    /// Every vector of cluster.md §3.
    #[test]
    fn cluster_md_vectors() {
        assert_eq!(xxhash64(b"", 0), 0xef46_db37_51d8_e999);
        assert_eq!(xxhash64(b"a", 0), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxhash64(b"abc", 0), 0x44bc_2cf5_ad77_0999);
        assert_eq!(xxhash64(b"greeting", 0), 0xe7c5_ca42_cd4b_ed7f);
        let ishmael = b"Call me Ishmael. Some years ago--never mind how long precisely-";
        assert_eq!(ishmael.len(), 63);
        assert_eq!(xxhash64(ishmael, 0), 0x02a2_e854_70d6_fd96);
        assert_eq!(xxhash64(b"node-1\x00", 0), 0x8285_c688_22be_c59a);
        assert_eq!(xxhash64(b"node-1\x3f", 0), 0xfb53_ab7a_1edd_a98a);
    }

    /// Lengths around every branch boundary (4/8-byte tails, the 32-byte stripe, stripe plus
    /// tails) and a non-zero seed, checked against the C reference (python-xxhash 3.x/4.x).
    #[test]
    fn reference_lengths_and_seed() {
        assert_eq!(xxhash64(b"", 1), 0xd5af_ba13_36a3_be4b);
        let data: Vec<u8> = (0u8..=255).collect();
        let want: [(usize, u64); 16] = [
            (4, 0xffce_d860_4453_cc1e),
            (8, 0x884a_1736_14b8_1b8d),
            (12, 0x424a_f23f_1f08_dca5),
            (15, 0xa948_f5f0_f6ab_ac2d),
            (31, 0xc346_d2b5_9b4d_8ee1),
            (32, 0xcbf5_9c51_16ff_32b4),
            (33, 0x0c53_5d1a_cafb_8ead),
            (36, 0xdde0_ef85_e3ae_f05c),
            (40, 0xf5da_40f1_b117_41e9),
            (44, 0xa733_d156_db2b_b292),
            (47, 0x0d98_83a0_3e7b_fbb8),
            (64, 0xf7c6_7301_db67_13f0),
            (71, 0x2ebf_fc96_eb13_9d60),
            (128, 0x7a7f_e146_47b9_ab92),
            (255, 0x0f7d_9750_7caa_d693),
            (256, 0x1fac_be84_06cd_904b),
        ];
        for (n, h) in want {
            assert_eq!(xxhash64(&data[..n], 0), h, "len {n}");
        }
    }
}
