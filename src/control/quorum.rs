//! The write quorum tracker (cluster.md §6): a pure state machine over the owners' answers to
//! one fan-out round of coordinated writes. The driver (`replicate.rs`) sends, feeds every
//! answer in as it arrives and stops waiting when [`Quorum::waiting`] says so or the request
//! timeout passes; everything that decides something is here and unit-tested without sockets.
//!
//! The rules, per write:
//! - W = `needed(consistency, owners)`; the coordinator's own applied copy is one ack.
//! - `Ok` and `Newer` both count as acks (the owner holds the key at least as new as ours).
//! - A `Newer` among the first W acks whose version beats the write means the coordinator's
//!   clock is behind: the write is re-issued above the highest such version (§6 "stale
//!   coordinator"), so an acknowledged write is never silently shadowed by an older-clock one.
//!   §6 says once; the simulator found the case where once is not enough (the first round only
//!   reaches an owner holding a newer write from the coordinator's own side of a partition, the
//!   re-issue then meets the other side's still newer write): a round that still meets a newer
//!   entry is re-issued again, up to [`MAX_REISSUES`] times, and a write still shadowed after
//!   that fails (503) instead of being acknowledged while hidden. See [`after_round`].
//! - `Failed` (no answer, timeout, non-2xx) earns the owner a hint; `Invalid` (the owner refused
//!   the item) is logged and not hinted: replaying it would be refused again.
//! - Waiting ends for a write once it has W acks or every remote owner has answered.

use super::replicate::Ack;
use crate::config::Consistency;
use crate::store::entry::newer;

/// Acks a write needs from `n` owners.
pub fn needed(c: Consistency, n: usize) -> usize {
    match c {
        Consistency::One => 1.min(n),
        Consistency::Quorum => n / 2 + 1,
        Consistency::All => n,
    }
}

/// Re-issues of one write after its first round.
pub const MAX_REISSUES: usize = 3;

/// What to do with a write after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Answer the client: acknowledged or not.
    Done { ok: bool },
    /// Run another round with a version above this one.
    Reissue { above: u64 },
}

/// The decision after a round that was re-issue number `reissues` (0 for the first round).
pub fn after_round(v: &Verdict, reissues: usize) -> After {
    match v.reissue_above {
        Some(above) if reissues < MAX_REISSUES => After::Reissue { above },
        // Still shadowed by a newer entry: acknowledging it would hide the write.
        Some(_) => After::Done { ok: false },
        None => After::Done { ok: v.ok },
    }
}

/// Whether an owner that answered `ack` gets a hint for the write.
pub fn hinted(ack: &Ack) -> bool {
    matches!(ack, Ack::Failed)
}

/// One write of the round.
#[derive(Clone, Debug, PartialEq, Eq)]
struct WriteState {
    acks: usize,
    needed: usize,
    answered: usize,
    remote: usize,
    version: u64,
    origin: String,
    /// The highest version among the first W acks that beat this write.
    reissue_above: Option<u64>,
}

/// What the round decided for one write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub acks: usize,
    pub needed: usize,
    /// W acks arrived.
    pub ok: bool,
    /// Re-issue the write with a version above this one (see [`after_round`]).
    pub reissue_above: Option<u64>,
}

/// What the tracker tells the driver after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    /// The answer was an acknowledgement (`outbox::deliver` counts it in WriteAcks).
    Ack,
    /// Not an acknowledgement.
    NoAck,
}

/// The tracker of one fan-out round.
#[derive(Debug, Default)]
pub struct Quorum {
    writes: Vec<WriteState>,
}

impl Quorum {
    pub fn new() -> Quorum {
        Quorum::default()
    }

    /// Adds a write with `owners` owners, `remote` of them other nodes, written at
    /// (`version`, `origin`); `local_acked` when this node is an owner and applied it.
    /// Returns the write's index.
    pub fn add(
        &mut self,
        consistency: Consistency,
        owners: usize,
        remote: usize,
        local_acked: bool,
        version: u64,
        origin: &str,
    ) -> usize {
        self.writes.push(WriteState {
            acks: usize::from(local_acked),
            needed: needed(consistency, owners),
            answered: 0,
            remote,
            version,
            origin: origin.to_string(),
            reissue_above: None,
        });
        self.writes.len() - 1
    }

    /// Feeds one remote owner's answer about write `j`.
    pub fn answer(&mut self, j: usize, ack: &Ack) -> Counted {
        let w = &mut self.writes[j];
        w.answered += 1;
        match ack {
            Ack::Ok | Ack::Held => {
                w.acks += 1;
                Counted::Ack
            }
            Ack::Newer(v, o) => {
                if w.acks < w.needed && newer(*v, o, w.version, &w.origin) {
                    w.reissue_above = Some(w.reissue_above.map_or(*v, |x| x.max(*v)));
                }
                w.acks += 1;
                Counted::Ack
            }
            Ack::Failed | Ack::Invalid => Counted::NoAck,
        }
    }

    /// Some write still lacks W acks and has owners that have not answered.
    pub fn waiting(&self) -> bool {
        self.writes
            .iter()
            .any(|w| w.acks < w.needed && w.answered < w.remote)
    }

    /// The verdicts, in the order the writes were added.
    pub fn finish(self) -> Vec<Verdict> {
        self.writes
            .into_iter()
            .map(|w| Verdict {
                acks: w.acks,
                needed: w.needed,
                ok: w.acks >= w.needed,
                reissue_above: w.reissue_above,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Consistency::*;

    fn newer_ack(v: u64) -> Ack {
        Ack::Newer(v, "node-9".into())
    }

    #[test]
    fn quorum_table() {
        let q: Vec<usize> = (1..=5).map(|n| needed(Quorum, n)).collect();
        assert_eq!(q, vec![1, 2, 2, 3, 3]);
        assert_eq!(needed(All, 3), 3);
        assert_eq!(needed(One, 3), 1);
        assert_eq!(needed(One, 0), 0);
    }

    /// An owner that already held the write acknowledges it like one that applied it.
    #[test]
    fn an_owner_that_already_held_the_write_acks_it() {
        let mut q = super::Quorum::new();
        let j = q.add(Quorum, 3, 2, true, 100, "node-1");
        assert_eq!(q.answer(j, &Ack::Held), Counted::Ack);
        assert!(!q.waiting());
        assert!(q.finish()[0].ok);
    }

    #[test]
    fn local_ack_plus_one_remote_reaches_quorum_of_three() {
        let mut q = super::Quorum::new();
        let j = q.add(Quorum, 3, 2, true, 100, "node-1");
        assert!(q.waiting());
        assert_eq!(q.answer(j, &Ack::Ok), Counted::Ack);
        assert!(
            !q.waiting(),
            "W = 2 reached: stop waiting for the third owner"
        );
        let v = q.finish();
        assert_eq!(
            v[0],
            Verdict {
                acks: 2,
                needed: 2,
                ok: true,
                reissue_above: None
            }
        );
    }

    #[test]
    fn failures_fail_the_write_once_every_owner_answered() {
        let mut q = super::Quorum::new();
        let j = q.add(All, 3, 2, true, 100, "node-1");
        q.answer(j, &Ack::Ok);
        assert!(q.waiting());
        assert_eq!(q.answer(j, &Ack::Failed), Counted::NoAck);
        assert!(!q.waiting(), "every remote owner answered");
        let v = q.finish();
        assert!(!v[0].ok);
        assert_eq!((v[0].acks, v[0].needed), (2, 3));
    }

    #[test]
    fn a_non_owner_coordinator_needs_remote_acks_only() {
        let mut q = super::Quorum::new();
        let j = q.add(Quorum, 3, 3, false, 100, "node-4");
        q.answer(j, &Ack::Invalid);
        q.answer(j, &Ack::Ok);
        assert!(q.waiting());
        q.answer(j, &Ack::Ok);
        assert!(q.finish()[0].ok);
    }

    #[test]
    fn newer_among_the_first_w_acks_reissues_above_the_highest() {
        let mut q = super::Quorum::new();
        let j = q.add(All, 3, 2, true, 100, "node-1");
        q.answer(j, &newer_ack(150));
        q.answer(j, &newer_ack(120));
        let v = q.finish();
        assert!(v[0].ok, "newer answers are acks");
        assert_eq!(v[0].reissue_above, Some(150));
    }

    #[test]
    fn newer_after_w_acks_does_not_reissue() {
        let mut q = super::Quorum::new();
        let j = q.add(Quorum, 3, 2, true, 100, "node-1");
        q.answer(j, &Ack::Ok);
        // the third owner's answer arrives after W = 2 (a driver that kept listening)
        q.answer(j, &newer_ack(150));
        assert_eq!(q.finish()[0].reissue_above, None);
    }

    #[test]
    fn equal_versions_break_the_tie_by_the_smaller_origin() {
        // cluster.md §4: at equal versions the smaller origin wins, so node-0 beats node-1 ...
        let mut q = super::Quorum::new();
        let j = q.add(All, 2, 1, true, 100, "node-1");
        q.answer(j, &Ack::Newer(100, "node-0".into()));
        assert_eq!(q.finish()[0].reissue_above, Some(100));
        // ... and node-2 does not; nor does an older version.
        let mut q = super::Quorum::new();
        let j = q.add(All, 3, 2, true, 100, "node-1");
        q.answer(j, &Ack::Newer(100, "node-2".into()));
        q.answer(j, &Ack::Newer(99, "node-0".into()));
        assert_eq!(q.finish()[0].reissue_above, None);
    }

    #[test]
    fn writes_are_tracked_independently() {
        let mut q = super::Quorum::new();
        let a = q.add(Quorum, 3, 2, true, 1, "n");
        let b = q.add(Quorum, 3, 2, true, 1, "n");
        q.answer(a, &Ack::Ok);
        assert!(q.waiting(), "b still waits");
        q.answer(b, &Ack::Failed);
        q.answer(b, &Ack::Failed);
        assert!(!q.waiting());
        let v = q.finish();
        assert!(v[0].ok && !v[1].ok);
    }

    fn verdict(ok: bool, above: Option<u64>) -> Verdict {
        Verdict {
            acks: 2,
            needed: 2,
            ok,
            reissue_above: above,
        }
    }

    #[test]
    fn a_shadowed_round_is_reissued_a_bounded_number_of_times_then_fails() {
        assert_eq!(
            after_round(&verdict(true, None), 0),
            After::Done { ok: true }
        );
        assert_eq!(
            after_round(&verdict(false, None), 0),
            After::Done { ok: false }
        );
        // a failed round that met a newer entry is re-issued too: the newer owner answered
        assert_eq!(
            after_round(&verdict(false, Some(9)), 0),
            After::Reissue { above: 9 }
        );
        for r in 0..MAX_REISSUES {
            assert_eq!(
                after_round(&verdict(true, Some(9)), r),
                After::Reissue { above: 9 }
            );
        }
        assert_eq!(
            after_round(&verdict(true, Some(9)), MAX_REISSUES),
            After::Done { ok: false },
            "never acknowledged while a newer entry hides it"
        );
    }

    #[test]
    fn only_failures_are_hinted() {
        assert!(hinted(&Ack::Failed));
        assert!(!hinted(&Ack::Invalid));
        assert!(!hinted(&Ack::Ok));
        assert!(!hinted(&newer_ack(1)));
    }
}
