//! The management listener (ops.md §1), served by the control core.

mod events;
mod views;

use std::rc::Rc;
use std::time::Duration;

use crate::auth::gate::{Gate, Listener};
use crate::auth::resolve::Authenticator;
use crate::auth::{ConnFacts, Scopes};
use crate::control::ControlCtx;
use crate::http::parse::{Head, Method};
use crate::http::response::{Responder, TEXT};
use crate::service::answers::{draining_health, forbidden, identify, method_not_allowed};
use crate::service::conn::Service;

/// Every route: path, method (`GET` routes also answer HEAD).
pub const ROUTES: &[(&str, Method)] = &[
    ("/health", Method::Get),
    ("/stats", Method::Get),
    ("/config", Method::Get),
    ("/dist/metrics", Method::Get),
    ("/dist/owners", Method::Get),
    ("/cluster/members", Method::Get),
    ("/cluster/ring", Method::Get),
    ("/cluster/heartbeat", Method::Get),
    ("/cluster/events", Method::Get),
    ("/metrics", Method::Get),
    ("/dist/drain", Method::Post),
    ("/evict", Method::Post),
    ("/trigger-expiration", Method::Post),
    ("/clear", Method::Post),
];
const OTHER: usize = ROUTES.len();

pub struct MgmtService {
    pub ctl: Rc<ControlCtx>,
    /// Subscriptions made by `call` before the snapshots, taken by `stream`.
    /// Any queued one serves any stream: they are all equivalent.
    pending_events: std::cell::RefCell<
        std::collections::VecDeque<glommio::channels::local_channel::LocalReceiver<()>>,
    >,
    gate: Gate,
    max_body: u64,
}

impl MgmtService {
    pub fn new(ctl: Rc<ControlCtx>) -> MgmtService {
        let cfg = &ctl.node.config;
        MgmtService {
            gate: Gate::new(
                Authenticator::new(
                    cfg.policy.as_deref(),
                    cfg.auth_token.as_deref(),
                    cfg.oidc.is_some(),
                ),
                Listener::Mgmt,
                cfg.oidc.clone(),
            ),
            max_body: cfg.max_body,
            pending_events: Default::default(),
            ctl,
        }
    }
}

impl Service for MgmtService {
    type Route<'b> = usize;
    type Ahead = ();

    fn max_body(&self) -> u64 {
        self.max_body
    }

    fn family(&self, head: &Head<'_>) -> usize {
        ROUTES
            .iter()
            .position(|(p, _)| p.as_bytes() == head.path)
            .unwrap_or(OTHER)
    }

    fn gate(&self) -> Option<&Gate> {
        Some(&self.gate)
    }

    fn prepare<'b>(
        &self,
        head: &Head<'b>,
        conn: ConnFacts<'_>,
        r: &mut Responder<'_>,
    ) -> Option<usize> {
        let route = self.family(head);
        let get = matches!(head.method, Method::Get | Method::Head);
        let exempt = route == 0 && get;
        // Order (security.md §6): 401 → 404 → 405 → 403.
        let who = if exempt {
            None
        } else {
            Some(identify(&self.gate, head, conn, r)?)
        };
        if route == OTHER {
            r.error(404, "NOT_FOUND", "not found");
            return None;
        }
        let ok = match ROUTES[route].1 {
            Method::Get => get,
            m => head.method == m,
        };
        if !ok {
            let allow = if ROUTES[route].1 == Method::Get {
                "GET, HEAD"
            } else {
                "POST"
            };
            method_not_allowed(r, allow);
            return None;
        }
        // GET/HEAD routes read, POST routes are administrative (security.md §8).
        let (need, name) = if get {
            (Scopes::READ, "read")
        } else {
            (Scopes::ADMIN, "admin")
        };
        if who.as_ref().is_some_and(|p| !p.scopes.has(need)) {
            forbidden(r, name);
            return None;
        }
        Some(route)
    }

    async fn call<'b>(
        &self,
        route: usize,
        head: &Head<'b>,
        _body: &[u8],
        r: &mut Responder<'_>,
        _ahead: &mut (),
    ) -> bool {
        let ctl = &self.ctl;
        match ROUTES[route].0 {
            "/health" => {
                if ctl.node.is_draining() {
                    draining_health(r);
                } else if !ctl.joined.get() {
                    // Not ready before the join answered: the ring is only the seed list, so
                    // a read through this node could miss a key its real owners hold.
                    r.json(503, &[], |b| {
                        b.extend_from_slice(b"{\"status\":\"joining\"}")
                    });
                } else {
                    r.send(200, Some(TEXT), &[], b"ok");
                }
            }
            "/stats" => views::stats(ctl, r).await,
            "/config" => views::config(ctl, r).await,
            "/dist/metrics" => views::dist_metrics(ctl, r).await,
            "/dist/owners" => views::owners(ctl, head.query, r),
            "/cluster/members" => r.json(200, &[], |b| views::members_json(ctl, b)),
            "/cluster/ring" => views::ring(ctl, r),
            "/cluster/heartbeat" => r.json(200, &[], |b| views::heartbeat_json(ctl, b)),
            "/cluster/events" => {
                if head.method == Method::Head {
                    r.send(200, Some("text/event-stream"), &[], b"");
                    return false;
                }
                self.pending_events
                    .borrow_mut()
                    .push_back(events::subscribe(ctl));
                events::start(ctl, head.minor == 0, r);
                return true;
            }
            "/metrics" => views::prometheus(ctl, r).await,
            "/dist/drain" => {
                ctl.drain();
                r.json(200, &[], |b| b.extend_from_slice(b"{\"draining\":true}"));
            }
            "/evict" => {
                let n = ctl.sum_counts(|| crate::runtime::msg::Op::Evict).await;
                r.json(202, &[], |b| {
                    b.extend_from_slice(format!("{{\"evicted\":{n}}}").as_bytes())
                });
            }
            "/trigger-expiration" => {
                let n = ctl.sum_counts(|| crate::runtime::msg::Op::Expire).await;
                r.json(202, &[], |b| {
                    b.extend_from_slice(format!("{{\"expired\":{n}}}").as_bytes())
                });
            }
            "/clear" => {
                let n = ctl.sum_counts(|| crate::runtime::msg::Op::Clear).await;
                r.json(200, &[], |b| {
                    b.extend_from_slice(format!("{{\"cleared\":{n}}}").as_bytes())
                });
            }
            _ => r.error(404, "NOT_FOUND", "not found"),
        }
        false
    }

    async fn stream(&self, stream: &mut crate::tls::stream::Stream, http10: bool) {
        let Some(rx) = self.pending_events.borrow_mut().pop_front() else {
            return;
        };
        events::run(&self.ctl, stream, http10, rx).await;
    }

    fn observe(&self, family: usize, status: u16, _elapsed: Duration) {
        let route = ROUTES.get(family).map_or("other", |r| r.0);
        self.ctl.listeners.count_request("mgmt", route, status);
    }
}
