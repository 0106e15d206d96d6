//! The refusals every listener answers the same way (api.md §1.1, §9;
//! security.md §6): one place, so the client, management and dist listeners
//! cannot drift apart.

use crate::auth::gate::Gate;
use crate::auth::{ConnFacts, Who};
use crate::http::parse::Head;
use crate::http::response::{Hv, Responder};

/// The caller's identity, or None after writing the 401.
pub fn identify<'g>(
    gate: &'g Gate,
    head: &Head<'_>,
    conn: ConnFacts<'_>,
    r: &mut Responder<'_>,
) -> Option<Who<'g>> {
    let who = gate.identify(head.authorization, head.auth_count, conn);
    if who.is_none() {
        unauthorized(r, gate.offers_basic());
    }
    who
}

/// 405 with the `Allow` list.
pub fn method_not_allowed(r: &mut Responder<'_>, allow: &str) {
    r.error_with(
        405,
        "METHOD_NOT_ALLOWED",
        "method not allowed",
        &[("Allow", Hv::S(allow))],
    );
}

/// The 401 of every listener; with `basic` (the policy has users) Basic is
/// offered as a second `WWW-Authenticate` field.
pub fn unauthorized(r: &mut Responder<'_>, basic: bool) {
    let bearer = ("WWW-Authenticate", Hv::S("Bearer"));
    let realm = (
        "WWW-Authenticate",
        Hv::S("Basic realm=\"hypercache\", charset=\"UTF-8\""),
    );
    let both = [bearer, realm];
    let fields: &[(&str, Hv<'_>)] = if basic { &both } else { &both[..1] };
    r.error_with(401, "UNAUTHORIZED", "unauthorized", fields);
}

/// 403 for an identity without the route's scope (no `WWW-Authenticate`).
pub fn forbidden(r: &mut Responder<'_>, scope: &str) {
    let msg = format!("forbidden: requires scope {scope}");
    r.error(403, "FORBIDDEN", &msg);
}

/// 503 `{"status":"draining"}` of the readiness routes while draining.
pub fn draining_health(r: &mut Responder<'_>) {
    r.json(503, &[], |b| {
        b.extend_from_slice(b"{\"status\":\"draining\"}")
    });
}

/// 503 for a write while draining.
pub fn draining(r: &mut Responder<'_>) {
    r.error(503, "DRAINING", "node is draining; redirect to a peer");
}
