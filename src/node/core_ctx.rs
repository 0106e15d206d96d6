//! The context of one data core: its shard, clock, counters and ring view.
//!
//! Lives in an `Rc` on its executor; connection tasks and the mesh receive
//! loop of that core share it. `RefCell` borrows are never held across an
//! `.await`, so they cannot conflict.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::{now_ms, NodeShared};
use crate::dist::ring::Ring;
use crate::metrics::{CoreMetrics, CoreSnapshot};
use crate::runtime::dispatch::Dispatcher;
use crate::runtime::msg::{KeyRef, Op, OwnedItem, PutItem, Reply};
use crate::runtime::stop::StopSignal;
use crate::store::{Hlc, Incoming, Item, Shard};

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
    pub ring: RefCell<Rc<Ring>>,
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

impl CoreCtx {
    pub fn get_owned(&self, hash: u64, key: &[u8], with_value: bool) -> Option<OwnedItem> {
        let mut shard = self.shard.borrow_mut();
        shard
            .get(hash, key, now_ms())
            .map(|i| owned(&i, with_value))
    }

    /// A client write whose key this core owns: assign version and deadline.
    pub fn put_local(&self, hash: u64, key: &[u8], value: &[u8], ttl_ms: u64) -> u64 {
        let now = now_ms();
        let version = self.hlc.borrow_mut().next(now);
        let expires_at_ms = if ttl_ms > 0 { now + ttl_ms } else { 0 };
        let incoming = Incoming::Item {
            value,
            version,
            origin: self.node.node_id(),
            expires_at_ms,
        };
        self.shard
            .borrow_mut()
            .apply(hash, key, incoming, now, false);
        version
    }

    pub fn delete_local(&self, hash: u64, key: &[u8]) -> u64 {
        let now = now_ms();
        let version = self.hlc.borrow_mut().next(now);
        let incoming = Incoming::Tombstone {
            version,
            origin: self.node.node_id(),
            deleted_at_ms: now,
        };
        self.shard
            .borrow_mut()
            .apply(hash, key, incoming, now, false);
        version
    }

    fn put_items(&self, items: Vec<PutItem>) -> Vec<(usize, u64)> {
        items
            .into_iter()
            .map(|p| (p.idx, self.put_local(p.hash, &p.key, &p.value, p.ttl_ms)))
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
            Op::Put(p) => Reply::Written(self.put_local(p.hash, &p.key, &p.value, p.ttl_ms)),
            Op::Delete { hash, key } => Reply::Written(self.delete_local(hash, &key)),
            Op::BatchGet(keys) => Reply::Items(
                keys.into_iter()
                    .map(|KeyRef { idx, hash, key }| (idx, self.get_owned(hash, &key, true)))
                    .collect(),
            ),
            Op::BatchPut(items) => Reply::Versions(self.put_items(items)),
            Op::BatchDelete(keys) => Reply::Versions(
                keys.into_iter()
                    .map(|k| (k.idx, self.delete_local(k.hash, &k.key)))
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
