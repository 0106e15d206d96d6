//! The cross-checks of ops.md §2.5: rules between variables, run after every variable passed
//! (or failed) its own check.
//!
//! Each rule exists to stop a configuration that would start but misbehave later: a hint that
//! resurrects a deleted key, a shutdown that never drains, a shard with no room for one value,
//! a cluster whose peers cannot dial this node. A rule is skipped when one of its inputs failed
//! on its own, so the operator is not told about a value that was never configured.

use std::time::Duration;

use super::addr::HostPort;
use super::cpuset::format_cpu_list;
use super::duration::{format_go_duration, go_quote};
use super::loader::Loader;
use super::names::*;
use super::{Config, ConfigError};

/// The advertise failure of ops.md §2.5, shared with `Config::advertised_addr`. The line names
/// HYPERCACHE_DIST_ADVERTISE and an example `host:port`, as the start-up table (§4) requires.
pub(crate) fn unroutable_error(hp: &HostPort, dist_addr_text: &str) -> ConfigError {
    let port = if hp.port == 0 { 7946 } else { hp.port };
    ConfigError::new(format!(
        "HYPERCACHE_SEEDS is set but the advertised dist address {} (from {DIST_ADDR}={}) is not \
         routable: its host is empty, 0.0.0.0 or :: or its port is 0; set {DIST_ADVERTISE} to a \
         host:port peers can dial, such as 10.0.0.5:{port}",
        go_quote(&hp.to_string()),
        go_quote(dist_addr_text)
    ))
}

/// Runs every rule of ops.md §2.5 in its order on the loaded values, recording failures in `l`.
pub(crate) fn cross_check(l: &mut Loader<'_>, c: &Config) {
    let dur = |d: Duration| format_go_duration(d);
    if l.ok(&[HINT_TTL, TOMBSTONE_TTL]) && c.tombstone_ttl <= c.hint_ttl {
        let msg = format!(
            "invalid {TOMBSTONE_TTL}={}: expected a duration greater than {HINT_TTL}={}, so a \
             replayed write never outlives the tombstone that blocks it",
            l.shown(TOMBSTONE_TTL, dur(c.tombstone_ttl)),
            l.shown(HINT_TTL, dur(c.hint_ttl))
        );
        l.fail(TOMBSTONE_TTL, msg);
    }
    if l.ok(&[DRAIN_GRACE, SHUTDOWN_TIMEOUT]) && c.drain_grace >= c.shutdown_timeout {
        let msg = format!(
            "invalid {DRAIN_GRACE}={}: expected a duration below {SHUTDOWN_TIMEOUT}={}, so the \
             shutdown has time left after the drain pause",
            l.shown(DRAIN_GRACE, dur(c.drain_grace)),
            l.shown(SHUTDOWN_TIMEOUT, dur(c.shutdown_timeout))
        );
        l.fail(DRAIN_GRACE, msg);
    }

    // The number of data cores is only meaningful once CORES and CPU_SET agree; until then the
    // rules that divide by it are skipped (the CORES failure below explains the problem).
    let n = c.cpu_set.len();
    let cores = c.cores;
    let cores_known = l.ok(&[CORES, CPU_SET]) && cores <= n;
    // Every shard needs at least one entry and one connection slot.
    for (name, value) in [(CAPACITY, c.capacity), (MAX_CONNS, c.max_conns as u64)] {
        if cores_known && l.ok(&[name]) && value < cores as u64 {
            let msg = format!(
                "invalid {name}={}: expected an integer >= the number of data cores ({cores})",
                l.shown(name, value.to_string())
            );
            l.fail(name, msg);
        }
    }
    // Each shard gets MAX_MEMORY / cores bytes; twice the largest value must fit in it.
    let need = (cores as u64).saturating_mul(2).saturating_mul(c.max_body);
    if let Some(m) = c.max_memory.filter(|&m| m < need) {
        if cores_known && l.ok(&[MAX_MEMORY, MAX_BODY]) {
            let msg = format!(
                "invalid {MAX_MEMORY}={}: expected a size >= data cores x 2 x {MAX_BODY} = \
                 {cores} x 2 x {} = {need} bytes, so any accepted value fits in its shard",
                l.shown(MAX_MEMORY, m.to_string()),
                c.max_body
            );
            l.fail(MAX_MEMORY, msg);
        }
    }
    // MAX_BODY's 1KiB..12MiB range is checked with the variable itself (env.rs).

    // With seeds, peers must be able to dial us. A DIST_ADVERTISE that passed its own check is
    // routable, and port 0 in DIST_ADDR is replaced by the bound port, so only the DIST_ADDR host
    // can be wrong here; Config::advertised_addr repeats the check after binding.
    if l.ok(&[DIST_ADDR, DIST_ADVERTISE, SEEDS]) && !c.seeds.is_empty() {
        let hp = c.advertised_host_port(1);
        if !hp.is_routable() {
            let shown = HostPort {
                port: c.dist_addr.addr.port(),
                ..hp
            };
            l.errors.push(unroutable_error(&shown, &c.dist_addr.text));
        }
    }

    if l.ok(&[CORES, CPU_SET]) && cores > n {
        let source = if l.value(CPU_SET).is_some() {
            " (HYPERCACHE_CPU_SET)"
        } else {
            ""
        };
        let msg = format!(
            "invalid {CORES}={}: expected an integer from 1 to the number of usable CPUs ({n}); \
             usable CPUs{source}: {}",
            l.shown(CORES, cores.to_string()),
            format_cpu_list(&c.cpu_set)
        );
        l.fail(CORES, msg);
    }
}
