//! The core-local store: one [`Shard`] per data core.
//!
//! A shard is a plain single-threaded data structure (no locks, no atomics, no I/O, no `Send`
//! requirement). Every method that depends on time takes `now_ms` (Unix milliseconds) from the
//! caller, so TTL, tombstone and eviction behaviour is unit-tested without sleeping.
//!
//! ```text
//!                 index: 64-byte buckets of 8-byte slots       log: segments, oldest first
//!   hash(key) --> [ tag|addr  tag|addr  0  ... ] ----------> [seg 7: item item dead item ...]
//!   (caller's     19-bit tag, 44-bit log address,            [seg 2: item dead item ...     ]
//!    XXH64)       no stored hash, no pointer per item        [seg 9: item item ...  (head)  ]
//!                                                              ^ tail cursor = CLOCK hand
//!   tombstones: own Vec + HashTable (never count toward limits, never evicted)
//! ```
//!
//! * **Items** (`item.rs`, `log.rs`): an item is an 11-byte header (flags and short key length in
//!   one byte, value length, HLC version, interned origin, a deadline only when it has one), the
//!   key and the value, written back to back into 1 MiB segments: no allocation, allocator
//!   header or padding per item. Overwrites of the same size rewrite in place; others append and
//!   leave dead bytes behind.
//! * **Index** (`index.rs`): 8 bytes per slot at a load of 0.72-0.9, grown by 1.25× (not 2×)
//!   and rebuilt by re-hashing the keys in the log. With the header, an item costs about 20-23
//!   bytes beyond its key and value (81 with the slab and boxed entries this replaced; Redis pays
//!   about 90). The accounted size of an item is `key.len() + value.len() + ENTRY_OVERHEAD` with
//!   `ENTRY_OVERHEAD = 32`, so `HYPERCACHE_MAX_MEMORY` stays an honest bound.
//! * **Policy** (`policy.rs`): CLOCK over the log. A hit sets a bit in the item's header; the
//!   hand at the log's tail moves referenced items to the head and evicts the first unreferenced
//!   one. It also keeps the log and index within the byte budget, and compacts dead bytes when
//!   there is no budget. `lru` and `clock` both select it (ops.md §3.1 requires `lru`).
//! * **Writes** (`apply.rs`): one LWW replica apply (cluster.md §4) for every write path, with the
//!   90 % repair rule of §5; versions come from the [`Hlc`] (`hlc.rs`).
//! * **Expiry** (`expiry.rs`): lazy expiry on every access, and [`Shard::expire_step`], a bounded
//!   sweep from a rotating cursor over the log then tombstones, which the runtime calls from a
//!   low-priority task. A segment whose items all expired is released without copying.
//! * **Scans** (`scan.rs`): bounded steps over items (by log position) and tombstones (downward),
//!   each returning where the next resumes, so the runtime's scans yield between steps and a
//!   paged key listing resumes in O(1).
//! * **Tombstones** (`tombstone.rs`): kept while `now - deleted_at < tombstone_ttl_ms`, purged lazily
//!   on access and by the sweep; never counted toward the limits, never evicted.
//! * **Origins** (`origin.rs`): node ids are interned per shard, so an entry stores a `u16`.

mod apply;
pub mod entry;
mod expiry;
mod hlc;
mod index;
mod item;
mod log;
mod origin;
mod policy;
mod prefetch;
mod scan;
mod shard;
mod tombstone;
mod types;

#[cfg(test)]
mod tests;

pub use hlc::{Hlc, MAX_CLOCK_AHEAD_MS};
pub use policy::Policy;
pub use scan::Resume;
pub use shard::{key_hash, Shard};
pub use types::{
    ApplyResult, Incoming, Item, Lookup, ShardLimits, ShardStats, TombstoneInfo, ENTRY_OVERHEAD,
};
