//! The client listener (api.md): routing, checks before the body, handlers.
//!
//! One [`ClientService`] per data core. `prepare` settles auth, route, method
//! and the route-specific checks before any body byte is read (so `Expect:
//! 100-continue` gets its final answer early); `call` runs the handler.

pub mod ahead;
mod batch;
pub mod browse;
mod cache;
mod coord;
pub mod envelope;
mod me;
pub mod routes;
pub mod ttl;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::auth::gate::{Gate, Listener};
use crate::auth::resolve::Authenticator;
use crate::auth::ConnFacts;
use crate::http::keys::{self, decode_path_key, MAX_KEY};
use crate::http::parse::{Head, Method};
use crate::http::response::Responder;
use crate::metrics::*;
use crate::runtime::CoreCtx;
use crate::service::answers::{draining, forbidden, identify, method_not_allowed};
use crate::service::conn::Service;
pub use routes::{resolve, Resolved, Route, ERROR_CODES, ROUTES};

pub const OPENAPI: &str = include_str!("openapi.yaml");

pub struct ClientService {
    pub ctx: Rc<CoreCtx>,
    gate: Gate,
    max_body: u64,
    /// Reused owner-index buffer, so owner lists cost no allocation.
    owners_buf: RefCell<Vec<u32>>,
}

impl ClientService {
    pub fn new(ctx: Rc<CoreCtx>) -> ClientService {
        let cfg = &ctx.node.config;
        ClientService {
            gate: Gate::new(
                Authenticator::new(
                    cfg.policy.as_deref(),
                    cfg.auth_token.as_deref(),
                    cfg.oidc.is_some(),
                ),
                Listener::Client,
                cfg.oidc.clone(),
            ),
            max_body: cfg.max_body,
            owners_buf: RefCell::new(Vec::with_capacity(8)),
            ctx,
        }
    }

    /// Validates the key segment; writes the 400 on failure.
    fn check_key(seg: &[u8], r: &mut Responder<'_>) -> bool {
        let mut buf = [0u8; MAX_KEY];
        match decode_path_key(seg, &mut buf) {
            Ok(_) => true,
            Err(e) => {
                r.error(400, "BAD_REQUEST", &e.message());
                false
            }
        }
    }

    fn key_route<'b>(
        &self,
        head: &Head<'b>,
        seg: &'b [u8],
        r: &mut Responder<'_>,
    ) -> Option<Route<'b>> {
        let m = head.method;
        if !Self::check_key(seg, r) {
            return None;
        }
        match m {
            Method::Get => Some(Route::Get(seg)),
            Method::Head => Some(Route::Head(seg)),
            Method::Put => {
                let ttl = match ttl::parse_ttl(keys::query_param(head.query, b"ttl")) {
                    Ok(t) => t,
                    Err(msg) => {
                        r.error(400, "BAD_REQUEST", &msg);
                        return None;
                    }
                };
                if self.ctx.node.is_draining() {
                    draining(r);
                    return None;
                }
                Some(Route::Put(seg, ttl))
            }
            _ => {
                if self.ctx.node.is_draining() {
                    draining(r);
                    return None;
                }
                Some(Route::Delete(seg))
            }
        }
    }

    /// Owner ids of a key when this node does not serve it alone; None means
    /// the ring is just this node (the local fast path, no allocation).
    pub fn cluster_owners(&self, hash: u64) -> Option<Vec<String>> {
        let ring = self.ctx.ring.borrow();
        if ring.len() == 1 && ring.members()[0] == self.ctx.node.node_id() {
            return None;
        }
        let mut idx = self.owners_buf.borrow_mut();
        ring.owners_into(hash, &mut idx);
        Some(idx.iter().map(|&i| ring.member(i).to_string()).collect())
    }

    /// More than this node in the ring: writes and reads go through owners.
    pub fn is_cluster(&self) -> bool {
        let ring = self.ctx.ring.borrow();
        !(ring.len() == 1 && ring.members()[0] == self.ctx.node.node_id())
    }

    /// Owners of a key hash as ids, primary first.
    pub fn with_owners<T>(&self, hash: u64, f: impl FnOnce(&[&str]) -> T) -> T {
        let ring = self.ctx.ring.borrow();
        let mut idx = self.owners_buf.borrow_mut();
        ring.owners_into(hash, &mut idx);
        if idx.len() > 16 {
            // Replication above 16: rare enough to allocate.
            let names: Vec<&str> = idx.iter().map(|&i| ring.member(i)).collect();
            return f(&names);
        }
        let mut names: [&str; 16] = [""; 16];
        for (slot, &i) in names.iter_mut().zip(idx.iter()) {
            *slot = ring.member(i);
        }
        f(&names[..idx.len()])
    }
}

impl Service for ClientService {
    type Route<'b> = Route<'b>;
    type Ahead = ahead::Ahead;

    fn max_body(&self) -> u64 {
        self.max_body
    }

    fn family(&self, head: &Head<'_>) -> usize {
        let p = head.path;
        if let Some(rest) = p.strip_prefix(b"/v1/cache/") {
            return match rest {
                b"batch/get" => F_BATCH_GET,
                b"batch/put" => F_BATCH_PUT,
                b"batch/delete" => F_BATCH_DELETE,
                _ => match head.method {
                    Method::Get => F_GET,
                    Method::Head => F_HEAD,
                    Method::Put => F_PUT,
                    Method::Delete => F_DELETE,
                    _ => F_OTHER,
                },
            };
        }
        if p.starts_with(b"/v1/owners/") {
            return F_OWNERS;
        }
        F_OTHER
    }

    /// While the node drains every response says `Connection: close`, so clients behind a load
    /// balancer move to another node on their next request instead of finding their idle
    /// connection closed when the listener stops (docs/operations.md, "Drain").
    fn closing(&self) -> bool {
        self.ctx.node.is_draining()
    }

    fn gate(&self) -> Option<&Gate> {
        Some(&self.gate)
    }

    fn prepare<'b>(
        &self,
        head: &Head<'b>,
        conn: ConnFacts<'_>,
        r: &mut Responder<'_>,
    ) -> Option<Route<'b>> {
        let m = head.method;
        let resolved = resolve(head.path, m);
        // Order (security.md §6): 401 → 404 → 405 → 403 → route checks.
        let scope = resolved.scope(m);
        let who = match scope {
            None => None,
            Some(_) => Some(identify(&self.gate, head, conn, r)?),
        };
        match resolved {
            Resolved::NotFound => {
                r.error(404, "NOT_FOUND", "not found");
                return None;
            }
            Resolved::NotAllowed(allow) => {
                method_not_allowed(r, allow);
                return None;
            }
            _ => {}
        }
        if let (Some(need), Some(p)) = (scope, &who) {
            if !p.scopes.has(need) {
                forbidden(r, need.names().next().unwrap_or("read"));
                return None;
            }
        }
        match resolved {
            Resolved::Healthz => Some(Route::Healthz),
            Resolved::OpenApi => Some(Route::OpenApi),
            Resolved::Key(seg) => self.key_route(head, seg, r),
            Resolved::Owners(seg) => Self::check_key(seg, r).then_some(Route::Owners(seg)),
            Resolved::Batch(route) => {
                if !matches!(route, Route::BatchGet) && self.ctx.node.is_draining() {
                    draining(r);
                    return None;
                }
                Some(route)
            }
            Resolved::Me => who.map(|p| Route::Me((*p).clone())),
            Resolved::MeCan => me::can(head.query, &*who?, r),
            Resolved::Keys => match browse::parse(head.query) {
                Ok(q) => Some(Route::Keys(q)),
                Err(e) => {
                    r.error(400, "BAD_REQUEST", e);
                    None
                }
            },
            Resolved::NotFound | Resolved::NotAllowed(_) => None,
        }
    }

    async fn read_ahead(&self, input: &[u8], ahead: &mut ahead::Ahead) {
        ClientService::read_ahead(self, input, ahead).await
    }

    async fn call<'b>(
        &self,
        route: Route<'b>,
        head: &Head<'b>,
        body: &[u8],
        r: &mut Responder<'_>,
        ahead: &mut ahead::Ahead,
    ) -> bool {
        match route {
            Route::Healthz => r.send(200, Some(crate::http::response::TEXT), &[], b"ok"),
            Route::OpenApi => r.send(200, Some("application/yaml"), &[], OPENAPI.as_bytes()),
            Route::Get(seg) => self.get(seg, head.accept_json, false, r, Some(ahead)).await,
            Route::Head(seg) => self.get(seg, false, true, r, None).await,
            Route::Put(seg, ttl) => self.put(seg, ttl, body, r).await,
            Route::Delete(seg) => self.delete(seg, r).await,
            Route::Owners(seg) => self.owners(seg, r),
            Route::BatchGet => self.batch_get(body, r).await,
            Route::BatchPut => self.batch_put(body, r).await,
            Route::BatchDelete => self.batch_delete(body, r).await,
            Route::Me(p) => me::me(&p, r),
            Route::MeCan(cap, allowed) => me::can_answer(cap, allowed, r),
            Route::Keys(q) => self.browse(q, r).await,
        }
        false
    }

    fn observe(&self, family: usize, status: u16, elapsed: Duration) {
        self.ctx.metrics.observe(family, status, elapsed);
    }
}
