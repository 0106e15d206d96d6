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
//! Under a high arrival rate the flusher also lingers (`lingers`): after a request that
//! carried at least `LINGER_FROM` writes it waits `LINGER` (500 µs) before the next one, so
//! each request carries several times more and the owners wake up several times less often.
//! On a CPU-bound coordinator that costs no throughput (the CPU has other work meanwhile)
//! and gave about 13 % more replicated PUTs (PERFORMANCE.md); with a few clients batches
//! stay short and nothing waits.
//!
//! Why one at a time: with four requests always allowed, each took whatever one
//! write was queued when the previous answer came back, so most writes travelled
//! alone; one in flight lets the queue fill while it travels, and a replicated PUT cost
//! 30 % less CPU across the three nodes (PERFORMANCE.md, "Replicated PUT"). A write
//! queued behind a request that is slow (in flight for `SLOW_MS`, e.g. a large batch or
//! a delayed owner), or behind more than the running requests carry, starts another
//! request, up to `FLUSHERS`, so it does not wait out the slow one.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use glommio::channels::local_channel::LocalSender;

use super::replicate::Ack;
use super::ControlCtx;
use crate::base::now_ms;
use crate::metrics::dist::{idx, DistMetrics};
use crate::store::entry::Entry;

/// Concurrent requests per peer carrying queued writes.
const FLUSHERS: usize = 4;
/// Writes per request at most (the body budget splits further).
const FLUSH_MAX: usize = 256;
/// A request in flight this long no longer holds back the writes queued behind it (a batch
/// answers within a few ms on a healthy network).
const SLOW_MS: u64 = 20;

pub struct Pending {
    pub j: usize,
    /// The write, shared by every owner's queue (one copy of key and origin per write, not per
    /// owner).
    pub write: Rc<Queued>,
    pub tx: Rc<LocalSender<(usize, Ack)>>,
}

/// A write as the owners' requests carry it: the key as JSON text takes it, and the entry.
pub struct Queued {
    pub key: String,
    pub entry: Entry,
}

#[derive(Default)]
pub struct Outbox {
    queues: HashMap<String, OwnerQueue>,
}

#[derive(Default)]
struct OwnerQueue {
    q: VecDeque<Pending>,
    /// Requests in flight (flusher tasks running) for this owner.
    running: usize,
    /// When the latest of them left (Unix ms).
    sent_at_ms: u64,
    /// Writes the latest request carried.
    last_batch: usize,
}

/// A request that carried at least this many writes shows they arrive faster than one request
/// per round trip carries them...
const LINGER_FROM: usize = 16;
/// ...so, until this many are queued, the next request first waits [`LINGER`] for more.
const LINGER_UNTIL: usize = 64;
const LINGER: std::time::Duration = std::time::Duration::from_micros(500);

/// Whether the next request to a peer first waits [`LINGER`] for more writes: only when the
/// latest request, sent `since_ms` ago, carried at least [`LINGER_FROM`] (a busy coordinator;
/// a lone write or a handful of clients never wait, nor does the first write after a pause)
/// and fewer than [`LINGER_UNTIL`] are queued now.
fn lingers(last_batch: usize, since_ms: u64, queued: usize) -> bool {
    last_batch >= LINGER_FROM && since_ms < SLOW_MS && queued < LINGER_UNTIL
}

/// Whether a peer with `running` requests in flight, the latest sent `in_flight_ms` ago, and
/// `queued` writes waiting gets one more request: always the first; more, up to `FLUSHERS`,
/// only for a backlog the running ones cannot carry or when they are slow.
fn another_flusher(running: usize, queued: usize, in_flight_ms: u64) -> bool {
    running == 0
        || (running < FLUSHERS && (queued > FLUSH_MAX * running || in_flight_ms >= SLOW_MS))
}

/// Counts an acknowledgement in `WriteAcks` and hands the answer to the round waiting for it.
/// Counted here, not by the round: a round that has its W acks (or timed out) drops its
/// receiver, and answers still queued in it or arriving later would go uncounted.
fn deliver(dist: &DistMetrics, p: &Pending, ack: Ack) {
    if ack.acknowledged() {
        dist.add(const { idx("WriteAcks") }, 1);
    }
    // A round that already ended no longer listens: nothing else to do.
    let _ = p.tx.try_send((p.j, ack));
}

impl ControlCtx {
    /// Queues writes for `owner`; starts a flusher when [`another_flusher`] says so.
    pub fn enqueue_writes(self: &Rc<Self>, owner: &str, items: Vec<Pending>) {
        let start = {
            let mut ob = self.outbox.borrow_mut();
            if !ob.queues.contains_key(owner) {
                ob.queues.insert(owner.to_string(), OwnerQueue::default());
            }
            let o = ob.queues.get_mut(owner).expect("just inserted");
            o.q.extend(items);
            let in_flight_ms = now_ms().saturating_sub(o.sent_at_ms);
            if another_flusher(o.running, o.q.len(), in_flight_ms) {
                o.running += 1;
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

    /// Hands an owner's answer to the round that waits for it.
    fn deliver(&self, p: &Pending, ack: Ack) {
        deliver(&self.dist, p, ack);
    }

    async fn flush_owner(self: &Rc<Self>, owner: &str) {
        loop {
            let wait = {
                let ob = self.outbox.borrow();
                let o = ob.queues.get(owner).expect("outbox queue");
                let since_ms = now_ms().saturating_sub(o.sent_at_ms);
                lingers(o.last_batch, since_ms, o.q.len())
            };
            if wait {
                glommio::timer::sleep(LINGER).await;
            }
            let batch: Vec<Pending> = {
                let mut ob = self.outbox.borrow_mut();
                let o = ob.queues.get_mut(owner).expect("outbox queue");
                if o.q.is_empty() {
                    o.running -= 1;
                    return;
                }
                o.sent_at_ms = now_ms();
                let n = o.q.len().min(FLUSH_MAX);
                o.last_batch = n;
                o.q.drain(..n).collect()
            };
            let items: Vec<(usize, &str, &Entry)> = batch
                .iter()
                .enumerate()
                .map(|(i, p)| (i, p.write.key.as_str(), &p.write.entry))
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
                    let o = ob.queues.get_mut(owner).expect("outbox queue");
                    o.q.drain(..).collect()
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
                    self.queue_hint(owner, &p.write.key, p.write.entry.clone());
                }
                self.deliver(p, ack);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::channels::local_channel;

    #[test]
    fn one_request_in_flight_until_a_backlog_or_a_slow_request() {
        assert!(another_flusher(0, 1, 0), "the first write always goes out");
        assert!(
            !another_flusher(1, 1, 0),
            "a write waits for the request in flight"
        );
        assert!(
            !another_flusher(1, FLUSH_MAX, SLOW_MS - 1),
            "one full request's worth waits"
        );
        assert!(
            another_flusher(1, FLUSH_MAX + 1, 0),
            "a backlog starts a second request"
        );
        assert!(
            another_flusher(1, 1, SLOW_MS),
            "a slow request does not hold writes back"
        );
        assert!(!another_flusher(2, 2 * FLUSH_MAX, 0));
        assert!(another_flusher(2, 2 * FLUSH_MAX + 1, 0));
        assert!(
            !another_flusher(FLUSHERS, 100 * FLUSH_MAX, 10 * SLOW_MS),
            "never more than FLUSHERS per peer"
        );
    }

    #[test]
    fn only_a_busy_owner_queue_lingers() {
        assert!(
            lingers(LINGER_FROM, 0, 1),
            "after a full request, a short queue waits"
        );
        assert!(
            !lingers(LINGER_FROM - 1, 0, 1),
            "writes from a handful of clients never wait"
        );
        assert!(
            !lingers(FLUSH_MAX, 0, LINGER_UNTIL),
            "a queue that already fills a large request goes at once"
        );
        assert!(
            !lingers(FLUSH_MAX, SLOW_MS, 1),
            "the first write after a pause goes at once"
        );
        assert!(!lingers(0, 0, 0), "an idle peer never waits");
    }

    fn pending(j: usize, tx: &Rc<LocalSender<(usize, Ack)>>) -> Pending {
        Pending {
            j,
            write: Rc::new(Queued {
                key: "k".into(),
                entry: Entry::written(None, 7, "n1".into(), 1),
            }),
            tx: tx.clone(),
        }
    }

    /// Every acknowledgement counts once in WriteAcks, whether the round still listens, has
    /// ended with answers unread, or is gone; failures never count.
    #[test]
    fn every_ack_counts_once_whether_or_not_the_round_still_listens() {
        let dist = DistMetrics::default();
        let acks = || dist.values[const { idx("WriteAcks") }].get();
        let (tx, rx) = local_channel::new_unbounded();
        let tx = Rc::new(tx);
        deliver(&dist, &pending(0, &tx), Ack::Ok);
        deliver(&dist, &pending(1, &tx), Ack::Newer(9, "n2".into()));
        deliver(&dist, &pending(2, &tx), Ack::Failed);
        deliver(&dist, &pending(3, &tx), Ack::Invalid);
        assert_eq!(acks(), 2);
        // The round got every answer, in order.
        let got: Vec<usize> = std::iter::from_fn(|| {
            futures_lite::future::block_on(futures_lite::future::poll_once(rx.recv())).flatten()
        })
        .map(|(j, _)| j)
        .collect();
        assert_eq!(got, vec![0, 1, 2, 3]);
        // The round ended (receiver dropped, one answer still unread): late acks still count.
        deliver(&dist, &pending(4, &tx), Ack::Ok);
        drop(rx);
        deliver(&dist, &pending(5, &tx), Ack::Ok);
        deliver(&dist, &pending(6, &tx), Ack::Failed);
        assert_eq!(acks(), 4);
        deliver(&dist, &pending(7, &tx), Ack::Held);
        assert_eq!(
            acks(),
            5,
            "an owner that already held the write acknowledged it"
        );
    }
}
