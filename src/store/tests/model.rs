//! A naive model of one shard for the randomised test: a `BTreeMap` that knows the LWW table of
//! cluster.md §4, TTLs and tombstones exactly, and an LRU clock (`last_use`), but nothing about
//! limits: the runner tells it which items the store evicted.

use std::collections::BTreeMap;

use super::{ApplyResult, Incoming, Lookup};

/// The seeded generator of the randomised test: one seed replays one run.
pub(super) struct Rng(pub(super) fastrand::Rng);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(fastrand::Rng::with_seed(seed))
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }
}

#[derive(Clone, Debug)]
pub(super) enum M {
    Item {
        value: Vec<u8>,
        version: u64,
        origin: String,
        expires: u64,
        last_use: u64,
    },
    Tomb {
        version: u64,
        origin: String,
        deleted_at: u64,
    },
}

/// What a key looks like from outside, for comparing model and store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Seen {
    Item(Vec<u8>, u64, String, u64),
    Tomb(u64, String, u64),
    Absent,
}

impl From<Lookup<'_>> for Seen {
    fn from(l: Lookup<'_>) -> Seen {
        match l {
            Lookup::Item(i) => Seen::Item(
                i.value.to_vec(),
                i.version,
                i.origin.into(),
                i.expires_at_ms,
            ),
            Lookup::Tombstone(t) => Seen::Tomb(t.version, t.origin.into(), t.deleted_at_ms),
            Lookup::Absent => Seen::Absent,
        }
    }
}

pub(super) struct Model {
    pub(super) map: BTreeMap<Vec<u8>, M>,
    pub(super) ttl: u64,
    pub(super) tick: u64,
    pub(super) conflicts: u64,
    pub(super) ties: u64,
}

impl Model {
    pub(super) fn seen(&self, key: &[u8], now: u64) -> Seen {
        match self.map.get(key) {
            Some(M::Item {
                value,
                version,
                origin,
                expires,
                ..
            }) if *expires == 0 || now < *expires => {
                Seen::Item(value.clone(), *version, origin.clone(), *expires)
            }
            Some(M::Tomb {
                version,
                origin,
                deleted_at,
            }) if now < deleted_at + self.ttl => Seen::Tomb(*version, origin.clone(), *deleted_at),
            _ => Seen::Absent,
        }
    }

    pub(super) fn touch(&mut self, key: &[u8], now: u64) -> Seen {
        let seen = self.seen(key, now);
        self.tick += 1;
        if let (Seen::Item(..), Some(M::Item { last_use, .. })) = (&seen, self.map.get_mut(key)) {
            *last_use = self.tick;
        }
        seen
    }

    pub(super) fn apply(
        &mut self,
        key: &[u8],
        inc: Incoming<'_>,
        now: u64,
        skip_unheld_item: bool,
    ) -> ApplyResult {
        let (version, origin) = match inc {
            Incoming::Item {
                version, origin, ..
            }
            | Incoming::Tombstone {
                version, origin, ..
            } => (version, origin),
        };
        let local = match self.seen(key, now) {
            Seen::Item(_, v, o, _) | Seen::Tomb(v, o, _) => Some((v, o)),
            Seen::Absent => None,
        };
        match local {
            None if skip_unheld_item && matches!(inc, Incoming::Item { .. }) => {
                return ApplyResult::Ignored
            }
            None => {}
            Some((lv, lo)) => {
                if (lv, lo.as_str()) == (version, origin) {
                    return ApplyResult::Ignored;
                }
                let local_newer =
                    lv > version || (lv == version && lo.as_bytes() < origin.as_bytes());
                if local_newer {
                    self.conflicts += 1;
                    self.ties += u64::from(lv == version);
                    return ApplyResult::Conflict {
                        version: lv,
                        origin: lo,
                        tie_break: lv == version,
                    };
                }
            }
        }
        self.tick += 1;
        let entry = match inc {
            Incoming::Item { expires_at_ms, .. } if expires_at_ms != 0 && now >= expires_at_ms => {
                None
            }
            Incoming::Item {
                value,
                expires_at_ms,
                ..
            } => Some(M::Item {
                value: value.to_vec(),
                version,
                origin: origin.into(),
                expires: expires_at_ms,
                last_use: self.tick,
            }),
            Incoming::Tombstone { deleted_at_ms, .. }
                if now.saturating_sub(deleted_at_ms) < self.ttl =>
            {
                Some(M::Tomb {
                    version,
                    origin: origin.into(),
                    deleted_at: deleted_at_ms,
                })
            }
            Incoming::Tombstone { .. } => None,
        };
        match entry {
            Some(e) => self.map.insert(key.to_vec(), e),
            None => self.map.remove(key),
        };
        ApplyResult::Applied
    }

    /// Live model items (key -> last_use).
    pub(super) fn live_items(&self, now: u64) -> BTreeMap<Vec<u8>, u64> {
        self.map
            .iter()
            .filter_map(|(k, e)| match e {
                M::Item {
                    expires, last_use, ..
                } if *expires == 0 || now < *expires => Some((k.clone(), *last_use)),
                _ => None,
            })
            .collect()
    }
}
