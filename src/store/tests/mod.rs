//! Shard tests: behaviour against ops.md §3 and cluster.md §4-5 with an injected clock (no
//! sleeps), plus a randomised comparison with a naive model.

mod capacity;
mod model;
mod random_ops;
mod replication;

pub(super) use super::*;

pub(super) const TTL: u64 = 600_000; // tombstone TTL
pub(super) const T0: u64 = 1_764_140_000_000;

/// The hash the server passes (XXH64, seed 0): the shard re-hashes keys with it.
pub(super) fn h(key: &[u8]) -> u64 {
    key_hash(key)
}

pub(super) fn shard(max_items: u64, max_bytes: Option<u64>, policy: Policy) -> Shard {
    Shard::new(
        ShardLimits {
            max_items,
            max_bytes,
        },
        policy,
        TTL,
    )
}

pub(super) fn item<'a>(
    value: &'a [u8],
    version: u64,
    origin: &'a str,
    expires_at_ms: u64,
) -> Incoming<'a> {
    Incoming::Item {
        value,
        version,
        origin,
        expires_at_ms,
    }
}

pub(super) fn tomb(version: u64, origin: &str, deleted_at_ms: u64) -> Incoming<'_> {
    Incoming::Tombstone {
        version,
        origin,
        deleted_at_ms,
    }
}

pub(super) fn put(s: &mut Shard, key: &str, value: &str, version: u64) -> ApplyResult {
    let r = s.apply(
        h(key.as_bytes()),
        key.as_bytes(),
        item(value.as_bytes(), version, "n1", 0),
        T0,
        false,
    );
    s.check_invariants();
    r
}

pub(super) fn apply(s: &mut Shard, key: &str, e: Incoming<'_>, now: u64) -> ApplyResult {
    let r = s.apply(h(key.as_bytes()), key.as_bytes(), e, now, false);
    s.check_invariants();
    r
}

pub(super) fn value_of(s: &mut Shard, key: &str, now: u64) -> Option<Vec<u8>> {
    s.get(h(key.as_bytes()), key.as_bytes(), now)
        .map(|i| i.value.to_vec())
}

pub(super) fn size(key: &str, value: &str) -> u64 {
    (key.len() + value.len()) as u64 + ENTRY_OVERHEAD
}
