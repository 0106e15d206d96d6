//! The variable table of ops.md §2.4 as data: name, default, accepted form and effect.
//!
//! The loader (`env.rs`) takes every accepted form it prints in an error from here, and
//! `hypercache-server --help` prints this table, so the help text and the start-up errors cannot
//! disagree. Table order is part of the contract: errors are reported in it and `/config` lists
//! `env` in it.

use super::names::*;

/// One row of the table.
pub struct VarSpec {
    pub name: &'static str,
    /// The default as an operator would write it, or how it is derived.
    pub default: &'static str,
    /// The accepted form, exactly as the invalid-value error prints it after `expected`.
    pub form: &'static str,
    pub effect: &'static str,
}

const fn row(
    name: &'static str,
    default: &'static str,
    form: &'static str,
    effect: &'static str,
) -> VarSpec {
    VarSpec {
        name,
        default,
        form,
        effect,
    }
}

pub(crate) const DURATION: &str = "a duration such as 500ms, 1s or 1m30s";
pub(crate) const DURATION_OR_OFF: &str = "0 (disables) or a duration such as 500ms, 1s or 1m30s";
pub(crate) const INT_GE1: &str = "an integer >= 1";
pub(crate) const CONSISTENCY_FORM: &str = "one, quorum or all";
const LISTEN_FORM_API: &str =
    "host:port, [ipv6]:port or :port with a port from 0 to 65535, such as :8080 or 127.0.0.1:8080";
const LISTEN_FORM_MGMT: &str =
    "host:port, [ipv6]:port or :port with a port from 0 to 65535, such as :8081 or 127.0.0.1:8081";
const LISTEN_FORM_DIST: &str =
    "host:port, [ipv6]:port or :port with a port from 0 to 65535, such as :7946 or 127.0.0.1:7946";

const PEM_CERT: &str = "a path to a PEM file: the leaf certificate, then any intermediates";
const PEM_KEY: &str =
    "a path to one unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1; RSA, ECDSA P-256/P-384 or Ed25519)";
const PEM_CA: &str = "a path to a PEM bundle of CA certificates";

/// ops.md §2.4 and security.md §1 plus `HYPERCACHE_LOG_FORMAT` (this server's addition, docs/operations.md).
pub const TABLE: [VarSpec; 49] = [
    row(NODE_ID, "the host name (node if none)", "1-128 characters of A-Z a-z 0-9 . _ -", "node identity in the ring, responses and logs"),
    row(API_ADDR, ":8080", LISTEN_FORM_API, "client listener, bound by every data core"),
    row(MGMT_ADDR, ":8081", LISTEN_FORM_MGMT, "management listener"),
    row(DIST_ADDR, ":7946", LISTEN_FORM_DIST, "dist (peer) listener; also the advertised address unless DIST_ADVERTISE is set"),
    row(DIST_ADVERTISE, "DIST_ADDR", "host:port with a host other than 0.0.0.0 or :: and a port from 1 to 65535, such as 10.0.0.5:7946", "the address peers dial"),
    row(SEEDS, "empty", "a comma list of id@host:port or host:port, such as node-2@10.0.0.2:7946,10.0.0.3:7946", "bootstrap peers"),
    row(REPLICATION, "3", INT_GE1, "owners per key, capped at the ring size"),
    row(CAPACITY, "100000", "an integer >= the number of data cores", "max entries per node"),
    row(MAX_MEMORY, "unset (no byte cap)", "a size such as 512MiB, 1GiB or 1000000000 (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)", "max accounted bytes per node"),
    row(EVICTION, "lru", "lru or clock", "eviction policy"),
    row(AUTH_TOKEN, "empty (open)", "printable ASCII without spaces (0x21-0x7E)", "bearer token on all three listeners; the peer token"),
    row(AUTH_CONFIG, "unset", "a path to a YAML or JSON policy file", "identities and scopes of the client and management listeners"),
    row(API_ADVERTISE, "API_ADDR when its host is routable, else the dist advertise host with the API port", "host:port with a host other than 0.0.0.0 or :: and a port from 1 to 65535, such as 10.0.0.5:8080", "the client API address peers and clients see (APIAddress in /cluster/members)"),
    row(LOG_LEVEL, "info", "debug, info, warn (or warning) or error", "log level"),
    row(LOG_FORMAT, "text", "text or json", "log line format: text, or one JSON object per line"),
    row(HEARTBEAT, "1s", DURATION, "probe interval; probe timeout is half of it"),
    row(INDIRECT_PROBE_K, "2", "an integer >= 0 (0 disables)", "relays asked after a failed probe"),
    row(SUSPICION_MULT, "3", INT_GE1, "a suspect becomes dead after SUSPICION_MULT x HEARTBEAT"),
    row(GOSSIP_INTERVAL, "1s", DURATION, "gossip period"),
    row(HINT_TTL, "30s", DURATION_OR_OFF, "lifetime of a queued hint; must be below TOMBSTONE_TTL"),
    row(HINT_REPLAY, "200ms", DURATION, "hint replay period"),
    row(HINT_MAX_PER_NODE, "100000", INT_GE1, "hints queued per target node"),
    row(HINT_MAX_BYTES, "256MiB", "a size >= 1 such as 256MiB, 1GB or 1048576", "bytes of hints queued on this node, all targets together"),
    row(REBALANCE_INTERVAL, "250ms", DURATION, "rebalance tick while work remains"),
    row(REBALANCE_BATCH, "128", INT_GE1, "keys per rebalance push"),
    row(ANTI_ENTROPY_INTERVAL, "30s", DURATION_OR_OFF, "anti-entropy period"),
    row(TOMBSTONE_TTL, "10m", "a duration greater than HYPERCACHE_HINT_TTL, such as 10m or 1h", "how long tombstones are kept"),
    row(WRITE_CONSISTENCY, "quorum", CONSISTENCY_FORM, "acks needed for a write"),
    row(READ_CONSISTENCY, "one", CONSISTENCY_FORM, "owners consulted per read"),
    row(MAX_BODY, "4MiB", "a size from 1KiB to 12MiB, such as 4MiB or 1048576", "request body cap, client and management listeners"),
    row(MAX_BATCH, "1000", INT_GE1, "items per batch request"),
    row(MAX_CONNS, "10000", "an integer >= the number of data cores", "client connections per node"),
    row(CORES, "CPUs - 1 from 3 CPUs on, else CPUs", "an integer from 1 to the number of usable CPUs", "number of data cores"),
    row(CPU_SET, "the process affinity mask", "a Linux cpu list such as 0-3,8,10-11 without duplicates", "CPUs used for pinning"),
    row(SHUTDOWN_TIMEOUT, "30s", DURATION, "deadline for the whole shutdown"),
    row(DRAIN_GRACE, "5s (at most a quarter of SHUTDOWN_TIMEOUT)", "0 or a duration such as 500ms, 1s or 1m30s", "pause between drain and closing the client listener and its idle connections"),
    row(API_TLS_CERT, "unset (plaintext)", PEM_CERT, "the client listener serves TLS 1.2/1.3 with this chain; needs API_TLS_KEY; reloaded on SIGHUP"),
    row(API_TLS_KEY, "unset", PEM_KEY, "the private key of API_TLS_CERT"),
    row(API_TLS_CLIENT_CA, "unset", PEM_CA, "the client listener requires client certificates that chain to this bundle (mTLS)"),
    row(MGMT_TLS_CERT, "unset (plaintext)", PEM_CERT, "the management listener serves TLS; needs MGMT_TLS_KEY; reloaded on SIGHUP"),
    row(MGMT_TLS_KEY, "unset", PEM_KEY, "the private key of MGMT_TLS_CERT"),
    row(MGMT_TLS_CLIENT_CA, "unset", PEM_CA, "the management listener requires client certificates that chain to this bundle"),
    row(DIST_TLS_CERT, "unset (plaintext)", PEM_CERT, "mutual TLS between peers: the node's certificate, for serving and dialling (all three DIST_TLS_* or none)"),
    row(DIST_TLS_KEY, "unset", PEM_KEY, "the private key of DIST_TLS_CERT"),
    row(DIST_TLS_CA, "unset", PEM_CA, "the cluster CA: peers' certificates must chain to it, in both directions"),
    row(OIDC_ISSUER, "unset (no OIDC)", "an https:// URL such as https://idp.example.com/realms/main (http:// only for localhost or a loopback IP)", "JWTs from this issuer authenticate (discovery and keys fetched at start); needs OIDC_AUDIENCE"),
    row(OIDC_AUDIENCE, "unset", "the audience a token's aud must contain", "required with OIDC_ISSUER"),
    row(OIDC_IDENTITY_CLAIM, "sub", "a claim name", "the claim that becomes the identity; only with OIDC_ISSUER"),
    row(OIDC_SCOPE_CLAIM, "scope", "a claim name", "the claim with the scopes (a space-separated string or a list); only with OIDC_ISSUER"),
];

/// The accepted form of `name` (a table row always exists: the names are the table's).
pub(crate) fn form_of(name: &str) -> &'static str {
    TABLE
        .iter()
        .find(|r| r.name == name)
        .map_or("a valid value", |r| r.form)
}

/// `hypercache-server --help`: usage, then every variable with its default and accepted form.
pub fn help_text(version: &str) -> String {
    let mut s = format!(
        "hypercache-server {version}: a thread-per-core distributed in-memory cache\n\n\
         Usage:\n  hypercache-server                 start the node\n  \
         hypercache-server check-config    validate the environment, print the effective\n                                    \
         configuration (secrets redacted) and exit 0, or 2 when invalid\n  \
         hypercache-server --version       print the version and git commit\n  \
         hypercache-server --help          print this text\n\n\
         Configuration comes only from these environment variables. Values are trimmed; an empty\n\
         value counts as unset; an invalid value stops start-up with exit code 2.\n\n"
    );
    for r in &TABLE {
        s.push_str(&format!(
            "  {}\n      default: {}\n      accepted: {}\n      {}\n",
            r.name, r.default, r.form, r.effect
        ));
    }
    if !REFUSED.is_empty() {
        s.push_str("\nNot supported (start-up stops when set):\n");
    }
    for (name, fix) in REFUSED {
        s.push_str(&format!("  {name}: {fix}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_variable_with_its_form() {
        let h = help_text("0.0.0");
        for r in &TABLE {
            let at = h.find(&format!("  {}\n", r.name)).expect(r.name);
            assert!(h[at..].contains(r.form), "{}", r.name);
        }
        for (name, _) in REFUSED {
            assert!(h.contains(name), "{name}");
        }
    }
}
