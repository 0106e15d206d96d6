//! The server side of the peer routes that carry their request in the query string
//! (`/internal/get`, `/internal/del`, `/internal/probe`, `/internal/keys`,
//! `/internal/ae/leaves`): each is decoded and validated here, in one place, into a typed
//! request, so a route handler never looks at a raw parameter (the body routes decode into the
//! request types of `wire.rs`, such as `DigestsReq`). The client side of the same routes
//! is [`super::protocol`] (`GetKey`, `DelOne`, `Probe`, `KeysPage`, `AeLeaves`); the tests below
//! encode with it and decode with this, so the two cannot drift apart.
//!
//! Every error is a 400 body that says what is wrong, and nothing is applied after one: a
//! malformed `origin` on a delete must never become an unversioned delete, which would beat every
//! existing write of the key.

use super::glob::Pattern;
use super::wire;
use crate::http::keys::{check_key, form_decode, query_param};

/// A key from a query parameter: form-decoded, UTF-8, 1..1024 bytes.
fn key(query: &[u8], name: &[u8]) -> Result<String, String> {
    let raw = query_param(query, name).ok_or("missing key")?;
    let bytes = form_decode(raw).map_err(|e| e.message())?;
    let key = String::from_utf8(bytes).map_err(|_| "invalid key: not valid UTF-8".to_string())?;
    check_key(&key).map_err(|e| e.message())?;
    Ok(key)
}

/// A form-decoded UTF-8 parameter; `None` when absent, empty or undecodable.
fn text(query: &[u8], name: &[u8]) -> Option<String> {
    query_param(query, name)
        .and_then(|v| form_decode(v).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .filter(|v| !v.is_empty())
}

/// An optional unsigned number; absent or empty is `None`.
fn number(query: &[u8], name: &[u8]) -> Result<Option<u64>, String> {
    match query_param(query, name) {
        None | Some(b"") => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| format!("invalid {}: not a number", String::from_utf8_lossy(name))),
    }
}

/// `GET /internal/get?key=`.
#[derive(Debug, PartialEq, Eq)]
pub struct GetQuery {
    pub key: String,
}

impl GetQuery {
    pub fn parse(query: &[u8]) -> Result<GetQuery, String> {
        Ok(GetQuery {
            key: key(query, b"key")?,
        })
    }
}

/// `DELETE /internal/del?key=&version=&origin=&deleted_at=&replicate=`.
#[derive(Debug, PartialEq, Eq)]
pub struct DelQuery {
    pub key: String,
    /// 0 = unversioned (a Go sender with `replicate=true`: the key's core versions it).
    pub version: u64,
    pub origin: String,
    /// When the delete happened; absent means now.
    pub deleted_at_ms: Option<u64>,
    /// A Go sender asks this node to coordinate the delete.
    pub replicate: bool,
}

impl DelQuery {
    /// `now_ms` bounds the version (cluster.md §4: not too far ahead of this node's clock).
    pub fn parse(query: &[u8], now_ms: u64) -> Result<DelQuery, String> {
        let key = key(query, b"key")?;
        let version = number(query, b"version")?;
        let deleted_at_ms = number(query, b"deleted_at")?;
        let replicate = match query_param(query, b"replicate") {
            Some(b"true") => true,
            None | Some(b"false" | b"") => false,
            Some(_) => return Err("invalid replicate: must be true or false".into()),
        };
        let origin = match query_param(query, b"origin") {
            None => String::new(),
            Some(o) => form_decode(o)
                .ok()
                .and_then(|o| String::from_utf8(o).ok())
                .ok_or("invalid origin: bad percent-encoding or not UTF-8")?,
        };
        let version = version.unwrap_or(0);
        wire::check_stamp(version, &origin, now_ms)?;
        Ok(DelQuery {
            key,
            version,
            origin,
            deleted_at_ms,
            replicate,
        })
    }
}

/// `GET /internal/probe?target=`: a member id to probe on the caller's behalf.
#[derive(Debug, PartialEq, Eq)]
pub struct ProbeQuery {
    pub target: String,
}

impl ProbeQuery {
    pub fn parse(query: &[u8]) -> Result<ProbeQuery, String> {
        let target = query_param(query, b"target")
            .and_then(|t| form_decode(t).ok())
            .map(|t| String::from_utf8_lossy(&t).into_owned())
            .filter(|t| !t.is_empty())
            .ok_or("missing target")?;
        Ok(ProbeQuery { target })
    }
}

/// Page size of `/internal/keys` when the caller gives none (or 0).
pub const DEFAULT_KEYS_LIMIT: usize = 10_000;

/// `GET /internal/keys?cursor=C&limit=L&q=Q` (cluster.md §12.3).
#[derive(Debug, PartialEq, Eq)]
pub struct KeysQuery {
    pub limit: usize,
    /// `<core>.<log position>` where the page starts, core below the node's core count; `(0, 0)`
    /// without a cursor.
    pub cursor: (usize, usize),
    pub pattern: Pattern,
}

impl KeysQuery {
    /// `cores`: this node's data cores (a cursor names one of them).
    pub fn parse(query: &[u8], cores: usize) -> Result<KeysQuery, String> {
        let param = |n: &[u8]| {
            query_param(query, n)
                .and_then(|v| form_decode(v).ok())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let limit = match param(b"limit").as_deref() {
            None | Some("") | Some("0") => DEFAULT_KEYS_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .map_err(|_| "invalid limit: must be a non-negative integer")?,
        };
        let cursor = match param(b"cursor").as_deref() {
            None | Some("") => (0, 0),
            Some(c) => c
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .filter(|&(core, _)| core < cores)
                .ok_or("invalid cursor")?,
        };
        let pattern =
            Pattern::parse(&param(b"q").unwrap_or_default()).map_err(|_| "invalid glob pattern")?;
        Ok(KeysQuery {
            limit,
            cursor,
            pattern,
        })
    }
}

/// `GET /internal/ae/leaves?peer=A&ring=FP&root=R` (cluster.md §12.3).
#[derive(Debug, PartialEq, Eq)]
pub struct LeavesQuery {
    pub peer: String,
    /// The ring fingerprint, 16 hex digits as the caller sent them.
    pub ring: String,
    pub root: u64,
    /// The exchange's cut-off (`dist::ae::settled`, Unix ms); absent (a Go or older peer) =
    /// every entry.
    pub before: Option<u64>,
}

impl LeavesQuery {
    pub fn parse(query: &[u8]) -> Result<LeavesQuery, String> {
        let (Some(peer), Some(ring), Some(root)) = (
            text(query, b"peer"),
            text(query, b"ring"),
            text(query, b"root"),
        ) else {
            return Err("missing peer, ring or root".into());
        };
        let root =
            u64::from_str_radix(&root, 16).map_err(|_| "malformed root: expected 16 hex digits")?;
        if ring.len() != 16 || u64::from_str_radix(&ring, 16).is_err() {
            return Err("malformed ring: expected 16 hex digits".into());
        }
        let before = match text(query, b"before") {
            None => None,
            Some(b) => Some(
                b.parse()
                    .map_err(|_| "malformed before: expected Unix milliseconds")?,
            ),
        };
        Ok(LeavesQuery {
            peer,
            ring,
            root,
            before,
        })
    }
}

#[cfg(test)]
#[path = "queries_tests.rs"]
mod tests;
