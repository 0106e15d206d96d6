//! `/dist/metrics`: the Go server's `DistMetrics` field names (ops.md §1.5).
//!
//! One table drives the JSON object and the Prometheus families, so the two
//! can never disagree and a unit test can reject duplicate names.

use std::cell::Cell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}
use Kind::{Counter as C, Gauge as G};

/// Every numeric field, in the Go struct's order. `LastAutoSyncError` (a
/// string) is emitted after `LastAutoSyncNanos` by the JSON writer.
pub const FIELDS: &[(&str, Kind)] = &[
    ("ForwardGet", C),
    ("ForwardSet", C),
    ("ForwardRemove", C),
    ("ReplicaFanoutSet", C),
    ("ReplicaFanoutRemove", C),
    ("ReadRepair", C),
    ("ReadRepairBatched", C),
    ("ReadRepairCoalesced", C),
    ("ReplicaGetMiss", C),
    ("ReadPrimaryPromote", C),
    ("HeartbeatSuccess", C),
    ("HeartbeatFailure", C),
    ("IndirectProbeSuccess", C),
    ("IndirectProbeFailure", C),
    ("IndirectProbeRefuted", C),
    ("NodesSuspect", C),
    ("NodesDead", C),
    ("NodesRemoved", C),
    ("Drains", C),
    ("VersionConflicts", C),
    ("VersionTieBreaks", C),
    ("WriteAttempts", C),
    ("WriteAcks", C),
    ("WriteQuorumFailures", C),
    ("WriteApplyRefused", C),
    ("WriteForwardPromotion", C),
    ("HintedQueued", C),
    ("HintedReplayed", C),
    ("HintedExpired", C),
    ("HintedDropped", C),
    ("HintedGlobalDropped", C),
    ("HintedBytes", G),
    ("MigrationHintQueued", C),
    ("MigrationHintReplayed", C),
    ("MigrationHintExpired", C),
    ("MigrationHintDropped", C),
    ("MigrationHintLastAgeNanos", G),
    ("MerkleSyncs", C),
    ("MerkleKeysPulled", C),
    ("MerkleBuildNanos", G),
    ("MerkleDiffNanos", G),
    ("MerkleFetchNanos", G),
    ("AutoSyncLoops", C),
    ("AutoSyncCleanTicks", C),
    ("LastAutoSyncNanos", G),
    ("AutoSyncBackoffFactor", G),
    ("ChaosDrops", C),
    ("ChaosLatencies", C),
    ("TombstonesActive", G),
    ("TombstonesPurged", C),
    ("RebalancedKeys", C),
    ("RebalanceBatches", C),
    ("RebalanceThrottle", C),
    ("RebalancedPrimary", C),
    ("RebalancedReplicaDiff", C),
    ("RebalanceReplicaDiffThrottle", C),
    ("RebalanceLastNanos", G),
    ("MembershipVersion", G),
    ("MembersAlive", G),
    ("MembersSuspect", G),
    ("MembersDead", G),
    ("MembersLeft", G),
    ("LocalHealth", G),
    ("RebalanceHandoffDrops", C),
    ("MerkleKeysPushed", C),
    // Additions for alerting (docs/operations.md): reads answered 503 QUORUM_FAILED, failed
    // anti-entropy exchanges, the longest per-target hint queue and both hint caps.
    ("ReadQuorumFailures", C),
    ("AutoSyncFailures", C),
    ("HintedQueueLongest", G),
    ("HintedQueueCap", G),
    ("HintedBytesCap", G),
];

pub const N: usize = FIELDS.len();

/// Index of a field by name: a table scan with string compares, so call it in a const block
/// (`const { idx("WriteAcks") }`), which also makes an unknown name a build error. Called
/// plainly, the compiler may leave the scan in: a profile of the replicated PUT found it run
/// per write where the name was chosen by an `if`.
pub const fn idx(name: &str) -> usize {
    let mut i = 0;
    while i < N {
        if eq(FIELDS[i].0.as_bytes(), name.as_bytes()) {
            return i;
        }
        i += 1;
    }
    panic!("unknown dist metric");
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Values held by the control core.
pub struct DistMetrics {
    pub values: [Cell<u64>; N],
    pub last_auto_sync_error: std::cell::RefCell<String>,
}

impl Default for DistMetrics {
    fn default() -> Self {
        DistMetrics {
            values: std::array::from_fn(|_| Cell::new(0)),
            last_auto_sync_error: Default::default(),
        }
    }
}

impl DistMetrics {
    pub fn add(&self, field: usize, n: u64) {
        let c = &self.values[field];
        c.set(c.get() + n);
    }
    pub fn set(&self, field: usize, v: u64) {
        self.values[field].set(v);
    }
    pub fn get(&self, field: usize) -> u64 {
        self.values[field].get()
    }
}

/// `HeartbeatSuccess` -> `heartbeat_success`.
pub fn snake(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 8);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Prometheus name of a field (ops.md §1.8) and whether its value is in ns
/// to be exported as seconds.
pub fn prom_name(name: &str, kind: Kind) -> (String, bool) {
    let base = snake(name);
    if kind == Kind::Gauge {
        if let Some(stem) = base.strip_suffix("_nanos") {
            return (format!("hypercache_dist_{stem}_seconds"), true);
        }
    }
    match kind {
        Kind::Counter => (format!("hypercache_dist_{base}_total"), false),
        Kind::Gauge => (format!("hypercache_dist_{base}"), false),
    }
}

/// Writes the JSON object, Go field names, `LastAutoSyncError` as a string.
pub fn write_json(out: &mut Vec<u8>, values: &[u64; N], last_error: &str) {
    out.push(b'{');
    for (i, (name, _)) in FIELDS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(values[i].to_string().as_bytes());
        if *name == "LastAutoSyncNanos" {
            out.extend_from_slice(b",\"LastAutoSyncError\":");
            crate::http::response::json_str(out, last_error);
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_mapped() {
        let mut seen = std::collections::HashSet::new();
        for (name, kind) in FIELDS {
            assert!(seen.insert(prom_name(name, *kind).0), "duplicate {name}");
        }
        assert_eq!(
            prom_name("ForwardGet", C).0,
            "hypercache_dist_forward_get_total"
        );
        assert_eq!(
            prom_name("HintedBytes", G).0,
            "hypercache_dist_hinted_bytes"
        );
        assert_eq!(
            prom_name("RebalanceLastNanos", G),
            ("hypercache_dist_rebalance_last_seconds".to_string(), true)
        );
    }

    #[test]
    fn json_has_every_field() {
        let mut out = Vec::new();
        write_json(&mut out, &[0; N], "");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_object().unwrap().len(), N + 1);
        assert_eq!(v["LastAutoSyncError"], "");
        assert_eq!(v["MerkleKeysPushed"], 0);
    }
}
