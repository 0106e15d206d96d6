//! The server side of a TLS listener's first bytes (security.md §2, §3).
//!
//! The first byte decides: `0x16` starts a TLS handshake record and the bytes read so
//! far are replayed to rustls; anything else is not TLS. Plaintext HTTP (its first five
//! bytes are one of [`PLAINTEXT`]) gets the fixed 400 text net/http sends, so a curl
//! without `https://` says what went wrong; other bytes are closed without a reply.
//! Both count as failed handshakes, as does a handshake rustls refuses (old versions,
//! no common suite, `h2`-only ALPN, a missing or untrusted client certificate).
//!
//! A ClientHello that offers nothing newer than TLS 1.1 is answered with a
//! `protocol_version` alert here, before rustls (which would say `handshake_failure`).
//!
//! The caller has already armed the connection's 10 s header deadline, so a client that
//! stalls mid-handshake is closed by the watch like one that stalls mid-head.

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::material::subject_cn;
use super::stream::{Prefixed, Stream};
use super::Acceptor;

/// The first five bytes of the HTTP requests that get the 400 text.
const PLAINTEXT: [&[u8; 5]; 5] = [b"GET /", b"HEAD ", b"POST ", b"PUT /", b"OPTIO"];

/// The exact reply to plaintext HTTP on a TLS port (Go's net/http wording).
pub const PLAINTEXT_REPLY: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The TLS record type of a handshake message.
const HANDSHAKE_RECORD: u8 = 0x16;
const TLS12: u16 = 0x0303;
/// A fatal `protocol_version` (70) alert record.
const PROTOCOL_VERSION_ALERT: [u8; 7] = [0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70];
/// The supported_versions extension (RFC 8446 §4.2.1).
const SUPPORTED_VERSIONS: u16 = 43;

/// The length field of a record header, capped at what TLS allows (2^14 + 2048).
fn record_len(rec: &[u8]) -> usize {
    (u16::from_be_bytes([rec[3], rec[4]]) as usize).min(16384 + 2048)
}

/// The newest version a ClientHello record offers: the highest of its supported_versions
/// (GREASE values skipped), else its client_version. None when the record does not hold a
/// whole ClientHello (rustls then decides).
pub fn offered_version(rec: &[u8]) -> Option<u16> {
    let hs = rec.get(5..)?;
    if *hs.first()? != 1 {
        return None;
    }
    let len = u32::from_be_bytes([0, *hs.get(1)?, *hs.get(2)?, *hs.get(3)?]) as usize;
    let body = hs.get(4..4 + len)?;
    let client_version = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut at = 2 + 32;
    at += 1 + *body.get(at)? as usize; // session id
    at += 2 + u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize; // suites
    at += 1 + *body.get(at)? as usize; // compression methods
    if at == body.len() {
        return Some(client_version); // no extensions
    }
    let ext_len = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]) as usize;
    let mut exts = body.get(at + 2..at + 2 + ext_len)?;
    while exts.len() >= 4 {
        let ty = u16::from_be_bytes([exts[0], exts[1]]);
        let l = u16::from_be_bytes([exts[2], exts[3]]) as usize;
        let data = exts.get(4..4 + l)?;
        if ty == SUPPORTED_VERSIONS {
            let list = data.get(1..1 + *data.first()? as usize)?;
            return list
                .chunks_exact(2)
                .map(|v| u16::from_be_bytes([v[0], v[1]]))
                .filter(|v| v & 0x0f0f != 0x0a0a)
                .max();
        }
        exts = &exts[4 + l..];
    }
    Some(client_version)
}

/// A connection ready for HTTP.
pub struct Accepted {
    pub stream: Stream,
    /// Subject CN of the verified client certificate, if one was required and sent.
    pub peer_cn: Option<String>,
}

/// Runs the handshake; None when the connection ended without one (counted and logged
/// when the client sent anything).
pub async fn accept(acceptor: &Acceptor, mut tcp: TcpStream) -> Option<Accepted> {
    let slot = &acceptor.slot;
    let remote = tcp.peer_addr().ok();
    let mut head = [0u8; 5];
    let mut n = 0;
    while n < head.len() && (n == 0 || head[0] != HANDSHAKE_RECORD) {
        match tcp.read(&mut head[n..]).await {
            Ok(0) | Err(_) => {
                if n > 0 {
                    slot.incoming_failed(remote, "connection closed before a TLS handshake");
                }
                return None;
            }
            Ok(k) => n += k,
        }
    }
    if head[0] != HANDSHAKE_RECORD {
        if PLAINTEXT.iter().any(|p| p[..] == head[..]) {
            let _ = tcp.write_all(PLAINTEXT_REPLY).await;
            slot.incoming_failed(remote, "plaintext HTTP request on a TLS port");
        } else {
            slot.incoming_failed(remote, "not a TLS handshake");
        }
        let _ = tcp.shutdown(std::net::Shutdown::Both).await;
        return None;
    }
    // The whole first record (the ClientHello, or its first fragment).
    let mut first = head[..n].to_vec();
    loop {
        let want = if first.len() < 5 {
            5
        } else {
            5 + record_len(&first)
        };
        if first.len() >= want {
            break;
        }
        let at = first.len();
        first.resize(want, 0);
        match tcp.read(&mut first[at..]).await {
            Ok(0) | Err(_) => {
                slot.incoming_failed(remote, "connection closed during the TLS handshake");
                return None;
            }
            Ok(k) => first.truncate(at + k),
        }
    }
    if offered_version(&first).is_some_and(|v| v < TLS12) {
        // rustls would answer handshake_failure (such a hello has no signature_algorithms);
        // the contract's answer to a pre-TLS 1.2 client is protocol_version.
        let _ = tcp.write_all(&PROTOCOL_VERSION_ALERT).await;
        let _ = tcp.shutdown(std::net::Shutdown::Both).await;
        slot.incoming_failed(remote, "the client offered nothing newer than TLS 1.1");
        return None;
    }
    let config = acceptor.config();
    match futures_rustls::TlsAcceptor::from(config)
        .accept(Prefixed::new(tcp, first))
        .into_fallible()
        .await
    {
        Ok(mut t) => {
            if t.get_mut().0.release().await.is_err() {
                return None;
            }
            let peer_cn = t
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| subject_cn(c));
            Some(Accepted {
                stream: Stream::Tls(Box::new(t)),
                peer_cn,
            })
        }
        Err((e, mut io)) => {
            // The alert rustls queued for the client (see `Prefixed`).
            let _ = io.release().await;
            let _ = io.inner.shutdown(std::net::Shutdown::Both).await;
            slot.incoming_failed(remote, &e.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(version: [u8; 2], exts: &[u8]) -> Vec<u8> {
        let mut body = version.to_vec();
        body.extend_from_slice(&[9u8; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        if !exts.is_empty() {
            body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
            body.extend_from_slice(exts);
        }
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn the_offered_version_comes_from_supported_versions_when_present() {
        assert_eq!(offered_version(&hello([3, 2], &[])), Some(0x0302));
        assert_eq!(offered_version(&hello([3, 3], &[])), Some(0x0303));
        // supported_versions: GREASE 0x0a0a, TLS 1.3, TLS 1.2.
        let sv = [0, 43, 0, 7, 6, 0x0a, 0x0a, 3, 4, 3, 3];
        assert_eq!(offered_version(&hello([3, 3], &sv)), Some(0x0304));
        // Another extension first, then supported_versions with TLS 1.1 only.
        let other = [0, 10, 0, 2, 0, 0, 0, 43, 0, 3, 2, 3, 2];
        assert_eq!(offered_version(&hello([3, 3], &other)), Some(0x0302));
        // Truncated: no verdict.
        let h = hello([3, 2], &[]);
        assert_eq!(offered_version(&h[..h.len() - 3]), None);
        assert_eq!(offered_version(&[0x16, 3, 1, 0, 0]), None);
    }
}
