//! The dist listener (cluster.md §12): peer routes on the control core.
//!
//! Every data route answers from the local store only (the owning data core,
//! reached over the mesh) and validates its input before anything changes: a
//! bad body or parameter is a 4xx and touches no shard.
//!
//! This file holds the route table, authentication and dispatch; the routes live by
//! concern in [`writes`] (set, del, batch, the Go-sender coordinator), [`reads`] (get,
//! batch get, probe, gossip) and [`scans`] (Merkle, keys, anti-entropy leaves and digests).

mod reads;
mod scans;
mod writes;

use std::rc::Rc;
use std::time::Duration;

use serde_json::Value;

use crate::auth::peer::PeerToken;
use crate::auth::ConnFacts;
use crate::control::ControlCtx;
use crate::http::parse::{Head, Method};
use crate::http::response::{Responder, TEXT};
use crate::service::answers::{draining_health, method_not_allowed, unauthorized};
use crate::service::conn::Service;
use crate::store::entry::ApplyStatus;

/// Dist bodies may be larger than client ones (cluster.md §12.1).
pub const MAX_DIST_BODY: u64 = 17 << 20;

pub struct DistService {
    pub ctl: Rc<ControlCtx>,
    auth: PeerToken,
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
            auth: PeerToken::new(ctl.node.config.auth_token.as_deref()),
            ctl,
        }
    }
}

pub(super) fn bad(r: &mut Responder<'_>, msg: &str) {
    r.error(400, "BAD_REQUEST", msg);
}

pub(super) fn ok_json(r: &mut Responder<'_>, v: &impl serde::Serialize) {
    r.json(200, &[], |b| {
        let _ = serde_json::to_writer(b, v);
    });
}

pub(super) fn ack_body(s: &ApplyStatus) -> Value {
    match s {
        ApplyStatus::Newer(v, o) => serde_json::json!({"version": v, "origin": o}),
        _ => serde_json::json!({}),
    }
}

impl Service for DistService {
    type Route<'b> = Route;
    type Ahead = ();

    fn max_body(&self) -> u64 {
        MAX_DIST_BODY
    }

    fn family(&self, head: &Head<'_>) -> usize {
        ROUTES
            .iter()
            .position(|(p, ..)| p.as_bytes() == head.path)
            .unwrap_or(ROUTES.len())
    }

    fn prepare<'b>(
        &self,
        head: &Head<'b>,
        _conn: ConnFacts<'_>,
        r: &mut Responder<'_>,
    ) -> Option<Route> {
        if !self.auth.allows(head.authorization, head.auth_count) {
            unauthorized(r, false);
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
        _ahead: &mut (),
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
        self.ctl.listeners.count_request("dist", route, status);
    }
}
