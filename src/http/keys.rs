//! Key decoding and validation (api.md §2) and query-string helpers, shared by
//! the client, management and dist listeners (so none imports another's routes).

pub const MAX_KEY: usize = 1024;

/// Why a key was refused; `message` is the exact `error` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    BadEscape,
    NotUtf8,
    Missing,
    TooLong(usize),
}

impl KeyError {
    pub fn message(&self) -> String {
        match self {
            KeyError::BadEscape => "invalid key: bad percent-encoding".into(),
            KeyError::NotUtf8 => "invalid key: not valid UTF-8".into(),
            KeyError::Missing => "missing key".into(),
            KeyError::TooLong(n) => format!("key too long: {n} bytes (max {MAX_KEY})"),
        }
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes a path segment into `out` (RFC 3986: `%HH` only; `+` stays `+`)
/// and validates it as a key. `out` is a caller-owned buffer, so the hot path
/// allocates nothing.
pub fn decode_path_key<'o>(seg: &[u8], out: &'o mut [u8; MAX_KEY]) -> Result<&'o [u8], KeyError> {
    if seg.is_empty() {
        return Err(KeyError::Missing);
    }
    let mut n = 0usize;
    let mut i = 0usize;
    let mut total = 0usize;
    while i < seg.len() {
        let b = if seg[i] == b'%' {
            let (Some(h), Some(l)) = (
                seg.get(i + 1).copied().and_then(hex),
                seg.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(KeyError::BadEscape);
            };
            i += 3;
            h << 4 | l
        } else {
            i += 1;
            seg[i - 1]
        };
        if n < MAX_KEY {
            out[n] = b;
            n += 1;
        }
        total += 1;
    }
    if total > MAX_KEY {
        return Err(KeyError::TooLong(total));
    }
    let key = &out[..n];
    if std::str::from_utf8(key).is_err() {
        return Err(KeyError::NotUtf8);
    }
    Ok(key)
}

/// Validates a key that arrived as a JSON string (batch bodies).
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        Err(KeyError::Missing)
    } else if key.len() > MAX_KEY {
        Err(KeyError::TooLong(key.len()))
    } else {
        Ok(())
    }
}

/// Form decoding (`%XX`, `+` = space) of a query value. Invalid escapes are
/// kept literally, as Go's lenient parsers do not apply here: callers that
/// care validate the result.
pub fn form_decode(v: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let (Some(h), Some(l)) = (
                    v.get(i + 1).copied().and_then(hex),
                    v.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(KeyError::BadEscape);
                };
                out.push(h << 4 | l);
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The raw value of the first `name` parameter of a query string.
pub fn query_param<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&c| c == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&c| c == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<Vec<u8>, KeyError> {
        let mut b = [0u8; MAX_KEY];
        decode_path_key(s.as_bytes(), &mut b).map(|k| k.to_vec())
    }

    #[test]
    fn table_of_api_md() {
        assert_eq!(dec("user%3A42").unwrap(), b"user:42");
        assert_eq!(dec("a%2Fb").unwrap(), b"a/b");
        assert_eq!(dec("caf%C3%A9").unwrap(), "café".as_bytes());
        assert_eq!(dec("a+b").unwrap(), b"a+b");
        assert_eq!(dec("%6Beys").unwrap(), b"keys");
        assert_eq!(dec("%FF"), Err(KeyError::NotUtf8));
        assert_eq!(dec("%zz"), Err(KeyError::BadEscape));
        assert_eq!(dec("%4"), Err(KeyError::BadEscape));
        assert_eq!(dec(""), Err(KeyError::Missing));
        assert_eq!(dec(&"a".repeat(1024)).unwrap().len(), 1024);
        assert_eq!(dec(&"a".repeat(1500)), Err(KeyError::TooLong(1500)));
        assert!(KeyError::TooLong(1500)
            .message()
            .starts_with("key too long"));
    }

    #[test]
    fn query() {
        assert_eq!(query_param(b"a=1&ttl=5s&ttl=9s", b"ttl"), Some(&b"5s"[..]));
        assert_eq!(query_param(b"ttl", b"ttl"), Some(&b""[..]));
        assert_eq!(query_param(b"x=1", b"ttl"), None);
        assert_eq!(form_decode(b"a+b%20c").unwrap(), b"a b c");
    }
}
