//! JSON and text views of the management listener (ops.md §1.3–§1.8).

use serde_json::{json, Map, Value};

use crate::base::hash::xxhash64;
use crate::config::duration::format_go_duration;
use crate::control::ControlCtx;
use crate::http::keys::{check_key, form_decode, query_param};
use crate::http::response::{json_str, Responder};
use crate::metrics::dist::{idx, write_json};
use crate::metrics::{CoreSnapshot, FAMILIES};

fn latency_json(s: &CoreSnapshot) -> Value {
    let mut m = Map::new();
    for (name, h) in FAMILIES.iter().zip(&s.latency) {
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        m.insert(
            name.to_string(),
            json!({"count": h.len(), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99),
                   "p999": q(0.999), "max": if h.is_empty() { 0 } else { h.max() }}),
        );
    }
    Value::Object(m)
}

pub async fn stats(ctl: &ControlCtx, r: &mut Responder<'_>) {
    let snaps = ctl.snapshots().await;
    let t = ControlCtx::totals(&snaps);
    let cfg = &ctl.node.config;
    let cores: Vec<Value> = snaps
        .iter()
        .map(|c| {
            json!({"core": c.core, "cpu": c.cpu, "items": c.items, "bytes": c.bytes,
                   "capacity_items": c.capacity_items, "hits": c.hits, "misses": c.misses,
                   "sets": c.sets, "deletes": c.deletes, "evictions": c.evictions,
                   "expirations": c.expirations, "connections": c.connections})
        })
        .collect();
    let v = json!({
        "node": cfg.node_id,
        "uptime_s": ctl.node.started.elapsed().as_secs(),
        "draining": ctl.node.is_draining(),
        "items": t.items, "bytes": t.bytes,
        "capacity": {"items": cfg.capacity, "max_memory_bytes": cfg.max_memory},
        "eviction_policy": cfg.eviction.name(),
        "hits": t.hits, "misses": t.misses, "sets": t.sets, "deletes": t.deletes,
        "evictions": t.evictions, "expirations": t.expirations,
        "cores": cores,
        "latency_us": latency_json(&t),
    });
    r.json(200, &[], |b| serde_json::to_writer(b, &v).unwrap_or(()));
}

use crate::runtime::EXPIRATION_INTERVAL;

pub async fn config(ctl: &ControlCtx, r: &mut Responder<'_>) {
    let snaps = ctl.snapshots().await;
    let t = ControlCtx::totals(&snaps);
    let cfg = &ctl.node.config;
    let mut env = Map::new();
    for (k, v) in cfg.env_view() {
        env.insert(k.to_string(), Value::String(v));
    }
    let v = json!({
        "capacity": cfg.capacity,
        "allocation": t.bytes,
        "maxCacheSize": cfg.max_memory.unwrap_or(0),
        "evictionInterval": "0s",
        "expirationInterval": format_go_duration(EXPIRATION_INTERVAL),
        "evictionAlgorithm": cfg.eviction.name(),
        "replication": cfg.replication,
        "virtualNodesPerNode": crate::dist::ring::VNODES,
        "node": cfg.node_id,
        "cores": cfg.cores,
        "env": env,
    });
    r.json(200, &[], |b| serde_json::to_writer(b, &v).unwrap_or(()));
}

pub async fn dist_metrics(ctl: &ControlCtx, r: &mut Responder<'_>) {
    let snaps = ctl.snapshots().await;
    let t = ControlCtx::totals(&snaps);
    let values = ctl.dist_values(&t);
    let err = ctl.dist.last_auto_sync_error.borrow().clone();
    r.json(200, &[], |b| write_json(b, &values, &err));
}

pub fn owners(ctl: &ControlCtx, query: &[u8], r: &mut Responder<'_>) {
    let key = query_param(query, b"key")
        .map(form_decode)
        .and_then(Result::ok)
        .unwrap_or_default();
    if key.is_empty() {
        r.error(400, "BAD_REQUEST", "missing cache key");
        return;
    }
    let Ok(key) = String::from_utf8(key) else {
        r.error(400, "BAD_REQUEST", "invalid key: not valid UTF-8");
        return;
    };
    if let Err(e) = check_key(&key) {
        r.error(400, "BAD_REQUEST", &e.message());
        return;
    }
    let ring = ctl.ring.borrow().clone();
    let mut idx = Vec::new();
    ring.owners_into(xxhash64(key.as_bytes(), 0), &mut idx);
    let owners: Vec<&str> = idx.iter().map(|&i| ring.member(i)).collect();
    r.json(200, &[], |b| {
        b.extend_from_slice(b"{\"key\":");
        json_str(b, &key);
        b.push(b',');
        crate::api::envelope::write_owners(b, &owners);
        b.push(b'}');
    });
}

pub fn members_json(ctl: &ControlCtx, b: &mut Vec<u8>) {
    let cfg = &ctl.node.config;
    let members: Vec<Value> = ctl
        .member_table()
        .into_iter()
        .map(|m| {
            json!({"ID": m.id, "Address": m.address, "APIAddress": m.api_address,
                   "State": m.state.as_str(), "Incarnation": m.incarnation})
        })
        .collect();
    let v = json!({
        "replication": cfg.replication,
        "virtualNodes": crate::dist::ring::VNODES,
        "members": members,
    });
    let _ = serde_json::to_writer(b, &v);
}

pub fn heartbeat_json(ctl: &ControlCtx, b: &mut Vec<u8>) {
    let mut d: Vec<u64> = (0..crate::metrics::dist::N)
        .map(|i| ctl.dist.get(i))
        .collect();
    ctl.membership_values(&mut d);
    let v = json!({
        "heartbeatSuccess": d[const { idx("HeartbeatSuccess") }],
        "heartbeatFailure": d[const { idx("HeartbeatFailure") }],
        "nodesRemoved": d[const { idx("NodesRemoved") }],
        "readPrimaryPromote": d[const { idx("ReadPrimaryPromote") }],
    });
    let _ = serde_json::to_writer(b, &v);
}

pub fn ring(ctl: &ControlCtx, r: &mut Responder<'_>) {
    let ring = ctl.ring.borrow().clone();
    r.json(200, &[], |b| {
        use std::io::Write;
        let _ = write!(
            b,
            "{{\"count\":{},\"vnodes\":[",
            ring.len() * crate::dist::ring::VNODES
        );
        for (i, (h, id)) in ring.vnodes().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            json_str(b, &format!("{h:016x}:{id}"));
        }
        b.extend_from_slice(b"]}");
    });
}

pub async fn prometheus(ctl: &ControlCtx, r: &mut Responder<'_>) {
    let snaps = ctl.snapshots().await;
    let t = ControlCtx::totals(&snaps);
    let cfg = &ctl.node.config;
    let input = crate::metrics::prom::PromInput {
        uptime_s: ctl.node.started.elapsed().as_secs(),
        draining: ctl.node.is_draining(),
        capacity_items: cfg.capacity,
        max_memory: cfg.max_memory.unwrap_or(0),
        cores: &snaps,
        dist: ctl.dist_values(&t),
        requests: ctl.listeners.requests(),
        mgmt_conns: ctl.listeners.mgmt_conns.get(),
        dist_conns: ctl.listeners.dist_conns.get(),
        mgmt_rejected: ctl.listeners.mgmt_rejected.get(),
        dist_rejected: ctl.listeners.dist_rejected.get(),
        peer_requests: ctl
            .peers
            .sent
            .borrow()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
    };
    let (mut text, _) = crate::metrics::prom::render(&input);
    ctl.node.config.tls.render_metrics(&mut text);
    if let Some(o) = &ctl.node.config.oidc {
        o.render_metrics(&mut text);
    }
    r.send(
        200,
        Some("text/plain; version=0.0.4; charset=utf-8"),
        &[],
        text.as_bytes(),
    );
}
