//! The peer layer: the ring, SWIM membership, the typed dist protocol (client side in
//! `protocol.rs` and `client.rs`, request decoding in `queries.rs` and `wire.rs`), Merkle and
//! anti-entropy summaries. The dist listener that serves it lives in `control::listener`.

pub mod ae;
pub mod batch_body;
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
