//! The write path: replica apply under the LWW order (cluster.md §4) and the repair rule (§5).
//!
//! Every write reaches the shard here: client writes (after the caller issued a version from its
//! [`Hlc`](super::Hlc)), replication, hints, rebalance, anti-entropy and read repair. One path
//! means one set of rules: an older write never replaces a newer entry, a tombstone blocks older
//! writes while it exists, and the same (version, origin) is recognised as the same write, which
//! makes every transfer idempotent.

use std::cmp::Ordering;

use super::entry::lww_cmp;
use super::shard::{Local, Shard};
use super::types::{ApplyResult, Incoming};

impl Shard {
    /// Replica apply (cluster.md §4), also used for local writes once the caller has issued a
    /// version.
    ///
    /// * LWW: the incoming entry wins iff its version is greater, or equal with a byte-wise smaller
    ///   origin. Same (version, origin): `Ignored`. Local newer: `Conflict` (counted).
    /// * Item: stored in place of the local item or tombstone, after making room (expired items
    ///   first, then policy victims; the written entry is never a victim). An item whose deadline
    ///   has already passed wins but is not stored.
    /// * Tombstone: removes the item; stored only if `now - deleted_at < tombstone_ttl`.
    /// * `repair` (anti-entropy, read repair): an item for a key not held is `Ignored` while the
    ///   shard is at or above 90 % of a limit (measured before this call). Tombstones always apply:
    ///   they never count toward the limits, so they cannot cause eviction churn (cluster.md §5).
    pub fn apply(
        &mut self,
        hash: u64,
        key: &[u8],
        incoming: Incoming<'_>,
        now_ms: u64,
        repair: bool,
    ) -> ApplyResult {
        let crowded = repair && matches!(incoming, Incoming::Item { .. }) && self.crowded();
        let local = self.resolve(hash, key, now_ms);
        let stamp = incoming.stamp();
        match local {
            Local::Absent if crowded => return ApplyResult::Ignored,
            Local::Absent => {}
            Local::Item(..) | Local::Tombstone(_) => {
                let (version, origin) = self.local_stamp(local);
                match lww_cmp(stamp, (version, origin)) {
                    Ordering::Greater => {}
                    Ordering::Equal => return ApplyResult::Ignored,
                    Ordering::Less => {
                        let origin = origin.to_owned();
                        let tie_break = version == stamp.0;
                        self.version_conflicts += 1;
                        self.version_tie_breaks += u64::from(tie_break);
                        return ApplyResult::Conflict {
                            version,
                            origin,
                            tie_break,
                        };
                    }
                }
            }
        }
        match incoming {
            Incoming::Item {
                value,
                version,
                origin,
                expires_at_ms,
            } => {
                if expires_at_ms != 0 && now_ms >= expires_at_ms {
                    // Newer than what we hold, but dead on arrival: it wins and expires at once.
                    match local {
                        Local::Item(slot, addr, hdr) => self.remove_item(slot, addr, &hdr),
                        Local::Tombstone(pos) => self.tombstones.remove(pos),
                        Local::Absent => {}
                    }
                    return ApplyResult::Applied;
                }
                let origin = self.intern(origin);
                match local {
                    Local::Item(slot, addr, hdr) => self.overwrite(
                        (slot, addr, hdr),
                        (hash, key),
                        value,
                        version,
                        origin,
                        expires_at_ms,
                        now_ms,
                    ),
                    Local::Tombstone(pos) => {
                        self.tombstones.remove(pos);
                        self.insert(hash, key, value, version, origin, expires_at_ms, now_ms);
                    }
                    Local::Absent => {
                        self.insert(hash, key, value, version, origin, expires_at_ms, now_ms)
                    }
                }
            }
            Incoming::Tombstone {
                version,
                origin,
                deleted_at_ms,
            } => {
                let keep = now_ms.saturating_sub(deleted_at_ms) < self.tombstone_ttl_ms;
                if let Local::Item(slot, addr, hdr) = local {
                    self.remove_item(slot, addr, &hdr);
                }
                match (local, keep) {
                    (Local::Tombstone(pos), true) => {
                        let origin = self.intern(origin);
                        self.tombstones.update(pos, version, origin, deleted_at_ms);
                    }
                    // Too old to keep: it still replaces the older local tombstone, by removal.
                    (Local::Tombstone(pos), false) => self.tombstones.remove(pos),
                    (_, true) => {
                        let origin = self.intern(origin);
                        self.tombstones
                            .insert(hash, key, version, origin, deleted_at_ms);
                        // The tombstone's memory comes out of the log's budget.
                        self.make_log_room(now_ms, 0);
                    }
                    (_, false) => {}
                }
            }
        }
        ApplyResult::Applied
    }

    /// At or above 90 % of the item limit or of the byte limit (cluster.md §5).
    fn crowded(&self) -> bool {
        let items = self.items as u128 * 10 >= u128::from(self.limits.max_items) * 9;
        let bytes = self
            .limits
            .max_bytes
            .is_some_and(|max| u128::from(self.bytes) * 10 >= u128::from(max) * 9);
        items || bytes
    }
}
