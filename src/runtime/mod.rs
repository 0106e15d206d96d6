//! Everything that knows executors exist: pre-flight checks, listener
//! sockets, the core mesh, accept loops and task queues; and the process-wide
//! logger they all write to.

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
