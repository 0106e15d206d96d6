//! The query-string routes encoded by the client side ([`crate::dist::protocol`]) decode to the
//! same request here, for any key, origin and number; and malformed ones are refused with the
//! parameter's name.

use proptest::prelude::*;

use super::*;
use crate::dist::protocol::{AeDigests, AeLeaves, Call, DelOne, GetKey, KeysPage, Probe};
use crate::dist::wire::DigestsReq;

/// The query part of a client target.
fn query_of(target: &str) -> Vec<u8> {
    target
        .split_once('?')
        .map_or("", |(_, q)| q)
        .as_bytes()
        .to_vec()
}

const NOW: u64 = 1_700_000_000_000;

/// Any key the client API accepts: 1..=64 chars of any Unicode scalar, including `&`, `=`, `%`,
/// `+`, spaces and `/`, which the encoding must carry.
fn key_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 1..64).prop_map(|c| c.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn get_round_trips(key in key_strategy()) {
        let q = query_of(&GetKey(&key).target());
        prop_assert_eq!(GetQuery::parse(&q), Ok(GetQuery { key }));
    }

    #[test]
    fn del_round_trips(
        key in key_strategy(),
        origin in "[a-zA-Z0-9._-]{1,40}",
        version in 1u64..(NOW << 16),
        deleted_at in 0u64..NOW,
    ) {
        let call = DelOne { key: &key, version, origin: &origin, deleted_at_ms: deleted_at };
        let q = query_of(&call.target());
        prop_assert_eq!(
            DelQuery::parse(&q, NOW),
            Ok(DelQuery { key, version, origin, deleted_at_ms: Some(deleted_at), replicate: false })
        );
    }

    #[test]
    fn probe_round_trips(target in "[a-zA-Z0-9 ._:&=%+-]{1,40}") {
        let q = query_of(&Probe(&target).target());
        prop_assert_eq!(ProbeQuery::parse(&q), Ok(ProbeQuery { target }));
    }

    #[test]
    fn keys_round_trips(limit in 1usize..100_000, core in 0usize..64, at in 0usize..1 << 40) {
        let cursor = format!("{core}.{at}");
        let call = KeysPage { q: "user:*", limit, cursor: &cursor };
        let got = KeysQuery::parse(&query_of(&call.target()), 64).unwrap();
        prop_assert_eq!(got.limit, limit);
        prop_assert_eq!(got.cursor, (core, at));
        prop_assert_eq!(got.pattern, Pattern::parse("user:*").unwrap());
    }

    #[test]
    fn leaves_round_trips(peer in "[a-z0-9-]{1,20}", ring in any::<u64>(), root in any::<u64>()) {
        let ring = format!("{ring:016x}");
        let call = AeLeaves { me: &peer, ring: &ring, root_hex: format!("{root:016x}"), before: Some(root >> 20) };
        let q = query_of(&call.target());
        prop_assert_eq!(LeavesQuery::parse(&q), Ok(LeavesQuery { peer, ring, root, before: Some(root >> 20) }));
    }

    #[test]
    fn digests_round_trip(
        peer in "[a-z0-9-]{1,20}",
        leaves in prop::collection::vec(0usize..crate::dist::ae::LEAVES, 0..=64),
    ) {
        let call = AeDigests { me: &peer, ring: "00000000000000ff", leaves: &leaves, before: Some(17) };
        let mut body = Vec::new();
        prop_assert!(call.write_body(&mut body));
        let got = DigestsReq::parse(&body).unwrap();
        prop_assert_eq!(got.peer, peer);
        prop_assert_eq!(got.ring, "00000000000000ff");
        prop_assert_eq!(got.leaves.iter().map(|&l| l as usize).collect::<Vec<_>>(), leaves);
    }

    /// Whatever bytes a peer sends, decoding answers (no panic), and a delete that decodes has a
    /// valid key and stamp.
    #[test]
    fn garbage_never_panics(q in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = GetQuery::parse(&q);
        let _ = ProbeQuery::parse(&q);
        let _ = KeysQuery::parse(&q, 2);
        let _ = LeavesQuery::parse(&q);
        if let Ok(d) = DigestsReq::parse(&q) {
            prop_assert!(d.leaves.len() <= 64);
        }
        if let Ok(d) = DelQuery::parse(&q, NOW) {
            prop_assert!(check_key(&d.key).is_ok());
            prop_assert!(wire::check_stamp(d.version, &d.origin, NOW).is_ok());
        }
    }
}

#[test]
fn malformed_parameters_name_themselves() {
    let err = |r: Result<DelQuery, String>| r.unwrap_err();
    assert_eq!(err(DelQuery::parse(b"version=1", NOW)), "missing key");
    assert_eq!(
        err(DelQuery::parse(b"key=k&version=x", NOW)),
        "invalid version: not a number"
    );
    assert_eq!(
        err(DelQuery::parse(b"key=k&deleted_at=-1", NOW)),
        "invalid deleted_at: not a number"
    );
    assert_eq!(
        err(DelQuery::parse(b"key=k&replicate=yes", NOW)),
        "invalid replicate: must be true or false"
    );
    // The bug issue 7 named: a malformed origin is refused, not applied as unversioned.
    assert!(err(DelQuery::parse(b"key=k&version=5&origin=%zz", NOW)).starts_with("invalid origin"));
    assert!(
        err(DelQuery::parse(b"key=k&version=5&origin=a%2Fb", NOW)).starts_with("invalid origin")
    );
    assert!(err(DelQuery::parse(b"key=k&origin=%FF", NOW)).starts_with("invalid origin"));
    assert!(
        err(DelQuery::parse(b"key=k&version=99999999999999999999", NOW))
            .starts_with("invalid version")
    );
    let d = DelQuery::parse(b"key=k&replicate=true", NOW).unwrap();
    assert_eq!((d.version, d.replicate, d.deleted_at_ms), (0, true, None));

    assert_eq!(GetQuery::parse(b"").unwrap_err(), "missing key");
    assert_eq!(ProbeQuery::parse(b"target=").unwrap_err(), "missing target");
    assert_eq!(
        KeysQuery::parse(b"limit=-1", 2).unwrap_err(),
        "invalid limit: must be a non-negative integer"
    );
    assert_eq!(
        KeysQuery::parse(b"cursor=3", 2).unwrap_err(),
        "invalid cursor"
    );
    // A cursor for a core this node does not have, checked before the pattern.
    assert_eq!(
        KeysQuery::parse(b"cursor=2.0&q=%5B", 2).unwrap_err(),
        "invalid cursor"
    );
    assert_eq!(
        KeysQuery::parse(b"cursor=1.0&q=%5B", 2).unwrap_err(),
        "invalid glob pattern"
    );
    assert_eq!(
        KeysQuery::parse(b"limit=0", 2).unwrap().limit,
        DEFAULT_KEYS_LIMIT
    );
    assert_eq!(
        LeavesQuery::parse(b"peer=a&ring=00&root=1").unwrap_err(),
        "malformed ring: expected 16 hex digits"
    );
    assert_eq!(
        LeavesQuery::parse(b"peer=a&ring=0000000000000000&root=xyz").unwrap_err(),
        "malformed root: expected 16 hex digits"
    );
    assert_eq!(
        LeavesQuery::parse(b"peer=a&root=1").unwrap_err(),
        "missing peer, ring or root"
    );
    assert_eq!(
        LeavesQuery::parse(b"peer=a&ring=0000000000000000&root=1&before=soon").unwrap_err(),
        "malformed before: expected Unix milliseconds"
    );
    // A Go or older peer sends no cut-off: every entry is compared.
    let q = LeavesQuery::parse(b"peer=a&ring=0000000000000000&root=1").unwrap();
    assert_eq!(q.before, None);
}

#[test]
fn digests_requests_are_bounded() {
    let many: Vec<u16> = (0..65).collect();
    let body =
        serde_json::to_vec(&serde_json::json!({"peer": "a", "ring": "r", "leaves": many})).unwrap();
    assert_eq!(
        DigestsReq::parse(&body).unwrap_err(),
        "leaves: at most 64 indexes in 0..1023"
    );
    let body = br#"{"peer":"a","ring":"r","leaves":[1024]}"#;
    assert_eq!(
        DigestsReq::parse(body).unwrap_err(),
        "leaves: at most 64 indexes in 0..1023"
    );
    assert!(DigestsReq::parse(br#"{"peer":"a"}"#)
        .unwrap_err()
        .starts_with("invalid JSON"));
}
