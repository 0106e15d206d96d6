//! # hypercache-server
//!
//! A thread-per-core, shared-nothing distributed in-memory cache that speaks
//! the HyperCache REST API. Read this first.
//!
//! ## Threads
//!
//! ```text
//!  main thread ── runs the operator commands (--help, --version,
//!                 check-config) or parses env into Config (and the policy
//!                 file), binds every listener, starts the executors, then
//!                 waits for SIGTERM/SIGINT (sigwait; SIGHUP reloads the
//!                 TLS material of every TLS listener).
//!
//!  data core 0 (CPU c0)        data core 1 (CPU c1)  ...   control core (CPU cN or shared)
//!  ┌─────────────────────┐    ┌─────────────────────┐      ┌──────────────────────────┐
//!  │ client listener     │    │ client listener     │      │ management listener      │
//!  │  (SO_REUSEPORT)     │    │  (SO_REUSEPORT)     │      │ dist listener            │
//!  │ Shard 0 (store)     │    │ Shard 1             │      │ SWIM membership, ring    │
//!  │ HLC, counters       │    │ HLC, counters       │      │ write fan-out, reads of  │
//!  │ expiry task         │    │ expiry task         │      │ remote owners, hints,    │
//!  │ ring snapshot       │    │ ring snapshot       │      │ rebalance, shutdown      │
//!  └─────────┬───────────┘    └──────────┬──────────┘      └────────────┬─────────────┘
//!            └──────── glommio channel mesh of runtime::msg::Msg ───────┘
//! ```
//!
//! With one data core and no spare CPU for the control core, one executor runs both
//! (`server::shares_one_executor`): the control core's tasks and queues are the same, and a
//! message between the two is a direct call ([`runtime::dispatch`]'s `Link::Local`) instead of
//! a mesh hop between two threads on one CPU; a control job (a replicated write's fan-out) runs
//! in the calling client task, with no task or ticket of its own.
//!
//! Every executor is a pinned glommio `LocalExecutor` with three task queues:
//! client requests, mesh/peer messages (both latency-sensitive) and background
//! work (expiry, rebalance). Nothing mutable is shared between cores: the only
//! cross-thread state is [`runtime::NodeShared`] (config plus the draining flag);
//! the control core publishes each new ring to the data cores as an immutable
//! `Arc<Ring>` snapshot.
//!
//! ## Life of a GET
//! 1. The kernel hands the connection to some data core (SO_REUSEPORT); if
//!    another core serves fewer connections, the socket is
//!    handed to it over the mesh ([`runtime::balance`]).
//! 2. [`service::conn`] parses the head in place ([`http::parse`]), the
//!    [`api::ClientService`] checks auth ([`auth::gate`]: the caller's
//!    identity, or 401), route (404), method (405), scope (403) and key
//!    before any body.
//! 3. The key's xxhash64 picks the owning core ([`runtime::shard_for`]). If it is
//!    this core, the value is copied from the shard straight into the output
//!    buffer: no allocation. Otherwise one [`runtime::msg::Op::Get`] crosses the
//!    mesh and the reply comes back the same way.
//! 4. Responses of pipelined requests are appended in order and leave in one
//!    write. With several data cores, the GETs at the front of each read are
//!    looked up first, one `Op::BatchGet` per other core ([`api::ahead`]),
//!    so a pipeline pays one mesh round trip per core, not one per request.
//!
//! In a cluster, a GET for a key this node owns is served from the local shard
//! (a tombstone is an authoritative miss); otherwise, or on a local miss, the
//! control core asks the remote owners ([`control::read`] drives, the pure
//! [`control::resolve`] decides: ring order with suspects last, ONE steps,
//! QUORUM/ALL merge and which owners to repair).
//!
//! ## Life of a replicated PUT
//! 1. The connection's core finds the owners in its ring snapshot and copies the
//!    body once, into a shared [`store::entry::Value`] (`api/coord.rs`).
//! 2. The key's core assigns the version from its hybrid logical clock
//!    ([`store::Hlc`]) and the absolute deadline, and applies it when this node
//!    is an owner (one ack; the shard's copy of the value).
//! 3. One [`runtime::msg::Op::Replicate`] goes to the control core, which queues
//!    the entry for every remote owner ([`control::outbox`]: concurrent writes
//!    to one owner share one `/internal/batch`, and under load a request waits
//!    500 µs for more), feeds every answer to the pure
//!    quorum tracker ([`control::quorum`]: acks, W reached or failed, the one
//!    re-issue when an owner reports a newer entry), answers the client, and
//!    leaves a hint ([`control::hints`]) for every owner that did not
//!    acknowledge. The round, the queues and the hints share the value; each
//!    owner's request ([`dist::protocol`]'s `Batch`, [`dist::batch_body`],
//!    [`dist::request`]) is the only other copy, its base64 written straight into
//!    the request buffer. The receiving
//!    owner's side is [`control::listener`]'s `writes` routes, which decode
//!    ([`dist::wire`], [`dist::queries`]; `/internal/batch` items borrow key and origin
//!    from the body) and apply on the key's data core, a batch's index and item lines
//!    prefetched first.
//! 4. On a single-node ring none of this happens: step 2 is the whole write.
//!
//! ## Modules, lowest layer first
//! Layers: `base` `http` `store` `metrics` `auth` `tls` `config` `dist` `service` `runtime` `control` `api` `mgmt` `server`
//!
//! A module uses only modules before it on that line (`tests/layering.rs` checks it, and that no
//! file in `src/` is over 500 lines).
//! - [`base`]: what every layer may use and that uses nothing of ours: the key hash (XXH64),
//!   the wall clock, the core-local stop signal, rate-limited warnings.
//! - [`http`]: parser, chunked decoder, response writer, path/query/form decoding. Bytes and
//!   HTTP only.
//! - [`store`]: the core-local shard (log segments, compact index, TTL, CLOCK eviction,
//!   tombstones, bounded scan steps, a batch's prefetch) and the versioned entry that leaves
//!   it (`entry.rs`: the one LWW rule, cluster.md §4). Knows no HTTP, no peers, no executors.
//! - [`metrics`]: per-core counters, histograms, Prometheus text.
//! - [`auth`]: who may call what (security.md): the policy file, pure credential resolution,
//!   scopes, the per-core gate (Basic via bcrypt off the executor), the peer token. Knows no
//!   routes.
//! - [`tls`]: TLS on every listener and between peers (security.md §2–§4): PEM files → rustls
//!   configurations, the first-record sniff and handshake on an accepted connection, the
//!   plaintext-or-TLS stream the connection loop and the peer client read and write, SIGHUP
//!   reload through a per-listener slot shared by the cores.
//! - [`config`]: `HYPERCACHE_*` variables → validated [`config::Config`] (with the loaded
//!   policy and TLS material); `table.rs` is the variable table that `--help` prints.
//! - [`dist`]: the peer layer: ring, SWIM membership (pure state machine), wire types and their
//!   checks, the typed peer protocol (`protocol.rs`: one call type per `/internal/*` route,
//!   with its target, body and answer), the pooled peer client (plaintext or mTLS), Merkle
//!   summary and anti-entropy leaves. Knows no client routes and no executors.
//! - [`service`]: the HTTP service layer the three listeners share: the connection loop and
//!   its `Service` trait, the 401/405/draining answers, per-connection timeouts.
//! - [`runtime`]: everything that knows executors exist: pre-flight checks, sockets, the core
//!   mesh (`msg.rs`, `dispatch.rs`), accept loops and connection hand-off, node-wide flags
//!   (`node.rs`), the per-core context (`core_ctx.rs`) and the scans a data core runs in its
//!   background queue (`scan.rs`), the logger.
//! - [`control`]: the control core, i.e. the cluster layer: membership driver, replication
//!   (pure [`control::quorum`]), remote reads (pure [`control::resolve`]), hints (pure
//!   [`control::hints`]) and replay, rebalance (pure [`control::moves`]), anti-entropy (pure
//!   [`control::reconcile`]), and the dist listener, the server side of the peer protocol
//!   ([`control::listener`]: route table in `mod.rs`; `writes`, `reads`, `scans`).
//! - [`api`]: client routes (`routes.rs` is the table and each route's scope).
//! - [`mgmt`]: management routes.
//! - [`server`]: start-up (`mod.rs`), the data core and the control core (`data_core.rs`,
//!   `control_core.rs`: task queues, listeners, loops) and the shutdown order.
//!
//! `tests/sim/` runs the pure membership, quorum, hint, rebalance and
//! anti-entropy cores of five nodes in a seeded single-threaded world (loss,
//! duplication, reordering, partitions, crashes, pauses, clock offsets) and
//! checks cluster.md §13.

pub mod api;
pub mod auth;
pub mod base;
pub mod config;
pub mod control;
pub mod dist;
pub mod http;
pub mod metrics;
pub mod mgmt;
pub mod runtime;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;
