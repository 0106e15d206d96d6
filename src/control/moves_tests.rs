//! Unit tests of the rebalance core: rings built from member lists, hashes drawn from a seeded
//! RNG, and every decision checked from the point of view of each node.

use super::*;

fn ring(ids: &[&str], rf: usize) -> Arc<Ring> {
    let v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    Arc::new(Ring::new(&v, rf))
}

fn owners(r: &Ring, h: u64) -> Vec<String> {
    owner_ids(r, h, &mut Vec::new())
}

fn hashes(n: usize) -> Vec<u64> {
    let rng = fastrand::Rng::with_seed(7);
    (0..n).map(|_| rng.u64(..)).collect()
}

#[test]
fn a_ring_change_makes_a_scan_due_until_one_completes() {
    let r3 = ring(&["n1", "n2", "n3"], 2);
    let mut rb = Rebalance::new(r3.clone());
    assert!(rb.idle(&r3), "the first ring needs no scan");
    let r4 = ring(&["n1", "n2", "n3", "n4"], 2);
    rb.ring_changed();
    assert!(rb.due(&r4));
    let scan = rb.begin("n1", r4.clone());
    assert!(rb.finish(scan, true));
    assert!(rb.idle(&r4));
    assert!(rb.due(&r3), "another ring is due again");
}

#[test]
fn an_incomplete_scan_leaves_work_and_a_stale_scan_is_ignored() {
    let r3 = ring(&["n1", "n2", "n3"], 2);
    let r4 = ring(&["n1", "n2", "n3", "n4"], 2);
    let mut rb = Rebalance::new(r3);
    rb.ring_changed();
    let scan = rb.begin("n1", r4.clone());
    assert!(!rb.finish(scan, false));
    assert!(rb.due(&r4), "failed pushes: the next tick scans again");
    let stale = rb.begin("n1", r4.clone());
    rb.ring_changed();
    assert!(
        !rb.is_current(&stale),
        "a ring change stops the running scan"
    );
    assert!(!rb.finish(stale, true), "its result is ignored");
    assert!(rb.due(&r4));
}

#[test]
fn a_restarted_member_is_fresh_until_a_scan_completes() {
    let r = ring(&["n1", "n2", "n3"], 3);
    let mut rb = Rebalance::new(r.clone());
    rb.note_incarnations("n1", [("n1", 5), ("n2", 0), ("n3", 10)]);
    assert!(rb.idle(&r), "first sightings are not restarts");
    rb.note_incarnations("n1", [("n1", 99), ("n2", 7), ("n3", 10)]);
    assert!(
        rb.idle(&r),
        "a placeholder 0 becoming real is not a restart; self is ignored"
    );
    let running = rb.begin("n1", r.clone());
    rb.note_incarnations("n1", [("n2", 7), ("n3", 11)]);
    assert!(
        rb.due(&r) && !rb.is_current(&running),
        "a restart restarts the scan"
    );
    // Every key (RF = ring size) is owned by n1 and n3; n1 pushes to n3 where it comes first
    // among the owners that did not restart.
    let scan = rb.begin("n1", r.clone());
    let mut buf = Vec::new();
    let mut pushed = 0;
    for h in hashes(200) {
        if let Some(m) = scan.classify(h, &mut buf) {
            assert_eq!(m, Move::Push(vec!["n3".to_string()]));
            pushed += 1;
        }
    }
    assert!(pushed > 0);
    assert!(rb.finish(scan, true));
    let after = rb.begin("n1", r.clone());
    assert!(hashes(200)
        .iter()
        .all(|&h| after.classify(h, &mut buf).is_none()));
}

#[test]
fn a_node_leaving_the_owners_hands_off_to_every_new_owner() {
    let old = ring(&["n1", "n2", "n3", "n4"], 2);
    let new = ring(&["n2", "n3", "n4"], 2);
    let mut rb = Rebalance::new(old.clone());
    rb.ring_changed();
    let scan = rb.begin("n1", new.clone());
    let mut buf = Vec::new();
    for h in hashes(300) {
        assert_eq!(
            scan.classify(h, &mut buf),
            Some(Move::HandOff(owners(&new, h)))
        );
    }
}

#[test]
fn each_new_owner_gets_a_key_from_exactly_one_old_owner() {
    let old = ring(&["n1", "n2", "n3"], 2);
    let new = ring(&["n1", "n2", "n3", "n4"], 2);
    let mut rb = Rebalance::new(old.clone());
    rb.ring_changed();
    let mut buf = Vec::new();
    for h in hashes(500) {
        let (o, n) = (owners(&old, h), owners(&new, h));
        let mut pushers = Vec::new();
        for me in ["n1", "n2", "n3"] {
            if !o.contains(&me.to_string()) {
                continue; // only a holder scans the key
            }
            match rb.begin(me, new.clone()).classify(h, &mut buf) {
                Some(Move::Push(t)) => {
                    assert!(
                        t.iter().all(|x| !o.contains(x)),
                        "only new owners are targets"
                    );
                    pushers.push((me, t));
                }
                Some(Move::HandOff(t)) => {
                    assert!(!n.contains(&me.to_string()));
                    assert_eq!(t, n);
                }
                None => {}
            }
        }
        let gains_owner = n.iter().any(|x| !o.contains(x));
        let keeps_one = n.iter().any(|x| o.contains(x));
        if gains_owner && keeps_one {
            assert_eq!(pushers.len(), 1, "key {h:x}: {pushers:?}");
        } else {
            assert!(pushers.is_empty(), "key {h:x}: {pushers:?}");
        }
    }
}

#[test]
fn an_unchanged_ring_moves_nothing() {
    let r = ring(&["n1", "n2", "n3"], 2);
    let rb = Rebalance::new(r.clone());
    let scan = rb.begin("n2", r.clone());
    let mut buf = Vec::new();
    for h in hashes(300) {
        let m = scan.classify(h, &mut buf);
        if owners(&r, h).contains(&"n2".to_string()) {
            assert_eq!(m, None, "an owned key stays put");
        } else {
            // A stray copy (say, written while the ring was smaller) goes to its owners.
            assert_eq!(m, Some(Move::HandOff(owners(&r, h))));
        }
    }
}

#[test]
fn only_fully_acknowledged_hand_offs_drop() {
    let t2 = vec!["a".to_string(), "b".to_string()];
    let moves = [
        Move::HandOff(t2.clone()),
        Move::HandOff(t2.clone()),
        Move::Push(t2.clone()),
        Move::HandOff(vec!["c".to_string()]),
    ];
    assert_eq!(Scan::drops(&moves, &[2, 1, 2, 1]), vec![0, 3]);
    assert!(Scan::drops(&moves, &[0, 0, 0, 0]).is_empty());
}
