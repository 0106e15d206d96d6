//! One blocking HTTP(S) GET to the identity provider (security.md §7): TLS 1.2+
//! verified against the system trust store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`),
//! a total timeout, no redirects followed, `Connection: close`.
//!
//! It runs only on the main thread at start-up and on the OIDC refresher thread,
//! never on an executor, so blocking I/O is fine here.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::http::chunked::ChunkedDecoder;

/// A response body over this is a failure (discovery documents and key sets are small).
const MAX_BODY: usize = 1 << 20;

/// A parsed `http` or `https` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub target: String,
}

impl Url {
    /// Absolute `http(s)://host[:port][/path][?query]` without userinfo or fragment.
    pub fn parse(s: &str) -> Option<Url> {
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return None;
        };
        if s.contains('#') {
            return None;
        }
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, String::new()),
        };
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']')?;
            let port = match &v6[end + 1..] {
                "" => None,
                p => Some(p.strip_prefix(':')?.parse().ok()?),
            };
            (v6[..end].to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p.parse().ok()?)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let target = if target.starts_with('?') || target.is_empty() {
            format!("/{target}")
        } else {
            target
        };
        Some(Url {
            https,
            port: port.unwrap_or(if https { 443 } else { 80 }),
            host,
            target,
        })
    }

    /// A host that `http://` is allowed for: `localhost`, 127.0.0.0/8 or `::1`.
    pub fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match self.host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => a.octets()[0] == 127,
            Ok(std::net::IpAddr::V6(a)) => a.is_loopback(),
            Err(_) => false,
        }
    }

    /// http only on loopback (§7's scheme rule, for the issuer and the jwks_uri).
    pub fn scheme_ok(&self) -> bool {
        self.https || self.is_loopback()
    }

    fn host_header(&self) -> String {
        let h = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            h
        } else {
            format!("{h}:{}", self.port)
        }
    }
}

/// The client configuration with the system roots, loaded once per process.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err(
                    "no trusted CA certificates found (set SSL_CERT_FILE to a PEM bundle)"
                        .to_string(),
                );
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let c = rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(c))
        })
        .clone()
}

/// `GET url` within `timeout`: the status and the body.
pub fn get(url: &Url, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "timed out".to_string())
    };
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("resolve {}: no address", url.host))?;
    let tcp = TcpStream::connect_timeout(&addr, left()?).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: hypercache-server\r\nConnection: close\r\n\r\n",
        url.target,
        url.host_header()
    );
    let raw = if url.https {
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("{}: {e}", url.host))?;
        let conn = rustls::ClientConnection::new(tls_config()?, name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        exchange(&mut s, &request, deadline)?
    } else {
        let mut s = tcp;
        exchange(&mut s, &request, deadline)?
    };
    parse(&raw)
}

fn exchange(s: &mut impl ReadWrite, request: &str, deadline: Instant) -> Result<Vec<u8>, String> {
    s.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    s.flush().map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        if Instant::now() >= deadline {
            return Err("timed out".into());
        }
        match s.read(&mut buf) {
            Ok(0) => return Ok(raw),
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_BODY + 16384 {
                    return Err("response too large".into());
                }
            }
            // A server that closes without close_notify still sent a whole response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(raw),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Err("timed out".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Status and body of a whole response read to EOF (Content-Length, chunked or close-delimited).
fn parse(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Err("connection closed before a response".into()),
        Err(e) => return Err(format!("malformed response: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let mut chunked = false;
    let mut length = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= h.value.to_ascii_lowercase().ends_with(b"chunked");
        } else if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        }
    }
    let rest = &raw[head_len..];
    let body = if chunked {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        d.feed(rest, &mut out, MAX_BODY as u64)
            .map_err(|_| "malformed chunked body".to_string())?;
        if !d.is_done() {
            return Err("truncated chunked body".into());
        }
        out
    } else if let Some(n) = length {
        if rest.len() < n {
            return Err("truncated body".into());
        }
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_issuer_rules() {
        let u = Url::parse("https://idp.example.com/realms/main").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.target.as_str()),
            (true, "idp.example.com", 443, "/realms/main")
        );
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.target.as_str()), (8080, "/"));
        assert!(u.scheme_ok());
        assert!(Url::parse("http://[::1]:9/x").unwrap().scheme_ok());
        assert!(Url::parse("http://localhost/x").unwrap().scheme_ok());
        assert!(!Url::parse("http://idp.example.com").unwrap().scheme_ok());
        assert!(!Url::parse("http://128.0.0.1").unwrap().scheme_ok());
        for bad in [
            "idp.example.com",
            "ftp://x",
            "https://",
            "https://u@x/",
            "https://x/#f",
            "https://x:y/",
        ] {
            assert_eq!(Url::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn responses_are_framed_by_length_chunks_or_close() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing").unwrap();
        assert_eq!(r, (200, b"{}".to_vec()));
        let r = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r, (200, b"{}".to_vec()));
        let r = parse(b"HTTP/1.0 404 Not Found\r\n\r\nnope").unwrap();
        assert_eq!(r, (404, b"nope".to_vec()));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
    }
}
