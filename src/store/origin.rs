//! Per-shard interning of origins (node ids).
//!
//! Every item and tombstone records the node that issued its version. Storing the id as a `String`
//! would cost 24 bytes plus an allocation per entry for a handful of distinct values, so each shard
//! keeps one table of names and entries store a `u16` id. Names are never freed one by one; when
//! the id space fills up (65 536 names, only after long node-id churn), the shard calls
//! [`Origins::compact`] with the ids still in use and re-maps its entries.

use hashbrown::HashTable;

/// Ids are `u16`, so at most this many names at once.
pub(super) const MAX_ORIGINS: usize = 1 << 16;

pub(super) struct Origins {
    names: Vec<Box<str>>,
    index: HashTable<u16>,
    /// Id of the last name interned: most writes on a core come from the same coordinator (this
    /// node), so one comparison usually avoids hashing.
    last: Option<u16>,
}

/// FNV-1a: names are short and few, and this keeps the table deterministic and dependency-free.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Origins {
    pub(super) fn new() -> Origins {
        Origins {
            names: Vec::new(),
            index: HashTable::new(),
            last: None,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.names.len()
    }

    #[inline]
    pub(super) fn name(&self, id: u16) -> &str {
        &self.names[usize::from(id)]
    }

    /// The id of `name`, adding it if new; `None` when the table is full (see [`Self::compact`]).
    pub(super) fn intern(&mut self, name: &str) -> Option<u16> {
        if let Some(id) = self.last {
            if *self.names[usize::from(id)] == *name {
                return Some(id);
            }
        }
        let names = &self.names;
        let hash = name_hash(name);
        let id = match self.index.find(hash, |&i| *names[usize::from(i)] == *name) {
            Some(&id) => id,
            None => {
                if self.names.len() >= MAX_ORIGINS {
                    return None;
                }
                let id = self.names.len() as u16;
                self.names.push(name.into());
                let names = &self.names;
                self.index
                    .insert_unique(hash, id, |&i| name_hash(&names[usize::from(i)]));
                id
            }
        };
        self.last = Some(id);
        Some(id)
    }

    /// Keeps only the names whose id has `used[id]` set and returns the map old id -> new id
    /// (unused ids map to 0; the caller only looks up ids it marked used).
    pub(super) fn compact(&mut self, used: &[bool]) -> Vec<u16> {
        let mut remap = vec![0u16; self.names.len()];
        let old = std::mem::take(&mut self.names);
        for (i, name) in old.into_iter().enumerate() {
            if used.get(i).copied().unwrap_or(false) {
                remap[i] = self.names.len() as u16;
                self.names.push(name);
            }
        }
        self.index = HashTable::with_capacity(self.names.len());
        for (i, name) in self.names.iter().enumerate() {
            let names = &self.names;
            self.index.insert_unique(name_hash(name), i as u16, |&j| {
                name_hash(&names[usize::from(j)])
            });
        }
        self.last = None;
        remap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_compacts() {
        let mut o = Origins::new();
        let a = o.intern("node-a").unwrap();
        let b = o.intern("node-b").unwrap();
        assert_eq!(o.intern("node-a"), Some(a));
        assert_ne!(a, b);
        assert_eq!(o.name(b), "node-b");
        let remap = o.compact(&[false, true]);
        assert_eq!(o.len(), 1);
        assert_eq!(o.name(remap[usize::from(b)]), "node-b");
        assert_eq!(o.intern("node-b"), Some(remap[usize::from(b)]));
        assert_eq!(o.intern("node-a"), Some(1));
    }

    #[test]
    fn full_table_refuses_new_names() {
        let mut o = Origins::new();
        for i in 0..MAX_ORIGINS {
            assert!(o.intern(&i.to_string()).is_some());
        }
        assert_eq!(o.intern("one-more"), None);
        assert_eq!(o.intern("7"), Some(7));
    }
}
