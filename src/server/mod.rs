//! Start-up and shutdown (ops.md §4, §6).
//!
//! `run` performs the start-up sequence on the calling thread: pre-flight
//! checks, binding every listener, starting one pinned executor per data
//! core plus the control core, joining them into one channel mesh. It
//! returns once every core is serving, with the bound addresses; the control
//! core then watches for the shutdown request and runs the shutdown order:
//! drain → grace → close client listeners (in-flight requests finish) →
//! [cluster hand-off] → stop loops, close management and dist → exit 0.

use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement};

use crate::base::now_ms;
use crate::config::Config;
use crate::dist::membership::{Membership, Timers};
use crate::runtime::dispatch::new_peer_map;
use crate::runtime::msg::Msg;
use crate::runtime::preflight::{self, IO_MEMORY};
use crate::runtime::rendezvous;
use crate::runtime::sockets::bind_shared;
use crate::runtime::NodeShared;

mod control_core;
mod data_core;
use control_core::control_core;
use data_core::data_core;

/// Fixed connection cap of the management and dist listeners (ops.md §1.1).
pub const CONTROL_MAX_CONNS: u64 = 256;

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
                // No spin before parking: with the rings' cooperative task running
                // (vendor/glommio/PATCHED.md) a spinning core would not see socket
                // completions until it enters the kernel anyway, and 0 / 10 / 50 µs
                // measured the same (PERFORMANCE.md, "What a hop costs here").
                let b = executor(&format!("data-{i}"), cpu);
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
    let mut m = Membership::new(
        &cfg.node_id,
        &node.advertise,
        incarnation,
        timers,
        &seeds,
        incarnation ^ u64::from(std::process::id()).rotate_left(32),
    );
    m.set_self_api(&cfg.advertised_api(node.api_addr.port(), node.dist_addr.port()));
    m
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
