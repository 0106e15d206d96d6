//! The cluster key browser's fan-out (api.md §10.1): every alive member (this node through its
//! own data cores, the others over `/internal/keys`) lists its owned live keys matching the
//! pattern; the lists merge into the `max` smallest distinct keys.
//!
//! [`KeySet`] is the pure part: a sorted set that never holds more than `max` keys and remembers
//! whether more matched. Each member's listing fills its own set (so a member's share is bounded
//! while its pages stream in), then the sets merge: the global `max` smallest are always among
//! the union of every member's `max` smallest. The data cores list in background slices
//! (`runtime::scan`) and this driver yields between pages, so no core stalls while it scans.

use std::collections::BTreeSet;
use std::rc::Rc;

use super::ControlCtx;
use crate::dist::glob::Pattern;
use crate::dist::membership::State;
use crate::dist::protocol::KeysPage;
use crate::runtime::msg::{Browse, Op, Reply};

/// Keys per `/internal/keys` page and per data-core page.
const PAGE: usize = 10_000;

/// At most `max` keys, the smallest seen; `truncated` once more than `max` distinct keys were
/// offered.
pub struct KeySet {
    max: usize,
    keys: BTreeSet<String>,
    truncated: bool,
}

impl KeySet {
    pub fn new(max: usize) -> KeySet {
        KeySet {
            max: max.max(1),
            keys: BTreeSet::new(),
            truncated: false,
        }
    }

    pub fn add(&mut self, key: String) {
        if self.keys.len() == self.max {
            // Full: a key above the largest kept one only proves that more matched.
            match self.keys.last() {
                Some(last) if key >= *last => {
                    self.truncated |= key != *last;
                    return;
                }
                _ => {}
            }
            if self.keys.contains(&key) {
                return;
            }
            self.keys.pop_last();
            self.truncated = true;
        }
        self.keys.insert(key);
    }

    pub fn merge(&mut self, other: KeySet) {
        self.truncated |= other.truncated;
        for k in other.keys {
            self.add(k);
        }
    }

    /// The kept keys, sorted byte-wise, and whether more matched.
    pub fn finish(self) -> (Vec<String>, bool) {
        (self.keys.into_iter().collect(), self.truncated)
    }
}

impl ControlCtx {
    /// Lists the keys matching `q` on every alive member, at most `max` of them.
    /// `q` as the client wrote it (for the peers), `pattern` as parsed from it (for our cores).
    pub async fn browse_keys(self: &Rc<Self>, q: String, pattern: Pattern, max: usize) -> Browse {
        let me = self.node.node_id().to_string();
        let peers: Vec<(String, String)> = self
            .member_table()
            .into_iter()
            .filter(|m| m.id != me && m.state == State::Alive)
            .map(|m| (m.id, m.address))
            .collect();
        // Every member at once: one task per peer, this node's own cores meanwhile.
        let tasks: Vec<_> = peers
            .into_iter()
            .map(|(id, addr)| {
                let (ctl, q) = (self.clone(), q.clone());
                let task = glommio::spawn_local(async move { ctl.peer_keys(&addr, &q, max).await });
                (id, task)
            })
            .collect();
        let mut all = self.local_keys(pattern, max).await;
        let mut partial = Vec::new();
        for (id, task) in tasks {
            match task.await {
                Ok(set) => all.merge(set),
                Err(e) => {
                    log::debug!("key browser: {id} did not answer: {e}");
                    partial.push(id);
                }
            }
        }
        let (keys, truncated) = all.finish();
        partial.sort();
        Browse {
            keys,
            truncated,
            partial,
        }
    }

    /// This node's owned live keys matching `q`, from every data core, page by page.
    async fn local_keys(&self, pattern: Pattern, max: usize) -> KeySet {
        let mut set = KeySet::new(max);
        let ring = self.ring.borrow().clone();
        for core in 0..self.cores {
            let mut from = 0;
            loop {
                let op = Op::Keys {
                    ring: ring.clone(),
                    pattern: pattern.clone(),
                    from,
                    limit: PAGE,
                };
                let Reply::KeyPage(page, next) = self.dispatch.call(core, op).await else {
                    break;
                };
                for k in page {
                    set.add(k);
                }
                glommio::yield_if_needed().await;
                match next {
                    Some(slot) => from = slot,
                    None => break,
                }
            }
        }
        set
    }

    /// One peer's owned live keys matching `q`, over `/internal/keys`.
    async fn peer_keys(&self, addr: &str, q: &str, max: usize) -> Result<KeySet, String> {
        let mut set = KeySet::new(max);
        let mut cursor = String::new();
        loop {
            let call = KeysPage {
                q,
                limit: PAGE,
                cursor: &cursor,
            };
            let page = self
                .peers
                .data_call(addr, &call)
                .await
                .map_err(|e| format!("/internal/keys {e}"))?;
            for k in page.keys {
                set.add(k);
            }
            glommio::yield_if_needed().await;
            if page.next_cursor.is_empty() {
                return Ok(set);
            }
            cursor = page.next_cursor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(max: usize, keys: &[&str]) -> KeySet {
        let mut s = KeySet::new(max);
        for k in keys {
            s.add(k.to_string());
        }
        s
    }

    #[test]
    fn keeps_the_smallest_distinct_keys_and_knows_when_more_matched() {
        let (keys, truncated) = set(3, &["d", "b", "b", "e", "a", "c", "a"]).finish();
        assert_eq!(keys, ["a", "b", "c"]);
        assert!(truncated);
        let (keys, truncated) = set(3, &["b", "a", "b", "c", "c"]).finish();
        assert_eq!(keys, ["a", "b", "c"]);
        assert!(!truncated, "duplicates of kept keys are not more matches");
        let (keys, truncated) = set(5, &["z", "y"]).finish();
        assert_eq!(
            (keys, truncated),
            (vec!["y".to_string(), "z".to_string()], false)
        );
    }

    #[test]
    fn merging_replicas_deduplicates_and_caps() {
        let mut a = set(3, &["k1", "k2", "k5"]);
        a.merge(set(3, &["k2", "k5", "k1"]));
        assert_eq!(
            a.finish(),
            (vec!["k1".into(), "k2".into(), "k5".into()], false)
        );
        let mut a = set(3, &["k1", "k4"]);
        a.merge(set(3, &["k2", "k3"]));
        assert_eq!(
            a.finish(),
            (vec!["k1".into(), "k2".into(), "k3".into()], true)
        );
        let mut a = set(2, &["a"]);
        a.merge(set(2, &["b", "c", "d"]));
        assert!(
            a.finish().1,
            "a member that overflowed makes the whole listing truncated"
        );
    }

    #[test]
    fn byte_wise_order() {
        let (keys, _) = set(10, &["first-10", "first-2", "First", "first-1"]).finish();
        assert_eq!(keys, ["First", "first-1", "first-10", "first-2"]);
    }
}
