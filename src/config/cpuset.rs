//! Linux cpu lists (`0-3,8,10-11`) for `HYPERCACHE_CPU_SET` (ops.md §2.4, §7.1).
//!
//! The format is the one of `taskset -c`, cgroup `cpuset.cpus` and `/sys/.../cpulist`, so an
//! operator can paste what those tools print. The kernel's stride form (`0-7:2/4`) is not
//! accepted: it is rare and easy to write out. Duplicates (`0,0` or overlapping ranges) are
//! rejected because they almost always hide a typo and would pin two data cores to one CPU.

/// CPU numbers at or above this are rejected. Linux' own maximum (`NR_CPUS`) is 8192; the cap
/// only keeps a typo such as `0-4000000000` from allocating gigabytes before the affinity check.
const MAX_CPU: usize = 1 << 16;

/// Parses a cpu list into ascending CPU numbers.
///
/// Items are `N` or `N-M` (`N <= M`) separated by commas; spaces around an item are tolerated.
/// The error is a short reason, for the invalid-variable message.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    if s.trim().is_empty() {
        return Err("the list is empty".to_string());
    }
    for item in s.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("empty entry".to_string());
        }
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (parse_cpu(a.trim())?, parse_cpu(b.trim())?),
            None => {
                let n = parse_cpu(item)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(format!("range {item} is reversed"));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    if let Some(w) = cpus.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("CPU {} is listed twice", w[0]));
    }
    Ok(cpus)
}

fn parse_cpu(s: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{s:?} is not a CPU number"));
    }
    match s.parse::<usize>() {
        Ok(n) if n < MAX_CPU => Ok(n),
        _ => Err(format!("CPU {s} is out of range")),
    }
}

/// Formats CPUs as a cpu list that parses back to the same set.
///
/// Runs of three or more consecutive CPUs become ranges (`0-3,8`); a pair stays a pair (`0,1`),
/// which keeps the short lists of small machines readable in the start log line
/// (`cpus=0,1`, ops.md §5) and `/config`. Input is expected ascending (as `Config::cpu_set` is);
/// any other order is printed item by item, never reordered.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        match j - i {
            0 => parts.push(cpus[i].to_string()),
            1 => {
                parts.push(cpus[i].to_string());
                parts.push(cpus[j].to_string());
            }
            _ => parts.push(format!("{}-{}", cpus[i], cpus[j])),
        }
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_linux_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Ok(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("5"), Ok(vec![5]));
        assert_eq!(parse_cpu_list("3,1,2"), Ok(vec![1, 2, 3]));
        assert_eq!(parse_cpu_list("2-2"), Ok(vec![2]));
        assert_eq!(parse_cpu_list(" 0 , 2 - 3 "), Ok(vec![0, 2, 3]));
        assert_eq!(parse_cpu_list("65535"), Ok(vec![65535]));
    }

    #[test]
    fn rejects_bad_lists() {
        for text in [
            "",
            " ",
            "a",
            "0,",
            ",0",
            "0,,1",
            "3-1",
            "-1",
            "1-",
            "0-3:2/4",
            "1.5",
            "+1",
            "0x1",
            "65536",
            "0-99999999999",
            "1 2",
        ] {
            assert!(parse_cpu_list(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn rejects_duplicates() {
        assert_eq!(
            parse_cpu_list("0,0"),
            Err("CPU 0 is listed twice".to_string())
        );
        assert_eq!(
            parse_cpu_list("0-3,2-5"),
            Err("CPU 2 is listed twice".to_string())
        );
        assert!(parse_cpu_list("1,0-1").is_err());
    }

    #[test]
    fn formats_compressed_ranges() {
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(format_cpu_list(&[0]), "0");
        assert_eq!(format_cpu_list(&[0, 1]), "0,1");
        assert_eq!(format_cpu_list(&[0, 1, 2]), "0-2");
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8]), "0-3,8");
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10,11");
        assert_eq!(format_cpu_list(&[1, 3, 5]), "1,3,5");
        assert_eq!(format_cpu_list(&[4, 5, 6, 7, 9, 10, 11]), "4-7,9-11");
    }

    #[test]
    fn format_round_trips() {
        for cpus in [vec![0, 1], vec![0, 1, 2, 3, 8, 10, 11], vec![2, 4, 5, 6, 9]] {
            assert_eq!(parse_cpu_list(&format_cpu_list(&cpus)), Ok(cpus));
        }
    }
}
