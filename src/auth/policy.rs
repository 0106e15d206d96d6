//! `HYPERCACHE_AUTH_CONFIG`: the Go server's policy file, strictly (security.md §5).
//!
//! [`Policy::parse`] checks the file in file order and stops at the first
//! problem with the exact `<detail>` of §5's table; [`Policy::check_whole`] runs
//! the whole-file checks that need the rest of the configuration. [`load`] reads
//! the file and formats the start-up line. The server never falls back to open
//! access: every problem stops start-up (exit 2).

use super::yaml::{self, Node, YamlError};
use super::Scopes;

pub const VAR: &str = "HYPERCACHE_AUTH_CONFIG";

#[derive(Debug, Clone, PartialEq)]
pub struct TokenEntry {
    pub id: String,
    pub token: String,
    pub scopes: Scopes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserEntry {
    pub id: String,
    pub username: String,
    pub password_bcrypt: String,
    pub scopes: Scopes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CertEntry {
    pub subject_cn: String,
    pub scopes: Scopes,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub tokens: Vec<TokenEntry>,
    pub users: Vec<UserEntry>,
    pub cert_identities: Vec<CertEntry>,
    pub allow_anonymous: bool,
    pub allow_basic_without_tls: bool,
}

/// What the whole-file checks need to know about the rest of the configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Surroundings {
    pub oidc: bool,
    /// Either the client or the management listener has a client CA.
    pub client_ca: bool,
}

/// Reads and validates the file: the exit-2 line on failure.
pub fn load(path: &str, around: Surroundings) -> Result<Policy, String> {
    let q = format!("{path:?}");
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {VAR}={q}: {}", os_error(&e)))?;
    let invalid = |d: String| format!("invalid {VAR}={q}: {d}");
    let text = String::from_utf8(bytes)
        .map_err(|_| invalid("not valid YAML: the file is not UTF-8 text".into()))?;
    let p = Policy::parse(&text).map_err(invalid)?;
    p.check_whole(around).map_err(invalid)?;
    Ok(p)
}

/// `No such file or directory (os error 2)` → `no such file or directory`.
pub fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl Policy {
    /// The start-up warnings of §5 (the file's contents are never logged).
    pub fn warnings(&self, any_tls: bool) -> Vec<&'static str> {
        let mut w = Vec::new();
        if self.allow_anonymous {
            w.push("allow_anonymous is true: requests without credentials get every scope");
        }
        if self.allow_basic_without_tls {
            w.push(
                "allow_basic_without_tls is true: Basic passwords cross the network in clear text",
            );
        }
        if !self.users.is_empty() && !any_tls && !self.allow_basic_without_tls {
            w.push(
                "users in HYPERCACHE_AUTH_CONFIG cannot log in: Basic needs TLS \
                 (HYPERCACHE_API_TLS_* or HYPERCACHE_MGMT_TLS_*) or allow_basic_without_tls",
            );
        }
        w
    }

    /// Checks that look at the whole file and the rest of the configuration.
    pub fn check_whole(&self, around: Surroundings) -> Result<(), String> {
        let none =
            self.tokens.is_empty() && self.users.is_empty() && self.cert_identities.is_empty();
        if none && !self.allow_anonymous && !around.oidc {
            return Err(
                "no tokens, users or cert_identities and allow_anonymous is false: \
                        every request would be refused"
                    .into(),
            );
        }
        if !self.cert_identities.is_empty() && !around.client_ca {
            return Err("cert_identities need client certificates: set \
                        HYPERCACHE_API_TLS_CLIENT_CA or HYPERCACHE_MGMT_TLS_CLIENT_CA"
                .into());
        }
        Ok(())
    }

    /// Parses and checks the file's text; `Err` is §5's `<detail>`.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let root = yaml::parse(text).map_err(|e| match e {
            YamlError::Syntax(m) => format!("not valid YAML: {m}"),
            YamlError::Empty => "the file is empty".into(),
            YamlError::MoreThanOne => "more than one YAML document".into(),
        })?;
        let Node::Map(top) = root else {
            return Err("the top level must be a mapping".into());
        };
        let mut p = Policy::default();
        for (key, value) in &top {
            match key.as_str() {
                "tokens" => {
                    p.tokens = list(key, value, token_entry, |t| {
                        vec![
                            ("id", t.id.as_str(), true),
                            ("token", t.token.as_str(), false),
                        ]
                    })?
                }
                "users" => {
                    p.users = list(key, value, user_entry, |u| {
                        vec![
                            ("username", u.username.as_str(), true),
                            ("id", u.id.as_str(), true),
                        ]
                    })?
                }
                "cert_identities" => {
                    p.cert_identities = list(key, value, cert_entry, |c| {
                        vec![("subject_cn", c.subject_cn.as_str(), true)]
                    })?
                }
                "allow_anonymous" => p.allow_anonymous = boolean(key, value)?,
                "allow_basic_without_tls" => p.allow_basic_without_tls = boolean(key, value)?,
                other => return Err(format!("unknown field {other:?} at top level")),
            }
        }
        Ok(p)
    }
}

/// A field that must be unique in its list: its name, its value, and
/// whether the value may be printed (a token never is).
type Key<'t> = (&'static str, &'t str, bool);

fn list<T>(
    name: &str,
    value: &Node,
    entry: impl Fn(&str, &Node) -> Result<T, String>,
    keys: impl Fn(&T) -> Vec<Key<'_>>,
) -> Result<Vec<T>, String> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    let Node::Seq(items) = value else {
        return Err(format!("{name} must be a list"));
    };
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for (i, n) in items.iter().enumerate() {
        let e = entry(&format!("{name}[{i}]"), n)?;
        // Duplicates are found where the second one is, in file order.
        for (field, v, show) in keys(&e) {
            let earlier = out
                .iter()
                .position(|o| keys(o).iter().any(|(f, w, _)| *f == field && *w == v));
            if let Some(first) = earlier {
                return Err(if show {
                    format!("{name}[{i}].{field} {v:?} duplicates {name}[{first}]")
                } else {
                    format!("{name}[{i}].{field} duplicates {name}[{first}]")
                });
            }
        }
        out.push(e);
    }
    Ok(out)
}

/// YAML's booleans plus the spellings Go's yaml.v3 also accepts; null is false.
fn boolean(name: &str, value: &Node) -> Result<bool, String> {
    if value.is_null() {
        return Ok(false);
    }
    if let Node::Scalar { text, plain: true } = value {
        match text.as_str() {
            "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
                return Ok(true)
            }
            "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n"
            | "N" => return Ok(false),
            _ => {}
        }
    }
    Err(format!("{name} must be true or false"))
}

/// The entry's fields by name, in file order; unknown fields are refused.
fn fields<'n>(
    loc: &str,
    node: &'n Node,
    known: &[&str],
) -> Result<Vec<(&'n str, &'n Node)>, String> {
    let Node::Map(m) = node else {
        return Err(format!("{loc} must be a mapping"));
    };
    m.iter()
        .map(|(k, v)| {
            if known.contains(&k.as_str()) {
                Ok((k.as_str(), v))
            } else {
                Err(format!("unknown field {k:?} at {loc}"))
            }
        })
        .collect()
}

/// A required string field; absent or null is empty.
fn string(loc: &str, field: &str, v: Option<&Node>) -> Result<String, String> {
    let text = match v {
        None => String::new(),
        Some(n) if n.is_null() => String::new(),
        Some(Node::Scalar { text, .. }) => text.clone(),
        Some(_) => return Err(format!("{loc}.{field} must be a string")),
    };
    if text.is_empty() {
        return Err(format!("{loc}.{field} is empty"));
    }
    Ok(text)
}

fn scopes(loc: &str, v: Option<&Node>) -> Result<Scopes, String> {
    let items: &[Node] = match v {
        None => &[],
        Some(n) if n.is_null() => &[],
        Some(Node::Seq(items)) => items,
        Some(_) => return Err(format!("{loc}.scopes must be a list of strings")),
    };
    let mut s = Scopes::NONE;
    for it in items {
        let Node::Scalar { text, .. } = it else {
            return Err(format!("{loc}.scopes must be a list of strings"));
        };
        match Scopes::parse(text) {
            Some(one) => s = s.with(one),
            None => {
                return Err(format!(
                    "{loc}.scopes: unknown scope {text:?} (valid: read, write, admin)"
                ))
            }
        }
    }
    if items.is_empty() {
        return Err(format!(
            "{loc}.scopes is empty; at least one of read/write/admin required"
        ));
    }
    Ok(s)
}

/// Looks a field up (after `fields` checked the names).
fn get<'n>(fs: &[(&str, &'n Node)], name: &str) -> Option<&'n Node> {
    fs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn token_entry(loc: &str, node: &Node) -> Result<TokenEntry, String> {
    let fs = fields(loc, node, &["id", "token", "scopes"])?;
    let id = string(loc, "id", get(&fs, "id"))?;
    let token = string(loc, "token", get(&fs, "token"))?;
    if !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(format!(
            "{loc}.token must be printable ASCII without spaces"
        ));
    }
    let scopes = scopes(loc, get(&fs, "scopes"))?;
    Ok(TokenEntry { id, token, scopes })
}

fn user_entry(loc: &str, node: &Node) -> Result<UserEntry, String> {
    let fs = fields(loc, node, &["id", "username", "password_bcrypt", "scopes"])?;
    let id = string(loc, "id", get(&fs, "id"))?;
    let username = string(loc, "username", get(&fs, "username"))?;
    if username.contains(':') {
        return Err(format!("{loc}.username must not contain ':'"));
    }
    let password_bcrypt = string(loc, "password_bcrypt", get(&fs, "password_bcrypt"))?;
    if !is_bcrypt(&password_bcrypt) {
        return Err(format!("{loc}.password_bcrypt is not a valid bcrypt hash"));
    }
    let scopes = scopes(loc, get(&fs, "scopes"))?;
    Ok(UserEntry {
        id,
        username,
        password_bcrypt,
        scopes,
    })
}

fn cert_entry(loc: &str, node: &Node) -> Result<CertEntry, String> {
    let fs = fields(loc, node, &["subject_cn", "scopes"])?;
    let subject_cn = string(loc, "subject_cn", get(&fs, "subject_cn"))?;
    let scopes = scopes(loc, get(&fs, "scopes"))?;
    Ok(CertEntry { subject_cn, scopes })
}

/// `$2a$`/`$2b$`/`$2x$`/`$2y$`, cost 04–31, `$`, 53 characters of `./A-Za-z0-9`.
pub fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    if b.len() != 60 || &b[..2] != b"$2" || !b"abxy".contains(&b[2]) || b[3] != b'$' {
        return false;
    }
    let cost = match (b[4], b[5]) {
        (t @ b'0'..=b'9', u @ b'0'..=b'9') => (t - b'0') * 10 + (u - b'0'),
        _ => return false,
    };
    (4..=31).contains(&cost)
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}
