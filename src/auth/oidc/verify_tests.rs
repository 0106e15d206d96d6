//! §7's verification rules, one by one, with keys made here (rcgen) and tokens signed
//! here (jsonwebtoken).

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::verify::{verify, KeySet, Outcome, Settings};
use crate::auth::Scopes;

const NOW: f64 = 1_800_000_000.0;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

struct Signer {
    enc: EncodingKey,
    jwk: Value,
    alg: Algorithm,
}

fn es256(kid: &str) -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    Signer {
        enc: EncodingKey::from_ec_der(&kp.serialize_der()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                    "x": b64(&raw[1..33]), "y": b64(&raw[33..65])}),
        alg: Algorithm::ES256,
    }
}

fn ed25519(kid: &str) -> Signer {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    Signer {
        enc: EncodingKey::from_ed_der(&kp.serialize_der()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(kp.public_key_raw())}),
        alg: Algorithm::EdDSA,
    }
}

fn settings() -> Settings {
    Settings {
        issuer: "https://idp.test/realms/main".into(),
        audience: "hypercache".into(),
        identity_claim: "sub".into(),
        scope_claim: "scope".into(),
        algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
    }
}

fn claims() -> Value {
    json!({"iss": "https://idp.test/realms/main", "aud": "hypercache", "sub": "svc-a",
           "exp": NOW + 60.0, "scope": "read write profile"})
}

fn sign(s: &Signer, kid: Option<&str>, c: &Value) -> String {
    let mut h = Header::new(s.alg);
    h.kid = kid.map(str::to_string);
    encode(&h, c, &s.enc).unwrap()
}

fn set(signers: &[&Signer]) -> KeySet {
    let doc = json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()});
    KeySet::parse(doc.to_string().as_bytes()).unwrap()
}

fn invalid(o: Outcome) -> bool {
    matches!(o, Outcome::Invalid(_))
}

#[test]
fn a_valid_token_gives_the_identity_and_its_scopes() {
    let k = es256("k1");
    let keys = set(&[&k]);
    match verify(&sign(&k, Some("k1"), &claims()), &keys, &settings(), NOW) {
        Outcome::Valid(p, exp) => {
            assert_eq!(p.id, "svc-a");
            assert_eq!(p.scopes, Scopes::READ.with(Scopes::WRITE));
            assert_eq!(exp, NOW + 60.0);
        }
        o => panic!("{o:?}"),
    }
    // EdDSA, no kid: every key is tried.
    let e = ed25519("e1");
    let keys = set(&[&k, &e]);
    let mut c = claims();
    c["scope"] = json!(["admin", "nonsense", 7]);
    c["aud"] = json!(["other", "hypercache"]);
    match verify(&sign(&e, None, &c), &keys, &settings(), NOW) {
        Outcome::Valid(p, _) => assert_eq!(p.scopes, Scopes::ADMIN),
        o => panic!("{o:?}"),
    }
}

#[test]
fn claims_follow_the_contract_rules() {
    let k = es256("k1");
    let keys = set(&[&k]);
    let s = settings();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        verify(&sign(&k, Some("k1"), &c), &keys, &s, NOW)
    };
    assert!(invalid(with(&|c| c["exp"] = json!(NOW - 0.5))), "expired");
    assert!(
        !invalid(with(&|c| c["exp"] = json!(NOW))),
        "now == exp is valid"
    );
    assert!(invalid(with(&|c| {
        c.as_object_mut().unwrap().remove("exp");
    })));
    assert!(invalid(with(&|c| c["exp"] = json!("soon"))));
    assert!(invalid(with(&|c| c["nbf"] = json!(NOW + 301.0))));
    assert!(!invalid(with(&|c| c["nbf"] = json!(NOW + 299.5))));
    assert!(invalid(with(&|c| c["iat"] = json!(NOW + 400.0))));
    assert!(invalid(with(
        &|c| c["iss"] = json!("https://idp.test/realms/main/")
    )));
    assert!(invalid(with(&|c| c["aud"] = json!("other"))));
    assert!(invalid(with(&|c| c["aud"] = json!(["a", "b"]))));
    assert!(invalid(with(&|c| c["sub"] = json!(""))));
    assert!(invalid(with(&|c| c["sub"] = json!(42))));
    // No scope claim: authenticated, no scopes.
    match with(&|c| {
        c.as_object_mut().unwrap().remove("scope");
    }) {
        Outcome::Valid(p, _) => assert_eq!(p.scopes, Scopes::NONE),
        o => panic!("{o:?}"),
    }
}

#[test]
fn algorithms_keys_and_encodings_are_strict() {
    let k = es256("k1");
    let keys = set(&[&k]);
    let s = settings();
    let good = sign(&k, Some("k1"), &claims());
    let parts: Vec<&str> = good.split('.').collect();
    // alg none, with and without a signature.
    let none_header = b64(br#"{"alg":"none","kid":"k1"}"#);
    assert!(invalid(verify(
        &format!("{none_header}.{}.", parts[1]),
        &keys,
        &s,
        NOW
    )));
    assert!(invalid(verify(
        &format!("{none_header}.{}.{}", parts[1], parts[2]),
        &keys,
        &s,
        NOW
    )));
    // HS256 keyed with the public key's bytes is never accepted.
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(k.jwk.to_string().as_bytes()),
    )
    .unwrap();
    assert!(invalid(verify(&hs, &keys, &s, NOW)));
    // An alg the IdP does not list.
    let mut only_rs = settings();
    only_rs.algorithms = vec!["RS256".into()];
    assert!(invalid(verify(&good, &keys, &only_rs, NOW)));
    // Padding, extra segments, a tampered payload.
    assert!(invalid(verify(&format!("{good}="), &keys, &s, NOW)));
    assert!(invalid(verify(&format!("{good}.x"), &keys, &s, NOW)));
    let mut c = claims();
    c["sub"] = json!("mallory");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(c.to_string().as_bytes()),
        parts[2]
    );
    assert!(
        invalid(verify(&forged, &keys, &s, NOW)),
        "known kid, bad signature: no refresh"
    );
    // Unknown kid, or no kid and no key verifies: the key set may be stale.
    let other = es256("k2");
    assert_eq!(
        verify(&sign(&other, Some("k2"), &claims()), &keys, &s, NOW),
        Outcome::Refresh
    );
    assert_eq!(
        verify(&sign(&other, None, &claims()), &keys, &s, NOW),
        Outcome::Refresh
    );
    // A key whose use or alg does not fit is not used.
    let mut jwk = k.jwk.clone();
    jwk["alg"] = json!("ES384");
    let keys2 = KeySet::parse(json!({"keys": [jwk, other.jwk]}).to_string().as_bytes()).unwrap();
    assert!(invalid(verify(&good, &keys2, &s, NOW)));
}

#[test]
fn key_sets_keep_only_usable_signing_keys() {
    let k = es256("k1");
    let mut enc = k.jwk.clone();
    enc["use"] = json!("enc");
    let doc = json!({"keys": [enc, {"kty": "oct", "k": "c2VjcmV0"}, {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}]});
    assert_eq!(
        KeySet::parse(doc.to_string().as_bytes()).err().as_deref(),
        Some("no usable signing key")
    );
    assert!(KeySet::parse(b"{\"nokeys\":1}").is_err());
    assert_eq!(set(&[&k, &ed25519("e")]).keys.len(), 2);
    assert_eq!(
        Settings::algorithms_from(Some(&json!(["HS256", "ES512"]))),
        vec!["RS256".to_string()]
    );
    assert_eq!(
        Settings::algorithms_from(Some(&json!(["ES256", "none", "PS256"]))),
        vec!["ES256".to_string(), "PS256".to_string()]
    );
    assert_eq!(Settings::algorithms_from(None), vec!["RS256".to_string()]);
}
