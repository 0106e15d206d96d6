//! Cluster: hashing, the ring, membership, the dist protocol and listener.

pub mod ae;
pub mod client;
pub mod glob;
pub mod membership;
pub mod merkle;
pub mod protocol;
pub mod queries;
pub mod request;
pub mod ring;
pub mod sha256;
pub mod wire;
#[cfg(test)]
mod wire_proptests;
