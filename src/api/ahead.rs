//! Pipelined GETs, looked up one mesh message per core (issue 9, item 3).
//!
//! The connection loop answers the requests of one read in order, one at a
//! time; on a node with several data cores, a pipeline of GETs for keys of
//! another core would otherwise cost one mesh round trip per request, each
//! awaited before the next request is even parsed. After every read,
//! `ClientService::read_ahead` parses the GETs at the front of the new
//! input, sends the keys of each other core in one `Op::BatchGet`, and keeps
//! the answers in the connection's [`Ahead`]; the GET handler then takes its
//! answer from there instead of crossing the mesh.
//!
//! Why this never serves a stale value:
//! - The window is the run of plain `GET /v1/cache/{key}` requests at the
//!   front of the input and ends before the first other request, so no write
//!   of this connection lies inside it. Every answer was looked up after
//!   every request of the window had arrived, which is a valid moment to
//!   answer any of them.
//! - The connection loop drops the answers once it has handled as many
//!   requests as the window held (its `ReadAhead::request_done`), so an answer
//!   never outlives its window (a request refused with 401 leaves its answer
//!   unused, and it is dropped with the window).
//! - Auth, routing and counters are untouched: every request still goes
//!   through `prepare` and the handler; only the mesh hop is saved. And a
//!   connection reads ahead only once one of its GETs has passed `prepare`,
//!   so a client without a valid credential never makes the store do work.

use crate::base::hash::xxhash64;
use crate::http::keys::{decode_path_key, MAX_KEY};
use crate::http::parse::{parse_head, BodyKind, Method, Parsed};
use crate::runtime::msg::{KeyRef, Op, Reply};
use crate::runtime::shard_for;
use crate::store::entry::OwnedItem;

use super::routes::{resolve, Resolved};
use super::ClientService;

/// At most this many requests are looked up ahead per read (bounds the
/// per-connection memory and the mesh message).
const MAX_WINDOW: usize = 128;

struct Answer {
    hash: u64,
    core: usize,
    /// Range of the key in `Ahead::keys`.
    key: (usize, usize),
    item: Option<OwnedItem>,
    taken: bool,
}

/// One connection's looked-up answers (empty unless the last read held a
/// pipeline of GETs for other cores).
#[derive(Default)]
pub struct Ahead {
    answers: Vec<Answer>,
    keys: Vec<u8>,
    /// Requests of the window not handled yet.
    left: usize,
    /// A GET of this connection has passed auth, route and scope checks.
    admitted: bool,
}

impl Ahead {
    fn clear(&mut self) {
        self.answers.clear();
        self.keys.clear();
        self.left = 0;
    }

    /// A GET of this connection passed `prepare`: later reads may be read ahead.
    pub fn admit(&mut self) {
        self.admitted = true;
    }

    /// The looked-up answer for this key, if the window holds one not taken
    /// yet: `Some(None)` is a looked-up miss.
    pub fn take(&mut self, hash: u64, key: &[u8]) -> Option<Option<OwnedItem>> {
        let keys = &self.keys;
        let a = self
            .answers
            .iter_mut()
            .find(|a| !a.taken && a.hash == hash && &keys[a.key.0..a.key.1] == key)?;
        a.taken = true;
        Some(a.item.take())
    }
}

impl crate::service::conn::ReadAhead for Ahead {
    /// Past the window, the answers are dropped.
    fn request_done(&mut self) {
        if self.left > 0 {
            self.left -= 1;
            if self.left == 0 {
                self.clear();
            }
        }
    }
}

impl ClientService {
    /// Looks up, one `Op::BatchGet` per other core, the keys of the plain
    /// GETs at the front of `input` (see the module comment). Does nothing
    /// unless at least two of them belong to other cores, or in a cluster
    /// (a cluster GET is coordinated by the control core instead).
    pub(super) async fn read_ahead(&self, input: &[u8], ahead: &mut Ahead) {
        ahead.clear();
        let cores = self.ctx.cores;
        if cores == 1 || !ahead.admitted || self.is_cluster() {
            return;
        }
        // First pass: the window's keys of other cores, into buffers the connection keeps
        // (no allocation once they have grown).
        let mut window = 0;
        let mut off = 0;
        while window < MAX_WINDOW {
            let Parsed::Complete(h) = parse_head(&input[off..]) else {
                break;
            };
            if off == 0 && h.len == input.len() {
                // One request: nothing to look up ahead.
                return;
            }
            if h.method != Method::Get || !matches!(h.body, BodyKind::None) {
                break;
            }
            let Resolved::Key(seg) = resolve(h.path, Method::Get) else {
                break;
            };
            let mut kb = [0u8; MAX_KEY];
            let Ok(key) = decode_path_key(seg, &mut kb) else {
                break;
            };
            window += 1;
            off += h.len;
            let hash = xxhash64(key, 0);
            let core = shard_for(hash, cores);
            if core == self.ctx.id {
                continue;
            }
            let start = ahead.keys.len();
            ahead.keys.extend_from_slice(key);
            ahead.answers.push(Answer {
                hash,
                core,
                key: (start, ahead.keys.len()),
                item: None,
                taken: false,
            });
        }
        // A lone request takes the ordinary path.
        if ahead.answers.len() < 2 {
            ahead.clear();
            return;
        }
        let mut per_core: Vec<Vec<KeyRef>> = Vec::new();
        per_core.resize_with(cores, Vec::new);
        for (idx, a) in ahead.answers.iter().enumerate() {
            per_core[a.core].push(KeyRef {
                idx,
                hash: a.hash,
                key: ahead.keys[a.key.0..a.key.1].to_vec(),
            });
        }
        // Send every core its batch before awaiting any, so the lookups overlap.
        let mut tickets = Vec::with_capacity(cores);
        for (core, keys) in per_core.into_iter().enumerate() {
            if !keys.is_empty() {
                crate::metrics::bump(&self.ctx.metrics.cross_core, 1);
                tickets.push(self.ctx.dispatch.send(core, Op::BatchGet(keys)).await);
            }
        }
        for t in tickets {
            if let Reply::Items(items) = t.await {
                for (idx, item) in items {
                    if let Some(a) = ahead.answers.get_mut(idx) {
                        a.item = item;
                    }
                }
            }
        }
        ahead.left = window;
    }
}
