//! Per-peer write coalescing for the fan-out (cluster.md §6).
//!
//! Under load, many client writes go to the same owner at the same time; one
//! HTTP request each (parse, JSON, base64, a mesh hop on both sides) made the
//! replicated PUT 6× slower than a local one. Writes for a peer are queued
//! here and sent by at most `FLUSHERS` concurrent requests per peer: a single
//! queued write goes out as `/internal/set` / `/internal/del`, several as one
//! `/internal/batch` (reason `write`). Acks are delivered per write to the
//! coordinating round; owners that do not acknowledge get a hint.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use glommio::channels::local_channel::LocalSender;

use super::replicate::Ack;
use super::ControlCtx;
use crate::base::now_ms;
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

impl ControlCtx {
    /// Queues writes for `owner`; starts a flusher if fewer than `FLUSHERS`
    /// are running for it.
    pub fn enqueue_writes(self: &Rc<Self>, owner: &str, items: Vec<Pending>) {
        let start = {
            let mut ob = self.outbox.borrow_mut();
            let (q, running) = ob.queues.entry(owner.to_string()).or_default();
            q.extend(items);
            if *running < FLUSHERS {
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
            let items: Vec<(usize, String, Entry)> = batch
                .iter()
                .enumerate()
                .map(|(i, p)| (i, p.key.clone(), p.entry.clone()))
                .collect();
            let results = match self.address_of(owner) {
                Some(addr) => self.send_writes(&addr, owner, items, now_ms()).await,
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
                let _ = p.tx.try_send((p.j, ack));
            }
        }
    }
}
