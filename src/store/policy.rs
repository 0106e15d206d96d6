//! Eviction policies over the slab's recency list.
//!
//! Both policies share one list (head = newest, tail = next candidate) and differ only in what a
//! hit does and how the victim is picked:
//!
//! * **LRU** (default): a hit moves the entry to the head; the victim is the tail. Exact recency,
//!   at the price of rewriting three entries' links on every hit.
//! * **CLOCK** (second-chance FIFO, equivalent to the classic clock hand): a hit only sets the
//!   entry's reference bit, so reads touch nothing but the entry itself. When the tail is picked
//!   and its bit is set, the bit is cleared and the entry goes back to the head for one more lap;
//!   the first unreferenced tail is the victim. Each bit set by a hit is cleared at most once, so
//!   victim search is O(1) amortised.
//!
//! Either way an entry read since it was written outlives one never read (ops.md §3.1). New and
//! overwritten entries enter at the head with the bit clear.

use super::slab::Slab;

/// `HYPERCACHE_EVICTION`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    #[default]
    Lru,
    Clock,
}

impl Policy {
    /// The configuration spelling (`lru`, `clock`).
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Lru => "lru",
            Policy::Clock => "clock",
        }
    }

    /// Parses a configuration value (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<Policy> {
        if name.eq_ignore_ascii_case("lru") {
            Some(Policy::Lru)
        } else if name.eq_ignore_ascii_case("clock") {
            Some(Policy::Clock)
        } else {
            None
        }
    }

    /// Records a hit on `idx`.
    #[inline]
    pub(super) fn on_hit(self, slab: &mut Slab, idx: u32) {
        match self {
            Policy::Lru => slab.move_to_front(idx),
            Policy::Clock => slab.get_mut(idx).set_referenced(true),
        }
    }

    /// The next victim (left in place; the caller removes it), or `None` when the list is empty.
    pub(super) fn victim(self, slab: &mut Slab) -> Option<u32> {
        match self {
            Policy::Lru => slab.tail(),
            Policy::Clock => loop {
                let idx = slab.tail()?;
                let e = slab.get_mut(idx);
                if !e.referenced() {
                    return Some(idx);
                }
                e.set_referenced(false);
                slab.move_to_front(idx);
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::Entry;
    use super::*;

    fn filled(n: u8) -> (Slab, Vec<u32>) {
        let mut s = Slab::new(u64::from(n));
        let ids = (0..n)
            .map(|i| s.insert(Entry::new(0, &[i], b"", 1, 0, 0)))
            .collect();
        (s, ids)
    }

    #[test]
    fn lru_victim_is_least_recent() {
        let (mut s, ids) = filled(3);
        Policy::Lru.on_hit(&mut s, ids[0]);
        assert_eq!(Policy::Lru.victim(&mut s), Some(ids[1]));
    }

    #[test]
    fn clock_gives_second_chance() {
        let (mut s, ids) = filled(3);
        Policy::Clock.on_hit(&mut s, ids[0]);
        assert_eq!(Policy::Clock.victim(&mut s), Some(ids[1]));
        assert!(!s.get(ids[0]).referenced());
        // Everything referenced: one full lap clears the bits, then the oldest goes.
        for &i in &ids {
            Policy::Clock.on_hit(&mut s, i);
        }
        assert_eq!(Policy::Clock.victim(&mut s), Some(ids[1]));
    }

    #[test]
    fn names() {
        assert_eq!(Policy::from_name("LRU"), Some(Policy::Lru));
        assert_eq!(Policy::from_name("clock"), Some(Policy::Clock));
        assert_eq!(Policy::from_name("lfu"), None);
        assert_eq!(Policy::default().as_str(), "lru");
    }
}
