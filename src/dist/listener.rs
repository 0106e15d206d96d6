//! The dist listener (cluster.md §12). This node answers `/health` (the
//! probe target) and `/dist/drain`; the replication routes arrive with the
//! cluster issue and answer 404 until then.

use std::rc::Rc;
use std::time::Duration;

use crate::api::auth::Auth;
use crate::api::{draining_health, unauthorized};
use crate::control::ControlCtx;
use crate::http::conn::Service;
use crate::http::parse::{Head, Method};
use crate::http::response::{Hv, Responder, TEXT};

/// Dist bodies may be larger than client ones (cluster.md §12.1).
pub const MAX_DIST_BODY: u64 = 17 << 20;

pub struct DistService {
    pub ctl: Rc<ControlCtx>,
    auth: Auth,
}

pub enum Route {
    Health,
    Drain,
}

impl DistService {
    pub fn new(ctl: Rc<ControlCtx>) -> DistService {
        DistService {
            auth: Auth::new(ctl.node.config.auth_token.as_deref()),
            ctl,
        }
    }
}

impl Service for DistService {
    type Route<'b> = Route;

    fn max_body(&self) -> u64 {
        MAX_DIST_BODY
    }

    fn family(&self, head: &Head<'_>) -> usize {
        match head.path {
            b"/health" => 0,
            b"/dist/drain" => 1,
            _ => 2,
        }
    }

    fn prepare<'b>(&self, head: &Head<'b>, r: &mut Responder<'_>) -> Option<Route> {
        if !self.auth.allows(head.authorization, head.auth_count) {
            unauthorized(r);
            return None;
        }
        let (route, ok, allow) = match head.path {
            b"/health" => (
                Route::Health,
                matches!(head.method, Method::Get | Method::Head),
                "GET, HEAD",
            ),
            b"/dist/drain" => (Route::Drain, head.method == Method::Post, "POST"),
            _ => {
                r.error(404, "NOT_FOUND", "not found");
                return None;
            }
        };
        if !ok {
            r.error_with(
                405,
                "METHOD_NOT_ALLOWED",
                "method not allowed",
                &[("Allow", Hv::S(allow))],
            );
            return None;
        }
        Some(route)
    }

    async fn call<'b>(
        &self,
        route: Route,
        _head: &Head<'b>,
        _body: &[u8],
        r: &mut Responder<'_>,
    ) -> bool {
        match route {
            Route::Health if self.ctl.node.is_draining() => draining_health(r),
            Route::Health => r.send(200, Some(TEXT), &[], b"ok"),
            Route::Drain => {
                self.ctl.drain();
                r.json(200, &[], |b| b.extend_from_slice(b"{\"draining\":true}"));
            }
        }
        false
    }

    fn observe(&self, family: usize, status: u16, _elapsed: Duration) {
        let route = ["/health", "/dist/drain", "other"][family.min(2)];
        self.ctl.count_request("dist", route, status);
    }
}
