//! Write routes of the dist listener: `/internal/set`, `/internal/del`, `/internal/batch`, and
//! the coordinator a Go sender asks for with `replicate:true`.

use super::{ack_body, bad, ok_json, DistService};
use crate::base::hash::xxhash64;
use crate::base::now_ms;
use crate::dist::queries::DelQuery;
use crate::dist::wire::{self, BatchReq, ItemStatus, SetReq};
use crate::http::keys::check_key;
use crate::http::response::Responder;
use crate::runtime::msg::{ApplyItem, Op, Reply};
use crate::runtime::shard_for;
use crate::store::entry::{ApplyStatus, Entry, Value};

impl DistService {
    pub(super) async fn apply_one(&self, key: &str, entry: Entry) -> ApplyStatus {
        let hash = xxhash64(key.as_bytes(), 0);
        let core = shard_for(hash, self.ctl.cores);
        let op = Op::Apply {
            hash,
            key: key.as_bytes().to_vec(),
            entry,
            repair: false,
        };
        match self.ctl.dispatch.call(core, op).await {
            Reply::Applied(s) => s,
            _ => ApplyStatus::Ignored,
        }
    }

    pub(super) async fn set(&self, body: &[u8], r: &mut Responder<'_>) {
        let req: SetReq = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &format!("invalid JSON: {e}")),
        };
        if let Err(e) = check_key(&req.key) {
            return bad(r, &e.message());
        }
        if req.expiration_ms < 0 {
            return bad(r, "invalid expiration_ms: must be >= 0");
        }
        let now = now_ms();
        if let Err(e) = wire::check_stamp(req.version, &req.origin, now) {
            return bad(r, &e);
        }
        let value = match req.value.decode() {
            Ok(v) => v,
            Err(e) => return bad(r, &e),
        };
        let entry = Entry::Item {
            value,
            version: req.version,
            origin: req.origin.clone(),
            expires_at_ms: if req.expiration_ms > 0 {
                now + req.expiration_ms as u64
            } else {
                0
            },
        };
        let status = if req.replicate {
            self.coordinate(&req.key, entry).await
        } else {
            self.apply_one(&req.key, entry).await
        };
        ok_json(r, &ack_body(&status));
    }

    pub(super) async fn del(&self, query: &[u8], r: &mut Responder<'_>) {
        let q = match DelQuery::parse(query, now_ms()) {
            Ok(q) => q,
            Err(e) => return bad(r, &e),
        };
        let (key, replicate) = (q.key, q.replicate);
        let entry = Entry::Tombstone {
            version: q.version,
            origin: q.origin,
            deleted_at_ms: q.deleted_at_ms.unwrap_or_else(now_ms),
        };
        let status = if replicate {
            self.coordinate(&key, entry).await
        } else {
            self.apply_one(&key, entry).await
        };
        ok_json(r, &ack_body(&status));
    }

    /// `replicate:true` (a Go sender): apply locally, then act as the
    /// coordinator for the remaining owners (fan-out with hints). An
    /// unversioned entry is first versioned by the key's core.
    pub(super) async fn coordinate(&self, key: &str, mut entry: Entry) -> ApplyStatus {
        let hash = xxhash64(key.as_bytes(), 0);
        let core = shard_for(hash, self.ctl.cores);
        let me = self.ctl.node.node_id().to_string();
        if entry.version() == 0 || entry.origin().is_empty() {
            let (value, ttl_ms, delete) = match &entry {
                Entry::Item {
                    value,
                    expires_at_ms,
                    ..
                } => (
                    value.clone(),
                    expires_at_ms.saturating_sub(now_ms()) * u64::from(*expires_at_ms != 0),
                    false,
                ),
                Entry::Tombstone { .. } => (Value::default(), 0, true),
            };
            let p = crate::runtime::msg::PutItem {
                idx: 0,
                hash,
                key: key.as_bytes().to_vec(),
                value: Value::default(),
                ttl_ms,
                store: false,
                observe: 0,
            };
            let op = if delete {
                Op::BatchDelete(vec![p])
            } else {
                Op::BatchPut(vec![p])
            };
            let Reply::Versions(v) = self.ctl.dispatch.call(core, op).await else {
                return ApplyStatus::Ignored;
            };
            let Some(&(_, version, t)) = v.first() else {
                return ApplyStatus::Ignored;
            };
            entry = Entry::written((!delete).then_some(value), version, me.clone(), t);
        }
        let status = self.apply_one(key, entry.clone()).await;
        let ring = self.ctl.ring.borrow().clone();
        let mut idx = Vec::new();
        ring.owners_into(hash, &mut idx);
        let owners: Vec<String> = idx.iter().map(|&i| ring.member(i).to_string()).collect();
        let local_acked = owners.contains(&me) && !matches!(status, ApplyStatus::Newer(..));
        let job = crate::runtime::msg::WriteJob {
            idx: 0,
            hash,
            key: key.as_bytes().to_vec(),
            entry,
            ttl_ms: 0,
            owners,
            local_acked,
        };
        self.ctl.replicate(vec![job]).await;
        status
    }

    pub(super) async fn batch(&self, body: &[u8], r: &mut Responder<'_>) {
        let req: BatchReq = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &format!("invalid JSON: {e}")),
        };
        let repair = matches!(&*req.reason, "ae" | "repair");
        let now = now_ms();
        let mut results: Vec<wire::BatchResult> = Vec::with_capacity(req.items.len());
        let mut groups: Vec<Vec<ApplyItem>> = (0..self.ctl.cores).map(|_| Vec::new()).collect();
        for (i, it) in req.items.into_iter().enumerate() {
            let entry = check_key(&it.key)
                .map_err(|e| e.message())
                .and_then(|_| wire::batch_item_to_entry(&it, now));
            let mut error = None;
            match entry {
                Ok(e) => {
                    let hash = xxhash64(it.key.as_bytes(), 0);
                    let key = it.key.as_bytes().to_vec();
                    groups[shard_for(hash, self.ctl.cores)].push((i, hash, key, e));
                }
                Err(e) => error = Some(e),
            }
            // The key moves into its result: the answer names each item (Go's peers match by it).
            results.push(wire::BatchResult {
                key: it.key,
                status: ItemStatus::Invalid,
                version: None,
                origin: None,
                error,
            });
        }
        let mut tickets = Vec::new();
        for (core, items) in groups.into_iter().enumerate() {
            if !items.is_empty() {
                tickets.push(
                    self.ctl
                        .dispatch
                        .send(core, Op::ApplyBatch { items, repair })
                        .await,
                );
            }
        }
        for t in tickets {
            if let Reply::AppliedBatch(v) = t.await {
                for (i, s) in v {
                    let res = &mut results[i];
                    match s {
                        ApplyStatus::Applied => res.status = ItemStatus::Applied,
                        ApplyStatus::Ignored => res.status = ItemStatus::Ignored,
                        ApplyStatus::Newer(v, o) => {
                            res.status = ItemStatus::Ignored;
                            res.version = Some(v);
                            res.origin = Some(o);
                        }
                    }
                }
            }
        }
        ok_json(r, &wire::BatchResp { results });
    }
}
