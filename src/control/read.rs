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
use crate::config::Consistency;
use crate::dist::client::{encode_query, Class, REQUEST_TIMEOUT};
use crate::dist::membership::State;
use crate::dist::wire::{self, BatchGetReq, BatchGetResp, GetResp};
use crate::metrics::dist::idx;
use crate::node::{now_ms, shard_for};
use crate::runtime::msg::{Entry, Op, OwnedItem, ReadJob, ReadOutcome};

/// What one owner said about one key.
#[derive(Clone)]
pub enum Answer {
    Item(OwnedItem),
    Tomb(Entry),
    Miss,
    Failed,
}

fn to_answer(
    found: bool,
    item: Option<wire::ItemWire>,
    tomb: Option<wire::TombWire>,
    now: u64,
) -> Answer {
    if found {
        if let Some(it) = item {
            if let Ok(Entry::Item {
                value,
                version,
                origin,
                expires_at_ms,
            }) = wire::wire_item_to_entry(&it, now)
            {
                return Answer::Item(OwnedItem {
                    len: value.len(),
                    value,
                    version,
                    origin,
                    expires_at_ms,
                });
            }
        }
        return Answer::Failed;
    }
    match tomb {
        Some(t) if wire::check_stamp(t.version, &t.origin, now).is_err() => Answer::Failed,
        Some(t) => Answer::Tomb(Entry::Tombstone {
            version: t.version,
            origin: t.origin,
            deleted_at_ms: t.deleted_at,
        }),
        None => Answer::Miss,
    }
}

fn item_entry(i: &OwnedItem) -> Entry {
    Entry::Item {
        value: i.value.clone(),
        version: i.version,
        origin: i.origin.clone(),
        expires_at_ms: i.expires_at_ms,
    }
}

impl ControlCtx {
    /// Remote owners of a job in the order to ask: ring order, suspects last.
    fn ask_order(&self, owners: &[String]) -> Vec<String> {
        let me = self.node.node_id();
        let mut alive = Vec::new();
        let mut suspect = Vec::new();
        for o in owners.iter().filter(|o| *o != me) {
            if self.state_of(o) == Some(State::Suspect) {
                suspect.push(o.clone());
            } else {
                alive.push(o.clone());
            }
        }
        alive.extend(suspect);
        alive
    }

    pub async fn remote_read(self: &Rc<Self>, jobs: Vec<ReadJob>) -> Vec<(usize, ReadOutcome)> {
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
    async fn ask(&self, owner: &str, keys: &[String]) -> Vec<Answer> {
        let Some(addr) = self.address_of(owner) else {
            return vec![Answer::Failed; keys.len()];
        };
        self.dist.add(idx("ForwardGet"), keys.len() as u64);
        let now = now_ms();
        if keys.len() == 1 {
            let target = format!("/internal/get?key={}", encode_query(&keys[0]));
            return match self
                .peers
                .request(
                    &addr,
                    "GET",
                    &target,
                    None,
                    REQUEST_TIMEOUT,
                    Class::Data,
                    "internal_get",
                )
                .await
            {
                Ok(r) if r.status == 200 => match serde_json::from_slice::<GetResp>(&r.body) {
                    Ok(g) => vec![to_answer(g.found, g.item, g.tombstone, now)],
                    Err(_) => vec![Answer::Failed],
                },
                _ => vec![Answer::Failed],
            };
        }
        let body = serde_json::to_vec(&BatchGetReq {
            keys: keys.to_vec(),
        })
        .unwrap_or_default();
        match self
            .peers
            .request(
                &addr,
                "POST",
                "/internal/batch/get",
                Some(&body),
                REQUEST_TIMEOUT,
                Class::Data,
                "internal_batch_get",
            )
            .await
        {
            Ok(r) if r.status == 200 => match serde_json::from_slice::<BatchGetResp>(&r.body) {
                Ok(g) if g.results.len() == keys.len() => g
                    .results
                    .into_iter()
                    .map(|x| {
                        if x.error.is_some() {
                            Answer::Failed
                        } else {
                            to_answer(x.found, x.item, x.tombstone, now)
                        }
                    })
                    .collect(),
                _ => vec![Answer::Failed; keys.len()],
            },
            _ => vec![Answer::Failed; keys.len()],
        }
    }

    async fn read_one(self: &Rc<Self>, jobs: Vec<ReadJob>) -> Vec<(usize, ReadOutcome)> {
        struct Pending {
            job: ReadJob,
            order: Vec<String>,
            next: usize,
            answered: bool,
            primary_failed: bool,
        }
        let mut pend: Vec<Pending> = jobs
            .into_iter()
            .map(|job| {
                let order = self.ask_order(&job.owners);
                let answered = job.local.is_some();
                Pending {
                    job,
                    order,
                    next: 0,
                    answered,
                    primary_failed: false,
                }
            })
            .collect();
        let mut out = Vec::with_capacity(pend.len());
        let mut live: Vec<usize> = (0..pend.len()).collect();
        while !live.is_empty() {
            // Group the keys still open by the owner to ask next.
            let mut by_owner: HashMap<String, Vec<usize>> = HashMap::new();
            let mut still = Vec::new();
            for &p in &live {
                let pe = &mut pend[p];
                if pe.next >= pe.order.len() {
                    let o = if pe.answered {
                        ReadOutcome::NotFound
                    } else {
                        ReadOutcome::Failed(0, 1)
                    };
                    out.push((pe.job.idx, o));
                    continue;
                }
                by_owner
                    .entry(pe.order[pe.next].clone())
                    .or_default()
                    .push(p);
                pe.next += 1;
                still.push(p);
            }
            let mut tasks = Vec::new();
            for (owner, ps) in by_owner {
                let keys: Vec<String> = ps
                    .iter()
                    .map(|&p| String::from_utf8_lossy(&pend[p].job.key).into_owned())
                    .collect();
                let ctl = self.clone();
                tasks.push((
                    owner.clone(),
                    ps,
                    glommio::spawn_local(async move { ctl.ask(&owner, &keys).await }),
                ));
            }
            let mut done = std::collections::HashSet::new();
            for (owner, ps, t) in tasks {
                let answers = t.await;
                for (p, a) in ps.into_iter().zip(answers) {
                    let pe = &mut pend[p];
                    let is_primary = pe.job.owners.first() == Some(&owner);
                    match a {
                        Answer::Item(item) => {
                            if pe.primary_failed && !is_primary {
                                self.dist.add(idx("ReadPrimaryPromote"), 1);
                            }
                            if pe.job.local.is_some() {
                                // Read repair: this node is an owner and missed it.
                                self.repair_local(pe.job.hash, &pe.job.key, item_entry(&item));
                            }
                            out.push((pe.job.idx, ReadOutcome::Found(item)));
                            done.insert(p);
                        }
                        Answer::Tomb(_) => {
                            out.push((pe.job.idx, ReadOutcome::NotFound));
                            done.insert(p);
                        }
                        Answer::Miss => pe.answered = true,
                        Answer::Failed => {
                            if is_primary {
                                pe.primary_failed = true;
                            }
                        }
                    }
                }
            }
            live = still.into_iter().filter(|p| !done.contains(p)).collect();
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
            if let crate::runtime::msg::Reply::Applied(crate::runtime::msg::ApplyStatus::Applied) =
                ctl.dispatch.call(core, op).await
            {
                ctl.dist.add(idx("ReadRepair"), 1);
            }
        })
        .detach();
    }

    async fn read_quorum(self: &Rc<Self>, job: ReadJob) -> (usize, ReadOutcome) {
        let n = job.owners.len();
        let needed = super::replicate::needed(self.node.config.read_consistency, n);
        let key = String::from_utf8_lossy(&job.key).into_owned();
        // (owner, entry or None for a plain miss)
        let mut responses: Vec<(String, Option<Entry>)> = Vec::new();
        if let Some(l) = &job.local {
            responses.push((self.node.node_id().to_string(), l.to_entry()));
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
                    (o, a.into_iter().next().unwrap_or(Answer::Failed))
                }));
            }
            next += want;
            for t in tasks {
                let (o, a) = t.await;
                match a {
                    Answer::Item(i) => responses.push((o, Some(item_entry(&i)))),
                    Answer::Tomb(e) => responses.push((o, Some(e))),
                    Answer::Miss => responses.push((o, None)),
                    Answer::Failed => {}
                }
            }
        }
        if responses.len() < needed {
            return (job.idx, ReadOutcome::Failed(responses.len(), needed));
        }
        let winner = responses
            .iter()
            .filter_map(|(_, e)| e.as_ref())
            .fold(None::<&Entry>, |best, e| match best {
                Some(b) if !e.newer_than(b) => Some(b),
                _ => Some(e),
            })
            .cloned();
        if let Some(w) = &winner {
            self.repair_stale(&job, w, &responses);
        }
        match winner {
            Some(Entry::Item {
                value,
                version,
                origin,
                expires_at_ms,
            }) if expires_at_ms == 0 || expires_at_ms > now_ms() => (
                job.idx,
                ReadOutcome::Found(OwnedItem {
                    len: value.len(),
                    value,
                    version,
                    origin,
                    expires_at_ms,
                }),
            ),
            _ => (job.idx, ReadOutcome::NotFound),
        }
    }

    /// Sends the winning entry to every responding owner that returned an
    /// older entry or a plain miss (reason repair).
    fn repair_stale(
        self: &Rc<Self>,
        job: &ReadJob,
        winner: &Entry,
        responses: &[(String, Option<Entry>)],
    ) {
        let me = self.node.node_id().to_string();
        let key = String::from_utf8_lossy(&job.key).into_owned();
        for (owner, e) in responses {
            let stale = match e {
                None => true,
                Some(e) => winner.newer_than(e),
            };
            if !stale {
                continue;
            }
            if *owner == me {
                self.repair_local(job.hash, &job.key, winner.clone());
                continue;
            }
            let ctl = self.clone();
            let (owner, key, winner) = (owner.clone(), key.clone(), winner.clone());
            glommio::spawn_local(async move {
                let Some(addr) = ctl.address_of(&owner) else {
                    return;
                };
                let item = wire::entry_to_batch_item(&key, &winner, now_ms());
                let res = ctl
                    .send_batch(&addr, &owner, vec![(0, item)], "repair")
                    .await;
                if matches!(res.first(), Some((_, super::replicate::Ack::Ok))) {
                    ctl.dist.add(idx("ReadRepair"), 1);
                }
            })
            .detach();
        }
    }
}
