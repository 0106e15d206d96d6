//! Anti-entropy exchange (cluster.md §10): the driver. The decisions (next
//! peer, differing leaves, what to pull and push) are the pure core in
//! `reconcile.rs`; this file fetches, applies and sends.
//!
//! Every I the node compares, with one alive ring peer at a time (shuffled
//! round robin), the tree over the keys both of them own; differing leaves
//! are resolved key by key: the newer side's entry is pulled or pushed
//! (reason `ae`). Right after joining, a node runs one exchange with every
//! alive ring peer (catch-up of a restarted, empty node).

use std::rc::Rc;
use std::time::Instant;

use super::reconcile::{differing_leaves, plan, Plan, Schedule};
use super::replicate::Ack;
use super::ControlCtx;
use crate::base::hash::xxhash64;
use crate::base::now_ms;
use crate::dist::ae::{self, Digest, LeafMask};
use crate::dist::batch_body::Item;
use crate::dist::membership::State;
use crate::dist::protocol::{AeDigests, AeLeaves, BatchGet, PeerError};
use crate::dist::wire::{self, BatchGetReq};
use crate::metrics::dist::idx;
use crate::runtime::msg::{KeyRef, Op, Reply};
use crate::runtime::shard_for;
use crate::store::entry::Entry;

/// The reason in `anti-entropy with <peer> failed: <reason>`: the transport error as is
/// (`timed out`, as docs/operations.md shows), or which step answered what.
fn why(step: &str, e: PeerError) -> String {
    match e {
        PeerError::Transport(t) => t,
        other => format!("{step} {other}"),
    }
}

impl ControlCtx {
    pub fn ae_enabled(&self) -> bool {
        let c = &self.node.config;
        !c.anti_entropy_interval.is_zero() && c.replication > 1
    }

    /// The digests of P(this node, peer) under the current ring in `leaves`, written before
    /// `before` ([`ae::settled`]), from every data core.
    pub async fn pair_set(&self, peer: &str, leaves: LeafMask, before: u64) -> Vec<Digest> {
        let ring = self.ring.borrow().clone();
        let mut out = Vec::new();
        for r in self
            .all_cores(|| Op::AeDigests {
                ring: ring.clone(),
                peer: peer.to_string(),
                leaves,
                before,
            })
            .await
        {
            if let Reply::Digests(v) = r {
                out.extend(v);
            }
        }
        out
    }

    /// The leaves of P(this node, peer) under the current ring, summed over the data cores
    /// without a digest per key (the whole pair set is scanned for them at every exchange).
    pub async fn pair_leaves(&self, peer: &str, before: u64) -> Box<[u64; ae::LEAVES]> {
        let ring = self.ring.borrow().clone();
        let mut leaves = Box::new([0u64; ae::LEAVES]);
        for r in self
            .all_cores(|| Op::AeLeafSums {
                ring: ring.clone(),
                peer: peer.to_string(),
                before,
            })
            .await
        {
            if let Reply::LeafSums(part) = r {
                ae::add_leaves(&mut leaves, &part);
            }
        }
        leaves
    }

    pub fn ring_fp(&self) -> String {
        ae::hex(self.ring.borrow().fingerprint())
    }

    fn alive_ring_peers(&self) -> Vec<(String, String)> {
        let me = self.node.node_id();
        let ring = self.ring.borrow().clone();
        ring.members()
            .iter()
            .filter(|m| *m != me && self.state_of(m) == Some(State::Alive))
            .filter_map(|m| self.address_of(m).map(|a| (m.clone(), a)))
            .collect()
    }

    /// The schedule: catch-up with every peer once, then one peer every I.
    pub async fn ae_loop(self: Rc<Self>) {
        if !self.ae_enabled() {
            return;
        }
        let period = self.node.config.anti_entropy_interval;
        // Catch-up once the join exchange had a chance to fill the table.
        self.stop
            .race(glommio::timer::sleep(self.node.config.gossip_interval * 2))
            .await;
        for (id, addr) in self.alive_ring_peers() {
            self.run_exchange(&id, &addr).await;
        }
        let mut schedule = Schedule::new(now_ms());
        while !self.stop.is_set() {
            self.stop.race(glommio::timer::sleep(period)).await;
            if self.stop.is_set() {
                return;
            }
            self.dist.add(const { idx("AutoSyncLoops") }, 1);
            let alive: Vec<String> = self
                .alive_ring_peers()
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let Some(peer) = schedule.next(&alive) else {
                continue;
            };
            let Some(addr) = self.address_of(&peer) else {
                continue;
            };
            if self.run_exchange(&peer, &addr).await == Some(true) {
                self.dist.add(const { idx("AutoSyncCleanTicks") }, 1);
            }
        }
    }

    /// One exchange with metrics; Some(equal) when it completed.
    async fn run_exchange(self: &Rc<Self>, peer: &str, addr: &str) -> Option<bool> {
        let t = Instant::now();
        let res = self.exchange(peer, addr).await;
        self.dist.set(
            const { idx("LastAutoSyncNanos") },
            t.elapsed().as_nanos() as u64,
        );
        match res {
            Ok(Some(equal)) => {
                self.dist.add(const { idx("MerkleSyncs") }, 1);
                self.dist.last_auto_sync_error.borrow_mut().clear();
                Some(equal)
            }
            Ok(None) => None, // ring mismatch: skipped this interval
            Err(e) => {
                self.dist.add(const { idx("AutoSyncFailures") }, 1);
                log::warn!("anti-entropy with {peer} failed: {e}");
                *self.dist.last_auto_sync_error.borrow_mut() = format!("{peer}: {e}");
                None
            }
        }
    }

    async fn exchange(self: &Rc<Self>, peer: &str, addr: &str) -> Result<Option<bool>, String> {
        let me = self.node.node_id().to_string();
        let fp = self.ring_fp();
        let t = Instant::now();
        // Both sides compare the entries written before one cut-off, the initiator's.
        let before = now_ms().saturating_sub(ae::SETTLE_MS);
        let leaves = self.pair_leaves(peer, before).await;
        let root = ae::root(&leaves);
        self.dist.set(
            const { idx("MerkleBuildNanos") },
            t.elapsed().as_nanos() as u64,
        );
        let t = Instant::now();
        let call = AeLeaves {
            me: &me,
            ring: &fp,
            root_hex: ae::hex(root),
            before: Some(before),
        };
        let lr = match self.peers.data_call(addr, &call).await {
            Ok(lr) => lr,
            // The rings differ: wait for the next round.
            Err(PeerError::Status(409)) => return Ok(None),
            Err(e) => return Err(why("leaves", e)),
        };
        if lr.equal {
            return Ok(Some(true));
        }
        let diff = differing_leaves(&leaves, &lr.leaves)?;
        self.dist.set(
            const { idx("MerkleDiffNanos") },
            t.elapsed().as_nanos() as u64,
        );
        let t = Instant::now();
        // Their entries in the differing leaves.
        let mut theirs: Vec<Digest> = Vec::new();
        for chunk in diff.chunks(64) {
            let call = AeDigests {
                me: &me,
                ring: &fp,
                leaves: chunk,
                before: Some(before),
            };
            let d = self
                .peers
                .data_call(addr, &call)
                .await
                .map_err(|e| why("digests", e))?;
            // A Go or older peer ignores the cut-off: its younger entries wait for the next
            // exchange here too.
            theirs.extend(
                d.entries
                    .into_iter()
                    .filter(|e| ae::settled(e.version, before)),
            );
        }
        // Ours only in the differing leaves: under a write load every leaf can differ, but at
        // rest only a few do, and the rest of the pair set is never materialised.
        let mine = self
            .pair_set(peer, LeafMask::of(diff.iter().copied()), before)
            .await;
        let Plan { pull, push } = plan(&mine, theirs, &diff);
        self.ae_pull(peer, addr, pull).await?;
        self.ae_push(peer, addr, push).await;
        self.dist.set(
            const { idx("MerkleFetchNanos") },
            t.elapsed().as_nanos() as u64,
        );
        Ok(Some(false))
    }

    async fn ae_pull(&self, _peer: &str, addr: &str, keys: Vec<String>) -> Result<(), String> {
        let batch = self.node.config.rebalance_batch.max(1);
        for chunk in keys.chunks(batch) {
            let call = BatchGet(BatchGetReq {
                keys: chunk.to_vec(),
            });
            let resp = self
                .peers
                .data_call(addr, &call)
                .await
                .map_err(|e| why("batch get", e))?;
            let now = now_ms();
            for res in resp.results {
                let entry = match (res.item, res.tombstone) {
                    (Some(it), _) if res.found => wire::wire_item_to_entry(&it, now).ok(),
                    (_, Some(t)) => Some(Entry::Tombstone {
                        version: t.version,
                        origin: t.origin,
                        deleted_at_ms: t.deleted_at,
                    }),
                    _ => None,
                };
                let Some(entry) = entry else { continue };
                let hash = xxhash64(res.key.as_bytes(), 0);
                let op = Op::Apply {
                    hash,
                    key: res.key.into_bytes(),
                    entry,
                    repair: true,
                };
                if let Reply::Applied(crate::store::entry::ApplyStatus::Applied) =
                    self.dispatch.call(shard_for(hash, self.cores), op).await
                {
                    self.dist.add(const { idx("MerkleKeysPulled") }, 1);
                }
            }
        }
        Ok(())
    }

    async fn ae_push(&self, peer: &str, addr: &str, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let mut groups: Vec<Vec<KeyRef>> = (0..self.cores).map(|_| Vec::new()).collect();
        for (i, k) in keys.iter().enumerate() {
            let hash = xxhash64(k.as_bytes(), 0);
            groups[shard_for(hash, self.cores)].push(KeyRef {
                idx: i,
                hash,
                key: k.as_bytes().to_vec(),
            });
        }
        let mut found: Vec<(usize, Entry)> = Vec::new();
        for (core, g) in groups.into_iter().enumerate() {
            if g.is_empty() {
                continue;
            }
            if let Reply::Lookups(v) = self.dispatch.call(core, Op::LookupBatch(g)).await {
                found.extend(v.into_iter().filter_map(|(i, l)| l.map(|e| (i, e))));
            }
        }
        let now = now_ms();
        let items: Vec<Item<'_>> = found
            .iter()
            .map(|(i, e)| (*i, keys[*i].as_str(), e))
            .collect();
        let batch = self.node.config.rebalance_batch.max(1);
        for part in items.chunks(batch) {
            for (_, ack) in self.send_batch(addr, peer, part, "ae", now).await {
                // +1 per `applied` (cluster.md §10 step 4): not an entry the peer already held.
                if let Ack::Ok = ack {
                    self.dist.add(const { idx("MerkleKeysPushed") }, 1);
                }
            }
        }
    }
}
