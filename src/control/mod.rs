//! The control core's state: everything that is not a shard.
//!
//! Runs the management and dist listeners, the shutdown sequence and (with
//! the cluster issue) membership and replication. Collects per-core figures
//! from the data cores by message.

pub mod ae;
pub mod browse;
pub mod cluster;
pub mod hints;
pub mod listener;
pub mod moves;
pub mod outbox;
pub mod quorum;
pub mod read;
pub mod rebalance;
pub mod reconcile;
pub mod replay;
pub mod replicate;
pub mod resolve;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use crate::base::stop::StopSignal;
use crate::dist::client::PeerClient;
use crate::dist::membership::Membership;
use crate::dist::ring::Ring;
use crate::metrics::dist::{idx, DistMetrics, N};
use crate::metrics::{self, CoreSnapshot};
use crate::runtime::dispatch::Dispatcher;
use crate::runtime::msg::{Op, Reply};
use crate::runtime::NodeShared;

pub struct ControlCtx {
    pub node: Arc<NodeShared>,
    pub dispatch: Rc<Dispatcher>,
    cores: usize,
    pub dist: DistMetrics,
    pub ring: RefCell<std::sync::Arc<Ring>>,
    /// SWIM membership (pure state machine; `cluster.rs` drives it).
    members: RefCell<Membership>,
    pub peers: PeerClient,
    /// Writes waiting to be sent to each owner (coalesced fan-out).
    outbox: RefCell<outbox::Outbox>,
    /// Rebalance progress (cluster.md §9).
    rebalance: RefCell<moves::Rebalance>,
    /// Hinted handoff queues (cluster.md §8) and the targets being replayed.
    hints: RefCell<hints::HintQueues>,
    replaying: RefCell<std::collections::HashSet<String>>,
    /// `/cluster/events` streams waiting for membership changes.
    pub subscribers: RefCell<Vec<glommio::channels::local_channel::LocalSender<()>>>,
    /// The join exchange has answered (or there are no seeds): until then this node's ring
    /// holds only what its seed list says, and management `/health` answers 503 `joining`.
    pub joined: Cell<bool>,
    /// Fired at shutdown step 6: management and dist listeners close,
    /// event streams end.
    pub stop: StopSignal,
    /// Failed peer writes are logged at most once per peer and second (`base/warn_limit.rs`).
    peer_warnings: RefCell<crate::base::warn_limit::WarnLimit>,
    /// What the management and dist listeners count for `/metrics`.
    pub listeners: ListenerStats,
}

/// Connections, refusals at the cap and responses of the management and dist listeners.
#[derive(Default)]
pub struct ListenerStats {
    pub mgmt_conns: Cell<u64>,
    pub dist_conns: Cell<u64>,
    pub mgmt_rejected: Cell<u64>,
    pub dist_rejected: Cell<u64>,
    /// Responses by (listener, route, status).
    requests: RefCell<std::collections::BTreeMap<(&'static str, &'static str, u16), u64>>,
}

impl ListenerStats {
    pub fn count_request(&self, listener: &'static str, route: &'static str, status: u16) {
        *self
            .requests
            .borrow_mut()
            .entry((listener, route, status))
            .or_insert(0) += 1;
    }

    /// Every (listener, route, status) count, in that order.
    pub fn requests(&self) -> Vec<((&'static str, &'static str, u16), u64)> {
        self.requests
            .borrow()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

impl ControlCtx {
    /// The control core's state at start-up: `membership` as the seed list made it, the ring
    /// built from it, empty queues. Only this module's drivers reach the queues and the
    /// membership core; the management views and the core's start-up read the `pub` fields.
    pub fn new(
        node: Arc<NodeShared>,
        dispatch: Rc<Dispatcher>,
        membership: Membership,
    ) -> ControlCtx {
        let cfg = &node.config;
        let first_ring = Arc::new(Ring::new(&membership.ring_members(), cfg.replication));
        ControlCtx {
            cores: cfg.cores,
            dispatch,
            dist: Default::default(),
            ring: RefCell::new(first_ring.clone()),
            joined: Cell::new(cfg.seeds.is_empty()),
            members: RefCell::new(membership),
            peers: PeerClient::new(cfg.auth_token.as_deref(), cfg.tls.dist.clone()),
            subscribers: Default::default(),
            hints: RefCell::new(hints::HintQueues::new(
                cfg.hint_max_per_node as usize,
                cfg.hint_max_bytes,
                cfg.hint_ttl.as_millis() as u64,
            )),
            replaying: Default::default(),
            outbox: Default::default(),
            rebalance: RefCell::new(moves::Rebalance::new(first_ring)),
            stop: StopSignal::new(),
            listeners: Default::default(),
            peer_warnings: RefCell::new(crate::base::warn_limit::WarnLimit::new(
                std::time::Duration::from_secs(1),
            )),
            node,
        }
    }

    /// Sends `op` to every data core and returns the replies in core order.
    pub async fn all_cores(&self, op: impl Fn() -> Op) -> Vec<Reply> {
        let mut tickets = Vec::with_capacity(self.cores);
        for core in 0..self.cores {
            tickets.push(self.dispatch.send(core, op()).await);
        }
        let mut out = Vec::with_capacity(self.cores);
        for t in tickets {
            out.push(t.await);
        }
        out
    }

    pub async fn sum_counts(&self, op: impl Fn() -> Op) -> u64 {
        self.all_cores(op)
            .await
            .into_iter()
            .map(|r| match r {
                Reply::Count(n) => n,
                _ => 0,
            })
            .sum()
    }

    pub async fn snapshots(&self) -> Vec<CoreSnapshot> {
        self.all_cores(|| Op::Stats)
            .await
            .into_iter()
            .filter_map(|r| match r {
                Reply::Stats(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Starts draining (idempotent); logs and counts the first time, and
    /// leaves the cluster (cluster.md §11).
    pub fn drain(self: &Rc<Self>) {
        if self.node.start_drain() {
            self.dist.set(const { idx("Drains") }, 1);
            log::info!("drain started: writes now answer 503 DRAINING, /health answers 503");
            self.leave();
        }
    }

    /// `/dist/metrics` values: the control core's counters plus figures
    /// owned by the shards and the membership table.
    pub fn dist_values(&self, total: &CoreSnapshot) -> [u64; N] {
        let mut v: [u64; N] = std::array::from_fn(|i| self.dist.values[i].get());
        v[const { idx("WriteAttempts") }] += total.local_writes;
        v[const { idx("WriteAcks") }] += total.local_writes;
        v[const { idx("VersionConflicts") }] += total.version_conflicts;
        v[const { idx("VersionTieBreaks") }] += total.version_tie_breaks;
        v[const { idx("TombstonesActive") }] = total.tombstones;
        v[const { idx("TombstonesPurged") }] += total.tombstones_purged;
        self.membership_values(&mut v);
        let hints = self.hints.borrow();
        v[const { idx("HintedBytes") }] = hints.bytes();
        v[const { idx("HintedQueueLongest") }] = hints.longest() as u64;
        v[const { idx("HintedQueueCap") }] = self.node.config.hint_max_per_node;
        v[const { idx("HintedBytesCap") }] = self.node.config.hint_max_bytes;
        v[const { idx("TombstonesActive") }] = total.tombstones;
        v
    }

    pub fn totals(snaps: &[CoreSnapshot]) -> CoreSnapshot {
        metrics::total(snaps)
    }
}
