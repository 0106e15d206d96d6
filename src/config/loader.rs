//! The bookkeeping shared by the per-variable pass (`env.rs`) and the cross-checks
//! (`checks.rs`): which variables are set, the errors found so far, and the value parsers that
//! turn one trimmed text into one typed value.
//!
//! Parsers return `Err(None)` when the accepted form alone explains the failure and
//! `Err(Some(reason))` when the operator needs more (a CPU outside the mask, a seed entry), so
//! every message has the one shape of ops.md §2.1:
//! `hypercache-server: invalid NAME="value": [reason; ]expected FORM`.

use std::collections::HashMap;
use std::time::Duration;

use super::duration::{go_quote, parse_go_duration};
use super::size::parse_size;
use super::ConfigError;

/// Set variables (trimmed, non-empty) and the failures found so far.
pub(crate) struct Loader<'a> {
    pub(crate) set: HashMap<&'a str, &'a str>,
    pub(crate) errors: Vec<ConfigError>,
    /// Variables that already failed, so cross-checks on them are skipped: their message would
    /// be about a default nobody configured.
    failed: Vec<&'static str>,
}

impl<'a> Loader<'a> {
    pub(crate) fn new() -> Loader<'a> {
        Loader {
            set: HashMap::new(),
            errors: Vec::new(),
            failed: Vec::new(),
        }
    }

    pub(crate) fn value(&self, name: &str) -> Option<&'a str> {
        self.set.get(name).copied()
    }

    /// Parses `name` when it is set. On failure records the invalid-variable error and returns
    /// `default`, so loading goes on and every bad variable is reported in one run.
    pub(crate) fn var<T>(
        &mut self,
        name: &'static str,
        default: T,
        form: &str,
        parse: impl FnOnce(&str) -> Result<T, Option<String>>,
    ) -> T {
        let Some(text) = self.value(name) else {
            return default;
        };
        match parse(text) {
            Ok(v) => v,
            Err(reason) => {
                self.invalid(name, &go_quote(text), reason, form);
                default
            }
        }
    }

    /// Records `invalid NAME=shown: [reason; ]expected FORM`. `shown` is normally the quoted
    /// value; the token passes `<redacted>` instead.
    pub(crate) fn invalid(
        &mut self,
        name: &'static str,
        shown: &str,
        reason: Option<String>,
        form: &str,
    ) {
        let msg = match reason {
            Some(r) => format!("invalid {name}={shown}: {r}; expected {form}"),
            None => format!("invalid {name}={shown}: expected {form}"),
        };
        self.fail(name, msg);
    }

    /// Records a failure of `name` with a message (without the `hypercache-server: ` prefix).
    pub(crate) fn fail(&mut self, name: &'static str, msg: String) {
        self.failed.push(name);
        self.errors.push(ConfigError::new(msg));
    }

    /// Whether none of `names` failed its own check.
    pub(crate) fn ok(&self, names: &[&str]) -> bool {
        names.iter().all(|n| !self.failed.contains(n))
    }

    /// A value in a cross-check message: the configured text, or the default marked as such
    /// (the operator may not know a default is involved).
    pub(crate) fn shown(&self, name: &str, effective: String) -> String {
        match self.value(name) {
            Some(text) => go_quote(text),
            None => format!("{} (default)", go_quote(&effective)),
        }
    }
}

/// A decimal integer `>= min` that fits `T`. Digits only: `u64::from_str` would accept `+5`.
pub(crate) fn int<T: TryFrom<u64>>(text: &str, min: u64) -> Result<T, Option<String>> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(None);
    }
    let too_large = || Some("the number is too large".to_string());
    let n: u64 = text.parse().map_err(|_| too_large())?;
    if n < min {
        return Err(None);
    }
    T::try_from(n).map_err(|_| too_large())
}

/// ops.md §2.2: negative is always invalid, 0 only where `zero_ok`, anything else >= 1ms.
pub(crate) fn duration(text: &str, zero_ok: bool) -> Result<Duration, Option<String>> {
    let ns = parse_go_duration(text).map_err(|_| None)?;
    if ns < 0 {
        return Err(Some("negative durations are not allowed".to_string()));
    }
    if ns == 0 && zero_ok {
        return Ok(Duration::ZERO);
    }
    if ns < 1_000_000 {
        let rule = if zero_ok {
            "the duration must be 0 or at least 1ms"
        } else {
            "the duration must be at least 1ms"
        };
        return Err(Some(rule.to_string()));
    }
    // parse_go_duration never returns more than i64::MAX.
    Ok(Duration::from_nanos(ns as u64))
}

/// A size (ops.md §2.3) within `min..=max` bytes.
pub(crate) fn size(text: &str, min: u64, max: u64) -> Result<u64, Option<String>> {
    parse_size(text)
        .filter(|n| (min..=max).contains(n))
        .ok_or(None)
}

/// One of `options`, matched case-insensitively (ops.md §2.1).
pub(crate) fn choice<T: Copy>(text: &str, options: &[(&str, T)]) -> Result<T, Option<String>> {
    options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, v)| v)
        .ok_or(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_plain_digits() {
        assert_eq!(int::<usize>("3", 1), Ok(3));
        assert_eq!(int::<usize>("007", 1), Ok(7));
        assert_eq!(int::<usize>("0", 0), Ok(0));
        assert_eq!(int::<usize>("0", 1), Err(None));
        for bad in ["", "+3", "-3", "3.0", "1e3", "0x10", "3 "] {
            assert_eq!(int::<u64>(bad, 0), Err(None), "{bad:?}");
        }
        assert!(int::<u64>("99999999999999999999", 0).unwrap_err().is_some());
        assert!(int::<u32>("4294967296", 1).unwrap_err().is_some());
    }

    #[test]
    fn durations_follow_the_zero_and_1ms_rules() {
        assert_eq!(duration("1ms", false), Ok(Duration::from_millis(1)));
        assert_eq!(duration("1m30s", false), Ok(Duration::from_secs(90)));
        assert_eq!(duration("0", true), Ok(Duration::ZERO));
        assert_eq!(duration("0s", true), Ok(Duration::ZERO));
        assert_eq!(duration("-0", true), Ok(Duration::ZERO));
        assert!(duration("0", false).unwrap_err().is_some());
        assert!(duration("500us", false).unwrap_err().is_some());
        assert!(duration("500us", true).unwrap_err().is_some());
        assert!(duration("999999ns", true).unwrap_err().is_some());
        assert_eq!(duration("1000000ns", false), Ok(Duration::from_millis(1)));
        assert!(duration("-1s", true).unwrap_err().is_some());
        assert_eq!(duration("fast", false), Err(None));
        assert_eq!(duration("10", true), Err(None));
    }

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(size("1KiB", 1024, 12 << 20), Ok(1024));
        assert_eq!(size("12MiB", 1024, 12 << 20), Ok(12 << 20));
        assert_eq!(size("1023", 1024, 12 << 20), Err(None));
        assert_eq!(size("12582913", 1024, 12 << 20), Err(None));
        assert_eq!(size("4mb", 0, u64::MAX), Err(None));
    }

    #[test]
    fn choices_ignore_case() {
        let opts = [("one", 1), ("quorum", 2)];
        assert_eq!(choice("QUORUM", &opts), Ok(2));
        assert_eq!(choice("One", &opts), Ok(1));
        assert_eq!(choice("two", &opts), Err(None));
        assert_eq!(choice("", &opts), Err(None));
    }

    #[test]
    fn messages_have_the_contract_shape() {
        let vars = [("HYPERCACHE_HEARTBEAT", "fast")];
        let mut l = Loader::new();
        l.set.extend(vars);
        let d = l.var(
            "HYPERCACHE_HEARTBEAT",
            Duration::ZERO,
            "a duration such as 500ms, 1s or 1m30s",
            |t| duration(t, false),
        );
        assert_eq!(d, Duration::ZERO);
        assert_eq!(
            l.errors[0].message,
            "hypercache-server: invalid HYPERCACHE_HEARTBEAT=\"fast\": expected a duration such as 500ms, 1s or 1m30s"
        );
        assert_eq!(l.errors[0].exit_code, 2);
        assert!(!l.ok(&["HYPERCACHE_HEARTBEAT"]));
        assert!(l.ok(&["HYPERCACHE_GOSSIP_INTERVAL"]));
        assert_eq!(l.shown("HYPERCACHE_HEARTBEAT", "x".into()), "\"fast\"");
        assert_eq!(l.shown("HYPERCACHE_X", "1s".into()), "\"1s\" (default)");
    }
}
