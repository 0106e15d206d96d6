//! `GET /v1/me` and `GET /v1/me/can` (api.md §10.2, §10.3; security.md §9):
//! the caller's identity as the gate resolved it.

use super::Route;
use crate::auth::{Principal, Scopes};
use crate::http::keys::{form_decode, query_param};
use crate::http::response::{json_str, Responder};

const CAPABILITIES: [(&str, Scopes); 3] = [
    ("cache.read", Scopes::READ),
    ("cache.write", Scopes::WRITE),
    ("cache.admin", Scopes::ADMIN),
];

/// `{"id":..,"scopes":[..],"capabilities":[..]}`, scopes in the order read, write, admin.
pub fn me(p: &Principal, r: &mut Responder<'_>) {
    r.json(200, &[], |b| {
        b.extend_from_slice(b"{\"id\":");
        json_str(b, &p.id);
        for (field, prefix) in [("scopes", ""), ("capabilities", "cache.")] {
            b.extend_from_slice(format!(",\"{field}\":[").as_bytes());
            for (i, n) in p.scopes.names().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                json_str(b, &format!("{prefix}{n}"));
            }
            b.push(b']');
        }
        b.push(b'}');
    });
}

/// The route-specific checks of `/v1/me/can`: the 400s, or the answer to give.
pub fn can(query: &[u8], p: &Principal, r: &mut Responder<'_>) -> Option<Route<'static>> {
    let raw = query_param(query, b"capability").unwrap_or_default();
    let cap = form_decode(raw).unwrap_or_else(|_| raw.to_vec());
    if cap.is_empty() {
        r.error(400, "BAD_REQUEST", "missing 'capability' query parameter");
        return None;
    }
    match CAPABILITIES
        .iter()
        .find(|(n, _)| n.as_bytes() == cap.as_slice())
    {
        Some(&(name, scope)) => Some(Route::MeCan(name, p.scopes.has(scope))),
        None => {
            let shown = String::from_utf8_lossy(&cap);
            r.error(400, "BAD_REQUEST", &format!("unknown capability '{shown}'"));
            None
        }
    }
}

/// `{"capability":"cache.write","allowed":true}`.
pub fn can_answer(cap: &str, allowed: bool, r: &mut Responder<'_>) {
    r.json(200, &[], |b| {
        b.extend_from_slice(b"{\"capability\":");
        json_str(b, cap);
        b.extend_from_slice(if allowed {
            b",\"allowed\":true}"
        } else {
            b",\"allowed\":false}"
        });
    });
}
