//! The bytes of one peer request. The body is written first, into a buffer that keeps
//! [`HEAD_ROOM`] bytes free in front of it; the head (which needs the body's length) then goes
//! into that room. So a body serialized straight into the buffer, such as a replicated value's
//! base64 inside a `/internal/batch`, is written once and sent from where it was written (the
//! buffer is sized from the call's estimate, so it does not grow and move while it fills).

/// Bytes kept free before a request's body for its head ([`wire`]): method, target,
/// host, a bearer token and the content headers fit in it for the body routes (whose targets are
/// fixed); a longer head costs one copy of the body.
const HEAD_ROOM: usize = 512;

/// A request as it goes on the wire: `buf[start..]`.
pub struct Wire {
    buf: Vec<u8>,
    start: usize,
}

impl Wire {
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// The request's bytes: `body` writes the body (or returns false for none) into the buffer after
/// [`HEAD_ROOM`] bytes, and the head is then written into that room, right before it. A body
/// serialized straight into the buffer (a replicated value's base64, say) is never copied again
/// on its way to the socket.
pub fn wire(
    auth: Option<&str>,
    addr: &str,
    method: &str,
    target: &str,
    body_hint: usize,
    body: &mut dyn FnMut(&mut Vec<u8>) -> bool,
) -> Wire {
    let mut buf = Vec::with_capacity(HEAD_ROOM + body_hint.max(512));
    buf.resize(HEAD_ROOM, 0);
    let has_body = body(&mut buf);
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    if let Some(a) = auth {
        head.push_str("Authorization: ");
        head.push_str(a);
        head.push_str("\r\n");
    }
    if has_body {
        head.push_str("Content-Type: application/json\r\n");
        head.push_str(&format!("Content-Length: {}\r\n", buf.len() - HEAD_ROOM));
    }
    head.push_str("\r\n");
    if head.len() <= HEAD_ROOM {
        let start = HEAD_ROOM - head.len();
        buf[start..HEAD_ROOM].copy_from_slice(head.as_bytes());
        Wire { buf, start }
    } else {
        // A head longer than the room (a very long target or token): one copy of the body.
        let mut out = head.into_bytes();
        out.extend_from_slice(&buf[HEAD_ROOM..]);
        Wire { buf: out, start: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(w: &Wire) -> String {
        String::from_utf8(w.bytes().to_vec()).unwrap()
    }

    #[test]
    fn the_head_lands_right_before_the_body() {
        let w = wire(
            Some("Bearer t"),
            "n2:7946",
            "POST",
            "/internal/batch",
            12,
            &mut |out| {
                out.extend_from_slice(b"{\"items\":[]}");
                true
            },
        );
        assert_eq!(
            text(&w),
            "POST /internal/batch HTTP/1.1\r\nHost: n2:7946\r\nAuthorization: Bearer t\r\n\
             Content-Type: application/json\r\nContent-Length: 12\r\n\r\n{\"items\":[]}"
        );
        // Written in place: the body still sits where it was serialized.
        assert_eq!(w.start + w.bytes().len(), w.buf.len());
        assert!(w.start > 0);
    }

    /// A body as large as its hint is written into the first allocation: the buffer never grows
    /// (and moves the body) while it fills.
    #[test]
    fn the_hint_sizes_the_buffer_once() {
        let body = vec![b'a'; 40_000];
        let w = wire(
            None,
            "n2:7946",
            "POST",
            "/internal/batch",
            body.len(),
            &mut |out| {
                out.extend_from_slice(&body);
                true
            },
        );
        assert_eq!(w.buf.capacity(), HEAD_ROOM + body.len());
        assert!(text(&w).ends_with(std::str::from_utf8(&body).unwrap()));
    }

    #[test]
    fn no_body_no_content_headers() {
        let w = wire(
            None,
            "n2:7946",
            "GET",
            "/internal/get?key=a",
            0,
            &mut |_| false,
        );
        assert_eq!(
            text(&w),
            "GET /internal/get?key=a HTTP/1.1\r\nHost: n2:7946\r\n\r\n"
        );
    }

    /// A head that does not fit the room (a long token) is still one correct request.
    #[test]
    fn a_long_head_falls_back_to_one_copy() {
        let token = format!("Bearer {}", "x".repeat(2 * HEAD_ROOM));
        let w = wire(
            Some(&token),
            "n2:7946",
            "POST",
            "/internal/set",
            2,
            &mut |out| {
                out.extend_from_slice(b"{}");
                true
            },
        );
        let t = text(&w);
        assert!(t.starts_with("POST /internal/set HTTP/1.1\r\n"));
        assert!(t.ends_with("Content-Length: 2\r\n\r\n{}"));
        assert!(t.contains(&token));
    }
}
