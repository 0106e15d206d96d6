//! Everything that knows executors exist: pre-flight checks, listener
//! sockets, the core mesh, accept loops and task queues.

pub mod accept;
pub mod dispatch;
pub mod msg;
pub mod preflight;
pub mod rendezvous;
pub mod sockets;
pub mod stop;
