//! The client listener (api.md): routing, checks before the body, handlers.
//!
//! One [`ClientService`] per data core. `prepare` settles auth, route, method
//! and the route-specific checks before any body byte is read (so `Expect:
//! 100-continue` gets its final answer early); `call` runs the handler.

pub mod auth;
mod batch;
mod cache;
mod coord;
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

/// 405 with the `Allow` list (every listener).
pub fn method_not_allowed(r: &mut Responder<'_>, allow: &str) {
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
        let m = head.method;
        let resolved = resolve(head.path, m);
        let exempt = matches!(resolved, Resolved::Healthz | Resolved::OpenApi);
        if !exempt && !self.auth.allows(head.authorization, head.auth_count) {
            unauthorized(r);
            return None;
        }
        match resolved {
            Resolved::Healthz => Some(Route::Healthz),
            Resolved::OpenApi => Some(Route::OpenApi),
            Resolved::NotFound => {
                r.error(404, "NOT_FOUND", "not found");
                None
            }
            Resolved::Planned => {
                planned(r);
                None
            }
            Resolved::NotAllowed(allow) => {
                method_not_allowed(r, allow);
                None
            }
            Resolved::Key(seg) => self.key_route(head, seg, r),
            Resolved::Owners(seg) => Self::check_key(seg, r).then_some(Route::Owners(seg)),
            Resolved::Batch(route) => {
                if !matches!(route, Route::BatchGet) && self.ctx.node.is_draining() {
                    draining(r);
                    return None;
                }
                Some(route)
            }
        }
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

/// What the path and method alone decide (api.md §4, §8): pure, so the
/// OpenAPI document can be checked against the real router.
pub enum Resolved<'b> {
    Healthz,
    OpenApi,
    /// `/v1/cache/{key}` with GET, HEAD, PUT or DELETE.
    Key(&'b [u8]),
    Owners(&'b [u8]),
    Batch(Route<'b>),
    /// A reserved route of api.md §10 (404 "not available in this version").
    Planned,
    NotAllowed(&'static str),
    NotFound,
}

pub fn resolve(path: &[u8], m: Method) -> Resolved<'_> {
    let get = is_get(m);
    let only_get = |r: Resolved<'static>| {
        if get {
            r
        } else {
            Resolved::NotAllowed(ALLOW_GET)
        }
    };
    match path {
        b"/healthz" => return only_get(Resolved::Healthz),
        b"/v1/openapi.yaml" => return only_get(Resolved::OpenApi),
        b"/v1/me" | b"/v1/me/can" => return only_get(Resolved::Planned),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix(b"/v1/cache/") {
        let batch = match rest {
            b"batch/get" => Some(Route::BatchGet),
            b"batch/put" => Some(Route::BatchPut),
            b"batch/delete" => Some(Route::BatchDelete),
            _ => None,
        };
        if let Some(route) = batch {
            return if m == Method::Post {
                Resolved::Batch(route)
            } else {
                Resolved::NotAllowed(ALLOW_POST)
            };
        }
        if rest.contains(&b'/') {
            return Resolved::NotFound;
        }
        if !matches!(m, Method::Get | Method::Head | Method::Put | Method::Delete) {
            return Resolved::NotAllowed(ALLOW_KEY);
        }
        if rest == b"keys" && get {
            return Resolved::Planned;
        }
        return Resolved::Key(rest);
    }
    if let Some(seg) = path.strip_prefix(b"/v1/owners/") {
        if !seg.contains(&b'/') {
            return if get {
                Resolved::Owners(seg)
            } else {
                Resolved::NotAllowed(ALLOW_GET)
            };
        }
    }
    Resolved::NotFound
}

fn planned(r: &mut Responder<'_>) {
    r.error(404, "NOT_FOUND", "not available in this version");
}

/// Error codes of api.md §8.
pub const ERROR_CODES: &[&str] = &[
    "BAD_REQUEST",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "TOO_LARGE",
    "HEADERS_TOO_LARGE",
    "INTERNAL",
    "DRAINING",
    "QUORUM_FAILED",
    "NO_OWNERS",
];

#[cfg(test)]
mod openapi_sync {
    use super::*;
    use std::collections::BTreeSet;

    /// (path, method) pairs under `paths:` in the OpenAPI document.
    fn documented() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut in_paths = false;
        let mut path = String::new();
        for line in OPENAPI.lines() {
            if !line.starts_with(' ') && !line.is_empty() {
                in_paths = line.trim_end() == "paths:";
                continue;
            }
            if !in_paths {
                continue;
            }
            if let Some(p) = line.strip_prefix("  /") {
                path = format!("/{}", p.trim_end().trim_end_matches(':'));
            } else if let Some(m) = line.strip_prefix("    ") {
                let m = m.trim_end().trim_end_matches(':');
                if ["get", "head", "put", "post", "delete", "patch", "options"].contains(&m) {
                    out.insert((path.clone(), m.to_string()));
                }
            }
        }
        out
    }

    fn method(m: &str) -> Method {
        match m {
            "get" => Method::Get,
            "head" => Method::Head,
            "put" => Method::Put,
            "post" => Method::Post,
            "delete" => Method::Delete,
            _ => Method::Other,
        }
    }

    #[test]
    fn every_route_is_documented_and_vice_versa() {
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .flat_map(|(p, ms)| ms.iter().map(move |m| (p.to_string(), m.to_string())))
            .collect();
        assert_eq!(routed, documented());
    }

    /// ROUTES is what the router really does: every listed pair resolves to a
    /// route, every other method on those paths is 405, and unknown paths 404.
    #[test]
    fn routes_table_matches_router() {
        for (p, ms) in ROUTES {
            let concrete = p.replace("{key}", "some-key");
            for m in ["get", "head", "put", "post", "delete", "patch"] {
                let r = resolve(concrete.as_bytes(), method(m));
                let served = !matches!(r, Resolved::NotAllowed(_) | Resolved::NotFound);
                let listed = ms.contains(&m);
                // PUT/DELETE on /v1/cache/keys address the key named "keys".
                let key_alias = *p == "/v1/cache/keys" && (m == "put" || m == "delete");
                assert_eq!(served, listed || key_alias, "{m} {p}");
            }
        }
        assert!(matches!(
            resolve(b"/v1/cache/a/b", Method::Get),
            Resolved::NotFound
        ));
        assert!(matches!(
            resolve(b"/health", Method::Get),
            Resolved::NotFound
        ));
        assert!(matches!(
            resolve(b"/V1/cache/x", Method::Get),
            Resolved::NotFound
        ));
    }

    #[test]
    fn error_codes_match_the_document() {
        let doc = OPENAPI;
        let start = doc.find("    ErrorCode:").expect("ErrorCode schema");
        let codes: Vec<&str> = doc[start..]
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("enum:"))
            .skip(1)
            .take_while(|l| l.trim_start().starts_with("- "))
            .map(|l| l.trim_start().trim_start_matches("- ").trim())
            .collect();
        assert_eq!(codes, ERROR_CODES);
    }
}
