//! Anti-entropy decisions (cluster.md §10) as pure functions and one small state machine:
//! which peer is next, which leaves differ, and which keys to pull and push. `ae.rs` is the
//! driver: it fetches the peer's leaves and digests and carries out the [`Plan`].
//!
//! Last-write-wins in both directions: for every key of a differing leaf, the side with the
//! newer (version, origin) gives its entry to the other, tombstones included (a newer tombstone
//! is pulled or pushed like a value, so a delete beats the older value on the other side and an
//! older tombstone never hides a newer value). Keys in leaves that agree are never compared.

use std::collections::HashMap;

use crate::base::hash::xxhash64;
use crate::dist::ae::{leaf_of, Digest, LEAVES};
use crate::store::entry::newer;

/// What one exchange does for the differing leaves.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Keys whose newer entry (or only entry) is on the peer.
    pub pull: Vec<String>,
    /// Keys whose newer entry (or only entry) is here.
    pub push: Vec<String>,
}

/// The leaf indexes where the peer's leaf hashes (16 hex digits each, all [`LEAVES`] of them)
/// differ from ours, ascending. A malformed answer is an error, never "everything differs".
pub fn differing_leaves(mine: &[u64; LEAVES], theirs: &[String]) -> Result<Vec<usize>, String> {
    if theirs.len() != LEAVES {
        return Err(format!(
            "leaves: {} hashes, expected {LEAVES}",
            theirs.len()
        ));
    }
    let mut diff = Vec::new();
    for (i, t) in theirs.iter().enumerate() {
        let t = u64::from_str_radix(t, 16).map_err(|_| format!("leaves: malformed hash {t:?}"))?;
        if t != mine[i] {
            diff.push(i);
        }
    }
    Ok(diff)
}

/// Compares our digests with the peer's for the keys in `diff` (ascending leaf indexes).
/// `theirs` holds only keys of those leaves (the peer filtered them).
pub fn plan(mine: &[Digest], theirs: Vec<Digest>, diff: &[usize]) -> Plan {
    let mut theirs: HashMap<String, Digest> =
        theirs.into_iter().map(|d| (d.key.clone(), d)).collect();
    let in_diff = |k: &str| {
        diff.binary_search(&leaf_of(xxhash64(k.as_bytes(), 0)))
            .is_ok()
    };
    let mut p = Plan::default();
    for d in mine.iter().filter(|d| in_diff(&d.key)) {
        match theirs.remove(&d.key) {
            None => p.push.push(d.key.clone()),
            Some(t) if newer(t.version, &t.origin, d.version, &d.origin) => {
                p.pull.push(d.key.clone())
            }
            Some(t) if newer(d.version, &d.origin, t.version, &t.origin) => {
                p.push.push(d.key.clone())
            }
            Some(_) => {}
        }
    }
    let mut only_theirs: Vec<String> = theirs.into_keys().collect();
    only_theirs.sort_unstable();
    p.pull.extend(only_theirs);
    p
}

/// Which peer to exchange with next: every alive ring peer once per pass, in a new shuffled
/// order each pass, skipping one that stopped being alive since the pass began.
pub struct Schedule {
    order: Vec<String>,
    rng: fastrand::Rng,
}

impl Schedule {
    pub fn new(seed: u64) -> Schedule {
        Schedule {
            order: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The next peer, given the alive ring peers now. None when there is none this tick.
    pub fn next(&mut self, alive: &[String]) -> Option<String> {
        if self.order.is_empty() {
            self.order = alive.to_vec();
            self.rng.shuffle(&mut self.order);
        }
        let peer = self.order.pop()?;
        alive.contains(&peer).then_some(peer)
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
