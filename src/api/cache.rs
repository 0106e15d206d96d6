//! Single-key handlers: GET, HEAD, PUT, DELETE, owners (api.md §5, §7.1).
//!
//! A key owned by this core is served straight from the shard: the raw GET
//! hit copies the value from the shard into the output buffer and allocates
//! nothing. A key of another core costs one mesh round trip.

use super::coord::ReadResult;
use super::envelope::{self, ItemView};
use super::ClientService;
use crate::base::hash::xxhash64;
use crate::base::now_ms;
use crate::http::date::rfc3339_secs;
use crate::http::keys::{decode_path_key, MAX_KEY};
use crate::http::response::{Hv, Responder, OCTETS};
use crate::metrics::bump;
use crate::runtime::msg::{Op, PutItem, Reply};
use crate::runtime::shard_for;

fn key_str(key: &[u8]) -> &str {
    // Validated as UTF-8 by `decode_path_key`.
    std::str::from_utf8(key).unwrap_or("")
}

impl ClientService {
    /// Writes the 200 for a found item (raw, envelope or HEAD headers).
    fn write_found(
        &self,
        key: &[u8],
        hash: u64,
        it: &ItemView<'_>,
        json: bool,
        head: bool,
        r: &mut Responder<'_>,
    ) {
        let node = self.ctx.node.node_id();
        if head {
            let now = now_ms();
            let last = rfc3339_secs(crate::store::Hlc::wall_ms(it.version));
            let mut owners = String::new();
            self.with_owners(hash, |o| owners = o.join(","));
            let ttl;
            let exp;
            let mut hdrs = vec![
                ("X-Cache-Version", Hv::U(it.version)),
                ("X-Cache-Origin", Hv::S(it.origin)),
                ("X-Cache-Last-Updated", Hv::S(&last)),
            ];
            if it.expires_at_ms > 0 {
                ttl = envelope::remaining_ms(it.expires_at_ms, now);
                exp = rfc3339_secs(it.expires_at_ms);
                hdrs.push(("X-Cache-Ttl-Ms", Hv::U(ttl)));
                hdrs.push(("X-Cache-Expires-At", Hv::S(&exp)));
            }
            hdrs.push(("X-Cache-Owners", Hv::S(&owners)));
            hdrs.push(("X-Cache-Node", Hv::S(node)));
            r.status = 200;
            crate::http::response::write_head(r.out, 200, Some(OCTETS), &hdrs, it.len, r.conn);
        } else if json {
            let now = now_ms();
            self.with_owners(hash, |owners| {
                r.json(200, &[], |b| {
                    envelope::write_envelope(b, key_str(key), it, now, node, owners)
                })
            });
        } else {
            r.send(200, Some(OCTETS), &[], it.value);
        }
    }

    /// GET and HEAD of one key. `ahead` holds the answers the connection
    /// looked up for a pipeline of GETs (`api::ahead`).
    pub(super) async fn get(
        &self,
        seg: &[u8],
        json: bool,
        head: bool,
        r: &mut Responder<'_>,
        mut ahead: Option<&mut super::ahead::Ahead>,
    ) {
        let mut kb = [0u8; MAX_KEY];
        let Ok(key) = decode_path_key(seg, &mut kb) else {
            return;
        };
        let hash = xxhash64(key, 0);
        let core = shard_for(hash, self.ctx.cores);
        let m = &self.ctx.metrics;
        if let Some(a) = ahead.as_deref_mut() {
            a.admit();
        }
        if let Some(owners) = self.cluster_owners(hash) {
            if owners.is_empty() {
                return super::coord::no_owners(r);
            }
            let res = self
                .coordinate_reads(vec![(0, hash, key.to_vec(), owners)])
                .await
                .pop()
                .map(|(_, res)| res);
            match res {
                Some(ReadResult::Found(item)) => {
                    let view = ItemView {
                        value: &item.value,
                        len: item.len,
                        version: item.version,
                        origin: &item.origin,
                        expires_at_ms: item.expires_at_ms,
                    };
                    self.write_found(key, hash, &view, json, head, r);
                    bump(&m.hits, 1);
                }
                Some(ReadResult::Failed(got, need)) => {
                    r.error(
                        503,
                        "QUORUM_FAILED",
                        &super::coord::read_failed_msg(got, need),
                    );
                }
                _ => {
                    bump(&m.misses, 1);
                    r.error(404, "NOT_FOUND", "key not found");
                }
            }
            return;
        }
        if core == self.ctx.id {
            let mut shard = self.ctx.shard.borrow_mut();
            if let Some(item) = shard.get(hash, key, now_ms()) {
                let view = ItemView {
                    value: item.value,
                    len: item.value.len(),
                    version: item.version,
                    origin: item.origin,
                    expires_at_ms: item.expires_at_ms,
                };
                self.write_found(key, hash, &view, json, head, r);
                bump(&m.hits, 1);
                return;
            }
        } else {
            let found = match ahead.and_then(|a| a.take(hash, key)) {
                Some(found) => found,
                None => {
                    let op = Op::Get {
                        hash,
                        key: key.to_vec(),
                        with_value: !head,
                    };
                    match self.ctx.on_core(core, op).await {
                        Reply::Item(item) => item,
                        _ => None,
                    }
                }
            };
            if let Some(item) = found {
                let view = ItemView {
                    value: &item.value,
                    len: item.len,
                    version: item.version,
                    origin: &item.origin,
                    expires_at_ms: item.expires_at_ms,
                };
                self.write_found(key, hash, &view, json, head, r);
                bump(&m.hits, 1);
                return;
            }
        }
        bump(&m.misses, 1);
        r.error(404, "NOT_FOUND", "key not found");
    }

    /// Applies one write (`value` Some) or delete (None) of a decoded key:
    /// through the owners in a cluster, else on the owning core. Counts it
    /// and returns true on success; on failure the error is already in `r`.
    async fn write_one(
        &self,
        hash: u64,
        key: &[u8],
        value: Option<&[u8]>,
        ttl_ms: u64,
        r: &mut Responder<'_>,
    ) -> bool {
        let core = shard_for(hash, self.ctx.cores);
        let delete = value.is_none();
        let item = |store| PutItem {
            idx: 0,
            hash,
            key: key.to_vec(),
            value: value.unwrap_or_default().to_vec().into(),
            ttl_ms,
            store,
            observe: 0,
        };
        if let Some(owners) = self.cluster_owners(hash) {
            if owners.is_empty() {
                super::coord::no_owners(r);
                return false;
            }
            let out = self
                .coordinate_writes(vec![(item(false), owners)], delete)
                .await;
            match out.first() {
                Some(o) if o.ok => {}
                Some(o) => {
                    super::coord::write_failed(r, o);
                    return false;
                }
                None => {
                    r.error(500, "INTERNAL", "internal error: write not coordinated");
                    return false;
                }
            }
        } else {
            if core == self.ctx.id {
                match value {
                    Some(v) => self.ctx.put_local(hash, key, v, ttl_ms, true, 0),
                    None => self.ctx.delete_local(hash, key, true, 0),
                };
            } else {
                let op = match value {
                    Some(_) => Op::Put(item(true)),
                    None => Op::Delete {
                        hash,
                        key: key.to_vec(),
                        store: true,
                        observe: 0,
                    },
                };
                self.ctx.on_core(core, op).await;
            }
            bump(&self.ctx.metrics.local_writes, 1);
        }
        let m = &self.ctx.metrics;
        bump(if delete { &m.deletes } else { &m.sets }, 1);
        true
    }

    pub(super) async fn put(&self, seg: &[u8], ttl_ms: u64, body: &[u8], r: &mut Responder<'_>) {
        let mut kb = [0u8; MAX_KEY];
        let Ok(key) = decode_path_key(seg, &mut kb) else {
            return;
        };
        let hash = xxhash64(key, 0);
        if !self.write_one(hash, key, Some(body), ttl_ms, r).await {
            return;
        }
        let node = self.ctx.node.node_id();
        self.with_owners(hash, |owners| {
            r.json(200, &[], |b| {
                envelope::write_put(b, key_str(key), ttl_ms, body.len(), node, owners)
            })
        });
    }

    pub(super) async fn delete(&self, seg: &[u8], r: &mut Responder<'_>) {
        let mut kb = [0u8; MAX_KEY];
        let Ok(key) = decode_path_key(seg, &mut kb) else {
            return;
        };
        let hash = xxhash64(key, 0);
        if !self.write_one(hash, key, None, 0, r).await {
            return;
        }
        let node = self.ctx.node.node_id();
        self.with_owners(hash, |owners| {
            r.json(200, &[], |b| {
                envelope::write_deleted(b, key_str(key), node, owners)
            })
        });
    }

    pub(super) fn owners(&self, seg: &[u8], r: &mut Responder<'_>) {
        let mut kb = [0u8; MAX_KEY];
        let Ok(key) = decode_path_key(seg, &mut kb) else {
            return;
        };
        let hash = xxhash64(key, 0);
        let node = self.ctx.node.node_id();
        self.with_owners(hash, |owners| {
            r.json(200, &[], |b| {
                b.extend_from_slice(b"{\"key\":");
                crate::http::response::json_str(b, key_str(key));
                b.push(b',');
                envelope::write_owners(b, owners);
                b.extend_from_slice(b",\"node\":");
                crate::http::response::json_str(b, node);
                b.push(b'}');
            })
        });
    }
}
