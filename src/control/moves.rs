//! Rebalance decisions (cluster.md §9) as a pure state machine: when a scan is due, which keys
//! move where, which hand-offs may drop their local copy, and when a scan counts as done.
//! `rebalance.rs` is the driver: it asks the data cores for keys, feeds them to a [`Scan`],
//! pushes what [`Scan::classify`] says and reports back with [`Rebalance::finish`].
//!
//! The rules:
//! * A scan is due while the ring differs from `R_done` (the ring of the last completed scan)
//!   or the last scan left work (`dirty`). Every ring change bumps the generation; a scan of an
//!   older generation stops at its next chunk and its result is ignored.
//! * A key this node no longer owns is handed off to every new owner; the local copy is dropped
//!   only when every one of them acknowledged ([`Scan::drops`]) and, on the data core, only if
//!   the entry is still the one sent (a write that arrived meanwhile is never lost).
//! * A key this node still owns is pushed to owners that did not own it under `R_done`, by one
//!   node only: the first owner in the new ring's order that was also an old owner, so a ring
//!   change does not make every old owner push the same key.
//! * A member whose incarnation went up restarted empty (or refuted a suspicion): it counts as a
//!   new owner of everything it owns until one scan completes, since `R_done` may never have
//!   seen it leave (a restart within one interval).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::dist::ring::Ring;

/// Rebalance progress of this node.
pub struct Rebalance {
    /// Ring of the last completed scan.
    r_done: Arc<Ring>,
    /// Bumped on every ring change and every restart seen; a running scan notices and stops.
    generation: u64,
    /// A scan ended with work left (failed pushes or a restart).
    dirty: bool,
    /// Members that restarted since the last completed scan.
    fresh: BTreeSet<String>,
    /// Last incarnation seen per member id.
    incarnations: HashMap<String, u64>,
}

/// Where one key goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// Still an owner: copy to these new owners, keep the local entry.
    Push(Vec<String>),
    /// No longer an owner: copy to every owner, then drop the local entry.
    HandOff(Vec<String>),
}

impl Move {
    pub fn targets(&self) -> &[String] {
        match self {
            Move::Push(t) | Move::HandOff(t) => t,
        }
    }
}

/// One scan: the rings it compares and the generation it belongs to.
pub struct Scan {
    generation: u64,
    me: String,
    ring: Arc<Ring>,
    r_old: Arc<Ring>,
    fresh: BTreeSet<String>,
}

fn same_ring(a: &Ring, b: &Ring) -> bool {
    a.members() == b.members() && a.replication() == b.replication()
}

fn owner_ids(ring: &Ring, hash: u64, buf: &mut Vec<u32>) -> Vec<String> {
    ring.owners_into(hash, buf);
    buf.iter().map(|&i| ring.member(i).to_string()).collect()
}

impl Rebalance {
    /// Starts idle: the first ring needs no scan (nothing is held yet).
    pub fn new(ring: Arc<Ring>) -> Rebalance {
        Rebalance {
            r_done: ring,
            generation: 0,
            dirty: false,
            fresh: BTreeSet::new(),
            incarnations: HashMap::new(),
        }
    }

    pub fn ring_changed(&mut self) {
        self.generation += 1;
        self.dirty = true;
    }

    /// Feeds the member table (id, incarnation). A member seen before whose incarnation went up
    /// becomes fresh. Incarnation 0 is the placeholder of a seed not heard from yet.
    pub fn note_incarnations<'a>(
        &mut self,
        me: &str,
        table: impl IntoIterator<Item = (&'a str, u64)>,
    ) {
        let mut changed = false;
        for (id, inc) in table {
            if id == me {
                continue;
            }
            let prev = self.incarnations.insert(id.to_string(), inc);
            if prev.is_some_and(|p| p > 0 && inc > p) {
                changed |= self.fresh.insert(id.to_string());
            }
        }
        if changed {
            self.ring_changed();
        }
    }

    /// A scan is due under `ring`.
    pub fn due(&self, ring: &Ring) -> bool {
        self.dirty || !same_ring(&self.r_done, ring)
    }

    /// Nothing pending: the last completed scan used `ring`.
    pub fn idle(&self, ring: &Ring) -> bool {
        !self.due(ring)
    }

    pub fn begin(&self, me: &str, ring: Arc<Ring>) -> Scan {
        Scan {
            generation: self.generation,
            me: me.to_string(),
            ring,
            r_old: self.r_done.clone(),
            fresh: self.fresh.clone(),
        }
    }

    /// The scan's ring is still the current one (else: stop, the next tick starts over).
    pub fn is_current(&self, scan: &Scan) -> bool {
        scan.generation == self.generation
    }

    /// Records a finished scan. A complete one of the current generation makes its ring
    /// `R_done` and clears the members it treated as fresh; an incomplete one leaves the work
    /// for the next tick. Returns whether the scan completed the rebalance.
    pub fn finish(&mut self, scan: Scan, complete: bool) -> bool {
        if !self.is_current(&scan) {
            return false;
        }
        if complete {
            self.r_done = scan.ring;
            self.dirty = false;
            self.fresh.retain(|f| !scan.fresh.contains(f));
        } else {
            self.dirty = true;
        }
        complete
    }
}

impl Scan {
    /// Where the key with this hash goes, if anywhere. `buf` is scratch space.
    pub fn classify(&self, hash: u64, buf: &mut Vec<u32>) -> Option<Move> {
        let new = owner_ids(&self.ring, hash, buf);
        if new.is_empty() {
            return None;
        }
        if !new.contains(&self.me) {
            return Some(Move::HandOff(new));
        }
        let mut old = owner_ids(&self.r_old, hash, buf);
        old.retain(|o| !self.fresh.contains(o));
        if new.iter().find(|o| old.contains(o)) != Some(&self.me) {
            return None;
        }
        let targets: Vec<String> = new.into_iter().filter(|o| !old.contains(o)).collect();
        (!targets.is_empty()).then_some(Move::Push(targets))
    }

    /// Which moves may drop their local entry: hand-offs that every target acknowledged.
    /// `acked[i]` counts the acknowledgements of `moves[i]`.
    pub fn drops(moves: &[Move], acked: &[usize]) -> Vec<usize> {
        moves
            .iter()
            .zip(acked)
            .enumerate()
            .filter(|(_, (m, &a))| matches!(m, Move::HandOff(t) if a == t.len()))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
#[path = "moves_tests.rs"]
mod tests;
