//! Unit tests, part one: every row of cluster.md §2.8, the precedence rule and the API address,
//! plus the helpers both parts use (`tests_lifecycle.rs` has refutation, LHM, probe cycles,
//! timers, leave, seeds, §14 counters and a simulated-clock check of invariant 11).

use super::*;

pub(super) const T: u64 = 1000;
pub(super) const S: u64 = 3 * T;
pub(super) const G: u64 = 1000;
pub(super) const SELF_INC: u64 = 1_000_000;

pub(super) fn timers(k: usize) -> Timers {
    Timers {
        heartbeat_ms: T,
        suspicion_mult: 3,
        gossip_ms: G,
        indirect_k: k,
    }
}

pub(super) fn addr(id: &str) -> String {
    format!("{id}:7946")
}

pub(super) fn ent(id: &str, state: State, inc: u64) -> Entry {
    Entry {
        id: id.to_string(),
        address: addr(id),
        api_address: String::new(),
        state,
        incarnation: inc,
    }
}

/// Node "n1" with the given peers learned by gossip at t = 0.
pub(super) fn node_with(peers: &[(&str, State, u64)]) -> Membership {
    let mut m = Membership::new("n1", &addr("n1"), SELF_INC, timers(2), &[], 7);
    let entries: Vec<Entry> = peers.iter().map(|(id, s, i)| ent(id, *s, *i)).collect();
    m.merge(&entries, None, 0);
    m
}

pub(super) fn gossip_of(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .find_map(|e| match e {
            Effect::GossipTo(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

pub(super) fn ring_changed(effects: &[Effect]) -> bool {
    effects.contains(&Effect::RingChanged)
}

pub(super) fn table_changed(effects: &[Effect]) -> bool {
    effects.contains(&Effect::TableChanged)
}

pub(super) fn view(m: &Membership, id: &str) -> (State, u64) {
    let e = m.table().into_iter().find(|e| e.id == id).expect("member");
    (e.state, e.incarnation)
}

pub(super) fn fail() -> ProbeOutcome {
    ProbeOutcome::Failed {
        relays_asked: 0,
        relay_ack: false,
        relays_silent: false,
    }
}

pub(super) fn ring(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

// ---- §2.8, one test per row -------------------------------------------------------------------

#[test]
fn row_id_seed_at_start_is_alive_inc0_ring_member() {
    let seeds = vec![(Some("n2".to_string()), addr("n2"))];
    let m = Membership::new("n1", &addr("n1"), SELF_INC, timers(2), &seeds, 1);
    assert_eq!(view(&m, "n2"), (State::Alive, 0));
    assert_eq!(m.ring_members(), ring(&["n1", "n2"]));
}

#[test]
fn row_unknown_gossip_entry_added_as_given() {
    let mut m = node_with(&[]);
    let fx = m.merge(
        &[
            ent("a", State::Alive, 5),
            ent("s", State::Suspect, 6),
            ent("d", State::Dead, 7),
            ent("l", State::Left, 8),
        ],
        None,
        100,
    );
    assert!(ring_changed(&fx) && table_changed(&fx));
    assert_eq!(view(&m, "a"), (State::Alive, 5));
    assert_eq!(view(&m, "s"), (State::Suspect, 6));
    assert_eq!(view(&m, "d"), (State::Dead, 7));
    assert_eq!(view(&m, "l"), (State::Left, 8));
    assert_eq!(m.ring_members(), ring(&["a", "n1", "s"]));
    // Joining as suspect or dead is not a transition: no §14 counter moves.
    assert_eq!(m.counters().nodes_suspect, 0);
    assert_eq!(m.counters().nodes_dead, 0);
    // Timer S started at arrival for the suspect.
    assert!(m.tick(100 + S - 1).is_empty());
    m.tick(100 + S);
    assert_eq!(view(&m, "s"), (State::Dead, 6));
}

#[test]
fn row_alive_probe_fails_becomes_suspect_and_gossips_to_x_plus_3() {
    let mut m = node_with(&[
        ("x", State::Alive, 4),
        ("a", State::Alive, 1),
        ("b", State::Alive, 1),
        ("c", State::Alive, 1),
        ("d", State::Alive, 1),
    ]);
    let fx = m.probe_result("x", fail(), 10);
    assert_eq!(view(&m, "x"), (State::Suspect, 4));
    assert_eq!(m.counters().nodes_suspect, 1);
    assert!(!ring_changed(&fx), "suspect stays a ring member");
    assert!(table_changed(&fx));
    let to = gossip_of(&fx);
    assert_eq!(to[0], addr("x"));
    assert_eq!(to.len(), 4, "x plus 3 others: {to:?}");
    assert!(!to[1..].contains(&addr("x")));
    // Timer S runs from the decision.
    m.tick(10 + S - 1);
    assert_eq!(view(&m, "x").0, State::Suspect);
    m.tick(10 + S);
    assert_eq!(view(&m, "x"), (State::Dead, 4));
}

#[test]
fn row_alive_gossip_suspect_same_or_higher_inc() {
    for j in [4, 9] {
        let mut m = node_with(&[("x", State::Alive, 4)]);
        let fx = m.merge(&[ent("x", State::Suspect, j)], None, 50);
        assert_eq!(view(&m, "x"), (State::Suspect, j));
        assert_eq!(m.counters().nodes_suspect, 1);
        assert!(gossip_of(&fx).is_empty(), "rumours are not pushed on");
        m.tick(50 + S);
        assert_eq!(view(&m, "x"), (State::Dead, j));
    }
    // Lower incarnation: ignored.
    let mut m = node_with(&[("x", State::Alive, 4)]);
    assert!(m.merge(&[ent("x", State::Suspect, 3)], None, 50).is_empty());
    assert_eq!(view(&m, "x"), (State::Alive, 4));
}

#[test]
fn row_alive_or_suspect_gossip_alive_higher_cancels_timer() {
    let mut m = node_with(&[("x", State::Alive, 4)]);
    m.merge(&[ent("x", State::Alive, 5)], None, 10);
    assert_eq!(view(&m, "x"), (State::Alive, 5));

    let mut m = node_with(&[("x", State::Suspect, 4)]);
    let fx = m.merge(&[ent("x", State::Alive, 5)], None, 10);
    assert!(table_changed(&fx) && !ring_changed(&fx));
    assert_eq!(view(&m, "x"), (State::Alive, 5));
    m.tick(10 * S);
    assert_eq!(view(&m, "x"), (State::Alive, 5), "timer cancelled");
    // alive at the same incarnation does not clear suspicion (rank alive < suspect).
    let mut m = node_with(&[("x", State::Suspect, 4)]);
    m.merge(&[ent("x", State::Alive, 4)], None, 10);
    assert_eq!(view(&m, "x"), (State::Suspect, 4));
}

#[test]
fn row_suspect_gossip_suspect_higher_restarts_timer() {
    let mut m = node_with(&[("x", State::Suspect, 4)]);
    m.merge(&[ent("x", State::Suspect, 5)], None, 2000);
    assert_eq!(
        m.counters().nodes_suspect,
        0,
        "already suspect: no new transition"
    );
    m.tick(S);
    assert_eq!(
        view(&m, "x"),
        (State::Suspect, 5),
        "old timer no longer applies"
    );
    m.tick(2000 + S);
    assert_eq!(view(&m, "x"), (State::Dead, 5));
}

#[test]
fn row_suspect_timer_expires_dead_ring_remove_gossip_3() {
    let mut m = node_with(&[
        ("x", State::Alive, 4),
        ("a", State::Alive, 1),
        ("b", State::Alive, 1),
        ("c", State::Alive, 1),
        ("d", State::Alive, 1),
    ]);
    m.probe_result("x", fail(), 0);
    let fx = m.tick(S);
    assert_eq!(view(&m, "x"), (State::Dead, 4));
    assert!(ring_changed(&fx) && table_changed(&fx));
    let to = gossip_of(&fx);
    assert_eq!(to.len(), 3);
    assert!(!to.contains(&addr("x")));
    assert_eq!(m.counters().nodes_dead, 1);
    assert_eq!(m.counters().nodes_removed, 1);
    assert!(!m.ring_members().contains(&"x".to_string()));
}

#[test]
fn row_suspect_gossip_dead_same_or_higher() {
    for j in [4, 6] {
        let mut m = node_with(&[("x", State::Suspect, 4)]);
        let fx = m.merge(&[ent("x", State::Dead, j)], None, 10);
        assert_eq!(view(&m, "x"), (State::Dead, j));
        assert!(ring_changed(&fx));
        assert_eq!(m.counters().nodes_dead, 1);
        assert_eq!(m.counters().nodes_removed, 1);
    }
}

#[test]
fn row_alive_gossip_dead_only_suspects_and_x_can_refute() {
    // The partition-heal case: hearsay `dead` about a member held as alive keeps it in the
    // ring as suspect, tells X first, and X's refutation (higher incarnation) clears it.
    for j in [4, 6] {
        let mut m = node_with(&[("x", State::Alive, 4), ("y", State::Alive, 1)]);
        let fx = m.merge(&[ent("x", State::Dead, j)], None, 10);
        assert_eq!(view(&m, "x"), (State::Suspect, j));
        assert!(
            m.ring_members().contains(&"x".to_string()),
            "still in the ring"
        );
        assert!(!ring_changed(&fx));
        assert_eq!(gossip_of(&fx).first(), Some(&addr("x")), "X is told first");
        assert_eq!(m.counters().nodes_suspect, 1);
        assert_eq!(m.counters().nodes_dead, 0);
        assert_eq!(m.counters().nodes_removed, 0);
        m.merge(&[ent("x", State::Alive, j + 1)], None, 20);
        assert_eq!(view(&m, "x"), (State::Alive, j + 1));
        assert_eq!(m.counters().nodes_removed, 0);
    }
    // Not refuted: the suspicion timer runs out as for any suspect.
    let mut m = node_with(&[("x", State::Alive, 4)]);
    m.merge(&[ent("x", State::Dead, 4)], None, 10);
    m.tick(10 + S - 1);
    assert_eq!(view(&m, "x").0, State::Suspect);
    m.tick(10 + S);
    assert_eq!(view(&m, "x").0, State::Dead);
    let mut m = node_with(&[("x", State::Alive, 4)]);
    m.merge(&[ent("x", State::Dead, 3)], None, 10);
    assert_eq!(view(&m, "x"), (State::Alive, 4));
}

#[test]
fn repeated_dead_rumor_does_not_confirm_its_own_suspicion() {
    // The fault run: a healed node's `dead` verdict about a healthy member arrived twice within
    // a millisecond (push and pull); the second copy must not turn the rumor's own suspicion
    // into a dead verdict.
    let mut m = node_with(&[("x", State::Alive, 4), ("y", State::Alive, 1)]);
    m.merge(&[ent("x", State::Dead, 4)], None, 10);
    let fx = m.merge(&[ent("x", State::Dead, 4)], None, 11);
    assert_eq!(view(&m, "x"), (State::Suspect, 4));
    assert!(!ring_changed(&fx));
    assert_eq!(m.counters().nodes_dead, 0);
    // Laundered: another node turned the rumor into `suspect` and gossiped that first.
    let mut m = node_with(&[("x", State::Alive, 4), ("y", State::Alive, 1)]);
    m.merge(&[ent("x", State::Suspect, 4)], None, 10);
    m.merge(&[ent("x", State::Dead, 4)], None, 11);
    assert_eq!(view(&m, "x"), (State::Suspect, 4));
    // ... until this node's own probe cycle fails: then the rumor is believed.
    let failed = ProbeOutcome::Failed {
        relays_asked: 1,
        relay_ack: false,
        relays_silent: false,
    };
    m.probe_result("x", failed, 12);
    m.merge(&[ent("x", State::Dead, 4)], None, 13);
    assert_eq!(view(&m, "x"), (State::Dead, 4));
    // Its own suspicion timer still decides a hearsay suspect that never refutes.
    let mut m = node_with(&[("x", State::Alive, 4), ("y", State::Alive, 1)]);
    m.merge(&[ent("x", State::Dead, 4)], None, 10);
    m.tick(10 + S);
    assert_eq!(view(&m, "x").0, State::Dead);
}

#[test]
fn row_alive_or_suspect_gossip_left_or_draining_probe() {
    for from in [State::Alive, State::Suspect] {
        let mut m = node_with(&[("x", from, 4)]);
        let fx = m.merge(&[ent("x", State::Left, 4)], None, 10);
        assert_eq!(view(&m, "x"), (State::Left, 4));
        assert!(ring_changed(&fx));
        assert_eq!(m.counters().nodes_removed, 1);
        assert_eq!(m.counters().nodes_dead, 0);

        let mut m = node_with(&[("x", from, 4)]);
        m.merge(&[ent("x", State::Left, 9)], None, 10);
        assert_eq!(view(&m, "x"), (State::Left, 9), "max(i, j)");

        let mut m = node_with(&[("x", from, 4)]);
        let before = m.counters().nodes_suspect;
        let fx = m.probe_result("x", ProbeOutcome::Draining, 10);
        assert_eq!(view(&m, "x"), (State::Left, 4));
        assert!(ring_changed(&fx));
        assert_eq!(
            m.counters().nodes_suspect,
            before,
            "never passes through suspect"
        );
        assert_eq!(m.counters().nodes_removed, 1);
        assert_eq!(m.counters().heartbeat_success, 1);
        assert!(m.probe_targets(20).is_empty(), "left peers are not probed");
    }
}

#[test]
fn row_dead_gossip_alive_or_suspect_higher_rejoins() {
    for to in [State::Alive, State::Suspect] {
        let mut m = node_with(&[("x", State::Dead, 4)]);
        assert!(
            m.merge(&[ent("x", to, 4)], None, 10).is_empty(),
            "j = i is not enough"
        );
        let fx = m.merge(&[ent("x", to, 5)], None, 10);
        assert_eq!(view(&m, "x"), (to, 5));
        assert!(ring_changed(&fx));
        assert!(m.ring_members().contains(&"x".to_string()));
    }
}

#[test]
fn row_dead_gossip_left_same_or_higher() {
    for j in [4, 5] {
        let mut m = node_with(&[("x", State::Dead, 4)]);
        let fx = m.merge(&[ent("x", State::Left, j)], None, 10);
        assert_eq!(view(&m, "x"), (State::Left, j));
        assert!(!ring_changed(&fx));
        assert_eq!(m.counters().nodes_removed, 0);
        assert_eq!(m.counters().nodes_dead, 0);
    }
}

#[test]
fn row_left_gossip_alive_or_suspect_higher_rejoins() {
    for to in [State::Alive, State::Suspect] {
        let mut m = node_with(&[("x", State::Left, 4)]);
        assert!(m.merge(&[ent("x", to, 4)], None, 10).is_empty());
        let fx = m.merge(&[ent("x", to, 5)], None, 10);
        assert_eq!(view(&m, "x"), (to, 5));
        assert!(ring_changed(&fx));
    }
}

#[test]
fn row_dead_or_left_retention_forgets() {
    let mut m = node_with(&[("d", State::Dead, 1), ("l", State::Left, 1)]);
    assert_eq!(m.retention_ms(), 30 * T);
    assert!(m.tick(30 * T - 1).is_empty());
    let v = m.counters().membership_version;
    let fx = m.tick(30 * T);
    assert_eq!(fx, vec![Effect::TableChanged]);
    assert_eq!(m.counters().membership_version, v + 2);
    assert_eq!(m.state_of("d"), None);
    assert_eq!(m.state_of("l"), None);
    assert_eq!(
        m.counters().nodes_removed,
        0,
        "removal was counted when they left the ring"
    );
}

// ---- precedence ---------------------------------------------------------------------------------

#[test]
fn equal_pairs_change_nothing_and_timer_keeps_running() {
    let mut m = node_with(&[("x", State::Alive, 4)]);
    m.probe_result("x", fail(), 0);
    let v = m.counters().membership_version;
    let fx = m.merge(&[ent("x", State::Suspect, 4)], None, 2500);
    assert!(fx.is_empty());
    assert_eq!(m.counters().membership_version, v);
    m.tick(S);
    assert_eq!(
        view(&m, "x"),
        (State::Dead, 4),
        "timer from t = 0, not restarted at 2500"
    );
}

#[test]
fn address_is_taken_from_the_winning_claim() {
    let mut m = node_with(&[("x", State::Alive, 4)]);
    let mut e = ent("x", State::Alive, 4);
    e.address = "moved:1".into();
    m.merge(&[e.clone()], None, 1);
    assert_eq!(m.address_of("x"), Some("x:7946"), "equal pair loses");
    e.incarnation = 5;
    assert!(table_changed(&m.merge(&[e], None, 1)));
    assert_eq!(m.address_of("x"), Some("moved:1"));
}

#[test]
fn invalid_entries_are_skipped() {
    let mut m = node_with(&[]);
    let mut bad_id = ent("x", State::Alive, 1);
    bad_id.id = "bad id".into();
    let mut bad_addr = ent("y", State::Alive, 1);
    bad_addr.address = "nohost".into();
    let mut zero_port = ent("z", State::Alive, 1);
    zero_port.address = "h:0".into();
    assert!(m.merge(&[bad_id, bad_addr, zero_port], None, 1).is_empty());
    assert_eq!(m.table().len(), 1);
}

#[test]
fn unknown_state_strings_are_rejected_by_serde() {
    let ok = r#"{"id":"a","address":"h:1","state":"suspect","incarnation":3}"#;
    assert_eq!(
        serde_json::from_str::<Entry>(ok).unwrap(),
        ent_at("a", "h:1", State::Suspect, 3)
    );
    let bad = r#"{"id":"a","address":"h:1","state":"zombie","incarnation":3}"#;
    assert!(serde_json::from_str::<Entry>(bad).is_err());
    let out = serde_json::to_string(&ent_at("a", "h:1", State::Left, 3)).unwrap();
    assert_eq!(
        out, r#"{"id":"a","address":"h:1","api_address":"","state":"left","incarnation":3}"#,
        "cluster.md 2.6 field order, api_address always sent"
    );
}

pub(super) fn ent_at(id: &str, address: &str, state: State, inc: u64) -> Entry {
    Entry {
        id: id.into(),
        address: address.into(),
        api_address: String::new(),
        state,
        incarnation: inc,
    }
}

// ---- API address (cluster.md §1, 2.6) -----------------------------------------------------------

pub(super) fn api_of(m: &Membership, id: &str) -> String {
    m.table()
        .into_iter()
        .find(|e| e.id == id)
        .unwrap()
        .api_address
}

#[test]
fn api_address_travels_with_winning_or_equal_claims_and_empty_keeps_it() {
    let mut m = node_with(&[("n2", State::Alive, 5)]);
    m.set_self_api("n1:8080");
    assert_eq!(api_of(&m, "n1"), "n1:8080", "own address in the table");
    assert_eq!(api_of(&m, "n2"), "", "unknown until it arrives");
    // An equal claim fills in an unknown API address, and that is a table change (SSE event).
    let with_api = Entry {
        api_address: "n2:8080".into(),
        ..ent("n2", State::Alive, 5)
    };
    let fx = m.merge(std::slice::from_ref(&with_api), None, 10);
    assert_eq!(api_of(&m, "n2"), "n2:8080");
    assert!(fx.contains(&Effect::TableChanged), "{fx:?}");
    // ...but an equal claim never replaces a known one.
    let other = Entry {
        api_address: "elsewhere:8080".into(),
        ..ent("n2", State::Alive, 5)
    };
    m.merge(&[other], None, 15);
    assert_eq!(api_of(&m, "n2"), "n2:8080");
    // A newer claim without one (a Go peer) keeps it.
    m.merge(&[ent("n2", State::Alive, 6)], None, 20);
    assert_eq!(api_of(&m, "n2"), "n2:8080");
    // A newer claim with another one replaces it; an older claim never does.
    let moved = Entry {
        api_address: "n2b:8080".into(),
        ..ent("n2", State::Alive, 7)
    };
    m.merge(&[moved], None, 30);
    assert_eq!(api_of(&m, "n2"), "n2b:8080");
    let stale = Entry {
        api_address: "old:8080".into(),
        ..ent("n2", State::Alive, 3)
    };
    m.merge(&[stale], None, 40);
    assert_eq!(api_of(&m, "n2"), "n2b:8080");
    // New members arrive with theirs; JSON without the field (the Go server) parses as "".
    let e: Entry =
        serde_json::from_str(r#"{"id":"n3","address":"n3:7946","state":"alive","incarnation":1}"#)
            .unwrap();
    assert_eq!(e.api_address, "");
}
