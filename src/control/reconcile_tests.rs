//! Unit tests of the anti-entropy core: LWW both ways, tombstones, one-sided keys, leaves that
//! agree, malformed peer answers and the peer schedule.

use super::*;
use crate::dist::ae::leaves_of;

fn d(key: &str, version: u64, origin: &str, deleted: bool) -> Digest {
    Digest {
        key: key.into(),
        version,
        origin: origin.into(),
        deleted,
    }
}

fn leaf(key: &str) -> usize {
    leaf_of(xxhash64(key.as_bytes(), 0))
}

fn hexes(leaves: &[u64; LEAVES]) -> Vec<String> {
    leaves.iter().map(|l| format!("{l:016x}")).collect()
}

#[test]
fn newer_side_wins_both_ways_tombstones_included() {
    let mine = vec![
        d("a", 5, "n1", false), // theirs newer value: pull
        d("b", 9, "n1", false), // ours newer: push
        d("c", 7, "n1", true),  // our newer tombstone beats their value: push
        d("e", 3, "n1", false), // their newer tombstone: pull
        d("f", 4, "n1", false), // same stamp: nothing
        d("g", 4, "n2", false), // tie on version, origin decides: n1 < n2 wins, pull
        d("only-mine", 1, "n1", false),
    ];
    let theirs = vec![
        d("a", 6, "n2", false),
        d("b", 8, "n2", false),
        d("c", 6, "n2", false),
        d("e", 4, "n2", true),
        d("f", 4, "n1", false),
        d("g", 4, "n1", false),
        d("only-theirs", 2, "n2", true),
    ];
    let mut diff: Vec<usize> = mine.iter().chain(&theirs).map(|x| leaf(&x.key)).collect();
    diff.sort_unstable();
    diff.dedup();
    let p = plan(&mine, theirs, &diff);
    let mut pull = p.pull.clone();
    pull.sort();
    let mut push = p.push.clone();
    push.sort();
    assert_eq!(pull, ["a", "e", "g", "only-theirs"]);
    assert_eq!(push, ["b", "c", "only-mine"]);
}

#[test]
fn keys_outside_the_differing_leaves_are_not_touched() {
    let mine = vec![d("x", 1, "n1", false), d("y", 1, "n1", false)];
    let diff = vec![leaf("x")];
    assert_ne!(leaf("x"), leaf("y"), "test keys in different leaves");
    let p = plan(&mine, vec![], &diff);
    assert_eq!(p.push, ["x"], "y's leaf agreed, so y is not pushed");
    assert!(p.pull.is_empty());
}

#[test]
fn differing_leaves_are_the_ones_whose_hashes_differ() {
    let a = vec![d("k1", 1, "n1", false), d("k2", 1, "n1", false)];
    let mut b = a.clone();
    b[1].version = 2;
    let (la, lb) = (leaves_of(&a), leaves_of(&b));
    assert_eq!(
        differing_leaves(&la, &hexes(&la)).unwrap(),
        Vec::<usize>::new()
    );
    assert_eq!(
        differing_leaves(&la, &hexes(&lb)).unwrap(),
        vec![leaf("k2")]
    );
}

#[test]
fn a_malformed_leaves_answer_is_an_error() {
    let la = leaves_of(&[]);
    let mut h = hexes(&la);
    assert!(differing_leaves(&la, &h[1..]).is_err(), "wrong count");
    h[3] = "not-hex".into();
    assert!(differing_leaves(&la, &h).is_err(), "bad digit");
}

#[test]
fn every_alive_peer_once_per_pass_and_dead_ones_skipped() {
    let peers: Vec<String> = ["p1", "p2", "p3"].iter().map(|s| s.to_string()).collect();
    let mut s = Schedule::new(1);
    let mut pass: Vec<String> = (0..3).filter_map(|_| s.next(&peers)).collect();
    pass.sort();
    assert_eq!(pass, peers, "one pass visits each peer once");
    // p2 dies during the next pass: it is skipped, p1 and p3 still come.
    let alive: Vec<String> = vec!["p1".into(), "p3".into()];
    let mut second: Vec<String> = std::iter::once(s.next(&peers))
        .chain((0..2).map(|_| s.next(&alive)))
        .flatten()
        .collect();
    second.sort();
    second.dedup();
    assert!(
        second.contains(&"p1".to_string()) && second.contains(&"p3".to_string()),
        "{second:?}"
    );
    assert!(
        !second.contains(&"p2".to_string()) || second.len() == 3,
        "{second:?}"
    );
    assert!(Schedule::new(2).next(&[]).is_none());
}
