//! Rebalance (cluster.md §9): the driver. The decisions (when a scan is due,
//! which key moves where, which hand-off may drop) are the pure core in
//! `moves.rs`; this file only moves keys and messages.
//!
//! A scan asks each data core for its keys (a background scan in slices,
//! `runtime::scan`), classifies them with [`super::moves::Scan`], reads the
//! entries that need pushing, sends them in `/internal/batch` requests
//! (reason `rebalance`, REBALANCE_BATCH entries each) and, for hand-offs that
//! every new owner acknowledged, drops the local entry only if it still has
//! the same (version, origin). Failures leave the scan incomplete, so it runs
//! again at the next REBALANCE_INTERVAL; a ring change restarts it.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use super::moves::{Move, Scan};
use super::ControlCtx;
use crate::base::now_ms;
use crate::dist::batch_body::Item;
use crate::metrics::dist::idx;
use crate::runtime::msg::{KeyRef, Op, Reply};
use crate::store::entry::Entry;

/// Keys classified per round trip to a data core.
const CHUNK: usize = 512;

impl ControlCtx {
    /// Called on every ring change.
    pub fn ring_changed(&self) {
        self.rebalance.borrow_mut().ring_changed();
    }

    /// Called on every member-table change: a member whose incarnation went
    /// up restarted (or refuted) and gets everything it owns again.
    pub fn note_incarnations(&self) {
        let table = self.member_table();
        let me = self.node.node_id();
        self.rebalance
            .borrow_mut()
            .note_incarnations(me, table.iter().map(|m| (m.id.as_str(), m.incarnation)));
    }

    /// No scan pending: the last completed scan used the current ring.
    pub fn rebalance_idle(&self) -> bool {
        self.rebalance.borrow().idle(&self.ring.borrow())
    }

    /// The loop: every REBALANCE_INTERVAL, run a scan while work remains.
    pub async fn rebalance_loop(self: Rc<Self>) {
        let period = self.node.config.rebalance_interval;
        while !self.stop.is_set() {
            if !self.rebalance_idle() {
                self.scan().await;
            }
            self.stop.race(glommio::timer::sleep(period)).await;
        }
    }

    async fn scan(self: &Rc<Self>) {
        let started = Instant::now();
        let ring = self.ring.borrow().clone();
        let scan = self.rebalance.borrow().begin(self.node.node_id(), ring);
        let mut complete = true;
        let mut buf = Vec::new();
        for core in 0..self.cores {
            let Reply::KeyList(keys) = self.dispatch.call(core, Op::ScanKeys).await else {
                complete = false; // this core's keys were not seen: not done
                continue;
            };
            for chunk in keys.chunks(CHUNK) {
                if !self.rebalance.borrow().is_current(&scan) || self.stop.is_set() {
                    return; // a newer ring: the next tick starts over
                }
                let mut work: Vec<(KeyRef, Move)> = Vec::new();
                for (i, (hash, key)) in chunk.iter().enumerate() {
                    if let Some(m) = scan.classify(*hash, &mut buf) {
                        let k = KeyRef {
                            idx: i,
                            hash: *hash,
                            key: key.clone(),
                        };
                        work.push((k, m));
                    }
                }
                if work.is_empty() {
                    continue;
                }
                complete &= self.push_chunk(core, work).await;
                glommio::yield_if_needed().await;
            }
        }
        if self.rebalance.borrow_mut().finish(scan, complete) {
            self.dist.set(
                const { idx("RebalanceLastNanos") },
                started.elapsed().as_nanos() as u64,
            );
        }
    }

    /// Reads the entries of one chunk, pushes them, drops handed-off ones.
    /// Returns whether every push was acknowledged.
    async fn push_chunk(self: &Rc<Self>, core: usize, work: Vec<(KeyRef, Move)>) -> bool {
        let refs: Vec<KeyRef> = work
            .iter()
            .enumerate()
            .map(|(j, (k, _))| KeyRef {
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
            entries[j] = l;
        }
        let now = now_ms();
        let batch = self.node.config.rebalance_batch.max(1);
        let keys: Vec<_> = work
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(&k.key))
            .collect();
        // target -> [(work index, key, entry)]
        let mut per_target: HashMap<String, Vec<Item<'_>>> = HashMap::new();
        for (j, (_, m)) in work.iter().enumerate() {
            let Some(e) = &entries[j] else { continue };
            for t in m.targets() {
                per_target
                    .entry(t.clone())
                    .or_default()
                    .push((j, keys[j].as_ref(), e));
            }
        }
        let mut acked = vec![0usize; work.len()];
        let mut all_ok = true;
        for (target, items) in per_target {
            let Some(addr) = self.address_of(&target) else {
                all_ok = false;
                continue;
            };
            for part in items.chunks(batch) {
                self.dist.add(const { idx("RebalanceBatches") }, 1);
                for (j, ack) in self
                    .send_batch(&addr, &target, part, "rebalance", now)
                    .await
                {
                    match ack {
                        a if a.acknowledged() => {
                            acked[j] += 1;
                            self.dist.add(const { idx("RebalancedKeys") }, 1);
                        }
                        _ => all_ok = false,
                    }
                }
            }
        }
        // Hand-off: drop only what every new owner acknowledged, and only if
        // the local entry is still the one that was sent.
        let (keys, moves): (Vec<KeyRef>, Vec<Move>) = work.into_iter().unzip();
        let drops: Vec<(u64, Vec<u8>, u64, String)> = Scan::drops(&moves, &acked)
            .into_iter()
            .filter_map(|j| {
                let e = entries[j].as_ref()?;
                let k = &keys[j];
                Some((k.hash, k.key.clone(), e.version(), e.origin().to_string()))
            })
            .collect();
        if !drops.is_empty() {
            if let Reply::Count(n) = self.dispatch.call(core, Op::DropIfSame(drops)).await {
                self.dist.add(const { idx("RebalanceHandoffDrops") }, n);
            }
        }
        all_ok
    }
}
