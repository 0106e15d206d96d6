//! Cluster: hashing, the ring and the peer (dist) listener.

pub mod hash;
pub mod listener;
pub mod ring;
