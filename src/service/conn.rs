//! The connection loop shared by every listener (client, management, dist).
//!
//! One task per connection. It parses every complete request already in the
//! read buffer, appends each response to one output buffer in request order and
//! writes that buffer only when it needs more input, so a pipelined batch is
//! answered with one `write`. Reads pause while requests are pending (the read
//! buffer holds at most one unanswered request beyond what was already sent),
//! which bounds per-connection memory without dropping requests.
//!
//! Order of checks (api.md §9): framing → declared size → service `prepare`
//! (auth, route, method, route-specific) → `100 Continue` → body → `call`.

use std::io;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::watch::{coarse_now, Guard, Watch};
use crate::auth::gate::Gate;
use crate::auth::ConnFacts;
use crate::base::stop::StopSignal;
use crate::http::chunked::{ChunkError, ChunkedDecoder};
use crate::http::parse::{parse_head, BodyKind, FramingError, Head, Parsed, MAX_HEAD};
use crate::http::response::{write_error_body, ConnHeader, Responder, JSON};
use crate::tls::handshake;
use crate::tls::stream::Stream;
use crate::tls::Acceptor;
use std::os::fd::AsRawFd;
use std::rc::Rc;

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const INITIAL_BUF: usize = 16 * 1024;

/// Per-connection state a service keeps for the requests of one read (the
/// client listener's pipelined lookups, `api::ahead`).
pub trait ReadAhead: Default {
    /// The loop finished one request.
    fn request_done(&mut self);
}

impl ReadAhead for () {
    fn request_done(&mut self) {}
}

/// What a listener does with requests. One instance per core and listener.
#[allow(async_fn_in_trait)]
pub trait Service {
    /// What `prepare` decided; may borrow from the head.
    type Route<'b>;

    /// What `read_ahead` leaves for `call` (`()` for listeners that do not read ahead).
    type Ahead: ReadAhead;

    /// Body cap for this listener.
    fn max_body(&self) -> u64;

    /// Metrics family of a request (route family index); cheap path match.
    fn family(&self, head: &Head<'_>) -> usize;

    /// True when every response should close its connection (the client listener while the
    /// node drains). Read once per request: one atomic load.
    fn closing(&self) -> bool {
        false
    }

    /// The listener's identity gate (client and management listeners).
    /// When authenticating a request needs slow work first (bcrypt), the
    /// loop awaits the gate's `settle` before `prepare`, so `prepare` itself
    /// never blocks.
    fn gate(&self) -> Option<&Gate> {
        None
    }

    /// Checks that need no body: auth, route, method, route-specific. On
    /// refusal, write the error into `r` and return None.
    fn prepare<'b>(
        &self,
        head: &Head<'b>,
        conn: ConnFacts<'_>,
        r: &mut Responder<'_>,
    ) -> Option<Self::Route<'b>>;

    /// Called after each read that follows an idle connection, with the new
    /// input, before any of its requests is handled: the service may start
    /// work for several pipelined requests at once.
    async fn read_ahead(&self, _input: &[u8], _ahead: &mut Self::Ahead) {}

    /// Handles a request whose body has been read. Returns true when the
    /// response turned the connection into a stream handled by `stream`.
    async fn call<'b>(
        &self,
        route: Self::Route<'b>,
        head: &Head<'b>,
        body: &[u8],
        r: &mut Responder<'_>,
        ahead: &mut Self::Ahead,
    ) -> bool;

    /// Runs a streaming response (event stream) after its head was flushed.
    async fn stream(&self, _stream: &mut Stream, _http10: bool) {}

    /// Called once per response with its family, status and latency.
    fn observe(&self, family: usize, status: u16, elapsed: Duration);
}

struct Conn {
    stream: Stream,
    watch: Guard,
    buf: Vec<u8>,
    rpos: usize,
    end: usize,
    eof: bool,
    out: Vec<u8>,
}

impl Conn {
    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush_tls().await?;
            self.out.clear();
            if self.out.capacity() > 1 << 20 {
                self.out.shrink_to(INITIAL_BUF);
            }
        }
        Ok(())
    }

    /// Reads more bytes, making room for at least `want` bytes of unread data.
    /// The read ends (0 bytes) if it waits past `timeout` (see `watch`).
    async fn read_more(&mut self, timeout: Duration, want: usize) -> io::Result<usize> {
        self.read_more_until(coarse_now() + timeout, want, false)
            .await
    }

    async fn read_more_until(
        &mut self,
        deadline: Instant,
        want: usize,
        idle: bool,
    ) -> io::Result<usize> {
        if self.rpos == self.end {
            self.rpos = 0;
            self.end = 0;
            if self.buf.len() > 1 << 20 && want <= INITIAL_BUF {
                self.buf.truncate(INITIAL_BUF);
                self.buf.shrink_to_fit();
            }
        }
        let need = want.max(self.end - self.rpos + 4096);
        if self.buf.len() - self.rpos < need {
            self.buf.copy_within(self.rpos..self.end, 0);
            self.end -= self.rpos;
            self.rpos = 0;
            if self.buf.len() < need {
                self.buf.resize(need.next_power_of_two(), 0);
            }
        }
        self.watch.reading(deadline, idle);
        let r = self.stream.read(&mut self.buf[self.end..]).await;
        self.watch.done();
        let n = r?;
        self.end += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }
}

fn framing_response(out: &mut Vec<u8>, e: FramingError) {
    let code = if e.status == 431 {
        "HEADERS_TOO_LARGE"
    } else {
        "BAD_REQUEST"
    };
    let mut body = Vec::with_capacity(96);
    write_error_body(&mut body, code, e.message);
    crate::http::response::write_head(
        out,
        e.status,
        Some(JSON),
        &[],
        body.len(),
        ConnHeader::Close,
    );
    out.extend_from_slice(&body);
}

/// Serves one connection until it closes, errors, times out, or `stop` fires
/// while it is idle. With `tls`, the connection's first bytes must be a TLS
/// handshake, which the 10 s header deadline covers.
pub async fn serve<S: Service>(
    svc: &S,
    tcp: TcpStream,
    tls: Option<&Acceptor>,
    stop: &StopSignal,
    watch: &Rc<Watch>,
) {
    let accepted_at = coarse_now();
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_write_timeout(Some(WRITE_TIMEOUT));
    let guard = watch.register(tcp.as_raw_fd());
    let (stream, peer_cn) = match tls {
        None => (Stream::Plain(tcp), None),
        Some(acceptor) => {
            guard.reading(accepted_at + HEADER_TIMEOUT, false);
            let accepted = handshake::accept(acceptor, tcp).await;
            guard.done();
            match accepted {
                Some(a) => (a.stream, a.peer_cn),
                None => return,
            }
        }
    };
    let facts = ConnFacts {
        tls: tls.is_some(),
        peer_cn: peer_cn.as_deref(),
    };
    let mut c = Conn {
        watch: guard,
        stream,
        buf: vec![0; INITIAL_BUF],
        rpos: 0,
        end: 0,
        eof: false,
        out: Vec::with_capacity(INITIAL_BUF),
    };
    let mut scratch = Vec::new();
    let mut body_buf = Vec::new();
    let io = Io {
        scratch: &mut scratch,
        body_buf: &mut body_buf,
        facts,
    };
    let _ = serve_inner(svc, &mut c, stop, io, accepted_at).await;
    let _ = c.flush().await;
    c.stream.finish().await;
}

/// Per-connection buffers and facts the request loop lends to each request.
struct Io<'a> {
    scratch: &'a mut Vec<u8>,
    body_buf: &'a mut Vec<u8>,
    facts: ConnFacts<'a>,
}

async fn serve_inner<S: Service>(
    svc: &S,
    c: &mut Conn,
    stop: &StopSignal,
    io: Io<'_>,
    accepted_at: Instant,
) -> io::Result<()> {
    let Io {
        scratch,
        body_buf,
        facts,
    } = io;
    // Deadline for the current request's head: from accept (handshake included) or its
    // first byte.
    let mut head_deadline = accepted_at + HEADER_TIMEOUT;
    let mut first = true;
    let mut ahead = S::Ahead::default();
    loop {
        if c.rpos == c.end {
            // Idle between requests: flush what we owe, then wait.
            c.flush().await?;
            if c.eof || stop.is_set() {
                return Ok(());
            }
            let deadline = if first {
                head_deadline
            } else {
                coarse_now() + IDLE_TIMEOUT
            };
            // Idle: the watch closes it at the deadline or when the listener stops.
            let n = c.read_more_until(deadline, 0, true).await?;
            if n == 0 {
                return Ok(());
            }
            head_deadline = coarse_now() + HEADER_TIMEOUT;
            svc.read_ahead(&c.buf[c.rpos..c.end], &mut ahead).await;
            continue;
        }
        first = false;
        let req = Req {
            scratch,
            body_buf,
            facts,
            ahead: &mut ahead,
        };
        let outcome = handle_one(svc, c, stop, req, head_deadline).await?;
        ahead.request_done();
        match outcome {
            Step::Continue => head_deadline = coarse_now() + HEADER_TIMEOUT,
            Step::Close => return Ok(()),
        }
    }
}

enum Step {
    Continue,
    Close,
}

/// What one request borrows from its connection.
struct Req<'a, 'f, A> {
    scratch: &'a mut Vec<u8>,
    body_buf: &'a mut Vec<u8>,
    facts: ConnFacts<'f>,
    ahead: &'a mut A,
}

/// Processes the request at the front of the buffer, reading more input as
/// needed. Returns whether the connection stays open.
async fn handle_one<S: Service>(
    svc: &S,
    c: &mut Conn,
    stop: &StopSignal,
    req: Req<'_, '_, S::Ahead>,
    head_deadline: Instant,
) -> io::Result<Step> {
    let Req {
        scratch,
        body_buf,
        facts,
        ahead,
    } = req;
    let mut decoder: Option<ChunkedDecoder> = None;
    let mut chunk_consumed = 0usize;
    let mut sent_continue = false;
    let mut started: Option<Instant> = None;
    body_buf.clear();
    loop {
        let avail_len = c.end - c.rpos;
        let parsed = parse_head(&c.buf[c.rpos..c.end]);
        let head = match parsed {
            Parsed::Partial => {
                if c.eof {
                    return Ok(Step::Close);
                }
                c.flush().await?;
                if coarse_now() >= head_deadline {
                    return Ok(Step::Close);
                }
                match c.read_more_until(head_deadline, MAX_HEAD, false).await {
                    Ok(0) => return Ok(Step::Close),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(Step::Close),
                    Err(e) => return Err(e),
                }
            }
            Parsed::Invalid(e) => {
                framing_response(&mut c.out, e);
                return Ok(Step::Close);
            }
            Parsed::Complete(h) => h,
        };
        let t0 = *started.get_or_insert_with(Instant::now);
        let family = svc.family(&head);
        let keep_alive = head.keep_alive && !stop.is_set() && !svc.closing();
        let normal_conn = if !keep_alive {
            ConnHeader::Close
        } else if head.echo_keep_alive {
            ConnHeader::KeepAlive
        } else {
            ConnHeader::Default
        };
        let mut r = Responder {
            out: &mut c.out,
            scratch,
            head_only: head.method == crate::http::parse::Method::Head,
            conn: if head.body.announced() {
                ConnHeader::Close
            } else {
                normal_conn
            },
            status: 0,
        };
        if let BodyKind::Length(n) = head.body {
            if n > svc.max_body() {
                r.conn = ConnHeader::Close;
                r.error(413, "TOO_LARGE", "request body too large");
                svc.observe(family, 413, t0.elapsed());
                return Ok(Step::Close);
            }
        }
        if let Some(g) = svc.gate() {
            g.settle(head.authorization, head.auth_count, facts).await;
        }
        let Some(route) = svc.prepare(&head, facts, &mut r) else {
            let status = r.status;
            svc.observe(family, status, t0.elapsed());
            let close = head.body.announced() || !keep_alive;
            c.rpos += if close { avail_len } else { head.len };
            return Ok(if close { Step::Close } else { Step::Continue });
        };
        r.conn = normal_conn;
        // Body: complete in the buffer?
        let body_start = head.len;
        let (complete, consumed) = match head.body {
            BodyKind::None => (true, body_start),
            BodyKind::Length(n) => {
                let total = body_start + n as usize;
                (avail_len >= total, total)
            }
            BodyKind::Chunked => {
                let dec = decoder.get_or_insert_with(ChunkedDecoder::new);
                let from = body_start + chunk_consumed;
                let input = &c.buf[c.rpos + from..c.end];
                match dec.feed(input, body_buf, svc.max_body()) {
                    Ok(n) => chunk_consumed += n,
                    Err(e) => {
                        r.conn = ConnHeader::Close;
                        let (st, code, msg) = match e {
                            ChunkError::Malformed => (400, "BAD_REQUEST", "malformed chunked body"),
                            ChunkError::TooLarge => (413, "TOO_LARGE", "request body too large"),
                            ChunkError::TrailersTooLarge => {
                                (431, "HEADERS_TOO_LARGE", "request header fields too large")
                            }
                        };
                        r.error(st, code, msg);
                        svc.observe(family, st, t0.elapsed());
                        return Ok(Step::Close);
                    }
                }
                (dec.is_done(), body_start + chunk_consumed)
            }
        };
        if complete {
            let body: &[u8] = match head.body {
                BodyKind::Chunked => body_buf,
                _ => &c.buf[c.rpos + body_start..c.rpos + consumed],
            };
            let streaming = svc.call(route, &head, body, &mut r, ahead).await;
            let status = r.status;
            let http10 = head.minor == 0;
            svc.observe(family, status, t0.elapsed());
            c.rpos += consumed;
            if streaming {
                c.flush().await?;
                svc.stream(&mut c.stream, http10).await;
                return Ok(Step::Close);
            }
            return Ok(if keep_alive {
                Step::Continue
            } else {
                Step::Close
            });
        }
        // Need more body bytes.
        let want = match head.body {
            BodyKind::Length(n) => body_start + n as usize,
            _ => 0,
        };
        let expect = head.expect_continue;
        let _ = r;
        drop(route);
        if expect && !sent_continue {
            c.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            sent_continue = true;
        }
        c.flush().await?;
        if c.eof {
            return Ok(Step::Close);
        }
        match c.read_more(BODY_TIMEOUT, want).await {
            Ok(0) => return Ok(Step::Close),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Ok(Step::Close),
            Err(e) => return Err(e),
        }
    }
}
