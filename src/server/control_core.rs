//! The control core (see the map in `lib.rs`): the management and dist listeners, the cluster
//! loops (join, probe, gossip, anti-entropy, rebalance, hint replay, membership timers), the
//! coordinator side of replicated writes and remote reads, and the shutdown order of ops.md §6.

use std::cell::Cell;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::TcpListener;
use glommio::Shares;

use super::CONTROL_MAX_CONNS;
use super::{warm_timer, Ready};
use crate::control::listener::DistService;
use crate::control::ControlCtx;
use crate::dist::membership::Membership;
use crate::metrics::bump;
use crate::mgmt::MgmtService;
use crate::runtime::accept::accept_loop;
use crate::runtime::dispatch::{Handled, Link};
use crate::runtime::msg::{Op, Reply};
use crate::runtime::NodeShared;

pub(super) async fn control_core(
    node: Arc<NodeShared>,
    link: Link,
    mgmt_fd: RawFd,
    dist_fd: RawFd,
    membership: Membership,
    ready: crossbeam_channel::Sender<Ready>,
) {
    let ex = glommio::executor();
    let mgmt_tq = ex.create_task_queue(
        Shares::Static(500),
        glommio::Latency::Matters(Duration::from_millis(5)),
        "mgmt",
    );
    let peer_tq = ex.create_task_queue(
        Shares::Static(1000),
        glommio::Latency::Matters(Duration::from_millis(1)),
        "peer",
    );
    let bg_tq = ex.create_task_queue(
        Shares::Static(100),
        glommio::Latency::NotImportant,
        "background",
    );
    let (dispatch, receivers) = link.open(node.config.cores).await;
    let cfg = &node.config;
    let ctl = Rc::new(ControlCtx::new(node.clone(), dispatch, membership));
    for seed in &cfg.seeds {
        if let Some(id) = &seed.id {
            ctl.peers.learn_name(&seed.addr.to_string(), id);
        }
    }
    let job_ctl = ctl.clone();
    ctl.dispatch.spawn_receivers(
        receivers,
        Rc::new(move |op: Op| {
            let ctl = job_ctl.clone();
            match op {
                Op::Replicate(jobs) => Handled::Later(Box::pin(async move {
                    Reply::WriteDone(ctl.replicate(jobs).await)
                })),
                Op::RemoteRead(jobs) => Handled::Later(Box::pin(async move {
                    Reply::ReadDone(ctl.remote_read(jobs).await)
                })),
                Op::BrowseKeys { q, pattern, max } => Handled::Later(Box::pin(async move {
                    Reply::Browse(ctl.browse_keys(q, pattern, max).await)
                })),
                _ => Handled::Now(Reply::Count(0)),
            }
        }),
        peer_tq,
    );
    warm_timer();
    // SAFETY: fds are listening sockets bound on the main thread.
    let mgmt = unsafe { TcpListener::from_raw_fd(mgmt_fd) };
    let dist = unsafe { TcpListener::from_raw_fd(dist_fd) };
    let (a, b, c, d) = (ctl.clone(), ctl.clone(), ctl.clone(), ctl.clone());
    glommio::spawn_local_into(
        accept_loop(
            mgmt,
            Rc::new(MgmtService::new(ctl.clone())),
            ctl.stop.clone(),
            CONTROL_MAX_CONNS,
            move |x| adjust(&a.listeners.mgmt_conns, x),
            move || bump(&b.listeners.mgmt_rejected, 1),
            acceptor(&cfg.tls.mgmt),
            mgmt_tq,
            None,
        ),
        mgmt_tq,
    )
    .expect("spawn mgmt listener")
    .detach();
    glommio::spawn_local_into(
        accept_loop(
            dist,
            Rc::new(DistService::new(ctl.clone())),
            ctl.stop.clone(),
            CONTROL_MAX_CONNS,
            move |x| adjust(&c.listeners.dist_conns, x),
            move || bump(&d.listeners.dist_rejected, 1),
            acceptor(&cfg.tls.dist),
            peer_tq,
            None,
        ),
        peer_tq,
    )
    .expect("spawn dist listener")
    .detach();
    glommio::spawn_local_into(ctl.clone().join(), peer_tq)
        .expect("spawn join")
        .detach();
    glommio::spawn_local_into(ctl.clone().probe_loop(), peer_tq)
        .expect("spawn probe loop")
        .detach();
    glommio::spawn_local_into(ctl.clone().gossip_loop(), peer_tq)
        .expect("spawn gossip loop")
        .detach();
    glommio::spawn_local_into(ctl.clone().ae_loop(), bg_tq)
        .expect("spawn anti-entropy")
        .detach();
    glommio::spawn_local_into(ctl.clone().rebalance_loop(), bg_tq)
        .expect("spawn rebalance")
        .detach();
    glommio::spawn_local_into(ctl.clone().replay_loop(), peer_tq)
        .expect("spawn hint replay")
        .detach();
    glommio::spawn_local_into(ctl.clone().tick_loop(), peer_tq)
        .expect("spawn membership timers")
        .detach();
    let _ = ready.send(Ready::Ok);
    // Wait for the first signal (the signal thread sets the flag).
    while !node.shutdown_requested.load(Ordering::Acquire) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
    shutdown(&ctl).await;
    log::logger().flush();
    std::process::exit(0);
}

fn acceptor(slot: &Option<std::sync::Arc<crate::tls::Slot>>) -> Option<Rc<crate::tls::Acceptor>> {
    slot.clone().map(|s| Rc::new(crate::tls::Acceptor::new(s)))
}

fn adjust(c: &Cell<u64>, d: i64) -> u64 {
    c.set((c.get() as i64 + d) as u64);
    c.get()
}

/// The shutdown order of ops.md §6 (single node: steps 4 and 5 have nothing
/// to hand off yet).
async fn shutdown(ctl: &Rc<ControlCtx>) {
    let cfg = &ctl.node.config;
    let start = Instant::now();
    let deadline = start + cfg.shutdown_timeout;
    // Steps 4-6 keep a reserve of the deadline: a quarter, at most 5 s.
    let reserve = (cfg.shutdown_timeout / 4).min(Duration::from_secs(5));
    log::info!("shutdown step 1: drain");
    ctl.drain();
    log::info!("shutdown step 2: drain grace {:?}", cfg.drain_grace);
    glommio::timer::sleep(cfg.drain_grace).await;
    log::info!("shutdown step 3: closing the client listener on every core");
    ctl.sum_counts(|| Op::CloseListener).await;
    let step3_end = deadline.checked_sub(reserve).unwrap_or(deadline);
    loop {
        let open = ctl.sum_counts(|| Op::Connections).await;
        if open == 0 {
            break;
        }
        if Instant::now() >= step3_end {
            log::warn!(
                "shutdown deadline share reached with {open} client connections open; closing them"
            );
            break;
        }
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    log::info!("shutdown step 4: delivering pending hints");
    ctl.flush_hints(left.min(Duration::from_secs(5))).await;
    // Hand-off (cluster.md §11): the drained node's ring excludes itself, so
    // rebalance pushes every entry to its owners; wait for it to finish,
    // keeping a second for step 5.
    let handoff_end = deadline
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(deadline);
    if !ctl.rebalance_idle() {
        log::info!("shutdown step 4: handing off entries to their owners");
    }
    while !ctl.rebalance_idle() && Instant::now() < handoff_end {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
    if !ctl.rebalance_idle() {
        log::warn!(
            "shutdown deadline: hand-off not complete; the remaining owners keep the other copies"
        );
    }
    log::info!("shutdown step 5: announcing left to the peers");
    ctl.announce_left().await;
    log::info!("shutdown step 6: stopping background loops, closing management and dist listeners");
    ctl.stop.fire();
    glommio::timer::sleep(Duration::from_millis(10)).await;
    log::info!("shutdown step 7: exit 0 after {:?}", start.elapsed());
}
