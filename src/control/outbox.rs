//! Per-peer write coalescing for the fan-out (cluster.md §6).
//!
//! Under load, many client writes go to the same owner at the same time; one
//! HTTP request each (parse, JSON, base64, a mesh hop on both sides) made the
//! replicated PUT 6× slower than a local one. Writes for a peer are queued
//! here and sent by one request at a time per peer, more (up to `FLUSHERS`)
//! only while the queue holds more than the running requests can carry: a single
//! queued write goes out as `/internal/set` / `/internal/del`, several as one
//! `/internal/batch` (reason `write`). Acks are delivered per write to the
//! coordinating round; owners that do not acknowledge get a hint.
//!
//! Why one at a time: with four requests always allowed, each took whatever one
//! write was queued when the previous answer came back, so most writes travelled
//! alone; one in flight lets the queue fill while it travels, and a replicated PUT cost
//! 30 % less CPU across the three nodes (PERFORMANCE.md, "Replicated PUT"). A slow
//! owner still gets up to `FLUSHERS` full requests once its backlog exceeds what
//! the running ones carry.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use glommio::channels::local_channel::LocalSender;

use glommio::{GlommioError, ResourceType};

use super::replicate::Ack;
use super::ControlCtx;
use crate::base::now_ms;
use crate::metrics::dist::idx;
use crate::store::entry::Entry;

/// Concurrent requests per peer carrying queued writes.
const FLUSHERS: usize = 4;
/// Writes per request at most (the body budget splits further).
const FLUSH_MAX: usize = 256;

pub struct Pending {
    pub j: usize,
    pub key: String,
    pub entry: Entry,
    pub tx: Rc<LocalSender<(usize, Ack)>>,
}

#[derive(Default)]
pub struct Outbox {
    queues: HashMap<String, (VecDeque<Pending>, usize)>,
}

/// Whether a peer with `running` requests in flight and `queued` writes waiting gets one
/// more request: always the first; more only for a backlog the running ones cannot carry.
fn another_flusher(running: usize, queued: usize) -> bool {
    running == 0 || (running < FLUSHERS && queued > FLUSH_MAX * running)
}

impl ControlCtx {
    /// Queues writes for `owner`; starts a flusher if none is running for it, or if
    /// the queue exceeds what the running ones carry and fewer than `FLUSHERS` run.
    pub fn enqueue_writes(self: &Rc<Self>, owner: &str, items: Vec<Pending>) {
        let start = {
            let mut ob = self.outbox.borrow_mut();
            let (q, running) = ob.queues.entry(owner.to_string()).or_default();
            q.extend(items);
            if another_flusher(*running, q.len()) {
                *running += 1;
                true
            } else {
                false
            }
        };
        if start {
            let ctl = self.clone();
            let owner = owner.to_string();
            glommio::spawn_local(async move { ctl.flush_owner(&owner).await }).detach();
        }
    }

    /// Hands an owner's answer to the round that waits for it. A round that already ended
    /// (W reached, failed or timed out) has dropped its receiver: a late ack still counts.
    fn deliver(&self, p: &Pending, ack: Ack) {
        if let Err(e) = p.tx.try_send((p.j, ack)) {
            let GlommioError::Closed(ResourceType::Channel((_, ack))) = e else {
                unreachable!("an unbounded channel is never full")
            };
            if let Ack::Ok | Ack::Newer(..) = ack {
                self.dist.add(idx("WriteAcks"), 1);
            }
        }
    }

    async fn flush_owner(self: &Rc<Self>, owner: &str) {
        loop {
            let batch: Vec<Pending> = {
                let mut ob = self.outbox.borrow_mut();
                let (q, running) = ob.queues.get_mut(owner).expect("outbox queue");
                if q.is_empty() {
                    *running -= 1;
                    return;
                }
                let n = q.len().min(FLUSH_MAX);
                q.drain(..n).collect()
            };
            let items: Vec<(usize, &str, &Entry)> = batch
                .iter()
                .enumerate()
                .map(|(i, p)| (i, p.key.as_str(), &p.entry))
                .collect();
            let results = match self.address_of(owner) {
                Some(addr) => self.send_writes(&addr, owner, &items, now_ms()).await,
                None => (0..batch.len()).map(|i| (i, Ack::Failed)).collect(),
            };
            // The owner is unreachable: fail everything queued for it now
            // (each becomes a hint) instead of one connect timeout per batch.
            let unreachable = results.iter().all(|(_, a)| matches!(a, Ack::Failed));
            let mut batch = batch;
            let mut results = results;
            if unreachable {
                let rest: Vec<Pending> = {
                    let mut ob = self.outbox.borrow_mut();
                    let (q, _) = ob.queues.get_mut(owner).expect("outbox queue");
                    q.drain(..).collect()
                };
                let base = batch.len();
                results.extend((0..rest.len()).map(|i| (base + i, Ack::Failed)));
                batch.extend(rest);
            }
            for (i, ack) in results {
                let p = &batch[i];
                if super::quorum::hinted(&ack) {
                    // Every owner that did not acknowledge gets a hint, also
                    // after the client was answered (cluster.md §6 step 6).
                    self.queue_hint(owner, &p.key, p.entry.clone());
                }
                self.deliver(p, ack);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_in_flight_until_a_backlog_exceeds_what_it_carries() {
        assert!(another_flusher(0, 1), "the first write always goes out");
        assert!(
            !another_flusher(1, 1),
            "a write waits for the request in flight"
        );
        assert!(
            !another_flusher(1, FLUSH_MAX),
            "one full request's worth still waits"
        );
        assert!(
            another_flusher(1, FLUSH_MAX + 1),
            "a backlog starts a second request"
        );
        assert!(!another_flusher(2, 2 * FLUSH_MAX));
        assert!(another_flusher(2, 2 * FLUSH_MAX + 1));
        assert!(
            !another_flusher(FLUSHERS, 100 * FLUSH_MAX),
            "never more than FLUSHERS per peer"
        );
    }
}
