//! `GET`/`HEAD /v1/cache/keys`, the cluster key browser (api.md §10.1): the query rules, the
//! page of the merged listing, and the answer. The fan-out itself runs on the control core
//! (`control::browse`); this core only parses, asks once and renders.

use super::ClientService;
use crate::http::keys::{form_decode, query_param};
use crate::http::response::{json_str, json_str_list, Responder};
use crate::runtime::msg::{Browse, Op, Reply};

const LIMIT_DEFAULT: usize = 100;
const LIMIT_MAX: usize = 500;
const MAX_DEFAULT: usize = 10_000;
const MAX_MAX: usize = 50_000;

/// A validated key-browser query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseQuery {
    pub q: String,
    pub pattern: crate::dist::glob::Pattern,
    pub cursor: usize,
    pub limit: usize,
    pub max: usize,
}

/// A decimal integer; values beyond `usize` saturate (a huge limit clamps, a huge cursor is
/// past the end).
fn number(v: &str) -> Option<usize> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse().unwrap_or(usize::MAX))
}

/// The rules of api.md §10.1's table; the error is the exact 400 text. An empty `cursor`,
/// `limit` or `max` is not an integer, so it is refused (echoing the last page's empty
/// `next_cursor` back would otherwise restart the listing forever); an empty `q` is all keys.
pub fn parse(query: &[u8]) -> Result<BrowseQuery, &'static str> {
    let param = |name: &[u8]| -> Option<String> {
        let raw = query_param(query, name)?;
        let v = form_decode(raw).unwrap_or_else(|_| raw.to_vec());
        Some(String::from_utf8_lossy(&v).into_owned())
    };
    let q = param(b"q").unwrap_or_default();
    let pattern = crate::dist::glob::Pattern::parse(&q).map_err(|_| "invalid glob pattern")?;
    let cursor = match param(b"cursor") {
        None => 0,
        Some(v) => number(&v).ok_or("invalid cursor: must be a non-negative integer")?,
    };
    let positive = |name: &[u8], default: usize, cap: usize, err: &'static str| match param(name) {
        None => Ok(default),
        Some(v) => match number(&v) {
            Some(n) if n > 0 => Ok(n.min(cap)),
            _ => Err(err),
        },
    };
    let limit = positive(
        b"limit",
        LIMIT_DEFAULT,
        LIMIT_MAX,
        "invalid limit: must be a positive integer",
    )?;
    let max = positive(
        b"max",
        MAX_DEFAULT,
        MAX_MAX,
        "invalid max: must be a positive integer",
    )?;
    Ok(BrowseQuery {
        q,
        pattern,
        cursor,
        limit,
        max,
    })
}

/// The page `[cursor, cursor + limit)` and the next cursor (`""` on the last page).
pub fn page(keys: &[String], cursor: usize, limit: usize) -> (&[String], String) {
    let from = cursor.min(keys.len());
    let to = from.saturating_add(limit).min(keys.len());
    let next = if to < keys.len() {
        to.to_string()
    } else {
        String::new()
    };
    (&keys[from..to], next)
}

/// `{"keys":[..],"next_cursor":"..","total_matched":N,"truncated":b,"node":".."[,"partial_nodes":[..]]}`.
pub fn render(b: &mut Vec<u8>, q: &BrowseQuery, res: &Browse, node: &str) {
    let (keys, next) = page(&res.keys, q.cursor, q.limit);
    b.extend_from_slice(b"{\"keys\":");
    json_str_list(b, keys);
    b.extend_from_slice(b",\"next_cursor\":");
    json_str(b, &next);
    b.extend_from_slice(format!(",\"total_matched\":{}", res.keys.len()).as_bytes());
    b.extend_from_slice(if res.truncated {
        b",\"truncated\":true,\"node\":"
    } else {
        b",\"truncated\":false,\"node\":"
    });
    json_str(b, node);
    if !res.partial.is_empty() {
        b.extend_from_slice(b",\"partial_nodes\":");
        json_str_list(b, &res.partial);
    }
    b.push(b'}');
}

impl ClientService {
    pub(super) async fn browse(&self, q: BrowseQuery, r: &mut Responder<'_>) {
        let op = Op::BrowseKeys {
            q: q.q.clone(),
            pattern: q.pattern.clone(),
            max: q.max,
        };
        let res = match self.ctx.dispatch.call(self.ctx.control(), op).await {
            Reply::Browse(b) => b,
            _ => Browse::default(),
        };
        let node = self.ctx.node.node_id();
        r.json(200, &[], |b| render(b, &q, &res, node));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_clamps_and_the_exact_errors() {
        let d = parse(b"").unwrap();
        assert_eq!(
            (d.q.as_str(), d.cursor, d.limit, d.max),
            ("", 0, 100, 10_000)
        );
        let c = parse(b"q=user%3A&cursor=7&limit=9999&max=99999999999999999999999").unwrap();
        assert_eq!(
            (c.q.as_str(), c.cursor, c.limit, c.max),
            ("user:", 7, 500, 50_000)
        );
        assert_eq!(
            parse(b"cursor=").unwrap_err(),
            "invalid cursor: must be a non-negative integer",
            "an empty cursor is not an integer"
        );
        assert_eq!(
            parse(b"q=").unwrap().q,
            "",
            "an empty pattern lists every key"
        );
        let e = |q: &[u8]| parse(q).unwrap_err();
        assert_eq!(e(b"q=%5Babc"), "invalid glob pattern");
        assert_eq!(
            e(b"cursor=-1"),
            "invalid cursor: must be a non-negative integer"
        );
        assert_eq!(
            e(b"cursor=x"),
            "invalid cursor: must be a non-negative integer"
        );
        assert_eq!(e(b"limit=0"), "invalid limit: must be a positive integer");
        assert_eq!(e(b"limit=1.5"), "invalid limit: must be a positive integer");
        assert_eq!(e(b"max=0"), "invalid max: must be a positive integer");
    }

    #[test]
    fn pages_and_next_cursor() {
        let keys: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let (p, next) = page(&keys, 0, 2);
        assert_eq!((p.len(), next.as_str()), (2, "2"));
        let (p, next) = page(&keys, 4, 2);
        assert_eq!((p, next.as_str()), (&keys[4..], ""));
        let (p, next) = page(&keys, usize::MAX, 2);
        assert!(
            p.is_empty() && next.is_empty(),
            "past the end: an empty last page"
        );
    }

    #[test]
    fn renders_the_documented_shape() {
        let q = parse(b"limit=2").unwrap();
        let res = Browse {
            keys: vec!["a".into(), "b\"".into(), "c".into()],
            truncated: true,
            partial: vec!["node-3".into()],
        };
        let mut b = Vec::new();
        render(&mut b, &q, &res, "node-1");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"keys":["a","b\""],"next_cursor":"2","total_matched":3,"truncated":true,"node":"node-1","partial_nodes":["node-3"]}"#
        );
    }
}
