//! Pooled keep-alive HTTP/1.1 client for peer requests (cluster.md §12.1).
//!
//! Runs on the control core. Per peer address: a pool of at most 8 idle
//! connections (closed after 30 s idle, below the server's 60 s), a limit of
//! 64 data requests in flight (excess waits FIFO), and a separate pool for
//! membership traffic (health, probe, gossip) so it never queues behind data.
//! A request that fails on a reused connection before any response byte is
//! retried once on a new connection: every dist route is idempotent.
//!
//! With dist TLS (security.md §3) every new connection is a TLS client: the
//! node's certificate is presented, the peer's is verified against the cluster
//! CA and the dialled host, and the connection is pooled like a plaintext one,
//! so the handshake is paid once per pooled connection, not per request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;

use super::protocol::{Call, PeerError};
use super::request::{wire, Wire};
use crate::tls::stream::PeerStream;
use crate::tls::Slot;

/// Idle connections kept per peer and class: as many as requests may be in
/// flight, so a busy peer never pays a TCP connect per request.
const MAX_IDLE: usize = 64;
const IDLE_LIFETIME: Duration = Duration::from_secs(30);
const MAX_INFLIGHT: u64 = 64;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A response body over this is a failure (cluster.md §12.1).
const MAX_RESPONSE: usize = 17 << 20;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Class {
    Data,
    Membership,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum ClientError {
    Resolve(String),
    Connect(String),
    Io(String),
    Timeout,
    BadResponse(&'static str),
    Tls(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Resolve(e) => write!(f, "resolve: {e}"),
            ClientError::Connect(e) => write!(f, "connect: {e}"),
            ClientError::Io(e) => write!(f, "i/o: {e}"),
            ClientError::Timeout => write!(f, "timed out"),
            ClientError::BadResponse(e) => write!(f, "bad response: {e}"),
            ClientError::Tls(e) => write!(f, "tls: {e}"),
        }
    }
}

struct Pool {
    idle: Vec<(PeerStream, Instant)>,
    inflight: Rc<Semaphore>,
}

pub struct PeerClient {
    auth: Option<String>,
    /// Dist TLS: the node's certificate and the cluster CA (None: plaintext).
    tls: Option<std::sync::Arc<Slot>>,
    /// Peer ids by dist address, for the handshake-failure warning.
    names: RefCell<HashMap<String, String>>,
    pools: RefCell<HashMap<(String, Class), Pool>>,
    resolved: RefCell<HashMap<String, SocketAddr>>,
    /// Requests sent, by route label (for `hypercache_peer_requests_total`).
    pub sent: RefCell<std::collections::BTreeMap<&'static str, u64>>,
}

/// Percent-encodes a query value: every byte outside `A-Z a-z 0-9 - . _ ~`.
pub fn encode_query(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

enum Attempt {
    /// Failed before any response byte on a reused connection: retry.
    Retry,
    Done(Result<Response, ClientError>),
}

impl PeerClient {
    pub fn new(token: Option<&str>, tls: Option<std::sync::Arc<Slot>>) -> PeerClient {
        PeerClient {
            auth: token.map(|t| format!("Bearer {t}")),
            tls,
            names: RefCell::new(HashMap::new()),
            pools: RefCell::new(HashMap::new()),
            resolved: RefCell::new(HashMap::new()),
            sent: RefCell::new(Default::default()),
        }
    }

    async fn resolve(&self, addr: &str) -> Result<SocketAddr, ClientError> {
        if let Some(a) = self.resolved.borrow().get(addr) {
            return Ok(*a);
        }
        if let Ok(a) = addr.parse::<SocketAddr>() {
            self.resolved.borrow_mut().insert(addr.to_string(), a);
            return Ok(a);
        }
        // Name lookups block: run them off the executor.
        let owned = addr.to_string();
        let res = glommio::executor()
            .spawn_blocking(move || {
                use std::net::ToSocketAddrs;
                owned.to_socket_addrs().map(|mut it| it.next())
            })
            .await;
        match res {
            Ok(Some(a)) => {
                self.resolved.borrow_mut().insert(addr.to_string(), a);
                Ok(a)
            }
            Ok(None) => Err(ClientError::Resolve(format!("{addr}: no address"))),
            Err(e) => Err(ClientError::Resolve(format!("{addr}: {e}"))),
        }
    }

    /// Remembers which peer id listens at `addr` (logs only).
    pub fn learn_name(&self, addr: &str, id: &str) {
        let mut n = self.names.borrow_mut();
        if n.get(addr).map(String::as_str) != Some(id) {
            n.insert(addr.to_string(), id.to_string());
        }
    }

    /// With dist TLS, the handshake over a new connection to `addr`.
    async fn secure(&self, addr: &str, s: TcpStream) -> Result<PeerStream, ClientError> {
        let Some(slot) = &self.tls else {
            return Ok(PeerStream::Plain(s));
        };
        let failed = |reason: String| {
            slot.peer_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let id = self
                .names
                .borrow()
                .get(addr)
                .cloned()
                .unwrap_or_else(|| "(unknown id)".to_string());
            slot.warn_limited(&format!("peer {id}"), || {
                format!("tls handshake with peer {id} at {addr} failed: {reason}")
            });
            ClientError::Tls(reason)
        };
        let host = host_of(addr);
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| failed(format!("{host} is not a valid server name: {e}")))?;
        let config = slot
            .current()
            .client
            .clone()
            .expect("dist TLS material always has a client configuration");
        futures_rustls::TlsConnector::from(config)
            .connect(name, s)
            .await
            .map(|t| PeerStream::Tls(Box::new(t)))
            .map_err(|e| failed(e.to_string()))
    }

    fn take_idle(&self, key: &(String, Class)) -> Option<PeerStream> {
        let mut pools = self.pools.borrow_mut();
        let pool = pools.get_mut(key)?;
        while let Some((s, since)) = pool.idle.pop() {
            if since.elapsed() < IDLE_LIFETIME {
                return Some(s);
            }
        }
        None
    }

    fn put_idle(&self, key: (String, Class), s: PeerStream) {
        let mut pools = self.pools.borrow_mut();
        let pool = pools.entry(key).or_insert_with(new_pool);
        if pool.idle.len() < MAX_IDLE {
            pool.idle.push((s, Instant::now()));
        }
    }

    fn semaphore(&self, key: &(String, Class)) -> Rc<Semaphore> {
        let mut pools = self.pools.borrow_mut();
        pools
            .entry(key.clone())
            .or_insert_with(new_pool)
            .inflight
            .clone()
    }

    /// Drops pooled connections to `addr` (a peer that left or restarted).
    pub fn forget(&self, addr: &str) {
        self.pools.borrow_mut().retain(|(a, _), _| a != addr);
        self.resolved.borrow_mut().remove(addr);
    }

    /// One request with a total time limit. `label` names the route in
    /// `hypercache_peer_requests_total`.
    #[allow(clippy::too_many_arguments)]
    pub async fn request(
        &self,
        addr: &str,
        method: &str,
        target: &str,
        body: Option<&[u8]>,
        timeout: Duration,
        class: Class,
        label: &'static str,
    ) -> Result<Response, ClientError> {
        let mut with_body =
            |out: &mut Vec<u8>| body.inspect(|b| out.extend_from_slice(b)).is_some();
        let hint = body.map_or(0, <[u8]>::len);
        let wire = wire(
            self.auth.as_deref(),
            addr,
            method,
            target,
            hint,
            &mut with_body,
        );
        self.send(addr, &wire, timeout, class, label).await
    }

    /// Sends a request built by [`wire`] with a total time limit.
    async fn send(
        &self,
        addr: &str,
        wire: &Wire,
        timeout: Duration,
        class: Class,
        label: &'static str,
    ) -> Result<Response, ClientError> {
        *self.sent.borrow_mut().entry(label).or_insert(0) += 1;
        let fut = async { Ok(self.request_inner(addr, wire.bytes(), class).await) };
        match glommio::timer::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// One typed peer call ([`crate::dist::protocol`]): sent, then decoded by its route.
    pub async fn call<C: Call>(
        &self,
        addr: &str,
        call: &C,
        timeout: Duration,
        class: Class,
    ) -> Result<C::Answer, PeerError>
    where
        C::Answer: for<'de> serde::Deserialize<'de>,
    {
        let hint = call.body_size_hint();
        let wire = wire(
            self.auth.as_deref(),
            addr,
            C::METHOD,
            &call.target(),
            hint,
            &mut |out| call.write_body(out),
        );
        let r = self
            .send(addr, &wire, timeout, class, C::LABEL)
            .await
            .map_err(|e| PeerError::Transport(e.to_string()))?;
        C::decode(r.status, &r.body)
    }

    /// A data-class typed call with the standard timeout.
    pub async fn data_call<C: Call>(&self, addr: &str, call: &C) -> Result<C::Answer, PeerError>
    where
        C::Answer: for<'de> serde::Deserialize<'de>,
    {
        self.call(addr, call, REQUEST_TIMEOUT, Class::Data).await
    }

    async fn request_inner(
        &self,
        addr: &str,
        req: &[u8],
        class: Class,
    ) -> Result<Response, ClientError> {
        let key = (addr.to_string(), class);
        let sem = self.semaphore(&key);
        let _permit = if class == Class::Data {
            Some(
                sem.acquire_permit(1)
                    .await
                    .map_err(|_| ClientError::Io("closed".into()))?,
            )
        } else {
            None
        };
        if let Some(s) = self.take_idle(&key) {
            match self.attempt(&key, s, req, true).await {
                Attempt::Done(r) => return r,
                Attempt::Retry => {}
            }
        }
        let sa = self.resolve(addr).await?;
        let s = TcpStream::connect_timeout(sa, CONNECT_TIMEOUT)
            .await
            .map_err(|e| {
                // A stale resolution may be why: look the name up again next time.
                self.resolved.borrow_mut().remove(addr);
                ClientError::Connect(e.to_string())
            })?;
        let _ = s.set_nodelay(true);
        let s = self.secure(addr, s).await?;
        match self.attempt(&key, s, req, false).await {
            Attempt::Done(r) => r,
            Attempt::Retry => Err(ClientError::Io(
                "connection closed before a response".into(),
            )),
        }
    }

    async fn attempt(
        &self,
        key: &(String, Class),
        mut s: PeerStream,
        req: &[u8],
        reused: bool,
    ) -> Attempt {
        let sent = match s.write_all(req).await {
            Ok(()) => s.flush_tls().await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            return if reused {
                Attempt::Retry
            } else {
                Attempt::Done(Err(ClientError::Io(e.to_string())))
            };
        }
        let mut buf = vec![0u8; 16 * 1024];
        let mut n = 0usize;
        loop {
            if n == buf.len() {
                if buf.len() >= MAX_RESPONSE + 16 * 1024 {
                    return Attempt::Done(Err(ClientError::BadResponse("response too large")));
                }
                buf.resize(buf.len() * 2, 0);
            }
            let got = match s.read(&mut buf[n..]).await {
                Ok(g) => g,
                Err(e) => {
                    return if reused && n == 0 {
                        Attempt::Retry
                    } else {
                        Attempt::Done(Err(ClientError::Io(e.to_string())))
                    };
                }
            };
            if got == 0 {
                return if reused && n == 0 {
                    Attempt::Retry
                } else {
                    Attempt::Done(Err(ClientError::Io("connection closed".into())))
                };
            }
            n += got;
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            let head_len = match resp.parse(&buf[..n]) {
                Ok(httparse::Status::Complete(h)) => h,
                Ok(httparse::Status::Partial) => continue,
                Err(_) => {
                    return Attempt::Done(Err(ClientError::BadResponse("malformed response head")))
                }
            };
            let status = resp.code.unwrap_or(0);
            let mut len: Option<usize> = None;
            let mut close = false;
            for h in resp.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    len = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok());
                } else if h.name.eq_ignore_ascii_case("connection") {
                    close |= h.value.eq_ignore_ascii_case(b"close");
                }
            }
            let Some(len) = len else {
                return Attempt::Done(Err(ClientError::BadResponse("no Content-Length")));
            };
            if len > MAX_RESPONSE {
                return Attempt::Done(Err(ClientError::BadResponse("response too large")));
            }
            let total = head_len + len;
            while n < total {
                if buf.len() < total {
                    buf.resize(total, 0);
                }
                match s.read(&mut buf[n..total]).await {
                    Ok(0) | Err(_) => {
                        return Attempt::Done(Err(ClientError::Io("truncated response".into())));
                    }
                    Ok(g) => n += g,
                }
            }
            let body = buf[head_len..total].to_vec();
            if !close && n == total {
                self.put_idle(key.clone(), s);
            }
            return Attempt::Done(Ok(Response { status, body }));
        }
    }
}

/// The host part of `host:port` or `[v6]:port`, without brackets.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn new_pool() -> Pool {
    Pool {
        idle: Vec::new(),
        inflight: Rc::new(Semaphore::new(MAX_INFLIGHT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query("a b/c%é~"), "a%20b%2Fc%25%C3%A9~");
        assert_eq!(encode_query("user:42"), "user%3A42");
    }

    #[test]
    fn hosts_lose_port_and_brackets() {
        assert_eq!(host_of("node-1.peers:7946"), "node-1.peers");
        assert_eq!(host_of("127.0.0.1:7946"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7946"), "::1");
    }
}
