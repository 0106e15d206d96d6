//! Anti-entropy and rebalance in the simulated node: the real pure cores
//! (`control::reconcile` for the exchange plan and peer schedule, `control::moves` for what a
//! ring change moves and which hand-offs drop) around the simulated store, with the message
//! shapes of cluster.md §9-§10 compressed to what the decisions need.

use std::sync::Arc;

use hypercache::base::hash::xxhash64;
use hypercache::control::moves::{Move, Scan};
use hypercache::control::reconcile::{differing_leaves, plan, Plan};
use hypercache::dist::ae::{leaf_of, leaves_of, root, Digest};
use hypercache::dist::membership::State;
use hypercache::store::entry::Entry;

use super::{addr_of_id, AckKind, Msg, Node, Out, Timer};

/// Anti-entropy period and rebalance tick of the simulated nodes.
pub const AE_MS: u64 = 1_500;
pub const REBALANCE_MS: u64 = 250;
/// A rebalance round whose acknowledgements did not all arrive is retried after this.
const REBALANCE_WAIT_MS: u64 = 1_000;

/// A rebalance scan in flight: its moves, the entry sent for each, acknowledgements so far.
pub struct Round {
    id: u64,
    scan: Scan,
    keys: Vec<String>,
    moves: Vec<Move>,
    sent: Vec<Entry>,
    acked: Vec<usize>,
    outstanding: usize,
}

impl Node {
    /// Keys owned by this node and `peer` under this node's ring, as digests (the pair set).
    fn pair_set(&self, peer: &str) -> Vec<Digest> {
        let mut buf = Vec::new();
        let me = super::id(self.idx);
        self.store
            .iter()
            .filter(|(k, _)| {
                self.ring.owners_into(xxhash64(k.as_bytes(), 0), &mut buf);
                let owns = |x: &str| buf.iter().any(|&i| self.ring.member(i) == x);
                owns(&me) && owns(peer)
            })
            .map(|(k, e)| Digest {
                key: k.clone(),
                version: e.version(),
                origin: e.origin().to_string(),
                deleted: matches!(e, Entry::Tombstone { .. }),
            })
            .collect()
    }

    fn hex_leaves(set: &[Digest]) -> Vec<String> {
        leaves_of(set).iter().map(|l| format!("{l:016x}")).collect()
    }

    pub(super) fn ae_tick(&mut self, out: &mut Out) {
        out.timers.push((AE_MS, Timer::AntiEntropy));
        // SIM_NO_AE / SIM_NO_RB switch a repair path off, to show that the owner-agreement check
        // can fail (with both off, about a quarter of the seeds do).
        if std::env::var("SIM_NO_AE").is_ok() {
            return;
        }
        let me = super::id(self.idx);
        let alive: Vec<String> = self
            .ring
            .members()
            .iter()
            .filter(|m| **m != me && self.membership.state_of(m) == Some(State::Alive))
            .cloned()
            .collect();
        let Some(peer) = self.ae_schedule.next(&alive) else {
            return;
        };
        let Some(a) = addr_of_id(&self.membership, &peer) else {
            return;
        };
        let root = root(&leaves_of(&self.pair_set(&peer)));
        let ring = self.ring.members().to_vec();
        out.send.push((a, Msg::AeRoot { ring, root }));
    }

    pub(super) fn ae_receive(&mut self, from: &str, msg: Msg, out: &mut Out) {
        let Some(peer) = self
            .membership
            .table()
            .into_iter()
            .find(|m| m.address == from)
            .map(|m| m.id)
        else {
            return;
        };
        match msg {
            Msg::AeRoot { ring, root: theirs } => {
                // A different ring (fingerprint mismatch): skip this interval.
                if ring != self.ring.members() {
                    return;
                }
                let set = self.pair_set(&peer);
                if root(&leaves_of(&set)) != theirs {
                    let leaves = Self::hex_leaves(&set);
                    out.send.push((from.into(), Msg::AeLeaves { leaves }));
                }
            }
            Msg::AeLeaves { leaves } => {
                let mine = leaves_of(&self.pair_set(&peer));
                let Ok(diff) = differing_leaves(&mine, &leaves) else {
                    return;
                };
                if !diff.is_empty() {
                    out.send
                        .push((from.into(), Msg::AeDigests { leaves: diff }));
                }
            }
            Msg::AeDigests { leaves } => {
                let entries = self
                    .pair_set(&peer)
                    .into_iter()
                    .filter(|d| leaves.contains(&leaf_of(xxhash64(d.key.as_bytes(), 0))))
                    .collect();
                out.send
                    .push((from.into(), Msg::AeDigestsAnswer { leaves, entries }));
            }
            Msg::AeDigestsAnswer { leaves, entries } => {
                let mine = self.pair_set(&peer);
                let mut diff = leaves;
                diff.sort_unstable();
                let Plan { pull, push } = plan(&mine, entries, &diff);
                if !pull.is_empty() {
                    out.send.push((from.into(), Msg::AePull { keys: pull }));
                }
                let items: Vec<(String, Entry)> = push
                    .into_iter()
                    .filter_map(|k| Some((k.clone(), self.store.get(&k)?.clone())))
                    .collect();
                if !items.is_empty() {
                    out.send.push((from.into(), Msg::AeEntries { items }));
                }
            }
            Msg::AePull { keys } => {
                let items = keys
                    .into_iter()
                    .filter_map(|k| Some((k.clone(), self.store.get(&k)?.clone())))
                    .collect();
                out.send.push((from.into(), Msg::AeEntries { items }));
            }
            Msg::AeEntries { items } => {
                for (k, e) in items {
                    self.apply(&k, e);
                }
            }
            _ => unreachable!("not an anti-entropy message"),
        }
    }

    pub(super) fn rebalance_tick(&mut self, out: &mut Out) {
        out.timers.push((REBALANCE_MS, Timer::Rebalance));
        if std::env::var("SIM_NO_RB").is_ok() {
            return;
        }
        if let Some(r) = &self.round {
            if self.rebalance.is_current(&r.scan) {
                return; // acknowledgements pending; its timeout decides
            }
            let r = self.round.take().unwrap();
            self.rebalance.finish(r.scan, false);
        }
        let ring = Arc::new(self.ring.as_ref().clone());
        if !self.rebalance.due(&ring) {
            return;
        }
        let scan = self.rebalance.begin(&super::id(self.idx), ring);
        let mut buf = Vec::new();
        let (mut keys, mut moves, mut sent) = (Vec::new(), Vec::new(), Vec::new());
        for (k, e) in &self.store {
            if let Some(m) = scan.classify(xxhash64(k.as_bytes(), 0), &mut buf) {
                keys.push(k.clone());
                moves.push(m);
                sent.push(e.clone());
            }
        }
        let id = self.id();
        let mut outstanding = 0;
        for (j, m) in moves.iter().enumerate() {
            for t in m.targets() {
                if let Some(a) = addr_of_id(&self.membership, t) {
                    let (key, entry) = (keys[j].clone(), sent[j].clone());
                    out.send.push((
                        a,
                        Msg::RbPush {
                            round: id,
                            idx: j,
                            key,
                            entry,
                        },
                    ));
                    outstanding += 1;
                }
            }
        }
        let acked = vec![0; moves.len()];
        let round = Round {
            id,
            scan,
            keys,
            moves,
            sent,
            acked,
            outstanding,
        };
        if round.outstanding == 0 && round.moves.iter().all(|m| m.targets().is_empty()) {
            self.end_round(round, true);
        } else {
            self.round = Some(round);
            out.timers
                .push((REBALANCE_WAIT_MS, Timer::RebalanceTimeout(id)));
        }
    }

    pub(super) fn rebalance_ack(&mut self, round: u64, idx: usize) {
        let Some(r) = self.round.as_mut().filter(|r| r.id == round) else {
            return;
        };
        r.acked[idx] += 1;
        r.outstanding -= 1;
        if r.outstanding == 0 {
            let r = self.round.take().unwrap();
            let complete = r
                .acked
                .iter()
                .zip(&r.moves)
                .all(|(a, m)| *a == m.targets().len());
            self.end_round(r, complete);
        }
    }

    pub(super) fn rebalance_timeout(&mut self, round: u64) {
        if self.round.as_ref().is_some_and(|r| r.id == round) {
            let r = self.round.take().unwrap();
            self.end_round(r, false);
        }
    }

    /// Drops what every target acknowledged, only if the local entry is still the one sent,
    /// then records the scan.
    fn end_round(&mut self, r: Round, complete: bool) {
        for j in Scan::drops(&r.moves, &r.acked) {
            if self.store.get(&r.keys[j]) == Some(&r.sent[j]) {
                self.store.remove(&r.keys[j]);
            }
        }
        self.rebalance.finish(r.scan, complete);
    }

    pub(super) fn rebalance_push(
        &mut self,
        from: &str,
        round: u64,
        idx: usize,
        key: String,
        entry: Entry,
        out: &mut Out,
    ) {
        // Applied or already newer here: either way this owner holds at least what was sent.
        let (AckKind::Ok | AckKind::Newer(..)) = self.apply(&key, entry);
        out.send.push((from.into(), Msg::RbAck { round, idx }));
    }
}
