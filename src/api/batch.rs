//! Batch endpoints (api.md §6). Work is grouped by owning core: one mesh
//! message per remote core involved (all sent before any reply is awaited),
//! the local group runs in place.

use std::io::Write;

use base64::Engine;
use serde::Deserialize;

use super::coord::{read_failed_msg, write_failed_msg, ReadResult};
use super::envelope::{self, ItemView};
use super::ClientService;
use crate::base::hash::xxhash64;
use crate::base::now_ms;
use crate::http::keys::check_key;
use crate::http::response::{json_str, Responder};
use crate::metrics::bump;
use crate::runtime::msg::{KeyRef, Op, PutItem, Reply};
use crate::runtime::shard_for;
use crate::store::entry::{OwnedItem, Value};

#[derive(Deserialize)]
struct KeysBody {
    #[serde(default)]
    keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct PutBody {
    #[serde(default)]
    items: Option<Vec<PutBodyItem>>,
}

#[derive(Deserialize)]
struct PutBodyItem {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    value_encoding: Option<String>,
    #[serde(default, deserialize_with = "whole_ms")]
    ttl_ms: Option<i64>,
}

/// `ttl_ms` as an integer, also written with a zero fraction (`60000.0`): JSON Schema's
/// `integer`, which the OpenAPI document promises. `1.5` stays a 400.
fn whole_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Some(f as i64)),
            _ => Err(D::Error::custom(format!(
                "invalid ttl_ms {n}: expected a whole number of milliseconds"
            ))),
        },
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8], r: &mut Responder<'_>) -> Option<T> {
    // serde would accept a JSON array for a struct; the contract wants an object.
    let value = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) if v.is_object() => v,
        Ok(_) => {
            r.error(
                400,
                "BAD_REQUEST",
                "invalid JSON: the body must be a JSON object",
            );
            return None;
        }
        Err(e) => {
            r.error(400, "BAD_REQUEST", &format!("invalid JSON: {e}"));
            return None;
        }
    };
    // Likewise a batch put item: `[null, null]` would fill the struct's fields in order.
    let array_item = value
        .get("items")
        .and_then(|i| i.as_array())
        .is_some_and(|items| items.iter().any(|it| it.is_array()));
    if array_item {
        r.error(
            400,
            "BAD_REQUEST",
            "invalid JSON: items: every item must be a JSON object",
        );
        return None;
    }
    match serde_json::from_value::<T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            r.error(400, "BAD_REQUEST", &format!("invalid JSON: {e}"));
            None
        }
    }
}

/// Per-item outcome before rendering.
enum Out {
    Invalid(String),
    Pending,
    Found(OwnedItem),
    Missing,
    Written,
    /// A cluster error (QUORUM_FAILED, NO_OWNERS): code and text.
    Cluster(&'static str, String),
}

impl ClientService {
    fn too_many(&self, n: usize, r: &mut Responder<'_>) -> bool {
        let max = self.ctx.node.config.max_batch;
        if n > max {
            r.error(
                400,
                "BAD_REQUEST",
                &format!("too many items in batch: {n} > {max}"),
            );
            return true;
        }
        false
    }

    /// Runs one op per core: remote ones first (sent, not awaited), then the
    /// local one, then collects the remote replies.
    async fn fan_out(&self, groups: Vec<Option<Op>>) -> Vec<Reply> {
        let mut tickets = Vec::new();
        let mut local = None;
        for (core, op) in groups.into_iter().enumerate() {
            let Some(op) = op else { continue };
            if core == self.ctx.id {
                local = Some(op);
            } else {
                bump(&self.ctx.metrics.cross_core, 1);
                tickets.push(self.ctx.dispatch.send(core, op).await);
            }
        }
        let mut replies = Vec::with_capacity(tickets.len() + 1);
        if let Some(op) = local {
            replies.push(self.ctx.execute(op));
        }
        for t in tickets {
            replies.push(t.await);
        }
        replies
    }

    /// Runs grouped writes: locally per core (single node) or coordinated
    /// through the owners (cluster).
    async fn apply_writes(&self, groups: Vec<Vec<PutItem>>, outs: &mut [Out], delete: bool) {
        if self.is_cluster() {
            let mut items = Vec::new();
            for g in groups {
                for p in g {
                    match self.cluster_owners(p.hash) {
                        Some(o) if !o.is_empty() => items.push((p, o)),
                        _ => outs[p.idx] = no_owners_out(),
                    }
                }
            }
            for o in self.coordinate_writes(items, delete).await {
                outs[o.idx] = if o.ok {
                    Out::Written
                } else {
                    Out::Cluster("QUORUM_FAILED", write_failed_msg(&o))
                };
            }
            return;
        }
        let ops = groups
            .into_iter()
            .map(|g| {
                let empty = g.is_empty();
                let op = if delete {
                    Op::BatchDelete(g)
                } else {
                    Op::BatchPut(g)
                };
                (!empty).then_some(op)
            })
            .collect();
        for reply in self.fan_out(ops).await {
            if let Reply::Versions(v) = reply {
                bump(&self.ctx.metrics.local_writes, v.len() as u64);
                for (idx, _, _) in v {
                    outs[idx] = Out::Written;
                }
            }
        }
    }

    fn group<T>(&self) -> Vec<Vec<T>> {
        (0..self.ctx.cores).map(|_| Vec::new()).collect()
    }

    /// Validates batch keys and groups the valid ones by owning core;
    /// invalid keys get their error result right away.
    fn group_keys<T>(
        &self,
        keys: &[String],
        make: impl Fn(usize, u64, Vec<u8>) -> T,
    ) -> (Vec<Out>, Vec<Vec<T>>) {
        let mut outs = Vec::with_capacity(keys.len());
        let mut groups = self.group::<T>();
        for (idx, k) in keys.iter().enumerate() {
            match check_key(k) {
                Err(e) => outs.push(Out::Invalid(e.message())),
                Ok(()) => {
                    let hash = xxhash64(k.as_bytes(), 0);
                    groups[shard_for(hash, self.ctx.cores)].push(make(
                        idx,
                        hash,
                        k.as_bytes().to_vec(),
                    ));
                    outs.push(Out::Pending);
                }
            }
        }
        (outs, groups)
    }

    pub(super) async fn batch_get(&self, body: &[u8], r: &mut Responder<'_>) {
        let Some(req) = parse::<KeysBody>(body, r) else {
            return;
        };
        let keys = req.keys.unwrap_or_default();
        if self.too_many(keys.len(), r) {
            return;
        }
        let (mut outs, groups) = self.group_keys(&keys, |idx, hash, key| KeyRef { idx, hash, key });
        if self.is_cluster() {
            let mut reads = Vec::new();
            for g in groups {
                for k in g {
                    match self.cluster_owners(k.hash) {
                        Some(o) if !o.is_empty() => reads.push((k.idx, k.hash, k.key, o)),
                        _ => outs[k.idx] = no_owners_out(),
                    }
                }
            }
            for (idx, res) in self.coordinate_reads(reads).await {
                outs[idx] = match res {
                    ReadResult::Found(i) => Out::Found(i),
                    ReadResult::NotFound => Out::Missing,
                    ReadResult::Failed(a, b) => {
                        Out::Cluster("QUORUM_FAILED", read_failed_msg(a, b))
                    }
                };
            }
        } else {
            let ops = groups
                .into_iter()
                .map(|g| (!g.is_empty()).then_some(Op::BatchGet(g)))
                .collect();
            for reply in self.fan_out(ops).await {
                if let Reply::Items(items) = reply {
                    for (idx, it) in items {
                        outs[idx] = it.map_or(Out::Missing, Out::Found);
                    }
                }
            }
        }
        let now = now_ms();
        let m = &self.ctx.metrics;
        let node = self.ctx.node.node_id();
        r.json(200, &[], |b| {
            b.extend_from_slice(b"{\"results\":[");
            for (i, (k, o)) in keys.iter().zip(&outs).enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                b.extend_from_slice(b"{\"key\":");
                json_str(b, k);
                match o {
                    Out::Found(it) => {
                        bump(&m.hits, 1);
                        b.extend_from_slice(b",\"found\":true,");
                        let view = ItemView {
                            value: &it.value,
                            len: it.len,
                            version: it.version,
                            origin: &it.origin,
                            expires_at_ms: it.expires_at_ms,
                        };
                        envelope::write_item_fields(b, &view, now);
                        b.push(b',');
                        self.with_owners(xxhash64(k.as_bytes(), 0), |o| {
                            envelope::write_owners(b, o)
                        });
                    }
                    Out::Invalid(msg) => {
                        b.extend_from_slice(b",\"found\":false,\"error\":");
                        json_str(b, msg);
                        b.extend_from_slice(b",\"code\":\"BAD_REQUEST\"");
                    }
                    Out::Cluster(code, msg) => {
                        b.extend_from_slice(b",\"found\":false,\"error\":");
                        json_str(b, msg);
                        b.extend_from_slice(b",\"code\":");
                        json_str(b, code);
                    }
                    _ => {
                        bump(&m.misses, 1);
                        b.extend_from_slice(b",\"found\":false");
                    }
                }
                b.push(b'}');
            }
            b.extend_from_slice(b"],\"node\":");
            json_str(b, node);
            b.push(b'}');
        });
    }

    pub(super) async fn batch_put(&self, body: &[u8], r: &mut Responder<'_>) {
        let Some(req) = parse::<PutBody>(body, r) else {
            return;
        };
        let items = req.items.unwrap_or_default();
        if self.too_many(items.len(), r) {
            return;
        }
        let mut outs: Vec<Out> = Vec::with_capacity(items.len());
        let mut sizes = vec![0usize; items.len()];
        let mut groups = self.group::<PutItem>();
        for (idx, it) in items.iter().enumerate() {
            let key = it.key.as_deref().unwrap_or("");
            if let Err(e) = check_key(key) {
                outs.push(Out::Invalid(e.message()));
                continue;
            }
            let raw = it.value.as_deref().unwrap_or("");
            let value = if it.value_encoding.as_deref() == Some("base64") {
                let cleaned: Vec<u8> = raw.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
                match base64::engine::general_purpose::STANDARD.decode(&cleaned) {
                    Ok(v) => v,
                    Err(e) => {
                        outs.push(Out::Invalid(format!("invalid base64 value: {e}")));
                        continue;
                    }
                }
            } else {
                raw.as_bytes().to_vec()
            };
            let ttl_ms = match it.ttl_ms.unwrap_or(0) {
                t if t < 0 => {
                    outs.push(Out::Invalid("invalid ttl_ms: must be >= 0".into()));
                    continue;
                }
                t => t as u64,
            };
            let hash = xxhash64(key.as_bytes(), 0);
            sizes[idx] = value.len();
            groups[shard_for(hash, self.ctx.cores)].push(PutItem {
                idx,
                hash,
                key: key.as_bytes().to_vec(),
                value: value.into(),
                ttl_ms,
                store: true,
                observe: 0,
            });
            outs.push(Out::Pending);
        }
        self.apply_writes(groups, &mut outs, false).await;
        let keys: Vec<&str> = items
            .iter()
            .map(|it| it.key.as_deref().unwrap_or(""))
            .collect();
        self.write_results(&keys, &outs, Some(&sizes), r);
    }

    pub(super) async fn batch_delete(&self, body: &[u8], r: &mut Responder<'_>) {
        let Some(req) = parse::<KeysBody>(body, r) else {
            return;
        };
        let keys = req.keys.unwrap_or_default();
        if self.too_many(keys.len(), r) {
            return;
        }
        let (mut outs, groups) = self.group_keys(&keys, |idx, hash, key| PutItem {
            idx,
            hash,
            key,
            value: Value::default(),
            ttl_ms: 0,
            store: true,
            observe: 0,
        });
        self.apply_writes(groups, &mut outs, true).await;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.write_results(&keys, &outs, None, r);
    }

    /// The body of a batch put (`sizes` given: `stored`, `bytes`) or batch
    /// delete (`deleted`) answer, one result per input item in order.
    fn write_results(
        &self,
        keys: &[&str],
        outs: &[Out],
        sizes: Option<&[usize]>,
        r: &mut Responder<'_>,
    ) {
        let flag = if sizes.is_some() { "stored" } else { "deleted" };
        let m = &self.ctx.metrics;
        let node = self.ctx.node.node_id();
        r.json(200, &[], |b| {
            b.extend_from_slice(b"{\"results\":[");
            for (i, (key, o)) in keys.iter().zip(outs).enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                b.extend_from_slice(b"{\"key\":");
                json_str(b, key);
                let owners = |b: &mut Vec<u8>| {
                    self.with_owners(xxhash64(key.as_bytes(), 0), |o| {
                        envelope::write_owners(b, o)
                    })
                };
                match o {
                    Out::Written => {
                        let _ = write!(b, ",\"{flag}\":true,");
                        match sizes {
                            Some(sz) => {
                                bump(&m.sets, 1);
                                let _ = write!(b, "\"bytes\":{},", sz[i]);
                            }
                            None => bump(&m.deletes, 1),
                        }
                        owners(b);
                    }
                    Out::Invalid(msg) => write_item_error(b, flag, msg),
                    Out::Cluster(code, msg) => {
                        let _ = write!(b, ",\"{flag}\":false,");
                        owners(b);
                        b.extend_from_slice(b",\"error\":");
                        json_str(b, msg);
                        b.extend_from_slice(b",\"code\":");
                        json_str(b, code);
                    }
                    _ => write_item_error(b, flag, "internal error: item not applied"),
                }
                b.push(b'}');
            }
            b.extend_from_slice(b"],\"node\":");
            json_str(b, node);
            b.push(b'}');
        });
    }
}

fn no_owners_out() -> Out {
    Out::Cluster(
        "NO_OWNERS",
        "no ring owners for key (cluster initializing?)".into(),
    )
}

/// `,"<flag>":false,"error":..,"code":..` for an item that failed validation.
fn write_item_error(b: &mut Vec<u8>, flag: &str, msg: &str) {
    let code = if msg.starts_with("internal") {
        "INTERNAL"
    } else {
        "BAD_REQUEST"
    };
    let _ = write!(b, ",\"{flag}\":false,\"error\":");
    json_str(b, msg);
    let _ = write!(b, ",\"code\":\"{code}\"");
}
