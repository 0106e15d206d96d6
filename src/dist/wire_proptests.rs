//! Property tests of the peer-protocol decoder (`/internal/batch` items, cluster.md §12.3): an
//! entry survives the wire exactly; a stamp the receiver must refuse (an origin that is not a
//! node id, a version over an hour ahead) is always refused; arbitrary bytes never panic and
//! never decode into an entry with a refused stamp.

use proptest::prelude::*;

use super::wire::{batch_item_to_entry, check_stamp, entry_to_batch_item, BatchReq};
use crate::store::entry::Entry;
use crate::store::MAX_CLOCK_AHEAD_MS;

const NOW: u64 = 1_764_000_000_000;

/// An HLC version whose wall part lies within a day of NOW.
fn version() -> impl Strategy<Value = u64> {
    (NOW - 86_400_000..NOW + MAX_CLOCK_AHEAD_MS, 0u64..1 << 16).prop_map(|(ms, c)| (ms << 16) | c)
}

fn node_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,24}"
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (
            prop::collection::vec(any::<u8>(), 0..64),
            version(),
            node_id(),
            prop_oneof![Just(0u64), NOW + 1..NOW + 86_400_000],
        )
            .prop_map(|(value, version, origin, expires_at_ms)| Entry::Item {
                value: value.into(),
                version,
                origin,
                expires_at_ms
            }),
        (version(), node_id(), NOW - 86_400_000..NOW).prop_map(|(version, origin, t)| {
            Entry::Tombstone {
                version,
                origin,
                deleted_at_ms: t,
            }
        }),
    ]
}

fn decode(body: &[u8]) -> Result<Vec<Result<Entry, String>>, serde_json::Error> {
    let req: BatchReq = serde_json::from_slice(body)?;
    Ok(req
        .items
        .iter()
        .map(|it| batch_item_to_entry(it, NOW))
        .collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn an_entry_survives_the_wire_exactly(entries in prop::collection::vec(entry(), 1..8)) {
        let items: Vec<_> = entries.iter().map(|e| entry_to_batch_item("k", e, NOW)).collect();
        let body = serde_json::to_vec(&serde_json::json!({"reason": "write", "items": items})).unwrap();
        let got = decode(&body).unwrap();
        prop_assert_eq!(got.len(), entries.len());
        for (g, e) in got.into_iter().zip(entries) {
            prop_assert_eq!(g, Ok(e));
        }
    }

    /// The production path: every sender's batch written straight into the request buffer
    /// after the room for its head (`batch_body.rs`), the value's text equal to base64 of the bytes.
    #[test]
    fn a_shared_value_is_written_as_its_base64(entries in prop::collection::vec(entry(), 1..8)) {
        let items: Vec<(usize, &str, &Entry)> =
            entries.iter().enumerate().map(|(i, e)| (i, "k", e)).collect();
        let mut body = b"prefix".to_vec();
        super::batch_body::write(&mut body, "write", &items, NOW);
        let got = decode(&body[6..]).unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&body[6..]).unwrap();
        for (i, (g, e)) in got.into_iter().zip(&entries).enumerate() {
            if let Entry::Item { value, .. } = e {
                prop_assert_eq!(&raw["items"][i]["value"], &serde_json::json!(super::wire::b64(value)));
            }
            prop_assert_eq!(g, Ok(e.clone()));
        }
    }

    #[test]
    fn a_refused_stamp_is_always_refused(
        e in entry(),
        bad_origin in prop_oneof!["[A-Za-z0-9._-]{129,140}", ".*[ /%@:\"\\\\].*"],
        ahead in MAX_CLOCK_AHEAD_MS + 1..MAX_CLOCK_AHEAD_MS * 100,
    ) {
        let mut item = entry_to_batch_item("k", &e, NOW);
        item.origin = bad_origin.into();
        prop_assert!(batch_item_to_entry(&item, NOW).is_err(), "origin {:?} accepted", item.origin);
        let mut item = entry_to_batch_item("k", &e, NOW);
        item.version = (NOW + ahead) << 16;
        prop_assert!(batch_item_to_entry(&item, NOW).is_err(), "version {} accepted", item.version);
    }

    /// The fan-out's directly written body (`batch_body.rs`) is the same JSON as serde's for
    /// any entries and keys.
    #[test]
    fn the_direct_batch_body_matches_serde(
        entries in prop::collection::vec(entry(), 1..8),
        keys in prop::collection::vec("\\PC{0,12}", 8),
    ) {
        let items: Vec<(usize, &str, &Entry)> =
            entries.iter().enumerate().map(|(i, e)| (i, keys[i].as_str(), e)).collect();
        let mut direct = Vec::new();
        super::batch_body::write(&mut direct, "write", &items, NOW);
        let via_serde = serde_json::to_vec(&BatchReq {
            reason: "write".into(),
            items: items.iter().map(|&(_, k, e)| entry_to_batch_item(k, e, NOW)).collect(),
        })
        .unwrap();
        let a: serde_json::Value = serde_json::from_slice(&direct).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&via_serde).unwrap();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn mutated_bodies_never_panic_or_smuggle_a_bad_stamp(
        e in entry(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let item = entry_to_batch_item("k", &e, NOW);
        let mut body = serde_json::to_vec(&serde_json::json!({"items": [item]})).unwrap();
        for (at, b) in flips {
            let i = at.index(body.len());
            body[i] = b;
        }
        body.truncate(cut.index(body.len() + 1));
        if let Ok(results) = decode(&body) {
            for r in results.into_iter().flatten() {
                prop_assert!(check_stamp(r.version(), r.origin(), NOW).is_ok(), "{:?}", r);
            }
        }
    }
}

/// A value is decoded while the body is read; a value that is not base64 refuses its item
/// only, and the rest of the body still applies.
#[test]
fn a_bad_value_refuses_its_item_and_keeps_the_others() {
    let v = NOW << 16;
    let body = format!(
        r#"{{"items":[
            {{"key":"a","value":"aGVsbG8=","version":{v},"origin":"n1"}},
            {{"key":"b","value":"aGVs\r\nbG8=","version":{v},"origin":"n1"}},
            {{"key":"c","value":"not base64!","version":{v},"origin":"n1"}},
            {{"key":"d","value":"","version":{v},"origin":"n1"}}
        ]}}"#
    );
    let got = decode(body.as_bytes()).expect("the body is valid JSON");
    let value = |r: &Result<Entry, String>| match r {
        Ok(Entry::Item { value, .. }) => Ok(value.to_vec()),
        other => Err(format!("{other:?}")),
    };
    assert_eq!(value(&got[0]), Ok(b"hello".to_vec()));
    assert_eq!(
        value(&got[1]),
        Ok(b"hello".to_vec()),
        "line breaks are ignored, as Go does"
    );
    assert!(
        matches!(&got[2], Err(e) if e.starts_with("invalid base64 value")),
        "{:?}",
        got[2]
    );
    assert_eq!(value(&got[3]), Ok(Vec::new()));
    // A value that is not a string at all is a malformed body (a 400 for the whole request).
    let bad = format!(r#"{{"items":[{{"key":"a","value":7,"version":{v},"origin":"n1"}}]}}"#);
    assert!(decode(bad.as_bytes()).is_err());
}

/// An item status this server does not know (a newer or foreign peer) is read, not a decode
/// error, and is none of the acknowledging ones.
#[test]
fn an_unknown_item_status_is_read_as_other() {
    use super::wire::{BatchAnswer, BatchResult, ItemStatus};
    let resp: BatchAnswer = serde_json::from_str(
        r#"{"results":[{"key":"a","status":"applied"},{"key":"b","status":"ignored","version":5,"origin":"n2"},
        {"key":"c","status":"invalid","error":"x"},{"key":"d","status":"quarantined"}]}"#,
    )
    .unwrap();
    let got: Vec<ItemStatus> = resp.results.iter().map(|r| r.status).collect();
    use ItemStatus::*;
    assert_eq!(got, vec![Applied, Ignored, Invalid, Other]);
    assert_eq!(resp.results[1].version, Some(5));
    assert_eq!(resp.results[1].origin.as_deref(), Some("n2"));
    assert_eq!(resp.results[2].error.as_deref(), Some("x"));
    let answered = BatchResult {
        key: "a".into(),
        status: Applied,
        version: None,
        origin: None,
        error: None,
    };
    let text = serde_json::to_string(&answered).unwrap();
    assert_eq!(text, r#"{"key":"a","status":"applied"}"#);
}

/// A Go sender's unversioned item (no version, no origin, no reason) and a key with escapes
/// decode: the borrowed fields fall back to "" and "write", and an escaped key becomes an
/// owned, unescaped copy.
#[test]
fn unversioned_items_and_escaped_keys_decode() {
    let body = br#"{"items":[{"key":"a\"b\u00e9","value":"eHg="}]}"#;
    let req: BatchReq = serde_json::from_slice(body).unwrap();
    assert_eq!(req.reason, "write");
    let it = &req.items[0];
    assert_eq!(it.key, "a\"b\u{e9}");
    assert_eq!(it.origin, "");
    match batch_item_to_entry(it, NOW).unwrap() {
        Entry::Item {
            version,
            origin,
            value,
            ..
        } => assert_eq!((version, origin.as_str(), &value[..]), (0, "", &b"xx"[..])),
        e => panic!("an item decoded as {e:?}"),
    }
}
