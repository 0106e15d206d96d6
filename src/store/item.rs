//! The layout of one item inside a log segment: an 11-byte header in the common case, then the key
//! and the value, with no padding, no pointer and no allocator header.
//!
//! ```text
//! byte 0                      | varint   | varint | 8 B LE  | 1 or 3 B | 6 B LE     | klen | vlen
//! live:1 ref:1 ttl:1 klen':5  | [klen]   | vlen   | version | origin   | [deadline] | key  | value
//! ```
//!
//! * `klen'` holds key lengths below 31 directly (16-byte keys cost no extra byte); 31 means the
//!   length follows as a LEB128 varint.
//! * `live` is cleared when the item is overwritten, deleted, evicted or moved: the bytes stay in
//!   the segment as dead space until the segment is cleaned (`log.rs`).
//! * `ref` is the CLOCK reference bit, set by a hit (`policy.rs`).
//! * `ttl` says a 6-byte absolute deadline in Unix ms follows; items without one do not pay for it.
//!   48 bits reach the year 10889; larger deadlines are clamped to [`MAX_EXPIRES_MS`].
//! * `origin` is the shard's interned id of the node that issued the version (`origin.rs`): one
//!   byte below 255, else 255 and the id as `u16` LE. Re-mapping only lowers ids, so it always
//!   fits the width already written and is rewritten in place ([`write_origin`]).
//! * `version` is the HLC version, opaque here.

pub(super) const LIVE: u8 = 1;
pub(super) const REF: u8 = 2;
const TTL: u8 = 4;
const KLEN_SHIFT: u32 = 3;
const KLEN_INLINE_MAX: usize = 30;
const KLEN_FOLLOWS: u8 = 31;

/// Largest deadline an item can hold (2^48 - 1 ms after the epoch).
pub(super) const MAX_EXPIRES_MS: u64 = (1 << 48) - 1;

/// Longest header: flags, two 5-byte varints, version, origin, deadline.
#[cfg(test)]
pub(super) const MAX_HEADER: usize = 1 + 5 + 5 + 8 + 3 + 6;

const ORIGIN_WIDE: u8 = 255;

/// A decoded header; offsets are relative to the item's first byte.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hdr {
    pub flags: u8,
    pub klen: usize,
    pub vlen: usize,
    pub version: u64,
    pub origin: u16,
    /// Absolute deadline in Unix ms; 0 = none.
    pub deadline: u64,
    /// Offset of the origin field (rewritten in place by origin re-mapping).
    pub origin_at: usize,
    /// The origin field is the 3-byte form.
    pub origin_wide: bool,
    /// Offset of the key; the value follows it.
    pub key_at: usize,
}

impl Hdr {
    #[inline]
    pub fn live(&self) -> bool {
        self.flags & LIVE != 0
    }

    #[inline]
    pub fn value_at(&self) -> usize {
        self.key_at + self.klen
    }

    /// Bytes the whole item occupies in its segment.
    #[inline]
    pub fn total(&self) -> usize {
        self.key_at + self.klen + self.vlen
    }

    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.deadline != 0 && now_ms >= self.deadline
    }
}

#[inline]
fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

#[inline]
fn put_varint(out: &mut [u8], mut n: usize) -> usize {
    let mut i = 0;
    while n >= 0x80 {
        out[i] = (n as u8) | 0x80;
        n >>= 7;
        i += 1;
    }
    out[i] = n as u8;
    i + 1
}

#[inline]
fn get_varint(data: &[u8], at: &mut usize) -> usize {
    let mut n = 0usize;
    let mut shift = 0;
    loop {
        let b = data[*at];
        *at += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

/// Header bytes for an item of this shape.
#[inline]
pub(super) fn header_len(klen: usize, vlen: usize, has_deadline: bool, origin: u16) -> usize {
    let k = if klen > KLEN_INLINE_MAX {
        varint_len(klen)
    } else {
        0
    };
    let o = if origin < u16::from(ORIGIN_WIDE) {
        1
    } else {
        3
    };
    1 + k + varint_len(vlen) + 8 + o + if has_deadline { 6 } else { 0 }
}

/// Bytes an item of this shape occupies.
#[inline]
pub(super) fn item_len(klen: usize, vlen: usize, has_deadline: bool, origin: u16) -> usize {
    header_len(klen, vlen, has_deadline, origin) + klen + vlen
}

/// Rewrites the origin of a decoded item with a lower (re-mapped) id, in the width it has.
pub(super) fn write_origin(item: &mut [u8], hdr: &Hdr, origin: u16) {
    debug_assert!(origin <= hdr.origin);
    let at = hdr.origin_at;
    if hdr.origin_wide {
        item[at + 1..at + 3].copy_from_slice(&origin.to_le_bytes());
    } else {
        item[at] = origin as u8;
    }
}

/// Writes a live, unreferenced item into `out` (exactly `item_len` bytes long).
pub(super) fn encode(
    out: &mut [u8],
    key: &[u8],
    value: &[u8],
    version: u64,
    origin: u16,
    deadline: u64,
) {
    let at = encode_header(out, key.len(), value.len(), version, origin, deadline);
    out[at..at + key.len()].copy_from_slice(key);
    out[at + key.len()..at + key.len() + value.len()].copy_from_slice(value);
}

/// Writes the header and returns where the key goes.
pub(super) fn encode_header(
    out: &mut [u8],
    klen: usize,
    vlen: usize,
    version: u64,
    origin: u16,
    deadline: u64,
) -> usize {
    let deadline = deadline.min(MAX_EXPIRES_MS);
    let mut flags = LIVE;
    if deadline != 0 {
        flags |= TTL;
    }
    let inline = if klen > KLEN_INLINE_MAX {
        KLEN_FOLLOWS
    } else {
        klen as u8
    };
    out[0] = flags | (inline << KLEN_SHIFT);
    let mut at = 1;
    if klen > KLEN_INLINE_MAX {
        at += put_varint(&mut out[at..], klen);
    }
    at += put_varint(&mut out[at..], vlen);
    out[at..at + 8].copy_from_slice(&version.to_le_bytes());
    at += 8;
    if origin < u16::from(ORIGIN_WIDE) {
        out[at] = origin as u8;
        at += 1;
    } else {
        out[at] = ORIGIN_WIDE;
        out[at + 1..at + 3].copy_from_slice(&origin.to_le_bytes());
        at += 3;
    }
    if deadline != 0 {
        out[at..at + 6].copy_from_slice(&deadline.to_le_bytes()[..6]);
        at += 6;
    }
    at
}

/// Decodes the header of the item starting at `data[0]`.
#[inline]
pub(super) fn decode(data: &[u8]) -> Hdr {
    let b0 = data[0];
    let flags = b0 & 7;
    let mut at = 1;
    let klen = match b0 >> KLEN_SHIFT {
        KLEN_FOLLOWS => get_varint(data, &mut at),
        k => usize::from(k),
    };
    let vlen = get_varint(data, &mut at);
    let version = u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    at += 8;
    let origin_at = at;
    let origin_wide = data[at] == ORIGIN_WIDE;
    let origin = if origin_wide {
        u16::from_le_bytes([data[at + 1], data[at + 2]])
    } else {
        u16::from(data[at])
    };
    at += if origin_wide { 3 } else { 1 };
    let mut deadline = 0;
    if flags & TTL != 0 {
        let mut b = [0u8; 8];
        b[..6].copy_from_slice(&data[at..at + 6]);
        deadline = u64::from_le_bytes(b);
        at += 6;
    }
    Hdr {
        flags,
        klen,
        vlen,
        version,
        origin,
        deadline,
        origin_at,
        origin_wide,
        key_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_byte_key_without_ttl_costs_eleven_bytes_of_header() {
        assert_eq!(header_len(16, 100, false, 3), 11);
        assert_eq!(item_len(16, 100, false, 3), 127);
        assert_eq!(header_len(16, 100, true, 3), 17);
        assert_eq!(header_len(16, 100, false, 255), 13);
    }

    #[test]
    fn round_trips_every_length_class() {
        for klen in [0usize, 1, 30, 31, 127, 128, 20_000] {
            for vlen in [0usize, 1, 127, 128, 16_383, 16_384, 3_000_000] {
                for (deadline, origin) in [
                    (0u64, 0u16),
                    (1, 254),
                    (1_764_140_000_000, 255),
                    (u64::MAX, 513),
                ] {
                    let key = vec![b'k'; klen];
                    let value = vec![b'v'; vlen];
                    let mut buf = vec![0u8; item_len(klen, vlen, deadline != 0, origin)];
                    encode(&mut buf, &key, &value, 0xdead_beef_0102, origin, deadline);
                    let h = decode(&buf);
                    assert!(h.live() && h.flags & REF == 0);
                    assert_eq!((h.klen, h.vlen, h.origin), (klen, vlen, origin));
                    assert_eq!(h.version, 0xdead_beef_0102);
                    assert_eq!(h.deadline, deadline.min(MAX_EXPIRES_MS));
                    assert_eq!(h.total(), buf.len());
                    assert_eq!(&buf[h.key_at..h.value_at()], &key[..]);
                    assert_eq!(&buf[h.value_at()..], &value[..]);
                    assert!(header_len(klen, vlen, deadline != 0, origin) <= MAX_HEADER);
                    // Re-mapping to a lower id keeps the layout.
                    write_origin(&mut buf, &h, origin / 2);
                    let again = decode(&buf);
                    assert_eq!((again.origin, again.key_at), (origin / 2, h.key_at));
                    assert_eq!(&buf[again.value_at()..], &value[..]);
                }
            }
        }
    }
}
