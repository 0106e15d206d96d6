//! Write fan-out on the control core (cluster.md §6).
//!
//! Each coordinated write arrives versioned (and, when this node is an owner,
//! already applied locally = one ack). Remote owners get `/internal/set` or
//! `/internal/del` for a single write, one `/internal/batch` per owner for a
//! batch. The coordinator answers once W acks arrived, when every owner has
//! answered, or after 5 s; owners still pending finish in the background.
//! If one of the first W acks reports a newer entry, the write is re-issued
//! with a fresh version that exceeds it (stale coordinator clock; at most
//! `quorum::MAX_REISSUES` times, see `quorum::after_round`). What
//! counts, when to stop waiting and what to re-issue is decided by the pure
//! tracker in `quorum.rs`; this file only sends and receives.

use std::rc::Rc;

use glommio::channels::local_channel;

use super::outbox::{Pending, Queued};
use super::quorum::{after_round, After, Quorum, Verdict};
use super::ControlCtx;
use crate::base::now_ms;
use crate::base::warn_limit::WarnLimit;
use crate::dist::batch_body;
use crate::dist::client::REQUEST_TIMEOUT;
use crate::dist::protocol::{Batch, DelOne, PeerError, SetOne};
use crate::dist::wire::{self, AckResp, ItemStatus};
use crate::metrics::dist::idx;
use crate::runtime::msg::{Op, PutItem, Reply, WriteJob, WriteOutcome};
use crate::runtime::shard_for;
use crate::store::entry::{Entry, Value};

/// Bodies are split below the dist listener's 17 MiB cap.
const BATCH_BODY_BUDGET: usize = 12 << 20;

/// One owner's answer about one job.
pub enum Ack {
    /// Applied (or acknowledged by a route that does not say which: `/internal/set`).
    Ok,
    /// Acknowledged without a change: the owner already held this very write (a batch item
    /// `ignored` with no newer stamp). Counts for the quorum, not as a repair or a push.
    Held,
    Newer(u64, String),
    /// The owner refused the item as invalid: logged, not hinted.
    Invalid,
    /// No acknowledgement (transport error, timeout, non-2xx): hinted.
    Failed,
}

impl Ack {
    /// The owner holds the entry or a newer one: an ack for the quorum, a hint or a hand-off.
    pub fn acknowledged(&self) -> bool {
        matches!(self, Ack::Ok | Ack::Held | Ack::Newer(..))
    }

    /// The answer a `/internal/batch` result gives about its item.
    fn of_item(status: ItemStatus, version: Option<u64>, origin: Option<String>) -> Ack {
        match (status, version, origin) {
            (ItemStatus::Ignored, Some(v), Some(o)) => Ack::Newer(v, o),
            (ItemStatus::Applied, _, _) => Ack::Ok,
            (ItemStatus::Ignored, _, _) => Ack::Held,
            _ => Ack::Invalid,
        }
    }
}

/// A job on its way to the owners: its key and entry moved once into the copy every owner's
/// queue shares (no clone of either per round), the rest of the job beside it.
struct Flight {
    idx: usize,
    hash: u64,
    ttl_ms: u64,
    owners: Vec<String>,
    local_acked: bool,
    write: Rc<Queued>,
}

impl Flight {
    fn new(job: WriteJob) -> Flight {
        // Client keys are checked UTF-8 before they get here; the lossy path is never taken.
        debug_assert!(
            std::str::from_utf8(&job.key).is_ok(),
            "a write job's key is not UTF-8"
        );
        let key = String::from_utf8(job.key)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let write = Rc::new(Queued {
            key,
            entry: job.entry,
        });
        Flight {
            idx: job.idx,
            hash: job.hash,
            ttl_ms: job.ttl_ms,
            owners: job.owners,
            local_acked: job.local_acked,
            write,
        }
    }
}

impl ControlCtx {
    pub async fn replicate(self: &Rc<Self>, jobs: Vec<WriteJob>) -> Vec<WriteOutcome> {
        let mut done = Vec::with_capacity(jobs.len());
        let mut reissues = 0;
        let mut flights: Vec<Flight> = jobs.into_iter().map(Flight::new).collect();
        while !flights.is_empty() {
            let verdicts = self.replicate_round(&flights).await;
            let mut again = Vec::new();
            for (v, mut f) in verdicts.into_iter().zip(flights) {
                match after_round(&v, reissues) {
                    After::Reissue { above } => {
                        self.reissue(&mut f, above).await;
                        again.push(f);
                    }
                    After::Done { ok } => {
                        if !ok {
                            self.dist.add(const { idx("WriteQuorumFailures") }, 1);
                        }
                        done.push(WriteOutcome {
                            idx: f.idx,
                            acks: v.acks,
                            needed: v.needed,
                            ok,
                            shadowed: !ok && v.ok,
                        });
                    }
                }
            }
            flights = again;
            reissues += 1;
        }
        done
    }

    /// Fresh version from the key's core, above `observed`.
    async fn reissue(&self, f: &mut Flight, observed: u64) {
        let core = shard_for(f.hash, self.cores);
        let delete = matches!(f.write.entry, Entry::Tombstone { .. });
        let value = match &f.write.entry {
            Entry::Item { value, .. } => value.clone(),
            _ => Value::default(),
        };
        let p = PutItem {
            idx: f.idx,
            hash: f.hash,
            key: f.write.key.as_bytes().to_vec(),
            value: value.clone(),
            ttl_ms: f.ttl_ms,
            store: f.local_acked,
            observe: observed,
        };
        let op = if delete {
            Op::BatchDelete(vec![p])
        } else {
            Op::BatchPut(vec![p])
        };
        if let Reply::Versions(v) = self.dispatch.call(core, op).await {
            if let Some(&(_, version, t)) = v.first() {
                let origin = self.node.node_id().to_string();
                f.write = Rc::new(Queued {
                    key: f.write.key.clone(),
                    entry: Entry::written((!delete).then_some(value), version, origin, t),
                });
            }
        }
    }

    /// One fan-out round: the tracker's verdict for each job.
    async fn replicate_round(self: &Rc<Self>, flights: &[Flight]) -> Vec<Verdict> {
        let me = self.node.node_id();
        let consistency = self.node.config.write_consistency;
        let d = &self.dist;
        let mut quorum = Quorum::new();
        let (tx, rx) = local_channel::new_unbounded::<(usize, Ack)>();
        let tx = Rc::new(tx);
        // (owner id, its writes): a few owners, so a list beats a map
        let mut per_owner: Vec<(&str, Vec<Pending>)> = Vec::new();
        for (j, job) in flights.iter().enumerate() {
            let write = &job.write;
            d.add(const { idx("WriteAttempts") }, 1);
            let delete = matches!(write.entry, Entry::Tombstone { .. });
            let self_owner = job.owners.iter().any(|o| o == me);
            if !self_owner {
                d.add(
                    if delete {
                        const { idx("ForwardRemove") }
                    } else {
                        const { idx("ForwardSet") }
                    },
                    1,
                );
            }
            if job.local_acked {
                d.add(const { idx("WriteAcks") }, 1);
            }
            let remote = job.owners.iter().filter(|o| *o != me).count();
            quorum.add(
                consistency,
                job.owners.len(),
                remote,
                job.local_acked,
                write.entry.version(),
                write.entry.origin(),
            );
            for o in job.owners.iter().filter(|o| *o != me) {
                d.add(
                    if delete {
                        const { idx("ReplicaFanoutRemove") }
                    } else {
                        const { idx("ReplicaFanoutSet") }
                    },
                    1,
                );
                let p = Pending {
                    j,
                    write: write.clone(),
                    tx: tx.clone(),
                };
                match per_owner.iter_mut().find(|(id, _)| id == o) {
                    Some((_, ps)) => ps.push(p),
                    None => per_owner.push((o, vec![p])),
                }
            }
        }
        for (owner, items) in per_owner {
            self.enqueue_writes(owner, items);
        }
        drop(tx);
        // One timer for the round. Answers that arrive after it ends find the receiver gone;
        // the outbox has counted their acks already (`outbox::deliver`), so no task per
        // round lingers to drain them.
        let answers = async {
            while quorum.waiting() {
                let Some((j, ack)) = rx.recv().await else {
                    break;
                };
                // WriteAcks is counted where the answer arrives (`outbox::deliver`).
                quorum.answer(j, &ack);
            }
        };
        let _ = glommio::timer::timeout(REQUEST_TIMEOUT, async {
            answers.await;
            Ok(())
        })
        .await;
        drop(rx);
        quorum.finish()
    }

    /// Sends the entries for one owner: `/internal/set` / `/internal/del` for
    /// one entry, `/internal/batch` (split at the body budget) for several.
    pub(super) async fn send_writes(
        &self,
        addr: &str,
        owner: &str,
        items: &[(usize, &str, &Entry)],
        now: u64,
    ) -> Vec<(usize, Ack)> {
        if let [(j, key, entry)] = items {
            let res = match entry {
                Entry::Item {
                    value,
                    version,
                    origin,
                    expires_at_ms,
                } => {
                    let call = SetOne(wire::SetReq {
                        key: key.to_string(),
                        value: wire::WireValue::Shared(value.clone()),
                        expiration_ms: wire::remaining(*expires_at_ms, now),
                        version: *version,
                        origin: origin.clone(),
                        replicate: false,
                    });
                    self.peers.data_call(addr, &call).await
                }
                Entry::Tombstone {
                    version,
                    origin,
                    deleted_at_ms,
                } => {
                    let call = DelOne {
                        key,
                        version: *version,
                        origin,
                        deleted_at_ms: *deleted_at_ms,
                    };
                    self.peers.data_call(addr, &call).await
                }
            };
            let ack = match res {
                Ok(AckResp {
                    version: Some(v),
                    origin: Some(o),
                }) => Ack::Newer(v, o),
                Ok(_) => Ack::Ok,
                // The runbook (docs/operations.md) greps these lines: keep "failed: <reason>"
                // for no answer and "answered <status>" for a refusal.
                Err(PeerError::Transport(e)) => {
                    self.warn_peer(owner, || format!("write to {owner} ({addr}) failed: {e}"));
                    Ack::Failed
                }
                Err(e) => {
                    self.warn_peer(owner, || format!("write to {owner} ({addr}) {e}"));
                    Ack::Failed
                }
            };
            return vec![(*j, ack)];
        }
        // Bodies split below the listener's cap; each chunk goes out as it is cut.
        let mut out = Vec::with_capacity(items.len());
        let (mut start, mut size) = (0, 0);
        for (i, &(_, key, entry)) in items.iter().enumerate() {
            size += batch_body::item_size(key, entry);
            if size >= BATCH_BODY_BUDGET || i + 1 == items.len() {
                out.extend(
                    self.send_batch(addr, owner, &items[start..=i], "write", now)
                        .await,
                );
                (start, size) = (i + 1, 0);
            }
        }
        out
    }

    /// A failed write to `owner`, logged at most once a second per owner.
    fn warn_peer(&self, owner: &str, line: impl FnOnce() -> String) {
        let admitted = self.peer_warnings.borrow_mut().admit(owner, now_ms());
        if let Some(suppressed) = admitted {
            log::warn!("{}", WarnLimit::line(suppressed, line()));
        }
    }

    /// One `/internal/batch` of `items` to `owner`: one ack per item, in the order of `items`.
    pub async fn send_batch(
        &self,
        addr: &str,
        owner: &str,
        items: &[batch_body::Item<'_>],
        reason: &str,
        now_ms: u64,
    ) -> Vec<(usize, Ack)> {
        let call = Batch {
            reason,
            items,
            now_ms,
        };
        let answer = self.peers.data_call(addr, &call).await;
        self.batch_acks(addr, owner, items, answer)
    }

    /// One ack per item of a batch sent to `owner`, in the order of `items`: a refused or
    /// missing answer fails them all (each becomes a hint).
    fn batch_acks(
        &self,
        addr: &str,
        owner: &str,
        items: &[batch_body::Item<'_>],
        answer: Result<wire::BatchAnswer, PeerError>,
    ) -> Vec<(usize, Ack)> {
        let parsed = match answer {
            Ok(resp) => Some(resp),
            Err(PeerError::Transport(e)) => {
                self.warn_peer(owner, || format!("batch to {owner} ({addr}) failed: {e}"));
                None
            }
            Err(e) => {
                self.warn_peer(owner, || format!("batch to {owner} ({addr}) {e}"));
                None
            }
        };
        match parsed {
            Some(resp) if resp.results.len() == items.len() => items
                .iter()
                .zip(resp.results)
                .map(|(&(j, key, _), r)| {
                    let ack = Ack::of_item(r.status, r.version, r.origin);
                    if let Ack::Invalid = ack {
                        log::warn!("{owner} refused item {key}: {:?}", r.error);
                    }
                    (j, ack)
                })
                .collect(),
            _ => items.iter().map(|it| (it.0, Ack::Failed)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch result becomes the ack its counters need: applied is a push or a repair, an
    /// ignored item the owner already held is only an ack, a newer stamp may re-issue.
    #[test]
    fn batch_results_map_to_acks() {
        let of = |s, v, o: Option<&str>| Ack::of_item(s, v, o.map(String::from));
        assert!(matches!(of(ItemStatus::Applied, None, None), Ack::Ok));
        assert!(matches!(of(ItemStatus::Ignored, None, None), Ack::Held));
        assert!(matches!(
            of(ItemStatus::Ignored, Some(9), Some("n2")),
            Ack::Newer(9, ref o) if o == "n2"
        ));
        assert!(matches!(of(ItemStatus::Invalid, None, None), Ack::Invalid));
        assert!(matches!(of(ItemStatus::Other, None, None), Ack::Invalid));
        assert!([Ack::Ok, Ack::Held, Ack::Newer(1, "n".into())]
            .iter()
            .all(Ack::acknowledged));
        assert!(![Ack::Invalid, Ack::Failed].iter().any(Ack::acknowledged));
    }
}
