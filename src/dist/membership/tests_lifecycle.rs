//! Membership unit tests, part two: refutation, local health, the probe cycle, suspicion and
//! retention, leave and the rest of the state machine's timers (helpers in `tests.rs`).

use super::tests::*;
use super::*;

// ---- refutation ---------------------------------------------------------------------------------

#[test]
fn refutation_claim_at_or_above_own_inc() {
    for (state, claim) in [
        (State::Suspect, SELF_INC),
        (State::Dead, SELF_INC + 7),
        (State::Left, SELF_INC),
    ] {
        let mut m = node_with(&[
            ("a", State::Alive, 1),
            ("b", State::Alive, 1),
            ("c", State::Alive, 1),
            ("d", State::Alive, 1),
            ("sender", State::Alive, 1),
        ]);
        let v = m.counters().membership_version;
        let fx = m.merge(&[ent("n1", state, claim)], Some(&addr("sender")), 5);
        assert_eq!(m.incarnation(), claim + 1);
        assert_eq!(m.lhm(), 1);
        assert_eq!(view(&m, "n1"), (State::Alive, claim + 1));
        assert_eq!(m.counters().membership_version, v + 1);
        assert!(table_changed(&fx) && !ring_changed(&fx));
        let to = gossip_of(&fx);
        assert_eq!(to[0], addr("sender"));
        assert_eq!(to.len(), 4, "sender + 3 others: {to:?}");
    }
}

#[test]
fn refutation_ignores_lower_and_alive_claims() {
    let mut m = node_with(&[("a", State::Alive, 1)]);
    assert!(m
        .merge(&[ent("n1", State::Suspect, SELF_INC - 1)], None, 5)
        .is_empty());
    assert!(m
        .merge(&[ent("n1", State::Alive, SELF_INC + 9)], None, 5)
        .is_empty());
    assert_eq!(m.incarnation(), SELF_INC);
    assert_eq!(m.lhm(), 0);
}

#[test]
fn leaving_node_never_refutes() {
    let mut m = node_with(&[("a", State::Alive, 1)]);
    m.leave();
    let fx = m.merge(&[ent("n1", State::Dead, SELF_INC + 3)], Some("a:7946"), 5);
    assert!(fx.is_empty());
    assert_eq!(m.incarnation(), SELF_INC);
    assert_eq!(view(&m, "n1"), (State::Left, SELF_INC));
}

#[test]
fn duplicate_id_with_other_address_changes_nothing() {
    let mut m = node_with(&[]);
    let mut e = ent("n1", State::Alive, SELF_INC + 5);
    e.address = "other:1".into();
    assert!(m.merge(&[e.clone()], None, 0).is_empty());
    assert!(m.merge(&[e], None, 1).is_empty());
    assert_eq!(m.address_of("n1"), Some("n1:7946"));
}

// ---- LHM ----------------------------------------------------------------------------------------

#[test]
fn lhm_raise_lower_caps_and_scaled_timers() {
    let mut m = node_with(&[("x", State::Alive, 1), ("r", State::Alive, 1)]);
    assert_eq!(
        (
            m.direct_timeout_ms(),
            m.relay_timeout_ms(),
            m.suspicion_timeout_ms()
        ),
        (T / 2, T, S)
    );
    let silent = ProbeOutcome::Failed {
        relays_asked: 1,
        relay_ack: false,
        relays_silent: true,
    };
    m.probe_result("x", silent, 0);
    assert_eq!(m.lhm(), 1);
    assert_eq!(
        (
            m.direct_timeout_ms(),
            m.relay_timeout_ms(),
            m.suspicion_timeout_ms()
        ),
        (T, 2 * T, 2 * S)
    );
    // A relay that answered 502 is not silence; no relays asked is not silence either.
    let answered = ProbeOutcome::Failed {
        relays_asked: 1,
        relay_ack: false,
        relays_silent: false,
    };
    m.probe_result("x", answered, 0);
    m.probe_result("x", fail(), 0);
    assert_eq!(m.lhm(), 1);
    for _ in 0..20 {
        m.probe_result("x", silent, 0);
    }
    assert_eq!(m.lhm(), 8, "capped");
    assert_eq!(m.suspicion_timeout_ms(), 9 * S);
    m.probe_result("r", ProbeOutcome::Ack, 0);
    assert_eq!(m.lhm(), 7, "lowered by a successful direct probe");
    for _ in 0..20 {
        m.probe_result("r", ProbeOutcome::Ack, 0);
    }
    assert_eq!(m.lhm(), 0, "floored");
    for i in 0..20 {
        m.merge(&[ent("n1", State::Suspect, m.incarnation() + i)], None, 0);
    }
    assert_eq!(m.lhm(), 8, "refutations raise it too, capped");
}

#[test]
fn lhm_stretches_a_running_suspicion_timer() {
    let mut m = node_with(&[("x", State::Suspect, 1)]);
    m.merge(&[ent("n1", State::Suspect, SELF_INC)], None, 0);
    assert_eq!(m.lhm(), 1);
    m.tick(S);
    assert_eq!(view(&m, "x").0, State::Suspect);
    m.tick(2 * S);
    assert_eq!(view(&m, "x").0, State::Dead);
}

// ---- probe cycle --------------------------------------------------------------------------------

#[test]
fn ack_of_suspect_keeps_suspicion_and_gossips_to_it() {
    let mut m = node_with(&[("x", State::Suspect, 3), ("a", State::Alive, 1)]);
    let fx = m.probe_result("x", ProbeOutcome::Ack, 10);
    assert_eq!(view(&m, "x"), (State::Suspect, 3));
    assert_eq!(gossip_of(&fx), vec![addr("x")]);
    assert_eq!(m.counters().heartbeat_success, 1);
    // A failed cycle of a suspect also pushes to it, and does not restart the timer.
    let fx = m.probe_result("x", fail(), 20);
    assert_eq!(gossip_of(&fx), vec![addr("x")]);
    assert_eq!(m.counters().nodes_suspect, 0);
    m.tick(S);
    assert_eq!(view(&m, "x").0, State::Dead);
}

#[test]
fn ack_of_alive_changes_nothing() {
    let mut m = node_with(&[("x", State::Alive, 3)]);
    assert!(m.probe_result("x", ProbeOutcome::Ack, 10).is_empty());
}

#[test]
fn relay_ack_means_no_change_and_counts_refuted() {
    let mut m = node_with(&[("x", State::Alive, 3), ("r", State::Alive, 1)]);
    let relays = m.pick_relays("x");
    assert_eq!(relays, vec![("r".to_string(), addr("r"))]);
    m.record_relay(true);
    m.record_relay(false);
    let out = ProbeOutcome::Failed {
        relays_asked: 2,
        relay_ack: true,
        relays_silent: false,
    };
    assert!(m.probe_result("x", out, 10).is_empty());
    assert_eq!(view(&m, "x"), (State::Alive, 3));
    let c = m.counters();
    assert_eq!(
        (
            c.heartbeat_failure,
            c.indirect_probe_refuted,
            c.indirect_probe_success,
            c.indirect_probe_failure
        ),
        (1, 1, 1, 1)
    );
}

#[test]
fn probe_targets_skip_in_flight_and_non_ring_members() {
    let mut m = node_with(&[
        ("a", State::Alive, 1),
        ("s", State::Suspect, 1),
        ("d", State::Dead, 1),
        ("l", State::Left, 1),
    ]);
    let mut ids: Vec<String> = m.probe_targets(0).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, ring(&["a", "s"]));
    m.probe_started("a");
    assert_eq!(m.probe_targets(0), vec![("s".to_string(), addr("s"))]);
    m.probe_result("a", ProbeOutcome::Ack, 1);
    assert_eq!(m.probe_targets(0).len(), 2);
}

#[test]
fn pick_relays_are_distinct_alive_non_target_and_at_most_k() {
    let mut m = node_with(&[
        ("x", State::Alive, 1),
        ("a", State::Alive, 1),
        ("b", State::Alive, 1),
        ("c", State::Alive, 1),
        ("s", State::Suspect, 1),
        ("d", State::Dead, 1),
    ]);
    for _ in 0..50 {
        let r = m.pick_relays("x");
        assert_eq!(r.len(), 2);
        assert_ne!(r[0].0, r[1].0);
        for (id, _) in &r {
            assert!(["a", "b", "c"].contains(&id.as_str()), "{id}");
        }
    }
    let mut k0 = Membership::new("n1", "n1:1", 1, timers(0), &[], 3);
    k0.merge(
        &[ent("a", State::Alive, 1), ent("b", State::Alive, 1)],
        None,
        0,
    );
    assert!(k0.pick_relays("a").is_empty());
}

// ---- suspicion and retention ---------------------------------------------------------------------

#[test]
fn suspicion_expires_only_at_the_same_incarnation() {
    let mut m = node_with(&[("x", State::Alive, 4)]);
    m.probe_result("x", fail(), 0);
    // Refuted before expiry: stays alive.
    m.merge(&[ent("x", State::Alive, 5)], None, S - 1);
    m.tick(S);
    assert_eq!(view(&m, "x"), (State::Alive, 5));
    // Suspected again at 5 later: its own full timer applies, dead at 5.
    m.probe_result("x", fail(), 10_000);
    m.tick(10_000 + S - 1);
    assert_eq!(view(&m, "x"), (State::Suspect, 5));
    m.tick(10_000 + S);
    assert_eq!(view(&m, "x"), (State::Dead, 5));
}

#[test]
fn forgotten_member_is_unknown_again() {
    let mut m = node_with(&[("x", State::Suspect, 9)]);
    m.merge(&[ent("x", State::Dead, 9)], None, 100);
    assert_eq!(m.state_of("x"), Some(State::Dead));
    m.tick(100 + m.retention_ms());
    assert_eq!(m.state_of("x"), None);
    // A stale alive claim at a lower incarnation is now added as given.
    let fx = m.merge(&[ent("x", State::Alive, 2)], None, 200_000);
    assert_eq!(view(&m, "x"), (State::Alive, 2));
    assert!(ring_changed(&fx));
}

#[test]
fn retention_floor_is_five_seconds() {
    let mut t = timers(1);
    t.heartbeat_ms = 10;
    t.gossip_ms = 20;
    let m = Membership::new("n1", "n1:1", 1, t, &[], 1);
    assert_eq!(m.retention_ms(), 5_000);
}

#[test]
fn retention_restarts_when_dead_becomes_left() {
    let mut m = node_with(&[("x", State::Dead, 1)]);
    m.merge(&[ent("x", State::Left, 1)], None, 10_000);
    m.tick(30 * T);
    assert_eq!(view(&m, "x").0, State::Left);
    m.tick(10_000 + 30 * T);
    assert_eq!(m.state_of("x"), None);
}

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
