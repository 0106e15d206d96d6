//! Hinted handoff queues (cluster.md §8): a pure structure, one FIFO per
//! target node, bounded per target and in total bytes. The replay driver
//! (`control/replay.rs`) sends them; nothing here does I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::store::entry::Entry;

/// Per-hint accounting beyond key and value bytes (same as an entry's).
pub const HINT_OVERHEAD: u64 = 64;

#[derive(Debug, Clone)]
pub struct Hint {
    pub key: String,
    /// Carries its original version; items keep their absolute deadline.
    pub entry: Entry,
    pub enqueued_ms: u64,
    pub size: u64,
}

/// What a queue operation did, for the metrics of cluster.md §14.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HintCounts {
    pub queued: u64,
    pub dropped: u64,
    pub global_dropped: u64,
    pub expired: u64,
}

/// One target's queue. `order` keeps FIFO order; `map` holds the live hint
/// of each key, so coalescing and removal are O(1) (a linear search was
/// quadratic when a dead owner's backlog turned into hints at once).
/// Entries of `order` whose sequence no longer matches `map` are stale and
/// skipped.
#[derive(Default)]
struct Queue {
    order: VecDeque<(String, u64)>,
    map: HashMap<String, (u64, Hint)>,
    next_seq: u64,
}

impl Queue {
    fn live_front(&mut self) -> Option<&(u64, Hint)> {
        while let Some((k, seq)) = self.order.front() {
            if self.map.get(k).is_some_and(|(s, _)| s == seq) {
                return self.map.get(k);
            }
            self.order.pop_front();
        }
        None
    }

    fn pop_front(&mut self) -> Option<Hint> {
        self.live_front()?;
        let (k, _) = self.order.pop_front()?;
        self.map.remove(&k).map(|(_, h)| h)
    }

    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, seq)| map.get(k).is_some_and(|(s, _)| s == seq));
        }
    }
}

pub struct HintQueues {
    queues: BTreeMap<String, Queue>,
    bytes: u64,
    max_per_node: usize,
    max_bytes: u64,
    ttl_ms: u64,
}

fn size_of(key: &str, entry: &Entry) -> u64 {
    let value = match entry {
        Entry::Item { value, .. } => value.len(),
        Entry::Tombstone { .. } => 0,
    };
    key.len() as u64 + value as u64 + HINT_OVERHEAD
}

impl HintQueues {
    pub fn new(max_per_node: usize, max_bytes: u64, ttl_ms: u64) -> HintQueues {
        HintQueues {
            queues: BTreeMap::new(),
            bytes: 0,
            max_per_node: max_per_node.max(1),
            max_bytes,
            ttl_ms,
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn len(&self, target: &str) -> usize {
        self.queues.get(target).map_or(0, |q| q.map.len())
    }

    /// The length of the longest per-target queue (the one nearest HINT_MAX_PER_NODE).
    pub fn longest(&self) -> usize {
        self.queues.values().map(|q| q.map.len()).max().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.queues.values().all(|q| q.map.is_empty())
    }

    pub fn targets(&self) -> Vec<String> {
        self.queues
            .iter()
            .filter(|(_, q)| !q.map.is_empty())
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Queues a hint for `target`. A newer hint for the same key replaces the
    /// queued one in place (not a drop).
    pub fn push(&mut self, target: &str, key: &str, entry: Entry, now_ms: u64) -> HintCounts {
        let mut c = HintCounts::default();
        if self.ttl_ms == 0 {
            return c;
        }
        let size = size_of(key, &entry);
        let q = self.queues.entry(target.to_string()).or_default();
        if let Some((_, h)) = q.map.get_mut(key) {
            if entry.newer_than(&h.entry) {
                self.bytes = self.bytes - h.size + size;
                h.entry = entry;
                h.size = size;
                h.enqueued_ms = now_ms;
            }
            c.queued = 1;
            return c;
        }
        if q.map.len() >= self.max_per_node {
            if let Some(old) = q.pop_front() {
                self.bytes -= old.size;
                c.dropped += 1;
            }
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        q.order.push_back((key.to_string(), seq));
        q.map.insert(
            key.to_string(),
            (
                seq,
                Hint {
                    key: key.to_string(),
                    entry,
                    enqueued_ms: now_ms,
                    size,
                },
            ),
        );
        q.compact();
        self.bytes += size;
        c.queued = 1;
        while self.bytes > self.max_bytes {
            // Drop the oldest hint of all queues.
            let oldest = self
                .queues
                .iter_mut()
                .filter_map(|(t, q)| q.live_front().map(|(_, h)| (h.enqueued_ms, t.clone())))
                .min();
            let Some((_, t)) = oldest else { break };
            if let Some(h) = self.queues.get_mut(&t).and_then(Queue::pop_front) {
                self.bytes -= h.size;
                c.global_dropped += 1;
            }
        }
        c
    }

    /// Discards hints older than the TTL and hints whose item has expired.
    pub fn expire(&mut self, now_ms: u64) -> HintCounts {
        let mut c = HintCounts::default();
        let ttl = self.ttl_ms;
        let mut freed = 0;
        for q in self.queues.values_mut() {
            q.map.retain(|_, (_, h)| {
                let old = now_ms.saturating_sub(h.enqueued_ms) >= ttl;
                let dead = matches!(h.entry, Entry::Item { expires_at_ms, .. } if expires_at_ms != 0 && expires_at_ms <= now_ms);
                if old || dead {
                    freed += h.size;
                    c.expired += 1;
                    false
                } else {
                    true
                }
            });
            q.compact();
        }
        self.bytes -= freed;
        c
    }

    /// Drops every hint of `target` (it left the cluster).
    pub fn drop_target(&mut self, target: &str) -> u64 {
        let Some(q) = self.queues.remove(target) else {
            return 0;
        };
        for (_, h) in q.map.values() {
            self.bytes -= h.size;
        }
        q.map.len() as u64
    }

    /// Drops the hints of `target` for which `keep` says false.
    pub fn retain(&mut self, target: &str, mut keep: impl FnMut(&Hint) -> bool) -> u64 {
        let Some(q) = self.queues.get_mut(target) else {
            return 0;
        };
        let before = q.map.len();
        let mut freed = 0;
        q.map.retain(|_, (_, h)| {
            let k = keep(h);
            if !k {
                freed += h.size;
            }
            k
        });
        q.compact();
        self.bytes -= freed;
        (before - q.map.len()) as u64
    }

    /// The oldest `max` hints of `target`, still queued.
    pub fn peek(&self, target: &str, max: usize) -> Vec<Hint> {
        let Some(q) = self.queues.get(target) else {
            return Vec::new();
        };
        q.order
            .iter()
            .filter_map(|(k, seq)| {
                q.map
                    .get(k)
                    .filter(|(s, _)| s == seq)
                    .map(|(_, h)| h.clone())
            })
            .take(max)
            .collect()
    }

    /// Removes the hint of `key` from `target` if it is still the one sent
    /// (same version and origin): a newer coalesced hint stays queued.
    pub fn remove_sent(&mut self, target: &str, key: &str, sent: &Entry) -> bool {
        let Some(q) = self.queues.get_mut(target) else {
            return false;
        };
        if !q.map.get(key).is_some_and(|(_, h)| h.entry == *sent) {
            return false;
        }
        if let Some((_, h)) = q.map.remove(key) {
            self.bytes -= h.size;
        }
        q.compact();
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: u64, len: usize, exp: u64) -> Entry {
        Entry::Item {
            value: vec![b'x'; len].into(),
            version: v,
            origin: "n1".into(),
            expires_at_ms: exp,
        }
    }

    #[test]
    fn per_target_cap_drops_oldest() {
        let mut h = HintQueues::new(2, u64::MAX, 30_000);
        h.push("b", "k1", item(1, 1, 0), 0);
        h.push("b", "k2", item(1, 1, 0), 1);
        let c = h.push("b", "k3", item(1, 1, 0), 2);
        assert_eq!(c.dropped, 1);
        assert_eq!(
            h.peek("b", 10)
                .iter()
                .map(|x| x.key.as_str())
                .collect::<Vec<_>>(),
            ["k2", "k3"]
        );
        assert_eq!(h.longest(), 2, "at the per-target cap");
        h.push("c", "k1", item(1, 1, 0), 3);
        assert_eq!(h.longest(), 2, "the longest queue, not the total");
        assert_eq!(HintQueues::new(2, u64::MAX, 30_000).longest(), 0);
    }

    #[test]
    fn global_bytes_cap_drops_oldest_of_all() {
        let one = size_of("k1", &item(1, 10, 0));
        let mut h = HintQueues::new(100, 2 * one, 30_000);
        h.push("a", "k1", item(1, 10, 0), 0);
        h.push("b", "k2", item(1, 10, 0), 1);
        let c = h.push("b", "k3", item(1, 10, 0), 2);
        assert_eq!(c.global_dropped, 1);
        assert_eq!(h.len("a"), 0);
        assert!(h.bytes() <= 2 * one);
    }

    #[test]
    fn coalesces_newer_in_place_and_expires() {
        let mut h = HintQueues::new(10, u64::MAX, 1000);
        h.push("b", "k", item(1, 1, 0), 0);
        h.push("b", "k", item(2, 5, 0), 10);
        assert_eq!(h.len("b"), 1);
        assert_eq!(h.peek("b", 1)[0].entry.version(), 2);
        h.push("b", "e", item(3, 1, 500), 10);
        assert_eq!(h.expire(600).expired, 1, "expired item");
        assert_eq!(h.expire(1010).expired, 1, "older than the TTL");
        assert_eq!(h.bytes(), 0);
    }

    #[test]
    fn many_hints_for_one_target_stay_bounded_oldest_first() {
        let mut h = HintQueues::new(100_000, u64::MAX, 30_000);
        for i in 0..200_000u64 {
            h.push("b", &format!("k{}", i % 150_000), item(i + 1, 1, 0), i);
        }
        assert_eq!(h.len("b"), 100_000);
        let first = h.peek("b", 1)[0].key.clone();
        assert_ne!(first, "k0", "the oldest were dropped at the per-target cap");
    }

    #[test]
    fn disabled_with_zero_ttl() {
        let mut h = HintQueues::new(10, u64::MAX, 0);
        assert_eq!(h.push("b", "k", item(1, 1, 0), 0).queued, 0);
        assert!(h.is_empty());
    }

    #[test]
    fn remove_sent_keeps_a_newer_hint() {
        let mut h = HintQueues::new(10, u64::MAX, 30_000);
        h.push("b", "k", item(1, 1, 0), 0);
        let sent = h.peek("b", 1)[0].entry.clone();
        h.push("b", "k", item(2, 1, 0), 1);
        assert!(!h.remove_sent("b", "k", &sent));
        assert_eq!(h.len("b"), 1);
    }
}
