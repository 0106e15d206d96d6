//! The one typed message exchanged between cores (STYLE.md habit 4).
//!
//! Every cross-core interaction is a [`Op`] sent to the core that owns the
//! shard, answered by one [`Reply`]. Payloads own their bytes (`Vec<u8>`) because they cross
//! threads, except a written value, which travels as an immutable shared [`Value`] so the
//! replication round can keep it without a copy; nothing shared and mutable crosses a core.

use std::sync::Arc;

use crate::dist::ring::Ring;
use crate::metrics::CoreSnapshot;
use crate::store::entry::{ApplyStatus, Entry, OwnedItem, Value};

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
    /// Shared with the replication round when this node coordinates the write.
    pub value: Value,
    /// Positive TTL in ms, 0 = none.
    pub ttl_ms: u64,
    /// Apply to the local shard (false when this node is not an owner: it
    /// only versions the write it coordinates).
    pub store: bool,
    /// A newer version an owner reported: the fresh version must exceed it.
    pub observe: u64,
}

/// One entry of a batch apply: (position in the request, key hash, key, entry).
pub type ApplyItem = (usize, u64, Vec<u8>, Entry);

/// A coordinated write the control core replicates to the remote owners.
#[derive(Debug)]
pub struct WriteJob {
    pub idx: usize,
    pub hash: u64,
    pub key: Vec<u8>,
    pub entry: Entry,
    /// TTL in ms for a re-issue (0 = none).
    pub ttl_ms: u64,
    /// Owner ids in ring order (this node included when it is an owner).
    pub owners: Vec<String>,
    /// This node is an owner and applied the entry locally (one ack).
    pub local_acked: bool,
}

#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub idx: usize,
    pub acks: usize,
    pub needed: usize,
    pub ok: bool,
    /// Failed although W owners answered: every re-issue still met a newer entry
    /// (`control::quorum::after_round`).
    pub shadowed: bool,
}

/// A read the control core completes with the remote owners.
#[derive(Debug)]
pub struct ReadJob {
    pub idx: usize,
    pub hash: u64,
    pub key: Vec<u8>,
    pub owners: Vec<String>,
    /// This node's own answer when it is an owner (`Some(None)`: it holds nothing).
    pub local: Option<Option<Entry>>,
}

#[derive(Debug)]
pub enum ReadOutcome {
    Found(OwnedItem),
    NotFound,
    /// Too few owners answered: (responses, needed).
    Failed(usize, usize),
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
        store: bool,
        observe: u64,
    },
    /// Item, tombstone or nothing (dist reads, coordinator reads).
    Lookup {
        hash: u64,
        key: Vec<u8>,
    },
    LookupBatch(Vec<KeyRef>),
    /// Replica apply of an entry from a peer or a read repair.
    Apply {
        hash: u64,
        key: Vec<u8>,
        entry: Entry,
        repair: bool,
    },
    ApplyBatch {
        items: Vec<ApplyItem>,
        repair: bool,
    },
    /// Anti-entropy pair set P(this node, peer) under `ring` (cluster.md §10): the digests of
    /// the keys in `leaves` whose entries were written before `before` (`dist::ae::settled`).
    AeDigests {
        ring: Arc<Ring>,
        peer: String,
        leaves: crate::dist::ae::LeafMask,
        before: u64,
    },
    /// The leaf sums of the same pair set, without a digest per key.
    AeLeafSums {
        ring: Arc<Ring>,
        peer: String,
        before: u64,
    },
    /// `/internal/keys`: live item keys this node owns under `ring` that match
    /// `pattern`, from log position `from` on, at most `limit`.
    Keys {
        ring: Arc<Ring>,
        pattern: crate::dist::glob::Pattern,
        from: usize,
        limit: usize,
    },
    /// Every key held, live items and tombstones (rebalance scan).
    ScanKeys,
    /// Rebalance hand-off: drop these entries if they still have exactly this
    /// (version, origin): (hash, key, version, origin).
    DropIfSame(Vec<(u64, Vec<u8>, u64, String)>),
    /// (key, version) of every live item and tombstone (`/internal/merkle`).
    MerkleEntries,
    /// New ring snapshot from the control core.
    RingUpdate(Arc<Ring>),
    /// To the control core: replicate coordinated writes.
    Replicate(Vec<WriteJob>),
    /// To the control core: complete reads with the remote owners.
    RemoteRead(Vec<ReadJob>),
    /// To the control core: the cluster key browser's fan-out (api.md §10.1).
    BrowseKeys {
        q: String,
        pattern: crate::dist::glob::Pattern,
        max: usize,
    },
    BatchGet(Vec<KeyRef>),
    BatchPut(Vec<PutItem>),
    /// Deletes; `value` unused, `store`/`observe` as for puts.
    BatchDelete(Vec<PutItem>),
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
    /// Serve this accepted client socket (runtime::balance); this core owns it from now on
    /// (dropping it closes the duplicate).
    Adopt(std::os::fd::OwnedFd),
}

#[derive(Debug)]
pub enum Reply {
    Item(Option<OwnedItem>),
    /// Version and deadline assigned to a write or delete.
    Written(u64, u64),
    /// The key's entry; None when the shard holds nothing for it.
    Lookup(Option<Entry>),
    Lookups(Vec<(usize, Option<Entry>)>),
    Applied(ApplyStatus),
    AppliedBatch(Vec<(usize, ApplyStatus)>),
    WriteDone(Vec<WriteOutcome>),
    ReadDone(Vec<(usize, ReadOutcome)>),
    Browse(Browse),
    Items(Vec<(usize, Option<OwnedItem>)>),
    Versions(Vec<(usize, u64, u64)>),
    Stats(Box<CoreSnapshot>),
    Entries(Vec<(Vec<u8>, u64)>),
    KeyList(Vec<(u64, Vec<u8>)>),
    Digests(Vec<crate::dist::ae::Digest>),
    LeafSums(Box<[u64; crate::dist::ae::LEAVES]>),
    /// A page of keys and whether more matches follow.
    /// A page of keys and the slot the next page starts at (None: this core is done).
    KeyPage(Vec<String>, Option<usize>),
    Count(u64),
}

/// What travels on the mesh.
#[derive(Debug)]
pub enum Msg {
    Req { id: u32, op: Op },
    Rep { id: u32, reply: Reply },
}

/// The merged key listing of every alive member (api.md §10.1).
#[derive(Debug, Clone, Default)]
pub struct Browse {
    /// The `max` smallest distinct keys, sorted byte-wise.
    pub keys: Vec<String>,
    /// More than `max` keys matched.
    pub truncated: bool,
    /// Members that did not answer.
    pub partial: Vec<String>,
}
