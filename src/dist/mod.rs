//! Cluster: hashing, the ring, membership, the dist protocol and listener.

pub mod client;
pub mod hash;
pub mod listener;
pub mod membership;
pub mod ring;
pub mod wire;
