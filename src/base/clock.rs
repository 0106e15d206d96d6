//! The wall clock in Unix milliseconds: versions (the HLC's physical part), TTL deadlines,
//! tombstone ages, certificate expiry and log timestamps come from here (the response `Date`
//! header and token expiry read `SystemTime` in seconds where they need it).
//! The pure state machines take `now` as an argument instead; only their drivers call this.

/// Wall clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Wall clock in Unix microseconds: the HLC's physical part below the millisecond
/// (`store::Hlc::next_at`); `now_us() / 1000` is `now_ms()`.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    /// A clock before 1970 or a broken RTC must not panic a core: it reads as 0.
    #[test]
    fn now_is_after_the_epoch_and_moves_forward() {
        let a = super::now_ms();
        // 2020-01-01 in ms: any host this runs on is later.
        assert!(a > 1_577_836_800_000);
        assert!(super::now_ms() >= a);
        assert!(super::now_us() / 1000 >= a);
    }
}
