//! Rebalance (cluster.md §9), driven by the control core.
//!
//! After a ring change every owner must get the entries it should hold, and a
//! node that is no longer an owner hands its entries off before dropping them.
//! A scan asks each data core for its keys, classifies them against the
//! current ring and `R_done` (the ring of the last completed scan), reads the
//! entries that need pushing, sends them in `/internal/batch` requests
//! (reason `rebalance`, REBALANCE_BATCH entries each) and, for hand-offs that
//! every new owner acknowledged, drops the local entry only if it still has
//! the same (version, origin). Failures leave the scan incomplete, so it runs
//! again at the next REBALANCE_INTERVAL; a ring change restarts it.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::replicate::Ack;
use super::ControlCtx;
use crate::dist::ring::Ring;
use crate::dist::wire;
use crate::metrics::dist::idx;
use crate::node::now_ms;
use crate::runtime::msg::{Entry, KeyRef, Op, Reply};

/// Keys classified per round trip to a data core.
const CHUNK: usize = 512;

pub struct RebalanceState {
    /// Ring of the last completed scan.
    pub r_done: Arc<Ring>,
    /// Bumped on every ring change; a running scan notices and stops.
    pub generation: u64,
    /// A scan ended with work left (failed pushes or a restart).
    pub dirty: bool,
    /// Members that came back with a higher incarnation (a restart, empty):
    /// treated as new owners of everything they own, since `R_done` may
    /// never have seen them leave (a restart within one interval).
    pub fresh: std::collections::BTreeSet<String>,
    /// Last incarnation seen per member id.
    pub incarnations: HashMap<String, u64>,
}

fn same_ring(a: &Ring, b: &Ring) -> bool {
    a.members() == b.members() && a.replication() == b.replication()
}

fn owner_ids(ring: &Ring, hash: u64, buf: &mut Vec<u32>) -> Vec<String> {
    ring.owners_into(hash, buf);
    buf.iter().map(|&i| ring.member(i).to_string()).collect()
}

impl ControlCtx {
    /// Called on every ring change.
    pub fn ring_changed(&self) {
        let mut st = self.rebalance.borrow_mut();
        st.generation += 1;
        st.dirty = true;
    }

    /// Called on every member-table change: a member whose incarnation went
    /// up restarted (or refuted) and gets everything it owns again.
    pub fn note_incarnations(&self) {
        let table = self.member_table();
        let mut st = self.rebalance.borrow_mut();
        let mut changed = false;
        for m in table {
            if m.id == self.node.node_id() {
                continue;
            }
            let prev = st.incarnations.insert(m.id.clone(), m.incarnation);
            // 0 is the placeholder of an id@ seed not heard from yet.
            if prev.is_some_and(|p| p > 0 && m.incarnation > p) {
                changed |= st.fresh.insert(m.id);
            }
        }
        if changed {
            st.generation += 1;
            st.dirty = true;
        }
    }

    /// No scan pending: the last completed scan used the current ring.
    pub fn rebalance_idle(&self) -> bool {
        let st = self.rebalance.borrow();
        !st.dirty && same_ring(&st.r_done, &self.ring.borrow())
    }

    /// The loop: every REBALANCE_INTERVAL, run a scan while work remains.
    pub async fn rebalance_loop(self: Rc<Self>) {
        let period = self.node.config.rebalance_interval;
        while !self.stop.is_set() {
            let (dirty, same) = {
                let st = self.rebalance.borrow();
                (st.dirty, same_ring(&st.r_done, &self.ring.borrow()))
            };
            if dirty || !same {
                self.scan().await;
            }
            self.stop.race(glommio::timer::sleep(period)).await;
        }
    }

    async fn scan(self: &Rc<Self>) {
        let started = Instant::now();
        let (gen, r_old, fresh) = {
            let st = self.rebalance.borrow();
            (st.generation, st.r_done.clone(), st.fresh.clone())
        };
        let ring = self.ring.borrow().clone();
        let me = self.node.node_id().to_string();
        let mut complete = true;
        let mut buf = Vec::new();
        for core in 0..self.cores {
            let Reply::KeyList(keys) = self.dispatch.call(core, Op::ScanKeys).await else {
                continue;
            };
            for chunk in keys.chunks(CHUNK) {
                if self.rebalance.borrow().generation != gen || self.stop.is_set() {
                    return; // a newer ring: the next tick starts over
                }
                // (key ref, targets, hand-off?)
                let mut work: Vec<(KeyRef, Vec<String>, bool)> = Vec::new();
                for (i, (hash, key)) in chunk.iter().enumerate() {
                    let new = owner_ids(&ring, *hash, &mut buf);
                    if new.is_empty() {
                        continue;
                    }
                    let mut old = owner_ids(&r_old, *hash, &mut buf);
                    old.retain(|o| !fresh.contains(o));
                    let kr = || KeyRef {
                        idx: i,
                        hash: *hash,
                        key: key.clone(),
                    };
                    if !new.contains(&me) {
                        work.push((kr(), new, true));
                    } else if new.iter().find(|o| old.contains(o)) == Some(&me) {
                        let targets: Vec<String> =
                            new.into_iter().filter(|o| !old.contains(o)).collect();
                        if !targets.is_empty() {
                            work.push((kr(), targets, false));
                        }
                    }
                }
                if work.is_empty() {
                    continue;
                }
                complete &= self.push_chunk(core, work).await;
                glommio::yield_if_needed().await;
            }
        }
        let mut st = self.rebalance.borrow_mut();
        if st.generation == gen {
            if complete {
                st.r_done = ring;
                st.dirty = false;
                st.fresh.retain(|f| !fresh.contains(f));
                self.dist.set(
                    idx("RebalanceLastNanos"),
                    started.elapsed().as_nanos() as u64,
                );
            } else {
                st.dirty = true;
            }
        }
    }

    /// Reads the entries of one chunk, pushes them, drops handed-off ones.
    /// Returns whether every push was acknowledged.
    async fn push_chunk(
        self: &Rc<Self>,
        core: usize,
        work: Vec<(KeyRef, Vec<String>, bool)>,
    ) -> bool {
        let refs: Vec<KeyRef> = work
            .iter()
            .enumerate()
            .map(|(j, (k, _, _))| KeyRef {
                idx: j,
                hash: k.hash,
                key: k.key.clone(),
            })
            .collect();
        let Reply::Lookups(found) = self.dispatch.call(core, Op::LookupBatch(refs)).await else {
            return false;
        };
        let mut entries: Vec<Option<Entry>> = vec![None; work.len()];
        for (j, l) in found {
            entries[j] = l.to_entry();
        }
        let now = now_ms();
        let batch = self.node.config.rebalance_batch.max(1);
        // target -> [(work index, item)]
        let mut per_target: HashMap<String, Vec<(usize, wire::BatchItem)>> = HashMap::new();
        for (j, (k, targets, _)) in work.iter().enumerate() {
            let Some(e) = &entries[j] else { continue };
            let key = String::from_utf8_lossy(&k.key);
            for t in targets {
                per_target
                    .entry(t.clone())
                    .or_default()
                    .push((j, wire::entry_to_batch_item(&key, e, now)));
            }
        }
        let mut acked = vec![0usize; work.len()];
        let mut all_ok = true;
        for (target, items) in per_target {
            let Some(addr) = self.address_of(&target) else {
                all_ok = false;
                continue;
            };
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                let part: Vec<(usize, wire::BatchItem)> = items.by_ref().take(batch).collect();
                self.dist.add(idx("RebalanceBatches"), 1);
                for (j, ack) in self.send_batch(&addr, &target, part, "rebalance").await {
                    match ack {
                        Ack::Ok | Ack::Newer(..) => {
                            acked[j] += 1;
                            self.dist.add(idx("RebalancedKeys"), 1);
                        }
                        _ => all_ok = false,
                    }
                }
            }
        }
        // Hand-off: drop only what every new owner acknowledged, and only if
        // the local entry is still the one that was sent.
        let drops: Vec<(u64, Vec<u8>, u64, String)> = work
            .iter()
            .enumerate()
            .filter(|(j, (_, targets, handoff))| *handoff && acked[*j] == targets.len())
            .filter_map(|(j, (k, _, _))| {
                entries[j]
                    .as_ref()
                    .map(|e| (k.hash, k.key.clone(), e.version(), e.origin().to_string()))
            })
            .collect();
        if !drops.is_empty() {
            if let Reply::Count(n) = self.dispatch.call(core, Op::DropIfSame(drops)).await {
                self.dist.add(idx("RebalanceHandoffDrops"), n);
            }
        }
        all_ok
    }
}
