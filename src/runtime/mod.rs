//! Everything that knows executors exist: pre-flight checks, listener sockets, the core mesh
//! (`msg`, `dispatch`), accept loops and connection hand-off, node-wide flags (`node`), the
//! per-core context (`core_ctx`) and the scans a data core runs in its background queue (`scan`);
//! and the process-wide logger they all write to.

pub mod accept;
pub mod balance;
pub mod core_ctx;
pub mod dispatch;
pub mod logging;
pub mod msg;
pub mod node;
pub mod preflight;
pub mod rendezvous;
pub mod scan;
pub mod sockets;

pub use core_ctx::{shard_for, CoreCtx};
pub use node::{NodeShared, EXPIRATION_INTERVAL};
