//! XXH64, the hash behind ring placement (cluster.md §3).
//!
//! The Go server places keys with `cespare/xxhash` (XXH64, seed 0); `/v1/owners` must agree with it,
//! so this is a bit-exact port of the reference algorithm rather than any faster std hasher. It is
//! hashed once per request key and reused for the data-core shard, so it is written to stay cheap:
//! no allocation, unaligned little-endian loads, and the 32-byte stripe loop for long inputs.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// Little-endian u64 from the first 8 bytes of `b` (callers guarantee the length).
#[inline(always)]
fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Little-endian u32 from the first 4 bytes of `b` (callers guarantee the length).
#[inline(always)]
fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// One accumulator step: used for the stripes and, with `acc = 0`, for 8-byte tail lanes.
#[inline(always)]
fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

/// Folds one stripe accumulator into the converged hash (long inputs only).
#[inline(always)]
fn merge_round(h: u64, v: u64) -> u64 {
    (h ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

/// XXH64 of `data` with `seed`; identical to the reference implementation (and to
/// `cespare/xxhash.Sum64` when `seed == 0`).
pub fn xxhash64(data: &[u8], seed: u64) -> u64 {
    let len = data.len();
    let mut rest = data;

    let mut h = if len >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        // chunks_exact lets the compiler drop the bounds checks inside the hot loop.
        let mut stripes = rest.chunks_exact(32);
        for s in &mut stripes {
            v1 = round(v1, read_u64(&s[0..]));
            v2 = round(v2, read_u64(&s[8..]));
            v3 = round(v3, read_u64(&s[16..]));
            v4 = round(v4, read_u64(&s[24..]));
        }
        rest = stripes.remainder();
        let mut h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge_round(h, v1);
        h = merge_round(h, v2);
        h = merge_round(h, v3);
        merge_round(h, v4)
    } else {
        seed.wrapping_add(P5)
    };

    // The total length (not the tail length) enters the hash; usize -> u64 is lossless here.
    h = h.wrapping_add(len as u64);

    while rest.len() >= 8 {
        h ^= round(0, read_u64(rest));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        h ^= u64::from(read_u32(rest)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = &rest[4..];
    }
    for &b in rest {
        h ^= u64::from(b).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }

    // Final avalanche.
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^= h >> 32;
    h
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
