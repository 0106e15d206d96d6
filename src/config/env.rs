//! The loader: applies the variable table of ops.md §2.4, the refusals of §2.6 and the
//! cross-checks of §2.5 to the process environment.
//!
//! Every failure is collected rather than returning at the first one, so an operator fixing a
//! manifest sees all problems in one start attempt. Per-variable failures come in table order,
//! then refused variables, then cross-checks; a cross-check is skipped when one of its inputs
//! already failed, because its message would then be about a value nobody configured.

use std::time::Duration;

use super::addr::{HostPort, ListenAddr};
use super::checks;
use super::cpuset::{format_cpu_list, parse_cpu_list};
use super::duration::go_quote;
use super::loader::{choice, duration, int, size, Loader};
use super::names::*;
use super::seeds::parse_seed_list;
use super::table::{form_of, TABLE};
use super::{is_valid_node_id, Config, ConfigError, Consistency, EvictionPolicy, LogFormat};

/// The drain grace when `HYPERCACHE_DRAIN_GRACE` is unset (docs/operations.md).
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(5);
const CONSISTENCY: [(&str, Consistency); 3] = [
    ("one", Consistency::One),
    ("quorum", Consistency::Quorum),
    ("all", Consistency::All),
];

/// An advertised `host:port` (DIST_ADVERTISE, API_ADVERTISE): peers and clients dial it.
fn routable(t: &str) -> Result<Option<HostPort>, Option<String>> {
    match HostPort::parse(t).map_err(Some)? {
        hp if hp.is_routable() => Ok(Some(hp)),
        _ => Err(Some("0.0.0.0 and :: cannot be dialled".to_string())),
    }
}

/// A listen address that needs no resolution, for the defaults.
fn any_port(port: u16) -> ListenAddr {
    ListenAddr {
        text: format!(":{port}"),
        addr: ([0, 0, 0, 0], port).into(),
    }
}

/// security.md §2: CERT and KEY both or neither; the client CA only with both. The files
/// are read by `Config::load_tls`.
fn client_tls(
    l: &mut Loader<'_>,
    cert: &'static str,
    key: &'static str,
    ca: &'static str,
) -> Option<crate::tls::material::Paths> {
    match (l.value(cert), l.value(key), l.value(ca)) {
        (Some(c), Some(k), a) => Some(crate::tls::material::Paths {
            cert: c.to_string(),
            key: k.to_string(),
            ca: a.map(str::to_string),
        }),
        (None, None, None) => None,
        (None, None, Some(_)) => {
            l.fail(ca, format!("{ca} needs {cert} and {key}"));
            None
        }
        _ => {
            l.fail(cert, format!("{cert} and {key} must both be set"));
            None
        }
    }
}

/// security.md §7: issuer and audience both or neither; the claim names only with the issuer.
fn oidc(l: &mut Loader<'_>) -> Option<crate::auth::oidc::OidcConfig> {
    let issuer = l.value(OIDC_ISSUER);
    let audience = l.value(OIDC_AUDIENCE);
    match (issuer, audience) {
        (Some(_), None) => l.fail(
            OIDC_ISSUER,
            format!(
                "{OIDC_ISSUER} set without {OIDC_AUDIENCE}: both are required when OIDC is enabled"
            ),
        ),
        (None, Some(_)) => l.fail(
            OIDC_AUDIENCE,
            format!(
                "{OIDC_AUDIENCE} set without {OIDC_ISSUER}: both are required when OIDC is enabled"
            ),
        ),
        _ => {}
    }
    if issuer.is_none() {
        for claim in [OIDC_IDENTITY_CLAIM, OIDC_SCOPE_CLAIM] {
            if l.value(claim).is_some() {
                l.fail(
                    claim,
                    format!(
                        "{claim} is set but {OIDC_ISSUER} is not: set the issuer to enable OIDC"
                    ),
                );
            }
        }
    }
    let issuer = issuer?;
    let url_ok = crate::auth::oidc::fetch::Url::parse(issuer)
        .is_some_and(|u| u.scheme_ok() && !issuer.contains('?'));
    if !url_ok {
        let form = form_of(OIDC_ISSUER);
        l.fail(
            OIDC_ISSUER,
            format!(
                "invalid {OIDC_ISSUER}={}: expected {form}",
                go_quote(issuer)
            ),
        );
        return None;
    }
    Some(crate::auth::oidc::OidcConfig {
        issuer: issuer.to_string(),
        audience: audience?.to_string(),
        identity_claim: l.value(OIDC_IDENTITY_CLAIM).unwrap_or("sub").to_string(),
        scope_claim: l.value(OIDC_SCOPE_CLAIM).unwrap_or("scope").to_string(),
    })
}

/// security.md §3: all three dist TLS variables or none.
fn dist_tls(l: &mut Loader<'_>) -> Option<crate::tls::material::Paths> {
    let names = [DIST_TLS_CERT, DIST_TLS_KEY, DIST_TLS_CA];
    let values: Vec<Option<&str>> = names.iter().map(|n| l.value(n)).collect();
    match values.as_slice() {
        [Some(c), Some(k), Some(a)] => Some(crate::tls::material::Paths {
            cert: c.to_string(),
            key: k.to_string(),
            ca: Some(a.to_string()),
        }),
        [None, None, None] => None,
        _ => {
            let missing: Vec<&str> = names
                .iter()
                .zip(&values)
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
            l.fail(
                DIST_TLS_CERT,
                format!(
                    "{DIST_TLS_CERT}, {DIST_TLS_KEY} and {DIST_TLS_CA} must all be set (missing: {})",
                    missing.join(", ")
                ),
            );
            None
        }
    }
}

pub(crate) fn load(
    vars: &[(String, String)],
    affinity: &[usize],
    hostname: Option<&str>,
) -> Result<Config, Vec<ConfigError>> {
    let mut l = Loader::new();
    let mut unknown_vars = Vec::new();
    for (name, value) in vars {
        if !name.starts_with("HYPERCACHE_") {
            continue;
        }
        let known = TABLE.iter().any(|r| r.name == name) || REFUSED.iter().any(|(n, _)| n == name);
        if !known {
            unknown_vars.push(name.clone());
            continue;
        }
        // ops.md §2.1: trimmed, and empty means unset (a later duplicate wins, as in a shell).
        match value.trim_ascii() {
            "" => l.set.remove(name.as_str()),
            v => l.set.insert(name.as_str(), v),
        };
    }
    unknown_vars.sort();
    unknown_vars.dedup();

    let node_id = match (l.value(NODE_ID), hostname.map(str::trim_ascii)) {
        (Some(_), _) => l.var(NODE_ID, "node".to_string(), form_of(NODE_ID), |t| {
            is_valid_node_id(t).then(|| t.to_string()).ok_or(None)
        }),
        (None, None | Some("")) => "node".to_string(),
        (None, Some(host)) if is_valid_node_id(host) => host.to_string(),
        (None, Some(host)) => {
            let msg = format!(
                "the host name {} is not a valid node id ({}); set {NODE_ID}",
                go_quote(host),
                form_of(NODE_ID)
            );
            l.fail(NODE_ID, msg);
            "node".to_string()
        }
    };

    let parse_listen = |t: &str| ListenAddr::parse(t).map_err(Some);
    let api_addr = l.var(API_ADDR, any_port(8080), form_of(API_ADDR), parse_listen);
    let mgmt_addr = l.var(MGMT_ADDR, any_port(8081), form_of(MGMT_ADDR), parse_listen);
    let dist_addr = l.var(DIST_ADDR, any_port(7946), form_of(DIST_ADDR), parse_listen);
    let dist_advertise = l.var(DIST_ADVERTISE, None, form_of(DIST_ADVERTISE), routable);

    // Seeds naming this node are skipped (cluster.md §1): by id, and by address when the
    // advertised address is already known (DIST_ADVERTISE, or DIST_ADDR with a routable host and
    // a fixed port). With port 0 the caller compares against the bound address.
    let self_addr = dist_advertise.clone().or_else(|| {
        let hp = HostPort {
            host: dist_addr.host().to_string(),
            port: dist_addr.addr.port(),
        };
        hp.is_routable().then_some(hp)
    });
    let seeds = l.var(SEEDS, Vec::new(), form_of(SEEDS), |t| {
        parse_seed_list(t, &node_id, self_addr.as_ref()).map_err(Some)
    });

    let replication = l.var(REPLICATION, 3, form_of(REPLICATION), |t| int(t, 1));
    let capacity = l.var(CAPACITY, 100_000, form_of(CAPACITY), |t| int(t, 1));
    let max_memory = l.var(MAX_MEMORY, None, form_of(MAX_MEMORY), |t| {
        size(t, 0, u64::MAX).map(Some)
    });
    let eviction = l.var(EVICTION, EvictionPolicy::Lru, form_of(EVICTION), |t| {
        choice(
            t,
            &[
                ("lru", EvictionPolicy::Lru),
                ("clock", EvictionPolicy::Clock),
            ],
        )
    });

    // The token never appears in a message (ops.md §5), not even when it is invalid.
    let auth_token = match l.value(AUTH_TOKEN) {
        None => None,
        Some(t) => match t.bytes().position(|b| !(0x21..=0x7e).contains(&b)) {
            None => Some(t.to_string()),
            Some(pos) => {
                let reason = format!("byte {} is a space or not printable ASCII", pos + 1);
                let form = form_of(AUTH_TOKEN);
                l.invalid(AUTH_TOKEN, "<redacted>", Some(reason), form);
                None
            }
        },
    };
    // Read and validated by `Config::load_policy` (a file, so not in this pure function).
    let auth_config = l.value(AUTH_CONFIG).map(str::to_string);
    let api_advertise = l.var(API_ADVERTISE, None, form_of(API_ADVERTISE), routable);
    let log_level = l.var(LOG_LEVEL, log::LevelFilter::Info, form_of(LOG_LEVEL), |t| {
        choice(
            t,
            &[
                ("debug", log::LevelFilter::Debug),
                ("info", log::LevelFilter::Info),
                ("warn", log::LevelFilter::Warn),
                ("warning", log::LevelFilter::Warn),
                ("error", log::LevelFilter::Error),
            ],
        )
    });

    let log_format = l.var(LOG_FORMAT, LogFormat::Text, form_of(LOG_FORMAT), |t| {
        choice(t, &[("text", LogFormat::Text), ("json", LogFormat::Json)])
    });

    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    let heartbeat = l.var(HEARTBEAT, secs(1), form_of(HEARTBEAT), |t| {
        duration(t, false)
    });
    let indirect_probe_k = l.var(INDIRECT_PROBE_K, 2, form_of(INDIRECT_PROBE_K), |t| {
        int(t, 0)
    });
    let suspicion_mult = l.var(SUSPICION_MULT, 3, form_of(SUSPICION_MULT), |t| int(t, 1));
    let gossip_interval = l.var(GOSSIP_INTERVAL, secs(1), form_of(GOSSIP_INTERVAL), |t| {
        duration(t, false)
    });
    let hint_ttl = l.var(HINT_TTL, secs(30), form_of(HINT_TTL), |t| duration(t, true));
    let hint_replay = l.var(HINT_REPLAY, ms(200), form_of(HINT_REPLAY), |t| {
        duration(t, false)
    });
    let hint_max_per_node = l.var(
        HINT_MAX_PER_NODE,
        100_000,
        form_of(HINT_MAX_PER_NODE),
        |t| int(t, 1),
    );
    let hint_max_bytes = l.var(HINT_MAX_BYTES, 256 << 20, form_of(HINT_MAX_BYTES), |t| {
        size(t, 1, u64::MAX)
    });
    let rebalance_interval = l.var(
        REBALANCE_INTERVAL,
        ms(250),
        form_of(REBALANCE_INTERVAL),
        |t| duration(t, false),
    );
    let rebalance_batch = l.var(REBALANCE_BATCH, 128, form_of(REBALANCE_BATCH), |t| {
        int(t, 1)
    });
    let anti_entropy_interval = l.var(
        ANTI_ENTROPY_INTERVAL,
        secs(30),
        form_of(ANTI_ENTROPY_INTERVAL),
        |t| duration(t, true),
    );
    let tombstone_ttl = l.var(TOMBSTONE_TTL, secs(600), form_of(TOMBSTONE_TTL), |t| {
        duration(t, false)
    });
    let write_consistency = l.var(
        WRITE_CONSISTENCY,
        Consistency::Quorum,
        form_of(WRITE_CONSISTENCY),
        |t| choice(t, &CONSISTENCY),
    );
    let read_consistency = l.var(
        READ_CONSISTENCY,
        Consistency::One,
        form_of(READ_CONSISTENCY),
        |t| choice(t, &CONSISTENCY),
    );
    // The 12 MiB cap keeps a base64-encoded value inside the dist listener's 17 MiB body cap.
    let max_body = l.var(MAX_BODY, 4 << 20, form_of(MAX_BODY), |t| {
        size(t, 1 << 10, 12 << 20)
    });
    let max_batch = l.var(MAX_BATCH, 1000, form_of(MAX_BATCH), |t| int(t, 1));
    let max_conns = l.var(MAX_CONNS, 10_000, form_of(MAX_CONNS), |t| int(t, 1));
    let cores_set: Option<usize> = l.var(CORES, None, form_of(CORES), |t| int(t, 1).map(Some));

    // An empty mask means the caller could not read it: CPU_SET is then taken on trust, and
    // without it the node runs one data core on CPU 0.
    let mut mask = affinity.to_vec();
    mask.sort_unstable();
    mask.dedup();
    let cpu_form = if mask.is_empty() {
        form_of(CPU_SET).to_string()
    } else {
        format!(
            "{}, of usable CPUs only (usable CPUs: {})",
            form_of(CPU_SET),
            format_cpu_list(&mask)
        )
    };
    let cpu_set_set: Option<Vec<usize>> = l.var(CPU_SET, None, &cpu_form, |t| {
        let cpus = parse_cpu_list(t).map_err(Some)?;
        let missing: Vec<usize> = cpus
            .iter()
            .copied()
            .filter(|c| !mask.is_empty() && !mask.contains(c))
            .collect();
        if missing.is_empty() {
            Ok(Some(cpus))
        } else {
            let list = format_cpu_list(&missing);
            Err(Some(format!(
                "CPUs {list} are not in the process affinity mask"
            )))
        }
    });
    let shutdown_timeout = l.var(SHUTDOWN_TIMEOUT, secs(30), form_of(SHUTDOWN_TIMEOUT), |t| {
        duration(t, false)
    });
    // Unset: long enough for a load balancer polling /health every second or two to move away
    // before idle keep-alive connections are closed, but never more than a quarter of the
    // shutdown deadline, so a short SHUTDOWN_TIMEOUT needs no DRAIN_GRACE of its own.
    let default_grace = DEFAULT_DRAIN_GRACE.min(shutdown_timeout / 4);
    let drain_grace = l.var(DRAIN_GRACE, default_grace, form_of(DRAIN_GRACE), |t| {
        duration(t, true)
    });

    let tls_paths = crate::tls::TlsPaths {
        client: client_tls(&mut l, API_TLS_CERT, API_TLS_KEY, API_TLS_CLIENT_CA),
        mgmt: client_tls(&mut l, MGMT_TLS_CERT, MGMT_TLS_KEY, MGMT_TLS_CLIENT_CA),
        dist: dist_tls(&mut l),
    };

    let oidc_config = oidc(&mut l);

    for (name, fix) in REFUSED {
        if l.value(name).is_some() {
            l.errors
                .push(ConfigError::new(format!("{name} is not supported: {fix}")));
        }
    }

    // ops.md §7.1: CPU_SET, else the affinity mask; one data core fewer than CPUs from 3 CPUs on
    // so the control core gets a CPU of its own.
    let cpu_set = match cpu_set_set {
        Some(cpus) => cpus,
        None if mask.is_empty() => vec![0],
        None => mask,
    };
    let n = cpu_set.len();
    let cores = cores_set.unwrap_or(if n >= 3 { n - 1 } else { n });

    let config = Config {
        node_id,
        api_addr,
        mgmt_addr,
        dist_addr,
        dist_advertise,
        seeds,
        replication,
        capacity,
        max_memory,
        eviction,
        auth_token,
        auth_config,
        api_advertise,
        policy: None,
        log_level,
        log_format,
        heartbeat,
        indirect_probe_k,
        suspicion_mult,
        gossip_interval,
        hint_ttl,
        hint_replay,
        hint_max_per_node,
        hint_max_bytes,
        rebalance_interval,
        rebalance_batch,
        anti_entropy_interval,
        tombstone_ttl,
        write_consistency,
        read_consistency,
        max_body,
        max_batch,
        max_conns,
        cores,
        cpu_set,
        shutdown_timeout,
        drain_grace,
        tls_paths,
        tls: Default::default(),
        oidc_config,
        oidc: None,
        unknown_vars,
    };
    checks::cross_check(&mut l, &config);
    if l.errors.is_empty() {
        Ok(config)
    } else {
        Err(l.errors)
    }
}
