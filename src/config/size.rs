//! Byte sizes (ops.md §2.3).
//!
//! A size is a decimal integer with an optional, case-sensitive unit and nothing else: no sign,
//! no space, no fraction. Being strict matters because `4mb` could mean either 4 000 000 or
//! 4 194 304 bytes, and `1.5GiB` invites rounding questions; the operator gets an error instead of
//! a guess.

/// Units in the order they are tried. Decimal units are powers of 1000, binary ones of 1024.
const UNITS: [(&str, u64); 9] = [
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parses `4194304`, `4MiB`, `512MiB`, `1GB`, ... into bytes; `None` when the text is not a size
/// or the result does not fit in 64 bits.
pub fn parse_size(s: &str) -> Option<u64> {
    let digits_end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    if digits.is_empty() {
        return None;
    }
    // `u64::from_str` would also accept a leading '+', which is why the digits are split off
    // by hand above and only pure digit runs reach it.
    let n: u64 = digits.parse().ok()?;
    let mult = if unit.is_empty() {
        1
    } else {
        UNITS.iter().find(|(name, _)| *name == unit)?.1
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let cases: &[(&str, u64)] = &[
            ("4194304", 4_194_304),
            ("4MiB", 4_194_304),
            ("512MiB", 512 << 20),
            ("1GB", 1_000_000_000),
            ("0", 0),
            ("7B", 7),
            ("1KB", 1_000),
            ("2MB", 2_000_000),
            ("3TB", 3_000_000_000_000),
            ("1KiB", 1_024),
            ("12MiB", 12 << 20),
            ("1GiB", 1 << 30),
            ("2TiB", 2 << 40),
            ("007KiB", 7 * 1024),
            ("18446744073709551615", u64::MAX),
            ("16777215TiB", 16_777_215u64 << 40),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_size(text), Some(want), "{text}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for text in [
            "",
            "4 MiB",
            "1.5GiB",
            "4mb",
            "4mib",
            "4Mib",
            "4kb",
            "-1",
            "+1",
            "MiB",
            "4MiBs",
            "4 ",
            " 4",
            "4M",
            "4K",
            "0x10",
            "1e6",
            "18446744073709551616",
            "16777216TiB",
            "4\u{b5}B",
        ] {
            assert_eq!(parse_size(text), None, "{text:?}");
        }
    }
}
