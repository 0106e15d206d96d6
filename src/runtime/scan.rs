//! The scans a data core runs for the control core: `/internal/keys` pages, `/internal/merkle`
//! entries, anti-entropy digests and the rebalance key list.
//!
//! They run as tasks in the core's scan queue (250 shares against the client and mesh queues'
//! 1000 each: a saturated core still gives a scan about a tenth of its time, so a million-key
//! scan finishes inside the 5 s peer timeout), in slices of [`SCAN_SLICE`] slots
//! ([`Shard::scan_items_step`]) with a yield point between slices, so a scan over millions of
//! keys delays the GETs on its core by at most one slice. The shard is borrowed only inside a
//! slice, never across the yield.
//!
//! [`Shard::scan_items_step`]: crate::store::Shard::scan_items_step

use std::rc::Rc;
use std::sync::Arc;

use super::CoreCtx;
use crate::base::now_ms;
use crate::dist::ae::{leaf_of, settled, Digest, LeafMask, LeafSums};
use crate::dist::ring::Ring;
use crate::runtime::msg::{Op, Reply};
use crate::store::{Item, Resume};

/// Slots (or tombstones) visited between yield points: about 50-100 µs of work.
pub const SCAN_SLICE: usize = 1024;

/// Slots one `/internal/keys` page may visit: a selective pattern returns a short page with a
/// cursor rather than walking the whole shard in one request (cluster.md §12.3 allows short
/// pages), so every page finishes well inside the peer request timeout.
pub const PAGE_SLOTS: usize = 64 * SCAN_SLICE;

/// Whether `op` is a scan, run by [`scan`] in the scan queue rather than by
/// [`CoreCtx::execute`].
pub fn is_scan(op: &Op) -> bool {
    matches!(
        op,
        Op::AeDigests { .. }
            | Op::AeLeafSums { .. }
            | Op::Keys { .. }
            | Op::ScanKeys
            | Op::MerkleEntries
    )
}

/// Runs a scan op (see [`is_scan`]) to completion, yielding between slices.
pub async fn scan(ctx: Rc<CoreCtx>, op: Op) -> Reply {
    match op {
        Op::AeDigests {
            ring,
            peer,
            leaves,
            before,
        } => {
            let mut out = Vec::new();
            each_pair_entry(
                &ctx,
                ring,
                peer,
                before,
                leaves,
                |_, k, version, origin, deleted| {
                    out.push(Digest {
                        key: String::from_utf8_lossy(k).into_owned(),
                        version,
                        origin: origin.to_string(),
                        deleted,
                    })
                },
            )
            .await;
            // Writes between slices can show a key twice (an item then its tombstone, or a
            // tombstone moved by a purge): keep the newest, once, or the leaf sums would differ.
            crate::dist::ae::dedup_newest(&mut out);
            Reply::Digests(out)
        }
        Op::AeLeafSums { ring, peer, before } => {
            let mut sums = LeafSums::default();
            each_pair_entry(
                &ctx,
                ring,
                peer,
                before,
                LeafMask::ALL,
                |h, k, v, o, deleted| sums.add(h, k, v, o, deleted),
            )
            .await;
            Reply::LeafSums(sums.finish())
        }
        Op::Keys {
            ring,
            pattern,
            from,
            limit,
        } => {
            let me = ctx.node.node_id().to_string();
            let mut buf = Vec::new();
            let mut page = Vec::new();
            let resume = scan_items(&ctx, from, PAGE_SLOTS, |h, k, _| {
                let Ok(key) = std::str::from_utf8(k) else {
                    return true;
                };
                if !pattern.matches(key) {
                    return true;
                }
                ring.owners_into(h, &mut buf);
                if !buf.iter().any(|&i| ring.member(i) == me) {
                    return true;
                }
                if page.len() == limit {
                    // One more match exists: the next page starts at it.
                    return false;
                }
                page.push(key.to_string());
                true
            })
            .await;
            // A page that stopped early (full, or PAGE_SLOTS visited) resumes where it stopped.
            match resume {
                Resume::At(n) => Reply::KeyPage(page, Some(n)),
                Resume::Done => Reply::KeyPage(page, None),
            }
        }
        Op::ScanKeys => {
            let mut out = Vec::new();
            each_item(&ctx, |h, k, _| out.push((h, k.to_vec()))).await;
            each_tombstone(&ctx, |h, k, _, _| out.push((h, k.to_vec()))).await;
            out.sort_unstable_by(|a, b| a.1.cmp(&b.1));
            out.dedup_by(|a, b| a.1 == b.1);
            Reply::KeyList(out)
        }
        Op::MerkleEntries => {
            let mut v = Vec::new();
            each_item(&ctx, |_, k, i| v.push((k.to_vec(), i.version))).await;
            each_tombstone(&ctx, |_, k, ver, _| v.push((k.to_vec(), ver))).await;
            // A key seen twice is deduplicated by `merkle::build`, which sorts anyway.
            Reply::Entries(v)
        }
        _ => unreachable!("not a scan op"),
    }
}

/// Every entry (live item, then tombstone) of the pair set P(this node, peer) under `ring`
/// (cluster.md §10) that was written before `before` and falls in `leaves`:
/// `f(hash, key, version, origin, deleted)`. The cheap checks come first; the ring lookup runs
/// only for the entries they keep.
async fn each_pair_entry(
    ctx: &CoreCtx,
    ring: Arc<Ring>,
    peer: String,
    before: u64,
    leaves: LeafMask,
    mut f: impl FnMut(u64, &[u8], u64, &str, bool),
) {
    let me = ctx.node.node_id().to_string();
    let mut buf = Vec::new();
    let mut wanted = |h: u64, version: u64| {
        if !settled(version, before) || !leaves.contains(leaf_of(h)) {
            return false;
        }
        ring.owners_into(h, &mut buf);
        buf.iter().any(|&i| ring.member(i) == me) && buf.iter().any(|&i| ring.member(i) == peer)
    };
    each_item(ctx, |h, k, it| {
        if wanted(h, it.version) {
            f(h, k, it.version, it.origin, false);
        }
    })
    .await;
    each_tombstone(ctx, |h, k, v, o| {
        if wanted(h, v) {
            f(h, k, v, o, true);
        }
    })
    .await;
}

/// Every live item, a slice at a time: `f(hash, key, item)`.
async fn each_item(ctx: &CoreCtx, mut f: impl FnMut(u64, &[u8], Item<'_>)) {
    scan_items(ctx, 0, usize::MAX, |h, k, i| {
        f(h, k, i);
        true
    })
    .await;
}

/// Live items from slot `from` on, a slice at a time with a yield between slices, until `f`
/// returns false (resume at that item), about `max_slots` slots were visited, or the end.
async fn scan_items(
    ctx: &CoreCtx,
    from: usize,
    max_slots: usize,
    mut f: impl FnMut(u64, &[u8], Item<'_>) -> bool,
) -> Resume {
    let (mut at, mut visited) = (from, 0usize);
    loop {
        let mut stopped = false;
        let step = ctx
            .shard
            .borrow()
            .scan_items_step(at, SCAN_SLICE, now_ms(), |h, k, i| {
                stopped = !f(h, k, i);
                !stopped
            });
        visited = visited.saturating_add(SCAN_SLICE);
        match step {
            Resume::At(n) if stopped || visited >= max_slots => return Resume::At(n),
            Resume::At(n) => at = n,
            Resume::Done => return Resume::Done,
        }
        glommio::yield_if_needed().await;
    }
}

/// Every tombstone within its TTL, a slice at a time: `f(hash, key, version, origin)`.
async fn each_tombstone(ctx: &CoreCtx, mut f: impl FnMut(u64, &[u8], u64, &str)) {
    let mut below = usize::MAX;
    loop {
        let step = ctx.shard.borrow().scan_tombstones_step(
            below,
            SCAN_SLICE,
            now_ms(),
            |h, k, v, o, _| f(h, k, v, o),
        );
        match step {
            Resume::At(n) => below = n,
            Resume::Done => return,
        }
        glommio::yield_if_needed().await;
    }
}
