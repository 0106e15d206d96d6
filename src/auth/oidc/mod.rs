//! OIDC bearer tokens (security.md §7).
//!
//! - `fetch.rs`: one blocking HTTP(S) GET to the IdP (system trust store).
//! - `verify.rs`: the pure JWT checks and the JWKS key set.
//! - this file: discovery and the first key fetch at start-up (before any listener
//!   is bound; a failure exits 1), and [`Oidc`], the key set every core reads,
//!   replaced whole by the refresher thread every 5 minutes or when a core asks
//!   (an unknown `kid`, at most once per 10 s).
//!
//! Threading follows the TLS slots: the refresher thread swaps the key set under a
//! mutex and bumps a generation; cores read the generation (one atomic load) and
//! take the mutex only when it moved. A core that asked for a fetch polls the
//! completion counter from its executor (never blocking it) for up to 5 s.

pub mod fetch;
pub mod verify;
#[cfg(test)]
mod verify_tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fetch::Url;
use verify::{KeySet, Settings};

/// Each start-up request's limit, and a refresh's.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Periodic re-fetch of the key set.
const PERIOD: Duration = Duration::from_secs(300);
/// An on-demand fetch only when the previous one started at least this long ago.
pub const MIN_GAP: Duration = Duration::from_secs(10);
/// How long a request waits for an on-demand fetch.
pub const WAIT: Duration = Duration::from_secs(5);

/// The four variables, validated (`config/env.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    pub identity_claim: String,
    pub scope_claim: String,
}

pub struct Oidc {
    pub settings: Settings,
    jwks: Url,
    keys: Mutex<Arc<KeySet>>,
    generation: AtomicU64,
    last_start: Mutex<Instant>,
    in_flight: AtomicBool,
    completed: AtomicU64,
    wake: Mutex<Option<Sender<()>>>,
    pub fetches_ok: AtomicU64,
    pub fetches_error: AtomicU64,
    pub key_count: AtomicU64,
}

fn quoted(issuer: &str) -> String {
    format!("HYPERCACHE_OIDC_ISSUER={issuer:?}")
}

impl Oidc {
    /// Discovery and the first key fetch (§7 start-up); the error is the exit-1 line.
    pub fn start(cfg: &OidcConfig) -> Result<Arc<Oidc>, String> {
        let disc_fail =
            |r: String| format!("OIDC discovery failed for {}: {r}", quoted(&cfg.issuer));
        let base = cfg.issuer.strip_suffix('/').unwrap_or(&cfg.issuer);
        let disc_text = format!("{base}/.well-known/openid-configuration");
        let disc_url =
            Url::parse(&disc_text).ok_or_else(|| disc_fail(format!("{disc_text} is not a URL")))?;
        let (status, body) = fetch::get(&disc_url, FETCH_TIMEOUT)
            .map_err(|e| disc_fail(format!("GET {disc_text}: {e}")))?;
        if status != 200 {
            return Err(disc_fail(format!("GET {disc_text}: status {status}")));
        }
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .ok()
            .filter(serde_json::Value::is_object)
            .ok_or_else(|| disc_fail(format!("GET {disc_text}: not a JSON object")))?;
        let said = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
        if said != cfg.issuer {
            return Err(disc_fail(format!(
                "issuer mismatch: the discovery document says {said:?}"
            )));
        }
        let jwks_text = doc
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| disc_fail("no jwks_uri".into()))?;
        let jwks = Url::parse(jwks_text)
            .filter(Url::scheme_ok)
            .ok_or_else(|| {
                disc_fail(format!(
                    "jwks_uri {jwks_text:?} is not an https:// URL (http:// only for loopback)"
                ))
            })?;
        let settings = Settings {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            identity_claim: cfg.identity_claim.clone(),
            scope_claim: cfg.scope_claim.clone(),
            algorithms: Settings::algorithms_from(doc.get("id_token_signing_alg_values_supported")),
        };
        let o = Oidc {
            settings,
            jwks,
            keys: Mutex::new(Arc::new(KeySet::default())),
            generation: AtomicU64::new(0),
            last_start: Mutex::new(Instant::now()),
            in_flight: AtomicBool::new(false),
            completed: AtomicU64::new(0),
            wake: Mutex::new(None),
            fetches_ok: AtomicU64::new(0),
            fetches_error: AtomicU64::new(0),
            key_count: AtomicU64::new(0),
        };
        o.fetch_keys().map_err(|r| {
            format!(
                "OIDC key fetch failed for {}: GET {jwks_text}: {r}",
                quoted(&cfg.issuer)
            )
        })?;
        let o = Arc::new(o);
        o.clone().spawn_refresher();
        Ok(o)
    }

    /// One fetch of the key set: replaces it whole on success, keeps it otherwise.
    fn fetch_keys(&self) -> Result<(), String> {
        let got = fetch::get(&self.jwks, FETCH_TIMEOUT).and_then(|(status, body)| {
            if status != 200 {
                return Err(format!("status {status}"));
            }
            KeySet::parse(&body)
        });
        match got {
            Ok(set) => {
                self.key_count
                    .store(set.keys.len() as u64, Ordering::Relaxed);
                *self.keys.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.fetches_ok.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.fetches_error.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn spawn_refresher(self: Arc<Self>) {
        let (tx, rx) = channel::<()>();
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        std::thread::Builder::new()
            .name("oidc-keys".into())
            .spawn(move || loop {
                let since = self
                    .last_start
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .elapsed();
                match rx.recv_timeout(PERIOD.saturating_sub(since)) {
                    Ok(()) => {}
                    Err(RecvTimeoutError::Timeout) => {
                        *self.last_start.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                        self.in_flight.store(true, Ordering::Release);
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                if let Err(e) = self.fetch_keys() {
                    log::warn!("oidc key refresh failed: {e}");
                }
                self.in_flight.store(false, Ordering::Release);
                self.completed.fetch_add(1, Ordering::AcqRel);
            })
            .expect("spawn the OIDC key refresher");
    }

    /// The current key set and its generation.
    pub fn keys(&self) -> (u64, Arc<KeySet>) {
        let g = self.generation.load(Ordering::Acquire);
        (
            g,
            self.keys.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        )
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    /// Asks for an on-demand fetch (§7 key refresh). Some(n): a fetch is running (started
    /// now or shared with earlier callers); it is done when `completed()` exceeds n. None:
    /// the previous fetch started less than 10 s ago and is over, so the caller fails at once.
    pub fn request_refresh(&self) -> Option<u64> {
        let done = self.completed();
        let mut last = self.last_start.lock().unwrap_or_else(|e| e.into_inner());
        if self.in_flight.load(Ordering::Acquire) {
            return Some(done);
        }
        if last.elapsed() < MIN_GAP {
            return None;
        }
        *last = Instant::now();
        self.in_flight.store(true, Ordering::Release);
        if let Some(tx) = &*self.wake.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(());
        }
        Some(done)
    }

    /// The OIDC series of `/metrics` (security.md §7, §10).
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let f = "hypercache_oidc_key_fetches_total";
        let _ = writeln!(
            out,
            "# HELP {f} JWKS fetches, the start-up fetch included.\n# TYPE {f} counter\n\
             {f}{{result=\"ok\"}} {}\n{f}{{result=\"error\"}} {}",
            self.fetches_ok.load(Ordering::Relaxed),
            self.fetches_error.load(Ordering::Relaxed)
        );
        let g = "hypercache_oidc_keys";
        let _ = writeln!(
            out,
            "# HELP {g} Usable signing keys in the current set.\n# TYPE {g} gauge\n{g} {}",
            self.key_count.load(Ordering::Relaxed)
        );
    }
}
