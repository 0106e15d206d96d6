//! Membership: the SWIM + Lifeguard state machine of cluster.md §2.
//!
//! This module is pure: no sockets, no clocks, no threads. The driver on the control core does the
//! HTTP and the timers, feeds results in with the current time in milliseconds and carries out the
//! returned [`Effect`]s. Keeping the protocol free of I/O is what lets every row of the §2.8 table
//! be unit-tested with a hand-driven clock. Randomness (probe order, relays, gossip targets) comes
//! from a seeded `fastrand::Rng` so tests are reproducible for a given seed.
//!
//! Layout: this file holds the types, the constructor and the read-only views; `select.rs` picks
//! probe targets, relays and gossip partners; `update.rs` holds every method that changes the
//! table (merge, probe results, timers, leave); `tests.rs` the unit tests.

use std::collections::BTreeMap;

mod select;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gossip;
#[cfg(test)]
mod tests_lifecycle;
mod update;

/// LHM range is 0..=8 (cluster.md 2.5).
const LHM_MAX: u64 = 8;
/// Immediate pushes go to up to this many random ring members (2.3, 2.4, 2.6).
const PUSH_FANOUT: usize = 3;
/// Dead/left retention floor (2.3).
const MIN_RETENTION_MS: u64 = 5_000;
/// Retention is this many times max(T, G) (2.3).
const RETENTION_MULT: u64 = 30;
/// The duplicate-node-id error is rate limited to one line per this interval (2.6).
const DUP_LOG_INTERVAL_MS: u64 = 60_000;

/// A member state (cluster.md 2.1). Variant order is the precedence rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Alive,
    Suspect,
    Dead,
    Left,
}

impl State {
    /// The wire and log spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Alive => "alive",
            State::Suspect => "suspect",
            State::Dead => "dead",
            State::Left => "left",
        }
    }

    /// Precedence rank: alive 0 < suspect 1 < dead 2 < left 3.
    pub fn rank(&self) -> u8 {
        match self {
            State::Alive => 0,
            State::Suspect => 1,
            State::Dead => 2,
            State::Left => 3,
        }
    }

    /// Ring members are alive and suspect members (cluster.md §0).
    pub fn is_ring(&self) -> bool {
        matches!(self, State::Alive | State::Suspect)
    }
}

/// True iff claim `(inc', state')` replaces the local view `(inc, state)` (rule 2.1): strictly
/// greater, lexicographically. Equal pairs change nothing, so a running suspicion timer survives
/// the same rumour arriving again.
pub fn supersedes(new_inc: u64, new_state: State, inc: u64, state: State) -> bool {
    (new_inc, new_state.rank()) > (inc, state.rank())
}

/// One member as carried by `/internal/gossip` (cluster.md 2.6 field names).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub id: String,
    pub address: String,
    /// The member's client API address (cluster.md §1), `""` while unknown; optional on input
    /// (the Go server does not send it).
    #[serde(default)]
    pub api_address: String,
    pub state: State,
    pub incarnation: u64,
}

/// Protocol timers from the configuration (ops.md): T, S/T, G and K.
#[derive(Clone, Copy, Debug)]
pub struct Timers {
    pub heartbeat_ms: u64,
    pub suspicion_mult: u64,
    pub gossip_ms: u64,
    pub indirect_k: usize,
}

/// What one probe cycle observed (cluster.md 2.3 steps 1–2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Direct probe answered 200.
    Ack,
    /// Direct probe answered 503 `{"status":"draining"}`.
    Draining,
    /// Direct probe failed. relays_asked = relay requests sent; relay_ack = some relay answered 200;
    /// relays_silent = relays_asked > 0 and NONE of them gave any HTTP response at all.
    Failed {
        relays_asked: usize,
        relay_ack: bool,
        relays_silent: bool,
    },
}

/// Work for the driver. A method returns each kind at most once, in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The set of ring members changed: rebuild the ring from `ring_members()`.
    RingChanged,
    /// The member table changed (add, forget, state, incarnation or address): SSE event.
    /// `Counters::membership_version` has already been raised, once per changed member.
    TableChanged,
    /// Push the full table (`table()`) to these dist addresses now (immediate pushes of
    /// 2.3/2.4/2.6/2.7). Never empty, never contains the own address, no duplicates.
    GossipTo(Vec<String>),
}

/// The membership counters of cluster.md §14 (gauges are computed by `state_counts` / `lhm`).
#[derive(Default, Clone, Debug)]
pub struct Counters {
    pub nodes_suspect: u64,
    pub nodes_dead: u64,
    pub nodes_removed: u64,
    pub heartbeat_success: u64,
    pub heartbeat_failure: u64,
    pub indirect_probe_success: u64,
    pub indirect_probe_failure: u64,
    pub indirect_probe_refuted: u64,
    pub membership_version: u64,
}

/// A peer as this node sees it.
#[derive(Clone, Debug)]
struct Member {
    address: String,
    api_address: String,
    state: State,
    incarnation: u64,
    /// When the current (state, incarnation) was taken. For `suspect` it is the start of the
    /// suspicion timer, for `dead`/`left` the start of retention. Reset on every replacement, so a
    /// suspicion timer is always "suspect at this incarnation since".
    since_ms: u64,
    /// A probe cycle is in flight (2.3: a new cycle starts only once the previous one finished).
    probing: bool,
    /// Suspected only on hearsay (a gossiped `dead` or `suspect`, 2.8), with no failed probe
    /// cycle of this node's own. Hearsay is not confirmation: a `dead` rumor must not finish
    /// the member off; the suspicion timer or the member's refutation decides. Cleared by
    /// every other transition and by a failed probe cycle.
    hearsay: bool,
}

/// A configured seed. `id` is None for a bare `host:port` seed until its id is learned.
#[derive(Clone, Debug)]
struct Seed {
    id: Option<String>,
    addr: String,
}

/// The membership state machine of one node.
pub struct Membership {
    self_id: String,
    self_addr: String,
    /// This node's advertised client API address (`set_self_api`), `""` until known.
    self_api: String,
    incarnation: u64,
    leaving: bool,
    lhm: u64,
    timers: Timers,
    /// Peers only (self is synthesised by `table()`); BTreeMap keeps byte order of ids.
    members: BTreeMap<String, Member>,
    seeds: Vec<Seed>,
    rng: fastrand::Rng,
    /// Round-robin cursor over dead members and unresolved seeds (2.6).
    rr: usize,
    counters: Counters,
    last_dup_log_ms: Option<u64>,
}

impl Membership {
    /// seeds: (Some(id), "host:port") for id@ seeds (inserted alive, incarnation 0, ring members at
    /// once), (None, "host:port") for pending seeds. Entries equal to self (id or address) skipped.
    /// incarnation = start time ms.
    pub fn new(
        self_id: &str,
        self_addr: &str,
        incarnation: u64,
        timers: Timers,
        seeds: &[(Option<String>, String)],
        rng_seed: u64,
    ) -> Membership {
        let mut m = Membership {
            self_id: self_id.to_string(),
            self_addr: self_addr.to_string(),
            self_api: String::new(),
            incarnation,
            leaving: false,
            lhm: 0,
            timers,
            members: BTreeMap::new(),
            seeds: Vec::new(),
            rng: fastrand::Rng::with_seed(rng_seed),
            rr: 0,
            counters: Counters::default(),
            last_dup_log_ms: None,
        };
        for (id, addr) in seeds {
            let is_self = addr == self_addr || id.as_deref() == Some(self_id);
            // Config validation happens in the driver; re-checking here keeps garbage out of the
            // table even if a caller forgets.
            let bad = !valid_address(addr) || id.as_deref().is_some_and(|i| !valid_id(i));
            if is_self || bad || m.seeds.iter().any(|s| s.addr == *addr) {
                continue;
            }
            m.seeds.push(Seed {
                id: id.clone(),
                addr: addr.clone(),
            });
            if let Some(id) = id {
                // An id@ seed is a ring member at once (2.8 first row); the first address wins
                // if the same id is listed twice.
                m.members.entry(id.clone()).or_insert_with(|| Member {
                    address: addr.clone(),
                    api_address: String::new(),
                    state: State::Alive,
                    incarnation: 0,
                    since_ms: 0,
                    probing: false,
                    hearsay: false,
                });
            }
        }
        m
    }

    pub fn self_id(&self) -> &str {
        &self.self_id
    }

    /// Sets this node's advertised client API address (cluster.md §1), carried in every table
    /// this node gossips from now on.
    pub fn set_self_api(&mut self, api_address: &str) {
        self.self_api = api_address.to_string();
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The local health multiplier (2.5), shown as `LocalHealth`.
    pub fn lhm(&self) -> u64 {
        self.lhm
    }

    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The own entry's state: `alive` until the node drains (2.8 last line).
    fn self_state(&self) -> State {
        if self.leaving {
            State::Left
        } else {
            State::Alive
        }
    }

    /// Full table, self included, sorted by id (byte order).
    pub fn table(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self
            .members
            .iter()
            .map(|(id, m)| Entry {
                id: id.clone(),
                address: m.address.clone(),
                api_address: m.api_address.clone(),
                state: m.state,
                incarnation: m.incarnation,
            })
            .collect();
        let me = Entry {
            id: self.self_id.clone(),
            address: self.self_addr.clone(),
            api_address: self.self_api.clone(),
            state: self.self_state(),
            incarnation: self.incarnation,
        };
        let pos = out.partition_point(|e| e.id.as_bytes() < me.id.as_bytes());
        out.insert(pos, me);
        out
    }

    /// Ring member ids: alive+suspect peers plus self (self excluded while leaving unless no other
    /// member is alive), sorted.
    pub fn ring_members(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.state.is_ring())
            .map(|(id, _)| id.clone())
            .collect();
        if self.self_in_ring() {
            let pos = out.partition_point(|id| id.as_bytes() < self.self_id.as_bytes());
            out.insert(pos, self.self_id.clone());
        }
        out
    }

    /// §11: a lone drained node keeps serving its data, so it stays in its own ring while no
    /// other member is `alive` (suspect ones do not count: they may be gone).
    pub(super) fn self_in_ring(&self) -> bool {
        !self.leaving || !self.members.values().any(|m| m.state == State::Alive)
    }

    /// Address of a member (self included).
    pub fn address_of(&self, id: &str) -> Option<&str> {
        if id == self.self_id {
            return Some(&self.self_addr);
        }
        self.members.get(id).map(|m| m.address.as_str())
    }

    /// State of a member (self included: alive, or left while leaving).
    pub fn state_of(&self, id: &str) -> Option<State> {
        if id == self.self_id {
            return Some(self.self_state());
        }
        self.members.get(id).map(|m| m.state)
    }

    /// Direct probe timeout T/2 x (1+LHM), at least 1 ms so T = 1 ms still probes.
    pub fn direct_timeout_ms(&self) -> u64 {
        (self.timers.heartbeat_ms.saturating_mul(1 + self.lhm) / 2).max(1)
    }

    /// Relay request timeout T x (1+LHM).
    pub fn relay_timeout_ms(&self) -> u64 {
        self.timers.heartbeat_ms.saturating_mul(1 + self.lhm)
    }

    /// Suspicion timeout S x (1+LHM), S = SUSPICION_MULT x T.
    pub fn suspicion_timeout_ms(&self) -> u64 {
        self.timers
            .heartbeat_ms
            .saturating_mul(self.timers.suspicion_mult)
            .saturating_mul(1 + self.lhm)
    }

    /// Dead/left retention: 30 x max(T, G), at least 5 s (not scaled by LHM).
    pub fn retention_ms(&self) -> u64 {
        let base = self.timers.heartbeat_ms.max(self.timers.gossip_ms);
        base.saturating_mul(RETENTION_MULT).max(MIN_RETENTION_MS)
    }

    /// Counts per state, self counted as alive (or left while leaving): (alive, suspect, dead, left).
    pub fn state_counts(&self) -> (u64, u64, u64, u64) {
        let mut c = [0u64; 4];
        c[self.self_state().rank() as usize] += 1;
        for m in self.members.values() {
            c[m.state.rank() as usize] += 1;
        }
        (c[0], c[1], c[2], c[3])
    }

    /// Unresolved pending seed addresses (for the 30 s warning): bare seeds whose id was not
    /// learned and whose address is not that of any known member.
    pub fn pending_seeds(&self) -> Vec<String> {
        self.seeds
            .iter()
            .filter(|s| s.id.is_none() && !self.members.values().any(|m| m.address == s.addr))
            .map(|s| s.addr.clone())
            .collect()
    }
}

/// 1..128 characters of `A-Z a-z 0-9 . _ -` (cluster.md §1).
pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `host:port` with a non-empty host and port 1..65535; IPv6 hosts in brackets (`[::1]:7946`).
pub fn valid_address(a: &str) -> bool {
    let Some((host, port)) = a.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
    // Whitespace, controls and URL punctuation would corrupt the request line we build from it.
    let clean = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'@' | b'?' | b'#'))
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|v6| {
            // Zone ids (`fe80::1%eth0`) are allowed: loopback tests on link-local need them.
            !v6.is_empty()
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'%'))
        })
    } else {
        // An unbracketed host with ':' is an IPv6 literal we cannot split unambiguously.
        !host.is_empty() && !host.contains(':') && !host.contains(['[', ']']) && clean(host)
    };
    port_ok && host_ok
}
