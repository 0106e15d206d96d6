//! One simulated node: the real membership state machine, the real write quorum tracker and
//! the real hint queues, around a last-write-wins map standing in for the shard (the shard has
//! its own model test). Handlers take `now` and a message and return what to send and which
//! timers to set; the world delivers them.

use std::collections::{BTreeMap, HashMap};

use hypercache::config::Consistency;
use hypercache::control::hints::HintQueues;
use hypercache::control::quorum::{after_round, After, Quorum};
use hypercache::control::replicate::Ack;
use hypercache::dist::hash::xxhash64;
use hypercache::dist::membership::{Effect, Entry as Member, Membership, ProbeOutcome, Timers};
use hypercache::dist::ring::Ring;
use hypercache::runtime::msg::Entry;
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
    Gossip {
        table: Vec<Member>,
    },
    GossipAnswer {
        id: String,
        table: Vec<Member>,
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
    pub ring: Ring,
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
        let ring = Ring::new(&membership.ring_members(), RF);
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
            ring,
        };
        let mut out = Out::default();
        node.join(&mut out);
        out.timers.push((TIMERS.heartbeat_ms, Timer::Probe));
        out.timers.push((TIMERS.gossip_ms, Timer::Gossip));
        out.timers.push((100, Timer::Tick));
        out.timers.push((200, Timer::HintReplay));
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
        let table = self.membership.table();
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
                    self.ring = Ring::new(&self.membership.ring_members(), RF);
                }
                Effect::TableChanged => {}
                Effect::GossipTo(addrs) => {
                    let table = self.membership.table();
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
                let table = self.membership.table();
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
                    table: self.membership.table(),
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
        }
    }

    /// LWW apply (cluster.md §4): an older or equal entry is ignored and the newer one reported.
    fn apply(&mut self, key: &str, entry: Entry) -> AckKind {
        self.hlc.observe(entry.version());
        match self.store.get(key) {
            Some(cur) if !entry.newer_than(cur) => {
                if cur == &entry {
                    AckKind::Ok
                } else {
                    AckKind::Newer(cur.version(), cur.origin().to_string())
                }
            }
            _ => {
                self.store.insert(key.to_string(), entry);
                AckKind::Ok
            }
        }
    }

    /// A client write through this node (a delete when `value` is None).
    pub fn client_write(&mut self, now: u64, key: &str, value: Option<Vec<u8>>, out: &mut Out) {
        let w = self.id();
        self.start_write((w, now, 0), now, key, value, None, out);
    }

    /// Starts write `w` (first sent by the client at `started`); `observed` is the newer
    /// version an owner reported when this is the re-issue.
    fn start_write(
        &mut self,
        (w, started, reissues): (u64, u64, usize),
        now: u64,
        key: &str,
        value: Option<Vec<u8>>,
        observed: Option<u64>,
        out: &mut Out,
    ) {
        if let Some(v) = observed {
            self.hlc.observe(v);
        }
        let version = self.hlc.next(self.wall(now));
        // a delete's time is its deleted-at; the simulated puts never expire
        let t = if value.is_none() { self.wall(now) } else { 0 };
        let entry = Entry::written(value, version, id(self.idx), t);
        let mut idx = Vec::new();
        self.ring.owners_into(xxhash64(key.as_bytes(), 0), &mut idx);
        let owners: Vec<String> = idx
            .iter()
            .map(|&i| self.ring.member(i).to_string())
            .collect();
        let me = id(self.idx);
        let local = owners.contains(&me);
        let mut applied_by = Vec::new();
        if local {
            self.apply(key, entry.clone());
            applied_by.push(me.clone());
        }
        let mut quorum = Quorum::new();
        let remote: Vec<String> = owners.iter().filter(|o| **o != me).cloned().collect();
        let (v, o) = (entry.version(), entry.origin().to_string());
        quorum.add(
            Consistency::Quorum,
            owners.len(),
            remote.len(),
            local,
            v,
            &o,
        );
        for r in &remote {
            if let Some(a) = self.membership.address_of(r) {
                let msg = Msg::Set {
                    write: w,
                    key: key.into(),
                    entry: entry.clone(),
                };
                out.send.push((a.to_string(), msg));
            }
        }
        self.writes.insert(
            w,
            Write {
                started,
                key: key.into(),
                entry,
                owners,
                quorum,
                answered: Vec::new(),
                applied_by,
                reissues,
                finished: false,
            },
        );
        out.timers.push((WRITE_TIMEOUT_MS, Timer::WriteTimeout(w)));
        if !self.writes[&w].quorum.waiting() {
            self.finish_write(w, now, out);
        }
    }

    fn write_answer(&mut self, w: u64, from: &str, ack: AckKind, now: u64, out: &mut Out) {
        let Some(wr) = self.writes.get_mut(&w) else {
            return;
        };
        let Some(owner) = wr
            .owners
            .iter()
            .find(|o| self.membership.address_of(o) == Some(from))
        else {
            return;
        };
        let owner = owner.clone();
        if wr.answered.contains(&owner) {
            return; // a duplicated answer
        }
        wr.answered.push(owner.clone());
        let ack = match ack {
            AckKind::Ok => {
                wr.applied_by.push(owner);
                Ack::Ok
            }
            AckKind::Newer(v, o) => Ack::Newer(v, o),
        };
        if wr.finished {
            return;
        }
        wr.quorum.answer(0, &ack);
        if !wr.quorum.waiting() {
            self.finish_write(w, now, out);
        }
    }

    fn finish_write(&mut self, w: u64, now: u64, out: &mut Out) {
        let Some(wr) = self.writes.get_mut(&w) else {
            return;
        };
        if wr.finished {
            return;
        }
        wr.finished = true;
        let quorum = std::mem::take(&mut wr.quorum);
        let verdict = quorum.finish().remove(0);
        let ok = match after_round(&verdict, wr.reissues) {
            After::Reissue { above } => {
                let value = match &wr.entry {
                    Entry::Item { value, .. } => Some(value.clone()),
                    Entry::Tombstone { .. } => None,
                };
                let (key, started, reissues) = (wr.key.clone(), wr.started, wr.reissues + 1);
                let again = self.id();
                self.start_write(
                    (again, started, reissues),
                    now,
                    &key,
                    value,
                    Some(above),
                    out,
                );
                return;
            }
            After::Done { ok } => ok,
        };
        out.done.push(WriteDone {
            ok,
            started: wr.started,
            owners: wr.owners.clone(),
            key: wr.key.clone(),
            entry: wr.entry.clone(),
            applied_by: wr.applied_by.clone(),
        });
    }

    /// At a write's timeout: every owner that never answered gets a hint (cluster.md §8).
    fn hint_unanswered(&mut self, w: u64, now: u64) {
        let Some(wr) = self.writes.remove(&w) else {
            return;
        };
        let me = id(self.idx);
        for o in wr
            .owners
            .iter()
            .filter(|o| **o != me && !wr.answered.contains(o))
        {
            self.hints.push(o, &wr.key, wr.entry.clone(), now);
        }
    }

    fn replay_hints(&mut self, now: u64, out: &mut Out) {
        self.hints.expire(now);
        for t in self.hints.targets() {
            if self.membership.state_of(&t) != Some(hypercache::dist::membership::State::Alive) {
                continue;
            }
            let Some(a) = self.membership.address_of(&t).map(str::to_string) else {
                continue;
            };
            for h in self.hints.peek(&t, 64) {
                // Fire and forget: the hint stays queued until an answer removes it.
                let w = self.id();
                self.writes.insert(
                    w,
                    Write {
                        started: now,
                        key: h.key.clone(),
                        entry: h.entry.clone(),
                        owners: vec![t.clone()],
                        quorum: Quorum::new(),
                        answered: Vec::new(),
                        applied_by: Vec::new(),
                        reissues: 0,
                        finished: true,
                    },
                );
                self.hints.remove_sent(&t, &h.key, &h.entry);
                out.send.push((
                    a.clone(),
                    Msg::Set {
                        write: w,
                        key: h.key,
                        entry: h.entry,
                    },
                ));
                out.timers.push((WRITE_TIMEOUT_MS, Timer::WriteTimeout(w)));
            }
        }
    }
}
