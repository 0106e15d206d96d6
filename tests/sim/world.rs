//! The seeded world: one event queue in simulated milliseconds, a network that loses,
//! duplicates, delays (so reorders) and partitions messages, crashes (state lost) and restarts,
//! pauses, per-node clock offsets and a client load. Everything random comes from one
//! `fastrand::Rng` seeded by the run's seed, so a seed replays exactly.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use hypercache::dist::membership::State;

use crate::check::History;
use crate::node::{addr, id, Msg, Node, Out, Timer};

#[derive(Clone, Debug)]
pub enum Fault {
    Crash(usize),
    Restart(usize),
    Pause(usize, u64),
    /// Cut these nodes off from the others (both ways); the client still reaches everyone.
    Isolate(Vec<usize>),
    Heal,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub n: usize,
    pub loss: f64,
    pub dup: f64,
    pub max_delay_ms: u64,
    pub offsets: Vec<i64>,
    pub faults: Vec<(u64, Fault)>,
    /// Client load and faults run until here; then everything heals and the cluster settles.
    pub duration_ms: u64,
    pub settle_ms: u64,
}

impl Scenario {
    /// The scenario of a seed: loss, duplication and delay, clock offsets up to ±2 s, and one
    /// to four faults drawn from crash/restart, pause and isolation.
    pub fn from_seed(seed: u64) -> Scenario {
        let rng = fastrand::Rng::with_seed(seed);
        let n = 5;
        let lossy = rng.u8(..3) == 0;
        let mut faults = Vec::new();
        let mut t = 2_000;
        for _ in 0..rng.usize(1..=4) {
            t += rng.u64(1_000..6_000);
            match rng.u8(..3) {
                0 => {
                    let v = rng.usize(..n);
                    faults.push((t, Fault::Crash(v)));
                    faults.push((t + rng.u64(500..8_000), Fault::Restart(v)));
                }
                1 => faults.push((t, Fault::Pause(rng.usize(..n), rng.u64(500..6_000)))),
                _ => {
                    let mut cut: Vec<usize> = (0..n).collect();
                    rng.shuffle(&mut cut);
                    cut.truncate(rng.usize(1..=2));
                    cut.sort();
                    faults.push((t, Fault::Isolate(cut)));
                    faults.push((t + rng.u64(1_000..8_000), Fault::Heal));
                }
            }
        }
        faults.sort_by_key(|f| f.0);
        Scenario {
            n,
            loss: if lossy { rng.f64() * 0.1 } else { 0.0 },
            dup: if lossy { rng.f64() * 0.05 } else { 0.0 },
            max_delay_ms: rng.u64(1..100),
            offsets: (0..n).map(|_| rng.i64(-2_000..=2_000)).collect(),
            faults,
            duration_ms: t + 3_000,
            settle_ms: 20_000,
        }
    }
}

enum Ev {
    Deliver { to: usize, from: String, msg: Msg },
    Timer { node: usize, gen: u64, t: Timer },
    Client,
    Fault(Fault),
}

pub struct World {
    pub now: u64,
    pub sc: Scenario,
    rng: fastrand::Rng,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    seq: u64,
    pub nodes: Vec<Option<Node>>,
    gen: Vec<u64>,
    paused_until: Vec<u64>,
    cut: BTreeSet<usize>,
    /// Nodes that were ever crashed, paused or cut off.
    pub faulted: Vec<bool>,
    pub history: History,
    /// The scenario lost messages (its loss ends at the heal, this stays).
    pub lossy: bool,
    pub messages: u64,
    pub bytes: u64,
    seed: u64,
}

impl World {
    /// All `sc.n` nodes started together, each seeded with all the others.
    pub fn new(seed: u64, sc: Scenario) -> World {
        let n = sc.n;
        let mut w = World::empty(seed, sc);
        for i in 0..n {
            w.start(i);
        }
        for (t, f) in w.sc.faults.clone() {
            w.at(t, Ev::Fault(f));
        }
        w.at(500, Ev::Client);
        w
    }

    /// No node started yet and no client load (the scale runs start nodes themselves).
    pub fn empty(seed: u64, sc: Scenario) -> World {
        let n = sc.n;
        World {
            now: 0,
            rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            seq: 0,
            nodes: (0..n).map(|_| None).collect(),
            gen: vec![0; n],
            paused_until: vec![0; n],
            cut: BTreeSet::new(),
            faulted: vec![false; n],
            history: History::default(),
            lossy: sc.loss > 0.0,
            messages: 0,
            bytes: 0,
            seed,
            sc,
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn start(&mut self, i: usize) {
        let all: Vec<usize> = (0..self.sc.n).collect();
        self.start_seeded(i, &all);
    }

    /// Starts node i now with these seeds.
    pub fn start_seeded(&mut self, i: usize, seeds: &[usize]) {
        self.gen[i] += 1;
        let seed = self
            .seed
            .wrapping_mul(31)
            .wrapping_add(self.gen[i] * 7 + i as u64);
        let (node, out) = Node::start(i, seeds, self.now, self.sc.offsets[i], seed);
        self.nodes[i] = Some(node);
        self.carry_out(i, out);
    }

    /// Starts `members` as one converged cluster: no seeds, every node's table holding every
    /// other member as `alive` ([`Node::adopt`]), timers running from now.
    pub fn start_converged(&mut self, members: &[usize]) {
        for &i in members {
            self.start_seeded(i, &[]);
        }
        let table: Vec<_> = members
            .iter()
            .map(|&i| self.nodes[i].as_ref().expect("just started").self_entry())
            .collect();
        for &i in members {
            let now = self.now;
            self.nodes[i]
                .as_mut()
                .expect("just started")
                .adopt(&table, now);
        }
    }

    fn index_of(a: &str) -> usize {
        a.rsplit_once('.')
            .and_then(|(_, p)| p.split(':').next())
            .and_then(|x| x.parse::<usize>().ok())
            .map_or(usize::MAX, |x| x - 1)
    }

    fn severed(&self, a: usize, b: usize) -> bool {
        self.cut.contains(&a) != self.cut.contains(&b)
    }

    fn carry_out(&mut self, from: usize, out: Out) {
        let gen = self.gen[from];
        for (delay, t) in out.timers {
            self.at(self.now + delay, Ev::Timer { node: from, gen, t });
        }
        for (to_addr, msg) in out.send {
            let to = Self::index_of(&to_addr);
            if to >= self.sc.n || to == from {
                continue;
            }
            self.messages += 1;
            self.bytes += 64 + approx_size(&msg);
            if self.severed(from, to) || self.rng.f64() < self.sc.loss {
                continue;
            }
            let copies = if self.rng.f64() < self.sc.dup { 2 } else { 1 };
            for _ in 0..copies {
                let d = 1 + self.rng.u64(..self.sc.max_delay_ms);
                let ev = Ev::Deliver {
                    to,
                    from: addr(from),
                    msg: msg.clone(),
                };
                self.at(self.now + d, ev);
            }
        }
        for d in out.done {
            self.history.finished(self.now, d);
        }
    }

    /// Runs the scenario, then heals everything and lets the cluster settle.
    pub fn run(&mut self) -> Result<(), String> {
        let end = self.sc.duration_ms + self.sc.settle_ms;
        let mut healed = false;
        while let Some(Reverse((t, seq))) = self.queue.pop() {
            if t > end {
                break;
            }
            if !healed && t >= self.sc.duration_ms {
                healed = true;
                self.now = self.sc.duration_ms;
                self.heal_all();
            }
            self.now = t;
            let ev = self.events.remove(&seq).expect("event");
            self.step(ev)?;
        }
        crate::check::settled(self)
    }

    /// Processes events up to `t` (no healing, no settle checks); for the scale runs.
    pub fn run_until(&mut self, t: u64) {
        while let Some(&Reverse((at, seq))) = self.queue.peek() {
            if at > t {
                break;
            }
            self.queue.pop();
            self.now = at;
            let ev = self.events.remove(&seq).expect("event");
            let _ = self.step(ev);
        }
        self.now = t;
    }

    pub fn crash(&mut self, i: usize) {
        self.fault(Fault::Crash(i));
    }

    pub fn leave(&mut self, i: usize) {
        let mut out = Out::default();
        if let Some(nd) = self.nodes[i].as_mut() {
            nd.leave(&mut out);
        }
        self.carry_out(i, out);
    }

    /// The end of the faults: no more cuts, pauses, loss or duplication; crashed nodes restart.
    fn heal_all(&mut self) {
        self.cut.clear();
        self.sc.loss = 0.0;
        self.sc.dup = 0.0;
        for i in 0..self.sc.n {
            self.paused_until[i] = self.paused_until[i].min(self.now);
            if self.nodes[i].is_none() {
                self.start(i);
            }
        }
    }

    fn step(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Deliver { to, from, msg } => {
                let src = Self::index_of(&from);
                if self.severed(src, to) {
                    return Ok(());
                }
                if self.now < self.paused_until[to] {
                    let t = self.paused_until[to];
                    self.at(t, Ev::Deliver { to, from, msg });
                    return Ok(());
                }
                let Some(node) = self.nodes[to].as_mut() else {
                    return Ok(());
                };
                let mut out = Out::default();
                node.receive(self.now, &from, msg, &mut out);
                self.carry_out(to, out);
            }
            Ev::Timer { node: i, gen, t } => {
                if gen != self.gen[i] {
                    return Ok(());
                }
                if self.now < self.paused_until[i] {
                    let at = self.paused_until[i];
                    self.at(at, Ev::Timer { node: i, gen, t });
                    return Ok(());
                }
                let Some(node) = self.nodes[i].as_mut() else {
                    return Ok(());
                };
                let mut out = Out::default();
                node.timer(self.now, t, &mut out);
                self.carry_out(i, out);
                if t == Timer::Tick {
                    crate::check::continuous(self, i)?;
                }
            }
            Ev::Client => {
                if self.now < self.sc.duration_ms {
                    self.client_op();
                    self.at(self.now + 20, Ev::Client);
                }
            }
            Ev::Fault(f) => self.fault(f),
        }
        Ok(())
    }

    fn client_op(&mut self) {
        let up: Vec<usize> = (0..self.sc.n)
            .filter(|&i| self.nodes[i].is_some() && self.now >= self.paused_until[i])
            .collect();
        if up.is_empty() {
            return;
        }
        let i = up[self.rng.usize(..up.len())];
        let key = format!("k{}", self.rng.u8(..40));
        let value = (self.rng.u8(..100) >= 15).then(|| self.history.new_value());
        let mut out = Out::default();
        self.nodes[i]
            .as_mut()
            .unwrap()
            .client_write(self.now, &key, value, &mut out);
        self.carry_out(i, out);
    }

    fn fault(&mut self, f: Fault) {
        match f {
            Fault::Crash(i) => {
                self.faulted[i] = true;
                self.nodes[i] = None;
                self.gen[i] += 1;
                self.history.crashed(i, self.now);
            }
            Fault::Restart(i) => {
                if self.nodes[i].is_none() {
                    self.start(i);
                }
            }
            Fault::Pause(i, ms) => {
                self.faulted[i] = true;
                self.paused_until[i] = self.now + ms;
            }
            Fault::Isolate(v) => {
                for &i in &v {
                    self.faulted[i] = true;
                }
                self.cut = v.into_iter().collect();
            }
            Fault::Heal => self.cut.clear(),
        }
    }

    /// Node i's view of node j.
    pub fn view(&self, i: usize, j: usize) -> Option<State> {
        self.nodes[i].as_ref()?.membership.state_of(&id(j))
    }
}

fn approx_size(m: &Msg) -> u64 {
    match m {
        Msg::Gossip { table } | Msg::GossipAnswer { table, .. } => 80 * table.len() as u64,
        Msg::Set { key, .. } | Msg::RbPush { key, .. } => 120 + key.len() as u64,
        Msg::AeLeaves { leaves } => 17 * leaves.len() as u64 + 32,
        Msg::AeDigestsAnswer { entries, .. } => 32 + 60 * entries.len() as u64,
        Msg::AeEntries { items } => 32 + 120 * items.len() as u64,
        _ => 32,
    }
}
