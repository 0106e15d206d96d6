//! Coordinating client operations across the cluster (cluster.md §6, §7).
//!
//! The owning data core versions the write (its HLC) and applies it when this
//! node is an owner; the control core then replicates to the remote owners and
//! counts acks. Reads try the local copy first when this node is an owner and
//! hand the rest to the control core, which asks the remote owners.

use super::ClientService;
use crate::http::response::Responder;
use crate::runtime::msg::{Op, PutItem, ReadJob, ReadOutcome, Reply, WriteJob, WriteOutcome};
use crate::runtime::shard_for;
use crate::store::entry::{Entry, OwnedItem};

pub enum ReadResult {
    Found(OwnedItem),
    NotFound,
    Failed(usize, usize),
}

pub fn no_owners(r: &mut Responder<'_>) {
    r.error(
        503,
        "NO_OWNERS",
        "no ring owners for key (cluster initializing?)",
    );
}

pub fn write_failed_msg(o: &WriteOutcome) -> String {
    if o.shadowed {
        return format!(
            "write not acknowledged: {} owners hold a newer version written concurrently; retry",
            o.acks
        );
    }
    format!(
        "write consistency not achieved: {} of {} required owner acks",
        o.acks, o.needed
    )
}

pub fn write_failed(r: &mut Responder<'_>, o: &WriteOutcome) {
    r.error(503, "QUORUM_FAILED", &write_failed_msg(o));
}

pub fn read_failed_msg(got: usize, needed: usize) -> String {
    format!("read consistency not achieved: {got} of {needed} required owner responses")
}

impl ClientService {
    fn me(&self) -> &str {
        self.ctx.node.node_id()
    }

    /// Versions each write on its owning core (storing it when this node is an
    /// owner), then replicates them all through the control core.
    pub(super) async fn coordinate_writes(
        &self,
        items: Vec<(PutItem, Vec<String>)>,
        delete: bool,
    ) -> Vec<WriteOutcome> {
        let cores = self.ctx.cores;
        let mut groups: Vec<Vec<PutItem>> = (0..cores).map(|_| Vec::new()).collect();
        let mut meta = Vec::with_capacity(items.len());
        for (mut p, owners) in items {
            p.store = owners.iter().any(|o| o == self.me());
            // The value is kept here for replication and shared with the key's core, which
            // copies it into its shard only when this node is an owner.
            let value = std::mem::take(&mut p.value);
            if p.store && !delete {
                p.value = value.clone();
            }
            meta.push((
                p.idx,
                p.hash,
                p.key.clone(),
                p.ttl_ms,
                owners,
                p.store,
                value,
            ));
            groups[shard_for(p.hash, cores)].push(p);
        }
        // (idx, version, deadline) from every core, sorted by idx: no map per request.
        let mut versions: Vec<(usize, u64, u64)> = Vec::with_capacity(meta.len());
        for (core, g) in groups.into_iter().enumerate() {
            if g.is_empty() {
                continue;
            }
            let op = if delete {
                Op::BatchDelete(g)
            } else {
                Op::BatchPut(g)
            };
            if let Reply::Versions(v) = self.ctx.on_core(core, op).await {
                versions.extend(v);
            }
        }
        versions.sort_unstable_by_key(|v| v.0);
        let jobs: Vec<WriteJob> = meta
            .into_iter()
            .map(|(idx, hash, key, ttl_ms, owners, stored, value)| {
                let (version, t) = match versions.binary_search_by_key(&idx, |v| v.0) {
                    Ok(i) => (versions[i].1, versions[i].2),
                    Err(_) => (0, 0),
                };
                let value = (!delete).then_some(value);
                let entry = Entry::written(value, version, self.me().to_string(), t);
                WriteJob {
                    idx,
                    hash,
                    key,
                    entry,
                    ttl_ms,
                    owners,
                    local_acked: stored,
                }
            })
            .collect();
        match self
            .ctx
            .dispatch
            .call(self.ctx.control(), Op::Replicate(jobs))
            .await
        {
            Reply::WriteDone(v) => v,
            _ => Vec::new(),
        }
    }

    /// Reads keys through the owners. Each input: (idx, hash, key, owners).
    pub(super) async fn coordinate_reads(
        &self,
        keys: Vec<(usize, u64, Vec<u8>, Vec<String>)>,
    ) -> Vec<(usize, ReadResult)> {
        let cores = self.ctx.cores;
        let one = self.ctx.node.config.read_consistency == crate::config::Consistency::One;
        // Local answers for keys this node owns, one message per core.
        let mut groups: Vec<Vec<crate::runtime::msg::KeyRef>> =
            (0..cores).map(|_| Vec::new()).collect();
        for (idx, hash, key, owners) in &keys {
            if owners.iter().any(|o| o == self.me()) {
                groups[shard_for(*hash, cores)].push(crate::runtime::msg::KeyRef {
                    idx: *idx,
                    hash: *hash,
                    key: key.clone(),
                });
            }
        }
        let mut local: std::collections::HashMap<usize, Option<Entry>> = Default::default();
        for (core, g) in groups.into_iter().enumerate() {
            if g.is_empty() {
                continue;
            }
            if let Reply::Lookups(v) = self.ctx.on_core(core, Op::LookupBatch(g)).await {
                local.extend(v);
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        let mut jobs = Vec::new();
        for (idx, hash, key, owners) in keys {
            let mine = local.remove(&idx);
            if one {
                // An owner's own entry answers a ONE read: a tombstone is an authoritative miss.
                if let Some(Some(e)) = &mine {
                    out.push((
                        idx,
                        OwnedItem::of(e).map_or(ReadResult::NotFound, ReadResult::Found),
                    ));
                    continue;
                }
            }
            jobs.push(ReadJob {
                idx,
                hash,
                key,
                owners,
                local: mine,
            });
        }
        if !jobs.is_empty() {
            if let Reply::ReadDone(v) = self
                .ctx
                .dispatch
                .call(self.ctx.control(), Op::RemoteRead(jobs))
                .await
            {
                for (idx, o) in v {
                    out.push((
                        idx,
                        match o {
                            ReadOutcome::Found(i) => ReadResult::Found(i),
                            ReadOutcome::NotFound => ReadResult::NotFound,
                            ReadOutcome::Failed(a, b) => ReadResult::Failed(a, b),
                        },
                    ));
                }
            }
        }
        out
    }
}
