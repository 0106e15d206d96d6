//! The mutating half of [`Membership`]: gossip merge (2.6), refutation (2.4), probe results (2.3,
//! 2.5), timers and leave (2.7). Every transition goes through `transition` so the §14 counters, the
//! log line and `MembershipVersion` can never disagree with the table.

use super::{
    supersedes, valid_address, valid_id, Effect, Entry, Member, Membership, ProbeOutcome, State,
    DUP_LOG_INTERVAL_MS, LHM_MAX, PUSH_FANOUT,
};

/// What one public call did, turned into `Effect`s by `finish`.
struct Pending {
    /// Peers whose ring membership (`State::is_ring`) flipped an odd number of times in this
    /// call. With `self_in_ring` this decides `RingChanged` exactly as comparing the ring before
    /// and after would, without building two lists of every member's id per call (a 1 000-member
    /// node gets 1 000 probe results a second).
    ring_flips: Vec<String>,
    /// Whether this node was in its own ring before the call (a leaving node re-adds itself when
    /// its last alive peer turns suspect, §11).
    self_in_ring: bool,
    table: bool,
    gossip: Vec<String>,
    ring_forced: bool,
}

impl Pending {
    /// Peer `id` entered or left the ring; twice is no change.
    fn ring_flip(&mut self, id: &str) {
        match self.ring_flips.iter().position(|x| x == id) {
            Some(i) => {
                self.ring_flips.swap_remove(i);
            }
            None => self.ring_flips.push(id.to_string()),
        }
    }
}

impl Membership {
    fn begin(&self) -> Pending {
        Pending {
            ring_flips: Vec::new(),
            self_in_ring: self.self_in_ring(),
            table: false,
            gossip: Vec::new(),
            ring_forced: false,
        }
    }

    fn finish(&self, p: Pending) -> Vec<Effect> {
        let mut out = Vec::new();
        if p.ring_forced || !p.ring_flips.is_empty() || self.self_in_ring() != p.self_in_ring {
            out.push(Effect::RingChanged);
        }
        if p.table {
            out.push(Effect::TableChanged);
        }
        let mut to: Vec<String> = Vec::with_capacity(p.gossip.len());
        for a in p.gossip {
            if a != self.self_addr && !to.contains(&a) {
                to.push(a);
            }
        }
        if !to.is_empty() {
            out.push(Effect::GossipTo(to));
        }
        out
    }

    /// Replaces the view of peer `id` and accounts for it (§14 counters, log, version).
    fn transition(
        &mut self,
        id: &str,
        state: State,
        inc: u64,
        addr: Option<&str>,
        now_ms: u64,
        p: &mut Pending,
    ) {
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        let old = m.state;
        m.state = state;
        m.incarnation = inc;
        m.since_ms = now_ms;
        m.hearsay = false;
        let moved = match addr {
            Some(a) if a != m.address => Some(std::mem::replace(&mut m.address, a.to_string())),
            _ => None,
        };
        if state == State::Suspect && old != State::Suspect {
            self.counters.nodes_suspect += 1;
        }
        if state == State::Dead && old != State::Dead {
            self.counters.nodes_dead += 1;
        }
        if old.is_ring() && !state.is_ring() {
            self.counters.nodes_removed += 1;
        }
        if old.is_ring() != state.is_ring() {
            p.ring_flip(id);
        }
        self.counters.membership_version += 1;
        p.table = true;
        log::info!(
            "member {id} {} -> {} incarnation={inc}",
            old.as_str(),
            state.as_str()
        );
        if let Some(was) = moved {
            log::info!("member {id} address {was} -> {}", addr.unwrap_or_default());
        }
    }

    /// The API address of a claim that wins (or equals) the local view (cluster.md 2.6): a
    /// non-empty value replaces it, an absent or empty one keeps what is known.
    fn take_api_address(&mut self, e: &Entry, p: &mut Pending) {
        let Some(m) = self.members.get_mut(&e.id) else {
            return;
        };
        if !e.api_address.is_empty() && e.api_address != m.api_address {
            m.api_address = e.api_address.clone();
            self.counters.membership_version += 1;
            p.table = true;
        }
    }

    fn add(&mut self, e: &Entry, now_ms: u64, p: &mut Pending) {
        self.members.insert(
            e.id.clone(),
            Member {
                address: e.address.clone(),
                api_address: e.api_address.clone(),
                state: e.state,
                incarnation: e.incarnation,
                since_ms: now_ms,
                probing: false,
                hearsay: false,
            },
        );
        // A bare seed at this address now has a known id (the driver may also tell us through
        // `seed_answered`; either way it stops being pending).
        for s in &mut self.seeds {
            if s.id.is_none() && s.addr == e.address {
                s.id = Some(e.id.clone());
            }
        }
        if e.state.is_ring() {
            p.ring_flip(&e.id);
        }
        self.counters.membership_version += 1;
        p.table = true;
        log::info!(
            "member {} joined ({} incarnation={})",
            e.id,
            e.state.as_str(),
            e.incarnation
        );
    }

    /// Merge a gossip payload (2.6): self entries → refutation (2.4) unless leaving; unknown → add;
    /// known → precedence (2.1); invalid id / bad address → skipped. `from_addr`: the sender's dist
    /// address if known (refutation gossips back to it).
    pub fn merge(
        &mut self,
        entries: &[Entry],
        from_addr: Option<&str>,
        now_ms: u64,
    ) -> Vec<Effect> {
        let mut p = self.begin();
        // Ids that entered the ring as alive in this merge: one push covers them all because it
        // carries the full table.
        let mut new_alive: Vec<String> = Vec::new();
        for e in entries {
            if !valid_id(&e.id) || !valid_address(&e.address) {
                log::debug!("gossip entry skipped: invalid id or address {:?}", e.id);
                continue;
            }
            if e.id == self.self_id {
                self.merge_self(e, from_addr, now_ms, &mut p);
                continue;
            }
            let Some(m) = self.members.get(&e.id) else {
                self.add(e, now_ms, &mut p);
                if e.state == State::Alive {
                    new_alive.push(e.id.clone());
                }
                continue;
            };
            let (m_inc, m_state) = (m.incarnation, m.state);
            if !supersedes(e.incarnation, e.state, m_inc, m_state) {
                // An equal claim still fills in an API address not known yet (2.6).
                if (e.incarnation, e.state) == (m_inc, m_state) && m.api_address.is_empty() {
                    self.take_api_address(e, &mut p);
                }
                continue;
            }
            self.take_api_address(e, &mut p);
            let Some(m) = self.members.get(&e.id) else {
                continue;
            };
            if e.state == State::Dead && m.state == State::Suspect && m.hearsay {
                // Only a member this node suspects on its own evidence (a failed probe cycle)
                // is taken as dead on hearsay (2.8); otherwise its suspicion timer or its
                // refutation decides. A healed partition delivers the same verdict many times
                // over, directly and laundered through other nodes' suspicions.
                continue;
            }
            if e.state == State::Alive && !m.state.is_ring() {
                new_alive.push(e.id.clone());
            }
            if e.state == State::Dead && m.state == State::Alive {
                // §2.8: hearsay `dead` about a member we hold as alive only makes it suspect.
                // When a partition heals, the side that was cut off gossips the verdicts it
                // reached about this side; taking them would flap healthy members out of every
                // ring. X first, so a live X learns of it and refutes within S.
                let x = m.address.clone();
                self.transition(
                    &e.id,
                    State::Suspect,
                    e.incarnation,
                    Some(&e.address),
                    now_ms,
                    &mut p,
                );
                if let Some(m) = self.members.get_mut(&e.id) {
                    m.hearsay = true;
                }
                let to = self.random_ring_addrs(PUSH_FANOUT, &[&e.id], Some(&x));
                p.gossip.push(x);
                p.gossip.extend(to);
                continue;
            }
            let was_alive = m.state == State::Alive;
            self.transition(
                &e.id,
                e.state,
                e.incarnation,
                Some(&e.address),
                now_ms,
                &mut p,
            );
            if e.state == State::Suspect && was_alive {
                // A gossiped suspicion is hearsay too: a healed partition's `dead` rumor reaches
                // other nodes as `suspect` one hop later, and must not be confirmed by the rumor
                // itself arriving here next.
                if let Some(m) = self.members.get_mut(&e.id) {
                    m.hearsay = true;
                }
            }
        }
        if !new_alive.is_empty() {
            let skip: Vec<&str> = new_alive.iter().map(String::as_str).collect();
            let to = self.random_ring_addrs(PUSH_FANOUT, &skip, None);
            p.gossip.extend(to);
        }
        self.finish(p)
    }

    /// A claim about this node (2.4).
    fn merge_self(&mut self, e: &Entry, from_addr: Option<&str>, now_ms: u64, p: &mut Pending) {
        if e.address != self.self_addr {
            let due = self
                .last_dup_log_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= DUP_LOG_INTERVAL_MS);
            if due {
                self.last_dup_log_ms = Some(now_ms);
                log::error!(
                    "duplicate node id: {} is also claimed by {} (this node is {})",
                    e.id,
                    e.address,
                    self.self_addr
                );
            }
        }
        // A draining node never refutes: its `left` must stick. Alive claims need no answer and
        // lower incarnations are already beaten by what peers will get from us.
        if self.leaving || e.state == State::Alive || e.incarnation < self.incarnation {
            return;
        }
        // claim + 1 (not own + 1) so the refutation beats the claim even if it ran ahead of us.
        self.incarnation = e.incarnation.saturating_add(1);
        self.lhm = (self.lhm + 1).min(LHM_MAX);
        self.counters.membership_version += 1;
        p.table = true;
        log::info!(
            "member {} refutes {} incarnation={}: alive incarnation={}",
            self.self_id,
            e.state.as_str(),
            e.incarnation,
            self.incarnation
        );
        if let Some(a) = from_addr {
            p.gossip.push(a.to_string());
        }
        let to = self.random_ring_addrs(PUSH_FANOUT, &[], from_addr);
        p.gossip.extend(to);
    }

    /// A pending seed at `addr` answered gossip with node id `id`: resolve it (the merge of its
    /// table normally adds it; if not, it is added like an id@ seed, alive at incarnation 0, which
    /// any real claim supersedes).
    pub fn seed_answered(&mut self, addr: &str, id: Option<&str>, now_ms: u64) -> Vec<Effect> {
        let mut p = self.begin();
        // Without a (valid) node field the seed stays pending; the driver keeps warning.
        let Some(id) = id.filter(|i| valid_id(i)) else {
            return self.finish(p);
        };
        if id == self.self_id {
            // The seed list reached this very node under another address: nothing to resolve.
            self.seeds.retain(|s| s.addr != addr);
            return self.finish(p);
        }
        for s in &mut self.seeds {
            if s.addr == addr {
                s.id = Some(id.to_string());
            }
        }
        if !self.members.contains_key(id) && valid_address(addr) {
            let e = Entry {
                id: id.to_string(),
                address: addr.to_string(),
                api_address: String::new(),
                state: State::Alive,
                incarnation: 0,
            };
            self.add(&e, now_ms, &mut p);
            let to = self.random_ring_addrs(PUSH_FANOUT, &[id], None);
            p.gossip.extend(to);
        }
        self.finish(p)
    }

    /// Result of one probe cycle for `target` (2.3 steps 1–5, LHM rules of 2.5, §14 counters).
    pub fn probe_result(
        &mut self,
        target: &str,
        outcome: ProbeOutcome,
        now_ms: u64,
    ) -> Vec<Effect> {
        let mut p = self.begin();
        if let Some(m) = self.members.get_mut(target) {
            m.probing = false;
        }
        let cur = self
            .members
            .get(target)
            .map(|m| (m.state, m.incarnation, m.address.clone()));
        match outcome {
            ProbeOutcome::Ack => {
                self.counters.heartbeat_success += 1;
                self.lhm = self.lhm.saturating_sub(1);
            }
            ProbeOutcome::Draining => {
                // A 503 draining answer proves our own network works, so it lowers LHM like an ack.
                self.counters.heartbeat_success += 1;
                self.lhm = self.lhm.saturating_sub(1);
                if let Some((state, inc, _)) = cur.as_ref() {
                    if *state != State::Left {
                        // No incarnation in a probe answer: left at the current one (max(i, j)
                        // with j unknown), straight from alive/suspect without passing suspect.
                        self.transition(target, State::Left, *inc, None, now_ms, &mut p);
                    }
                }
            }
            ProbeOutcome::Failed {
                relays_asked,
                relay_ack,
                relays_silent,
            } => {
                self.counters.heartbeat_failure += 1;
                if relays_asked > 0 && relays_silent && !relay_ack {
                    // Nobody answered at all: our own side is the likely fault (2.5).
                    self.lhm = (self.lhm + 1).min(LHM_MAX);
                }
                if !relay_ack {
                    // Our own evidence: from now on a `dead` heard about it is believed.
                    if let Some(m) = self.members.get_mut(target) {
                        m.hearsay = false;
                    }
                }
                if relay_ack {
                    self.counters.indirect_probe_refuted += 1;
                } else if let Some((State::Alive, inc, addr)) = cur.as_ref() {
                    self.transition(target, State::Suspect, *inc, None, now_ms, &mut p);
                    // X first, so a live X learns it is suspected and refutes.
                    p.gossip.push(addr.clone());
                    let to = self.random_ring_addrs(PUSH_FANOUT, &[target], Some(addr));
                    p.gossip.extend(to);
                }
            }
        }
        // Step 4: every completed cycle of a suspect pushes to it, whatever the outcome, since
        // only the suspect's own refutation can clear the suspicion.
        if let Some((State::Suspect, _, addr)) = cur {
            p.gossip.push(addr);
        }
        self.finish(p)
    }

    /// One relay's answer (§14 IndirectProbeSuccess / IndirectProbeFailure).
    pub fn record_relay(&mut self, ok: bool) {
        if ok {
            self.counters.indirect_probe_success += 1;
        } else {
            self.counters.indirect_probe_failure += 1;
        }
    }

    /// Timers: suspicion expiry (suspect at the same incarnation for S x (1+LHM) → dead, gossip to
    /// 3) and forgetting dead/left members after the retention.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Effect> {
        let mut p = self.begin();
        let suspicion = self.suspicion_timeout_ms();
        // `since_ms` restarts on every replacement, so an expired timer always belongs to the
        // member's current incarnation.
        let expired: Vec<(String, u64)> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.state == State::Suspect && now_ms >= m.since_ms.saturating_add(suspicion)
            })
            .map(|(id, m)| (id.clone(), m.incarnation))
            .collect();
        for (id, inc) in expired {
            self.transition(&id, State::Dead, inc, None, now_ms, &mut p);
            let to = self.random_ring_addrs(PUSH_FANOUT, &[&id], None);
            p.gossip.extend(to);
        }
        let retention = self.retention_ms();
        let forget: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.state.is_ring() && now_ms >= m.since_ms.saturating_add(retention))
            .map(|(id, _)| id.clone())
            .collect();
        for id in forget {
            self.members.remove(&id);
            self.counters.membership_version += 1;
            p.table = true;
            log::info!("member {id} forgotten");
        }
        self.finish(p)
    }

    /// Start leaving (drain, 2.7): own entry → left at the current incarnation; returns
    /// GossipTo(every ring member address) and RingChanged. Calling it again (end of shutdown)
    /// only repeats the push.
    pub fn leave(&mut self) -> Vec<Effect> {
        let mut p = self.begin();
        if !self.leaving {
            self.leaving = true;
            self.counters.membership_version += 1;
            p.table = true;
            // Forced so the driver always re-plans hand-off at drain start, even for a lone node
            // whose ring set does not change.
            p.ring_forced = true;
            log::info!(
                "member {} alive -> left incarnation={}",
                self.self_id,
                self.incarnation
            );
        }
        p.gossip = self
            .members
            .values()
            .filter(|m| m.state.is_ring())
            .map(|m| m.address.clone())
            .collect();
        self.finish(p)
    }
}
