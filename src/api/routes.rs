//! The client listener's route table (api.md §4, §8, §10; security.md §8):
//! what the path and method alone decide, and the scope each route needs. Pure,
//! so the OpenAPI document and the scope table are checked against the router.

use crate::auth::{Principal, Scopes};
use crate::http::parse::Method;

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
    ("/v1/cache/keys", &["get", "head", "put", "delete"]),
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
    Me(Principal),
    /// The capability asked about and whether the caller has it.
    MeCan(&'static str, bool),
    /// The cluster key browser (api.md §10.1).
    Keys(super::browse::BrowseQuery),
}

const ALLOW_KEY: &str = "GET, HEAD, PUT, DELETE";
const ALLOW_GET: &str = "GET, HEAD";
const ALLOW_POST: &str = "POST";

fn is_get(m: Method) -> bool {
    matches!(m, Method::Get | Method::Head)
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
    Me,
    MeCan,
    /// `GET`/`HEAD /v1/cache/keys`, the key browser.
    Keys,
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
        b"/v1/me" => return only_get(Resolved::Me),
        b"/v1/me/can" => return only_get(Resolved::MeCan),
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
            return Resolved::Keys;
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

impl Resolved<'_> {
    /// The scope the route needs (security.md §8); None for the exempt
    /// routes, which check no credentials. Only meaningful for a route that
    /// resolved (404 and 405 come before the scope check).
    pub fn scope(&self, m: Method) -> Option<Scopes> {
        match self {
            Resolved::Healthz | Resolved::OpenApi => None,
            Resolved::Key(_) if matches!(m, Method::Put | Method::Delete) => Some(Scopes::WRITE),
            Resolved::Batch(Route::BatchPut | Route::BatchDelete) => Some(Scopes::WRITE),
            _ => Some(Scopes::READ),
        }
    }
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
    use crate::api::OPENAPI;
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
