//! The client listener (api.md): routing, checks before the body, handlers.
//!
//! One [`ClientService`] per data core. `prepare` settles auth, route, method
//! and the route-specific checks before any body byte is read (so `Expect:
//! 100-continue` gets its final answer early); `call` runs the handler.

pub mod auth;
mod batch;
mod cache;
pub mod envelope;
pub mod keys;
pub mod ttl;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::http::conn::Service;
use crate::http::parse::{Head, Method};
use crate::http::response::{Hv, Responder};
use crate::metrics::*;
use crate::node::CoreCtx;
use auth::Auth;
use keys::{decode_path_key, MAX_KEY};

pub const OPENAPI: &str = include_str!("openapi.yaml");

/// Every (path pattern, methods) the router serves; the OpenAPI document is
/// checked against this list by a test.
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["get", "head"]),
    ("/v1/openapi.yaml", &["get", "head"]),
    ("/v1/cache/{key}", &["get", "head", "put", "delete"]),
    ("/v1/cache/batch/get", &["post"]),
    ("/v1/cache/batch/put", &["post"]),
    ("/v1/cache/batch/delete", &["post"]),
    ("/v1/owners/{key}", &["get", "head"]),
    ("/v1/cache/keys", &["get", "head"]),
    ("/v1/me", &["get", "head"]),
    ("/v1/me/can", &["get", "head"]),
];

pub enum Route<'b> {
    Healthz,
    OpenApi,
    Get(&'b [u8]),
    Head(&'b [u8]),
    Put(&'b [u8], u64),
    Delete(&'b [u8]),
    BatchGet,
    BatchPut,
    BatchDelete,
    Owners(&'b [u8]),
}

pub struct ClientService {
    pub ctx: Rc<CoreCtx>,
    auth: Auth,
    max_body: u64,
    /// Reused owner-index buffer, so owner lists cost no allocation.
    owners_buf: RefCell<Vec<u32>>,
}

const ALLOW_KEY: &str = "GET, HEAD, PUT, DELETE";
const ALLOW_GET: &str = "GET, HEAD";
const ALLOW_POST: &str = "POST";

fn method_not_allowed(r: &mut Responder<'_>, allow: &str) {
    r.error_with(
        405,
        "METHOD_NOT_ALLOWED",
        "method not allowed",
        &[("Allow", Hv::S(allow))],
    );
}

pub fn unauthorized(r: &mut Responder<'_>) {
    r.error_with(
        401,
        "UNAUTHORIZED",
        "unauthorized",
        &[("WWW-Authenticate", Hv::S("Bearer"))],
    );
}

/// 503 `{"status":"draining"}` of the readiness routes while draining.
pub fn draining_health(r: &mut Responder<'_>) {
    r.json(503, &[], |b| {
        b.extend_from_slice(b"{\"status\":\"draining\"}")
    });
}

pub fn draining(r: &mut Responder<'_>) {
    r.error(503, "DRAINING", "node is draining; redirect to a peer");
}

fn is_get(m: Method) -> bool {
    matches!(m, Method::Get | Method::Head)
}

impl ClientService {
    pub fn new(ctx: Rc<CoreCtx>) -> ClientService {
        let cfg = &ctx.node.config;
        ClientService {
            auth: Auth::new(cfg.auth_token.as_deref()),
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
        if !matches!(m, Method::Get | Method::Head | Method::Put | Method::Delete) {
            method_not_allowed(r, ALLOW_KEY);
            return None;
        }
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

    /// Owners of a key hash as ids, primary first.
    pub fn with_owners<T>(&self, hash: u64, f: impl FnOnce(&[&str]) -> T) -> T {
        let ring = self.ctx.ring.borrow().clone();
        let mut idx = self.owners_buf.borrow_mut();
        ring.owners_into(hash, &mut idx);
        let mut names: [&str; 16] = [""; 16];
        let n = idx.len().min(16);
        for (slot, &i) in names.iter_mut().zip(idx.iter()) {
            *slot = ring.member(i);
        }
        f(&names[..n])
    }
}

impl Service for ClientService {
    type Route<'b> = Route<'b>;

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

    fn prepare<'b>(&self, head: &Head<'b>, r: &mut Responder<'_>) -> Option<Route<'b>> {
        let path = head.path;
        let m = head.method;
        if path == b"/healthz" || path == b"/v1/openapi.yaml" {
            if !is_get(m) {
                if !self.auth.allows(head.authorization, head.auth_count) {
                    unauthorized(r);
                } else {
                    method_not_allowed(r, ALLOW_GET);
                }
                return None;
            }
            return Some(if path == b"/healthz" {
                Route::Healthz
            } else {
                Route::OpenApi
            });
        }
        if !self.auth.allows(head.authorization, head.auth_count) {
            unauthorized(r);
            return None;
        }
        if let Some(rest) = path.strip_prefix(b"/v1/cache/") {
            let batch = match rest {
                b"batch/get" => Some(Route::BatchGet),
                b"batch/put" => Some(Route::BatchPut),
                b"batch/delete" => Some(Route::BatchDelete),
                _ => None,
            };
            if let Some(route) = batch {
                if m != Method::Post {
                    method_not_allowed(r, ALLOW_POST);
                    return None;
                }
                if !matches!(route, Route::BatchGet) && self.ctx.node.is_draining() {
                    draining(r);
                    return None;
                }
                return Some(route);
            }
            if rest == b"keys" && is_get(m) {
                planned(r);
                return None;
            }
            if !rest.contains(&b'/') {
                return self.key_route(head, rest, r);
            }
        } else if let Some(seg) = path.strip_prefix(b"/v1/owners/") {
            if !seg.contains(&b'/') {
                if !is_get(m) {
                    method_not_allowed(r, ALLOW_GET);
                    return None;
                }
                return Self::check_key(seg, r).then_some(Route::Owners(seg));
            }
        } else if path == b"/v1/me" || path == b"/v1/me/can" {
            if is_get(m) {
                planned(r);
            } else {
                method_not_allowed(r, ALLOW_GET);
            }
            return None;
        }
        r.error(404, "NOT_FOUND", "not found");
        None
    }

    async fn call<'b>(
        &self,
        route: Route<'b>,
        head: &Head<'b>,
        body: &[u8],
        r: &mut Responder<'_>,
    ) -> bool {
        match route {
            Route::Healthz => r.send(200, Some(crate::http::response::TEXT), &[], b"ok"),
            Route::OpenApi => r.send(200, Some("application/yaml"), &[], OPENAPI.as_bytes()),
            Route::Get(seg) => self.get(seg, head.accept_json, false, r).await,
            Route::Head(seg) => self.get(seg, false, true, r).await,
            Route::Put(seg, ttl) => self.put(seg, ttl, body, r).await,
            Route::Delete(seg) => self.delete(seg, r).await,
            Route::Owners(seg) => self.owners(seg, r),
            Route::BatchGet => self.batch_get(body, r).await,
            Route::BatchPut => self.batch_put(body, r).await,
            Route::BatchDelete => self.batch_delete(body, r).await,
        }
        false
    }

    fn observe(&self, family: usize, status: u16, elapsed: Duration) {
        self.ctx.metrics.observe(family, status, elapsed);
    }
}

fn planned(r: &mut Responder<'_>) {
    r.error(404, "NOT_FOUND", "not available in this version");
}
