//! The one typed message exchanged between cores (STYLE.md habit 4).
//!
//! Every cross-core interaction is a [`Op`] sent to the core that owns the
//! shard, answered by one [`Reply`]. Payloads own their bytes (`Vec<u8>`)
//! because they cross threads; nothing shared and mutable crosses a core.

use crate::metrics::CoreSnapshot;

/// A copy of a live item, for replies that leave the owning core.
#[derive(Debug, Clone)]
pub struct OwnedItem {
    pub value: Vec<u8>,
    /// Length of the value (also set when `value` was not copied, for HEAD).
    pub len: usize,
    pub version: u64,
    pub origin: String,
    /// Absolute deadline in Unix ms; 0 = no expiry.
    pub expires_at_ms: u64,
}

/// One key of a batch, with its position in the client's request.
#[derive(Debug)]
pub struct KeyRef {
    pub idx: usize,
    pub hash: u64,
    pub key: Vec<u8>,
}

#[derive(Debug)]
pub struct PutItem {
    pub idx: usize,
    pub hash: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Positive TTL in ms, 0 = none.
    pub ttl_ms: u64,
}

/// Work for the core that owns the key's shard (or, for control ops, every core).
#[derive(Debug)]
pub enum Op {
    Get {
        hash: u64,
        key: Vec<u8>,
        with_value: bool,
    },
    Put(PutItem),
    Delete {
        hash: u64,
        key: Vec<u8>,
    },
    BatchGet(Vec<KeyRef>),
    BatchPut(Vec<PutItem>),
    BatchDelete(Vec<KeyRef>),
    /// Counters, shard figures and latency histograms of the core.
    Stats,
    /// POST /evict, /trigger-expiration, /clear on this core's shard.
    Evict,
    Expire,
    Clear,
    /// Stop accepting client connections (shutdown step 3).
    CloseListener,
    /// How many client connections are still open.
    Connections,
}

#[derive(Debug)]
pub enum Reply {
    Item(Option<OwnedItem>),
    /// Version assigned to a write or delete.
    Written(u64),
    Items(Vec<(usize, Option<OwnedItem>)>),
    Versions(Vec<(usize, u64)>),
    Stats(Box<CoreSnapshot>),
    Count(u64),
}

/// What travels on the mesh.
#[derive(Debug)]
pub enum Msg {
    Req { id: u32, op: Op },
    Rep { id: u32, reply: Reply },
}
