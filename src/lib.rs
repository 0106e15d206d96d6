//! # hypercache-server
//!
//! A thread-per-core, shared-nothing distributed in-memory cache that speaks
//! the HyperCache REST API. Read this first.
//!
//! ## Threads
//!
//! ```text
//!  main thread ── parses env into Config, binds every listener, starts the
//!                 executors, then waits for SIGTERM/SIGINT (sigwait).
//!
//!  data core 0 (CPU c0)        data core 1 (CPU c1)  ...   control core (CPU cN or shared)
//!  ┌─────────────────────┐    ┌─────────────────────┐      ┌──────────────────────────┐
//!  │ client listener     │    │ client listener     │      │ management listener      │
//!  │  (SO_REUSEPORT)     │    │  (SO_REUSEPORT)     │      │ dist listener            │
//!  │ Shard 0 (store)     │    │ Shard 1             │      │ shutdown sequence        │
//!  │ HLC, counters       │    │ HLC, counters       │      │ (membership, replication │
//!  │ expiry task         │    │ expiry task         │      │  with the cluster issue) │
//!  └─────────┬───────────┘    └──────────┬──────────┘      └────────────┬─────────────┘
//!            └──────── glommio channel mesh of runtime::msg::Msg ───────┘
//! ```
//!
//! Every executor is a pinned glommio `LocalExecutor` with three task queues:
//! client requests, mesh/peer messages (both latency-sensitive) and background
//! work (expiry). Nothing mutable is shared between cores: the only
//! cross-thread state is [`node::NodeShared`] (config plus the draining flag).
//!
//! ## Life of a GET
//! 1. The kernel hands the connection to some data core (SO_REUSEPORT).
//! 2. [`http::conn`] parses the head in place ([`http::parse`]), the
//!    [`api::ClientService`] checks auth, route and key before any body.
//! 3. The key's xxhash64 picks the owning core ([`node::shard_for`]). If it is
//!    this core, the value is copied from the shard straight into the output
//!    buffer: no allocation. Otherwise one [`runtime::msg::Op::Get`] crosses the
//!    mesh and the reply comes back the same way.
//! 4. Responses of pipelined requests are appended in order and leave in one
//!    write.
//!
//! ## Life of a PUT
//! The owning core assigns the version from its hybrid logical clock
//! ([`store::Hlc`]) and the absolute deadline, and applies it to its shard
//! under last-write-wins. (With the cluster issue the control core fans the
//! versioned write out to the other ring owners and waits for the quorum.)
//!
//! ## Modules
//! - [`config`]: `HYPERCACHE_*` variables → validated [`config::Config`].
//! - [`runtime`]: pre-flight checks, sockets, mesh dispatch, accept loops.
//! - [`http`]: parser, chunked decoder, response writer, connection loop.
//! - [`api`]: client routes; [`mgmt`]: management routes; [`dist`]: hash,
//!   ring, peer listener; [`control`]: the control core's state.
//! - [`store`]: the core-local shard (entries, TTL, eviction, tombstones).
//! - [`metrics`]: per-core counters, histograms, Prometheus text.
//! - [`node`]: node-wide flags and the per-core context.
//! - [`server`]: start-up and the shutdown order.

pub mod api;
pub mod config;
pub mod control;
pub mod dist;
pub mod http;
pub mod metrics;
pub mod mgmt;
pub mod node;
pub mod runtime;
pub mod server;
pub mod store;
