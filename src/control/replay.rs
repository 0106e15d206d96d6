//! Hint replay (cluster.md §8): every HINT_REPLAY, expire old hints, then
//! send each alive target its queue oldest first in `/internal/batch`
//! requests (reason `hint`, at most REBALANCE_BATCH entries, one request in
//! flight per target). A transport failure pauses the target until the next
//! tick; hints carry their original version, so a replay never overwrites a
//! newer write or a tombstone.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::replicate::Ack;
use super::ControlCtx;
use crate::base::hash::xxhash64;
use crate::base::now_ms;
use crate::dist::batch_body::Item;
use crate::dist::membership::State;
use crate::metrics::dist::idx;

impl ControlCtx {
    /// Queues a hint for an owner that did not acknowledge a write.
    pub fn queue_hint(&self, target: &str, key: &str, entry: crate::store::entry::Entry) {
        let c = self.hints.borrow_mut().push(target, key, entry, now_ms());
        self.count_hints(c);
    }

    fn count_hints(&self, c: super::hints::HintCounts) {
        let d = &self.dist;
        d.add(const { idx("HintedQueued") }, c.queued);
        d.add(const { idx("HintedDropped") }, c.dropped);
        d.add(const { idx("HintedGlobalDropped") }, c.global_dropped);
        d.add(const { idx("HintedExpired") }, c.expired);
        if c.dropped + c.global_dropped > 0 {
            log::warn!(
                "dropped {} hints at the caps (HYPERCACHE_HINT_MAX_PER_NODE / HYPERCACHE_HINT_MAX_BYTES)",
                c.dropped + c.global_dropped
            );
        }
    }

    /// Drops the queues of targets that left (cluster.md §8).
    pub fn drop_hints_of_left(&self) {
        let targets = self.hints.borrow().targets();
        for t in targets {
            if self.state_of(&t) == Some(State::Left) {
                let n = self.hints.borrow_mut().drop_target(&t);
                self.dist.add(const { idx("HintedDropped") }, n);
                log::warn!("dropped {n} hints for {t}: it left the cluster");
            }
        }
    }

    /// One replay tick over every target.
    pub fn replay_tick(self: &Rc<Self>) {
        let c = self.hints.borrow_mut().expire(now_ms());
        self.count_hints(c);
        let targets = self.hints.borrow().targets();
        for t in targets {
            if self.state_of(&t) != Some(State::Alive) || self.replaying.borrow().contains(&t) {
                continue;
            }
            self.replaying.borrow_mut().insert(t.clone());
            let ctl = self.clone();
            glommio::spawn_local(async move {
                ctl.replay_target(&t).await;
                ctl.replaying.borrow_mut().remove(&t);
            })
            .detach();
        }
    }

    async fn replay_target(self: &Rc<Self>, target: &str) {
        let Some(addr) = self.address_of(target) else {
            return;
        };
        let batch_max = self.node.config.rebalance_batch.max(1);
        loop {
            // Hints whose target is no longer an owner are dropped: rebalance
            // covers the new owners.
            let ring = self.ring.borrow().clone();
            let mut owners = Vec::new();
            let dropped = self.hints.borrow_mut().retain(target, |h| {
                ring.owners_into(xxhash64(h.key.as_bytes(), 0), &mut owners);
                owners.iter().any(|&i| ring.member(i) == target)
            });
            self.dist.add(const { idx("HintedDropped") }, dropped);
            let batch = self.hints.borrow().peek(target, batch_max);
            if batch.is_empty() {
                return;
            }
            let now = now_ms();
            let items: Vec<Item<'_>> = batch
                .iter()
                .enumerate()
                .map(|(i, h)| (i, h.key.as_str(), &h.entry))
                .collect();
            let res = self.send_batch(&addr, target, &items, "hint", now).await;
            let mut transport_failed = false;
            for (i, ack) in res {
                let h = &batch[i];
                match ack {
                    Ack::Ok | Ack::Held | Ack::Newer(..) => {
                        self.hints
                            .borrow_mut()
                            .remove_sent(target, &h.key, &h.entry);
                        self.dist.add(const { idx("HintedReplayed") }, 1);
                    }
                    Ack::Invalid => {
                        self.hints
                            .borrow_mut()
                            .remove_sent(target, &h.key, &h.entry);
                        self.dist.add(const { idx("HintedDropped") }, 1);
                    }
                    Ack::Failed => transport_failed = true,
                }
            }
            if transport_failed {
                return;
            }
        }
    }

    /// The replay loop, every HINT_REPLAY until the control core stops.
    pub async fn replay_loop(self: Rc<Self>) {
        let period = self.node.config.hint_replay;
        while !self.stop.is_set() {
            self.replay_tick();
            self.stop.race(glommio::timer::sleep(period)).await;
        }
    }

    /// Shutdown step 4: replay to alive targets for at most `limit`; what is
    /// left is dropped and counted.
    pub async fn flush_hints(self: &Rc<Self>, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.hints.borrow().is_empty() && Instant::now() < deadline {
            self.replay_tick();
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
        let left: u64 = self
            .hints
            .borrow()
            .targets()
            .iter()
            .map(|t| self.hints.borrow().len(t) as u64)
            .sum();
        if left > 0 {
            log::warn!("shutdown: {left} hints could not be delivered and are dropped");
        }
    }
}
