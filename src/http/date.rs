//! UTC calendar formatting: the HTTP `Date` header (IMF-fixdate, RFC 9110 §5.6.7) and the RFC 3339
//! timestamps of the API (`expires_at`, `last_updated`, `X-Cache-*-At`, api.md §1).
//!
//! Every response carries `Date` and many carry timestamps, so these run on the hot path: the
//! calendar conversion is Howard Hinnant's `civil_from_days` (pure integer arithmetic, no tables, no
//! loops) and the byte-writing variants do not allocate. No time-zone database is needed: every
//! format here is UTC.
//!
//! Inputs are unsigned Unix times, so nothing precedes 1970. Times past 9999-12-31T23:59:59Z are
//! clamped to it, because both formats have exactly four year digits (a fixed-width `Date` lets the
//! HTTP layer reuse a 29-byte buffer).

/// 9999-12-31T23:59:59Z, the last instant with a four-digit year.
const MAX_SECS: u64 = 253_402_300_799;

const DAY_NAMES: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTH_NAMES: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A broken-down UTC time.
struct Civil {
    year: u32,
    /// 1..=12
    month: u32,
    /// 1..=31
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday
    weekday: u32,
}

/// Splits Unix seconds (clamped to `MAX_SECS`) into calendar fields.
fn civil(unix_secs: u64) -> Civil {
    let secs = unix_secs.min(MAX_SECS);
    let days = secs / 86_400;
    let tod = secs % 86_400;

    // civil_from_days (http://howardhinnant.github.io/date_algorithms.html), specialised to
    // non-negative day counts: shift the epoch to 0000-03-01 so leap days fall at the end of a
    // year, then split into 400-year eras (146097 days each).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // year of era, [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year, [0, 365]
    let mp = (5 * doy + 2) / 153; // March-based month, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);

    // All values are bounded by the clamp above, so the narrowing casts cannot truncate.
    Civil {
        year: year as u32,
        month: month as u32,
        day: day as u32,
        hour: (tod / 3_600) as u32,
        minute: (tod / 60 % 60) as u32,
        second: (tod % 60) as u32,
        // 1970-01-01 was a Thursday (4).
        weekday: ((days + 4) % 7) as u32,
    }
}

#[inline]
fn two(v: u32) -> [u8; 2] {
    [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]
}

#[inline]
fn four(v: u32) -> [u8; 4] {
    [
        b'0' + (v / 1000) as u8,
        b'0' + (v / 100 % 10) as u8,
        b'0' + (v / 10 % 10) as u8,
        b'0' + (v % 10) as u8,
    ]
}

/// Writes the IMF-fixdate of `unix_secs` into `out`, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
/// (always exactly 29 bytes).
pub fn imf_fixdate(unix_secs: u64, out: &mut [u8; 29]) {
    let c = civil(unix_secs);
    out[0..3].copy_from_slice(DAY_NAMES[c.weekday as usize]);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(c.day));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTH_NAMES[(c.month - 1) as usize]);
    out[11] = b' ';
    out[12..16].copy_from_slice(&four(c.year));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(c.hour));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(c.minute));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(c.second));
    out[25..29].copy_from_slice(b" GMT");
}

/// `YYYY-MM-DDTHH:MM:SS` (19 bytes) of whole seconds.
fn date_time(unix_secs: u64) -> [u8; 19] {
    let c = civil(unix_secs);
    let mut b = *b"0000-00-00T00:00:00";
    b[0..4].copy_from_slice(&four(c.year));
    b[5..7].copy_from_slice(&two(c.month));
    b[8..10].copy_from_slice(&two(c.day));
    b[11..13].copy_from_slice(&two(c.hour));
    b[14..16].copy_from_slice(&two(c.minute));
    b[17..19].copy_from_slice(&two(c.second));
    b
}

/// Appends the RFC 3339 UTC time of `unix_ms` with whole seconds (milliseconds truncated, as
/// api.md §1 requires), e.g. `2026-05-06T10:05:00Z`: 20 bytes, no allocation beyond `out`'s growth.
pub fn write_rfc3339_secs(unix_ms: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&date_time(unix_ms / 1_000));
    out.push(b'Z');
}

/// RFC 3339 UTC with whole seconds, e.g. `2026-05-06T10:05:00Z`; fractions are truncated.
pub fn rfc3339_secs(unix_ms: u64) -> String {
    let mut v = Vec::with_capacity(20);
    write_rfc3339_secs(unix_ms, &mut v);
    // Only ASCII digits and separators were written.
    String::from_utf8(v).expect("ASCII")
}

/// RFC 3339 UTC with milliseconds, e.g. `2025-11-26T06:53:20.000Z` (for logs and events).
pub fn rfc3339_millis(unix_ms: u64) -> String {
    let mut v = Vec::with_capacity(24);
    // Clamp as a whole so an out-of-range time reads 9999-12-31T23:59:59.999Z, not .xyz of another
    // second.
    let ms = unix_ms.min(MAX_SECS * 1_000 + 999);
    v.extend_from_slice(&date_time(ms / 1_000));
    let frac = (ms % 1_000) as u32;
    v.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
        b'Z',
    ]);
    String::from_utf8(v).expect("ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imf(secs: u64) -> String {
        let mut b = [0u8; 29];
        imf_fixdate(secs, &mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn imf_fixdate_known() {
        assert_eq!(imf(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(imf(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(imf(951_868_799), "Tue, 29 Feb 2000 23:59:59 GMT");
        assert_eq!(imf(1_709_212_029), "Thu, 29 Feb 2024 13:07:09 GMT");
        assert_eq!(imf(1_778_061_612), "Wed, 06 May 2026 10:00:12 GMT");
        assert_eq!(imf(2_147_483_647), "Tue, 19 Jan 2038 03:14:07 GMT");
        assert_eq!(imf(2_147_483_648), "Tue, 19 Jan 2038 03:14:08 GMT");
        assert_eq!(imf(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(imf(MAX_SECS), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(imf(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn rfc3339_secs_known() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(999), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(1_778_061_900_000), "2026-05-06T10:05:00Z");
        // Truncated, never rounded up.
        assert_eq!(rfc3339_secs(1_778_061_900_999), "2026-05-06T10:05:00Z");
        assert_eq!(rfc3339_secs(1_764_140_000_000), "2025-11-26T06:53:20Z");
        assert_eq!(rfc3339_secs(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_secs(68_256_000_000), "1972-03-01T00:00:00Z");
        assert_eq!(rfc3339_secs(68_255_999_000), "1972-02-29T23:59:59Z");
        assert_eq!(rfc3339_secs(2_147_483_648_000), "2038-01-19T03:14:08Z");
        // 2100 is not a leap year: Feb 28 is followed by Mar 1.
        assert_eq!(rfc3339_secs(4_107_456_000_000), "2100-02-28T00:00:00Z");
        assert_eq!(rfc3339_secs(4_107_542_400_000), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339_secs(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn rfc3339_millis_known() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_764_140_000_000),
            "2025-11-26T06:53:20.000Z"
        );
        assert_eq!(
            rfc3339_millis(1_764_140_000_007),
            "2025-11-26T06:53:20.007Z"
        );
        assert_eq!(rfc3339_millis(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(rfc3339_millis(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn write_variant_appends() {
        let mut v = b"at ".to_vec();
        write_rfc3339_secs(1_764_140_000_123, &mut v);
        assert_eq!(v, b"at 2025-11-26T06:53:20Z");
    }

    /// Walk every day from 1970 to 2400 and check each date follows the previous one, so month
    /// lengths and leap rules (4, 100, 400) are right everywhere, not just at the sampled points.
    #[test]
    fn consecutive_days() {
        let leap =
            |y: u32| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let mut prev = civil(0);
        for d in 1..(430 * 366) {
            let c = civil(d * 86_400);
            let month_len = match prev.month {
                2 if leap(prev.year) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if prev.day < month_len {
                assert_eq!(
                    (c.year, c.month, c.day),
                    (prev.year, prev.month, prev.day + 1)
                );
            } else if prev.month < 12 {
                assert_eq!((c.year, c.month, c.day), (prev.year, prev.month + 1, 1));
            } else {
                assert_eq!((c.year, c.month, c.day), (prev.year + 1, 1, 1));
            }
            assert_eq!(c.weekday, (prev.weekday + 1) % 7);
            prev = c;
        }
    }
}
