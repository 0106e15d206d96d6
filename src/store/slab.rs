//! The slab: entries in a `Vec`, vacant slots on a free list, live entries on an intrusive
//! doubly linked recency list.
//!
//! Slab indices are stable for an entry's lifetime, so the index can hold a `u32` instead of a
//! pointer and the list links are `u32`s inside the entries: no per-node allocation, half the
//! size of pointers. The list runs from `head` (newest) to `tail` (next eviction candidate);
//! [`Policy`](super::Policy) decides who moves where.

use super::entry::{Entry, NIL};

pub(super) struct Slab {
    entries: Vec<Entry>,
    /// First vacant slot, or NIL. Reusing slots keeps `entries.len()` at the peak item count.
    free: u32,
    /// Most recently inserted / used entry.
    head: u32,
    /// Least recently used entry: where the policy looks for a victim.
    tail: u32,
    live: usize,
    /// Growth cap: the item limit; the slab never needs more slots than items it may hold, so
    /// growing past it would only waste memory.
    max_slots: usize,
}

impl Slab {
    pub(super) fn new(max_items: u64) -> Slab {
        let max_slots = usize::try_from(max_items)
            .unwrap_or(usize::MAX)
            .clamp(1, NIL as usize);
        Slab {
            entries: Vec::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            live: 0,
            max_slots,
        }
    }

    /// Live entries.
    #[inline]
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Slots (live and vacant): the range of valid indices.
    #[inline]
    pub(super) fn slots(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub(super) fn get(&self, idx: u32) -> &Entry {
        &self.entries[idx as usize]
    }

    #[inline]
    pub(super) fn get_mut(&mut self, idx: u32) -> &mut Entry {
        &mut self.entries[idx as usize]
    }

    /// Least recently used entry, if any.
    #[inline]
    pub(super) fn tail(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// Stores `entry` in a free slot (or a new one) and links it at the head.
    pub(super) fn insert(&mut self, entry: Entry) -> u32 {
        let idx = if self.free != NIL {
            let idx = self.free;
            self.free = self.entries[idx as usize].next;
            self.entries[idx as usize] = entry;
            idx
        } else {
            let len = self.entries.len();
            assert!(len < NIL as usize, "slab index space exhausted");
            if len == self.entries.capacity() {
                // Grow by half (still amortised O(1)) rather than double, and never past the item
                // limit: the unused tail of a doubled Vec would cost up to 48 bytes per item.
                let want = (len / 2).max(16);
                let room = self.max_slots.saturating_sub(len).max(1);
                self.entries.reserve_exact(want.min(room));
            }
            self.entries.push(entry);
            len as u32
        };
        self.live += 1;
        self.link_front(idx);
        idx
    }

    /// Unlinks and vacates `idx`, returning the entry that was there.
    pub(super) fn remove(&mut self, idx: u32) -> Entry {
        debug_assert!(!self.get(idx).is_vacant());
        self.unlink(idx);
        let old = std::mem::replace(&mut self.entries[idx as usize], Entry::vacant(self.free));
        self.free = idx;
        self.live -= 1;
        old
    }

    /// Takes `idx` out of the recency list (it stays live); `link_front` puts it back.
    pub(super) fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let e = &self.entries[idx as usize];
            (e.prev, e.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        let e = &mut self.entries[idx as usize];
        e.prev = NIL;
        e.next = NIL;
    }

    /// Links an unlinked live entry at the head.
    pub(super) fn link_front(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let e = &mut self.entries[idx as usize];
            e.prev = NIL;
            e.next = old_head;
        }
        if old_head == NIL {
            self.tail = idx;
        } else {
            self.entries[old_head as usize].prev = idx;
        }
        self.head = idx;
    }

    pub(super) fn move_to_front(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.link_front(idx);
        }
    }

    /// Live entries in slot order.
    pub(super) fn iter_live(&self) -> impl Iterator<Item = (u32, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_vacant())
            .map(|(i, e)| (i as u32, e))
    }

    /// Live entries in slot order, mutably (origin re-mapping).
    pub(super) fn iter_live_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut().filter(|e| !e.is_vacant())
    }

    /// Drops every entry and releases the memory.
    pub(super) fn clear(&mut self) {
        *self = Slab {
            max_slots: self.max_slots,
            ..Slab::new(1)
        };
    }

    /// Recency list from head to tail (tests check it against the live set).
    #[cfg(test)]
    pub(super) fn list(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = self.head;
        let mut prev = NIL;
        while cur != NIL {
            assert_eq!(self.get(cur).prev, prev, "broken back link at {cur}");
            out.push(cur);
            prev = cur;
            cur = self.get(cur).next;
            assert!(out.len() <= self.entries.len(), "cycle in recency list");
        }
        assert_eq!(self.tail, prev);
        out
    }

    /// Vacant slots reachable from the free list (tests).
    #[cfg(test)]
    pub(super) fn free_count(&self) -> usize {
        let mut n = 0;
        let mut cur = self.free;
        while cur != NIL {
            assert!(self.get(cur).is_vacant());
            n += 1;
            cur = self.get(cur).next;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(k: &[u8]) -> Entry {
        Entry::new(0, k, b"", 1, 0, 0)
    }

    #[test]
    fn list_and_free_list() {
        let mut s = Slab::new(100);
        let a = s.insert(entry(b"a"));
        let b = s.insert(entry(b"b"));
        let c = s.insert(entry(b"c"));
        assert_eq!(s.list(), vec![c, b, a]);
        s.move_to_front(a);
        assert_eq!(s.list(), vec![a, c, b]);
        assert_eq!(s.remove(c).key(), b"c");
        assert_eq!(s.list(), vec![a, b]);
        assert_eq!((s.live(), s.free_count()), (2, 1));
        // The freed slot is reused before the Vec grows.
        let d = s.insert(entry(b"d"));
        assert_eq!(d, c);
        assert_eq!(s.slots(), 3);
        assert_eq!(s.tail(), Some(b));
        s.clear();
        assert_eq!((s.live(), s.slots(), s.tail()), (0, 0, None));
    }

    #[test]
    fn growth_stops_at_item_limit() {
        let mut s = Slab::new(20);
        for i in 0..20u8 {
            s.insert(entry(&[i]));
        }
        assert!(s.entries.capacity() <= 20 + 1);
    }
}
