//! Hybrid logical clock (cluster.md §4).
//!
//! `version = max(wall_ms << 16, last_issued + 1, last_observed + 1)`. The wall term makes
//! versions survive restarts (the clock has moved on) and read as Unix ms (`version >> 16`); the
//! two `+ 1` terms keep them strictly increasing across backward clock steps and above every
//! version seen from a peer. State may be per data core: every operation on a key runs on that
//! key's core, and the guarantee is per key.

/// One core's clock. Pure: the caller passes the wall time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hlc {
    last_issued: u64,
    last_observed: u64,
}

impl Hlc {
    pub fn new() -> Hlc {
        Hlc::default()
    }

    /// Issues the next version for a write or delete coordinated here.
    pub fn next(&mut self, wall_ms: u64) -> u64 {
        let version = (wall_ms << 16)
            .max(self.last_issued.saturating_add(1))
            .max(self.last_observed.saturating_add(1));
        self.last_issued = version;
        version
    }

    /// Raises `last_observed` to `version` (every version seen from a peer).
    pub fn observe(&mut self, version: u64) {
        self.last_observed = self.last_observed.max(version);
    }

    /// The Unix ms a version was issued at (`last_updated`, identical on every replica).
    pub fn wall_ms(version: u64) -> u64 {
        version >> 16
    }

    /// Whether a version from a peer is one a sane clock could have issued by `now_ms`: at most
    /// [`MAX_CLOCK_AHEAD_MS`] ahead. A version far in the future would win every later write of
    /// its key until the wall clock caught up (and `u64::MAX` for ever, since `next` saturates),
    /// so the peer protocol refuses it instead of storing it.
    pub fn plausible(version: u64, now_ms: u64) -> bool {
        Self::wall_ms(version) <= now_ms.saturating_add(MAX_CLOCK_AHEAD_MS)
    }
}

/// How far ahead of this node's clock a peer's version may be (docs/cluster.md, "Peer input").
pub const MAX_CLOCK_AHEAD_MS: u64 = 60 * 60 * 1000;

#[cfg(test)]
mod tests {
    use super::*;

    const WALL: u64 = 1_764_140_000_000;

    #[test]
    fn spec_example() {
        let mut h = Hlc::new();
        assert_eq!(h.next(WALL), 115_614_679_040_000_000);
        assert_eq!(h.last_issued, 0x019a_bef0_2300_0000);
        let mut h = Hlc::new();
        h.observe(115_614_679_040_000_005);
        assert_eq!(h.next(WALL), 115_614_679_040_000_006);
        // Observing an older version changes nothing.
        h.observe(1);
        assert_eq!(h.next(WALL), 115_614_679_040_000_007);
    }

    #[test]
    fn wall_ms_and_plausible() {
        assert_eq!(Hlc::wall_ms(115_614_679_040_000_000), WALL);
        assert!(Hlc::plausible(WALL << 16, WALL));
        assert!(Hlc::plausible((WALL + MAX_CLOCK_AHEAD_MS) << 16, WALL));
        assert!(!Hlc::plausible((WALL + MAX_CLOCK_AHEAD_MS + 1) << 16, WALL));
        assert!(!Hlc::plausible(u64::MAX, WALL));
        // Go senders' small counter versions are plausible.
        assert!(Hlc::plausible(1, WALL));
    }

    #[test]
    fn monotonic_across_backward_step() {
        let mut h = Hlc::new();
        let a = h.next(WALL);
        let b = h.next(WALL - 5_000);
        let c = h.next(WALL - 10_000);
        assert!(a < b && b < c);
        // Once the wall clock passes the issued versions again, the wall term leads.
        assert_eq!(h.next(WALL + 1), (WALL + 1) << 16);
    }
}
