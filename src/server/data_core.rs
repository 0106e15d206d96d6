//! A data core (see the map in `lib.rs`): its task queues, its shard, the mesh to every other
//! core, active expiry in the background queue, and the client listener's accept loop.

use std::cell::RefCell;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::TcpListener;
use glommio::Shares;

use super::core_capacity;
use super::{warm_timer, Ready};
use crate::api::ClientService;
use crate::base::now_ms;
use crate::base::stop::StopSignal;
use crate::config::EvictionPolicy;
use crate::dist::ring::Ring;
use crate::metrics::{bump, CoreMetrics};
use crate::runtime::accept::{accept_loop, Spread};
use crate::runtime::dispatch::{Handled, Link};
use crate::runtime::msg::{Op, Reply};
use crate::runtime::{scan, CoreCtx, NodeShared};
use crate::store::{Hlc, Policy, Shard, ShardLimits};

/// Slab slots visited per active-expiry slice (ops.md §3.2).
const EXPIRY_SLICE: usize = 2048;

pub(super) fn policy(p: EvictionPolicy) -> Policy {
    match p {
        EvictionPolicy::Lru => Policy::Lru,
        EvictionPolicy::Clock => Policy::Clock,
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn data_core(
    id: usize,
    cpu: usize,
    node: Arc<NodeShared>,
    link: Link,
    fd: RawFd,
    members: Vec<String>,
    ready: crossbeam_channel::Sender<Ready>,
) {
    let ex = glommio::executor();
    let client_tq = ex.create_task_queue(
        Shares::Static(1000),
        glommio::Latency::Matters(Duration::from_millis(1)),
        "client",
    );
    let mesh_tq = ex.create_task_queue(
        Shares::Static(1000),
        glommio::Latency::Matters(Duration::from_millis(1)),
        "mesh",
    );
    let bg_tq = ex.create_task_queue(
        Shares::Static(50),
        glommio::Latency::NotImportant,
        "background",
    );
    // Scans (runtime::scan): yielding slices, below client and mesh work but not starved by it.
    let scan_tq = ex.create_task_queue(Shares::Static(250), glommio::Latency::NotImportant, "scan");
    let (dispatch, receivers) = link.open(id).await;
    let cfg = &node.config;
    let cores = cfg.cores;
    let capacity_items = core_capacity(cfg.capacity, cores, id);
    let limits = ShardLimits {
        max_items: capacity_items,
        max_bytes: cfg.max_memory.map(|m| m / cores as u64),
    };
    let shard = Shard::new(
        limits,
        policy(cfg.eviction),
        cfg.tombstone_ttl.as_millis() as u64,
    );
    let ctx = Rc::new(CoreCtx {
        id,
        cpu,
        cores,
        ring: RefCell::new(Arc::new(Ring::new(&members, cfg.replication))),
        shard: RefCell::new(shard),
        hlc: RefCell::new(Hlc::new()),
        metrics: CoreMetrics::default(),
        dispatch,
        listener_stop: StopSignal::new(),
        capacity_items,
        node: node.clone(),
    });
    let handler_ctx = ctx.clone();
    // Client sockets other cores hand to this one (runtime::balance), for the accept loop.
    let (adopt_tx, adopted) = glommio::channels::local_channel::new_unbounded();
    ctx.dispatch.spawn_receivers(
        receivers,
        Rc::new(move |op: Op| {
            if let Op::Adopt(fd) = op {
                // Once the listener stopped (shutdown), close it instead (dropping the
                // descriptor, or the channel's refusal, closes it).
                if handler_ctx.listener_stop.is_set() || adopt_tx.try_send(fd).is_err() {
                    handler_ctx.node.client_loads.closed(handler_ctx.id);
                }
                return Handled::Now(Reply::Count(0));
            }
            if scan::is_scan(&op) {
                // Long scans run in their own queue, in slices (runtime::scan).
                let task = glommio::spawn_local_into(scan::scan(handler_ctx.clone(), op), scan_tq)
                    .expect("spawn scan");
                Handled::Later(Box::pin(task))
            } else {
                Handled::Now(handler_ctx.execute(op))
            }
        }),
        mesh_tq,
    );
    warm_timer();
    let exp_ctx = ctx.clone();
    glommio::spawn_local_into(expiry_loop(exp_ctx), bg_tq)
        .expect("spawn expiry")
        .detach();
    // SAFETY: fd is a listening socket bound on the main thread for this core.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    let svc = Rc::new(ClientService::new(ctx.clone()));
    let cap = (cfg.max_conns as u64).div_ceil(cores as u64);
    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    let spread = (cores > 1).then(|| Spread {
        loads: node.client_loads.clone(),
        me: id,
        adopted,
        hand_off: Rc::new(move |to, fd| {
            let ctx = c3.clone();
            glommio::spawn_local_into(
                async move {
                    ctx.dispatch.call(to, Op::Adopt(fd)).await;
                },
                mesh_tq,
            )
            .expect("spawn hand-off")
            .detach();
        }),
    });
    let _ = ready.send(Ready::Ok);
    accept_loop(
        listener,
        svc,
        ctx.listener_stop.clone(),
        cap,
        move |d| {
            let c = &c1.metrics.connections;
            c.set((c.get() as i64 + d) as u64);
            c.get()
        },
        move || bump(&c2.metrics.rejected, 1),
        cfg.tls
            .client
            .clone()
            .map(|s| Rc::new(crate::tls::Acceptor::new(s))),
        client_tq,
        spread,
    )
    .await;
    // The listener is closed; keep serving mesh messages and in-flight
    // connections until the process exits.
    std::future::pending::<()>().await;
}

/// Active expiry (ops.md §3.2): every tick, visit enough log positions that a
/// full pass completes within ~1.5 s (~3 s when half the log is dead bytes,
/// which the sweep visits too), in slices that yield between them.
async fn expiry_loop(ctx: Rc<CoreCtx>) {
    loop {
        glommio::timer::sleep(crate::runtime::EXPIRATION_INTERVAL).await;
        let len = ctx.shard.borrow().len();
        let mut budget = (len / 15).max(EXPIRY_SLICE);
        while budget > 0 {
            let step = budget.min(EXPIRY_SLICE);
            ctx.shard.borrow_mut().expire_step(now_ms(), step);
            budget -= step;
            glommio::yield_if_needed().await;
        }
    }
}
