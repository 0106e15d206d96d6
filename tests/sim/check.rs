//! The history of a simulated run and the invariants of cluster.md §13 it is checked against.
//! The simulator has no rebalance or anti-entropy, so what it checks is what membership, the
//! write quorum, the re-issue rule and hinted handoff must guarantee on their own:
//!
//! - Membership (invariants 11, 13): a member that was never crashed, paused or cut off is never
//!   declared `dead` by another such member when no message is lost (the partition-heal flap of
//!   the fault run); after every fault heals, every node sees every other `alive` and all rings
//!   agree within the settle time.
//! - Durability (invariant 1): an acknowledged write survives (at least as new a version is held
//!   somewhere) while one node that applied it has not crashed since.
//! - Order (invariant 3 with skewed clocks, §6 re-issue): a write sent after another was
//!   acknowledged, to the same owners, while none of the first write's appliers crashed, wins
//!   last-write-wins against it, whatever the coordinators' clocks say.
//! - Integrity: every value any node holds is one a client wrote.

use std::collections::HashSet;

use hypercache::dist::membership::State;
use hypercache::store::entry::Entry;

use crate::node::{id, WriteDone};
use crate::world::World;

pub struct Acked {
    pub at: u64,
    pub done: WriteDone,
}

#[derive(Default)]
pub struct History {
    next_value: u64,
    values: HashSet<Vec<u8>>,
    pub acked: Vec<Acked>,
    pub failed: u64,
    crashes: Vec<(usize, u64)>,
}

impl History {
    pub fn new_value(&mut self) -> Vec<u8> {
        self.next_value += 1;
        let v = format!("v{}", self.next_value).into_bytes();
        self.values.insert(v.clone());
        v
    }

    pub fn finished(&mut self, at: u64, done: WriteDone) {
        if done.ok {
            self.acked.push(Acked { at, done });
        } else {
            self.failed += 1;
        }
    }

    pub fn crashed(&mut self, node: usize, at: u64) {
        self.crashes.push((node, at));
    }

    fn crashed_between(&self, node: &str, from: u64, to: u64) -> bool {
        self.crashes
            .iter()
            .any(|&(n, t)| id(n) == node && t >= from && t <= to)
    }
}

/// Checked after every membership tick of node `i`.
pub fn continuous(w: &World, i: usize) -> Result<(), String> {
    if w.lossy || w.faulted[i] || w.now < 3_000 {
        return Ok(());
    }
    for j in (0..w.sc.n).filter(|&j| j != i && !w.faulted[j]) {
        if let Some(s @ (State::Dead | State::Left)) = w.view(i, j) {
            return Err(format!(
                "t={} ms: {} holds {} as {} although neither was ever faulted",
                w.now,
                id(i),
                id(j),
                s.as_str()
            ));
        }
    }
    Ok(())
}

fn not_older(held: Option<&Entry>, e: &Entry) -> bool {
    held.is_some_and(|h| h == e || h.newer_than(e))
}

/// Checked once the run has settled.
pub fn settled(w: &World) -> Result<(), String> {
    let n = w.sc.n;
    let nodes: Vec<_> = w
        .nodes
        .iter()
        .map(|x| x.as_ref().expect("all restarted"))
        .collect();
    for (i, nd) in nodes.iter().enumerate() {
        for j in (0..n).filter(|&j| j != i) {
            if w.view(i, j) != Some(State::Alive) {
                return Err(format!(
                    "not converged {} ms after the last fault: {} holds {} as {:?}",
                    w.sc.settle_ms,
                    id(i),
                    id(j),
                    w.view(i, j)
                ));
            }
        }
        if nd.membership.ring_members().len() != n {
            return Err(format!("{} ring {:?}", id(i), nd.membership.ring_members()));
        }
    }
    let end = w.now;
    for a in &w.history.acked {
        let d = &a.done;
        let survivor = d
            .applied_by
            .iter()
            .any(|o| !w.history.crashed_between(o, a.at, end));
        if !survivor {
            continue;
        }
        let newest = Entry::newest(nodes.iter().filter_map(|nd| nd.store.get(&d.key)));
        if !not_older(newest, &d.entry) {
            return Err(format!(
                "acknowledged write of {} at t={} (version {}, applied by {:?}) lost: newest held {:?}",
                d.key,
                a.at,
                d.entry.version(),
                d.applied_by,
                newest.map(|e| (e.version(), e.origin().to_string()))
            ));
        }
    }
    check_order(w)?;
    owners_agree(&nodes)?;
    for (i, nd) in nodes.iter().enumerate() {
        for (k, e) in &nd.store {
            if let Entry::Item { value, .. } = e {
                if !w.history.values.contains(value.as_slice()) {
                    return Err(format!(
                        "{} holds {k} = {value:?}, which no client wrote",
                        id(i)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// cluster.md §13: once settled, every owner of a key holds the same entry (anti-entropy and
/// rebalance repaired what writes, hints and crashes left behind).
fn owners_agree(nodes: &[&crate::node::Node]) -> Result<(), String> {
    use hypercache::base::hash::xxhash64;
    let ring = &nodes[0].ring;
    let index: std::collections::HashMap<String, usize> =
        nodes.iter().enumerate().map(|(i, _)| (id(i), i)).collect();
    let keys: std::collections::BTreeSet<&String> =
        nodes.iter().flat_map(|nd| nd.store.keys()).collect();
    let mut buf = Vec::new();
    for k in keys {
        ring.owners_into(xxhash64(k.as_bytes(), 0), &mut buf);
        let held: Vec<(String, Option<&Entry>)> = buf
            .iter()
            .map(|&o| {
                let owner = ring.member(o).to_string();
                let e = nodes[index[&owner]].store.get(k);
                (owner, e)
            })
            .collect();
        if held.windows(2).any(|p| p[0].1 != p[1].1) {
            let show: Vec<_> = held
                .iter()
                .map(|(o, e)| (o, e.map(|e| (e.version(), e.origin().to_string()))))
                .collect();
            return Err(format!("owners of {k} disagree after settling: {show:?}"));
        }
    }
    Ok(())
}

/// A write sent after another was acknowledged beats it (same owners, no applier crashed).
fn check_order(w: &World) -> Result<(), String> {
    let acked = &w.history.acked;
    for (x, a) in acked.iter().enumerate() {
        for b in &acked[x + 1..] {
            let (d1, d2) = (&a.done, &b.done);
            if d1.key != d2.key || d2.started <= a.at || d1.owners != d2.owners {
                continue;
            }
            if d1
                .applied_by
                .iter()
                .any(|o| w.history.crashed_between(o, a.at, b.at))
            {
                continue;
            }
            if !d2.entry.newer_than(&d1.entry) {
                return Err(format!(
                    "{}: write sent at t={} (version {} from {}, acknowledged at t={} by {:?}) lost \
                     to one acknowledged at t={} (version {} from {}, applied by {:?}) before it \
                     was sent; owners {:?}",
                    d1.key,
                    d2.started,
                    d2.entry.version(),
                    d2.entry.origin(),
                    b.at,
                    d2.applied_by,
                    a.at,
                    d1.entry.version(),
                    d1.entry.origin(),
                    d1.applied_by,
                    d1.owners
                ));
            }
        }
    }
    Ok(())
}
