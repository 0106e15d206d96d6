//! Tombstones: `{key, version, origin, deleted_at}` kept for the tombstone TTL (cluster.md §5).
//!
//! They live apart from items because they follow different rules: they never count toward the
//! item or byte limits, are never evicted, and leave only by age. Keeping them out of the log
//! also keeps the item header small (no item/tombstone tag) and the eviction hand free of entries
//! it must skip. Their memory is counted against the log's byte budget (`policy.rs`).
//!
//! Storage is a dense `Vec` (removal is `swap_remove`, so the sweep walks only real tombstones)
//! indexed by a `HashTable<u32>` of positions, like the item index.

use hashbrown::HashTable;

use super::index::mix as table_hash;

pub(super) struct Tombstone {
    key: Box<[u8]>,
    /// Caller's key hash: re-hashing the index and re-pointing it after a `swap_remove`.
    pub(super) hash: u64,
    pub(super) version: u64,
    pub(super) deleted_at_ms: u64,
    pub(super) origin: u16,
}

impl Tombstone {
    pub(super) fn key(&self) -> &[u8] {
        &self.key
    }

    /// Purged once `now >= deleted_at + ttl`.
    #[inline]
    pub(super) fn is_purgeable(&self, now_ms: u64, ttl_ms: u64) -> bool {
        now_ms >= self.deleted_at_ms.saturating_add(ttl_ms)
    }
}

pub(super) struct Tombstones {
    list: Vec<Tombstone>,
    index: HashTable<u32>,
    /// Bytes of the boxed keys, with the allocator's 16-byte minimum chunk each.
    key_bytes: usize,
}

/// What the allocator hands out for a `len`-byte box (glibc: 8 bytes of header, 16-byte steps,
/// 32 bytes at least).
fn boxed(len: usize) -> usize {
    (len + 8).div_ceil(16).max(2) * 16
}

impl Tombstones {
    pub(super) fn new() -> Tombstones {
        Tombstones {
            list: Vec::new(),
            index: HashTable::new(),
            key_bytes: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    /// Memory the tombstones hold (estimated from capacities): tombstones do not count toward the
    /// limits (ops.md §3), but the memory they take is kept out of the log's budget so that
    /// `HYPERCACHE_MAX_MEMORY` bounds the process, mass deletes included.
    pub(super) fn bytes(&self) -> usize {
        self.list.capacity() * std::mem::size_of::<Tombstone>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.key_bytes
    }

    pub(super) fn get(&self, pos: usize) -> &Tombstone {
        &self.list[pos]
    }

    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let list = &self.list;
        self.index
            .find(table_hash(hash), |&p| list[p as usize].key() == key)
            .map(|&p| p as usize)
    }

    /// Adds a tombstone for a key that has none.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        key: &[u8],
        version: u64,
        origin: u16,
        deleted_at_ms: u64,
    ) {
        debug_assert!(self.find(hash, key).is_none());
        let pos = u32::try_from(self.list.len()).expect("tombstone count fits u32");
        self.key_bytes += boxed(key.len());
        self.list.push(Tombstone {
            key: key.into(),
            hash,
            version,
            deleted_at_ms,
            origin,
        });
        let list = &self.list;
        self.index.insert_unique(table_hash(hash), pos, |&p| {
            table_hash(list[p as usize].hash)
        });
    }

    /// Replaces the version, origin and time of the tombstone at `pos`.
    pub(super) fn update(&mut self, pos: usize, version: u64, origin: u16, deleted_at_ms: u64) {
        let t = &mut self.list[pos];
        t.version = version;
        t.origin = origin;
        t.deleted_at_ms = deleted_at_ms;
    }

    /// Removes the tombstone at `pos`; the last tombstone moves into `pos`.
    pub(super) fn remove(&mut self, pos: usize) {
        let last = self.list.len() - 1;
        let removed_hash = self.list[pos].hash;
        self.key_bytes -= boxed(self.list[pos].key.len());
        if let Ok(slot) = self
            .index
            .find_entry(table_hash(removed_hash), |&p| p as usize == pos)
        {
            slot.remove();
        }
        self.list.swap_remove(pos);
        if pos != last {
            let moved_hash = self.list[pos].hash;
            if let Some(p) = self
                .index
                .find_mut(table_hash(moved_hash), |&p| p as usize == last)
            {
                *p = pos as u32;
            }
        }
        // Tombstones come in bursts (mass deletes) and leave by age: give the memory back once
        // three quarters of it is idle.
        if self.list.capacity() > 64 && self.list.len() * 4 < self.list.capacity() {
            self.list.shrink_to(self.list.len() * 2);
            let list = &self.list;
            self.index
                .shrink_to(list.len() * 2, |&p| table_hash(list[p as usize].hash));
        }
    }

    /// Origin ids of all tombstones, mutably (origin re-mapping).
    pub(super) fn origins_mut(&mut self) -> impl Iterator<Item = &mut u16> {
        self.list.iter_mut().map(|t| &mut t.origin)
    }

    /// Checks that the index and the list agree (tests).
    #[cfg(test)]
    pub(super) fn check(&self) {
        assert_eq!(self.index.len(), self.list.len());
        let keys: usize = self.list.iter().map(|t| boxed(t.key.len())).sum();
        assert_eq!(keys, self.key_bytes);
        for (pos, t) in self.list.iter().enumerate() {
            assert_eq!(self.find(t.hash, t.key()), Some(pos));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_remove_keeps_index_consistent() {
        let mut ts = Tombstones::new();
        for i in 0..200u64 {
            ts.insert(i % 7, &i.to_le_bytes(), i, 0, i);
        }
        ts.check();
        for i in (0..200u64).step_by(3) {
            let pos = ts.find(i % 7, &i.to_le_bytes()).unwrap();
            assert_eq!(ts.get(pos).version, i);
            ts.remove(pos);
            ts.check();
        }
        assert_eq!(ts.len(), 200 - 67);
        assert!(ts.find(3, &3u64.to_le_bytes()).is_none());
        let one = ts.get(ts.find(1, &1u64.to_le_bytes()).unwrap());
        assert!(one.is_purgeable(101, 100));
        assert!(!one.is_purgeable(100, 100));
    }
}
