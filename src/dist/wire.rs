//! JSON shapes of the dist protocol (cluster.md §12.3) and the conversions
//! between wire items and store entries.

use std::borrow::Cow;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::http::date::rfc3339_millis;
use crate::store::entry::{Entry, Value};
use crate::store::Hlc;

/// A value in a peer write body: the base64 text a peer sent, or the shared bytes of an entry this
/// node sends, which serialize as base64 straight into the request buffer (serde_json's
/// `collect_str` escapes a `Display` as it writes, and base64's `Base64Display` encodes in stack
/// chunks), so a replicated value is copied once per owner, into that owner's request.
#[derive(Debug, Clone)]
pub enum WireValue {
    Text(String),
    Shared(Value),
}

impl WireValue {
    /// The bytes, decoding base64 text (a 400 on the route when it is not base64).
    pub fn decode(&self) -> Result<Value, String> {
        match self {
            WireValue::Text(s) => unb64(s).map(Value::from),
            WireValue::Shared(v) => Ok(v.clone()),
        }
    }

    /// Length of the base64 text (the batch splitter's body budget).
    pub fn encoded_len(&self) -> usize {
        match self {
            WireValue::Text(s) => s.len(),
            WireValue::Shared(v) => v.len().div_ceil(3) * 4,
        }
    }
}

impl Serialize for WireValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WireValue::Text(t) => s.serialize_str(t),
            WireValue::Shared(v) => s.collect_str(&base64::display::Base64Display::new(
                v,
                &base64::engine::general_purpose::STANDARD,
            )),
        }
    }
}

/// A peer's base64 text is decoded as it is read, straight from the request body into the
/// value's buffer (no `String` in between, no second pass). Text that is not base64 stays
/// text, so the item (not the whole body) is refused when its value is asked for.
impl<'de> Deserialize<'de> for WireValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = WireValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<WireValue, E> {
                Ok(match unb64(s) {
                    Ok(bytes) => WireValue::Shared(Value::from(bytes)),
                    Err(_) => WireValue::Text(s.to_string()),
                })
            }
        }
        d.deserialize_str(Visit)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ItemWire {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub expiration_ms: i64,
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub origin: String,
    #[serde(default, skip_deserializing)]
    pub last_updated: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TombWire {
    pub version: u64,
    pub origin: String,
    pub deleted_at: u64,
}

/// `/internal/set`: every field but `replicate` is required (a missing one
/// is a 400); `version` 0 or `origin` "" marks an unversioned Go sender.
#[derive(Serialize, Deserialize, Debug)]
pub struct SetReq {
    pub key: String,
    pub value: WireValue,
    pub expiration_ms: i64,
    pub version: u64,
    pub origin: String,
    #[serde(default)]
    pub replicate: bool,
}

/// Key and origin borrow the request body when they hold no escapes (serde_json's borrowed
/// strings): a replica decodes ~60 items per batch, and two `String`s per item were a visible
/// share of its time (the allocator's first touch of cold memory).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct BatchItem<'a> {
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<WireValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_ms: Option<i64>,
    #[serde(default)]
    pub version: u64,
    #[serde(default, borrow)]
    pub origin: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BatchReq<'a> {
    #[serde(default = "default_reason", borrow)]
    pub reason: Cow<'a, str>,
    #[serde(borrow)]
    pub items: Vec<BatchItem<'a>>,
}

fn default_reason() -> Cow<'static, str> {
    Cow::Borrowed("write")
}

/// One item's result as this node answers it; the key borrows the request's item.
#[derive(Serialize, Debug)]
pub struct BatchResult<'a> {
    pub key: Cow<'a, str>,
    pub status: ItemStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One batch item's outcome (cluster.md §12.3). A status this server does not know (a newer
/// or foreign peer) reads as `Other` and counts as a refusal, like `invalid`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Applied,
    Ignored,
    Invalid,
    #[serde(other, skip_serializing)]
    Other,
}

#[derive(Serialize, Debug)]
pub struct BatchResp<'a> {
    pub results: Vec<BatchResult<'a>>,
}

/// A peer's `/internal/batch` answer as the sender reads it: results in the order of the
/// items sent, so the key each result repeats is not read (no `String` per item and owner on
/// the coordinator; serde skips the field).
#[derive(Deserialize, Debug)]
pub struct BatchAnswer {
    pub results: Vec<ItemAnswer>,
}

/// One item's outcome as a peer answered it.
#[derive(Deserialize, Debug)]
pub struct ItemAnswer {
    pub status: ItemStatus,
    /// With `origin`, on an `ignored` item: the newer entry the owner holds (a re-issue may
    /// follow, cluster.md §6); absent when the owner already held this very write.
    pub version: Option<u64>,
    pub origin: Option<String>,
    /// Why an `invalid` item was refused (logged by the sender).
    pub error: Option<String>,
}

/// `/internal/set` and `/internal/del` answer `{}` or the newer local entry.
#[derive(Serialize, Deserialize, Debug, Default)]
pub struct AckResp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct GetResp {
    pub found: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<TombWire>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BatchGetReq {
    pub keys: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BatchGetResult {
    pub key: String,
    pub found: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<ItemWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstone: Option<TombWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct BatchGetResp {
    pub results: Vec<BatchGetResult>,
}

/// `POST /internal/ae/digests` (cluster.md §12.3): the caller, its ring fingerprint and at most
/// [`MAX_DIGEST_LEAVES`] leaf indexes. Sent by `protocol::AeDigests`, decoded by [`DigestsReq::parse`].
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct DigestsReq {
    pub peer: String,
    pub ring: String,
    pub leaves: Vec<u16>,
    /// The exchange's cut-off (`ae::settled`); absent from a Go or older peer = every entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

/// Leaves one digests request may ask for.
pub const MAX_DIGEST_LEAVES: usize = 64;

impl DigestsReq {
    pub fn parse(body: &[u8]) -> Result<DigestsReq, String> {
        let req: DigestsReq =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        if req.leaves.len() > MAX_DIGEST_LEAVES
            || req.leaves.iter().any(|&l| l as usize >= super::ae::LEAVES)
        {
            return Err("leaves: at most 64 indexes in 0..1023".into());
        }
        Ok(req)
    }
}

/// `origin` of a peer's entry: a node id (cluster.md §1), or "" from an unversioned Go sender.
/// Anything else is refused: an origin that cannot be a node id is garbage, and taking it as
/// unversioned would make the receiver version it afresh, beating every existing write.
pub fn check_origin(origin: &str) -> Result<(), String> {
    if origin.is_empty() || crate::dist::membership::valid_id(origin) {
        Ok(())
    } else {
        Err("invalid origin: must be a node id (1-128 of A-Z a-z 0-9 . _ -)".into())
    }
}

/// `version` of a peer's entry: no more than [`crate::store::MAX_CLOCK_AHEAD_MS`] ahead.
pub fn check_version(version: u64, now_ms: u64) -> Result<(), String> {
    if Hlc::plausible(version, now_ms) {
        Ok(())
    } else {
        Err(format!(
            "invalid version: {version} is more than 1h ahead of this node's clock ({now_ms} ms)"
        ))
    }
}

/// Both checks, for any versioned entry a peer sends.
pub fn check_stamp(version: u64, origin: &str, now_ms: u64) -> Result<(), String> {
    check_origin(origin)?;
    check_version(version, now_ms)
}

pub fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

/// Standard base64, line breaks ignored as Go's decoder does. Text without line breaks (every
/// peer of this server, and Go's `encoding/json`) decodes in place with no cleaned copy.
pub fn unb64(s: &str) -> Result<Vec<u8>, String> {
    let engine = &base64::engine::general_purpose::STANDARD;
    let decoded = if s.bytes().any(|c| c == b'\r' || c == b'\n') {
        let cleaned: Vec<u8> = s.bytes().filter(|&c| c != b'\r' && c != b'\n').collect();
        engine.decode(cleaned)
    } else {
        engine.decode(s)
    };
    decoded.map_err(|e| format!("invalid base64 value: {e}"))
}

/// Remaining ms, rounded up; 0 = no expiry (cluster.md §5).
pub fn remaining(expires_at_ms: u64, now_ms: u64) -> i64 {
    if expires_at_ms == 0 {
        0
    } else {
        expires_at_ms.saturating_sub(now_ms).max(1) as i64
    }
}

pub fn item_wire(
    key: &str,
    value: &[u8],
    version: u64,
    origin: &str,
    expires_at_ms: u64,
    now_ms: u64,
) -> ItemWire {
    ItemWire {
        key: key.to_string(),
        value: b64(value),
        expiration_ms: remaining(expires_at_ms, now_ms),
        version,
        origin: origin.to_string(),
        last_updated: rfc3339_millis(Hlc::wall_ms(version)),
    }
}

/// The wire form of a store entry as a batch item: what serde makes of it (a Go peer's body),
/// the oracle `batch_body.rs`'s direct writer, which every sender uses, is checked against.
#[cfg(test)]
pub fn entry_to_batch_item<'a>(key: &'a str, e: &'a Entry, now_ms: u64) -> BatchItem<'a> {
    match e {
        Entry::Item {
            value,
            version,
            origin,
            expires_at_ms,
        } => BatchItem {
            key: key.into(),
            value: Some(WireValue::Shared(value.clone())),
            expiration_ms: Some(remaining(*expires_at_ms, now_ms)),
            version: *version,
            origin: origin.as_str().into(),
            deleted: false,
            deleted_at: None,
        },
        Entry::Tombstone {
            version,
            origin,
            deleted_at_ms,
        } => BatchItem {
            key: key.into(),
            value: None,
            expiration_ms: None,
            version: *version,
            origin: origin.as_str().into(),
            deleted: true,
            deleted_at: Some(*deleted_at_ms),
        },
    }
}

/// Decodes a batch item into an entry (deadline = arrival + expiration_ms).
pub fn batch_item_to_entry(it: &BatchItem<'_>, now_ms: u64) -> Result<Entry, String> {
    check_stamp(it.version, &it.origin, now_ms)?;
    if it.deleted {
        return Ok(Entry::Tombstone {
            version: it.version,
            origin: it.origin.to_string(),
            deleted_at_ms: it.deleted_at.ok_or("tombstone without deleted_at")?,
        });
    }
    let exp = it.expiration_ms.unwrap_or(0);
    if exp < 0 {
        return Err("invalid expiration_ms: must be >= 0".into());
    }
    let value = it.value.as_ref().ok_or("missing value")?.decode()?;
    Ok(Entry::Item {
        value,
        version: it.version,
        origin: it.origin.to_string(),
        expires_at_ms: if exp > 0 { now_ms + exp as u64 } else { 0 },
    })
}

pub fn wire_item_to_entry(it: &ItemWire, now_ms: u64) -> Result<Entry, String> {
    check_stamp(it.version, &it.origin, now_ms)?;
    if it.expiration_ms < 0 {
        return Err("invalid expiration_ms: must be >= 0".into());
    }
    Ok(Entry::Item {
        value: unb64(&it.value)?.into(),
        version: it.version,
        origin: it.origin.clone(),
        expires_at_ms: if it.expiration_ms > 0 {
            now_ms + it.expiration_ms as u64
        } else {
            0
        },
    })
}

/// `found`/`item`/`tombstone` fields of a lookup result.
pub fn lookup_to_wire(
    key: &str,
    l: Option<&Entry>,
    now_ms: u64,
) -> (bool, Option<ItemWire>, Option<TombWire>) {
    match l {
        Some(Entry::Item {
            value,
            version,
            origin,
            expires_at_ms,
        }) => (
            true,
            Some(item_wire(
                key,
                value,
                *version,
                origin,
                *expires_at_ms,
                now_ms,
            )),
            None,
        ),
        Some(Entry::Tombstone {
            version,
            origin,
            deleted_at_ms,
        }) => (
            false,
            None,
            Some(TombWire {
                version: *version,
                origin: origin.clone(),
                deleted_at: *deleted_at_ms,
            }),
        ),
        None => (false, None, None),
    }
}
