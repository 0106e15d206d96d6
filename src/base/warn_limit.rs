//! At most one warning per subject and period (pure: `now` in).
//!
//! Used for failed peer writes (1 s per peer: with an owner down, every
//! replicated write used to log its own `write to <owner> (<addr>) failed: …`
//! line) and for TLS handshake failures (30 s per remote IP or peer,
//! security.md §3). The first event per subject and period is logged at once
//! (the runbook and operators grep for it); the ones after it are counted and
//! reported on the next line that is logged (`; <n> more since the last line`).

use std::collections::HashMap;

pub struct WarnLimit {
    /// The quiet period after a logged line, per subject.
    every_ms: u64,
    /// Subject → (when its last line was logged, events suppressed since).
    last: HashMap<String, (u64, u64)>,
}

impl WarnLimit {
    pub fn new(every: std::time::Duration) -> WarnLimit {
        WarnLimit {
            every_ms: every.as_millis() as u64,
            last: HashMap::new(),
        }
    }

    /// Some(n) when a line about `peer` may be logged now, `n` being how many were
    /// suppressed since the previous one; None when this one is to be suppressed.
    pub fn admit(&mut self, peer: &str, now_ms: u64) -> Option<u64> {
        match self.last.get_mut(peer) {
            Some((at, suppressed)) if now_ms.saturating_sub(*at) < self.every_ms => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                let n = *suppressed;
                *at = now_ms;
                *suppressed = 0;
                Some(n)
            }
            None => {
                if self.last.len() >= 4096 {
                    self.last.clear();
                }
                self.last.insert(peer.to_string(), (now_ms, 0));
                Some(0)
            }
        }
    }

    /// `line`, with the suppressed count appended when there was any.
    pub fn line(suppressed: u64, line: String) -> String {
        if suppressed == 0 {
            line
        } else {
            format!("{line}; {suppressed} more since the last line")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_peer_and_second_with_the_count_of_the_rest() {
        let mut w = WarnLimit::new(std::time::Duration::from_secs(1));
        assert_eq!(w.admit("node-3", 10_000), Some(0));
        for t in 10_001..10_300 {
            assert_eq!(w.admit("node-3", t), None);
        }
        // Another peer is not held back by node-3.
        assert_eq!(w.admit("node-2", 10_500), Some(0));
        assert_eq!(w.admit("node-3", 10_999), None);
        assert_eq!(w.admit("node-3", 11_000), Some(300));
        assert_eq!(w.admit("node-3", 12_500), Some(0));
        assert_eq!(WarnLimit::line(0, "x".into()), "x");
        assert_eq!(
            WarnLimit::line(3, "x".into()),
            "x; 3 more since the last line"
        );
    }
}
