//! Choosing whom to talk to: probe targets, relays, gossip partners and random push targets, all
//! driven by the membership's seeded `fastrand::Rng` so a given seed replays the same choices in tests.

use super::{Membership, Seed, State};

impl Membership {
    /// Peers to probe this round (2.3): alive or suspect peers whose previous cycle finished, in
    /// random order so no peer is systematically probed last. Returns (id, address).
    pub fn probe_targets(&mut self, _now_ms: u64) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .members
            .iter()
            .filter(|(_, m)| m.state.is_ring() && !m.probing)
            .map(|(id, m)| (id.clone(), m.address.clone()))
            .collect();
        self.shuffle(&mut out);
        out
    }

    /// Marks a probe cycle for `id` as in flight until `probe_result`.
    pub fn probe_started(&mut self, id: &str) {
        if let Some(m) = self.members.get_mut(id) {
            m.probing = true;
        }
    }

    /// Up to K distinct random alive members other than self and `target`: (id, address).
    pub fn pick_relays(&mut self, target: &str) -> Vec<(String, String)> {
        let mut cands: Vec<(String, String)> = self
            .members
            .iter()
            .filter(|(id, m)| m.state == State::Alive && id.as_str() != target)
            .map(|(id, m)| (id.clone(), m.address.clone()))
            .collect();
        self.shuffle(&mut cands);
        cands.truncate(self.timers.indirect_k);
        cands
    }

    /// The periodic gossip round (2.6): one random ring member other than self, plus (round-robin)
    /// one dead member or unresolved seed address when any exist. Returns addresses.
    pub fn gossip_round(&mut self) -> Vec<String> {
        let ring: Vec<String> = self
            .members
            .values()
            .filter(|m| m.state.is_ring())
            .map(|m| m.address.clone())
            .collect();
        let mut out = Vec::with_capacity(2);
        if !ring.is_empty() {
            let i = self.rand_below(ring.len());
            out.push(ring[i].clone());
        }
        // Dead members and unresolved seeds are how a healed partition is rediscovered and an
        // isolated node rejoins; round-robin guarantees each is tried within len rounds.
        let mut extra: Vec<String> = self
            .members
            .values()
            .filter(|m| m.state == State::Dead)
            .map(|m| m.address.clone())
            .collect();
        for s in &self.seeds {
            if !self.seed_matches_ring(s) && !extra.contains(&s.addr) {
                extra.push(s.addr.clone());
            }
        }
        if !extra.is_empty() {
            let pick = extra[self.rr % extra.len()].clone();
            self.rr = self.rr.wrapping_add(1);
            if !out.contains(&pick) && pick != self.self_addr {
                out.push(pick);
            }
        }
        out
    }

    /// A seed is resolved while some ring member matches it by id or by address (2.6).
    fn seed_matches_ring(&self, s: &Seed) -> bool {
        self.members.iter().any(|(id, m)| {
            m.state.is_ring() && (s.id.as_deref() == Some(id.as_str()) || m.address == s.addr)
        })
    }

    /// Uniform in `0..n`; `n` must be > 0.
    fn rand_below(&mut self, n: usize) -> usize {
        self.rng.usize(..n)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        self.rng.shuffle(v);
    }

    /// Up to `n` random ring-member addresses, never self, never one of `skip_ids` (the subjects,
    /// who already know) and never `skip_addr` (a sender already being answered).
    pub(super) fn random_ring_addrs(
        &mut self,
        n: usize,
        skip_ids: &[&str],
        skip_addr: Option<&str>,
    ) -> Vec<String> {
        let mut cands: Vec<String> = self
            .members
            .iter()
            .filter(|(id, m)| {
                m.state.is_ring()
                    && !skip_ids.contains(&id.as_str())
                    && Some(m.address.as_str()) != skip_addr
            })
            .map(|(_, m)| m.address.clone())
            .collect();
        self.shuffle(&mut cands);
        cands.truncate(n);
        cands
    }
}
