//! Randomised property test: a [`Shard`] against the naive model in `model.rs`.
//!
//! The model cannot know *how many* items an insert evicts (that depends on expired-but-unswept
//! items, which the store counts and the model does not), so after each operation it learns that
//! from `evictions` and then checks *which* entries went: exactly that many live items disappeared
//! and, under LRU, they were the least recently used ones. Every operation's result, every key's
//! visible state, the limits and the structural invariants are compared after every step.

use std::collections::BTreeMap;

use super::model::{Model, Rng, Seen, M};
use super::*;

struct Config {
    policy: Policy,
    limits: ShardLimits,
    hash: fn(&[u8]) -> u64,
    seed: u64,
}

fn run(cfg: Config, ops: usize) {
    const TOMB_TTL: u64 = 300;
    const KEYS: u64 = 48;
    let mut rng = Rng::new(cfg.seed);
    let mut s = Shard::with_hasher(cfg.limits, cfg.policy, TOMB_TTL, cfg.hash);
    let mut m = Model {
        map: BTreeMap::new(),
        ttl: TOMB_TTL,
        tick: 0,
        conflicts: 0,
        ties: 0,
    };
    let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| format!("k{i:02}").into_bytes()).collect();
    let origins = ["a", "b", "B"];
    let mut now = 1_764_140_000_000u64;
    let mut evictions = 0;
    let value_buf: Vec<u8> = (0..32u8).collect();

    for op in 0..ops {
        now += if rng.below(50) == 0 {
            100
        } else {
            rng.below(3)
        };
        let key = &keys[rng.below(KEYS) as usize];
        let hash = (cfg.hash)(key);
        let version = (op as u64) / 16 + rng.below(6) + 1;
        let origin = origins[rng.below(3) as usize];
        let mut written = None;
        match rng.below(100) {
            0..=34 => {
                let expires = match rng.below(10) {
                    0..=2 => now + 1 + rng.below(200),
                    3 => now - rng.below(3),
                    _ => 0,
                };
                let value = &value_buf[..rng.below(25) as usize];
                let inc = Incoming::Item {
                    value,
                    version,
                    origin,
                    expires_at_ms: expires,
                };
                let repair = rng.below(4) == 0;
                let st = s.stats();
                let crowded = st.items * 10 >= cfg.limits.max_items * 9
                    || cfg.limits.max_bytes.is_some_and(|b| st.bytes * 10 >= b * 9);
                let want = m.apply(key, inc, now, repair && crowded);
                assert_eq!(s.apply(hash, key, inc, now, repair), want, "op {op}");
                written = Some(key.clone());
            }
            35..=46 => {
                let deleted_at = now - rng.below(2 * TOMB_TTL);
                let inc = Incoming::Tombstone {
                    version,
                    origin,
                    deleted_at_ms: deleted_at,
                };
                let repair = rng.below(4) == 0;
                let want = m.apply(key, inc, now, false);
                assert_eq!(s.apply(hash, key, inc, now, repair), want, "op {op}");
            }
            47..=71 => {
                let want = match m.touch(key, now) {
                    Seen::Item(v, ver, o, e) => Some((v, ver, o, e)),
                    _ => None,
                };
                let got = s.get(hash, key, now).map(|i| {
                    (
                        i.value.to_vec(),
                        i.version,
                        i.origin.to_owned(),
                        i.expires_at_ms,
                    )
                });
                assert_eq!(got, want, "op {op}");
            }
            72..=81 => {
                let want = m.touch(key, now);
                assert_eq!(Seen::from(s.lookup(hash, key, now)), want, "op {op}");
            }
            82..=91 => {
                s.expire_step(now, 1 + rng.below(20) as usize);
            }
            92..=93 => {
                s.expire_all(now);
            }
            94..=95 => assert_eq!(s.evict_to_limits(now), 0, "op {op}"),
            96 if rng.below(8) == 0 => {
                let held = s.len() as u64;
                assert_eq!(s.clear(), held);
                m.map.retain(|_, e| matches!(e, M::Tomb { .. }));
            }
            _ => {
                assert_eq!(
                    Seen::from(s.peek(hash, key, now)),
                    m.seen(key, now),
                    "op {op}"
                );
            }
        }

        s.check_invariants();
        let st = s.stats();
        assert!(st.items <= cfg.limits.max_items, "op {op}: item limit");
        assert!(
            cfg.limits.max_bytes.is_none_or(|b| st.bytes <= b),
            "op {op}: byte limit"
        );
        assert_eq!(
            (st.version_conflicts, st.version_tie_breaks),
            (m.conflicts, m.ties),
            "op {op}"
        );

        // Learn the evictions: exactly `evicted` live model items are gone from the store.
        let mut stored = BTreeMap::new();
        s.for_each_live(now, |hh, k, i| {
            assert_eq!(hh, (cfg.hash)(k));
            stored.insert(
                k.to_vec(),
                Seen::Item(
                    i.value.to_vec(),
                    i.version,
                    i.origin.into(),
                    i.expires_at_ms,
                ),
            );
        });
        let evicted = st.evictions - evictions;
        evictions = st.evictions;
        let live = m.live_items(now);
        let missing: Vec<(u64, Vec<u8>)> = live
            .iter()
            .filter(|(k, _)| !stored.contains_key(*k))
            .map(|(k, &u)| (u, k.clone()))
            .collect();
        assert_eq!(missing.len() as u64, evicted, "op {op}: evicted items");
        // The entry just written is never the victim (ops.md §3.1).
        assert!(
            missing.iter().all(|(_, k)| Some(k) != written.as_ref()),
            "op {op}: the written entry was evicted"
        );
        for (_, k) in &missing {
            m.map.remove(k);
        }
        for k in &keys {
            let want = m.seen(k, now);
            assert_eq!(
                Seen::from(s.peek((cfg.hash)(k), k, now)),
                want,
                "op {op}: key {k:?}"
            );
            if let Seen::Item(..) = want {
                assert_eq!(stored.get(k), Some(&want));
            }
        }
        assert_eq!(stored.len(), m.live_items(now).len());
        assert!(st.items >= stored.len() as u64);
    }
    // The run must have exercised the interesting paths.
    let st = s.stats();
    assert!(
        st.evictions > 0 && st.expirations > 0 && st.version_conflicts > 0,
        "{st:?}"
    );
    assert!(
        st.version_tie_breaks > 0 && st.tombstones_purged > 0,
        "{st:?}"
    );
}

fn collide(key: &[u8]) -> u64 {
    h(key) & 3
}

#[test]
fn random_ops_lru_item_limit() {
    let limits = ShardLimits {
        max_items: 16,
        max_bytes: None,
    };
    run(
        Config {
            policy: Policy::Lru,
            limits,
            hash: h,
            seed: 0x9e37_79b9_7f4a_7c15,
        },
        10_000,
    );
}

#[test]
fn random_ops_lru_byte_limit() {
    let limits = ShardLimits {
        max_items: 40,
        max_bytes: Some(1000),
    };
    run(
        Config {
            policy: Policy::Lru,
            limits,
            hash: h,
            seed: 7,
        },
        10_000,
    );
}

#[test]
fn random_ops_clock_both_limits() {
    let limits = ShardLimits {
        max_items: 12,
        max_bytes: Some(900),
    };
    run(
        Config {
            policy: Policy::Clock,
            limits,
            hash: h,
            seed: 12345,
        },
        10_000,
    );
}

#[test]
fn random_ops_colliding_hashes() {
    let limits = ShardLimits {
        max_items: 20,
        max_bytes: None,
    };
    run(
        Config {
            policy: Policy::Lru,
            limits,
            hash: collide,
            seed: 99,
        },
        10_000,
    );
}
