//! Credential resolution, security.md §6: pure, so every branch is unit-tested.
//!
//! The steps run in the contract's order and the first that matches wins:
//! several `Authorization` fields → refused; a static bearer token (compared
//! with every token, in constant time); Basic (only on TLS or with
//! `allow_basic_without_tls`); the verified client certificate's CN; OIDC (the
//! caller verifies the JWT, [`Step::VerifyJwt`]);
//! anonymous when no `Authorization` field was sent and the policy allows it.
//! bcrypt is the one step that cannot run here (it takes ~50 ms): the caller
//! says what it already knows about a Basic credential, and otherwise gets
//! [`Step::VerifyBasic`] back and runs it off the executor (`gate.rs`).

use base64::Engine;

use super::policy::Policy;
use super::{ConnFacts, Principal, Scopes};

/// The static identities of one listener.
pub struct Authenticator {
    open: bool,
    /// `Bearer <token>` as sent, and whose it is.
    tokens: Vec<(Vec<u8>, Principal)>,
    users: Vec<User>,
    certs: Vec<(String, Principal)>,
    anonymous: Option<Principal>,
    basic_without_tls: bool,
    /// OIDC is configured: an unmatched bearer token may be a JWT (step 5).
    oidc: bool,
}

pub struct User {
    pub username: Vec<u8>,
    pub hash: String,
    pub principal: Principal,
}

/// What resolution decided.
#[derive(Debug, PartialEq)]
pub enum Step<'a> {
    Granted(&'a Principal),
    /// Basic credentials whose bcrypt outcome is not known yet: `user` is the
    /// matching entry (None: unknown username, still costs one bcrypt).
    VerifyBasic {
        user: Option<usize>,
        password: Vec<u8>,
    },
    /// Answer 401; `basic_on_plaintext` says a Basic field was refused for
    /// lack of TLS (the caller logs the rate-limited warning).
    Refused {
        basic_on_plaintext: bool,
    },
    /// A bearer token that matched no static token, with OIDC on: the caller
    /// verifies it as a JWT (`gate.rs`, `oidc/verify.rs`).
    VerifyJwt,
}

fn anonymous() -> Principal {
    Principal {
        id: "anonymous".into(),
        scopes: Scopes::ALL,
    }
}

impl Authenticator {
    /// From the policy file when set, else `HYPERCACHE_AUTH_TOKEN` as the
    /// token `default` with every scope, else open mode.
    pub fn new(policy: Option<&Policy>, token: Option<&str>, oidc: bool) -> Authenticator {
        let bearer = |t: &str| format!("Bearer {t}").into_bytes();
        let mut a = Authenticator {
            open: false,
            tokens: Vec::new(),
            users: Vec::new(),
            certs: Vec::new(),
            anonymous: None,
            basic_without_tls: false,
            oidc,
        };
        match (policy, token) {
            (Some(p), _) => {
                let pr = |id: &str, scopes| Principal {
                    id: id.to_string(),
                    scopes,
                };
                a.tokens = p
                    .tokens
                    .iter()
                    .map(|t| (bearer(&t.token), pr(&t.id, t.scopes)))
                    .collect();
                a.users = p
                    .users
                    .iter()
                    .map(|u| User {
                        username: u.username.as_bytes().to_vec(),
                        hash: u.password_bcrypt.clone(),
                        principal: pr(&u.id, u.scopes),
                    })
                    .collect();
                a.certs = p
                    .cert_identities
                    .iter()
                    .map(|c| (c.subject_cn.clone(), pr(&c.subject_cn, c.scopes)))
                    .collect();
                a.anonymous = p.allow_anonymous.then(anonymous);
                a.basic_without_tls = p.allow_basic_without_tls;
            }
            (None, Some(t)) => {
                a.tokens = vec![(bearer(t), pr_default())];
            }
            (None, None) if !oidc => {
                a.open = true;
                a.anonymous = Some(anonymous());
            }
            (None, None) => {}
        }
        a
    }

    /// The policy has Basic users (the 401 then also offers Basic).
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    pub fn user(&self, i: usize) -> &User {
        &self.users[i]
    }

    /// Runs §6's steps. `known(value)` tells what an earlier bcrypt run said
    /// about this exact Basic field value (None: never verified).
    pub fn resolve(
        &self,
        authz: Option<&[u8]>,
        count: u8,
        conn: ConnFacts<'_>,
        known: impl Fn(&[u8]) -> Option<bool>,
    ) -> Step<'_> {
        let anon = self.anonymous.as_ref();
        if self.open {
            return Step::Granted(anon.expect("open mode has the anonymous principal"));
        }
        if count > 1 {
            return Step::Refused {
                basic_on_plaintext: false,
            };
        }
        let mut basic_on_plaintext = false;
        let mut bearer_unmatched = false;
        if let Some(v) = authz {
            if v.starts_with(b"Bearer ") {
                // Every token is compared, so timing does not reveal which matched.
                let mut found = None;
                for (t, p) in &self.tokens {
                    if ct_eq(v, t) && found.is_none() {
                        found = Some(p);
                    }
                }
                if let Some(p) = found {
                    return Step::Granted(p);
                }
                bearer_unmatched = true;
            } else if let Some(b64) = v.strip_prefix(b"Basic ") {
                if conn.tls || self.basic_without_tls {
                    if let Some((name, password)) = split_basic(b64) {
                        let user = self.users.iter().position(|u| u.username == name);
                        match (known(v), user) {
                            (Some(true), Some(i)) => {
                                return Step::Granted(&self.users[i].principal)
                            }
                            (Some(_), _) => {}
                            (None, user) => return Step::VerifyBasic { user, password },
                        }
                    }
                } else {
                    basic_on_plaintext = true;
                }
            }
        }
        if let Some(cn) = conn.peer_cn {
            if let Some((_, p)) = self.certs.iter().find(|(c, _)| c == cn) {
                return Step::Granted(p);
            }
        }
        if self.oidc && bearer_unmatched {
            return Step::VerifyJwt;
        }
        match (authz, anon) {
            (None, Some(p)) => Step::Granted(p),
            _ => Step::Refused { basic_on_plaintext },
        }
    }
}

fn pr_default() -> Principal {
    Principal {
        id: "default".into(),
        scopes: Scopes::ALL,
    }
}

/// `<b64>` of a Basic field: blanks around it ignored, standard base64 with
/// padding, split at the first `:`.
fn split_basic(b64: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let t = b64.trim_ascii();
    let raw = base64::engine::general_purpose::STANDARD.decode(t).ok()?;
    let colon = raw.iter().position(|&c| c == b':')?;
    Some((raw[..colon].to_vec(), raw[colon + 1..].to_vec()))
}

/// Compares without an early exit, so timing does not reveal how long a
/// matching prefix was.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}
