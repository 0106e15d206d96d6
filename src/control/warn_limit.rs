//! At most one warning per peer and second for failed peer writes (pure: `now` in).
//!
//! With an owner down, every replicated write used to log its own
//! `write to <owner> (<addr>) failed: …` line: hundreds of lines a second at a
//! modest write rate, burying everything else in the log. The first failure
//! per peer and second is still logged at once (the runbook and operators grep
//! for it); the ones after it in that second are counted and reported on the
//! next line that is logged (`; <n> more since the last line`).

use std::collections::HashMap;

/// The quiet period after a logged line, per peer.
const EVERY_MS: u64 = 1000;

#[derive(Default)]
pub struct WarnLimit {
    /// Peer → (when its last line was logged, failures suppressed since).
    last: HashMap<String, (u64, u64)>,
}

impl WarnLimit {
    /// Some(n) when a line about `peer` may be logged now, `n` being how many were
    /// suppressed since the previous one; None when this one is to be suppressed.
    pub fn admit(&mut self, peer: &str, now_ms: u64) -> Option<u64> {
        match self.last.get_mut(peer) {
            Some((at, suppressed)) if now_ms.saturating_sub(*at) < EVERY_MS => {
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
        let mut w = WarnLimit::default();
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
