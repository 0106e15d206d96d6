//! The LWW replica apply, tombstones and the repair rule (cluster.md §4-5).

use super::*;

#[test]
fn replica_apply_table() {
    let mut s = shard(100, None, Policy::Lru);
    // absent + item / tombstone: store E.
    assert_eq!(
        apply(&mut s, "a", item(b"1", 10, "n1", 0), T0),
        ApplyResult::Applied
    );
    assert_eq!(
        apply(&mut s, "t", tomb(10, "n1", T0), T0),
        ApplyResult::Applied
    );
    assert!(matches!(s.lookup(h(b"t"), b"t", T0), Lookup::Tombstone(t) if t.version == 10));
    // L older than E: replace (item->item, item->tombstone, tombstone->item, tombstone->tombstone).
    assert_eq!(
        apply(&mut s, "a", item(b"2", 11, "n1", 0), T0),
        ApplyResult::Applied
    );
    assert_eq!(value_of(&mut s, "a", T0).as_deref(), Some(&b"2"[..]));
    assert_eq!(
        apply(&mut s, "a", tomb(12, "n2", T0), T0),
        ApplyResult::Applied
    );
    let expect = TombstoneInfo {
        version: 12,
        origin: "n2",
        deleted_at_ms: T0,
    };
    assert_eq!(s.lookup(h(b"a"), b"a", T0), Lookup::Tombstone(expect));
    assert_eq!(s.len(), 0);
    assert_eq!(
        apply(&mut s, "t", item(b"3", 11, "n1", 0), T0),
        ApplyResult::Applied
    );
    assert_eq!(value_of(&mut s, "t", T0).as_deref(), Some(&b"3"[..]));
    assert_eq!(
        apply(&mut s, "a", tomb(13, "n1", T0 + 1), T0 + 1),
        ApplyResult::Applied
    );
    let expect = TombstoneInfo {
        version: 13,
        origin: "n1",
        deleted_at_ms: T0 + 1,
    };
    assert_eq!(s.lookup(h(b"a"), b"a", T0 + 1), Lookup::Tombstone(expect));
    // L equal to E: ignored, whatever the kind.
    assert_eq!(
        apply(&mut s, "t", item(b"x", 11, "n1", 0), T0),
        ApplyResult::Ignored
    );
    assert_eq!(
        apply(&mut s, "t", tomb(11, "n1", T0), T0),
        ApplyResult::Ignored
    );
    assert_eq!(
        apply(&mut s, "a", tomb(13, "n1", T0), T0),
        ApplyResult::Ignored
    );
    assert_eq!(
        apply(&mut s, "a", item(b"x", 13, "n1", 0), T0),
        ApplyResult::Ignored
    );
    assert_eq!(value_of(&mut s, "t", T0).as_deref(), Some(&b"3"[..]));
    assert_eq!(s.stats().version_conflicts, 0);
    // L newer than E: conflict, with and without a tie break.
    let conflict = |version, origin: &str, tie_break| ApplyResult::Conflict {
        version,
        origin: origin.into(),
        tie_break,
    };
    assert_eq!(
        apply(&mut s, "t", item(b"x", 10, "n0", 0), T0),
        conflict(11, "n1", false)
    );
    assert_eq!(
        apply(&mut s, "t", tomb(11, "n2", T0), T0),
        conflict(11, "n1", true)
    );
    assert_eq!(
        apply(&mut s, "a", item(b"x", 13, "n2", 0), T0),
        conflict(13, "n1", true)
    );
    let st = s.stats();
    assert_eq!((st.version_conflicts, st.version_tie_breaks), (3, 2));
    // Equal version, smaller origin wins (byte-wise: "N" < "n").
    assert_eq!(
        apply(&mut s, "t", item(b"4", 11, "n0", 0), T0),
        ApplyResult::Applied
    );
    assert_eq!(
        apply(&mut s, "t", item(b"5", 11, "N9", 0), T0),
        ApplyResult::Applied
    );
    let got = s
        .get(h(b"t"), b"t", T0)
        .map(|i| (i.value.to_vec(), i.origin.to_owned()));
    assert_eq!(got, Some((b"5".to_vec(), "N9".to_owned())));
    // An expired local item counts as absent.
    apply(&mut s, "e", item(b"old", 50, "n1", T0 + 10), T0);
    assert_eq!(
        apply(&mut s, "e", item(b"new", 1, "n1", 0), T0 + 10),
        ApplyResult::Applied
    );
    assert_eq!(value_of(&mut s, "e", T0 + 10).as_deref(), Some(&b"new"[..]));
}

#[test]
fn tombstone_blocks_older_writes() {
    let mut s = shard(100, None, Policy::Lru);
    put(&mut s, "k", "v", 5);
    assert_eq!(
        apply(&mut s, "k", tomb(10, "n1", T0), T0),
        ApplyResult::Applied
    );
    assert!(matches!(
        put(&mut s, "k", "old", 9),
        ApplyResult::Conflict { version: 10, .. }
    ));
    assert!(matches!(s.lookup(h(b"k"), b"k", T0), Lookup::Tombstone(_)));
    assert_eq!(put(&mut s, "k", "new", 11), ApplyResult::Applied);
    assert_eq!(s.stats().tombstones, 0);
}

#[test]
fn old_tombstone_is_not_stored_but_removes_older_item() {
    let mut s = shard(100, None, Policy::Lru);
    put(&mut s, "k", "v", 5);
    let now = T0 + TTL;
    assert_eq!(
        apply(&mut s, "k", tomb(6, "n1", T0), now),
        ApplyResult::Applied
    );
    assert_eq!(s.lookup(h(b"k"), b"k", now), Lookup::Absent);
    assert_eq!((s.len(), s.stats().tombstones), (0, 0));
    // One millisecond younger than the TTL is stored.
    assert_eq!(
        apply(&mut s, "k", tomb(7, "n1", T0 + 1), now),
        ApplyResult::Applied
    );
    assert_eq!(s.stats().tombstones, 1);
    // A newer but too-old tombstone replaces (removes) the held one.
    assert_eq!(
        apply(&mut s, "k", tomb(8, "n1", T0), now),
        ApplyResult::Applied
    );
    assert_eq!(s.stats().tombstones, 0);
}

#[test]
fn tombstones_are_purged_after_ttl() {
    let mut s = shard(100, None, Policy::Lru);
    for i in 0..10 {
        apply(&mut s, &format!("t{i}"), tomb(1, "n1", T0 + i), T0);
    }
    put(&mut s, "live", "v", 1);
    assert_eq!(s.expire_step(T0 + TTL - 1, 100), 0);
    assert_eq!(s.stats().tombstones, 10);
    // Lazy purge on access.
    assert_eq!(s.lookup(h(b"t0"), b"t0", T0 + TTL), Lookup::Absent);
    assert_eq!(s.peek(h(b"t1"), b"t1", T0 + TTL + 1), Lookup::Absent);
    // Sweep: one log item + 9 tombstones fit in 10 visits.
    s.expire_step(T0 + TTL + 9, 10);
    s.check_invariants();
    let st = s.stats();
    assert_eq!((st.tombstones, st.tombstones_purged, st.items), (0, 10, 1));
}

#[test]
fn repair_is_skipped_at_90_percent() {
    let mut s = shard(10, None, Policy::Lru);
    for i in 0..8 {
        put(&mut s, &format!("k{i}"), "v", 1);
    }
    let repair = |s: &mut Shard, key: &str, e: Incoming<'_>| {
        let r = s.apply(h(key.as_bytes()), key.as_bytes(), e, T0, true);
        s.check_invariants();
        r
    };
    // 8/10 = 80 %: applies.
    assert_eq!(
        repair(&mut s, "r1", item(b"v", 1, "n2", 0)),
        ApplyResult::Applied
    );
    // 9/10 = 90 %: a key not held is skipped...
    assert_eq!(
        repair(&mut s, "r2", item(b"v", 1, "n2", 0)),
        ApplyResult::Ignored
    );
    assert_eq!(s.len(), 9);
    // ...but held keys and tombstones still apply, and ordinary writes always do.
    assert_eq!(
        repair(&mut s, "k0", item(b"w", 2, "n2", 0)),
        ApplyResult::Applied
    );
    assert_eq!(
        repair(&mut s, "gone", tomb(2, "n2", T0)),
        ApplyResult::Applied
    );
    assert_eq!(
        repair(&mut s, "gone", item(b"v", 3, "n2", 0)),
        ApplyResult::Applied
    );
    assert_eq!(put(&mut s, "r3", "v", 1), ApplyResult::Applied);
    assert_eq!((s.len(), s.stats().evictions), (10, 1));

    // The byte limit counts too.
    let one = size("k0", "v");
    let mut s = shard(1000, Some(10 * one), Policy::Lru);
    for i in 0..9 {
        put(&mut s, &format!("k{i}"), "v", 1);
    }
    assert_eq!(
        repair(&mut s, "r1", item(b"v", 1, "n2", 0)),
        ApplyResult::Ignored
    );
}

#[test]
fn dead_on_arrival_item_wins_but_is_not_stored() {
    let mut s = shard(100, None, Policy::Lru);
    put(&mut s, "k", "v", 1);
    assert_eq!(
        apply(&mut s, "k", item(b"w", 2, "n1", T0), T0),
        ApplyResult::Applied
    );
    assert_eq!((s.len(), s.lookup(h(b"k"), b"k", T0)), (0, Lookup::Absent));
}

#[test]
fn origin_ids_are_compacted_when_full() {
    let mut s = shard(10, None, Policy::Lru);
    put(&mut s, "keep", "v", 1);
    let n = super::origin::MAX_ORIGINS as u64 + 100;
    for v in 0..n {
        let origin = format!("node-{v}");
        let r = s.apply(h(b"k"), b"k", item(b"v", v + 1, &origin, 0), T0, false);
        assert_eq!(r, ApplyResult::Applied);
    }
    s.check_invariants();
    assert!(s.origin_table_len() < 200);
    let last = format!("node-{}", n - 1);
    assert_eq!(
        s.get(h(b"k"), b"k", T0).map(|i| i.origin),
        Some(last.as_str())
    );
    assert_eq!(s.get(h(b"keep"), b"keep", T0).map(|i| i.origin), Some("n1"));
}

#[test]
fn remove_if_same_only_drops_the_exact_entry() {
    let mut s = Shard::new(
        ShardLimits {
            max_items: 10,
            max_bytes: None,
        },
        Policy::Lru,
        600_000,
    );
    let item = |v| Incoming::Item {
        value: b"x",
        version: v,
        origin: "n1",
        expires_at_ms: 0,
    };
    s.apply(1, b"k", item(5), 0, false);
    assert!(
        !s.remove_if_same(1, b"k", 4, "n1", 0),
        "older stamp must not drop"
    );
    assert!(
        !s.remove_if_same(1, b"k", 5, "n2", 0),
        "other origin must not drop"
    );
    assert!(s.remove_if_same(1, b"k", 5, "n1", 0));
    assert!(matches!(s.lookup(1, b"k", 0), Lookup::Absent));
    let tomb = Incoming::Tombstone {
        version: 7,
        origin: "n1",
        deleted_at_ms: 0,
    };
    s.apply(1, b"k", tomb, 0, false);
    assert!(s.remove_if_same(1, b"k", 7, "n1", 0));
    assert_eq!(s.stats().tombstones, 0);
}
