//! The per-core driver around [`Authenticator`]: Basic verification off the
//! executor and a cache of verified Basic credentials (security.md §6 step 3).
//!
//! bcrypt at cost 10 takes ~50 ms of CPU: run on a data core it would stall
//! every request on that core. So a Basic field the core has not seen is
//! verified on glommio's blocking thread pool while the request waits, and the
//! outcome is remembered under the SHA-256 of the whole field value. A client
//! that sends the same Basic field on every request (as curl and SDKs do) pays
//! bcrypt once per core; the policy cannot change while the process runs
//! (SIGHUP does not re-read it), so a remembered outcome never goes stale.
//! The cache is bounded: when full it is cleared (a flood of wrong passwords
//! costs the blocking pool, never the cores). Decision: docs/security.md.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::oidc::verify::{verify, Outcome};
use super::oidc::Oidc;
use super::resolve::{Authenticator, Step};
use super::{ConnFacts, Principal, Who};

/// Remembered Basic outcomes per core and listener.
const CACHE_MAX: usize = 4096;

/// Hash checked for an unknown username, so it costs one bcrypt at cost 10
/// like a wrong password (security.md §6). Its password is irrelevant: the
/// result is discarded.
const DUMMY_HASH: &str = "$2b$10$ZYKUJCQjt8kvZj9hNmSd2eVsx5yVZ4htCWEtOArbkMguHm8ozIkiS";

/// Last plaintext-Basic warning per listener (ms since the epoch).
static LAST_WARN: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Listener {
    Client,
    Mgmt,
}

impl Listener {
    pub fn name(self) -> &'static str {
        match self {
            Listener::Client => "client",
            Listener::Mgmt => "mgmt",
        }
    }
}

pub struct Gate {
    auth: Authenticator,
    listener: Listener,
    verified: RefCell<HashMap<[u8; 32], bool>>,
    oidc: Option<Arc<Oidc>>,
    /// Verified JWTs by the SHA-256 of the field value: the identity, its `exp` and the
    /// key-set generation that verified it (a new key set drops keys the IdP removed,
    /// so entries of an older generation no longer count).
    tokens: RefCell<HashMap<[u8; 32], VerifiedJwt>>,
}

/// A verified JWT's identity, its `exp` (Unix s) and the key-set generation that verified it.
type VerifiedJwt = (Rc<Principal>, f64, u64);

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn key(value: &[u8]) -> [u8; 32] {
    Sha256::digest(value).into()
}

impl Gate {
    pub fn new(auth: Authenticator, listener: Listener, oidc: Option<Arc<Oidc>>) -> Gate {
        Gate {
            auth,
            listener,
            verified: RefCell::new(HashMap::new()),
            oidc,
            tokens: RefCell::new(HashMap::new()),
        }
    }

    /// A remembered JWT identity still valid now under the current key set.
    fn known_token(&self, value: &[u8]) -> Option<Rc<Principal>> {
        let gen = self.oidc.as_ref()?.generation();
        let tokens = self.tokens.borrow();
        let (p, exp, g) = tokens.get(&key(value))?;
        (*g == gen && now_s() <= *exp).then(|| p.clone())
    }

    /// Verifies a bearer JWT (security.md §7), waiting up to 5 s for a key refresh when
    /// the key set may be stale; remembers a valid one.
    async fn settle_jwt(&self, value: &[u8]) {
        let Some(oidc) = &self.oidc else { return };
        if self.known_token(value).is_some() {
            return;
        }
        let Some(token) = std::str::from_utf8(&value[b"Bearer ".len()..]).ok() else {
            return;
        };
        let (mut gen, mut keys) = oidc.keys();
        let mut outcome = verify(token, &keys, &oidc.settings, now_s());
        if outcome == Outcome::Refresh {
            if let Some(done) = oidc.request_refresh() {
                let deadline = std::time::Instant::now() + super::oidc::WAIT;
                while oidc.completed() <= done && std::time::Instant::now() < deadline {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                (gen, keys) = oidc.keys();
                outcome = verify(token, &keys, &oidc.settings, now_s());
            }
        }
        match outcome {
            Outcome::Valid(p, exp) => {
                let mut t = self.tokens.borrow_mut();
                if t.len() >= CACHE_MAX {
                    t.clear();
                }
                t.insert(key(value), (Rc::new(p), exp, gen));
            }
            Outcome::Refresh => log::debug!("jwt refused: no key of the current set verifies it"),
            Outcome::Invalid(why) => log::debug!("jwt refused: {why}"),
        }
    }

    /// The 401 also offers Basic.
    pub fn offers_basic(&self) -> bool {
        self.auth.has_users()
    }

    fn step(&self, authz: Option<&[u8]>, count: u8, conn: ConnFacts<'_>) -> Step<'_> {
        let cache = &self.verified;
        self.auth
            .resolve(authz, count, conn, |v| cache.borrow().get(&key(v)).copied())
    }

    /// Runs the bcrypt check `identify` will need, off the executor; called
    /// before `identify` for every request. Only a Basic field can need it, so
    /// every other request returns at once without resolving twice.
    pub async fn settle(&self, authz: Option<&[u8]>, count: u8, conn: ConnFacts<'_>) {
        let Some(v) = authz else { return };
        // With OIDC on, only a bearer value shaped like a compact JWS (two dots) can need
        // verifying; a static token is resolved by `identify` alone, not compared twice.
        let bearer = self.oidc.is_some()
            && v.starts_with(b"Bearer ")
            && v.iter().filter(|&&b| b == b'.').count() == 2;
        if !bearer && !v.starts_with(b"Basic ") {
            return;
        }
        let (user, password) = match self.step(authz, count, conn) {
            Step::VerifyBasic { user, password } => (user, password),
            Step::VerifyJwt => return self.settle_jwt(v).await,
            _ => return,
        };
        let hash = match user {
            Some(i) => self.auth.user(i).hash.clone(),
            None => DUMMY_HASH.to_string(),
        };
        let ok = glommio::executor()
            .spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
            .await;
        let ok = ok && user.is_some();
        let mut cache = self.verified.borrow_mut();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        if let Some(v) = authz {
            cache.insert(key(v), ok);
        }
    }

    /// The caller's identity, or None for a 401. Never waits: a Basic field
    /// not yet verified by `settle` does not match.
    pub fn identify(
        &self,
        authz: Option<&[u8]>,
        count: u8,
        conn: ConnFacts<'_>,
    ) -> Option<Who<'_>> {
        match self.step(authz, count, conn) {
            Step::Granted(p) => Some(Who::Static(p)),
            Step::VerifyBasic { .. } => None,
            Step::VerifyJwt => authz.and_then(|v| self.known_token(v)).map(Who::Token),
            Step::Refused { basic_on_plaintext } => {
                if basic_on_plaintext {
                    self.warn_plaintext();
                }
                None
            }
        }
    }

    fn warn_plaintext(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let last = &LAST_WARN[self.listener as usize];
        let prev = last.load(Ordering::Relaxed);
        if now.saturating_sub(prev) >= 60_000
            && last
                .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn!(
                "basic credentials refused on a plaintext connection (listener={}); enable TLS or set allow_basic_without_tls",
                self.listener.name()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::policy::Policy;
    use base64::Engine;

    fn gate() -> Gate {
        // Cost 4 keeps the test fast; the gate does not care about the cost.
        let hash = bcrypt::hash("pw-4", 4).unwrap();
        let text = format!(
            "users:\n  - {{id: u, username: alice, password_bcrypt: \"{hash}\", scopes: [read]}}\nallow_basic_without_tls: true\n"
        );
        let p = Policy::parse(&text).unwrap();
        Gate::new(
            Authenticator::new(Some(&p), None, false),
            Listener::Client,
            None,
        )
    }

    fn field(userpass: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(userpass);
        format!("Basic {b64}").into_bytes()
    }

    /// `identify` never runs bcrypt itself: a Basic field matches only after
    /// `settle` verified it, and then keeps matching from the cache.
    #[test]
    fn basic_is_verified_once_then_remembered() {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(64 << 10)
            .make()
            .expect("executor (needs io_uring)");
        ex.run(async {
            let g = gate();
            let c = ConnFacts::default();
            let good = field("alice:pw-4");
            assert_eq!(g.identify(Some(&good), 1, c), None, "not verified yet");
            g.settle(Some(&good), 1, c).await;
            assert_eq!(
                g.identify(Some(&good), 1, c).map(|p| p.id.clone()),
                Some("u".to_string())
            );
            assert_eq!(g.verified.borrow().len(), 1);
            // Remembered: a second settle finds nothing to verify.
            g.settle(Some(&good), 1, c).await;
            assert_eq!(g.verified.borrow().len(), 1);
            for bad in [field("alice:wrong"), field("bob:pw-4")] {
                g.settle(Some(&bad), 1, c).await;
                assert_eq!(g.identify(Some(&bad), 1, c), None);
            }
            assert_eq!(g.verified.borrow().len(), 3);
            // A bearer field never reaches bcrypt or the cache.
            g.settle(Some(b"Bearer x"), 1, c).await;
            assert_eq!(g.verified.borrow().len(), 3);
        });
    }
}
