//! One data core's shard: the struct, reads, and the primitives that keep its invariants.
//! The LWW write path is in `apply.rs`, limits and expiry in `expiry.rs` (more `impl Shard`).
//!
//! Invariants (checked by `check_invariants` in the tests):
//! * a key has at most one of {item, tombstone};
//! * `index` holds exactly the live slab slots, each under `table_hash(entry.hash)`;
//! * the recency list holds exactly the live slots, except one slot unlinked for the duration of an
//!   overwrite (so the entry being written is never the victim);
//! * `bytes` is the sum of accounted sizes, `with_deadline` the number of items with a deadline;
//! * after any insert, both limits hold unless the written entry alone exceeds them.

use hashbrown::HashTable;

use super::entry::{accounted_size, table_hash, Entry};
use super::origin::Origins;
use super::policy::Policy;
use super::slab::Slab;
use super::tombstone::Tombstones;
use super::types::{Item, Lookup, ShardLimits, ShardStats, TombstoneInfo};

/// One data core's share of the keyspace: items under limits and a policy, tombstones, counters.
/// Single-threaded by design; every time-dependent method takes `now_ms` (Unix ms).
pub struct Shard {
    pub(super) limits: ShardLimits,
    pub(super) policy: Policy,
    pub(super) tombstone_ttl_ms: u64,
    /// Key -> slab index. Holds only `u32`s: the key bytes live once, in the entry.
    pub(super) index: HashTable<u32>,
    pub(super) slab: Slab,
    pub(super) tombstones: Tombstones,
    pub(super) origins: Origins,
    /// Accounted bytes of all items (live and expired-not-yet-purged).
    pub(super) bytes: u64,
    /// Items with a deadline; lets a TTL-free cache skip every expiry scan.
    pub(super) with_deadline: u64,
    /// Position of the active-expiry sweep in the ring "slab slots, then tombstones".
    pub(super) cursor: usize,
    pub(super) evictions: u64,
    pub(super) expirations: u64,
    pub(super) tombstones_purged: u64,
    pub(super) version_conflicts: u64,
    pub(super) version_tie_breaks: u64,
}

/// What a key resolves to after lazy removal of an expired item or a too-old tombstone.
#[derive(Clone, Copy)]
pub(super) enum Local {
    Item(u32),
    Tombstone(usize),
    Absent,
}

impl Shard {
    pub fn new(limits: ShardLimits, policy: Policy, tombstone_ttl_ms: u64) -> Shard {
        Shard {
            limits,
            policy,
            tombstone_ttl_ms,
            index: HashTable::new(),
            slab: Slab::new(limits.max_items),
            tombstones: Tombstones::new(),
            origins: Origins::new(),
            bytes: 0,
            with_deadline: 0,
            cursor: 0,
            evictions: 0,
            expirations: 0,
            tombstones_purged: 0,
            version_conflicts: 0,
            version_tie_breaks: 0,
        }
    }

    /// Live item or `None`. Lazily removes an expired item (`expirations += 1`) and records the hit
    /// with the policy.
    pub fn get(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Option<Item<'_>> {
        let idx = self.find_item(hash, key)?;
        if self.slab.get(idx).is_expired(now_ms) {
            self.remove_item(idx);
            self.expirations += 1;
            return None;
        }
        self.policy.on_hit(&mut self.slab, idx);
        Some(self.item(idx))
    }

    /// Like [`Self::get`], but also reports a tombstone (dist protocol). Expired items and
    /// tombstones past the TTL are removed and reported `Absent`.
    pub fn lookup(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Lookup<'_> {
        match self.resolve(hash, key, now_ms) {
            Local::Item(idx) => {
                self.policy.on_hit(&mut self.slab, idx);
                Lookup::Item(self.item(idx))
            }
            Local::Tombstone(pos) => Lookup::Tombstone(self.tombstone_info(pos)),
            Local::Absent => Lookup::Absent,
        }
    }

    /// Like [`Self::lookup`] without side effects: no recency update, no lazy removal. For scans
    /// that must not disturb the eviction order (anti-entropy, debugging).
    pub fn peek(&self, hash: u64, key: &[u8], now_ms: u64) -> Lookup<'_> {
        if let Some(idx) = self.find_item(hash, key) {
            // A key never has both an item and a tombstone, so an expired item means absent.
            if self.slab.get(idx).is_expired(now_ms) {
                return Lookup::Absent;
            }
            return Lookup::Item(self.item(idx));
        }
        match self.tombstones.find(hash, key) {
            Some(pos)
                if !self
                    .tombstones
                    .get(pos)
                    .is_purgeable(now_ms, self.tombstone_ttl_ms) =>
            {
                Lookup::Tombstone(self.tombstone_info(pos))
            }
            _ => Lookup::Absent,
        }
    }

    /// `POST /clear`: removes every item (tombstones are kept); returns the count removed.
    pub fn clear(&mut self) -> u64 {
        let removed = self.slab.live() as u64;
        self.slab.clear();
        self.index = HashTable::new();
        self.bytes = 0;
        self.with_deadline = 0;
        self.cursor = 0;
        removed
    }

    /// Visits live items in slot order: `f(hash, key, item)`. No side effects. One unbounded
    /// [`Self::scan_items_step`]; the runtime scans in bounded steps instead (`node::scan`).
    pub fn for_each_live(&self, now_ms: u64, mut f: impl FnMut(u64, &[u8], Item<'_>)) {
        self.scan_items_step(0, usize::MAX, now_ms, |h, k, i| {
            f(h, k, i);
            true
        });
    }

    /// Rebalance hand-off: drops the local item or tombstone of `key` only if
    /// it still has exactly this (version, origin), so a write that arrived
    /// after the hand-off is never lost. Returns whether it was dropped.
    pub fn remove_if_same(
        &mut self,
        hash: u64,
        key: &[u8],
        version: u64,
        origin: &str,
        now_ms: u64,
    ) -> bool {
        match self.resolve(hash, key, now_ms) {
            Local::Item(idx) => {
                if self.local_stamp(Local::Item(idx)) != (version, origin) {
                    return false;
                }
                self.remove_item(idx);
                true
            }
            Local::Tombstone(pos) => {
                if self.local_stamp(Local::Tombstone(pos)) != (version, origin) {
                    return false;
                }
                self.tombstones.remove(pos);
                true
            }
            Local::Absent => false,
        }
    }

    pub fn stats(&self) -> ShardStats {
        ShardStats {
            items: self.slab.live() as u64,
            bytes: self.bytes,
            tombstones: self.tombstones.len() as u64,
            evictions: self.evictions,
            expirations: self.expirations,
            tombstones_purged: self.tombstones_purged,
            version_conflicts: self.version_conflicts,
            version_tie_breaks: self.version_tie_breaks,
        }
    }

    /// Items held, live plus expired-not-yet-purged.
    pub fn len(&self) -> usize {
        self.slab.live()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.live() == 0
    }

    /// Accounted bytes of the items held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    // ---- internals -------------------------------------------------------------------------

    pub(super) fn find_item(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let slab = &self.slab;
        self.index
            .find(table_hash(hash), |&i| slab.get(i).key() == key)
            .copied()
    }

    pub(super) fn resolve(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Local {
        if let Some(idx) = self.find_item(hash, key) {
            if !self.slab.get(idx).is_expired(now_ms) {
                return Local::Item(idx);
            }
            self.remove_item(idx);
            self.expirations += 1;
            return Local::Absent; // no tombstone can coexist with an item
        }
        match self.tombstones.find(hash, key) {
            Some(pos)
                if self
                    .tombstones
                    .get(pos)
                    .is_purgeable(now_ms, self.tombstone_ttl_ms) =>
            {
                self.tombstones.remove(pos);
                self.tombstones_purged += 1;
                Local::Absent
            }
            Some(pos) => Local::Tombstone(pos),
            None => Local::Absent,
        }
    }

    pub(super) fn local_stamp(&self, local: Local) -> (u64, &str) {
        match local {
            Local::Item(idx) => {
                let e = self.slab.get(idx);
                (e.version, self.origins.name(e.origin()))
            }
            Local::Tombstone(pos) => {
                let t = self.tombstones.get(pos);
                (t.version, self.origins.name(t.origin))
            }
            Local::Absent => unreachable!("absent entries have no stamp"),
        }
    }

    pub(super) fn item(&self, idx: u32) -> Item<'_> {
        let e = self.slab.get(idx);
        Item {
            value: e.value(),
            version: e.version,
            origin: self.origins.name(e.origin()),
            expires_at_ms: e.expires_at_ms(),
        }
    }

    pub(super) fn tombstone_info(&self, pos: usize) -> TombstoneInfo<'_> {
        let t = self.tombstones.get(pos);
        TombstoneInfo {
            version: t.version,
            origin: self.origins.name(t.origin),
            deleted_at_ms: t.deleted_at_ms,
        }
    }

    #[allow(clippy::too_many_arguments)] // one call site per path; a struct would only rename them
    pub(super) fn insert(
        &mut self,
        hash: u64,
        key: &[u8],
        value: &[u8],
        version: u64,
        origin: u16,
        expires_at_ms: u64,
        now_ms: u64,
    ) {
        let size = accounted_size(key.len(), value.len());
        self.make_room(now_ms, 1, size);
        let entry = Entry::new(hash, key, value, version, origin, expires_at_ms);
        self.with_deadline += u64::from(entry.has_deadline());
        let idx = self.slab.insert(entry);
        let slab = &self.slab;
        self.index
            .insert_unique(table_hash(hash), idx, |&i| table_hash(slab.get(i).hash));
        self.bytes += size;
    }

    pub(super) fn overwrite(
        &mut self,
        idx: u32,
        value: &[u8],
        version: u64,
        origin: u16,
        expires_at_ms: u64,
        now_ms: u64,
    ) {
        // Out of the list while room is made: the entry being written is never the victim.
        self.slab.unlink(idx);
        let e = self.slab.get_mut(idx);
        let (old_size, had_deadline) = (e.size(), e.has_deadline());
        e.rewrite(value, version, origin, expires_at_ms);
        let (new_size, has_deadline) = (e.size(), e.has_deadline());
        self.bytes = self.bytes - old_size + new_size;
        self.with_deadline = self.with_deadline - u64::from(had_deadline) + u64::from(has_deadline);
        self.make_room(now_ms, 0, 0);
        self.slab.link_front(idx);
    }

    pub(super) fn remove_item(&mut self, idx: u32) -> Entry {
        let e = self.slab.remove(idx);
        let slot = self.index.find_entry(table_hash(e.hash), |&i| i == idx);
        debug_assert!(slot.is_ok(), "slab slot {idx} missing from the index");
        if let Ok(slot) = slot {
            slot.remove();
        }
        self.bytes -= e.size();
        self.with_deadline -= u64::from(e.has_deadline());
        e
    }

    /// Interns `name`; when the id space is full, first drops names no entry uses any more.
    pub(super) fn intern(&mut self, name: &str) -> u16 {
        if let Some(id) = self.origins.intern(name) {
            return id;
        }
        let mut used = vec![false; self.origins.len()];
        for (_, e) in self.slab.iter_live() {
            used[usize::from(e.origin())] = true;
        }
        for pos in 0..self.tombstones.len() {
            used[usize::from(self.tombstones.get(pos).origin)] = true;
        }
        let remap = self.origins.compact(&used);
        for e in self.slab.iter_live_mut() {
            let id = remap[usize::from(e.origin())];
            e.set_origin(id);
        }
        for id in self.tombstones.origins_mut() {
            *id = remap[usize::from(*id)];
        }
        // Node ids are few; 65 536 distinct ones held at once means a peer is sending garbage.
        self.origins
            .intern(name)
            .expect("more than 65536 distinct origins held by one shard")
    }

    /// Checks every structural invariant (tests only; O(n)).
    #[cfg(test)]
    pub(super) fn check_invariants(&self) {
        let live: Vec<u32> = self.slab.iter_live().map(|(i, _)| i).collect();
        assert_eq!(live.len(), self.slab.live());
        assert_eq!(self.index.len(), live.len());
        assert_eq!(self.slab.free_count() + live.len(), self.slab.slots());
        let mut list = self.slab.list();
        list.sort_unstable();
        assert_eq!(list, live, "recency list != live slots");
        let (mut bytes, mut deadlines) = (0, 0);
        for &i in &live {
            let e = self.slab.get(i);
            assert_eq!(self.find_item(e.hash, e.key()), Some(i));
            assert!(self.tombstones.find(e.hash, e.key()).is_none());
            assert!(usize::from(e.origin()) < self.origins.len());
            bytes += e.size();
            deadlines += u64::from(e.has_deadline());
        }
        assert_eq!(bytes, self.bytes);
        assert_eq!(deadlines, self.with_deadline);
        self.tombstones.check();
    }

    #[cfg(test)]
    pub(super) fn origin_table_len(&self) -> usize {
        self.origins.len()
    }
}
