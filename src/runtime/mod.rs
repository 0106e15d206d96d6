//! Everything that knows executors exist: pre-flight checks, listener
//! sockets, the core mesh, accept loops and task queues; and the process-wide
//! logger they all write to.

pub mod accept;
pub mod balance;
pub mod dispatch;
pub mod logging;
pub mod msg;
pub mod preflight;
pub mod rendezvous;
pub mod sockets;
pub mod stop;
pub mod warn_limit;
