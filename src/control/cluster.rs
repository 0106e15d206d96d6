//! The membership driver: feeds the pure SWIM state machine
//! (`dist::membership`) with timers and network results, and carries out its
//! effects: rebuild and publish the ring, push gossip, notify event streams.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::ControlCtx;
use crate::base::now_ms;
use crate::dist::client::Class;
use crate::dist::membership::{Effect, Entry as Member, ProbeOutcome, State};
use crate::dist::protocol::{Gossip, PeerError, Probe};
use crate::dist::ring::Ring;
use crate::metrics::dist::idx;
use crate::runtime::msg::Op;

fn parse_members(v: Vec<serde_json::Value>) -> Vec<Member> {
    v.into_iter()
        .filter_map(|e| serde_json::from_value(e).ok())
        .collect()
}

impl ControlCtx {
    pub fn address_of(&self, id: &str) -> Option<String> {
        self.members.borrow().address_of(id).map(str::to_string)
    }

    pub fn state_of(&self, id: &str) -> Option<State> {
        self.members.borrow().state_of(id)
    }

    pub fn member_table(&self) -> Vec<Member> {
        self.members.borrow().table()
    }

    pub fn merge_gossip(self: &Rc<Self>, entries: &[Member], from: Option<&str>) {
        let effects = self.members.borrow_mut().merge(entries, from, now_ms());
        self.apply_effects(effects);
    }

    /// Carries out state-machine effects.
    pub fn apply_effects(self: &Rc<Self>, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::RingChanged => self.publish_ring(),
                Effect::TableChanged => {
                    self.notify_members();
                    self.drop_hints_of_left();
                    self.note_incarnations();
                }
                Effect::GossipTo(addrs) => {
                    for a in addrs {
                        let ctl = self.clone();
                        glommio::spawn_local(async move {
                            ctl.push_gossip(&a, Duration::from_secs(1)).await;
                        })
                        .detach();
                    }
                }
            }
        }
    }

    /// Rebuilds the ring from the ring members and sends the snapshot to
    /// every data core.
    pub fn publish_ring(self: &Rc<Self>) {
        for e in self.members.borrow().table() {
            self.peers.learn_name(&e.address, &e.id);
        }
        let members = self.members.borrow().ring_members();
        if self.ring.borrow().members() == members.as_slice() {
            // The same members again (a transition that left the ring unchanged, say an id@
            // seed's real incarnation arriving): nothing to publish, and no reason to restart a
            // running rebalance scan or log the ring twice.
            return;
        }
        let ring = Arc::new(Ring::new(&members, self.node.config.replication));
        *self.ring.borrow_mut() = ring.clone();
        self.ring_changed();
        log::info!(
            "ring now has {} members: {}",
            members.len(),
            members.join(",")
        );
        // cluster.md §5: anti-entropy may not reach every pair before a
        // tombstone is purged; deletes could then come back after a partition.
        let cfg = &self.node.config;
        let pass = cfg.anti_entropy_interval * (members.len().saturating_sub(1) as u32);
        if !cfg.anti_entropy_interval.is_zero() && pass > cfg.tombstone_ttl / 2 {
            log::warn!(
                "(ring members - 1) x HYPERCACHE_ANTI_ENTROPY_INTERVAL = {:?} exceeds HYPERCACHE_TOMBSTONE_TTL / 2 = {:?}: raise the tombstone TTL or shorten the interval, or deletes may reappear after a partition",
                pass,
                cfg.tombstone_ttl / 2
            );
        }
        let ctl = self.clone();
        glommio::spawn_local(async move {
            for core in 0..ctl.cores {
                ctl.dispatch.call(core, Op::RingUpdate(ring.clone())).await;
            }
        })
        .detach();
    }

    /// Wakes every `/cluster/events` subscriber; a subscriber 64 events
    /// behind is dropped (its stream ends and the client reconnects).
    pub fn notify_members(&self) {
        self.subscribers
            .borrow_mut()
            .retain(|tx| tx.try_send(()).is_ok());
    }

    /// Push-pull gossip with one address; merges the answer.
    pub async fn push_gossip(self: &Rc<Self>, addr: &str, timeout: Duration) -> bool {
        let body = serde_json::to_vec(&self.member_table()).unwrap_or_default();
        let call = Gossip(body);
        let Ok(g) = self
            .peers
            .call(addr, &call, timeout, Class::Membership)
            .await
        else {
            return false;
        };
        let (node, members) = (g.node, parse_members(g.members));
        let mut effects = self
            .members
            .borrow_mut()
            .seed_answered(addr, node.as_deref(), now_ms());
        effects.extend(
            self.members
                .borrow_mut()
                .merge(&members, Some(addr), now_ms()),
        );
        self.apply_effects(effects);
        true
    }

    /// `GET /health` with the direct-probe timeout: Some(status) when any
    /// HTTP answer came back (200 ok, 503 draining, ...).
    pub async fn probe_health(&self, addr: &str) -> Option<u16> {
        let t = Duration::from_millis(self.members.borrow().direct_timeout_ms().max(1));
        match self
            .peers
            .request(addr, "GET", "/health", None, t, Class::Membership, "health")
            .await
        {
            Ok(r) if r.status == 200 => Some(200),
            Ok(r) if r.status == 503 && String::from_utf8_lossy(&r.body).contains("draining") => {
                Some(503)
            }
            Ok(r) => Some(r.status.max(1) + 1000), // an answer, but not an ack
            Err(_) => None,
        }
    }

    async fn probe_cycle(self: Rc<Self>, id: String, addr: String) {
        let direct = self.probe_health(&addr).await;
        let outcome = match direct {
            Some(200) => ProbeOutcome::Ack,
            Some(503) => ProbeOutcome::Draining,
            _ => {
                let relays = self.members.borrow_mut().pick_relays(&id);
                let t = Duration::from_millis(self.members.borrow().relay_timeout_ms().max(1));
                let mut tasks = Vec::new();
                for (_, raddr) in &relays {
                    let ctl = self.clone();
                    let raddr = raddr.clone();
                    let id = id.clone();
                    tasks.push(glommio::spawn_local(async move {
                        ctl.peers
                            .call(&raddr, &Probe(&id), t, Class::Membership)
                            .await
                    }));
                }
                let mut ack = false;
                let mut any_answer = false;
                for t in tasks {
                    let res = t.await;
                    let ok = res.is_ok();
                    // Any HTTP answer, even a refusal, shows the relay is reachable.
                    any_answer |= !matches!(res, Err(PeerError::Transport(_)));
                    ack |= ok;
                    self.members.borrow_mut().record_relay(ok);
                }
                ProbeOutcome::Failed {
                    relays_asked: relays.len(),
                    relay_ack: ack,
                    relays_silent: !relays.is_empty() && !any_answer,
                }
            }
        };
        let effects = self
            .members
            .borrow_mut()
            .probe_result(&id, outcome, now_ms());
        self.apply_effects(effects);
    }

    /// Probe loop: every T, a cycle for every alive/suspect peer whose last
    /// cycle finished.
    pub async fn probe_loop(self: Rc<Self>) {
        let t = self.node.config.heartbeat;
        while !self.stop.is_set() {
            let targets = self.members.borrow_mut().probe_targets(now_ms());
            for (id, addr) in targets {
                self.members.borrow_mut().probe_started(&id);
                glommio::spawn_local(self.clone().probe_cycle(id, addr)).detach();
            }
            self.stop.race(glommio::timer::sleep(t)).await;
        }
    }

    /// Gossip loop: every G, push-pull with a random ring member (plus a dead
    /// member or unresolved seed); warns about unresolved seeds every 30 s.
    pub async fn gossip_loop(self: Rc<Self>) {
        let g = self.node.config.gossip_interval;
        let mut last_warn = std::time::Instant::now();
        while !self.stop.is_set() {
            let addrs = self.members.borrow_mut().gossip_round();
            for a in addrs {
                let ctl = self.clone();
                glommio::spawn_local(async move {
                    ctl.push_gossip(&a, Duration::from_secs(1)).await;
                })
                .detach();
            }
            let pending = self.members.borrow().pending_seeds();
            if !pending.is_empty() && last_warn.elapsed() >= Duration::from_secs(30) {
                last_warn = std::time::Instant::now();
                log::warn!(
                    "seeds {} have not told their node id; use id@host:port seeds",
                    pending.join(",")
                );
            }
            self.stop.race(glommio::timer::sleep(g)).await;
        }
    }

    /// Timer loop: suspicion expiry and forgetting, at a fine grain.
    pub async fn tick_loop(self: Rc<Self>) {
        let step = (self.node.config.heartbeat / 10)
            .clamp(Duration::from_millis(5), Duration::from_millis(100));
        while !self.stop.is_set() {
            let effects = self.members.borrow_mut().tick(now_ms());
            self.apply_effects(effects);
            self.stop.race(glommio::timer::sleep(step)).await;
        }
    }

    /// Join (cluster.md §2.2): push-pull with every seed in parallel, retried
    /// every G until one answered.
    pub async fn join(self: Rc<Self>) {
        let seeds: Vec<String> = self
            .node
            .config
            .seeds
            .iter()
            .map(|s| s.addr.to_string())
            .collect();
        if seeds.is_empty() {
            return;
        }
        let mut last_warn = std::time::Instant::now();
        loop {
            let mut tasks = Vec::new();
            for s in &seeds {
                let ctl = self.clone();
                let s = s.clone();
                tasks.push(glommio::spawn_local(async move {
                    ctl.push_gossip(&s, Duration::from_secs(1)).await
                }));
            }
            let mut any = false;
            for t in tasks {
                any |= t.await;
            }
            if any {
                self.joined.set(true);
                return;
            }
            if self.stop.is_set() {
                return;
            }
            if last_warn.elapsed() >= Duration::from_secs(30) {
                last_warn = std::time::Instant::now();
                log::warn!("no seed answered yet ({}); retrying", seeds.join(","));
            }
            self.stop
                .race(glommio::timer::sleep(self.node.config.gossip_interval))
                .await;
        }
    }

    /// Leave (drain): own entry `left`, pushed to every ring member.
    pub fn leave(self: &Rc<Self>) {
        let effects = self.members.borrow_mut().leave();
        self.apply_effects(effects);
    }

    /// Shutdown step 5: push `left` to every ring member, each bounded by 1 s.
    pub async fn announce_left(self: &Rc<Self>) {
        let table = self.member_table();
        let me = self.node.node_id().to_string();
        let mut tasks = Vec::new();
        for m in table
            .iter()
            .filter(|m| m.id != me && matches!(m.state, State::Alive | State::Suspect))
        {
            let ctl = self.clone();
            let a = m.address.clone();
            tasks.push(glommio::spawn_local(async move {
                ctl.push_gossip(&a, Duration::from_secs(1)).await
            }));
        }
        for t in tasks {
            t.await;
        }
    }

    /// Membership figures for `/dist/metrics`.
    pub fn membership_values(&self, v: &mut [u64]) {
        let m = self.members.borrow();
        let c = m.counters();
        v[const { idx("HeartbeatSuccess") }] += c.heartbeat_success;
        v[const { idx("HeartbeatFailure") }] += c.heartbeat_failure;
        v[const { idx("IndirectProbeSuccess") }] += c.indirect_probe_success;
        v[const { idx("IndirectProbeFailure") }] += c.indirect_probe_failure;
        v[const { idx("IndirectProbeRefuted") }] += c.indirect_probe_refuted;
        v[const { idx("NodesSuspect") }] += c.nodes_suspect;
        v[const { idx("NodesDead") }] += c.nodes_dead;
        v[const { idx("NodesRemoved") }] += c.nodes_removed;
        v[const { idx("MembershipVersion") }] = c.membership_version;
        let (a, s, d, l) = m.state_counts();
        v[const { idx("MembersAlive") }] = a;
        v[const { idx("MembersSuspect") }] = s;
        v[const { idx("MembersDead") }] = d;
        v[const { idx("MembersLeft") }] = l;
        v[const { idx("LocalHealth") }] = m.lhm();
    }
}
