//! Reads completed with the remote owners (cluster.md §7).
//!
//! ONE: owners are asked one at a time in ring order (suspects last); keys of
//! a batch are grouped by the owner to ask next, one request per owner and
//! round. A live item is served, a tombstone is an authoritative miss, a plain
//! miss or a failure moves on. QUORUM/ALL: R responses (this node's own
//! included) are gathered in parallel and the newest entry wins; stale or
//! missing owners are repaired in the background.

use std::collections::HashMap;
use std::rc::Rc;

use super::ControlCtx;
use crate::base::now_ms;
use crate::config::Consistency;
use crate::dist::membership::State;
use crate::dist::protocol::{BatchGet, GetKey};
use crate::dist::wire::{self, BatchGetReq};
use crate::metrics::dist::idx;
use crate::runtime::msg::{Op, ReadJob, ReadOutcome};
use crate::runtime::shard_for;
use crate::store::entry::{Entry, OwnedItem};

use super::resolve::{ask_order, resolve_quorum, OneRead, OneStep, Resolved, Said};

fn to_said(
    found: bool,
    item: Option<wire::ItemWire>,
    tomb: Option<wire::TombWire>,
    now: u64,
) -> Said {
    if found {
        return match item.map(|it| wire::wire_item_to_entry(&it, now)) {
            Some(Ok(e @ Entry::Item { .. })) => Said::Entry(e),
            _ => Said::Failed,
        };
    }
    match tomb {
        Some(t) if wire::check_stamp(t.version, &t.origin, now).is_err() => Said::Failed,
        Some(t) => Said::Entry(Entry::Tombstone {
            version: t.version,
            origin: t.origin,
            deleted_at_ms: t.deleted_at,
        }),
        None => Said::Miss,
    }
}

/// The served form of a winning live item.
fn owned(e: Entry) -> ReadOutcome {
    OwnedItem::of(&e).map_or(ReadOutcome::NotFound, ReadOutcome::Found)
}

fn outcome(r: Resolved) -> ReadOutcome {
    match r {
        Resolved::Found(e) => owned(e),
        Resolved::NotFound => ReadOutcome::NotFound,
        Resolved::Failed(got, needed) => ReadOutcome::Failed(got, needed),
    }
}

impl ControlCtx {
    /// Remote owners of a job in the order to ask: ring order, suspects last.
    fn ask_order(&self, owners: &[String]) -> Vec<String> {
        ask_order(owners, self.node.node_id(), |o| {
            self.state_of(o) == Some(State::Suspect)
        })
    }

    pub async fn remote_read(self: &Rc<Self>, jobs: Vec<ReadJob>) -> Vec<(usize, ReadOutcome)> {
        let out = self.remote_read_inner(jobs).await;
        let failed = out
            .iter()
            .filter(|(_, o)| matches!(o, ReadOutcome::Failed(..)))
            .count();
        self.dist
            .add(const { idx("ReadQuorumFailures") }, failed as u64);
        out
    }

    async fn remote_read_inner(self: &Rc<Self>, jobs: Vec<ReadJob>) -> Vec<(usize, ReadOutcome)> {
        if self.node.config.read_consistency == Consistency::One {
            return self.read_one(jobs).await;
        }
        let mut tasks = Vec::with_capacity(jobs.len());
        for job in jobs {
            let ctl = self.clone();
            tasks.push(glommio::spawn_local(
                async move { ctl.read_quorum(job).await },
            ));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await);
        }
        out
    }

    /// Asks one owner about several keys: `/internal/get` for one key,
    /// `/internal/batch/get` for more.
    async fn ask(&self, owner: &str, keys: &[String]) -> Vec<Said> {
        let Some(addr) = self.address_of(owner) else {
            return vec![Said::Failed; keys.len()];
        };
        self.dist
            .add(const { idx("ForwardGet") }, keys.len() as u64);
        let now = now_ms();
        if keys.len() == 1 {
            return match self.peers.data_call(&addr, &GetKey(&keys[0])).await {
                Ok(g) => vec![to_said(g.found, g.item, g.tombstone, now)],
                Err(_) => vec![Said::Failed],
            };
        }
        let call = BatchGet(BatchGetReq {
            keys: keys.to_vec(),
        });
        match self.peers.data_call(&addr, &call).await {
            Ok(g) if g.results.len() == keys.len() => g
                .results
                .into_iter()
                .map(|x| {
                    if x.error.is_some() {
                        Said::Failed
                    } else {
                        to_said(x.found, x.item, x.tombstone, now)
                    }
                })
                .collect(),
            _ => vec![Said::Failed; keys.len()],
        }
    }

    async fn read_one(self: &Rc<Self>, jobs: Vec<ReadJob>) -> Vec<(usize, ReadOutcome)> {
        let mut reads: Vec<(ReadJob, OneRead)> = jobs
            .into_iter()
            .map(|job| {
                let order = self.ask_order(&job.owners);
                let r = OneRead::new(
                    order,
                    job.owners.first().map(String::as_str),
                    job.local.is_some(),
                );
                (job, r)
            })
            .collect();
        let mut out = Vec::with_capacity(reads.len());
        let mut live: Vec<usize> = (0..reads.len()).collect();
        while !live.is_empty() {
            // Group the keys still open by the owner to ask next: one request per owner and round.
            let mut by_owner: HashMap<String, Vec<usize>> = HashMap::new();
            for &p in &live {
                let (job, r) = &mut reads[p];
                match r.next_owner() {
                    Ok(o) => by_owner.entry(o).or_default().push(p),
                    Err(done) => out.push((job.idx, outcome(done))),
                }
            }
            let mut tasks = Vec::new();
            for (owner, ps) in by_owner {
                let keys: Vec<String> = ps
                    .iter()
                    .map(|&p| String::from_utf8_lossy(&reads[p].0.key).into_owned())
                    .collect();
                let ctl = self.clone();
                tasks.push((
                    owner.clone(),
                    ps,
                    glommio::spawn_local(async move { ctl.ask(&owner, &keys).await }),
                ));
            }
            let now = now_ms();
            live.clear();
            for (owner, ps, t) in tasks {
                for (p, said) in ps.into_iter().zip(t.await) {
                    let (job, r) = &mut reads[p];
                    match r.answer(&owner, said, now) {
                        OneStep::Continue => live.push(p),
                        OneStep::Done {
                            outcome: done,
                            repair_local,
                            promoted,
                        } => {
                            if promoted {
                                self.dist.add(const { idx("ReadPrimaryPromote") }, 1);
                            }
                            if let (true, Resolved::Found(e)) = (repair_local, &done) {
                                // Read repair: this node is an owner and missed it.
                                self.repair_local(job.hash, &job.key, e.clone());
                            }
                            out.push((job.idx, outcome(done)));
                        }
                    }
                }
            }
        }
        out
    }

    /// Applies an entry on this node's owning core (reason repair).
    fn repair_local(self: &Rc<Self>, hash: u64, key: &[u8], entry: Entry) {
        let ctl = self.clone();
        let key = key.to_vec();
        glommio::spawn_local(async move {
            let core = shard_for(hash, ctl.cores);
            let op = Op::Apply {
                hash,
                key,
                entry,
                repair: true,
            };
            if let crate::runtime::msg::Reply::Applied(crate::store::entry::ApplyStatus::Applied) =
                ctl.dispatch.call(core, op).await
            {
                ctl.dist.add(const { idx("ReadRepair") }, 1);
            }
        })
        .detach();
    }

    async fn read_quorum(self: &Rc<Self>, job: ReadJob) -> (usize, ReadOutcome) {
        let n = job.owners.len();
        let needed = super::quorum::needed(self.node.config.read_consistency, n);
        let key = String::from_utf8_lossy(&job.key).into_owned();
        // (owner, entry or None for a plain miss)
        let mut responses: Vec<(String, Option<Entry>)> = Vec::new();
        if let Some(l) = job.local.clone() {
            responses.push((self.node.node_id().to_string(), l));
        }
        let order = self.ask_order(&job.owners);
        let mut next = 0;
        while responses.len() < needed && next < order.len() {
            let want = (needed - responses.len()).min(order.len() - next);
            let mut tasks = Vec::new();
            for o in &order[next..next + want] {
                let ctl = self.clone();
                let (o, k) = (o.clone(), key.clone());
                tasks.push(glommio::spawn_local(async move {
                    let a = ctl.ask(&o, std::slice::from_ref(&k)).await;
                    (o, a.into_iter().next().unwrap_or(Said::Failed))
                }));
            }
            next += want;
            for t in tasks {
                let (o, a) = t.await;
                match a {
                    Said::Entry(e) => responses.push((o, Some(e))),
                    Said::Miss => responses.push((o, None)),
                    Said::Failed => {}
                }
            }
        }
        let r = resolve_quorum(&responses, needed, now_ms());
        if let Some((winner, stale)) = &r.repair {
            self.repair_stale(&job, winner, stale);
        }
        (job.idx, outcome(r.outcome))
    }

    /// Sends the winning entry to the owners that returned an older entry or a plain miss
    /// (reason repair).
    fn repair_stale(self: &Rc<Self>, job: &ReadJob, winner: &Entry, stale: &[String]) {
        let me = self.node.node_id();
        let key = String::from_utf8_lossy(&job.key).into_owned();
        for owner in stale {
            if owner == me {
                self.repair_local(job.hash, &job.key, winner.clone());
                continue;
            }
            let ctl = self.clone();
            let (owner, key, winner) = (owner.clone(), key.clone(), winner.clone());
            glommio::spawn_local(async move {
                let Some(addr) = ctl.address_of(&owner) else {
                    return;
                };
                let item = [(0, key.as_str(), &winner)];
                let res = ctl
                    .send_batch(&addr, &owner, &item, "repair", now_ms())
                    .await;
                use super::replicate::Ack;
                if matches!(res.first(), Some((_, Ack::Ok | Ack::Held))) {
                    ctl.dist.add(const { idx("ReadRepair") }, 1);
                }
            })
            .detach();
        }
    }
}
