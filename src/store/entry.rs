//! The layout of one item: a 48-byte slab slot plus one heap allocation for key and value.
//!
//! ```text
//! Entry (48 bytes, align 8)
//! +----------------------+---------+---------+-------------------------------+--------+--------+
//! | data: Box<[u8]>      | hash    | version | meta                          | prev   | next   |
//! | ptr 8 | len 8        | u64     | u64     | deadline:47 | ref:1 | orig:16 | u32    | u32    |
//! +----------------------+---------+---------+-------------------------------+--------+--------+
//!    |
//!    v  one allocation
//!   [ key_len as LEB128 (1 byte below 128, 2 below 16384) | key bytes | value bytes ]
//! ```
//!
//! * `data` empty marks a vacant slot: a live entry always has at least its length prefix, so no
//!   separate tag (and no `Option` niche games) is needed. A vacant slot's `next` links the free
//!   list.
//! * `hash` is the caller's 64-bit key hash. The index stores only slab indices, so re-hashing it on
//!   growth needs the hash here; it is also what `for_each_live` hands back.
//! * `meta` packs three small fields into one word to keep the slot at 48 bytes: the absolute
//!   deadline in ms (47 bits reach the year 6429; larger deadlines are clamped to
//!   [`MAX_EXPIRES_MS`], i.e. "never" in practice), the CLOCK reference bit, and the interned
//!   origin id.
//! * `prev`/`next` are the intrusive recency list (or the free list) over slab indices; [`NIL`]
//!   ends a list.

/// "No index": end of a list.
pub(super) const NIL: u32 = u32::MAX;

/// Largest deadline an entry can hold (2^47 - 1 ms after the epoch, in the year 6429).
pub(super) const MAX_EXPIRES_MS: u64 = (1 << 47) - 1;

const ORIGIN_MASK: u64 = 0xFFFF;
const REF_BIT: u64 = 1 << 16;
const EXPIRES_SHIFT: u32 = 17;

/// Re-mixes the caller's hash before it reaches a hash table.
///
/// The caller picks the shard from the same hash (ops.md §7.1), so within one shard some bits are
/// constant (low bits for `hash % cores`, high bits for a range split). hashbrown takes its bucket
/// from the low bits and its 7-bit tag from the top bits, so either pattern would crowd buckets or
/// make every tag equal. The murmur3 finaliser spreads every input bit over the whole word.
#[inline]
pub(super) fn table_hash(hash: u64) -> u64 {
    let mut h = hash ^ (hash >> 33);
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Accounted size of an item (ops.md §3).
#[inline]
pub(super) fn accounted_size(key_len: usize, value_len: usize) -> u64 {
    key_len as u64 + value_len as u64 + super::types::ENTRY_OVERHEAD
}

/// One slab slot: a live item or a vacant slot on the free list.
pub(super) struct Entry {
    data: Box<[u8]>,
    pub(super) hash: u64,
    pub(super) version: u64,
    meta: u64,
    pub(super) prev: u32,
    pub(super) next: u32,
}

impl Entry {
    /// A live entry, not yet linked into any list.
    pub(super) fn new(
        hash: u64,
        key: &[u8],
        value: &[u8],
        version: u64,
        origin: u16,
        expires_at_ms: u64,
    ) -> Entry {
        Entry {
            data: pack(key, value),
            hash,
            version,
            meta: pack_meta(expires_at_ms, false, origin),
            prev: NIL,
            next: NIL,
        }
    }

    /// A vacant slot whose free-list successor is `next_free`.
    pub(super) fn vacant(next_free: u32) -> Entry {
        Entry {
            data: Box::default(),
            hash: 0,
            version: 0,
            meta: 0,
            prev: NIL,
            next: next_free,
        }
    }

    #[inline]
    pub(super) fn is_vacant(&self) -> bool {
        self.data.is_empty()
    }

    /// `(prefix length, key length)` decoded from the LEB128 prefix.
    #[inline]
    fn header(&self) -> (usize, usize) {
        let mut len = 0usize;
        for (i, &b) in self.data.iter().enumerate() {
            len |= usize::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return (i + 1, len);
            }
        }
        (0, 0) // vacant
    }

    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        let (start, len) = self.header();
        &self.data[start..start + len]
    }

    #[inline]
    pub(super) fn value(&self) -> &[u8] {
        let (start, len) = self.header();
        &self.data[start + len..]
    }

    /// Accounted size (key + value + overhead); 0 for a vacant slot.
    pub(super) fn size(&self) -> u64 {
        if self.is_vacant() {
            return 0;
        }
        let (start, len) = self.header();
        accounted_size(len, self.data.len() - start - len)
    }

    #[inline]
    pub(super) fn expires_at_ms(&self) -> u64 {
        self.meta >> EXPIRES_SHIFT
    }

    #[inline]
    pub(super) fn has_deadline(&self) -> bool {
        self.expires_at_ms() != 0
    }

    /// True for a live entry whose deadline has passed (`now >= deadline`).
    #[inline]
    pub(super) fn is_expired(&self, now_ms: u64) -> bool {
        let at = self.expires_at_ms();
        at != 0 && now_ms >= at
    }

    #[inline]
    pub(super) fn origin(&self) -> u16 {
        (self.meta & ORIGIN_MASK) as u16
    }

    pub(super) fn set_origin(&mut self, origin: u16) {
        self.meta = (self.meta & !ORIGIN_MASK) | u64::from(origin);
    }

    #[inline]
    pub(super) fn referenced(&self) -> bool {
        self.meta & REF_BIT != 0
    }

    #[inline]
    pub(super) fn set_referenced(&mut self, on: bool) {
        if on {
            self.meta |= REF_BIT;
        } else {
            self.meta &= !REF_BIT;
        }
    }

    /// Overwrites value, version, origin and deadline in place, keeping the key and the links;
    /// the reference bit is cleared (a write is not a read).
    pub(super) fn rewrite(&mut self, value: &[u8], version: u64, origin: u16, expires_at_ms: u64) {
        self.data = pack(self.key(), value);
        self.version = version;
        self.meta = pack_meta(expires_at_ms, false, origin);
    }
}

fn pack_meta(expires_at_ms: u64, referenced: bool, origin: u16) -> u64 {
    let mut meta = (expires_at_ms.min(MAX_EXPIRES_MS) << EXPIRES_SHIFT) | u64::from(origin);
    if referenced {
        meta |= REF_BIT;
    }
    meta
}

/// `LEB128(key.len()) ++ key ++ value` in one exactly-sized allocation.
fn pack(key: &[u8], value: &[u8]) -> Box<[u8]> {
    let mut prefix = [0u8; 10];
    let mut n = 0;
    let mut len = key.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            prefix[n] = byte;
            n += 1;
            break;
        }
        prefix[n] = byte | 0x80;
        n += 1;
    }
    let mut data = Vec::with_capacity(n + key.len() + value.len());
    data.extend_from_slice(&prefix[..n]);
    data.extend_from_slice(key);
    data.extend_from_slice(value);
    // Capacity equals length, so this does not reallocate.
    data.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_is_48_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }

    #[test]
    fn round_trips_fields() {
        for key_len in [0usize, 1, 127, 128, 1024, 20_000] {
            let key = vec![b'k'; key_len];
            let e = Entry::new(7, &key, b"value", 9, 513, 1_764_140_000_000);
            assert!(!e.is_vacant());
            assert_eq!(e.key(), &key[..]);
            assert_eq!(e.value(), b"value");
            assert_eq!(e.origin(), 513);
            assert_eq!(e.expires_at_ms(), 1_764_140_000_000);
            assert_eq!(e.size(), key_len as u64 + 5 + super::super::ENTRY_OVERHEAD);
        }
    }

    #[test]
    fn meta_bits_are_independent() {
        let mut e = Entry::new(1, b"k", b"", 1, u16::MAX, u64::MAX);
        assert_eq!(e.expires_at_ms(), MAX_EXPIRES_MS);
        e.set_referenced(true);
        e.set_origin(3);
        assert!(e.referenced());
        assert_eq!(e.origin(), 3);
        assert_eq!(e.expires_at_ms(), MAX_EXPIRES_MS);
        e.rewrite(b"v2", 2, 4, 0);
        assert!(!e.referenced() && !e.has_deadline());
        assert_eq!((e.key(), e.value(), e.origin()), (&b"k"[..], &b"v2"[..], 4));
        assert!(Entry::vacant(NIL).is_vacant());
    }
}
