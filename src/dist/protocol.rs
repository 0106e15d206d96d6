//! The typed peer protocol (cluster.md §12): one request type per `/internal/*` route the
//! control core calls, each knowing its method, target, body and how its answer decodes.
//! [`crate::dist::client::PeerClient::call`] sends any of them, so no module builds a
//! target string or parses a peer's answer by hand.
//!
//! The JSON shapes themselves are `wire.rs` (shared with the dist listener, which decodes
//! the same request types); the answers only the control core reads live here.

use std::fmt::Write;

use serde::Deserialize;

use super::ae::Digest;
use super::client::encode_query;
use super::wire::{AckResp, BatchAnswer, BatchGetReq, BatchGetResp, DigestsReq, GetResp, SetReq};

/// Why a call did not produce its answer.
#[derive(Debug)]
pub enum PeerError {
    /// No HTTP answer (connect, TLS, I/O, timeout).
    Transport(String),
    /// An HTTP answer with a status the route does not succeed with.
    Status(u16),
    /// A success status whose body is not the route's answer.
    Decode(String),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::Transport(e) => f.write_str(e),
            PeerError::Status(s) => write!(f, "answered {s}"),
            PeerError::Decode(e) => write!(f, "bad answer: {e}"),
        }
    }
}

/// One peer request.
pub trait Call {
    type Answer;
    /// The route label of `hypercache_peer_requests_total`.
    const LABEL: &'static str;
    const METHOD: &'static str;
    fn target(&self) -> String;
    /// Writes the body into the request buffer, after the room left for the head; false when
    /// the route has no body.
    fn write_body(&self, _out: &mut Vec<u8>) -> bool {
        false
    }
    /// About how many bytes `write_body` writes, so the request buffer is allocated once.
    fn body_size_hint(&self) -> usize {
        0
    }
    /// The answer of a response; by default 200 with the JSON of `Answer`.
    fn decode(status: u16, body: &[u8]) -> Result<Self::Answer, PeerError>
    where
        Self::Answer: for<'de> Deserialize<'de>,
    {
        if status != 200 {
            return Err(PeerError::Status(status));
        }
        serde_json::from_slice(body).map_err(|e| PeerError::Decode(e.to_string()))
    }
}

/// A JSON body, serialized straight into the request buffer.
fn json<T: serde::Serialize>(out: &mut Vec<u8>, v: &T) -> bool {
    // Serializing our own request types into a Vec cannot fail.
    let _ = serde_json::to_writer(out, v);
    true
}

/// `GET /internal/get?key=`: one key's entry, tombstone or nothing.
pub struct GetKey<'a>(pub &'a str);

impl Call for GetKey<'_> {
    type Answer = GetResp;
    const LABEL: &'static str = "internal_get";
    const METHOD: &'static str = "GET";
    fn target(&self) -> String {
        format!("/internal/get?key={}", encode_query(self.0))
    }
}

/// `POST /internal/batch/get`: several keys, answers in request order.
pub struct BatchGet(pub BatchGetReq);

impl Call for BatchGet {
    type Answer = BatchGetResp;
    const LABEL: &'static str = "internal_batch_get";
    const METHOD: &'static str = "POST";
    fn target(&self) -> String {
        "/internal/batch/get".into()
    }
    fn write_body(&self, out: &mut Vec<u8>) -> bool {
        json(out, &self.0)
    }
}

/// `POST /internal/set`: one versioned value (`replicate` false: the peer never re-replicates it).
pub struct SetOne(pub SetReq);

/// A 2xx answer of `/internal/set` or `/internal/del`: `{}`, or the peer's newer entry.
fn ack(status: u16, body: &[u8]) -> Result<AckResp, PeerError> {
    if !(200..300).contains(&status) {
        return Err(PeerError::Status(status));
    }
    Ok(serde_json::from_slice(body).unwrap_or_default())
}

impl Call for SetOne {
    type Answer = AckResp;
    const LABEL: &'static str = "internal_set";
    const METHOD: &'static str = "POST";
    fn target(&self) -> String {
        "/internal/set".into()
    }
    fn write_body(&self, out: &mut Vec<u8>) -> bool {
        json(out, &self.0)
    }
    fn body_size_hint(&self) -> usize {
        self.0.key.len() + self.0.value.encoded_len() + self.0.origin.len() + 128
    }
    fn decode(status: u16, body: &[u8]) -> Result<AckResp, PeerError> {
        ack(status, body)
    }
}

/// `DELETE /internal/del?key=&version=&origin=&deleted_at=`: one versioned delete.
pub struct DelOne<'a> {
    pub key: &'a str,
    pub version: u64,
    pub origin: &'a str,
    pub deleted_at_ms: u64,
}

impl Call for DelOne<'_> {
    type Answer = AckResp;
    const LABEL: &'static str = "internal_del";
    const METHOD: &'static str = "DELETE";
    fn target(&self) -> String {
        format!(
            "/internal/del?key={}&version={}&origin={}&deleted_at={}",
            encode_query(self.key),
            self.version,
            encode_query(self.origin),
            self.deleted_at_ms
        )
    }
    fn decode(status: u16, body: &[u8]) -> Result<AckResp, PeerError> {
        ack(status, body)
    }
}

/// `POST /internal/batch`: entries and tombstones, one result per item, for every sender (the
/// write fan-out, hints, rebalance, anti-entropy, read repair). The entries are written
/// straight into the request (`batch_body.rs`): no wire item is built per entry.
pub struct Batch<'a> {
    pub reason: &'a str,
    pub items: &'a [super::batch_body::Item<'a>],
    pub now_ms: u64,
}

impl Call for Batch<'_> {
    type Answer = BatchAnswer;
    const LABEL: &'static str = "internal_batch";
    const METHOD: &'static str = "POST";
    fn target(&self) -> String {
        "/internal/batch".into()
    }
    fn write_body(&self, out: &mut Vec<u8>) -> bool {
        super::batch_body::write(out, self.reason, self.items, self.now_ms);
        true
    }
    fn body_size_hint(&self) -> usize {
        let items: usize = self
            .items
            .iter()
            .map(|&(_, k, e)| super::batch_body::item_size(k, e))
            .sum();
        items + 32
    }
}

/// `GET /internal/ae/leaves`: the peer's Merkle leaves for our pair, or `equal`.
/// 409 means the two nodes' rings differ (the exchange waits for the next round).
pub struct AeLeaves<'a> {
    pub me: &'a str,
    /// The ring fingerprint both sides must share.
    pub ring: &'a str,
    pub root_hex: String,
    /// Compare only entries written before this (`ae::settled`); None = all (cluster.md §10).
    pub before: Option<u64>,
}

#[derive(Deserialize, Debug, Default)]
pub struct LeavesAnswer {
    #[serde(default)]
    pub equal: bool,
    #[serde(default)]
    pub leaves: Vec<String>,
}

impl Call for AeLeaves<'_> {
    type Answer = LeavesAnswer;
    const LABEL: &'static str = "internal_ae_leaves";
    const METHOD: &'static str = "GET";
    fn target(&self) -> String {
        let mut t = format!(
            "/internal/ae/leaves?peer={}&ring={}&root={}",
            encode_query(self.me),
            self.ring,
            self.root_hex
        );
        if let Some(b) = self.before {
            let _ = write!(t, "&before={b}");
        }
        t
    }
}

/// `POST /internal/ae/digests`: the peer's entries in the differing leaves.
pub struct AeDigests<'a> {
    pub me: &'a str,
    pub ring: &'a str,
    pub leaves: &'a [usize],
    pub before: Option<u64>,
}

#[derive(Deserialize, Debug)]
pub struct DigestsAnswer {
    pub entries: Vec<Digest>,
}

impl Call for AeDigests<'_> {
    type Answer = DigestsAnswer;
    const LABEL: &'static str = "internal_ae_digests";
    const METHOD: &'static str = "POST";
    fn target(&self) -> String {
        "/internal/ae/digests".into()
    }
    fn write_body(&self, out: &mut Vec<u8>) -> bool {
        json(
            out,
            &DigestsReq {
                peer: self.me.to_string(),
                ring: self.ring.to_string(),
                // Leaf indexes are below ae::LEAVES (1024), so they fit the wire's u16.
                leaves: self.leaves.iter().map(|&l| l as u16).collect(),
                before: self.before,
            },
        )
    }
}

/// `GET /internal/keys?q=&limit=&cursor=`: one page of the peer's owned live keys.
pub struct KeysPage<'a> {
    pub q: &'a str,
    pub limit: usize,
    pub cursor: &'a str,
}

#[derive(Deserialize, Debug)]
pub struct KeysAnswer {
    pub keys: Vec<String>,
    #[serde(default)]
    pub next_cursor: String,
}

impl Call for KeysPage<'_> {
    type Answer = KeysAnswer;
    const LABEL: &'static str = "internal_keys";
    const METHOD: &'static str = "GET";
    fn target(&self) -> String {
        format!(
            "/internal/keys?q={}&limit={}&cursor={}",
            encode_query(self.q),
            self.limit,
            encode_query(self.cursor)
        )
    }
}

/// `POST /internal/gossip`: our member table; the answer is the peer's.
pub struct Gossip(pub Vec<u8>);

#[derive(Deserialize, Debug)]
pub struct GossipAnswer {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub members: Vec<serde_json::Value>,
}

impl Call for Gossip {
    type Answer = GossipAnswer;
    const LABEL: &'static str = "internal_gossip";
    const METHOD: &'static str = "POST";
    fn target(&self) -> String {
        "/internal/gossip".into()
    }
    fn write_body(&self, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(&self.0);
        true
    }
    /// A 200 whose body is not a table still counts as an answer (an older peer).
    fn decode(status: u16, body: &[u8]) -> Result<GossipAnswer, PeerError> {
        if status != 200 {
            return Err(PeerError::Status(status));
        }
        Ok(serde_json::from_slice(body).unwrap_or(GossipAnswer {
            node: None,
            members: Vec::new(),
        }))
    }
}

/// `GET /internal/probe?target=`: ask a relay to probe a member (200: it answered).
pub struct Probe<'a>(pub &'a str);

impl Call for Probe<'_> {
    type Answer = ();
    const LABEL: &'static str = "internal_probe";
    const METHOD: &'static str = "GET";
    fn target(&self) -> String {
        format!("/internal/probe?target={}", encode_query(self.0))
    }
    fn decode(status: u16, _body: &[u8]) -> Result<(), PeerError> {
        if status == 200 {
            Ok(())
        } else {
            Err(PeerError::Status(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_encode_their_parameters() {
        assert_eq!(GetKey("a b/c").target(), "/internal/get?key=a%20b%2Fc");
        let d = DelOne {
            key: "user:1",
            version: 7,
            origin: "node-1",
            deleted_at_ms: 9,
        };
        assert_eq!(
            d.target(),
            "/internal/del?key=user%3A1&version=7&origin=node-1&deleted_at=9"
        );
        let k = KeysPage {
            q: "user:*",
            limit: 100,
            cursor: "0.5",
        };
        assert_eq!(
            k.target(),
            "/internal/keys?q=user%3A%2A&limit=100&cursor=0.5"
        );
        assert_eq!(Probe("node 2").target(), "/internal/probe?target=node%202");
    }

    #[test]
    fn answers_decode_by_route() {
        assert!(matches!(
            GetKey::decode(503, b"{}"),
            Err(PeerError::Status(503))
        ));
        assert!(matches!(
            GetKey::decode(200, b"[]"),
            Err(PeerError::Decode(_))
        ));
        let g = GetKey::decode(200, br#"{"found":false}"#).unwrap();
        assert!(!g.found);
        // set/del: any 2xx is an ack; a newer entry comes back in it.
        let a = SetOne::decode(201, br#"{"version":5,"origin":"n"}"#).unwrap();
        assert_eq!((a.version, a.origin.as_deref()), (Some(5), Some("n")));
        assert!(DelOne::decode(200, b"").unwrap().version.is_none());
        assert!(matches!(
            DelOne::decode(400, b""),
            Err(PeerError::Status(400))
        ));
        assert!(matches!(
            AeLeaves::decode(409, b""),
            Err(PeerError::Status(409))
        ));
        assert!(Gossip::decode(200, b"not json").unwrap().members.is_empty());
        assert!(Probe::decode(200, b"").is_ok());
        assert!(matches!(
            Probe::decode(504, b""),
            Err(PeerError::Status(504))
        ));
    }
}
