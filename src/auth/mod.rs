//! Who may call what on the client and management listeners (security.md §5–§9).
//!
//! - `yaml.rs`: the policy file's YAML as a tree that keeps scalars as written.
//! - `policy.rs`: `HYPERCACHE_AUTH_CONFIG` validated into a [`policy::Policy`]
//!   (every start-up message of §5).
//! - `resolve.rs`: the pure credential resolution of §6: headers and connection
//!   facts in, a [`Principal`] or a refusal out.
//! - `gate.rs`: the per-core, per-listener driver: the Basic credential cache,
//!   bcrypt off the executor, the plaintext-Basic warning, 401/403 bodies, the
//!   cache of verified JWTs.
//! - `oidc/`: discovery, the shared JWKS key set and its refresher thread, the
//!   pure JWT checks (security.md §7).
//!
//! The dist listener is not here: it accepts only the peer token (cluster.md §12.1).

pub mod gate;
pub mod oidc;
pub mod peer;
pub mod policy;
pub mod resolve;
mod yaml;

#[cfg(test)]
mod tests_policy;

/// A set of the three independent scopes (`write` does not imply `read`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Scopes = Scopes(0);
    pub const READ: Scopes = Scopes(1);
    pub const WRITE: Scopes = Scopes(2);
    pub const ADMIN: Scopes = Scopes(4);
    pub const ALL: Scopes = Scopes(7);

    /// The scope of a policy or JWT name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Scopes> {
        match name {
            "read" => Some(Scopes::READ),
            "write" => Some(Scopes::WRITE),
            "admin" => Some(Scopes::ADMIN),
            _ => None,
        }
    }

    pub fn with(self, other: Scopes) -> Scopes {
        Scopes(self.0 | other.0)
    }

    /// True when every scope of `needed` is present.
    pub fn has(self, needed: Scopes) -> bool {
        self.0 & needed.0 == needed.0
    }

    /// Names in the order read, write, admin (security.md §9).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        [
            (Scopes::READ, "read"),
            (Scopes::WRITE, "write"),
            (Scopes::ADMIN, "admin"),
        ]
        .into_iter()
        .filter(move |(s, _)| self.has(*s))
        .map(|(_, n)| n)
    }
}

/// An authenticated caller: the identity `/v1/me` reports and its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub scopes: Scopes,
}

/// The identity a request resolved to: a static one of the policy, or one a JWT
/// carried (shared with the gate's cache of verified tokens, so no copy per request).
#[derive(Debug, PartialEq, Eq)]
pub enum Who<'a> {
    Static(&'a Principal),
    Token(std::rc::Rc<Principal>),
}

impl std::ops::Deref for Who<'_> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        match self {
            Who::Static(p) => p,
            Who::Token(p) => p,
        }
    }
}

/// What the connection itself proves (security.md §6 steps 3 and 4).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnFacts<'a> {
    /// The connection completed a TLS handshake.
    pub tls: bool,
    /// Subject CN (the last CN attribute) of the verified client certificate.
    pub peer_cn: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_independent_and_ordered() {
        let rw = Scopes::WRITE.with(Scopes::READ);
        assert!(rw.has(Scopes::READ) && rw.has(Scopes::WRITE) && !rw.has(Scopes::ADMIN));
        assert!(!Scopes::WRITE.has(Scopes::READ));
        assert_eq!(
            Scopes::ADMIN.with(Scopes::READ).names().collect::<Vec<_>>(),
            ["read", "admin"]
        );
        assert_eq!(Scopes::parse("Read"), None);
    }
}
