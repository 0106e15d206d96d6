//! Limits, eviction and expiry (ops.md §3, §1.9).

use super::*;

#[test]
fn capacity_test_of_ops_3_1_for_both_policies() {
    for policy in [Policy::Lru, Policy::Clock] {
        const N: u64 = 50;
        let mut s = shard(N, None, policy);
        for i in 1..=N {
            assert_eq!(
                put(&mut s, &format!("key{i}"), "v", i),
                ApplyResult::Applied
            );
        }
        assert!(value_of(&mut s, "key1", T0).is_some());
        put(&mut s, "key-extra", "v", 1000);
        assert_eq!(s.len() as u64, N, "{policy:?}");
        assert_eq!(s.stats().evictions, 1, "{policy:?}");
        assert!(value_of(&mut s, "key1", T0).is_some(), "{policy:?}");
        assert!(value_of(&mut s, "key-extra", T0).is_some(), "{policy:?}");
        assert!(
            value_of(&mut s, "key2", T0).is_none(),
            "{policy:?}: oldest unread goes"
        );
    }
}

#[test]
fn byte_limit_evicts_until_it_holds() {
    let one = size("k0", "0123456789");
    let mut s = shard(1000, Some(3 * one), Policy::Lru);
    for i in 0..3 {
        put(&mut s, &format!("k{i}"), "0123456789", 1);
    }
    assert_eq!((s.len(), s.bytes()), (3, 3 * one));
    // A value twice as big needs two victims.
    put(&mut s, "k3", "01234567890123456789", 1);
    assert_eq!(s.stats().evictions, 2);
    assert!(s.bytes() <= 3 * one);
    assert_eq!(
        value_of(&mut s, "k2", T0).as_deref(),
        Some(&b"0123456789"[..])
    );
    assert!(value_of(&mut s, "k3", T0).is_some());
}

#[test]
fn written_entry_is_never_the_victim() {
    for policy in [Policy::Lru, Policy::Clock] {
        let one = size("a", "x");
        let mut s = shard(10, Some(2 * one), policy);
        put(&mut s, "a", "x", 1);
        put(&mut s, "b", "x", 1);
        // "a" is the least recent; growing it must evict "b", not "a" itself.
        put(&mut s, "a", "xx", 2);
        assert_eq!(value_of(&mut s, "a", T0).as_deref(), Some(&b"xx"[..]));
        assert!(value_of(&mut s, "b", T0).is_none());
        // An entry bigger than the whole budget is still stored, alone.
        let big = "y".repeat(3 * one as usize);
        put(&mut s, "c", &big, 1);
        assert_eq!(s.len(), 1);
        assert!(value_of(&mut s, "c", T0).is_some());
        let mut s = shard(1, None, policy);
        put(&mut s, "a", "x", 1);
        put(&mut s, "a", "y", 2);
        assert_eq!((s.len(), s.stats().evictions), (1, 0));
    }
}

#[test]
fn overwrite_adjusts_bytes() {
    let mut s = shard(10, None, Policy::Lru);
    put(&mut s, "key", "short", 1);
    assert_eq!(s.bytes(), size("key", "short"));
    put(&mut s, "key", "a much longer value", 2);
    assert_eq!(
        (s.len(), s.bytes()),
        (1, size("key", "a much longer value"))
    );
    put(&mut s, "key", "", 3);
    assert_eq!(s.bytes(), size("key", ""));
    apply(&mut s, "key", tomb(4, "n1", T0), T0);
    assert_eq!((s.len(), s.bytes()), (0, 0));
}

#[test]
fn lazy_expiry_counts_expirations() {
    let mut s = shard(10, None, Policy::Lru);
    apply(&mut s, "k", item(b"v", 1, "n1", T0 + 1000), T0);
    apply(&mut s, "j", item(b"v", 1, "n1", T0 + 1000), T0);
    let got = s.get(h(b"k"), b"k", T0 + 999).map(|i| i.expires_at_ms);
    assert_eq!(got, Some(T0 + 1000));
    assert!(value_of(&mut s, "k", T0 + 1000).is_none());
    assert_eq!(s.lookup(h(b"j"), b"j", T0 + 1000), Lookup::Absent);
    assert_eq!((s.len(), s.bytes(), s.stats().expirations), (0, 0, 2));
    // Expired-not-yet-purged items still count toward len.
    apply(&mut s, "k", item(b"v", 2, "n1", T0 + 2000), T0);
    let mut seen = 0;
    s.for_each_live(T0 + 2000, |_, _, _| seen += 1);
    assert_eq!((seen, s.len()), (0, 1));
    assert_eq!(s.peek(h(b"k"), b"k", T0 + 2000), Lookup::Absent);
    // An overwrite of an expired item is an ordinary write (and removes the dead one first).
    apply(&mut s, "k", item(b"w", 1, "n1", 0), T0 + 2000);
    assert_eq!(value_of(&mut s, "k", T0 + 2000).as_deref(), Some(&b"w"[..]));
    assert_eq!(s.stats().expirations, 3);
}

#[test]
fn expire_step_reclaims_100k_within_documented_steps() {
    const N: u64 = 100_000;
    const VISITS: usize = 1000;
    let mut s = shard(N, None, Policy::Lru);
    for i in 0..N {
        let key = i.to_le_bytes();
        let deadline = if i % 10 == 0 { 0 } else { T0 + 5000 + i % 7 };
        s.apply(h(&key), &key, item(b"v", 1, "n1", deadline), T0, false);
    }
    // Move the cursor somewhere in the middle first: the bound holds from any position.
    for _ in 0..37 {
        assert_eq!(s.expire_step(T0 + 1, VISITS), 0);
    }
    let now = T0 + 5007;
    let steps = (N as usize).div_ceil(VISITS);
    let mut expired = 0;
    for _ in 0..steps {
        expired += s.expire_step(now, VISITS);
    }
    assert_eq!(expired, N - N / 10);
    assert_eq!(s.len() as u64, N / 10);
    assert_eq!(s.stats().expirations, expired);
    s.check_invariants();
    assert_eq!(s.expire_all(now), 0);
}

#[test]
fn clear_keeps_tombstones() {
    let mut s = shard(100, None, Policy::Lru);
    for i in 0..20 {
        put(&mut s, &format!("k{i}"), "v", 1);
    }
    apply(&mut s, "k0", tomb(2, "n1", T0), T0);
    assert_eq!(s.clear(), 19);
    assert!(s.is_empty() && s.bytes() == 0);
    assert!(matches!(
        s.lookup(h(b"k0"), b"k0", T0),
        Lookup::Tombstone(_)
    ));
    assert!(matches!(
        put(&mut s, "k0", "v", 1),
        ApplyResult::Conflict { .. }
    ));
    assert_eq!(put(&mut s, "k1", "v", 1), ApplyResult::Applied);
    s.check_invariants();
}

#[test]
fn evict_and_trigger_expiration() {
    let mut s = shard(100, None, Policy::Clock);
    for i in 0..10u64 {
        let deadline = if i < 4 { T0 + 10 } else { 0 };
        apply(&mut s, &format!("k{i}"), item(b"v", 1, "n1", deadline), T0);
    }
    // Limits are enforced on insert, so /evict only purges the expired ones.
    assert_eq!(s.evict_to_limits(T0 + 10), 0);
    assert_eq!((s.len(), s.stats().expirations), (6, 4));
    assert_eq!(s.expire_all(T0 + 20), 0);
}

#[test]
fn expired_victims_count_as_expirations() {
    let mut s = shard(3, None, Policy::Lru);
    apply(&mut s, "a", item(b"v", 1, "n1", T0 + 5), T0);
    put(&mut s, "b", "v", 1);
    put(&mut s, "c", "v", 1);
    apply(&mut s, "d", item(b"v", 1, "n1", 0), T0 + 5);
    let st = s.stats();
    assert_eq!((st.items, st.evictions, st.expirations), (3, 0, 1));
}

#[test]
fn colliding_hashes_stay_correct() {
    let limits = ShardLimits {
        max_items: 1000,
        max_bytes: None,
    };
    let mut s = Shard::with_hasher(limits, Policy::Lru, TTL, |_| 42);
    for i in 0..300u32 {
        let key = i.to_string();
        s.apply(
            42,
            key.as_bytes(),
            item(key.as_bytes(), 1, "n1", 0),
            T0,
            false,
        );
    }
    s.check_invariants();
    for i in 0..300u32 {
        let key = i.to_string();
        assert_eq!(
            s.get(42, key.as_bytes(), T0).map(|i| i.value),
            Some(key.as_bytes())
        );
    }
}

/// A write at `T0` without the O(n) invariant check of [`apply`] (churn tests check once at the
/// end).
fn write(s: &mut Shard, key: &str, e: Incoming<'_>) {
    s.apply(h(key.as_bytes()), key.as_bytes(), e, T0, false);
}

/// `HYPERCACHE_MAX_MEMORY` bounds real memory, not only the accounted bytes: overwrites with
/// other sizes leave dead bytes in the log and deletes leave tombstones (which never count toward
/// the limits), and the log, the index and the tombstones still stay within the shard's byte
/// budget (plus the one segment the hand may open while it moves items).
#[test]
fn byte_budget_bounds_log_and_index_under_churn() {
    const MAX: u64 = 4 << 20;
    let mut s = shard(1_000_000, Some(MAX), Policy::Lru);
    let mut rng = model::Rng::new(7);
    let mut peak = 0;
    for i in 0..200_000u64 {
        let key = format!("key-{}", rng.below(20_000));
        let value = vec![b'v'; 10 + rng.below(400) as usize];
        if i % 7 == 0 {
            let _ = value_of(&mut s, &key, T0);
        }
        if i % 10 == 3 {
            write(&mut s, &format!("gone-{i}"), tomb(i + 1, "n1", T0));
        }
        write(&mut s, &key, item(&value, i + 1, "n1", 0));
        peak = peak.max(s.memory_bytes());
        assert!(s.bytes() <= MAX);
    }
    s.check_invariants();
    let seg = crate::store::log::seg_size_for(Some(MAX)) as u64;
    assert!(peak <= MAX + seg, "peak {peak} over {MAX} + {seg}");
    // The budget is used, not wasted: items and tombstones fill most of it.
    assert!(
        s.memory_bytes() > MAX * 3 / 4,
        "{} bytes held",
        s.memory_bytes()
    );
    assert!(s.bytes() > MAX / 4, "{} accounted bytes", s.bytes());
}

/// Without a byte budget, dead bytes from overwrites are compacted away rather than piling up.
#[test]
fn dead_bytes_are_compacted_without_a_budget() {
    let mut s = shard(100_000, None, Policy::Lru);
    let mut rng = model::Rng::new(9);
    for i in 0..300_000u64 {
        let key = format!("key-{}", rng.below(10_000));
        let value = vec![b'v'; 10 + rng.below(300) as usize];
        write(&mut s, &key, item(&value, i + 1, "n1", 0));
    }
    s.check_invariants();
    assert_eq!(s.stats().evictions, 0);
    // Live data is about 10 000 × 190 bytes; the log may hold a quarter more plus a few segments.
    let live = s.bytes();
    assert!(
        s.memory_bytes() <= live * 4 / 3 + 6 * (1 << 20),
        "{} bytes held for {live} live",
        s.memory_bytes()
    );
}

/// CLOCK keeps read items: after a full turn over a shard where every tenth key was read, the
/// evicted items are all from the unread nine tenths.
#[test]
fn eviction_spares_items_read_since_the_hand_passed() {
    const N: u64 = 1000;
    let mut s = shard(N, None, Policy::Clock);
    for i in 0..N {
        put(&mut s, &format!("k{i}"), "v", 1);
    }
    for i in (0..N).step_by(10) {
        assert!(value_of(&mut s, &format!("k{i}"), T0).is_some());
    }
    for i in 0..N / 2 {
        put(&mut s, &format!("new{i}"), "v", 1);
    }
    assert_eq!(s.stats().evictions, N / 2);
    for i in (0..N).step_by(10) {
        assert!(
            value_of(&mut s, &format!("k{i}"), T0).is_some(),
            "k{i} was read"
        );
    }
    s.check_invariants();
}
