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
use crate::runtime::dispatch::{new_peer_map, Dispatcher, Link};
use crate::runtime::msg::Msg;
use crate::runtime::preflight::{self, IO_MEMORY};
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
    let one_executor = shares_one_executor(&config);
    let executors = if one_executor { 1 } else { cores + 1 };
    preflight::check(executors).map_err(|m| fail(1, m))?;

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
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<Ready>();
    let membership = new_membership(&node);
    // id@ seeds are ring members from the start (cluster.md §1).
    let members = membership.ring_members();
    let (mfd, dfd) = (mgmt_fds[0], dist_fds[0]);
    let control_cpu = node.config.control_cpu();
    if one_executor {
        let (node, fd) = (node.clone(), api_fds[0]);
        spawn_executor(
            "data-0",
            control_cpu,
            ready_tx.clone(),
            move |ready| async move {
                let (data, control) = Dispatcher::local_pair(0, 1);
                let ctl = control_core(
                    node.clone(),
                    Link::Local(control),
                    mfd,
                    dfd,
                    membership,
                    ready.clone(),
                );
                glommio::spawn_local(ctl).detach();
                data_core(0, control_cpu, node, Link::Local(data), fd, members, ready).await
            },
        );
    } else {
        let mesh: MeshBuilder<Msg, _> = MeshBuilder::full(cores + 1, 1024);
        let peer_map = new_peer_map(cores + 1);
        for (i, fd) in api_fds.into_iter().enumerate() {
            let cpu = node.config.data_cpus()[i];
            let (mesh, peer_map) = (mesh.clone(), peer_map.clone());
            let (node, members) = (node.clone(), members.clone());
            // No spin before parking: with the rings' cooperative task running
            // (vendor/glommio/PATCHED.md) a spinning core would not see socket
            // completions until it enters the kernel anyway, and 0 / 10 / 50 µs
            // measured the same (PERFORMANCE.md, "What a hop costs here").
            spawn_executor(&format!("data-{i}"), cpu, ready_tx.clone(), move |ready| {
                data_core(i, cpu, node, Link::Mesh(mesh, peer_map), fd, members, ready)
            });
        }
        let node = node.clone();
        spawn_executor("control", control_cpu, ready_tx.clone(), move |ready| {
            control_core(
                node,
                Link::Mesh(mesh, peer_map),
                mfd,
                dfd,
                membership,
                ready,
            )
        });
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

/// One data core whose control core would share its CPU: one executor runs both
/// (`runtime::dispatch`, docs/operations.md "One data core"), so a hop between them is a call,
/// not a context switch and a cross-thread wake-up. Two threads on one CPU cost a
/// replicated PUT a third more CPU (PERFORMANCE.md, "Replicated PUT").
fn shares_one_executor(cfg: &Config) -> bool {
    cfg.cores == 1 && cfg.data_cpus().first() == Some(&cfg.control_cpu())
}

/// Starts a pinned executor named `name` on its own thread and runs `core` on it; a failure to
/// make the executor goes to `ready`.
fn spawn_executor<F, Fut>(name: &str, cpu: usize, ready: crossbeam_channel::Sender<Ready>, core: F)
where
    F: FnOnce(crossbeam_channel::Sender<Ready>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let thread_name = name.to_string();
    std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || match executor(&thread_name, cpu).make() {
            Ok(ex) => ex.run(core(ready)),
            Err(e) => {
                let _ = ready.send(Ready::Failed(executor_error(cpu, &e.to_string())));
            }
        })
        .expect("spawn executor thread");
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
