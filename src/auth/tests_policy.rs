//! security.md §5's table, row by row, and the resolution order of §6.

use super::policy::{is_bcrypt, Policy, Surroundings};
use super::resolve::{Authenticator, Step};
use super::{ConnFacts, Principal, Scopes};

const HASH: &str = "$2b$10$ZYKUJCQjt8kvZj9hNmSd2eVsx5yVZ4htCWEtOArbkMguHm8ozIkiS";

fn detail(text: &str) -> String {
    Policy::parse(text).expect_err(text)
}

#[test]
fn the_example_of_the_contract_parses() {
    let text = format!(
        "tokens:\n  - id: app-prod\n    token: \"s3cr3t-app\"\n    scopes: [read, write]\n\
         users:\n  - id: ops-alice\n    username: alice\n    password_bcrypt: \"{HASH}\"\n    scopes: [read, admin]\n\
         cert_identities:\n  - subject_cn: app.internal\n    scopes: [read]\n\
         allow_anonymous: false\nallow_basic_without_tls: false\n"
    );
    let p = Policy::parse(&text).unwrap();
    assert_eq!(p.tokens[0].id, "app-prod");
    assert_eq!(p.tokens[0].scopes, Scopes::READ.with(Scopes::WRITE));
    assert_eq!(p.users[0].username, "alice");
    assert_eq!(p.cert_identities[0].subject_cn, "app.internal");
    assert!(!p.allow_anonymous);
    // The same as JSON.
    let json = r#"{"tokens":[{"id":"a","token":"t","scopes":["read","read"]}],"allow_anonymous":"#;
    let p = Policy::parse(&format!("{json} true}}")).unwrap();
    assert_eq!(p.tokens[0].scopes, Scopes::READ);
    assert!(p.allow_anonymous);
}

#[test]
fn plain_scalars_are_strings_as_written() {
    let p = Policy::parse("tokens:\n  - {id: 42, token: 0x1F, scopes: [write]}\n").unwrap();
    assert_eq!(
        (p.tokens[0].id.as_str(), p.tokens[0].token.as_str()),
        ("42", "0x1F")
    );
}

#[test]
fn booleans_in_every_accepted_spelling() {
    for (t, want) in [
        ("yes", true),
        ("No", false),
        ("ON", true),
        ("off", false),
        ("y", true),
    ] {
        let p = Policy::parse(&format!("allow_anonymous: {t}\n")).unwrap();
        assert_eq!(p.allow_anonymous, want, "{t}");
    }
    assert_eq!(
        detail("allow_anonymous: maybe\n"),
        "allow_anonymous must be true or false"
    );
    assert_eq!(
        detail("allow_basic_without_tls: \"true\"\n"),
        "allow_basic_without_tls must be true or false"
    );
}

#[test]
fn every_row_of_the_table() {
    let t = |body: &str| format!("tokens:\n  - {body}\n");
    let rows: Vec<(String, &str)> = vec![
        ("a: [1,\n".into(), "not valid YAML: "),
        ("a: 1\na: 2\n".into(), "not valid YAML: "),
        ("# nothing\n".into(), "the file is empty"),
        ("a: 1\n---\nb: 2\n".into(), "more than one YAML document"),
        ("- a\n".into(), "the top level must be a mapping"),
        (
            "tokenz: []\n".into(),
            "unknown field \"tokenz\" at top level",
        ),
        (
            t("{id: a, token: t, scopes: [read], extra: 1}"),
            "unknown field \"extra\" at tokens[0]",
        ),
        ("tokens: {}\n".into(), "tokens must be a list"),
        ("users: x\n".into(), "users must be a list"),
        ("tokens:\n  - x\n".into(), "tokens[0] must be a mapping"),
        (
            t("{id: [a], token: t, scopes: [read]}"),
            "tokens[0].id must be a string",
        ),
        (
            t("{id: a, token: t, scopes: read}"),
            "tokens[0].scopes must be a list of strings",
        ),
        (
            t("{id: a, token: t, scopes: [[read]]}"),
            "tokens[0].scopes must be a list of strings",
        ),
        (
            t("{id: \"\", token: t, scopes: [read]}"),
            "tokens[0].id is empty",
        ),
        (t("{id: a, scopes: [read]}"), "tokens[0].token is empty"),
        (
            t("{id: a, token: ~, scopes: [read]}"),
            "tokens[0].token is empty",
        ),
        (
            t("{id: a, token: \"s p\", scopes: [read]}"),
            "tokens[0].token must be printable ASCII without spaces",
        ),
        (
            t("{id: a, token: t, scopes: []}"),
            "tokens[0].scopes is empty; at least one of read/write/admin required",
        ),
        (
            t("{id: a, token: t}"),
            "tokens[0].scopes is empty; at least one of read/write/admin required",
        ),
        (
            t("{id: a, token: t, scopes: [read, sudo]}"),
            "tokens[0].scopes: unknown scope \"sudo\" (valid: read, write, admin)",
        ),
        (
            "users:\n  - {id: u, username: \"a:b\", password_bcrypt: x, scopes: [read]}\n".into(),
            "users[0].username must not contain ':'",
        ),
        (
            "users:\n  - {id: u, username: a, password_bcrypt: \"$2b$10$short\", scopes: [read]}\n"
                .into(),
            "users[0].password_bcrypt is not a valid bcrypt hash",
        ),
        (
            "cert_identities:\n  - {scopes: [read]}\n".into(),
            "cert_identities[0].subject_cn is empty",
        ),
    ];
    for (text, want) in rows {
        let got = detail(&text);
        assert!(
            got.starts_with(want),
            "{text:?}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn duplicates_name_the_earlier_entry_and_never_print_a_token() {
    let two =
        "tokens:\n  - {id: a, token: t1, scopes: [read]}\n  - {id: a, token: t2, scopes: [read]}\n";
    assert_eq!(detail(two), "tokens[1].id \"a\" duplicates tokens[0]");
    let same_token = "tokens:\n  - {id: a, token: sekrit, scopes: [read]}\n  - {id: b, token: sekrit, scopes: [read]}\n";
    let d = detail(same_token);
    assert_eq!(d, "tokens[1].token duplicates tokens[0]");
    let users = format!(
        "users:\n  - {{id: u1, username: al, password_bcrypt: \"{HASH}\", scopes: [read]}}\n  - {{id: u2, username: al, password_bcrypt: \"{HASH}\", scopes: [read]}}\n"
    );
    assert_eq!(
        detail(&users),
        "users[1].username \"al\" duplicates users[0]"
    );
    // A token, a user and a certificate may share an id.
    let shared = format!(
        "tokens:\n  - {{id: p, token: t, scopes: [read]}}\nusers:\n  - {{id: p, username: al, password_bcrypt: \"{HASH}\", scopes: [write]}}\n"
    );
    assert!(Policy::parse(&shared).is_ok());
    // First problem in file order: the duplicate at [1] before the bad entry at [2].
    let order = "tokens:\n  - {id: a, token: t1, scopes: [read]}\n  - {id: a, token: t2, scopes: [read]}\n  - {id: c}\n";
    assert_eq!(detail(order), "tokens[1].id \"a\" duplicates tokens[0]");
}

#[test]
fn whole_file_checks() {
    let none = Policy::parse("allow_anonymous: false\n").unwrap();
    let around = Surroundings::default();
    assert_eq!(
        none.check_whole(around).unwrap_err(),
        "no tokens, users or cert_identities and allow_anonymous is false: every request would be refused"
    );
    let oidc = Surroundings {
        oidc: true,
        ..around
    };
    assert!(none.check_whole(oidc).is_ok());
    let certs = Policy::parse("cert_identities:\n  - {subject_cn: a, scopes: [read]}\n").unwrap();
    assert!(certs
        .check_whole(around)
        .unwrap_err()
        .starts_with("cert_identities need client certificates"));
    let ca = Surroundings {
        client_ca: true,
        ..around
    };
    assert!(certs.check_whole(ca).is_ok());
}

#[test]
fn bcrypt_shape() {
    assert!(is_bcrypt(HASH));
    for prefix in ["$2a$", "$2x$", "$2y$"] {
        assert!(is_bcrypt(&format!("{prefix}{}", &HASH[4..])));
    }
    assert!(!is_bcrypt(&format!("$2c${}", &HASH[4..])));
    assert!(!is_bcrypt(&format!("$2b$03{}", &HASH[6..])));
    assert!(!is_bcrypt(&format!("$2b$32{}", &HASH[6..])));
    assert!(!is_bcrypt(&format!("{}!", &HASH[..59])));
}

fn policy_auth(extra: &str) -> Authenticator {
    let text = format!(
        "tokens:\n  - {{id: app, token: tok-1, scopes: [read]}}\n  - {{id: ops, token: tok-2, scopes: [admin]}}\n\
         users:\n  - {{id: ops-alice, username: alice, password_bcrypt: \"{HASH}\", scopes: [write]}}\n\
         cert_identities:\n  - {{subject_cn: app.internal, scopes: [read, write]}}\n{extra}"
    );
    Authenticator::new(
        Some(&Policy::parse(&text).unwrap()),
        Some("peer-token"),
        false,
    )
}

fn granted(s: Step<'_>) -> Option<Principal> {
    match s {
        Step::Granted(p) => Some(p.clone()),
        _ => None,
    }
}

const PLAIN: ConnFacts<'static> = ConnFacts {
    tls: false,
    peer_cn: None,
};
const TLS: ConnFacts<'static> = ConnFacts {
    tls: true,
    peer_cn: None,
};

#[test]
fn bearer_tokens_and_modes() {
    let a = policy_auth("");
    let never = |_: &[u8]| None;
    let p = granted(a.resolve(Some(b"Bearer tok-2"), 1, PLAIN, never)).unwrap();
    assert_eq!((p.id.as_str(), p.scopes), ("ops", Scopes::ADMIN));
    // With the file, HYPERCACHE_AUTH_TOKEN is only the peer token.
    assert!(granted(a.resolve(Some(b"Bearer peer-token"), 1, PLAIN, never)).is_none());
    assert!(granted(a.resolve(Some(b"Bearer tok-1"), 2, PLAIN, never)).is_none());
    assert!(granted(a.resolve(Some(b"bearer tok-1"), 1, PLAIN, never)).is_none());
    assert!(granted(a.resolve(None, 0, PLAIN, never)).is_none());
    // Only the token: `default` with every scope.
    let t = Authenticator::new(None, Some("peer-token"), false);
    let p = granted(t.resolve(Some(b"Bearer peer-token"), 1, PLAIN, never)).unwrap();
    assert_eq!((p.id.as_str(), p.scopes), ("default", Scopes::ALL));
    // Open mode: anonymous whatever is sent.
    let o = Authenticator::new(None, None, false);
    let p = granted(o.resolve(Some(b"Bearer junk"), 2, PLAIN, never)).unwrap();
    assert_eq!((p.id.as_str(), p.scopes), ("anonymous", Scopes::ALL));
}

#[test]
fn anonymous_only_without_an_authorization_field() {
    let a = policy_auth("allow_anonymous: true\n");
    let never = |_: &[u8]| None;
    let p = granted(a.resolve(None, 0, PLAIN, never)).unwrap();
    assert_eq!(p.id, "anonymous");
    // A wrong credential is a 401, never anonymous (differs from the Go server).
    assert!(granted(a.resolve(Some(b"Bearer wrong"), 1, PLAIN, never)).is_none());
}

#[test]
fn basic_needs_tls_or_the_switch_and_a_verified_password() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let field = format!("Basic {}", b64.encode("alice:example-password"));
    let a = policy_auth("");
    let never = |_: &[u8]| None;
    assert_eq!(
        a.resolve(Some(field.as_bytes()), 1, PLAIN, never),
        Step::Refused {
            basic_on_plaintext: true
        }
    );
    // On TLS, not yet verified: bcrypt must run for this user.
    match a.resolve(Some(field.as_bytes()), 1, TLS, never) {
        Step::VerifyBasic { user, password } => {
            assert_eq!(
                (user, password.as_slice()),
                (Some(0), &b"example-password"[..])
            )
        }
        other => panic!("{other:?}"),
    }
    let p = granted(a.resolve(Some(field.as_bytes()), 1, TLS, |_| Some(true))).unwrap();
    assert_eq!((p.id.as_str(), p.scopes), ("ops-alice", Scopes::WRITE));
    assert!(granted(a.resolve(Some(field.as_bytes()), 1, TLS, |_| Some(false))).is_none());
    // An unknown user still costs a bcrypt run (user None).
    let bob = format!("Basic {}", b64.encode("bob:x"));
    assert!(matches!(
        a.resolve(Some(bob.as_bytes()), 1, TLS, never),
        Step::VerifyBasic { user: None, .. }
    ));
    // Known good is never granted to an unknown user.
    assert!(granted(a.resolve(Some(bob.as_bytes()), 1, TLS, |_| Some(true))).is_none());
    // allow_basic_without_tls lets plaintext through to the check.
    let open = policy_auth("allow_basic_without_tls: true\n");
    assert!(matches!(
        open.resolve(Some(field.as_bytes()), 1, PLAIN, never),
        Step::VerifyBasic { user: Some(0), .. }
    ));
    // Blanks around the base64 are ignored; no colon is no match.
    let padded = format!("Basic  {} ", b64.encode("alice:example-password"));
    assert!(matches!(
        a.resolve(Some(padded.as_bytes()), 1, TLS, never),
        Step::VerifyBasic { user: Some(0), .. }
    ));
    let nocolon = format!("Basic {}", b64.encode("alice"));
    assert!(granted(a.resolve(Some(nocolon.as_bytes()), 1, TLS, never)).is_none());
}

#[test]
fn certificate_identity_after_failed_earlier_steps() {
    let a = policy_auth("");
    let cert = ConnFacts {
        tls: true,
        peer_cn: Some("app.internal"),
    };
    let never = |_: &[u8]| None;
    let p = granted(a.resolve(None, 0, cert, never)).unwrap();
    assert_eq!(
        (p.id.as_str(), p.scopes),
        ("app.internal", Scopes::READ.with(Scopes::WRITE))
    );
    // A matching bearer token wins over the certificate (step 2 before 4).
    let p = granted(a.resolve(Some(b"Bearer tok-2"), 1, cert, never)).unwrap();
    assert_eq!(p.id, "ops");
    let other = ConnFacts {
        tls: true,
        peer_cn: Some("other"),
    };
    assert!(granted(a.resolve(None, 0, other, never)).is_none());
}
