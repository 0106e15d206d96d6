//! Scan routes of the dist listener: `/internal/merkle`, `/internal/keys`, and the anti-entropy
//! leaves and digests.

use super::{bad, ok_json, DistService};
use crate::dist::queries::{KeysQuery, LeavesQuery};
use crate::dist::wire;
use crate::http::response::Responder;
use crate::runtime::msg::{Op, Reply};

impl DistService {
    pub(super) async fn merkle(&self, r: &mut Responder<'_>) {
        let mut entries = Vec::new();
        for reply in self.ctl.all_cores(|| Op::MerkleEntries).await {
            if let Reply::Entries(v) = reply {
                entries.extend(v);
            }
        }
        let (root, leaves) = crate::dist::merkle::build(&mut entries);
        let leaf_hashes =
            (!leaves.is_empty()).then(|| leaves.iter().map(|l| wire::b64(l)).collect::<Vec<_>>());
        ok_json(
            r,
            &serde_json::json!({
                "root": root.map(|h| wire::b64(&h)),
                "leaf_hashes": leaf_hashes,
                "chunk_size": crate::dist::merkle::CHUNK,
            }),
        );
    }

    /// `GET /internal/keys?cursor=C&limit=L&q=Q` (cluster.md §12.3). The
    /// cursor is `<core>.<log position the page starts at>`, so a page resumes in
    /// O(page) however deep into the shard it is.
    pub(super) async fn keys(&self, query: &[u8], r: &mut Responder<'_>) {
        let q = match KeysQuery::parse(query, self.ctl.cores) {
            Ok(q) => q,
            Err(e) => return bad(r, &e),
        };
        let ((mut core, mut from), limit, pattern) = (q.cursor, q.limit, q.pattern);
        let ring = self.ctl.ring.borrow().clone();
        let mut keys = Vec::new();
        let mut next = String::new();
        while core < self.ctl.cores {
            let want = limit - keys.len();
            let op = Op::Keys {
                ring: ring.clone(),
                pattern: pattern.clone(),
                from,
                limit: want,
            };
            let Reply::KeyPage(page, resume) = self.ctl.dispatch.call(core, op).await else {
                break;
            };
            keys.extend(page);
            if let Some(slot) = resume {
                next = format!("{core}.{slot}");
                break;
            }
            core += 1;
            from = 0;
            if keys.len() == limit {
                if core < self.ctl.cores {
                    next = format!("{core}.0");
                }
                break;
            }
        }
        let truncated = !next.is_empty();
        ok_json(
            r,
            &serde_json::json!({"keys": keys, "next_cursor": next, "truncated": truncated}),
        );
    }

    pub(super) fn ring_mismatch(&self, r: &mut Responder<'_>) {
        let fp = self.ctl.ring_fp();
        r.json(409, &[], |b| {
            let _ = serde_json::to_writer(
                b,
                &serde_json::json!({"error": "ring mismatch", "code": "RING_MISMATCH", "ring": fp}),
            );
        });
    }

    /// `GET /internal/ae/leaves?peer=A&ring=FP&root=R` (cluster.md §12.3).
    pub(super) async fn ae_leaves(&self, query: &[u8], r: &mut Responder<'_>) {
        let LeavesQuery {
            peer,
            ring,
            root,
            before,
        } = match LeavesQuery::parse(query) {
            Ok(q) => q,
            Err(e) => return bad(r, &e),
        };
        if ring != self.ctl.ring_fp() {
            return self.ring_mismatch(r);
        }
        let leaves = self
            .ctl
            .pair_leaves(&peer, before.unwrap_or(crate::dist::ae::NO_CUT_OFF))
            .await;
        let mine = crate::dist::ae::root(&leaves);
        let node = self.ctl.node.node_id();
        let hex = crate::dist::ae::hex;
        let v = if mine == root {
            serde_json::json!({"node": node, "ring": ring, "root": hex(mine), "equal": true})
        } else {
            let l: Vec<String> = leaves.iter().map(|x| hex(*x)).collect();
            serde_json::json!({"node": node, "ring": ring, "root": hex(mine), "equal": false, "leaves": l})
        };
        ok_json(r, &v);
    }

    /// `POST /internal/ae/digests` `{"peer","ring","leaves":[..≤64]}`.
    pub(super) async fn ae_digests(&self, body: &[u8], r: &mut Responder<'_>) {
        let req = match wire::DigestsReq::parse(body) {
            Ok(v) => v,
            Err(e) => return bad(r, &e),
        };
        if req.ring != self.ctl.ring_fp() {
            return self.ring_mismatch(r);
        }
        // The scan materialises only the requested leaves' digests.
        let wanted = crate::dist::ae::LeafMask::of(req.leaves.iter().map(|&l| l as usize));
        let before = req.before.unwrap_or(crate::dist::ae::NO_CUT_OFF);
        let entries = self.ctl.pair_set(&req.peer, wanted, before).await;
        ok_json(
            r,
            &serde_json::json!({"node": self.ctl.node.node_id(), "entries": entries}),
        );
    }
}
