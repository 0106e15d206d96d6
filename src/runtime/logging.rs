//! Log lines (ops.md §5): `env_logger` to stderr, in text or JSON (`HYPERCACHE_LOG_FORMAT`).
//!
//! Text: `<RFC 3339 UTC> <LEVEL> node=<id> <message>`, what ops.md §5 specifies and the tests
//! read the start line from. JSON: one object per line with `ts`, `level`, `node`, `msg`, plus
//! one field per `key=value` token of the message. Our messages already name their fields that
//! way (`member node-3 alive -> suspect incarnation=4`, the start line's `api=… cores=…`), so a
//! log pipeline gets the same events as the text format with their fields queryable, and no
//! call site needs a second spelling of its event. Logging is off the hot path (per-request
//! lines exist only at debug), so building a line with allocations is fine here.

use std::io::Write;

use crate::config::LogFormat;

/// Installs the global logger. Call once, before any executor starts.
pub fn init(level: log::LevelFilter, format: LogFormat, node: String) {
    env_logger::Builder::new()
        .filter_level(level)
        .format(move |buf, rec| {
            let ts = crate::http::date::rfc3339_millis(crate::base::now_ms());
            match format {
                LogFormat::Text => writeln!(buf, "{ts} {} node={node} {}", rec.level(), rec.args()),
                LogFormat::Json => {
                    let msg = rec.args().to_string();
                    writeln!(buf, "{}", json_line(&ts, rec.level(), &node, &msg))
                }
            }
        })
        .target(env_logger::Target::Stderr)
        .init();
}

/// Keys a message token may not take over: they are the line's own.
const RESERVED: [&str; 4] = ["ts", "level", "node", "msg"];

/// One JSON log line (without the newline).
pub fn json_line(ts: &str, level: log::Level, node: &str, msg: &str) -> String {
    let mut o = serde_json::Map::new();
    o.insert("ts".into(), ts.into());
    o.insert("level".into(), level.as_str().into());
    o.insert("node".into(), node.into());
    o.insert("msg".into(), msg.into());
    for (k, v) in fields(msg) {
        if RESERVED.contains(&k) || o.contains_key(k) {
            continue;
        }
        let value = match v.parse::<i64>() {
            Ok(n) => n.into(),
            Err(_) => v.into(),
        };
        o.insert(k.to_string(), value);
    }
    serde_json::Value::Object(o).to_string()
}

/// The `key=value` tokens of a message, in order. A key is a word of letters, digits, `_`, `.`
/// or `-` starting with a letter or `_`; the value runs to the next space, without trailing
/// `,` `;` `:` `)` and without surrounding double quotes.
pub fn fields(msg: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    for token in msg.split_ascii_whitespace() {
        let Some((k, v)) = token.split_once('=') else {
            continue;
        };
        let key_ok = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        let v = v.trim_end_matches([',', ';', ':', ')']);
        let v = v
            .strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .unwrap_or(v);
        if key_ok && !v.is_empty() {
            out.push((k, v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_tokens_become_fields() {
        let f = fields("member node-3 alive -> suspect incarnation=4, addr=\"10.0.0.3:7946\";");
        assert_eq!(f, vec![("incarnation", "4"), ("addr", "10.0.0.3:7946")]);
        assert!(fields("a == b, =x, 1a=2, k=").is_empty());
    }

    #[test]
    fn json_line_has_the_fixed_keys_and_the_event_fields() {
        let line = json_line(
            "2026-12-03T07:00:00.000Z",
            log::Level::Warn,
            "node-1",
            "dropped hints node=evil target=node-2 count=12 msg=x",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts"], "2026-12-03T07:00:00.000Z");
        assert_eq!(v["level"], "WARN");
        assert_eq!(
            v["node"], "node-1",
            "a message token never overrides the node"
        );
        assert_eq!(
            v["msg"],
            "dropped hints node=evil target=node-2 count=12 msg=x"
        );
        assert_eq!(v["target"], "node-2");
        assert_eq!(v["count"], 12);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn quotes_and_newlines_in_messages_stay_one_valid_line() {
        let line = json_line(
            "t",
            log::Level::Info,
            "n",
            "bad \"value\"\nsecond line\ttab",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["msg"], "bad \"value\"\nsecond line\ttab");
        assert!(!line.contains('\n'));
    }
}
