//! Response writing. Responses are appended to the connection's output buffer,
//! so a pipelined batch leaves in one `write` and nothing is allocated per
//! response once the buffers have grown to their working size.

use std::cell::Cell;
use std::io::Write;

use super::date;

pub const JSON: &str = "application/json; charset=utf-8";
pub const TEXT: &str = "text/plain; charset=utf-8";
pub const OCTETS: &str = "application/octet-stream";

/// What the `Connection` header of a response says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnHeader {
    /// HTTP/1.1 persistent default: no header.
    Default,
    /// HTTP/1.0 request asked for keep-alive: echo it.
    KeepAlive,
    /// The server closes after this response.
    Close,
}

/// A header value: bytes or a decimal number (formatted without allocating).
pub enum Hv<'a> {
    B(&'a [u8]),
    S(&'a str),
    U(u64),
}

/// Appends the decimal form of `n` without going through `core::fmt`
/// (this runs several times per response).
#[inline]
pub fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

thread_local! {
    /// IMF-fixdate of the current second, recomputed once per second per core.
    static DATE: Cell<(u64, [u8; 29])> = const { Cell::new((u64::MAX, [0; 29])) };
}

/// Recomputes the cached `Date` value; the connection sweeper calls it
/// every 250 ms, so responses never read the clock for it.
pub fn refresh_date() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|c| {
        if c.get().0 != secs {
            let mut buf = [0u8; 29];
            date::imf_fixdate(secs, &mut buf);
            c.set((secs, buf));
        }
    });
}

fn now_date() -> [u8; 29] {
    let (secs, d) = DATE.with(Cell::get);
    if secs != u64::MAX {
        return d;
    }
    refresh_date();
    DATE.with(Cell::get).1
}

/// Writes the response head. `content_length` is the length of the body the
/// GET would carry (HEAD responses keep it but send no body).
pub fn write_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: Option<&str>,
    extra: &[(&str, Hv<'_>)],
    content_length: usize,
    conn: ConnHeader,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    out.extend_from_slice(&now_date());
    out.extend_from_slice(b"\r\n");
    if let Some(ct) = content_type {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(ct.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        match value {
            Hv::B(b) => out.extend_from_slice(b),
            Hv::S(s) => out.extend_from_slice(s.as_bytes()),
            Hv::U(n) => push_u64(out, *n),
        }
        out.extend_from_slice(b"\r\n");
    }
    match conn {
        ConnHeader::Default => {}
        ConnHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"Content-Length: ");
    push_u64(out, content_length as u64);
    out.extend_from_slice(b"\r\n\r\n");
}

/// The per-request handle a service writes its one response through.
pub struct Responder<'a> {
    pub out: &'a mut Vec<u8>,
    /// Reusable buffer for building JSON bodies before their length is known.
    pub scratch: &'a mut Vec<u8>,
    pub head_only: bool,
    pub conn: ConnHeader,
    /// Status of the response written (0 until one is), for metrics.
    pub status: u16,
}

impl Responder<'_> {
    pub fn send(
        &mut self,
        status: u16,
        ctype: Option<&str>,
        extra: &[(&str, Hv<'_>)],
        body: &[u8],
    ) {
        self.status = status;
        write_head(self.out, status, ctype, extra, body.len(), self.conn);
        if !self.head_only {
            self.out.extend_from_slice(body);
        }
    }

    /// Builds a JSON body with `f` in the scratch buffer, then sends it.
    pub fn json(&mut self, status: u16, extra: &[(&str, Hv<'_>)], f: impl FnOnce(&mut Vec<u8>)) {
        let mut scratch = std::mem::take(self.scratch);
        scratch.clear();
        f(&mut scratch);
        self.send(status, Some(JSON), extra, &scratch);
        *self.scratch = scratch;
    }

    /// `{"error":..,"code":..}` with the given status.
    pub fn error(&mut self, status: u16, code: &str, message: &str) {
        self.error_with(status, code, message, &[]);
    }

    pub fn error_with(&mut self, status: u16, code: &str, message: &str, extra: &[(&str, Hv<'_>)]) {
        self.json(status, extra, |b| write_error_body(b, code, message));
    }
}

pub fn write_error_body(b: &mut Vec<u8>, code: &str, message: &str) {
    b.extend_from_slice(b"{\"error\":");
    json_str(b, message);
    b.extend_from_slice(b",\"code\":");
    json_str(b, code);
    b.push(b'}');
}

/// Appends `["a","b",...]`.
pub fn json_str_list<S: AsRef<str>>(b: &mut Vec<u8>, items: &[S]) {
    b.push(b'[');
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        json_str(b, s.as_ref());
    }
    b.push(b']');
}

/// Appends `s` as a JSON string literal.
pub fn json_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                b.extend_from_slice(&bytes[start..i]);
                let _ = write!(b, "\\u{:04x}", c);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        b.extend_from_slice(&bytes[start..i]);
        b.extend_from_slice(esc);
        start = i + 1;
    }
    b.extend_from_slice(&bytes[start..]);
    b.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_has_date_and_length() {
        let mut out = Vec::new();
        write_head(
            &mut out,
            404,
            Some(JSON),
            &[("Allow", Hv::S("GET"))],
            12,
            ConnHeader::Close,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\nDate: "));
        assert!(s.contains(" GMT\r\n"));
        assert!(s.contains("Allow: GET\r\nConnection: close\r\nContent-Length: 12\r\n\r\n"));
    }

    #[test]
    fn push_u64_matches_display() {
        for n in [0u64, 7, 10, 99, 100, 12345, u64::MAX] {
            let mut b = Vec::new();
            push_u64(&mut b, n);
            assert_eq!(b, n.to_string().into_bytes());
        }
    }

    #[test]
    fn json_escaping_matches_serde() {
        for s in ["plain", "q\"b\\", "ctl\u{1}\n\t", "café ✓"] {
            let mut b = Vec::new();
            json_str(&mut b, s);
            let back: String = serde_json::from_slice(&b).unwrap();
            assert_eq!(back, s);
        }
    }
}
