//! The names of ops.md §2.4 (the variable table) and §2.6 (refused Go variables).
//!
//! One constant per variable so a typo in a name is a compile error rather than a silently
//! ignored setting. The ordered table with defaults and forms is `table.rs`.

pub(crate) const NODE_ID: &str = "HYPERCACHE_NODE_ID";
pub(crate) const API_ADDR: &str = "HYPERCACHE_API_ADDR";
pub(crate) const MGMT_ADDR: &str = "HYPERCACHE_MGMT_ADDR";
pub(crate) const DIST_ADDR: &str = "HYPERCACHE_DIST_ADDR";
pub(crate) const DIST_ADVERTISE: &str = "HYPERCACHE_DIST_ADVERTISE";
pub(crate) const SEEDS: &str = "HYPERCACHE_SEEDS";
pub(crate) const REPLICATION: &str = "HYPERCACHE_REPLICATION";
pub(crate) const CAPACITY: &str = "HYPERCACHE_CAPACITY";
pub(crate) const MAX_MEMORY: &str = "HYPERCACHE_MAX_MEMORY";
pub(crate) const EVICTION: &str = "HYPERCACHE_EVICTION";
pub(crate) const AUTH_TOKEN: &str = "HYPERCACHE_AUTH_TOKEN";
pub(crate) const AUTH_CONFIG: &str = "HYPERCACHE_AUTH_CONFIG";
pub(crate) const API_ADVERTISE: &str = "HYPERCACHE_API_ADVERTISE";
pub(crate) const LOG_LEVEL: &str = "HYPERCACHE_LOG_LEVEL";
pub(crate) const LOG_FORMAT: &str = "HYPERCACHE_LOG_FORMAT";
pub(crate) const HEARTBEAT: &str = "HYPERCACHE_HEARTBEAT";
pub(crate) const INDIRECT_PROBE_K: &str = "HYPERCACHE_INDIRECT_PROBE_K";
pub(crate) const SUSPICION_MULT: &str = "HYPERCACHE_SUSPICION_MULT";
pub(crate) const GOSSIP_INTERVAL: &str = "HYPERCACHE_GOSSIP_INTERVAL";
pub(crate) const HINT_TTL: &str = "HYPERCACHE_HINT_TTL";
pub(crate) const HINT_REPLAY: &str = "HYPERCACHE_HINT_REPLAY";
pub(crate) const HINT_MAX_PER_NODE: &str = "HYPERCACHE_HINT_MAX_PER_NODE";
pub(crate) const HINT_MAX_BYTES: &str = "HYPERCACHE_HINT_MAX_BYTES";
pub(crate) const REBALANCE_INTERVAL: &str = "HYPERCACHE_REBALANCE_INTERVAL";
pub(crate) const REBALANCE_BATCH: &str = "HYPERCACHE_REBALANCE_BATCH";
pub(crate) const ANTI_ENTROPY_INTERVAL: &str = "HYPERCACHE_ANTI_ENTROPY_INTERVAL";
pub(crate) const TOMBSTONE_TTL: &str = "HYPERCACHE_TOMBSTONE_TTL";
pub(crate) const WRITE_CONSISTENCY: &str = "HYPERCACHE_WRITE_CONSISTENCY";
pub(crate) const READ_CONSISTENCY: &str = "HYPERCACHE_READ_CONSISTENCY";
pub(crate) const MAX_BODY: &str = "HYPERCACHE_MAX_BODY";
pub(crate) const MAX_BATCH: &str = "HYPERCACHE_MAX_BATCH";
pub(crate) const MAX_CONNS: &str = "HYPERCACHE_MAX_CONNS";
pub(crate) const CORES: &str = "HYPERCACHE_CORES";
pub(crate) const CPU_SET: &str = "HYPERCACHE_CPU_SET";
pub(crate) const SHUTDOWN_TIMEOUT: &str = "HYPERCACHE_SHUTDOWN_TIMEOUT";
pub(crate) const DRAIN_GRACE: &str = "HYPERCACHE_DRAIN_GRACE";
pub(crate) const API_TLS_CERT: &str = "HYPERCACHE_API_TLS_CERT";
pub(crate) const API_TLS_KEY: &str = "HYPERCACHE_API_TLS_KEY";
pub(crate) const API_TLS_CLIENT_CA: &str = "HYPERCACHE_API_TLS_CLIENT_CA";
pub(crate) const MGMT_TLS_CERT: &str = "HYPERCACHE_MGMT_TLS_CERT";
pub(crate) const MGMT_TLS_KEY: &str = "HYPERCACHE_MGMT_TLS_KEY";
pub(crate) const MGMT_TLS_CLIENT_CA: &str = "HYPERCACHE_MGMT_TLS_CLIENT_CA";
pub(crate) const DIST_TLS_CERT: &str = "HYPERCACHE_DIST_TLS_CERT";
pub(crate) const DIST_TLS_KEY: &str = "HYPERCACHE_DIST_TLS_KEY";
pub(crate) const DIST_TLS_CA: &str = "HYPERCACHE_DIST_TLS_CA";
pub(crate) const OIDC_ISSUER: &str = "HYPERCACHE_OIDC_ISSUER";
pub(crate) const OIDC_AUDIENCE: &str = "HYPERCACHE_OIDC_AUDIENCE";
pub(crate) const OIDC_IDENTITY_CLAIM: &str = "HYPERCACHE_OIDC_IDENTITY_CLAIM";
pub(crate) const OIDC_SCOPE_CLAIM: &str = "HYPERCACHE_OIDC_SCOPE_CLAIM";

/// ops.md §2.6: Go server variables that must stop start-up rather than be ignored, since
/// ignoring them would serve plaintext or unauthenticated traffic to someone who asked for more.
/// Empty now that TLS (security.md §2, §3) and OIDC (§7) are implemented; kept so a future
/// Go variable this server cannot honour is refused the same way.
pub const REFUSED: [(&str, &str); 0] = [];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut all: Vec<&str> = super::super::table::TABLE.iter().map(|r| r.name).collect();
        all.extend(REFUSED.iter().map(|(n, _)| *n));
        assert_eq!(all.len(), 49);
        for n in &all {
            assert!(n.starts_with("HYPERCACHE_"), "{n}");
        }
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 49);
    }
}
