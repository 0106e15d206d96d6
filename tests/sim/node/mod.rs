//! One simulated node: the real membership state machine, the real write quorum tracker, the
//! real hint queues and the real rebalance and anti-entropy cores (`repair.rs`), around a last-write-wins map standing in for the shard (the shard has
//! its own model test). Handlers take `now` and a message and return what to send and which
//! timers to set; the world delivers them.

use std::collections::{BTreeMap, HashMap};

mod repair;
mod writes;

use std::rc::Rc;
use std::sync::Arc;

use hypercache::base::hash::xxhash64;
use hypercache::config::Consistency;
use hypercache::control::hints::HintQueues;
use hypercache::control::moves::Rebalance;
use hypercache::control::quorum::{after_round, After, Quorum};
use hypercache::control::reconcile::Schedule;
use hypercache::control::replicate::Ack;
use hypercache::dist::ae::Digest;
use hypercache::dist::membership::{Effect, Entry as Member, Membership, ProbeOutcome, Timers};
use hypercache::dist::ring::Ring;
use hypercache::store::entry::Entry;
use hypercache::store::Hlc;

pub const RF: usize = 3;
/// The coordinator's wait for acks (REQUEST_TIMEOUT in the server, shorter here).
pub const WRITE_TIMEOUT_MS: u64 = 500;
pub const TIMERS: Timers = Timers {
    heartbeat_ms: 1000,
    suspicion_mult: 4,
    gossip_ms: 200,
    indirect_k: 3,
};

pub fn addr(i: usize) -> String {
    format!("10.0.0.{}:7946", i + 1)
}
pub fn id(i: usize) -> String {
    format!("node-{}", i + 1)
}

#[derive(Clone, Debug)]
pub enum Msg {
    Ping {
        probe: u64,
    },
    PingAck {
        probe: u64,
    },
    /// Relay: probe `target` for `from_probe` of the sender.
    PingReq {
        probe: u64,
        target: String,
    },
    PingReqAnswer {
        probe: u64,
        ok: bool,
    },
    /// Tables are shared, not copied per destination: a 1 000-node table sent to every peer
    /// would otherwise hold gigabytes in flight.
    Gossip {
        table: Rc<Vec<Member>>,
    },
    GossipAnswer {
        id: String,
        table: Rc<Vec<Member>>,
    },
    Set {
        write: u64,
        key: String,
        entry: Entry,
    },
    SetAnswer {
        write: u64,
        ack: AckKind,
    },
    /// Anti-entropy: the initiator's ring and the root over the pair set.
    AeRoot {
        ring: Vec<String>,
        root: u64,
    },
    /// The responder's leaf hashes (the roots differed).
    AeLeaves {
        leaves: Vec<String>,
    },
    /// The leaves that differ: send your entries of these.
    AeDigests {
        leaves: Vec<usize>,
    },
    AeDigestsAnswer {
        leaves: Vec<usize>,
        entries: Vec<Digest>,
    },
    AePull {
        keys: Vec<String>,
    },
    AeEntries {
        items: Vec<(String, Entry)>,
    },
    RbPush {
        round: u64,
        idx: usize,
        key: String,
        entry: Entry,
    },
    RbAck {
        round: u64,
        idx: usize,
    },
}

/// The address of a member id, as the membership table knows it.
pub fn addr_of_id(m: &Membership, id: &str) -> Option<String> {
    m.address_of(id).map(str::to_string)
}

#[derive(Clone, Debug)]
pub enum AckKind {
    Ok,
    Newer(u64, String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    Probe,
    Gossip,
    Tick,
    HintReplay,
    DirectTimeout(u64),
    RelayTimeout(u64),
    /// A relay's own probe for another node's PingReq.
    RelayProbeTimeout(u64),
    WriteTimeout(u64),
    AntiEntropy,
    Rebalance,
    RebalanceTimeout(u64),
}

/// What a handler asks the world to do.
#[derive(Default)]
pub struct Out {
    pub send: Vec<(String, Msg)>,
    pub timers: Vec<(u64, Timer)>,
    /// Writes that finished (acknowledged or failed).
    pub done: Vec<WriteDone>,
}

pub struct WriteDone {
    pub ok: bool,
    /// When the client sent it (the first round's start for a re-issued write).
    pub started: u64,
    pub owners: Vec<String>,
    pub key: String,
    pub entry: Entry,
    pub applied_by: Vec<String>,
}

struct Probe {
    target: String,
    relays: usize,
    answers: usize,
    relay_ack: bool,
    direct_done: bool,
}

struct Write {
    started: u64,
    key: String,
    entry: Entry,
    owners: Vec<String>,
    quorum: Quorum,
    answered: Vec<String>,
    applied_by: Vec<String>,
    /// Re-issues before this round (0 for the client's first round).
    reissues: usize,
    finished: bool,
}

pub struct Node {
    pub idx: usize,
    pub membership: Membership,
    pub store: BTreeMap<String, Entry>,
    hlc: Hlc,
    /// This node's wall clock offset from true time (clock skew), ms.
    pub offset_ms: i64,
    hints: HintQueues,
    probes: HashMap<u64, Probe>,
    /// Relay duty: my probe id -> (requester address, requester's probe id).
    relaying: HashMap<u64, (String, u64)>,
    writes: BTreeMap<u64, Write>,
    next_id: u64,
    joined: bool,
    seeds: Vec<usize>,
    pub ring: Arc<Ring>,
    ae_schedule: Schedule,
    rebalance: Rebalance,
    round: Option<repair::Round>,
}

impl Node {
    /// A node starting at `now` (a restart: empty, incarnation = its wall clock), seeded with
    /// `seeds` as `id@address`.
    pub fn start(idx: usize, seeds: &[usize], now: u64, offset_ms: i64, seed: u64) -> (Node, Out) {
        let seed_list: Vec<usize> = seeds.iter().copied().filter(|&j| j != idx).collect();
        let seeds: Vec<(Option<String>, String)> =
            seed_list.iter().map(|&j| (Some(id(j)), addr(j))).collect();
        let wall = (now as i64 + offset_ms).max(1) as u64;
        let membership = Membership::new(&id(idx), &addr(idx), wall, TIMERS, &seeds, seed);
        let ring = Arc::new(Ring::new(&membership.ring_members(), RF));
        let mut node = Node {
            idx,
            membership,
            store: BTreeMap::new(),
            hlc: Hlc::new(),
            offset_ms,
            hints: HintQueues::new(10_000, 64 << 20, 60_000),
            probes: HashMap::new(),
            relaying: HashMap::new(),
            writes: BTreeMap::new(),
            next_id: 1,
            joined: false,
            seeds: seed_list,
            rebalance: Rebalance::new(ring.clone()),
            ring,
            ae_schedule: Schedule::new(seed ^ 0xae),
            round: None,
        };
        let mut out = Out::default();
        node.join(&mut out);
        out.timers.push((TIMERS.heartbeat_ms, Timer::Probe));
        out.timers.push((TIMERS.gossip_ms, Timer::Gossip));
        out.timers.push((100, Timer::Tick));
        out.timers.push((200, Timer::HintReplay));
        out.timers.push((repair::AE_MS, Timer::AntiEntropy));
        out.timers.push((repair::REBALANCE_MS, Timer::Rebalance));
        (node, out)
    }

    fn wall(&self, now: u64) -> u64 {
        (now as i64 + self.offset_ms).max(1) as u64
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// cluster.md §2.2: push-pull with every seed, again every G until one answered.
    fn join(&mut self, out: &mut Out) {
        let table = Rc::new(self.membership.table());
        for &j in &self.seeds {
            out.send.push((
                addr(j),
                Msg::Gossip {
                    table: table.clone(),
                },
            ));
        }
    }

    fn effects(&mut self, fx: Vec<Effect>, out: &mut Out) {
        for e in fx {
            match e {
                Effect::RingChanged => {
                    self.ring = Arc::new(Ring::new(&self.membership.ring_members(), RF));
                    self.rebalance.ring_changed();
                }
                Effect::TableChanged => {
                    let table = self.membership.table();
                    let me = id(self.idx);
                    self.rebalance.note_incarnations(
                        &me,
                        table.iter().map(|m| (m.id.as_str(), m.incarnation)),
                    );
                }
                Effect::GossipTo(addrs) => {
                    let table = Rc::new(self.membership.table());
                    for a in addrs {
                        out.send.push((
                            a,
                            Msg::Gossip {
                                table: table.clone(),
                            },
                        ));
                    }
                }
            }
        }
    }

    /// This node's own row of the membership table (its id, address and incarnation).
    pub fn self_entry(&self) -> Member {
        let me = id(self.idx);
        self.membership
            .table()
            .into_iter()
            .find(|e| e.id == me)
            .expect("a membership table holds its own node")
    }

    /// Joins an already-converged cluster (the scale report's start): `table` is merged as if
    /// one gossip had delivered it, and the pushes that merge asks for are dropped. They are the
    /// cold-start storm (every newly alive member pushed to everyone, docs/cluster.md) that the
    /// steady-state figures leave out; at 1 000 members it does not fit in memory. The ring and
    /// the rebalance core follow the merge as after any other.
    pub fn adopt(&mut self, table: &[Member], now: u64) {
        let fx = self.membership.merge(table, None, now);
        let fx = fx
            .into_iter()
            .filter(|e| !matches!(e, Effect::GossipTo(_)))
            .collect();
        self.effects(fx, &mut Out::default());
        self.joined = true;
    }

    /// A graceful leave (cluster.md §2.7): `left` at the current incarnation, pushed out.
    pub fn leave(&mut self, out: &mut Out) {
        let fx = self.membership.leave();
        self.effects(fx, out);
    }

    pub fn timer(&mut self, now: u64, t: Timer, out: &mut Out) {
        match t {
            Timer::Probe => {
                for (target, a) in self.membership.probe_targets(now) {
                    self.membership.probe_started(&target);
                    let probe = self.id();
                    self.probes.insert(
                        probe,
                        Probe {
                            target,
                            relays: 0,
                            answers: 0,
                            relay_ack: false,
                            direct_done: false,
                        },
                    );
                    out.send.push((a, Msg::Ping { probe }));
                    let d = self.membership.direct_timeout_ms().max(1);
                    out.timers.push((d, Timer::DirectTimeout(probe)));
                }
                out.timers.push((TIMERS.heartbeat_ms, Timer::Probe));
            }
            Timer::Gossip => {
                let table = Rc::new(self.membership.table());
                for a in self.membership.gossip_round() {
                    out.send.push((
                        a,
                        Msg::Gossip {
                            table: table.clone(),
                        },
                    ));
                }
                if !self.joined {
                    self.join(out);
                }
                out.timers.push((TIMERS.gossip_ms, Timer::Gossip));
            }
            Timer::Tick => {
                let fx = self.membership.tick(now);
                self.effects(fx, out);
                out.timers.push((100, Timer::Tick));
            }
            Timer::HintReplay => {
                self.replay_hints(now, out);
                out.timers.push((200, Timer::HintReplay));
            }
            Timer::DirectTimeout(probe) => {
                let Some(p) = self.probes.get_mut(&probe) else {
                    return;
                };
                if p.direct_done {
                    return;
                }
                p.direct_done = true;
                let target = p.target.clone();
                let relays = self.membership.pick_relays(&target);
                if let Some(p) = self.probes.get_mut(&probe) {
                    p.relays = relays.len();
                }
                for (_, a) in relays {
                    out.send.push((
                        a,
                        Msg::PingReq {
                            probe,
                            target: target.clone(),
                        },
                    ));
                }
                let r = self.membership.relay_timeout_ms().max(1);
                out.timers.push((r, Timer::RelayTimeout(probe)));
            }
            Timer::RelayTimeout(probe) => {
                let Some(p) = self.probes.remove(&probe) else {
                    return;
                };
                let outcome = ProbeOutcome::Failed {
                    relays_asked: p.relays,
                    relay_ack: p.relay_ack,
                    relays_silent: p.relays > 0 && p.answers == 0,
                };
                let fx = self.membership.probe_result(&p.target, outcome, now);
                self.effects(fx, out);
            }
            Timer::RelayProbeTimeout(mine) => {
                if let Some((to, probe)) = self.relaying.remove(&mine) {
                    out.send.push((to, Msg::PingReqAnswer { probe, ok: false }));
                }
            }
            Timer::WriteTimeout(w) => {
                self.finish_write(w, now, out);
                self.hint_unanswered(w, now);
            }
            Timer::AntiEntropy => self.ae_tick(out),
            Timer::Rebalance => self.rebalance_tick(out),
            Timer::RebalanceTimeout(r) => self.rebalance_timeout(r),
        }
    }

    pub fn receive(&mut self, now: u64, from: &str, msg: Msg, out: &mut Out) {
        match msg {
            Msg::Ping { probe } => out.send.push((from.into(), Msg::PingAck { probe })),
            Msg::PingAck { probe } => {
                if let Some((to, theirs)) = self.relaying.remove(&probe) {
                    out.send.push((
                        to,
                        Msg::PingReqAnswer {
                            probe: theirs,
                            ok: true,
                        },
                    ));
                } else if let Some(p) = self.probes.get(&probe) {
                    if !p.direct_done {
                        let p = self.probes.remove(&probe).unwrap();
                        let fx = self
                            .membership
                            .probe_result(&p.target, ProbeOutcome::Ack, now);
                        self.effects(fx, out);
                    }
                }
            }
            Msg::PingReq { probe, target } => {
                match self.membership.address_of(&target).map(str::to_string) {
                    Some(a) => {
                        let mine = self.id();
                        self.relaying.insert(mine, (from.into(), probe));
                        out.send.push((a, Msg::Ping { probe: mine }));
                        let d = self.membership.direct_timeout_ms().max(1);
                        out.timers.push((d, Timer::RelayProbeTimeout(mine)));
                    }
                    None => out
                        .send
                        .push((from.into(), Msg::PingReqAnswer { probe, ok: false })),
                }
            }
            Msg::PingReqAnswer { probe, ok } => {
                self.membership.record_relay(ok);
                if let Some(p) = self.probes.get_mut(&probe) {
                    p.answers += 1;
                    p.relay_ack |= ok;
                    if ok {
                        let p = self.probes.remove(&probe).unwrap();
                        let outcome = ProbeOutcome::Failed {
                            relays_asked: p.relays,
                            relay_ack: true,
                            relays_silent: false,
                        };
                        let fx = self.membership.probe_result(&p.target, outcome, now);
                        self.effects(fx, out);
                    }
                }
            }
            Msg::Gossip { table } => {
                let fx = self.membership.merge(&table, Some(from), now);
                self.effects(fx, out);
                let answer = Msg::GossipAnswer {
                    id: id(self.idx),
                    table: Rc::new(self.membership.table()),
                };
                out.send.push((from.into(), answer));
            }
            Msg::GossipAnswer { id, table } => {
                self.joined = true;
                let mut fx = self.membership.seed_answered(from, Some(&id), now);
                fx.extend(self.membership.merge(&table, Some(from), now));
                self.effects(fx, out);
            }
            Msg::Set { write, key, entry } => {
                let ack = self.apply(&key, entry);
                out.send.push((from.into(), Msg::SetAnswer { write, ack }));
            }
            Msg::SetAnswer { write, ack } => self.write_answer(write, from, ack, now, out),
            Msg::RbPush {
                round,
                idx,
                key,
                entry,
            } => self.rebalance_push(from, round, idx, key, entry, out),
            Msg::RbAck { round, idx } => self.rebalance_ack(round, idx),
            m @ (Msg::AeRoot { .. }
            | Msg::AeLeaves { .. }
            | Msg::AeDigests { .. }
            | Msg::AeDigestsAnswer { .. }
            | Msg::AePull { .. }
            | Msg::AeEntries { .. }) => self.ae_receive(from, m, out),
        }
    }
}
