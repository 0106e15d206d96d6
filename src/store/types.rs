//! The values a shard takes and returns. They borrow from the shard (or the caller) so that a
//! lookup never allocates; the caller copies what it needs before the next call.

/// Accounted bytes per item beyond key and value (ops.md §3 leaves the figure to us).
///
/// An item really costs its log header (11 bytes for a key under 31 bytes, a value under 128
/// bytes, no deadline and one of the shard's first 255 origins; at most 28), one 8-byte index
/// slot at a load between 0.72 and 0.9 (8.9-11.1 bytes), and a share of the free end of its
/// segment. 32 covers the common cases with room to spare, so a shard that reaches its accounted
/// byte limit holds less real memory than the limit, and the log's own budget (`policy.rs`) is
/// what bounds memory when overwrites leave dead bytes.
pub const ENTRY_OVERHEAD: u64 = 32;

/// Accounted size of an item (ops.md §3).
#[inline]
pub(super) fn accounted_size(key_len: usize, value_len: usize) -> u64 {
    key_len as u64 + value_len as u64 + ENTRY_OVERHEAD
}

/// Per-shard limits (ops.md §3: the node's limits split over the data cores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLimits {
    /// Items held, live plus expired-not-yet-purged. Tombstones do not count.
    pub max_items: u64,
    /// Accounted bytes (`key + value + ENTRY_OVERHEAD` per item); `None` = no byte cap.
    pub max_bytes: Option<u64>,
}

/// A live item, borrowed from the shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item<'a> {
    pub value: &'a [u8],
    pub version: u64,
    pub origin: &'a str,
    /// Absolute deadline in Unix ms; 0 = no expiry. The item is live while `now < expires_at_ms`.
    pub expires_at_ms: u64,
}

/// A tombstone, borrowed from the shard (cluster.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TombstoneInfo<'a> {
    pub version: u64,
    pub origin: &'a str,
    pub deleted_at_ms: u64,
}

/// What the shard holds for a key; expired items and tombstones past their TTL are `Absent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    Item(Item<'a>),
    Tombstone(TombstoneInfo<'a>),
    Absent,
}

/// An entry offered to [`Shard::apply`](super::Shard::apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    Item {
        value: &'a [u8],
        version: u64,
        origin: &'a str,
        /// Absolute deadline in Unix ms; 0 = no expiry.
        expires_at_ms: u64,
    },
    Tombstone {
        version: u64,
        origin: &'a str,
        deleted_at_ms: u64,
    },
}

impl<'a> Incoming<'a> {
    /// The (version, origin) pair that places this entry in the LWW order.
    pub(super) fn stamp(&self) -> (u64, &'a str) {
        match *self {
            Incoming::Item {
                version, origin, ..
            }
            | Incoming::Tombstone {
                version, origin, ..
            } => (version, origin),
        }
    }
}

/// Outcome of a replica apply (cluster.md §4 table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyResult {
    /// The incoming entry replaced what was held (or was absent). An incoming tombstone past its
    /// TTL, or an item already past its deadline, is applied by removing the older local entry
    /// without storing anything.
    Applied,
    /// The same (version, origin) is already held, or a repair for an unheld key was skipped by
    /// the 90 % rule (cluster.md §5).
    Ignored,
    /// The local entry is newer; `tie_break` is true when the versions were equal and the origin
    /// decided. Counted in `version_conflicts` / `version_tie_breaks`.
    Conflict {
        version: u64,
        origin: String,
        tie_break: bool,
    },
}

/// Counters and gauges of one shard (aggregated per node by the management listener).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardStats {
    /// Items held, live plus expired-not-yet-purged.
    pub items: u64,
    /// Accounted bytes of those items.
    pub bytes: u64,
    /// Tombstones held.
    pub tombstones: u64,
    /// Live items removed by the policy to respect a limit.
    pub evictions: u64,
    /// Items removed because their deadline passed (lazily, by the sweep, or met while evicting).
    pub expirations: u64,
    /// Tombstones removed because they outlived the tombstone TTL.
    pub tombstones_purged: u64,
    /// Applies refused because the local entry was newer.
    pub version_conflicts: u64,
    /// Those of the conflicts decided by origin (equal versions).
    pub version_tie_breaks: u64,
}
