//! The context of one data core: its shard, clock, counters and ring view.
//!
//! Lives in an `Rc` on its executor; connection tasks and the mesh receive
//! loop of that core share it. `RefCell` borrows are never held across an
//! `.await`, so they cannot conflict.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::NodeShared;
use crate::base::stop::StopSignal;
use crate::base::{now_ms, now_us};
use crate::dist::ring::Ring;
use crate::metrics::{CoreMetrics, CoreSnapshot};
use crate::runtime::dispatch::Dispatcher;
use crate::runtime::msg::{KeyRef, Op, PutItem, Reply};
use crate::store::entry::{ApplyStatus, Entry, OwnedItem, Value};
use crate::store::{ApplyResult, Hlc, Incoming, Item, Lookup, Shard};

/// Which data core owns a key hash. Uses the low 32 bits: ring placement
/// depends mostly on the high bits, so a node's share of the ring still
/// spreads evenly over its cores.
#[inline]
pub fn shard_for(hash: u64, cores: usize) -> usize {
    (((hash & 0xffff_ffff) * cores as u64) >> 32) as usize
}

pub struct CoreCtx {
    pub id: usize,
    pub cpu: usize,
    pub cores: usize,
    pub node: Arc<NodeShared>,
    pub shard: RefCell<Shard>,
    pub hlc: RefCell<Hlc>,
    pub metrics: CoreMetrics,
    /// The latest ring snapshot published by the control core.
    pub ring: RefCell<Arc<Ring>>,
    pub dispatch: Rc<Dispatcher>,
    /// Fired at shutdown step 3: stop accepting, close idle connections.
    pub listener_stop: StopSignal,
    pub capacity_items: u64,
}

pub fn owned(item: &Item<'_>, with_value: bool) -> OwnedItem {
    OwnedItem {
        value: if with_value {
            item.value.to_vec()
        } else {
            Vec::new()
        },
        len: item.value.len(),
        version: item.version,
        origin: item.origin.to_string(),
        expires_at_ms: item.expires_at_ms,
    }
}

fn status(r: ApplyResult) -> ApplyStatus {
    match r {
        ApplyResult::Applied => ApplyStatus::Applied,
        ApplyResult::Ignored => ApplyStatus::Ignored,
        ApplyResult::Conflict {
            version, origin, ..
        } => ApplyStatus::Newer(version, origin),
    }
}

impl CoreCtx {
    /// Index of the control core on the mesh.
    pub fn control(&self) -> usize {
        self.cores
    }

    pub fn get_owned(&self, hash: u64, key: &[u8], with_value: bool) -> Option<OwnedItem> {
        let mut shard = self.shard.borrow_mut();
        shard
            .get(hash, key, now_ms())
            .map(|i| owned(&i, with_value))
    }

    /// The key's entry (item or tombstone) for a peer or the coordinator; None when absent.
    pub fn lookup(&self, hash: u64, key: &[u8]) -> Option<Entry> {
        let mut shard = self.shard.borrow_mut();
        match shard.lookup(hash, key, now_ms()) {
            Lookup::Item(i) => Some(Entry::Item {
                value: Value::from(i.value.to_vec()),
                version: i.version,
                origin: i.origin.to_string(),
                expires_at_ms: i.expires_at_ms,
            }),
            Lookup::Tombstone(t) => Some(Entry::Tombstone {
                version: t.version,
                origin: t.origin.to_string(),
                deleted_at_ms: t.deleted_at_ms,
            }),
            Lookup::Absent => None,
        }
    }

    /// A client write of a key this core owns: assign version and deadline,
    /// store it when this node is an owner. Returns (version, deadline).
    pub fn put_local(
        &self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        ttl_ms: u64,
        store: bool,
        observe: u64,
    ) -> (u64, u64) {
        let (version, now) = self.issue(observe);
        let expires_at_ms = if ttl_ms > 0 { now + ttl_ms } else { 0 };
        if store {
            let incoming = Incoming::Item {
                value,
                version,
                origin: self.node.node_id(),
                expires_at_ms,
            };
            self.shard
                .borrow_mut()
                .apply(hash, key, incoming, now, false);
        }
        (version, expires_at_ms)
    }

    /// A fresh version for a write coordinated here, above `observe`, and the wall time (ms)
    /// it was issued at: one clock read serves both.
    fn issue(&self, observe: u64) -> (u64, u64) {
        let now_us = now_us();
        let mut hlc = self.hlc.borrow_mut();
        hlc.observe(observe);
        (hlc.next_at(now_us), now_us / 1000)
    }

    pub fn delete_local(&self, hash: u64, key: &[u8], store: bool, observe: u64) -> (u64, u64) {
        let (version, now) = self.issue(observe);
        if store {
            let incoming = Incoming::Tombstone {
                version,
                origin: self.node.node_id(),
                deleted_at_ms: now,
            };
            self.shard
                .borrow_mut()
                .apply(hash, key, incoming, now, false);
        }
        (version, now)
    }

    /// Replica apply (cluster.md §4). Unversioned entries (version 0 or empty
    /// origin, from Go senders) are versioned here.
    pub fn apply(&self, hash: u64, key: &[u8], entry: &Entry, repair: bool) -> ApplyStatus {
        let now_us = now_us();
        let now = now_us / 1000;
        let mut hlc = self.hlc.borrow_mut();
        let me = self.node.node_id();
        let (version, origin) = if entry.version() == 0 || entry.origin().is_empty() {
            (hlc.next_at(now_us), me)
        } else {
            hlc.observe(entry.version());
            (entry.version(), entry.origin())
        };
        drop(hlc);
        let incoming = match entry {
            Entry::Item {
                value,
                expires_at_ms,
                ..
            } => Incoming::Item {
                value,
                version,
                origin,
                expires_at_ms: *expires_at_ms,
            },
            Entry::Tombstone { deleted_at_ms, .. } => Incoming::Tombstone {
                version,
                origin,
                deleted_at_ms: *deleted_at_ms,
            },
        };
        status(
            self.shard
                .borrow_mut()
                .apply(hash, key, incoming, now, repair),
        )
    }

    fn put_items(&self, items: Vec<PutItem>) -> Vec<(usize, u64, u64)> {
        items
            .into_iter()
            .map(|p| {
                let (v, e) = self.put_local(p.hash, &p.key, &p.value, p.ttl_ms, p.store, p.observe);
                (p.idx, v, e)
            })
            .collect()
    }

    pub fn snapshot(&self) -> CoreSnapshot {
        let mut s = self.metrics.snapshot();
        let st = self.shard.borrow().stats();
        s.core = self.id;
        s.cpu = self.cpu;
        s.items = st.items;
        s.bytes = st.bytes;
        s.capacity_items = self.capacity_items;
        s.evictions = st.evictions;
        s.expirations = st.expirations;
        s.tombstones = st.tombstones;
        s.tombstones_purged = st.tombstones_purged;
        s.version_conflicts = st.version_conflicts;
        s.version_tie_breaks = st.version_tie_breaks;
        s
    }

    /// Runs an op addressed to this core (from the mesh or from itself).
    pub fn execute(&self, op: Op) -> Reply {
        match op {
            Op::Get {
                hash,
                key,
                with_value,
            } => Reply::Item(self.get_owned(hash, &key, with_value)),
            Op::Put(p) => {
                let (v, e) = self.put_local(p.hash, &p.key, &p.value, p.ttl_ms, p.store, p.observe);
                Reply::Written(v, e)
            }
            Op::Delete {
                hash,
                key,
                store,
                observe,
            } => {
                let (v, d) = self.delete_local(hash, &key, store, observe);
                Reply::Written(v, d)
            }
            Op::Lookup { hash, key } => Reply::Lookup(self.lookup(hash, &key)),
            Op::LookupBatch(keys) => Reply::Lookups(
                keys.into_iter()
                    .map(|k| (k.idx, self.lookup(k.hash, &k.key)))
                    .collect(),
            ),
            Op::Apply {
                hash,
                key,
                entry,
                repair,
            } => Reply::Applied(self.apply(hash, &key, &entry, repair)),
            Op::ApplyBatch { items, repair } => Reply::AppliedBatch({
                // The batch's lookups miss the cache in parallel, not one after another.
                self.shard.borrow().prefetch(items.iter().map(|i| i.1));
                items
                    .into_iter()
                    .map(|(idx, hash, key, entry)| (idx, self.apply(hash, &key, &entry, repair)))
                    .collect()
            }),
            Op::DropIfSame(items) => {
                let now = now_ms();
                let mut shard = self.shard.borrow_mut();
                let n = items
                    .into_iter()
                    .filter(|(h, k, v, o)| shard.remove_if_same(*h, k, *v, o, now))
                    .count();
                Reply::Count(n as u64)
            }
            Op::RingUpdate(ring) => {
                *self.ring.borrow_mut() = ring;
                Reply::Count(0)
            }
            Op::BatchGet(keys) => Reply::Items(
                keys.into_iter()
                    .map(|KeyRef { idx, hash, key }| (idx, self.get_owned(hash, &key, true)))
                    .collect(),
            ),
            Op::BatchPut(items) => Reply::Versions(self.put_items(items)),
            Op::BatchDelete(keys) => Reply::Versions(
                keys.into_iter()
                    .map(|k| {
                        let (v, d) = self.delete_local(k.hash, &k.key, k.store, k.observe);
                        (k.idx, v, d)
                    })
                    .collect(),
            ),
            Op::Stats => Reply::Stats(Box::new(self.snapshot())),
            Op::Evict => Reply::Count(self.shard.borrow_mut().evict_to_limits(now_ms())),
            Op::Expire => Reply::Count(self.shard.borrow_mut().expire_all(now_ms())),
            Op::Clear => Reply::Count(self.shard.borrow_mut().clear()),
            Op::CloseListener => {
                self.listener_stop.fire();
                Reply::Count(self.metrics.connections.get())
            }
            Op::Connections => Reply::Count(self.metrics.connections.get()),
            Op::Adopt(fd) => {
                // The data core's mesh handler passes sockets to its accept loop before
                // `execute`; one that gets here has no listener to serve it: close it.
                drop(fd);
                self.node.client_loads.closed(self.id);
                Reply::Count(0)
            }
            Op::Replicate(_) | Op::RemoteRead(_) | Op::BrowseKeys { .. } => {
                unreachable!("cluster jobs go to the control core")
            }
            Op::AeDigests { .. }
            | Op::AeLeafSums { .. }
            | Op::Keys { .. }
            | Op::ScanKeys
            | Op::MerkleEntries => {
                unreachable!("scans run in runtime::scan, in the scan queue")
            }
        }
    }

    /// Runs `op` on the core that owns it: directly when that is this core,
    /// otherwise over the mesh.
    pub async fn on_core(&self, core: usize, op: Op) -> Reply {
        if core == self.id {
            self.execute(op)
        } else {
            crate::metrics::bump(&self.metrics.cross_core, 1);
            self.dispatch.call(core, op).await
        }
    }
}
