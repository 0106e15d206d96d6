//! The core-local store: one [`Shard`] per data core.
//!
//! A shard is a plain single-threaded data structure (no locks, no atomics, no I/O, no `Send`
//! requirement). Every method that depends on time takes `now_ms` (Unix milliseconds) from the
//! caller, so TTL, tombstone and eviction behaviour is unit-tested without sleeping.
//!
//! ```text
//!                 index: HashTable<u32>            slab: Vec<Entry>             tombstones
//!   hash(key) --> [ .. | 7 | .. | 2 | .. ] ---> 0: Entry ──┐  (own Vec + HashTable,
//!   (caller's     slot = slab index only,       1: vacant ─┼─ free list      never count toward
//!    XXH64,       key bytes live once, in       2: Entry ──┘                 limits, never evicted)
//!    remixed)     the entry's allocation        ...
//!                                               recency list (u32 prev/next):
//!                                               head (newest) <-> ... <-> tail (next victim)
//! ```
//!
//! * **Entries** (`entry.rs`, `slab.rs`): key and value share one `Box<[u8]>` (a one- or two-byte
//!   key-length prefix, then the key, then the value). Hash, version, deadline, origin id, CLOCK bit
//!   and list links sit in a 48-byte slab slot; the index adds a `u32` and a control byte per
//!   bucket. Measured with a counting allocator (16-byte keys, 32-byte values, 0.1-1 M items):
//!   56-60 bytes requested per item beyond key and value, plus the allocator's own header. The
//!   accounted size of an item is therefore `key.len() + value.len() + ENTRY_OVERHEAD` with
//!   `ENTRY_OVERHEAD = 64`, so `HYPERCACHE_MAX_MEMORY` stays an honest bound.
//! * **Policy** (`policy.rs`): `Lru` (default) moves an entry to the head on every hit; `Clock`
//!   (second-chance FIFO over the same list) only sets a reference bit on a hit and gives referenced
//!   entries one more lap when they reach the tail. Both are O(1) amortised and keep an entry read
//!   since it was written in preference to one never read (ops.md §3.1). LRU is the default because
//!   it is exact, predictable (the victim is always the least recently used item, which operators
//!   and tests can reason about), always accepted by the spec, and its cost (relinking three slots
//!   on a hit) is small for a single-threaded shard with no lock to contend on. CLOCK is offered
//!   for read-heavy workloads with large shards: a hit writes one bit in the entry it already
//!   touched instead of two neighbours that are probably not in cache.
//! * **Writes** (`apply.rs`): one LWW replica apply (cluster.md §4) for every write path, with the
//!   90 % repair rule of §5; versions come from the [`Hlc`] (`hlc.rs`).
//! * **Limits and expiry** (`expiry.rs`): making room on insert (expired items first, then policy
//!   victims; never the entry being written), lazy expiry on every access, and
//!   [`Shard::expire_step`], a bounded sweep from a rotating cursor over slab slots then
//!   tombstones, which the runtime calls from a low-priority task. A full pass over `n` slots and
//!   tombstones takes `ceil(n / max_visits)` calls; slab slots never exceed the peak item count.
//! * **Scans** (`scan.rs`): bounded steps over items (by slab slot) and tombstones (downward),
//!   each returning where the next resumes, so the runtime's scans yield between steps and a
//!   paged key listing resumes in O(1).
//! * **Tombstones** (`tombstone.rs`): kept while `now - deleted_at < tombstone_ttl_ms`, purged lazily
//!   on access and by the sweep; never counted toward the limits, never evicted.
//! * **Origins** (`origin.rs`): node ids are interned per shard, so an entry stores a `u16`.

mod apply;
mod entry;
mod expiry;
mod hlc;
mod origin;
mod policy;
mod scan;
mod shard;
mod slab;
mod tombstone;
mod types;

#[cfg(test)]
mod tests;

pub use hlc::{Hlc, MAX_CLOCK_AHEAD_MS};
pub use policy::Policy;
pub use scan::Resume;
pub use shard::Shard;
pub use types::{
    ApplyResult, Incoming, Item, Lookup, ShardLimits, ShardStats, TombstoneInfo, ENTRY_OVERHEAD,
};
