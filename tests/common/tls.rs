//! Test PKI (rcgen) and a blocking rustls client speaking HTTP/1.1 over TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::http::{build_request, parse_response, Response};

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory for one test's files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("hc-tls-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    /// Writes `name` and returns its path as a string.
    pub fn write(&self, name: &str, contents: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority that signs leaves.
pub struct Ca {
    pub cert: rcgen::Certificate,
    pub key: KeyPair,
}

/// A leaf certificate and its key, PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: Vec<u8>,
}

pub enum Eku {
    None,
    Server,
    Client,
    Both,
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca { cert, key }
    }
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
    /// A server leaf like `leaf`, valid only in 2020 (expired).
    pub fn expired_leaf(&self, cn: &str, sans: &[&str], serial: u64) -> Leaf {
        self.leaf_with(cn, sans, Eku::Server, serial, |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 12, 31);
        })
    }

    /// A leaf for `cn` with DNS/IP `sans`, signed by this CA, with `serial`.
    pub fn leaf(&self, cn: &str, sans: &[&str], eku: Eku, serial: u64) -> Leaf {
        self.leaf_with(cn, sans, eku, serial, |_| {})
    }

    fn leaf_with(
        &self,
        cn: &str,
        sans: &[&str],
        eku: Eku,
        serial: u64,
        tweak: impl Fn(&mut CertificateParams),
    ) -> Leaf {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = match eku {
            Eku::None => vec![],
            Eku::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Eku::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Eku::Both => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        let serial_bytes = serial.to_be_bytes().to_vec();
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial_bytes));
        tweak(&mut p);
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: serial_bytes,
        }
    }
}

/// Client-side TLS options.
#[derive(Clone, Default)]
pub struct ClientOpts {
    pub ca_pem: String,
    pub cert: Option<Leaf>,
    pub alpn: Vec<Vec<u8>>,
    /// Verify against this name (default `localhost`).
    pub server_name: Option<String>,
    pub tls12_only: bool,
}

pub type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn client_config(o: &ClientOpts) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(o.ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if o.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match &o.cert {
        None => b.with_no_client_auth(),
        Some(l) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(l.cert_pem.as_bytes())
                    .map(|c| c.unwrap())
                    .collect();
            let key = PrivateKeyDer::from_pem_slice(l.key_pem.as_bytes()).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
    };
    cfg.alpn_protocols = o.alpn.clone();
    Arc::new(cfg)
}

/// Connects and completes the handshake, including the server's verdict on a client
/// certificate (TLS 1.3 reports it only at the first read, so this sends a request and reads
/// its response when `probe` is given).
pub fn connect(addr: SocketAddr, o: &ClientOpts) -> Result<TlsConn, String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.set_nodelay(true).unwrap();
    let name =
        ServerName::try_from(o.server_name.clone().unwrap_or_else(|| "localhost".into())).unwrap();
    let conn = rustls::ClientConnection::new(client_config(o), name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
    }
    Ok(s)
}

/// One request on an established TLS connection.
pub fn roundtrip(
    s: &mut TlsConn,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    s.write_all(&build_request(method, target, headers, body))
        .map_err(|e| e.to_string())?;
    s.flush().map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some((r, _)) = parse_response(&buf, method == "HEAD", false)? {
            return Ok(r);
        }
        if Instant::now() > deadline {
            return Err("timeout".into());
        }
        let mut tmp = [0u8; 16384];
        match s.read(&mut tmp) {
            Ok(0) => return Err(format!("closed after {} bytes", buf.len())),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Connect, one request, and the response (or the first error).
pub fn request(
    addr: SocketAddr,
    o: &ClientOpts,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let mut s = connect(addr, o)?;
    roundtrip(&mut s, method, target, headers, body)
}

/// The serial of the certificate the server presented, big-endian bytes without padding.
pub fn presented_serial(s: &TlsConn) -> Vec<u8> {
    let der = &s.conn.peer_certificates().unwrap()[0];
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.tbs_certificate.serial.to_bytes_be()
}

/// The common TLS environment of one listener prefix (`API`, `MGMT`, `DIST`).
pub fn tls_env(prefix: &str, dir: &Path, with_ca: Option<&str>) -> Vec<(String, String)> {
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let mut v = vec![
        (format!("HYPERCACHE_{prefix}_TLS_CERT"), p("server.pem")),
        (format!("HYPERCACHE_{prefix}_TLS_KEY"), p("server.key")),
    ];
    if let Some(name) = with_ca {
        v.push((format!("HYPERCACHE_{prefix}_TLS_{name}"), p("ca.pem")));
    }
    v
}
