//! The `/internal/batch` body (cluster.md §12.3), written straight from the sender's entries:
//! the write fan-out, hint replay, rebalance, anti-entropy pushes and read repair.
//!
//! Every replicated PUT passes through here once per remote owner. Going through
//! `wire::BatchItem` and serde cost two `String` copies per item (key, origin) and ran each
//! base64 value through `fmt::Write` and serde's escape scan (~4 % of a busy coordinator). Here
//! the key and origin are escaped by serde_json in place and the value's base64 is encoded
//! straight into the request buffer, which cannot need escaping. The JSON is the same shape
//! `wire::BatchReq` decodes (test below), so the receiving side has one decoder.

use base64::Engine;

use super::wire::remaining;
use crate::store::entry::Entry;

/// One item of the batch: its index in the caller's list (answers come back in order), key
/// and entry.
pub type Item<'a> = (usize, &'a str, &'a Entry);

/// About how many bytes an item takes, so the request buffer is sized once and the fan-out
/// splits bodies below the listener's cap.
pub fn item_size(key: &str, e: &Entry) -> usize {
    let value = match e {
        Entry::Item { value, .. } => value.len().div_ceil(3) * 4,
        Entry::Tombstone { .. } => 0,
    };
    key.len() + value + e.origin().len() + 128
}

/// Writes `{"reason":…,"items":[…]}` for `items` into `out`.
pub fn write(out: &mut Vec<u8>, reason: &str, items: &[Item<'_>], now_ms: u64) {
    out.extend_from_slice(b"{\"reason\":");
    string(out, reason);
    out.extend_from_slice(b",\"items\":[");
    for (n, &(_, key, e)) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"key\":");
        string(out, key);
        match e {
            Entry::Item {
                value,
                expires_at_ms,
                ..
            } => {
                out.extend_from_slice(b",\"value\":\"");
                let at = out.len();
                let engine = &base64::engine::general_purpose::STANDARD;
                out.resize(
                    at + base64::encoded_len(value.len(), true).expect("fits"),
                    0,
                );
                let n = engine
                    .encode_slice(&value[..], &mut out[at..])
                    .expect("sized above");
                out.truncate(at + n);
                out.extend_from_slice(b"\",\"expiration_ms\":");
                number(out, remaining(*expires_at_ms, now_ms));
            }
            Entry::Tombstone { deleted_at_ms, .. } => {
                out.extend_from_slice(b",\"deleted\":true,\"deleted_at\":");
                number(out, *deleted_at_ms);
            }
        }
        out.extend_from_slice(b",\"version\":");
        number(out, e.version());
        out.extend_from_slice(b",\"origin\":");
        string(out, e.origin());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

/// A JSON string, escaped by serde_json (keys are any UTF-8 a client sent).
fn string(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A JSON integer (serde_json formats it with `itoa`, no allocation).
fn number(out: &mut Vec<u8>, n: impl serde::Serialize) {
    let _ = serde_json::to_writer(&mut *out, &n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::wire::{batch_item_to_entry, entry_to_batch_item, BatchReq};

    const NOW: u64 = 1_764_000_000_000;

    fn entries() -> Vec<(String, Entry)> {
        let v = NOW << 16;
        vec![
            (
                "plain".into(),
                Entry::written(Some(b"hello".to_vec().into()), v, "n1".into(), 0),
            ),
            (
                "quote\"back\\slash\nnew line é".into(),
                Entry::written(
                    Some(vec![0u8, 255, 10, 34].into()),
                    v + 1,
                    "n-2".into(),
                    NOW + 5_000,
                ),
            ),
            (
                "empty".into(),
                Entry::written(Some(Vec::new().into()), v + 2, "n1".into(), 0),
            ),
            (
                "gone".into(),
                Entry::written(None, v + 3, "n3".into(), NOW - 10),
            ),
        ]
    }

    /// The entries as the senders pass them, and the body written from them.
    fn direct_body(owned: &[(String, Entry)]) -> Vec<u8> {
        let items: Vec<Item<'_>> = owned
            .iter()
            .enumerate()
            .map(|(i, (k, e))| (i, k.as_str(), e))
            .collect();
        let mut out = Vec::new();
        write(&mut out, "write", &items, NOW);
        out
    }

    /// The direct body and serde's body of the same entries are the same JSON, and decode back
    /// into the same entries on the receiving side.
    #[test]
    fn the_direct_body_is_the_serde_body() {
        let owned = entries();
        let direct = direct_body(&owned);
        let via_serde = serde_json::to_vec(&BatchReq {
            reason: "write".into(),
            items: owned
                .iter()
                .map(|(k, e)| entry_to_batch_item(k, e, NOW))
                .collect(),
        })
        .unwrap();
        let a: serde_json::Value = serde_json::from_slice(&direct).expect("valid JSON");
        let b: serde_json::Value = serde_json::from_slice(&via_serde).unwrap();
        assert_eq!(a, b);
        let req: BatchReq = serde_json::from_slice(&direct).unwrap();
        for (it, (k, e)) in req.items.iter().zip(&owned) {
            assert_eq!(&it.key, k);
            let back = batch_item_to_entry(it, NOW).expect("accepted");
            assert_eq!(back.version(), e.version());
            assert_eq!(back.origin(), e.origin());
            match (&back, e) {
                (Entry::Item { value: a, .. }, Entry::Item { value: b, .. }) => {
                    assert_eq!(&a[..], &b[..])
                }
                (
                    Entry::Tombstone {
                        deleted_at_ms: a, ..
                    },
                    Entry::Tombstone {
                        deleted_at_ms: b, ..
                    },
                ) => {
                    assert_eq!(a, b)
                }
                other => panic!("kind changed: {other:?}"),
            }
        }
    }

    /// The estimate sizes the request buffer once and splits bodies below the listener's cap:
    /// it must cover the body, and stay within the fixed per-item allowance of it, also for a
    /// large value (where a wrong base64 length would show).
    #[test]
    fn the_size_estimate_covers_the_body() {
        let mut owned = entries();
        owned.push((
            "large".into(),
            Entry::written(Some(vec![7u8; 100_000].into()), NOW << 16, "n1".into(), 0),
        ));
        let out = direct_body(&owned);
        let estimate: usize = owned.iter().map(|(k, e)| item_size(k, e)).sum();
        assert!(
            out.len() <= estimate + 32,
            "{} > {}",
            out.len(),
            estimate + 32
        );
        assert!(
            estimate - out.len() <= 128 * owned.len(),
            "estimate {estimate} is far above the body's {} bytes",
            out.len()
        );
    }
}
