//! Membership unit tests, part two: refutation, local health, the probe cycle, suspicion and
//! retention (helpers in `tests.rs`; leave, seeds, gossip rounds and counters in `tests_gossip.rs`).

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
