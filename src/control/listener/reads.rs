//! Read routes of the dist listener: `/internal/get`, `/internal/batch/get`, the indirect
//! probe and gossip intake.

use serde_json::Value;

use super::{bad, ok_json, DistService};
use crate::base::hash::xxhash64;
use crate::base::now_ms;
use crate::dist::membership::Entry as Member;
use crate::dist::queries::{GetQuery, ProbeQuery};
use crate::dist::wire::{self, BatchGetReq, GetResp};
use crate::http::keys::check_key;
use crate::http::response::{Responder, TEXT};
use crate::runtime::msg::{KeyRef, Op, Reply};
use crate::runtime::shard_for;

impl DistService {
    pub(super) async fn get(&self, query: &[u8], r: &mut Responder<'_>) {
        let key = match GetQuery::parse(query) {
            Ok(q) => q.key,
            Err(e) => return bad(r, &e),
        };
        let hash = xxhash64(key.as_bytes(), 0);
        let core = shard_for(hash, self.ctl.cores);
        let op = Op::Lookup {
            hash,
            key: key.as_bytes().to_vec(),
        };
        let Reply::Lookup(l) = self.ctl.dispatch.call(core, op).await else {
            return r.error(500, "INTERNAL", "internal error: lookup failed");
        };
        let (found, item, tombstone) = wire::lookup_to_wire(&key, l.as_ref(), now_ms());
        ok_json(
            r,
            &GetResp {
                found,
                item,
                tombstone,
            },
        );
    }

    pub(super) async fn batch_get(&self, body: &[u8], r: &mut Responder<'_>) {
        let req: BatchGetReq = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &format!("invalid JSON: {e}")),
        };
        let now = now_ms();
        let mut results: Vec<wire::BatchGetResult> = req
            .keys
            .iter()
            .map(|k| wire::BatchGetResult {
                key: k.clone(),
                found: false,
                item: None,
                tombstone: None,
                error: None,
            })
            .collect();
        let mut groups: Vec<Vec<KeyRef>> = (0..self.ctl.cores).map(|_| Vec::new()).collect();
        for (i, k) in req.keys.iter().enumerate() {
            match check_key(k) {
                Ok(()) => {
                    let hash = xxhash64(k.as_bytes(), 0);
                    groups[shard_for(hash, self.ctl.cores)].push(KeyRef {
                        idx: i,
                        hash,
                        key: k.as_bytes().to_vec(),
                    });
                }
                Err(e) => results[i].error = Some(e.message()),
            }
        }
        let mut tickets = Vec::new();
        for (core, keys) in groups.into_iter().enumerate() {
            if !keys.is_empty() {
                tickets.push(self.ctl.dispatch.send(core, Op::LookupBatch(keys)).await);
            }
        }
        for t in tickets {
            if let Reply::Lookups(v) = t.await {
                for (i, l) in v {
                    let (found, item, tomb) = wire::lookup_to_wire(&req.keys[i], l.as_ref(), now);
                    results[i].found = found;
                    results[i].item = item;
                    results[i].tombstone = tomb;
                }
            }
        }
        ok_json(r, &wire::BatchGetResp { results });
    }

    pub(super) async fn probe(&self, query: &[u8], r: &mut Responder<'_>) {
        let target = match ProbeQuery::parse(query) {
            Ok(q) => q.target,
            Err(e) => return bad(r, &e),
        };
        let Some(addr) = self.ctl.address_of(&target) else {
            return r.error(404, "NOT_FOUND", "unknown target");
        };
        if self.ctl.probe_health(&addr).await.is_some() {
            r.send(200, Some(TEXT), &[], b"ok");
        } else {
            r.error(502, "PROBE_FAILED", "probe failed");
        }
    }

    pub(super) async fn gossip(&self, body: &[u8], r: &mut Responder<'_>) {
        let raw: Vec<Value> = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &format!("invalid JSON: {e}")),
        };
        // Entries with an unknown state or bad shape are skipped, not fatal.
        let entries: Vec<Member> = raw
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let me = self.ctl.node.node_id();
        if entries.iter().any(|e| e.id != me) {
            // A peer reached us: this node is part of the cluster even if its own seeds are
            // gone, so readiness stops saying "joining".
            self.ctl.joined.set(true);
        }
        self.ctl.merge_gossip(&entries, None);
        let members = self.ctl.member_table();
        ok_json(
            r,
            &serde_json::json!({"node": self.ctl.node.node_id(), "members": members}),
        );
    }
}
