//! Request helpers with an optional bearer token, and assertions on the shapes every
//! response must have (api.md §8, §9).

use super::http::{Conn, Response};
use serde_json::Value;
use std::net::SocketAddr;

/// Request helper with an optional bearer token; every call uses a fresh connection, so
/// requests spread over the server's data cores.
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl Client {
    pub fn new(addr: SocketAddr, token: Option<&str>) -> Client {
        Client {
            addr,
            token: token.map(str::to_string),
        }
    }
    /// Sends on an existing connection (keep-alive), adding the token.
    pub fn send_on(
        &self,
        conn: &mut Conn,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            h.push(("Authorization", a.as_str()));
        }
        conn.request(method, target, &h, body)
    }
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let mut conn = Conn::open(self.addr);
        self.send_on(&mut conn, method, target, headers, body)
    }
    /// Like `request`, but connection failures are an `Err` instead of a panic.
    pub fn try_request(&self, method: &str, target: &str) -> Result<Response, String> {
        let mut conn = Conn::try_open(self.addr).map_err(|e| format!("connect: {e}"))?;
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        conn.try_send(&super::http::build_request(method, target, &h, None));
        conn.try_read_response(method == "HEAD")
    }
    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[], None)
    }
    pub fn get_with(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", target, headers, None)
    }
    pub fn head(&self, target: &str) -> Response {
        self.request("HEAD", target, &[], None)
    }
    pub fn put(&self, target: &str, body: &[u8]) -> Response {
        self.request("PUT", target, &[], Some(body))
    }
    pub fn delete(&self, target: &str) -> Response {
        self.request("DELETE", target, &[], None)
    }
    pub fn post(&self, target: &str, body: &[u8]) -> Response {
        self.request("POST", target, &[], Some(body))
    }
    pub fn post_json(&self, target: &str, v: &Value) -> Response {
        self.request(
            "POST",
            target,
            &[("Content-Type", "application/json")],
            Some(v.to_string().as_bytes()),
        )
    }
}

/// Asserts an api.md §8 error: status, JSON content type, body exactly `{"error","code"}`.
/// Returns the `error` text.
pub fn assert_error(r: &Response, status: u16, code: &str) -> String {
    assert_eq!(r.status, status, "unexpected status: {}", r.describe());
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{}",
        r.describe()
    );
    let v = r.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("error body not an object: {}", r.describe()));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["code", "error"],
        "error body fields: {}",
        r.describe()
    );
    assert_eq!(v["code"], code, "{}", r.describe());
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error not a string: {}", r.describe()))
        .to_string()
}

/// Asserts `Date` (IMF-fixdate) and a `Content-Length` matching the body (unless HEAD).
pub fn assert_date_and_length(r: &Response, head: bool) {
    let d = r
        .header("date")
        .unwrap_or_else(|| panic!("no Date: {}", r.describe()));
    assert!(is_imf_fixdate(d), "Date {d:?} is not IMF-fixdate");
    assert_eq!(r.headers_all("date").len(), 1, "one Date: {}", r.describe());
    let cl = r
        .header("content-length")
        .unwrap_or_else(|| panic!("no Content-Length: {}", r.describe()));
    if !head {
        assert_eq!(cl, r.body.len().to_string(), "{}", r.describe());
    }
    assert!(
        r.header("transfer-encoding").is_none(),
        "responses are never chunked: {}",
        r.describe()
    );
    assert!(
        r.header("content-encoding").is_none(),
        "responses are never compressed: {}",
        r.describe()
    );
}

pub fn is_imf_fixdate(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 29
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&s[0..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && b[7] == b' '
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && b[19] == b':'
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
        && &s[25..] == " GMT"
}
