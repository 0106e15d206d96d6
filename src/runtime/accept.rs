//! Accept loop: one per listener per core. Enforces the connection cap and
//! spawns one task per connection into the listener's task queue; on a TLS
//! listener that task starts with the handshake, so a slow handshake never
//! holds up the accept loop.

use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpListener;
use glommio::TaskQueueHandle;

use super::stop::StopSignal;
use crate::http::conn::{serve, Service};
use crate::tls::Acceptor;

// One call site per listener; the arguments are that listener's settings.
#[allow(clippy::too_many_arguments)]
pub async fn accept_loop<S: Service + 'static>(
    listener: TcpListener,
    svc: Rc<S>,
    stop: StopSignal,
    cap: u64,
    open: impl Fn(i64) -> u64 + 'static,
    rejected: impl Fn() + 'static,
    tls: Option<Rc<Acceptor>>,
    tq: TaskQueueHandle,
) {
    let open = Rc::new(open);
    let watch = Rc::new(crate::http::watch::Watch::default());
    glommio::spawn_local_into(watch.clone().sweeper(stop.clone()), tq)
        .expect("spawn connection sweeper")
        .detach();
    loop {
        let accepted = match stop.race(listener.accept()).await {
            None => break,
            Some(a) => a,
        };
        let stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                log::warn!("accept failed: {e}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if open(0) >= cap {
            rejected();
            drop(stream);
            continue;
        }
        open(1);
        let svc = svc.clone();
        let stop = stop.clone();
        let open = open.clone();
        let watch = watch.clone();
        let tls = tls.clone();
        glommio::spawn_local_into(
            async move {
                serve(&*svc, stream, tls.as_deref(), &stop, &watch).await;
                open(-1);
            },
            tq,
        )
        .expect("spawn connection task")
        .detach();
    }
    drop(listener);
}
