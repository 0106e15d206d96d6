//! Versioned entries as they leave a shard: to another core over the mesh, to a peer in the
//! dist protocol, into the control core's quorum, read and anti-entropy cores. The LWW rule that
//! orders them (cluster.md §4) lives here once ([`lww_cmp`]).

use std::cmp::Ordering;
use std::sync::Arc;

/// A value that leaves its shard, shared rather than copied: a replicated write hands the same
/// buffer to the quorum round, every owner's outbox queue and any hint, and each of them only
/// adds a reference (issue 7: a replicated PUT used to copy its value about a dozen times on the
/// coordinator). `Arc<Vec<u8>>` rather than `Arc<[u8]>` so that wrapping a received `Vec` moves it
/// instead of copying it into a new allocation; `Arc` because entries cross cores. The empty
/// value (a delete's placeholder) allocates nothing.
#[derive(Clone, Default)]
pub struct Value(Option<Arc<Vec<u8>>>);

impl Value {
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value((!v.is_empty()).then(|| Arc::new(v)))
    }
}

impl std::ops::Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Value {}

/// Short values show their bytes (test failures name the value), long ones their length.
impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.as_slice();
        if b.len() <= 64 {
            write!(f, "Value(b\"{}\")", b.escape_ascii())
        } else {
            write!(
                f,
                "Value({} bytes: b\"{}\"..)",
                b.len(),
                b[..32].escape_ascii()
            )
        }
    }
}

/// A copy of a live item as a client reply needs it: the value's bytes (or only its length, for
/// HEAD, when it was not copied) and its stamp. Everything that can be a tombstone or travels
/// on (lookups, replication, repair, anti-entropy, rebalance) is an [`Entry`]; a local lookup
/// that finds nothing is `None`.
#[derive(Debug, Clone)]
pub struct OwnedItem {
    pub value: Vec<u8>,
    /// Length of the value (also set when `value` was not copied, for HEAD).
    pub len: usize,
    pub version: u64,
    pub origin: String,
    /// Absolute deadline in Unix ms; 0 = no expiry.
    pub expires_at_ms: u64,
}

impl OwnedItem {
    /// The served form of a live entry; None for a tombstone.
    pub fn of(e: &Entry) -> Option<OwnedItem> {
        match e {
            Entry::Item {
                value,
                version,
                origin,
                expires_at_ms,
            } => Some(OwnedItem {
                value: value.to_vec(),
                len: value.len(),
                version: *version,
                origin: origin.clone(),
                expires_at_ms: *expires_at_ms,
            }),
            Entry::Tombstone { .. } => None,
        }
    }
}

/// A versioned entry as it travels between cores and nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Item {
        value: Value,
        version: u64,
        origin: String,
        expires_at_ms: u64,
    },
    Tombstone {
        version: u64,
        origin: String,
        deleted_at_ms: u64,
    },
}

impl Entry {
    /// The entry a coordinator wrote: a delete (`value` None) or a put, at `version` from
    /// `origin`; `t` is what the key's core returned with the version (the deleted-at time of a
    /// delete, the expiry deadline of a put, 0 = none).
    pub fn written(value: Option<Value>, version: u64, origin: String, t: u64) -> Entry {
        match value {
            None => Entry::Tombstone {
                version,
                origin,
                deleted_at_ms: t,
            },
            Some(value) => Entry::Item {
                value,
                version,
                origin,
                expires_at_ms: t,
            },
        }
    }

    pub fn version(&self) -> u64 {
        match self {
            Entry::Item { version, .. } | Entry::Tombstone { version, .. } => *version,
        }
    }
    pub fn origin(&self) -> &str {
        match self {
            Entry::Item { origin, .. } | Entry::Tombstone { origin, .. } => origin,
        }
    }
    /// The LWW-newest of `entries` (the first of equals), if any.
    pub fn newest<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Option<&'a Entry> {
        entries.into_iter().fold(None, |best, e| match best {
            Some(b) if !e.newer_than(b) => Some(b),
            _ => Some(e),
        })
    }

    /// A live item at `now_ms`: not a tombstone and not past its deadline (0 = none).
    pub fn is_live(&self, now_ms: u64) -> bool {
        match self {
            Entry::Item { expires_at_ms, .. } => *expires_at_ms == 0 || *expires_at_ms > now_ms,
            Entry::Tombstone { .. } => false,
        }
    }

    /// LWW order (cluster.md §4): greater version, or equal version and smaller origin.
    pub fn newer_than(&self, other: &Entry) -> bool {
        newer(
            self.version(),
            self.origin(),
            other.version(),
            other.origin(),
        )
    }
}

/// LWW order (cluster.md §4): `(v1, o1)` is newer than `(v2, o2)`.
pub fn newer(v1: u64, o1: &str, v2: u64, o2: &str) -> bool {
    lww_cmp((v1, o1), (v2, o2)) == Ordering::Greater
}

/// LWW order (cluster.md §4): `Greater` iff `a` is newer than `b`, i.e. a higher version, or an
/// equal version and a byte-wise smaller origin. `Equal` means the same write. The one place the
/// rule is written: the shard's apply, the quorum tracker, read resolution and anti-entropy all
/// come here.
pub fn lww_cmp(a: (u64, &str), b: (u64, &str)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| b.1.as_bytes().cmp(a.1.as_bytes()))
}

/// Outcome of applying an incoming entry (cluster.md §4).
#[derive(Debug, Clone)]
pub enum ApplyStatus {
    Applied,
    /// Same entry held, or a repair skipped by the capacity rule.
    Ignored,
    /// The local entry is newer: its version and origin.
    Newer(u64, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_by_bytes_and_share_their_buffer() {
        let v = Value::from(b"abc".to_vec());
        let w = v.clone();
        assert_eq!(w.as_slice().as_ptr(), v.as_slice().as_ptr());
        assert_eq!(v, Value::from(b"abc".to_vec()));
        assert_eq!(Value::default(), Value::from(Vec::new()));
        assert!(Value::default().is_empty());
        assert_eq!(format!("{v:?}"), "Value(b\"abc\")");
        assert!(format!("{:?}", Value::from(vec![0; 100])).starts_with("Value(100 bytes"));
    }

    fn item(version: u64, origin: &str) -> Entry {
        Entry::Item {
            value: b"v".to_vec().into(),
            version,
            origin: origin.into(),
            expires_at_ms: 0,
        }
    }

    /// cluster.md §4: the higher version wins; at equal versions the byte-wise smaller origin
    /// wins; the same (version, origin) is the same write, newer in neither direction.
    #[test]
    fn lww_order() {
        assert!(newer(2, "b", 1, "a"));
        assert!(!newer(1, "a", 2, "b"));
        assert!(newer(5, "node-1", 5, "node-2"));
        assert!(!newer(5, "node-2", 5, "node-1"));
        assert!(!newer(5, "node-1", 5, "node-1"));
        assert_eq!(lww_cmp((5, "n"), (5, "n")), Ordering::Equal);
        // Byte-wise, not by length: "node-10" < "node-9".
        assert!(newer(7, "node-10", 7, "node-9"));
    }

    #[test]
    fn newest_takes_the_first_of_equals_and_tombstones_count() {
        let t = Entry::Tombstone {
            version: 9,
            origin: "z".into(),
            deleted_at_ms: 1,
        };
        let a = item(3, "a");
        let b = item(9, "y");
        assert_eq!(Entry::newest([&a, &t, &b]), Some(&b));
        assert_eq!(Entry::newest([&a, &t]), Some(&t));
        assert_eq!(Entry::newest([&a, &a.clone()]), Some(&a));
        assert_eq!(Entry::newest(std::iter::empty()), None);
        assert!(!t.is_live(0));
    }
}
