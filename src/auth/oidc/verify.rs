//! JWT verification, security.md §7 steps 1–7: pure (token, key set, settings, now
//! in; identity or a reason out), so every rule is unit-tested without an IdP.
//!
//! Signatures are checked with `jsonwebtoken::crypto::verify` (ring underneath);
//! everything else (the compact form, the alg allow-list, key choice by `kid`,
//! `kty`/`crv`/`use`/`alg` fit, the exact time rules) is written out here, because
//! the contract's rules differ from any library's defaults (no leeway on `exp`,
//! 300 s on `nbf` and `iat`, fractional times, no HS* ever).

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::auth::{Principal, Scopes};

/// The algorithms this server can accept (§7 step 2), before the IdP's list narrows them.
pub const ACCEPTED: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// What a key can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

fn family_of(alg: Algorithm) -> Family {
    match alg {
        Algorithm::ES256 => Family::P256,
        Algorithm::ES384 => Family::P384,
        Algorithm::EdDSA => Family::Ed25519,
        _ => Family::Rsa,
    }
}

pub struct Key {
    pub kid: Option<String>,
    pub alg: Option<String>,
    pub family: Family,
    pub key: DecodingKey,
}

/// The usable signing keys of a JWKS document.
#[derive(Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    /// `{"keys":[...]}` → the usable keys; an error when there is none.
    pub fn parse(body: &[u8]) -> Result<KeySet, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let list = v
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "no \"keys\" array".to_string())?;
        let keys: Vec<Key> = list.iter().filter_map(usable).collect();
        if keys.is_empty() {
            return Err("no usable signing key".into());
        }
        Ok(KeySet { keys })
    }
}

fn usable(jwk: &Value) -> Option<Key> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    if jwk.get("use").is_some() && s("use") != Some("sig") {
        return None;
    }
    let (family, key) = match (s("kty")?, s("crv")) {
        ("RSA", _) => (
            Family::Rsa,
            DecodingKey::from_rsa_components(s("n")?, s("e")?).ok()?,
        ),
        ("EC", Some("P-256")) => (
            Family::P256,
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?,
        ),
        ("EC", Some("P-384")) => (
            Family::P384,
            DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?,
        ),
        ("OKP", Some("Ed25519")) => (
            Family::Ed25519,
            DecodingKey::from_ed_components(s("x")?).ok()?,
        ),
        _ => return None,
    };
    Some(Key {
        kid: s("kid").map(str::to_string),
        alg: s("alg").map(str::to_string),
        family,
        key,
    })
}

/// What the configuration and the discovery document decide.
#[derive(Clone, Debug)]
pub struct Settings {
    pub issuer: String,
    pub audience: String,
    pub identity_claim: String,
    pub scope_claim: String,
    /// ACCEPTED ∩ the IdP's `id_token_signing_alg_values_supported` (RS256 when empty).
    pub algorithms: Vec<String>,
}

impl Settings {
    /// §7 step 2's list from the discovery document's field (absent or naming none: RS256).
    pub fn algorithms_from(supported: Option<&Value>) -> Vec<String> {
        let named: Vec<String> = supported
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|n| ACCEPTED.contains(n))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if named.is_empty() {
            vec!["RS256".to_string()]
        } else {
            named
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// The identity, and `exp` (seconds) after which it no longer holds.
    Valid(Principal, f64),
    /// The key set may be stale: an unknown `kid`, or no `kid` and no key verified.
    Refresh,
    /// Not valid; the reason is logged at debug only.
    Invalid(String),
}

fn segment(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

fn object(s: &str) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(&segment(s)?).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Verifies `token` at `now` (Unix seconds).
pub fn verify(token: &str, keys: &KeySet, s: &Settings, now: f64) -> Outcome {
    let bad = |r: &str| Outcome::Invalid(r.to_string());
    let parts: Vec<&str> = token.split('.').collect();
    let [h64, p64, sig] = parts[..] else {
        return bad("not a compact JWS");
    };
    let (Some(header), Some(claims)) = (object(h64), object(p64)) else {
        return bad("header or payload is not base64url JSON");
    };
    if sig.is_empty() || segment(sig).is_none() {
        return bad("bad signature encoding");
    }
    let Some(alg_name) = header.get("alg").and_then(Value::as_str) else {
        return bad("no alg");
    };
    if !ACCEPTED.contains(&alg_name) || !s.algorithms.iter().any(|a| a == alg_name) {
        return bad("alg not accepted");
    }
    let Ok(alg) = alg_name.parse::<Algorithm>() else {
        return bad("alg not accepted");
    };
    let kid = header.get("kid").and_then(Value::as_str);
    let mut candidates = keys
        .keys
        .iter()
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .peekable();
    if kid.is_some() && candidates.peek().is_none() {
        return Outcome::Refresh;
    }
    let message = &token[..h64.len() + 1 + p64.len()];
    let verified = candidates
        .filter(|k| k.family == family_of(alg) && k.alg.as_deref().is_none_or(|a| a == alg_name))
        .any(|k| {
            jsonwebtoken::crypto::verify(sig, message.as_bytes(), &k.key, alg).unwrap_or(false)
        });
    if !verified {
        return if kid.is_none() {
            Outcome::Refresh
        } else {
            bad("bad signature")
        };
    }
    claims_ok(&claims, s, now)
}

fn claims_ok(c: &serde_json::Map<String, Value>, s: &Settings, now: f64) -> Outcome {
    let bad = |r: &str| Outcome::Invalid(r.to_string());
    if c.get("iss").and_then(Value::as_str) != Some(s.issuer.as_str()) {
        return bad("iss");
    }
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => *a == s.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(s.audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return bad("aud");
    }
    let time = |k: &str| c.get(k).map(|v| v.as_f64());
    let exp = match time("exp") {
        Some(Some(e)) if now <= e => e,
        _ => return bad("exp"),
    };
    for k in ["nbf", "iat"] {
        match time(k) {
            None => {}
            Some(Some(t)) if t <= now + 300.0 => {}
            _ => return bad(k),
        }
    }
    let id = match c.get(&s.identity_claim).and_then(Value::as_str) {
        Some(id) if !id.is_empty() => id,
        _ => return bad("identity claim"),
    };
    let mut scopes = Scopes::NONE;
    let mut add = |n: &str| {
        if let Some(sc) = Scopes::parse(n) {
            scopes = scopes.with(sc);
        }
    };
    match c.get(&s.scope_claim) {
        Some(Value::String(list)) => list.split_whitespace().for_each(&mut add),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).for_each(&mut add),
        _ => {}
    }
    Outcome::Valid(
        Principal {
            id: id.to_string(),
            scopes,
        },
        exp,
    )
}
