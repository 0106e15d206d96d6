//! Prometheus text exposition 0.0.4 of `/metrics` (ops.md §1.8).

use std::fmt::Write;

use super::dist::{prom_name, Kind, FIELDS, N};
use super::{CoreSnapshot, FAMILIES, STATUSES};

/// Histogram bucket bounds in seconds (ops.md §1.8).
pub const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// Everything `/metrics` shows, gathered by the control core.
pub struct PromInput<'a> {
    pub uptime_s: u64,
    pub draining: bool,
    pub capacity_items: u64,
    pub max_memory: u64,
    pub cores: &'a [CoreSnapshot],
    pub dist: [u64; N],
    /// (listener, route, status) -> responses, for the mgmt and dist listeners.
    pub requests: Vec<((&'static str, &'static str, u16), u64)>,
    pub mgmt_conns: u64,
    pub dist_conns: u64,
    pub mgmt_rejected: u64,
    pub dist_rejected: u64,
    /// Requests sent to peers by dist route label.
    pub peer_requests: Vec<(&'static str, u64)>,
}

struct Out {
    text: String,
    families: Vec<String>,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        debug_assert!(
            !self.families.iter().any(|f| f == name),
            "duplicate family {name}"
        );
        self.families.push(name.to_string());
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {v}");
        } else {
            let _ = writeln!(self.text, "{name}{{{labels}}} {v}");
        }
    }
    fn per_core(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        cores: &[CoreSnapshot],
        f: impl Fn(&CoreSnapshot) -> u64,
    ) {
        self.family(name, kind, help);
        for c in cores {
            self.sample(name, &format!("core=\"{}\"", c.core), f(c));
        }
    }
}

pub fn render(input: &PromInput<'_>) -> (String, Vec<String>) {
    let mut o = Out {
        text: String::with_capacity(16 * 1024),
        families: Vec::new(),
    };
    let cores = input.cores;
    o.family(
        "hypercache_build_info",
        "gauge",
        "Build information (always 1).",
    );
    o.sample(
        "hypercache_build_info",
        &format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        1,
    );
    o.family(
        "hypercache_uptime_seconds",
        "gauge",
        "Process uptime in seconds.",
    );
    o.sample("hypercache_uptime_seconds", "", input.uptime_s);
    o.family("hypercache_draining", "gauge", "1 while the node drains.");
    o.sample("hypercache_draining", "", u8::from(input.draining));
    o.per_core(
        "hypercache_items",
        "gauge",
        "Entries held per data core.",
        cores,
        |c| c.items,
    );
    o.per_core(
        "hypercache_bytes",
        "gauge",
        "Accounted bytes per data core.",
        cores,
        |c| c.bytes,
    );
    o.family(
        "hypercache_capacity_items",
        "gauge",
        "Configured item capacity of the node.",
    );
    o.sample("hypercache_capacity_items", "", input.capacity_items);
    o.family(
        "hypercache_max_memory_bytes",
        "gauge",
        "Configured byte cap (0 = none).",
    );
    o.sample("hypercache_max_memory_bytes", "", input.max_memory);
    o.per_core(
        "hypercache_hits_total",
        "counter",
        "Client lookups that found a live value.",
        cores,
        |c| c.hits,
    );
    o.per_core(
        "hypercache_misses_total",
        "counter",
        "Client lookups that found nothing.",
        cores,
        |c| c.misses,
    );
    o.per_core(
        "hypercache_sets_total",
        "counter",
        "Successful client writes.",
        cores,
        |c| c.sets,
    );
    o.per_core(
        "hypercache_deletes_total",
        "counter",
        "Successful client deletes.",
        cores,
        |c| c.deletes,
    );
    o.per_core(
        "hypercache_evictions_total",
        "counter",
        "Entries evicted by the policy.",
        cores,
        |c| c.evictions,
    );
    o.per_core(
        "hypercache_expirations_total",
        "counter",
        "Entries removed after their TTL.",
        cores,
        |c| c.expirations,
    );
    o.family("hypercache_connections", "gauge", "Open connections.");
    for c in cores {
        o.sample(
            "hypercache_connections",
            &format!("listener=\"client\",core=\"{}\"", c.core),
            c.connections,
        );
    }
    o.sample(
        "hypercache_connections",
        "listener=\"mgmt\",core=\"control\"",
        input.mgmt_conns,
    );
    o.sample(
        "hypercache_connections",
        "listener=\"dist\",core=\"control\"",
        input.dist_conns,
    );
    o.family(
        "hypercache_connections_rejected_total",
        "counter",
        "Connections closed at once by the connection cap.",
    );
    let rejected: u64 = cores.iter().map(|c| c.rejected).sum();
    o.sample(
        "hypercache_connections_rejected_total",
        "listener=\"client\"",
        rejected,
    );
    o.sample(
        "hypercache_connections_rejected_total",
        "listener=\"mgmt\"",
        input.mgmt_rejected,
    );
    o.sample(
        "hypercache_connections_rejected_total",
        "listener=\"dist\"",
        input.dist_rejected,
    );

    o.family(
        "hypercache_http_requests_total",
        "counter",
        "Responses sent.",
    );
    let total = super::total(cores);
    for (f, fam) in FAMILIES.iter().enumerate() {
        for (s, status) in STATUSES.iter().enumerate() {
            let n = total.requests[f][s];
            if n > 0 {
                let st = if *status == 0 {
                    "other".to_string()
                } else {
                    status.to_string()
                };
                o.sample(
                    "hypercache_http_requests_total",
                    &format!("listener=\"client\",route=\"{fam}\",status=\"{st}\""),
                    n,
                );
            }
        }
    }
    for ((listener, route, status), n) in &input.requests {
        o.sample(
            "hypercache_http_requests_total",
            &format!("listener=\"{listener}\",route=\"{route}\",status=\"{status}\""),
            n,
        );
    }
    let name = "hypercache_http_request_duration_seconds";
    o.family(name, "histogram", "Client request latency.");
    for (f, fam) in FAMILIES.iter().enumerate() {
        let h = &total.latency[f];
        for b in BUCKETS {
            let us = (b * 1e6) as u64;
            let n = if h.is_empty() {
                0
            } else {
                h.count_between(0, us)
            };
            o.sample(
                &format!("{name}_bucket"),
                &format!("route=\"{fam}\",le=\"{b}\""),
                n,
            );
        }
        o.sample(
            &format!("{name}_bucket"),
            &format!("route=\"{fam}\",le=\"+Inf\""),
            h.len(),
        );
        let sum = if h.is_empty() {
            0.0
        } else {
            h.mean() * h.len() as f64 / 1e6
        };
        o.sample(&format!("{name}_sum"), &format!("route=\"{fam}\""), sum);
        o.sample(
            &format!("{name}_count"),
            &format!("route=\"{fam}\""),
            h.len(),
        );
    }
    o.per_core(
        "hypercache_cross_core_messages_total",
        "counter",
        "Messages a data core sent to another core (the batched lookups of one pipelined read count once).",
        cores,
        |c| c.cross_core,
    );
    o.family(
        "hypercache_peer_requests_total",
        "counter",
        "Requests sent to peers, by dist route.",
    );
    for (route, n) in &input.peer_requests {
        o.sample(
            "hypercache_peer_requests_total",
            &format!("route=\"{route}\""),
            n,
        );
    }
    for (i, (field, kind)) in FIELDS.iter().enumerate() {
        let (pname, nanos) = prom_name(field, *kind);
        let t = if *kind == Kind::Counter {
            "counter"
        } else {
            "gauge"
        };
        o.family(&pname, t, &format!("/dist/metrics field {field}."));
        if nanos {
            o.sample(&pname, "", input.dist[i] as f64 / 1e9);
        } else {
            o.sample(&pname, "", input.dist[i]);
        }
    }
    (o.text, o.families)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_unique_and_typed() {
        let cores = vec![CoreSnapshot::default()];
        let input = PromInput {
            uptime_s: 1,
            draining: false,
            capacity_items: 10,
            max_memory: 0,
            cores: &cores,
            dist: [0; N],
            requests: vec![],
            mgmt_conns: 0,
            dist_conns: 0,
            mgmt_rejected: 0,
            dist_rejected: 0,
            peer_requests: vec![("internal_set", 2)],
        };
        let (text, fams) = render(&input);
        let mut seen = std::collections::HashSet::new();
        for f in &fams {
            assert!(seen.insert(f), "duplicate family {f}");
            assert_eq!(text.matches(&format!("# TYPE {f} ")).count(), 1);
            if text.contains(&format!("# TYPE {f} counter")) {
                assert!(f.ends_with("_total"), "{f}");
            }
        }
        assert!(text.contains("hypercache_dist_forward_get_total 0"));
        assert!(text.contains("hypercache_peer_requests_total{route=\"internal_set\"} 2"));
    }
}
