//! Membership unit tests, part three: leave, seeds, the gossip round and the §14 counters
//! (helpers in `tests.rs`).

use super::tests::*;
use super::*;

// ---- leave --------------------------------------------------------------------------------------

#[test]
fn leave_pushes_to_every_ring_member_and_drops_self_from_ring() {
    let mut m = node_with(&[
        ("a", State::Alive, 1),
        ("b", State::Suspect, 1),
        ("d", State::Dead, 1),
    ]);
    let fx = m.leave();
    assert!(ring_changed(&fx) && table_changed(&fx));
    let mut to = gossip_of(&fx);
    to.sort();
    assert_eq!(to, vec![addr("a"), addr("b")]);
    assert!(m.is_leaving());
    assert_eq!(view(&m, "n1"), (State::Left, SELF_INC), "no increment");
    assert_eq!(m.ring_members(), ring(&["a", "b"]));
    assert_eq!(m.state_counts(), (1, 1, 1, 1));
    // Again at the end of shutdown: only the push.
    let fx = m.leave();
    assert_eq!(fx.len(), 1);
    assert_eq!(gossip_of(&fx).len(), 2);
    // The last alive peer turning suspect puts self back into its own ring.
    let fx = m.probe_result("a", fail(), 10);
    assert!(ring_changed(&fx));
    assert_eq!(m.ring_members(), ring(&["a", "b", "n1"]));
}

#[test]
fn lone_leaving_node_keeps_itself_in_ring() {
    let mut m = node_with(&[("d", State::Dead, 1)]);
    let fx = m.leave();
    assert!(ring_changed(&fx), "driver re-plans at drain start");
    assert!(gossip_of(&fx).is_empty());
    assert_eq!(m.ring_members(), ring(&["n1"]));
    // A peer joining while we are draining takes over.
    let fx = m.merge(&[ent("a", State::Alive, 1)], None, 5);
    assert!(ring_changed(&fx));
    assert_eq!(m.ring_members(), ring(&["a"]));
}

// ---- seeds --------------------------------------------------------------------------------------

#[test]
fn seeds_equal_to_self_are_skipped() {
    let seeds = vec![
        (Some("n1".to_string()), "elsewhere:1".to_string()),
        (Some("zz".to_string()), addr("n1")),
        (None, addr("n1")),
        (None, "p:1".to_string()),
        (None, "p:1".to_string()),
    ];
    let m = Membership::new("n1", &addr("n1"), SELF_INC, timers(2), &seeds, 1);
    assert_eq!(m.table().len(), 1);
    assert_eq!(m.pending_seeds(), vec!["p:1".to_string()]);
    assert_eq!(m.ring_members(), ring(&["n1"]));
}

#[test]
fn pending_seed_resolution() {
    let seeds = vec![(None, "p:1".to_string()), (None, "q:1".to_string())];
    let mut m = Membership::new("n1", &addr("n1"), SELF_INC, timers(2), &seeds, 1);
    assert_eq!(
        m.ring_members(),
        ring(&["n1"]),
        "pending seeds are not ring members"
    );
    assert_eq!(m.pending_seeds().len(), 2);
    // No node field (a Go node answering OK): stays pending.
    assert!(m.seed_answered("p:1", None, 1).is_empty());
    assert_eq!(m.pending_seeds().len(), 2);
    // Normal path: merge of its table then the answer.
    m.merge(&[ent_at("p", "p:1", State::Alive, 77)], Some("p:1"), 2);
    let fx = m.seed_answered("p:1", Some("p"), 2);
    assert!(fx.is_empty(), "already added by the merge");
    assert_eq!(m.pending_seeds(), vec!["q:1".to_string()]);
    // Answer before merge: added like an id@ seed, then the real entry supersedes.
    let fx = m.seed_answered("q:1", Some("q"), 3);
    assert!(ring_changed(&fx));
    assert_eq!(view(&m, "q"), (State::Alive, 0));
    m.merge(&[ent_at("q", "q:1", State::Alive, 88)], Some("q:1"), 3);
    assert_eq!(view(&m, "q"), (State::Alive, 88));
    assert!(m.pending_seeds().is_empty());
    assert_eq!(m.ring_members(), ring(&["n1", "p", "q"]));
}

#[test]
fn seed_that_is_self_under_another_address_is_dropped() {
    let mut m = Membership::new("n1", "n1:1", 1, timers(2), &[(None, "alias:1".into())], 1);
    m.seed_answered("alias:1", Some("n1"), 1);
    assert!(m.pending_seeds().is_empty());
    assert!(m.gossip_round().is_empty());
}

// ---- gossip round -------------------------------------------------------------------------------

#[test]
fn gossip_round_picks_ring_peer_plus_round_robin_dead_and_unresolved_seeds() {
    let seeds = vec![(None, "p:1".to_string())];
    let mut m = Membership::new("n1", &addr("n1"), SELF_INC, timers(2), &seeds, 1);
    m.merge(
        &[
            ent("a", State::Alive, 1),
            ent("s", State::Suspect, 1),
            ent("d", State::Dead, 1),
            ent("l", State::Left, 1),
        ],
        None,
        0,
    );
    let mut extras = Vec::new();
    for _ in 0..40 {
        let r = m.gossip_round();
        assert_eq!(r.len(), 2, "{r:?}");
        assert!([addr("a"), addr("s")].contains(&r[0]), "{r:?}");
        extras.push(r[1].clone());
    }
    // Round-robin: strictly alternating between the two extra candidates.
    for w in extras.windows(2) {
        assert_ne!(w[0], w[1]);
    }
    let mut uniq = extras.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq, vec![addr("d"), "p:1".to_string()]);
    assert!(!extras.contains(&addr("n1")) && !extras.contains(&addr("l")));
}

#[test]
fn gossip_round_alone_and_id_seed_forgotten() {
    let mut m = node_with(&[]);
    assert!(m.gossip_round().is_empty());
    // An id@ seed that died and was forgotten is still tried: how an isolated node rejoins.
    let seeds = vec![(Some("n2".to_string()), addr("n2"))];
    let mut m = Membership::new("n1", &addr("n1"), SELF_INC, timers(0), &seeds, 1);
    assert_eq!(
        m.gossip_round(),
        vec![addr("n2")],
        "resolved seed is not repeated"
    );
    m.probe_result("n2", fail(), 0);
    m.tick(S);
    m.tick(S + m.retention_ms());
    assert_eq!(m.state_of("n2"), None);
    assert_eq!(m.gossip_round(), vec![addr("n2")]);
}

// ---- counters -----------------------------------------------------------------------------------

#[test]
fn counters_follow_section_14() {
    let mut m = node_with(&[]);
    let mut v = m.counters().membership_version;
    m.merge(
        &[ent("x", State::Alive, 1), ent("y", State::Alive, 1)],
        None,
        0,
    );
    assert_eq!(
        m.counters().membership_version,
        v + 2,
        "one per added member"
    );
    v += 2;
    m.probe_result("x", fail(), 0);
    m.merge(&[ent("y", State::Left, 1)], None, 0);
    assert_eq!(m.counters().membership_version, v + 2);
    m.tick(S);
    let c = m.counters().clone();
    assert_eq!((c.nodes_suspect, c.nodes_dead, c.nodes_removed), (1, 1, 2));
    assert_eq!(c.membership_version, v + 3);
    assert_eq!(m.state_counts(), (1, 0, 1, 1));
    // Equal or older gossip: nothing.
    m.merge(
        &[ent("x", State::Dead, 1), ent("y", State::Left, 0)],
        None,
        0,
    );
    assert_eq!(m.counters().membership_version, v + 3);
}

#[test]
fn newly_added_alive_member_is_pushed_to_others_not_itself() {
    let mut m = node_with(&[("a", State::Alive, 1), ("b", State::Alive, 1)]);
    let fx = m.merge(&[ent("new", State::Alive, 1)], None, 0);
    let mut to = gossip_of(&fx);
    to.sort();
    assert_eq!(to, vec![addr("a"), addr("b")]);
    // New suspect/dead members are just recorded.
    let fx = m.merge(&[ent("s", State::Suspect, 1)], None, 0);
    assert!(gossip_of(&fx).is_empty());
}

#[test]
fn ids_and_addresses_validate() {
    assert!(valid_id("node-1.a_B"));
    assert!(valid_id(&"a".repeat(128)));
    assert!(!valid_id(&"a".repeat(129)));
    assert!(!valid_id(""));
    assert!(!valid_id("a b") && !valid_id("a/b") && !valid_id("é"));
    for ok in [
        "h:1",
        "10.0.0.2:7946",
        "[::1]:65535",
        "[fe80::1%eth0]:7946",
        "a.b-c:80",
    ] {
        assert!(valid_address(ok), "{ok}");
    }
    for bad in [
        "", ":80", "h:", "h:0", "h:65536", "h:+1", "::1:80", "[]:80", "[::1]", "h h:1", "h/x:1",
        "h:1x",
    ] {
        assert!(!valid_address(bad), "{bad}");
    }
}

// ---- invariant 11, simulated clock ----------------------------------------------------------------

/// Drives node "a" of a 2-node cluster (K = 0) with a 1 ms clock: a probe cycle for every due
/// target every T, the direct probe of the killed peer timing out after T/2 x (1+LHM), a tick
/// every ms. The peer dies at a moment chosen to be unlucky (just after a successful probe).
#[test]
fn two_node_cluster_k0_meets_invariant_11() {
    for (t, mult, g, kill_at) in [
        (1000, 3, 1000, 2_001),
        (200, 3, 200, 1_001),
        (200, 5, 500, 1_137),
    ] {
        let tm = Timers {
            heartbeat_ms: t,
            suspicion_mult: mult,
            gossip_ms: g,
            indirect_k: 0,
        };
        let seeds = vec![(Some("b".to_string()), "b:1".to_string())];
        let mut a = Membership::new("a", "a:1", 1, tm, &seeds, 42);
        let s = t * mult;
        // In-flight probe: (target, outcome, completes at).
        let mut inflight: Vec<(String, ProbeOutcome, u64)> = Vec::new();
        let mut suspect_at = None;
        let mut dead_at = None;
        for now in 0..kill_at + 2 * t + s + g + 10 {
            if now % t == 0 {
                for (id, _) in a.probe_targets(now) {
                    a.probe_started(&id);
                    let (outcome, done) = if now < kill_at {
                        (ProbeOutcome::Ack, now + 1)
                    } else {
                        // K = 0: no relays to ask.
                        (fail(), now + a.direct_timeout_ms())
                    };
                    inflight.push((id, outcome, done));
                }
            }
            let (due, rest): (Vec<_>, Vec<_>) = inflight.drain(..).partition(|(_, _, d)| *d <= now);
            inflight = rest;
            for (id, outcome, _) in due {
                a.probe_result(&id, outcome, now);
            }
            a.tick(now);
            match a.state_of("b") {
                Some(State::Suspect) if suspect_at.is_none() => suspect_at = Some(now),
                Some(State::Dead) | None if dead_at.is_none() => dead_at = Some(now),
                _ => {}
            }
        }
        let suspect_at = suspect_at.expect("suspected");
        let dead_at = dead_at.expect("declared dead");
        assert!(
            suspect_at >= kill_at && suspect_at - kill_at <= 2 * t + g,
            "suspect {suspect_at}"
        );
        assert!(dead_at - kill_at <= 2 * t + s + g, "dead {dead_at}");
        assert_eq!(a.ring_members(), vec!["a".to_string()]);
        assert_eq!(a.counters().nodes_suspect, 1);
        assert_eq!(a.counters().nodes_dead, 1);
    }
}

// ---- RingChanged is exact -----------------------------------------------------------------------

/// `RingChanged` is derived from the members whose ring membership flipped, not by comparing two
/// id lists. Over random merges (every state, incarnations up and down, the same member twice in
/// one payload), probe results, timers and a leave, it is reported exactly when `ring_members()`
/// differs before and after the call (the first leave always reports it: the driver re-plans
/// hand-off).
#[test]
fn ring_changed_is_reported_exactly_when_the_ring_differs() {
    let states = [State::Alive, State::Suspect, State::Dead, State::Left];
    let ids = ["n0", "n2", "n3", "n4", "n5"];
    let rng = fastrand::Rng::with_seed(11);
    let (mut changed, mut unchanged) = (0, 0);
    for round in 0..200 {
        let mut m = node_with(&[("n2", State::Alive, 1), ("n3", State::Alive, 1)]);
        let mut now = 0;
        for step in 0..60 {
            now += rng.u64(0..3 * T);
            let before = m.ring_members();
            let (fx, forced) = match rng.u8(0..10) {
                0..=5 => {
                    let n = rng.usize(1..4);
                    let batch: Vec<Entry> = (0..n)
                        .map(|_| {
                            let id = ids[rng.usize(..ids.len())];
                            ent(id, states[rng.usize(..4)], rng.u64(0..4))
                        })
                        .collect();
                    (m.merge(&batch, None, now), false)
                }
                6 | 7 => {
                    let target = ids[rng.usize(..ids.len())];
                    let outcome = if rng.bool() {
                        ProbeOutcome::Ack
                    } else {
                        ProbeOutcome::Failed {
                            relays_asked: 2,
                            relays_silent: rng.bool(),
                            relay_ack: false,
                        }
                    };
                    (m.probe_result(target, outcome, now), false)
                }
                8 if round % 4 == 0 && step > 30 => {
                    // The first leave always re-plans; a repeated one only repeats the push.
                    let first = !m.is_leaving();
                    (m.leave(), first)
                }
                _ => (m.tick(now), false),
            };
            let differs = m.ring_members() != before;
            assert_eq!(
                ring_changed(&fx),
                differs || forced,
                "round {round} step {step}: ring {before:?} -> {:?}",
                m.ring_members()
            );
            if differs {
                changed += 1;
            } else {
                unchanged += 1;
            }
        }
    }
    // The walk exercised both answers many times.
    assert!(changed > 500 && unchanged > 500, "{changed} / {unchanged}");
}
