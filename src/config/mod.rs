//! Configuration: every `HYPERCACHE_*` variable, read once at start (ops.md §2).
//!
//! [`Config::from_vars`] is a pure function of the environment, the affinity mask and the host
//! name, so the whole validation table is unit-tested without touching the process. The parsing
//! of each kind of value lives in its own file; `env.rs` applies the table and the cross-checks.

pub mod addr;
mod checks;
pub mod cpuset;
pub mod duration;
mod env;
mod loader;
mod names;
mod seeds;
pub mod size;
pub mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_checks;
#[cfg(test)]
mod tests_security;

use std::fmt;
use std::time::Duration;

pub use addr::{HostPort, ListenAddr, Seed};
pub use cpuset::{format_cpu_list, parse_cpu_list};
pub use duration::{format_go_duration, go_quote, parse_go_duration};
pub use size::parse_size;

/// Eviction policy (ops.md §3.1). `lru` is the default and always accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EvictionPolicy {
    #[default]
    Lru,
    Clock,
}

impl EvictionPolicy {
    pub fn name(&self) -> &'static str {
        match self {
            EvictionPolicy::Lru => "lru",
            EvictionPolicy::Clock => "clock",
        }
    }
}

/// Log line format (`HYPERCACHE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn name(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Consistency level of writes and reads (cluster.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    One,
    Quorum,
    All,
}

impl Consistency {
    pub fn name(&self) -> &'static str {
        match self {
            Consistency::One => "one",
            Consistency::Quorum => "quorum",
            Consistency::All => "all",
        }
    }
}

/// The validated configuration. Field docs name the variable; ops.md §2.4 has the semantics.
///
/// `Debug` is written by hand so that printing a `Config` never prints the token (ops.md §5).
#[derive(Clone)]
pub struct Config {
    pub node_id: String,
    pub api_addr: ListenAddr,
    pub mgmt_addr: ListenAddr,
    pub dist_addr: ListenAddr,
    pub dist_advertise: Option<HostPort>,
    /// De-duplicated; entries naming this node (by id, or by the advertised address when it is
    /// known before binding) are removed.
    pub seeds: Vec<Seed>,
    pub replication: usize,
    pub capacity: u64,
    pub max_memory: Option<u64>,
    pub eviction: EvictionPolicy,
    pub auth_token: Option<String>,
    /// `HYPERCACHE_AUTH_CONFIG` as given (security.md §5).
    pub auth_config: Option<String>,
    /// `HYPERCACHE_API_ADVERTISE` (cluster.md §1).
    pub api_advertise: Option<HostPort>,
    /// The validated policy file, set by [`Config::load_policy`].
    pub policy: Option<std::sync::Arc<crate::auth::policy::Policy>>,
    pub log_level: log::LevelFilter,
    pub log_format: LogFormat,
    pub heartbeat: Duration,
    pub indirect_probe_k: usize,
    pub suspicion_mult: u32,
    pub gossip_interval: Duration,
    pub hint_ttl: Duration,
    pub hint_replay: Duration,
    pub hint_max_per_node: u64,
    pub hint_max_bytes: u64,
    pub rebalance_interval: Duration,
    pub rebalance_batch: usize,
    pub anti_entropy_interval: Duration,
    pub tombstone_ttl: Duration,
    pub write_consistency: Consistency,
    pub read_consistency: Consistency,
    pub max_body: u64,
    pub max_batch: usize,
    pub max_conns: usize,
    /// Number of data cores.
    pub cores: usize,
    /// Usable CPUs, ascending: `HYPERCACHE_CPU_SET`, else the affinity mask.
    pub cpu_set: Vec<usize>,
    pub shutdown_timeout: Duration,
    pub drain_grace: Duration,
    /// `HYPERCACHE_{API,MGMT,DIST}_TLS_*` as configured (security.md §1).
    pub tls_paths: crate::tls::TlsPaths,
    /// The loaded TLS material, set by [`Config::load_tls`].
    pub tls: std::sync::Arc<crate::tls::TlsSet>,
    /// `HYPERCACHE_OIDC_*` as configured (security.md §7).
    pub oidc_config: Option<crate::auth::oidc::OidcConfig>,
    /// Discovery and keys, set by [`Config::start_oidc`].
    pub oidc: Option<std::sync::Arc<crate::auth::oidc::Oidc>>,
    /// `HYPERCACHE_*` names not in the table, sorted, for one warning line each.
    pub unknown_vars: Vec<String>,
}

/// One start-up failure: `message` is the whole stderr line, starting `hypercache-server: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub exit_code: i32,
    pub message: String,
}

impl ConfigError {
    /// Every configuration failure exits 2 (ops.md §4).
    pub(crate) fn new(text: impl Into<String>) -> ConfigError {
        ConfigError {
            exit_code: 2,
            message: format!("hypercache-server: {}", text.into()),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Node ids (cluster.md §1): 1-128 characters of `A-Z a-z 0-9 . _ -`. The restriction keeps ids
/// safe in URLs, log lines (`node=<id>`), metric labels and the `id@host:port` seed form.
pub fn is_valid_node_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Config {
    /// Reads and validates the configuration (ops.md §2).
    ///
    /// `vars` is the process environment (only `HYPERCACHE_*` names matter), `affinity` the CPUs
    /// of the process affinity mask, `hostname` the machine host name if known. All failures are
    /// returned, per-variable ones in table order first, then refused Go variables, then the
    /// cross-checks of §2.5.
    pub fn from_vars(
        vars: &[(String, String)],
        affinity: &[usize],
        hostname: Option<&str>,
    ) -> Result<Config, Vec<ConfigError>> {
        env::load(vars, affinity, hostname)
    }

    /// The CPUs of the data cores: the first `cores` CPUs of `cpu_set` (ops.md §7.1).
    pub fn data_cpus(&self) -> &[usize] {
        &self.cpu_set[..self.cores.min(self.cpu_set.len())]
    }

    /// The control core's CPU: the next unused CPU when one remains, otherwise the CPU of the
    /// last data core (ops.md §7.1).
    pub fn control_cpu(&self) -> usize {
        match self.cpu_set.get(self.cores) {
            Some(&cpu) => cpu,
            None => self.data_cpus().last().copied().unwrap_or(0),
        }
    }

    /// The address peers dial (cluster.md §1): DIST_ADVERTISE, else DIST_ADDR as configured
    /// (host text, not the resolved IP) with port 0 replaced by `bound_dist_port`.
    pub fn advertised_host_port(&self, bound_dist_port: u16) -> HostPort {
        match &self.dist_advertise {
            Some(hp) => hp.clone(),
            None => {
                let port = match self.dist_addr.addr.port() {
                    0 => bound_dist_port,
                    p => p,
                };
                HostPort {
                    host: self.dist_addr.host().to_string(),
                    port,
                }
            }
        }
    }

    /// ops.md §2.5: returns the advertised `host:port`. With seeds set it must be routable;
    /// otherwise the exit-2 error names `HYPERCACHE_DIST_ADVERTISE` with an example. Without
    /// seeds an unroutable address is returned as is (the caller logs a warning; see
    /// [`HostPort::is_routable`] on [`Config::advertised_host_port`]).
    pub fn advertised_addr(&self, bound_dist_port: u16) -> Result<String, ConfigError> {
        let hp = self.advertised_host_port(bound_dist_port);
        if !self.seeds.is_empty() && !hp.is_routable() {
            return Err(checks::unroutable_error(&hp, &self.dist_addr.text));
        }
        Ok(hp.to_string())
    }

    /// The client API address this node advertises (cluster.md §1): API_ADVERTISE; else
    /// API_ADDR when its host is routable (port 0 replaced by the bound port); else the host of
    /// the advertised dist address with the bound API port; `""` when that is not routable.
    pub fn advertised_api(&self, bound_api_port: u16, bound_dist_port: u16) -> String {
        if let Some(hp) = &self.api_advertise {
            return hp.to_string();
        }
        let own = HostPort {
            host: self.api_addr.host().to_string(),
            port: bound_api_port,
        };
        if own.is_routable() {
            return own.to_string();
        }
        let via_dist = HostPort {
            host: self.advertised_host_port(bound_dist_port).host,
            port: bound_api_port,
        };
        if via_dist.is_routable() {
            via_dist.to_string()
        } else {
            String::new()
        }
    }

    /// Reads and validates `HYPERCACHE_AUTH_CONFIG` when set (security.md §5): the
    /// exit-2 line names the variable, the path and the first problem.
    /// Reads and validates every TLS listener's files (security.md §2, §3): exit 2 on failure.
    pub fn load_tls(&mut self) -> Result<(), ConfigError> {
        let set = self.tls_paths.load().map_err(ConfigError::new)?;
        self.tls = std::sync::Arc::new(set);
        Ok(())
    }

    /// OIDC discovery and the first key fetch (security.md §7): exit 1 on failure (the
    /// environment, like a port in use, not the configuration).
    pub fn start_oidc(&mut self) -> Result<(), ConfigError> {
        let Some(c) = &self.oidc_config else {
            return Ok(());
        };
        let o = crate::auth::oidc::Oidc::start(c).map_err(|m| ConfigError {
            exit_code: 1,
            message: m,
        })?;
        self.oidc = Some(o);
        Ok(())
    }

    pub fn load_policy(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.auth_config else {
            return Ok(());
        };
        let has_ca =
            |p: &Option<crate::tls::material::Paths>| p.as_ref().is_some_and(|p| p.ca.is_some());
        let around = crate::auth::policy::Surroundings {
            client_ca: has_ca(&self.tls_paths.client) || has_ca(&self.tls_paths.mgmt),
            oidc: self.oidc_config.is_some(),
        };
        let p = crate::auth::policy::load(path, around).map_err(ConfigError::new)?;
        self.policy = Some(std::sync::Arc::new(p));
        Ok(())
    }

    /// Credentials are checked on the client and management listeners.
    pub fn auth_on(&self) -> bool {
        self.auth_token.is_some() || self.policy.is_some() || self.oidc_config.is_some()
    }

    /// ops.md §1.4: every variable of §2.4 in table order with its effective value.
    pub fn env_view(&self) -> Vec<(&'static str, String)> {
        let d = |d: Duration| format_go_duration(d);
        let opt = |o: Option<String>| o.unwrap_or_default();
        let seeds: Vec<String> = self.seeds.iter().map(|s| s.to_string()).collect();
        let values = [
            self.node_id.clone(),
            self.api_addr.text.clone(),
            self.mgmt_addr.text.clone(),
            self.dist_addr.text.clone(),
            opt(self.dist_advertise.as_ref().map(|a| a.to_string())),
            seeds.join(","),
            self.replication.to_string(),
            self.capacity.to_string(),
            opt(self.max_memory.map(|m| m.to_string())),
            self.eviction.name().to_string(),
            opt(self.auth_token.as_ref().map(|_| "<redacted>".to_string())),
            opt(self.auth_config.clone()),
            opt(self.api_advertise.as_ref().map(|a| a.to_string())),
            level_name(self.log_level).to_string(),
            self.log_format.name().to_string(),
            d(self.heartbeat),
            self.indirect_probe_k.to_string(),
            self.suspicion_mult.to_string(),
            d(self.gossip_interval),
            d(self.hint_ttl),
            d(self.hint_replay),
            self.hint_max_per_node.to_string(),
            self.hint_max_bytes.to_string(),
            d(self.rebalance_interval),
            self.rebalance_batch.to_string(),
            d(self.anti_entropy_interval),
            d(self.tombstone_ttl),
            self.write_consistency.name().to_string(),
            self.read_consistency.name().to_string(),
            self.max_body.to_string(),
            self.max_batch.to_string(),
            self.max_conns.to_string(),
            self.cores.to_string(),
            format_cpu_list(&self.cpu_set),
            d(self.shutdown_timeout),
            d(self.drain_grace),
        ];
        let t = &self.tls_paths;
        let path = |p: &Option<crate::tls::material::Paths>,
                    f: fn(&crate::tls::material::Paths) -> Option<&String>| {
            p.as_ref().and_then(f).cloned().unwrap_or_default()
        };
        let tls_values = [
            path(&t.client, |p| Some(&p.cert)),
            path(&t.client, |p| Some(&p.key)),
            path(&t.client, |p| p.ca.as_ref()),
            path(&t.mgmt, |p| Some(&p.cert)),
            path(&t.mgmt, |p| Some(&p.key)),
            path(&t.mgmt, |p| p.ca.as_ref()),
            path(&t.dist, |p| Some(&p.cert)),
            path(&t.dist, |p| Some(&p.key)),
            path(&t.dist, |p| p.ca.as_ref()),
        ];
        let o = self.oidc_config.as_ref();
        let oidc = |f: fn(&crate::auth::oidc::OidcConfig) -> &String| {
            o.map(f).cloned().unwrap_or_default()
        };
        let oidc_values = [
            oidc(|c| &c.issuer),
            oidc(|c| &c.audience),
            oidc(|c| &c.identity_claim),
            oidc(|c| &c.scope_claim),
        ];
        table::TABLE
            .iter()
            .map(|r| r.name)
            .zip(values.into_iter().chain(tls_values).chain(oidc_values))
            .collect()
    }
}

/// The `HYPERCACHE_LOG_LEVEL` spelling of a level (`warn`, not `WARN`).
pub fn level_name(level: log::LevelFilter) -> &'static str {
    match level {
        log::LevelFilter::Off => "off",
        log::LevelFilter::Error => "error",
        log::LevelFilter::Warn => "warn",
        log::LevelFilter::Info => "info",
        log::LevelFilter::Debug => "debug",
        log::LevelFilter::Trace => "trace",
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.auth_token.as_ref().map(|_| "<redacted>");
        f.debug_struct("Config")
            .field("node_id", &self.node_id)
            .field("api_addr", &self.api_addr)
            .field("mgmt_addr", &self.mgmt_addr)
            .field("dist_addr", &self.dist_addr)
            .field("dist_advertise", &self.dist_advertise)
            .field("seeds", &self.seeds)
            .field("replication", &self.replication)
            .field("capacity", &self.capacity)
            .field("max_memory", &self.max_memory)
            .field("eviction", &self.eviction)
            .field("auth_token", &token)
            .field("auth_config", &self.auth_config)
            .field("api_advertise", &self.api_advertise)
            .field("log_level", &self.log_level)
            .field("log_format", &self.log_format)
            .field("heartbeat", &self.heartbeat)
            .field("indirect_probe_k", &self.indirect_probe_k)
            .field("suspicion_mult", &self.suspicion_mult)
            .field("gossip_interval", &self.gossip_interval)
            .field("hint_ttl", &self.hint_ttl)
            .field("hint_replay", &self.hint_replay)
            .field("hint_max_per_node", &self.hint_max_per_node)
            .field("hint_max_bytes", &self.hint_max_bytes)
            .field("rebalance_interval", &self.rebalance_interval)
            .field("rebalance_batch", &self.rebalance_batch)
            .field("anti_entropy_interval", &self.anti_entropy_interval)
            .field("tombstone_ttl", &self.tombstone_ttl)
            .field("write_consistency", &self.write_consistency)
            .field("read_consistency", &self.read_consistency)
            .field("max_body", &self.max_body)
            .field("max_batch", &self.max_batch)
            .field("max_conns", &self.max_conns)
            .field("cores", &self.cores)
            .field("cpu_set", &self.cpu_set)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("drain_grace", &self.drain_grace)
            .field("unknown_vars", &self.unknown_vars)
            .finish()
    }
}
