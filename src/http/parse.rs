//! Request-head parsing and framing validation (api.md §9).
//!
//! `parse_head` turns the bytes at the front of a connection's read buffer into
//! a [`Head`] that borrows from that buffer: no allocation per request. Every
//! framing rule that can be decided from the head alone (smuggling defences,
//! limits, Host) is enforced here, so the connection loop and the services only
//! ever see requests whose body framing is unambiguous.

/// Request line plus headers may total this many bytes (api.md §9).
pub const MAX_HEAD: usize = 8192;
/// At most this many header fields.
pub const MAX_HEADERS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    /// Any other syntactically valid token (answered 405 by routes).
    Other,
}

impl Method {
    fn from_token(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

/// How the request body is framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

impl BodyKind {
    /// True when the client announced body bytes we would have to read.
    pub fn announced(self) -> bool {
        !matches!(self, BodyKind::None | BodyKind::Length(0))
    }
}

/// A parsed, validated request head. Borrows from the read buffer.
#[derive(Debug)]
pub struct Head<'b> {
    pub method: Method,
    /// Path part of the target (starts with `/`), raw (not decoded).
    pub path: &'b [u8],
    /// Query string without the `?`, raw; empty when absent.
    pub query: &'b [u8],
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Whether the connection may stay open after this request (before the
    /// server adds its own reasons to close).
    pub keep_alive: bool,
    /// The request asked for `Connection: keep-alive` under HTTP/1.0, which the
    /// response must echo.
    pub echo_keep_alive: bool,
    pub body: BodyKind,
    pub expect_continue: bool,
    /// Value of the only `Authorization` header; `auth_count` tells how many there were.
    pub authorization: Option<&'b [u8]>,
    pub auth_count: u8,
    /// Some `Accept` header contains `application/json` (ASCII case-insensitive).
    pub accept_json: bool,
    /// Bytes of the head including the final CRLFCRLF.
    pub len: usize,
}

/// Why a head was refused. `status` is 400 or 431; the connection is closed after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingError {
    pub status: u16,
    pub message: &'static str,
}

const fn bad(message: &'static str) -> FramingError {
    FramingError {
        status: 400,
        message,
    }
}
pub const TOO_LARGE_HEAD: FramingError = FramingError {
    status: 431,
    message: "request header fields too large",
};

/// Outcome of trying to parse the front of `buf`.
#[derive(Debug)]
pub enum Parsed<'b> {
    /// A complete, valid head.
    Complete(Head<'b>),
    /// More bytes are needed (and the limit has not been reached yet).
    Partial,
    Invalid(FramingError),
}

/// Parses and validates one request head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Parsed<'_> {
    // Uninitialised slots: clearing 64 headers (2 KiB) per request costs more
    // than parsing a typical head.
    let mut headers =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let status = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Invalid(TOO_LARGE_HEAD),
        Err(httparse::Error::Version) => return Parsed::Invalid(bad("unsupported HTTP version")),
        Err(httparse::Error::Token) => return Parsed::Invalid(bad("malformed request method")),
        Err(httparse::Error::HeaderName) => return Parsed::Invalid(bad("malformed header name")),
        Err(httparse::Error::HeaderValue) => return Parsed::Invalid(bad("malformed header value")),
        Err(_) => return Parsed::Invalid(bad("malformed request")),
    };
    let len = match status {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            return if buf.len() >= MAX_HEAD {
                Parsed::Invalid(TOO_LARGE_HEAD)
            } else {
                Parsed::Partial
            };
        }
    };
    if len > MAX_HEAD {
        return Parsed::Invalid(TOO_LARGE_HEAD);
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Parsed::Invalid(bad("malformed request line"));
    };
    let Some((path, query)) = split_target(target.as_bytes()) else {
        return Parsed::Invalid(bad("malformed request target"));
    };
    match validate_headers(req.headers, minor) {
        Ok(mut head) => {
            head.method = Method::from_token(method);
            head.path = path;
            head.query = query;
            head.len = len;
            Parsed::Complete(head)
        }
        Err(e) => Parsed::Invalid(e),
    }
}

/// Origin form `/p?q`, or absolute form `http://host/p?q` of which only the
/// path and query are used.
fn split_target(t: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = if t.first() == Some(&b'/') {
        t
    } else {
        let lower_starts = |p: &[u8]| t.len() >= p.len() && t[..p.len()].eq_ignore_ascii_case(p);
        let after = if lower_starts(b"http://") {
            &t[7..]
        } else if lower_starts(b"https://") {
            &t[8..]
        } else {
            return None;
        };
        // authority ends at the first '/', '?' or the end
        let end = after
            .iter()
            .position(|&c| c == b'/' || c == b'?')
            .unwrap_or(after.len());
        if end == 0 {
            return None;
        }
        match after.get(end) {
            Some(b'/') => &after[end..],
            // "http://host" or "http://host?q": empty path means "/"
            _ => return Some((b"/", after.get(end + 1..).unwrap_or(b""))),
        }
    };
    match rest.iter().position(|&c| c == b'?') {
        Some(i) => Some((&rest[..i], &rest[i + 1..])),
        None => Some((rest, b"")),
    }
}

fn validate_headers<'b>(
    headers: &[httparse::Header<'b>],
    minor: u8,
) -> Result<Head<'b>, FramingError> {
    let mut hosts = 0u32;
    let mut cl: Option<u64> = None;
    let mut cl_count = 0u32;
    let mut te_count = 0u32;
    let mut te_ok = true;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut head = Head {
        method: Method::Other,
        path: b"",
        query: b"",
        minor,
        keep_alive: false,
        echo_keep_alive: false,
        body: BodyKind::None,
        expect_continue: false,
        authorization: None,
        auth_count: 0,
        accept_json: false,
        len: 0,
    };
    for h in headers {
        let name = h.name.as_bytes();
        let value = trim(h.value);
        // Dispatch on the length first: most headers of a request are none of
        // these, and one length compare rules them out.
        let is = |want: &[u8]| name.eq_ignore_ascii_case(want);
        match name.len() {
            4 if is(b"host") => hosts += 1,
            14 if is(b"content-length") => {
                cl_count += 1;
                if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                    return Err(bad("invalid Content-Length"));
                }
                cl = Some(
                    value
                        .iter()
                        .fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')),
                );
            }
            17 if is(b"transfer-encoding") => {
                te_count += 1;
                te_ok &= value.eq_ignore_ascii_case(b"chunked");
            }
            10 if is(b"connection") => {
                for tok in value.split(|&c| c == b',') {
                    let tok = trim(tok);
                    conn_close |= tok.eq_ignore_ascii_case(b"close");
                    conn_keep_alive |= tok.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            6 if is(b"expect") => {
                head.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
            }
            6 if is(b"accept") => {
                head.accept_json |= contains_ignore_case(value, b"application/json");
            }
            13 if is(b"authorization") => {
                head.auth_count = head.auth_count.saturating_add(1);
                head.authorization = Some(h.value);
            }
            16 if is(b"content-encoding") && !value.eq_ignore_ascii_case(b"identity") => {
                return Err(bad(
                    "unsupported Content-Encoding: request bodies must not be encoded",
                ));
            }
            _ => {}
        }
    }
    if cl_count > 1 {
        return Err(bad("more than one Content-Length header"));
    }
    if te_count > 0 {
        if minor == 0 {
            return Err(bad("Transfer-Encoding is not allowed in HTTP/1.0"));
        }
        if cl_count > 0 {
            return Err(bad("both Content-Length and Transfer-Encoding present"));
        }
        if te_count > 1 || !te_ok {
            return Err(bad(
                "unsupported Transfer-Encoding (only chunked is accepted)",
            ));
        }
        head.body = BodyKind::Chunked;
    } else if let Some(n) = cl {
        head.body = BodyKind::Length(n);
    }
    if minor == 1 && hosts != 1 {
        return Err(bad("HTTP/1.1 requests need exactly one Host header"));
    }
    if minor == 1 {
        head.keep_alive = !conn_close;
    } else {
        head.keep_alive = conn_keep_alive && !conn_close;
        head.echo_keep_alive = head.keep_alive;
    }
    // Expect only matters for HTTP/1.1 requests that announce a body.
    head.expect_continue &= minor == 1 && head.body.announced();
    Ok(head)
}

pub fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &v[start..end]
}

pub fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Head<'_> {
        match parse_head(raw.as_bytes()) {
            Parsed::Complete(h) => h,
            other => panic!("expected complete head, got {other:?}"),
        }
    }
    fn err(raw: &str) -> u16 {
        match parse_head(raw.as_bytes()) {
            Parsed::Invalid(e) => e.status,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn origin_and_absolute_form() {
        let h = ok("GET /v1/cache/a?ttl=5s HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path, b"/v1/cache/a");
        assert_eq!(h.query, b"ttl=5s");
        assert!(h.keep_alive);
        let h = ok("GET http://example.com/healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(h.path, b"/healthz");
        assert_eq!(err("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    }

    #[test]
    fn smuggling_defences() {
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
            400
        );
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 12345678901234567890\r\n\r\n"),
            400
        );
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
            400
        );
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            err("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(err("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(err("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
        assert_eq!(err("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
        assert_eq!(err("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(
            err("PUT / HTTP/1.1\r\nHost: a\r\nContent-Encoding: gzip\r\n\r\n"),
            400
        );
        let h = ok("PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(h.body, BodyKind::Chunked);
    }

    #[test]
    fn limits() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
        assert_eq!(err(&long), 431);
        let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..64 {
            many.push_str(&format!("X-{i}: y\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(err(&many), 431);
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHo"),
            Parsed::Partial
        ));
    }

    #[test]
    fn http10_keep_alive() {
        let h = ok("GET / HTTP/1.0\r\n\r\n");
        assert!(!h.keep_alive);
        let h = ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive && h.echo_keep_alive);
        let h = ok("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert!(!h.keep_alive);
    }
}
