//! The peer token of the dist listener (cluster.md §12.1): exactly one
//! `Authorization: Bearer <HYPERCACHE_AUTH_TOKEN>`, or no check when unset.
//! The policy file never applies here (security.md §6).

use super::resolve::ct_eq;

/// The expected `Authorization` value, precomputed once per listener.
#[derive(Clone)]
pub struct PeerToken {
    expected: Option<Vec<u8>>,
}

impl PeerToken {
    pub fn new(token: Option<&str>) -> PeerToken {
        PeerToken {
            expected: token.map(|t| format!("Bearer {t}").into_bytes()),
        }
    }

    /// True when the request may pass: no token configured, or exactly one
    /// header whose whole value equals `Bearer <token>` (constant-time).
    pub fn allows(&self, value: Option<&[u8]>, count: u8) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        let Some(v) = value else { return false };
        count == 1 && ct_eq(v, expected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_rules() {
        let a = PeerToken::new(Some("dev-token"));
        assert!(a.allows(Some(b"Bearer dev-token"), 1));
        assert!(!a.allows(Some(b"Bearer dev-token"), 2));
        assert!(!a.allows(Some(b"bearer dev-token"), 1));
        assert!(!a.allows(Some(b"Bearer  dev-token"), 1));
        assert!(!a.allows(Some(b"Bearer dev-toke"), 1));
        assert!(!a.allows(Some(b"Bearer dev-token2"), 1));
        assert!(!a.allows(None, 0));
        assert!(PeerToken::new(None).allows(None, 0));
    }
}
