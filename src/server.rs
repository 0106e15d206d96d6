//! Start-up and shutdown (ops.md §4, §6).
//!
//! `run` performs the start-up sequence on the calling thread: pre-flight
//! checks, binding every listener, starting one pinned executor per data
//! core plus the control core, joining them into one channel mesh. It
//! returns once every core is serving, with the bound addresses; the control
//! core then watches for the shutdown request and runs the shutdown order:
//! drain → grace → close client listeners (in-flight requests finish) →
//! [cluster hand-off] → stop loops, close management and dist → exit 0.

use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement, Shares};

use crate::api::ClientService;
use crate::config::{Config, EvictionPolicy};
use crate::control::ControlCtx;
use crate::dist::client::PeerClient;
use crate::dist::listener::DistService;
use crate::dist::membership::{Membership, Timers};
use crate::dist::ring::Ring;
use crate::metrics::{bump, CoreMetrics};
use crate::mgmt::MgmtService;
use crate::node::{now_ms, CoreCtx, NodeShared};
use crate::runtime::accept::accept_loop;
use crate::runtime::dispatch::{new_peer_map, Dispatcher, Handled, PeerMap};
use crate::runtime::msg::{Msg, Op, Reply};
use crate::runtime::preflight::{self, IO_MEMORY};
use crate::runtime::rendezvous;
use crate::runtime::sockets::bind_shared;
use crate::runtime::stop::StopSignal;
use crate::store::{Hlc, Policy, Shard, ShardLimits};

/// Fixed connection cap of the management and dist listeners (ops.md §1.1).
pub const CONTROL_MAX_CONNS: u64 = 256;
/// Active expiry period (ops.md §3.2) and slab slots visited per slice.
const EXPIRY_SLICE: usize = 2048;

/// A start-up failure: the line to print and the exit code.
pub struct StartError {
    pub code: i32,
    pub message: String,
}

fn fail(code: i32, message: String) -> StartError {
    StartError { code, message }
}

pub struct NodeHandle {
    pub node: Arc<NodeShared>,
}

/// Entries for core `i` (ops.md §3): floor(CAPACITY / cores), +1 for the first
/// CAPACITY mod cores.
pub fn core_capacity(capacity: u64, cores: usize, i: usize) -> u64 {
    let c = cores as u64;
    capacity / c + u64::from((i as u64) < capacity % c)
}

fn executor(name: &str, cpu: usize) -> LocalExecutorBuilder {
    LocalExecutorBuilder::new(Placement::Fixed(cpu))
        .name(name)
        .io_memory(IO_MEMORY)
        .preempt_timer(Duration::from_millis(5))
}

/// With several data cores a request often needs another core; parking
/// between hops makes every hop pay an eventfd and an io_uring wake-up
/// (~25 µs on a small VM). A short spin before parking keeps a busy core
/// awake between hops; an idle core spins once per wake-up, which costs
/// far below 1 % CPU (measured in PERFORMANCE.md).
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);

enum Ready {
    Ok,
    Failed(String),
}

pub fn run(config: Config) -> Result<NodeHandle, StartError> {
    let cores = config.cores;
    preflight::check(cores + 1).map_err(|m| fail(1, m))?;

    let (api_fds, api_addr) = bind_shared(
        "HYPERCACHE_API_ADDR",
        &config.api_addr.text,
        config.api_addr.addr,
        cores,
    )
    .map_err(|m| fail(1, m))?;
    let (mgmt_fds, mgmt_addr) = bind_shared(
        "HYPERCACHE_MGMT_ADDR",
        &config.mgmt_addr.text,
        config.mgmt_addr.addr,
        1,
    )
    .map_err(|m| fail(1, m))?;
    let (dist_fds, dist_addr) = bind_shared(
        "HYPERCACHE_DIST_ADDR",
        &config.dist_addr.text,
        config.dist_addr.addr,
        1,
    )
    .map_err(|m| fail(1, m))?;
    let advertise = config
        .advertised_addr(dist_addr.port())
        .map_err(|e| fail(e.exit_code, e.message))?;

    let node = NodeShared::new(config, api_addr, mgmt_addr, dist_addr, advertise);
    let mesh: MeshBuilder<Msg, _> = MeshBuilder::full(cores + 1, 1024);
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<Ready>();
    let membership = new_membership(&node);
    let peer_map = new_peer_map(cores + 1);
    // id@ seeds are ring members from the start (cluster.md §1).
    let members = membership.ring_members();

    for (i, fd) in api_fds.into_iter().enumerate() {
        let cpu = node.config.data_cpus()[i];
        let node = node.clone();
        let mesh = mesh.clone();
        let ready = ready_tx.clone();
        let members = members.clone();
        let peer_map = peer_map.clone();
        std::thread::Builder::new()
            .name(format!("data-{i}"))
            .spawn(move || {
                let mut b = executor(&format!("data-{i}"), cpu);
                if node.config.cores > 1 {
                    b = b.spin_before_park(SPIN_BEFORE_PARK);
                }
                let ex = match b.make() {
                    Ok(ex) => ex,
                    Err(e) => {
                        let _ = ready.send(Ready::Failed(executor_error(cpu, &e.to_string())));
                        return;
                    }
                };
                ex.run(data_core(i, cpu, node, mesh, fd, members, peer_map, ready));
            })
            .expect("spawn data core thread");
    }
    {
        let cpu = node.config.control_cpu();
        let node = node.clone();
        let ready = ready_tx.clone();
        let (mfd, dfd) = (mgmt_fds[0], dist_fds[0]);
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                let ex = match executor("control", cpu).make() {
                    Ok(ex) => ex,
                    Err(e) => {
                        let _ = ready.send(Ready::Failed(executor_error(cpu, &e.to_string())));
                        return;
                    }
                };
                ex.run(control_core(
                    node, mesh, mfd, dfd, membership, peer_map, ready,
                ));
            })
            .expect("spawn control thread");
    }
    drop(ready_tx);
    for _ in 0..=cores {
        match ready_rx.recv() {
            Ok(Ready::Ok) => {}
            Ok(Ready::Failed(m)) => return Err(fail(1, m)),
            Err(_) => return Err(fail(1, "a core failed during start-up".into())),
        }
    }
    Ok(NodeHandle { node })
}

/// Joins the core mesh. glommio 0.9's shared-channel `connect` waits for the
/// peer without any cross-thread wake-up, so the executor must not park until
/// the join completes ([`rendezvous::without_parking`]).
async fn join_mesh(
    mesh: MeshBuilder<Msg, glommio::channels::channel_mesh::Full>,
) -> (
    glommio::channels::channel_mesh::Senders<Msg>,
    glommio::channels::channel_mesh::Receivers<Msg>,
) {
    rendezvous::without_parking(mesh.join())
        .await
        .expect("join core mesh")
}

/// glommio 0.9.0: the first timer sleep of an executor can take tens of ms (its first park
/// registers membarrier). Paid here in the background, not by the first request or probe,
/// and not before the ready signal: start-up must not depend on a park returning.
fn warm_timer() {
    glommio::spawn_local(glommio::timer::sleep(Duration::from_millis(1))).detach();
}

fn new_membership(node: &NodeShared) -> Membership {
    let cfg = &node.config;
    let timers = Timers {
        heartbeat_ms: cfg.heartbeat.as_millis() as u64,
        suspicion_mult: u64::from(cfg.suspicion_mult),
        gossip_ms: cfg.gossip_interval.as_millis() as u64,
        indirect_k: cfg.indirect_probe_k,
    };
    let seeds: Vec<(Option<String>, String)> = cfg
        .seeds
        .iter()
        .map(|s| (s.id.clone(), s.addr.to_string()))
        .collect();
    let incarnation = now_ms();
    Membership::new(
        &cfg.node_id,
        &node.advertise,
        incarnation,
        timers,
        &seeds,
        incarnation ^ u64::from(std::process::id()).rotate_left(32),
    )
}

fn executor_error(cpu: usize, e: &str) -> String {
    if e.contains("io_uring")
        || e.contains("Operation not permitted")
        || e.contains("Function not implemented")
    {
        format!(
            "io_uring is not available ({e}): needs Linux >= 5.8 with io_uring enabled; under Docker allow io_uring_setup, io_uring_enter and io_uring_register with a seccomp profile (see docs/operations.md)"
        )
    } else {
        format!("cannot start the executor on CPU {cpu}: {e}; check HYPERCACHE_CPU_SET and the locked-memory limit (ulimit -l)")
    }
}

fn policy(p: EvictionPolicy) -> Policy {
    match p {
        EvictionPolicy::Lru => Policy::Lru,
        EvictionPolicy::Clock => Policy::Clock,
    }
}

#[allow(clippy::too_many_arguments)]
async fn data_core(
    id: usize,
    cpu: usize,
    node: Arc<NodeShared>,
    mesh: MeshBuilder<Msg, glommio::channels::channel_mesh::Full>,
    fd: RawFd,
    members: Vec<String>,
    peer_map: PeerMap,
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
    let (senders, receivers) = join_mesh(mesh).await;
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
        dispatch: Dispatcher::new(senders, id, &peer_map).await,
        listener_stop: StopSignal::new(),
        capacity_items,
        node: node.clone(),
    });
    let handler_ctx = ctx.clone();
    ctx.dispatch.spawn_receivers(
        receivers,
        Rc::new(move |op: Op| Handled::Now(handler_ctx.execute(op))),
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
    let (c1, c2) = (ctx.clone(), ctx.clone());
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
        client_tq,
    )
    .await;
    // The listener is closed; keep serving mesh messages and in-flight
    // connections until the process exits.
    std::future::pending::<()>().await;
}

/// Active expiry (ops.md §3.2): every tick, visit enough slab slots that a
/// full pass completes within ~3 s, in slices that yield between them.
async fn expiry_loop(ctx: Rc<CoreCtx>) {
    loop {
        glommio::timer::sleep(crate::node::EXPIRATION_INTERVAL).await;
        let len = ctx.shard.borrow().len();
        let mut budget = (len / 30).max(EXPIRY_SLICE);
        while budget > 0 {
            let step = budget.min(EXPIRY_SLICE);
            ctx.shard.borrow_mut().expire_step(now_ms(), step);
            budget -= step;
            glommio::yield_if_needed().await;
        }
    }
}

async fn control_core(
    node: Arc<NodeShared>,
    mesh: MeshBuilder<Msg, glommio::channels::channel_mesh::Full>,
    mgmt_fd: RawFd,
    dist_fd: RawFd,
    membership: Membership,
    peer_map: PeerMap,
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
    let (senders, receivers) = join_mesh(mesh).await;
    let cfg = &node.config;
    let first_ring = Arc::new(Ring::new(&membership.ring_members(), cfg.replication));
    let ctl = Rc::new(ControlCtx {
        cores: cfg.cores,
        dispatch: Dispatcher::new(senders, cfg.cores, &peer_map).await,
        dist: Default::default(),
        ring: RefCell::new(Arc::new(Ring::new(
            &membership.ring_members(),
            cfg.replication,
        ))),
        incarnation: membership.incarnation(),
        members: RefCell::new(membership),
        peers: PeerClient::new(cfg.auth_token.as_deref()),
        subscribers: Default::default(),
        hints: RefCell::new(crate::control::hints::HintQueues::new(
            cfg.hint_max_per_node as usize,
            cfg.hint_max_bytes,
            cfg.hint_ttl.as_millis() as u64,
        )),
        replaying: Default::default(),
        outbox: Default::default(),
        rebalance: RefCell::new(crate::control::rebalance::RebalanceState {
            r_done: first_ring.clone(),
            generation: 0,
            dirty: false,
            fresh: Default::default(),
            incarnations: Default::default(),
        }),
        stop: StopSignal::new(),
        mgmt_conns: Cell::new(0),
        dist_conns: Cell::new(0),
        mgmt_rejected: Cell::new(0),
        dist_rejected: Cell::new(0),
        requests: Default::default(),
        node: node.clone(),
    });
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
            move |x| adjust(&a.mgmt_conns, x),
            move || bump(&b.mgmt_rejected, 1),
            mgmt_tq,
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
            move |x| adjust(&c.dist_conns, x),
            move || bump(&d.dist_rejected, 1),
            peer_tq,
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
