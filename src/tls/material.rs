//! One listener's certificate, key and CA files, read and validated into rustls
//! configurations (security.md §2, §3).
//!
//! Used twice with the same rules: at start (a failure is an exit-2 line) and on
//! SIGHUP (a failure keeps the previous material, §4). Everything that can fail
//! happens here, on the thread that loads, so the executors only ever swap in a
//! configuration that is known to work.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::Listener;
use crate::auth::policy::os_error;

/// The file paths of one listener, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub cert: String,
    pub key: String,
    /// The client CA (client, management) or the cluster CA (dist).
    pub ca: Option<String>,
}

/// Validated material: what a handshake needs, plus what logs and metrics show.
pub struct Material {
    pub server: Arc<ServerConfig>,
    /// The peer client's configuration (dist only): the same certificate, the CA as the only root.
    pub client: Option<Arc<ClientConfig>>,
    /// The leaf's serial in lowercase hex without leading zeros.
    pub serial: String,
    /// The leaf's notAfter, Unix seconds.
    pub not_after: i64,
    /// The leaf's DNS and IP subject alternative names (the dist advertise-host warning).
    pub sans: Vec<String>,
}

/// Why loading failed: the file to name and the reason, and the start-up line.
#[derive(Debug)]
pub struct LoadError {
    pub file: String,
    pub reason: String,
    pub startup: String,
}

/// The crypto provider, chosen once: `ring` (see Cargo.toml for why). Its defaults are the
/// contract's list: TLS 1.3 AES-GCM and ChaCha20-Poly1305, TLS 1.2 ECDHE with AES-GCM or
/// ChaCha20-Poly1305, groups X25519, P-256 and P-384.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The only application protocol offered: a client that offers ALPN without it fails the
/// handshake (`no_application_protocol`), one that offers none is served.
const ALPN: &[u8] = b"http/1.1";

/// Reads and validates `paths` for `listener`.
pub fn load(listener: Listener, paths: &Paths) -> Result<Material, LoadError> {
    let cert_var = listener.var("CERT");
    let key_var = listener.var("KEY");
    let ca_var = listener.var(listener.ca_suffix());
    let chain = read_certs(&cert_var, &paths.cert)?;
    let key_bytes = read(&key_var, &paths.key)?;
    let no_key = || {
        invalid(
            &key_var,
            &paths.key,
            "no PEM private key found (PKCS#8, PKCS#1 or SEC1)",
        )
    };
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| no_key())?;
    let provider = provider();
    // Parsed and checked against the leaf once; the server and the peer client share it.
    let certified = match CertifiedKey::from_der(chain.clone(), key, &provider) {
        Ok(c) => Arc::new(SingleCertAndKey::from(c)),
        Err(rustls::Error::InconsistentKeys(_)) => {
            let reason = format!(
                "does not match the certificate in {cert_var}={:?}",
                paths.cert
            );
            return Err(LoadError {
                startup: format!("{key_var}={:?} {reason}", paths.key),
                file: paths.key.clone(),
                reason,
            });
        }
        // An unsupported key type (DSA, RSA below 2048 bits, P-521) or a malformed one.
        Err(_) => return Err(no_key()),
    };
    let leaf = Leaf::of(&chain[0]);
    if listener == Listener::Dist && !leaf.both_roles {
        return Err(invalid(
            &cert_var,
            &paths.cert,
            "the certificate's extended key usage must include serverAuth and clientAuth \
             (it serves and dials peers)",
        ));
    }
    let roots = match &paths.ca {
        Some(ca) => Some(Arc::new(read_roots(&ca_var, ca)?)),
        None => None,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .expect("ring supports TLS 1.2 and 1.3");
    let builder = match &roots {
        Some(r) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(r.clone(), provider.clone())
                .build()
                .map_err(|e| invalid(&ca_var, paths.ca.as_deref().unwrap_or(""), &e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut server = builder.with_cert_resolver(certified.clone());
    server.alpn_protocols = vec![ALPN.to_vec()];
    let client = match (listener, roots) {
        (Listener::Dist, Some(r)) => {
            let verifier =
                rustls::client::WebPkiServerVerifier::builder_with_provider(r, provider.clone())
                    .build()
                    .map_err(|e| {
                        invalid(&ca_var, paths.ca.as_deref().unwrap_or(""), &e.to_string())
                    })?;
            let mut c = ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(VERSIONS)
                .expect("ring supports TLS 1.2 and 1.3")
                .with_webpki_verifier(verifier)
                .with_client_cert_resolver(certified);
            c.alpn_protocols = vec![ALPN.to_vec()];
            Some(Arc::new(c))
        }
        _ => None,
    };
    Ok(Material {
        server: Arc::new(server),
        client,
        serial: leaf.serial,
        not_after: leaf.not_after,
        sans: leaf.sans,
    })
}

fn read(var: &str, path: &str) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|e| {
        let reason = os_error(&e);
        LoadError {
            startup: format!("cannot read {var}={path:?}: {reason}"),
            file: path.to_string(),
            reason,
        }
    })
}

fn invalid(var: &str, path: &str, reason: &str) -> LoadError {
    LoadError {
        startup: format!("invalid {var}={path:?}: {reason}"),
        file: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Every `CERTIFICATE` block, each a valid X.509 certificate, at least one.
fn read_certs(var: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, LoadError> {
    let bytes = read(var, path)?;
    let none = || invalid(var, path, "no PEM certificate found");
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&bytes) {
        let c = c.map_err(|_| none())?;
        if X509Certificate::from_der(&c).is_err() {
            return Err(none());
        }
        certs.push(c);
    }
    if certs.is_empty() {
        return Err(none());
    }
    Ok(certs)
}

fn read_roots(var: &str, path: &str) -> Result<RootCertStore, LoadError> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(var, path)? {
        roots
            .add(c)
            .map_err(|_| invalid(var, path, "no PEM certificate found"))?;
    }
    Ok(roots)
}

/// What the leaf certificate says about itself.
pub struct Leaf {
    pub serial: String,
    pub not_after: i64,
    pub sans: Vec<String>,
    /// No extended key usage, or one that includes serverAuth and clientAuth.
    pub both_roles: bool,
}

impl Leaf {
    pub fn of(der: &CertificateDer<'_>) -> Leaf {
        let (_, cert) = X509Certificate::from_der(der).expect("validated by read_certs");
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for n in &ext.value.general_names {
                match n {
                    GeneralName::DNSName(d) => sans.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_of(b) {
                            sans.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        let both_roles = match cert.extended_key_usage() {
            Ok(Some(e)) => e.value.any || (e.value.server_auth && e.value.client_auth),
            _ => true,
        };
        Leaf {
            serial: serial_hex(cert.raw_serial()),
            not_after: cert.validity().not_after.timestamp(),
            sans,
            both_roles,
        }
    }
}

fn ip_of(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(<[u8; 4]>::try_from(b).ok()?.into()),
        16 => Some(<[u8; 16]>::try_from(b).ok()?.into()),
        _ => None,
    }
}

/// Lowercase hex without leading zeros (`0` for a zero serial).
pub fn serial_hex(raw: &[u8]) -> String {
    let mut s: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let trimmed = s.trim_start_matches('0').len();
    s.drain(..s.len() - trimmed);
    if s.is_empty() {
        s.push('0');
    }
    s
}

/// The subject CN of a verified client certificate: the last CN attribute (security.md §6).
pub fn subject_cn(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let cn = cert.subject().iter_common_name().last()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_drop_leading_zeros() {
        assert_eq!(serial_hex(&[0x00, 0x0a, 0xbc]), "abc");
        assert_eq!(serial_hex(&[0x01, 0x00]), "100");
        assert_eq!(serial_hex(&[0x00]), "0");
    }
}
