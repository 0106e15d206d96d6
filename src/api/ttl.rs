//! The `ttl` query parameter (api.md §3): Go duration grammar, absolute expiry.

use crate::config::duration::parse_go_duration;

/// Parses the raw (still form-encoded) `ttl` value. Ok(0) = no expiry;
/// Ok(ms) = positive TTL rounded up to whole milliseconds (at least 1).
/// Err carries the full `error` text.
pub fn parse_ttl(raw: Option<&[u8]>) -> Result<u64, String> {
    let Some(raw) = raw else { return Ok(0) };
    let decoded = crate::http::keys::form_decode(raw).unwrap_or_else(|_| raw.to_vec());
    let text = String::from_utf8_lossy(&decoded);
    if text.is_empty() {
        return Ok(0);
    }
    let ns = parse_go_duration(&text).map_err(|e| format!("invalid ttl: {e}"))?;
    if ns < 0 {
        return Err(format!("invalid ttl: negative duration {text:?}"));
    }
    if ns == 0 {
        return Ok(0);
    }
    let ms = (ns + 999_999) / 1_000_000;
    Ok(u64::try_from(ms).unwrap_or(u64::MAX).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert_eq!(parse_ttl(None), Ok(0));
        assert_eq!(parse_ttl(Some(b"")), Ok(0));
        assert_eq!(parse_ttl(Some(b"0")), Ok(0));
        assert_eq!(parse_ttl(Some(b"-0")), Ok(0));
        assert_eq!(parse_ttl(Some(b"1500ms")), Ok(1500));
        assert_eq!(parse_ttl(Some(b"500us")), Ok(1));
        assert_eq!(parse_ttl(Some(b"%2B10s")), Ok(10_000));
        assert_eq!(parse_ttl(Some(b"1.5h")), Ok(5_400_000));
        assert_eq!(
            parse_ttl(Some(b"-5s")).unwrap_err(),
            "invalid ttl: negative duration \"-5s\""
        );
        assert_eq!(
            parse_ttl(Some(b"abc")).unwrap_err(),
            "invalid ttl: time: invalid duration \"abc\""
        );
        assert_eq!(
            parse_ttl(Some(b"10")).unwrap_err(),
            "invalid ttl: time: missing unit in duration \"10\""
        );
        assert_eq!(
            parse_ttl(Some(b"1d")).unwrap_err(),
            "invalid ttl: time: unknown unit \"d\" in duration \"1d\""
        );
    }
}
