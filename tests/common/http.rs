//! A tiny HTTP/1.1 client over `std::net::TcpStream`, written for byte-level tests: it parses
//! what the server actually sends (Content-Length or chunked bodies, 1xx interim responses,
//! pipelined streams) and never hides framing mistakes.

use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Upper bound for any single read or write; a test that hits it has found a hang.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Lowercased names, in wire order, repeated fields kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    /// True when a `Connection` field carries the token `tok` (case-insensitive).
    pub fn connection_has(&self, tok: &str) -> bool {
        self.headers_all("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(tok))
    }
    pub fn has_close(&self) -> bool {
        self.connection_has("close")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.describe()))
    }
    pub fn describe(&self) -> String {
        let mut body = self.text();
        if body.len() > 1500 {
            body.truncate(1500);
            body.push_str("...");
        }
        format!(
            "{} {} {:?} body={:?}",
            self.status, self.reason, self.headers, body
        )
    }
}

pub fn lossy(b: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(b).into_owned();
    if s.len() > 1500 {
        s.truncate(1500);
        s.push_str("...");
    }
    s
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses one response at the start of `buf`. `Ok(None)`: more bytes are needed. `head`: the
/// request was HEAD (no body). `eof`: the peer closed, so a close-delimited body ends here.
pub fn parse_response(
    buf: &[u8],
    head: bool,
    eof: bool,
) -> Result<Option<(Response, usize)>, String> {
    let Some(i) = find(buf, b"\r\n\r\n") else {
        return if eof && !buf.is_empty() {
            Err(format!("truncated head: {:?}", lossy(buf)))
        } else {
            Ok(None)
        };
    };
    let end = i + 4;
    let text = std::str::from_utf8(&buf[..i])
        .map_err(|_| format!("non-UTF-8 head: {:?}", lossy(&buf[..i])))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("").to_string();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(format!("bad status line {status_line:?}"))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (n, v) = line
            .split_once(':')
            .ok_or(format!("bad header line {line:?}"))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
    };
    if head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Some((resp, end)));
    }
    let rest = &buf[end..];
    if resp
        .headers_all("transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        let (body, used, complete) = decode_chunks(rest)?;
        if !complete {
            return if eof {
                Err("truncated chunked body".into())
            } else {
                Ok(None)
            };
        }
        resp.body = body;
        return Ok(Some((resp, end + used)));
    }
    if let Some(cl) = resp.header("content-length") {
        let n: usize = cl
            .parse()
            .map_err(|_| format!("bad Content-Length {cl:?}"))?;
        if rest.len() < n {
            return if eof {
                Err(format!("truncated body: {} of {n}", rest.len()))
            } else {
                Ok(None)
            };
        }
        resp.body = rest[..n].to_vec();
        return Ok(Some((resp, end + n)));
    }
    if eof {
        resp.body = rest.to_vec();
        return Ok(Some((resp, buf.len())));
    }
    Ok(None)
}

/// Decodes chunks from the start of `buf`: (data, bytes used, whether the last chunk and the
/// trailer block were complete). Incomplete input yields the complete chunks so far.
pub fn decode_chunks(buf: &[u8]) -> Result<(Vec<u8>, usize, bool), String> {
    let (mut pos, mut out) = (0usize, Vec::new());
    loop {
        let Some(le) = find(&buf[pos..], b"\r\n") else {
            return Ok((out, pos, false));
        };
        let line = String::from_utf8_lossy(&buf[pos..pos + le]).into_owned();
        let size_txt = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_txt, 16)
            .map_err(|_| format!("bad chunk size line {line:?}"))?;
        let data = pos + le + 2;
        if size == 0 {
            let mut p = data;
            loop {
                let Some(le) = find(&buf[p..], b"\r\n") else {
                    return Ok((out, pos, false));
                };
                p += le + 2;
                if le == 0 {
                    return Ok((out, p, true));
                }
            }
        }
        if buf.len() < data + size + 2 {
            return Ok((out, pos, false));
        }
        if &buf[data + size..data + size + 2] != b"\r\n" {
            return Err("bad chunk terminator".into());
        }
        out.extend_from_slice(&buf[data..data + size]);
        pos = data + size + 2;
    }
}

/// Splits a complete byte stream (the server closed) into responses; none may be to HEAD.
pub fn parse_pipelined(buf: &[u8]) -> Vec<Response> {
    let (mut out, mut pos) = (Vec::new(), 0);
    while pos < buf.len() {
        match parse_response(&buf[pos..], false, true) {
            Ok(Some((r, used))) => {
                out.push(r);
                pos += used;
            }
            Ok(None) => break,
            Err(e) => panic!(
                "unparseable stream after {} responses: {e}; rest {:?}",
                out.len(),
                lossy(&buf[pos..])
            ),
        }
    }
    out
}

pub fn build_request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut s = format!("{method} {target} HTTP/1.1\r\n");
    let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    if !has("host") {
        s.push_str("Host: test\r\n");
    }
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(b) = body {
        if !has("content-length") && !has("transfer-encoding") {
            s.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    out.extend_from_slice(body.unwrap_or(b""));
    out
}

/// One client connection with its unparsed input.
pub struct Conn {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub eof: bool,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }
    pub fn try_open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
            eof: false,
        })
    }
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write failed: {e}"));
    }
    /// Writes, ignoring errors (the server may close early on purpose).
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }
    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
    /// One read into `buf`. Ok(0) means EOF (a reset counts as EOF).
    pub fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => {
                self.eof = true;
                Ok(0)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                self.eof = true;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }
    /// Reads until `done(buf)` holds (returns true), EOF or `deadline` (returns false).
    pub fn read_until(&mut self, deadline: Instant, mut done: impl FnMut(&[u8]) -> bool) -> bool {
        loop {
            if done(&self.buf) {
                return true;
            }
            let now = Instant::now();
            if self.eof || now >= deadline {
                return false;
            }
            let _ = self
                .stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
            let r = self.fill();
            let _ = self.stream.set_read_timeout(Some(IO_TIMEOUT));
            if r.is_err() {
                return done(&self.buf);
            }
        }
    }
    pub fn try_read_response(&mut self, head: bool) -> Result<Response, String> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some((r, used)) = parse_response(&self.buf, head, self.eof)? {
                self.buf.drain(..used);
                return Ok(r);
            }
            if self.eof {
                return Err(format!(
                    "connection closed; unparsed bytes {:?}",
                    lossy(&self.buf)
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!("timeout; unparsed bytes {:?}", lossy(&self.buf)));
            }
            if let Err(e) = self.fill() {
                return Err(format!(
                    "read error {e}; unparsed bytes {:?}",
                    lossy(&self.buf)
                ));
            }
        }
    }
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false)
            .unwrap_or_else(|e| panic!("no response: {e}"))
    }
    pub fn read_head_response(&mut self) -> Response {
        self.try_read_response(true)
            .unwrap_or_else(|e| panic!("no response to HEAD: {e}"))
    }
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        self.send(&build_request(method, target, headers, body));
        self.try_read_response(method == "HEAD")
            .unwrap_or_else(|e| panic!("no response to {method} {target}: {e}"))
    }
    /// True when the server closes (EOF or reset) within `wait` without sending anything more.
    pub fn is_closed(&mut self, wait: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let deadline = Instant::now() + wait;
        !self.read_until(deadline, |b| !b.is_empty()) && self.eof && self.buf.is_empty()
    }
    /// Everything until the server closes or `timeout` passes.
    pub fn read_to_end(&mut self, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        self.read_until(deadline, |_| false);
        std::mem::take(&mut self.buf)
    }
}

/// Writes `bytes` on a fresh connection and returns what arrives until close or 5 s.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_with(addr, bytes, Duration::from_secs(5), false)
}

pub fn raw_with(addr: SocketAddr, bytes: &[u8], timeout: Duration, half_close: bool) -> Vec<u8> {
    let mut c = Conn::open(addr);
    c.try_send(bytes);
    if half_close {
        c.shutdown_write();
    }
    c.read_to_end(timeout)
}

/// The strings of the array field `field` of a JSON body (a key browser's `keys`, say).
pub fn str_list(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("no array {field} in {v}"))
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}
