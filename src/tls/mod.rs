//! TLS on the client, management and dist listeners and between peers (security.md §2–§4).
//!
//! - `material.rs`: a listener's PEM files validated into rustls configurations.
//! - `stream.rs`: the byte stream a connection task reads and writes, plaintext or TLS.
//! - `handshake.rs`: the server side of a connection's first bytes: a TLS handshake, the
//!   400 text for plaintext HTTP on a TLS port, the failure counter and rate-limited log.
//! - this file: [`Slot`], one listener's current material and counters, shared by every
//!   core and replaced as one unit by a SIGHUP reload; [`TlsSet`], the node's slots.
//!
//! Threading: the signal thread loads files and swaps a slot's material under its mutex
//! and bumps the slot's generation; a core reads the generation (one atomic load per
//! accepted connection) and takes the mutex only when it changed. Established
//! connections keep the configuration they were accepted with.

pub mod handshake;
pub mod material;
pub mod stream;

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::base::warn_limit::WarnLimit;
use material::{LoadError, Material, Paths};

/// The three listeners, with the names used in logs, metric labels and variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Client,
    Mgmt,
    Dist,
}

impl Listener {
    /// The `listener` label of logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Listener::Client => "client",
            Listener::Mgmt => "mgmt",
            Listener::Dist => "dist",
        }
    }

    /// `HYPERCACHE_<P>_TLS_<suffix>`.
    pub fn var(self, suffix: &str) -> String {
        let p = match self {
            Listener::Client => "API",
            Listener::Mgmt => "MGMT",
            Listener::Dist => "DIST",
        };
        format!("HYPERCACHE_{p}_TLS_{suffix}")
    }

    /// The CA variable's suffix: the dist CA verifies both directions.
    pub fn ca_suffix(self) -> &'static str {
        match self {
            Listener::Dist => "CA",
            _ => "CLIENT_CA",
        }
    }
}

/// Warnings are logged at most this often per remote IP or peer (security.md §3).
pub const WARN_EVERY: Duration = Duration::from_secs(30);

/// One TLS listener: its files, its current material, its counters.
pub struct Slot {
    pub listener: Listener,
    paths: Paths,
    current: Mutex<Arc<Material>>,
    generation: AtomicU64,
    /// `hypercache_tls_handshake_failures_total{listener}`.
    pub handshake_failures: AtomicU64,
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    /// notAfter of the leaf in use, Unix seconds.
    pub expiry: AtomicI64,
    /// `hypercache_peer_tls_handshake_failures_total` (dist only).
    pub peer_failures: AtomicU64,
    /// Failed-handshake warnings, at most one per remote IP (or peer) and 30 s.
    warned: Mutex<WarnLimit>,
}

impl Slot {
    pub fn load(listener: Listener, paths: Paths) -> Result<Slot, LoadError> {
        let m = material::load(listener, &paths)?;
        Ok(Slot {
            listener,
            paths,
            expiry: AtomicI64::new(m.not_after),
            current: Mutex::new(Arc::new(m)),
            generation: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            peer_failures: AtomicU64::new(0),
            warned: Mutex::new(WarnLimit::new(WARN_EVERY)),
        })
    }

    pub fn current(&self) -> Arc<Material> {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Re-reads the files (§4): all valid replaces the material as one unit; anything
    /// invalid keeps the previous material. Returns the log line.
    pub fn reload(&self) -> Result<String, String> {
        match material::load(self.listener, &self.paths) {
            Ok(m) => {
                let line = format!(
                    "tls reloaded listener={} serial={} not_after={}",
                    self.listener.label(),
                    m.serial,
                    rfc3339(m.not_after)
                );
                self.expiry.store(m.not_after, Ordering::Relaxed);
                *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.reloads.fetch_add(1, Ordering::Relaxed);
                Ok(line)
            }
            Err(e) => {
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                Err(format!(
                    "tls reload failed listener={} file={}: {}; keeping the previous certificate",
                    self.listener.label(),
                    e.file,
                    e.reason
                ))
            }
        }
    }

    /// The warning for a leaf in use whose notAfter has passed (§2: logged, not refused).
    pub fn expired_warning(&self) -> Option<String> {
        let not_after = self.expiry.load(Ordering::Relaxed);
        (not_after < crate::base::now_ms() as i64 / 1000).then(|| {
            format!(
                "{}={:?} has expired: not_after={}",
                self.listener.var("CERT"),
                self.paths.cert,
                rfc3339(not_after)
            )
        })
    }

    /// The warning about `who` to log now, if its 30 s are over: `line` with the count of
    /// the ones left out since.
    pub fn warn_limited(&self, who: &str, line: impl FnOnce() -> String) {
        let now = crate::base::now_ms();
        let admitted = self
            .warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(who, now);
        if let Some(suppressed) = admitted {
            log::warn!("{}", WarnLimit::line(suppressed, line()));
        }
    }

    /// Counts a failed incoming handshake and logs it, rate-limited per remote IP.
    pub fn incoming_failed(&self, remote: Option<std::net::SocketAddr>, reason: &str) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
        let ip = remote.map_or_else(|| "?".to_string(), |r| r.ip().to_string());
        self.warn_limited(&ip, || {
            let at = remote.map_or_else(|| "?".to_string(), |r| r.to_string());
            format!(
                "tls handshake failed listener={} remote={at}: {reason}",
                self.listener.label()
            )
        });
    }
}

/// A core's view of a slot: the server configuration of the latest generation it saw.
pub struct Acceptor {
    pub slot: Arc<Slot>,
    cached: RefCell<(u64, Arc<rustls::ServerConfig>)>,
}

impl Acceptor {
    pub fn new(slot: Arc<Slot>) -> Acceptor {
        let g = slot.generation();
        let c = slot.current().server.clone();
        Acceptor {
            slot,
            cached: RefCell::new((g, c)),
        }
    }

    /// The configuration for a handshake starting now.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        let g = self.slot.generation();
        let mut c = self.cached.borrow_mut();
        if c.0 != g {
            *c = (g, self.slot.current().server.clone());
        }
        c.1.clone()
    }
}

/// The node's TLS listeners (None: plaintext).
#[derive(Default)]
pub struct TlsSet {
    pub client: Option<Arc<Slot>>,
    pub mgmt: Option<Arc<Slot>>,
    pub dist: Option<Arc<Slot>>,
}

/// The configured paths of every listener (from the environment).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPaths {
    pub client: Option<Paths>,
    pub mgmt: Option<Paths>,
    pub dist: Option<Paths>,
}

impl TlsPaths {
    /// Loads every configured listener; the first failure is the exit-2 line.
    pub fn load(&self) -> Result<TlsSet, String> {
        let one = |l: Listener, p: &Option<Paths>| -> Result<Option<Arc<Slot>>, String> {
            match p {
                None => Ok(None),
                Some(p) => Slot::load(l, p.clone())
                    .map(|s| Some(Arc::new(s)))
                    .map_err(|e| e.startup),
            }
        };
        Ok(TlsSet {
            client: one(Listener::Client, &self.client)?,
            mgmt: one(Listener::Mgmt, &self.mgmt)?,
            dist: one(Listener::Dist, &self.dist)?,
        })
    }
}

impl TlsSet {
    pub fn slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        [&self.client, &self.mgmt, &self.dist].into_iter().flatten()
    }

    /// SIGHUP (§4): each TLS listener reloads independently; the log lines in order.
    pub fn reload_all(&self) -> Vec<(log::Level, String)> {
        let mut lines: Vec<(log::Level, String)> = Vec::new();
        for s in self.slots() {
            match s.reload() {
                Ok(l) => {
                    lines.push((log::Level::Info, l));
                    // As at start (§2): an expired leaf is loaded, with a warning.
                    if let Some(w) = s.expired_warning() {
                        lines.push((log::Level::Warn, w));
                    }
                }
                Err(l) => lines.push((log::Level::Error, l)),
            }
        }
        if lines.is_empty() {
            lines.push((
                log::Level::Info,
                "SIGHUP received: no TLS listener to reload".to_string(),
            ));
        }
        lines
    }

    /// `off`, `tls` or `mtls` for the start line (§10).
    pub fn mode(slot: &Option<Arc<Slot>>) -> &'static str {
        match slot {
            None => "off",
            Some(s) if s.paths.ca.is_some() => "mtls",
            Some(_) => "tls",
        }
    }

    /// Start-up warnings: expired leaves, and a dist certificate without a SAN for the
    /// host peers dial.
    pub fn warnings(&self, advertise_host: &str) -> Vec<String> {
        let mut w: Vec<String> = self.slots().filter_map(|s| s.expired_warning()).collect();
        if let Some(d) = &self.dist {
            let m = d.current();
            if !san_covers(&m.sans, advertise_host) {
                w.push(format!(
                    "HYPERCACHE_DIST_TLS_CERT={:?} has no subject alternative name for {advertise_host}, \
                     the host of the advertised dist address: peers will refuse it",
                    d.paths.cert
                ));
            }
        }
        w
    }

    /// Appends the TLS series of `/metrics` (security.md §10).
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let slots: Vec<&Arc<Slot>> = self.slots().collect();
        if slots.is_empty() {
            return;
        }
        let fam =
            |out: &mut String, name: &str, kind: &str, help: &str, f: &dyn Fn(&Slot) -> i64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for s in &slots {
                    let _ = writeln!(
                        out,
                        "{name}{{listener=\"{}\"}} {}",
                        s.listener.label(),
                        f(s)
                    );
                }
            };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed) as i64;
        fam(out, "hypercache_tls_handshake_failures_total", "counter",
            "Accepted connections that sent at least one byte and did not complete a TLS handshake.",
            &|s| n(&s.handshake_failures));
        fam(
            out,
            "hypercache_tls_reloads_total",
            "counter",
            "Successful certificate reloads (SIGHUP).",
            &|s| n(&s.reloads),
        );
        fam(
            out,
            "hypercache_tls_reload_failures_total",
            "counter",
            "Certificate reloads that kept the previous material.",
            &|s| n(&s.reload_failures),
        );
        fam(
            out,
            "hypercache_tls_cert_expiry_timestamp_seconds",
            "gauge",
            "notAfter of the leaf certificate in use, Unix seconds.",
            &|s| s.expiry.load(Ordering::Relaxed),
        );
        if let Some(d) = &self.dist {
            let name = "hypercache_peer_tls_handshake_failures_total";
            let _ = writeln!(
                out,
                "# HELP {name} Outgoing peer TLS handshakes that failed.\n# TYPE {name} counter\n{name} {}",
                n(&d.peer_failures)
            );
        }
    }
}

/// Whether a DNS or IP SAN in `sans` is valid for `host` (a `*` only as the whole leftmost label).
pub fn san_covers(sans: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return sans.iter().any(|s| s.parse::<IpAddr>().ok() == Some(ip));
    }
    sans.iter().any(|s| {
        if let Some(rest) = s.strip_prefix("*.") {
            host.split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail.eq_ignore_ascii_case(rest))
        } else {
            s.eq_ignore_ascii_case(host)
        }
    })
}

fn rfc3339(unix_s: i64) -> String {
    crate::http::date::rfc3339_secs((unix_s.max(0) as u64).saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_matching_follows_the_dialled_host() {
        let sans = vec![
            "node-1.hc.svc".to_string(),
            "*.peers.local".into(),
            "10.0.0.5".into(),
        ];
        assert!(san_covers(&sans, "node-1.hc.svc"));
        assert!(san_covers(&sans, "NODE-1.hc.svc"));
        assert!(san_covers(&sans, "a.peers.local"));
        assert!(!san_covers(&sans, "a.b.peers.local"));
        assert!(!san_covers(&sans, "peers.local"));
        assert!(san_covers(&sans, "10.0.0.5"));
        assert!(!san_covers(&sans, "10.0.0.6"));
        assert!(!san_covers(&["::1".to_string()], "127.0.0.1"));
        assert!(san_covers(&["::1".to_string()], "[::1]"));
    }
}
