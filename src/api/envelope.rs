//! JSON bodies of the client API, written straight into the response buffer
//! (field order as api.md shows; no intermediate `serde_json::Value`).

use std::io::Write;

use base64::Engine;

use crate::http::date::write_rfc3339_secs;
use crate::http::response::json_str;

/// Fields of a live item needed by the envelope and HEAD headers.
pub struct ItemView<'a> {
    pub value: &'a [u8],
    pub len: usize,
    pub version: u64,
    pub origin: &'a str,
    pub expires_at_ms: u64,
}

/// Remaining ms, rounded up (>= 1 while live).
pub fn remaining_ms(expires_at_ms: u64, now_ms: u64) -> u64 {
    expires_at_ms.saturating_sub(now_ms).max(1)
}

/// Appends `"owners":[...]`.
pub fn write_owners(b: &mut Vec<u8>, owners: &[&str]) {
    b.extend_from_slice(b"\"owners\":");
    crate::http::response::json_str_list(b, owners);
}

/// Appends standard base64 (with padding) of `v` as a JSON string.
pub fn write_b64(b: &mut Vec<u8>, v: &[u8]) {
    b.push(b'"');
    let start = b.len();
    b.resize(start + base64::encoded_len(v.len(), true).unwrap_or(0), 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(v, &mut b[start..])
        .unwrap_or(0);
    b.truncate(start + n);
    b.push(b'"');
}

/// The item fields shared by the GET envelope and batch-get results:
/// `"value":..,"value_encoding":"base64"[,"ttl_ms",..,"expires_at"],"version",..,"origin",..,"last_updated"`.
pub fn write_item_fields(b: &mut Vec<u8>, it: &ItemView<'_>, now_ms: u64) {
    b.extend_from_slice(b"\"value\":");
    write_b64(b, it.value);
    b.extend_from_slice(b",\"value_encoding\":\"base64\"");
    if it.expires_at_ms > 0 {
        let _ = write!(
            b,
            ",\"ttl_ms\":{},\"expires_at\":\"",
            remaining_ms(it.expires_at_ms, now_ms)
        );
        write_rfc3339_secs(it.expires_at_ms, b);
        b.push(b'"');
    }
    let _ = write!(b, ",\"version\":{},\"origin\":", it.version);
    json_str(b, it.origin);
    b.extend_from_slice(b",\"last_updated\":\"");
    write_rfc3339_secs(crate::store::Hlc::wall_ms(it.version), b);
    b.push(b'"');
}

pub fn write_envelope(
    b: &mut Vec<u8>,
    key: &str,
    it: &ItemView<'_>,
    now_ms: u64,
    node: &str,
    owners: &[&str],
) {
    b.extend_from_slice(b"{\"key\":");
    json_str(b, key);
    b.push(b',');
    write_item_fields(b, it, now_ms);
    b.extend_from_slice(b",\"node\":");
    json_str(b, node);
    b.push(b',');
    write_owners(b, owners);
    b.push(b'}');
}

pub fn write_put(
    b: &mut Vec<u8>,
    key: &str,
    ttl_ms: u64,
    bytes: usize,
    node: &str,
    owners: &[&str],
) {
    b.extend_from_slice(b"{\"key\":");
    json_str(b, key);
    b.extend_from_slice(b",\"stored\":true");
    if ttl_ms > 0 {
        let _ = write!(b, ",\"ttl_ms\":{ttl_ms}");
    }
    let _ = write!(b, ",\"bytes\":{bytes},\"node\":");
    json_str(b, node);
    b.push(b',');
    write_owners(b, owners);
    b.push(b'}');
}

pub fn write_deleted(b: &mut Vec<u8>, key: &str, node: &str, owners: &[&str]) {
    b.extend_from_slice(b"{\"key\":");
    json_str(b, key);
    b.extend_from_slice(b",\"deleted\":true,\"node\":");
    json_str(b, node);
    b.push(b',');
    write_owners(b, owners);
    b.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape() {
        let it = ItemView {
            value: b"world",
            len: 5,
            version: 116527045017600000,
            origin: "node-1",
            expires_at_ms: 0,
        };
        let mut b = Vec::new();
        write_envelope(&mut b, "greeting", &it, 0, "node-2", &["node-1", "node-3"]);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["value"], "d29ybGQ=");
        assert_eq!(v["version"].as_u64(), Some(116527045017600000));
        assert_eq!(v["last_updated"], "2026-05-06T10:00:00Z");
        assert!(v.get("ttl_ms").is_none());
    }
}
