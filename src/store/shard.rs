//! One data core's shard: the struct, reads, and the primitives that keep its invariants.
//! The LWW write path is in `apply.rs`, eviction and log cleaning in `policy.rs`, expiry in
//! `expiry.rs` (more `impl Shard`).
//!
//! Invariants (checked by `check_invariants` in the tests):
//! * a key has at most one of {item, tombstone};
//! * `index` holds exactly the live items of the log, each under the hash of its key;
//! * `items`, `bytes` and `with_deadline` count exactly those items (accounted sizes for `bytes`);
//! * after any insert, both limits hold unless the written entry alone exceeds them.

use super::index::{Index, Slot};
use super::item::{self, Hdr, REF};
use super::log::{self, Addr, Log};
use super::origin::Origins;
use super::policy::Policy;
use super::tombstone::Tombstones;
use super::types::{accounted_size, Item, Lookup, ShardLimits, ShardStats, TombstoneInfo};

/// The key hash the shard's callers use: XXH64 with seed 0 (`base::hash`, cluster.md §3). The
/// shard re-hashes keys with it when its index grows and for scans, which is what lets the index
/// keep 8 bytes per item instead of a stored hash.
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(key, 0)
}

/// Where the active-expiry sweep is: a log position, or a tombstone position.
#[derive(Clone, Copy, Debug)]
pub(super) enum Sweep {
    Log(u64),
    Tombstones(usize),
}

/// One data core's share of the keyspace: items under limits and a policy, tombstones, counters.
/// Single-threaded by design; every time-dependent method takes `now_ms` (Unix ms).
pub struct Shard {
    pub(super) limits: ShardLimits,
    pub(super) policy: Policy,
    pub(super) tombstone_ttl_ms: u64,
    /// Must agree with the `hash` every caller passes (see [`key_hash`]).
    pub(super) hasher: fn(&[u8]) -> u64,
    pub(super) index: Index,
    pub(super) log: Log,
    pub(super) tombstones: Tombstones,
    pub(super) origins: Origins,
    /// Items held (live plus expired-not-yet-purged).
    pub(super) items: usize,
    /// Accounted bytes of all items.
    pub(super) bytes: u64,
    /// Items with a deadline; lets a TTL-free cache skip every expiry scan.
    pub(super) with_deadline: u64,
    pub(super) sweep: Sweep,
    pub(super) evictions: u64,
    pub(super) expirations: u64,
    pub(super) tombstones_purged: u64,
    pub(super) version_conflicts: u64,
    pub(super) version_tie_breaks: u64,
}

/// What a key resolves to after lazy removal of an expired item or a too-old tombstone.
#[derive(Clone, Copy)]
pub(super) enum Local {
    Item(Slot, Addr, Hdr),
    Tombstone(usize),
    Absent,
}

/// The key of the item at `addr`.
#[inline]
pub(super) fn key_at(log: &Log, addr: Addr) -> &[u8] {
    let data = log.data(addr);
    let h = item::decode(data);
    &data[h.key_at..h.value_at()]
}

impl Shard {
    pub fn new(limits: ShardLimits, policy: Policy, tombstone_ttl_ms: u64) -> Shard {
        Shard::with_hasher(limits, policy, tombstone_ttl_ms, key_hash)
    }

    /// A shard whose callers hash keys with `hasher` instead of [`key_hash`] (tests that force
    /// collisions).
    pub fn with_hasher(
        limits: ShardLimits,
        policy: Policy,
        tombstone_ttl_ms: u64,
        hasher: fn(&[u8]) -> u64,
    ) -> Shard {
        Shard {
            limits,
            policy,
            tombstone_ttl_ms,
            hasher,
            index: Index::new(),
            log: Log::new(log::seg_size_for(limits.max_bytes)),
            tombstones: Tombstones::new(),
            origins: Origins::new(),
            items: 0,
            bytes: 0,
            with_deadline: 0,
            sweep: Sweep::Log(0),
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
        let (slot, addr, hdr) = self.find_item(hash, key)?;
        if hdr.is_expired(now_ms) {
            self.remove_item(slot, addr, &hdr);
            self.expirations += 1;
            return None;
        }
        self.on_hit(addr, &hdr);
        Some(self.item(addr, &hdr))
    }

    /// Like [`Self::get`], but also reports a tombstone (dist protocol). Expired items and
    /// tombstones past the TTL are removed and reported `Absent`.
    pub fn lookup(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Lookup<'_> {
        match self.resolve(hash, key, now_ms) {
            Local::Item(_, addr, hdr) => {
                self.on_hit(addr, &hdr);
                Lookup::Item(self.item(addr, &hdr))
            }
            Local::Tombstone(pos) => Lookup::Tombstone(self.tombstone_info(pos)),
            Local::Absent => Lookup::Absent,
        }
    }

    /// Like [`Self::lookup`] without side effects: no recency update, no lazy removal. For scans
    /// that must not disturb the eviction order (anti-entropy, debugging).
    pub fn peek(&self, hash: u64, key: &[u8], now_ms: u64) -> Lookup<'_> {
        if let Some((_, addr, hdr)) = self.find_item(hash, key) {
            // A key never has both an item and a tombstone, so an expired item means absent.
            if hdr.is_expired(now_ms) {
                return Lookup::Absent;
            }
            return Lookup::Item(self.item(addr, &hdr));
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
        let removed = self.items as u64;
        self.log.clear();
        self.index.clear();
        self.items = 0;
        self.bytes = 0;
        self.with_deadline = 0;
        self.sweep = Sweep::Log(0);
        removed
    }

    /// Visits live items in log order: `f(hash, key, item)`. No side effects. One unbounded
    /// [`Self::scan_items_step`]; the runtime scans in bounded steps instead (`runtime::scan`).
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
        let local = self.resolve(hash, key, now_ms);
        if matches!(local, Local::Absent) || self.local_stamp(local) != (version, origin) {
            return false;
        }
        match local {
            Local::Item(slot, addr, hdr) => self.remove_item(slot, addr, &hdr),
            Local::Tombstone(pos) => self.tombstones.remove(pos),
            Local::Absent => unreachable!("checked above"),
        }
        true
    }

    pub fn stats(&self) -> ShardStats {
        ShardStats {
            items: self.items as u64,
            bytes: self.bytes,
            tombstones: self.tombstones.len() as u64,
            evictions: self.evictions,
            expirations: self.expirations,
            tombstones_purged: self.tombstones_purged,
            version_conflicts: self.version_conflicts,
            version_tie_breaks: self.version_tie_breaks,
        }
    }

    /// The configured policy name's policy (both select CLOCK over the log, `policy.rs`).
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Items held, live plus expired-not-yet-purged.
    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }

    /// Accounted bytes of the items held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Resident memory of the log (bytes written), the index and the tombstones: what the byte
    /// budget bounds.
    pub fn memory_bytes(&self) -> u64 {
        (self.log.used() + self.index.bytes() + self.tombstones.bytes()) as u64
    }

    // ---- internals -------------------------------------------------------------------------

    /// The item held for `key`: its index slot, log address and decoded header.
    #[inline]
    pub(super) fn find_item(&self, hash: u64, key: &[u8]) -> Option<(Slot, Addr, Hdr)> {
        let log = &self.log;
        let mut found = None;
        let (slot, addr) = self.index.find(hash, |a| {
            let data = log.data(a);
            let h = item::decode(data);
            let hit = &data[h.key_at..h.value_at()] == key;
            if hit {
                found = Some(h);
            }
            hit
        })?;
        Some((slot, addr, found.expect("decoded on the hit")))
    }

    pub(super) fn resolve(&mut self, hash: u64, key: &[u8], now_ms: u64) -> Local {
        if let Some((slot, addr, hdr)) = self.find_item(hash, key) {
            if !hdr.is_expired(now_ms) {
                return Local::Item(slot, addr, hdr);
            }
            self.remove_item(slot, addr, &hdr);
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
            Local::Item(_, _, hdr) => (hdr.version, self.origins.name(hdr.origin)),
            Local::Tombstone(pos) => {
                let t = self.tombstones.get(pos);
                (t.version, self.origins.name(t.origin))
            }
            Local::Absent => unreachable!("absent entries have no stamp"),
        }
    }

    #[inline]
    pub(super) fn item(&self, addr: Addr, hdr: &Hdr) -> Item<'_> {
        let data = self.log.data(addr);
        Item {
            value: &data[hdr.value_at()..hdr.total()],
            version: hdr.version,
            origin: self.origins.name(hdr.origin),
            expires_at_ms: hdr.deadline,
        }
    }

    /// Records a hit: the CLOCK reference bit (written only when it changes, so a hot item's
    /// cache line stays clean).
    #[inline]
    fn on_hit(&mut self, addr: Addr, hdr: &Hdr) {
        if hdr.flags & REF == 0 {
            self.log.data_mut(addr)[0] |= REF;
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
        let len = item::item_len(key.len(), value.len(), expires_at_ms != 0, origin);
        self.make_log_room(now_ms, len);
        let (addr, out) = self.log.append(len);
        item::encode(out, key, value, version, origin, expires_at_ms);
        let (log, hasher) = (&self.log, self.hasher);
        self.index.insert(hash, addr, |a| hasher(key_at(log, a)));
        self.items += 1;
        self.bytes += size;
        self.with_deadline += u64::from(expires_at_ms != 0);
    }

    /// Replaces the live item found at `addr`. A value of the same length (and the same deadline
    /// presence) is rewritten in place: no log growth, no index update, which is what a cache
    /// that keeps refreshing the same keys mostly does. Otherwise the old copy dies and the new
    /// one is appended; removing first means the entry being written is never the victim.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    pub(super) fn overwrite(
        &mut self,
        found: (Slot, Addr, Hdr),
        (hash, key): (u64, &[u8]),
        value: &[u8],
        version: u64,
        origin: u16,
        expires_at_ms: u64,
        now_ms: u64,
    ) {
        let (slot, addr, hdr) = found;
        let deadline = expires_at_ms.min(item::MAX_EXPIRES_MS);
        let same_shape = hdr.vlen == value.len()
            && item::header_len(hdr.klen, hdr.vlen, deadline != 0, origin) == hdr.key_at;
        if same_shape {
            let data = self.log.data_mut(addr);
            let at = item::encode_header(data, hdr.klen, hdr.vlen, version, origin, deadline);
            debug_assert_eq!(at, hdr.key_at);
            data[hdr.value_at()..hdr.total()].copy_from_slice(value);
            return;
        }
        self.remove_item(slot, addr, &hdr);
        self.insert(hash, key, value, version, origin, expires_at_ms, now_ms);
    }

    pub(super) fn remove_item(&mut self, slot: Slot, addr: Addr, hdr: &Hdr) {
        self.index.remove(slot);
        self.log.kill(addr, hdr.total());
        self.items -= 1;
        self.bytes -= accounted_size(hdr.klen, hdr.vlen);
        self.with_deadline -= u64::from(hdr.deadline != 0);
    }

    /// The index slot of the live item at `addr` (eviction and cleaning meet items by address).
    pub(super) fn slot_of(&self, addr: Addr) -> Slot {
        let hash = (self.hasher)(key_at(&self.log, addr));
        self.index
            .find(hash, |a| a == addr)
            .expect("a live item is in the index")
            .0
    }

    /// Interns `name`; when the id space is full, first drops names no entry uses any more.
    pub(super) fn intern(&mut self, name: &str) -> u16 {
        if let Some(id) = self.origins.intern(name) {
            return id;
        }
        let mut used = vec![false; self.origins.len()];
        let addrs: Vec<Addr> = self.index.addrs().collect();
        for &a in &addrs {
            used[usize::from(item::decode(self.log.data(a)).origin)] = true;
        }
        for pos in 0..self.tombstones.len() {
            used[usize::from(self.tombstones.get(pos).origin)] = true;
        }
        let remap = self.origins.compact(&used);
        for &a in &addrs {
            let h = item::decode(self.log.data(a));
            let id = remap[usize::from(h.origin)];
            item::write_origin(self.log.data_mut(a), &h, id);
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
        self.log.check();
        let (mut live, mut bytes, mut deadlines) = (0usize, 0u64, 0u64);
        let mut pos = 0;
        while let Some((addr, p)) = self.log.seek(pos) {
            let h = item::decode(self.log.data(addr));
            pos = Log::after(p, h.total());
            if !h.live() {
                continue;
            }
            live += 1;
            let key = key_at(&self.log, addr);
            let found = self.find_item((self.hasher)(key), key).map(|f| f.1);
            assert_eq!(found, Some(addr), "live item not indexed under its key");
            assert!(self.tombstones.find((self.hasher)(key), key).is_none());
            assert!(usize::from(h.origin) < self.origins.len());
            bytes += accounted_size(h.klen, h.vlen);
            deadlines += u64::from(h.deadline != 0);
        }
        assert_eq!(live, self.items);
        assert_eq!(self.index.len(), live);
        assert_eq!(bytes, self.bytes);
        assert_eq!(deadlines, self.with_deadline);
        self.tombstones.check();
    }

    #[cfg(test)]
    pub(super) fn origin_table_len(&self) -> usize {
        self.origins.len()
    }
}
