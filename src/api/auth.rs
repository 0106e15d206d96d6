//! Bearer-token check shared by every listener (api.md §1.1).

/// The expected `Authorization` value, precomputed once per listener.
#[derive(Clone)]
pub struct Auth {
    expected: Option<Vec<u8>>,
}

impl Auth {
    pub fn new(token: Option<&str>) -> Auth {
        Auth {
            expected: token.map(|t| format!("Bearer {t}").into_bytes()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.expected.is_some()
    }

    /// True when the request may pass: auth off, or exactly one header whose
    /// whole value equals `Bearer <token>` (constant-time over the value).
    pub fn allows(&self, value: Option<&[u8]>, count: u8) -> bool {
        let Some(expected) = &self.expected else {
            return true;
        };
        let Some(v) = value else { return false };
        count == 1 && ct_eq(v, expected)
    }
}

/// Compares without an early exit, so timing does not reveal how long a
/// matching prefix was.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_rules() {
        let a = Auth::new(Some("dev-token"));
        assert!(a.allows(Some(b"Bearer dev-token"), 1));
        assert!(!a.allows(Some(b"Bearer dev-token"), 2));
        assert!(!a.allows(Some(b"bearer dev-token"), 1));
        assert!(!a.allows(Some(b"Bearer  dev-token"), 1));
        assert!(!a.allows(Some(b"Bearer dev-toke"), 1));
        assert!(!a.allows(None, 0));
        assert!(Auth::new(None).allows(None, 0));
    }
}
