//! The write side of a simulated node: LWW apply, the coordinator's rounds through the real
//! quorum tracker and `after_round`, hints for owners that never answered, hint replay.

use super::*;

impl Node {
    /// LWW apply (cluster.md §4): an older or equal entry is ignored and the newer one reported.
    pub(super) fn apply(&mut self, key: &str, entry: Entry) -> AckKind {
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
    pub(super) fn start_write(
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
        let entry = Entry::written(value.map(Into::into), version, id(self.idx), t);
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

    pub(super) fn write_answer(
        &mut self,
        w: u64,
        from: &str,
        ack: AckKind,
        now: u64,
        out: &mut Out,
    ) {
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

    pub(super) fn finish_write(&mut self, w: u64, now: u64, out: &mut Out) {
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
                    value.map(|v| v.to_vec()),
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
    pub(super) fn hint_unanswered(&mut self, w: u64, now: u64) {
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

    pub(super) fn replay_hints(&mut self, now: u64, out: &mut Out) {
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
