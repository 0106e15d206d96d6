//! Go duration grammar (api.md §3, ops.md §2.2).
//!
//! The client API's `ttl` parameter and every duration variable use Go's `time.ParseDuration`,
//! and the contract asks for Go's exact error texts so existing clients and scripts that match on
//! them keep working. The parser below is a line-by-line port of Go's algorithm (including its
//! float64 handling of fractions) rather than a fresh grammar, so edge cases such as `.5s`,
//! `1.s`, `-0` or a fraction of an hour round exactly as Go rounds them.

use std::time::Duration;

/// Go's largest `time.Duration`, in nanoseconds. Go accepts magnitudes up to 2^63 while
/// accumulating (so `-2562047h47m16.854775808s` works) and rejects positives above this.
const MAX_NS: u64 = (1 << 63) - 1;
const LIMIT: u64 = 1 << 63;

/// Parses a Go duration and returns it in nanoseconds (negative values allowed, as in Go).
///
/// Errors carry Go's exact texts: `time: invalid duration "abc"`,
/// `time: missing unit in duration "10"`, `time: unknown unit "d" in duration "1d"`.
pub fn parse_go_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(s));
    let b = s.as_bytes();
    let mut i = 0;
    let mut neg = false;
    if let Some(&c) = b.first() {
        if c == b'-' || c == b'+' {
            neg = c == b'-';
            i = 1;
        }
    }
    // Go special-cases a lone zero: it is the only number allowed without a unit.
    if &s[i..] == "0" {
        return Ok(0);
    }
    if i == b.len() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while i < b.len() {
        if !(b[i] == b'.' || b[i].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part; overflow here is an "invalid duration" in Go.
        let int_start = i;
        let mut v: u64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(b[i] - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i != int_start;
        // Fraction: Go silently stops accumulating precision instead of failing.
        let mut frac: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let frac_start = i;
            let mut overflow = false;
            while i < b.len() && b[i].is_ascii_digit() {
                if !overflow {
                    if frac > MAX_NS / 10 {
                        overflow = true;
                    } else {
                        let y = frac * 10 + u64::from(b[i] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            frac = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i != frac_start;
        }
        if !pre && !post {
            return Err(invalid());
        }
        // The unit is everything up to the next digit or '.', exactly as in Go, so "5 m" reports
        // the unknown unit " m" and "1h-5m" the unknown unit "h-". Both stop bytes are ASCII, so
        // the slice is always on a char boundary.
        let unit_start = i;
        while i < b.len() && !(b[i] == b'.' || b[i].is_ascii_digit()) {
            i += 1;
        }
        if i == unit_start {
            return Err(format!("time: missing unit in duration {}", go_quote(s)));
        }
        let unit_text = &s[unit_start..i];
        let unit: u64 = match unit_text {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit_text),
                    go_quote(s)
                ))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Go uses float64 here to stay nanosecond-accurate for fractions of hours.
            v += (frac as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        // Both terms are <= 2^63, so the sum cannot overflow u64.
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok(-i128::from(total));
    }
    if total > MAX_NS {
        return Err(invalid());
    }
    Ok(i128::from(total))
}

/// Go's `time.Duration.String`: `0s`, `1ms`, `500µs`, `1.5s`, `10m0s`, `1h30m0s`.
///
/// `/config` and error messages print durations this way so operators see the form Go prints.
/// Durations beyond Go's range (about 292 years) simply print more hours.
pub fn format_go_duration(d: Duration) -> String {
    let u = d.as_nanos();
    if u < 1_000_000_000 {
        // Below one second Go switches to the smallest unit that keeps an integer part.
        let (prec, unit) = match u {
            0 => return "0s".to_string(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let (int, frac) = split_frac(u, prec);
        return format!("{int}{frac}{unit}");
    }
    let (secs, frac) = split_frac(u, 9);
    let mins = secs / 60;
    let s = secs % 60;
    if mins == 0 {
        return format!("{s}{frac}s");
    }
    let hours = mins / 60;
    let m = mins % 60;
    if hours == 0 {
        format!("{m}m{s}{frac}s")
    } else {
        format!("{hours}h{m}m{s}{frac}s")
    }
}

/// Splits `v` into `v / 10^prec` and the fraction as ".ddd" without trailing zeros (Go's
/// `fmtFrac`); the point is omitted too when the fraction is zero.
fn split_frac(v: u128, prec: usize) -> (u128, String) {
    let pow = 10u128.pow(prec as u32);
    let frac = v % pow;
    if frac == 0 {
        return (v / pow, String::new());
    }
    let digits = format!("{frac:0prec$}");
    (v / pow, format!(".{}", digits.trim_end_matches('0')))
}

/// Go's `strconv.Quote`, used by Go's duration errors and by our invalid-variable messages.
///
/// Printable characters are kept as they are; the usual escapes (`\n`, `\t`, `\"`, `\\`, ...)
/// and `\xNN` / `\uNNNN` / `\UNNNNNNNN` are used otherwise. "Printable" approximates Go's
/// `strconv.IsPrint` for what appears in practice: control characters, spaces other than U+0020
/// and the common invisible format characters are escaped.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}')
        || matches!(c, '\u{2060}'..='\u{2064}' | '\u{feff}')
        // Private use areas.
        || matches!(c, '\u{e000}'..='\u{f8ff}' | '\u{f0000}'..='\u{10ffff}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;
    const MS: i128 = 1_000_000;

    #[test]
    fn valid_examples_of_the_contract() {
        let cases: &[(&str, i128)] = &[
            ("30s", 30 * S),
            ("5m", 300 * S),
            ("2h30m", 9000 * S),
            ("1.5h", 5400 * S),
            (".5s", 500 * MS),
            ("500ms", 500 * MS),
            ("250us", 250_000),
            ("250\u{b5}s", 250_000),
            ("250\u{3bc}s", 250_000),
            ("0", 0),
            ("0s", 0),
            ("-0", 0),
            ("+0", 0),
            ("0.0h", 0),
            ("+10s", 10 * S),
            ("-5s", -5 * S),
            ("1m30s", 90 * S),
            ("200ms", 200 * MS),
            ("10m", 600 * S),
            ("1.s", S),
            ("1ns", 1),
            ("1h1m1s1ms1us1ns", 3661 * S + MS + 1_001),
            ("9223372036854775807ns", i64::MAX as i128),
            ("-9223372036854775808ns", i64::MIN as i128),
            ("2562047h47m16.854775807s", i64::MAX as i128),
            ("0.5h", 1800 * S),
            ("1.000000001s", S + 1),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn invalid_examples_have_go_error_texts() {
        let cases: &[(&str, &str)] = &[
            ("abc", r#"time: invalid duration "abc""#),
            ("10", r#"time: missing unit in duration "10""#),
            ("1d", r#"time: unknown unit "d" in duration "1d""#),
            ("5 m", r#"time: unknown unit " m" in duration "5 m""#),
            ("1H", r#"time: unknown unit "H" in duration "1H""#),
            ("1h-5m", r#"time: unknown unit "h-" in duration "1h-5m""#),
            ("", r#"time: invalid duration """#),
            ("-", r#"time: invalid duration "-""#),
            ("+", r#"time: invalid duration "+""#),
            (".s", r#"time: invalid duration ".s""#),
            ("-.s", r#"time: invalid duration "-.s""#),
            ("s", r#"time: invalid duration "s""#),
            (" 1s", r#"time: invalid duration " 1s""#),
            ("1s ", r#"time: unknown unit "s " in duration "1s ""#),
            ("fast", r#"time: invalid duration "fast""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
            ("2562048h", r#"time: invalid duration "2562048h""#),
            (
                "99999999999999999999s",
                r#"time: invalid duration "99999999999999999999s""#,
            ),
            ("1\ts", "time: unknown unit \"\\ts\" in duration \"1\\ts\""),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_go_duration(text), Err(want.to_string()), "{text:?}");
        }
    }

    #[test]
    fn formats_like_go_duration_string() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ns"),
            (Duration::from_nanos(999), "999ns"),
            (Duration::from_micros(500), "500\u{b5}s"),
            (Duration::from_nanos(1_500), "1.5\u{b5}s"),
            (Duration::from_millis(1), "1ms"),
            (Duration::from_millis(200), "200ms"),
            (Duration::from_nanos(1_234_567), "1.234567ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(600), "10m0s"),
            (Duration::from_secs(5400), "1h30m0s"),
            (Duration::from_secs(7200), "2h0m0s"),
            (Duration::from_nanos(3_661_000_000_001), "1h1m1.000000001s"),
            (
                Duration::from_nanos(i64::MAX as u64),
                "2562047h47m16.854775807s",
            ),
        ];
        for &(d, want) in cases {
            assert_eq!(format_go_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn format_round_trips_through_parse() {
        for text in ["1h30m0s", "1.5s", "500\u{b5}s", "10m0s", "0s", "1.234567ms"] {
            let ns = parse_go_duration(text).unwrap();
            let d = Duration::from_nanos(ns as u64);
            assert_eq!(format_go_duration(d), text);
        }
    }

    #[test]
    fn quotes_like_strconv_quote() {
        assert_eq!(go_quote("abc"), r#""abc""#);
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("\n\t\u{1}\u{7f}"), r#""\n\t\x01\x7f""#);
        assert_eq!(go_quote("5\u{b5}s \u{3bc}"), "\"5\u{b5}s \u{3bc}\"");
        assert_eq!(go_quote("\u{a0}\u{feff}"), r#""\u00a0\ufeff""#);
        assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
    }
}
