//! Node-wide state.
//!
//! [`NodeShared`] is the only state every thread sees: the immutable config
//! and a few flags (draining, shutdown). It holds no data and no lock; the data
//! path reads one atomic flag (draining) on writes only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;

pub struct NodeShared {
    pub config: Config,
    pub started: Instant,
    /// Set once by drain (signal or POST /dist/drain); never cleared.
    draining: AtomicBool,
    /// Set by the signal thread on the first SIGTERM/SIGINT.
    pub shutdown_requested: AtomicBool,
    /// Bound addresses, filled in at start-up.
    pub api_addr: std::net::SocketAddr,
    pub mgmt_addr: std::net::SocketAddr,
    pub dist_addr: std::net::SocketAddr,
    pub advertise: String,
    /// Open client connections per data core (runtime::balance).
    pub client_loads: Arc<crate::runtime::balance::Loads>,
}

impl NodeShared {
    pub fn new(
        config: Config,
        api_addr: std::net::SocketAddr,
        mgmt_addr: std::net::SocketAddr,
        dist_addr: std::net::SocketAddr,
        advertise: String,
    ) -> Arc<NodeShared> {
        Arc::new(NodeShared {
            started: Instant::now(),
            draining: AtomicBool::new(false),
            shutdown_requested: AtomicBool::new(false),
            api_addr,
            mgmt_addr,
            dist_addr,
            advertise,
            client_loads: Arc::new(crate::runtime::balance::Loads::new(config.cores)),
            config,
        })
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts draining; returns true the first time. SeqCst so that every core
    /// sees it before the caller answers `POST /dist/drain`.
    pub fn start_drain(&self) -> bool {
        !self.draining.swap(true, Ordering::SeqCst)
    }

    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }
}

/// Period of each data core's active expiry task (ops.md §3.2); `/config`
/// shows it as `expirationInterval`.
pub const EXPIRATION_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);
