//! The log: a shard's items written back to back into segments, oldest segment first.
//!
//! ```text
//!  order: [ seg 3 (seq 7) | seg 0 (seq 8) | seg 5 (seq 9) ]   <- head: appends go here
//!           ^ tail cursor: items before it are processed (moved or dropped)
//!  seg buf: [item][item][dead item][item] ... unused capacity
//! ```
//!
//! * Items never straddle segments. A segment is `seg_size` bytes (1 MiB, smaller for small byte
//!   budgets so eviction stays fine-grained); an item bigger than that gets a segment of its own.
//! * An overwritten, deleted, evicted or moved item only has its `live` bit cleared; its bytes are
//!   dead space counted in `dead` until the segment is released. A segment whose bytes are all dead
//!   is released at once (items that expire together free their segment without copying); the
//!   others are cleaned from the tail by the shard (`policy.rs`), which moves or drops what is still
//!   live.
//! * An [`Addr`] is `segment id << 24 | offset`: it fits the index's 44 address bits. Segment ids
//!   are reused; positions for scans ([`Log::seek`]) use the segment's sequence number instead,
//!   which only grows, so a scan that resumes after segments came and went neither repeats nor
//!   misses a segment.
//! * One released segment's buffer is kept for the next one, so a shard that cycles through its
//!   budget does not go back to the allocator for every segment.

use std::collections::VecDeque;

use super::item::LIVE;

/// `segment id << OFF_BITS | offset`.
pub(super) type Addr = u64;

const OFF_BITS: u32 = 24;
const OFF_MASK: u64 = (1 << OFF_BITS) - 1;
/// Segment ids fit in 20 bits, so an address fits in 44.
const MAX_SEGMENTS: usize = 1 << 20;
/// Segment size without a byte budget.
pub(super) const SEG_SIZE: usize = 1 << 20;
/// Smallest segment size (tiny byte budgets).
const MIN_SEG_SIZE: usize = 4096;

struct Seg {
    buf: Vec<u8>,
    seq: u64,
    dead: usize,
}

pub(super) struct Log {
    /// By segment id; a free id has an empty `buf`.
    segs: Vec<Seg>,
    free_ids: Vec<u32>,
    /// Segment ids in age order; the back one is the head.
    order: VecDeque<u32>,
    seg_size: usize,
    /// Bytes written into the segments in `order` (live and dead): what is resident. A sealed
    /// segment's unused end was never touched, and a segment of 128 KiB or more is its own
    /// mapping (`main.rs` pins glibc's mmap threshold), so those pages never become RSS.
    used: usize,
    /// Dead bytes in the segments in `order`.
    dead: usize,
    next_seq: u64,
    /// Bytes of `order.front()` already processed by the tail cursor.
    tail_off: usize,
    spare: Option<Vec<u8>>,
}

/// The segment size for a shard with this byte budget: 1/64 of it, between 4 KiB and 1 MiB, so
/// that one segment is a small part of the budget.
pub(super) fn seg_size_for(max_bytes: Option<u64>) -> usize {
    match max_bytes {
        None => SEG_SIZE,
        Some(b) => {
            let want = usize::try_from(b / 64).unwrap_or(SEG_SIZE);
            want.clamp(MIN_SEG_SIZE, SEG_SIZE).next_power_of_two()
        }
    }
}

impl Log {
    pub(super) fn new(seg_size: usize) -> Log {
        Log {
            segs: Vec::new(),
            free_ids: Vec::new(),
            order: VecDeque::new(),
            seg_size,
            used: 0,
            dead: 0,
            next_seq: 0,
            tail_off: 0,
            spare: None,
        }
    }

    #[inline]
    pub(super) fn used(&self) -> usize {
        self.used
    }

    #[inline]
    pub(super) fn dead(&self) -> usize {
        self.dead
    }

    pub(super) fn segments(&self) -> usize {
        self.order.len()
    }

    /// Whether an item of `len` bytes fits the head segment without opening a new one.
    #[inline]
    pub(super) fn fits_head(&self, len: usize) -> bool {
        self.order.back().is_some_and(|&id| {
            let b = &self.segs[id as usize].buf;
            b.len() + len <= b.capacity()
        })
    }

    /// Appends `len` bytes at the head (opening a segment if needed) and returns their address and
    /// the bytes to fill.
    pub(super) fn append(&mut self, len: usize) -> (Addr, &mut [u8]) {
        if !self.fits_head(len) {
            self.open(len);
        }
        let id = *self.order.back().expect("a head segment");
        let buf = &mut self.segs[id as usize].buf;
        let off = buf.len();
        buf.resize(off + len, 0);
        self.used += len;
        ((u64::from(id) << OFF_BITS) | off as u64, &mut buf[off..])
    }

    fn open(&mut self, len: usize) {
        let cap = len.max(self.seg_size);
        let buf = match self.spare.take() {
            Some(b) if b.capacity() == cap => b,
            _ => Vec::with_capacity(cap),
        };
        let seg = Seg {
            buf,
            seq: self.next_seq,
            dead: 0,
        };
        self.next_seq += 1;
        let id = match self.free_ids.pop() {
            Some(id) => {
                self.segs[id as usize] = seg;
                id
            }
            None => {
                assert!(self.segs.len() < MAX_SEGMENTS, "segment ids exhausted");
                self.segs.push(seg);
                (self.segs.len() - 1) as u32
            }
        };
        if self.order.is_empty() {
            self.tail_off = 0;
        }
        self.order.push_back(id);
    }

    /// Copies the live `len`-byte item at `addr` to the head (clearing its reference bit when
    /// `clear_ref`), kills the old copy and returns the new address.
    pub(super) fn relocate(&mut self, addr: Addr, len: usize, clear_ref: bool) -> Addr {
        if !self.fits_head(len) {
            self.open(len);
        }
        let head = *self.order.back().expect("a head segment") as usize;
        let (src, off) = ((addr >> OFF_BITS) as usize, (addr & OFF_MASK) as usize);
        let at = self.segs[head].buf.len();
        if src == head {
            self.segs[head].buf.extend_from_within(off..off + len);
        } else {
            let (s, h) = if src < head {
                let (a, b) = self.segs.split_at_mut(head);
                (&a[src], &mut b[0])
            } else {
                let (a, b) = self.segs.split_at_mut(src);
                (&b[0], &mut a[head])
            };
            h.buf.extend_from_slice(&s.buf[off..off + len]);
        }
        self.used += len;
        if clear_ref {
            self.segs[head].buf[at] &= !super::item::REF;
        }
        self.kill(addr, len);
        ((head as u64) << OFF_BITS) | at as u64
    }

    /// The item at `addr` and everything after it in its segment.
    #[inline]
    pub(super) fn data(&self, addr: Addr) -> &[u8] {
        &self.segs[(addr >> OFF_BITS) as usize].buf[(addr & OFF_MASK) as usize..]
    }

    #[inline]
    pub(super) fn data_mut(&mut self, addr: Addr) -> &mut [u8] {
        &mut self.segs[(addr >> OFF_BITS) as usize].buf[(addr & OFF_MASK) as usize..]
    }

    /// Marks the `len`-byte item at `addr` dead; releases its segment when nothing in it lives
    /// and it is not the head.
    pub(super) fn kill(&mut self, addr: Addr, len: usize) {
        let id = (addr >> OFF_BITS) as u32;
        let seg = &mut self.segs[id as usize];
        seg.buf[(addr & OFF_MASK) as usize] &= !LIVE;
        seg.dead += len;
        self.dead += len;
        if seg.dead == seg.buf.len() && self.order.back() != Some(&id) {
            let pos = self.order.iter().position(|&s| s == id).expect("in order");
            if pos == 0 {
                self.tail_off = 0;
            }
            self.order.remove(pos);
            self.release(id);
        }
    }

    fn release(&mut self, id: u32) {
        let seg = &mut self.segs[id as usize];
        self.used -= seg.buf.len();
        self.dead -= seg.dead;
        let mut buf = std::mem::take(&mut seg.buf);
        if buf.capacity() == self.seg_size {
            buf.clear();
            self.spare = Some(buf);
        }
        self.free_ids.push(id);
    }

    /// The next item at the tail cursor (live or dead), releasing processed segments on the way;
    /// `None` when the cursor has reached the end of the head.
    pub(super) fn tail(&mut self) -> Option<Addr> {
        loop {
            let &id = self.order.front()?;
            if self.tail_off < self.segs[id as usize].buf.len() {
                return Some((u64::from(id) << OFF_BITS) | self.tail_off as u64);
            }
            if self.order.len() == 1 {
                return None;
            }
            // Every item before the cursor was killed, so the whole segment is dead.
            self.order.pop_front();
            self.tail_off = 0;
            self.release(id);
        }
    }

    /// Moves the tail cursor past the `len`-byte item it pointed at.
    #[inline]
    pub(super) fn advance_tail(&mut self, len: usize) {
        self.tail_off += len;
    }

    /// Id of the segment the tail cursor is in.
    pub(super) fn tail_segment(&self) -> Option<u32> {
        self.order.front().copied()
    }

    /// The first item at or after scan position `pos` (0 = the start): its address and its own
    /// position. Positions are `seq << 24 | offset`, and `pos` must be an item boundary (one this
    /// log returned, or [`Log::align`]ed).
    pub(super) fn seek(&self, pos: u64) -> Option<(Addr, u64)> {
        let (seq, off) = (pos >> OFF_BITS, (pos & OFF_MASK) as usize);
        let first = self
            .order
            .partition_point(|&id| self.segs[id as usize].seq < seq);
        for i in first..self.order.len() {
            let id = self.order[i];
            let s = &self.segs[id as usize];
            let mut start = if s.seq == seq { off } else { 0 };
            if i == 0 {
                start = start.max(self.tail_off);
            }
            if start < s.buf.len() {
                return Some((
                    (u64::from(id) << OFF_BITS) | start as u64,
                    (s.seq << OFF_BITS) | start as u64,
                ));
            }
        }
        None
    }

    /// A position from outside (a paged scan's cursor, which a peer sends back and which may
    /// be stale or made up) moved to the first item boundary at or after it, so decoding never
    /// starts inside an item. Walks the items of that one segment: O(segment) once per page.
    pub(super) fn align(&self, pos: u64) -> u64 {
        let (seq, off) = (pos >> OFF_BITS, (pos & OFF_MASK) as usize);
        if off == 0 {
            return pos;
        }
        let i = self
            .order
            .partition_point(|&id| self.segs[id as usize].seq < seq);
        let Some(&id) = self.order.get(i) else {
            return pos; // past the head: seek finds nothing
        };
        let buf = &self.segs[id as usize].buf;
        if self.segs[id as usize].seq != seq {
            return pos; // that segment is gone: seek starts at the next one
        }
        let mut at = 0;
        while at < off && at < buf.len() {
            at += super::item::decode(&buf[at..]).total();
        }
        if at >= buf.len() {
            (seq + 1) << OFF_BITS
        } else {
            (seq << OFF_BITS) | at as u64
        }
    }

    /// The position just after the `len`-byte item at position `pos`.
    #[inline]
    pub(super) fn after(pos: u64, len: usize) -> u64 {
        let end = (pos & OFF_MASK) + len as u64;
        if end > OFF_MASK {
            ((pos >> OFF_BITS) + 1) << OFF_BITS
        } else {
            (pos & !OFF_MASK) | end
        }
    }

    /// Drops every segment and releases the memory. Sequence numbers keep growing, so a scan
    /// cursor from before the clear skips ahead instead of landing in a new segment.
    pub(super) fn clear(&mut self) {
        let next_seq = self.next_seq;
        *self = Log::new(self.seg_size);
        self.next_seq = next_seq;
    }

    /// Written and dead bytes over segments, recomputed (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        let (mut used, mut dead) = (0, 0);
        for &id in &self.order {
            let s = &self.segs[id as usize];
            assert!(s.dead <= s.buf.len());
            used += s.buf.len();
            dead += s.dead;
        }
        assert_eq!((used, dead), (self.used, self.dead));
        for w in self.order.iter().collect::<Vec<_>>().windows(2) {
            assert!(self.segs[*w[0] as usize].seq < self.segs[*w[1] as usize].seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::item::{decode, encode, item_len};
    use super::*;

    fn put(log: &mut Log, key: &[u8], value: &[u8]) -> (Addr, usize) {
        let len = item_len(key.len(), value.len(), false, 0);
        let (addr, out) = log.append(len);
        encode(out, key, value, 1, 0, 0);
        (addr, len)
    }

    #[test]
    fn appends_fill_segments_and_dead_segments_are_released() {
        let mut log = Log::new(MIN_SEG_SIZE);
        let value = [7u8; 1000];
        let items: Vec<(Addr, usize)> = (0..10u8).map(|i| put(&mut log, &[i], &value)).collect();
        assert_eq!(log.segments(), 3); // 4 items of 1013 bytes per 4 KiB segment
        assert_eq!(decode(log.data(items[5].0)).vlen, 1000);
        // Killing all four items of the first segment releases it; the head is kept.
        for &(a, l) in &items[..4] {
            log.kill(a, l);
        }
        assert_eq!(log.segments(), 2);
        assert_eq!(log.dead(), 0);
        log.check();
        // A scan position from before the release resumes at the next segment's first item.
        let (addr, _) = log.seek(0).unwrap();
        assert_eq!(addr, items[4].0);
        // An item bigger than a segment gets its own.
        let (big, len) = put(&mut log, b"big", &[1u8; 10_000]);
        assert_eq!(decode(log.data(big)).total(), len);
        assert_eq!(log.used(), 6 * items[0].1 + len);
    }

    #[test]
    fn tail_cursor_walks_items_and_releases_processed_segments() {
        let mut log = Log::new(MIN_SEG_SIZE);
        let items: Vec<(Addr, usize)> = (0..9u8).map(|i| put(&mut log, &[i], &[0; 1000])).collect();
        for &(a, l) in &items[..5] {
            assert_eq!(log.tail(), Some(a));
            // The shard's order: move the hand past the item, then kill it (which may release
            // the segment and reset the hand).
            log.advance_tail(l);
            log.kill(a, l);
        }
        assert_eq!(log.tail(), Some(items[5].0));
        assert_eq!(log.segments(), 2);
        log.check();
    }

    #[test]
    fn positions_step_over_large_segments() {
        assert_eq!(Log::after(5 << 24, 100), (5 << 24) | 100);
        assert_eq!(Log::after(5 << 24, 1 << 25), 6 << 24);
        assert_eq!(seg_size_for(Some(1 << 30)), SEG_SIZE);
        assert_eq!(seg_size_for(Some(1000)), MIN_SEG_SIZE);
    }
}
