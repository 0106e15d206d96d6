//! Read resolution and repair (cluster.md §7) as pure functions and one small state machine;
//! `read.rs` only asks owners and applies what is decided here.
//!
//! - Ask order: the remote owners in ring order, suspects last (a suspect is probably slow or
//!   gone; asking it first would cost a timeout on every read).
//! - ONE ([`OneRead`]): ask one owner at a time. A live item is served (and, when this node is
//!   an owner that missed it, repaired here); a tombstone is an authoritative miss; a plain
//!   miss or a failure moves on. When every owner was asked: not found if anyone (this node
//!   included) answered, else the read failed.
//! - QUORUM/ALL ([`resolve_quorum`]): R answers (this node's own included); the LWW-newest
//!   entry wins; a winning tombstone or an expired winner is a miss; every answering owner
//!   that returned an older entry or a plain miss is repaired with the winner.

use crate::store::entry::Entry;

/// The remote owners of a key in the order to ask: ring order, suspects last, never `me`.
pub fn ask_order(owners: &[String], me: &str, suspect: impl Fn(&str) -> bool) -> Vec<String> {
    let (mut alive, suspects): (Vec<String>, Vec<String>) = owners
        .iter()
        .filter(|o| *o != me)
        .cloned()
        .partition(|o| !suspect(o));
    alive.extend(suspects);
    alive
}

/// What one owner said about one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Said {
    /// A live item or a tombstone.
    Entry(Entry),
    /// The owner holds nothing for the key.
    Miss,
    /// No usable answer (transport error, timeout, malformed body).
    Failed,
}

/// The result of a resolved read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Serve this live item.
    Found(Entry),
    NotFound,
    /// Too few owners answered: (answers, needed).
    Failed(usize, usize),
}

/// A ONE read of one key.
#[derive(Debug)]
pub struct OneRead {
    order: Vec<String>,
    primary: Option<String>,
    next: usize,
    /// Someone (this node included) gave an authoritative "nothing".
    answered: bool,
    primary_failed: bool,
    local_owner: bool,
}

/// What a ONE read does after an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OneStep {
    /// Done: the outcome, whether to repair this node's copy with it, and whether a replica
    /// served after the primary failed (ReadPrimaryPromote).
    Done {
        outcome: Resolved,
        repair_local: bool,
        promoted: bool,
    },
    /// Ask the next owner.
    Continue,
}

impl OneRead {
    /// `order` from [`ask_order`], `primary` the ring's first owner, `local_owner` whether this
    /// node is an owner that already answered (with a miss: a local hit never reaches the
    /// control core).
    pub fn new(order: Vec<String>, primary: Option<&str>, local_owner: bool) -> OneRead {
        OneRead {
            order,
            primary: primary.map(str::to_string),
            next: 0,
            answered: local_owner,
            primary_failed: false,
            local_owner,
        }
    }

    /// The owner to ask next, or the final outcome when every owner was asked.
    pub fn next_owner(&mut self) -> Result<String, Resolved> {
        match self.order.get(self.next) {
            Some(o) => {
                self.next += 1;
                Ok(o.clone())
            }
            None if self.answered => Err(Resolved::NotFound),
            None => Err(Resolved::Failed(0, 1)),
        }
    }

    /// Feeds the answer of `owner` (the one [`OneRead::next_owner`] returned last).
    pub fn answer(&mut self, owner: &str, said: Said, now_ms: u64) -> OneStep {
        let is_primary = self.primary.as_deref() == Some(owner);
        match said {
            Said::Entry(e @ Entry::Item { .. }) if e.is_live(now_ms) => OneStep::Done {
                outcome: Resolved::Found(e),
                repair_local: self.local_owner,
                promoted: self.primary_failed && !is_primary,
            },
            Said::Entry(_) => OneStep::Done {
                outcome: Resolved::NotFound,
                repair_local: false,
                promoted: false,
            },
            Said::Miss => {
                self.answered = true;
                OneStep::Continue
            }
            Said::Failed => {
                self.primary_failed |= is_primary;
                OneStep::Continue
            }
        }
    }
}

/// A resolved QUORUM/ALL read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumRead {
    pub outcome: Resolved,
    /// The winner and the owners to repair with it (also when the winner is a tombstone or
    /// has expired: the stale owners must not keep serving what it replaced).
    pub repair: Option<(Entry, Vec<String>)>,
}

/// A QUORUM/ALL read: `answers` are the owners that answered (failures left out), `needed`
/// is R.
pub fn resolve_quorum(
    answers: &[(String, Option<Entry>)],
    needed: usize,
    now_ms: u64,
) -> QuorumRead {
    if answers.len() < needed {
        return QuorumRead {
            outcome: Resolved::Failed(answers.len(), needed),
            repair: None,
        };
    }
    let Some(w) = Entry::newest(answers.iter().filter_map(|(_, e)| e.as_ref())) else {
        return QuorumRead {
            outcome: Resolved::NotFound,
            repair: None,
        };
    };
    let stale: Vec<String> = answers
        .iter()
        .filter(|(_, e)| e.as_ref().is_none_or(|e| w.newer_than(e)))
        .map(|(o, _)| o.clone())
        .collect();
    QuorumRead {
        outcome: if w.is_live(now_ms) {
            Resolved::Found(w.clone())
        } else {
            Resolved::NotFound
        },
        repair: (!stale.is_empty()).then(|| (w.clone(), stale)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: u64, o: &str, exp: u64) -> Entry {
        Entry::Item {
            value: b"v".to_vec().into(),
            version: v,
            origin: o.into(),
            expires_at_ms: exp,
        }
    }
    fn tomb(v: u64, o: &str) -> Entry {
        Entry::Tombstone {
            version: v,
            origin: o.into(),
            deleted_at_ms: 1,
        }
    }
    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ask_order_is_ring_order_with_suspects_last_and_never_self() {
        let owners = ids(&["a", "me", "b", "c"]);
        assert_eq!(
            ask_order(&owners, "me", |o| o == "a"),
            ids(&["b", "c", "a"])
        );
        assert_eq!(ask_order(&owners, "me", |_| false), ids(&["a", "b", "c"]));
    }

    #[test]
    fn one_serves_the_first_live_item_and_repairs_a_local_owner() {
        let mut r = OneRead::new(ids(&["a", "b"]), Some("a"), true);
        assert_eq!(r.next_owner(), Ok("a".into()));
        let step = r.answer("a", Said::Entry(item(5, "a", 0)), 10);
        assert_eq!(
            step,
            OneStep::Done {
                outcome: Resolved::Found(item(5, "a", 0)),
                repair_local: true,
                promoted: false
            }
        );
    }

    #[test]
    fn one_moves_on_after_a_miss_or_failure_and_counts_a_promotion() {
        let mut r = OneRead::new(ids(&["a", "b", "c"]), Some("a"), false);
        r.next_owner().unwrap();
        assert_eq!(r.answer("a", Said::Failed, 10), OneStep::Continue);
        r.next_owner().unwrap();
        assert_eq!(r.answer("b", Said::Miss, 10), OneStep::Continue);
        assert_eq!(r.next_owner(), Ok("c".into()));
        let step = r.answer("c", Said::Entry(item(5, "c", 0)), 10);
        assert_eq!(
            step,
            OneStep::Done {
                outcome: Resolved::Found(item(5, "c", 0)),
                repair_local: false,
                promoted: true
            }
        );
    }

    #[test]
    fn one_treats_a_tombstone_or_an_expired_item_as_an_authoritative_miss() {
        let mut r = OneRead::new(ids(&["a", "b"]), Some("a"), false);
        r.next_owner().unwrap();
        let done_miss = OneStep::Done {
            outcome: Resolved::NotFound,
            repair_local: false,
            promoted: false,
        };
        assert_eq!(r.answer("a", Said::Entry(tomb(9, "a")), 10), done_miss);
        let mut r = OneRead::new(ids(&["a", "b"]), Some("a"), false);
        r.next_owner().unwrap();
        assert_eq!(r.answer("a", Said::Entry(item(9, "a", 10)), 10), done_miss);
    }

    #[test]
    fn one_exhausted_is_a_miss_if_anyone_answered_else_a_failure() {
        let mut r = OneRead::new(ids(&["a"]), Some("a"), false);
        r.next_owner().unwrap();
        r.answer("a", Said::Failed, 10);
        assert_eq!(r.next_owner(), Err(Resolved::Failed(0, 1)));
        let mut r = OneRead::new(ids(&["a"]), Some("a"), false);
        r.next_owner().unwrap();
        r.answer("a", Said::Miss, 10);
        assert_eq!(r.next_owner(), Err(Resolved::NotFound));
        // this node is an owner and missed: its own answer counts
        let mut r = OneRead::new(Vec::new(), None, true);
        assert_eq!(r.next_owner(), Err(Resolved::NotFound));
    }

    #[test]
    fn quorum_needs_r_answers() {
        let answers = vec![("a".to_string(), Some(item(5, "a", 0)))];
        assert_eq!(
            resolve_quorum(&answers, 2, 10),
            QuorumRead {
                outcome: Resolved::Failed(1, 2),
                repair: None
            }
        );
    }

    #[test]
    fn quorum_newest_wins_and_stale_or_missing_owners_are_repaired() {
        let answers = vec![
            ("a".to_string(), Some(item(5, "a", 0))),
            ("b".to_string(), Some(item(7, "b", 0))),
            ("c".to_string(), None),
            ("d".to_string(), Some(item(7, "b", 0))),
        ];
        let r = resolve_quorum(&answers, 3, 10);
        assert_eq!(r.outcome, Resolved::Found(item(7, "b", 0)));
        assert_eq!(r.repair, Some((item(7, "b", 0), ids(&["a", "c"]))));
    }

    #[test]
    fn quorum_a_newer_tombstone_hides_an_item_and_is_repaired_onto_it() {
        let answers = vec![
            ("a".to_string(), Some(item(5, "a", 0))),
            ("b".to_string(), Some(tomb(6, "b"))),
        ];
        let r = resolve_quorum(&answers, 2, 10);
        assert_eq!(r.outcome, Resolved::NotFound);
        assert_eq!(r.repair, Some((tomb(6, "b"), ids(&["a"]))));
    }

    #[test]
    fn quorum_an_expired_winner_is_a_miss_and_all_misses_repair_nothing() {
        let answers = vec![
            ("a".to_string(), Some(item(5, "a", 10))),
            ("b".to_string(), Some(item(5, "a", 10))),
        ];
        let none = QuorumRead {
            outcome: Resolved::NotFound,
            repair: None,
        };
        assert_eq!(resolve_quorum(&answers, 2, 10), none);
        let answers = vec![("a".to_string(), None), ("b".to_string(), None)];
        assert_eq!(resolve_quorum(&answers, 2, 10), none);
    }

    #[test]
    fn quorum_ties_break_by_the_smaller_origin() {
        let answers = vec![
            ("x".to_string(), Some(item(5, "node-2", 0))),
            ("y".to_string(), Some(item(5, "node-1", 0))),
        ];
        let r = resolve_quorum(&answers, 2, 10);
        assert_eq!(r.outcome, Resolved::Found(item(5, "node-1", 0)));
        assert_eq!(r.repair, Some((item(5, "node-1", 0), ids(&["x"]))));
    }
}
