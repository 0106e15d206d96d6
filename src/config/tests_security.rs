//! Tests of the whole loader, part 3: the TLS, OIDC and policy-file variables (security.md)
//! come in sets and are checked as sets (helpers in `tests.rs`).

use super::names::REFUSED;
use super::tests::*;

#[test]
fn tls_variables_come_in_sets() {
    let e = errs(&[
        ("HYPERCACHE_API_TLS_KEY", "/k.pem"),
        ("HYPERCACHE_MGMT_TLS_CLIENT_CA", "/ca.pem"),
        ("HYPERCACHE_DIST_TLS_CA", "/ca.pem"),
    ]);
    assert_eq!(
        e,
        [
            "hypercache-server: HYPERCACHE_API_TLS_CERT and HYPERCACHE_API_TLS_KEY must both be set",
            "hypercache-server: HYPERCACHE_MGMT_TLS_CLIENT_CA needs HYPERCACHE_MGMT_TLS_CERT and HYPERCACHE_MGMT_TLS_KEY",
            "hypercache-server: HYPERCACHE_DIST_TLS_CERT, HYPERCACHE_DIST_TLS_KEY and HYPERCACHE_DIST_TLS_CA must all be set (missing: HYPERCACHE_DIST_TLS_CERT, HYPERCACHE_DIST_TLS_KEY)",
        ]
    );
    // Paths are only checked for presence here; the files are read by Config::load_tls.
    let c = ok(&[
        ("HYPERCACHE_API_TLS_CERT", " /c.pem "),
        ("HYPERCACHE_API_TLS_KEY", "/k.pem"),
        ("HYPERCACHE_DIST_TLS_CERT", "/d.pem"),
        ("HYPERCACHE_DIST_TLS_KEY", "/dk.pem"),
        ("HYPERCACHE_DIST_TLS_CA", "/dca.pem"),
    ]);
    let api = c.tls_paths.client.as_ref().unwrap();
    assert_eq!(
        (api.cert.as_str(), api.key.as_str(), api.ca.as_deref()),
        ("/c.pem", "/k.pem", None)
    );
    assert!(c.tls_paths.mgmt.is_none());
    assert_eq!(
        c.tls_paths.dist.as_ref().unwrap().ca.as_deref(),
        Some("/dca.pem")
    );
    let env = c.env_view();
    assert!(env.contains(&("HYPERCACHE_API_TLS_CERT", "/c.pem".to_string())));
    assert!(env.contains(&("HYPERCACHE_MGMT_TLS_CERT", String::new())));
}

#[test]
fn oidc_variables_follow_security_md_7() {
    let both = |a: &str, b: &str| {
        format!("hypercache-server: {a} set without {b}: both are required when OIDC is enabled")
    };
    assert_eq!(
        one_err(
            &[("HYPERCACHE_OIDC_ISSUER", "https://idp.example.com")],
            &[]
        ),
        both("HYPERCACHE_OIDC_ISSUER", "HYPERCACHE_OIDC_AUDIENCE")
    );
    assert_eq!(
        one_err(&[("HYPERCACHE_OIDC_AUDIENCE", "cache")], &[]),
        both("HYPERCACHE_OIDC_AUDIENCE", "HYPERCACHE_OIDC_ISSUER")
    );
    for claim in [
        "HYPERCACHE_OIDC_SCOPE_CLAIM",
        "HYPERCACHE_OIDC_IDENTITY_CLAIM",
    ] {
        assert_eq!(
            one_err(&[(claim, "roles")], &[]),
            format!("hypercache-server: {claim} is set but HYPERCACHE_OIDC_ISSUER is not: set the issuer to enable OIDC")
        );
    }
    for bad in [
        "http://idp.example.com",
        "idp.example.com",
        "https://idp/x?q=1",
        "https://idp/x#f",
        "ftp://idp",
    ] {
        assert_eq!(
            one_err(&[("HYPERCACHE_OIDC_ISSUER", bad), ("HYPERCACHE_OIDC_AUDIENCE", "c")], &[]),
            format!("hypercache-server: invalid HYPERCACHE_OIDC_ISSUER=\"{bad}\": expected an https:// URL such as https://idp.example.com/realms/main (http:// only for localhost or a loopback IP)")
        );
    }
    for good in [
        "https://idp.example.com/realms/main",
        "http://127.0.0.1:5556/dex",
        "http://localhost/",
        "http://[::1]:8/",
    ] {
        let c = ok(&[
            ("HYPERCACHE_OIDC_ISSUER", good),
            ("HYPERCACHE_OIDC_AUDIENCE", "c"),
        ]);
        let o = c.oidc_config.unwrap();
        assert_eq!(
            (
                o.issuer.as_str(),
                o.identity_claim.as_str(),
                o.scope_claim.as_str()
            ),
            (good, "sub", "scope")
        );
    }
    assert!(REFUSED.is_empty());
}

#[test]
fn auth_config_is_kept_and_loaded_later() {
    let mut c = ok(&[("HYPERCACHE_AUTH_CONFIG", "  /nonexistent/auth.yaml ")]);
    assert_eq!(c.auth_config.as_deref(), Some("/nonexistent/auth.yaml"));
    assert!(c.policy.is_none() && !c.auth_on());
    let e = c.load_policy().unwrap_err();
    assert_eq!(e.exit_code, 2);
    assert_eq!(
        e.message,
        "hypercache-server: cannot read HYPERCACHE_AUTH_CONFIG=\"/nonexistent/auth.yaml\": no such file or directory"
    );
    let env = c.env_view();
    let shown = env.iter().find(|(n, _)| *n == "HYPERCACHE_AUTH_CONFIG");
    assert_eq!(
        shown.map(|(_, v)| v.as_str()),
        Some("/nonexistent/auth.yaml")
    );
}
