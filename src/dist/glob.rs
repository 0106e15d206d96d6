//! Key patterns of the key browser (api.md §10.1, cluster.md §12.3): a
//! literal prefix, or a glob with Go `path.Match` semantics when the pattern
//! contains `*`, `?` or `[`: `*` any run of non-`/` characters, `?` one
//! non-`/` character, `[...]` a class with ranges and `^` negation, `\`
//! escapes.

/// A glob with an unclosed class, an empty class or a trailing `\`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    Prefix(String),
    Glob(Vec<char>),
}

impl Pattern {
    /// Err when the glob is malformed.
    pub fn parse(q: &str) -> Result<Pattern, BadPattern> {
        if !q.contains(['*', '?', '[']) {
            return Ok(Pattern::Prefix(q.to_string()));
        }
        let p: Vec<char> = q.chars().collect();
        validate(&p)?;
        Ok(Pattern::Glob(p))
    }

    pub fn matches(&self, key: &str) -> bool {
        match self {
            Pattern::Prefix(p) => key.starts_with(p.as_str()),
            Pattern::Glob(p) => {
                let k: Vec<char> = key.chars().collect();
                glob(p, &k)
            }
        }
    }
}

fn validate(p: &[char]) -> Result<(), BadPattern> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(BadPattern);
                }
                i += 2;
            }
            '[' => i = class_end(p, i).ok_or(BadPattern)?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Index just past the class starting at `p[start] == '['`, or None if malformed.
fn class_end(p: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if p.get(i) == Some(&'^') {
        i += 1;
    }
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some(i + 1);
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            c
        };
        let _ = lo;
        i += 1;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
            i += 1;
            if p[i] == '\\' {
                i += 1;
                p.get(i)?;
            }
            i += 1;
        }
    }
}

fn class_matches(p: &[char], start: usize, ch: char) -> bool {
    let mut i = start + 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while let Some(&c) = p.get(i) {
        if c == ']' && !first {
            break;
        }
        first = false;
        let lo = if c == '\\' {
            i += 1;
            p[i]
        } else {
            c
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
            i += 1;
            if p[i] == '\\' {
                i += 1;
            }
            hi = p[i];
            i += 1;
        }
        if lo <= ch && ch <= hi {
            matched = true;
        }
    }
    matched != negate
}

fn glob(p: &[char], k: &[char]) -> bool {
    let (mut pi, mut ki) = (0, 0);
    // Backtracking point for the last `*`: (pattern index after it, key index).
    let mut star: Option<(usize, usize)> = None;
    while ki < k.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi + 1, ki));
                    pi += 1;
                    continue;
                }
                '?' if k[ki] != '/' => {
                    pi += 1;
                    ki += 1;
                    continue;
                }
                '[' if k[ki] != '/' && class_matches(p, pi, k[ki]) => {
                    pi = class_end(p, pi).unwrap_or(p.len());
                    ki += 1;
                    continue;
                }
                '\\' if p.get(pi + 1) == Some(&k[ki]) => {
                    pi += 2;
                    ki += 1;
                    continue;
                }
                c if !matches!(c, '?' | '[' | '\\' | '*') && c == k[ki] => {
                    pi += 1;
                    ki += 1;
                    continue;
                }
                _ => {}
            }
        }
        // Mismatch: let the last `*` swallow one more (non-`/`) character.
        match star {
            Some((sp, sk)) if k[sk] != '/' => {
                star = Some((sp, sk + 1));
                pi = sp;
                ki = sk + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, k: &str) -> bool {
        Pattern::parse(p).unwrap().matches(k)
    }

    #[test]
    fn go_path_match_cases() {
        assert!(m("first-", "first-10"));
        assert!(!m("first-", "second"));
        assert!(m("user:*", "user:42"));
        assert!(!m("user:*", "user:4/2"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*", "anything"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("caf?", "café"));
    }

    #[test]
    fn malformed_globs() {
        assert!(Pattern::parse("[abc").is_err());
        assert!(Pattern::parse("a*\\").is_err());
        assert_eq!(Pattern::parse("a\\"), Ok(Pattern::Prefix("a\\".into())));
        assert!(Pattern::parse("[]").is_err());
        assert!(Pattern::parse("[a-]").is_ok());
    }
}
