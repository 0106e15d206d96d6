//! The dist listener (cluster.md §12): peer routes on the control core.
//!
//! Every data route answers from the local store only (the owning data core,
//! reached over the mesh) and validates its input before anything changes: a
//! bad body or parameter is a 4xx and touches no shard.

use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;

use crate::api::auth::Auth;
use crate::api::keys::{check_key, form_decode, query_param};
use crate::api::{draining_health, method_not_allowed, unauthorized};
use crate::control::ControlCtx;
use crate::dist::hash::xxhash64;
use crate::dist::membership::Entry as Member;
use crate::dist::wire::{self, BatchGetReq, BatchReq, GetResp, SetReq};
use crate::http::conn::Service;
use crate::http::parse::{Head, Method};
use crate::http::response::{Responder, TEXT};
use crate::node::{now_ms, shard_for};
use crate::runtime::msg::{ApplyItem, ApplyStatus, Entry, KeyRef, Op, Reply};

/// Dist bodies may be larger than client ones (cluster.md §12.1).
pub const MAX_DIST_BODY: u64 = 17 << 20;

pub struct DistService {
    pub ctl: Rc<ControlCtx>,
    auth: Auth,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Drain,
    Set,
    Get,
    Del,
    Probe,
    Gossip,
    Batch,
    BatchGet,
    Merkle,
    AeLeaves,
    AeDigests,
    Keys,
}

/// (path, route, method, Allow)
const ROUTES: &[(&str, Route, Method, &str)] = &[
    ("/health", Route::Health, Method::Get, "GET, HEAD"),
    ("/dist/drain", Route::Drain, Method::Post, "POST"),
    ("/internal/set", Route::Set, Method::Post, "POST"),
    ("/internal/cache/set", Route::Set, Method::Post, "POST"),
    ("/internal/get", Route::Get, Method::Get, "GET, HEAD"),
    ("/internal/cache/get", Route::Get, Method::Get, "GET, HEAD"),
    ("/internal/del", Route::Del, Method::Delete, "DELETE"),
    (
        "/internal/cache/remove",
        Route::Del,
        Method::Delete,
        "DELETE",
    ),
    ("/internal/probe", Route::Probe, Method::Get, "GET, HEAD"),
    ("/internal/gossip", Route::Gossip, Method::Post, "POST"),
    ("/internal/batch", Route::Batch, Method::Post, "POST"),
    ("/internal/batch/get", Route::BatchGet, Method::Post, "POST"),
    ("/internal/merkle", Route::Merkle, Method::Get, "GET, HEAD"),
    ("/internal/keys", Route::Keys, Method::Get, "GET, HEAD"),
    (
        "/internal/ae/leaves",
        Route::AeLeaves,
        Method::Get,
        "GET, HEAD",
    ),
    (
        "/internal/ae/digests",
        Route::AeDigests,
        Method::Post,
        "POST",
    ),
];

impl DistService {
    pub fn new(ctl: Rc<ControlCtx>) -> DistService {
        DistService {
            auth: Auth::new(ctl.node.config.auth_token.as_deref()),
            ctl,
        }
    }
}

fn bad(r: &mut Responder<'_>, msg: &str) {
    r.error(400, "BAD_REQUEST", msg);
}

fn ok_json(r: &mut Responder<'_>, v: &impl serde::Serialize) {
    r.json(200, &[], |b| {
        let _ = serde_json::to_writer(b, v);
    });
}

/// A key from a query parameter: form-decoded, UTF-8, 1..1024 bytes.
fn query_key(query: &[u8], name: &[u8]) -> Result<String, String> {
    let raw = query_param(query, name).ok_or("missing key")?;
    let bytes = form_decode(raw).map_err(|e| e.message())?;
    let key = String::from_utf8(bytes).map_err(|_| "invalid key: not valid UTF-8".to_string())?;
    check_key(&key).map_err(|e| e.message())?;
    Ok(key)
}

fn ack_body(s: &ApplyStatus) -> Value {
    match s {
        ApplyStatus::Newer(v, o) => serde_json::json!({"version": v, "origin": o}),
        _ => serde_json::json!({}),
    }
}

impl DistService {
    async fn apply_one(&self, key: &str, entry: Entry) -> ApplyStatus {
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

    async fn set(&self, body: &[u8], r: &mut Responder<'_>) {
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
        let value = match wire::unb64(&req.value) {
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

    async fn del(&self, query: &[u8], r: &mut Responder<'_>) {
        let key = match query_key(query, b"key") {
            Ok(k) => k,
            Err(e) => return bad(r, &e),
        };
        let num = |name: &[u8]| -> Result<Option<u64>, String> {
            match query_param(query, name) {
                None | Some(b"") => Ok(None),
                Some(v) => std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .map(Some)
                    .ok_or_else(|| {
                        format!("invalid {}: not a number", String::from_utf8_lossy(name))
                    }),
            }
        };
        let (version, deleted_at) = match (num(b"version"), num(b"deleted_at")) {
            (Ok(v), Ok(d)) => (v, d),
            (Err(e), _) | (_, Err(e)) => return bad(r, &e),
        };
        match query_param(query, b"replicate") {
            None | Some(b"true" | b"false" | b"") => {}
            Some(_) => return bad(r, "invalid replicate: must be true or false"),
        }
        // A malformed origin is a 400, never "unversioned": that would version the delete here
        // and let it beat every existing write of the key.
        let origin = match query_param(query, b"origin") {
            None => String::new(),
            Some(o) => match form_decode(o).ok().and_then(|o| String::from_utf8(o).ok()) {
                Some(o) => o,
                None => return bad(r, "invalid origin: bad percent-encoding or not UTF-8"),
            },
        };
        if let Err(e) = wire::check_stamp(version.unwrap_or(0), &origin, now_ms()) {
            return bad(r, &e);
        }
        let entry = Entry::Tombstone {
            version: version.unwrap_or(0),
            origin,
            deleted_at_ms: deleted_at.unwrap_or_else(now_ms),
        };
        let replicate = query_param(query, b"replicate") == Some(b"true");
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
    async fn coordinate(&self, key: &str, mut entry: Entry) -> ApplyStatus {
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
                Entry::Tombstone { .. } => (Vec::new(), 0, true),
            };
            let p = crate::runtime::msg::PutItem {
                idx: 0,
                hash,
                key: key.as_bytes().to_vec(),
                value: Vec::new(),
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
            entry = if delete {
                Entry::Tombstone {
                    version,
                    origin: me.clone(),
                    deleted_at_ms: t,
                }
            } else {
                Entry::Item {
                    value,
                    version,
                    origin: me.clone(),
                    expires_at_ms: t,
                }
            };
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

    async fn get(&self, query: &[u8], r: &mut Responder<'_>) {
        let key = match query_key(query, b"key") {
            Ok(k) => k,
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
        let (found, item, tombstone) = wire::lookup_to_wire(&key, &l, now_ms());
        ok_json(
            r,
            &GetResp {
                found,
                item,
                tombstone,
            },
        );
    }

    async fn batch(&self, body: &[u8], r: &mut Responder<'_>) {
        let req: BatchReq = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &format!("invalid JSON: {e}")),
        };
        let repair = matches!(req.reason.as_str(), "ae" | "repair");
        let now = now_ms();
        let mut results: Vec<wire::BatchResult> = req
            .items
            .iter()
            .map(|it| wire::BatchResult {
                key: it.key.clone(),
                status: "invalid".into(),
                version: None,
                origin: None,
                error: None,
            })
            .collect();
        let mut groups: Vec<Vec<ApplyItem>> = (0..self.ctl.cores).map(|_| Vec::new()).collect();
        for (i, it) in req.items.iter().enumerate() {
            let entry = check_key(&it.key)
                .map_err(|e| e.message())
                .and_then(|_| wire::batch_item_to_entry(it, now));
            match entry {
                Ok(e) => {
                    let hash = xxhash64(it.key.as_bytes(), 0);
                    groups[shard_for(hash, self.ctl.cores)].push((
                        i,
                        hash,
                        it.key.as_bytes().to_vec(),
                        e,
                    ));
                }
                Err(e) => results[i].error = Some(e),
            }
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
                        ApplyStatus::Applied => res.status = "applied".into(),
                        ApplyStatus::Ignored => res.status = "ignored".into(),
                        ApplyStatus::Newer(v, o) => {
                            res.status = "ignored".into();
                            res.version = Some(v);
                            res.origin = Some(o);
                        }
                    }
                }
            }
        }
        ok_json(r, &wire::BatchResp { results });
    }

    async fn batch_get(&self, body: &[u8], r: &mut Responder<'_>) {
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
                    let (found, item, tomb) = wire::lookup_to_wire(&req.keys[i], &l, now);
                    results[i].found = found;
                    results[i].item = item;
                    results[i].tombstone = tomb;
                }
            }
        }
        ok_json(r, &wire::BatchGetResp { results });
    }

    async fn gossip(&self, body: &[u8], r: &mut Responder<'_>) {
        let raw: Vec<Value> = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &format!("invalid JSON: {e}")),
        };
        // Entries with an unknown state or bad shape are skipped, not fatal.
        let entries: Vec<Member> = raw
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        self.ctl.merge_gossip(&entries, None);
        let members = self.ctl.member_table();
        ok_json(
            r,
            &serde_json::json!({"node": self.ctl.node.node_id(), "members": members}),
        );
    }

    async fn merkle(&self, r: &mut Responder<'_>) {
        let mut entries = Vec::new();
        for reply in self.ctl.all_cores(|| Op::MerkleEntries).await {
            if let Reply::Entries(v) = reply {
                entries.extend(v);
            }
        }
        let (root, leaves) = crate::dist::merkle::build(&mut entries);
        let leaf_hashes =
            (!leaves.is_empty()).then(|| leaves.iter().map(|l| wire::b64(l)).collect::<Vec<_>>());
        ok_json(
            r,
            &serde_json::json!({
                "root": root.map(|h| wire::b64(&h)),
                "leaf_hashes": leaf_hashes,
                "chunk_size": crate::dist::merkle::CHUNK,
            }),
        );
    }

    /// `GET /internal/keys?cursor=C&limit=L&q=Q` (cluster.md §12.3). The
    /// cursor is `<core>.<matches skipped on that core>`.
    async fn keys(&self, query: &[u8], r: &mut Responder<'_>) {
        let param = |n: &[u8]| {
            query_param(query, n)
                .and_then(|v| form_decode(v).ok())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let limit = match param(b"limit").as_deref() {
            None | Some("") | Some("0") => 10_000,
            Some(l) => match l.parse::<usize>() {
                Ok(n) => n,
                Err(_) => return bad(r, "invalid limit: must be a non-negative integer"),
            },
        };
        let (mut core, mut skip) = match param(b"cursor").as_deref() {
            None | Some("") => (0usize, 0usize),
            Some(c) => match c
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            {
                Some((a, b)) if a < self.ctl.cores => (a, b),
                _ => return bad(r, "invalid cursor"),
            },
        };
        let pattern = match crate::dist::glob::Pattern::parse(&param(b"q").unwrap_or_default()) {
            Ok(p) => p,
            Err(_) => return bad(r, "invalid glob pattern"),
        };
        let ring = self.ctl.ring.borrow().clone();
        let mut keys = Vec::new();
        let mut next = String::new();
        while core < self.ctl.cores {
            let want = limit - keys.len();
            let op = Op::Keys {
                ring: ring.clone(),
                pattern: pattern.clone(),
                skip,
                limit: want,
            };
            let Reply::KeyPage(page, more) = self.ctl.dispatch.call(core, op).await else {
                break;
            };
            let got = page.len();
            keys.extend(page);
            if more {
                next = format!("{core}.{}", skip + got);
                break;
            }
            core += 1;
            skip = 0;
            if keys.len() == limit {
                if core < self.ctl.cores {
                    next = format!("{core}.0");
                }
                break;
            }
        }
        let truncated = !next.is_empty();
        ok_json(
            r,
            &serde_json::json!({"keys": keys, "next_cursor": next, "truncated": truncated}),
        );
    }

    fn ring_mismatch(&self, r: &mut Responder<'_>) {
        let fp = self.ctl.ring_fp();
        r.json(409, &[], |b| {
            let _ = serde_json::to_writer(
                b,
                &serde_json::json!({"error": "ring mismatch", "code": "RING_MISMATCH", "ring": fp}),
            );
        });
    }

    /// `GET /internal/ae/leaves?peer=A&ring=FP&root=R` (cluster.md §12.3).
    async fn ae_leaves(&self, query: &[u8], r: &mut Responder<'_>) {
        let param = |n: &[u8]| {
            query_param(query, n)
                .and_then(|v| form_decode(v).ok())
                .and_then(|v| String::from_utf8(v).ok())
                .filter(|v| !v.is_empty())
        };
        let (Some(peer), Some(ring), Some(root)) = (param(b"peer"), param(b"ring"), param(b"root"))
        else {
            return bad(r, "missing peer, ring or root");
        };
        let Ok(root) = u64::from_str_radix(&root, 16) else {
            return bad(r, "malformed root: expected 16 hex digits");
        };
        if ring.len() != 16 || u64::from_str_radix(&ring, 16).is_err() {
            return bad(r, "malformed ring: expected 16 hex digits");
        }
        if ring != self.ctl.ring_fp() {
            return self.ring_mismatch(r);
        }
        let set = self.ctl.pair_set(&peer).await;
        let leaves = crate::dist::ae::leaves_of(&set);
        let mine = crate::dist::ae::root(&leaves);
        let node = self.ctl.node.node_id();
        let hex = crate::dist::ae::hex;
        let v = if mine == root {
            serde_json::json!({"node": node, "ring": ring, "root": hex(mine), "equal": true})
        } else {
            let l: Vec<String> = leaves.iter().map(|x| hex(*x)).collect();
            serde_json::json!({"node": node, "ring": ring, "root": hex(mine), "equal": false, "leaves": l})
        };
        ok_json(r, &v);
    }

    /// `POST /internal/ae/digests` `{"peer","ring","leaves":[..≤64]}`.
    async fn ae_digests(&self, body: &[u8], r: &mut Responder<'_>) {
        #[derive(serde::Deserialize)]
        struct Req {
            peer: String,
            ring: String,
            leaves: Vec<u16>,
        }
        let req: Req = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &format!("invalid JSON: {e}")),
        };
        if req.leaves.len() > 64
            || req
                .leaves
                .iter()
                .any(|&l| l as usize >= crate::dist::ae::LEAVES)
        {
            return bad(r, "leaves: at most 64 indexes in 0..1023");
        }
        if req.ring != self.ctl.ring_fp() {
            return self.ring_mismatch(r);
        }
        let wanted: std::collections::HashSet<usize> =
            req.leaves.iter().map(|&l| l as usize).collect();
        let entries: Vec<crate::dist::ae::Digest> = self
            .ctl
            .pair_set(&req.peer)
            .await
            .into_iter()
            .filter(|d| wanted.contains(&crate::dist::ae::leaf_of(xxhash64(d.key.as_bytes(), 0))))
            .collect();
        ok_json(
            r,
            &serde_json::json!({"node": self.ctl.node.node_id(), "entries": entries}),
        );
    }

    async fn probe(&self, query: &[u8], r: &mut Responder<'_>) {
        let Some(target) = query_param(query, b"target").and_then(|t| form_decode(t).ok()) else {
            return bad(r, "missing target");
        };
        let target = String::from_utf8_lossy(&target).into_owned();
        if target.is_empty() {
            return bad(r, "missing target");
        }
        let Some(addr) = self.ctl.address_of(&target) else {
            return r.error(404, "NOT_FOUND", "unknown target");
        };
        if self.ctl.probe_health(&addr).await.is_some() {
            r.send(200, Some(TEXT), &[], b"ok");
        } else {
            r.error(502, "PROBE_FAILED", "probe failed");
        }
    }
}

impl Service for DistService {
    type Route<'b> = Route;

    fn max_body(&self) -> u64 {
        MAX_DIST_BODY
    }

    fn family(&self, head: &Head<'_>) -> usize {
        ROUTES
            .iter()
            .position(|(p, ..)| p.as_bytes() == head.path)
            .unwrap_or(ROUTES.len())
    }

    fn prepare<'b>(&self, head: &Head<'b>, r: &mut Responder<'_>) -> Option<Route> {
        if !self.auth.allows(head.authorization, head.auth_count) {
            unauthorized(r);
            return None;
        }
        let Some(&(_, route, method, allow)) =
            ROUTES.iter().find(|(p, ..)| p.as_bytes() == head.path)
        else {
            r.error(404, "NOT_FOUND", "not found");
            return None;
        };
        let ok = head.method == method || (method == Method::Get && head.method == Method::Head);
        if !ok {
            method_not_allowed(r, allow);
            return None;
        }
        Some(route)
    }

    async fn call<'b>(
        &self,
        route: Route,
        head: &Head<'b>,
        body: &[u8],
        r: &mut Responder<'_>,
    ) -> bool {
        let q = head.query;
        match route {
            Route::Health if self.ctl.node.is_draining() => draining_health(r),
            Route::Health => r.send(200, Some(TEXT), &[], b"ok"),
            Route::Drain => {
                self.ctl.drain();
                r.json(200, &[], |b| b.extend_from_slice(b"{\"draining\":true}"));
            }
            Route::Set => self.set(body, r).await,
            Route::Get => self.get(q, r).await,
            Route::Del => self.del(q, r).await,
            Route::Probe => self.probe(q, r).await,
            Route::Gossip => self.gossip(body, r).await,
            Route::Batch => self.batch(body, r).await,
            Route::BatchGet => self.batch_get(body, r).await,
            Route::Merkle => self.merkle(r).await,
            Route::Keys => self.keys(q, r).await,
            Route::AeLeaves => self.ae_leaves(q, r).await,
            Route::AeDigests => self.ae_digests(body, r).await,
        }
        false
    }

    fn observe(&self, family: usize, status: u16, _elapsed: Duration) {
        let route = ROUTES.get(family).map_or("other", |r| r.0);
        self.ctl.count_request("dist", route, status);
    }
}
